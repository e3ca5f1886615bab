//! The worker's send ring: an io_uring of its own through which every connection's
//! queued frames are written, all of one flush submitted with one system call.
//!
//! Writing with one `send(2)` per connection costs a system call per recipient; a
//! message to a room of a thousand is a thousand calls. Here the worker queues one send
//! per connection owed frames and enters the kernel once. A send to a full socket simply
//! stays in flight (the kernel retries it when the socket drains), so no writability
//! wait is needed. The ring's descriptor sits in the worker's epoll set: completions wake
//! the reactor like any ready socket.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use io_uring::{opcode, types, IoUring};

use super::outbox::Outbox;

/// Submission queue entries; a flush with more sends submits in several calls.
const SQ_ENTRIES: u32 = 1024;
/// Completion queue entries: room for a send in flight on every connection a process
/// can hold (the kernel keeps overflow as well, this only avoids relying on it).
const CQ_ENTRIES: u32 = 32 * 1024;
/// `user_data` of cancellations (at drop), told apart from slots.
const CANCEL: u64 = u64::MAX;

/// An io_uring for sends, and the connections with a send in flight.
pub struct SendRing {
    ring: RefCell<IoUring>,
    /// The connection of each send in flight, by slot (the entry's `user_data`); the
    /// `Rc` keeps the connection's in-flight buffer alive until the kernel is done.
    slots: RefCell<Vec<Option<Rc<Outbox>>>>,
    free: RefCell<Vec<u32>>,
    in_flight: Cell<usize>,
    /// Entries pushed since the last submit.
    unsubmitted: Cell<usize>,
    /// Completions taken from the queue, reused from reap to reap.
    reaped: RefCell<Vec<(u64, i32)>>,
    /// Connections whose asked-for written notice came due in a reap.
    written: RefCell<Vec<hubbub_core::ConnId>>,
}

impl SendRing {
    /// A new ring; fails where io_uring is unavailable (the worker then writes with
    /// `send`).
    pub fn new() -> io::Result<SendRing> {
        let ring = IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .build(SQ_ENTRIES)?;
        Ok(SendRing {
            ring: RefCell::new(ring),
            slots: RefCell::default(),
            free: RefCell::default(),
            in_flight: Cell::new(0),
            unsubmitted: Cell::new(0),
            reaped: RefCell::default(),
            written: RefCell::default(),
        })
    }

    /// The ring's descriptor: readable when sends have completed.
    pub fn fd(&self) -> RawFd {
        self.ring.borrow().as_raw_fd()
    }

    /// Sends in flight (for tests: the ring itself reads the cell).
    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.in_flight.get()
    }

    /// Queues a send of everything `io` has queued, unless one is in flight already.
    /// Nothing reaches the kernel before [`submit`](Self::submit).
    pub fn start(&self, io: &Rc<Outbox>) {
        if let Some(buf) = io.begin_send() {
            self.push(io, buf);
        }
    }

    fn push(&self, io: &Rc<Outbox>, (ptr, len): (*const u8, usize)) {
        let slot = match self.free.borrow_mut().pop() {
            Some(slot) => {
                self.slots.borrow_mut()[slot as usize] = Some(io.clone());
                slot
            }
            None => {
                let mut slots = self.slots.borrow_mut();
                slots.push(Some(io.clone()));
                (slots.len() - 1) as u32
            }
        };
        self.in_flight.set(self.in_flight.get() + 1);
        let entry = opcode::Send::new(types::Fd(io.fd()), ptr, len as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(u64::from(slot));
        let mut ring = self.ring.borrow_mut();
        loop {
            // SAFETY: the entry points at `len` bytes of the connection's in-flight
            // buffer, which `Outbox` keeps, unchanged, until `sent` is called with this
            // send's completion; the slot's `Rc` keeps the `Outbox` alive until then, and
            // dropping the ring first cancels and waits for every send in flight.
            if unsafe { ring.submission().push(&entry) }.is_ok() {
                self.unsubmitted.set(self.unsubmitted.get() + 1);
                return;
            }
            self.unsubmitted.set(0);
            // The submission queue is full: hand it to the kernel and go on.
            if let Err(e) = ring.submit() {
                tracing::warn!(error = %e, "send ring: submit failed");
            }
        }
    }

    /// Hands every queued send to the kernel in one call.
    pub fn submit(&self) {
        if self.unsubmitted.replace(0) == 0 {
            return;
        }
        let ring = self.ring.borrow();
        // EBUSY (completion queue overflowing) clears once completions are reaped, which
        // the reactor does when the ring's descriptor turns readable.
        if let Err(e) = ring.submit() {
            tracing::debug!(error = %e, "send ring: submit deferred");
        }
    }

    /// Takes finished sends: starts the rest of a partial send, or the next batch of a
    /// connection that queued more meanwhile. Call [`submit`](Self::submit) after.
    pub fn reap(&self) {
        // Taken out first: finishing a send may push the next one onto the ring.
        let mut done = std::mem::take(&mut *self.reaped.borrow_mut());
        done.extend(
            self.ring
                .borrow_mut()
                .completion()
                .map(|c| (c.user_data(), c.result())),
        );
        for &(slot, result) in &done {
            if slot == CANCEL {
                continue;
            }
            let Some(io) = self
                .slots
                .borrow_mut()
                .get_mut(slot as usize)
                .and_then(Option::take)
            else {
                continue;
            };
            self.free.borrow_mut().push(slot as u32);
            self.in_flight.set(self.in_flight.get() - 1);
            match io.sent(result) {
                Some(rest) => self.push(&io, rest),
                None if io.has_queued() => self.start(&io),
                None if io.take_written_notice() => self.written.borrow_mut().push(io.conn()),
                None => {}
            }
        }
        done.clear();
        *self.reaped.borrow_mut() = done;
    }
}

impl SendRing {
    /// Moves the connections whose written notice came due into `into`.
    pub fn take_written(&self, into: &mut Vec<hubbub_core::ConnId>) {
        into.append(&mut self.written.borrow_mut());
    }
}

impl Drop for SendRing {
    /// Cancels the sends in flight and waits for the kernel to let go of their buffers.
    fn drop(&mut self) {
        let slots: Vec<u64> = self
            .slots
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| i as u64)
            .collect();
        {
            let mut ring = self.ring.borrow_mut();
            for slot in slots {
                let cancel = opcode::AsyncCancel::new(slot).build().user_data(CANCEL);
                // SAFETY: a cancellation carries no buffer.
                while unsafe { ring.submission().push(&cancel) }.is_err() {
                    let _ = ring.submit();
                }
            }
        }
        // Bounded: a cancelled send completes at once; the bound only guards a kernel bug.
        for _ in 0..10_000 {
            if self.in_flight.get() == 0 {
                break;
            }
            let _ = self.ring.borrow().submit_and_wait(1);
            let done: Vec<u64> = {
                let mut ring = self.ring.borrow_mut();
                ring.completion().map(|c| c.user_data()).collect()
            };
            for slot in done {
                if slot != CANCEL {
                    if let Some(io) = self
                        .slots
                        .borrow_mut()
                        .get_mut(slot as usize)
                        .and_then(Option::take)
                    {
                        io.finish();
                        self.in_flight.set(self.in_flight.get() - 1);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
