//! One connection's outbound side: the frames queued for it and the one send in flight.
//!
//! The worker queues frames while it carries out the hub's outputs; once it is done,
//! every connection owed any gets one send of all of them ([`Outbox::begin_send`]: a lone
//! frame as it is, several joined). The send goes through the worker's send ring, or,
//! without one, straight to the socket ([`Outbox::send_now`]); either way the buffer is
//! kept until the kernel has taken all of it, and frames queued meanwhile wait for the
//! next send. Frames are whole WebSocket frames, encoded once and shared by every
//! recipient; an idle connection holds no buffer.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::time::Duration;

use bytes::Bytes;
use hubbub_core::ConnId;

/// How long a closing connection may take to go (the peer answering our close frame, or
/// closing its side) before its socket is shut down. It also covers a peer that reads
/// nothing, whose close frame can never be written.
pub const CLOSE_DEADLINE: Duration = Duration::from_secs(3);

/// Most bytes one send offers (the kernel's answer is an `i32`).
const MAX_SEND: usize = i32::MAX as usize;

/// Frames waiting for the next send. The first is held inline, so a connection owed one
/// frame at a time (the common case) never allocates.
#[derive(Default)]
struct Queue {
    head: Option<Bytes>,
    /// Frames after `head`; allocated only while more than one is waiting.
    // Boxed on purpose: one word instead of four on every idle connection (S3).
    #[allow(clippy::box_collection)]
    more: Option<Box<VecDeque<Bytes>>>,
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

    /// Everything queued as one buffer (a lone frame as it is), leaving the queue empty
    /// and holding no memory.
    fn take_all(&mut self) -> Option<Bytes> {
        let head = self.head.take()?;
        let Some(more) = self.more.take() else {
            return Some(head);
        };
        let len = head.len() + more.iter().map(Bytes::len).sum::<usize>();
        let mut joined = Vec::with_capacity(len);
        joined.extend_from_slice(&head);
        for frame in more.iter() {
            joined.extend_from_slice(frame);
        }
        Some(Bytes::from(joined))
    }
}

/// What [`Outbox::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// Bytes now queued for the connection.
    pub queued: usize,
    /// The queue was idle: the connection needs a flush.
    pub needs_flush: bool,
}

/// The outbound queue of one connection.
pub struct Outbox {
    /// The connection's socket, open for as long as the connection is not done.
    fd: RawFd,
    /// Bytes queued or in flight (saturating; the hub closes a connection long before).
    queued: Cell<u32>,
    conn: ConnId,
    queue: RefCell<Queue>,
    /// The worker's epoll set watches the socket for writability (no send ring only).
    watching_writes: Cell<bool>,
    /// What is being sent, kept alive until the kernel has taken it all.
    in_flight: Cell<Option<Bytes>>,
    /// `in_flight` holds a buffer (a `Cell` cannot be looked into without a take).
    sending: Cell<bool>,
    /// A close frame is queued: nothing more is accepted.
    closing: Cell<bool>,
    /// The connection is over: its session ended and its socket is closed.
    done: Cell<bool>,
    /// The hub asked to hear when everything queued so far is written.
    notify_written: Cell<bool>,
}

impl Outbox {
    /// The queue of connection `conn` on socket `fd`.
    pub fn new(fd: RawFd, conn: ConnId) -> Outbox {
        Outbox {
            fd,
            conn,
            queue: RefCell::default(),
            queued: Cell::default(),
            watching_writes: Cell::default(),
            in_flight: Cell::default(),
            sending: Cell::default(),
            closing: Cell::default(),
            done: Cell::default(),
            notify_written: Cell::default(),
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
        let needs_flush = queue.is_empty() && !self.sending.get();
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

    /// Asks for [`take_written_notice`](Self::take_written_notice) to be true once all
    /// that is queued now has been written.
    pub fn notify_when_written(&self) {
        self.notify_written.set(true);
    }

    /// True once, when a notice was asked for and nothing is queued or in flight any
    /// more (and the connection is not over).
    pub fn take_written_notice(&self) -> bool {
        let due = self.notify_written.get()
            && !self.done.get()
            && !self.sending.get()
            && self.queue.borrow().is_empty();
        if due {
            self.notify_written.set(false);
        }
        due
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
        self.drop_queued();
    }

    /// Whether the connection is over (its socket closed).
    pub fn is_done(&self) -> bool {
        self.done.get()
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.queued.get() as usize
    }

    /// Starts a send: takes everything queued as one buffer and keeps it until
    /// [`sent`](Self::sent) says the kernel has it all. `None` if a send is in flight
    /// already, nothing is queued, or the connection is over.
    pub fn begin_send(&self) -> Option<(*const u8, usize)> {
        if self.sending.get() || self.done.get() {
            return None;
        }
        let buf = self.queue.borrow_mut().take_all()?;
        Some(self.keep_in_flight(buf))
    }

    /// Where the send in flight is, if there is one and the socket is still open.
    fn in_flight_at(&self) -> Option<(*const u8, usize)> {
        if self.done.get() {
            return None;
        }
        let buf = self.in_flight.take()?;
        let at = (buf.as_ptr(), buf.len().min(MAX_SEND));
        self.in_flight.set(Some(buf));
        Some(at)
    }

    /// Holds `buf` until the kernel is done with it; returns where it is.
    fn keep_in_flight(&self, buf: Bytes) -> (*const u8, usize) {
        let at = (buf.as_ptr(), buf.len().min(MAX_SEND));
        self.in_flight.set(Some(buf));
        self.sending.set(true);
        at
    }

    /// The kernel's answer to a send of the buffer in flight: bytes written, or a
    /// negative errno. Returns what is left of it to send, if anything (after a partial
    /// send, EINTR or EAGAIN). An error ends the connection; once the close frame is
    /// out, the write side is shut down (the peer sees the end after it).
    pub fn sent(&self, result: i32) -> Option<(*const u8, usize)> {
        let buf = self.in_flight.take()?;
        self.sending.set(false);
        if self.done.get() {
            // Its socket is closed and the number may already be another connection's:
            // the rest of the buffer must not be sent anywhere.
            return None;
        }
        if result < 0 {
            if result == -libc::EINTR || result == -libc::EAGAIN {
                return Some(self.keep_in_flight(buf));
            }
            // The peer is gone: drop what it was owed and end the connection.
            self.drop_queued();
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

    /// Whether a send is in flight: the ring's, or, without a ring, one the socket has
    /// not taken all of yet (its writability is then watched).
    pub fn is_sending(&self) -> bool {
        self.sending.get()
    }

    fn drop_queued(&self) {
        *self.queue.borrow_mut() = Queue::default();
        self.queued.set(0);
    }

    fn written(&self, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.queued.set(self.queued.get().saturating_sub(n));
    }

    /// Whether frames are queued and not yet handed to a send.
    pub fn has_queued(&self) -> bool {
        !self.queue.borrow().is_empty()
    }

    /// Sends straight to the socket (for a worker without a send ring): what is in
    /// flight, then what is queued, until all is out or the socket is full; then the
    /// rest stays in flight until this is called again when the socket is writable.
    pub fn send_now(&self) {
        let mut next = self.in_flight_at().or_else(|| self.begin_send());
        while let Some((ptr, len)) = next {
            // SAFETY: `fd` is open while the connection is not done (checked by
            // `in_flight_at` and `begin_send`; see `shutdown`); `ptr` and `len` describe
            // the in-flight `Bytes`, which this `Outbox` keeps unchanged during the call,
            // and send(2) only reads it. MSG_DONTWAIT: never block the worker, even on a
            // blocking socket; MSG_NOSIGNAL: a broken pipe is EPIPE, not a signal.
            let n = unsafe {
                libc::send(
                    self.fd,
                    ptr.cast(),
                    len,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            // `len` is at most MAX_SEND, so a count fits an i32.
            let result = if n >= 0 {
                n as i32
            } else {
                -std::io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO)
            };
            if result == -libc::EAGAIN {
                // The socket is full: the buffer stays in flight.
                return;
            }
            next = self.sent(result).or_else(|| self.begin_send());
        }
    }
}

#[cfg(test)]
mod tests;
