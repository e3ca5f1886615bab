//! # hubbub-broker
//!
//! The Redis side of several hubbub nodes sharing rooms. Every room has ONE sequencer,
//! in Redis: a Lua script gives each message its `seq`, appends it to the room's bounded
//! stream and publishes it, atomically, for many messages of many rooms per call. Every
//! node subscribes to the rooms it has in use and hands what arrives to the worker that
//! owns the room on this node (`hubbub_core::owner_of`). The hub does the ordering and
//! the gap detection; this crate is transport only.
//!
//! Like the persistence bridge, it is a side service on one OS thread (`hubbub-broker`)
//! running a tokio current-thread runtime, behind bounded queues: no call of a worker
//! ever blocks, answers come back on each worker's bounded event channel.
//!
//! ```text
//!  worker ─sequence─▶ [queue ≤ queue_size] ─▶ sequencer loop ─EVALSHA (≤ batch_max)─▶ Redis
//!  worker ─fetch────▶ [queue ≤ queue_size] ─▶ fetch tasks ───EVALSHA (XRANGE)──────▶ Redis
//!  worker ─load_room/forget─▶ [queue] ─▶ subscriber ─SUBSCRIBE─▶ then the load script
//!  worker ◀─[events ≤ events_per_worker]◀─ Sequenced / Fetched / Message / Resync
//!                                          ▲ pub/sub task: PUBLISHed batches, split
//! ```
//!
//! ## Redis layout
//! Per room `R` (the braces make every key of a room hash to one cluster slot):
//! - `hubbub:{R}:meta` — a hash: `epoch` (the room's numbering's name) and `seq` (the
//!   last seq given).
//! - `hubbub:{R}:log` — a stream, `XADD … MAXLEN ~ stream_len`, entry id `{seq}-0`,
//!   fields `e` (the epoch) and `m` (the message line).
//! - `hubbub:room:{R}` — the pub/sub channel. One PUBLISH per room per batch, with the
//!   payload `epoch\nfirst\nline_1\n…\nline_n`: line `i` (from 0) has seq `first + i`.
//!
//! A message line is one character for the kind (`c` chat, `s` system) followed by the
//! JSON of its `ChatMessage` (`kind` is not in the JSON; `seq` in it is 0 and ignored —
//! the real one is the stream id or the payload's header). JSON escapes control
//! characters, so a line never holds a raw newline. An epoch is one line too (newlines
//! in a candidate epoch become spaces).
//!
//! ## Scripts
//! - **sequence** (one EVALSHA per batch): KEYS = meta_1, log_1, meta_2, log_2, …;
//!   ARGV = stream_len, then per room: channel, candidate_epoch, floor, n, line_1 … line_n.
//!   A room without a meta hash (fresh, or Redis lost it) gets the candidate epoch and
//!   `seq = max(floor, the newest stream entry's seq)`; then `HINCRBY seq n`, n XADDs and
//!   one PUBLISH. Returns `{epoch, first}` per room. Within a batch a room's messages keep
//!   their submission order. Batching: one loop takes up to `batch_max` queued requests
//!   per call, one call at a time; what arrives while a call is in flight waits for the
//!   next one, so the batches grow with the load.
//! - **load**: get-or-create the meta as above; `{epoch, seq}` and the newest `recent`
//!   entries. The room's channel is SUBSCRIBEd (and confirmed) *before* the script runs,
//!   so nothing published after the read is missed.
//! - **fetch**: the meta's epoch and `XRANGE log (after+1)-0 upto-0 COUNT 10000` (`+`
//!   for `u64::MAX`). Creates nothing; answers an empty epoch when Redis has no state for
//!   the room.
//!
//! Loads and fetches return only the entries of the room's current epoch (a stream that
//! outlived its meta hash keeps the old epoch's entries below the new numbering).
//!
//! The sequence script touches the keys of several rooms, so a batch is not
//! cluster-safe: this crate targets one Redis (or a primary with replicas).
//!
//! ## Availability
//! - Redis unreachable at start is not an error: [`Broker::start`] waits at most ~3 s,
//!   the status is `Unreachable`, and the connections keep retrying.
//! - Commands go over a `redis::aio::ConnectionManager` (one multiplexed, reconnecting
//!   connection, timeouts 1 s to connect, 5 s per answer). A batch whose call fails is
//!   answered `Sequenced { Err(BrokerDown) }` for every message in it, counted in
//!   `sequence_failed`; nothing is retried (the hub tells the client).
//! - The pub/sub connection reconnects with backoff (100 ms doubling to 2 s), subscribes
//!   again to every watched room and sends every worker a [`BrokerEvent::Resync`].
//! - A worker whose event channel is full loses pub/sub messages (counted in
//!   `events_dropped`) and gets a `Resync` as soon as it has room. Answers (`Sequenced`,
//!   `Fetched`) are not dropped: they wait in a per-worker overflow (bounded by
//!   `queue_size`) and go first when room frees up.
//!
//! ## Use
//! ```no_run
//! use hubbub_broker::{Broker, BrokerConfig};
//! # fn main() -> Result<(), hubbub_broker::BrokerError> {
//! let (broker, mut events) = Broker::start(BrokerConfig {
//!     url: "redis://127.0.0.1:6379".into(),
//!     node_id: "node-a".into(),
//!     workers: 4,
//!     ..BrokerConfig::default()
//! })?;
//! let worker0 = events.remove(0); // a futures_channel::mpsc::Receiver<BrokerEvent>
//! println!("{}", broker.status().as_str());
//! broker.shutdown(std::time::Duration::from_secs(2));
//! # drop(worker0); Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod broker;
mod outbox;
mod runtime;
mod scripts;
mod shared;
mod wire;

use std::sync::Arc;

use hubbub_core::protocol::ChatMessage;

pub use broker::Broker;

/// The most entries one fetch answers; the hub asks again for the rest.
pub const MAX_FETCH: usize = 10_000;

/// How the broker connects and how far its queues go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// The Redis URL, e.g. `redis://127.0.0.1:6379`.
    pub url: String,
    /// This node's name, for logs and `CLIENT SETNAME hubbub-<node_id>-cmd`.
    pub node_id: String,
    /// Events for a room go to worker `owner_of(room, workers)`; one channel per worker.
    pub workers: u16,
    /// The per-room stream bound (`XADD MAXLEN ~`).
    pub stream_len: usize,
    /// The bound of pending sequence requests, and separately of fetch requests and of
    /// load/forget requests.
    pub queue_size: usize,
    /// The bound of each worker's event channel.
    pub events_per_worker: usize,
    /// At most this many messages per script call.
    pub batch_max: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            url: "redis://127.0.0.1:6379".to_owned(),
            node_id: "hubbub".to_owned(),
            workers: 1,
            stream_len: 10_000,
            queue_size: 65_536,
            events_per_worker: 65_536,
            batch_max: 1_024,
        }
    }
}

/// What the broker thread tells one worker.
#[derive(Debug)]
pub enum BrokerEvent {
    /// A message of a room this node watches (from pub/sub): `message.seq` and
    /// `message.kind` set. Messages of one room arrive in the order Redis published them
    /// (seq order), but a message may be missing (connection lost) — the hub fetches gaps.
    Message {
        /// The room.
        room: Arc<str>,
        /// The room's epoch when the message was sequenced.
        epoch: Arc<str>,
        /// The message.
        message: ChatMessage,
    },
    /// The answer to [`Broker::sequence`] for `token`: the room's epoch and the seq given.
    Sequenced {
        /// The caller's token.
        token: u64,
        /// The epoch and the seq, or the broker being down (the message was not sent).
        result: Result<(Arc<str>, u64), BrokerDown>,
    },
    /// The answer to [`Broker::fetch`]: the room's stored messages with
    /// `after < seq <= upto` (at most [`MAX_FETCH`]), oldest first, and the room's current
    /// epoch (empty when Redis has no state for the room); `None` when Redis could not
    /// answer.
    Fetched {
        /// The room.
        room: Arc<str>,
        /// The epoch and the messages.
        answer: Option<(Arc<str>, Vec<ChatMessage>)>,
    },
    /// Messages may have been missed (the pub/sub connection was re-established, or
    /// events for this worker were dropped because its channel was full): the hub should
    /// fetch the tail of every room it watches.
    Resync,
}

/// Redis could not be reached (or did not answer in time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the broker (Redis) is unreachable")]
pub struct BrokerDown;

/// The broker's queue is full (or the broker is shut down): the request was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the broker's queue is full")]
pub struct Busy;

/// Why [`Broker::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The URL is not a Redis URL.
    #[error("bad Redis URL {url:?}: {source}")]
    Url {
        /// The URL given.
        url: String,
        /// What the client said.
        source: redis::RedisError,
    },
    /// A setting is out of range.
    #[error("bad broker setting: {0}")]
    Config(&'static str),
    /// The runtime or the thread could not be made.
    #[error("cannot start the broker thread: {0}")]
    Spawn(#[from] std::io::Error),
    /// The thread ended before it started.
    #[error("the broker thread exited at start")]
    ThreadExited,
}

/// A room's state in Redis as [`Broker::load_room`] gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedRoom {
    /// The room's epoch (the candidate, if Redis had no state for it).
    pub epoch: Arc<str>,
    /// The last seq given in this epoch (the floor, or more, for a new one).
    pub last_seq: u64,
    /// The newest messages asked for, oldest first.
    pub recent: Vec<ChatMessage>,
}

/// Whether the broker reaches Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerStatus {
    /// The first connections are being made.
    Starting,
    /// Both the command connection and the pub/sub connection work.
    Connected,
    /// One of them cannot reach Redis (retrying).
    Unreachable,
}

impl BrokerStatus {
    /// `starting`, `connected` or `unreachable`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BrokerStatus::Starting => "starting",
            BrokerStatus::Connected => "connected",
            BrokerStatus::Unreachable => "unreachable",
        }
    }
}

/// The broker's counters, read from atomics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BrokerStats {
    /// Sequencing script calls (round trips for sequencing).
    pub scripts: u64,
    /// Messages sequenced.
    pub sequenced: u64,
    /// Every command or script sent to Redis (pings, loads, fetches, subscribes included).
    pub round_trips: u64,
    /// Chat messages received through pub/sub (one publish may carry many).
    pub received: u64,
    /// Fetches answered from Redis.
    pub fetches: u64,
    /// Pub/sub connections re-established.
    pub reconnects: u64,
    /// Events dropped because a worker's channel was full (or gone).
    pub events_dropped: u64,
    /// Messages answered `Sequenced { Err(BrokerDown) }`.
    pub sequence_failed: u64,
    /// Requests refused with [`Busy`].
    pub busy: u64,
    /// Rooms subscribed now.
    pub watched: u64,
}
