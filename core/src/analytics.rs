//! Counting and timing: per-hub figures updated without sharing, merged into one
//! [`Snapshot`] when someone asks (`/api/analytics`, `/metrics`).

use std::collections::HashSet;
use std::sync::Arc;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::route::WorkerId;
use crate::time::{Mono, UnixMillis};

/// Minutes in the messages-per-minute window.
pub const MINUTES: usize = 15;
/// Most `activeUserDetails` entries in one snapshot; beyond it the list is cut and
/// `activeUserDetailsTruncated` is true.
pub const MAX_USER_DETAILS: usize = 1000;
/// Rooms listed in `roomActivity`, busiest first (also the most each hub reports).
pub const TOP_ROOMS: usize = 10;

/// Fan-out latency histogram over the current and the previous minute (so the
/// percentiles describe now, not the whole uptime), in microseconds.
#[derive(Debug, Clone)]
pub(crate) struct LatencyWindow {
    minute: u64,
    current: Histogram<u64>,
    previous: Histogram<u64>,
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 10 min at 2 significant digits; bounds are constants, so this cannot fail.
    Histogram::new_with_bounds(1, 600_000_000, 2).unwrap_or_else(|_| unreachable!())
}

impl LatencyWindow {
    pub(crate) fn new() -> Self {
        LatencyWindow {
            minute: 0,
            current: new_histogram(),
            previous: new_histogram(),
        }
    }

    fn rotate(&mut self, minute: u64) {
        if minute == self.minute {
            return;
        }
        if minute == self.minute + 1 {
            std::mem::swap(&mut self.current, &mut self.previous);
        } else {
            self.previous.reset();
        }
        self.current.reset();
        self.minute = minute;
    }

    pub(crate) fn record(&mut self, wall: UnixMillis, micros: u64) {
        self.rotate(wall.minute());
        self.current.saturating_record(micros.max(1));
    }

    pub(crate) fn merged(&mut self, wall: UnixMillis) -> Histogram<u64> {
        self.rotate(wall.minute());
        let mut h = self.current.clone();
        // Same bounds on both sides, so adding cannot fail.
        let _ = h.add(&self.previous);
        h
    }
}

/// Messages per minute for the last [`MINUTES`] minutes, as a ring keyed by minute.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MinuteCounts([(u64, u64); MINUTES]);

impl MinuteCounts {
    pub(crate) fn add(&mut self, wall: UnixMillis, n: u64) {
        let minute = wall.minute();
        let slot = &mut self.0[(minute % MINUTES as u64) as usize];
        if slot.0 != minute {
            *slot = (minute, 0);
        }
        slot.1 += n;
    }

    /// Oldest minute first, the current minute last.
    pub(crate) fn window(&self, wall: UnixMillis) -> [u64; MINUTES] {
        let now = wall.minute();
        let mut out = [0; MINUTES];
        for (i, v) in out.iter_mut().enumerate() {
            let Some(minute) = (now + i as u64 + 1).checked_sub(MINUTES as u64) else {
                continue;
            };
            let slot = self.0[(minute % MINUTES as u64) as usize];
            if slot.0 == minute {
                *v = slot.1;
            }
        }
        out
    }
}

/// Counters one hub keeps; each is only ever touched by its own worker.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub messages: u64,
    pub deliveries: u64,
    pub rate_limited: u64,
    pub rejected: u64,
    pub overloaded: u64,
    pub persist_dropped: u64,
    pub slow_consumer_closes: u64,
    pub presence_withheld: u64,
    pub typing_dropped: u64,
    pub duplicates: u64,
    pub store_replays: u64,
    pub published: u64,
    pub refreshes: u64,
    pub refreshes_refused: u64,
    pub token_expiries: u64,
    pub rooms_created: u64,
    pub joins_refused: u64,
    pub state_dropped: u64,
    pub broker_refused: u64,
    pub broker_unwatched: u64,
    pub broker_duplicates: u64,
    pub broker_gap_fetches: u64,
    pub broker_gaps_skipped: u64,
    pub broker_epoch_changes: u64,
}

/// One connection, as `activeUserDetails` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDetail {
    /// The connection's id (a UUID v7 made when it opened).
    pub client_id: String,
    /// Its user id.
    pub user_id: String,
    /// Its display name.
    pub username: String,
    /// Its room.
    pub room_id: String,
    /// When it joined, RFC 3339.
    pub joined_at: String,
}

/// One worker's load, for the per-worker chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerLoad {
    /// The worker.
    pub id: u16,
    /// Connections it holds.
    pub connections: u64,
    /// Messages it sequenced as the owner of their rooms.
    pub messages: u64,
    /// Frames it handed to its sockets.
    pub deliveries: u64,
    /// Bytes of room history it retains (within `MAX_HISTORY_BYTES`).
    pub history_bytes: u64,
}

/// One room's activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomActivity {
    /// The room.
    pub room_id: String,
    /// Open connections in it.
    pub connections: u64,
    /// Distinct users in it.
    pub users: u64,
    /// Messages sequenced in it since start (or since it was last evicted while idle).
    pub messages: u64,
    /// A public room (not a private room or group of the rooms API): listings show it to
    /// anyone; the others only to admins and operators. Not part of the JSON.
    #[serde(skip)]
    pub listed: bool,
}

/// What one hub contributes to a snapshot; carried between workers inside a
/// [`PeerEvent`](crate::PeerEvent).
#[derive(Debug, Clone)]
pub(crate) struct StatsPart {
    pub worker: WorkerId,
    pub counters: Counters,
    pub minutes: [u64; MINUTES],
    pub latency: Histogram<u64>,
    pub connections: u64,
    pub users: Vec<Arc<str>>,
    pub details: Vec<UserDetail>,
    /// This hub's busiest owned rooms (at most [`TOP_ROOMS`]).
    pub rooms: Vec<RoomActivity>,
    /// Owned rooms with at least one connection.
    pub active_rooms: u64,
    /// Bytes of history retained.
    pub history_bytes: u64,
}

/// Health of the durable store, as `/health` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageStatus {
    /// No durable store configured.
    #[default]
    Disabled,
    /// The store answers.
    Ok,
    /// The store is configured but does not answer.
    Unavailable,
}

impl StorageStatus {
    /// `disabled`, `ok` or `unavailable`.
    pub const fn as_str(self) -> &'static str {
        match self {
            StorageStatus::Disabled => "disabled",
            StorageStatus::Ok => "ok",
            StorageStatus::Unavailable => "unavailable",
        }
    }
}

/// Persistence figures, filled in by the driver that runs the persistence bridge.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistStats {
    /// Whether a durable store is configured.
    pub enabled: bool,
    /// `ok`, `unavailable` or `disabled`.
    pub status: String,
    /// Records accepted into the queue.
    pub queued: u64,
    /// Items written.
    pub written: u64,
    /// Items retried.
    pub retried: u64,
    /// Items given up on.
    pub failed: u64,
    /// Records dropped because the queue was full.
    pub dropped: u64,
    /// Records waiting in the queue now.
    pub queue_depth: u64,
    /// Batch write latency p99, milliseconds.
    pub batch_p99_ms: f64,
}

/// Everything `/api/analytics` and `/metrics` report, merged over all hubs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Chat messages accepted and sequenced.
    pub total_messages: u64,
    /// Open connections.
    pub active_connections: u64,
    /// Distinct user ids among open connections.
    pub active_users: u64,
    /// Most connections open at once.
    pub peak_connections: u64,
    /// Messages per minute, oldest first, current minute last.
    pub messages_per_minute: [u64; MINUTES],
    /// Fan-out latency p50 over the last one to two minutes, ms.
    pub latency_p50_ms: f64,
    /// Fan-out latency p95, ms.
    pub latency_p95_ms: f64,
    /// Fan-out latency p99, ms.
    pub latency_p99_ms: f64,
    /// Open connections (at most [`MAX_USER_DETAILS`]).
    pub active_user_details: Vec<UserDetail>,
    /// Whether `activeUserDetails` was cut.
    pub active_user_details_truncated: bool,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// When the server started, RFC 3339.
    pub server_start_time: String,
    /// Connections closed because they did not read their frames.
    pub slow_consumer_disconnects: u64,
    /// Joins and leaves not announced because their room was over
    /// `PRESENCE_MAX_MEMBERS`.
    pub presence_withheld: u64,
    /// v2 typing frames dropped by their rate bucket.
    pub typing_dropped: u64,
    /// v2 sends acknowledged as duplicates of an earlier `clientMsgId` (not broadcast).
    pub duplicates_acked: u64,
    /// v2 recoveries that went past the memory ring to the durable store.
    pub recovered_from_store: u64,
    /// Messages published through the server API (`POST /api/server/publish`; also
    /// counted in `total_messages`).
    pub server_published: u64,
    /// v2 `refresh` frames that moved a connection's token expiry.
    pub tokens_refreshed: u64,
    /// v2 `refresh` frames refused (bad, expired or another user's token).
    pub refreshes_refused: u64,
    /// Connections closed with 4001 because their token expired.
    pub token_expiry_closes: u64,
    /// Rooms made through the rooms API (`POST /api/rooms`) since start.
    pub rooms_created: u64,
    /// Subscriptions refused: a private or group room the user is not a member of, or a
    /// deleted room.
    pub room_joins_refused: u64,
    /// Membership writes to the state table's per-user index lost to a full queue.
    pub membership_writes_dropped: u64,
    /// Frames handed to sockets.
    pub total_deliveries: u64,
    /// Messages dropped by rate limiting.
    pub rate_limited: u64,
    /// Frames refused by validation.
    pub rejected: u64,
    /// Messages refused with `overloaded`.
    pub overloaded: u64,
    /// Rooms with at least one connection.
    pub rooms: u64,
    /// Busiest rooms.
    pub room_activity: Vec<RoomActivity>,
    /// Per-worker load.
    pub workers: Vec<WorkerLoad>,
    /// Persistence figures; `enabled: false` with the memory store.
    pub persistence: PersistStats,
    /// Shared rooms' deliveries (`BROKER=redis`; all zero without a broker).
    pub shared_rooms: SharedRoomStats,
}

/// What the hubs saw of the sequencer's deliveries, for shared rooms (`BROKER=redis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedRoomStats {
    /// Sends refused with `broker_unavailable` (the sequencer could not be reached).
    pub refused: u64,
    /// Numbered messages that arrived twice (delivered once).
    pub duplicates: u64,
    /// Holes in a room's numbering asked of the sequencer's log.
    pub gap_fetches: u64,
    /// Holes the log could no longer fill (trimmed), skipped.
    pub gaps_skipped: u64,
    /// Rooms whose numbering began again (the sequencer lost its state).
    pub epoch_changes: u64,
    /// Messages for rooms no longer in use here.
    pub unwatched: u64,
}

/// Inputs to [`Snapshot::merge`] that come from outside the hubs.
pub(crate) struct Globals {
    pub now: UnixMillis,
    pub start: UnixMillis,
    pub connections: u64,
    pub peak: u64,
}

impl Snapshot {
    pub(crate) fn merge(parts: Vec<StatsPart>, g: Globals) -> Snapshot {
        let mut total = Counters::default();
        let mut minutes = [0u64; MINUTES];
        let mut latency = new_histogram();
        let mut users: HashSet<Arc<str>> = HashSet::new();
        let mut details = Vec::new();
        let mut rooms = Vec::new();
        let mut workers = Vec::new();
        let mut truncated = false;
        let mut room_count = 0;
        for part in parts {
            room_count += part.active_rooms;
            let c = part.counters;
            total.messages += c.messages;
            total.deliveries += c.deliveries;
            total.rate_limited += c.rate_limited;
            total.rejected += c.rejected;
            total.overloaded += c.overloaded;
            total.persist_dropped += c.persist_dropped;
            total.slow_consumer_closes += c.slow_consumer_closes;
            total.presence_withheld += c.presence_withheld;
            total.typing_dropped += c.typing_dropped;
            total.duplicates += c.duplicates;
            total.store_replays += c.store_replays;
            total.published += c.published;
            total.refreshes += c.refreshes;
            total.refreshes_refused += c.refreshes_refused;
            total.token_expiries += c.token_expiries;
            total.rooms_created += c.rooms_created;
            total.joins_refused += c.joins_refused;
            total.state_dropped += c.state_dropped;
            total.broker_refused += c.broker_refused;
            total.broker_unwatched += c.broker_unwatched;
            total.broker_duplicates += c.broker_duplicates;
            total.broker_gap_fetches += c.broker_gap_fetches;
            total.broker_gaps_skipped += c.broker_gaps_skipped;
            total.broker_epoch_changes += c.broker_epoch_changes;
            for (m, v) in minutes.iter_mut().zip(part.minutes) {
                *m += v;
            }
            let _ = latency.add(&part.latency);
            users.extend(part.users);
            for d in part.details {
                if details.len() < MAX_USER_DETAILS {
                    details.push(d);
                } else {
                    truncated = true;
                }
            }
            rooms.extend(part.rooms);
            workers.push(WorkerLoad {
                id: part.worker.0,
                connections: part.connections,
                messages: c.messages,
                deliveries: c.deliveries,
                history_bytes: part.history_bytes,
            });
        }
        workers.sort_by_key(|w| w.id);
        rooms.sort_by(|a, b| {
            b.messages
                .cmp(&a.messages)
                .then_with(|| a.room_id.cmp(&b.room_id))
        });
        rooms.truncate(TOP_ROOMS);
        let ms = |q: f64| {
            if latency.is_empty() {
                0.0
            } else {
                // µs to ms, rounded to the microsecond.
                latency.value_at_quantile(q) as f64 / 1000.0
            }
        };
        Snapshot {
            total_messages: total.messages,
            active_connections: g.connections,
            active_users: users.len() as u64,
            peak_connections: g.peak.max(g.connections),
            messages_per_minute: minutes,
            latency_p50_ms: ms(0.50),
            latency_p95_ms: ms(0.95),
            latency_p99_ms: ms(0.99),
            active_user_details: details,
            active_user_details_truncated: truncated,
            uptime_seconds: g.now.as_secs().saturating_sub(g.start.as_secs()),
            server_start_time: g.start.to_rfc3339().to_string(),
            slow_consumer_disconnects: total.slow_consumer_closes,
            presence_withheld: total.presence_withheld,
            typing_dropped: total.typing_dropped,
            duplicates_acked: total.duplicates,
            recovered_from_store: total.store_replays,
            server_published: total.published,
            tokens_refreshed: total.refreshes,
            refreshes_refused: total.refreshes_refused,
            token_expiry_closes: total.token_expiries,
            rooms_created: total.rooms_created,
            room_joins_refused: total.joins_refused,
            membership_writes_dropped: total.state_dropped,
            shared_rooms: SharedRoomStats {
                refused: total.broker_refused,
                duplicates: total.broker_duplicates,
                gap_fetches: total.broker_gap_fetches,
                gaps_skipped: total.broker_gaps_skipped,
                epoch_changes: total.broker_epoch_changes,
                unwatched: total.broker_unwatched,
            },
            total_deliveries: total.deliveries,
            rate_limited: total.rate_limited,
            rejected: total.rejected,
            overloaded: total.overloaded,
            rooms: room_count,
            room_activity: rooms,
            workers,
            persistence: PersistStats {
                enabled: false,
                status: "disabled".to_owned(),
                dropped: total.persist_dropped,
                ..PersistStats::default()
            },
        }
    }

    /// The `/api/analytics` JSON body.
    ///
    /// Field names follow the original system (`totalMessages`, `latencyP99Ms`, …) plus
    /// hubbub's additions (`workers`, `roomActivity`, `persistence`, …).
    pub fn to_json(&self) -> Vec<u8> {
        // Plain data: serialization into memory cannot fail.
        sonic_rs::to_vec(self).unwrap_or_default()
    }
}

/// Microseconds between two monotonic instants.
pub(crate) fn micros_between(from: Mono, to: Mono) -> u64 {
    u64::try_from(to.saturating_since(from).as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    #[test]
    fn minute_window_slides() {
        let mut m = MinuteCounts::default();
        m.add(UnixMillis(100 * MIN), 3);
        m.add(UnixMillis(100 * MIN + 59_999), 1);
        m.add(UnixMillis(101 * MIN), 2);
        let w = m.window(UnixMillis(101 * MIN + 5));
        assert_eq!(&w[13..], &[4, 2]);
        assert_eq!(w[..13].iter().sum::<u64>(), 0);
        // 15 minutes later the first minute has left the window; 16 later, both.
        assert_eq!(m.window(UnixMillis(114 * MIN))[0], 4);
        assert_eq!(m.window(UnixMillis(115 * MIN))[0], 2);
        assert_eq!(m.window(UnixMillis(116 * MIN)).iter().sum::<u64>(), 0);
        // A slot reused by a later minute starts from zero.
        m.add(UnixMillis(115 * MIN), 7);
        assert_eq!(m.window(UnixMillis(115 * MIN))[14], 7);
    }

    #[test]
    fn latency_window_forgets_old_minutes() {
        let mut w = LatencyWindow::new();
        w.record(UnixMillis(10 * MIN), 5_000);
        assert_eq!(
            w.merged(UnixMillis(11 * MIN)).len(),
            1,
            "previous minute kept"
        );
        assert_eq!(
            w.merged(UnixMillis(12 * MIN)).len(),
            0,
            "two minutes ago dropped"
        );
        w.record(UnixMillis(12 * MIN), 7);
        assert_eq!(w.merged(UnixMillis(20 * MIN)).len(), 0);
    }
}
