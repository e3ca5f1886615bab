//! Property tests of the hub's guarantees, run on the deterministic simulator in `sim/`.
//!
//! proptest generates a configuration (1–4 workers, history and backlog sizes, a rate
//! limit, a presence bound, and in some cases a durable store — with history stored
//! before the run, loads answered late or failing, and few idle rooms kept so rooms are
//! evicted and loaded again), a seed for the interleaving of peer events and a sequence
//! of client *operations* — open with a room, an optional `since` and sometimes the user
//! id of an earlier connection, send a frame (valid or not), close, report queued bytes,
//! let time pass, ask for stats, deliver peer events — and after the run checks what
//! every connection received against what the owners sequenced and loaded (the
//! simulator's journal), against a model of each connection's rate limit, and against a
//! model of presence replayed in each room's owner's order of joins and leaves.
//!
//! Protocol v2 (docs/PROTOCOL.md §7) has its own operations and checks in `sim::v2`, run
//! by the `v2_*` properties below.

mod sim;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use hubbub_core::protocol::ChatMessage;
use hubbub_core::upgrade::Refusal;
use hubbub_core::*;
use proptest::prelude::*;
/// A legacy secret of the minimum length.
const SIM_SECRET: &[u8; 32] = b"sim-secret-0123456789abcdefghijk";

use sim::{parse, Frame, Journal, Key, Move, Sim, StorePolicy, Via, BASE_WALL_MS};

const ROOMS: [&str; 3] = ["lobby", "r1", "team:eu"];
const MAX_QUEUED: usize = 4096;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Valid,
    Escaped,
    BadJson,
    BadType,
    Empty,
    TooLong,
    Binary,
    Pong,
}

#[derive(Debug, Clone)]
enum Op {
    Open {
        worker: usize,
        room: usize,
        since: Option<u64>,
        /// Connect as the user of an earlier connection (this index modulo their number),
        /// so a user may hold several connections, in one room or several.
        as_user: Option<usize>,
    },
    Send {
        client: usize,
        kind: Kind,
    },
    /// `n` valid chats at the same instant (to reach the rate limit).
    Burst {
        client: usize,
        n: usize,
    },
    Close {
        client: usize,
    },
    Queued {
        client: usize,
        over: bool,
    },
    Advance {
        millis: u64,
    },
    Idle {
        secs: u64,
    },
    Stats {
        worker: usize,
    },
    Deliver {
        n: usize,
    },
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        12 => Just(Kind::Valid),
        2 => Just(Kind::Escaped),
        1 => Just(Kind::BadJson),
        1 => Just(Kind::BadType),
        1 => Just(Kind::Empty),
        1 => Just(Kind::TooLong),
        1 => Just(Kind::Binary),
        1 => Just(Kind::Pong),
    ]
}

fn open() -> impl Strategy<Value = Op> {
    (
        0usize..4,
        0usize..ROOMS.len(),
        prop_oneof![
            3 => Just(None),
            2 => (0u64..12).prop_map(Some),
            1 => (490u64..505).prop_map(Some),
            1 => Just(Some(u64::MAX)),
        ],
        prop_oneof![2 => Just(None), 1 => any::<usize>().prop_map(Some)],
    )
        .prop_map(|(worker, room, since, as_user)| Op::Open {
            worker,
            room,
            since,
            as_user,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => open(),
        20 => (any::<usize>(), kind()).prop_map(|(client, kind)| Op::Send { client, kind }),
        2 => (any::<usize>(), 2usize..14).prop_map(|(client, n)| Op::Burst { client, n }),
        2 => any::<usize>().prop_map(|client| Op::Close { client }),
        1 => (any::<usize>(), prop::bool::weighted(0.3))
            .prop_map(|(client, over)| Op::Queued { client, over }),
        5 => (0u64..700).prop_map(|millis| Op::Advance { millis }),
        1 => (5u64..40).prop_map(|secs| Op::Idle { secs }),
        1 => (0usize..4).prop_map(|worker| Op::Stats { worker }),
        12 => (1usize..8).prop_map(|n| Op::Deliver { n }),
    ]
}

/// Clients come and go often enough that rooms empty out, are evicted and are loaded
/// again while other peers keep talking.
fn churn_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => open(),
        10 => (any::<usize>(), Just(Kind::Valid)).prop_map(|(client, kind)| Op::Send { client, kind }),
        5 => any::<usize>().prop_map(|client| Op::Close { client }),
        8 => (1usize..6).prop_map(|n| Op::Deliver { n }),
        2 => (0u64..700).prop_map(|millis| Op::Advance { millis }),
        1 => (0usize..4).prop_map(|worker| Op::Stats { worker }),
    ]
}

#[derive(Debug, Clone)]
struct Config {
    workers: usize,
    history: usize,
    backlog: usize,
    limit: RateLimit,
    max_idle_rooms: usize,
    durable: Option<Durable>,
    presence: Presence,
}

/// Join/leave frames: on or off, and the most distinct users a room may have for them.
#[derive(Debug, Clone, Copy)]
struct Presence {
    on: bool,
    max_members: usize,
}

impl Default for Presence {
    fn default() -> Self {
        let cfg = HubConfig::new(WorkerId(0), 1);
        Presence {
            on: cfg.presence,
            max_members: cfg.presence_max_members,
        }
    }
}

/// Mostly small bounds, which a run's rooms cross and recross as users come and go; the
/// default too, which no run reaches (every join and leave announced, as before the
/// bound); now and then presence off.
fn presence() -> impl Strategy<Value = Presence> {
    let default = Presence::default().max_members;
    (
        prop::bool::weighted(0.9),
        prop_oneof![
            2 => Just(1usize),
            2 => Just(2),
            2 => Just(3),
            1 => Just(5),
            3 => Just(default),
        ],
    )
        .prop_map(|(on, max_members)| Presence { on, max_members })
}

/// A durable store behind the hubs.
#[derive(Debug, Clone)]
struct Durable {
    /// Per room of `ROOMS`, the `seq`s the store held before the run (older ones may
    /// have expired, so a run need not start at 1).
    stored: [Option<(u64, u64)>; 3],
    store: StorePolicy,
}

fn durable() -> impl Strategy<Value = Durable> {
    let stored = prop_oneof![
        2 => Just(None),
        2 => (1u64..12).prop_map(|last| Some((1, last))),
        1 => (1u64..8).prop_map(|n| Some((501 - n, 500))),
    ];
    (
        [stored.clone(), stored.clone(), stored],
        0usize..12,
        prop_oneof![Just(0u32), Just(25), Just(60)],
    )
        .prop_map(|(stored, max_delay, fail_percent)| Durable {
            stored,
            store: StorePolicy {
                max_delay,
                fail_percent,
            },
        })
}

fn config() -> impl Strategy<Value = Config> {
    (
        1usize..=4,
        // History 0 makes a load carry `last_seq` alone, with no message to infer it from.
        prop_oneof![1 => Just(0usize), 4 => Just(4), 4 => Just(1000)],
        prop_oneof![Just(2usize), Just(50)],
        prop_oneof![
            Just(RateLimit::default()),
            Just(RateLimit {
                per_sec: 2.0,
                burst: 3.0
            }),
            Just(RateLimit {
                per_sec: 0.0,
                burst: 0.0
            }),
        ],
        // Without a store an evicted room restarts silently, which `check` cannot tell
        // apart from a bug; with one every new life of a room begins with a load, so
        // durable runs also evict.
        prop_oneof![
            2 => Just(None),
            1 => (durable(), prop_oneof![Just(0usize), Just(1), Just(10_000)])
                .prop_map(Some),
        ],
        presence(),
    )
        .prop_map(
            |(workers, history, backlog, limit, durable, presence)| Config {
                workers,
                history,
                backlog,
                limit,
                max_idle_rooms: durable.as_ref().map_or(10_000, |d| d.1),
                durable: durable.map(|d| d.0),
                presence,
            },
        )
}

/// A message the store held before the run.
fn earlier(room: usize, seq: u64, last: u64) -> ChatMessage {
    ChatMessage {
        message_id: format!("00000000-0000-7000-8000-{:06x}{seq:06x}", room),
        room_id: ROOMS[room].to_owned(),
        kind: Default::default(),
        user_id: "earlier".to_owned(),
        username: "Earlier".to_owned(),
        content: format!("stored {seq}"),
        timestamp: UnixMillis(BASE_WALL_MS - 1000 * (last - seq + 1))
            .to_rfc3339()
            .to_string(),
        seq,
        attachments: vec![],
    }
}

/// One life of a room at its owner: from the load that began it (durable) or from the
/// start of the run to its eviction.
#[derive(Debug, Default)]
struct Life {
    /// Journal position of its `Asked` (0 without a store).
    began: usize,
    /// The `seq` before its first new message: the stored last `seq`, else 0.
    base: u64,
    /// The messages its owner held, oldest first, each with the journal position from
    /// which it held it: those loaded, then those it sequenced.
    held: Vec<(usize, ChatMessage)>,
    /// Messages it sequenced.
    sequenced: u64,
    loaded: bool,
}

impl Life {
    fn last_seq(&self) -> u64 {
        self.held
            .last()
            .map_or(self.base, |m| m.1.seq.max(self.base))
    }

    /// Where the owner's sequence stood at journal position `pos` (the base if its state
    /// was not loaded yet: a join that came then waited for it).
    fn seq_at(&self, pos: usize) -> u64 {
        let before = self.held.iter().rev().find(|(at, _)| *at < pos);
        before.map_or(self.base, |m| m.1.seq.max(self.base))
    }

    /// The oldest `seq` its owner could hand a joiner.
    fn oldest(&self) -> u64 {
        self.held.first().map_or(self.base + 1, |m| m.1.seq)
    }
}

/// Replays the journal: per room, its lives in order. Checks on the way that `seq`
/// continues without gap or repeat — from 1 in a new room, from the stored last `seq`
/// after a load, from 1 again after a failed load — and, with a store, that nothing is
/// sequenced for a room before its load completes. Without a store, `restarts` allows a
/// room to start again at 1 (an eviction, which the journal cannot see).
fn lives(
    journal: &[Journal],
    durable: bool,
    restarts: bool,
) -> Result<HashMap<String, Vec<Life>>, TestCaseError> {
    let mut rooms: HashMap<String, Vec<Life>> = HashMap::new();
    for (pos, event) in journal.iter().enumerate() {
        match event {
            Journal::Asked { room, .. } => {
                prop_assert!(durable, "{} loaded without a store", room);
                let lives = rooms.entry(room.to_string()).or_default();
                prop_assert!(
                    lives.last().is_none_or(|l| l.loaded),
                    "{} asked for again while it loads",
                    room
                );
                lives.push(Life {
                    began: pos,
                    ..Life::default()
                });
            }
            Journal::Loaded { room, state, .. } => {
                let life = rooms.get_mut(&**room).and_then(|l| l.last_mut());
                let Some(life) = life.filter(|l| !l.loaded) else {
                    return Err(TestCaseError::fail(format!("{room} loaded unasked")));
                };
                life.loaded = true;
                if let Some((last_seq, recent)) = state {
                    life.base = *last_seq;
                    life.held = recent.iter().map(|m| (pos, m.clone())).collect();
                }
            }
            Journal::Sequenced(r) => {
                let lives = rooms.entry(r.room_id.to_string()).or_default();
                if !durable && (lives.is_empty() || restarts && r.seq == 1) {
                    lives.push(Life {
                        began: pos,
                        loaded: true,
                        ..Life::default()
                    });
                }
                let life = lives.last_mut();
                let Some(life) = life.filter(|l| l.loaded) else {
                    return Err(TestCaseError::fail(format!(
                        "{} sequenced seq {} before its state was loaded",
                        r.room_id, r.seq
                    )));
                };
                let want = life.base + life.sequenced + 1;
                prop_assert_eq!(
                    r.seq,
                    want,
                    "seq in {} (life from {})",
                    &r.room_id,
                    life.began
                );
                life.sequenced += 1;
                life.held.push((pos, r.to_message()));
            }
        }
    }
    Ok(rooms)
}

/// `Err` with a message unless `cond`: for checks whose failure only means "try the
/// room's next life".
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// What the test expects of one connection.
#[derive(Debug)]
struct Client {
    key: Key,
    serial: usize,
    /// Its user id: `u{serial}`, or an earlier connection's.
    user: String,
    room: &'static str,
    since: Option<u64>,
    opened: Mono,
    /// The journal's length when it opened: its join reached the owner later.
    opened_at: usize,
    /// The model of the hub's token bucket for this connection.
    bucket: TokenBucket,
    last_rate_error: Option<Mono>,
    /// Error codes it must receive, in order.
    errors: Vec<&'static str>,
    /// Contents of the chats it must have had accepted, in order.
    accepted: Vec<String>,
    /// Frames that took a token.
    took: u64,
    dropped: u64,
    rejected: u64,
    last_frame: Mono,
    next_msg: usize,
}

/// A join or leave as the room's owner handled it, and what the bound made of it.
#[derive(Debug)]
struct Handled {
    kind: Move,
    key: Key,
    /// The room's distinct users counting this one: after a join, before a leave.
    counted: usize,
    /// Presence is on and `counted` is within the bound.
    announced: bool,
}

/// A user in a room, as the owner counts them.
#[derive(Debug)]
struct Present {
    connections: usize,
    /// The username of the connection that brought them in.
    username: String,
    /// When that connection's join reached the owner.
    arrived: UnixMillis,
}

/// The chats one connection received, split as they came.
struct Chats {
    backlog: Vec<u64>,
    live: Vec<u64>,
    /// Every chat frame, for comparing with what the owner held.
    frames: Vec<Frame>,
}

struct Run {
    sim: Sim,
    cfg: Config,
    clients: Vec<Client>,
    slow_closes: u64,
}

impl Run {
    fn new(cfg: Config, seed: u64) -> Run {
        let c = cfg.clone();
        let mut sim = Sim::new(cfg.workers, seed, move |h| {
            h.history_size = c.history;
            h.backlog_size = c.backlog;
            h.rate_limit = c.limit;
            h.max_queued_bytes = MAX_QUEUED;
            h.max_idle_rooms = c.max_idle_rooms;
            h.durable = c.durable.is_some();
            h.presence = c.presence.on;
            h.presence_max_members = c.presence.max_members;
        });
        if let Some(d) = &cfg.durable {
            sim.store = d.store;
            for (i, stored) in d.stored.iter().enumerate() {
                if let Some((first, last)) = *stored {
                    let history = (first..=last).map(|seq| earlier(i, seq, last)).collect();
                    sim.preload(ROOMS[i], history);
                }
            }
        }
        Run {
            sim,
            cfg,
            clients: Vec::new(),
            slow_closes: 0,
        }
    }

    fn open_clients(&self) -> Vec<usize> {
        (0..self.clients.len())
            .filter(|&i| !self.sim.gone.contains(&self.clients[i].key))
            .collect()
    }

    fn pick(&self, client: usize) -> Option<usize> {
        let open = self.open_clients();
        (!open.is_empty()).then(|| open[client % open.len()])
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Open {
                worker,
                room,
                since,
                as_user,
            } => {
                let w = worker % self.cfg.workers;
                let room = ROOMS[room];
                let serial = self.clients.len();
                let user = match as_user {
                    Some(k) if serial > 0 => self.clients[k % serial].user.clone(),
                    _ => format!("u{serial}"),
                };
                // The username is the connection's own, so records and presence can be
                // told apart by connection when a user has several.
                let mut query = format!("userId={user}&username=User%20{serial}&room={room}");
                if let Some(s) = since {
                    query.push_str(&format!("&since={s}"));
                }
                let opened_at = self.sim.journal_len();
                let now = self.sim.now();
                let conn = self.sim.open(w, &query).expect("admitted");
                self.clients.push(Client {
                    key: (w, conn),
                    serial,
                    user,
                    room,
                    since,
                    opened: now.mono,
                    opened_at,
                    bucket: TokenBucket::new(self.cfg.limit, now.mono),
                    last_rate_error: None,
                    errors: Vec::new(),
                    accepted: Vec::new(),
                    took: 0,
                    dropped: 0,
                    rejected: 0,
                    last_frame: now.mono,
                    next_msg: 0,
                });
            }
            Op::Send { client, kind } => {
                let Some(i) = self.pick(client) else { return };
                let now = self.sim.now().mono;
                let limit = self.cfg.limit;
                let c = &mut self.clients[i];
                let key = c.key;
                c.next_msg += 1;
                let content = match kind {
                    Kind::Escaped => format!("say \"hé\"\n\\ {}-{}", c.serial, c.next_msg),
                    _ => format!("m{}-{}", c.serial, c.next_msg),
                };
                let text = match kind {
                    Kind::Valid | Kind::Escaped => {
                        serde_json::json!({"type": "chat", "content": content, "seq": 99})
                            .to_string()
                    }
                    Kind::BadJson => "{\"type\":\"chat\",".to_owned(),
                    Kind::BadType => r#"{"type":"join","content":"x"}"#.to_owned(),
                    Kind::Empty => r#"{"type":"chat","content":" \t "}"#.to_owned(),
                    Kind::TooLong => {
                        serde_json::json!({"type": "chat", "content": "é".repeat(1001)}).to_string()
                    }
                    Kind::Binary => return self.sim.frame(key, Inbound::Binary),
                    Kind::Pong => return self.sim.frame(key, Inbound::Pong),
                };
                c.last_frame = now;
                if c.bucket.try_take(limit, now) {
                    c.took += 1;
                    match kind {
                        Kind::Valid | Kind::Escaped => c.accepted.push(content),
                        Kind::BadJson => c.errors.push("invalid_json"),
                        Kind::BadType => c.errors.push("invalid_type"),
                        Kind::Empty => c.errors.push("empty_content"),
                        Kind::TooLong => c.errors.push("content_too_long"),
                        Kind::Binary | Kind::Pong => unreachable!(),
                    }
                    if !matches!(kind, Kind::Valid | Kind::Escaped) {
                        c.rejected += 1;
                    }
                } else {
                    c.dropped += 1;
                    if c.last_rate_error
                        .is_none_or(|t| now.saturating_since(t) >= Duration::from_secs(1))
                    {
                        c.last_rate_error = Some(now);
                        c.errors.push("rate_limited");
                    }
                }
                self.sim.frame(key, Inbound::Text(text.as_bytes()));
            }
            Op::Burst { client, n } => {
                let Some(i) = self.pick(client) else { return };
                for _ in 0..n {
                    let client = self.open_clients().iter().position(|&j| j == i);
                    if let Some(client) = client {
                        self.apply(&Op::Send {
                            client,
                            kind: Kind::Valid,
                        });
                    }
                }
            }
            Op::Close { client } => {
                if let Some(i) = self.pick(client) {
                    self.sim.close(self.clients[i].key);
                }
            }
            Op::Queued { client, over } => {
                if let Some(i) = self.pick(client) {
                    self.slow_closes += u64::from(over);
                    let bytes = if over { MAX_QUEUED + 1 } else { MAX_QUEUED };
                    self.sim.queued(self.clients[i].key, bytes);
                }
            }
            Op::Advance { millis } => self.sim.advance(Duration::from_millis(millis)),
            Op::Idle { secs } => {
                self.sim.advance(Duration::from_secs(secs));
                self.sim.timeout_all();
            }
            Op::Stats { worker } => {
                self.sim.query(worker % self.cfg.workers, Query::Stats);
            }
            Op::Deliver { n } => {
                for _ in 0..n {
                    self.sim.step();
                }
            }
        }
    }

    /// Whether an idle room may have been evicted (and its next use begun a new life).
    fn evicts(&self) -> bool {
        self.cfg.max_idle_rooms < ROOMS.len()
    }

    /// Checks every guarantee once the mesh is quiet and every load answered.
    fn check(&mut self) -> Result<(), TestCaseError> {
        self.sim.settle();
        let sim = &self.sim;
        prop_assert_eq!(sim.loads_pending(), 0, "settle answers every load");
        prop_assert!(sim.stale.is_empty(), "frames to stale ids: {:?}", sim.stale);
        prop_assert!(
            sim.before_load.is_empty(),
            "frames of a room before its load completed: {:?}",
            sim.before_load
        );

        // Sequencing, and each room's lives: what its owner held in each.
        let durable = self.cfg.durable.is_some();
        let records = sim.records();
        let rooms = lives(&sim.journal(), durable, false)?;
        let no_life = Life::default();

        for c in &self.clients {
            let open_at_end = !sim.gone.contains(&c.key);
            let chats = self.chats_of(c)?;

            // Exactly once, in order: the chats a connection receives are +1 each.
            let all: Vec<u64> = chats.backlog.iter().chain(&chats.live).copied().collect();
            for pair in all.windows(2) {
                prop_assert_eq!(pair[1], pair[0] + 1, "client {} got {:?}", c.serial, all);
            }

            // Its join reached the owner in one life of the room: the last one if it is
            // still a member (a room with a member is never evicted), else one that had
            // not ended when it opened.
            let lives: &[Life] = rooms.get(c.room).map_or(&[], Vec::as_slice);
            prop_assert!(
                !durable || !lives.is_empty(),
                "{} was used but never loaded",
                c.room
            );
            let candidates: Vec<&Life> = if lives.is_empty() {
                vec![&no_life]
            } else if open_at_end {
                lives.last().into_iter().collect()
            } else {
                let current = lives.iter().rposition(|l| l.began < c.opened_at);
                lives[current.unwrap_or(0)..].iter().collect()
            };
            let mut why = Vec::new();
            for life in &candidates {
                match self.check_in_life(c, life, &chats, open_at_end) {
                    Ok(()) => break,
                    Err(e) => why.push(e),
                }
            }
            prop_assert!(
                why.len() < candidates.len(),
                "client {} ({:?}) fits no life of {}: {:?}",
                c.serial,
                c,
                c.room,
                why
            );

            // Rate limits and validation: exactly the model's errors, at most one
            // rate_limited a second, accepted within burst + rate × elapsed.
            let mut errors = Vec::new();
            let mut error_times = Vec::new();
            for r in sim.frames(c.key) {
                if let Frame::Error { code } = parse(&r.frame) {
                    prop_assert_eq!(r.via, Via::Send);
                    if code == "rate_limited" {
                        error_times.push(r.at);
                    }
                    errors.push(code);
                }
            }
            prop_assert_eq!(&errors, &c.errors, "errors of client {}", c.serial);
            for pair in error_times.windows(2) {
                prop_assert!(pair[1].saturating_since(pair[0]) >= Duration::from_secs(1));
            }
            if self.cfg.limit.enabled() {
                let elapsed = c.last_frame.saturating_since(c.opened).as_secs_f64();
                let budget = self.cfg.limit.burst + self.cfg.limit.per_sec * elapsed;
                prop_assert!(c.took as f64 <= budget + 1e-9, "{} > {}", c.took, budget);
            } else {
                prop_assert_eq!(c.dropped, 0);
            }
            let username = format!("User {}", c.serial);
            let sent: Vec<&PersistRecord> = records
                .iter()
                .filter(|r| *r.username == *username)
                .collect();
            prop_assert!(
                sent.iter().all(|r| *r.user_id == *c.user),
                "{} as another user",
                username
            );
            let accepted: Vec<&str> = sent.iter().map(|r| &*r.content).collect();
            prop_assert_eq!(
                accepted,
                c.accepted.iter().map(String::as_str).collect::<Vec<_>>()
            );
        }

        // Membership: exactly the open connections, per room. A leave handled before the
        // join it undoes (while the room loads) would leave a ghost member here.
        let open = self.open_clients();
        let Answer::Rooms(mut listed) = self.sim.ask(0, Query::Rooms) else {
            panic!("rooms are answered with a room list")
        };
        listed.sort_by(|a, b| a.room_id.cmp(&b.room_id));
        let mut want: Vec<(String, u64, u64, u64)> = Vec::new();
        let mut rooms_in_use: Vec<&str> = open.iter().map(|&i| self.clients[i].room).collect();
        rooms_in_use.sort_unstable();
        rooms_in_use.dedup();
        for room in rooms_in_use {
            let n = open
                .iter()
                .filter(|&&i| self.clients[i].room == room)
                .count() as u64;
            let users = self.users_in(room).len() as u64;
            let sequenced = rooms
                .get(room)
                .and_then(|l| l.last())
                .map_or(0, |l| l.sequenced);
            want.push((room.to_owned(), n, users, sequenced));
        }
        let got: Vec<(String, u64, u64, u64)> = listed
            .iter()
            .map(|r| (r.room_id.clone(), r.connections, r.users, r.messages))
            .collect();
        prop_assert_eq!(got, want, "rooms: connections, users, messages");

        // Presence: the frames each connection received, and who each room's owner
        // lists, against joins and leaves replayed in the owner's order.
        let (handled, present) = self.handled();
        let on = self.cfg.presence.on;
        let withheld = handled.iter().filter(|h| on && !h.announced).count() as u64;
        self.check_presence_frames(&handled)?;
        self.check_room_presence(&present)?;

        // Analytics, gathered from every worker in turn. Active users are distinct user
        // ids: a user may hold several connections.
        let mut active_users: Vec<&str> = open.iter().map(|&i| &*self.clients[i].user).collect();
        active_users.sort_unstable();
        active_users.dedup();
        for w in 0..self.cfg.workers {
            let snap = self.sim.stats(w);
            let sim = &self.sim;
            prop_assert_eq!(snap.total_messages, records.len() as u64);
            prop_assert_eq!(snap.active_connections, open.len() as u64);
            prop_assert_eq!(snap.active_users, active_users.len() as u64);
            prop_assert_eq!(snap.active_user_details.len(), open.len());
            prop_assert_eq!(
                snap.rate_limited,
                self.clients.iter().map(|c| c.dropped).sum::<u64>()
            );
            prop_assert_eq!(
                snap.rejected,
                self.clients.iter().map(|c| c.rejected).sum::<u64>()
            );
            prop_assert_eq!(snap.slow_consumer_disconnects, self.slow_closes);
            prop_assert_eq!(
                snap.presence_withheld,
                withheld,
                "joins and leaves withheld"
            );
            prop_assert_eq!(snap.total_deliveries, sim.deliveries.iter().sum::<u64>());
            prop_assert_eq!(snap.workers.len(), self.cfg.workers);
            let mut sum = 0;
            for (i, load) in snap.workers.iter().enumerate() {
                prop_assert_eq!(load.id as usize, i);
                let owned = records
                    .iter()
                    .filter(|r| owner_of(&r.room_id, self.cfg.workers as u16).index() == i)
                    .count() as u64;
                prop_assert_eq!(load.messages, owned, "messages of worker {}", i);
                prop_assert_eq!(load.deliveries, sim.deliveries[i]);
                prop_assert_eq!(load.connections, sim.hubs[i].connections() as u64);
                sum += load.messages;
            }
            prop_assert_eq!(sum, snap.total_messages);
            let per_minute: u64 = snap.messages_per_minute.iter().sum();
            prop_assert!(per_minute <= snap.total_messages);
        }

        // History: the newest messages the room's current life holds (loaded ones
        // included), exactly as broadcast; nothing if an idle room may have been evicted.
        for room in ROOMS {
            let Answer::Messages(list) = self.sim.ask(
                0,
                Query::RoomMessages {
                    room: room.to_owned(),
                    limit: 200,
                    cursor: PageCursor::Newest,
                },
            ) else {
                panic!("room messages are answered with a message list")
            };
            prop_assert_eq!(&*list.id, room);
            let got: Vec<(u64, String)> = list
                .frames
                .iter()
                .map(|f| match parse(f) {
                    Frame::Chat {
                        seq, message_id, ..
                    } => (seq, message_id),
                    other => panic!("history holds chats, not {other:?}"),
                })
                .collect();
            let life = rooms.get(room).and_then(|l| l.last()).unwrap_or(&no_life);
            let kept = life.held.len().min(self.cfg.history).min(200);
            let want: Vec<(u64, String)> = life.held[life.held.len() - kept..]
                .iter()
                .map(|(_, m)| (m.seq, m.message_id.clone()))
                .collect();
            let in_use = open.iter().any(|&i| self.clients[i].room == room);
            let evicted = got.is_empty() && !in_use && self.evicts();
            prop_assert!(got == want || evicted, "history of {}: {:?}", room, got);
        }
        Ok(())
    }

    /// The distinct users of the connections open in `room`, sorted.
    fn users_in(&self, room: &str) -> Vec<&str> {
        let mut users: Vec<&str> = self
            .open_clients()
            .into_iter()
            .filter(|&i| self.clients[i].room == room)
            .map(|i| &*self.clients[i].user)
            .collect();
        users.sort_unstable();
        users.dedup();
        users
    }

    /// Replays every join and leave in the order it reached its room's owner (the order
    /// the owner handles them in, whatever the interleaving), counting each room's
    /// distinct users as the owner does, and decides each by the bound: a join counted
    /// with the users after it, a leave with those before it (the leaver included).
    /// Returns them in that order, and who each room holds at the end.
    fn handled(&self) -> (Vec<Handled>, HashMap<String, BTreeMap<String, Present>>) {
        let bound = self.cfg.presence.max_members;
        let mut rooms: HashMap<String, BTreeMap<String, Present>> = HashMap::new();
        let mut handled = Vec::with_capacity(self.sim.arrivals.len());
        for a in &self.sim.arrivals {
            let m = &self.sim.members[&a.key];
            let users = rooms.entry(m.room.clone()).or_default();
            let counted = match a.kind {
                Move::Join => {
                    let u = users.entry(m.user.clone()).or_insert_with(|| Present {
                        connections: 0,
                        username: m.username.clone(),
                        arrived: a.wall,
                    });
                    u.connections += 1;
                    users.len()
                }
                Move::Leave => {
                    let counted = users.len();
                    if let Some(u) = users.get_mut(&m.user) {
                        u.connections -= 1;
                        if u.connections == 0 {
                            users.remove(&m.user);
                        }
                    }
                    counted
                }
            };
            handled.push(Handled {
                kind: a.kind,
                key: a.key,
                counted,
                announced: self.cfg.presence.on && counted <= bound,
            });
        }
        (handled, rooms)
    }

    /// Every connection receives exactly the joins and leaves its owner announced from
    /// its own join on (each live member gets the room's presence frames in the owner's
    /// order): all of them while still open, a prefix of those before its leave once
    /// closed. So (a) no join that took the room over the bound and (b) no leave from a
    /// room over it (the leaver counted) reaches anyone, and (c) in a room that never
    /// holds more users than the bound every join and leave does, as before the bound.
    fn check_presence_frames(&self, handled: &[Handled]) -> Result<(), TestCaseError> {
        let bound = self.cfg.presence.max_members;
        let member = |h: &Handled| &self.sim.members[&h.key];
        for c in &self.clients {
            let open_at_end = !self.sim.gone.contains(&c.key);
            let joined = handled
                .iter()
                .position(|h| h.key == c.key && h.kind == Move::Join);
            let left = handled
                .iter()
                .position(|h| h.key == c.key && h.kind == Move::Leave);
            let Some(joined) = joined else {
                return Err(TestCaseError::fail(format!(
                    "client {}: its join never reached the owner",
                    c.serial
                )));
            };
            prop_assert_eq!(left.is_some(), !open_at_end, "client {}'s leave", c.serial);
            let since_join: Vec<&Handled> = handled[joined..left.unwrap_or(handled.len())]
                .iter()
                .filter(|h| member(h).room == c.room)
                .collect();

            // Each frame names its connection (usernames are per connection): it must be
            // one the bound allowed.
            let mut got = Vec::new();
            for r in self.sim.frames(c.key) {
                let Frame::Presence {
                    kind,
                    user,
                    username,
                    ..
                } = parse(&r.frame)
                else {
                    continue;
                };
                let kind = if kind == "join" {
                    Move::Join
                } else {
                    Move::Leave
                };
                let event = handled.iter().find(|h| {
                    h.kind == kind && member(h).username == username && member(h).room == c.room
                });
                let Some(event) = event else {
                    return Err(TestCaseError::fail(format!(
                        "client {}: a {kind:?} of {username} that never reached the owner",
                        c.serial
                    )));
                };
                prop_assert_eq!(&member(event).user, &user);
                prop_assert!(
                    event.announced,
                    "client {}: {:?} of {} ({}) announced, with {} users counting it (bound {}, presence {})",
                    c.serial,
                    kind,
                    username,
                    user,
                    event.counted,
                    bound,
                    self.cfg.presence.on
                );
                got.push((kind, &*member(event).username));
            }

            // In the owner's order, and none missing.
            let owed: Vec<(Move, &str)> = since_join
                .iter()
                .filter(|h| h.announced)
                .map(|h| (h.kind, &*member(h).username))
                .collect();
            let fits = |want: &[(Move, &str)]| {
                if open_at_end {
                    got == want
                } else {
                    want.starts_with(&got)
                }
            };
            prop_assert!(
                fits(&owed),
                "client {} ({}): presence from {:?}, owed {:?} (open at the end: {})",
                c.serial,
                c.room,
                got,
                owed,
                open_at_end
            );
            let ever = self.clients.iter().filter(|o| o.room == c.room);
            let mut users: Vec<&str> = ever.map(|o| &*o.user).collect();
            users.sort_unstable();
            users.dedup();
            if self.cfg.presence.on && users.len() <= bound {
                let every: Vec<(Move, &str)> = since_join
                    .iter()
                    .map(|h| (h.kind, &*member(h).username))
                    .collect();
                prop_assert!(
                    fits(&every),
                    "client {}: {} never over {} users, presence {:?}, not every join and leave {:?}",
                    c.serial,
                    c.room,
                    bound,
                    got,
                    every
                );
            }
        }
        Ok(())
    }

    /// Each room's owner lists exactly the distinct users with an open connection there,
    /// sorted by id, each once, with the username and arrival of their first connection in
    /// the owner's order; the replay agrees on who is there.
    fn check_room_presence(
        &mut self,
        present: &HashMap<String, BTreeMap<String, Present>>,
    ) -> Result<(), TestCaseError> {
        let none = BTreeMap::new();
        for (i, room) in ROOMS.iter().enumerate() {
            let want: Vec<String> = self.users_in(room).into_iter().map(str::to_owned).collect();
            let replayed = present.get(*room).unwrap_or(&none);
            let replayed_ids: Vec<&String> = replayed.keys().collect();
            prop_assert_eq!(
                replayed_ids,
                want.iter().collect::<Vec<_>>(),
                "joins and leaves replayed in {}",
                room
            );
            // Asked of each worker in turn: the owner answers wherever it is asked.
            let p = self.sim.presence(i % self.cfg.workers, room);
            prop_assert_eq!(&*p.room_id, *room);
            prop_assert_eq!(p.online, want.len(), "online in {}", room);
            prop_assert!(!p.truncated);
            let ids: Vec<&str> = p.users.iter().map(|u| &*u.user_id).collect();
            prop_assert_eq!(&ids, &want, "users in {}", room);
            let now = self.sim.now().wall;
            for u in &p.users {
                let first = &replayed[&*u.user_id];
                prop_assert_eq!(&*u.username, &first.username, "{}'s username", &u.user_id);
                prop_assert!(
                    first.arrived <= u.since && u.since <= now,
                    "{} since {:?}, arrived {:?}",
                    &u.user_id,
                    u.since,
                    first.arrived
                );
            }
        }
        Ok(())
    }

    /// The chats `c` received, each checked to be of its room, and the backlog before
    /// anything live.
    fn chats_of(&self, c: &Client) -> Result<Chats, TestCaseError> {
        let mut chats = Chats {
            backlog: Vec::new(),
            live: Vec::new(),
            frames: Vec::new(),
        };
        let mut seen_deliver = false;
        for r in self.sim.frames(c.key) {
            let f = parse(&r.frame);
            match &f {
                Frame::Chat { room, seq, .. } => {
                    prop_assert_eq!(room.as_str(), c.room, "chat from another room");
                    match r.via {
                        Via::Send => {
                            prop_assert!(!seen_deliver, "backlog after a live frame");
                            chats.backlog.push(*seq);
                        }
                        Via::Deliver => chats.live.push(*seq),
                    }
                    chats.frames.push(f);
                }
                Frame::Presence { room, .. } => {
                    prop_assert_eq!(room.as_str(), c.room, "presence from another room");
                    prop_assert_eq!(r.via, Via::Deliver);
                }
                Frame::Error { .. } => {}
            }
            seen_deliver |= r.via == Via::Deliver;
        }
        Ok(chats)
    }

    /// Whether what `c` received is what the owner owed it had its join reached `life`:
    /// each chat one the owner held, as it held it; the backlog the one owed when the
    /// join came (after `l` messages), live messages on from there; and, if still open,
    /// everything up to the life's last message.
    fn check_in_life(
        &self,
        c: &Client,
        life: &Life,
        chats: &Chats,
        open_at_end: bool,
    ) -> Result<(), String> {
        for f in &chats.frames {
            let Frame::Chat {
                user,
                content,
                message_id,
                username,
                timestamp,
                seq,
                ..
            } = f
            else {
                continue;
            };
            let held = life.held.iter().find(|(_, m)| m.message_id == *message_id);
            let Some((_, m)) = held else {
                return Err(format!("{message_id} (seq {seq}) not held in the life"));
            };
            let got = (seq, user, username, content, timestamp);
            let want = (&m.seq, &m.user_id, &m.username, &m.content, &m.timestamp);
            ensure!(got == want, "chat {got:?}, held {want:?}");
        }
        let backlog = &chats.backlog;
        let last_at_join = match (chats.live.first(), backlog.last()) {
            (Some(first_live), _) => Some(first_live - 1),
            (None, Some(&b)) => Some(b),
            (None, None) if open_at_end => Some(life.last_seq()),
            (None, None) => None,
        };
        if let Some(l) = last_at_join {
            let at_open = life.seq_at(c.opened_at);
            ensure!(
                at_open <= l && l <= life.last_seq(),
                "joined after {l}, not in {at_open}..={}",
                life.last_seq()
            );
            let want: Vec<u64> = (self.first_owed(c, l, life.oldest())..=l).collect();
            ensure!(*backlog == want, "backlog {backlog:?}, owed {want:?}");
        }
        if open_at_end {
            let got_to = chats.live.last().copied().or(last_at_join).unwrap_or(0);
            ensure!(
                got_to == life.last_seq(),
                "got to {got_to} of {}",
                life.last_seq()
            );
        }
        Ok(())
    }

    /// The first `seq` the owner sends a joiner when it has sequenced up to `last` and
    /// holds nothing older than `oldest`.
    fn first_owed(&self, c: &Client, last: u64, oldest: u64) -> u64 {
        let oldest_kept = last.saturating_sub(self.cfg.history as u64) + 1;
        let first = match c.since {
            None => last.saturating_sub(self.cfg.backlog as u64) + 1,
            Some(s) => s.saturating_add(1).min(last + 1),
        };
        first.max(oldest_kept).max(oldest)
    }
}

fn run(cfg: Config, seed: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut run = Run::new(cfg, seed);
    // Start with someone in every room so most runs have traffic everywhere.
    for (i, _) in ROOMS.iter().enumerate() {
        run.apply(&Op::Open {
            worker: i,
            room: i,
            since: None,
            as_user: None,
        });
    }
    for op in ops {
        run.apply(op);
    }
    run.check()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    /// Random operations on random configurations (a third of them durable) under random
    /// interleavings of peer events and loads.
    #[test]
    fn hub_guarantees(cfg in config(), seed in any::<u64>(), ops in prop::collection::vec(op(), 0..160)) {
        run(cfg, seed, &ops)?;
    }

    /// Chat-heavy runs with no client churn: long histories, many live deliveries.
    #[test]
    fn busy_rooms(workers in 1usize..=4, seed in any::<u64>(),
                  ops in prop::collection::vec(prop_oneof![
                      3 => (any::<usize>(), Just(Kind::Valid)).prop_map(|(client, kind)| Op::Send { client, kind }),
                      3 => (1usize..4).prop_map(|n| Op::Deliver { n }),
                      1 => (0u64..300).prop_map(|millis| Op::Advance { millis }),
                      1 => (0usize..4, 0usize..3, (0u64..40).prop_map(Some))
                          .prop_map(|(worker, room, since)| Op::Open { worker, room, since, as_user: None }),
                  ], 0..250)) {
        let cfg = Config { workers, history: 8, backlog: 3, limit: RateLimit { per_sec: 0.0, burst: 0.0 }, max_idle_rooms: 10_000, durable: None, presence: Presence::default() };
        run(cfg, seed, &ops)?;
    }

    /// With a durable store, rooms empty out, are evicted and loaded again while peers
    /// keep joining, leaving and talking; loads come late and some fail. Every guarantee
    /// of `hub_guarantees` holds, `seq` carries on across each load (or restarts at 1
    /// after a failed one) and each joiner's backlog holds the stored messages.
    #[test]
    fn durable_rooms_keep_every_guarantee_while_they_load(
        workers in 1usize..=4,
        history in prop_oneof![Just(0usize), Just(3), Just(1000)],
        backlog in prop_oneof![Just(2usize), Just(50)],
        max_idle_rooms in 0usize..2,
        durable in durable(),
        presence in presence(),
        seed in any::<u64>(),
        ops in prop::collection::vec(churn_op(), 0..120),
    ) {
        let limit = RateLimit { per_sec: 0.0, burst: 0.0 };
        let cfg = Config { workers, history, backlog, limit, max_idle_rooms, durable: Some(durable), presence };
        run(cfg, seed, &ops)?;
    }

    /// Rooms left with no connection are forgotten beyond `max_idle_rooms`; without a
    /// store a forgotten room starts again from seq 1, with one it carries on from what
    /// was stored. Nothing panics, no frame goes to a stale id, and while a room lives
    /// its seqs have no gap.
    #[test]
    fn idle_rooms_are_evicted_safely(cfg in config(), max_idle in 0usize..2, seed in any::<u64>(),
                                     ops in prop::collection::vec(op(), 0..120)) {
        let mut run = Run::new(Config { max_idle_rooms: max_idle, ..cfg }, seed);
        for op in &ops {
            run.apply(op);
        }
        run.sim.settle();
        prop_assert!(run.sim.stale.is_empty());
        prop_assert!(run.sim.before_load.is_empty());
        lives(&run.sim.journal(), run.cfg.durable.is_some(), true)?;
        for c in &run.clients {
            let seqs: Vec<u64> = run.sim.frames(c.key).iter().filter_map(|r| match parse(&r.frame) {
                Frame::Chat { seq, .. } => Some(seq),
                _ => None,
            }).collect();
            for pair in seqs.windows(2) {
                prop_assert!(pair[1] == pair[0] + 1, "client {}: {:?}", c.serial, seqs);
            }
        }
        let records = run.sim.records();
        let snap = run.sim.stats(0);
        prop_assert_eq!(snap.total_messages, records.len() as u64);
    }

    /// Tokens: accepted up to the last millisecond of their expiry second, refused
    /// (401) from the next one, on every worker.
    #[test]
    fn token_expiry_boundary(expiry in 1_795_258_000u64..1_900_000_000, workers in 1usize..=4) {
        let secret = SIM_SECRET.to_vec();
        let checks = std::sync::Arc::new(auth::Authenticator::new(Some(&secret), None).unwrap());
        let mut sim = Sim::new(workers, 7, |h| h.auth = checks.clone());
        let token = auth::sign(&secret, "tok-user", expiry);
        let at = |sim: &mut Sim, ms: u64| {
            let wall = sim.now().wall.0;
            sim.advance(Duration::from_millis(ms - wall));
        };
        let query = format!("userId=spoofed&room=lobby&token={token}");
        at(&mut sim, expiry * 1000 + 999);
        for w in 0..workers {
            let conn = sim.open(w, &query).expect("valid through the last millisecond");
            sim.settle();
            sim.chat((w, conn), "hello");
        }
        sim.settle();
        let records = sim.records();
        prop_assert_eq!(records.len(), workers);
        prop_assert!(records.iter().all(|r| &*r.user_id == "tok-user"), "the token names the user");
        at(&mut sim, (expiry + 1) * 1000);
        for w in 0..workers {
            let refusal = sim.open(w, &query).expect_err("expired");
            prop_assert_eq!(refusal.status(), 401);
            prop_assert!(matches!(refusal, Refusal::Token(auth::TokenError::Expired)));
        }
        let missing = sim.open(0, "room=lobby").expect_err("no token");
        prop_assert_eq!(missing.status(), 401);
        let forged = auth::sign(b"other", "tok-user", expiry + 10);
        let bad = sim.open(0, &format!("room=lobby&token={forged}")).expect_err("bad MAC");
        prop_assert!(matches!(bad, Refusal::Token(auth::TokenError::BadSignature)));
    }

    /// After the upgrade a token still counts: each connection closes with 4001 at the
    /// first sweep past the last millisecond of its token, v1 and v2 alike, unless a v2
    /// `refresh` for the same user moved that instant (answered `refreshed` with the new
    /// expiry); a refresh naming another user is `forbidden` and changes nothing.
    #[test]
    fn tokens_close_their_connections_at_expiry_unless_refreshed(
        conns in prop::collection::vec((1u64..20, prop::option::of(1u64..40), any::<bool>()), 1..8),
        workers in 1usize..=3,
    ) {
        let secret = SIM_SECRET.to_vec();
        let checks = std::sync::Arc::new(auth::Authenticator::new(Some(&secret), None).unwrap());
        let mut sim = Sim::new(workers, 7, |h| h.auth = checks.clone());
        sim.answer_pings = true;
        let sweep = HubConfig::new(WorkerId(0), 1).sweep_every.as_millis() as u64;
        let start = sim.now();
        let base_secs = start.wall.0 / 1000;
        let mut expect = Vec::new();
        for (i, &(life, refresh, v2)) in conns.iter().enumerate() {
            let w = i % workers;
            let user = format!("u{i}");
            let expiry = base_secs + life;
            let token = auth::sign(&secret, &user, expiry);
            let query = if v2 || refresh.is_some() {
                format!("proto=2&room=r{i}&token={token}")
            } else {
                format!("room=r{i}&token={token}")
            };
            let conn = sim.open(w, &query).expect("a valid token");
            sim.settle();
            let mut last = expiry;
            if let Some(extra) = refresh {
                let other = auth::sign(&secret, "someone-else", expiry + 100);
                let frame = serde_json::json!({"type": "refresh", "id": 1, "token": other}).to_string();
                sim.frame((w, conn), Inbound::Text(frame.as_bytes()));
                let renewed = auth::sign(&secret, &user, expiry + extra);
                let frame = serde_json::json!({"type": "refresh", "id": 2, "token": renewed}).to_string();
                sim.frame((w, conn), Inbound::Text(frame.as_bytes()));
                let answers: Vec<serde_json::Value> = sim.frames((w, conn)).iter()
                    .map(|r| serde_json::from_slice(&r.frame).unwrap())
                    .filter(|f: &serde_json::Value| f["id"].is_u64())
                    .collect();
                prop_assert_eq!(answers.len(), 2);
                prop_assert_eq!(&answers[0]["code"], "forbidden");
                prop_assert_eq!(&answers[1]["type"], "refreshed");
                let at = UnixMillis((expiry + extra) * 1000).to_rfc3339().to_string();
                prop_assert_eq!(answers[1]["expiresAt"].as_str(), Some(at.as_str()));
                last = expiry + extra;
            }
            expect.push(((w, conn), last * 1000 + 999));
        }
        sim.run_for(Duration::from_secs(90));
        for (key, valid_until) in expect {
            let &(code, at) = sim.closed_by_hub.get(&key).expect("closed");
            prop_assert_eq!(code, CLOSE_TOKEN_EXPIRED);
            let wall = start.wall.0 + at.saturating_since(start.mono).as_millis() as u64;
            prop_assert!(wall > valid_until && wall <= valid_until + sweep + 1,
                "closed at {} for a token valid until {}", wall, valid_until);
        }
    }

    /// One connection flooding: per_sec·t + burst at most, one rate_limited a second.
    #[test]
    fn flood_is_limited(per_sec in 1u32..20, burst in 1u32..20,
                        gaps in prop::collection::vec(0u64..300, 1..200), workers in 1usize..=4) {
        let limit = RateLimit { per_sec: f64::from(per_sec), burst: f64::from(burst) };
        let mut sim = Sim::new(workers, 3, |h| h.rate_limit = limit);
        let w = workers - 1;
        let key = (w, sim.open(w, "userId=f&room=lobby").unwrap());
        sim.settle();
        let start = sim.now().mono;
        for (i, gap) in gaps.iter().enumerate() {
            sim.advance(Duration::from_millis(*gap));
            sim.chat(key, &format!("flood {i}"));
        }
        sim.settle();
        let elapsed = sim.now().mono.saturating_since(start).as_secs_f64();
        let accepted = sim.records().len();
        prop_assert!(accepted as f64 <= f64::from(burst) + f64::from(per_sec) * elapsed + 1e-9);
        prop_assert!(accepted >= (burst as usize).min(gaps.len()), "the burst is allowed at once");
        let errors: Vec<Mono> = sim.frames(key).iter()
            .filter(|r| matches!(parse(&r.frame), Frame::Error { ref code } if code == "rate_limited"))
            .map(|r| r.at)
            .collect();
        for pair in errors.windows(2) {
            prop_assert!(pair[1].saturating_since(pair[0]) >= Duration::from_secs(1));
        }
        prop_assert_eq!(errors.is_empty(), accepted == gaps.len(), "an error iff something was dropped");
        let snap = sim.stats(0);
        prop_assert_eq!(snap.rate_limited as usize, gaps.len() - accepted);
        prop_assert_eq!(snap.total_messages as usize, accepted);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Users with one connection or several come and go in two rooms, crossing a small
    /// presence bound both ways, on 1–4 workers under random interleavings: each
    /// connection receives exactly the joins and leaves the bound allows, in the owner's
    /// order, and each room's presence lists who is connected (with every guarantee of
    /// `hub_guarantees`).
    #[test]
    fn presence_follows_the_bound_as_users_come_and_go(
        workers in 1usize..=4,
        max_members in 1usize..=4,
        seed in any::<u64>(),
        ops in prop::collection::vec(prop_oneof![
            4 => (0usize..4, 0usize..2, prop_oneof![1 => Just(None), 2 => any::<usize>().prop_map(Some)])
                .prop_map(|(worker, room, as_user)| Op::Open { worker, room, since: None, as_user }),
            3 => any::<usize>().prop_map(|client| Op::Close { client }),
            1 => (any::<usize>(), Just(Kind::Valid)).prop_map(|(client, kind)| Op::Send { client, kind }),
            4 => (1usize..6).prop_map(|n| Op::Deliver { n }),
        ], 0..100),
    ) {
        let limit = RateLimit { per_sec: 0.0, burst: 0.0 };
        let presence = Presence { on: true, max_members };
        let cfg = Config { workers, history: 4, backlog: 2, limit, max_idle_rooms: 10_000, durable: None, presence };
        run(cfg, seed, &ops)?;
    }
}

/// The walkthrough of the crate docs, on the simulator: two workers, one room, a backlog
/// and then live messages with `since`.
#[test]
fn backlog_then_live_across_workers() {
    let mut sim = Sim::new(2, 1, |_| {});
    let alice = (0, sim.open(0, "userId=alice&room=lobby").unwrap());
    sim.settle();
    for i in 1..=5 {
        sim.chat(alice, &format!("m{i}"));
    }
    sim.settle();
    // Bob joins on the other worker asking for everything after seq 2, while alice keeps
    // talking before his join reaches the room's owner.
    let bob = (1, sim.open(1, "userId=bob&room=lobby&since=2").unwrap());
    sim.chat(alice, "m6");
    sim.settle();
    sim.chat(alice, "m7");
    sim.settle();
    let bob_chats = chats(&sim, bob);
    let seqs: Vec<u64> = bob_chats.iter().map(|c| c.1).collect();
    assert_eq!(seqs, [3, 4, 5, 6, 7], "since=2: the rest, then live");
    assert!(bob_chats.last().is_some_and(|c| c.0 == Via::Deliver));
    assert_eq!(chats(&sim, alice).len(), 7);
}

/// A connection that closes before its backlog arrives leaves no trace and receives
/// nothing; the slot's next connection is a different id.
#[test]
fn close_before_backlog() {
    let mut sim = Sim::new(3, 9, |_| {});
    let owner = owner_of("lobby", 3).index();
    let w = (owner + 1) % 3;
    let first = sim.open(w, "room=lobby").unwrap();
    sim.close((w, first));
    let second = sim.open(w, "room=lobby").unwrap();
    assert_eq!(first.index(), second.index());
    assert_ne!(first, second);
    sim.settle();
    sim.chat((w, second), "hi");
    sim.settle();
    assert!(sim.frames((w, first)).is_empty());
    assert!(sim.stale.is_empty());
    let got: Vec<Frame> = sim
        .frames((w, second))
        .iter()
        .map(|r| parse(&r.frame))
        .collect();
    assert!(matches!(got.last(), Some(Frame::Chat { seq: 1, .. })));
    assert_eq!(sim.stats(0).active_connections, 1);
}

/// Regression: every type a driver moves between threads is `Send`. A hub with a
/// persistence sink was not (`PersistSink` had no `Send` bound), so it could be neither
/// built on one thread and run on another nor shared behind a `Mutex`.
#[test]
fn driver_types_are_send() {
    fn send<T: Send>() {}
    send::<Hub>();
    send::<Admission>();
    send::<PeerEvent>();
    send::<Output>();
    send::<Box<dyn PersistSink>>();
}

/// The chats a connection received: how, and their seq.
fn chats(sim: &Sim, key: Key) -> Vec<(Via, u64)> {
    sim.frames(key)
        .iter()
        .filter_map(|r| match parse(&r.frame) {
            Frame::Chat { seq, .. } => Some((r.via, seq)),
            _ => None,
        })
        .collect()
}

/// A durable room evicted while idle is loaded again on its next use: the joiner's
/// backlog is what the store kept (from before the run and from this run), and seq
/// carries on from it.
#[test]
fn an_evicted_room_carries_on_from_the_store_when_it_is_loaded_again() {
    let mut sim = Sim::new(2, 5, |h| {
        h.durable = true;
        h.max_idle_rooms = 0;
    });
    sim.store.max_delay = 8;
    sim.preload("lobby", (1..=2).map(|seq| earlier(0, seq, 2)).collect());
    let alice = (1, sim.open(1, "userId=alice&room=lobby").unwrap());
    sim.chat(alice, "held while the room loads");
    sim.settle();
    assert_eq!(
        chats(&sim, alice),
        [(Via::Send, 1), (Via::Send, 2), (Via::Deliver, 3)]
    );
    sim.close(alice);
    sim.settle();
    let bob = (0, sim.open(0, "userId=bob&room=lobby").unwrap());
    sim.chat(bob, "after the reload");
    sim.settle();
    let asked = sim
        .journal()
        .iter()
        .filter(|e| matches!(e, Journal::Asked { .. }))
        .count();
    assert_eq!(asked, 2, "loaded, evicted once alice left, loaded again");
    assert_eq!(
        chats(&sim, bob),
        [
            (Via::Send, 1),
            (Via::Send, 2),
            (Via::Send, 3),
            (Via::Deliver, 4)
        ]
    );
    assert!(sim.before_load.is_empty());
}

/// A load that fails starts the room afresh: seq 1 again, and no backlog, rather than
/// keeping the room's joiners waiting.
#[test]
fn a_failed_load_starts_the_room_again_at_seq_one() {
    let mut sim = Sim::new(1, 2, |h| h.durable = true);
    sim.store.fail_percent = 100;
    sim.preload("lobby", (1..=5).map(|seq| earlier(0, seq, 5)).collect());
    let alice = (0, sim.open(0, "userId=alice&room=lobby").unwrap());
    sim.chat(alice, "first again");
    sim.settle();
    assert_eq!(chats(&sim, alice), [(Via::Deliver, 1)]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Protocol v2 on 1–4 workers under random interleavings of peer events, with time
    /// passing as a driver lets it (every timer at its deadline): v2 connections (some
    /// with a room in their URL, some recovering with since and epoch) subscribe to rooms
    /// owned by any worker, unsubscribe, chat with and without clientMsgId (resending
    /// earlier ones, also from another connection of the same user), type, read and
    /// close, beside a v1 connection. Checks every subscription's stream (no gap,
    /// duplicate or reorder, the same order for all), recovery, exactly-once sends and
    /// their acks, presence convergence, typing expiry and read markers (see `sim::v2`).
    #[test]
    fn v2_guarantees(cfg in sim::v2::config(), seed in any::<u64>(),
                     ops in prop::collection::vec(sim::v2::op(), 0..140)) {
        sim::v2::run(cfg, seed, false, &ops)?;
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Exactly-once sends under churn: users resend earlier clientMsgIds from their
    /// connections (old and new, on any worker) while rooms empty out and are forgotten
    /// and 5 minutes pass now and then; a resend within 5 minutes in the same life of the
    /// room is acked with the first seq and messageId and never broadcast again, one
    /// after that (or after the room was forgotten) is a new message.
    #[test]
    fn v2_resends_are_acked_never_broadcast_again(
        workers in 1usize..=4,
        max_idle_rooms in 0usize..2,
        seed in any::<u64>(),
        ops in prop::collection::vec(sim::v2::resend_op(), 0..120),
    ) {
        let cfg = sim::v2::V2Config {
            workers,
            history: 3,
            backlog: 2,
            limit: RateLimit { per_sec: 0.0, burst: 0.0 },
            max_idle_rooms,
            max_subscriptions: 64,
            presence: true,
            max_members: 250,
            interval_ms: 200,
            max_queued: 1 << 20,
        };
        sim::v2::run(cfg, seed, false, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// v2 with every owner up to date after each operation (each is settled), so the
    /// model knows each room's typing set and read markers: every subscriber's last
    /// typing frame lists exactly who types (typing, stop, a chat and a last leave end it,
    /// 6 s expire it, a newcomer hears it, none taken in a room over the bound), and its
    /// last read frame per user and its lastRead are the user's marker.
    #[test]
    fn v2_typing_and_read_markers_when_owners_are_up_to_date(
        workers in 1usize..=4,
        max_members in prop_oneof![1 => 1usize..=3, 2 => Just(250usize)],
        seed in any::<u64>(),
        ops in prop::collection::vec(sim::v2::settled_op(), 0..100),
    ) {
        let cfg = sim::v2::V2Config {
            workers,
            history: 1000,
            backlog: 50,
            limit: RateLimit { per_sec: 0.0, burst: 0.0 },
            max_idle_rooms: 10_000,
            max_subscriptions: 64,
            presence: true,
            max_members,
            interval_ms: 200,
            max_queued: 2048,
        };
        sim::v2::run(cfg, seed, true, &ops)?;
    }
}

/// The v2 presence frames a connection received, as JSON.
fn presence_frames(sim: &Sim, key: Key) -> Vec<serde_json::Value> {
    sim.frames(key)
        .iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.frame).unwrap())
        .filter(|v| v["type"] == "presence")
        .collect()
}

/// Found by `v2_typing_and_read_markers_when_owners_are_up_to_date`: a room that goes
/// over PRESENCE_MAX_MEMBERS and comes back within one interval by someone else's leave
/// sent nothing, so its members kept the old `online` and never heard of the user whose
/// join took it over. Bound 2: o is alone (online 1 sent); a joins, b joins (over:
/// counted only), a leaves: the room holds o and b, and the next frame says so with the
/// whole set.
#[test]
fn presence_after_the_bound_is_crossed_back_within_an_interval() {
    let mut sim = Sim::new(1, 1, |h| h.presence_max_members = 2);
    let o = (0, sim.open(0, "proto=2&userId=o&room=r").unwrap());
    sim.run_for(Duration::from_secs(2));
    let a = (0, sim.open(0, "proto=2&userId=a&room=r").unwrap());
    sim.open(0, "proto=2&userId=b&room=r").unwrap();
    sim.close(a);
    sim.run_for(Duration::from_secs(3));
    assert_eq!(sim.presence(0, "r").online, 2);
    let got = presence_frames(&sim, o);
    let last = got.last().unwrap();
    assert_eq!(last["online"], 2, "{got:?}");
    assert_eq!(user_ids(&last["users"]), ["b", "o"], "{got:?}");
}

/// The user ids of a list of `{userId, username}`.
fn user_ids(list: &serde_json::Value) -> Vec<&str> {
    let list = list.as_array().expect("a list of users");
    list.iter().map(|u| u["userId"].as_str().unwrap()).collect()
}

/// The same after count-only frames: over the bound for seconds, then back within it.
#[test]
fn presence_lists_everyone_when_a_room_comes_back_within_the_bound() {
    let mut sim = Sim::new(2, 1, |h| h.presence_max_members = 2);
    let o = (0, sim.open(0, "proto=2&userId=o&room=r").unwrap());
    let a = (1, sim.open(1, "proto=2&userId=a&room=r").unwrap());
    settled_for(&mut sim, Duration::from_secs(1));
    let b = (0, sim.open(0, "proto=2&userId=b&room=r").unwrap());
    settled_for(&mut sim, Duration::from_secs(3));
    let got = presence_frames(&sim, o);
    assert_eq!(
        got.last().unwrap(),
        &serde_json::json!({"type":"presence","roomId":"r","online":3})
    );
    sim.close(a);
    settled_for(&mut sim, Duration::from_secs(1));
    let got = presence_frames(&sim, o);
    let last = got.last().unwrap();
    assert_eq!(last["online"], 2, "{got:?}");
    assert_eq!(last["left"][0]["userId"], "a", "{got:?}");
    assert_eq!(user_ids(&last["users"]), ["b", "o"], "{got:?}");
    // Back in sync: the next change is only a change.
    sim.close(b);
    settled_for(&mut sim, Duration::from_secs(1));
    let got = presence_frames(&sim, o);
    let last = got.last().unwrap();
    assert_eq!(last["online"], 1, "{got:?}");
    assert!(last.get("users").is_none(), "{got:?}");
}

/// Time passes on several workers: what is in flight arrives first and last.
fn settled_for(sim: &mut Sim, by: Duration) {
    sim.settle();
    sim.run_for(by);
    sim.settle();
}

/// Found while stating presence convergence: a subscriber that came while a change was
/// pending took the room as it was then, but the next frame is the change since the
/// last frame, so a user who left before the join and came back after it, within one
/// interval, was in neither list and the newcomer never heard of them. `subscribed`
/// therefore lists who was online as of the last frame: w leaves, n subscribes (its
/// `subscribed` still lists w, and o), w comes back; the next frame says joined [n].
#[test]
fn a_newcomer_hears_of_a_user_who_left_and_came_back_around_its_join() {
    let mut sim = Sim::new(1, 1, |_| {});
    sim.open(0, "proto=2&userId=o&room=r").unwrap();
    let w = (0, sim.open(0, "proto=2&userId=w&room=r").unwrap());
    sim.run_for(Duration::from_secs(1));
    sim.close(w);
    let n = (0, sim.open(0, "proto=2&userId=n&room=r").unwrap());
    sim.open(0, "proto=2&userId=w&room=r").unwrap();
    sim.run_for(Duration::from_secs(1));
    let frames: Vec<serde_json::Value> = sim
        .frames(n)
        .iter()
        .map(|r| serde_json::from_slice(&r.frame).unwrap())
        .collect();
    let subscribed = frames.iter().find(|v| v["type"] == "subscribed").unwrap();
    let mut belief: std::collections::BTreeSet<String> = user_ids(&subscribed["users"])
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        belief.iter().map(String::as_str).collect::<Vec<_>>(),
        ["o", "w"]
    );
    for f in frames.iter().filter(|v| v["type"] == "presence") {
        for u in f["joined"].as_array().unwrap() {
            belief.insert(u["userId"].as_str().unwrap().to_owned());
        }
        for u in f["left"].as_array().unwrap() {
            belief.remove(u["userId"].as_str().unwrap());
        }
    }
    let truth: Vec<String> = sim
        .presence(0, "r")
        .users
        .iter()
        .map(|u| u.user_id.to_string())
        .collect();
    assert_eq!(belief.into_iter().collect::<Vec<_>>(), truth);
}

fn v2_frames(sim: &Sim, key: Key) -> Vec<serde_json::Value> {
    sim.frames(key)
        .iter()
        .map(|r| serde_json::from_slice(&r.frame).unwrap())
        .collect()
}

/// Sends `frame` as a text frame from `key`.
fn send_json(sim: &mut Sim, key: Key, frame: serde_json::Value) {
    sim.frame(key, Inbound::Text(frame.to_string().as_bytes()));
}

/// The owner answers `unsubscribe`, so the ack of a chat sent just before it comes first
/// even when the room lives on another worker (the connection's worker used to answer
/// at once, ahead of the ack on its way back).
#[test]
fn unsubscribed_follows_the_acks_of_what_was_sent_before() {
    let mut sim = Sim::new(2, 3, |_| {});
    let w = (owner_of("far", 2).index() + 1) % 2;
    let me = (w, sim.open(w, "proto=2&userId=me&room=far").unwrap());
    sim.settle();
    send_json(
        &mut sim,
        me,
        serde_json::json!({"type":"chat","id":1,"roomId":"far","content":"hi","clientMsgId":"c1"}),
    );
    send_json(
        &mut sim,
        me,
        serde_json::json!({"type":"unsubscribe","id":2,"roomId":"far"}),
    );
    sim.settle();
    let kinds: Vec<String> = v2_frames(&sim, me)
        .iter()
        .map(|v| format!("{}{}", v["type"].as_str().unwrap(), v["id"]))
        .collect();
    let tail = &kinds[kinds.len() - 3..];
    // (The chat frame itself was on its way after the connection left the room here.)
    assert_eq!(
        tail,
        ["subscribednull", "ack1", "unsubscribed2"],
        "{kinds:?}"
    );
}

/// An ack held behind a streamed backlog is sent when the subscription ends mid-replay,
/// before `unsubscribed`; the room's frames held with it are not.
#[test]
fn an_ack_held_behind_a_replay_outlives_an_unsubscribe() {
    let mut sim = Sim::new(1, 4, |h| {
        h.max_queued_bytes = 600;
        h.backlog_size = 20;
    });
    sim.defer_written = true;
    let other = (0, sim.open(0, "proto=2&userId=o&room=r").unwrap());
    sim.settle();
    for i in 0..20 {
        let text =
            serde_json::json!({"type": "chat", "roomId": "r", "content": format!("old {i}")});
        send_json(&mut sim, other, text);
        sim.settle();
        sim.run_for(Duration::from_secs(1));
    }
    sim.settle();
    let me = (0, sim.open(0, "proto=2&userId=me").unwrap());
    send_json(
        &mut sim,
        me,
        serde_json::json!({"type":"subscribe","id":1,"roomId":"r"}),
    );
    send_json(
        &mut sim,
        me,
        serde_json::json!({"type":"chat","id":2,"roomId":"r","content":"mine","clientMsgId":"m"}),
    );
    send_json(
        &mut sim,
        me,
        serde_json::json!({"type":"unsubscribe","id":3,"roomId":"r"}),
    );
    sim.settle();
    let got = v2_frames(&sim, me);
    let chats = got.iter().filter(|v| v["type"] == "chat").count();
    assert!(chats < 20, "the backlog was streamed in slices: {got:?}");
    let kinds: Vec<String> = got[got.len() - 2..]
        .iter()
        .map(|v| format!("{}{}", v["type"].as_str().unwrap(), v["id"]))
        .collect();
    assert_eq!(kinds, ["ack2", "unsubscribed3"], "{got:?}");
    assert!(!got.iter().any(|v| v["content"] == "mine"), "{got:?}");
}

/// Found by the presence property once it held for every subscription: a newcomer's
/// `subscribed` counts a user whose join is pending; if that user leaves within the
/// interval, the changes cancel out, and the newcomer must still hear the count.
#[test]
fn a_newcomer_told_a_count_midway_hears_where_the_interval_ends() {
    let mut sim = Sim::new(1, 1, |_| {});
    sim.open(0, "proto=2&userId=o&room=r").unwrap();
    sim.run_for(Duration::from_secs(1));
    let x = (0, sim.open(0, "proto=2&userId=x&room=r").unwrap());
    let n = (0, sim.open(0, "proto=2&userId=o&room=r").unwrap());
    sim.close(x);
    sim.run_for(Duration::from_secs(1));
    let frames = v2_frames(&sim, n);
    let subscribed = frames.iter().find(|v| v["type"] == "subscribed").unwrap();
    assert_eq!(subscribed["online"], 2, "o and x: {subscribed}");
    assert_eq!(user_ids(&subscribed["users"]), ["o"], "{subscribed}");
    let last = presence_frames(&sim, n).pop().expect("a presence frame");
    assert_eq!(last["online"], 1, "{frames:?}");
}

/// The chats' seqs and contents a v2 connection got, after its `subscribed`.
fn v2_chats(sim: &Sim, key: Key) -> Vec<(u64, String)> {
    v2_frames(sim, key)
        .iter()
        .filter(|v| v["type"] == "chat")
        .map(|v| {
            (
                v["seq"].as_u64().unwrap(),
                v["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A durable room whose ring (3 messages) lacks what a subscriber missed: the store gives
/// the older ones, the ring the rest, and a message sent while the store answers follows;
/// `recovered:true`, each seq once and in order. With the store down, the backlog.
#[test]
fn recovery_beyond_the_ring_comes_from_the_store() {
    for fails in [false, true] {
        let mut sim = Sim::new(2, 7, |h| {
            h.durable = true;
            h.history_size = 3;
            h.backlog_size = 2;
        });
        sim.store.max_delay = 6;
        let room = ROOMS[0];
        sim.preload(room, (1..=10).map(|seq| earlier(0, seq, 10)).collect());
        let owner = owner_of(room, 2).index();
        let a = (
            owner,
            sim.open(owner, &format!("proto=2&userId=a&room={room}"))
                .unwrap(),
        );
        sim.settle();
        let epoch = v2_frames(&sim, a)
            .iter()
            .find(|v| v["type"] == "subscribed")
            .map(|v| v["epoch"].as_str().unwrap().to_owned())
            .unwrap();
        if fails {
            sim.store.fail_percent = 100;
        }
        let w = 1 - owner;
        let b = (w, sim.open(w, "proto=2&userId=b").unwrap());
        let sub =
            serde_json::json!({"type":"subscribe","id":1,"roomId":room,"since":2,"epoch":epoch});
        send_json(&mut sim, b, sub);
        let chat = serde_json::json!({"type":"chat","roomId":room,"content":"while loading"});
        send_json(&mut sim, a, chat);
        sim.settle();
        let subscribed = v2_frames(&sim, b)
            .into_iter()
            .find(|v| v["type"] == "subscribed")
            .unwrap();
        let seqs: Vec<u64> = v2_chats(&sim, b).iter().map(|c| c.0).collect();
        if fails {
            assert_eq!(subscribed["recovered"], false, "{subscribed}");
            assert!(seqs.ends_with(&[11]) && seqs.len() <= 3, "{seqs:?}");
        } else {
            assert_eq!(subscribed["recovered"], true, "{subscribed}");
            assert_eq!(seqs, (3..=11).collect::<Vec<u64>>());
            let got = v2_chats(&sim, b);
            assert_eq!(got[0].1, "stored 3");
            assert_eq!(got[8].1, "while loading");
            let stats = sim.stats(owner);
            assert_eq!(stats.recovered_from_store, 1);
        }
    }
}

/// The users and rooms of `rooms_run`: `ROOMS_API[0]` is private, `[1]` a group, both
/// made by `ann`.
const USERS: [&str; 4] = ["ann", "bob", "cy", "dee"];
const ROOMS_API: [(&str, Visibility); 2] =
    [("vault", Visibility::Private), ("band", Visibility::Group)];

#[derive(Debug, Clone)]
enum RoomOp {
    Open {
        worker: usize,
        user: usize,
    },
    Subscribe {
        conn: usize,
        room: usize,
    },
    Chat {
        conn: usize,
        room: usize,
    },
    Add {
        user: usize,
        room: usize,
    },
    Remove {
        user: usize,
        room: usize,
    },
    Delete {
        room: usize,
    },
    Close {
        conn: usize,
    },
    /// Delivers up to `n` peer events, so that requests overtake each other.
    Step {
        n: usize,
    },
}

fn room_op() -> impl Strategy<Value = RoomOp> {
    prop_oneof![
        3 => (0usize..4, 0usize..4).prop_map(|(worker, user)| RoomOp::Open { worker, user }),
        4 => (any::<usize>(), 0usize..2).prop_map(|(conn, room)| RoomOp::Subscribe { conn, room }),
        4 => (any::<usize>(), 0usize..2).prop_map(|(conn, room)| RoomOp::Chat { conn, room }),
        2 => (0usize..4, 0usize..2).prop_map(|(user, room)| RoomOp::Add { user, room }),
        2 => (0usize..4, 0usize..2).prop_map(|(user, room)| RoomOp::Remove { user, room }),
        1 => (0usize..2).prop_map(|room| RoomOp::Delete { room }),
        1 => any::<usize>().prop_map(|conn| RoomOp::Close { conn }),
        3 => (1usize..6).prop_map(|n| RoomOp::Step { n }),
    ]
}

fn ann() -> Actor {
    Actor::User {
        id: "ann".into(),
        admin: false,
    }
}

/// Rooms of the rooms API on `workers` hubs while users subscribe, chat, are added and
/// removed and rooms are deleted, with the peer events of all of it interleaved at random.
/// Checks that nobody who was never a member hears anything of a members-only room (but
/// the answers to their own subscribes), that
/// nothing of a room reaches a connection between its `unsubscribed` and a new
/// `subscribed`, that a deleted room stays unknown, and that refused subscriptions leave
/// the rooms' counts exact (empty once everyone closed).
fn rooms_run(
    workers: usize,
    seed: u64,
    invited: [bool; 4],
    ops: &[RoomOp],
) -> Result<(), TestCaseError> {
    let mut sim = Sim::new(workers, seed, |_| {});
    let mut ever: Vec<std::collections::HashSet<&str>> = Vec::new();
    for (room, visibility) in ROOMS_API {
        let members: Vec<String> = (1..4)
            .filter(|&u| invited[u])
            .map(|u| USERS[u].to_owned())
            .collect();
        let mut set: std::collections::HashSet<&str> = members
            .iter()
            .map(|m| USERS.iter().copied().find(|u| u == m).unwrap_or_default())
            .collect();
        set.insert("ann");
        ever.push(set);
        let made = sim.ask(
            0,
            Query::Room(RoomRequest {
                room: room.into(),
                actor: ann(),
                action: RoomAction::Create {
                    name: room.into(),
                    visibility,
                    members,
                },
            }),
        );
        prop_assert!(
            matches!(made, Answer::Room(Ok(RoomOutcome::Created(_)))),
            "{made:?}"
        );
    }
    let mut conns: Vec<(Key, usize)> = Vec::new();
    let mut all: Vec<(Key, usize)> = Vec::new();
    let mut deleted = [false; 2];
    let mut id = 0u32;
    let ask = |sim: &mut Sim, room: usize, action: RoomAction, at: usize| {
        let request = RoomRequest {
            room: ROOMS_API[room].0.into(),
            actor: ann(),
            action,
        };
        sim.query(at % workers, Query::Room(request));
    };
    for (i, op) in ops.iter().enumerate() {
        id += 1;
        match *op {
            RoomOp::Open { worker, user } => {
                let query = format!("proto=2&userId={}", USERS[user]);
                if let Ok(conn) = sim.open(worker % workers, &query) {
                    conns.push(((worker % workers, conn), user));
                    all.push(((worker % workers, conn), user));
                }
            }
            RoomOp::Subscribe { conn, room } | RoomOp::Chat { conn, room } if !conns.is_empty() => {
                let (key, _) = conns[conn % conns.len()];
                let room = ROOMS_API[room].0;
                let frame = match op {
                    RoomOp::Subscribe { .. } => {
                        serde_json::json!({"type": "subscribe", "id": id, "roomId": room})
                    }
                    _ => {
                        serde_json::json!({"type": "chat", "id": id, "roomId": room, "content": format!("m{id}")})
                    }
                };
                send_json(&mut sim, key, frame);
            }
            RoomOp::Add { user, room } => {
                ever[room].insert(USERS[user]);
                ask(
                    &mut sim,
                    room,
                    RoomAction::SetMember {
                        user: USERS[user].into(),
                        role: Role::Member,
                    },
                    i,
                );
            }
            RoomOp::Remove { user, room } => {
                ask(
                    &mut sim,
                    room,
                    RoomAction::RemoveMember {
                        user: USERS[user].into(),
                    },
                    i,
                );
            }
            RoomOp::Delete { room } => {
                deleted[room] = true;
                ask(&mut sim, room, RoomAction::Delete, i);
            }
            RoomOp::Close { conn } if !conns.is_empty() => {
                let (key, _) = conns.swap_remove(conn % conns.len());
                sim.close(key);
            }
            RoomOp::Step { n } => {
                for _ in 0..n {
                    sim.step();
                }
            }
            _ => {}
        }
    }
    sim.settle();
    for &(key, user) in &all {
        let mut subscribed = [false; 2];
        for f in v2_frames(&sim, key) {
            let Some(r) = ROOMS_API.iter().position(|(name, _)| f["roomId"] == *name) else {
                continue;
            };
            let kind = f["type"].as_str().unwrap_or_default();
            // The answers to its own requests (a refusal, or a subscription on its way
            // ended by a deletion or removal) tell a user nothing it did not name.
            if kind != "error" && kind != "unsubscribed" {
                prop_assert!(
                    ever[r].contains(USERS[user]),
                    "{} never a member of {}, got {f}",
                    USERS[user],
                    ROOMS_API[r].0
                );
            }
            match kind {
                "subscribed" => subscribed[r] = true,
                "unsubscribed" => subscribed[r] = false,
                "chat" | "typing" | "presence" | "read" => {
                    prop_assert!(subscribed[r], "{f} reached {key:?} outside a subscription");
                    if kind == "chat" {
                        let sender = f["userId"].as_str().unwrap_or_default();
                        prop_assert!(ever[r].contains(sender), "a non-member's chat: {f}");
                    }
                }
                _ => {}
            }
        }
    }
    for (r, gone) in deleted.iter().enumerate() {
        if !gone {
            continue;
        }
        let Ok(conn) = sim.open(0, "proto=2&userId=ann") else {
            continue;
        };
        send_json(
            &mut sim,
            (0, conn),
            serde_json::json!({"type": "subscribe", "id": 1, "roomId": ROOMS_API[r].0}),
        );
        sim.settle();
        let last = v2_frames(&sim, (0, conn)).pop().unwrap_or_default();
        prop_assert_eq!(&last["code"], "room_not_found", "{}", last);
        sim.close((0, conn));
    }
    for (key, _) in conns {
        sim.close(key);
    }
    sim.settle();
    for w in 0..workers {
        let Answer::Rooms(rooms) = sim.ask(w, Query::Rooms) else {
            return Err(TestCaseError::fail("Rooms answers Rooms"));
        };
        prop_assert!(
            rooms.is_empty(),
            "rooms still counted after every close: {rooms:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    /// Members-only rooms under churn (see `rooms_run`).
    #[test]
    fn rooms_are_heard_by_their_members_only(
        workers in 1usize..=4,
        seed in any::<u64>(),
        invited in any::<[bool; 4]>(),
        ops in prop::collection::vec(room_op(), 0..120),
    ) {
        rooms_run(workers, seed, invited, &ops)?;
    }
}
