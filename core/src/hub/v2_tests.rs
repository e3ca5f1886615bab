//! Unit tests of v2 connections on one hub: each frame and error of docs/PROTOCOL.md §7.

use serde_json::{json, Value};

use super::*;
use crate::upgrade::UpgradeRequest;

fn at(ms: u64) -> Now {
    Now::new(
        Mono::from_nanos(ms * 1_000_000),
        UnixMillis(1_795_257_000_000 + ms),
    )
}

struct Bench {
    hub: Hub,
    /// Every frame each connection received, in order.
    got: HashMap<ConnId, Vec<Value>>,
    /// The file checks asked for, not yet answered.
    checks: Vec<(u64, Arc<str>, Vec<Box<str>>)>,
}

impl Bench {
    fn new(cfg: impl FnOnce(&mut HubConfig)) -> Bench {
        let mut c = HubConfig::new(WorkerId(0), 1);
        cfg(&mut c);
        Bench {
            hub: Hub::new(c, ConnectionGauge::new(100)),
            got: HashMap::new(),
            checks: Vec::new(),
        }
    }

    fn pump(&mut self, ms: u64) {
        loop {
            match self.hub.poll_output() {
                Output::Timeout(_) => return,
                Output::Send { conn, frame } => self.record(conn, &frame),
                Output::Deliver { frame, to, .. } => {
                    for &c in to.iter() {
                        self.record(c, &frame);
                    }
                }
                Output::NotifyWritten { conn } => self.hub.handle_written(at(ms), conn),
                Output::CheckFiles { id, room, files } => self.checks.push((id, room, files)),
                _ => {}
            }
        }
    }

    fn record(&mut self, conn: ConnId, frame: &[u8]) {
        let v: Value = serde_json::from_slice(frame).expect("every frame is JSON");
        self.got.entry(conn).or_default().push(v);
    }

    fn open(&mut self, ms: u64, query: &str) -> ConnId {
        let adm = self
            .hub
            .admit(
                at(ms),
                &UpgradeRequest {
                    query,
                    ..Default::default()
                },
            )
            .unwrap();
        let c = self.hub.handle_open(at(ms), adm);
        self.pump(ms);
        c
    }

    fn send(&mut self, ms: u64, conn: ConnId, frame: Value) {
        let text = frame.to_string();
        self.hub
            .handle_frame(at(ms), conn, Inbound::Text(text.as_bytes()));
        self.pump(ms);
    }

    fn tick(&mut self, ms: u64) {
        self.hub.handle_timeout(at(ms));
        self.pump(ms);
    }

    fn close(&mut self, ms: u64, conn: ConnId) {
        self.hub.handle_close(at(ms), conn);
        self.pump(ms);
    }

    /// What `conn` received since the last call.
    fn take(&mut self, conn: ConnId) -> Vec<Value> {
        self.got.remove(&conn).unwrap_or_default()
    }

    /// Just the types.
    fn types(&mut self, conn: ConnId) -> Vec<String> {
        self.take(conn)
            .iter()
            .map(|v| v["type"].as_str().unwrap_or("?").to_owned())
            .collect()
    }
}

fn chat(id: u32, room: &str, content: &str, cmid: Option<&str>) -> Value {
    let mut v = json!({"type":"chat","id":id,"roomId":room,"content":content});
    if let Some(c) = cmid {
        v["clientMsgId"] = json!(c);
    }
    v
}

#[test]
fn hello_subscribe_backlog_then_live_and_acks() {
    let mut b = Bench::new(|c| c.presence = false);
    let v1 = b.open(0, "room=dev&userId=old");
    b.send(1, v1, json!({"type":"chat","content":"before"}));
    b.take(v1);
    let a = b.open(2, "proto=2&userId=alice&username=Alice");
    let hello = b.take(a);
    assert_eq!(hello.len(), 1, "{hello:?}");
    assert_eq!(hello[0]["type"], "hello");
    assert_eq!(hello[0]["proto"], 2);
    assert_eq!(
        (&hello[0]["userId"], &hello[0]["username"]),
        (&json!("alice"), &json!("Alice"))
    );
    assert_eq!(hello[0]["node"], "hubbub");
    assert_eq!(hello[0]["limits"]["subscriptions"], 64);
    b.send(3, a, json!({"type":"subscribe","id":7,"roomId":"dev"}));
    let got = b.take(a);
    assert_eq!(got[0]["type"], "subscribed");
    assert_eq!(
        (&got[0]["id"], &got[0]["seq"], &got[0]["recovered"]),
        (&json!(7), &json!(1), &json!(false))
    );
    assert_eq!(
        (&got[0]["online"], &got[0]["lastRead"]),
        (&json!(2), &json!(0))
    );
    assert_eq!(got[1]["content"], "before", "then the backlog");
    assert_eq!(got.len(), 2);
    b.send(4, a, chat(9, "dev", "hi", Some("c-1")));
    let got = b.take(a);
    assert_eq!(got[0]["type"], "chat", "the message itself first");
    assert_eq!(
        (&got[0]["seq"], &got[0]["roomId"]),
        (&json!(2), &json!("dev"))
    );
    assert_eq!(got[1]["type"], "ack");
    assert_eq!(
        (&got[1]["id"], &got[1]["seq"], &got[1]["duplicate"]),
        (&json!(9), &json!(2), &json!(false))
    );
    assert_eq!(got[1]["messageId"], got[0]["messageId"]);
    assert_eq!(got[1]["clientMsgId"], "c-1");
    assert_eq!(b.types(v1), ["chat"], "v1 members get the same chat frame");
    // The resend: the first one's ack, nothing broadcast.
    b.send(5, a, chat(10, "dev", "hi", Some("c-1")));
    let got = b.take(a);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (
            &got[0]["type"],
            &got[0]["id"],
            &got[0]["seq"],
            &got[0]["duplicate"]
        ),
        (&json!("ack"), &json!(10), &json!(2), &json!(true))
    );
    assert!(b.take(v1).is_empty(), "not broadcast again");
    // From another connection of the same user, too.
    let a2 = b.open(6, "proto=2&userId=alice&room=dev");
    b.take(a2);
    b.take(a);
    b.send(7, a2, chat(1, "dev", "hi", Some("c-1")));
    assert_eq!(b.take(a2)[0]["duplicate"], true);
    // Another user's same clientMsgId is theirs.
    let bob = b.open(8, "proto=2&userId=bob&room=dev");
    b.take(bob);
    b.send(9, bob, chat(1, "dev", "yo", Some("c-1")));
    let got = b.take(bob);
    assert_eq!(
        (&got[0]["type"], &got[1]["duplicate"]),
        (&json!("chat"), &json!(false))
    );
    assert_eq!(b.hub.counters.duplicates, 2);
}

#[test]
fn requests_are_refused_with_their_id_and_room() {
    let mut b = Bench::new(|c| c.max_subscriptions = 2);
    let a = b.open(0, "proto=2&userId=a&room=r1");
    b.take(a);
    let cases = [
        (
            json!({"type":"chat","id":1,"roomId":"zz","content":"x"}),
            "not_subscribed",
            Some("zz"),
        ),
        (
            json!({"type":"typing","id":2,"roomId":"zz"}),
            "not_subscribed",
            Some("zz"),
        ),
        (
            json!({"type":"read","id":3,"roomId":"zz","seq":1}),
            "not_subscribed",
            Some("zz"),
        ),
        (
            json!({"type":"unsubscribe","id":4,"roomId":"zz"}),
            "not_subscribed",
            Some("zz"),
        ),
        (
            json!({"type":"subscribe","id":5,"roomId":"r1"}),
            "already_subscribed",
            Some("r1"),
        ),
        (json!({"type":"subscribe","id":6}), "room_required", None),
        (
            json!({"type":"subscribe","id":7,"roomId":"a/b"}),
            "invalid_room",
            Some("a/b"),
        ),
        (
            json!({"type":"join","id":8,"roomId":"r1"}),
            "invalid_type",
            Some("r1"),
        ),
        (
            json!({"type":"read","id":9,"roomId":"r1","seq":-4}),
            "invalid_seq",
            Some("r1"),
        ),
        (
            json!({"type":"chat","id":10,"roomId":"r1","content":" "}),
            "empty_content",
            Some("r1"),
        ),
        (
            json!({"type":"chat","id":11,"roomId":"r1","content":"x","clientMsgId":""}),
            "invalid_client_msg_id",
            Some("r1"),
        ),
    ];
    for (frame, code, room) in cases {
        let id = frame["id"].clone();
        b.send(1, a, frame);
        let got = b.take(a);
        assert_eq!(got.len(), 1, "{code}: {got:?}");
        assert_eq!(got[0]["type"], "error");
        assert_eq!(got[0]["code"], code);
        assert_eq!(got[0]["id"], id, "{code}");
        assert_eq!(
            got[0]["roomId"],
            room.map_or(Value::Null, |r| json!(r)),
            "{code}"
        );
    }
    b.hub
        .handle_frame(at(2), a, Inbound::Text(b"{\"type\":\"chat\""));
    b.pump(2);
    let got = b.take(a);
    assert_eq!(
        (&got[0]["code"], &got[0]["id"]),
        (&json!("invalid_json"), &Value::Null)
    );
    b.send(3, a, json!({"type":"subscribe","id":12,"roomId":"r2"}));
    assert_eq!(b.types(a), ["subscribed"]);
    b.send(4, a, json!({"type":"subscribe","id":13,"roomId":"r3"}));
    let got = b.take(a);
    assert_eq!(
        (&got[0]["code"], &got[0]["id"]),
        (&json!("too_many_subscriptions"), &json!(13))
    );
    // A v1 connection keeps v1's answer to a v2 frame.
    let v1 = b.open(5, "room=r1");
    b.take(v1);
    b.send(6, v1, json!({"type":"subscribe","roomId":"r2"}));
    let got = b.take(v1);
    assert_eq!(got[0]["code"], "invalid_type");
    assert!(got[0].get("id").is_none());
}

#[test]
fn unsubscribe_ends_the_room_and_several_rooms_share_a_connection() {
    let mut b = Bench::new(|c| c.presence = false);
    let a = b.open(0, "proto=2&userId=a");
    b.take(a);
    for (i, r) in ["r1", "r2", "r3"].iter().enumerate() {
        b.send(1, a, json!({"type":"subscribe","id":i,"roomId":r}));
    }
    assert_eq!(b.types(a), ["subscribed", "subscribed", "subscribed"]);
    let v1 = b.open(2, "room=r2&userId=v");
    b.take(v1);
    b.send(3, v1, json!({"type":"chat","content":"to r2"}));
    b.send(3, a, chat(1, "r3", "to r3", None));
    let got = b.take(a);
    let rooms: Vec<_> = got
        .iter()
        .map(|v| (v["type"].clone(), v["roomId"].clone()))
        .collect();
    assert_eq!(
        rooms,
        [
            (json!("chat"), json!("r2")),
            (json!("chat"), json!("r3")),
            (json!("ack"), json!("r3"))
        ]
    );
    b.send(4, a, json!({"type":"unsubscribe","id":5,"roomId":"r2"}));
    let got = b.take(a);
    assert_eq!(got, [json!({"type":"unsubscribed","id":5,"roomId":"r2"})]);
    b.send(5, v1, json!({"type":"chat","content":"after"}));
    assert!(
        b.take(a).is_empty(),
        "nothing from a room after unsubscribed"
    );
    assert_eq!(b.hub.owned["r2"].connections, 1, "the owner knows it left");
    // Subscribing again gets the room afresh.
    b.send(6, a, json!({"type":"subscribe","id":6,"roomId":"r2"}));
    let got = b.take(a);
    assert_eq!(
        (&got[0]["type"], &got[0]["seq"]),
        (&json!("subscribed"), &json!(2))
    );
    b.close(7, a);
    assert_eq!(b.hub.owned["r2"].connections, 1);
    assert_eq!(
        b.hub.owned["r1"].connections, 0,
        "every subscription leaves on close"
    );
}

#[test]
fn since_with_the_epoch_recovers_exactly_what_was_missed() {
    let mut b = Bench::new(|c| {
        c.presence = false;
        c.history_size = 5;
    });
    let v1 = b.open(0, "room=r&userId=v");
    for i in 1..=3 {
        b.send(1, v1, json!({"type":"chat","content":format!("m{i}")}));
    }
    let a = b.open(2, "proto=2&userId=a&room=r");
    let got = b.take(a);
    let epoch = got[1]["epoch"].as_str().unwrap().to_owned();
    assert_eq!(epoch.len(), 12);
    b.close(3, a);
    for i in 4..=6 {
        b.send(4, v1, json!({"type":"chat","content":format!("m{i}")}));
    }
    let q = format!("proto=2&userId=a&room=r&since=3&epoch={epoch}");
    let a = b.open(5, &q);
    let got = b.take(a);
    assert_eq!(
        (&got[1]["recovered"], &got[1]["seq"]),
        (&json!(true), &json!(6))
    );
    let seqs: Vec<_> = got[2..]
        .iter()
        .map(|v| v["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [4, 5, 6], "exactly the missed ones");
    // Another epoch, or a since older than the ring: the backlog, not recovered.
    b.send(6, a, json!({"type":"unsubscribe","roomId":"r"}));
    b.take(a);
    b.send(
        7,
        a,
        json!({"type":"subscribe","roomId":"r","since":3,"epoch":"other"}),
    );
    let got = b.take(a);
    assert_eq!(got[0]["recovered"], false);
    assert_eq!(got.len(), 1 + 5, "the backlog (the ring of 5)");
    b.send(8, a, json!({"type":"unsubscribe","roomId":"r"}));
    b.send(
        8,
        a,
        json!({"type":"subscribe","roomId":"r","since":0,"epoch":epoch}),
    );
    let got = b.take(a);
    assert_eq!(got[1]["recovered"], false, "m1 is no longer retained");
    b.send(9, a, json!({"type":"unsubscribe","roomId":"r"}));
    b.send(
        9,
        a,
        json!({"type":"subscribe","roomId":"r","since":6,"epoch":epoch}),
    );
    let got = b.take(a);
    assert_eq!(
        (&got[1]["recovered"], got.len()),
        (&json!(true), 2),
        "nothing missed"
    );
    b.send(10, a, json!({"type":"unsubscribe","roomId":"r"}));
    b.send(
        10,
        a,
        json!({"type":"subscribe","roomId":"r","since":60,"epoch":epoch}),
    );
    assert_eq!(b.take(a)[1]["recovered"], false, "a since from the future");
}

#[test]
fn a_forgotten_room_comes_back_with_another_epoch() {
    let mut b = Bench::new(|c| {
        c.presence = false;
        c.max_idle_rooms = 0;
    });
    let a = b.open(0, "proto=2&userId=a&room=r");
    let first = b.take(a)[1]["epoch"].clone();
    b.close(1, a);
    assert!(!b.hub.owned.contains_key("r"), "forgotten");
    let a = b.open(2, "proto=2&userId=a&room=r");
    assert_ne!(b.take(a)[1]["epoch"], first);
}

#[test]
fn presence_is_per_user_and_coalesced_per_interval() {
    let mut b = Bench::new(|_| {});
    let a = b.open(0, "proto=2&userId=a&username=A&room=r");
    let v1 = b.open(0, "room=r&userId=old");
    b.take(a);
    assert_eq!(b.types(v1), ["join"], "v1 keeps its own join frames");
    b.tick(200);
    let got = b.take(a);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["type"], "presence");
    assert_eq!(got[0]["online"], 2);
    let joined: Vec<_> = got[0]["joined"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userId"].clone())
        .collect();
    assert_eq!(joined, [json!("a"), json!("old")]);
    // Two connections of bob, then carol who comes and goes, within one interval.
    let b1 = b.open(300, "proto=2&userId=bob&username=Bob&room=r");
    let _b2 = b.open(310, "proto=2&userId=bob&username=Bob&room=r");
    let c = b.open(320, "proto=2&userId=carol&room=r");
    b.close(330, c);
    b.take(a);
    b.tick(499);
    assert!(b.take(a).is_empty(), "not before the interval ends");
    b.tick(500);
    let got = b.take(a);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["joined"], json!([{"userId":"bob","username":"Bob"}]));
    assert_eq!(got[0]["left"], json!([]), "carol came and went");
    assert_eq!(got[0]["online"], 3);
    // Bob's first connection closing changes nothing; his last one does.
    b.close(600, b1);
    b.tick(900);
    assert!(b.take(a).is_empty());
    b.close(1000, _b2);
    b.tick(1200);
    let got = b.take(a);
    assert_eq!(got[0]["left"][0]["userId"], "bob");
    assert_eq!(
        got[0]["left"][0]["lastSeen"],
        UnixMillis(1_795_257_001_000).to_rfc3339().as_str()
    );
    assert!(
        b.take(v1).iter().all(|v| v["type"] != "presence"),
        "v1 never gets presence"
    );
}

#[test]
fn above_the_bound_only_the_count_goes_out_at_most_once_a_second() {
    let mut b = Bench::new(|c| c.presence_max_members = 2);
    let a = b.open(0, "proto=2&userId=a&room=r");
    b.open(0, "proto=2&userId=b&room=r");
    b.tick(200);
    b.take(a);
    for (i, u) in ["c", "d", "e"].iter().enumerate() {
        b.open(300 + i as u64, &format!("proto=2&userId={u}&room=r"));
    }
    b.tick(600);
    let got = b.take(a);
    assert_eq!(got, [json!({"type":"presence","roomId":"r","online":5})]);
    let f = b.open(700, "proto=2&userId=f&room=r");
    b.tick(1000);
    assert!(b.take(a).is_empty(), "a second since the last count");
    b.tick(1600);
    assert_eq!(b.take(a)[0]["online"], 6);
    // Back to the same number within the window: nothing to say.
    b.close(1700, f);
    b.open(1710, "proto=2&userId=g&room=r");
    b.tick(3000);
    assert!(b.take(a).is_empty());
    // Typing is off in a room this big.
    b.send(3001, a, json!({"type":"typing","roomId":"r"}));
    b.tick(4000);
    assert!(b.take(a).is_empty());
}

#[test]
fn typing_is_the_whole_set_coalesced_and_expiring() {
    let mut b = Bench::new(|_| {});
    let a = b.open(0, "proto=2&userId=a&username=A&room=r");
    let c = b.open(0, "proto=2&userId=c&username=C&room=r");
    b.tick(200);
    b.take(a);
    b.take(c);
    b.send(1000, a, json!({"type":"typing","roomId":"r"}));
    let got = b.take(c);
    assert_eq!(
        got,
        [json!({"type":"typing","roomId":"r","users":[{"userId":"a","username":"A"}],"count":1})]
    );
    assert_eq!(b.take(a).len(), 1, "their own typing too");
    b.send(1100, c, json!({"type":"typing","roomId":"r"}));
    assert!(b.take(a).is_empty(), "within 250 ms of the last frame");
    b.tick(1250);
    assert_eq!(b.take(a)[0]["users"].as_array().unwrap().len(), 2);
    // A chat message ends the sender's typing.
    b.send(2000, c, chat(1, "r", "done", None));
    let got = b.take(a);
    assert_eq!(got[0]["type"], "chat");
    assert_eq!(got[1]["users"], json!([{"userId":"a","username":"A"}]));
    // 6 s after a's last typing, it expires.
    b.tick(6999);
    assert!(b.take(a).is_empty());
    assert!(
        matches!(b.hub.poll_output(), Output::Timeout(t) if t == at(7000).mono),
        "the expiry is the next timer"
    );
    b.tick(7000);
    assert_eq!(
        b.take(a),
        [json!({"type":"typing","roomId":"r","users":[],"count":0})]
    );
    // A newcomer hears who types at once, after its backlog.
    b.send(7100, c, json!({"type":"typing","roomId":"r"}));
    b.take(a);
    let n = b.open(7200, "proto=2&userId=n&room=r");
    let got = b.take(n);
    assert_eq!(
        got.last().unwrap(),
        &json!({"type":"typing","roomId":"r","users":[{"userId":"c","username":"C"}],"count":1})
    );
    // A typist whose last connection closes stops typing then, not 6 s later.
    b.close(7300, c);
    b.tick(7400);
    let got = b.take(a);
    assert!(
        got.contains(&json!({"type":"typing","roomId":"r","users":[],"count":0})),
        "{got:?}"
    );
    // The typing bucket: three at once, then one a second; the rest dropped and counted.
    for _ in 0..5 {
        b.send(8000, a, json!({"type":"typing","roomId":"r","stop":true}));
    }
    assert_eq!(b.hub.counters.typing_dropped, 2);
}

#[test]
fn a_crowd_typing_is_ten_names_and_a_count() {
    let mut b = Bench::new(|_| {});
    let l = b.open(0, "proto=2&userId=listener&room=r");
    let typists: Vec<ConnId> = (0..30)
        .map(|i| b.open(0, &format!("proto=2&userId=t{i:02}&room=r")))
        .collect();
    b.take(l);
    for (i, &t) in typists.iter().enumerate() {
        b.send(1000 + i as u64, t, json!({"type":"typing","roomId":"r"}));
    }
    b.tick(2000);
    let last = b
        .take(l)
        .into_iter()
        .rfind(|f| f["type"] == "typing")
        .unwrap();
    let names: Vec<&str> = last["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userId"].as_str().unwrap())
        .collect();
    let first_ten: Vec<String> = (0..10).map(|i| format!("t{i:02}")).collect();
    assert_eq!(names, first_ten, "the first ten by id");
    assert_eq!(last["count"], 30);
}

#[test]
fn read_markers_move_forward_clamped_and_coalesced() {
    let mut b = Bench::new(|c| c.presence = false);
    let a = b.open(0, "proto=2&userId=a&room=r");
    let c = b.open(0, "proto=2&userId=c&room=r");
    for i in 0..5 {
        b.send(1, a, chat(i, "r", "m", None));
    }
    b.take(a);
    b.take(c);
    b.send(10, a, json!({"type":"read","roomId":"r","seq":3}));
    assert_eq!(
        b.take(c),
        [json!({"type":"read","roomId":"r","userId":"a","seq":3})]
    );
    b.send(20, a, json!({"type":"read","roomId":"r","seq":2}));
    b.send(30, a, json!({"type":"read","roomId":"r","seq":99}));
    assert!(b.take(c).is_empty(), "coalesced: 2 s per user and room");
    b.tick(2010);
    assert_eq!(
        b.take(c),
        [json!({"type":"read","roomId":"r","userId":"a","seq":5})],
        "clamped"
    );
    b.send(2100, a, json!({"type":"read","roomId":"r","seq":4}));
    b.tick(5000);
    assert!(b.take(c).is_empty(), "never backwards");
    let a2 = b.open(5001, "proto=2&userId=a&room=r");
    assert_eq!(b.take(a2)[1]["lastRead"], 5);
}

#[test]
fn users_presence_knows_online_and_last_seen() {
    let mut b = Bench::new(|_| {});
    let a = b.open(0, "proto=2&userId=a");
    let gone = b.open(0, "room=x&userId=gone");
    b.close(500, gone);
    b.hub.handle_query(
        at(600),
        QueryId(1),
        Query::UsersPresence {
            users: vec!["a".into(), "gone".into(), "never".into()],
        },
    );
    let mut answer = None;
    loop {
        match b.hub.poll_output() {
            Output::Reply { answer: a, .. } => answer = Some(a),
            Output::Timeout(_) => break,
            _ => {}
        }
    }
    let Some(Answer::UsersPresence(users)) = answer else {
        panic!("{answer:?}")
    };
    let seen = |i: usize| (users[i].online, users[i].last_seen);
    assert_eq!(seen(0), (true, None));
    assert_eq!(seen(1), (false, Some(at(500).wall)));
    assert_eq!(seen(2), (false, None));
    let _ = a;
}

/// Keeps every state write.
struct StateRecorder(std::sync::Arc<std::sync::Mutex<Vec<StateWrite>>>);

impl PersistSink for StateRecorder {
    fn try_push(&mut self, _: PersistRecord) -> Result<(), PersistRecord> {
        Ok(())
    }
    fn try_push_state(&mut self, write: StateWrite) -> Result<(), StateWrite> {
        self.0.lock().unwrap().push(write);
        Ok(())
    }
}

#[test]
fn read_markers_and_last_seen_go_to_the_store_and_come_back() {
    let writes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut cfg = HubConfig::new(WorkerId(0), 1);
    cfg.presence = false;
    cfg.durable = true;
    let sink = Box::new(StateRecorder(writes.clone()));
    let mut b = Bench {
        hub: Hub::with_persist(cfg, ConnectionGauge::new(10), sink),
        got: HashMap::new(),
        checks: Vec::new(),
    };
    let a = b.open(0, "proto=2&userId=a&room=r");
    // The room's state, as the store kept it: seq 9, a's marker at 7, c's at 9.
    b.hub.handle_room_loaded(
        at(1),
        "r",
        Some(StoredRoom {
            last_seq: 9,
            recent: Vec::new(),
            read_markers: vec![("a".into(), 7), ("c".into(), 9)],
            room: None,
            epoch: None,
        }),
    );
    b.pump(1);
    let got = b.take(a);
    assert_eq!(
        (&got[1]["seq"], &got[1]["lastRead"]),
        (&json!(9), &json!(7))
    );
    b.send(2, a, json!({"type":"read","roomId":"r","seq":6}));
    assert!(
        writes.lock().unwrap().is_empty(),
        "behind the stored marker: nothing"
    );
    b.send(3, a, json!({"type":"read","roomId":"r","seq":8}));
    b.close(4, a);
    assert_eq!(
        *writes.lock().unwrap(),
        [
            StateWrite::ReadMarker {
                room_id: "r".into(),
                user_id: "a".into(),
                seq: 8
            },
            StateWrite::LastSeen {
                user_id: "a".into(),
                at: at(4).wall
            }
        ]
    );
}

/// `subscribed.users` is bounded like the presence endpoint's list: a room of more
/// than 1,000 users (within a larger PRESENCE_MAX_MEMBERS) gets none.
#[test]
fn subscribed_lists_the_users_of_rooms_of_at_most_a_thousand() {
    let mut c = HubConfig::new(WorkerId(0), 1);
    c.presence_max_members = 5000;
    let mut b = Bench {
        hub: Hub::new(c, ConnectionGauge::new(2000)),
        got: HashMap::new(),
        checks: Vec::new(),
    };
    let subscribed = |b: &mut Bench, conn| {
        b.take(conn)
            .into_iter()
            .find(|f| f["type"] == "subscribed")
            .expect("subscribed")
    };
    let mut conns = Vec::new();
    for i in 0..super::MAX_PRESENCE_USERS {
        conns.push(b.open(0, &format!("proto=2&userId=u{i}&room=r")));
    }
    let s = subscribed(&mut b, conns[999]);
    assert!(s["users"].is_array(), "1,000 online: {}", s["online"]);
    let over = b.open(0, "proto=2&userId=u1000&room=r");
    let s = subscribed(&mut b, over);
    assert_eq!(s["online"], 1001);
    assert!(s.get("users").is_none(), "1,001 online");
    b.close(10, over);
    b.close(10, conns[999]);
    b.tick(1000);
    let back = b.open(1000, "proto=2&userId=u1001&room=r");
    let s = subscribed(&mut b, back);
    assert_eq!(
        s["users"].as_array().map(Vec::len),
        Some(999),
        "{}",
        s["online"]
    );
}

/// A bench with v2 connections of alice (who sends) and rita (who listens), both in `dev`.
fn alice_and_rita_in_dev() -> (Bench, ConnId, ConnId) {
    let mut b = Bench::new(|c| c.presence = false);
    let a = b.open(0, "proto=2&userId=alice");
    let r = b.open(0, "proto=2&userId=rita");
    for c in [a, r] {
        b.send(1, c, json!({"type":"subscribe","roomId":"dev"}));
        b.take(c);
    }
    (b, a, r)
}

fn facts(room: &str, name: &str, declared: u64, stored: Option<u64>) -> Option<FileFacts> {
    Some(FileFacts {
        room: room.into(),
        name: name.into(),
        content_type: "image/png".into(),
        declared,
        stored,
    })
}

#[test]
fn a_send_with_files_waits_for_their_check_and_keeps_the_connection_order() {
    let (mut b, a, r) = alice_and_rita_in_dev();
    let pic = json!({"type":"chat","id":1,"roomId":"dev","content":"",
        "attachments":[{"fileId":"f1"},{"fileId":"f2"}]});
    b.send(2, a, pic);
    b.send(3, a, chat(2, "dev", "look at this", None));
    assert!(
        b.take(r).is_empty(),
        "nothing goes out before the files are checked"
    );
    assert_eq!(b.checks.len(), 1, "one check per send, for all its files");
    let (check, room, files) = b.checks.remove(0);
    assert_eq!((&*room, files), ("dev", vec!["f1".into(), "f2".into()]));
    let found = vec![
        facts("dev", "a.png", 10, Some(10)),
        facts("dev", "b.png", 9, Some(5)),
    ];
    b.hub.handle_files_checked(at(4), check, Some(found));
    b.pump(4);
    let got = b.take(r);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0]["seq"], 1);
    assert_eq!(
        got[0]["attachments"],
        json!([{"fileId":"f1","name":"a.png","contentType":"image/png","size":10},
               {"fileId":"f2","name":"b.png","contentType":"image/png","size":5}])
    );
    assert_eq!(
        (&got[1]["content"], &got[1]["seq"]),
        (&json!("look at this"), &json!(2)),
        "the caption sent after the picture comes after it"
    );
    assert!(got[1].get("attachments").is_none(), "no files, no field");
    let acks: Vec<_> = b
        .take(a)
        .into_iter()
        .filter(|f| f["type"] == "ack")
        .collect();
    assert_eq!(
        (acks[0]["id"].clone(), acks[1]["id"].clone()),
        (json!(1), json!(2))
    );
}

#[test]
fn files_of_another_room_missing_or_larger_than_declared_are_refused() {
    let mut b = Bench::new(|c| c.presence = false);
    let a = b.open(0, "proto=2&userId=alice");
    b.send(1, a, json!({"type":"subscribe","roomId":"dev"}));
    b.take(a);
    let cases: [(Option<Vec<Option<FileFacts>>>, &str); 5] = [
        (Some(vec![facts("ops", "x", 1, Some(1))]), "file_not_found"),
        (Some(vec![facts("dev", "x", 1, None)]), "file_not_found"),
        (Some(vec![None]), "file_not_found"),
        (
            Some(vec![facts("dev", "x", 1_000, Some(1_000_000))]),
            "file_too_large",
        ),
        (None, "files_unavailable"),
    ];
    for (i, (answer, code)) in cases.into_iter().enumerate() {
        let id = i as u32 + 10;
        let frame = json!({"type":"chat","id":id,"roomId":"dev","attachments":[{"fileId":"f"}]});
        b.send(2, a, frame);
        let (check, ..) = b.checks.remove(0);
        b.hub.handle_files_checked(at(3), check, answer);
        b.pump(3);
        let got = b.take(a);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (
                &got[0]["type"],
                &got[0]["code"],
                &got[0]["id"],
                &got[0]["roomId"]
            ),
            (&json!("error"), &json!(code), &json!(id), &json!("dev"))
        );
    }
    // Nothing is held after a refusal: the next plain send goes at once.
    b.send(4, a, chat(20, "dev", "still here", None));
    let got = b.take(a);
    assert_eq!(got[0]["content"], "still here");
}

#[test]
fn held_sends_are_bounded_and_forgotten_with_their_connection() {
    let mut b = Bench::new(|c| c.presence = false);
    let a = b.open(0, "proto=2&userId=alice");
    b.send(1, a, json!({"type":"subscribe","roomId":"dev"}));
    b.take(a);
    for i in 0..MAX_HELD_SENDS as u32 + 1 {
        let f = json!({"type":"chat","id":i,"roomId":"dev","attachments":[{"fileId":"f"}]});
        b.send(2, a, f);
    }
    let got = b.take(a);
    assert_eq!(
        got.len(),
        1,
        "only the one past the bound is answered: {got:?}"
    );
    assert_eq!(
        (&got[0]["code"], &got[0]["id"]),
        (&json!("rate_limited"), &json!(MAX_HELD_SENDS))
    );
    assert_eq!(b.checks.len(), MAX_HELD_SENDS);
    b.close(3, a);
    let (check, ..) = b.checks.remove(0);
    b.hub
        .handle_files_checked(at(4), check, Some(vec![facts("dev", "x", 1, Some(1))]));
    b.pump(4);
    assert!(
        b.take(a).is_empty(),
        "a closed connection's sends are dropped"
    );
    assert_eq!(b.hub.counters.messages, 0, "nothing was sequenced");
    assert!(b.hub.held.is_empty());
}

proptest::proptest! {
    /// Whatever the mix of sends with and without files, and in whatever order the file
    /// store answers: the room hears exactly the accepted sends, in the order the
    /// connection made them, with seqs from 1 without gaps; each refused send is answered
    /// with its own `id`.
    #[test]
    fn held_sends_keep_the_connection_order_whatever_the_answers(
        sends in proptest::collection::vec((proptest::bool::ANY, 0u8..3), 1..=MAX_HELD_SENDS),
        order in proptest::collection::vec(proptest::num::usize::ANY, MAX_HELD_SENDS),
    ) {
        let (mut b, a, r) = alice_and_rita_in_dev();
        for (i, (files, _)) in sends.iter().enumerate() {
            let mut f = chat(i as u32, "dev", &format!("m{i}"), None);
            if *files {
                f["attachments"] = json!([{"fileId": format!("f{i}")}]);
            }
            b.send(2, a, f);
        }
        // Answer the checks in a shuffled order: ok, missing, or larger than declared.
        let mut checks = std::mem::take(&mut b.checks);
        let mut k = 0;
        while !checks.is_empty() {
            let (id, _, files) = checks.remove(order[k] % checks.len());
            k += 1;
            let i: usize = files[0][1..].parse().unwrap();
            let stored = match sends[i].1 { 0 => Some(1), 1 => None, _ => Some(2) };
            b.hub.handle_files_checked(at(3), id, Some(vec![facts("dev", "x", 1, stored)]));
            b.pump(3);
        }
        let accepted: Vec<String> = sends
            .iter()
            .enumerate()
            .filter(|(_, (files, verdict))| !files || *verdict == 0)
            .map(|(i, _)| format!("m{i}"))
            .collect();
        let heard: Vec<Value> = b.take(r).into_iter().filter(|f| f["type"] == "chat").collect();
        let contents: Vec<&str> = heard.iter().map(|f| f["content"].as_str().unwrap()).collect();
        proptest::prop_assert_eq!(&contents, &accepted);
        let seqs: Vec<u64> = heard.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
        proptest::prop_assert_eq!(seqs, (1..=accepted.len() as u64).collect::<Vec<_>>());
        let mut refused: Vec<u64> = b
            .take(a)
            .iter()
            .filter(|f| f["type"] == "error")
            .map(|f| f["id"].as_u64().unwrap())
            .collect();
        refused.sort_unstable();
        let want: Vec<u64> = sends
            .iter()
            .enumerate()
            .filter(|(_, (files, verdict))| *files && *verdict != 0)
            .map(|(i, _)| i as u64)
            .collect();
        proptest::prop_assert_eq!(refused, want);
        proptest::prop_assert!(b.hub.held.is_empty());
    }
}
