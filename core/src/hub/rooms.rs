//! The two views of a room: the members a worker delivers to (`LocalRoom`), and the state
//! its owner keeps (`OwnedRoom`: sequence, history, who is where).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use super::output::{ConnId, PageCursor};
use super::retention::{Ledger, Retained, ENTRY_OVERHEAD};
use crate::time::UnixMillis;

/// Which of a room's members a frame is for: chat goes to all; v1 gets `join`/`leave`,
/// v2 its coalesced `presence`, `typing` and `read` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    All,
    V1,
    V2,
}

impl Audience {
    pub fn includes(self, v2: bool) -> bool {
        match self {
            Audience::All => true,
            Audience::V1 => !v2,
            Audience::V2 => v2,
        }
    }
}

/// Live members of one protocol, with the shared copy handed out with each delivery:
/// rebuilt only after a membership change, so a broadcast costs one reference count,
/// not a copy.
#[derive(Debug, Default)]
struct Members {
    list: Vec<ConnId>,
    snapshot: Option<Arc<[ConnId]>>,
}

/// The live members of one room on this worker, plus those still waiting for their backlog.
#[derive(Debug, Default)]
pub(crate) struct LocalRoom {
    v1: Members,
    v2: Members,
    /// Connections admitted but not yet live (their backlog has not come back, or is
    /// still being streamed to them).
    pub pending: u32,
    /// Pending connections whose replay is being streamed: live messages wait behind it
    /// (in the hub's record of the connection), so they are not among the members yet.
    pub replaying: Vec<ConnId>,
}

impl LocalRoom {
    fn members(&mut self, v2: bool) -> &mut Members {
        if v2 {
            &mut self.v2
        } else {
            &mut self.v1
        }
    }

    /// Adds a live member; returns its position (among those of its protocol) for O(1)
    /// removal.
    pub fn push(&mut self, conn: ConnId, v2: bool) -> u32 {
        let m = self.members(v2);
        m.list.push(conn);
        m.snapshot = None;
        (m.list.len() - 1) as u32
    }

    /// Removes the member at `pos`; returns the member moved into `pos`, if any, so the
    /// caller can update its position.
    pub fn swap_remove(&mut self, pos: u32, v2: bool) -> Option<ConnId> {
        let m = self.members(v2);
        let pos = pos as usize;
        if pos >= m.list.len() {
            return None;
        }
        m.list.swap_remove(pos);
        m.snapshot = None;
        m.list.get(pos).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.v1.list.is_empty() && self.v2.list.is_empty() && self.pending == 0
    }

    /// The live members of one protocol, shared.
    pub fn recipients(&mut self, v2: bool) -> Option<Arc<[ConnId]>> {
        let m = self.members(v2);
        if m.list.is_empty() {
            return None;
        }
        Some(
            m.snapshot
                .get_or_insert_with(|| Arc::from(&m.list[..]))
                .clone(),
        )
    }
}

/// One retained message.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub seq: u64,
    pub frame: Bytes,
}

impl Entry {
    /// What retaining it costs against `MAX_HISTORY_BYTES`.
    pub fn cost(&self) -> usize {
        self.frame.len() + super::retention::ENTRY_OVERHEAD
    }
}

/// A user connected to a room (through one connection or several).
#[derive(Debug, Clone)]
pub(crate) struct RoomUser {
    /// Their connections to the room, on every worker.
    pub connections: u32,
    /// The display name of their first connection.
    pub username: Arc<str>,
    /// When their first connection joined.
    pub since: UnixMillis,
}

/// A room as its owner keeps it.
#[derive(Debug)]
pub(crate) struct OwnedRoom {
    /// Tells this room apart from an earlier one of the same name (evicted, then made
    /// again), so what the hub remembers of the earlier one's history is not taken for it.
    pub id: u64,
    /// The last `seq` assigned (0 before the first message).
    pub last_seq: u64,
    pub history: VecDeque<Entry>,
    /// Members per worker, indexed by worker id: v1, v2.
    pub per_worker: Vec<[u32; 2]>,
    /// Opaque; changes whenever `seq` may start again (docs/PROTOCOL.md §7).
    pub epoch: Box<str>,
    /// v2 presence, typing and read markers, made on first use.
    pub signals: Option<Box<super::signals::Signals>>,
    /// Distinct users connected to it, by user id.
    pub users: HashMap<Arc<str>, RoomUser>,
    pub connections: u32,
    pub messages: u64,
    /// Non-zero while the room has no connection: its place in the idle queue.
    pub idle_mark: u64,
    /// While the durable store is being asked for the room's state: what arrived meanwhile.
    pub loading: Option<Vec<super::peer::PeerMsg>>,
}

impl OwnedRoom {
    pub fn new(id: u64, workers: usize, epoch: Box<str>) -> Self {
        OwnedRoom {
            id,
            last_seq: 0,
            history: VecDeque::new(),
            per_worker: vec![[0; 2]; workers],
            epoch,
            signals: None,
            users: HashMap::new(),
            connections: 0,
            messages: 0,
            idle_mark: 0,
            loading: None,
        }
    }

    /// Retains `entry`, dropping the oldest beyond `capacity` messages; returns the
    /// dropped one (or `entry` itself when nothing is kept).
    pub fn append(&mut self, entry: Entry, capacity: usize) -> Option<Entry> {
        if capacity == 0 {
            return Some(entry);
        }
        let dropped = if self.history.len() >= capacity {
            self.history.pop_front()
        } else {
            None
        };
        self.history.push_back(entry);
        dropped
    }

    /// The newest `n` retained messages, oldest first.
    pub fn newest(&self, n: usize) -> impl Iterator<Item = &Entry> {
        self.history
            .iter()
            .skip(self.history.len().saturating_sub(n))
    }

    /// A page of at most `n` retained messages, oldest first: the newest, the newest
    /// below a `seq`, or the oldest above one.
    pub fn page(&self, cursor: PageCursor, n: usize) -> impl Iterator<Item = &Entry> {
        let len = self.history.len();
        let (start, end) = match cursor {
            PageCursor::Newest => (len.saturating_sub(n), len),
            PageCursor::Before(b) => {
                let end = self.history.partition_point(|e| e.seq < b);
                (end.saturating_sub(n), end)
            }
            PageCursor::After(a) => {
                let start = self.history.partition_point(|e| e.seq <= a);
                (start, start.saturating_add(n).min(len))
            }
        };
        self.history.range(start..end)
    }

    /// Whether the retained history holds every message after `since`: replaying it
    /// then misses nothing.
    pub fn covers(&self, since: u64) -> bool {
        match self.history.front() {
            _ if since >= self.last_seq => since == self.last_seq,
            Some(oldest) => since + 1 >= oldest.seq,
            None => false,
        }
    }

    /// Connections of v2 subscribers, on every worker.
    pub fn v2_members(&self) -> u32 {
        self.per_worker.iter().map(|w| w[1]).sum()
    }

    /// Every retained message with `seq > since`, oldest first. Found by search, not
    /// by arithmetic: history loaded from a store may have gaps in `seq`.
    pub fn after(&self, since: u64) -> impl Iterator<Item = &Entry> {
        let skip = self.history.partition_point(|e| e.seq <= since);
        self.history.iter().skip(skip)
    }
}

/// A fresh room's epoch: 48 random bits, as 12 hex digits.
pub(crate) fn random_epoch(rng: &mut crate::rand::SplitMix64) -> Box<str> {
    format!("{:012x}", rng.next_u64() & 0xffff_ffff_ffff).into()
}

/// The epoch of a room whose `seq` carries on from the durable store: the same on every
/// start, as its `seq` is.
pub(crate) fn durable_epoch() -> Box<str> {
    "d1".into()
}

/// Each user's newest messages across the rooms this hub owns, for
/// `/api/users/{id}/messages`. Bounded in messages per user, in users kept, and in bytes:
/// its frames are shared with the rooms' history, but outlive it once the rooms have
/// dropped them, so over `budget` the oldest indexed message of any user goes first.
#[derive(Debug)]
pub(crate) struct UserIndex {
    per_user: HashMap<Arc<str>, UserRing>,
    /// Users (and their ring's incarnation) in the order they were first indexed; the
    /// oldest go first at the bound. A user whose ring emptied is forgotten, so entries
    /// of another incarnation are stale, and swept like the ledger's.
    order: VecDeque<(Arc<str>, u64)>,
    per_user_cap: usize,
    users_cap: usize,
    ledger: Ledger,
    /// Numbers the indexed messages, and the users' incarnations.
    next_serial: u64,
}

#[derive(Debug)]
struct UserRing {
    incarnation: u64,
    /// (serial, when, frame), oldest first.
    messages: VecDeque<(u64, UnixMillis, Bytes)>,
}

fn cost(frame: &Bytes) -> usize {
    frame.len() + ENTRY_OVERHEAD
}

impl UserIndex {
    pub fn new(per_user_cap: usize, users_cap: usize, budget: usize) -> Self {
        UserIndex {
            per_user: HashMap::new(),
            order: VecDeque::new(),
            per_user_cap,
            users_cap,
            ledger: Ledger::new(budget),
            next_serial: 0,
        }
    }

    pub fn push(&mut self, user: &Arc<str>, at: UnixMillis, frame: Bytes) {
        if self.per_user_cap == 0 || self.users_cap == 0 {
            return;
        }
        self.next_serial += 1;
        let serial = self.next_serial;
        if !self.per_user.contains_key(&**user) {
            while self.per_user.len() >= self.users_cap {
                let Some((old, incarnation)) = self.order.pop_front() else {
                    break;
                };
                if self
                    .per_user
                    .get(&old)
                    .is_some_and(|r| r.incarnation == incarnation)
                {
                    if let Some(ring) = self.per_user.remove(&old) {
                        for (_, _, f) in &ring.messages {
                            self.ledger.released(cost(f));
                        }
                    }
                }
            }
            self.order.push_back((user.clone(), serial));
            let ring = UserRing {
                incarnation: serial,
                messages: VecDeque::new(),
            };
            self.per_user.insert(user.clone(), ring);
        }
        let Some(ring) = self.per_user.get_mut(&**user) else {
            return;
        };
        if ring.messages.len() >= self.per_user_cap {
            if let Some((_, _, f)) = ring.messages.pop_front() {
                self.ledger.released(cost(&f));
            }
        }
        self.ledger.retained(Retained {
            key: user.clone(),
            incarnation: ring.incarnation,
            seq: serial,
            cost: cost(&frame),
        });
        ring.messages.push_back((serial, at, frame));
        let per_user = &mut self.per_user;
        self.ledger.trim(|oldest, release| {
            let Some(ring) = per_user.get_mut(&*oldest.key) else {
                return;
            };
            if ring.incarnation != oldest.incarnation {
                return;
            }
            while ring.messages.front().is_some_and(|m| m.0 <= oldest.seq) {
                if let Some((_, _, f)) = ring.messages.pop_front() {
                    release(cost(&f));
                }
            }
            // An emptied ring keeps its capacity: forget the user rather than hold it
            // (user ids keep arriving; this is what the soak found growing).
            if ring.messages.is_empty() {
                per_user.remove(&*oldest.key);
            }
        });
        if self.order.len() > 2 * self.per_user.len() + 64 {
            let per_user = &self.per_user;
            self.order
                .retain(|(u, inc)| per_user.get(u).is_some_and(|r| r.incarnation == *inc));
        }
        let per_user = &self.per_user;
        self.ledger.compact(|e| {
            per_user.get(&*e.key).is_some_and(|r| {
                r.incarnation == e.incarnation && r.messages.front().is_some_and(|m| m.0 <= e.seq)
            })
        });
    }

    pub fn newest(&self, user: &str, n: usize) -> Vec<(UnixMillis, Bytes)> {
        self.per_user
            .get(user)
            .map(|r| {
                r.messages
                    .iter()
                    .skip(r.messages.len().saturating_sub(n))
                    .map(|(_, at, f)| (*at, f.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Bytes the index holds (each message's frame plus its bookkeeping).
    pub fn bytes(&self) -> usize {
        self.ledger.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            frame: Bytes::new(),
        }
    }

    #[test]
    fn history_ring_and_since() {
        let mut r = OwnedRoom::new(0, 1, "e".into());
        for s in 1..=10 {
            r.append(entry(s), 4);
        }
        let seqs = |it: &mut dyn Iterator<Item = &Entry>| it.map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(&mut r.newest(2)), [9, 10]);
        assert_eq!(seqs(&mut r.newest(50)), [7, 8, 9, 10]);
        assert_eq!(seqs(&mut r.after(8)), [9, 10]);
        assert_eq!(
            seqs(&mut r.after(0)),
            [7, 8, 9, 10],
            "older than retained: all retained"
        );
        assert_eq!(seqs(&mut r.after(10)), Vec::<u64>::new());
        assert_eq!(seqs(&mut r.after(u64::MAX)), Vec::<u64>::new());
    }

    #[test]
    fn coverage_of_a_since() {
        let mut r = OwnedRoom::new(0, 1, "e".into());
        assert!(r.covers(0), "nothing sent, nothing missed");
        assert!(!r.covers(1), "a since ahead of the room is a lie");
        for s in 1..=10 {
            r.append(entry(s), 4);
            r.last_seq = s;
        }
        assert!(r.covers(10) && r.covers(6) && !r.covers(5));
        assert!(!r.covers(11));
        r.history.clear();
        assert!(r.covers(10) && !r.covers(9), "nothing retained");
    }

    #[test]
    fn since_finds_its_place_in_history_with_gaps() {
        let mut r = OwnedRoom::new(0, 1, "e".into());
        for s in [3, 4, 9, 10, 15] {
            r.append(entry(s), 10);
        }
        let seqs = |it: &mut dyn Iterator<Item = &Entry>| it.map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(&mut r.after(4)), [9, 10, 15]);
        assert_eq!(seqs(&mut r.after(5)), [9, 10, 15], "inside a gap");
        assert_eq!(seqs(&mut r.after(10)), [15]);
        assert_eq!(seqs(&mut r.after(2)), [3, 4, 9, 10, 15]);
    }

    #[test]
    fn local_room_positions() {
        let mut room = LocalRoom::default();
        let c = |i| ConnId {
            index: i,
            generation: 0,
        };
        assert_eq!(room.push(c(0), false), 0);
        assert_eq!(room.push(c(1), false), 1);
        assert_eq!(room.push(c(2), false), 2);
        assert_eq!(room.push(c(3), true), 0, "v2 members are counted apart");
        let first = room.recipients(false).unwrap();
        assert!(
            Arc::ptr_eq(&first, &room.recipients(false).unwrap()),
            "shared until a change"
        );
        assert_eq!(room.swap_remove(0, false), Some(c(2)));
        assert_eq!(&*room.recipients(false).unwrap(), &[c(2), c(1)]);
        assert_eq!(&*room.recipients(true).unwrap(), &[c(3)]);
        assert_eq!(room.swap_remove(1, false), None);
        assert_eq!(room.swap_remove(0, true), None);
        assert!(room.recipients(true).is_none());
        assert!(!room.is_empty());
    }

    #[test]
    fn user_index_bounds() {
        let mut idx = UserIndex::new(2, 2, usize::MAX);
        let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) = ("a".into(), "b".into(), "c".into());
        for i in 0..3 {
            idx.push(&a, UnixMillis(i), Bytes::new());
        }
        assert_eq!(
            idx.newest("a", 10)
                .iter()
                .map(|e| e.0 .0)
                .collect::<Vec<_>>(),
            [1, 2]
        );
        idx.push(&b, UnixMillis(0), Bytes::new());
        idx.push(&c, UnixMillis(0), Bytes::new());
        assert!(
            idx.newest("a", 10).is_empty(),
            "oldest user evicted at the bound"
        );
        assert_eq!(idx.newest("c", 10).len(), 1);
    }

    #[test]
    fn user_index_is_bounded_in_bytes_oldest_first() {
        let frame = |n: usize| Bytes::from(vec![b'x'; n]);
        let budget = 10 * (100 + ENTRY_OVERHEAD);
        let mut idx = UserIndex::new(200, 10_000, budget);
        // Many users coming and going (new ids, as churn makes): bytes, not users, bound it.
        for i in 0..1000u64 {
            let user: Arc<str> = Arc::from(format!("u{}", i % 100));
            idx.push(&user, UnixMillis(i), frame(100));
        }
        assert!(idx.bytes() <= budget, "{}", idx.bytes());
        let kept: usize = (0..100)
            .map(|u| idx.newest(&format!("u{u}"), 200).len())
            .sum();
        assert_eq!(kept, 10);
        assert_eq!(idx.newest("u99", 10).len(), 1, "the newest stay");
        assert!(idx.newest("u0", 10).is_empty(), "the oldest went");
        assert!(idx.ledger.entries() <= 2 * 10 + 64);
        // Users whose messages all went are forgotten, not kept empty.
        for i in 0..10_000u64 {
            idx.push(&Arc::from(format!("guest-{i}")), UnixMillis(i), frame(100));
        }
        assert_eq!(idx.per_user.len(), 10, "one message each, ten fit");
        assert!(idx.order.len() <= 2 * 10 + 64, "{}", idx.order.len());
    }
}
