//! One connection's outbound side, shared between the worker (which queues frames) and
//! the connection's writer task (which writes them).
//!
//! Frames are whole WebSocket frames, already encoded and shared between recipients;
//! everything queued when the writer wakes goes out in one write.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::Bytes;

/// How long a closing connection may take to go (the peer answering our close frame, or
/// closing its side) before its socket is shut down. It also covers a peer that reads
/// nothing, whose close frame can never be written.
pub const CLOSE_DEADLINE: Duration = Duration::from_secs(3);

/// What the writer writes next, in one write.
pub enum Batch {
    /// A single frame, shared with the other recipients.
    One(Bytes),
    /// Several frames, joined.
    Joined(Vec<u8>),
}

impl Batch {
    /// How many bytes it writes.
    pub fn byte_len(&self) -> usize {
        match self {
            Batch::One(b) => b.len(),
            Batch::Joined(v) => v.len(),
        }
    }
}

/// The outbound queue of one connection.
pub struct ConnIo {
    /// The connection's socket, open for as long as the connection is not done.
    fd: RawFd,
    queue: RefCell<VecDeque<Bytes>>,
    queued: Cell<usize>,
    writer: Cell<Option<Waker>>,
    /// A close frame is queued: nothing more is accepted.
    closing: Cell<bool>,
    /// The connection is over (read side ended or a write failed).
    done: Cell<bool>,
}

impl ConnIo {
    /// The queue of the connection on socket `fd`.
    pub fn new(fd: RawFd) -> ConnIo {
        ConnIo {
            fd,
            queue: RefCell::default(),
            queued: Cell::default(),
            writer: Cell::default(),
            closing: Cell::default(),
            done: Cell::default(),
        }
    }

    /// Shuts both directions of the socket down unless the connection is already over:
    /// a pending write fails and a pending read returns, so its tasks end even if the peer
    /// neither reads nor answers.
    pub fn abort(&self) {
        if self.done.get() {
            return;
        }
        // SAFETY: until `done` is set, the connection's reader task holds the socket's read
        // half (it sets `done` only after dropping it), so `fd` is open and is this
        // connection's socket; all of this runs on one thread, so nothing closes it between
        // the check and the call. shutdown(2) changes the socket's state and touches no
        // memory.
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
    }

    /// Queues `frame`; returns the bytes now queued. Ignored once closing.
    pub fn push(&self, frame: Bytes) -> usize {
        if self.closing.get() || self.done.get() {
            return 0;
        }
        self.queued.set(self.queued.get() + frame.len());
        self.queue.borrow_mut().push_back(frame);
        self.wake();
        self.queued.get()
    }

    /// Queues a close frame, after which nothing more is sent, and arms the
    /// [`CLOSE_DEADLINE`]: every way a connection closes (the hub's decision, the peer's
    /// close, a codec error) ends the socket by then at the latest.
    pub fn close(self: &Rc<Self>, frame: Bytes) {
        if self.closing.get() || self.done.get() {
            return;
        }
        self.push(frame);
        self.closing.set(true);
        let io = Rc::clone(self);
        monoio::spawn(async move {
            monoio::time::sleep(CLOSE_DEADLINE).await;
            io.abort();
        });
    }

    /// Whether a close frame was queued.
    pub fn is_closing(&self) -> bool {
        self.closing.get()
    }

    /// Whether the close frame has been taken for writing: closing, and nothing queued.
    pub fn close_taken(&self) -> bool {
        self.closing.get() && self.queue.borrow().is_empty()
    }

    /// The connection is over: the writer stops once the queue is empty.
    pub fn finish(&self) {
        self.done.set(true);
        self.wake();
    }

    /// Whether [`finish`](Self::finish) was called.
    pub fn is_done(&self) -> bool {
        self.done.get()
    }

    fn wake(&self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    /// Waits for frames and takes everything queued, ready for one write: a lone frame as
    /// it is (no copy, no allocation), several joined into one buffer. `None` when the
    /// connection is over and nothing is left to write. Nothing is kept between batches,
    /// so an idle connection holds no write buffer.
    pub async fn next_batch(&self) -> Option<Batch> {
        poll_fn(|cx| {
            let mut q = self.queue.borrow_mut();
            match q.len() {
                0 if self.done.get() => Poll::Ready(None),
                0 => {
                    self.writer.set(Some(cx.waker().clone()));
                    Poll::Pending
                }
                1 => Poll::Ready(q.pop_front().map(Batch::One)),
                _ => {
                    let mut joined = Vec::with_capacity(q.iter().map(Bytes::len).sum());
                    for frame in q.drain(..) {
                        joined.extend_from_slice(&frame);
                    }
                    Poll::Ready(Some(Batch::Joined(joined)))
                }
            }
        })
        .await
    }

    /// `n` bytes left the queue (written or abandoned).
    pub fn written(&self, n: usize) {
        self.queued.set(self.queued.get().saturating_sub(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_closing_and_the_close_deadline() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            // A real socket pair, so the deadline's shutdown can be observed from the peer.
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (ours, _) = listener.accept().unwrap();
            let io = Rc::new(ConnIo::new(std::os::fd::AsRawFd::as_raw_fd(&ours)));
            let lone = Bytes::from_static(b"lone");
            io.push(lone.clone());
            match io.next_batch().await {
                Some(Batch::One(b)) => {
                    assert_eq!(b.as_ptr(), lone.as_ptr(), "the shared bytes themselves")
                }
                _ => panic!("a lone frame is passed as is"),
            }
            io.written(4);
            assert_eq!(io.push(Bytes::from_static(b"ab")), 2);
            assert_eq!(io.push(Bytes::from_static(b"cde")), 5);
            io.close(Bytes::from_static(b"X"));
            assert_eq!(
                io.push(Bytes::from_static(b"late")),
                0,
                "nothing after the close frame"
            );
            match io.next_batch().await {
                Some(Batch::Joined(bytes)) => assert_eq!(bytes, b"abcdeX"),
                _ => panic!("three frames come joined"),
            }
            assert!(io.close_taken());
            // Nobody finishes the connection: the deadline shuts the socket down.
            monoio::time::sleep(CLOSE_DEADLINE + Duration::from_millis(100)).await;
            peer.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            assert_eq!(
                std::io::Read::read(&mut peer, &mut [0u8; 8]).unwrap(),
                0,
                "EOF"
            );
            io.finish();
            assert!(io.next_batch().await.is_none());
        });
    }
}
