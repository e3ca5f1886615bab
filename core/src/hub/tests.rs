//! Unit tests of hub behaviour that the simulator's properties do not pin down.

use super::*;
use crate::connect::UpgradeRequest;
use crate::protocol::{ChatMessage, ServerFrame};

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
        user_id: "old".into(),
        username: "Old".into(),
        content: "before restart".into(),
        timestamp: "2026-11-21T10:00:00.000Z".into(),
        seq: 41,
    };
    hub.handle_room_loaded(now(2), "kept", Some((41, vec![stored.clone()])));
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
    hub.handle_room_loaded(now(2), "brief", Some((0, Vec::new())));
    let _ = drain(&mut hub);
    let room = &hub.owned["brief"];
    assert_eq!(
        (room.connections, room.users.len()),
        (0, 0),
        "no ghost member"
    );
    assert!(room.per_worker.iter().all(|&n| n == 0));
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
}

fn hub_with_sink(policy: OverflowPolicy) -> (Hub, std::sync::Arc<std::sync::Mutex<Vec<u64>>>) {
    let mut cfg = HubConfig::new(WorkerId(0), 1);
    cfg.presence = false;
    cfg.overflow = policy;
    let mut hub = Hub::new(cfg, ConnectionGauge::new(10));
    let taken = std::sync::Arc::default();
    hub.set_persist_sink(Box::new(Bounded {
        taken: std::sync::Arc::clone(&taken),
        capacity: 2,
    }));
    (hub, taken)
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
            Output::Deliver { frame, to } => to
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
            .map(|c| c.member.clone())
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
