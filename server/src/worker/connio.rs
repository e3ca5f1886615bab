//! One connection's outbound side: the frames queued for it, written straight to its
//! socket with non-blocking `sendmsg(2)`.
//!
//! The worker queues frames while it carries out the hub's outputs and flushes every
//! connection that got any once it is done, so everything a connection is owed goes out
//! in one system call, with no task and no buffer of its own. Only when the kernel's
//! send buffer is full does the connection's task wait for the socket to be writable.
//! Frames are whole WebSocket frames, encoded once and shared by every recipient.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use bytes::Bytes;
use hubbub_core::ConnId;

/// How long a closing connection may take to go (the peer answering our close frame, or
/// closing its side) before its socket is shut down. It also covers a peer that reads
/// nothing, whose close frame can never be written.
pub const CLOSE_DEADLINE: Duration = Duration::from_secs(3);

/// Frames passed to one `sendmsg`; more wait for the next call.
const MAX_IOVECS: usize = 64;

/// Frames waiting for the socket. The first is held inline, so a connection owed one
/// frame at a time (the common case) never allocates.
#[derive(Default)]
struct Queue {
    head: Option<Bytes>,
    /// Frames after `head`; allocated only while more than one is waiting.
    // Boxed on purpose: one word instead of four on every idle connection (S3).
    #[allow(clippy::box_collection)]
    more: Option<Box<VecDeque<Bytes>>>,
    /// Bytes of `head` already written.
    head_sent: usize,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    fn push(&mut self, frame: Bytes) {
        if self.head.is_none() {
            self.head = Some(frame);
        } else {
            self.more.get_or_insert_with(Box::default).push_back(frame);
        }
    }

    /// Drops `n` written bytes from the front.
    fn consume(&mut self, mut n: usize) {
        while let Some(head) = &self.head {
            let left = head.len() - self.head_sent;
            if n < left {
                self.head_sent += n;
                return;
            }
            n -= left;
            self.head = self.more.as_mut().and_then(|m| m.pop_front());
            self.head_sent = 0;
        }
        // Idle again: give back the overflow's memory.
        self.more = None;
    }

    fn clear(&mut self) {
        *self = Queue::default();
    }
}

/// What [`ConnIo::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// Bytes now queued for the connection.
    pub queued: usize,
    /// The queue was idle: the connection needs a flush.
    pub needs_flush: bool,
}

/// The outbound queue of one connection.
pub struct ConnIo {
    /// The connection's socket, open for as long as the connection is not done.
    fd: RawFd,
    /// Bytes queued or in flight (saturating; the hub closes a connection long before).
    queued: Cell<u32>,
    conn: ConnId,
    queue: RefCell<Queue>,
    /// The kernel took less than offered: wait for the socket to be writable.
    blocked: Cell<bool>,
    /// The worker's epoll set watches the socket for writability.
    watching_writes: Cell<bool>,
    /// What the worker's send ring is writing (kept alive until the kernel is done).
    in_flight: Cell<Option<Bytes>>,
    /// `in_flight` holds a buffer.
    sending: Cell<bool>,
    /// A close frame is queued: nothing more is accepted.
    closing: Cell<bool>,
    /// The connection is over (its task ended, or the peer cannot be written to).
    done: Cell<bool>,
}

impl ConnIo {
    /// The queue of connection `conn` on socket `fd`.
    pub fn new(fd: RawFd, conn: ConnId) -> ConnIo {
        ConnIo {
            fd,
            conn,
            queue: RefCell::default(),
            queued: Cell::default(),
            blocked: Cell::default(),
            watching_writes: Cell::default(),
            in_flight: Cell::default(),
            sending: Cell::default(),
            closing: Cell::default(),
            done: Cell::default(),
        }
    }

    /// The socket.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The connection.
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// Shuts both directions of the socket down unless the connection is already over:
    /// the socket turns readable and its read sees the end, so the connection ends even
    /// if the peer neither reads nor answers.
    pub fn abort(&self) {
        self.shutdown(libc::SHUT_RDWR);
    }

    fn shutdown(&self, how: libc::c_int) {
        if self.done.get() {
            return;
        }
        // SAFETY: until `done` is set, the worker's session table owns the socket (the
        // session sets `done` before closing it), so `fd` is open and is this connection's socket; all
        // of this runs on one thread, so nothing closes it between the check and the call.
        // shutdown(2) changes the socket's state and touches no memory.
        unsafe {
            libc::shutdown(self.fd, how);
        }
    }

    /// Queues `frame`. Ignored once closing.
    pub fn push(&self, frame: Bytes) -> Pushed {
        if self.closing.get() || self.done.get() {
            return Pushed {
                queued: 0,
                needs_flush: false,
            };
        }
        let mut queue = self.queue.borrow_mut();
        let needs_flush = queue.is_empty() && !self.blocked.get() && !self.sending.get();
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        self.queued.set(self.queued.get().saturating_add(len));
        queue.push(frame);
        Pushed {
            queued: self.queued(),
            needs_flush,
        }
    }

    /// Queues a close frame, after which nothing more is sent. `None` if the connection
    /// was already closing or over; else whether it needs a flush. The caller arms the
    /// [`CLOSE_DEADLINE`] (see `deadlines`): every way a connection closes (the hub's
    /// decision, the peer's close, a codec error) ends the socket by then at the latest.
    pub fn close(&self, frame: Bytes) -> Option<bool> {
        if self.closing.get() || self.done.get() {
            return None;
        }
        let pushed = self.push(frame);
        self.closing.set(true);
        Some(pushed.needs_flush)
    }

    /// Whether a close frame was queued.
    pub fn is_closing(&self) -> bool {
        self.closing.get()
    }

    /// Whether the socket must be writable before flushing again.
    pub fn is_blocked(&self) -> bool {
        self.blocked.get()
    }

    /// Whether epoll watches the socket for writability.
    pub fn watching_writes(&self) -> bool {
        self.watching_writes.get()
    }

    /// Records whether epoll watches the socket for writability.
    pub fn set_watching_writes(&self, on: bool) {
        self.watching_writes.set(on);
    }

    /// The connection is over: nothing more is written. A send in flight keeps its
    /// buffer until the kernel is done with it.
    pub fn finish(&self) {
        self.done.set(true);
        self.queue.borrow_mut().clear();
        self.queued.set(0);
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.queued.get() as usize
    }

    /// Starts a send by the worker's send ring: takes everything queued as one buffer
    /// (a lone frame as it is, several joined) and keeps it until [`sent`](Self::sent).
    /// `None` if a send is already in flight, nothing is queued, or the connection is over.
    pub fn begin_send(&self) -> Option<(*const u8, usize)> {
        if self.sending.get() || self.done.get() {
            return None;
        }
        let mut queue = self.queue.borrow_mut();
        let head = queue.head.take()?;
        let buf = match queue.more.take() {
            None => head.slice(queue.head_sent..),
            Some(more) => {
                let rest: usize = more.iter().map(Bytes::len).sum();
                let mut joined = Vec::with_capacity(head.len() - queue.head_sent + rest);
                joined.extend_from_slice(&head[queue.head_sent..]);
                for frame in more.iter() {
                    joined.extend_from_slice(frame);
                }
                Bytes::from(joined)
            }
        };
        *queue = Queue::default();
        Some(self.keep_in_flight(buf))
    }

    /// Holds `buf` until the kernel is done with it; returns where it is.
    fn keep_in_flight(&self, buf: Bytes) -> (*const u8, usize) {
        let at = (buf.as_ptr(), buf.len());
        self.in_flight.set(Some(buf));
        self.sending.set(true);
        at
    }

    /// The send ring's answer to [`begin_send`](Self::begin_send): `result` is the
    /// kernel's (bytes written, or a negative errno). Returns what is left to send of the
    /// in-flight buffer, if anything.
    pub fn sent(&self, result: i32) -> Option<(*const u8, usize)> {
        let buf = self.in_flight.take()?;
        self.sending.set(false);
        if result < 0 {
            if result == -libc::EINTR || result == -libc::EAGAIN {
                return Some(self.keep_in_flight(buf));
            }
            // The peer is gone: drop what it was owed and end the connection.
            self.queue.borrow_mut().clear();
            self.queued.set(0);
            self.abort();
            return None;
        }
        let n = (result as usize).min(buf.len());
        self.written(n);
        if n < buf.len() {
            return Some(self.keep_in_flight(buf.slice(n..)));
        }
        if self.closing.get() && self.queue.borrow().is_empty() {
            self.shutdown(libc::SHUT_WR);
        }
        None
    }

    /// Whether the send ring has a send of this connection in flight.
    pub fn is_sending(&self) -> bool {
        self.sending.get()
    }

    fn written(&self, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.queued.set(self.queued.get().saturating_sub(n));
    }

    /// Whether frames are queued and not yet handed to a send.
    pub fn has_queued(&self) -> bool {
        !self.queue.borrow().is_empty()
    }

    /// Writes what is queued until it is all out or the kernel takes no more. When the
    /// close frame is out, the write side is shut down (the peer sees the end after it).
    pub fn flush(&self) {
        if self.done.get() {
            return;
        }
        self.blocked.set(false);
        loop {
            let mut queue = self.queue.borrow_mut();
            if queue.is_empty() {
                drop(queue);
                if self.closing.get() {
                    self.shutdown(libc::SHUT_WR);
                }
                return;
            }
            let (offered, result) = self.send(&queue);
            match result {
                Ok(n) => {
                    queue.consume(n);
                    self.written(n);
                    if n < offered {
                        // The send buffer is full: try again when the socket says so.
                        drop(queue);
                        self.blocked.set(true);
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drop(queue);
                    self.blocked.set(true);
                    return;
                }
                Err(_) => {
                    // The peer is gone: drop what it was owed and end the connection.
                    queue.clear();
                    self.queued.set(0);
                    drop(queue);
                    self.abort();
                    return;
                }
            }
        }
    }

    /// One `sendmsg` of up to [`MAX_IOVECS`] queued frames: (bytes offered, result).
    fn send(&self, queue: &Queue) -> (usize, io::Result<usize>) {
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; MAX_IOVECS];
        let mut count = 0;
        let mut offered = 0;
        let head = queue.head.as_ref().map(|h| &h[queue.head_sent..]);
        let more = queue.more.iter().flat_map(|m| m.iter());
        for frame in head.into_iter().chain(more.map(|b| &b[..])) {
            if count == MAX_IOVECS {
                break;
            }
            iov[count] = libc::iovec {
                iov_base: frame.as_ptr() as *mut libc::c_void,
                iov_len: frame.len(),
            };
            count += 1;
            offered += frame.len();
        }
        // SAFETY: an all-zero msghdr is valid (no name, no control data).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = count as _;
        // SAFETY: `fd` is open while the connection is not done (see `shutdown`); every
        // iovec points into a `Bytes` borrowed from the queue, alive and unchanged for the
        // call, and sendmsg only reads them. MSG_DONTWAIT makes the call non-blocking even
        // on a blocking socket; MSG_NOSIGNAL turns a broken pipe into EPIPE, not a signal.
        let n = unsafe { libc::sendmsg(self.fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        let result = if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        };
        (offered, result)
    }
}

#[cfg(test)]
pub(crate) mod tests;
