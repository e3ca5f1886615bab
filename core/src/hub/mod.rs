//! The hub: one per worker, a deterministic state machine that owns a shard of rooms.
//!
//! Methods fall into three kinds, as in quinn-proto:
//! - inputs, each taking [`Now`]: [`Hub::admit`], [`Hub::handle_open`],
//!   [`Hub::handle_frame`], [`Hub::handle_close`], [`Hub::handle_queued`],
//!   [`Hub::handle_written`], [`Hub::handle_delivered`], [`Hub::handle_peer`],
//!   [`Hub::handle_query`], [`Hub::handle_room_loaded`], [`Hub::handle_timeout`],
//!   [`Hub::begin_shutdown`];
//! - one output drain, [`Hub::poll_output`], to call after every input until it yields
//!   [`Output::Timeout`];
//! - getters ([`Hub::connections`], [`Hub::worker`]).
//!
//! By role, one file each:
//! - `connections`: this worker's connections — admission, frames, pings and closes,
//!   idle timers, shutdown;
//! - `members`: a room's members on this worker — backlog or streamed replay, then live
//!   deliveries;
//! - `owner`: the rooms this hub owns — sequencing, history, presence, fan-out;
//! - `durable`: a durable room's first use waits for its stored state;
//! - `query`: HTTP questions, scattered to the hubs and gathered into typed answers;
//! - `subscriptions`: a v2 connection's requests — subscribe, unsubscribe, chat with
//!   acks, typing, read markers;
//! - `signals`: what the owner coalesces per room on a timer — v2 presence, typing, read
//!   markers;
//! - `recall`: bounded memories — sends already accepted (`clientMsgId`), users' last seen;
//! - `retention`: history within its byte budget; `rooms`: the room and index types;
//! - `peer` and `output`: what crosses to other hubs and to the driver.
//!
//! This file holds the types, the routing of peer events and the output queue.

mod attachments;
mod connections;
mod directory;
mod durable;
mod members;
mod output;
mod owner;
mod peer;
mod query;
mod recall;
mod retention;
mod rooms;
mod sequencer;
mod server_api;
mod signals;
mod store_replay;
mod subscriptions;
mod tokens;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use attachments::{FileFacts, MAX_HELD_SENDS};
pub use directory::{
    Actor, Role, RoomAction, RoomOutcome, RoomRecord, RoomRefused, RoomRequest, RoomView, UserRoom,
    Visibility, CLOSE_ROOM_REFUSED, MAX_DIRECTORY_ROOMS, MAX_GROUP_MEMBERS, MAX_ROOM_MEMBERS,
    MAX_ROOM_NAME_CHARS, UNSUBSCRIBED_REMOVED, UNSUBSCRIBED_ROOM_DELETED,
};
pub use output::{
    Answer, ConnId, MessageList, MessagesOf, Output, PageCursor, PresentUser, Query, QueryId,
    RoomPresence, UserStatus, MAX_PRESENCE_QUERY_USERS, MAX_PRESENCE_USERS,
};
pub use peer::PeerEvent;
pub use sequencer::{Sequenced, SequencerEvent, GAP_RETRY, MAX_REORDER};
pub use server_api::{
    PublishRefused, CLOSE_DISCONNECTED, CLOSE_UNSUBSCRIBED, UNSUBSCRIBED_BY_SERVER,
};
pub use store_replay::MAX_STORE_REPLAY;
pub use tokens::CLOSE_TOKEN_EXPIRED;

use crate::analytics::{Counters, LatencyWindow, MinuteCounts};
use crate::auth::Authenticator;
use crate::gauge::{ConnectionGauge, Reservation};
use crate::protocol::{self, ChatMessageRef, ErrorCode, FrameError, PresenceKind};
use crate::rand::SplitMix64;
use crate::ratelimit::{RateLimit, TokenBucket};
use crate::route::{owner_of, WorkerId};
use crate::time::{Mono, Now, UnixMillis};
use crate::upgrade::{AllowedOrigins, ConnectParams, Refusal, UpgradeRequest};
use peer::{Member, PeerMsg};
use recall::{Accepted, LastSeen, SendLog};
use retention::{Ledger, Retained};
use rooms::{Audience, Entry, LocalRoom, OwnedRoom, RoomUser, UserIndex};

/// The most a backlog or `since` replay hands the driver at once: beyond it the rest
/// follows a slice at a time, each once the driver has written the one before
/// ([`Output::NotifyWritten`], [`Hub::handle_written`]).
pub const REPLAY_SLICE: usize = 64 * 1024;

/// What happens to a message when the persistence queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Count it, keep chatting: the message is broadcast but not stored.
    #[default]
    Drop,
    /// Refuse it: the sender gets `overloaded` and nothing is broadcast.
    Reject,
}

/// A message to store, handed by the room's owner to the [`PersistSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistRecord {
    /// UUID v7.
    pub message_id: uuid::Uuid,
    /// The room.
    pub room_id: Arc<str>,
    /// A user's message, or the server's announcement.
    pub kind: protocol::MessageKind,
    /// The sender.
    pub user_id: Arc<str>,
    /// The sender's display name.
    pub username: Arc<str>,
    /// The text.
    pub content: Box<str>,
    /// When it was sequenced.
    pub timestamp: UnixMillis,
    /// Its room sequence number.
    pub seq: u64,
    /// Its files (empty for most messages: no allocation).
    pub attachments: Box<[protocol::Attachment]>,
}

impl PersistRecord {
    /// The message as a store keeps it and hands it back to
    /// [`Hub::handle_room_loaded`]: the fields of its `chat` frame.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use hubbub_core::{PersistRecord, UnixMillis};
    /// let record = PersistRecord {
    ///     message_id: uuid::Uuid::nil(),
    ///     room_id: Arc::from("r"),
    ///     kind: Default::default(),
    ///     user_id: Arc::from("u"),
    ///     username: Arc::from("U"),
    ///     content: "hi".into(),
    ///     timestamp: UnixMillis(0),
    ///     seq: 7,
    ///     attachments: Default::default(),
    /// };
    /// let m = record.to_message();
    /// assert_eq!((m.seq, m.timestamp.as_str()), (7, "1970-01-01T00:00:00.000Z"));
    /// ```
    pub fn to_message(&self) -> protocol::ChatMessage {
        protocol::ChatMessage {
            message_id: self.message_id.to_string(),
            room_id: self.room_id.to_string(),
            kind: self.kind,
            user_id: self.user_id.to_string(),
            username: self.username.to_string(),
            content: self.content.to_string(),
            timestamp: self.timestamp.to_rfc3339().as_str().to_owned(),
            seq: self.seq,
            attachments: self.attachments.to_vec(),
        }
    }
}

/// A piece of v2 state kept beside the messages, written as it changes; the latest value
/// of each key wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateWrite {
    /// `user_id` has read `room_id` up to `seq` (written at most once per 2 s per user
    /// and room, as it is broadcast).
    ReadMarker {
        /// The room.
        room_id: Arc<str>,
        /// The reader.
        user_id: Arc<str>,
        /// Read up to here.
        seq: u64,
    },
    /// `user_id`'s last connection to a worker closed at `at`.
    LastSeen {
        /// The user.
        user_id: Arc<str>,
        /// When.
        at: UnixMillis,
    },
    /// A room made through the rooms API, whole, at every change (deletion included).
    Room(Box<RoomRecord>),
    /// `user_id` became (or stopped being) a member of `room_id`: the per-user index of
    /// `GET /api/users/{id}/rooms`.
    Membership {
        /// The room.
        room_id: Arc<str>,
        /// The user.
        user_id: Arc<str>,
        /// A member now.
        member: bool,
    },
}

/// A durable room's state as the store hands it to [`Hub::handle_room_loaded`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredRoom {
    /// The largest `seq` stored for the room (0 if none).
    pub last_seq: u64,
    /// Its newest messages, oldest first.
    pub recent: Vec<protocol::ChatMessage>,
    /// Its users' read markers: (user id, seq).
    pub read_markers: Vec<(String, u64)>,
    /// Its record, if it was made through the rooms API.
    pub room: Option<RoomRecord>,
    /// The epoch its `seq` belongs to, when the sequencer of a shared room says
    /// (`None`: the durable store's own).
    pub epoch: Option<Box<str>>,
}

/// Where the owner hands records to store: a bounded, non-blocking queue of the driver's.
///
/// It is a synchronous call rather than an [`Output`] because the reject policy must know
/// whether the record was taken before the message is broadcast.
///
/// `Send`, so that a [`Hub`] holding one stays `Send` and can be built on one thread and
/// run on another (or shared behind a `Mutex`).
pub trait PersistSink: Send {
    /// Takes `record`, or hands it back when the queue is full. Must never block.
    fn try_push(&mut self, record: PersistRecord) -> Result<(), PersistRecord>;

    /// Takes a state write, or hands it back when its queue is full. Must never block.
    fn try_push_state(&mut self, write: StateWrite) -> Result<(), StateWrite>;
}

/// Settings of one hub. [`HubConfig::new`] gives the protocol's defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// This hub's worker.
    pub worker: WorkerId,
    /// How many workers (hubs) there are.
    pub workers: u16,
    /// Messages kept per room (`HISTORY_SIZE`).
    pub history_size: usize,
    /// Bytes of history this hub keeps over all its rooms (`MAX_HISTORY_BYTES`): each
    /// message counts its encoded size plus 128 bytes; beyond it the oldest retained
    /// message of any room goes first. The per-user index keeps at most a quarter of it
    /// more (the same way).
    pub max_history_bytes: usize,
    /// Messages a new connection receives when it gives no `since`.
    pub backlog_size: usize,
    /// Rooms with no connection kept with their history; the longest idle go first.
    pub max_idle_rooms: usize,
    /// Per-connection token bucket.
    pub rate_limit: RateLimit,
    /// The token checks; [`Authenticator::disabled`] lets every connection name itself.
    pub auth: Arc<Authenticator>,
    /// Origins allowed to open a WebSocket.
    pub allowed_origins: AllowedOrigins,
    /// Send join/leave events.
    pub presence: bool,
    /// Join/leave events go out only while a room has at most this many distinct
    /// connected users, the joining or leaving one included (`PRESENCE_MAX_MEMBERS`).
    pub presence_max_members: usize,
    /// Ping a connection silent for this long.
    pub ping_after: Duration,
    /// Close a connection silent for this long (pongs count as activity).
    pub idle_timeout: Duration,
    /// How often idle connections are checked.
    pub sweep_every: Duration,
    /// Bytes queued for one connection beyond which it is closed as a slow consumer.
    pub max_queued_bytes: usize,
    /// Messages per user kept for `/api/users/{id}/messages`.
    pub user_history: usize,
    /// Users kept in that index per hub.
    pub users_indexed: usize,
    /// What a full persistence queue does.
    pub overflow: OverflowPolicy,
    /// When the server started.
    pub started_at: UnixMillis,
    /// Seed for the random bits of message and client ids.
    pub seed: u64,
    /// A durable store holds earlier messages: a room's first use asks for its state
    /// ([`Output::LoadRoom`]) so `seq` and the backlog carry on across restarts.
    pub durable: bool,
    /// Rooms one v2 connection may subscribe to at once (`MAX_SUBSCRIPTIONS`).
    pub max_subscriptions: usize,
    /// v2 presence changes of a room go out at most once per this interval
    /// (`PRESENCE_INTERVAL_MS`).
    pub presence_interval: Duration,
    /// This server's name in v2 `hello` frames (`NODE_ID`).
    pub node: Arc<str>,
    /// Rooms are shared with other nodes (`BROKER=redis`): their messages are numbered
    /// by the sequencer outside ([`Output::Sequence`]) and delivered as it hands them
    /// out ([`Hub::handle_broker_message`]); a room's first use loads its state
    /// ([`Output::LoadRoom`]) as with a durable store.
    pub broker: bool,
}

impl HubConfig {
    /// Defaults for worker `worker` of `workers`.
    pub fn new(worker: WorkerId, workers: u16) -> Self {
        HubConfig {
            worker,
            workers: workers.max(1),
            history_size: 1000,
            max_history_bytes: 128 << 20,
            backlog_size: 50,
            max_idle_rooms: 10_000,
            rate_limit: RateLimit::default(),
            auth: Arc::new(Authenticator::disabled()),
            allowed_origins: AllowedOrigins::Any,
            presence: true,
            presence_max_members: 250,
            ping_after: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            sweep_every: Duration::from_secs(5),
            max_queued_bytes: 1 << 20,
            user_history: 200,
            users_indexed: 10_000,
            overflow: OverflowPolicy::Drop,
            started_at: UnixMillis(0),
            seed: 0x6875_6262_7562,
            durable: false,
            max_subscriptions: 64,
            presence_interval: Duration::from_millis(200),
            node: Arc::from("hubbub"),
            broker: false,
        }
    }
}

/// A frame read from a connection, as the driver's WebSocket codec classified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inbound<'a> {
    /// A complete text message (valid UTF-8, at most 8192 bytes).
    Text(&'a [u8]),
    /// A binary message: closes with 1003.
    Binary,
    /// Text that is not UTF-8: closes with 1007.
    InvalidUtf8,
    /// A message over 8192 bytes: closes with 1009.
    TooLarge,
    /// A ping with its payload: the hub answers it ([`Output::Pong`]).
    Ping(&'a [u8]),
    /// A pong: activity only.
    Pong,
    /// The client's close frame, with its code if it gave one: the hub answers it
    /// ([`Output::CloseReply`]).
    Close(Option<u16>),
    /// The codec found a protocol violation (unmasked frame, bad opcode, …): closes
    /// with 1002.
    ProtocolError,
}

/// A connection that passed [`Hub::admit`]: its validated parameters and its place under
/// the connection limit (released if dropped unused).
#[derive(Debug)]
pub struct Admission {
    params: ConnectParams,
    reservation: Reservation,
    /// The last instant the token is accepted (`UnixMillis(u64::MAX)` without one).
    valid_until: UnixMillis,
    /// The token's `rooms` claim: a v2 connection subscribes to them.
    rooms: Vec<String>,
}

impl Admission {
    /// The user id (the token's, when auth is on).
    pub fn user_id(&self) -> &str {
        &self.params.user_id
    }

    /// The room the connection joins: a v1 connection's room, or the room a v2
    /// connection subscribes to first (`None` if its URL named none).
    pub fn room(&self) -> Option<&str> {
        (self.params.proto == 1 || self.params.room_given).then_some(self.params.room.as_str())
    }

    /// The protocol version: 1 or 2.
    pub fn proto(&self) -> u8 {
        self.params.proto
    }

    /// The display name.
    pub fn username(&self) -> &str {
        &self.params.username
    }
}

#[derive(Debug)]
struct Conn {
    user: Arc<str>,
    username: Arc<str>,
    /// A v1 connection's room; a v2 connection's first subscription.
    first: Option<Sub>,
    /// What only a v2 connection has (`None` for v1: nothing more per idle connection).
    v2: Option<Box<V2Conn>>,
    client_id: uuid::Uuid,
    joined_at: UnixMillis,
    bucket: TokenBucket,
    last_seen: Mono,
    pinged: bool,
    last_rate_error: Option<Mono>,
    closing: bool,
    /// The last instant its token is accepted: past it the connection closes with 4001
    /// unless a v2 `refresh` moved it (`UnixMillis(u64::MAX)` without a token).
    valid_until: UnixMillis,
    _reservation: Reservation,
}

/// A connection's place in one room.
#[derive(Debug)]
struct Sub {
    room: Arc<str>,
    /// Receiving live messages (its backlog arrived); `pos` is its place in the room's
    /// members of its protocol on this worker.
    live: bool,
    pos: u32,
    /// Tells this subscription's backlog from an earlier one's to the same room.
    token: u32,
}

/// A v2 connection's own state.
#[derive(Debug)]
struct V2Conn {
    /// Subscriptions after the first.
    more: Vec<Sub>,
    /// For subscribe, unsubscribe and read.
    control: TokenBucket,
    /// For typing.
    typing: TokenBucket,
    next_token: u32,
}

impl Conn {
    fn is_v2(&self) -> bool {
        self.v2.is_some()
    }

    fn sub_count(&self) -> usize {
        usize::from(self.first.is_some()) + self.v2.as_ref().map_or(0, |v| v.more.len())
    }

    fn sub_mut(&mut self, room: &str) -> Option<&mut Sub> {
        if self.first.as_ref().is_some_and(|s| *s.room == *room) {
            return self.first.as_mut();
        }
        self.v2.as_mut()?.more.iter_mut().find(|s| *s.room == *room)
    }

    fn add_sub(&mut self, sub: Sub) {
        match (&mut self.first, &mut self.v2) {
            (None, _) => self.first = Some(sub),
            (Some(_), Some(v2)) => v2.more.push(sub),
            // A v1 connection has one room, set when it opens.
            (Some(_), None) => {}
        }
    }

    fn take_sub(&mut self, room: &str) -> Option<Sub> {
        if self.first.as_ref().is_some_and(|s| *s.room == *room) {
            let more = self.v2.as_mut().and_then(|v| v.more.pop());
            return std::mem::replace(&mut self.first, more);
        }
        let more = &mut self.v2.as_mut()?.more;
        let i = more.iter().position(|s| *s.room == *room)?;
        Some(more.swap_remove(i))
    }

    fn member(&self, room: &Arc<str>) -> Member {
        Member {
            room: room.clone(),
            user: self.user.clone(),
            username: self.username.clone(),
        }
    }
}

/// A backlog or `since` replay too big to hand over at once, streamed a slice at a time;
/// the room's live messages that arrive meanwhile wait behind it here.
#[derive(Debug)]
struct Replay {
    /// What is left of the backlog or replay.
    backlog: VecDeque<Bytes>,
    /// The room's live messages since, and the answers to the connection's own requests
    /// in the room (acks, errors), in order.
    live: Vec<Held>,
    /// Their bytes: past `max_queued_bytes` the connection is a slow consumer (the
    /// replay itself never counts).
    live_bytes: usize,
    /// The connection speaks v2 (which of the room's frames it gets).
    v2: bool,
}

/// A frame held behind a replay.
#[derive(Debug)]
struct Held {
    frame: Bytes,
    /// An answer to the connection alone (an ack, an error), not one of the room's
    /// frames: it outlives the subscription if that ends mid-replay.
    direct: bool,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

/// One worker's hub. See the [crate docs](crate) for the run loop.
#[derive(Debug)]
pub struct Hub {
    cfg: HubConfig,
    gauge: ConnectionGauge,
    slots: Vec<Slot>,
    free: Vec<u32>,
    open: usize,
    /// Connections of this worker per user id.
    users: HashMap<Arc<str>, u32>,
    local: HashMap<Arc<str>, LocalRoom>,
    owned: HashMap<Arc<str>, OwnedRoom>,
    idle: VecDeque<(Arc<str>, u64)>,
    idle_count: usize,
    next_idle_mark: u64,
    /// Replays being streamed, by connection and room (few at a time: nothing per idle
    /// connection).
    replays: HashMap<(ConnId, Arc<str>), Replay>,
    /// When owned rooms want their coalesced signals looked at (`signals`); an entry
    /// that no longer matches its room's timer is stale and skipped.
    timers: BinaryHeap<Reverse<(Mono, Arc<str>)>>,
    /// v2 sends accepted with a `clientMsgId`, for exactly-once resends.
    sends: SendLog,
    /// When users' last connection to this worker closed.
    last_seen: LastSeen,
    /// Incarnation numbers for new owned rooms.
    next_room_id: u64,
    /// v2 subscriptions waiting for the store to give what they missed, by request id.
    ranges: HashMap<u64, store_replay::PendingRange>,
    next_range: u64,
    /// Every retained message of the owned rooms, oldest first, against the byte budget.
    retention: Ledger,
    user_index: UserIndex,
    /// The rooms made through the rooms API that this hub owns.
    directory: directory::Directory,
    /// v2 sends waiting for their files to be checked.
    held: attachments::HeldSends,
    counters: Counters,
    minutes: MinuteCounts,
    latency: LatencyWindow,
    gathers: HashMap<u64, query::Gather>,
    /// The default username, shared by every connection that has no other.
    anonymous: Arc<str>,
    next_gather: u64,
    out: VecDeque<Output>,
    scratch: Vec<u8>,
    fanout_scratch: Vec<WorkerId>,
    errors: Vec<Bytes>,
    rng: SplitMix64,
    next_sweep: Option<Mono>,
    shutting_down: bool,
    persist: Option<Box<dyn PersistSink>>,
    /// Messages of shared rooms waiting for their number, by token.
    sequencing: HashMap<u64, sequencer::PendingSend>,
    next_sequence_token: u64,
    /// Shared rooms with a hole in what was delivered.
    gaps: HashMap<Arc<str>, sequencer::Gap>,
    next_gap_check: Option<Mono>,
}

impl std::fmt::Debug for dyn PersistSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersistSink")
    }
}

const ERROR_CODES: [ErrorCode; 6] = [
    ErrorCode::InvalidJson,
    ErrorCode::InvalidType,
    ErrorCode::EmptyContent,
    ErrorCode::ContentTooLong,
    ErrorCode::RateLimited,
    ErrorCode::Overloaded,
];

impl Hub {
    /// A hub with no connections. Every hub of a process shares one `gauge`.
    ///
    /// ```
    /// use hubbub_core::{ConnectionGauge, Hub, HubConfig, WorkerId};
    /// let hub = Hub::new(HubConfig::new(WorkerId(0), 1), ConnectionGauge::new(10_000));
    /// assert_eq!(hub.connections(), 0);
    /// ```
    pub fn new(cfg: HubConfig, gauge: ConnectionGauge) -> Self {
        let errors = ERROR_CODES
            .iter()
            .map(|&code| {
                let mut buf = Vec::new();
                protocol::encode_error(&mut buf, code);
                Bytes::from(buf)
            })
            .collect();
        Hub {
            rng: SplitMix64::new(cfg.seed ^ u64::from(cfg.worker.0).rotate_left(48)),
            user_index: UserIndex::new(
                cfg.user_history,
                cfg.users_indexed,
                cfg.max_history_bytes / 4,
            ),
            gauge,
            slots: Vec::new(),
            free: Vec::new(),
            open: 0,
            users: HashMap::new(),
            local: HashMap::new(),
            owned: HashMap::new(),
            idle: VecDeque::new(),
            idle_count: 0,
            next_idle_mark: 1,
            replays: HashMap::new(),
            timers: BinaryHeap::new(),
            sends: SendLog::new(recall::SEND_LOG_CAPACITY),
            last_seen: LastSeen::new(recall::LAST_SEEN_CAPACITY),
            next_room_id: 1,
            ranges: HashMap::new(),
            next_range: 1,
            retention: Ledger::new(cfg.max_history_bytes),
            directory: directory::Directory::default(),
            held: attachments::HeldSends::default(),
            counters: Counters::default(),
            minutes: MinuteCounts::default(),
            latency: LatencyWindow::new(),
            gathers: HashMap::new(),
            anonymous: Arc::from(crate::upgrade::DEFAULT_USERNAME),
            next_gather: 0,
            out: VecDeque::new(),
            scratch: Vec::with_capacity(2048),
            fanout_scratch: Vec::new(),
            errors,
            next_sweep: None,
            shutting_down: false,
            persist: None,
            sequencing: HashMap::new(),
            next_sequence_token: 1,
            gaps: HashMap::new(),
            next_gap_check: None,
            cfg,
        }
    }

    /// A hub whose rooms hand every accepted message to `sink`, the persistence queue
    /// (see [`PersistSink`]).
    ///
    /// ```
    /// use hubbub_core::{ConnectionGauge, Hub, HubConfig, PersistRecord, PersistSink, WorkerId};
    /// struct Discard;
    /// impl PersistSink for Discard {
    ///     fn try_push(&mut self, _: PersistRecord) -> Result<(), PersistRecord> { Ok(()) }
    ///     fn try_push_state(&mut self, _: hubbub_core::StateWrite) -> Result<(), hubbub_core::StateWrite> { Ok(()) }
    /// }
    /// let cfg = HubConfig::new(WorkerId(0), 1);
    /// let hub = Hub::with_persist(cfg, ConnectionGauge::new(10), Box::new(Discard));
    /// assert_eq!(hub.connections(), 0);
    /// ```
    pub fn with_persist(
        cfg: HubConfig,
        gauge: ConnectionGauge,
        sink: Box<dyn PersistSink>,
    ) -> Self {
        Hub {
            persist: Some(sink),
            ..Hub::new(cfg, gauge)
        }
    }

    /// This hub's worker.
    pub fn worker(&self) -> WorkerId {
        self.cfg.worker
    }

    /// Connections open on this worker.
    pub fn connections(&self) -> usize {
        self.open
    }

    /// The settings.
    pub fn config(&self) -> &HubConfig {
        &self.cfg
    }

    /// An event from another hub (carried by the driver from that hub's
    /// [`Output::Peer`]).
    pub fn handle_peer(&mut self, now: Now, event: PeerEvent) {
        self.on_peer(now, event.0);
    }

    /// The next thing for the driver to do. Call after every input until it returns
    /// [`Output::Timeout`].
    #[must_use = "outputs are the hub's decisions; drop one and a frame, close or reply is lost"]
    pub fn poll_output(&mut self) -> Output {
        self.out.pop_front().unwrap_or_else(|| {
            let sweep = self.next_sweep.unwrap_or(Mono::from_nanos(u64::MAX));
            let signals = self.timers.peek().map_or(sweep, |Reverse((at, _))| *at);
            let gaps = self.next_gap_check.unwrap_or(sweep);
            Output::Timeout(sweep.min(signals).min(gaps))
        })
    }

    /// Sends `msg` to worker `to`; to ourselves it is a plain call.
    fn dispatch(&mut self, now: Now, to: WorkerId, msg: PeerMsg) {
        if to == self.cfg.worker {
            self.on_peer(now, msg);
        } else {
            self.out.push_back(Output::Peer {
                to,
                event: PeerEvent(msg),
            });
        }
    }

    fn on_peer(&mut self, now: Now, msg: PeerMsg) {
        let Some(msg) = self.gate(msg) else { return };
        match msg {
            PeerMsg::Join {
                from,
                conn,
                member,
                since,
                v2,
            } => self.on_join(now, from, conn, member, since, v2),
            PeerMsg::Backlog {
                conn,
                room,
                frames,
                token,
            } => self.on_backlog(conn, &room, frames, token),
            PeerMsg::Leave {
                from,
                member,
                v2,
                unsubscribe,
            } => self.on_leave(now, from, member, v2, unsubscribe),
            PeerMsg::Submit(submit) => self.on_submit(now, submit),
            PeerMsg::Broadcast {
                room,
                frame,
                received,
                audience,
            } => self.deliver_local(&room, frame, received, audience),
            PeerMsg::Direct { conn, room, frame } => self.send_direct(conn, room, frame),
            PeerMsg::Typing { member, stop } => self.on_typing(now, member, stop),
            PeerMsg::Read { member, seq } => self.on_read(now, member, seq),
            PeerMsg::Ask {
                from,
                gather,
                ask: peer::Ask::Publish(p),
            } if self.cfg.broker => self.sequence_publish(now, from, gather, &p),
            PeerMsg::Ask { from, gather, ask } => {
                let part = self.answer(now, ask);
                self.dispatch(now, from, PeerMsg::Part { gather, part });
            }
            PeerMsg::Part { gather, part } => self.on_part(now, gather, part),
            PeerMsg::Refused {
                conn,
                room,
                token,
                id,
                code,
            } => self.on_refused(now, conn, &room, token, id, code),
            PeerMsg::End { room, user, reason } => {
                self.end_subscriptions(now, &room, user.as_deref(), reason, reason);
            }
            PeerMsg::Remote(remote) => self.on_remote(now, *remote),
        }
    }
}

/// The `limit` of the history endpoints: default 50, at most 200; a missing, non-numeric
/// or non-positive value means the default.
///
/// ```
/// use hubbub_core::history_limit;
/// assert_eq!(history_limit(None), 50);
/// assert_eq!(history_limit(Some("10")), 10);
/// assert_eq!(history_limit(Some("1000")), 200);
/// assert_eq!(history_limit(Some("-3")), 50);
/// assert_eq!(history_limit(Some("ten")), 50);
/// ```
pub fn history_limit(raw: Option<&str>) -> usize {
    match raw.and_then(|s| s.trim().parse::<i64>().ok()) {
        Some(n) if n > 0 => n.min(200) as usize,
        _ => 50,
    }
}

#[cfg(test)]
mod directory_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod v2_tests;
