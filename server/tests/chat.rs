//! Chat over WebSocket against the real binary: fields and defaults, server-authoritative
//! fields, presence, backlog and `since`, errors, close codes.

mod common;

use common::{Event, Server};
use hubbub_core::protocol::ServerFrame;

#[test]
fn message_fields_defaults_and_authority() {
    for workers in [1, 2] {
        let server = Server::start(workers, &[]);
        let mut a = server.connect("");
        a.send_text(r#"{"type":"chat","content":"  hello  ","messageId":"x","userId":"evil","seq":99,"roomId":"other","timestamp":"t"}"#);
        let m = a.next_chat();
        assert_eq!(
            (m.room_id.as_str(), m.user_id.as_str(), m.username.as_str()),
            ("global", "anonymous", "Anonymous")
        );
        assert_eq!(m.content, "  hello  ", "kept as sent");
        assert_eq!(m.seq, 1);
        let id = uuid::Uuid::parse_str(&m.message_id).expect("uuid");
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(m.timestamp.len(), 24);
        assert!(m.timestamp.ends_with('Z') && m.timestamp.as_bytes()[19] == b'.');
    }
}

#[test]
fn room_members_receive_each_message_once_and_other_rooms_nothing() {
    let server = Server::start(2, &[]);
    let mut alice = server.connect("userId=alice&username=Alice&room=r1");
    let mut bob = server.connect("userId=bob&username=Bob&room=r1");
    let mut carol = server.connect("userId=carol&room=r2");
    alice.chat("one");
    bob.chat("two");
    // Sent from two connections at once, the two may be sequenced in either order; what
    // holds is seq 1 then 2, each once, and the same order for every member.
    let mut views = Vec::new();
    for c in [&mut alice, &mut bob] {
        let (m1, m2) = (c.next_chat(), c.next_chat());
        assert_eq!((m1.seq, m2.seq), (1, 2));
        let mut senders = [
            (m1.content.as_str(), m1.user_id.as_str()),
            (m2.content.as_str(), m2.user_id.as_str()),
        ];
        views.push(senders.map(|(content, _)| content.to_owned()));
        senders.sort();
        assert_eq!(senders, [("one", "alice"), ("two", "bob")]);
    }
    assert_eq!(views[0], views[1], "every member sees one order");
    carol.expect_silence(200);
}

#[test]
fn presence_join_and_leave() {
    let server = Server::start(2, &[]);
    let mut a = server.connect("userId=a&username=A&room=p");
    match a.frame() {
        ServerFrame::Join(j) => assert_eq!((j.user_id.as_str(), j.room_id.as_str()), ("a", "p")),
        other => panic!("{other:?}"),
    }
    let b = server.connect("userId=b&username=B&room=p");
    match a.frame() {
        ServerFrame::Join(j) => assert_eq!(j.username, "B"),
        other => panic!("{other:?}"),
    }
    b.close();
    match a.frame() {
        ServerFrame::Leave(l) => assert_eq!(l.user_id, "b"),
        other => panic!("{other:?}"),
    }
    let server = Server::start(1, &[("PRESENCE", "false")]);
    let mut a = server.connect("room=q");
    a.chat("x");
    assert!(
        matches!(a.frame(), ServerFrame::Chat(_)),
        "no join event when presence is off"
    );
}

#[test]
fn backlog_then_live_and_since() {
    let server = Server::start(2, &[("RATE_LIMIT_PER_SEC", "0"), ("BACKLOG_SIZE", "5")]);
    let mut w = server.connect("room=b&userId=w");
    for i in 1..=8 {
        w.chat(&format!("m{i}"));
    }
    for i in 1..=8 {
        assert_eq!(w.next_chat().seq, i);
    }
    // Default backlog: the newest 5, oldest first, then live.
    let mut late = server.connect("room=b&userId=late");
    let backlog: Vec<u64> = (0..5).map(|_| late.next_chat().seq).collect();
    assert_eq!(backlog, [4, 5, 6, 7, 8]);
    w.chat("m9");
    assert_eq!(late.next_chat().seq, 9);
    // since: every retained message after it, however many.
    let mut resume = server.connect("room=b&userId=r&since=2");
    let replay: Vec<u64> = (0..7).map(|_| resume.next_chat().seq).collect();
    assert_eq!(replay, [3, 4, 5, 6, 7, 8, 9]);
    let mut none = server.connect("room=b&userId=n&since=9");
    w.chat("m10");
    assert_eq!(none.next_chat().seq, 10, "nothing replayed, live follows");
}

#[test]
fn error_frames_keep_the_connection_open() {
    let server = Server::start(1, &[("RATE_LIMIT_PER_SEC", "0")]);
    let mut c = server.connect("room=e");
    let cases = [
        ("not json", "invalid_json"),
        (r#"{"type":"join","content":"x"}"#, "invalid_type"),
        (r#"{"type":"system","content":"x"}"#, "invalid_type"),
        (r#"{"type":"chat","content":"   "}"#, "empty_content"),
        (r#"{"type":"chat"}"#, "empty_content"),
    ];
    for (frame, code) in cases {
        c.send_text(frame);
        assert_eq!(c.next_error(), code, "{frame}");
    }
    let too_long = serde_json::json!({"type":"chat","content":"é".repeat(1001)}).to_string();
    c.send_text(&too_long);
    assert_eq!(c.next_error(), "content_too_long");
    let at_limit = serde_json::json!({"type":"chat","content":"é".repeat(1000)}).to_string();
    c.send_text(&at_limit);
    assert_eq!(c.next_chat().content.chars().count(), 1000);
    // A frame of exactly 8192 bytes is read (and judged on its content).
    let pad = 8192 - r#"{"type":"chat","content":""}"#.len();
    let exact = format!(r#"{{"type":"chat","content":"{}"}}"#, "a".repeat(pad));
    assert_eq!(exact.len(), 8192);
    c.send_text(&exact);
    assert_eq!(c.next_error(), "content_too_long");
    let analytics = server.analytics_until(|a| a["rejected"] == 7);
    assert_eq!(analytics["rejected"], 7);
}

#[test]
fn close_codes() {
    let server = Server::start(1, &[]);
    let mut big = server.connect("room=c");
    big.send_text(&"a".repeat(8193));
    assert_eq!(big.close_code(), Some(1009), "oversize");
    let mut bin = server.connect("room=c");
    bin.ws
        .send(tungstenite::Message::binary(vec![1, 2, 3]))
        .unwrap();
    assert_eq!(bin.close_code(), Some(1003));
    // Invalid UTF-8 in a text frame: sent as a raw frame, since clients refuse to.
    let mut bad = server.connect("room=c");
    let frame = tungstenite::protocol::frame::Frame::message(
        vec![0xff, 0xfe],
        tungstenite::protocol::frame::coding::OpCode::Data(
            tungstenite::protocol::frame::coding::Data::Text,
        ),
        true,
    );
    bad.ws.write(tungstenite::Message::Frame(frame)).unwrap();
    bad.ws.flush().unwrap();
    assert_eq!(bad.close_code(), Some(1007));
}

#[test]
fn rate_limit_drops_and_reports_once_per_second() {
    let server = Server::start(
        1,
        &[
            ("RATE_LIMIT_PER_SEC", "1"),
            ("RATE_LIMIT_BURST", "3"),
            ("PRESENCE", "false"),
        ],
    );
    let mut c = server.connect("room=rl");
    for i in 0..10 {
        c.chat(&format!("{i}"));
    }
    let mut chats = 0;
    let mut limited = 0;
    c.ws.get_mut()
        .set_read_timeout(Some(std::time::Duration::from_millis(400)))
        .unwrap();
    while let Ok(tungstenite::Message::Text(t)) = c.ws.read() {
        match ServerFrame::decode(t.as_bytes()).unwrap() {
            ServerFrame::Chat(_) => chats += 1,
            ServerFrame::Error(e) if e.code == "rate_limited" => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        (chats, limited),
        (3, 1),
        "burst of 3 accepted, one rate_limited error"
    );
    let a = server.analytics_until(|a| a["rateLimited"] == 7);
    assert_eq!(a["rateLimited"], 7);
    assert_eq!(a["totalMessages"], 3);
}

#[test]
fn client_close_is_answered() {
    let server = Server::start(1, &[]);
    let mut c = server.connect("room=x");
    c.ws.close(None).unwrap();
    loop {
        match c.next() {
            Event::Closed(_) => break,
            Event::Frame(_) => continue,
        }
    }
    let a = server.analytics_until(|a| a["activeConnections"] == 0);
    assert_eq!(a["activeConnections"], 0);
}

#[test]
fn presence_goes_quiet_above_presence_max_members_and_the_endpoint_still_answers() {
    for workers in [1, 2] {
        let server = Server::start(workers, &[("PRESENCE_MAX_MEMBERS", "2")]);
        let mut a = server.connect("userId=a&username=A&room=crowd");
        assert!(matches!(a.frame(), ServerFrame::Join(j) if j.user_id == "a"));
        let b = server.connect("userId=b&username=B&room=crowd");
        assert!(matches!(a.frame(), ServerFrame::Join(j) if j.user_id == "b"));
        // A third user: past the bound, so nobody hears of it, nor of its leave.
        let c = server.connect("userId=c&username=C&room=crowd");
        let presence = server.get_json("/api/rooms/crowd/presence");
        assert_eq!(presence["roomId"], "crowd");
        assert_eq!(presence["online"], 3);
        assert_eq!(presence["truncated"], false);
        let users: Vec<(&str, &str)> = presence["users"]
            .as_array()
            .expect("users")
            .iter()
            .map(|u| {
                (
                    u["userId"].as_str().unwrap(),
                    u["username"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(users, [("a", "A"), ("b", "B"), ("c", "C")]);
        assert!(presence["users"][0]["since"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')));
        c.close();
        a.chat("after c left");
        match a.frame() {
            ServerFrame::Chat(m) => assert_eq!(m.content, "after c left"),
            other => panic!("workers={workers}: no join or leave for c, got {other:?}"),
        }
        // What was withheld is counted: c's join and its leave.
        let a_json = server.analytics_until(|a| a["presenceWithheld"] == 2);
        assert_eq!(a_json["presenceWithheld"], 2);
        let metrics = server.get("/metrics");
        assert!(
            metrics.body.contains("hubbub_presence_withheld_total 2\n"),
            "workers={workers}"
        );
        // Back at the bound: b's leave is announced.
        b.close();
        assert!(matches!(a.frame(), ServerFrame::Leave(l) if l.user_id == "b"));
        let empty = server.get_json("/api/rooms/nobody/presence");
        assert_eq!(
            (
                empty["online"].as_u64(),
                empty["users"].as_array().map(Vec::len)
            ),
            (Some(0), Some(0))
        );
    }
}

#[test]
fn a_newcomers_join_reaches_members_before_its_first_message_and_soon() {
    for workers in [1, 2] {
        let server = Server::start(workers, &[]);
        let mut a = server.connect("userId=a&room=order");
        assert!(matches!(a.frame(), ServerFrame::Join(j) if j.user_id == "a"));
        let started = std::time::Instant::now();
        let mut b = server.connect("userId=b&room=order");
        // The chat right behind the join must not overtake it.
        b.chat("first words");
        match a.frame() {
            ServerFrame::Join(j) => assert_eq!(j.user_id, "b"),
            other => panic!("workers={workers}: the join comes first, got {other:?}"),
        }
        match a.frame() {
            ServerFrame::Chat(m) => assert_eq!(m.content, "first words"),
            other => panic!("workers={workers}: then the chat, got {other:?}"),
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // Alone, a join arrives promptly.
        let started = std::time::Instant::now();
        let _c = server.connect("userId=c&room=order");
        assert!(matches!(a.frame(), ServerFrame::Join(j) if j.user_id == "c"));
        assert!(
            started.elapsed() < std::time::Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
    }
}
