//! What the [`Broker`](crate::Broker) handles and the broker thread share: counters and
//! the two connections' health.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};

use crate::{BrokerStats, BrokerStatus};

// 0: not known yet (the first attempt has not answered).
const UP: u8 = 1;
const DOWN: u8 = 2;

/// Counters and health, all atomics.
#[derive(Default)]
pub(crate) struct Shared {
    cmd: AtomicU8,
    sub: AtomicU8,
    /// Set by shutdown: requests are refused from then on.
    pub closed: AtomicBool,
    pub scripts: AtomicU64,
    pub sequenced: AtomicU64,
    pub round_trips: AtomicU64,
    pub received: AtomicU64,
    pub fetches: AtomicU64,
    pub reconnects: AtomicU64,
    pub events_dropped: AtomicU64,
    pub sequence_failed: AtomicU64,
    pub busy: AtomicU64,
    pub watched: AtomicU64,
}

impl Shared {
    /// Records whether the command connection answered; returns whether it was down
    /// (or unknown) before and is up now.
    pub fn set_cmd(&self, up: bool) -> bool {
        let old = self.cmd.swap(if up { UP } else { DOWN }, Relaxed);
        if (old == UP) != up {
            tracing::info!(
                connection = "command",
                "Redis {}",
                if up { "reachable" } else { "unreachable" }
            );
        }
        up && old != UP
    }

    /// Records whether the pub/sub connection works.
    pub fn set_sub(&self, up: bool) {
        let old = self.sub.swap(if up { UP } else { DOWN }, Relaxed);
        if (old == UP) != up {
            tracing::info!(
                connection = "pubsub",
                "Redis {}",
                if up { "reachable" } else { "unreachable" }
            );
        }
    }

    /// Whether the command connection last answered.
    pub fn cmd_up(&self) -> bool {
        self.cmd.load(Relaxed) == UP
    }

    pub fn status(&self) -> BrokerStatus {
        match (self.cmd.load(Relaxed), self.sub.load(Relaxed)) {
            (UP, UP) => BrokerStatus::Connected,
            (DOWN, _) | (_, DOWN) => BrokerStatus::Unreachable,
            _ => BrokerStatus::Starting,
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn stats(&self) -> BrokerStats {
        BrokerStats {
            scripts: self.scripts.load(Relaxed),
            sequenced: self.sequenced.load(Relaxed),
            round_trips: self.round_trips.load(Relaxed),
            received: self.received.load(Relaxed),
            fetches: self.fetches.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            events_dropped: self.events_dropped.load(Relaxed),
            sequence_failed: self.sequence_failed.load(Relaxed),
            busy: self.busy.load(Relaxed),
            watched: self.watched.load(Relaxed),
        }
    }
}
