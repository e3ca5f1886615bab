//! Property tests of the hub's guarantees, run on the deterministic simulator in `sim/`.
//!
//! proptest generates a configuration (1–4 workers, history and backlog sizes, a rate
//! limit), a seed for the interleaving of peer events and a sequence of client
//! *operations* — open with a room and an optional `since`, send a frame (valid or not),
//! close, report queued bytes, let time pass, ask for stats, deliver peer events — and
//! after the run checks what every connection received against what the owners
//! sequenced (the persistence records) and against a model of each connection's rate
//! limit.

mod sim;

use std::collections::HashMap;
use std::time::Duration;

use hubbub_core::connect::Refusal;
use hubbub_core::*;
use proptest::prelude::*;
use sim::{parse, Frame, Key, Sim, Via};

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

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..4, 0usize..ROOMS.len(), prop_oneof![
            3 => Just(None),
            2 => (0u64..12).prop_map(Some),
            1 => Just(Some(u64::MAX)),
        ])
            .prop_map(|(worker, room, since)| Op::Open { worker, room, since }),
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

#[derive(Debug, Clone)]
struct Config {
    workers: usize,
    history: usize,
    backlog: usize,
    limit: RateLimit,
    max_idle_rooms: usize,
}

fn config() -> impl Strategy<Value = Config> {
    (
        1usize..=4,
        prop_oneof![Just(4usize), Just(1000)],
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
    )
        .prop_map(|(workers, history, backlog, limit)| Config {
            workers,
            history,
            backlog,
            limit,
            max_idle_rooms: 10_000,
        })
}

/// What the test expects of one connection.
#[derive(Debug)]
struct Client {
    key: Key,
    serial: usize,
    room: &'static str,
    since: Option<u64>,
    opened: Mono,
    /// Messages the room's owner had sequenced when the connection opened.
    seq_at_open: u64,
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

struct Run {
    sim: Sim,
    cfg: Config,
    clients: Vec<Client>,
    slow_closes: u64,
}

impl Run {
    fn new(cfg: Config, seed: u64) -> Run {
        let c = cfg.clone();
        let sim = Sim::new(cfg.workers, seed, move |h| {
            h.history_size = c.history;
            h.backlog_size = c.backlog;
            h.rate_limit = c.limit;
            h.max_queued_bytes = MAX_QUEUED;
            h.max_idle_rooms = c.max_idle_rooms;
        });
        Run {
            sim,
            cfg,
            clients: Vec::new(),
            slow_closes: 0,
        }
    }

    fn sequenced(&self, room: &str) -> u64 {
        let records = self.sim.records();
        records.iter().filter(|r| &*r.room_id == room).count() as u64
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
            } => {
                let w = worker % self.cfg.workers;
                let room = ROOMS[room];
                let serial = self.clients.len();
                let mut query = format!("userId=u{serial}&username=User%20{serial}&room={room}");
                if let Some(s) = since {
                    query.push_str(&format!("&since={s}"));
                }
                let seq_at_open = self.sequenced(room);
                let now = self.sim.now();
                let conn = self.sim.open(w, &query).expect("admitted");
                self.clients.push(Client {
                    key: (w, conn),
                    serial,
                    room,
                    since,
                    opened: now.mono,
                    seq_at_open,
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

    /// Checks every guarantee once the mesh is quiet.
    fn check(&mut self) -> Result<(), TestCaseError> {
        self.sim.settle();
        let sim = &self.sim;
        prop_assert!(sim.stale.is_empty(), "frames to stale ids: {:?}", sim.stale);

        // Sequencing: per room 1..=n, no gap, no repeat, each record once.
        let records = sim.records();
        let mut by_room: HashMap<&str, Vec<&PersistRecord>> = HashMap::new();
        for r in &records {
            by_room.entry(&r.room_id).or_default().push(r);
        }
        for (room, rs) in &by_room {
            let seqs: Vec<u64> = rs.iter().map(|r| r.seq).collect();
            let want: Vec<u64> = (1..=rs.len() as u64).collect();
            prop_assert_eq!(&seqs, &want, "seq of room {}", room);
        }
        let last = |room: &str| by_room.get(room).map_or(0, |v| v.len() as u64);

        for c in &self.clients {
            let open_at_end = !sim.gone.contains(&c.key);
            let frames: Vec<(Via, Mono, Frame)> = sim
                .frames(c.key)
                .iter()
                .map(|r| (r.via, r.at, parse(&r.frame)))
                .collect();
            let mut backlog = Vec::new();
            let mut live = Vec::new();
            let mut errors = Vec::new();
            let mut error_times = Vec::new();
            let mut seen_deliver = false;
            for (via, at, f) in &frames {
                match f {
                    Frame::Chat {
                        room,
                        user,
                        content,
                        message_id,
                        seq,
                    } => {
                        prop_assert_eq!(room.as_str(), c.room, "chat from another room");
                        let rec = by_room[c.room][(*seq - 1) as usize];
                        prop_assert_eq!(&*rec.content, content.as_str());
                        prop_assert_eq!(&*rec.user_id, user.as_str());
                        prop_assert_eq!(rec.message_id.to_string(), message_id.clone());
                        match via {
                            Via::Send => {
                                prop_assert!(!seen_deliver, "backlog after a live frame");
                                backlog.push(*seq);
                            }
                            Via::Deliver => live.push(*seq),
                        }
                    }
                    Frame::Presence { room, .. } => {
                        prop_assert_eq!(room.as_str(), c.room, "presence from another room");
                        prop_assert_eq!(*via, Via::Deliver);
                    }
                    Frame::Error { code } => {
                        prop_assert_eq!(*via, Via::Send);
                        if code == "rate_limited" {
                            error_times.push(*at);
                        }
                        errors.push(code.clone());
                    }
                }
                seen_deliver |= *via == Via::Deliver;
            }

            // Exactly once, in order: the chats a connection receives are +1 each.
            let all: Vec<u64> = backlog.iter().chain(&live).copied().collect();
            for pair in all.windows(2) {
                prop_assert_eq!(pair[1], pair[0] + 1, "client {} got {:?}", c.serial, all);
            }

            // The backlog is the one the owner owed when it saw the join (after `last_at_join`
            // messages), and live messages continue from there.
            let last_at_join = match (live.first(), backlog.last()) {
                (Some(&first_live), _) => Some(first_live - 1),
                (None, Some(&b)) => Some(b),
                (None, None) if open_at_end => Some(last(c.room)),
                (None, None) => None,
            };
            if let Some(l) = last_at_join {
                prop_assert!(l >= c.seq_at_open && l <= last(c.room));
                let want: Vec<u64> = (self.first_owed(c, l)..=l).collect();
                prop_assert_eq!(&backlog, &want, "backlog of client {} ({:?})", c.serial, c);
            }
            if open_at_end {
                let got_to = all.last().copied().or(last_at_join).unwrap_or(0);
                prop_assert_eq!(got_to, last(c.room), "client {} missed messages", c.serial);
            }

            // Rate limits and validation: exactly the model's errors, at most one
            // rate_limited a second, accepted within burst + rate × elapsed.
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
            let user = format!("u{}", c.serial);
            let accepted: Vec<&str> = records
                .iter()
                .filter(|r| *r.user_id == *user)
                .map(|r| &*r.content)
                .collect();
            prop_assert_eq!(
                accepted,
                c.accepted.iter().map(String::as_str).collect::<Vec<_>>()
            );
        }

        // Analytics, gathered from every worker in turn.
        let open = self.open_clients();
        for w in 0..self.cfg.workers {
            let snap = self.sim.stats(w);
            let sim = &self.sim;
            prop_assert_eq!(snap.total_messages, records.len() as u64);
            prop_assert_eq!(snap.active_connections, open.len() as u64);
            prop_assert_eq!(snap.active_users, open.len() as u64);
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

        // History: the newest retained messages, exactly as broadcast.
        for room in ROOMS {
            let Answer::Messages(list) = self.sim.ask(
                0,
                Query::RoomMessages {
                    room: room.to_owned(),
                    limit: 200,
                },
            ) else {
                panic!("room messages are answered with a message list")
            };
            prop_assert_eq!(&*list.id, room);
            let seqs: Vec<u64> = list
                .frames
                .iter()
                .map(|f| {
                    let m: serde_json::Value = serde_json::from_slice(f).unwrap();
                    m["seq"].as_u64().unwrap()
                })
                .collect();
            let n = last(room);
            let kept = n.min(self.cfg.history as u64).min(200);
            let want: Vec<u64> = (n - kept + 1..=n).collect();
            prop_assert_eq!(seqs, want, "history of {}", room);
        }
        Ok(())
    }

    /// The first `seq` the owner sends a joiner when it has sequenced `last` messages.
    fn first_owed(&self, c: &Client, last: u64) -> u64 {
        let oldest_kept = last.saturating_sub(self.cfg.history as u64) + 1;
        let first = match c.since {
            None => last.saturating_sub(self.cfg.backlog as u64) + 1,
            Some(s) => s.saturating_add(1).min(last + 1),
        };
        first.max(oldest_kept)
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
        });
    }
    for op in ops {
        run.apply(op);
    }
    run.check()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    /// Random operations on random configurations under random interleavings.
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
                          .prop_map(|(worker, room, since)| Op::Open { worker, room, since }),
                  ], 0..250)) {
        let cfg = Config { workers, history: 8, backlog: 3, limit: RateLimit { per_sec: 0.0, burst: 0.0 }, max_idle_rooms: 10_000 };
        run(cfg, seed, &ops)?;
    }

    /// Rooms left with no connection are forgotten beyond `max_idle_rooms`; a forgotten
    /// room starts again from seq 1. Nothing panics, no frame goes to a stale id, and
    /// while a room lives its seqs have no gap.
    #[test]
    fn idle_rooms_are_evicted_safely(cfg in config(), max_idle in 0usize..2, seed in any::<u64>(),
                                     ops in prop::collection::vec(op(), 0..120)) {
        let mut run = Run::new(Config { max_idle_rooms: max_idle, ..cfg }, seed);
        for op in &ops {
            run.apply(op);
        }
        run.sim.settle();
        prop_assert!(run.sim.stale.is_empty());
        let records = run.sim.records();
        for room in ROOMS {
            let mut expect = 1;
            for r in records.iter().filter(|r| &*r.room_id == room) {
                if r.seq == 1 {
                    expect = 1;
                }
                prop_assert_eq!(r.seq, expect);
                expect += 1;
            }
        }
        for c in &run.clients {
            let seqs: Vec<u64> = run.sim.frames(c.key).iter().filter_map(|r| match parse(&r.frame) {
                Frame::Chat { seq, .. } => Some(seq),
                _ => None,
            }).collect();
            for pair in seqs.windows(2) {
                prop_assert!(pair[1] == pair[0] + 1, "client {}: {:?}", c.serial, seqs);
            }
        }
        let snap = run.sim.stats(0);
        prop_assert_eq!(snap.total_messages, records.len() as u64);
    }

    /// Tokens: accepted up to the last millisecond of their expiry second, refused
    /// (401) from the next one, on every worker.
    #[test]
    fn token_expiry_boundary(expiry in 1_795_258_000u64..1_900_000_000, workers in 1usize..=4) {
        let secret = b"sim-secret".to_vec();
        let mut sim = Sim::new(workers, 7, |h| h.auth_secret = Some(secret.clone()));
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
    let chats = |key| -> Vec<(Via, u64)> {
        sim.frames(key)
            .iter()
            .filter_map(|r| match parse(&r.frame) {
                Frame::Chat { seq, .. } => Some((r.via, seq)),
                _ => None,
            })
            .collect()
    };
    let bob_chats = chats(bob);
    let seqs: Vec<u64> = bob_chats.iter().map(|c| c.1).collect();
    assert_eq!(seqs, [3, 4, 5, 6, 7], "since=2: the rest, then live");
    assert!(bob_chats.last().is_some_and(|c| c.0 == Via::Deliver));
    assert_eq!(chats(alice).len(), 7);
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
