//! Bounded memories of a hub: the v2 sends it accepted with a `clientMsgId` (so a resend
//! is acknowledged, not broadcast again), and when users' last connection closed.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::time::{Mono, UnixMillis};

/// Sends remembered per worker.
pub(crate) const SEND_LOG_CAPACITY: usize = 100_000;
/// How long a resend is recognised.
pub(crate) const SEND_LOG_TTL: Duration = Duration::from_secs(300);
/// Users whose last-seen time a worker keeps.
pub(crate) const LAST_SEEN_CAPACITY: usize = 100_000;

/// (room, user, clientMsgId).
type SendKey = (Arc<str>, Arc<str>, Box<str>);

/// A send the owner sequenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Accepted {
    /// The room's incarnation it was sequenced in: a later room of the same name (its
    /// `seq` started again) does not know it.
    pub room_id: u64,
    pub seq: u64,
    pub message_id: uuid::Uuid,
}

/// Accepted sends by (room, user, clientMsgId), for [`SEND_LOG_TTL`], at most `capacity`
/// (the oldest forgotten first). O(1) amortised per send; nothing on a timer.
#[derive(Debug)]
pub(crate) struct SendLog {
    map: HashMap<SendKey, (Accepted, Mono)>,
    order: VecDeque<(SendKey, Mono)>,
    capacity: usize,
}

impl SendLog {
    pub fn new(capacity: usize) -> Self {
        SendLog {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub fn get(&self, key: &SendKey, now: Mono) -> Option<Accepted> {
        self.map
            .get(key)
            .filter(|(_, at)| now.saturating_since(*at) < SEND_LOG_TTL)
            .map(|(a, _)| *a)
    }

    pub fn insert(&mut self, key: SendKey, accepted: Accepted, now: Mono) {
        while let Some((old, at)) = self.order.front() {
            let expired = now.saturating_since(*at) >= SEND_LOG_TTL;
            if !expired && self.map.len() < self.capacity {
                break;
            }
            if self.map.get(old).is_some_and(|(_, t)| t == at) {
                self.map.remove(old);
            }
            self.order.pop_front();
        }
        self.order.push_back((key.clone(), now));
        self.map.insert(key, (accepted, now));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

/// When each user's last connection to this worker closed, for the newest `capacity`
/// users (the longest remembered forgotten first).
#[derive(Debug)]
pub(crate) struct LastSeen {
    map: HashMap<Arc<str>, UnixMillis>,
    order: VecDeque<(Arc<str>, UnixMillis)>,
    capacity: usize,
}

impl LastSeen {
    pub fn new(capacity: usize) -> Self {
        LastSeen {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub fn get(&self, user: &str) -> Option<UnixMillis> {
        self.map.get(user).copied()
    }

    pub fn insert(&mut self, user: Arc<str>, at: UnixMillis) {
        self.map.insert(user.clone(), at);
        self.order.push_back((user, at));
        while self.map.len() > self.capacity {
            let Some((old, t)) = self.order.pop_front() else {
                break;
            };
            // An older entry of a user seen again since is stale.
            if self.map.get(&old) == Some(&t) {
                self.map.remove(&old);
            }
        }
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order.retain(|(u, t)| map.get(u) == Some(t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(room: &str, user: &str, id: &str) -> SendKey {
        (Arc::from(room), Arc::from(user), id.into())
    }

    fn accepted(seq: u64) -> Accepted {
        Accepted {
            room_id: 1,
            seq,
            message_id: uuid::Uuid::nil(),
        }
    }

    #[test]
    fn sends_are_recalled_for_five_minutes_within_capacity() {
        let t0 = Mono::from_nanos(0);
        let mut log = SendLog::new(3);
        log.insert(key("r", "u", "a"), accepted(1), t0);
        assert_eq!(log.get(&key("r", "u", "a"), t0), Some(accepted(1)));
        assert_eq!(log.get(&key("r", "v", "a"), t0), None, "per user");
        assert_eq!(log.get(&key("q", "u", "a"), t0), None, "per room");
        let later = t0 + SEND_LOG_TTL;
        assert_eq!(log.get(&key("r", "u", "a"), later), None, "expired");
        for (i, id) in ["b", "c", "d", "e"].iter().enumerate() {
            log.insert(key("r", "u", id), accepted(i as u64 + 2), t0);
        }
        assert_eq!(log.len(), 3, "bounded");
        assert_eq!(log.get(&key("r", "u", "b"), t0), None, "the oldest went");
        assert_eq!(log.get(&key("r", "u", "e"), t0), Some(accepted(5)));
        log.insert(key("r", "u", "f"), accepted(6), later);
        assert_eq!(log.len(), 1, "expired ones swept on insert");
    }

    #[test]
    fn last_seen_is_bounded_and_keeps_the_newest() {
        let mut seen = LastSeen::new(2);
        seen.insert("a".into(), UnixMillis(1));
        seen.insert("b".into(), UnixMillis(2));
        seen.insert("a".into(), UnixMillis(3));
        assert_eq!(seen.get("a"), Some(UnixMillis(3)));
        seen.insert("c".into(), UnixMillis(4));
        assert_eq!(seen.get("b"), None, "b was the longest remembered");
        assert_eq!(seen.get("a"), Some(UnixMillis(3)));
        for i in 0..1000 {
            seen.insert("a".into(), UnixMillis(10 + i));
        }
        assert!(seen.order.len() <= 2 * 2 + 64);
        assert_eq!(seen.get("a"), Some(UnixMillis(1009)));
    }
}
