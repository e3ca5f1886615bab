//! Closing connections and their close deadline ([`CLOSE_DEADLINE`] after the close
//! frame was queued): a peer that has not gone by then has its socket shut down.
//!
//! Every deadline is the same length from the moment it is armed, so arming order is
//! expiry order and a queue is the whole timer: no task and no timer entry per closing
//! connection (a server closing 18,000 connections at once holds 32 bytes for each).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use super::outbox::{Outbox, CLOSE_DEADLINE};

/// The closing connections of one worker, oldest first.
#[derive(Default)]
pub struct CloseDeadlines {
    queue: RefCell<VecDeque<(Instant, Rc<Outbox>)>>,
}

impl CloseDeadlines {
    /// Starts `io`'s deadline at `now`.
    pub fn arm(&self, now: Instant, io: Rc<Outbox>) {
        self.queue
            .borrow_mut()
            .push_back((now + CLOSE_DEADLINE, io));
    }

    /// Shuts down every connection whose deadline has passed by `now` (a no-op for one
    /// that has already ended); returns how many were due.
    pub fn expire(&self, now: Instant) -> usize {
        let mut due = 0;
        loop {
            let io = {
                let mut queue = self.queue.borrow_mut();
                match queue.front() {
                    Some((deadline, _)) if *deadline <= now => queue.pop_front().map(|(_, io)| io),
                    _ => None,
                }
            };
            let Some(io) = io else { return due };
            io.abort();
            due += 1;
        }
    }

    /// Connections waiting for their deadline (for tests: nothing else needs to know).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.queue.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::engine::test_support::{conn, pair};

    #[test]
    fn a_peer_that_never_answers_is_cut_off_at_its_deadline_and_not_before() {
        let deadlines = CloseDeadlines::default();
        let t0 = Instant::now();
        let (first, mut first_peer) = pair();
        let (second, mut second_peer) = pair();
        let a = Rc::new(Outbox::new(first.as_raw_fd(), conn()));
        let b = Rc::new(Outbox::new(second.as_raw_fd(), conn()));
        // Close frames never flushed: as when the peer reads nothing.
        assert_eq!(a.close(Bytes::from_static(b"X")), Some(true));
        assert_eq!(a.close(Bytes::from_static(b"Y")), None, "armed once");
        deadlines.arm(t0, a.clone());
        b.close(Bytes::from_static(b"X"));
        deadlines.arm(t0 + Duration::from_secs(1), b.clone());

        assert_eq!(
            deadlines.expire(t0 + CLOSE_DEADLINE - Duration::from_millis(1)),
            0
        );
        assert_eq!(deadlines.expire(t0 + CLOSE_DEADLINE), 1);
        assert_eq!(
            first_peer.read(&mut [0u8; 8]).unwrap(),
            0,
            "EOF for the first"
        );
        second_peer
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        assert!(second_peer.read(&mut [0u8; 8]).is_err(), "the second waits");
        assert_eq!(deadlines.len(), 1);
        assert_eq!(
            deadlines.expire(t0 + CLOSE_DEADLINE + Duration::from_secs(1)),
            1
        );
        assert_eq!(second_peer.read(&mut [0u8; 8]).unwrap(), 0);
        assert_eq!(deadlines.len(), 0);
        a.finish();
        b.finish();
    }
}
