//! How much of its rooms' history a hub keeps, in bytes across all the rooms it owns.
//!
//! Each room keeps at most `history_size` messages, but rooms are many and messages vary
//! in size (content of control characters is escaped to six bytes each), so a count per
//! room does not bound memory. This ledger records every retained message in the order
//! the hub retained it; over the budget, the hub drops the oldest retained message of
//! any room first. Entries for messages a room already dropped (by count, or because the
//! room was forgotten) are skipped when they surface, and swept out whenever they
//! outnumber the live ones, so the ledger stays proportional to what is retained.

use std::collections::VecDeque;
use std::sync::Arc;

/// What one retained message costs beyond its encoded bytes: its place in the room's
/// ring, the shared buffer's header and its entry here.
pub(crate) const ENTRY_OVERHEAD: usize = 128;

/// One retained message, as the ledger knows it.
#[derive(Debug, Clone)]
pub(crate) struct Retained {
    /// Whose it is: a room (or, in the user index, a user).
    pub key: Arc<str>,
    /// Which incarnation of `key` ([`OwnedRoom::id`](super::rooms::OwnedRoom)): one
    /// forgotten and made again is another.
    pub incarnation: u64,
    /// Its place in the holder's ring (a room's `seq`).
    pub seq: u64,
    pub cost: usize,
}

#[derive(Debug)]
pub(crate) struct Ledger {
    order: VecDeque<Retained>,
    /// Cost of the messages retained now.
    bytes: usize,
    /// Messages retained now.
    len: usize,
    budget: usize,
}

impl Ledger {
    pub fn new(budget: usize) -> Ledger {
        Ledger {
            order: VecDeque::new(),
            bytes: 0,
            len: 0,
            budget,
        }
    }

    /// A message was retained.
    pub fn retained(&mut self, entry: Retained) {
        self.bytes += entry.cost;
        self.len += 1;
        self.order.push_back(entry);
    }

    /// A retained message (of this cost) was dropped by its room.
    pub fn released(&mut self, cost: usize) {
        self.bytes = self.bytes.saturating_sub(cost);
        self.len = self.len.saturating_sub(1);
    }

    /// Drops the oldest retained messages until within the budget. For each oldest
    /// entry, `drop_through` drops its holder's messages up to and including it (none if
    /// the entry is stale: the holder already dropped it, or is another incarnation) and
    /// returns the costs of what it dropped.
    pub fn trim(&mut self, mut drop_through: impl FnMut(&Retained, &mut dyn FnMut(usize))) {
        while self.bytes > self.budget {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            let (mut bytes, mut len) = (self.bytes, self.len);
            drop_through(&oldest, &mut |cost| {
                bytes = bytes.saturating_sub(cost);
                len = len.saturating_sub(1);
            });
            (self.bytes, self.len) = (bytes, len);
        }
    }

    /// Cost of what is retained.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries held, live and stale.
    #[cfg(test)]
    pub fn entries(&self) -> usize {
        self.order.len()
    }

    /// Sweeps out stale entries once they outnumber the live ones.
    pub fn compact(&mut self, is_live: impl FnMut(&Retained) -> bool) {
        if self.order.len() > 2 * self.len + 64 {
            self.order.retain(is_live);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, cost: usize) -> Retained {
        Retained {
            key: Arc::from("r"),
            incarnation: 1,
            seq,
            cost,
        }
    }

    #[test]
    fn counts_what_is_retained_and_compacts_what_is_not() {
        let mut ledger = Ledger::new(250);
        for seq in 0..3 {
            ledger.retained(entry(seq, 100));
        }
        let mut offered = Vec::new();
        ledger.trim(|e, release| {
            offered.push(e.seq);
            release(e.cost);
        });
        assert_eq!(offered, [0], "the oldest, until within the budget");
        assert_eq!(ledger.bytes(), 200);
        // 200 more retained and dropped by their room: stale entries pile up until swept.
        for seq in 3..203 {
            ledger.retained(entry(seq, 1));
            ledger.released(1);
        }
        ledger.compact(|e| e.seq < 3);
        assert_eq!(ledger.entries(), 2, "only the live ones are left");
        assert_eq!(ledger.bytes(), 200);
    }
}
