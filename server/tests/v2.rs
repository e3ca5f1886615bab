//! Protocol v2 (docs/PROTOCOL.md §7) against the real binary, one test per frame and per
//! error: every test runs with WORKERS=1 and WORKERS=2 (with two, on a room of each
//! worker, so that whichever worker a connection lands on, one of its rooms is owned by
//! the other), and the key ones (implicit subscribe, backlog, many rooms, recovery,
//! epochs, acks and duplicates) also with STORE=dynamodb against dynalite.
//!
//! Frames are read as JSON values and checked field by field, as the contract names them.
//! Nothing sleeps: a test reads with the client's timeouts, or polls an endpoint.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::matrix::{each_run, Store, BOTH, MEMORY};
use common::v2::{
    self, assert_ack, assert_chat, assert_error, is_timestamp, named, room_on, subscribed_state,
    users, QUIET, V2,
};
use common::{dynamodb_env, Client, Server};
use hubbub_core::protocol::ServerFrame;
use hubbub_test_support::dynalite::Dynalite;
use hubbub_test_support::free_port;
use hubbub_test_support::poll::wait_until;
use hubbub_test_support::process::Process;
use hubbub_test_support::ws::WsClient;

fn subscribe_frame(id: u32, room: &str) -> Value {
    json!({"type": "subscribe", "id": id, "roomId": room})
}

fn chat_frame(id: u32, room: &str, content: &str) -> Value {
    json!({"type": "chat", "id": id, "roomId": room, "content": content})
}

fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A string id, or an integer one.
fn is_id(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty()) || v.is_u64()
}

/// A `read` frame's `(type, roomId, userId, seq)`.
fn read_of(frame: &Value) -> (&str, &str, &str, u64) {
    (
        frame["type"].as_str().unwrap_or_default(),
        frame["roomId"].as_str().unwrap_or_default(),
        frame["userId"].as_str().unwrap_or_default(),
        frame["seq"].as_u64().unwrap_or(u64::MAX),
    )
}

/// The `limits` of a `hello`.
fn assert_limits(hello: &Value, subscriptions: u64) {
    let limits = &hello["limits"];
    assert_eq!(
        (
            limits["subscriptions"].as_u64(),
            limits["contentChars"].as_u64(),
            limits["frameBytes"].as_u64(),
            limits["clientMsgIdChars"].as_u64(),
        ),
        (Some(subscriptions), Some(1000), Some(8192), Some(64)),
        "hello's limits: {hello}"
    );
}

// ---------------------------------------------------------------------------------------
// Connecting: hello, the upgrade's rules, the implicit subscribe.

#[test]
fn hello_comes_first_with_the_user_the_node_and_the_limits() {
    each_run("hello", MEMORY, &[], |run| {
        let mut alice = run.connect("userId=alice&username=%20Alice%20");
        let h = alice.hello.clone();
        assert_eq!(h["proto"], 2, "{h}");
        assert_eq!(
            (h["userId"].as_str(), h["username"].as_str()),
            (Some("alice"), Some("Alice")),
            "the user from the URL, the name trimmed: {h}"
        );
        assert_eq!(h["node"], "hubbub", "NODE_ID's default: {h}");
        assert!(is_id(&h["connectionId"]), "a connectionId: {h}");
        assert_limits(&h, 64);
        // No room in the URL: no subscription at all (v2 has no default room), so nothing
        // follows the hello.
        alice.expect_nothing(300);
        let mut anon = run.connect("");
        assert_eq!(
            (
                anon.hello["userId"].as_str(),
                anon.hello["username"].as_str()
            ),
            (Some("anonymous"), Some("Anonymous")),
            "the defaults: {}",
            anon.hello
        );
        assert_ne!(
            anon.hello["connectionId"], h["connectionId"],
            "each connection its own id"
        );
        anon.send(chat_frame(1, "global", "x"));
        assert_error(&anon.next(), "not_subscribed", Some(1), Some("global"));
    });
    for workers in [1, 2] {
        let server = Server::start(
            workers,
            &[("NODE_ID", "node-7"), ("MAX_SUBSCRIPTIONS", "3")],
        );
        let c = V2::connect(&server, "userId=u");
        assert_eq!(c.hello["node"], "node-7", "NODE_ID: {}", c.hello);
        assert_limits(&c.hello, 3);
    }
}

#[test]
fn the_upgrade_refuses_a_bad_proto_or_epoch_and_keeps_the_v1_rules() {
    for workers in [1, 2] {
        let server = Server::start(workers, &[]);
        let refused = |query: &str| match Client::connect(&server.url(query), &[]) {
            Ok(_) => panic!("WORKERS={workers}: {query} was admitted"),
            Err((status, body)) => {
                let json: Value =
                    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{query}: {e}: {body}"));
                assert!(
                    json["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "{query}: {json}"
                );
                (
                    status,
                    json["error"].as_str().unwrap_or_default().to_owned(),
                )
            }
        };
        for query in [
            "proto=3",
            "proto=0",
            "proto=abc",
            "proto=",
            "proto=2&proto=3",
            "proto=3&room=r",
        ] {
            assert_eq!(
                refused(query),
                (400, "invalid_proto".into()),
                "WORKERS={workers}: {query}"
            );
        }
        let long = "e".repeat(33);
        assert_eq!(
            refused(&format!("proto=2&room=r&since=1&epoch={long}")),
            (400, "invalid_epoch".into()),
            "an epoch over 32 characters"
        );
        assert_eq!(refused("proto=2&room=a%2Fb"), (400, "invalid_room".into()));
        assert_eq!(
            refused("proto=2&room=r&since=x"),
            (400, "invalid_since".into())
        );
        // 32 characters pass (and are just not the room's epoch).
        let mut ok = V2::connect(&server, &format!("room=r&since=1&epoch={}", "e".repeat(32)));
        let s = ok.expect("subscribed");
        assert!(!s["recovered"].as_bool().unwrap_or(true), "{s}");
        // proto=1 is v1: no hello, its own join first.
        let mut v1 = server.connect("proto=1&userId=one&room=r1");
        match v1.frame() {
            ServerFrame::Join(j) => assert_eq!(j.user_id, "one"),
            other => panic!("proto=1 is v1, its first frame its own join: {other:?}"),
        }
    }
    // Token auth applies to v2 as to v1: the token names the user.
    let secret = "a-legacy-secret-of-32-bytes-long!";
    let server = Server::start(2, &[("AUTH_SECRET", secret)]);
    match Client::connect(&server.url("proto=2&userId=x"), &[]) {
        Ok(_) => panic!("a v2 connection without a token was admitted"),
        Err((status, body)) => assert_eq!(status, 401, "{body}"),
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let token = hubbub_core::auth::sign(secret.as_bytes(), "tok-user", now + 3600);
    let c = V2::connect(&server, &format!("userId=someone-else&token={token}"));
    assert_eq!(c.hello["userId"], "tok-user", "{}", c.hello);
    // §1: a repeated parameter takes its last value, so this one is v2.
    for workers in [1, 2] {
        let server = Server::start(workers, &[]);
        let mut last = WsClient::try_connect(&server.url("proto=3&proto=2&userId=last"), &[])
            .unwrap_or_else(|r| {
                panic!(
                    "WORKERS={workers}: proto=3&proto=2 is proto=2 (the last value counts), \
                     refused with {} {}",
                    r.status, r.body
                )
            });
        let hello = last.next_json();
        assert_eq!(
            (hello["type"].as_str(), hello["userId"].as_str()),
            (Some("hello"), Some("last")),
            "{hello}"
        );
    }
}

#[test]
fn a_room_in_the_url_is_an_implicit_first_subscribe_without_id() {
    each_run("implicit", BOTH, &[("RATE_LIMIT_PER_SEC", "0")], |run| {
        for room in run.rooms("implicit") {
            let mut bob = run.connect("userId=bob&username=Bob");
            let sb = bob.subscribe(1, &room);
            assert_eq!(subscribed_state(&sb), (0, false, 0, 1), "a new room: {sb}");
            bob.chat_acked(2, &room, "one", None);
            bob.chat_acked(3, &room, "two", None);
            let mut alice = run.connect(&format!("userId=alice&username=Alice&room={room}"));
            let s = alice.expect("subscribed");
            assert!(
                s.get("id").is_none(),
                "an implicit subscribe has no id: {s}"
            );
            assert_eq!(s["roomId"], room.as_str(), "{s}");
            assert_eq!(s["epoch"], sb["epoch"], "one epoch per room: {s} {sb}");
            assert_eq!(
                subscribed_state(&s),
                (2, false, 0, 2),
                "(seq, recovered, lastRead, online): {s}"
            );
            assert_chat(&alice.expect("chat"), &room, 1, "one");
            assert_chat(&alice.expect("chat"), &room, 2, "two");
            bob.chat_acked(4, &room, "three", None);
            assert_chat(&alice.expect("chat"), &room, 3, "three");
            // A subscription like any other.
            alice.send(subscribe_frame(5, &room));
            assert_error(&alice.next(), "already_subscribed", Some(5), Some(&room));
            let (chat, _) = alice.chat_acked(6, &room, "from alice", None);
            assert_eq!(chat["seq"], 4, "{chat}");
            assert_chat(&bob.expect("chat"), &room, 4, "from alice");
        }
    });
}

// ---------------------------------------------------------------------------------------
// subscribe, unsubscribe and the order of chat frames.

#[test]
fn subscribe_answers_subscribed_then_the_backlog_then_live() {
    let env = [("RATE_LIMIT_PER_SEC", "0"), ("BACKLOG_SIZE", "3")];
    each_run("backlog", BOTH, &env, |run| {
        for room in run.rooms("backlog") {
            let mut bob = run.connect("userId=bob&username=Bob");
            let epoch = bob.subscribe(1, &room)["epoch"].clone();
            for i in 1..=5 {
                bob.chat_acked(10 + i, &room, &format!("m{i}"), None);
            }
            let mut alice = run.connect("userId=alice&username=Alice");
            let s = alice.subscribe(7, &room);
            assert_eq!(s["epoch"], epoch, "one epoch per room: {s}");
            assert_eq!(
                subscribed_state(&s),
                (5, false, 0, 2),
                "(seq, recovered, lastRead, online): {s}"
            );
            // The newest BACKLOG_SIZE, oldest first.
            for seq in 3..=5 {
                let m = alice.expect("chat");
                assert_chat(&m, &room, seq, &format!("m{seq}"));
                assert_eq!(
                    (m["userId"].as_str(), m["username"].as_str()),
                    (Some("bob"), Some("Bob"))
                );
            }
            bob.chat_acked(20, &room, "live", None);
            assert_chat(&alice.expect("chat"), &room, 6, "live");
            // A room nobody wrote in: seq 0 and no backlog (the next chat is the own one).
            let fresh = format!("{room}-fresh");
            let s = alice.subscribe(8, &fresh);
            assert_eq!(subscribed_state(&s), (0, false, 0, 1), "{s}");
            let (chat, _) = alice.chat_acked(9, &fresh, "first", None);
            assert_eq!(chat["seq"], 1, "{chat}");
        }
    });
}

#[test]
fn one_connection_in_many_rooms_gets_each_room_in_seq_order_without_gap_or_duplicate() {
    each_run("many", BOTH, &[("RATE_LIMIT_PER_SEC", "0")], |run| {
        let rooms: Vec<String> = (0..4u16)
            .map(|i| room_on(&format!("many{i}"), i % run.workers, run.workers))
            .collect();
        let mut bob = run.connect("userId=bob");
        for (i, room) in rooms.iter().enumerate() {
            bob.subscribe(i as u32, room);
        }
        let mut id = 100;
        let mut send_round = |bob: &mut V2, round: u64| {
            for room in &rooms {
                bob.send(chat_frame(id, room, &format!("{room} #{round}")));
                id += 1;
            }
        };
        for round in 1..=3 {
            send_round(&mut bob, round);
        }
        let mut acks = 0;
        while acks < 12 {
            let f = bob.next();
            match f["type"].as_str() {
                Some("ack") => acks += 1,
                Some("chat") => {}
                _ => panic!("bob: {f}"),
            }
        }
        // Alice subscribes to the four at once while bob goes on writing.
        let mut alice = run.connect("userId=alice");
        for (i, room) in rooms.iter().enumerate() {
            alice.send(subscribe_frame(i as u32 + 1, room));
        }
        for round in 4..=10 {
            send_round(&mut bob, round);
        }
        let mut subscribed: HashMap<String, u64> = HashMap::new();
        let mut last: HashMap<String, u64> = HashMap::new();
        while !rooms.iter().all(|r| last.get(r) == Some(&10)) {
            let f = alice.next();
            let room = f["roomId"].as_str().unwrap_or_default().to_owned();
            let index = rooms
                .iter()
                .position(|r| *r == room)
                .unwrap_or_else(|| panic!("a frame of none of the rooms: {f}"));
            match f["type"].as_str() {
                Some("subscribed") => {
                    assert_eq!(f["id"], index + 1, "{f}");
                    let (seq, recovered, _, _) = subscribed_state(&f);
                    assert!((3..=10).contains(&seq) && !recovered, "{f}");
                    assert!(
                        subscribed.insert(room.clone(), seq).is_none(),
                        "one subscribed per room: {f}"
                    );
                    assert!(
                        !last.contains_key(&room),
                        "no chat of {room} before its subscribed"
                    );
                }
                Some("chat") => {
                    assert!(
                        subscribed.contains_key(&room),
                        "a chat before the room's subscribed: {f}"
                    );
                    let seq = last.get(&room).copied().unwrap_or(0) + 1;
                    assert_chat(&f, &room, seq, &format!("{room} #{seq}"));
                    last.insert(room, seq);
                }
                _ => panic!("unexpected {f}"),
            }
        }
        alice.expect_silence(200);
    });
}

#[test]
fn sixty_four_subscribes_at_once_are_all_answered() {
    each_run("sixtyfour", MEMORY, &[], |run| {
        let mut c = run.connect("userId=many");
        assert_limits(&c.hello, 64);
        for i in 0..64 {
            c.send(subscribe_frame(i, &format!("r64-{i}")));
        }
        let mut seen = HashSet::new();
        for _ in 0..64 {
            let s = c.expect("subscribed");
            let id = s["id"].as_u64().unwrap_or(u64::MAX);
            assert_eq!(s["roomId"], format!("r64-{id}"), "{s}");
            assert!(seen.insert(id), "one answer per subscribe: {s}");
        }
    });
}

#[test]
fn unsubscribe_answers_unsubscribed_and_nothing_of_the_room_follows() {
    each_run("unsub", MEMORY, &[("RATE_LIMIT_PER_SEC", "0")], |run| {
        let rooms = run.rooms("unsub");
        let pairs: Vec<(String, String)> = if run.workers == 1 {
            vec![(rooms[0].clone(), format!("{}-stay", rooms[0]))]
        } else {
            vec![
                (rooms[0].clone(), rooms[1].clone()),
                (format!("{}-2", rooms[1]), format!("{}-2", rooms[0])),
            ]
        };
        for (leave, stay) in pairs {
            eprintln!("   leave {leave}, stay in {stay}");
            let mut bob = run.connect("userId=bob");
            bob.subscribe(1, &leave);
            bob.subscribe(2, &stay);
            let mut alice = run.connect("userId=alice");
            alice.subscribe(1, &leave);
            alice.subscribe(2, &stay);
            bob.chat_acked(3, &leave, "l1", None);
            bob.chat_acked(4, &stay, "s1", None);
            let mut got: Vec<(String, u64)> = (0..2)
                .map(|_| {
                    let m = alice.expect("chat");
                    (
                        m["roomId"].as_str().unwrap_or_default().to_owned(),
                        m["seq"].as_u64().unwrap_or(0),
                    )
                })
                .collect();
            got.sort();
            let mut want = vec![(leave.clone(), 1), (stay.clone(), 1)];
            want.sort();
            assert_eq!(got, want);
            // One on its way as alice leaves: before the answer or not at all.
            bob.send(chat_frame(5, &leave, "l2"));
            alice.unsubscribe(9, &leave);
            bob.expect("chat");
            bob.expect("ack");
            // Nothing of the room follows: no chat, typing or presence.
            bob.send(json!({"type": "typing", "roomId": leave}));
            let _dan = run.connect(&format!("userId=dan&room={leave}"));
            bob.chat_acked(6, &leave, "l3", None);
            bob.chat_acked(7, &stay, "s2", None);
            assert_chat(&alice.next(), &stay, 2, "s2");
            alice.ws.expect_silence(Duration::from_millis(400), |text| {
                let f: Value = serde_json::from_str(text).unwrap_or_default();
                f["type"] == "presence" && f["roomId"] != leave.as_str()
            });
            alice.send(chat_frame(10, &leave, "x"));
            assert_error(&alice.next(), "not_subscribed", Some(10), Some(&leave));
            // And back in: the room as it is now.
            let s = alice.subscribe(11, &leave);
            assert_eq!(subscribed_state(&s), (3, false, 0, 3), "{s}");
            for (seq, content) in [(1, "l1"), (2, "l2"), (3, "l3")] {
                assert_chat(&alice.expect("chat"), &leave, seq, content);
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// Recovery and epochs.

#[test]
fn recovery_with_since_and_epoch_replays_exactly_the_missed_messages() {
    let env = [("RATE_LIMIT_PER_SEC", "0"), ("BACKLOG_SIZE", "2")];
    each_run("recovery", BOTH, &env, |run| {
        for room in run.rooms("recovery") {
            let mut bob = run.connect("userId=bob");
            bob.subscribe(1, &room);
            let mut alice = run.connect("userId=alice");
            let s = alice.subscribe(1, &room);
            let epoch = s["epoch"].as_str().unwrap_or_default().to_owned();
            let mut id = 10;
            let mut say = |bob: &mut V2, seq: u64| {
                id += 1;
                let (chat, _) = bob.chat_acked(id, &room, &format!("m{seq}"), None);
                assert_eq!(chat["seq"], seq, "{chat}");
            };
            say(&mut bob, 1);
            say(&mut bob, 2);
            for seq in 1..=2 {
                assert_chat(&alice.expect("chat"), &room, seq, &format!("m{seq}"));
            }
            alice.close();
            for seq in 3..=6 {
                say(&mut bob, seq);
            }
            // Back with the last seq seen: exactly 3..6 (more than BACKLOG_SIZE), then live.
            let mut back = run.connect("userId=alice");
            let s = back.subscribe_with(json!({
                "type": "subscribe", "id": 2, "roomId": room, "since": 2, "epoch": epoch
            }));
            assert_eq!(s["epoch"], epoch.as_str(), "{s}");
            assert_eq!(
                subscribed_state(&s),
                (6, true, 0, 2),
                "(seq, recovered, lastRead, online): {s}"
            );
            for seq in 3..=6 {
                assert_chat(&back.expect("chat"), &room, seq, &format!("m{seq}"));
            }
            say(&mut bob, 7);
            assert_chat(&back.expect("chat"), &room, 7, "m7");
            back.close();
            // The same through the URL.
            say(&mut bob, 8);
            let mut url = run.connect(&format!(
                "userId=alice&room={room}&since=6&epoch={}",
                url_encode(&epoch)
            ));
            let s = url.expect("subscribed");
            assert!(s.get("id").is_none(), "{s}");
            assert_eq!(s["epoch"], epoch.as_str(), "{s}");
            assert_eq!(subscribed_state(&s), (8, true, 0, 2), "{s}");
            assert_chat(&url.expect("chat"), &room, 7, "m7");
            assert_chat(&url.expect("chat"), &room, 8, "m8");
            say(&mut bob, 9);
            assert_chat(&url.expect("chat"), &room, 9, "m9");
            // Nothing missed: recovered, nothing replayed, live next.
            let mut carol = run.connect("userId=carol");
            let s = carol.subscribe_with(json!({
                "type": "subscribe", "id": 3, "roomId": room, "since": 9, "epoch": epoch
            }));
            assert_eq!(subscribed_state(&s), (9, true, 0, 3), "{s}");
            say(&mut bob, 10);
            assert_chat(&carol.expect("chat"), &room, 10, "m10");
        }
    });
}

#[test]
fn a_wrong_or_missing_epoch_is_not_recovered_and_gets_the_backlog() {
    let env = [("RATE_LIMIT_PER_SEC", "0"), ("BACKLOG_SIZE", "2")];
    each_run("epoch", BOTH, &env, |run| {
        for room in run.rooms("epoch") {
            let mut bob = run.connect("userId=bob");
            let epoch = bob.subscribe(1, &room)["epoch"].clone();
            for i in 1..=5 {
                bob.chat_acked(10 + i, &room, &format!("m{i}"), None);
            }
            let check = |c: &mut V2, s: &Value, how: &str| {
                assert_eq!(s["epoch"], epoch, "{how}: the room's epoch: {s}");
                assert_eq!(subscribed_state(s), (5, false, 0, 2), "{how}: {s}");
                assert_chat(&c.expect("chat"), &room, 4, "m4");
                assert_chat(&c.expect("chat"), &room, 5, "m5");
            };
            let mut a = run.connect("userId=alice");
            let s = a.subscribe_with(json!({
                "type": "subscribe", "id": 1, "roomId": room, "since": 1, "epoch": "not-the-epoch"
            }));
            check(&mut a, &s, "a wrong epoch");
            let mut b = run.connect("userId=alice");
            let s =
                b.subscribe_with(json!({"type": "subscribe", "id": 1, "roomId": room, "since": 1}));
            check(&mut b, &s, "since without an epoch");
            let mut c = run.connect(&format!("userId=alice&room={room}&since=1&epoch=nope"));
            let s = c.expect("subscribed");
            check(&mut c, &s, "a wrong epoch in the URL");
        }
    });
}

#[test]
fn recovery_needs_the_memory_ring_to_hold_every_missed_message() {
    let env = [
        ("RATE_LIMIT_PER_SEC", "0"),
        ("BACKLOG_SIZE", "2"),
        ("HISTORY_SIZE", "3"),
    ];
    // The memory store: with DynamoDB what the ring lacks comes from the table once it is
    // written (`recovery_beyond_the_ring_comes_from_the_durable_store`).
    each_run("ring", MEMORY, &env, |run| {
        for room in run.rooms("ring") {
            let mut bob = run.connect("userId=bob");
            let epoch = bob.subscribe(1, &room)["epoch"].clone();
            for i in 1..=6 {
                bob.chat_acked(10 + i, &room, &format!("m{i}"), None);
            }
            // The ring keeps 4..6: after 3 it holds everything, after 1 it lacks 2 and 3.
            let mut a = run.connect("userId=alice");
            let s = a.subscribe_with(json!({
                "type": "subscribe", "id": 1, "roomId": room, "since": 3, "epoch": epoch
            }));
            assert_eq!(subscribed_state(&s), (6, true, 0, 2), "since 3: {s}");
            for seq in 4..=6 {
                assert_chat(&a.expect("chat"), &room, seq, &format!("m{seq}"));
            }
            let mut b = run.connect("userId=alice");
            let s = b.subscribe_with(json!({
                "type": "subscribe", "id": 1, "roomId": room, "since": 1, "epoch": epoch
            }));
            assert_eq!(subscribed_state(&s), (6, false, 0, 2), "since 1: {s}");
            assert_chat(&b.expect("chat"), &room, 5, "m5");
            assert_chat(&b.expect("chat"), &room, 6, "m6");
        }
    });
}

#[test]
fn error_invalid_epoch() {
    each_run("invepoch", MEMORY, &[], |run| {
        for room in run.rooms("invepoch") {
            let mut c = run.connect("userId=u");
            c.send(json!({
                "type": "subscribe", "id": 1, "roomId": room, "since": 0, "epoch": "e".repeat(33)
            }));
            assert_error(&c.next(), "invalid_epoch", Some(1), Some(&room));
            // 32 bytes pass: just not the room's epoch.
            let s = c.subscribe_with(json!({
                "type": "subscribe", "id": 2, "roomId": room, "since": 0, "epoch": "e".repeat(32)
            }));
            assert_eq!(subscribed_state(&s), (0, false, 0, 1), "{s}");
        }
    });
}

/// The room's owner answers `unsubscribe`: the acks of the chats sent just before it
/// come first, also for a room of the other worker.
#[test]
fn unsubscribed_comes_after_the_acks_of_chats_sent_before_it() {
    each_run("unsuback", BOTH, &[("RATE_LIMIT_PER_SEC", "0")], |run| {
        for room in run.rooms("unsuback") {
            let mut bob = run.connect("userId=bob");
            bob.subscribe(1, &room);
            for i in 0..5u32 {
                bob.send(json!({"type": "chat", "id": 10 + i, "roomId": room,
                    "content": format!("m{i}"), "clientMsgId": format!("c{i}")}));
            }
            bob.send(json!({"type": "unsubscribe", "id": 20, "roomId": room}));
            let mut acked = Vec::new();
            let u = loop {
                let f = bob.next_except(&["chat", "presence"]);
                if f["type"] != "ack" {
                    break f;
                }
                acked.push(f["id"].as_u64().unwrap_or_default());
            };
            assert_eq!(
                (u["type"].as_str(), u["id"].as_u64()),
                (Some("unsubscribed"), Some(20)),
                "{u}"
            );
            assert_eq!(acked, [10, 11, 12, 13, 14], "every ack before unsubscribed");
            bob.expect_silence(300);
        }
    });
}

#[test]
fn an_unsubscribe_right_after_a_subscribe_is_answered_and_no_backlog_follows() {
    each_run("quick", MEMORY, &[("RATE_LIMIT_PER_SEC", "0")], |run| {
        for room in run.rooms("quick") {
            let mut bob = run.connect("userId=bob");
            bob.subscribe(1, &room);
            for i in 1..=5 {
                bob.chat_acked(1 + i, &room, &format!("m{i}"), None);
            }
            let mut c = run.connect("userId=u");
            c.send(subscribe_frame(1, &room));
            c.send(json!({"type": "unsubscribe", "id": 2, "roomId": room}));
            // The subscribe is answered; what of the backlog was already on its way may
            // come (a prefix, in order: with the owner on this worker, all of it), then
            // the unsubscribed, then nothing of the room.
            let s = c.next();
            assert_eq!(
                (s["type"].as_str(), s["id"].as_u64()),
                (Some("subscribed"), Some(1)),
                "the subscribe is answered: {s}"
            );
            let mut backlog = Vec::new();
            let u = loop {
                let f = c.next();
                if f["type"] != "chat" {
                    break f;
                }
                backlog.push(f["seq"].as_u64().unwrap_or_default());
            };
            let prefix: Vec<u64> = (1..=backlog.len() as u64).collect();
            assert_eq!(backlog, prefix, "a prefix of the backlog, in order");
            eprintln!("   {} of the backlog before unsubscribed", backlog.len());
            assert_eq!(
                (u["type"].as_str(), u["id"].as_u64(), u["roomId"].as_str()),
                (Some("unsubscribed"), Some(2), Some(room.as_str())),
                "then the unsubscribe: {u}"
            );
            bob.chat_acked(10, &room, "after", None);
            c.expect_silence(300);
        }
    });
}

#[test]
fn a_memory_store_restart_gives_rooms_a_new_epoch_and_seq_starts_again() {
    for workers in [1, 2] {
        let port = free_port();
        let rooms = v2::rooms("restart-mem", workers);
        let server = Server::start_on(port, workers, &[]);
        let mut a = V2::connect(&server, "userId=alice");
        let mut before = Vec::new();
        for (i, room) in rooms.iter().enumerate() {
            let s = a.subscribe(i as u32, room);
            before.push(s["epoch"].as_str().unwrap_or_default().to_owned());
            a.chat_acked(10 + i as u32, room, "before", None);
        }
        a.close();
        server.stop();
        let server = Server::start_on(port, workers, &[]);
        let mut a = V2::connect(&server, "userId=alice");
        for (i, room) in rooms.iter().enumerate() {
            let s = a.subscribe_with(json!({
                "type": "subscribe", "id": i, "roomId": room, "since": 1, "epoch": before[i]
            }));
            assert_ne!(
                s["epoch"],
                before[i].as_str(),
                "WORKERS={workers}: a new epoch after a restart on the memory store: {s}"
            );
            assert_eq!(
                subscribed_state(&s),
                (0, false, 0, 1),
                "WORKERS={workers}: {s}"
            );
            let (chat, _) = a.chat_acked(10 + i as u32, room, "after", None);
            assert_eq!(chat["seq"], 1, "seq starts again: {chat}");
        }
        server.stop();
    }
}

#[test]
fn a_forgotten_room_gets_a_new_epoch_and_forgets_its_client_msg_ids() {
    // One idle room kept per worker: a second one going idle forgets the first.
    let env = [("MAX_IDLE_ROOMS", "1"), ("RATE_LIMIT_PER_SEC", "0")];
    each_run("forgotten", MEMORY, &env, |run| {
        for w in 0..run.workers {
            let [a, b, c] =
                ["forgot-a", "forgot-b", "forgot-c"].map(|t| room_on(t, w, run.workers));
            let mut alice = run.connect("userId=alice");
            let epoch = alice.subscribe(1, &a)["epoch"].clone();
            alice.chat_acked(2, &a, "m1", Some("c-1"));
            alice.send(json!({"type": "read", "roomId": a, "seq": 1}));
            alice.unsubscribe(3, &a);
            let mut kept = Value::Null;
            for (i, room) in [&b, &c].into_iter().enumerate() {
                let id = 10 * (i as u32 + 1);
                kept = alice.subscribe(id, room)["epoch"].clone();
                alice.chat_acked(id + 1, room, "x", None);
                alice.send(json!({"type": "read", "roomId": room, "seq": 1}));
                alice.unsubscribe(id + 2, room);
            }
            let s = alice.subscribe_with(json!({
                "type": "subscribe", "id": 4, "roomId": a, "since": 1, "epoch": epoch
            }));
            assert_ne!(
                s["epoch"], epoch,
                "worker {w}: a forgotten room's new epoch: {s}"
            );
            assert_eq!(
                subscribed_state(&s),
                (0, false, 0, 1),
                "worker {w}: seq, recovered, the read marker gone with the room, online: {s}"
            );
            // c-1 was the forgotten room's: a new message now (chat_acked checks
            // duplicate:false).
            let (chat, _) = alice.chat_acked(5, &a, "m1", Some("c-1"));
            assert_eq!(chat["seq"], 1, "{chat}");
            // The idle room still kept has its epoch, history and marker.
            let s = alice.subscribe(6, &c);
            assert_eq!(s["epoch"], kept, "worker {w}: {s}");
            assert_eq!(subscribed_state(&s), (1, false, 1, 1), "worker {w}: {s}");
            assert_chat(&alice.expect("chat"), &c, 1, "x");
        }
    });
}

#[test]
fn with_dynamodb_a_restart_keeps_the_epoch_and_recovery_continues_the_seq() {
    let db = Dynalite::start();
    for workers in [1, 2] {
        eprintln!("-- WORKERS={workers}");
        let mut env = dynamodb_env(&db.endpoint(), &format!("v2-restart-{workers}"));
        env.push(("RATE_LIMIT_PER_SEC", "0".into()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let port = free_port();
        let rooms = v2::rooms("restart-dyn", workers);
        let server = Server::start_on(port, workers, &env);
        server.wait_for_storage();
        let mut alice = V2::connect(&server, "userId=alice");
        let mut bob = V2::connect(&server, "userId=bob");
        let mut epochs = Vec::new();
        for (i, room) in rooms.iter().enumerate() {
            epochs.push(alice.subscribe(i as u32, room)["epoch"].clone());
            bob.subscribe(i as u32, room);
            bob.chat_acked(10, room, "m1", None);
            assert_chat(&alice.expect("chat"), room, 1, "m1");
            // Alice's read marker goes to the state table as it is broadcast.
            alice.send(json!({"type": "read", "roomId": room, "seq": 1}));
            let r = bob.expect("read");
            assert_eq!(r["seq"], 1, "WORKERS={workers} {room}: {r}");
        }
        alice.close();
        for room in &rooms {
            bob.chat_acked(11, room, "m2", None);
            bob.chat_acked(12, room, "m3", None);
        }
        bob.close();
        server.stop();
        let server = Server::start_on(port, workers, &env);
        server.wait_for_storage();
        let mut alice = V2::connect(&server, "userId=alice");
        for (i, room) in rooms.iter().enumerate() {
            let s = alice.subscribe_with(json!({
                "type": "subscribe", "id": i, "roomId": room, "since": 1, "epoch": epochs[i]
            }));
            assert_eq!(
                s["epoch"], epochs[i],
                "WORKERS={workers}: the epoch outlives the restart: {s}"
            );
            assert_eq!(
                subscribed_state(&s),
                (3, true, 1, 1),
                "WORKERS={workers}: (seq, recovered, lastRead from the state table, online): {s}"
            );
            assert_chat(&alice.expect("chat"), room, 2, "m2");
            assert_chat(&alice.expect("chat"), room, 3, "m3");
            let (chat, _) = alice.chat_acked(20, room, "after the restart", Some("cm-1"));
            assert_eq!(chat["seq"], 4, "seq continues: {chat}");
        }
        // Bob left before the restart: no worker remembers him, the state table does.
        let seen = server.get_json("/api/presence?users=bob");
        assert_eq!(seen["users"]["bob"]["online"], false, "{seen}");
        assert!(
            is_timestamp(&seen["users"]["bob"]["lastSeen"]),
            "WORKERS={workers}: lastSeen across the restart: {seen}"
        );
        server.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Errors: each with the `id` of the frame it answers and the room it concerns.

/// With DynamoDB, recovery reaches past the memory ring: a `since` older than the ring's
/// five messages gets the older ones from the table and the rest from the ring, each
/// once and in order, `recovered:true`, counted in `/metrics`. Too far back for the ring
/// with the memory store: the backlog, as §7.2 says.
#[test]
fn recovery_beyond_the_ring_comes_from_the_durable_store() {
    let env = [
        ("RATE_LIMIT_PER_SEC", "0"),
        ("HISTORY_SIZE", "5"),
        ("BACKLOG_SIZE", "2"),
    ];
    each_run("deep", BOTH, &env, |run| {
        let durable = run.store == Store::DynamoDb;
        let rooms = run.rooms("deep");
        let mut bob = run.connect("userId=bob");
        let mut epochs = Vec::new();
        for (i, room) in rooms.iter().enumerate() {
            epochs.push(bob.subscribe(i as u32, room)["epoch"].clone());
            for n in 1..=20u32 {
                bob.chat_acked(100 + n, room, &format!("m{n}"), None);
            }
        }
        if durable {
            let written = 20.0 * rooms.len() as f64;
            let ok = wait_until(Duration::from_secs(15), || {
                metric(&run.server, "hubbub_persist_written_total") >= written
            });
            assert!(ok, "the messages reached the table");
        }
        let mut alice = run.connect("userId=alice");
        for (i, room) in rooms.iter().enumerate() {
            let s = alice.subscribe_with(json!({
                "type": "subscribe", "id": i, "roomId": room, "since": 3, "epoch": epochs[i]
            }));
            let (seq, recovered, _, _) = subscribed_state(&s);
            assert_eq!((seq, recovered), (20, durable), "{s}");
            let first = if durable { 4 } else { 19 };
            for n in first..=20 {
                assert_chat(&alice.expect("chat"), room, n, &format!("m{n}"));
            }
            // Live on from there.
            bob.chat_acked(200, room, "live", None);
            assert_chat(&alice.expect("chat"), room, 21, "live");
        }
        let recovered = metric(&run.server, "hubbub_recovered_from_store_total");
        let want = if durable { rooms.len() as f64 } else { 0.0 };
        assert_eq!(recovered, want);
    });
}

/// The value of an unlabelled metric in `/metrics`.
fn metric(server: &Server, name: &str) -> f64 {
    let body = server.get("/metrics").body;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics: {body}"))
}

#[test]
fn error_already_subscribed() {
    each_run("already", MEMORY, &[("RATE_LIMIT_PER_SEC", "0")], |run| {
        for room in run.rooms("already") {
            let mut c = run.connect(&format!("userId=u&room={room}"));
            c.expect("subscribed");
            c.send(subscribe_frame(2, &room));
            assert_error(&c.next(), "already_subscribed", Some(2), Some(&room));
            let other = format!("{room}-x");
            c.subscribe(3, &other);
            c.send(subscribe_frame(4, &other));
            assert_error(&c.next(), "already_subscribed", Some(4), Some(&other));
            // Still subscribed once: one frame per message.
            c.chat_acked(5, &other, "once", None);
            c.expect_silence(200);
        }
    });
}

#[test]
fn error_too_many_subscriptions() {
    each_run("toomany", MEMORY, &[("MAX_SUBSCRIPTIONS", "3")], |run| {
        let w = run.workers;
        let rooms: Vec<String> = (0..5u16)
            .map(|i| room_on(&format!("toomany{i}"), i % w, w))
            .collect();
        let mut c = run.connect(&format!("userId=u&room={}", rooms[0]));
        assert_limits(&c.hello, 3);
        c.expect("subscribed");
        c.subscribe(1, &rooms[1]);
        c.subscribe(2, &rooms[2]);
        c.send(subscribe_frame(3, &rooms[3]));
        assert_error(
            &c.next(),
            "too_many_subscriptions",
            Some(3),
            Some(&rooms[3]),
        );
        c.unsubscribe(4, &rooms[1]);
        c.subscribe(5, &rooms[3]);
        c.send(subscribe_frame(6, &rooms[4]));
        assert_error(
            &c.next(),
            "too_many_subscriptions",
            Some(6),
            Some(&rooms[4]),
        );
        // The refused subscribe subscribed nothing.
        c.send(chat_frame(7, &rooms[4], "x"));
        assert_error(&c.next(), "not_subscribed", Some(7), Some(&rooms[4]));
    });
}

#[test]
fn error_not_subscribed_for_chat_typing_read_and_unsubscribe() {
    each_run("notsub", MEMORY, &[], |run| {
        for room in run.rooms("notsub") {
            let mut bob = run.connect("userId=bob");
            bob.subscribe(1, &room);
            let mut c = run.connect("userId=u");
            let frames = [
                (1, chat_frame(1, &room, "x")),
                (2, json!({"type": "typing", "id": 2, "roomId": room})),
                (
                    3,
                    json!({"type": "typing", "id": 3, "roomId": room, "stop": true}),
                ),
                (
                    4,
                    json!({"type": "read", "id": 4, "roomId": room, "seq": 0}),
                ),
                (5, json!({"type": "unsubscribe", "id": 5, "roomId": room})),
            ];
            for (id, frame) in frames {
                c.send(frame.clone());
                assert_error(&c.next(), "not_subscribed", Some(id), Some(&room));
            }
            // Nothing of it reached the room.
            bob.expect_silence(200);
            // Not subscribed any more after unsubscribe either.
            c.subscribe(6, &room);
            c.unsubscribe(7, &room);
            c.send(chat_frame(8, &room, "x"));
            assert_error(&c.next(), "not_subscribed", Some(8), Some(&room));
        }
    });
}

#[test]
fn error_room_required() {
    each_run("roomreq", MEMORY, &[], |run| {
        let mut c = run.connect("userId=u");
        let frames = [
            json!({"type": "subscribe", "id": 1}),
            json!({"type": "unsubscribe", "id": 2}),
            json!({"type": "chat", "id": 3, "content": "x"}),
            json!({"type": "typing", "id": 4}),
            json!({"type": "read", "id": 5, "seq": 1}),
        ];
        for frame in frames {
            c.send(frame.clone());
            let e = c.next();
            assert_error(&e, "room_required", frame["id"].as_u64(), None);
        }
    });
}

#[test]
fn error_invalid_room() {
    each_run("invroom", MEMORY, &[], |run| {
        let mut c = run.connect("userId=u");
        let long = "r".repeat(129);
        for (id, room) in [
            (1, "has space"),
            (2, "a/b"),
            (3, long.as_str()),
            (4, "é"),
            (5, ""),
        ] {
            c.send(subscribe_frame(id, room));
            let e = c.next();
            assert_eq!(
                (e["type"].as_str(), e["code"].as_str(), e["id"].as_u64()),
                (Some("error"), Some("invalid_room"), Some(u64::from(id))),
                "subscribe to {room:?}: {e}"
            );
            assert!(
                e.get("roomId").is_none() || e["roomId"] == room,
                "if named, the room is the one sent: {e}"
            );
        }
        // At the limits of the rule: 128 bytes, every allowed character.
        c.subscribe(6, &"r".repeat(128));
        c.subscribe(7, "Az09-_.:@x");
    });
}

#[test]
fn error_invalid_client_msg_id() {
    each_run("cmid", MEMORY, &[], |run| {
        for room in run.rooms("cmid") {
            let mut alice = run.connect("userId=alice");
            alice.subscribe(1, &room);
            let mut bob = run.connect("userId=bob");
            bob.subscribe(1, &room);
            let mut frame = chat_frame(2, &room, "x");
            frame["clientMsgId"] = json!("");
            alice.send(frame);
            assert_error(&alice.next(), "invalid_client_msg_id", Some(2), Some(&room));
            let mut frame = chat_frame(3, &room, "x");
            frame["clientMsgId"] = json!("a".repeat(65));
            alice.send(frame);
            assert_error(&alice.next(), "invalid_client_msg_id", Some(3), Some(&room));
            // 64 characters (128 bytes) pass; the refused ones were never sequenced.
            let id = "é".repeat(64);
            let (chat, _) = alice.chat_acked(4, &room, "ok", Some(&id));
            assert_eq!(chat["seq"], 1, "{chat}");
            assert_chat(&bob.expect("chat"), &room, 1, "ok");
            bob.expect_silence(200);
        }
    });
}

#[test]
fn error_invalid_type() {
    each_run("invtype", MEMORY, &[], |run| {
        let mut c = run.connect("userId=u&room=t");
        c.expect("subscribed");
        let frames = [
            json!({"type": "join", "id": 1, "roomId": "t"}),
            json!({"type": "hello", "id": 2}),
            json!({"type": "ack", "id": 3, "roomId": "t"}),
            json!({"type": "CHAT", "id": 4, "roomId": "t", "content": "x"}),
            json!({"type": "system", "id": 5, "roomId": "t", "content": "x"}),
            json!({"id": 6, "roomId": "t", "content": "x"}),
        ];
        for frame in frames {
            c.send(frame.clone());
            let e = c.next();
            assert_eq!(
                (e["type"].as_str(), e["code"].as_str(), e["id"].as_u64()),
                (Some("error"), Some("invalid_type"), frame["id"].as_u64()),
                "{frame}: {e}"
            );
        }
        // Nothing was broadcast: the next chat is seq 1.
        let (chat, _) = c.chat_acked(7, "t", "real", None);
        assert_eq!(chat["seq"], 1, "{chat}");
    });
}

#[test]
fn error_invalid_json_and_the_range_of_id() {
    each_run("invjson", MEMORY, &[], |run| {
        for room in run.rooms("invjson") {
            let mut c = run.connect("userId=u");
            let bad_ids = ["-1", "4294967296", "\"7\"", "1.5", "true", "[1]"];
            let mut texts: Vec<String> = vec!["not json".into(), "[1,2]".into(), "\"chat\"".into()];
            for id in bad_ids {
                texts.push(format!(
                    r#"{{"type":"subscribe","id":{id},"roomId":"{room}"}}"#
                ));
            }
            for text in &texts {
                c.send_raw(text);
                let e = c.next();
                assert_eq!(
                    (e["type"].as_str(), e["code"].as_str()),
                    (Some("error"), Some("invalid_json")),
                    "{text}: {e}"
                );
                assert!(e.get("id").is_none(), "{text}: no integer id to echo: {e}");
            }
            // None of those subscribed; the ends of the id's range are echoed.
            c.subscribe(u32::MAX, &room);
            let (_, ack) = c.chat_acked(0, &room, "zero", None);
            assert_eq!(ack["id"], 0, "{ack}");
            // `null` is not an integer either.
            c.send_raw(&format!(
                r#"{{"type":"unsubscribe","id":null,"roomId":"{room}"}}"#
            ));
            let e = c.next();
            assert_eq!(
                (e["type"].as_str(), e["code"].as_str()),
                (Some("error"), Some("invalid_json")),
                "\"id\":null is not an integer 0 to 4294967295: {e}"
            );
        }
    });
}

#[test]
fn error_invalid_seq() {
    each_run("invseq", MEMORY, &[], |run| {
        for room in run.rooms("invseq") {
            let mut c = run.connect(&format!("userId=u&room={room}"));
            c.expect("subscribed");
            let seqs = [json!(-1), json!("3"), json!(1.5), json!(null), json!({})];
            for (i, seq) in seqs.iter().enumerate() {
                let id = i as u64 + 1;
                c.send(json!({"type": "read", "id": id, "roomId": room, "seq": seq}));
                assert_error(&c.next(), "invalid_seq", Some(id), Some(&room));
            }
            c.send(json!({"type": "read", "id": 9, "roomId": room}));
            assert_error(&c.next(), "invalid_seq", Some(9), Some(&room));
            // Valid ones are answered with nothing (the marker cannot pass seq 0 here).
            c.send(json!({"type": "read", "id": 10, "roomId": room, "seq": 0}));
            c.send(json!({"type": "read", "id": 11, "roomId": room, "seq": u64::MAX}));
            c.expect_silence(300);
        }
    });
}

#[test]
fn chat_content_errors_carry_id_and_room() {
    each_run("content", MEMORY, &[("RATE_LIMIT_PER_SEC", "0")], |run| {
        for room in run.rooms("content") {
            let mut c = run.connect(&format!("userId=u&room={room}"));
            c.expect("subscribed");
            c.send(chat_frame(1, &room, "   "));
            assert_error(&c.next(), "empty_content", Some(1), Some(&room));
            c.send(json!({"type": "chat", "id": 2, "roomId": room}));
            assert_error(&c.next(), "empty_content", Some(2), Some(&room));
            c.send(chat_frame(3, &room, &"é".repeat(1001)));
            assert_error(&c.next(), "content_too_long", Some(3), Some(&room));
            let (chat, _) = c.chat_acked(4, &room, &"é".repeat(1000), None);
            assert_eq!(
                chat["seq"], 1,
                "the refused ones were not sequenced: {chat}"
            );
        }
    });
}

#[test]
fn chat_over_the_rate_gets_rate_limited_with_id_and_room() {
    // The v1 limit (defaults: 5 a second, bursts of 10), one rate_limited a second.
    each_run("chatrate", MEMORY, &[], |run| {
        for (n, room) in run.rooms("chatrate").into_iter().enumerate() {
            let mut c = run.connect("userId=u");
            c.subscribe(0, &room);
            for id in 1..=12 {
                c.send(chat_frame(id, &room, &format!("m{id}")));
            }
            let frames: Vec<Value> = c
                .settle()
                .into_iter()
                .filter(|f| f["type"] != "presence")
                .collect();
            let of = |kind: &str, field: &str| -> Vec<(usize, u64)> {
                frames
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f["type"] == kind)
                    .map(|(at, f)| (at, f[field].as_u64().unwrap_or_default()))
                    .collect()
            };
            let (chats, acks, errors) = (of("chat", "seq"), of("ack", "id"), of("error", "id"));
            let seqs: Vec<u64> = chats.iter().map(|c| c.1).collect();
            let mut acked: Vec<u64> = acks.iter().map(|a| a.1).collect();
            acked.sort_unstable();
            let burst: Vec<u64> = (1..=10).collect();
            assert_eq!(seqs, burst, "the burst of 10 accepted: {frames:?}");
            assert_eq!(acked, burst, "each acked: {frames:?}");
            for (at, id) in &acks {
                assert!(
                    chats.iter().any(|(c_at, seq)| seq == id && c_at < at),
                    "the ack of {id} after its chat frame: {frames:?}"
                );
            }
            assert_eq!(
                errors.iter().map(|e| e.1).collect::<Vec<_>>(),
                [11],
                "the 11th refused, the 12th silently (one error a second): {frames:?}"
            );
            assert_error(&frames[errors[0].0], "rate_limited", Some(11), Some(&room));
            let limited = 2 * (n as u64 + 1);
            let a = run.server.analytics_until(|a| a["rateLimited"] == limited);
            assert_eq!(a["rateLimited"], limited);
        }
    });
}

#[test]
fn control_frames_share_a_bucket_of_64() {
    each_run("control", MEMORY, &[], |run| {
        for room in run.rooms("control") {
            let mut c = run.connect("userId=u");
            c.subscribe(0, &room);
            // subscribe took one token of 64; reads 1 to 63 take the rest.
            for id in 1..=70u32 {
                c.send(json!({"type": "read", "id": id, "roomId": room, "seq": 0}));
            }
            let errors: Vec<Value> = c
                .settle()
                .into_iter()
                .filter(|f| f["type"] == "error")
                .collect();
            assert!(!errors.is_empty(), "reads over the bucket are refused");
            for e in &errors {
                assert_eq!(e["code"], "rate_limited", "{e}");
            }
            let first = errors[0]["id"].as_u64().unwrap_or_default();
            assert!(
                (64..=66).contains(&first),
                "the first refused read is the 64th frame or just after: {errors:?}"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------
// chat → ack, and exactly-once sends.

#[test]
fn chat_is_acked_after_its_frame_and_a_resent_client_msg_id_is_not_broadcast_again() {
    each_run("ack", BOTH, &[("RATE_LIMIT_PER_SEC", "0")], |run| {
        for (n, room) in run.rooms("ack").into_iter().enumerate() {
            let other = format!("{room}-other");
            let mut a1 = run.connect("userId=alice");
            a1.subscribe(1, &room);
            a1.subscribe(2, &other);
            let mut bob = run.connect("userId=bob");
            bob.subscribe(1, &room);
            let (first, _) = a1.chat_acked(10, &room, "hello", Some("c-1"));
            assert_chat(&first, &room, 1, "hello");
            assert_eq!(bob.expect("chat"), first, "everyone gets the same frame");
            // Resent on the same connection: the first one's ack, nothing else.
            a1.send(json!({"type": "chat", "id": 11, "roomId": room, "content": "hello", "clientMsgId": "c-1"}));
            let dup = a1.expect("ack");
            assert_ack(&dup, 11, &room, &first, Some("c-1"), true);
            // Resent on a new connection of the same user: the same.
            let mut a2 = run.connect("userId=alice");
            let s = a2.subscribe(1, &room);
            assert_eq!(subscribed_state(&s), (1, false, 0, 2), "{s}");
            assert_eq!(a2.expect("chat"), first, "the backlog");
            a2.send(json!({"type": "chat", "id": 12, "roomId": room, "content": "hello", "clientMsgId": "c-1"}));
            assert_ack(&a2.expect("ack"), 12, &room, &first, Some("c-1"), true);
            // Another user's c-1 is another message; bob never saw "hello" twice.
            let (bobs, _) = bob.chat_acked(13, &room, "from bob", Some("c-1"));
            assert_chat(&bobs, &room, 2, "from bob");
            for c in [&mut a1, &mut a2] {
                assert_eq!(c.expect("chat"), bobs);
            }
            // Without clientMsgId: an ack without one.
            let (plain, _) = a1.chat_acked(14, &room, "plain", None);
            assert_chat(&plain, &room, 3, "plain");
            assert_eq!(bob.expect("chat"), plain);
            assert_eq!(a2.expect("chat"), plain);
            // The same id in another room is another message.
            let (elsewhere, _) = a1.chat_acked(15, &other, "hello", Some("c-1"));
            assert_chat(&elsewhere, &other, 1, "hello");
            bob.expect_silence(200);
            a2.expect_silence(50);
            let total = 4 * (n as u64 + 1);
            let a = run.server.analytics_until(|a| a["totalMessages"] == total);
            assert_eq!(a["totalMessages"], total, "duplicates are not messages");
            let dups = 2 * (n as u64 + 1);
            let a = run.server.analytics_until(|a| a["duplicatesAcked"] == dups);
            assert_eq!(
                a["duplicatesAcked"], dups,
                "duplicatesAcked: {}",
                a["duplicatesAcked"]
            );
            let metrics = run.server.get("/metrics").body;
            assert!(
                metrics.contains(&format!("hubbub_duplicates_acked_total {dups}\n")),
                "hubbub_duplicates_acked_total {dups} in /metrics"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------
// Presence.

/// Frames that `settle` let go by must be presence about `user` alone arriving.
fn only_own_arrival(frames: &[Value], user: &str) {
    for f in frames {
        assert_eq!(
            f["type"], "presence",
            "only presence before anyone acts: {f}"
        );
        for u in f["joined"].as_array().into_iter().flatten() {
            assert_eq!(u["userId"], user, "{f}");
        }
        assert!(
            f.get("left").is_none() || f["left"] == json!([]),
            "nobody left: {f}"
        );
    }
}

#[test]
fn presence_is_per_user_one_joined_for_two_connections_and_left_after_the_last() {
    each_run("presence", MEMORY, &[], |run| {
        for (i, room) in run.rooms("presence").into_iter().enumerate() {
            let bob = format!("bob-{i}");
            let mut alice = run.connect(&format!("userId=alice&username=Alice&room={room}"));
            let s = alice.expect("subscribed");
            assert_eq!(subscribed_state(&s).3, 1, "{s}");
            only_own_arrival(&alice.settle(), "alice");
            let query = format!("userId={bob}&username=Bob&room={room}");
            let mut b1 = run.connect(&query);
            assert_eq!(subscribed_state(&b1.expect("subscribed")).3, 2);
            let mut b2 = run.connect(&query);
            assert_eq!(
                subscribed_state(&b2.expect("subscribed")).3,
                2,
                "online counts users"
            );
            let p = alice.next_any();
            assert_eq!(
                (
                    p["type"].as_str(),
                    p["roomId"].as_str(),
                    p["online"].as_u64()
                ),
                (Some("presence"), Some(room.as_str()), Some(2)),
                "{p}"
            );
            assert_eq!(users(&p["joined"]), named(&[(&bob, "Bob")]), "{p}");
            assert_eq!(p["left"], json!([]), "{p}");
            alice.expect_nothing(QUIET.as_millis() as u64);
            let listed = run.server.get_json(&format!("/api/rooms/{room}/presence"));
            let since = listed["users"]
                .as_array()
                .and_then(|us| us.iter().find(|u| u["userId"] == bob.as_str()))
                .map(|u| u["since"].as_str().unwrap_or_default().to_owned())
                .unwrap_or_else(|| panic!("{bob} listed: {listed}"));
            // One connection closes: bob is still online, nothing to say.
            b1.close();
            let a = run.server.analytics_until(|a| a["activeConnections"] == 2);
            assert_eq!(a["activeConnections"], 2);
            alice.expect_nothing(QUIET.as_millis() as u64);
            b2.close();
            let p = alice.next_any();
            assert_eq!(
                (
                    p["type"].as_str(),
                    p["roomId"].as_str(),
                    p["online"].as_u64()
                ),
                (Some("presence"), Some(room.as_str()), Some(1)),
                "{p}"
            );
            assert_eq!(p["joined"], json!([]), "{p}");
            let left = p["left"].as_array().cloned().unwrap_or_default();
            assert_eq!(left.len(), 1, "{p}");
            assert_eq!(left[0]["userId"], bob.as_str(), "{p}");
            assert!(is_timestamp(&left[0]["lastSeen"]), "lastSeen: {p}");
            assert!(
                left[0]["lastSeen"].as_str().unwrap_or_default() >= since.as_str(),
                "lastSeen {} is after bob came ({since})",
                left[0]["lastSeen"]
            );
            let state = run.server.get_json(&format!("/api/presence?users={bob}"));
            assert_eq!(state["users"][&bob]["online"], false, "{state}");
            assert!(is_timestamp(&state["users"][&bob]["lastSeen"]), "{state}");
            // An unsubscribe is a leave too.
            let carol = format!("carol-{i}");
            let mut c = run.connect(&format!("userId={carol}&username=Carol"));
            c.subscribe(1, &room);
            let p = alice.next_any();
            assert_eq!(users(&p["joined"]), named(&[(&carol, "Carol")]), "{p}");
            assert_eq!(p["online"], 2, "{p}");
            c.unsubscribe(2, &room);
            let p = alice.next_any();
            assert_eq!(
                (p["type"].as_str(), p["online"].as_u64(), &p["joined"]),
                (Some("presence"), Some(1), &json!([])),
                "{p}"
            );
            let left = p["left"].as_array().cloned().unwrap_or_default();
            assert_eq!(left.len(), 1, "{p}");
            assert_eq!(left[0]["userId"], carol.as_str(), "{p}");
            assert!(is_timestamp(&left[0]["lastSeen"]), "lastSeen: {p}");
            c.close();
            alice.close();
            let a = run.server.analytics_until(|a| a["activeConnections"] == 0);
            assert_eq!(a["activeConnections"], 0);
        }
    });
}

#[test]
fn presence_is_coalesced_per_interval_and_who_came_and_went_within_one_is_in_neither_list() {
    let env = [("PRESENCE_INTERVAL_MS", "1000")];
    each_run("interval", MEMORY, &env, |run| {
        for room in run.rooms("interval") {
            let mut alice = run.connect(&format!("userId=alice&username=Alice&room={room}"));
            alice.expect("subscribed");
            only_own_arrival(&alice.settle_for(Duration::from_millis(1300)), "alice");
            let _dave = run.connect(&format!("userId=dave&username=Dave&room={room}"));
            let p = alice.next_any();
            let t0 = Instant::now();
            assert_eq!(users(&p["joined"]), named(&[("dave", "Dave")]), "{p}");
            // Within the next interval: carol comes and goes, eve and frank come.
            let carol = run.connect(&format!("userId=carol&username=Carol&room={room}"));
            carol.close();
            let _eve = run.connect(&format!("userId=eve&username=Eve&room={room}"));
            let _frank = run.connect(&format!("userId=frank&username=Frank&room={room}"));
            let p = alice.next_any();
            let waited = t0.elapsed();
            assert_eq!(p["type"], "presence", "{p}");
            assert_eq!(
                users(&p["joined"]),
                named(&[("eve", "Eve"), ("frank", "Frank")]),
                "one frame for the interval, carol in neither list: {p}"
            );
            assert_eq!(p["left"], json!([]), "{p}");
            assert_eq!(p["online"], 4, "{p}");
            assert!(
                waited >= Duration::from_millis(800),
                "at most one presence frame per room every PRESENCE_INTERVAL_MS: {waited:?}"
            );
        }
    });
}

#[test]
fn above_presence_max_members_presence_is_online_only_once_a_second_and_typing_is_off() {
    each_run("bound", MEMORY, &[("PRESENCE_MAX_MEMBERS", "2")], |run| {
        for room in run.rooms("bound") {
            let mut alice = run.connect(&format!("userId=alice&username=Alice&room={room}"));
            alice.expect("subscribed");
            let mut bob = run.connect(&format!("userId=bob&username=Bob&room={room}"));
            bob.expect("subscribed");
            alice.settle();
            bob.settle();
            let carol = run.connect(&format!("userId=carol&room={room}"));
            let p = alice.next_any();
            let t0 = Instant::now();
            assert_eq!(
                (p["type"].as_str(), p["online"].as_u64()),
                (Some("presence"), Some(3)),
                "{p}"
            );
            assert!(
                p.get("joined").is_none() && p.get("left").is_none(),
                "above the bound, online only: {p}"
            );
            let dave = run.connect(&format!("userId=dave&room={room}"));
            let p = alice.next_any();
            let waited = t0.elapsed();
            assert_eq!(
                (p["type"].as_str(), p["online"].as_u64()),
                (Some("presence"), Some(4)),
                "{p}"
            );
            assert!(p.get("joined").is_none() && p.get("left").is_none(), "{p}");
            assert!(
                waited >= Duration::from_millis(800),
                "above the bound at most one presence frame a second: {waited:?}"
            );
            bob.send(json!({"type": "typing", "roomId": room}));
            alice.expect_nothing(600);
            bob.expect_silence(100);
            // Back within the bound: the first list frame names everyone, since the joins
            // in between went unannounced.
            carol.close();
            dave.close();
            // (A count-only frame may come between the two closes.)
            let p = loop {
                let p = alice.next_except(&["typing"]);
                if p.get("joined").is_some() {
                    break p;
                }
            };
            assert_eq!(
                (p["type"].as_str(), p["online"].as_u64()),
                (Some("presence"), Some(2)),
                "{p}"
            );
            assert_eq!(
                users(&p["users"]),
                named(&[("alice", "Alice"), ("bob", "Bob")]),
                "the whole set: {p}"
            );
            assert!(p["joined"].is_array() && p["left"].is_array(), "{p}");
            // In sync again: the next change is only a change.
            bob.close();
            let p = alice.next_except(&["typing"]);
            assert_eq!(p["left"][0]["userId"], "bob", "{p}");
            assert_eq!(p["online"], 1, "{p}");
            assert!(p.get("users").is_none(), "{p}");
        }
    });
}

/// `subscribed.users` is the set as of the room's last presence frame: with a change
/// pending (dave's join, within the interval), a newcomer gets the set without it and
/// the next frame's `joined` brings it; applying the frames to it gives the room.
#[test]
fn subscribed_lists_who_was_online_as_of_the_last_presence_frame() {
    // Long enough that eve's subscribe surely comes within dave's interval.
    let env = [("PRESENCE_INTERVAL_MS", "2000")];
    each_run("baseline", BOTH, &env, |run| {
        for room in run.rooms("baseline") {
            let mut alice = run.connect(&format!("userId=alice&username=Alice&room={room}"));
            let s = alice.expect("subscribed");
            assert_eq!(s["users"], json!([]), "nobody before alice's own join: {s}");
            only_own_arrival(&alice.settle_for(Duration::from_millis(2300)), "alice");
            let _dave = run.connect(&format!("userId=dave&username=Dave&room={room}"));
            let mut eve = run.connect("userId=eve&username=Eve");
            let s = eve.subscribe(1, &room);
            assert_eq!(
                users(&s["users"]),
                named(&[("alice", "Alice")]),
                "dave's join is still pending: {s}"
            );
            assert_eq!(s["online"], 3, "{s}");
            let p = eve.next_except(&["chat", "typing"]);
            assert_eq!(
                users(&p["joined"]),
                named(&[("dave", "Dave"), ("eve", "Eve")]),
                "{p}"
            );
            assert_eq!(p["online"], 3, "{p}");
        }
    });
}

#[test]
fn presence_false_turns_off_presence_and_typing_frames() {
    each_run("presenceoff", MEMORY, &[("PRESENCE", "false")], |run| {
        for room in run.rooms("presenceoff") {
            let mut alice = run.connect(&format!("userId=alice&room={room}"));
            alice.expect("subscribed");
            let mut bob = run.connect(&format!("userId=bob&room={room}"));
            bob.expect("subscribed");
            bob.send(json!({"type": "typing", "roomId": room}));
            alice.expect_nothing(QUIET.as_millis() as u64);
            bob.send(chat_frame(1, &room, "hi"));
            assert_chat(&alice.next_any(), &room, 1, "hi");
            bob.close();
            alice.expect_nothing(QUIET.as_millis() as u64);
        }
    });
}

#[test]
fn presence_endpoint_says_online_and_last_seen_per_user() {
    each_run("presenceapi", MEMORY, &[], |run| {
        let _alice = run.connect("userId=alice");
        let _bob = run.server.connect("userId=bob&room=v1room");
        let carol = run.connect("userId=carol");
        carol.close();
        let path = "/api/presence?users=alice,bob,carol,dave";
        let mut body = Value::Null;
        wait_until(Duration::from_secs(5), || {
            body = run.server.get_json(path);
            body["users"]["carol"]["online"] == false
        });
        let listed = body["users"].as_object().cloned().unwrap_or_default();
        assert_eq!(listed.len(), 4, "one entry per id asked: {body}");
        let online = json!({"online": true, "lastSeen": null});
        let never = json!({"online": false, "lastSeen": null});
        assert_eq!(body["users"]["alice"], online, "a v2 connection: {body}");
        assert_eq!(body["users"]["bob"], online, "a v1 connection: {body}");
        assert_eq!(body["users"]["dave"], never, "never connected: {body}");
        assert_eq!(body["users"]["carol"]["online"], false, "{body}");
        assert!(
            is_timestamp(&body["users"]["carol"]["lastSeen"]),
            "when carol's last connection closed: {body}"
        );
        // Back: online, and lastSeen null while she has a connection.
        let _carol = run.connect("userId=carol");
        wait_until(Duration::from_secs(5), || {
            body = run.server.get_json("/api/presence?users=carol");
            body["users"]["carol"]["online"] == true
        });
        assert_eq!(body["users"]["carol"], online, "{body}");
        // 1 to 100 distinct ids.
        let hundred: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
        let path = format!("/api/presence?users={},u0,u1", hundred.join(","));
        let body = run.server.get_json(&path);
        assert_eq!(
            body["users"].as_object().map(|u| u.len()),
            Some(100),
            "100 distinct ids (two repeated)"
        );
        let too_many = format!("/api/presence?users={},u100", hundred.join(","));
        for path in ["/api/presence?users=", "/api/presence", too_many.as_str()] {
            let r = run.server.get(path);
            assert_eq!(r.status, 400, "{path}: {}", r.body);
            assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
            assert_eq!(r.json()["error"], "invalid_users", "{path}: {}", r.body);
        }
    });
}

#[test]
fn analytics_lists_a_v2_connection_under_its_first_subscription() {
    each_run("details", MEMORY, &[], |run| {
        let rooms = run.rooms("details");
        let _none = run.connect("userId=nowhere");
        let mut two = run.connect("userId=twice");
        for (i, room) in rooms.iter().rev().enumerate() {
            two.subscribe(i as u32, room);
        }
        let first = rooms.last().cloned().unwrap_or_default();
        let a = run.server.analytics_until(|a| {
            a["activeUserDetails"]
                .as_array()
                .is_some_and(|d| d.len() == 2)
        });
        let room_of = |user: &str| {
            a["activeUserDetails"]
                .as_array()
                .and_then(|d| d.iter().find(|u| u["userId"] == user))
                .map(|u| u["roomId"].clone())
                .unwrap_or_else(|| panic!("{user} in activeUserDetails: {a}"))
        };
        assert_eq!(room_of("nowhere"), "", "no subscription: {a}");
        assert_eq!(
            room_of("twice"),
            first.as_str(),
            "its first subscription: {a}"
        );
    });
}

// ---------------------------------------------------------------------------------------
// Typing.

#[test]
fn typing_sets_are_sent_on_change_and_stop_or_a_chat_ends_them() {
    each_run("typing", MEMORY, &[], |run| {
        for room in run.rooms("typing") {
            let mut alice = run.connect(&format!("userId=alice&username=Alice&room={room}"));
            alice.expect("subscribed");
            let mut bob = run.connect(&format!("userId=bob&username=Bob&room={room}"));
            bob.expect("subscribed");
            alice.settle();
            bob.settle();
            let expect_set = |c: &mut V2, set: &[(&str, &str)], after: &str| {
                let t = c.expect("typing");
                assert_eq!(t["roomId"], room.as_str(), "{t}");
                assert_eq!(users(&t["users"]), named(set), "after {after}: {t}");
            };
            bob.send(json!({"type": "typing", "roomId": room}));
            for c in [&mut alice, &mut bob] {
                expect_set(c, &[("bob", "Bob")], "bob's typing (own included)");
            }
            alice.send(json!({"type": "typing", "roomId": room}));
            for c in [&mut alice, &mut bob] {
                expect_set(c, &[("alice", "Alice"), ("bob", "Bob")], "alice's typing");
            }
            bob.send(json!({"type": "typing", "roomId": room, "stop": true}));
            for c in [&mut alice, &mut bob] {
                expect_set(c, &[("alice", "Alice")], "bob's stop");
            }
            alice.send(chat_frame(1, &room, "done"));
            for (c, n) in [(&mut alice, 3), (&mut bob, 2)] {
                let frames: Vec<Value> = (0..n).map(|_| c.next()).collect();
                let typing: Vec<&Value> = frames.iter().filter(|f| f["type"] == "typing").collect();
                assert_eq!(typing.len(), 1, "a chat ends alice's typing: {frames:?}");
                assert_eq!(typing[0]["users"], json!([]), "{frames:?}");
                assert_eq!(typing[0]["count"], 0, "{frames:?}");
                let rest: Vec<&str> = frames
                    .iter()
                    .filter(|f| f["type"] != "typing")
                    .map(|f| f["type"].as_str().unwrap_or_default())
                    .collect();
                let want: &[&str] = if n == 3 { &["chat", "ack"] } else { &["chat"] };
                assert_eq!(rest, want, "{frames:?}");
            }
            alice.expect_silence(300);
            bob.expect_silence(50);
        }
    });
}

#[test]
fn typing_expires_six_seconds_after_the_last_typing_frame() {
    // Six seconds: run once, with two workers, in a room the second worker owns.
    let server = Server::start(2, &[]);
    let room = room_on("expiry", 1, 2);
    let mut alice = V2::connect(&server, &format!("userId=alice&room={room}"));
    alice.expect("subscribed");
    let mut bob = V2::connect(&server, &format!("userId=bob&username=Bob&room={room}"));
    bob.expect("subscribed");
    alice.settle();
    let sent = Instant::now();
    bob.send(json!({"type": "typing", "roomId": room}));
    let t = alice.expect("typing");
    assert_eq!(users(&t["users"]), named(&[("bob", "Bob")]), "{t}");
    let t = alice.expect("typing");
    let after = sent.elapsed();
    assert_eq!(t["users"], json!([]), "{t}");
    assert!(
        (Duration::from_millis(5900)..Duration::from_millis(7500)).contains(&after),
        "typing ends 6 s after the last typing frame, not after {after:?}"
    );
}

#[test]
fn typing_over_its_bucket_is_dropped_silently_and_counted() {
    each_run("typingbucket", MEMORY, &[], |run| {
        for (n, room) in run.rooms("typingbucket").into_iter().enumerate() {
            let mut alice = run.connect(&format!("userId=alice&room={room}"));
            alice.expect("subscribed");
            let mut bob = run.connect(&format!("userId=bob&username=Bob&room={room}"));
            bob.expect("subscribed");
            alice.settle();
            bob.settle();
            // Bursts of 3: the 4th and 5th are dropped, with no error.
            for _ in 0..5 {
                bob.send(json!({"type": "typing", "roomId": room}));
            }
            for c in [&mut alice, &mut bob] {
                let t = c.expect("typing");
                assert_eq!(users(&t["users"]), named(&[("bob", "Bob")]), "{t}");
                c.expect_silence(300);
            }
            let dropped = 2 * (n as u64 + 1);
            let a = run
                .server
                .analytics_until(|a| a["typingDropped"] == dropped);
            assert_eq!(
                a["typingDropped"], dropped,
                "typingDropped in /api/analytics"
            );
            let metrics = run.server.get("/metrics").body;
            assert!(
                metrics.contains(&format!("hubbub_typing_dropped_total {dropped}\n")),
                "hubbub_typing_dropped_total {dropped} in /metrics"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------
// Read markers.

#[test]
fn read_markers_move_forward_are_clamped_broadcast_and_given_in_subscribed() {
    each_run("read", MEMORY, &[("RATE_LIMIT_PER_SEC", "0")], |run| {
        for room in run.rooms("read") {
            let mut alice = run.connect("userId=alice");
            alice.subscribe(1, &room);
            for i in 1..=3 {
                alice.chat_acked(1 + i, &room, &format!("m{i}"), None);
            }
            let mut bob = run.connect("userId=bob");
            let backlog = |bob: &mut V2| {
                for seq in 1..=3 {
                    let m = bob.next_except(&["presence", "read"]);
                    assert_chat(&m, &room, seq, &format!("m{seq}"));
                }
            };
            let resubscribe = |bob: &mut V2, id: u32| {
                bob.unsubscribe(id, &room);
                let s = bob.subscribe(id + 1, &room);
                backlog(bob);
                s
            };
            let s = bob.subscribe(1, &room);
            assert_eq!(subscribed_state(&s).2, 0, "no marker yet: {s}");
            backlog(&mut bob);
            bob.send(json!({"type": "read", "id": 2, "roomId": room, "seq": 2}));
            let r = alice.next();
            let first = Instant::now();
            assert_eq!(
                read_of(&r),
                ("read", room.as_str(), "bob", 2),
                "bob's marker reaches the room: {r}"
            );
            // Lower: ignored.
            bob.send(json!({"type": "read", "id": 3, "roomId": room, "seq": 1}));
            let s = resubscribe(&mut bob, 4);
            assert_eq!(subscribed_state(&s).2, 2, "markers only move forward: {s}");
            // Past the room's seq: clamped to it.
            bob.send(json!({"type": "read", "id": 6, "roomId": room, "seq": 99}));
            let r = alice.next();
            let gap = first.elapsed();
            assert_eq!(
                read_of(&r),
                ("read", room.as_str(), "bob", 3),
                "clamped to the room's seq: {r}"
            );
            assert!(
                gap >= Duration::from_millis(1700),
                "one read frame per user and room every 2 s: {gap:?}"
            );
            let s = resubscribe(&mut bob, 7);
            assert_eq!(subscribed_state(&s).2, 3, "{s}");
            // The marker is the user's: another connection of bob has it, alice has none.
            let mut bob2 = run.connect("userId=bob");
            let s = bob2.subscribe(1, &room);
            assert_eq!(subscribed_state(&s).2, 3, "{s}");
            alice.unsubscribe(20, &room);
            let s = alice.subscribe(21, &room);
            assert_eq!(subscribed_state(&s).2, 0, "{s}");
        }
    });
}

// ---------------------------------------------------------------------------------------
// v1 beside v2.

#[test]
fn v1_and_v2_connections_share_a_room() {
    each_run("mixed", MEMORY, &[("RATE_LIMIT_PER_SEC", "0")], |run| {
        for room in run.rooms("mixed") {
            let mut olga = run
                .server
                .connect(&format!("userId=olga&username=Olga&room={room}"));
            match olga.frame() {
                ServerFrame::Join(j) => assert_eq!(j.user_id, "olga"),
                other => panic!("olga's own join first: {other:?}"),
            }
            let mut alice = run.connect(&format!("userId=alice&username=Alice&room={room}"));
            let s = alice.expect("subscribed");
            assert_eq!(subscribed_state(&s).3, 2, "the v1 user counts: {s}");
            let join = olga.next_json();
            assert_eq!(
                (
                    join["type"].as_str(),
                    join["roomId"].as_str(),
                    join["userId"].as_str(),
                    join["username"].as_str()
                ),
                (
                    Some("join"),
                    Some(room.as_str()),
                    Some("alice"),
                    Some("Alice")
                ),
                "a v2 subscriber is a v1 join: {join}"
            );
            alice.settle();
            // A v1 arrival is presence for v2.
            let _pete = run
                .server
                .connect(&format!("userId=pete&username=Pete&room={room}"));
            let p = alice.next_any();
            assert_eq!(p["type"], "presence", "{p}");
            assert_eq!(users(&p["joined"]), named(&[("pete", "Pete")]), "{p}");
            assert_eq!(p["online"], 3, "{p}");
            // The same chat frames, both ways.
            olga.chat("from v1");
            let o = olga.next_json_not_presence();
            let a = alice.expect("chat");
            assert_chat(&a, &room, 1, "from v1");
            assert_eq!(a, o, "one chat frame for v1 and v2");
            let (chat, _) = alice.chat_acked(1, &room, "from v2", None);
            assert_eq!(
                olga.next_json_not_presence(),
                chat,
                "one chat frame for v1 and v2"
            );
            // Nothing v2-only reaches v1.
            alice.send(json!({"type": "typing", "roomId": room}));
            alice.expect("typing");
            WsClient::expect_silence(&mut olga, Duration::from_millis(400), |_| false);
            // A v2 close is a v1 leave.
            alice.close();
            let leave = olga.next_json();
            assert_eq!(
                (leave["type"].as_str(), leave["userId"].as_str()),
                (Some("leave"), Some("alice")),
                "{leave}"
            );
        }
    });
}

#[test]
fn a_v1_connection_sending_v2_frames_gets_invalid_type() {
    each_run("v1types", MEMORY, &[], |run| {
        let mut c = run.server.connect("userId=v1&room=v1room");
        for frame in [
            json!({"type": "subscribe", "roomId": "other"}),
            json!({"type": "subscribe", "id": 1, "roomId": "other"}),
            json!({"type": "unsubscribe", "roomId": "v1room"}),
            json!({"type": "typing", "roomId": "v1room"}),
            json!({"type": "read", "roomId": "v1room", "seq": 0}),
        ] {
            c.send_text(&frame.to_string());
            assert_eq!(c.next_error(), "invalid_type", "v1 sends {frame}");
        }
        // Still v1: a chat goes to its room whatever roomId says.
        c.send_text(r#"{"type":"chat","roomId":"other","content":"hi"}"#);
        let m = c.next_chat();
        assert_eq!((m.room_id.as_str(), m.seq), ("v1room", 1));
    });
}

// ---------------------------------------------------------------------------------------
// Configuration.

#[test]
fn v2_settings_are_checked_at_start() {
    let long_node = "n".repeat(65);
    for (var, value) in [
        ("MAX_SUBSCRIPTIONS", "0"),
        ("MAX_SUBSCRIPTIONS", "1025"),
        ("PRESENCE_INTERVAL_MS", "9"),
        ("PRESENCE_INTERVAL_MS", "60001"),
        ("NODE_ID", long_node.as_str()),
    ] {
        let log = std::env::temp_dir().join(format!("hubbub-v2-config-{}.log", free_port()));
        let file = std::fs::File::create(&log).expect("create the log file");
        let mut child = Process::spawn(
            Command::new(env!("CARGO_BIN_EXE_hubbub"))
                .env_clear()
                .env("PORT", free_port().to_string())
                .env("BIND", "127.0.0.1")
                .env(var, value)
                .stdout(Stdio::null())
                .stderr(file),
            "hubbub",
        );
        let mut status = None;
        wait_until(Duration::from_secs(5), || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        assert!(
            status.is_some_and(|s| !s.success()),
            "{var}={value} started ({status:?})"
        );
        assert!(stderr.contains(var), "{var}={value}: not named in {stderr}");
    }
    let help = Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .arg("--help")
        .output()
        .expect("run hubbub --help");
    let help = String::from_utf8_lossy(&help.stdout);
    for var in ["MAX_SUBSCRIPTIONS", "PRESENCE_INTERVAL_MS", "NODE_ID"] {
        assert!(help.contains(&format!("[env: {var}")), "--help lacks {var}");
    }
}
