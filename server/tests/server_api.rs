//! The server API (docs/PROTOCOL.md §4.2) against the real binary: `POST /api/server/…`
//! with `API_KEY`, on WORKERS=1 and 2 (rooms of each worker), publish also on DynamoDB.

mod common;

use std::time::Duration;

use serde_json::{json, Value};

use common::matrix::{each_run, Run, BOTH, MEMORY};
use common::{assert_refused, Server};
use hubbub_test_support::http::{self, Response};
use hubbub_test_support::poll::wait_until;
use hubbub_test_support::ws::WsEvent;

const KEY: &str = "test-api-key-0123456789";
const WITH_KEY: &[(&str, &str)] = &[("API_KEY", KEY), ("RATE_LIMIT_PER_SEC", "0")];

fn auth() -> String {
    format!("Authorization: apikey {KEY}")
}

fn post(server: &Server, action: &str, body: &Value) -> Response {
    http::post(
        server.port,
        &format!("/api/server/{action}"),
        &[&auth()],
        &body.to_string(),
    )
    .unwrap_or_else(|e| panic!("POST /api/server/{action}: {e}"))
}

fn post_ok(server: &Server, action: &str, body: &Value, status: u16) -> Value {
    let r = post(server, action, body);
    assert_eq!(r.status, status, "POST {action} {body}: {}", r.body);
    r.json()
}

/// The next frame of a v1 connection that is not presence.
fn v1_next(c: &mut common::Client) -> Value {
    c.next_json_not_presence()
}

/// The close code a connection ends with, frames before it skipped.
fn close_code(ws: &mut hubbub_test_support::ws::WsClient) -> Option<u16> {
    loop {
        match ws.next_event() {
            WsEvent::Text(_) => continue,
            WsEvent::Closed(code) => return code,
        }
    }
}

#[test]
fn publish_broadcasts_a_system_message_to_v1_and_v2_members_and_stores_it() {
    each_run("publish", BOTH, WITH_KEY, |run: &Run| {
        let server = &run.server;
        let rooms = run.rooms("announce");
        let mut v2 = run.connect("userId=vera");
        for (i, room) in rooms.iter().enumerate() {
            v2.subscribe(i as u32 + 1, room);
        }
        v2.settle();
        for room in &rooms {
            let mut v1 = server.connect(&format!("userId=ulf&room={room}"));
            v2.settle();
            let sent = post_ok(
                server,
                "publish",
                &json!({"roomId": room, "type": "system", "content": "Deploy at 5"}),
                201,
            );
            assert_eq!(
                (
                    sent["type"].as_str(),
                    sent["roomId"].as_str(),
                    sent["content"].as_str(),
                    sent["userId"].as_str(),
                    sent["username"].as_str(),
                    sent["seq"].as_u64(),
                ),
                (
                    Some("system"),
                    Some(room.as_str()),
                    Some("Deploy at 5"),
                    Some("system"),
                    Some("System"),
                    Some(1)
                ),
                "the answer is the message as broadcast: {sent}"
            );
            assert!(sent["messageId"].is_string() && sent["timestamp"].is_string());
            assert_eq!(v1_next(&mut v1), sent, "the v1 member gets the same frame");
            let got = v2.next_except(&["presence", "typing", "read"]);
            assert_eq!(got, sent, "the v2 subscriber gets the same frame");
            // In a user's name, it is a chat message like any other.
            let bot = post_ok(
                server,
                "publish",
                &json!({"roomId": room, "content": "beep", "userId": "bot", "username": "Bot"}),
                201,
            );
            assert_eq!(
                (
                    bot["type"].as_str(),
                    bot["userId"].as_str(),
                    bot["username"].as_str(),
                    bot["seq"].as_u64()
                ),
                (Some("chat"), Some("bot"), Some("Bot"), Some(2)),
                "{bot}"
            );
            assert_eq!(v1_next(&mut v1), bot);
            // A client's own message follows in the same order.
            v1.chat("after");
            assert_eq!(v1_next(&mut v1)["seq"], 3);
            v1.close();
        }
        // Kept like a chat message, with its type: in memory, and in the table (the
        // history endpoints read the table when there is one).
        for room in &rooms {
            let mut history = Value::Null;
            let path = format!("/api/rooms/{room}/messages");
            let stored = wait_until(Duration::from_secs(10), || {
                history = server.get_json(&path);
                history["count"] == 3
            });
            assert!(stored, "{history}");
            let types: Vec<&str> = history["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| m["type"].as_str().unwrap_or_default())
                .collect();
            assert_eq!(types, ["system", "chat", "chat"], "{history}");
        }
        let analytics = server.analytics_until(|a| a["serverPublished"] == 2 * rooms.len());
        assert_eq!(analytics["serverPublished"], 2 * rooms.len());
        assert_eq!(analytics["totalMessages"], 3 * rooms.len(), "{analytics}");
        let metrics = server.get("/metrics").body;
        assert!(
            metrics.contains(&format!(
                "hubbub_server_published_total {}",
                2 * rooms.len()
            )),
            "{metrics}"
        );
    });
}

#[test]
fn the_server_api_answers_only_to_its_key_and_refuses_bad_bodies_with_a_code() {
    // Without API_KEY there is no server API.
    let off = Server::start(1, &[]);
    let r = http::post(
        off.port,
        "/api/server/publish",
        &[&auth()],
        r#"{"roomId":"r","content":"x"}"#,
    )
    .unwrap();
    assert_refused(&r, 404, "not_found");
    drop(off);

    let server = Server::start(1, WITH_KEY);
    let mut watcher = server.connect("userId=w&room=guarded");
    let body = r#"{"roomId":"guarded","content":"x"}"#;
    for header in [
        None,
        Some("Authorization: apikey wrong-key-0123456789".to_owned()),
        Some(format!("Authorization: Bearer {KEY}")),
        Some(format!("Authorization: apikey {KEY}x")),
    ] {
        let headers: Vec<&str> = header.iter().map(String::as_str).collect();
        let r = http::post(server.port, "/api/server/publish", &headers, body).unwrap();
        assert_refused(&r, 401, "unauthorized");
        assert_eq!(r.header("www-authenticate"), Some("apikey"), "{header:?}");
    }
    for (body, code) in [
        ("", "invalid_body"),
        ("not json", "invalid_body"),
        (r#"["guarded"]"#, "invalid_body"),
        (r#"{"roomId":7,"content":"x"}"#, "invalid_body"),
        (r#"{"content":"x"}"#, "invalid_room"),
        (r#"{"roomId":"a b","content":"x"}"#, "invalid_room"),
        (r#"{"roomId":"guarded"}"#, "empty_content"),
        (r#"{"roomId":"guarded","content":" \n "}"#, "empty_content"),
        (
            r#"{"roomId":"guarded","content":"x","type":"join"}"#,
            "invalid_type",
        ),
        (
            r#"{"roomId":"guarded","content":"x","userId":""}"#,
            "invalid_user_id",
        ),
        (
            r#"{"roomId":"guarded","content":"x","username":"\u0007"}"#,
            "invalid_username",
        ),
    ] {
        let r = http::post(server.port, "/api/server/publish", &[&auth()], body).unwrap();
        assert_refused(&r, 400, code);
    }
    let long = json!({"roomId": "guarded", "content": "é".repeat(1001)});
    assert_refused(&post(&server, "publish", &long), 400, "content_too_long");
    for (action, body, code) in [
        ("disconnect", "{}", "invalid_user_id"),
        ("unsubscribe", r#"{"userId":"w"}"#, "invalid_room"),
        ("unsubscribe", r#"{"roomId":"guarded"}"#, "invalid_user_id"),
    ] {
        let r = http::post(
            server.port,
            &format!("/api/server/{action}"),
            &[&auth()],
            body,
        )
        .unwrap();
        assert_refused(&r, 400, code);
    }
    // Over 16 KiB: refused unread.
    let huge = json!({"roomId": "guarded", "content": "x".repeat(17 * 1024)});
    let r = post(&server, "publish", &huge);
    assert_refused(&r, 413, "body_too_large");
    assert_eq!(r.header("connection"), Some("close"));
    // Other methods and unknown actions.
    let r = server.get("/api/server/publish");
    assert_refused(&r, 405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("POST, OPTIONS"));
    let r = http::post(server.port, "/api/server/reboot", &[&auth()], "{}").unwrap();
    assert_refused(&r, 404, "not_found");
    // A chunked body is refused with a clear 400.
    let r = server.request(&format!(
        "POST /api/server/publish HTTP/1.1\r\nHost: x\r\n{}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        auth()
    ));
    assert_refused(&r, 400, "bad_request");
    // None of it reached the room, and a good request still does.
    watcher.expect_silence(300);
    post_ok(
        &server,
        "publish",
        &json!({"roomId": "guarded", "content": "ok"}),
        201,
    );
    assert_eq!(v1_next(&mut watcher)["content"], "ok");
    // Keep-alive: two requests on one connection, the body of the first read exactly.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let one = r#"{"userId":"nobody"}"#;
    let raw = format!(
        "POST /api/server/disconnect HTTP/1.1\r\nHost: x\r\n{}\r\nContent-Length: {}\r\n\r\n{one}",
        auth(),
        one.len()
    );
    use std::io::Write;
    s.write_all(raw.repeat(2).as_bytes()).unwrap();
    for _ in 0..2 {
        let r = http::read_response(&mut s).unwrap();
        assert_eq!((r.status, r.json()), (200, json!({"disconnected": 0})));
    }
}

#[test]
fn a_short_api_key_stops_the_server_with_a_message_naming_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .env_clear()
        .env("API_KEY", "short")
        .env("PORT", hubbub_test_support::free_port().to_string())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("API_KEY must be at least 16 bytes"),
        "{stderr}"
    );
}

#[test]
fn disconnect_closes_every_connection_of_the_user_on_every_worker_with_4002() {
    each_run("disconnect", MEMORY, WITH_KEY, |run: &Run| {
        let server = &run.server;
        let rooms = run.rooms("dc");
        // Enough connections that, with two workers, both hold some.
        let mut eve_v1: Vec<_> = (0..6)
            .map(|i| server.connect(&format!("userId=eve&room={}", rooms[i % rooms.len()])))
            .collect();
        let mut eve_v2: Vec<_> = (0..2).map(|_| run.connect("userId=eve")).collect();
        for c in &mut eve_v2 {
            c.subscribe(1, &rooms[0]);
        }
        let mut bob = server.connect(&format!("userId=bob&room={}", rooms[0]));
        let answer = post_ok(server, "disconnect", &json!({"userId": "eve"}), 200);
        assert_eq!(answer, json!({"disconnected": 8}));
        for c in &mut eve_v1 {
            assert_eq!(close_code(c), Some(4002));
        }
        for c in &mut eve_v2 {
            assert_eq!(close_code(&mut c.ws), Some(4002));
        }
        // Others are untouched, and eve may come back.
        bob.chat("still here");
        assert_eq!(v1_next(&mut bob)["content"], "still here");
        let mut back = server.connect(&format!("userId=eve&room={}", rooms[0]));
        assert_eq!(v1_next(&mut back)["content"], "still here", "the backlog");
        bob.chat("welcome back");
        assert_eq!(v1_next(&mut back)["content"], "welcome back");
        let again = post_ok(server, "disconnect", &json!({"userId": "nobody"}), 200);
        assert_eq!(again, json!({"disconnected": 0}));
    });
}

#[test]
fn unsubscribe_ends_the_users_subscriptions_to_one_room() {
    each_run("unsubscribe", MEMORY, WITH_KEY, |run: &Run| {
        let server = &run.server;
        let rooms = run.rooms("un");
        let (target, other) = (&rooms[0], rooms.last().unwrap_or(&rooms[0]));
        let other = if other == target {
            "un-elsewhere".to_owned()
        } else {
            other.clone()
        };
        let mut eve = run.connect("userId=eve");
        eve.subscribe(1, target);
        eve.subscribe(2, &other);
        let mut eve_v1_target = server.connect(&format!("userId=eve&room={target}"));
        let mut eve_v1_other = server.connect(&format!("userId=eve&room={other}"));
        let mut bob = run.connect("userId=bob");
        bob.subscribe(1, target);
        eve.settle();
        bob.settle();
        let answer = post_ok(
            server,
            "unsubscribe",
            &json!({"userId": "eve", "roomId": target}),
            200,
        );
        assert_eq!(answer, json!({"unsubscribed": 2}));
        let frame = eve.next_except(&["presence", "typing", "read"]);
        assert_eq!(
            frame,
            json!({"type": "unsubscribed", "roomId": target, "reason": "server"}),
            "a server-made unsubscribe has no id and says why"
        );
        assert_eq!(close_code(&mut eve_v1_target), Some(4003));
        // The room goes on without eve; her other room still reaches her.
        let sent = post_ok(
            server,
            "publish",
            &json!({"roomId": target, "content": "without eve"}),
            201,
        );
        assert_eq!(bob.next_except(&["presence", "typing", "read"]), sent);
        let elsewhere = post_ok(
            server,
            "publish",
            &json!({"roomId": other, "content": "to eve"}),
            201,
        );
        assert_eq!(eve.next_except(&["presence", "typing", "read"]), elsewhere);
        assert_eq!(v1_next(&mut eve_v1_other), elsewhere);
        // She may subscribe again.
        eve.subscribe(3, target);
    });
}
