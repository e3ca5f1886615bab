//! One connection's outbound side, shared between the worker (which queues frames) and
//! the connection's writer task (which writes them).
//!
//! Frames are whole WebSocket frames, already encoded and shared between recipients;
//! everything queued when the writer wakes goes out in one write.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::os::fd::RawFd;
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::Bytes;

/// How long a connection told to close may take to go before its socket is shut down:
/// past the close linger, so a peer that answers our close frame is never cut short.
pub const CLOSE_DEADLINE: Duration = Duration::from_secs(3);

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

    /// Queues a close frame, after which nothing more is sent.
    pub fn close(&self, frame: Bytes) {
        if self.closing.get() || self.done.get() {
            return;
        }
        self.push(frame);
        self.closing.set(true);
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

    /// Waits for frames; `None` when the connection is over and nothing is left to write.
    /// Takes everything queued, to be written at once.
    pub async fn next_batch(&self) -> Option<Vec<Bytes>> {
        poll_fn(|cx| {
            let mut q = self.queue.borrow_mut();
            if !q.is_empty() {
                return Poll::Ready(Some(q.drain(..).collect()));
            }
            if self.done.get() {
                return Poll::Ready(None);
            }
            self.writer.set(Some(cx.waker().clone()));
            Poll::Pending
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
    fn batches_and_closing() {
        let io = ConnIo::new(-1);
        assert_eq!(io.push(Bytes::from_static(b"ab")), 2);
        assert_eq!(io.push(Bytes::from_static(b"cde")), 5);
        io.close(Bytes::from_static(b"X"));
        assert_eq!(
            io.push(Bytes::from_static(b"late")),
            0,
            "nothing after the close frame"
        );
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .unwrap();
        let batch = rt.block_on(io.next_batch()).unwrap();
        assert_eq!(
            batch.iter().map(|b| &b[..]).collect::<Vec<_>>(),
            [&b"ab"[..], b"cde", b"X"]
        );
        io.written(6);
        io.finish();
        assert!(rt.block_on(io.next_batch()).is_none());
    }
}
