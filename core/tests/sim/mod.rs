//! A deterministic simulator for hubbub-core: `W` hubs, any number of clients, a virtual
//! clock and seeded interleavings of the events the hubs exchange.
//!
//! It plays the driver's part exactly as the server does, with no socket and no thread:
//! - every input is followed by draining [`Hub::poll_output`] until [`Output::Timeout`];
//! - [`Output::Peer`] events go into one FIFO queue per `(from, to)` pair — order within a
//!   pair is preserved, as the real mesh preserves it — and a seeded RNG picks which pair
//!   delivers next, so every run explores a different (reproducible) interleaving;
//! - [`Output::Deliver`] is expanded to each recipient and [`Output::Send`] goes to one:
//!   both are recorded per `(worker, ConnId)` with the virtual instant they were written;
//! - [`Output::Close`] is recorded and answered with [`Hub::handle_close`] once the
//!   outputs before it were flushed, as a driver does;
//! - time never comes from the OS: [`Sim::advance`] moves the monotonic and the wall clock
//!   together, and [`Sim::run_for`] lets time pass as a driver does, firing each hub's
//!   timer at the deadline of its last [`Output::Timeout`] (pings answered with pongs when
//!   [`Sim::answer_pings`] is set, as a live client does);
//! - with [`Sim::defer_written`], a streamed replay's [`Output::NotifyWritten`] is
//!   answered when the scheduler picks it, like a peer event, so live frames arrive while
//!   a replay is being written;
//! - [`Output::LoadRoom`] and [`Output::LoadRange`] (durable configs) are answered by a
//!   simulated store after a seeded number of peer deliveries, so joins, leaves, messages
//!   and closes interleave with the load; a seeded share of loads fail (answered with
//!   `None`), as a store that does not answer does;
//! - every join and leave is noted when it reaches its room's owner ([`Sim::arrivals`]):
//!   at once when the connection's own worker owns the room, else when the scheduler
//!   delivers the peer event that carries it, so a test can replay each room's joins
//!   and leaves in its owner's order.
//!
//! `v2` drives protocol v2 connections on this harness and checks docs/PROTOCOL.md §7.
//!
//! Every hub gets a [`PersistSink`] that accepts everything, which gives the tests the
//! ground truth of what each room's owner sequenced, in order. That sink is also the
//! simulated store: a load is answered with what it holds for the room (plus any history
//! the test stored before the run). The [`Journal`] keeps records and loads in one order,
//! so a test can tell which load each record followed.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod v2;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hubbub_core::protocol::ChatMessage;
use hubbub_core::upgrade::{Refusal, UpgradeRequest};
use hubbub_core::*;

/// The wall clock at the start of every simulation (2026-11-21T10:30:00.000Z).
pub const BASE_WALL_MS: u64 = 1_795_257_000_000;

/// SplitMix64, for the scheduler's choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// How a frame reached a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// [`Output::Send`]: the join backlog, or an error frame.
    Send,
    /// [`Output::Deliver`]: a live broadcast.
    Deliver,
}

/// One frame written to a connection.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Mono,
    pub via: Via,
    pub frame: Bytes,
}

/// A connection, named as the driver names it.
pub type Key = (usize, ConnId);

/// Who a connection is, as its admission named it.
#[derive(Debug, Clone)]
pub struct Member {
    pub room: String,
    pub user: String,
    pub username: String,
    /// A v2 connection: its rooms come and go with its frames, so its joins and leaves
    /// are not noted in [`Sim::arrivals`].
    pub v2: bool,
}

/// A connection entering or leaving its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Join,
    Leave,
}

/// A join or leave, as it reached its room's owner.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub kind: Move,
    pub key: Key,
    /// The wall clock when it arrived (a durable owner may handle it later, once the
    /// room is loaded, but never earlier).
    pub wall: UnixMillis,
}

/// What happened to rooms' state, in order: the sequencing ground truth.
#[derive(Debug, Clone)]
pub enum Journal {
    /// An owner sequenced this message (its persistence sink took it).
    Sequenced(PersistRecord),
    /// `worker` asked for `room`'s state ([`Output::LoadRoom`]).
    Asked { worker: usize, room: Arc<str> },
    /// The store answered: `None` if it failed, else the last `seq` and newest messages.
    Loaded {
        worker: usize,
        room: Arc<str>,
        state: Option<(u64, Vec<ChatMessage>)>,
    },
}

/// Records every message a room's owner hands to persistence, in the journal.
struct Recorder(Arc<Mutex<Vec<Journal>>>);

impl PersistSink for Recorder {
    fn try_push(&mut self, record: PersistRecord) -> Result<(), PersistRecord> {
        self.0.lock().unwrap().push(Journal::Sequenced(record));
        Ok(())
    }

    fn try_push_state(
        &mut self,
        _: hubbub_core::StateWrite,
    ) -> Result<(), hubbub_core::StateWrite> {
        Ok(())
    }
}

/// A peer event in the mesh, with the join or leave it carries to its room's owner.
type InFlight = (PeerEvent, Option<Arrival>);

/// A `LoadRoom` the store has not answered yet.
#[derive(Debug)]
struct PendingLoad {
    worker: usize,
    room: Arc<str>,
    recent: usize,
    /// Peer deliveries still to happen before the answer may come.
    wait: usize,
    /// An [`Output::LoadRange`] instead: its id and `after ..= upto`.
    range: Option<(u64, u64, u64)>,
}

/// How the simulated store answers loads.
#[derive(Debug, Clone, Copy)]
pub struct StorePolicy {
    /// The most peer deliveries a load waits for (uniform in `0..=max_delay`).
    pub max_delay: usize,
    /// Percentage of loads that fail.
    pub fail_percent: u32,
}

impl Default for StorePolicy {
    fn default() -> Self {
        StorePolicy {
            max_delay: 6,
            fail_percent: 0,
        }
    }
}

/// The simulated process: its hubs, the mesh between them and the virtual clock.
pub struct Sim {
    pub hubs: Vec<Hub>,
    pub gauge: ConnectionGauge,
    now: Now,
    /// One FIFO per `(from, to)` worker pair; an event that carries a join or leave to
    /// the room's owner is tagged with it.
    mesh: BTreeMap<(usize, usize), VecDeque<InFlight>>,
    rng: Rng,
    /// Every frame written to each connection, in order.
    pub inbox: HashMap<Key, Vec<Received>>,
    /// Connections the hubs closed: code, and when.
    pub closed_by_hub: HashMap<Key, (u16, Mono)>,
    /// Connections released with `handle_close` (by either side); their ids are stale.
    pub gone: HashSet<Key>,
    /// Frames a hub addressed to a stale connection id (must stay empty).
    pub stale: Vec<(Key, Bytes)>,
    /// Frames addressed to a connection after its `Close` output (a driver drops them).
    pub after_close: usize,
    /// Answers to queries, by id.
    pub replies: HashMap<QueryId, (usize, Answer)>,
    /// Recipients of `Deliver` outputs per worker (what its `deliveries` counter counts).
    pub deliveries: Vec<u64>,
    /// Pings asked for, per connection.
    pub pings: HashMap<Key, u32>,
    /// Pongs answering the client's pings, per connection.
    pub pongs: HashMap<Key, u32>,
    /// Connections whose client's close the hub answered.
    pub client_closed: HashSet<Key>,
    /// Records and loads, in the order they happened.
    journal: Arc<Mutex<Vec<Journal>>>,
    /// History the store held before the run, per room, oldest first.
    preloaded: HashMap<String, Vec<ChatMessage>>,
    /// How late loads are answered, and how often they fail.
    pub store: StorePolicy,
    /// Loads asked for and not answered yet.
    loads: Vec<PendingLoad>,
    /// Chat or presence frames a hub wrote for a room it was still loading (must stay
    /// empty: the gate holds everything of a room until its state is known).
    pub before_load: Vec<(usize, Bytes)>,
    /// Every connection opened, by key.
    pub members: HashMap<Key, Member>,
    /// Joins and leaves in the order they reached their rooms' owners: per room, the
    /// order its owner handles them in (the durable gate holds them in that order).
    pub arrivals: Vec<Arrival>,
    /// The join or leave the next peer event of the hub being drained carries (set when
    /// a connection of another worker than its room's owner opens or closes).
    carrying: Option<Arrival>,
    next_query: u64,
    /// Each hub's latest [`Output::Timeout`]: when it wants `handle_timeout` next.
    pub timeouts: Vec<Mono>,
    /// Answer every ping with a pong, as a live client does (so long runs of virtual time
    /// do not close connections as idle).
    pub answer_pings: bool,
    /// Report a replay's slice written only when the scheduler picks it (as one more
    /// thing in flight), not at once: live frames then arrive while a replay streams.
    pub defer_written: bool,
    /// Slices written whose report waits for the scheduler.
    unwritten: Vec<Key>,
}

impl Sim {
    /// `workers` hubs built from [`HubConfig::new`] changed by `tweak`; `seed` drives the
    /// interleaving of peer events.
    pub fn new(workers: usize, seed: u64, tweak: impl Fn(&mut HubConfig)) -> Sim {
        let gauge = ConnectionGauge::new(100_000);
        let journal = Arc::new(Mutex::new(Vec::new()));
        let now = Now::new(Mono::from_nanos(1_000_000_000), UnixMillis(BASE_WALL_MS));
        let hubs = (0..workers)
            .map(|w| {
                let mut cfg = HubConfig::new(WorkerId(w as u16), workers as u16);
                cfg.started_at = now.wall;
                cfg.seed = seed;
                tweak(&mut cfg);
                Hub::with_persist(cfg, gauge.clone(), Box::new(Recorder(journal.clone())))
            })
            .collect();
        Sim {
            hubs,
            gauge,
            now,
            mesh: BTreeMap::new(),
            rng: Rng::new(seed),
            inbox: HashMap::new(),
            closed_by_hub: HashMap::new(),
            gone: HashSet::new(),
            stale: Vec::new(),
            after_close: 0,
            replies: HashMap::new(),
            deliveries: vec![0; workers],
            pings: HashMap::new(),
            pongs: HashMap::new(),
            client_closed: HashSet::new(),
            journal,
            preloaded: HashMap::new(),
            store: StorePolicy::default(),
            loads: Vec::new(),
            before_load: Vec::new(),
            members: HashMap::new(),
            arrivals: Vec::new(),
            carrying: None,
            next_query: 0,
            timeouts: vec![Mono::from_nanos(u64::MAX); workers],
            answer_pings: false,
            defer_written: false,
            unwritten: Vec::new(),
        }
    }

    pub fn now(&self) -> Now {
        self.now
    }

    /// Moves both clocks forward.
    pub fn advance(&mut self, by: Duration) {
        self.now.mono = self.now.mono + by;
        self.now.wall = UnixMillis(self.now.wall.0 + by.as_millis() as u64);
    }

    /// An upgrade request with this query string and no headers, on worker `w`.
    pub fn open(&mut self, w: usize, query: &str) -> Result<ConnId, Refusal> {
        let req = UpgradeRequest {
            query,
            ..Default::default()
        };
        let admission = self.hubs[w].admit(self.now, &req)?;
        let member = Member {
            room: admission.room().unwrap_or_default().to_owned(),
            user: admission.user_id().to_owned(),
            username: admission.username().to_owned(),
            v2: admission.proto() == 2,
        };
        let conn = self.hubs[w].handle_open(self.now, admission);
        self.inbox.entry((w, conn)).or_default();
        self.members.insert((w, conn), member);
        self.moved(Move::Join, (w, conn));
        self.drain(w);
        Ok(conn)
    }

    /// A frame from the client `(w, conn)`.
    pub fn frame(&mut self, (w, conn): Key, frame: Inbound<'_>) {
        self.hubs[w].handle_frame(self.now, conn, frame);
        self.drain(w);
    }

    /// A valid chat frame with this content.
    pub fn chat(&mut self, key: Key, content: &str) {
        let text = serde_json::json!({"type": "chat", "content": content}).to_string();
        self.frame(key, Inbound::Text(text.as_bytes()));
    }

    /// The client went away.
    pub fn close(&mut self, key: Key) {
        self.release(key);
    }

    /// Reports a closed connection to its hub, as a driver does when either side closed it.
    fn release(&mut self, (w, conn): Key) {
        // Only a connection the hub still holds sends its room a leave.
        let held = self.gone.insert((w, conn));
        self.hubs[w].handle_close(self.now, conn);
        if held {
            self.moved(Move::Leave, (w, conn));
        }
        self.drain(w);
    }

    /// Notes that `key` joined or left, just after the hub took the open or close: the
    /// owner has it now if it is this worker, else it goes out as the next peer event.
    fn moved(&mut self, kind: Move, key: Key) {
        let Some(m) = self.members.get(&key).filter(|m| !m.v2) else {
            return;
        };
        let owner = owner_of(&m.room, self.hubs.len() as u16).index();
        let arrival = Arrival {
            kind,
            key,
            wall: self.now.wall,
        };
        if owner == key.0 {
            self.arrivals.push(arrival);
        } else {
            self.carrying = Some(arrival);
        }
    }

    /// Who is connected to `room`, asked of worker `w`.
    pub fn presence(&mut self, w: usize, room: &str) -> RoomPresence {
        match self.ask(
            w,
            Query::RoomPresence {
                room: room.to_owned(),
            },
        ) {
            Answer::Presence(p) => p,
            other => panic!("RoomPresence answered with {other:?}"),
        }
    }

    /// The driver could not write `bytes` to the connection yet.
    pub fn queued(&mut self, (w, conn): Key, bytes: usize) {
        self.hubs[w].handle_queued(self.now, conn, bytes);
        self.drain(w);
    }

    /// Every hub's timer fires.
    pub fn timeout_all(&mut self) {
        for w in 0..self.hubs.len() {
            self.hubs[w].handle_timeout(self.now);
            self.drain(w);
        }
    }

    /// Lets `by` pass as a driver does: each hub's timer fires at the deadline it asked
    /// for (its last [`Output::Timeout`]), in order of deadlines, until `by` has passed.
    /// Peer events stay in flight meanwhile (they are delivered by [`Sim::step`]).
    pub fn run_for(&mut self, by: Duration) {
        let target = self.now.mono + by;
        let mut spins = 0;
        loop {
            let next = (0..self.hubs.len()).map(|w| (self.timeouts[w], w)).min();
            let Some((at, w)) = next.filter(|(at, _)| *at <= target) else {
                break;
            };
            if at > self.now.mono {
                self.advance(at.saturating_since(self.now.mono));
                spins = 0;
            } else {
                spins += 1;
                assert!(
                    spins < 100,
                    "hub {w} asks for a timeout at {at:?} again and again"
                );
            }
            self.hubs[w].handle_timeout(self.now);
            self.drain(w);
        }
        let rest = target.saturating_since(self.now.mono);
        self.advance(rest);
    }

    /// Starts a query on worker `w`; its answer lands in [`Sim::replies`].
    pub fn query(&mut self, w: usize, query: Query) -> QueryId {
        let id = QueryId(self.next_query);
        self.next_query += 1;
        self.hubs[w].handle_query(self.now, id, query);
        self.drain(w);
        id
    }

    /// Peer events waiting in the mesh, and deferred reports of slices written.
    pub fn in_flight(&self) -> usize {
        self.mesh.values().map(VecDeque::len).sum::<usize>() + self.unwritten.len()
    }

    /// Loads the store has not answered yet.
    pub fn loads_pending(&self) -> usize {
        self.loads.len()
    }

    /// Puts `history` (oldest first) in the store for `room`, as if an earlier run had
    /// written it; a load of the room is answered from it and what this run adds.
    pub fn preload(&mut self, room: &str, history: Vec<ChatMessage>) {
        self.preloaded.insert(room.to_owned(), history);
    }

    /// Does one thing the driver would do next, chosen at random: deliver the oldest event
    /// of a non-empty `(from, to)` queue, answer a load whose delay has run out, or report
    /// a deferred slice written. With only loads left, the one due soonest is answered.
    /// Returns false when the mesh is empty and every load answered.
    pub fn step(&mut self) -> bool {
        if !self.unwritten.is_empty() && self.rng.below(3) == 0 {
            let i = self.rng.below(self.unwritten.len());
            let (w, conn) = self.unwritten.swap_remove(i);
            if !self.gone.contains(&(w, conn)) {
                self.hubs[w].handle_written(self.now, conn);
                self.drain(w);
            }
            return true;
        }
        let busy: Vec<(usize, usize)> = self
            .mesh
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(k, _)| *k)
            .collect();
        let due: Vec<usize> = (0..self.loads.len())
            .filter(|&i| self.loads[i].wait == 0)
            .collect();
        if busy.is_empty() && due.is_empty() && !self.unwritten.is_empty() {
            let (w, conn) = self.unwritten.swap_remove(0);
            if !self.gone.contains(&(w, conn)) {
                self.hubs[w].handle_written(self.now, conn);
                self.drain(w);
            }
            return true;
        }
        if busy.is_empty() && due.is_empty() {
            let soonest = (0..self.loads.len()).min_by_key(|&i| self.loads[i].wait);
            return match soonest {
                Some(i) => {
                    self.answer_load(i);
                    true
                }
                None => false,
            };
        }
        let pick = self.rng.below(busy.len() + due.len());
        if pick >= busy.len() {
            self.answer_load(due[pick - busy.len()]);
            return true;
        }
        let pair = busy[pick];
        for load in &mut self.loads {
            load.wait = load.wait.saturating_sub(1);
        }
        let event = self.mesh.get_mut(&pair).and_then(VecDeque::pop_front);
        if let Some((event, carried)) = event {
            self.arrivals.extend(carried);
            self.hubs[pair.1].handle_peer(self.now, event);
            self.drain(pair.1);
        }
        true
    }

    /// Delivers peer events and answers loads until nothing is in flight.
    pub fn settle(&mut self) {
        while self.step() {}
    }

    /// What the store holds for `room`, oldest first: the history it started with, then
    /// everything sequenced in this run.
    pub fn stored(&self, room: &str) -> Vec<ChatMessage> {
        let mut all = self.preloaded.get(room).cloned().unwrap_or_default();
        let journal = self.journal.lock().unwrap();
        all.extend(journal.iter().filter_map(|e| match e {
            Journal::Sequenced(r) if &*r.room_id == room => Some(r.to_message()),
            _ => None,
        }));
        all
    }

    /// The store's answer to a load of `room` for `recent` messages: the newest `seq` it
    /// holds and the newest messages of the run of consecutive `seq`s that ends there.
    /// (After a failed load the room starts again at 1, so the store holds an older run
    /// too; messages from before a restart of `seq` are not the room's recent history.)
    pub fn answer(&self, room: &str, recent: usize) -> (u64, Vec<ChatMessage>) {
        let all = self.stored(room);
        let Some(last) = all.last() else {
            return (0, Vec::new());
        };
        let last_seq = last.seq;
        let mut run = 1;
        while run < all.len() && all[all.len() - run - 1].seq + 1 == all[all.len() - run].seq {
            run += 1;
        }
        let newest = all.len() - run.min(recent);
        (last_seq, all[newest..].to_vec())
    }

    fn answer_load(&mut self, i: usize) {
        let load = self.loads.swap_remove(i);
        let fails = self.rng.below(100) < self.store.fail_percent as usize;
        if let Some((id, after, upto)) = load.range {
            // Every stored message in the range, of whichever life of the room.
            let messages = (!fails).then(|| {
                let all = self.stored(&load.room);
                all.into_iter()
                    .filter(|m| m.seq > after && m.seq <= upto)
                    .collect()
            });
            self.hubs[load.worker].handle_range_loaded(self.now, id, messages);
            self.drain(load.worker);
            return;
        }
        let state = (!fails).then(|| self.answer(&load.room, load.recent));
        self.journal.lock().unwrap().push(Journal::Loaded {
            worker: load.worker,
            room: load.room.clone(),
            state: state.clone(),
        });
        let state = state.map(|(last_seq, recent)| hubbub_core::StoredRoom {
            last_seq,
            recent,
            read_markers: Vec::new(),
            room: None,
            epoch: None,
        });
        self.hubs[load.worker].handle_room_loaded(self.now, &load.room, state);
        self.drain(load.worker);
    }

    /// Runs a query to completion and returns its answer.
    pub fn ask(&mut self, w: usize, query: Query) -> Answer {
        let id = self.query(w, query);
        self.settle();
        self.replies.remove(&id).expect("every query is answered").1
    }

    /// The merged analytics snapshot, gathered from worker `w`.
    pub fn stats(&mut self, w: usize) -> Snapshot {
        match self.ask(w, Query::Stats) {
            Answer::Stats(s) => *s,
            other => panic!("Stats answered with {other:?}"),
        }
    }

    /// What the owners sequenced so far, in order.
    pub fn records(&self) -> Vec<PersistRecord> {
        let journal = self.journal.lock().unwrap();
        journal
            .iter()
            .filter_map(|e| match e {
                Journal::Sequenced(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// Records and loads so far, in order.
    pub fn journal(&self) -> Vec<Journal> {
        self.journal.lock().unwrap().clone()
    }

    /// How long the journal is: a position to compare later entries with.
    pub fn journal_len(&self) -> usize {
        self.journal.lock().unwrap().len()
    }

    /// The frames written to one connection.
    pub fn frames(&self, key: Key) -> &[Received] {
        self.inbox.get(&key).map(Vec::as_slice).unwrap_or_default()
    }

    /// The driver's half of the run loop for hub `w`: carry out every output until
    /// `Timeout`, then report the closes it asked for (which may produce more outputs).
    fn drain(&mut self, w: usize) {
        let mut closing = Vec::new();
        let mut written = Vec::new();
        let mut pinged = Vec::new();
        loop {
            match self.hubs[w].poll_output() {
                Output::Deliver { frame, to, .. } => {
                    self.deliveries[w] += to.len() as u64;
                    self.check_loaded(w, &frame);
                    for &conn in to.iter() {
                        self.record((w, conn), Via::Deliver, &frame);
                    }
                }
                Output::Send { conn, frame } => {
                    self.check_loaded(w, &frame);
                    self.record((w, conn), Via::Send, &frame);
                }
                Output::Peer { to, event } => {
                    // An open or close sends its join or leave before anything else. The
                    // event's Debug form is read only to check that the tag is right: were
                    // it wrong, the order of arrivals would be.
                    let carried = self.carrying.take();
                    if let Some(a) = carried {
                        let room = &self.members[&a.key].room;
                        let owner = owner_of(room, self.hubs.len() as u16);
                        assert_eq!(to, owner, "{:?} sent to a non-owner of {room}", a.kind);
                        let shown = format!("{event:?}");
                        let want = format!("PeerEvent({:?} {{", a.kind);
                        assert!(shown.starts_with(&want), "{:?} carried by {shown}", a.kind);
                    }
                    self.mesh
                        .entry((w, to.index()))
                        .or_default()
                        .push_back((event, carried));
                }
                Output::Close { conn, code, .. } => {
                    let first = self
                        .closed_by_hub
                        .insert((w, conn), (code, self.now.mono))
                        .is_none();
                    assert!(first, "{conn:?} closed twice");
                    closing.push(conn);
                }
                Output::Ping { conn } => {
                    *self.pings.entry((w, conn)).or_default() += 1;
                    pinged.push(conn);
                }
                Output::Pong { conn, payload } => {
                    *self.pongs.entry((w, conn)).or_default() += 1;
                    assert!(payload.len() <= 125, "a pong carries the ping's payload");
                }
                Output::CloseReply { conn, .. } => {
                    let first = self.client_closed.insert((w, conn));
                    assert!(first, "{conn:?}: its close answered twice");
                }
                Output::CheckFiles { .. } => {
                    panic!("the simulated clients attach no files, so no check is asked")
                }
                Output::Sequence { .. } | Output::FetchMessages { .. } | Output::Unwatch { .. } => {
                    panic!("the simulated nodes share no rooms (core/tests/sequencer.rs does)")
                }
                Output::LoadRoom { room, recent } => {
                    let owner = owner_of(&room, self.hubs.len() as u16).index();
                    assert_eq!(owner, w, "{room} loaded by a worker that does not own it");
                    let again = self
                        .loads
                        .iter()
                        .any(|l| l.worker == w && l.room == room && l.range.is_none());
                    assert!(!again, "{room} asked for while its load is pending");
                    self.journal.lock().unwrap().push(Journal::Asked {
                        worker: w,
                        room: room.clone(),
                    });
                    let wait = self.rng.below(self.store.max_delay + 1);
                    self.loads.push(PendingLoad {
                        worker: w,
                        room,
                        recent,
                        wait,
                        range: None,
                    });
                }
                Output::LoadRange {
                    id,
                    room,
                    after,
                    upto,
                } => {
                    let owner = owner_of(&room, self.hubs.len() as u16).index();
                    assert_eq!(owner, w, "{room}'s messages asked for by another worker");
                    assert!(after < upto || upto == 0, "an empty range {after}..={upto}");
                    let wait = self.rng.below(self.store.max_delay + 1);
                    self.loads.push(PendingLoad {
                        worker: w,
                        room,
                        recent: 0,
                        wait,
                        range: Some((id, after, upto)),
                    });
                }
                Output::Reply { id, answer } => {
                    self.replies.insert(id, (w, answer));
                }
                Output::NotifyWritten { conn } => {
                    if self.defer_written {
                        self.unwritten.push((w, conn));
                    } else {
                        written.push(conn);
                    }
                }
                Output::Timeout(at) => {
                    self.timeouts[w] = at;
                    break;
                }
            }
        }
        assert!(
            self.carrying.is_none(),
            "an open or close of a room owned elsewhere sent no peer event"
        );
        // The simulated sockets take everything at once: a replay's next slice is due
        // right after the drain that queued the last one.
        for conn in written {
            if !self.gone.contains(&(w, conn)) {
                self.hubs[w].handle_written(self.now, conn);
                self.drain(w);
            }
        }
        // The driver flushed what was queued, closes the sockets and reports each close:
        // one input at a time, each followed by a full drain, because outputs queued
        // before a close may still name the closed connection.
        for conn in closing {
            self.release((w, conn));
        }
        if self.answer_pings {
            for conn in pinged {
                let key = (w, conn);
                if !self.gone.contains(&key) && !self.closed_by_hub.contains_key(&key) {
                    self.frame(key, Inbound::Pong);
                }
            }
        }
    }

    /// Notes a chat or presence frame worker `w` writes for a room whose load it awaits.
    fn check_loaded(&mut self, w: usize, frame: &Bytes) {
        if !self.loads.iter().any(|l| l.worker == w) {
            return;
        }
        let v: serde_json::Value = serde_json::from_slice(frame).expect("server frames are JSON");
        if let Some(room) = v["roomId"].as_str() {
            if self.loads.iter().any(|l| l.worker == w && &*l.room == room) {
                self.before_load.push((w, frame.clone()));
            }
        }
    }

    fn record(&mut self, key: Key, via: Via, frame: &Bytes) {
        if self.gone.contains(&key) {
            self.stale.push((key, frame.clone()));
            return;
        }
        if self.closed_by_hub.contains_key(&key) {
            self.after_close += 1;
            return;
        }
        self.inbox.entry(key).or_default().push(Received {
            at: self.now.mono,
            via,
            frame: frame.clone(),
        });
    }
}

/// A server frame, parsed for checking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Chat {
        room: String,
        user: String,
        content: String,
        message_id: String,
        username: String,
        timestamp: String,
        seq: u64,
    },
    Presence {
        kind: String,
        room: String,
        user: String,
        username: String,
    },
    Error {
        code: String,
    },
}

/// Parses one server frame; panics on anything PROTOCOL.md does not allow.
pub fn parse(frame: &[u8]) -> Frame {
    let v: serde_json::Value = serde_json::from_slice(frame).expect("server frames are JSON");
    let s = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("{k} in {v}"))
            .to_owned()
    };
    match v["type"].as_str() {
        Some("chat") => Frame::Chat {
            room: s("roomId"),
            user: s("userId"),
            content: s("content"),
            message_id: s("messageId"),
            username: s("username"),
            timestamp: s("timestamp"),
            seq: v["seq"].as_u64().expect("seq"),
        },
        Some(kind @ ("join" | "leave")) => Frame::Presence {
            kind: kind.to_owned(),
            room: s("roomId"),
            user: s("userId"),
            username: s("username"),
        },
        Some("error") => Frame::Error { code: s("code") },
        _ => panic!("unknown frame {v}"),
    }
}
