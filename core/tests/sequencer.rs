//! Shared rooms (`HubConfig::broker`): several nodes, one hub each, behind a fake
//! sequencer that numbers every room's messages in one order and publishes each to every
//! node watching the room — dropping, duplicating and delaying publications, and
//! reordering everything it hands out. Whatever it does, every subscriber on every node
//! hears each room's messages exactly once, in the sequencer's order, and every sender
//! is acknowledged with the number its message got.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use hubbub_core::protocol::ChatMessage;
use hubbub_core::upgrade::UpgradeRequest;
use hubbub_core::*;
use proptest::prelude::*;
use serde_json::{json, Value};

const ROOMS: [&str; 2] = ["lobby", "ops"];

/// The sequencer's state of one room: its epoch and its log (seq = index + 1).
#[derive(Default)]
struct Log {
    epoch: String,
    messages: Vec<ChatMessage>,
}

struct Node {
    hub: Hub,
    /// What each connection received, as JSON.
    inbox: HashMap<ConnId, Vec<Value>>,
    watching: HashSet<String>,
}

/// What the sequencer still owes: (node, event), handed out in a seeded order.
struct World {
    nodes: Vec<Node>,
    logs: HashMap<String, Log>,
    pending: Vec<(usize, SequencerEvent)>,
    rng: u64,
    now: Now,
    /// Chance in 256 of dropping / duplicating one publication to one node.
    drop: u8,
    dup: u8,
}

impl World {
    fn new(nodes: usize, seed: u64, drop: u8, dup: u8) -> Self {
        let nodes = (0..nodes)
            .map(|i| {
                let mut cfg = HubConfig::new(WorkerId(0), 1);
                cfg.broker = true;
                cfg.presence = false;
                cfg.seed = seed ^ (i as u64 + 1);
                cfg.rate_limit = RateLimit {
                    per_sec: 1000.0,
                    burst: 1000.0,
                };
                Node {
                    hub: Hub::new(cfg, ConnectionGauge::new(1000)),
                    inbox: HashMap::new(),
                    watching: HashSet::new(),
                }
            })
            .collect();
        World {
            nodes,
            logs: HashMap::new(),
            pending: Vec::new(),
            rng: seed | 1,
            now: Now::new(
                Mono::from_nanos(1_000_000_000),
                UnixMillis(1_795_257_000_000),
            ),
            drop,
            dup,
        }
    }

    fn roll(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn open(&mut self, n: usize, user: &str) -> ConnId {
        let query = format!("userId={user}&username={user}&proto=2");
        let req = UpgradeRequest {
            query: &query,
            ..Default::default()
        };
        let now = self.now;
        let admission = self.nodes[n].hub.admit(now, &req).expect("admitted");
        let conn = self.nodes[n].hub.handle_open(now, admission);
        self.nodes[n].inbox.entry(conn).or_default();
        self.drain(n);
        conn
    }

    fn frame(&mut self, n: usize, conn: ConnId, frame: Value) {
        let text = frame.to_string();
        let now = self.now;
        self.nodes[n]
            .hub
            .handle_frame(now, conn, Inbound::Text(text.as_bytes()));
        self.drain(n);
    }

    /// Plays the driver of node `n`: carries out every output.
    fn drain(&mut self, n: usize) {
        loop {
            let out = self.nodes[n].hub.poll_output();
            match out {
                Output::Deliver { frame, to, .. } => {
                    let v: Value = serde_json::from_slice(&frame).expect("json");
                    for c in to.iter() {
                        self.nodes[n].inbox.entry(*c).or_default().push(v.clone());
                    }
                }
                Output::Send { conn, frame } => {
                    let v: Value = serde_json::from_slice(&frame).expect("json");
                    self.nodes[n].inbox.entry(conn).or_default().push(v);
                }
                Output::LoadRoom { room, recent } => {
                    let log = self.log(&room, "e1", 0);
                    let state = StoredRoom {
                        last_seq: log.messages.len() as u64,
                        recent: log.messages[log.messages.len().saturating_sub(recent)..].to_vec(),
                        epoch: Some(log.epoch.as_str().into()),
                        ..Default::default()
                    };
                    self.nodes[n].watching.insert(room.to_string());
                    let now = self.now;
                    self.nodes[n]
                        .hub
                        .handle_room_loaded(now, &room, Some(state));
                }
                Output::Sequence {
                    token,
                    record,
                    epoch,
                    floor,
                } => {
                    let room = record.room_id.to_string();
                    let log = self.log(&room, &epoch, floor);
                    let mut m = record.to_message();
                    m.seq = log.messages.len() as u64 + 1;
                    log.messages.push(m.clone());
                    let epoch: Arc<str> = Arc::from(log.epoch.as_str());
                    let answer = Some(Sequenced {
                        epoch: epoch.clone(),
                        seq: m.seq,
                    });
                    self.pending
                        .push((n, SequencerEvent::Sequenced { token, answer }));
                    for to in 0..self.nodes.len() {
                        if !self.nodes[to].watching.contains(&room) {
                            continue;
                        }
                        let roll = self.roll();
                        if (roll & 0xff) < u64::from(self.drop) {
                            continue;
                        }
                        let copies = if ((roll >> 8) & 0xff) < u64::from(self.dup) {
                            2
                        } else {
                            1
                        };
                        for _ in 0..copies {
                            self.pending.push((
                                to,
                                SequencerEvent::Message {
                                    room: Arc::from(room.as_str()),
                                    epoch: epoch.clone(),
                                    message: m.clone(),
                                },
                            ));
                        }
                    }
                }
                Output::FetchMessages { room, after, upto } => {
                    let log = self.log(&room, "e1", 0);
                    let epoch: Arc<str> = Arc::from(log.epoch.as_str());
                    let messages = log
                        .messages
                        .iter()
                        .filter(|m| m.seq > after && m.seq <= upto)
                        .cloned()
                        .collect();
                    self.pending.push((
                        n,
                        SequencerEvent::Fetched {
                            room,
                            range: (after, upto),
                            answer: Some((epoch, messages)),
                        },
                    ));
                }
                Output::Unwatch { room } => {
                    self.nodes[n].watching.remove(&*room);
                }
                Output::Timeout(_) => break,
                Output::NotifyWritten { conn } => {
                    let now = self.now;
                    self.nodes[n].hub.handle_written(now, conn);
                }
                Output::Peer { .. } => panic!("one worker per node: no peers"),
                _ => {}
            }
        }
    }

    fn log(&mut self, room: &str, epoch: &str, _floor: u64) -> &mut Log {
        let log = self.logs.entry(room.to_owned()).or_default();
        if log.epoch.is_empty() {
            log.epoch = epoch.to_owned();
        }
        log
    }

    /// Hands out one owed event, chosen by the seed.
    fn step(&mut self) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        let i = (self.roll() % self.pending.len() as u64) as usize;
        let (n, event) = self.pending.swap_remove(i);
        let now = self.now;
        self.nodes[n].hub.handle_sequencer_event(now, event);
        self.drain(n);
        true
    }

    fn settle(&mut self) {
        while self.step() {}
        // A publication dropped last has nothing after it to reveal the hole: the link's
        // reconnect (every node resyncs) and the gap timers cover it.
        for n in 0..self.nodes.len() {
            let now = self.now;
            self.nodes[n]
                .hub
                .handle_sequencer_event(now, SequencerEvent::Resync);
            self.drain(n);
        }
        while self.step() {}
        self.advance(GAP_RETRY * 2);
        while self.step() {}
    }

    fn advance(&mut self, by: Duration) {
        self.now = Now::new(
            self.now.mono + by,
            UnixMillis(self.now.wall.0 + by.as_millis() as u64),
        );
        for n in 0..self.nodes.len() {
            let now = self.now;
            self.nodes[n].hub.handle_timeout(now);
            self.drain(n);
        }
    }
}

/// The chat frames of `room` a connection received, as (seq, messageId).
fn chats(inbox: &[Value], room: &str) -> Vec<(u64, String)> {
    inbox
        .iter()
        .filter(|v| v["type"] == "chat" && v["roomId"] == room)
        .map(|v| {
            (
                v["seq"].as_u64().expect("seq"),
                v["messageId"].as_str().expect("id").to_owned(),
            )
        })
        .collect()
}

/// Sends: (node, connection, room index, pause before the next event).
fn run(seed: u64, drop: u8, dup: u8, sends: &[(usize, usize, usize, u8)]) {
    let nodes = 3;
    let mut w = World::new(nodes, seed, drop, dup);
    let mut conns = Vec::new();
    for n in 0..nodes {
        for c in 0..2 {
            let conn = w.open(n, &format!("u{n}{c}"));
            for (i, room) in ROOMS.iter().enumerate() {
                w.frame(
                    n,
                    conn,
                    json!({"type": "subscribe", "id": i, "roomId": room}),
                );
            }
            conns.push((n, conn));
        }
    }
    while w.step() {}
    let mut sent = Vec::new();
    for (k, &(n, c, r, pause)) in sends.iter().enumerate() {
        let (n, conn) = conns[(n * 2 + c % 2) % conns.len()];
        let room = ROOMS[r % ROOMS.len()];
        let cmid = format!("m{k}");
        let frame = json!({"type": "chat", "id": 100 + k, "roomId": room, "content": format!("hello {k}"), "clientMsgId": cmid});
        w.frame(n, conn, frame);
        sent.push((n, conn, room, cmid));
        for _ in 0..pause % 4 {
            w.step();
        }
    }
    w.settle();
    for room in ROOMS {
        let truth: Vec<(u64, String)> = w
            .logs
            .get(room)
            .map(|l| {
                l.messages
                    .iter()
                    .map(|m| (m.seq, m.message_id.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let expected = sends
            .iter()
            .filter(|s| ROOMS[s.2 % ROOMS.len()] == room)
            .count();
        assert_eq!(truth.len(), expected, "{room}: every send numbered once");
        for (n, node) in w.nodes.iter().enumerate() {
            for (conn, inbox) in &node.inbox {
                assert_eq!(
                    chats(inbox, room),
                    truth,
                    "node {n} {conn:?}: {room} in the sequencer's order, once each"
                );
            }
        }
    }
    for (n, conn, room, cmid) in sent {
        let inbox = &w.nodes[n].inbox[&conn];
        let acks: Vec<&Value> = inbox
            .iter()
            .filter(|v| v["type"] == "ack" && v["clientMsgId"] == cmid.as_str())
            .collect();
        assert_eq!(acks.len(), 1, "{cmid}: one ack");
        let seq = acks[0]["seq"].as_u64().expect("seq");
        let log = &w.logs[room].messages;
        let numbered = &log[seq as usize - 1];
        assert_eq!(
            numbered.content,
            format!("hello {}", &cmid[1..]),
            "{cmid}: the ack names its message"
        );
        // The ack follows the message on the sender's connection.
        let at_ack = inbox
            .iter()
            .position(|v| v["type"] == "ack" && v["clientMsgId"] == cmid.as_str());
        let at_msg = inbox
            .iter()
            .position(|v| v["type"] == "chat" && v["seq"] == seq && v["roomId"] == room);
        assert!(at_msg < at_ack, "{cmid}: message before its ack");
    }
}

#[test]
fn a_perfect_sequencer_delivers_in_order() {
    let sends: Vec<_> = (0..40)
        .map(|i| (i % 3, i % 2, i % 2, (i % 5) as u8))
        .collect();
    run(7, 0, 0, &sends);
}

#[test]
fn drops_and_duplicates_are_filled_and_skipped() {
    let sends: Vec<_> = (0..60)
        .map(|i| (i % 3, i / 3, i / 7, (i % 3) as u8))
        .collect();
    run(11, 60, 60, &sends);
}

#[test]
fn the_broker_unreachable_refuses_the_send() {
    let mut w = World::new(1, 3, 0, 0);
    let conn = w.open(0, "u");
    w.frame(
        0,
        conn,
        json!({"type": "subscribe", "id": 1, "roomId": "lobby"}),
    );
    while w.step() {}
    w.frame(
        0,
        conn,
        json!({"type": "chat", "id": 2, "roomId": "lobby", "content": "hi", "clientMsgId": "c1"}),
    );
    // The sequencer does not answer: the driver says so.
    let token = w
        .pending
        .iter()
        .find_map(|(_, e)| match e {
            SequencerEvent::Sequenced { token, .. } => Some(*token),
            _ => None,
        })
        .expect("the message went to the sequencer");
    w.pending.clear();
    let now = w.now;
    w.nodes[0].hub.handle_sequenced(now, token, None);
    w.drain(0);
    let inbox = &w.nodes[0].inbox[&conn];
    let last = inbox.last().expect("a frame");
    assert_eq!(last["type"], "error");
    assert_eq!(last["code"], "broker_unavailable");
    assert_eq!(last["id"], 2);
    assert!(chats(inbox, "lobby").is_empty(), "nothing delivered");
}

#[test]
fn a_new_epoch_starts_the_room_again() {
    let mut w = World::new(2, 5, 0, 0);
    let a = w.open(0, "a");
    let b = w.open(1, "b");
    w.frame(
        0,
        a,
        json!({"type": "subscribe", "id": 1, "roomId": "lobby"}),
    );
    w.frame(
        1,
        b,
        json!({"type": "subscribe", "id": 1, "roomId": "lobby"}),
    );
    while w.step() {}
    w.frame(
        0,
        a,
        json!({"type": "chat", "id": 2, "roomId": "lobby", "content": "one"}),
    );
    w.settle();
    // The sequencer lost the room (Redis restarted): a new epoch, numbering from 1.
    w.logs.insert(
        "lobby".into(),
        Log {
            epoch: "e2".into(),
            messages: Vec::new(),
        },
    );
    w.frame(
        1,
        b,
        json!({"type": "chat", "id": 3, "roomId": "lobby", "content": "two"}),
    );
    w.settle();
    for (n, conn) in [(0, a), (1, b)] {
        let seqs: Vec<u64> = chats(&w.nodes[n].inbox[&conn], "lobby")
            .iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(
            seqs,
            vec![1, 1],
            "node {n}: the new epoch's first message is heard"
        );
    }
    // A resume with the old epoch is not recovered.
    let c = w.open(1, "c");
    w.frame(
        1,
        c,
        json!({"type": "subscribe", "id": 1, "roomId": "lobby", "since": 1, "epoch": "e1"}),
    );
    let sub = w.nodes[1].inbox[&c]
        .iter()
        .find(|v| v["type"] == "subscribed")
        .cloned()
        .expect("subscribed");
    assert_eq!(
        (sub["epoch"].as_str(), sub["recovered"].as_bool()),
        (Some("e2"), Some(false))
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_member_on_every_node_hears_one_order(
        seed in any::<u64>(),
        drop in 0u8..120,
        dup in 0u8..120,
        sends in proptest::collection::vec((0usize..3, 0usize..2, 0usize..2, any::<u8>()), 1..50),
    ) {
        run(seed, drop, dup, &sends);
    }
}
