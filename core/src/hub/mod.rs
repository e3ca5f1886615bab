//! The hub: one per worker, a deterministic state machine that owns a shard of rooms.
//!
//! Methods fall into three kinds, as in quinn-proto:
//! - inputs, each taking [`Now`]: [`Hub::admit`], [`Hub::handle_open`],
//!   [`Hub::handle_frame`], [`Hub::handle_close`], [`Hub::handle_queued`],
//!   [`Hub::handle_peer`], [`Hub::handle_query`], [`Hub::handle_timeout`],
//!   [`Hub::begin_shutdown`];
//! - one output drain, [`Hub::poll_output`], to call after every input until it yields
//!   [`Output::Timeout`];
//! - getters ([`Hub::connections`], [`Hub::worker`]).

mod output;
mod peer;
mod query;
mod retention;
mod rooms;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use output::{Answer, ConnId, Output, Query, QueryId};
pub use peer::PeerEvent;

use crate::analytics::{Counters, LatencyWindow, MinuteCounts};
use crate::connect::{AllowedOrigins, ConnectParams, Refusal, UpgradeRequest};
use crate::gauge::{ConnectionGauge, Reservation};
use crate::protocol::{self, ChatMessageRef, ErrorCode, FrameError, PresenceKind};
use crate::rand::SplitMix64;
use crate::ratelimit::{RateLimit, TokenBucket};
use crate::route::{owner_of, WorkerId};
use crate::time::{Mono, Now, UnixMillis};
use peer::{Member, PeerMsg};
use retention::{Ledger, Retained};
use rooms::{Entry, LocalRoom, OwnedRoom, UserIndex};

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
    /// HMAC secret; `None` disables token auth.
    pub auth_secret: Option<Vec<u8>>,
    /// Origins allowed to open a WebSocket.
    pub allowed_origins: AllowedOrigins,
    /// Send join/leave events.
    pub presence: bool,
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
            auth_secret: None,
            allowed_origins: AllowedOrigins::Any,
            presence: true,
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
    /// A ping (the codec answers it) or a pong: activity only.
    Control,
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
}

impl Admission {
    /// The user id (the token's, when auth is on).
    pub fn user_id(&self) -> &str {
        &self.params.user_id
    }

    /// The room the connection joins.
    pub fn room(&self) -> &str {
        &self.params.room
    }

    /// The display name.
    pub fn username(&self) -> &str {
        &self.params.username
    }
}

#[derive(Debug)]
struct Conn {
    member: Member,
    client_id: uuid::Uuid,
    joined_at: UnixMillis,
    bucket: TokenBucket,
    last_seen: Mono,
    pinged: bool,
    last_rate_error: Option<Mono>,
    /// Receiving live messages (its backlog arrived); `pos` is its place in the room.
    live: bool,
    pos: u32,
    closing: bool,
    _reservation: Reservation,
}

/// A backlog or `since` replay too big to hand over at once, streamed a slice at a time;
/// the room's live messages that arrive meanwhile wait behind it here.
#[derive(Debug)]
struct Replay {
    /// What is left of the backlog or replay.
    backlog: VecDeque<Bytes>,
    /// The room's live messages since, in order.
    live: Vec<Bytes>,
    /// Their bytes: past `max_queued_bytes` the connection is a slow consumer (the
    /// replay itself never counts).
    live_bytes: usize,
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
    /// Replays being streamed, by connection (few at a time: nothing per idle connection).
    replays: HashMap<ConnId, Replay>,
    /// Incarnation numbers for new owned rooms.
    next_room_id: u64,
    /// Every retained message of the owned rooms, oldest first, against the byte budget.
    retention: Ledger,
    user_index: UserIndex,
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
    storage: StorageStatus,
    persist: Option<Box<dyn PersistSink>>,
}

impl std::fmt::Debug for dyn PersistSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersistSink")
    }
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
            next_room_id: 1,
            retention: Ledger::new(cfg.max_history_bytes),
            counters: Counters::default(),
            minutes: MinuteCounts::default(),
            latency: LatencyWindow::new(),
            gathers: HashMap::new(),
            anonymous: Arc::from(crate::connect::DEFAULT_USERNAME),
            next_gather: 0,
            out: VecDeque::new(),
            scratch: Vec::with_capacity(2048),
            fanout_scratch: Vec::new(),
            errors,
            next_sweep: None,
            shutting_down: false,
            storage: StorageStatus::Disabled,
            persist: None,
            cfg,
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

    /// Installs the persistence queue; from now on the rooms this hub owns hand every
    /// accepted message to it.
    pub fn set_persist_sink(&mut self, sink: Box<dyn PersistSink>) {
        self.persist = Some(sink);
    }

    /// Tells the hub how the durable store is doing, for `/health`.
    pub fn set_storage_status(&mut self, status: StorageStatus) {
        self.storage = status;
    }

    /// Decides an upgrade request before any WebSocket frame: shutdown, origin,
    /// parameters, token, then the connection limit.
    pub fn admit(&self, now: Now, req: &UpgradeRequest<'_>) -> Result<Admission, Refusal> {
        if self.shutting_down {
            return Err(Refusal::ShuttingDown);
        }
        if let Some(origin) = req.origin {
            if !self.cfg.allowed_origins.allows(origin) {
                return Err(Refusal::Origin);
            }
        }
        let mut params = ConnectParams::parse(req.query)?;
        if let Some(secret) = &self.cfg.auth_secret {
            let token = params
                .token
                .as_deref()
                .or(req.bearer())
                .ok_or(crate::auth::TokenError::Missing)?;
            let user = crate::auth::verify(secret, token, now.wall)?;
            if user.chars().count() > crate::connect::MAX_USER_ID_CHARS {
                return Err(crate::connect::ParamError::UserId.into());
            }
            params.user_id = user;
        }
        params.token = None;
        let reservation = self.gauge.try_reserve().ok_or(Refusal::AtCapacity)?;
        Ok(Admission {
            params,
            reservation,
        })
    }

    /// A connection finished its upgrade. It joins its room: the room's owner sends the
    /// backlog (or the `since` replay), then live messages follow.
    pub fn handle_open(&mut self, now: Now, admission: Admission) -> ConnId {
        self.arm_sweep(now);
        let Admission {
            params,
            reservation,
        } = admission;
        // Names are shared with the maps that already hold them (and the username with
        // the user id when they are equal): no string per connection while idle.
        let room = match self.local.get_key_value(params.room.as_str()) {
            Some((name, _)) => name.clone(),
            None => Arc::from(params.room),
        };
        let user = match self.users.get_key_value(params.user_id.as_str()) {
            Some((name, _)) => name.clone(),
            None => Arc::from(params.user_id),
        };
        let username = if params.username == *user {
            user.clone()
        } else if params.username == *self.anonymous {
            self.anonymous.clone()
        } else {
            Arc::from(params.username)
        };
        let member = Member {
            room,
            user,
            username,
        };
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        let id = ConnId {
            index,
            generation: slot.generation,
        };
        *self.users.entry(member.user.clone()).or_insert(0) += 1;
        self.local.entry(member.room.clone()).or_default().pending += 1;
        slot.conn = Some(Conn {
            member: member.clone(),
            client_id: self.rng.uuid_v7(now.wall.0),
            joined_at: now.wall,
            bucket: TokenBucket::new(self.cfg.rate_limit, now.mono),
            last_seen: now.mono,
            pinged: false,
            last_rate_error: None,
            live: false,
            pos: 0,
            closing: false,
            _reservation: reservation,
        });
        self.open += 1;
        let owner = owner_of(&member.room, self.cfg.workers);
        let from = self.cfg.worker;
        self.dispatch(
            now,
            owner,
            PeerMsg::Join {
                from,
                conn: id,
                member,
                since: params.since,
            },
        );
        id
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        let slot = self.slots.get_mut(id.index())?;
        if slot.generation != id.generation {
            return None;
        }
        slot.conn.as_mut()
    }

    /// A frame arrived on `conn`.
    pub fn handle_frame(&mut self, now: Now, conn: ConnId, frame: Inbound<'_>) {
        let limit = self.cfg.rate_limit;
        let Some(c) = self.conn_mut(conn) else { return };
        if c.closing {
            return;
        }
        c.last_seen = now.mono;
        c.pinged = false;
        let text = match frame {
            Inbound::Text(text) => text,
            Inbound::Control => return,
            Inbound::Binary => return self.close(conn, 1003, "binary frames are not supported"),
            Inbound::InvalidUtf8 => return self.close(conn, 1007, "text frames must be UTF-8"),
            Inbound::TooLarge => return self.close(conn, 1009, "frame larger than 8192 bytes"),
            Inbound::ProtocolError => return self.close(conn, 1002, "WebSocket protocol error"),
        };
        if !c.bucket.try_take(limit, now.mono) {
            let report = c
                .last_rate_error
                .is_none_or(|t| now.mono.saturating_since(t) >= Duration::from_secs(1));
            if report {
                c.last_rate_error = Some(now.mono);
            }
            self.counters.rate_limited += 1;
            if report {
                self.send_error(conn, ErrorCode::RateLimited);
            }
            return;
        }
        match protocol::decode_client_frame(text) {
            Ok(frame) => {
                let member = c.member.clone();
                let owner = owner_of(&member.room, self.cfg.workers);
                let msg = PeerMsg::Submit {
                    from: self.cfg.worker,
                    conn,
                    member,
                    content: frame.content.into(),
                    received: now.mono,
                };
                self.dispatch(now, owner, msg);
            }
            Err(e) => {
                self.counters.rejected += 1;
                self.send_error(conn, FrameError::code(e));
            }
        }
    }

    /// The driver's outbound queue for `conn` holds `queued_bytes` it could not write yet.
    /// Report it whenever a write leaves bytes behind; past the bound the connection is
    /// closed with 1008 so it never slows anyone else.
    pub fn handle_queued(&mut self, _now: Now, conn: ConnId, queued_bytes: usize) {
        let max = self.cfg.max_queued_bytes;
        let Some(c) = self.conn_mut(conn) else { return };
        if c.closing || queued_bytes <= max {
            return;
        }
        self.counters.slow_consumer_closes += 1;
        self.close(conn, 1008, "slow consumer: outbound queue full");
    }

    /// Everything queued for `conn` has been written, as asked by
    /// [`Output::NotifyWritten`]: the next slice of its replay follows (and once the
    /// replay is out, the live messages that waited behind it).
    pub fn handle_written(&mut self, _now: Now, conn: ConnId) {
        if self.conn_mut(conn).is_some_and(|c| !c.closing) {
            self.send_replay_slice(conn);
        }
    }

    /// The driver has handed a broadcast that [`Output::Deliver`] gave it, read at
    /// `received`, to its recipients' sockets: one fan-out latency sample (`now` is
    /// when the sends went out).
    pub fn handle_delivered(&mut self, now: Now, received: Mono) {
        let micros = crate::analytics::micros_between(received, now.mono);
        self.latency.record(now.wall, micros);
    }

    /// `conn` is gone (closed by either side). Releases it; its id becomes stale.
    pub fn handle_close(&mut self, now: Now, conn: ConnId) {
        let Some(slot) = self.slots.get_mut(conn.index()) else {
            return;
        };
        if slot.generation != conn.generation {
            return;
        }
        let Some(c) = slot.conn.take() else { return };
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(conn.index);
        self.open -= 1;
        if let Some(n) = self.users.get_mut(&*c.member.user) {
            *n -= 1;
            if *n == 0 {
                self.users.remove(&*c.member.user);
            }
        }
        if let Some(room) = self.local.get_mut(&*c.member.room) {
            if c.live {
                if let Some(moved) = room.swap_remove(c.pos) {
                    if let Some(m) = self.slots[moved.index()].conn.as_mut() {
                        m.pos = c.pos;
                    }
                }
            } else {
                room.pending = room.pending.saturating_sub(1);
                if self.replays.remove(&conn).is_some() {
                    room.replaying.retain(|&r| r != conn);
                }
            }
            if room.is_empty() {
                self.local.remove(&*c.member.room);
            }
        }
        let owner = owner_of(&c.member.room, self.cfg.workers);
        self.dispatch(
            now,
            owner,
            PeerMsg::Leave {
                from: self.cfg.worker,
                member: c.member,
            },
        );
    }

    /// An event from another hub (carried by the driver from that hub's
    /// [`Output::Peer`]).
    pub fn handle_peer(&mut self, now: Now, event: PeerEvent) {
        self.on_peer(now, event.0);
    }

    /// Timers: pings idle connections and closes silent ones.
    pub fn handle_timeout(&mut self, now: Now) {
        self.arm_sweep(now);
        if self.next_sweep.is_some_and(|t| now.mono < t) {
            return;
        }
        self.next_sweep = Some(now.mono + self.cfg.sweep_every);
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            let id = ConnId {
                index: index as u32,
                generation: slot.generation,
            };
            let Some(c) = slot.conn.as_mut() else {
                continue;
            };
            if c.closing {
                continue;
            }
            let silent = now.mono.saturating_since(c.last_seen);
            if silent >= self.cfg.idle_timeout {
                self.close(id, 1000, "idle timeout");
            } else if silent >= self.cfg.ping_after && !c.pinged {
                c.pinged = true;
                self.out.push_back(Output::Ping { conn: id });
            }
        }
    }

    /// Stops admitting and closes every connection with 1001. The driver keeps draining
    /// outputs and reporting closes until [`connections`](Hub::connections) is 0.
    pub fn begin_shutdown(&mut self, _now: Now) {
        self.shutting_down = true;
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            let id = ConnId {
                index: index as u32,
                generation: slot.generation,
            };
            if slot.conn.as_ref().is_some_and(|c| !c.closing) {
                self.close(id, 1001, "server shutting down");
            }
        }
    }

    /// The next thing for the driver to do. Call after every input until it returns
    /// [`Output::Timeout`].
    #[must_use = "outputs are the hub's decisions; drop one and a frame, close or reply is lost"]
    pub fn poll_output(&mut self) -> Output {
        self.out.pop_front().unwrap_or(Output::Timeout(
            self.next_sweep.unwrap_or(Mono::from_nanos(u64::MAX)),
        ))
    }

    fn arm_sweep(&mut self, now: Now) {
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now.mono + self.cfg.sweep_every);
        }
    }

    fn close(&mut self, conn: ConnId, code: u16, reason: &'static str) {
        if let Some(c) = self.conn_mut(conn) {
            c.closing = true;
            self.out.push_back(Output::Close { conn, code, reason });
        }
    }

    fn send_error(&mut self, conn: ConnId, code: ErrorCode) {
        let i = ERROR_CODES.iter().position(|&c| c == code).unwrap_or(0);
        self.out.push_back(Output::Send {
            conn,
            frame: self.errors[i].clone(),
        });
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

    /// With a durable store, holds back what concerns a room whose state is not loaded
    /// yet (asking for it on first use); hands everything else through.
    fn gate(&mut self, msg: PeerMsg) -> Option<PeerMsg> {
        if !self.cfg.durable {
            return Some(msg);
        }
        let (room, first_use) = match &msg {
            PeerMsg::Join { member, .. } | PeerMsg::Submit { member, .. } => {
                (member.room.clone(), true)
            }
            // A leave must not overtake the join it undoes while that join waits.
            PeerMsg::Leave { member, .. } => (member.room.clone(), false),
            _ => return Some(msg),
        };
        let workers = self.cfg.workers as usize;
        match self.owned.get_mut(&*room) {
            Some(r) => match r.loading.as_mut() {
                Some(waiting) => {
                    waiting.push(msg);
                    None
                }
                None => Some(msg),
            },
            None if first_use => {
                let id = self.next_room_id;
                self.next_room_id += 1;
                let mut r = OwnedRoom::new(id, workers);
                r.loading = Some(vec![msg]);
                self.owned.insert(room.clone(), r);
                let recent = self.cfg.history_size;
                self.out.push_back(Output::LoadRoom { room, recent });
                None
            }
            None => Some(msg),
        }
    }

    /// The durable store answered an [`Output::LoadRoom`]: `state` is the room's last
    /// stored `seq` and its newest messages, oldest first, or `None` if the store could not
    /// answer (the room then starts afresh: availability over continuity, and the log of
    /// the driver should say so). What waited for the room is handled now.
    pub fn handle_room_loaded(
        &mut self,
        now: Now,
        room: &str,
        state: Option<(u64, Vec<protocol::ChatMessage>)>,
    ) {
        let Some((name, _)) = self.owned.get_key_value(room) else {
            return;
        };
        let name = name.clone();
        let Some(r) = self.owned.get_mut(room) else {
            return;
        };
        let Some(waiting) = r.loading.take() else {
            return;
        };
        if let Some((last_seq, recent)) = state {
            r.last_seq = r.last_seq.max(last_seq);
            for m in recent {
                self.scratch.clear();
                protocol::encode_chat_message(&mut self.scratch, &m);
                let frame = Bytes::copy_from_slice(&self.scratch);
                if let Some(r) = self.owned.get_mut(room) {
                    r.last_seq = r.last_seq.max(m.seq);
                }
                self.retain(
                    &name,
                    Entry {
                        seq: m.seq,
                        at: UnixMillis(0),
                        frame,
                    },
                );
            }
        }
        for msg in waiting {
            self.on_peer(now, msg);
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
            } => self.on_join(now, from, conn, member, since),
            PeerMsg::Backlog { conn, room, frames } => self.on_backlog(conn, &room, frames),
            PeerMsg::Leave { from, member } => self.on_leave(now, from, member),
            PeerMsg::Submit {
                from,
                conn,
                member,
                content,
                received,
            } => self.on_submit(now, from, conn, member, content, received),
            PeerMsg::Broadcast {
                room,
                frame,
                received,
            } => self.deliver_local(&room, frame, received),
            PeerMsg::Refused { conn, code } => {
                if self.conn_mut(conn).is_some() {
                    self.send_error(conn, code);
                }
            }
            PeerMsg::Ask { from, gather, ask } => {
                let part = self.answer(now, ask);
                self.dispatch(now, from, PeerMsg::Part { gather, part });
            }
            PeerMsg::Part { gather, part } => self.on_part(now, gather, part),
        }
    }

    fn owned_room(&mut self, room: &Arc<str>) -> &mut OwnedRoom {
        let workers = self.cfg.workers as usize;
        let next_id = &mut self.next_room_id;
        self.owned.entry(room.clone()).or_insert_with(|| {
            *next_id += 1;
            OwnedRoom::new(*next_id - 1, workers)
        })
    }

    /// Keeps `entry` in `room`'s history (which must exist), within both the room's
    /// count and the hub's byte budget.
    fn retain(&mut self, room: &Arc<str>, entry: Entry) {
        let history = self.cfg.history_size;
        if history == 0 {
            return;
        }
        let Some(r) = self.owned.get_mut(&**room) else {
            return;
        };
        let retained = Retained {
            key: room.clone(),
            incarnation: r.id,
            seq: entry.seq,
            cost: entry.cost(),
        };
        if let Some(dropped) = r.append(entry, history) {
            self.retention.released(dropped.cost());
        }
        self.retention.retained(retained);
        let owned = &mut self.owned;
        self.retention.trim(|oldest, release| {
            let Some(r) = owned.get_mut(&*oldest.key) else {
                return;
            };
            if r.id != oldest.incarnation {
                return;
            }
            // Entries before the room's oldest retained message are stale; the first live
            // one is that message.
            while r.history.front().is_some_and(|e| e.seq <= oldest.seq) {
                if let Some(e) = r.history.pop_front() {
                    release(e.cost());
                }
            }
            // A ring the budget has thinned gives back its room (an idle room may keep
            // it for a long time).
            let len = r.history.len();
            if r.history.capacity() > 2 * len + 16 {
                r.history.shrink_to(len);
            }
        });
        let owned = &self.owned;
        self.retention.compact(|e| {
            owned.get(&*e.key).is_some_and(|r| {
                r.id == e.incarnation && r.history.front().is_some_and(|f| f.seq <= e.seq)
            })
        });
    }

    /// Forgets an owned room and the history it retained.
    fn forget_room(&mut self, room: &str) {
        if let Some(r) = self.owned.remove(room) {
            for e in &r.history {
                self.retention.released(e.cost());
            }
        }
    }

    fn on_join(
        &mut self,
        now: Now,
        from: WorkerId,
        conn: ConnId,
        member: Member,
        since: Option<u64>,
    ) {
        let backlog = self.cfg.backlog_size;
        let room = self.owned_room(&member.room);
        let was_idle = std::mem::take(&mut room.idle_mark) != 0;
        if let Some(n) = room.per_worker.get_mut(from.index()) {
            *n += 1;
        }
        *room.users.entry(member.user.clone()).or_insert(0) += 1;
        room.connections += 1;
        let frames = match since {
            Some(since) => room.after(since).map(|e| e.frame.clone()).collect(),
            None => room.newest(backlog).map(|e| e.frame.clone()).collect(),
        };
        if was_idle {
            self.idle_count -= 1;
        }
        let room_name = member.room.clone();
        self.dispatch(
            now,
            from,
            PeerMsg::Backlog {
                conn,
                room: room_name,
                frames,
            },
        );
        self.presence(now, PresenceKind::Join, &member);
    }

    fn on_backlog(&mut self, conn: ConnId, room: &Arc<str>, frames: Vec<Bytes>) {
        let slice = self.replay_slice();
        let replaying = self.replays.contains_key(&conn);
        let Some(c) = self.conn_mut(conn) else { return };
        if c.live || replaying || c.member.room != *room {
            return;
        }
        if frames.iter().map(Bytes::len).sum::<usize>() <= slice {
            self.go_live(conn, room);
            self.out
                .extend(frames.into_iter().map(|frame| Output::Send { conn, frame }));
            return;
        }
        // Too big to queue at once (a whole retained history, say): streamed in slices as
        // the connection drains, with live messages held back behind it.
        self.replays.insert(
            conn,
            Replay {
                backlog: frames.into(),
                live: Vec::new(),
                live_bytes: 0,
            },
        );
        self.local
            .entry(room.clone())
            .or_default()
            .replaying
            .push(conn);
        self.send_replay_slice(conn);
    }

    /// How much of a replay is handed over at once: at most [`REPLAY_SLICE`], and well
    /// within the slow-consumer bound.
    fn replay_slice(&self) -> usize {
        (self.cfg.max_queued_bytes / 2).clamp(1, REPLAY_SLICE)
    }

    /// Hands the next slice of `conn`'s replay to the driver. Once the driver has
    /// written all of it, the live messages that waited follow (as deliveries to it
    /// alone) and the connection joins its room's live members.
    fn send_replay_slice(&mut self, conn: ConnId) {
        let slice = self.replay_slice();
        let Some(replay) = self.replays.get_mut(&conn) else {
            return;
        };
        if !replay.backlog.is_empty() {
            let mut sent = 0;
            while sent < slice {
                let Some(frame) = replay.backlog.pop_front() else {
                    break;
                };
                sent += frame.len();
                self.out.push_back(Output::Send { conn, frame });
            }
            if !(replay.backlog.is_empty() && replay.live.is_empty()) {
                self.out.push_back(Output::NotifyWritten { conn });
                return;
            }
        }
        if !replay.live.is_empty() {
            let to: Arc<[ConnId]> = Arc::from(&[conn][..]);
            self.counters.deliveries += replay.live.len() as u64;
            self.out
                .extend(replay.live.drain(..).map(|frame| Output::Deliver {
                    frame,
                    to: to.clone(),
                    received: None,
                }));
        }
        self.replays.remove(&conn);
        let Some(room) = self.conn_mut(conn).map(|c| c.member.room.clone()) else {
            return;
        };
        if let Some(local) = self.local.get_mut(&*room) {
            local.replaying.retain(|&r| r != conn);
        }
        self.go_live(conn, &room);
    }

    /// `conn`'s backlog is out: it receives the room's live messages from now on.
    fn go_live(&mut self, conn: ConnId, room: &Arc<str>) {
        let Some(c) = self.conn_mut(conn) else { return };
        c.live = true;
        let local = self.local.entry(room.clone()).or_default();
        local.pending = local.pending.saturating_sub(1);
        let pos = local.push(conn);
        if let Some(c) = self.conn_mut(conn) {
            c.pos = pos;
        }
    }

    fn on_leave(&mut self, now: Now, from: WorkerId, member: Member) {
        let Some(room) = self.owned.get_mut(&*member.room) else {
            return;
        };
        if let Some(n) = room.per_worker.get_mut(from.index()) {
            *n = n.saturating_sub(1);
        }
        if let Some(n) = room.users.get_mut(&*member.user) {
            *n -= 1;
            if *n == 0 {
                room.users.remove(&*member.user);
            }
        }
        room.connections = room.connections.saturating_sub(1);
        if room.connections == 0 {
            let mark = self.next_idle_mark;
            self.next_idle_mark += 1;
            room.idle_mark = mark;
            self.idle.push_back((member.room.clone(), mark));
            self.idle_count += 1;
            self.evict_idle_rooms();
        }
        self.presence(now, PresenceKind::Leave, &member);
    }

    /// Forgets the longest-idle rooms beyond `max_idle_rooms`.
    fn evict_idle_rooms(&mut self) {
        while self.idle_count > self.cfg.max_idle_rooms {
            let Some((name, mark)) = self.idle.pop_front() else {
                break;
            };
            if self.owned.get(&*name).is_some_and(|r| r.idle_mark == mark) {
                self.forget_room(&name);
                self.idle_count -= 1;
            }
        }
        // Entries of rooms that became active again are skipped above and dropped from
        // the front as they surface; one that churns (a single occupant coming and going)
        // leaves them behind live ones, so they are swept out once they outnumber the
        // idle rooms: the queue stays proportional to the idle rooms.
        while let Some((name, mark)) = self.idle.front() {
            if self
                .owned
                .get(&**name)
                .is_some_and(|r| r.idle_mark == *mark)
            {
                break;
            }
            self.idle.pop_front();
        }
        if self.idle.len() > 2 * self.idle_count + 64 {
            let owned = &self.owned;
            self.idle
                .retain(|(name, mark)| owned.get(&**name).is_some_and(|r| r.idle_mark == *mark));
        }
    }

    fn presence(&mut self, now: Now, kind: PresenceKind, member: &Member) {
        if !self.cfg.presence {
            return;
        }
        self.scratch.clear();
        let ts = now.wall.to_rfc3339();
        protocol::encode_presence(
            &mut self.scratch,
            kind,
            &member.room,
            &member.user,
            &member.username,
            ts.as_str(),
        );
        let frame = Bytes::copy_from_slice(&self.scratch);
        self.fan_out(&member.room, frame, None);
    }

    fn on_submit(
        &mut self,
        now: Now,
        from: WorkerId,
        conn: ConnId,
        member: Member,
        content: Box<str>,
        received: Mono,
    ) {
        let seq = self.owned_room(&member.room).last_seq + 1;
        let message_id = self.rng.uuid_v7(now.wall.0);
        if let Some(sink) = self.persist.as_mut() {
            let record = PersistRecord {
                message_id,
                room_id: member.room.clone(),
                user_id: member.user.clone(),
                username: member.username.clone(),
                content: content.clone(),
                timestamp: now.wall,
                seq,
            };
            if sink.try_push(record).is_err() {
                match self.cfg.overflow {
                    OverflowPolicy::Reject => {
                        self.counters.overloaded += 1;
                        let code = ErrorCode::Overloaded;
                        return self.dispatch(now, from, PeerMsg::Refused { conn, code });
                    }
                    OverflowPolicy::Drop => self.counters.persist_dropped += 1,
                }
            }
        }
        let mut id_buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let ts = now.wall.to_rfc3339();
        self.scratch.clear();
        protocol::encode_chat(
            &mut self.scratch,
            &ChatMessageRef {
                message_id: message_id.hyphenated().encode_lower(&mut id_buf),
                room_id: &member.room,
                kind: "chat",
                user_id: &member.user,
                username: &member.username,
                content: &content,
                timestamp: ts.as_str(),
                seq,
            },
        );
        let frame = Bytes::copy_from_slice(&self.scratch);
        let room = self.owned_room(&member.room);
        room.last_seq = seq;
        room.messages += 1;
        self.retain(
            &member.room,
            Entry {
                seq,
                at: now.wall,
                frame: frame.clone(),
            },
        );
        self.user_index.push(&member.user, now.wall, frame.clone());
        self.counters.messages += 1;
        self.minutes.add(now.wall, 1);
        self.fan_out(&member.room, frame, Some(received));
    }

    /// One push per worker with members in `room`; our own members get it directly.
    fn fan_out(&mut self, room: &Arc<str>, frame: Bytes, received: Option<Mono>) {
        let mut targets = std::mem::take(&mut self.fanout_scratch);
        targets.clear();
        if let Some(r) = self.owned.get(&**room) {
            let with_members = r.per_worker.iter().enumerate().filter(|(_, &n)| n > 0);
            targets.extend(with_members.map(|(w, _)| WorkerId(w as u16)));
        }
        for &w in &targets {
            if w == self.cfg.worker {
                self.deliver_local(room, frame.clone(), received);
            } else {
                let msg = PeerMsg::Broadcast {
                    room: room.clone(),
                    frame: frame.clone(),
                    received,
                };
                self.out.push_back(Output::Peer {
                    to: w,
                    event: PeerEvent(msg),
                });
            }
        }
        self.fanout_scratch = targets;
    }

    fn deliver_local(&mut self, room: &str, frame: Bytes, received: Option<Mono>) {
        let Some(local) = self.local.get_mut(room) else {
            return;
        };
        if !local.replaying.is_empty() {
            // Behind their replay; sent when it is.
            let max = self.cfg.max_queued_bytes;
            let mut slow = Vec::new();
            for &id in &local.replaying {
                let closing = self.slots[id.index()]
                    .conn
                    .as_ref()
                    .is_none_or(|c| c.closing);
                let Some(replay) = self.replays.get_mut(&id).filter(|_| !closing) else {
                    continue;
                };
                replay.live.push(frame.clone());
                replay.live_bytes += frame.len();
                if replay.live_bytes > max {
                    slow.push(id);
                }
            }
            for id in slow {
                self.counters.slow_consumer_closes += 1;
                self.close(id, 1008, "slow consumer: outbound queue full");
            }
        }
        let Some(to) = self.local.get_mut(room).and_then(LocalRoom::recipients) else {
            return;
        };
        self.counters.deliveries += to.len() as u64;
        self.out.push_back(Output::Deliver {
            frame,
            to,
            received,
        });
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
mod tests;
