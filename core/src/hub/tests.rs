//! Unit tests of hub behaviour that the simulator's properties do not pin down.

use super::*;
use crate::protocol::{ChatMessage, MessageKind, ServerFrame};
use crate::upgrade::UpgradeRequest;

fn now(ms: u64) -> Now {
    Now::new(
        Mono::from_nanos(ms * 1_000_000),
        UnixMillis(1_795_257_000_000 + ms),
    )
}

fn drain(hub: &mut Hub) -> Vec<Output> {
    let mut out = Vec::new();
    loop {
        match hub.poll_output() {
            Output::Timeout(_) => return out,
            o => out.push(o),
        }
    }
}

fn frames(outputs: &[Output]) -> Vec<ServerFrame> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { frame, .. } | Output::Deliver { frame, .. } => {
                ServerFrame::decode(frame).ok()
            }
            _ => None,
        })
        .collect()
}

fn open(hub: &mut Hub, query: &str) -> ConnId {
    let adm = hub
        .admit(
            now(0),
            &UpgradeRequest {
                query,
                ..Default::default()
            },
        )
        .unwrap();
    hub.handle_open(now(0), adm)
}

#[test]
fn durable_room_waits_for_its_state_then_continues_seq() {
    let mut cfg = HubConfig::new(WorkerId(0), 1);
    cfg.durable = true;
    cfg.presence = false;
    let mut hub = Hub::new(cfg, ConnectionGauge::new(10));
    let c = open(&mut hub, "room=kept&userId=u");
    hub.handle_frame(
        now(1),
        c,
        Inbound::Text(br#"{"type":"chat","content":"after restart"}"#),
    );
    let out = drain(&mut hub);
    let loads: Vec<_> = out
        .iter()
        .filter(|o| matches!(o, Output::LoadRoom { .. }))
        .collect();
    assert_eq!(loads.len(), 1, "one load per room");
    assert!(
        frames(&out).is_empty(),
        "nothing is sent before the room's state is known"
    );
    let stored = ChatMessage {
        message_id: "018f0000-0000-7000-8000-000000000000".into(),
        room_id: "kept".into(),
        kind: Default::default(),
        user_id: "old".into(),
        username: "Old".into(),
        content: "before restart".into(),
        timestamp: "2026-11-21T10:00:00.000Z".into(),
        seq: 41,
        attachments: vec![],
    };
    hub.handle_room_loaded(
        now(2),
        "kept",
        Some(StoredRoom {
            last_seq: 41,
            recent: vec![stored.clone()],
            read_markers: Vec::new(),
            room: None,
            epoch: None,
        }),
    );
    let got = frames(&drain(&mut hub));
    match &got[..] {
        [ServerFrame::Chat(backlog), ServerFrame::Chat(live)] => {
            assert_eq!(
                backlog, &stored,
                "the stored message is the backlog, exactly as stored"
            );
            assert_eq!((live.seq, live.content.as_str()), (42, "after restart"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn durable_room_starts_afresh_when_the_store_cannot_answer() {
    let mut cfg = HubConfig::new(WorkerId(0), 1);
    cfg.durable = true;
    cfg.presence = false;
    let mut hub = Hub::new(cfg, ConnectionGauge::new(10));
    let c = open(&mut hub, "room=r");
    hub.handle_frame(
        now(1),
        c,
        Inbound::Text(br#"{"type":"chat","content":"x"}"#),
    );
    let _ = drain(&mut hub);
    hub.handle_room_loaded(now(2), "r", None);
    match &frames(&drain(&mut hub))[..] {
        [ServerFrame::Chat(m)] => assert_eq!(m.seq, 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn memory_store_never_asks_to_load() {
    let mut hub = Hub::new(HubConfig::new(WorkerId(0), 1), ConnectionGauge::new(10));
    let c = open(&mut hub, "room=m");
    hub.handle_frame(
        now(1),
        c,
        Inbound::Text(br#"{"type":"chat","content":"x"}"#),
    );
    assert!(!drain(&mut hub)
        .iter()
        .any(|o| matches!(o, Output::LoadRoom { .. })));
}

#[test]
fn slow_consumer_is_closed_once_and_counted() {
    let mut hub = Hub::new(HubConfig::new(WorkerId(0), 1), ConnectionGauge::new(10));
    let c = open(&mut hub, "room=s");
    let _ = drain(&mut hub);
    hub.handle_queued(now(1), c, 1 << 20);
    assert!(drain(&mut hub).is_empty(), "at the bound is fine");
    hub.handle_queued(now(1), c, (1 << 20) + 1);
    hub.handle_queued(now(1), c, (1 << 20) + 2);
    let closes: Vec<_> = drain(&mut hub)
        .into_iter()
        .filter_map(|o| match o {
            Output::Close { code, .. } => Some(code),
            _ => None,
        })
        .collect();
    assert_eq!(closes, [1008]);
    assert_eq!(hub.counters.slow_consumer_closes, 1);
}

#[test]
fn idle_rooms_are_evicted_beyond_the_bound() {
    let mut cfg = HubConfig::new(WorkerId(0), 1);
    cfg.max_idle_rooms = 2;
    let mut hub = Hub::new(cfg, ConnectionGauge::new(10));
    for room in ["a", "b", "c"] {
        let c = open(&mut hub, &format!("room={room}"));
        hub.handle_close(now(1), c);
    }
    let _ = drain(&mut hub);
    assert!(!hub.owned.contains_key("a"), "the longest idle goes first");
    assert!(hub.owned.contains_key("b") && hub.owned.contains_key("c"));
    // A room that became active again is not evicted for its old idle mark.
    let keep = open(&mut hub, "room=b");
    for room in ["d", "e"] {
        let c = open(&mut hub, &format!("room={room}"));
        hub.handle_close(now(2), c);
    }
    assert!(hub.owned.contains_key("b"));
    assert_eq!(hub.owned.len(), 3, "b (active) plus two idle rooms");
    hub.handle_close(now(3), keep);
}

#[test]
fn a_leave_waits_for_the_join_it_undoes_while_the_room_loads() {
    let mut cfg = HubConfig::new(WorkerId(0), 1);
    cfg.durable = true;
    let mut hub = Hub::new(cfg, ConnectionGauge::new(10));
    let c = open(&mut hub, "room=brief&userId=u");
    hub.handle_close(now(1), c);
    let _ = drain(&mut hub);
    hub.handle_room_loaded(now(2), "brief", Some(StoredRoom::default()));
    let _ = drain(&mut hub);
    let room = &hub.owned["brief"];
    assert_eq!(
        (room.connections, room.users.len()),
        (0, 0),
        "no ghost member"
    );
    assert!(room.per_worker.iter().all(|&n| n == [0, 0]));
}

/// A persistence queue that takes `capacity` records and then refuses.
struct Bounded {
    taken: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
    capacity: usize,
}

impl PersistSink for Bounded {
    fn try_push(&mut self, record: PersistRecord) -> Result<(), PersistRecord> {
        let mut taken = self.taken.lock().unwrap();
        if taken.len() >= self.capacity {
            return Err(record);
        }
        taken.push(record.seq);
        Ok(())
    }

    fn try_push_state(&mut self, write: StateWrite) -> Result<(), StateWrite> {
        Err(write)
    }
}

fn hub_with_sink(policy: OverflowPolicy) -> (Hub, std::sync::Arc<std::sync::Mutex<Vec<u64>>>) {
    let mut cfg = HubConfig::new(WorkerId(0), 1);
    cfg.presence = false;
    cfg.overflow = policy;
    let taken = std::sync::Arc::default();
    let sink = Box::new(Bounded {
        taken: std::sync::Arc::clone(&taken),
        capacity: 2,
    });
    (
        Hub::with_persist(cfg, ConnectionGauge::new(10), sink),
        taken,
    )
}

fn chat(hub: &mut Hub, conn: ConnId, t: u64) -> Vec<(ConnId, ServerFrame)> {
    hub.handle_frame(
        now(t),
        conn,
        Inbound::Text(br#"{"type":"chat","content":"x"}"#),
    );
    drain(hub)
        .into_iter()
        .flat_map(|o| match o {
            Output::Deliver { frame, to, .. } => to
                .iter()
                .map(|c| (*c, ServerFrame::decode(&frame).unwrap()))
                .collect(),
            Output::Send { conn, frame } => vec![(conn, ServerFrame::decode(&frame).unwrap())],
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn reject_policy_refuses_when_the_queue_is_full_and_consumes_no_seq() {
    let (mut hub, taken) = hub_with_sink(OverflowPolicy::Reject);
    let sender = open(&mut hub, "room=q&userId=s");
    let other = open(&mut hub, "room=q&userId=o");
    let _ = drain(&mut hub);
    for t in 1..=2 {
        assert_eq!(
            chat(&mut hub, sender, t).len(),
            2,
            "accepted: both members get it"
        );
    }
    let refused = chat(&mut hub, sender, 3);
    match &refused[..] {
        [(to, ServerFrame::Error(e))] => {
            assert_eq!(
                (*to, e.code.as_str()),
                (sender, "overloaded"),
                "only the sender hears"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(hub.counters.overloaded, 1);
    assert!(
        !refused.iter().any(|(to, _)| *to == other),
        "nothing broadcast"
    );
    // Room frees up: the next message takes the next seq, with no gap.
    taken.lock().unwrap().clear();
    match &chat(&mut hub, sender, 4)[..] {
        [(_, ServerFrame::Chat(m)), _] => assert_eq!(m.seq, 3),
        other => panic!("{other:?}"),
    }
}

#[test]
fn drop_policy_broadcasts_and_counts_what_was_not_stored() {
    let (mut hub, taken) = hub_with_sink(OverflowPolicy::Drop);
    let sender = open(&mut hub, "room=q&userId=s");
    let _ = drain(&mut hub);
    let seqs: Vec<u64> = (1..=4)
        .map(|t| match &chat(&mut hub, sender, t)[..] {
            [(_, ServerFrame::Chat(m))] => m.seq,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4], "the chat goes on");
    assert_eq!(
        *taken.lock().unwrap(),
        [1, 2],
        "stored while there was room"
    );
    assert_eq!(
        (hub.counters.persist_dropped, hub.counters.overloaded),
        (2, 0)
    );
}

#[test]
fn connections_share_the_names_the_hub_already_holds() {
    let mut hub = Hub::new(HubConfig::new(WorkerId(0), 1), ConnectionGauge::new(10));
    let a = open(&mut hub, "userId=ann&username=ann&room=lobby");
    let b = open(&mut hub, "userId=ann&room=lobby");
    let c = open(&mut hub, "userId=cy&username=Cy&room=lobby");
    let d = open(&mut hub, "userId=dee&room=lobby");
    let member = |id: ConnId| {
        hub.slots[id.index()]
            .conn
            .as_ref()
            .map(|c| {
                let room = c.first.as_ref().map(|s| s.room.clone()).unwrap();
                c.member(&room)
            })
            .unwrap()
    };
    let (ma, mb, mc, md) = (member(a), member(b), member(c), member(d));
    assert!(Arc::ptr_eq(&ma.room, &mb.room) && Arc::ptr_eq(&ma.room, &mc.room));
    assert!(Arc::ptr_eq(&ma.user, &mb.user), "one user, one string");
    assert!(
        Arc::ptr_eq(&ma.user, &ma.username),
        "a username equal to the user id"
    );
    assert!(
        Arc::ptr_eq(&mb.username, &md.username),
        "the default username"
    );
    assert_eq!((&*mc.username, &*md.username), ("Cy", "Anonymous"));
}

/// A hub without presence and rate limits, for the tests below.
fn quiet_hub(tune: impl FnOnce(&mut HubConfig)) -> Hub {
    let mut cfg = HubConfig::new(WorkerId(0), 1);
    cfg.presence = false;
    cfg.rate_limit = RateLimit {
        per_sec: 0.0,
        burst: 0.0,
    };
    tune(&mut cfg);
    Hub::new(cfg, ConnectionGauge::new(100))
}

fn say(hub: &mut Hub, conn: ConnId, t: u64, content: &str) -> Vec<Output> {
    let text = format!(r#"{{"type":"chat","content":"{content}"}}"#);
    hub.handle_frame(now(t), conn, Inbound::Text(text.as_bytes()));
    drain(hub)
}

fn chat_seqs(outputs: &[Output], to: ConnId) -> Vec<u64> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { conn, frame } if *conn == to => Some(frame),
            Output::Deliver { frame, to: all, .. } if all.contains(&to) => Some(frame),
            _ => None,
        })
        .filter_map(|f| match ServerFrame::decode(f) {
            Ok(ServerFrame::Chat(m) | ServerFrame::System(m)) => Some(m.seq),
            _ => None,
        })
        .collect()
}

#[test]
fn a_replay_of_the_whole_history_streams_in_slices_and_live_messages_wait_behind_it() {
    let mut hub = quiet_hub(|_| {});
    let talker = open(&mut hub, "room=big&userId=t");
    let _ = drain(&mut hub);
    let long = "x".repeat(900);
    for i in 0..1000 {
        let _ = say(&mut hub, talker, 1 + i, &long);
    }
    // ≈ 1 MB of history: more than the slow-consumer bound would allow at once.
    let resumer = open(&mut hub, "room=big&userId=r&since=0");
    let mut out = drain(&mut hub);
    let mut got = chat_seqs(&out, resumer);
    assert!(
        !got.is_empty() && got.len() < 1000,
        "a first slice: {}",
        got.len()
    );
    let queued: usize = out
        .iter()
        .filter_map(|o| match o {
            Output::Send { conn, frame } if *conn == resumer => Some(frame.len()),
            _ => None,
        })
        .sum();
    assert!(queued <= REPLAY_SLICE + 1024, "{queued} bytes at once");
    assert!(
        matches!(out.last(), Some(Output::NotifyWritten { conn }) if *conn == resumer),
        "asks to hear when it is written"
    );
    // A live message while it streams waits behind the replay.
    out = say(&mut hub, talker, 2000, "live");
    assert_eq!(chat_seqs(&out, talker), [1001]);
    assert!(chat_seqs(&out, resumer).is_empty(), "not before the replay");
    let mut rounds = 0;
    while !got.ends_with(&[1001]) {
        hub.handle_written(now(2001), resumer);
        out = drain(&mut hub);
        got.extend(chat_seqs(&out, resumer));
        rounds += 1;
        assert!(rounds < 100, "the replay ends");
    }
    assert_eq!(
        got,
        (1..=1001).collect::<Vec<_>>(),
        "every message once, in order"
    );
    assert!(rounds > 10, "in slices: {rounds}");
    assert_eq!(
        hub.counters.slow_consumer_closes, 0,
        "a replay is not slowness"
    );
    // Live from here on.
    out = say(&mut hub, talker, 3000, "later");
    assert_eq!(chat_seqs(&out, resumer), [1002]);
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::NotifyWritten { .. })));
}

#[test]
fn live_messages_piling_up_behind_a_replay_make_a_slow_consumer() {
    let mut hub = quiet_hub(|c| c.max_queued_bytes = 8 * 1024);
    let talker = open(&mut hub, "room=r&userId=t");
    let _ = drain(&mut hub);
    for i in 0..50 {
        let _ = say(&mut hub, talker, 1 + i, &"y".repeat(500));
    }
    let resumer = open(&mut hub, "room=r&userId=r&since=0");
    let _ = drain(&mut hub);
    // It never reports its slice written; the room goes on.
    let mut closed = Vec::new();
    for i in 0..40 {
        let out = say(&mut hub, talker, 100 + i, &"z".repeat(500));
        closed.extend(out.iter().filter_map(|o| match o {
            Output::Close { conn, code, .. } => Some((*conn, *code)),
            _ => None,
        }));
    }
    assert_eq!(closed, [(resumer, 1008)]);
    assert_eq!(hub.counters.slow_consumer_closes, 1);
    hub.handle_close(now(200), resumer);
    let out = say(&mut hub, talker, 201, "after");
    assert_eq!(chat_seqs(&out, talker).len(), 1, "the room goes on");
}

#[test]
fn history_is_bounded_in_bytes_and_the_oldest_message_of_any_room_goes_first() {
    let mut hub = quiet_hub(|c| c.max_history_bytes = 20 * 1024);
    let a = open(&mut hub, "room=a&userId=u");
    let b = open(&mut hub, "room=b&userId=u");
    let _ = drain(&mut hub);
    // Control characters are escaped to six bytes each: 1000 of them make a 6 KB frame.
    let heavy = "\\u0001".repeat(1000);
    for i in 0..5 {
        let _ = say(&mut hub, a, 1 + i, &heavy);
    }
    assert!(hub.retention.bytes() <= 20 * 1024);
    let kept_a: Vec<u64> = hub.owned["a"].history.iter().map(|e| e.seq).collect();
    assert_eq!(kept_a, [3, 4, 5], "the oldest went first");
    let _ = say(&mut hub, b, 10, &heavy);
    let kept_a: Vec<u64> = hub.owned["a"].history.iter().map(|e| e.seq).collect();
    assert_eq!(
        kept_a,
        [4, 5],
        "another room's message pushed out a's oldest"
    );
    assert_eq!(hub.owned["b"].history.len(), 1);
    // Since over what is left replays what is left.
    let r = open(&mut hub, "room=a&userId=r&since=0");
    assert_eq!(chat_seqs(&drain(&mut hub), r), [4, 5]);
    // Light messages: many fit, and the ledger does not outgrow what is retained.
    for i in 0..5000 {
        let _ = say(&mut hub, b, 100 + i, "hi");
    }
    assert!(hub.retention.bytes() <= 20 * 1024);
    assert!(
        hub.retention.entries()
            <= 2 * (hub.owned["a"].history.len() + hub.owned["b"].history.len()) + 64
    );
    // What the rooms hold and what the ledger counts agree.
    let held: usize = hub
        .owned
        .values()
        .flat_map(|r| r.history.iter())
        .map(Entry::cost)
        .sum();
    assert_eq!(held, hub.retention.bytes());
    assert!(hub.owned["a"].history.is_empty(), "a's were the oldest");
}

#[test]
fn the_idle_queue_stays_small_when_one_occupant_comes_and_goes() {
    let mut hub = quiet_hub(|_| {});
    for t in 0..10_000 {
        let c = open(&mut hub, "room=churn");
        hub.handle_close(now(t), c);
    }
    let _ = drain(&mut hub);
    assert_eq!(hub.idle_count, 1);
    assert!(
        hub.idle.len() <= 2 * hub.idle_count + 64,
        "{}",
        hub.idle.len()
    );
}

#[test]
fn fan_out_latency_runs_from_the_read_to_the_hand_over() {
    let mut hub = quiet_hub(|_| {});
    let c = open(&mut hub, "room=l");
    let _ = drain(&mut hub);
    let out = say(&mut hub, c, 10, "x");
    let received = out
        .iter()
        .find_map(|o| match o {
            Output::Deliver { received, .. } => *received,
            _ => None,
        })
        .expect("a chat delivery carries when it was read");
    assert_eq!(received, now(10).mono);
    // The driver handed it to the sockets 3 ms later.
    hub.handle_delivered(now(13), received);
    let stats = hub.stats_part(now(13));
    assert_eq!(stats.latency.len(), 1);
    let ms = stats.latency.max() as f64 / 1000.0;
    assert!((2.9..=3.1).contains(&ms), "{ms} ms");
}

#[test]
fn a_ping_is_answered_with_its_payload() {
    let mut hub = Hub::new(HubConfig::new(WorkerId(0), 1), ConnectionGauge::new(10));
    let c = open(&mut hub, "room=p");
    let _ = drain(&mut hub);
    hub.handle_frame(now(1), c, Inbound::Ping(b"are you there"));
    match &drain(&mut hub)[..] {
        [Output::Pong { conn, payload }] => {
            assert_eq!((*conn, &payload[..]), (c, &b"are you there"[..]));
        }
        other => panic!("{other:?}"),
    }
    hub.handle_frame(now(2), c, Inbound::Pong);
    assert!(drain(&mut hub).is_empty(), "a pong is activity only");
}

#[test]
fn the_clients_close_is_answered_once_and_nothing_follows_it() {
    let mut cfg = HubConfig::new(WorkerId(0), 1);
    cfg.presence = false;
    let mut hub = Hub::new(cfg, ConnectionGauge::new(10));
    let leaving = open(&mut hub, "room=c&userId=a");
    let _ = drain(&mut hub);
    hub.handle_frame(now(1), leaving, Inbound::Close(Some(4000)));
    match &drain(&mut hub)[..] {
        [Output::CloseReply { conn, code }] => assert_eq!((*conn, *code), (leaving, Some(4000))),
        other => panic!("{other:?}"),
    }
    hub.handle_frame(now(2), leaving, Inbound::Close(None));
    hub.handle_frame(
        now(2),
        leaving,
        Inbound::Text(br#"{"type":"chat","content":"x"}"#),
    );
    hub.begin_shutdown(now(3));
    assert!(
        drain(&mut hub).is_empty(),
        "no second answer, no message taken, no 1001 after the client's close"
    );
}

/// The presence frames in `outputs`: ("join" | "leave", user id), in order.
fn presence_frames(outputs: &[Output]) -> Vec<(&'static str, String)> {
    frames(outputs)
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::Join(p) => Some(("join", p.user_id)),
            ServerFrame::Leave(p) => Some(("leave", p.user_id)),
            _ => None,
        })
        .collect()
}

#[test]
fn presence_goes_quiet_above_presence_max_members_counting_users_not_connections() {
    let mut cfg = HubConfig::new(WorkerId(0), 1);
    cfg.presence_max_members = 2;
    let mut hub = Hub::new(cfg, ConnectionGauge::new(10));
    let a = open(&mut hub, "room=big&userId=a");
    let a2 = open(&mut hub, "room=big&userId=a");
    let b = open(&mut hub, "room=big&userId=b");
    // Two users (a with two connections): every join is announced.
    assert_eq!(
        presence_frames(&drain(&mut hub)),
        [
            ("join", "a".to_owned()),
            ("join", "a".to_owned()),
            ("join", "b".to_owned())
        ]
    );
    let c = open(&mut hub, "room=big&userId=c");
    assert!(
        presence_frames(&drain(&mut hub)).is_empty(),
        "a third user is past the bound: no join for anyone"
    );
    hub.handle_close(now(1), c);
    assert!(
        presence_frames(&drain(&mut hub)).is_empty(),
        "c's leave is counted with c, as its join was: not announced"
    );
    assert_eq!(hub.counters.presence_withheld, 2, "c's join and leave");
    hub.handle_close(now(2), a2);
    let leaves = presence_frames(&drain(&mut hub));
    assert_eq!(
        leaves,
        [("leave", "a".to_owned())],
        "two users again, a among them"
    );
    let _ = (a, b);
}

#[test]
fn room_presence_lists_users_once_with_their_first_name_and_arrival() {
    let mut hub = Hub::new(HubConfig::new(WorkerId(0), 1), ConnectionGauge::new(10));
    open(&mut hub, "room=p&userId=zoe&username=Zoe");
    hub.handle_open(
        now(5),
        hub.admit(
            now(5),
            &UpgradeRequest {
                query: "room=p&userId=al&username=Al",
                ..Default::default()
            },
        )
        .unwrap(),
    );
    open(&mut hub, "room=p&userId=zoe&username=Other");
    let _ = drain(&mut hub);
    hub.handle_query(
        now(6),
        QueryId(1),
        Query::RoomPresence {
            room: "p".to_owned(),
        },
    );
    let presence = drain(&mut hub)
        .into_iter()
        .find_map(|o| match o {
            Output::Reply {
                answer: Answer::Presence(p),
                ..
            } => Some(p),
            _ => None,
        })
        .expect("a presence answer");
    let users: Vec<(&str, &str, u64)> = presence
        .users
        .iter()
        .map(|u| (&*u.user_id, &*u.username, u.since.0))
        .collect();
    assert_eq!(
        users,
        [("al", "Al", now(5).wall.0), ("zoe", "Zoe", now(0).wall.0)]
    );
    assert_eq!((presence.online, presence.truncated), (2, false));
}

#[test]
fn room_messages_page_back_and_on_by_seq_with_their_cursors() {
    let mut cfg = HubConfig::new(WorkerId(0), 1);
    cfg.rate_limit = RateLimit {
        per_sec: 0.0,
        burst: 0.0,
    };
    let mut hub = Hub::new(cfg, ConnectionGauge::new(10));
    let a = open(&mut hub, "room=h&userId=a");
    for i in 1..=7 {
        let text = format!(r#"{{"type":"chat","content":"m{i}"}}"#);
        hub.handle_frame(now(i), a, Inbound::Text(text.as_bytes()));
    }
    let _ = drain(&mut hub);
    type Next = (Option<u64>, Option<u64>);
    let mut page = |cursor: PageCursor, limit: usize| -> (Vec<u64>, Next) {
        hub.handle_query(
            now(10),
            QueryId(1),
            Query::RoomMessages {
                room: "h".to_owned(),
                limit,
                cursor,
            },
        );
        let list = drain(&mut hub)
            .into_iter()
            .find_map(|o| match o {
                Output::Reply {
                    answer: Answer::Messages(m),
                    ..
                } => Some(m),
                _ => None,
            })
            .expect("a message list");
        let seqs = list
            .frames
            .iter()
            .map(|f| {
                serde_json::from_slice::<serde_json::Value>(f).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        (seqs, list.next.expect("a room page has cursors"))
    };
    use PageCursor::{After, Before, Newest};
    assert_eq!(page(Newest, 3), (vec![5, 6, 7], (Some(5), None)));
    assert_eq!(page(Before(5), 3), (vec![2, 3, 4], (Some(2), Some(4))));
    assert_eq!(page(Before(2), 3), (vec![1], (None, Some(1))));
    assert_eq!(page(Before(1), 3), (vec![], (None, None)));
    assert_eq!(page(Before(100), 2), (vec![6, 7], (Some(6), Some(7))));
    assert_eq!(page(After(0), 3), (vec![1, 2, 3], (None, Some(3))));
    assert_eq!(page(After(3), 3), (vec![4, 5, 6], (Some(4), Some(6))));
    assert_eq!(page(After(6), 3), (vec![7], (Some(7), None)));
    assert_eq!(page(After(7), 3), (vec![], (None, None)));
}

fn reply(hub: &mut Hub, query: Query, t: u64) -> (Answer, Vec<Output>) {
    hub.handle_query(now(t), QueryId(7), query);
    let out = drain(hub);
    let answer = out
        .iter()
        .find_map(|o| match o {
            Output::Reply { answer, .. } => Some(answer.clone()),
            _ => None,
        })
        .expect("a reply");
    (answer, out)
}

fn publish(room: &str, body: &str) -> Query {
    let raw = format!(r#"{{"roomId":"{room}",{body}}}"#);
    Query::Publish(crate::protocol::PublishRequest::decode(raw.as_bytes()).unwrap())
}

#[test]
fn a_published_system_message_takes_the_next_seq_and_reaches_every_member() {
    let mut hub = quiet_hub(|_| {});
    let a = open(&mut hub, "room=p&userId=a");
    let b = open(&mut hub, "room=p&userId=b");
    let _ = say(&mut hub, a, 1, "first");
    let (answer, out) = reply(
        &mut hub,
        publish("p", r#""type":"system","content":"maintenance""#),
        2,
    );
    let Answer::Published(Ok(frame)) = answer else {
        panic!("{answer:?}")
    };
    let Ok(ServerFrame::System(m)) = ServerFrame::decode(&frame) else {
        panic!("a system frame: {frame:?}")
    };
    assert_eq!(
        (m.seq, m.kind, &*m.user_id, &*m.username),
        (2, MessageKind::System, "system", "System")
    );
    assert_eq!(chat_seqs(&out, a), [2]);
    assert_eq!(chat_seqs(&out, b), [2]);
    assert_eq!(hub.counters.published, 1);
    // It is history like any other message, kind included.
    let (answer, _) = reply(
        &mut hub,
        Query::RoomMessages {
            room: "p".into(),
            limit: 10,
            cursor: PageCursor::Newest,
        },
        3,
    );
    let Answer::Messages(list) = answer else {
        panic!("{answer:?}")
    };
    assert!(matches!(
        ServerFrame::decode(&list.frames[1]),
        Ok(ServerFrame::System(_))
    ));
}

#[test]
fn a_publish_refused_by_a_full_queue_broadcasts_nothing() {
    let (mut hub, _taken) = hub_with_sink(OverflowPolicy::Reject);
    let member = open(&mut hub, "room=q&userId=m");
    let _ = drain(&mut hub);
    for t in 1..=2 {
        let (answer, _) = reply(&mut hub, publish("q", r#""content":"fill""#), t);
        assert!(matches!(answer, Answer::Published(Ok(_))), "{answer:?}");
    }
    let (answer, out) = reply(&mut hub, publish("q", r#""content":"one too many""#), 3);
    assert!(matches!(
        answer,
        Answer::Published(Err(PublishRefused::Overloaded))
    ));
    assert!(chat_seqs(&out, member).is_empty());
    assert_eq!(hub.counters.published, 2);
}

fn closes(out: &[Output]) -> Vec<(ConnId, u16)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Close { conn, code, .. } => Some((*conn, *code)),
            _ => None,
        })
        .collect()
}

#[test]
fn disconnect_closes_only_the_users_connections() {
    let mut hub = quiet_hub(|_| {});
    let e1 = open(&mut hub, "room=x&userId=eve");
    let e2 = open(&mut hub, "room=y&userId=eve");
    let other = open(&mut hub, "room=x&userId=bob");
    let _ = drain(&mut hub);
    let query = Query::Disconnect(crate::protocol::DisconnectRequest {
        user_id: "eve".into(),
    });
    let (answer, out) = reply(&mut hub, query.clone(), 1);
    assert!(matches!(answer, Answer::Affected(2)), "{answer:?}");
    let mut closed = closes(&out);
    closed.sort_by_key(|(c, _)| c.index);
    assert_eq!(closed, [(e1, CLOSE_DISCONNECTED), (e2, CLOSE_DISCONNECTED)]);
    assert!(!closed.iter().any(|(c, _)| *c == other));
    // Already closing: not counted twice.
    let (again, _) = reply(&mut hub, query, 2);
    assert!(matches!(again, Answer::Affected(0)), "{again:?}");
}

#[test]
fn with_auth_the_token_names_the_user_and_a_long_id_is_cut_to_a_display_name() {
    let secret = b"hub-test-secret-of-32-bytes-long".to_vec();
    let checks = Arc::new(crate::auth::Authenticator::new(Some(&secret), None).unwrap());
    let hub = quiet_hub(|c| c.auth = checks);
    let long = "é".repeat(60);
    let token = crate::auth::sign(&secret, &long, 2_000_000_000);
    let query = format!("userId=eve&username=Eve&token={token}");
    let adm = hub
        .admit(
            now(0),
            &UpgradeRequest {
                query: &query,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(adm.user_id(), long);
    assert_eq!(
        adm.username(),
        "é".repeat(crate::upgrade::MAX_USERNAME_CHARS)
    );
}
