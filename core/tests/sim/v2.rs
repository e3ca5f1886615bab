//! Protocol v2 on the simulator: operations of v2 (and some v1) clients on several
//! workers, a model of what each request must be answered with, and the checks of
//! docs/PROTOCOL.md §7 run on everything each connection received.
//!
//! A [`V2Run`] applies [`V2Op`]s. Each client is a connection: a v2 one subscribes and
//! unsubscribes, chats (with or without a `clientMsgId`, resending earlier ones, also from
//! another connection of the same user), types, reads and closes; a v1 one sits in its
//! room and chats. Time passes as a driver lets it pass ([`Sim::run_for`]: every timer at
//! its deadline), and peer events are delivered in a seeded interleaving, as for v1. The
//! model is local to each connection (what its own worker decides at once: errors, which
//! requests are accepted, the buckets); what the owners decide is checked against the
//! journal of sequenced messages and against the true state at the end.
//!
//! In *settled* runs every operation is followed by a settle, so each owner handles
//! everything at the instant it was sent and the model knows the owners' state exactly:
//! those runs check the typing set and the read markers value for value.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use hubbub_core::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};

use super::{Key, Sim};

/// The rooms of v2 runs (with 1–4 workers, some are owned by another worker than the
/// connection's).
pub const ROOMS: [&str; 4] = ["lobby", "r1", "team:eu", "dev"];

/// A user types for this long after their last `typing` (PROTOCOL.md §7.2).
const TYPING_TTL: Duration = Duration::from_secs(6);
/// Typing frames of one room at most this often.
const TYPING_INTERVAL: Duration = Duration::from_millis(250);
/// Above the bound, the online count at most this often.
const COUNT_INTERVAL: Duration = Duration::from_secs(1);
/// A resend is recognised for this long.
const RESEND_WINDOW_MS: u64 = 300_000;
const CONTROL_LIMIT: RateLimit = RateLimit {
    per_sec: 10.0,
    burst: 64.0,
};
const TYPING_LIMIT: RateLimit = RateLimit {
    per_sec: 1.0,
    burst: 3.0,
};

/// (user id, username or lastSeen) of a presence or typing frame.
pub type Users = Vec<(String, String)>;
/// Joined and left user ids.
type Ids = (Vec<String>, Vec<String>);
/// A presence frame as a subscriber got it: online, joined / left ids, the whole set.
type GotPresence = (usize, Option<Ids>, Option<BTreeSet<String>>);

/// A server frame as a v1 or v2 client reads it; anything else is a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Srv {
    Hello {
        user: String,
        username: String,
    },
    Subscribed {
        id: Option<u32>,
        room: String,
        epoch: String,
        seq: u64,
        recovered: bool,
        last_read: u64,
        online: usize,
        /// Within the bound: who was online as of the room's last presence frame.
        users: Option<Vec<String>>,
    },
    Unsubscribed {
        id: Option<u32>,
        room: String,
    },
    Chat {
        room: String,
        user: String,
        username: String,
        content: String,
        message_id: String,
        timestamp: String,
        seq: u64,
    },
    Ack {
        id: Option<u32>,
        room: String,
        seq: u64,
        message_id: String,
        client_msg_id: Option<String>,
        duplicate: bool,
    },
    Presence {
        room: String,
        online: usize,
        /// Joined (id, username) and left (id, lastSeen); absent above the bound.
        changes: Option<(Users, Users)>,
        /// The whole set online, when the room comes back within the bound.
        everyone: Option<Vec<String>>,
    },
    Typing {
        room: String,
        users: Vec<(String, String)>,
    },
    Read {
        room: String,
        user: String,
        seq: u64,
    },
    /// v1's join and leave.
    Move {
        join: bool,
        room: String,
        user: String,
    },
    Error {
        code: String,
        id: Option<u32>,
        room: Option<String>,
    },
}

impl Srv {
    /// The room it concerns, if any.
    pub fn room(&self) -> Option<&str> {
        match self {
            Srv::Subscribed { room, .. }
            | Srv::Unsubscribed { room, .. }
            | Srv::Chat { room, .. }
            | Srv::Ack { room, .. }
            | Srv::Presence { room, .. }
            | Srv::Typing { room, .. }
            | Srv::Read { room, .. }
            | Srv::Move { room, .. } => Some(room),
            Srv::Error { room, .. } => room.as_deref(),
            Srv::Hello { .. } => None,
        }
    }
}

/// A presence set and count as a client keeps them: from `start`, each frame's `online`,
/// its whole set where it carries one, then its joined and left.
fn applied(
    start: &BTreeSet<String>,
    online: usize,
    frames: &[GotPresence],
) -> (BTreeSet<String>, usize) {
    let (mut belief, mut count) = (start.clone(), online);
    for (online, changes, everyone) in frames {
        count = *online;
        if let Some(e) = everyone {
            belief = e.clone();
        }
        if let Some((joined, left)) = changes {
            belief.extend(joined.iter().cloned());
            for u in left {
                belief.remove(u);
            }
        }
    }
    (belief, count)
}

/// Parses one server frame; panics on a frame PROTOCOL.md does not describe.
pub fn parse_v2(frame: &[u8]) -> Srv {
    let v: Value = serde_json::from_slice(frame).expect("server frames are JSON");
    let s = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("{k} in {v}"))
            .to_owned()
    };
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    let id = || v.get("id").map(|i| i.as_u64().expect("id") as u32);
    let users = |k: &str, second: &str| -> Vec<(String, String)> {
        v[k].as_array()
            .unwrap_or_else(|| panic!("{k} in {v}"))
            .iter()
            .map(|u| {
                let f = |k: &str| u[k].as_str().unwrap_or_else(|| panic!("{k} in {v}"));
                (f("userId").to_owned(), f(second).to_owned())
            })
            .collect()
    };
    let ids = |k: &str| -> Vec<String> { users(k, "username").into_iter().map(|u| u.0).collect() };
    match v["type"].as_str() {
        Some("hello") => Srv::Hello {
            user: s("userId"),
            username: s("username"),
        },
        Some("subscribed") => Srv::Subscribed {
            id: id(),
            room: s("roomId"),
            epoch: s("epoch"),
            seq: n("seq"),
            recovered: v["recovered"].as_bool().expect("recovered"),
            last_read: n("lastRead"),
            online: n("online") as usize,
            users: v.get("users").map(|_| ids("users")),
        },
        Some("unsubscribed") => Srv::Unsubscribed {
            id: id(),
            room: s("roomId"),
        },
        Some("chat") => Srv::Chat {
            room: s("roomId"),
            user: s("userId"),
            username: s("username"),
            content: s("content"),
            message_id: s("messageId"),
            timestamp: s("timestamp"),
            seq: n("seq"),
        },
        Some("ack") => Srv::Ack {
            id: id(),
            room: s("roomId"),
            seq: n("seq"),
            message_id: s("messageId"),
            client_msg_id: v
                .get("clientMsgId")
                .map(|c| c.as_str().expect("cmid").into()),
            duplicate: v["duplicate"].as_bool().expect("duplicate"),
        },
        Some("presence") => {
            let changes = match (v.get("joined"), v.get("left")) {
                (None, None) => None,
                (Some(_), Some(_)) => {
                    Some((users("joined", "username"), users("left", "lastSeen")))
                }
                _ => panic!("joined and left go together: {v}"),
            };
            let everyone = v.get("users").map(|_| ids("users"));
            assert!(
                everyone.is_none() || changes.is_some(),
                "users without joined and left: {v}"
            );
            Srv::Presence {
                room: s("roomId"),
                online: n("online") as usize,
                changes,
                everyone,
            }
        }
        Some("typing") => Srv::Typing {
            room: s("roomId"),
            users: users("users", "username"),
        },
        Some("read") => Srv::Read {
            room: s("roomId"),
            user: s("userId"),
            seq: n("seq"),
        },
        Some(kind @ ("join" | "leave")) => Srv::Move {
            join: kind == "join",
            room: s("roomId"),
            user: s("userId"),
        },
        Some("error") => Srv::Error {
            code: s("code"),
            id: id(),
            room: v
                .get("roomId")
                .map(|r| r.as_str().expect("roomId").to_owned()),
        },
        _ => panic!("unknown frame {v}"),
    }
}

/// Settings of a v2 run.
#[derive(Debug, Clone)]
pub struct V2Config {
    pub workers: usize,
    pub history: usize,
    pub backlog: usize,
    pub limit: RateLimit,
    pub max_idle_rooms: usize,
    pub max_subscriptions: usize,
    pub presence: bool,
    pub max_members: usize,
    pub interval_ms: u64,
    /// `max_queued_bytes`: small, a backlog or replay of a few messages is streamed in
    /// slices, with the room's live frames and acks held behind it.
    pub max_queued: usize,
}

/// Which epoch a recovering subscribe sends.
#[derive(Debug, Clone, Copy)]
pub enum EpochPick {
    /// The one this user was last given for the room.
    Given,
    /// Another one seen for the room (an earlier life), if any.
    Stale,
    Bogus,
    Missing,
}

/// What a subscribe asks for.
#[derive(Debug, Clone, Copy)]
pub enum Recover {
    /// No `since`: the backlog.
    Fresh,
    /// `since` = the newest seq this user saw in the room, less `back`.
    Resume { back: u64, epoch: EpochPick },
    /// Any `since`.
    Wild { since: u64, epoch: EpochPick },
}

/// How a chat names its send.
#[derive(Debug, Clone, Copy)]
pub enum Cmid {
    None,
    New,
    /// An earlier `clientMsgId` of this user in this room (this index modulo their number).
    Resend(usize),
}

/// Which `seq` a read marker names.
#[derive(Debug, Clone, Copy)]
pub enum ReadSeq {
    /// The newest seen, less this.
    Seen(u64),
    /// Beyond anything sent (clamped by the owner).
    Ahead(u64),
}

/// Frames the decoder refuses (each with its error, its `id` and its room).
#[derive(Debug, Clone, Copy)]
pub enum Bad {
    EmptyContent,
    EmptyCmid,
    Json,
    Type,
    NoRoom,
    Seq,
}

/// A room of the client's: usually one it is subscribed to.
#[derive(Debug, Clone, Copy)]
pub struct RoomPick {
    pub index: usize,
    pub anywhere: bool,
}

#[derive(Debug, Clone)]
pub enum V2Op {
    Open {
        worker: usize,
        v2: bool,
        room: Option<usize>,
        recover: Recover,
        /// Connect as the user of an earlier connection (this index modulo their number).
        as_user: Option<usize>,
    },
    Subscribe {
        client: usize,
        room: usize,
        recover: Recover,
    },
    /// Subscribe at a quiet moment (nothing in flight, every presence change sent), then
    /// take the room's presence as a client does (`GET /api/rooms/{id}/presence`).
    QuietSubscribe {
        client: usize,
        room: usize,
    },
    Unsubscribe {
        client: usize,
        room: RoomPick,
    },
    /// Unsubscribe, then subscribe to the same room again (recovering, or not).
    Resubscribe {
        client: usize,
        room: RoomPick,
        recover: Recover,
    },
    Chat {
        client: usize,
        room: RoomPick,
        cmid: Cmid,
    },
    Typing {
        client: usize,
        room: RoomPick,
        stop: bool,
    },
    Read {
        client: usize,
        room: RoomPick,
        seq: ReadSeq,
    },
    Bad {
        client: usize,
        room: RoomPick,
        bad: Bad,
    },
    Close {
        client: usize,
    },
    /// Time passes, each hub's timers firing at their deadlines.
    Advance {
        millis: u64,
    },
    Deliver {
        n: usize,
    },
    /// Settled runs: let the typing frames of the last changes go out, then compare each
    /// subscriber's last typing frame with the typing set.
    CheckTyping,
}

/// A subscription as the client's worker holds it, and what its subscribe asked.
#[derive(Debug, Clone)]
struct SubReq {
    gen: u64,
    room: &'static str,
    since: Option<u64>,
    epoch: Option<String>,
    /// Taken at a quiet moment: the room's presence right after it (user ids, online).
    snapshot: Option<(BTreeSet<String>, usize)>,
    /// Settled runs: the user's read marker in the room when the owner took it.
    last_read: Option<u64>,
}

/// A chat the client's worker accepted and sent on to the owner.
#[derive(Debug, Clone)]
struct Sent {
    id: u32,
    room: &'static str,
    content: String,
    cmid: Option<String>,
    gen: u64,
    /// When it was sent, and the journal's length then.
    at: UnixMillis,
    journal_at: usize,
}

/// One connection, as the test models it.
#[derive(Debug)]
struct Client {
    key: Key,
    serial: usize,
    user: String,
    username: String,
    v2: bool,
    v1_room: Option<&'static str>,
    /// The hub's view of its subscriptions.
    subs: BTreeMap<&'static str, SubReq>,
    /// Every accepted subscribe, by request id (`None`: the URL's).
    reqs: HashMap<Option<u32>, SubReq>,
    /// Accepted unsubscribes, by id.
    unsubs: HashMap<u32, &'static str>,
    next_id: u32,
    next_msg: usize,
    bucket: TokenBucket,
    control: TokenBucket,
    typing: TokenBucket,
    last_rate_error: Option<Mono>,
    /// Errors it must receive, in order: code, id, room.
    errors: Vec<(&'static str, Option<u32>, Option<String>)>,
    sent: Vec<Sent>,
    /// Frames already read by [`V2Run::learn`].
    cursor: usize,
}

/// A typist in the settled model.
#[derive(Debug, Clone)]
struct Typist {
    username: String,
    until: Mono,
}

pub struct V2Run {
    pub sim: Sim,
    pub cfg: V2Config,
    settled: bool,
    clients: Vec<Client>,
    next_gen: u64,
    next_cmid: u64,
    /// `clientMsgId`s sent per (user, room).
    cmids: HashMap<(String, &'static str), Vec<String>>,
    /// Per (user, room): the epoch last given to one of the user's connections and the
    /// newest seq one of them saw in it.
    known: HashMap<(String, &'static str), (String, u64)>,
    /// Every epoch seen per room.
    epochs: HashMap<&'static str, Vec<String>>,
    /// Users who ever were in each room.
    ever: HashMap<&'static str, BTreeSet<String>>,
    /// Users who sent an accepted `typing` to each room, with their connections' names.
    typists_ever: HashMap<&'static str, HashMap<String, HashSet<String>>>,
    /// Settled runs: each room's typing set and read markers, as its owner holds them.
    typing: HashMap<&'static str, BTreeMap<String, Typist>>,
    reads: HashMap<&'static str, BTreeMap<String, u64>>,
    /// Counters the hubs must agree with.
    typing_dropped: u64,
    rate_limited: u64,
    rejected: u64,
    /// Chats of v1 clients accepted.
    v1_sent: u64,
    /// The first failure found during the run.
    failure: Option<String>,
    /// Typing comparisons made (a settled run that made none checked nothing).
    pub typing_checks: usize,
}

fn pick_room(c: &Client, p: RoomPick) -> &'static str {
    let subs: Vec<&'static str> = c.subs.keys().copied().collect();
    if p.anywhere || subs.is_empty() {
        ROOMS[p.index % ROOMS.len()]
    } else {
        subs[p.index % subs.len()]
    }
}

impl V2Run {
    pub fn new(cfg: V2Config, seed: u64, settled: bool) -> V2Run {
        let c = cfg.clone();
        let mut sim = Sim::new(cfg.workers, seed, move |h| {
            h.history_size = c.history;
            h.backlog_size = c.backlog;
            h.rate_limit = c.limit;
            h.max_idle_rooms = c.max_idle_rooms;
            h.max_subscriptions = c.max_subscriptions;
            h.presence = c.presence;
            h.presence_max_members = c.max_members;
            h.presence_interval = Duration::from_millis(c.interval_ms);
            h.max_queued_bytes = c.max_queued;
        });
        sim.answer_pings = true;
        // Streamed replays take time to write, so live frames and acks pile up behind
        // them (settled runs keep the owners' state exact instead).
        sim.defer_written = !settled;
        V2Run {
            sim,
            cfg,
            settled,
            clients: Vec::new(),
            next_gen: 1,
            next_cmid: 1,
            cmids: HashMap::new(),
            known: HashMap::new(),
            epochs: HashMap::new(),
            ever: HashMap::new(),
            typists_ever: HashMap::new(),
            typing: HashMap::new(),
            reads: HashMap::new(),
            typing_dropped: 0,
            rate_limited: 0,
            rejected: 0,
            v1_sent: 0,
            failure: None,
            typing_checks: 0,
        }
    }

    fn open_clients(&self) -> Vec<usize> {
        (0..self.clients.len())
            .filter(|&i| !self.sim.gone.contains(&self.clients[i].key))
            .collect()
    }

    fn pick(&self, client: usize, v2: bool) -> Option<usize> {
        let open: Vec<usize> = self
            .open_clients()
            .into_iter()
            .filter(|&i| !v2 || self.clients[i].v2)
            .collect();
        (!open.is_empty()).then(|| open[client % open.len()])
    }

    /// The users with an open connection in `room` (a v1 one there, or a v2 one
    /// subscribed to it), as the client's workers hold them.
    fn truth(&self, room: &str) -> BTreeSet<String> {
        self.open_clients()
            .into_iter()
            .map(|i| &self.clients[i])
            .filter(|c| c.v1_room == Some(room) || c.subs.contains_key(room))
            .map(|c| c.user.clone())
            .collect()
    }

    /// Reads what the clients received since the last call: the epochs they were given
    /// and the newest seq they saw, per user and room (what a reconnecting client sends).
    fn learn(&mut self) {
        for c in &mut self.clients {
            let frames = self.sim.frames(c.key);
            for r in &frames[c.cursor..] {
                match parse_v2(&r.frame) {
                    Srv::Subscribed {
                        room, epoch, seq, ..
                    } => {
                        let room: &'static str =
                            ROOMS.iter().find(|r| **r == room).expect("a room of ours");
                        let seen = self.epochs.entry(room).or_default();
                        if !seen.contains(&epoch) {
                            seen.push(epoch.clone());
                        }
                        self.known.insert((c.user.clone(), room), (epoch, seq));
                    }
                    Srv::Chat { room, seq, .. } if c.v2 => {
                        let room: &'static str =
                            ROOMS.iter().find(|r| **r == room).expect("a room of ours");
                        if let Some(k) = self.known.get_mut(&(c.user.clone(), room)) {
                            k.1 = k.1.max(seq);
                        }
                    }
                    _ => {}
                }
            }
            c.cursor = frames.len();
        }
    }

    /// `since` and `epoch` for a subscribe of `user` to `room`.
    fn recovery(
        &mut self,
        user: &str,
        room: &'static str,
        r: Recover,
    ) -> (Option<u64>, Option<String>) {
        self.learn();
        let known = self.known.get(&(user.to_owned(), room)).cloned();
        let latest = known
            .as_ref()
            .map(|k| k.0.clone())
            .or_else(|| self.epochs.get(room).and_then(|e| e.last().cloned()));
        let epoch = |pick: EpochPick| match pick {
            EpochPick::Given => Some(latest.clone().unwrap_or_else(|| "nope".to_owned())),
            EpochPick::Stale => {
                let other = self
                    .epochs
                    .get(room)
                    .and_then(|e| e.iter().find(|e| Some(*e) != latest.as_ref()).cloned());
                Some(other.unwrap_or_else(|| "0000".to_owned()))
            }
            EpochPick::Bogus => Some("bogus".to_owned()),
            EpochPick::Missing => None,
        };
        match r {
            Recover::Fresh => (None, None),
            Recover::Resume { back, epoch: e } => {
                let seen = known.map_or(0, |k| k.1);
                (Some(seen.saturating_sub(back)), epoch(e))
            }
            Recover::Wild { since, epoch: e } => (Some(since), epoch(e)),
        }
    }

    fn settle_if(&mut self) {
        if self.settled {
            self.sim.settle();
        }
    }

    /// The owner's `seq` of `room` now (settled runs, which never evict).
    fn last_seq(&self, room: &str) -> u64 {
        self.sim
            .records()
            .iter()
            .rev()
            .find(|r| &*r.room_id == room)
            .map_or(0, |r| r.seq)
    }

    /// Settled runs: `user` may have stopped being in `room`; gone is not typing.
    fn left_typing(&mut self, user: &str, rooms: &[&'static str]) {
        for room in rooms {
            if !self.truth(room).contains(user) {
                if let Some(t) = self.typing.get_mut(room) {
                    t.remove(user);
                }
            }
        }
    }

    /// A rate-limit refusal, at most one reported a second (chat and control share it).
    fn refuse_rate(&mut self, i: usize, id: Option<u32>, room: Option<&'static str>) {
        let now = self.sim.now().mono;
        let c = &mut self.clients[i];
        self.rate_limited += 1;
        if c.last_rate_error
            .is_none_or(|t| now.saturating_since(t) >= Duration::from_secs(1))
        {
            c.last_rate_error = Some(now);
            c.errors.push(("rate_limited", id, room.map(str::to_owned)));
        }
    }

    fn send(&mut self, i: usize, frame: Value) {
        let text = frame.to_string();
        let key = self.clients[i].key;
        self.sim.frame(key, Inbound::Text(text.as_bytes()));
    }

    fn take_id(&mut self, i: usize) -> u32 {
        let c = &mut self.clients[i];
        c.next_id += 1;
        c.next_id
    }

    pub fn apply(&mut self, op: &V2Op) {
        match *op {
            V2Op::Open {
                worker,
                v2,
                room,
                recover,
                as_user,
            } => self.open(worker, v2, room, recover, as_user),
            V2Op::Subscribe {
                client,
                room,
                recover,
            } => {
                let Some(i) = self.pick(client, true) else {
                    return;
                };
                let room = ROOMS[room % ROOMS.len()];
                let user = self.clients[i].user.clone();
                let (since, epoch) = self.recovery(&user, room, recover);
                self.subscribe(i, room, since, epoch, false);
            }
            V2Op::QuietSubscribe { client, room } => {
                let room = ROOMS[room % ROOMS.len()];
                // Every presence change sent: the interval, and above the bound the
                // count's second.
                self.sim.settle();
                let wait = Duration::from_millis(self.cfg.interval_ms).max(COUNT_INTERVAL);
                self.sim.run_for(wait);
                self.sim.settle();
                // Picked now: the wait may have closed a slow consumer.
                let Some(i) = self.pick(client, true) else {
                    return;
                };
                self.subscribe(i, room, None, None, true);
            }
            V2Op::Unsubscribe { client, room } => {
                let Some(i) = self.pick(client, true) else {
                    return;
                };
                let room = pick_room(&self.clients[i], room);
                self.unsubscribe(i, room);
            }
            V2Op::Resubscribe {
                client,
                room,
                recover,
            } => {
                let Some(i) = self.pick(client, true) else {
                    return;
                };
                let room = pick_room(&self.clients[i], room);
                self.unsubscribe(i, room);
                let user = self.clients[i].user.clone();
                let (since, epoch) = self.recovery(&user, room, recover);
                self.subscribe(i, room, since, epoch, false);
            }
            V2Op::Chat { client, room, cmid } => {
                let Some(i) = self.pick(client, false) else {
                    return;
                };
                if self.clients[i].v2 {
                    self.chat(i, room, cmid);
                } else {
                    self.chat_v1(i);
                }
            }
            V2Op::Typing { client, room, stop } => {
                let Some(i) = self.pick(client, true) else {
                    return;
                };
                let room = pick_room(&self.clients[i], room);
                let id = self.take_id(i);
                let now = self.sim.now().mono;
                let c = &mut self.clients[i];
                let mut accepted = false;
                if !c.subs.contains_key(room) {
                    c.errors
                        .push(("not_subscribed", Some(id), Some(room.to_owned())));
                } else if !c.typing.try_take(TYPING_LIMIT, now) {
                    self.typing_dropped += 1;
                } else {
                    accepted = true;
                }
                let mut frame = json!({"type": "typing", "id": id, "roomId": room});
                if stop {
                    frame["stop"] = json!(true);
                }
                self.send(i, frame);
                if accepted {
                    let (user, username) = (
                        self.clients[i].user.clone(),
                        self.clients[i].username.clone(),
                    );
                    if !stop {
                        self.typists_ever
                            .entry(room)
                            .or_default()
                            .entry(user.clone())
                            .or_default()
                            .insert(username.clone());
                    }
                    // As the owner takes it: presence on, the room within the bound, the
                    // user in it (they are: their join went before).
                    let in_room = self.truth(room);
                    if self.settled && self.cfg.presence && in_room.len() <= self.cfg.max_members {
                        let set = self.typing.entry(room).or_default();
                        if stop {
                            set.remove(&user);
                        } else {
                            set.insert(
                                user,
                                Typist {
                                    username,
                                    until: now + TYPING_TTL,
                                },
                            );
                        }
                    }
                }
                self.settle_if();
            }
            V2Op::Read { client, room, seq } => {
                let Some(i) = self.pick(client, true) else {
                    return;
                };
                let room = pick_room(&self.clients[i], room);
                self.learn();
                let user = self.clients[i].user.clone();
                let seen = self.known.get(&(user.clone(), room)).map_or(0, |k| k.1);
                let seq = match seq {
                    ReadSeq::Seen(back) => seen.saturating_sub(back),
                    ReadSeq::Ahead(n) => seen + 1 + n,
                };
                let id = self.take_id(i);
                let now = self.sim.now().mono;
                let c = &mut self.clients[i];
                let mut accepted = false;
                if !c.subs.contains_key(room) {
                    c.errors
                        .push(("not_subscribed", Some(id), Some(room.to_owned())));
                } else if !c.control.try_take(CONTROL_LIMIT, now) {
                    self.refuse_rate(i, Some(id), Some(room));
                } else {
                    accepted = true;
                }
                self.send(
                    i,
                    json!({"type": "read", "id": id, "roomId": room, "seq": seq}),
                );
                if accepted && self.settled {
                    let clamped = seq.min(self.last_seq(room));
                    let mark = self.reads.entry(room).or_default().entry(user).or_default();
                    *mark = (*mark).max(clamped);
                }
                self.settle_if();
            }
            V2Op::Bad { client, room, bad } => {
                let Some(i) = self.pick(client, true) else {
                    return;
                };
                let room = pick_room(&self.clients[i], room);
                let id = self.take_id(i);
                let r = Some(room.to_owned());
                let (frame, error) = match bad {
                    Bad::EmptyContent => (
                        json!({"type": "chat", "id": id, "roomId": room, "content": " \t"}).to_string(),
                        ("empty_content", Some(id), r),
                    ),
                    Bad::EmptyCmid => (
                        json!({"type": "chat", "id": id, "roomId": room, "content": "x", "clientMsgId": ""})
                            .to_string(),
                        ("invalid_client_msg_id", Some(id), r),
                    ),
                    Bad::Json => ("{\"type\":\"chat\",".to_owned(), ("invalid_json", None, None)),
                    Bad::Type => (
                        json!({"type": "join", "id": id, "roomId": room}).to_string(),
                        ("invalid_type", Some(id), r),
                    ),
                    Bad::NoRoom => (
                        json!({"type": "subscribe", "id": id}).to_string(),
                        ("room_required", Some(id), None),
                    ),
                    Bad::Seq => (
                        json!({"type": "read", "id": id, "roomId": room, "seq": -1}).to_string(),
                        ("invalid_seq", Some(id), r),
                    ),
                };
                self.rejected += 1;
                self.clients[i].errors.push(error);
                let key = self.clients[i].key;
                self.sim.frame(key, Inbound::Text(frame.as_bytes()));
            }
            V2Op::Close { client } => {
                let Some(i) = self.pick(client, false) else {
                    return;
                };
                let key = self.clients[i].key;
                self.sim.close(key);
                self.settle_if();
                if self.settled {
                    let c = &self.clients[i];
                    let rooms: Vec<&'static str> =
                        c.subs.keys().copied().chain(c.v1_room).collect();
                    let user = c.user.clone();
                    self.left_typing(&user, &rooms);
                }
            }
            V2Op::Advance { millis } => self.sim.run_for(Duration::from_millis(millis)),
            V2Op::Deliver { n } => {
                for _ in 0..n {
                    self.sim.step();
                }
            }
            V2Op::CheckTyping => {
                if self.settled {
                    self.check_typing_now();
                }
            }
        }
    }

    fn open(
        &mut self,
        worker: usize,
        v2: bool,
        room: Option<usize>,
        recover: Recover,
        as_user: Option<usize>,
    ) {
        let w = worker % self.cfg.workers;
        let serial = self.clients.len();
        let user = match as_user {
            Some(k) if serial > 0 => self.clients[k % serial].user.clone(),
            _ => format!("u{serial}"),
        };
        let username = format!("User {serial}");
        let mut query = format!("userId={user}&username=User%20{serial}");
        let room = match (v2, room) {
            (false, r) => Some(ROOMS[r.unwrap_or(0) % ROOMS.len()]),
            (true, r) => r.map(|r| ROOMS[r % ROOMS.len()]),
        };
        let (mut since, mut epoch) = (None, None);
        if v2 {
            query.push_str("&proto=2");
            if let Some(room) = room {
                (since, epoch) = self.recovery(&user, room, recover);
            }
        }
        if let Some(room) = room {
            query.push_str(&format!("&room={room}"));
            if let Some(s) = since {
                query.push_str(&format!("&since={s}"));
            }
            if let Some(e) = &epoch {
                query.push_str(&format!("&epoch={e}"));
            }
        }
        let now = self.sim.now().mono;
        let conn = self.sim.open(w, &query).expect("admitted");
        let mut c = Client {
            key: (w, conn),
            serial,
            user: user.clone(),
            username,
            v2,
            v1_room: if v2 { None } else { room },
            subs: BTreeMap::new(),
            reqs: HashMap::new(),
            unsubs: HashMap::new(),
            next_id: 0,
            next_msg: 0,
            bucket: TokenBucket::new(self.cfg.limit, now),
            control: TokenBucket::new(CONTROL_LIMIT, now),
            typing: TokenBucket::new(TYPING_LIMIT, now),
            last_rate_error: None,
            errors: Vec::new(),
            sent: Vec::new(),
            cursor: 0,
        };
        if let Some(room) = room {
            self.ever.entry(room).or_default().insert(user.clone());
            if v2 {
                let req = SubReq {
                    gen: self.next_gen,
                    room,
                    since,
                    epoch,
                    snapshot: None,
                    last_read: self.read_marker(room, &user),
                };
                self.next_gen += 1;
                c.subs.insert(room, req.clone());
                c.reqs.insert(None, req);
            }
        }
        self.clients.push(c);
        self.settle_if();
    }

    fn read_marker(&self, room: &str, user: &str) -> Option<u64> {
        self.settled.then(|| {
            self.reads
                .get(room)
                .and_then(|m| m.get(user))
                .copied()
                .unwrap_or(0)
        })
    }

    fn subscribe(
        &mut self,
        i: usize,
        room: &'static str,
        since: Option<u64>,
        epoch: Option<String>,
        quiet: bool,
    ) {
        let id = self.take_id(i);
        let now = self.sim.now().mono;
        let max = self.cfg.max_subscriptions;
        let last_read = self.read_marker(room, &self.clients[i].user);
        let c = &mut self.clients[i];
        let r = Some(room.to_owned());
        let mut accepted = false;
        if !c.control.try_take(CONTROL_LIMIT, now) {
            self.refuse_rate(i, Some(id), Some(room));
        } else if c.subs.contains_key(room) {
            c.errors.push(("already_subscribed", Some(id), r));
        } else if c.subs.len() >= max {
            c.errors.push(("too_many_subscriptions", Some(id), r));
        } else {
            accepted = true;
        }
        let mut frame = json!({"type": "subscribe", "id": id, "roomId": room});
        if let Some(s) = since {
            frame["since"] = json!(s);
        }
        if let Some(e) = &epoch {
            frame["epoch"] = json!(e);
        }
        self.send(i, frame);
        let mut snapshot = None;
        if accepted && quiet {
            self.sim.settle();
            let w = self.clients[i].key.0;
            let p = self.sim.presence(w, room);
            let ids = p.users.iter().map(|u| u.user_id.to_string()).collect();
            snapshot = Some((ids, p.online));
        }
        if accepted {
            let req = SubReq {
                gen: self.next_gen,
                room,
                since,
                epoch,
                snapshot,
                last_read,
            };
            self.next_gen += 1;
            let c = &mut self.clients[i];
            self.ever.entry(room).or_default().insert(c.user.clone());
            c.subs.insert(room, req.clone());
            c.reqs.insert(Some(id), req);
        }
        self.settle_if();
    }

    fn chat(&mut self, i: usize, room: RoomPick, cmid: Cmid) {
        let room = pick_room(&self.clients[i], room);
        let id = self.take_id(i);
        let user = self.clients[i].user.clone();
        let cmid = match cmid {
            Cmid::None => None,
            Cmid::Resend(k) => match self.cmids.get(&(user.clone(), room)) {
                Some(earlier) if !earlier.is_empty() => Some(earlier[k % earlier.len()].clone()),
                _ => Some(self.new_cmid(&user, room)),
            },
            Cmid::New => Some(self.new_cmid(&user, room)),
        };
        let now = self.sim.now().mono;
        let limit = self.cfg.limit;
        let c = &mut self.clients[i];
        c.next_msg += 1;
        let mut content = format!("m{}-{}", c.serial, c.next_msg);
        if let Some(k) = &cmid {
            content.push_str(&format!(" {k}"));
        }
        let mut frame = json!({"type": "chat", "id": id, "roomId": room, "content": content});
        if let Some(k) = &cmid {
            frame["clientMsgId"] = json!(k);
        }
        let gen = c.subs.get(room).map(|s| s.gen);
        match gen {
            None => c
                .errors
                .push(("not_subscribed", Some(id), Some(room.to_owned()))),
            Some(_) if !c.bucket.try_take(limit, now) => self.refuse_rate(i, Some(id), Some(room)),
            Some(gen) => c.sent.push(Sent {
                id,
                room,
                content: content.clone(),
                cmid,
                gen,
                at: self.sim.now().wall,
                journal_at: 0,
            }),
        }
        let before = self.sim.journal_len();
        if let Some(s) = self.clients[i].sent.last_mut().filter(|s| s.id == id) {
            s.journal_at = before;
        }
        self.send(i, frame);
        self.settle_if();
        // Settled: a message sequenced (not a resend) ends its sender's typing.
        if self.settled && self.sim.journal_len() > before {
            if let Some(t) = self.typing.get_mut(room) {
                t.remove(&user);
            }
        }
    }

    fn unsubscribe(&mut self, i: usize, room: &'static str) {
        let id = self.take_id(i);
        let now = self.sim.now().mono;
        let c = &mut self.clients[i];
        if !c.subs.contains_key(room) {
            c.errors
                .push(("not_subscribed", Some(id), Some(room.to_owned())));
        } else if !c.control.try_take(CONTROL_LIMIT, now) {
            self.refuse_rate(i, Some(id), Some(room));
        } else {
            c.subs.remove(room);
            c.unsubs.insert(id, room);
        }
        self.send(i, json!({"type": "unsubscribe", "id": id, "roomId": room}));
        let user = self.clients[i].user.clone();
        self.settle_if();
        if self.settled {
            self.left_typing(&user, &[room]);
        }
    }

    fn chat_v1(&mut self, i: usize) {
        let now = self.sim.now().mono;
        let limit = self.cfg.limit;
        let c = &mut self.clients[i];
        c.next_msg += 1;
        let content = format!("m{}-{}", c.serial, c.next_msg);
        if c.bucket.try_take(limit, now) {
            self.v1_sent += 1;
        } else {
            self.refuse_rate(i, None, None);
        }
        let frame = json!({"type": "chat", "content": content});
        let before = self.sim.journal_len();
        self.send(i, frame);
        self.settle_if();
        // A chat message ends its user's typing, whichever their protocol.
        let (user, room) = (self.clients[i].user.clone(), self.clients[i].v1_room);
        if self.settled && self.sim.journal_len() > before {
            if let Some(t) = room.and_then(|r| self.typing.get_mut(r)) {
                t.remove(&user);
            }
        }
    }

    fn new_cmid(&mut self, user: &str, room: &'static str) -> String {
        let k = format!("k{}", self.next_cmid);
        self.next_cmid += 1;
        self.cmids
            .entry((user.to_owned(), room))
            .or_default()
            .push(k.clone());
        k
    }

    /// Settled runs: once the last changes' typing frames are out (timers run until no
    /// typist expired within the last typing interval), every subscriber's last typing
    /// frame of each of its rooms lists exactly who types there.
    fn check_typing_now(&mut self) {
        if !self.cfg.presence {
            return;
        }
        loop {
            self.sim
                .run_for(TYPING_INTERVAL + Duration::from_millis(50));
            self.sim.settle();
            let now = self.sim.now().mono;
            let window = Mono::from_nanos(now.as_nanos() - TYPING_INTERVAL.as_nanos() as u64);
            let expiring = self
                .typing
                .values()
                .flat_map(|t| t.values())
                .any(|t| t.until > window && t.until <= now);
            if !expiring {
                break;
            }
        }
        let now = self.sim.now().mono;
        for c in &self.clients {
            if self.sim.gone.contains(&c.key) || !c.v2 {
                continue;
            }
            for room in c.subs.keys() {
                // User ids: a typist's name is that of the connection that typed last,
                // which is no change of the set, so it shows only in the next frame.
                let want: Vec<&String> = self
                    .typing
                    .get(room)
                    .map(|t| {
                        t.iter()
                            .filter(|(_, t)| t.until > now)
                            .map(|(u, _)| u)
                            .collect()
                    })
                    .unwrap_or_default();
                let got = last_typing(self.sim.frames(c.key), room).unwrap_or_default();
                let got: Vec<&String> = got.iter().map(|u| &u.0).collect();
                if got != want && self.failure.is_none() {
                    self.failure = Some(format!(
                        "client {} ({}): the typing set of {room} at {now:?} is {got:?}, not {want:?}",
                        c.serial, c.user
                    ));
                }
                self.typing_checks += 1;
            }
        }
    }

    /// Lets everything settle: peer events delivered, then time for every coalescing
    /// interval and typing's expiry, until nothing is in flight.
    pub fn finish(&mut self) {
        for _ in 0..6 {
            self.sim.settle();
            self.sim.run_for(TYPING_TTL + Duration::from_secs(1));
            if self.sim.in_flight() == 0 {
                break;
            }
        }
        self.sim.settle();
        self.learn();
    }
}

/// The users of the last typing frame of `room` since the last `subscribed` to it.
fn last_typing(frames: &[super::Received], room: &str) -> Option<Vec<(String, String)>> {
    let mut last = None;
    for r in frames {
        match parse_v2(&r.frame) {
            Srv::Subscribed { room: s, .. } if s == room => last = None,
            Srv::Typing { room: s, users } if s == room => last = Some(users),
            _ => {}
        }
    }
    last
}

/// Whether the memory ring of a room at `last` holding `history` messages has every
/// message after `since` (PROTOCOL.md §7.2 `subscribe`). Rooms of v2 runs have no store,
/// so a life's ring is its newest messages, from seq 1.
pub fn covers(since: u64, last: u64, history: usize) -> bool {
    if since >= last {
        return since == last;
    }
    let held = (history as u64).min(last);
    held > 0 && since + held >= last
}

/// One subscription as its connection received it: from its `subscribed` to its
/// `unsubscribed` (or the end).
#[derive(Debug)]
struct Inst {
    req: SubReq,
    epoch: String,
    seq: u64,
    recovered: bool,
    last_read: u64,
    online: usize,
    /// Chats: seq and message id.
    chats: Vec<(u64, String)>,
    /// Within the bound when subscribed: who was online as of the last presence frame.
    baseline: Option<BTreeSet<String>>,
    /// Presence frames: online, joined / left user ids, and the whole set if sent.
    presence: Vec<GotPresence>,
    typing: Vec<Vec<(String, String)>>,
    /// Read frames: user, seq, and the newest seq the subscriber knew of then.
    reads: Vec<(String, u64, u64)>,
    open: bool,
}

/// An ack, and what its connection had received of its room when it came.
#[derive(Debug)]
struct GotAck {
    id: Option<u32>,
    room: String,
    seq: u64,
    message_id: String,
    client_msg_id: Option<String>,
    duplicate: bool,
    /// The subscription it came in (its generation), if one was live.
    gen: Option<u64>,
    /// That subscription had received the acked message already.
    after_chat: bool,
}

/// What one connection received, sorted out.
struct Got {
    insts: Vec<Inst>,
    acks: Vec<GotAck>,
    errors: Vec<(String, Option<u32>, Option<String>)>,
    /// v1: the chats' seqs.
    v1_chats: Vec<(u64, String)>,
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

impl V2Run {
    /// Sorts out what `c` received, checking on the way that every frame of a room comes
    /// within a subscription to it (nothing before its `subscribed`, nothing after its
    /// `unsubscribed`), that v1 and v2 frames go to their own protocol, and that the
    /// `hello` comes first.
    fn got(&self, c: &Client) -> Result<Got, TestCaseError> {
        let mut got = Got {
            insts: Vec::new(),
            acks: Vec::new(),
            errors: Vec::new(),
            v1_chats: Vec::new(),
        };
        let mut live: HashMap<String, Inst> = HashMap::new();
        let who = format!("client {} ({}, {:?})", c.serial, c.user, c.key);
        for (pos, r) in self.sim.frames(c.key).iter().enumerate() {
            let f = parse_v2(&r.frame);
            if !c.v2 {
                match f {
                    Srv::Chat {
                        room,
                        seq,
                        message_id,
                        ..
                    } => {
                        prop_assert_eq!(
                            Some(room.as_str()),
                            c.v1_room,
                            "{}: chat of another room",
                            who
                        );
                        got.v1_chats.push((seq, message_id));
                    }
                    Srv::Move { room, .. } => {
                        prop_assert_eq!(Some(room.as_str()), c.v1_room, "{}", who);
                    }
                    Srv::Error { code, id, room } => got.errors.push((code, id, room)),
                    other => return Err(fail(format!("{who}: v1 got {other:?}"))),
                }
                continue;
            }
            if pos == 0 {
                prop_assert_eq!(
                    f.clone(),
                    Srv::Hello {
                        user: c.user.clone(),
                        username: c.username.clone()
                    },
                    "{}: hello first",
                    who
                );
                continue;
            }
            let room = f.room().map(str::to_owned);
            let inst = room.as_ref().and_then(|r| live.get_mut(r));
            match f {
                Srv::Hello { .. } => return Err(fail(format!("{who}: a second hello"))),
                Srv::Move { .. } => return Err(fail(format!("{who}: v2 got a v1 join/leave"))),
                Srv::Error { code, id, room } => got.errors.push((code, id, room)),
                Srv::Subscribed {
                    id,
                    room,
                    epoch,
                    seq,
                    recovered,
                    last_read,
                    online,
                    users,
                } => {
                    let Some(req) = c.reqs.get(&id) else {
                        return Err(fail(format!(
                            "{who}: subscribed {room} for no subscribe {id:?}"
                        )));
                    };
                    prop_assert_eq!(req.room, room.as_str(), "{}: subscribed {:?}", who, id);
                    if live.contains_key(&room) {
                        return Err(fail(format!("{who}: subscribed to {room} twice at {pos}")));
                    }
                    let inst = Inst {
                        req: req.clone(),
                        epoch,
                        seq,
                        recovered,
                        last_read,
                        online,
                        baseline: users.map(|u| u.into_iter().collect()),
                        chats: Vec::new(),
                        presence: Vec::new(),
                        typing: Vec::new(),
                        reads: Vec::new(),
                        open: false,
                    };
                    live.insert(room, inst);
                }
                Srv::Unsubscribed { id, room } => {
                    let asked = id.and_then(|id| c.unsubs.get(&id));
                    prop_assert_eq!(
                        asked.copied(),
                        Some(room.as_str()),
                        "{}: unsubscribed {:?}",
                        who,
                        id
                    );
                    // Its subscribed may never have come: the backlog of a subscription
                    // that ended is dropped.
                    if let Some(inst) = live.remove(&room) {
                        got.insts.push(inst);
                    }
                }
                Srv::Ack {
                    id,
                    room,
                    seq,
                    message_id,
                    client_msg_id,
                    duplicate,
                } => {
                    let gen = inst.as_ref().map(|i| i.req.gen);
                    let after_chat =
                        inst.is_some_and(|i| i.chats.iter().any(|(_, m)| *m == message_id));
                    got.acks.push(GotAck {
                        id,
                        room,
                        seq,
                        message_id,
                        client_msg_id,
                        duplicate,
                        gen,
                        after_chat,
                    });
                }
                other => {
                    let Some(inst) = inst else {
                        return Err(fail(format!(
                            "{who}: {other:?} outside a subscription (frame {pos})"
                        )));
                    };
                    match other {
                        Srv::Chat {
                            seq, message_id, ..
                        } => inst.chats.push((seq, message_id)),
                        Srv::Presence {
                            online,
                            changes,
                            everyone,
                            ..
                        } => {
                            let ids =
                                |l: Vec<(String, String)>| l.into_iter().map(|u| u.0).collect();
                            inst.presence.push((
                                online,
                                changes.map(|(j, l)| (ids(j), ids(l))),
                                everyone.map(|e| e.into_iter().collect()),
                            ));
                        }
                        Srv::Typing { users, .. } => inst.typing.push(users),
                        Srv::Read { user, seq, .. } => {
                            let known = inst.chats.last().map_or(inst.seq, |c| c.0.max(inst.seq));
                            inst.reads.push((user, seq, known));
                        }
                        _ => unreachable!(),
                    }
                }
            }
        }
        let open = !self.sim.gone.contains(&c.key);
        for (_, mut inst) in live {
            inst.open = open
                && c.subs
                    .get(inst.req.room)
                    .is_some_and(|s| s.gen == inst.req.gen);
            got.insts.push(inst);
        }
        Ok(got)
    }

    /// Every guarantee, once the run is over and everything settled.
    pub fn check(&mut self) -> Result<(), TestCaseError> {
        if let Some(f) = self.failure.take() {
            return Err(fail(f));
        }
        self.finish();
        let sim = &self.sim;
        prop_assert!(sim.stale.is_empty(), "frames to stale ids: {:?}", sim.stale);
        // Only a slow consumer: live frames piled up behind a replay being written.
        for (key, (code, _)) in &sim.closed_by_hub {
            prop_assert!(
                *code == 1008 && self.cfg.max_queued < 1 << 20,
                "{:?} closed by its hub with {}",
                key,
                code
            );
        }
        let records = sim.records();
        let by_id: HashMap<String, &PersistRecord> = records
            .iter()
            .map(|r| (r.message_id.to_string(), r))
            .collect();
        prop_assert_eq!(by_id.len(), records.len(), "message ids are unique");
        let mut contents = HashSet::new();
        for r in &records {
            prop_assert!(
                contents.insert(&*r.content),
                "{} sequenced twice",
                &r.content
            );
        }
        // Each room's last seq now (rooms in use), from its owner.
        let Answer::Rooms(listed) = self.sim.ask(0, Query::Rooms) else {
            panic!("rooms are answered with a room list")
        };
        let last_seq: HashMap<String, u64> = listed
            .iter()
            .map(|r| (r.room_id.clone(), r.messages))
            .collect();

        let mut order: HashMap<(String, String, u64), String> = HashMap::new();
        let mut all = Vec::new();
        for c in &self.clients {
            let got = self.got(c)?;
            let who = format!("client {} ({})", c.serial, c.user);
            let want: Vec<(String, Option<u32>, Option<String>)> = c
                .errors
                .iter()
                .map(|(code, id, room)| ((*code).to_owned(), *id, room.clone()))
                .collect();
            // A connection its hub closed gets nothing after the close.
            if self.sim.closed_by_hub.contains_key(&c.key) {
                prop_assert!(
                    want.starts_with(&got.errors),
                    "{}: errors {:?} of {:?}",
                    who,
                    got.errors,
                    want
                );
            } else {
                prop_assert_eq!(&got.errors, &want, "{}: errors", who);
            }
            for pair in got.v1_chats.windows(2) {
                prop_assert_eq!(
                    pair[1].0,
                    pair[0].0 + 1,
                    "{}: v1 chats {:?}",
                    who,
                    got.v1_chats
                );
            }
            for (seq, id) in &got.v1_chats {
                let r = by_id
                    .get(id)
                    .ok_or_else(|| fail(format!("{who}: {id} never sequenced")))?;
                prop_assert_eq!(r.seq, *seq);
            }
            // The markers it knows per room, epoch and user, across its subscriptions in
            // the order it made them.
            let mut markers = HashMap::new();
            let mut insts: Vec<&Inst> = got.insts.iter().collect();
            insts.sort_by_key(|i| i.req.gen);
            for inst in insts {
                self.check_stream(c, inst, &by_id, &last_seq, &mut order)?;
                self.check_recovery(c, inst)?;
                self.check_reads(c, inst, &mut markers)?;
            }
            self.check_acks(c, &got, &by_id, &contents, &records)?;
            // Every subscription it holds now is live: its subscribed came.
            if !self.sim.gone.contains(&c.key) {
                for sub in c.subs.values() {
                    prop_assert!(
                        got.insts.iter().any(|i| i.open && i.req.gen == sub.gen),
                        "{}: subscribed to {} and never told so",
                        &who,
                        sub.room
                    );
                }
            }
            all.push(got);
        }
        self.check_resends(&records)?;
        self.check_presence(&all)?;
        self.check_typing(&all)?;

        let snap = self.sim.stats(0);
        prop_assert_eq!(snap.total_messages, records.len() as u64);
        prop_assert_eq!(snap.typing_dropped, self.typing_dropped, "typingDropped");
        prop_assert_eq!(snap.rate_limited, self.rate_limited, "rate limited");
        prop_assert_eq!(snap.rejected, self.rejected, "rejected");
        let accepted = self.clients.iter().flat_map(|c| &c.sent).count() as i64;
        let v2_sequenced = records.len() as i64 - self.v1_sent as i64;
        prop_assert_eq!(
            snap.duplicates_acked as i64,
            accepted - v2_sequenced,
            "every accepted send is sequenced or acked as a duplicate"
        );
        Ok(())
    }

    /// Property 1: a subscription's chats are its backlog (or replay) then the live ones,
    /// +1 each with no gap, duplicate or reorder, up to the room's last seq if still
    /// subscribed; each is the message its owner sequenced, and every subscriber of the
    /// same life of the room (same epoch) has the same message at each seq.
    fn check_stream(
        &self,
        c: &Client,
        inst: &Inst,
        by_id: &HashMap<String, &PersistRecord>,
        last_seq: &HashMap<String, u64>,
        order: &mut HashMap<(String, String, u64), String>,
    ) -> Result<(), TestCaseError> {
        let room = inst.req.room;
        let who = format!(
            "client {} ({}) in {room} (sub {})",
            c.serial, c.user, inst.req.gen
        );
        let s = inst.seq;
        let first = if inst.recovered {
            inst.req.since.expect("recovered with a since") + 1
        } else {
            s - (self.cfg.backlog.min(self.cfg.history) as u64).min(s) + 1
        };
        let seqs: Vec<u64> = inst.chats.iter().map(|c| c.0).collect();
        for (k, seq) in seqs.iter().enumerate() {
            prop_assert_eq!(
                *seq,
                first + k as u64,
                "{}: subscribed at {} (recovered {}, since {:?}), chats {:?}",
                &who,
                s,
                inst.recovered,
                inst.req.since,
                &seqs
            );
        }
        if inst.open {
            let end = last_seq.get(room).copied().unwrap_or(0);
            prop_assert!(
                end >= s,
                "{}: subscribed at {} beyond the room's {}",
                &who,
                s,
                end
            );
            let reached = seqs.last().copied().unwrap_or(first - 1);
            prop_assert_eq!(
                reached.max(first - 1),
                end,
                "{}: got to {} of {} ({:?})",
                &who,
                reached,
                end,
                &seqs
            );
            prop_assert!(
                seqs.len() as u64 == end + 1 - first,
                "{}: {:?} from {}",
                &who,
                &seqs,
                first
            );
        }
        for (seq, id) in &inst.chats {
            let r = by_id
                .get(id)
                .ok_or_else(|| fail(format!("{who}: {id} never sequenced")))?;
            prop_assert_eq!((&*r.room_id, r.seq), (room, *seq), "{}: {}", &who, id);
            let key = (room.to_owned(), inst.epoch.clone(), *seq);
            let seen = order.entry(key).or_insert_with(|| id.clone());
            prop_assert_eq!(
                &*seen,
                id,
                "{}: two messages at seq {} in epoch {}",
                &who,
                seq,
                &inst.epoch
            );
        }
        Ok(())
    }

    /// Property 2: `recovered` exactly when the subscribe gave a `since` and the room's
    /// epoch and the ring covers it (then the chats start right after `since`: checked by
    /// [`V2Run::check_stream`]).
    fn check_recovery(&self, c: &Client, inst: &Inst) -> Result<(), TestCaseError> {
        let want = match (inst.req.since, &inst.req.epoch) {
            (Some(since), Some(e)) => *e == inst.epoch && covers(since, inst.seq, self.cfg.history),
            _ => false,
        };
        prop_assert_eq!(
            inst.recovered,
            want,
            "client {} in {}: since {:?} epoch {:?}, subscribed at {} in {} (history {})",
            c.serial,
            inst.req.room,
            inst.req.since,
            &inst.req.epoch,
            inst.seq,
            &inst.epoch,
            self.cfg.history
        );
        Ok(())
    }

    /// Property 6: read markers a subscriber sees never go backwards (per user, each
    /// frame further than the last) and never beyond the room's seq as the subscriber
    /// knows it (no marker ahead of the messages it got); `lastRead` is within the room's
    /// seq, and in settled runs it is the user's marker, and the last frame for each user
    /// is their marker.
    fn check_reads<'a>(
        &self,
        c: &'a Client,
        inst: &'a Inst,
        markers: &mut HashMap<(&'a str, &'a str, &'a str), (u64, u64)>,
    ) -> Result<(), TestCaseError> {
        let room = inst.req.room;
        let who = format!("client {} ({}) in {room}", c.serial, c.user);
        prop_assert!(
            inst.last_read <= inst.seq,
            "{}: lastRead {} > seq {}",
            &who,
            inst.last_read,
            inst.seq
        );
        // Forward only across its subscriptions too (in one life of the room): its own
        // marker as `lastRead` is no lower than any it saw before, and each marker frame
        // is beyond the last frame it saw for that user (and not below a `lastRead`: a
        // marker not sent yet when it subscribed goes out after).
        let key = (room, inst.epoch.as_str(), c.user.as_str());
        let (framed, floor) = markers.entry(key).or_default();
        prop_assert!(
            inst.last_read >= (*framed).max(*floor),
            "{}: lastRead {} after seeing its marker at {}",
            &who,
            inst.last_read,
            (*framed).max(*floor)
        );
        *floor = inst.last_read;
        for (user, seq, _) in &inst.reads {
            let (framed, floor) = markers.entry((room, &inst.epoch, user)).or_default();
            prop_assert!(
                *seq > *framed && *seq >= *floor,
                "{}: {}'s marker {} after {} (lastRead {})",
                &who,
                user,
                seq,
                *framed,
                *floor
            );
            *framed = *seq;
        }
        if let Some(want) = inst.req.last_read {
            prop_assert_eq!(inst.last_read, want, "{}: lastRead", &who);
        }
        let mut last: HashMap<&str, u64> = HashMap::new();
        for (user, seq, known) in &inst.reads {
            prop_assert!(
                seq <= known,
                "{}: {}'s marker {} beyond seq {}",
                &who,
                user,
                seq,
                known
            );
            if let Some(before) = last.insert(user, *seq) {
                prop_assert!(
                    *seq > before,
                    "{}: {}'s marker went {} -> {}",
                    &who,
                    user,
                    before,
                    seq
                );
            }
        }
        if self.settled && inst.open {
            for (user, seq) in last {
                let want = self.reads.get(room).and_then(|m| m.get(user)).copied();
                prop_assert_eq!(Some(seq), want, "{}: {}'s last marker", &who, user);
            }
        }
        Ok(())
    }

    /// Property 3, per sender: each accepted chat is acked exactly once while its
    /// connection is open (also when the subscription it was sent in ended meanwhile);
    /// after its chat frame, unless that subscription ended while a replay was streaming
    /// (the room's frames held behind it go with it, the acks do not); the ack names the room and `clientMsgId` sent; a fresh ack
    /// names the message sequenced from this very send; a duplicate names a message of
    /// the same user, room and `clientMsgId` sequenced less than 5 minutes before the
    /// resend in the same life of the room, and this send was never sequenced.
    fn check_acks(
        &self,
        c: &Client,
        got: &Got,
        by_id: &HashMap<String, &PersistRecord>,
        contents: &HashSet<&str>,
        records: &[PersistRecord],
    ) -> Result<(), TestCaseError> {
        let who = format!("client {} ({})", c.serial, c.user);
        let open = !self.sim.gone.contains(&c.key);
        let mut acked = HashSet::new();
        let held = |s: &Sent| c.subs.get(s.room).is_some_and(|x| x.gen == s.gen);
        for ack in &got.acks {
            let id = ack
                .id
                .ok_or_else(|| fail(format!("{who}: ack without id")))?;
            prop_assert!(acked.insert(id), "{}: two acks for {}", &who, id);
            let sent = c.sent.iter().find(|s| s.id == id);
            let sent = sent.ok_or_else(|| fail(format!("{who}: ack {id} for no accepted chat")))?;
            prop_assert_eq!(ack.room.as_str(), sent.room, "{}: ack {}", &who, id);
            prop_assert_eq!(&ack.client_msg_id, &sent.cmid, "{}: ack {}", &who, id);
            let r = by_id.get(&ack.message_id).ok_or_else(|| {
                fail(format!(
                    "{who}: ack {id} names {} never sequenced",
                    ack.message_id
                ))
            })?;
            prop_assert_eq!(
                (&*r.room_id, r.seq),
                (sent.room, ack.seq),
                "{}: ack {}",
                &who,
                id
            );
            if ack.duplicate {
                let cmid = sent
                    .cmid
                    .as_deref()
                    .ok_or_else(|| fail(format!("{who}: duplicate without clientMsgId")))?;
                prop_assert!(
                    *r.user_id == *c.user && r.content.ends_with(&format!(" {cmid}")),
                    "{}: duplicate ack {} names {:?}",
                    &who,
                    id,
                    r
                );
                // Remembered for 5 minutes, in this life of the room only: sequenced less
                // than that before the resend, with no new life (seq 1) since.
                prop_assert!(
                    sent.at.0.saturating_sub(r.timestamp.0) < RESEND_WINDOW_MS,
                    "{}: {} acked as a duplicate of one {} ms older",
                    &who,
                    &sent.content,
                    sent.at.0.saturating_sub(r.timestamp.0)
                );
                let first = records.iter().position(|x| x.message_id == r.message_id);
                let end = sent.journal_at.min(records.len());
                let restarted = records[first.unwrap_or(0).min(end)..end]
                    .iter()
                    .any(|x| x.room_id == r.room_id && x.seq == 1 && x.message_id != r.message_id);
                prop_assert!(
                    !restarted,
                    "{}: {} acked as a duplicate of an earlier life's",
                    &who,
                    &sent.content
                );
                prop_assert!(
                    !contents.contains(sent.content.as_str()),
                    "{}: {} acked as a duplicate but sequenced",
                    &who,
                    &sent.content
                );
            } else {
                prop_assert_eq!(&*r.content, sent.content.as_str(), "{}: ack {}", &who, id);
                if ack.gen == Some(sent.gen) && held(sent) {
                    prop_assert!(ack.after_chat, "{}: ack {} before its chat frame", &who, id);
                }
            }
        }
        if open {
            for s in &c.sent {
                prop_assert!(
                    acked.contains(&s.id),
                    "{}: chat {} ({}) never acked",
                    &who,
                    s.id,
                    &s.content
                );
            }
        }
        Ok(())
    }

    /// Property 3, per room: a `clientMsgId` of one user in one room is sequenced again
    /// only once 5 minutes have passed since it was, or in a later life of the room.
    fn check_resends(&self, records: &[PersistRecord]) -> Result<(), TestCaseError> {
        // (room, user, cmid) -> (life, timestamp) of the one remembered.
        let mut life: HashMap<&str, u64> = HashMap::new();
        let mut remembered: HashMap<(&str, &str, &str), (u64, u64)> = HashMap::new();
        for r in records {
            let l = life.entry(&r.room_id).or_default();
            if r.seq == 1 {
                *l += 1;
            }
            let Some((_, cmid)) = r.content.split_once(' ') else {
                continue;
            };
            let key = (&*r.room_id, &*r.user_id, cmid);
            if let Some((at_life, at)) = remembered.get(&key) {
                prop_assert!(
                    *at_life != *l || r.timestamp.0 - at >= RESEND_WINDOW_MS,
                    "{} of {} in {} sequenced again after {} ms: {}",
                    cmid,
                    &r.user_id,
                    &r.room_id,
                    r.timestamp.0 - at,
                    &r.content
                );
            }
            remembered.insert(key, (*l, r.timestamp.0));
        }
        Ok(())
    }

    /// Property 4: presence converges. For every subscription open at the end, with
    /// presence on, in a room never over PRESENCE_MAX_MEMBERS: the `online` of its last
    /// presence frame is the number of users in the room; the last presence frame naming
    /// a user says what they are now (joined: online, left: offline); and for a
    /// subscription made at a quiet moment (nothing in flight, every change sent), the
    /// room's presence taken then with every joined and left applied is exactly who is in
    /// the room now, and the last `online` its count; for every subscription to a room
    /// within the bound at the end, whenever it was made and whatever the room crossed,
    /// the set its `subscribed` gave with every frame applied (the whole set where a frame
    /// carries it) is exactly who is in the room, and the last `online` its count. With
    /// presence off, no presence or typing frame at all. The
    /// owner's presence answer lists exactly who is there.
    fn check_presence(&mut self, all: &[Got]) -> Result<(), TestCaseError> {
        for (c, got) in self.clients.iter().zip(all) {
            for inst in &got.insts {
                let room = inst.req.room;
                let who = format!("client {} ({}) in {room}", c.serial, c.user);
                if !self.cfg.presence {
                    prop_assert!(
                        inst.presence.is_empty() && inst.typing.is_empty(),
                        "{}: presence off",
                        &who
                    );
                    continue;
                }
                if !inst.open {
                    continue;
                }
                let truth = self.truth(room);
                let small = self.ever.get(room).map_or(0, BTreeSet::len) <= self.cfg.max_members;
                if small {
                    if let Some((online, _, _)) = inst.presence.last() {
                        prop_assert_eq!(
                            *online,
                            truth.len(),
                            "{}: online of the last presence {:?}",
                            &who,
                            &inst.presence
                        );
                    }
                    let mut said: HashMap<&str, bool> = HashMap::new();
                    for (_, changes, _) in &inst.presence {
                        let Some((joined, left)) = changes else {
                            return Err(fail(format!(
                                "{who}: a count-only presence in a small room"
                            )));
                        };
                        for u in joined {
                            said.insert(u, true);
                        }
                        for u in left {
                            said.insert(u, false);
                        }
                    }
                    for (u, online) in said {
                        prop_assert_eq!(
                            online,
                            truth.contains(u),
                            "{}: last said of {}: {:?}",
                            &who,
                            u,
                            &inst.presence
                        );
                    }
                }
                // From the set `subscribed` gave, whenever it came: each list frame's
                // changes, the whole set where one carries it. A count-only frame leaves
                // the set to the next one that carries it.
                if let Some(baseline) = &inst.baseline {
                    let (belief, count) = applied(baseline, inst.online, &inst.presence);
                    if truth.len() <= self.cfg.max_members {
                        prop_assert_eq!(
                            count,
                            truth.len(),
                            "{}: online from subscribed and {:?}",
                            &who,
                            &inst.presence
                        );
                        prop_assert_eq!(
                            &belief,
                            &truth,
                            "{}: presence {:?} applied to the subscribed {:?}",
                            &who,
                            &inst.presence,
                            baseline
                        );
                    }
                }
                if let Some((snapshot, online)) = &inst.req.snapshot {
                    let (belief, count) = applied(snapshot, *online, &inst.presence);
                    if small {
                        prop_assert_eq!(
                            count,
                            truth.len(),
                            "{}: online from {:?} and {:?}",
                            &who,
                            online,
                            &inst.presence
                        );
                        prop_assert_eq!(
                            &belief,
                            &truth,
                            "{}: presence {:?} applied to {:?}",
                            &who,
                            &inst.presence,
                            snapshot
                        );
                    }
                }
            }
        }
        for (i, room) in ROOMS.iter().enumerate() {
            let truth: Vec<String> = self.truth(room).into_iter().collect();
            let p = self.sim.presence(i % self.cfg.workers, room);
            let ids: Vec<String> = p.users.iter().map(|u| u.user_id.to_string()).collect();
            prop_assert_eq!(ids, truth.clone(), "presence of {}", room);
            prop_assert_eq!(p.online, truth.len());
        }
        Ok(())
    }

    /// Property 5: typing expires. After the last operation and 6 s more, the last typing
    /// frame of every subscription lists nobody (or none came); every frame lists users
    /// sorted, each once, each one who typed there under the name of one of their
    /// connections.
    fn check_typing(&self, all: &[Got]) -> Result<(), TestCaseError> {
        for (c, got) in self.clients.iter().zip(all) {
            for inst in &got.insts {
                let room = inst.req.room;
                let who = format!("client {} ({}) in {room}", c.serial, c.user);
                for users in &inst.typing {
                    for pair in users.windows(2) {
                        prop_assert!(pair[0].0 < pair[1].0, "{}: typing {:?}", &who, users);
                    }
                    for (u, name) in users {
                        let names = self.typists_ever.get(room).and_then(|t| t.get(u));
                        prop_assert!(
                            names.is_some_and(|n| n.contains(name)),
                            "{}: {} ({}) listed typing, never typed there",
                            &who,
                            u,
                            name
                        );
                    }
                }
                if inst.open {
                    let last = inst.typing.last().map_or(0, Vec::len);
                    prop_assert_eq!(
                        last,
                        0,
                        "{}: still typing after 6 s: {:?}",
                        &who,
                        &inst.typing
                    );
                }
            }
        }
        Ok(())
    }
}

// --- Strategies -------------------------------------------------------------------------

fn epoch_pick() -> impl Strategy<Value = EpochPick> {
    prop_oneof![
        6 => Just(EpochPick::Given),
        1 => Just(EpochPick::Stale),
        1 => Just(EpochPick::Bogus),
        1 => Just(EpochPick::Missing),
    ]
}

fn recover() -> impl Strategy<Value = Recover> {
    prop_oneof![
        3 => Just(Recover::Fresh),
        5 => (prop_oneof![3 => Just(0u64), 3 => 1u64..4, 1 => 4u64..40], epoch_pick())
            .prop_map(|(back, epoch)| Recover::Resume { back, epoch }),
        1 => (prop_oneof![0u64..30, Just(1_000_000)], epoch_pick())
            .prop_map(|(since, epoch)| Recover::Wild { since, epoch }),
    ]
}

fn room_pick() -> impl Strategy<Value = RoomPick> {
    (any::<usize>(), prop::bool::weighted(0.08))
        .prop_map(|(index, anywhere)| RoomPick { index, anywhere })
}

fn cmid() -> impl Strategy<Value = Cmid> {
    prop_oneof![
        3 => Just(Cmid::None),
        3 => Just(Cmid::New),
        3 => any::<usize>().prop_map(Cmid::Resend),
    ]
}

fn bad() -> impl Strategy<Value = Bad> {
    prop_oneof![
        Just(Bad::EmptyContent),
        Just(Bad::EmptyCmid),
        Just(Bad::Json),
        Just(Bad::Type),
        Just(Bad::NoRoom),
        Just(Bad::Seq),
    ]
}

pub fn open_op() -> impl Strategy<Value = V2Op> {
    (
        0usize..4,
        prop::bool::weighted(0.85),
        prop_oneof![1 => Just(None), 3 => (0usize..ROOMS.len()).prop_map(Some)],
        recover(),
        prop_oneof![2 => Just(None), 1 => any::<usize>().prop_map(Some)],
    )
        .prop_map(|(worker, v2, room, recover, as_user)| V2Op::Open {
            worker,
            v2,
            room,
            recover,
            as_user,
        })
}

/// Operations of interleaved runs: peer events delivered a few at a time.
pub fn op() -> impl Strategy<Value = V2Op> {
    prop_oneof![
        5 => open_op(),
        6 => (any::<usize>(), 0usize..ROOMS.len(), recover())
            .prop_map(|(client, room, recover)| V2Op::Subscribe { client, room, recover }),
        2 => (any::<usize>(), 0usize..ROOMS.len()).prop_map(|(client, room)| V2Op::QuietSubscribe { client, room }),
        3 => (any::<usize>(), room_pick()).prop_map(|(client, room)| V2Op::Unsubscribe { client, room }),
        2 => (any::<usize>(), room_pick(), recover())
            .prop_map(|(client, room, recover)| V2Op::Resubscribe { client, room, recover }),
        16 => (any::<usize>(), room_pick(), cmid()).prop_map(|(client, room, cmid)| V2Op::Chat { client, room, cmid }),
        4 => (any::<usize>(), room_pick(), prop::bool::weighted(0.3))
            .prop_map(|(client, room, stop)| V2Op::Typing { client, room, stop }),
        3 => (any::<usize>(), room_pick(), prop_oneof![3 => (0u64..3).prop_map(ReadSeq::Seen), 1 => (0u64..5).prop_map(ReadSeq::Ahead)])
            .prop_map(|(client, room, seq)| V2Op::Read { client, room, seq }),
        1 => (any::<usize>(), room_pick(), bad()).prop_map(|(client, room, bad)| V2Op::Bad { client, room, bad }),
        3 => any::<usize>().prop_map(|client| V2Op::Close { client }),
        4 => prop_oneof![8 => 0u64..400, 2 => 400u64..7000, 1 => Just(301_000)].prop_map(|millis| V2Op::Advance { millis }),
        12 => (1usize..8).prop_map(|n| V2Op::Deliver { n }),
    ]
}

/// Operations of settled runs: no delivery (every operation settles), typing checked.
pub fn settled_op() -> impl Strategy<Value = V2Op> {
    prop_oneof![
        4 => open_op(),
        4 => (any::<usize>(), 0usize..ROOMS.len(), recover())
            .prop_map(|(client, room, recover)| V2Op::Subscribe { client, room, recover }),
        2 => (any::<usize>(), room_pick()).prop_map(|(client, room)| V2Op::Unsubscribe { client, room }),
        5 => (any::<usize>(), room_pick(), recover())
            .prop_map(|(client, room, recover)| V2Op::Resubscribe { client, room, recover }),
        6 => (any::<usize>(), room_pick(), cmid()).prop_map(|(client, room, cmid)| V2Op::Chat { client, room, cmid }),
        10 => (any::<usize>(), room_pick(), prop::bool::weighted(0.25))
            .prop_map(|(client, room, stop)| V2Op::Typing { client, room, stop }),
        7 => (any::<usize>(), room_pick(), prop_oneof![3 => (0u64..3).prop_map(ReadSeq::Seen), 1 => (0u64..5).prop_map(ReadSeq::Ahead)])
            .prop_map(|(client, room, seq)| V2Op::Read { client, room, seq }),
        2 => any::<usize>().prop_map(|client| V2Op::Close { client }),
        6 => prop_oneof![6 => 0u64..400, 3 => 400u64..3000, 1 => 5000u64..7000].prop_map(|millis| V2Op::Advance { millis }),
        3 => Just(V2Op::CheckTyping),
    ]
}

/// Operations of resend runs: connections come and go (rooms are forgotten once
/// empty), chats mostly resend earlier `clientMsgId`s, and 5 minutes pass now and then.
pub fn resend_op() -> impl Strategy<Value = V2Op> {
    prop_oneof![
        3 => open_op(),
        3 => (any::<usize>(), 0usize..ROOMS.len(), recover())
            .prop_map(|(client, room, recover)| V2Op::Subscribe { client, room, recover }),
        3 => (any::<usize>(), room_pick()).prop_map(|(client, room)| V2Op::Unsubscribe { client, room }),
        2 => any::<usize>().prop_map(|client| V2Op::Close { client }),
        8 => (any::<usize>(), room_pick(), prop_oneof![1 => Just(Cmid::New), 3 => any::<usize>().prop_map(Cmid::Resend)])
            .prop_map(|(client, room, cmid)| V2Op::Chat { client, room, cmid }),
        2 => prop_oneof![3 => 0u64..2000, 1 => 299_000u64..302_000].prop_map(|millis| V2Op::Advance { millis }),
        5 => (1usize..8).prop_map(|n| V2Op::Deliver { n }),
    ]
}

pub fn config() -> impl Strategy<Value = V2Config> {
    (
        1usize..=4,
        prop_oneof![1 => Just(0usize), 3 => Just(3), 3 => Just(1000)],
        prop_oneof![Just(2usize), Just(50)],
        prop_oneof![
            2 => Just(RateLimit { per_sec: 0.0, burst: 0.0 }),
            1 => Just(RateLimit::default()),
        ],
        prop_oneof![1 => Just(0usize), 1 => Just(1), 2 => Just(10_000)],
        prop_oneof![1 => Just(2usize), 3 => Just(64)],
        prop::bool::weighted(0.9),
        prop_oneof![1 => Just(1usize), 1 => Just(2), 1 => Just(3), 3 => Just(250)],
        prop_oneof![Just(10u64), Just(200)],
        prop_oneof![1 => Just(700usize), 1 => Just(2048), 2 => Just(1 << 20)],
    )
        .prop_map(
            |(
                workers,
                history,
                backlog,
                limit,
                max_idle_rooms,
                max_subscriptions,
                presence,
                max_members,
                interval_ms,
                max_queued,
            )| {
                V2Config {
                    workers,
                    history,
                    backlog,
                    limit,
                    max_idle_rooms,
                    max_subscriptions,
                    presence,
                    max_members,
                    interval_ms,
                    max_queued,
                }
            },
        )
}

/// Runs `ops` after one v2 client subscribed to every room (and one v1 client in the
/// first), then checks everything.
pub fn run(cfg: V2Config, seed: u64, settled: bool, ops: &[V2Op]) -> Result<V2Run, TestCaseError> {
    let mut run = V2Run::new(cfg, seed, settled);
    for (i, _) in ROOMS.iter().enumerate() {
        run.apply(&V2Op::Open {
            worker: i,
            v2: true,
            room: Some(i),
            recover: Recover::Fresh,
            as_user: None,
        });
    }
    run.apply(&V2Op::Open {
        worker: 1,
        v2: false,
        room: Some(0),
        recover: Recover::Fresh,
        as_user: None,
    });
    for op in ops {
        run.apply(op);
    }
    run.check()?;
    Ok(run)
}
