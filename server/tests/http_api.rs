//! HTTP endpoints and upgrade refusals against the real binary.

mod common;

use common::{Client, Server};
use hubbub_test_support::http;

#[test]
fn upgrade_refusals_have_statuses_and_json_bodies() {
    let server = Server::start(
        2,
        &[
            ("ALLOWED_ORIGINS", "http://good.example"),
            ("MAX_CONNECTIONS", "2"),
        ],
    );
    let refused = |query: &str, headers: &[(&str, &str)]| match Client::connect(
        &server.url(query),
        headers,
    ) {
        Ok(_) => panic!("{query} was admitted"),
        Err((status, body)) => {
            let json: serde_json::Value =
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
            assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
            (status, json["error"].as_str().unwrap_or("").to_owned())
        }
    };
    assert_eq!(refused("room=a%2Fb", &[]), (400, "invalid_room".into()));
    assert_eq!(
        refused(&format!("userId={}", "u".repeat(129)), &[]),
        (400, "invalid_user_id".into())
    );
    assert_eq!(
        refused("username=%20", &[]),
        (400, "invalid_username".into())
    );
    assert_eq!(refused("since=abc", &[]), (400, "invalid_since".into()));
    assert_eq!(refused("", &[("Origin", "http://evil.example")]).0, 403);
    // Allowed origin, and no Origin at all (non-browser client), pass.
    let a = Client::connect(&server.url(""), &[("Origin", "http://good.example")])
        .expect("allowed origin");
    let b = Client::connect(&server.url(""), &[]).expect("no origin");
    assert_eq!(refused("", &[]), (503, "at_capacity".into()));
    drop((a, b));
}

#[test]
fn token_auth_via_query_and_bearer() {
    let secret = "a-legacy-secret-of-32-bytes-long!";
    let server = Server::start(1, &[("AUTH_SECRET", secret)]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let good = hubbub_core::auth::sign(secret.as_bytes(), "tok-user", now + 3600);
    let expired = hubbub_core::auth::sign(secret.as_bytes(), "tok-user", now - 10);
    let forged = hubbub_core::auth::sign(b"other", "tok-user", now + 3600);
    for (query, headers) in [
        (String::new(), vec![]),
        (format!("token={expired}"), vec![]),
        (format!("token={forged}"), vec![]),
        ("token=garbage".to_owned(), vec![]),
    ] {
        let hdrs: Vec<(&str, &str)> = headers;
        match Client::connect(&server.url(&query), &hdrs) {
            Ok(_) => panic!("{query} admitted"),
            Err((status, body)) => assert_eq!(
                (status, body.contains("unauthorized")),
                (401, true),
                "{query}"
            ),
        }
    }
    // The token names the user; a userId parameter is ignored.
    let mut c = Client::connect(
        &server.url(&format!("token={good}&userId=spoof&room=t")),
        &[],
    )
    .unwrap();
    c.chat("hi");
    assert_eq!(c.next_chat().user_id, "tok-user");
    let bearer = format!("Bearer {good}");
    let mut c = Client::connect(&server.url("room=t2"), &[("Authorization", &bearer)]).unwrap();
    c.chat("hi");
    assert_eq!(c.next_chat().user_id, "tok-user");
}

#[test]
fn health_cors_404_405_options() {
    let server = Server::start(2, &[]);
    let mut c = server.connect("room=h");
    c.chat("x");
    c.next_chat();
    let health = server.get_json("/health");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["clients"], 1);
    assert_eq!(health["storage"], "disabled");
    let r = server.get("/health");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, POST, PUT, PATCH, DELETE, OPTIONS")
    );
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("Content-Type, Authorization")
    );
    let r = server.request("OPTIONS /api/analytics HTTP/1.1\r\nHost: x\r\nOrigin: http://a\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let r = server.get("/api/nothing");
    assert_eq!(
        (r.status, r.header("content-type")),
        (404, Some("application/json"))
    );
    assert_eq!(r.json()["error"], "not_found");
    let r = server.request("DELETE /api/rooms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(
        (r.status, r.header("content-type")),
        (405, Some("application/json"))
    );
    assert!(r.header("allow").is_some_and(|a| a.contains("GET")));
    let r = server.get("/ws");
    assert_eq!(r.status, 426);

    let listed = Server::start(
        1,
        &[("ALLOWED_ORIGINS", "http://a.example,http://b.example")],
    );
    let r = listed.request(
        "GET /health HTTP/1.1\r\nHost: x\r\nOrigin: http://b.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://b.example")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    let r = listed.request(
        "GET /health HTTP/1.1\r\nHost: x\r\nOrigin: http://c.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[test]
fn history_endpoints_and_rooms() {
    let server = Server::start(2, &[("RATE_LIMIT_PER_SEC", "0")]);
    let mut a = server.connect("room=hist&userId=alice");
    let mut b = server.connect("room=other&userId=alice");
    let mut c = server.connect("room=hist&userId=bob");
    for i in 1..=5 {
        a.chat(&format!("a{i}"));
        a.next_chat();
    }
    for i in 1..=3 {
        b.chat(&format!("b{i}"));
        b.next_chat();
    }
    c.chat("c1");
    let broadcast = loop {
        let m = c.next_chat();
        if m.content == "c1" {
            break m;
        }
    };
    let h = server.get_json("/api/rooms/hist/messages?limit=3");
    assert_eq!(
        (h["roomId"].as_str(), h["count"].as_u64()),
        (Some("hist"), Some(3))
    );
    let seqs = common::seqs(&h);
    assert_eq!(seqs, [4, 5, 6], "newest N, oldest first");
    // Exactly as broadcast.
    let last = &h["messages"][2];
    assert_eq!(last["messageId"], broadcast.message_id.as_str());
    assert_eq!(last["timestamp"], broadcast.timestamp.as_str());
    for bad in ["0", "-4", "abc", ""] {
        let all = server.get_json(&format!("/api/rooms/hist/messages?limit={bad}"));
        assert_eq!(all["count"], 6, "limit={bad} means the default 50");
    }
    let capped = server.get_json("/api/rooms/hist/messages?limit=100000");
    assert_eq!(capped["count"], 6);
    let unknown = server.get_json("/api/rooms/nobody-here/messages");
    assert_eq!(
        (
            unknown["count"].as_u64(),
            unknown["messages"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );
    // A user's newest messages across rooms, oldest first.
    let u = server.get_json("/api/users/alice/messages?limit=4");
    assert_eq!(u["userId"], "alice");
    let contents = common::contents(&u);
    assert_eq!(contents, ["a5", "b1", "b2", "b3"]);
    let rooms = server.get_json("/api/rooms");
    let rooms = rooms["rooms"].as_array().unwrap();
    let hist = rooms
        .iter()
        .find(|r| r["roomId"] == "hist")
        .expect("hist listed");
    assert_eq!(
        (hist["connections"].as_u64(), hist["users"].as_u64()),
        (Some(2), Some(2))
    );
    let other = rooms
        .iter()
        .find(|r| r["roomId"] == "other")
        .expect("other listed");
    assert_eq!(other["connections"], 1);
    drop(b);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let rooms = server.get_json("/api/rooms");
        if !rooms["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["roomId"] == "other")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "empty room still listed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn analytics_fields_move_and_metrics_agree() {
    let server = Server::start(2, &[("RATE_LIMIT_PER_SEC", "0")]);
    let before = server.get_json("/api/analytics");
    for key in [
        "totalMessages",
        "activeConnections",
        "activeUsers",
        "peakConnections",
        "uptimeSeconds",
        "slowConsumerDisconnects",
    ] {
        assert!(before[key].is_u64(), "{key}");
    }
    for key in ["latencyP50Ms", "latencyP95Ms", "latencyP99Ms"] {
        assert!(before[key].is_number(), "{key}");
    }
    assert_eq!(before["messagesPerMinute"].as_array().unwrap().len(), 15);
    assert!(before["serverStartTime"].as_str().unwrap().ends_with('Z'));
    let mut clients: Vec<Client> = (0..4)
        .map(|i| server.connect(&format!("room=an{}&userId=u{}", i % 2, i % 3)))
        .collect();
    let started = std::time::Instant::now();
    for (i, c) in clients.iter_mut().enumerate() {
        c.chat(&format!("m{i}"));
    }
    for c in clients.iter_mut() {
        c.next_chat();
    }
    // Each fan-out latency runs from the server's read to its hand-over to the sockets:
    // inside the window from the first send to the last receipt.
    let window_ms = started.elapsed().as_secs_f64() * 1000.0;
    let a = server.analytics_until(|a| a["totalMessages"] == 4 && a["totalDeliveries"] == 8);
    assert_eq!(a["totalMessages"], 4);
    assert_eq!(a["activeConnections"], 4);
    assert_eq!(a["activeUsers"], 3);
    assert_eq!(a["peakConnections"], 4);
    assert_eq!(
        a["messagesPerMinute"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        4
    );
    assert_eq!(
        a["messagesPerMinute"][14].as_u64().unwrap() + a["messagesPerMinute"][13].as_u64().unwrap(),
        4
    );
    let quantile = |key: &str| a[key].as_f64().unwrap_or_else(|| panic!("{key}: {a}"));
    let (p50, p95, p99) = (
        quantile("latencyP50Ms"),
        quantile("latencyP95Ms"),
        quantile("latencyP99Ms"),
    );
    // Samples are clamped to 1 µs and kept to 2 significant digits (≤ 1 % over).
    assert!(
        0.001 <= p50 && p50 <= p95 && p95 <= p99 && p99 <= window_ms * 1.01,
        "p50 {p50} ms, p95 {p95} ms, p99 {p99} ms; the exchange took {window_ms:.3} ms"
    );
    let details = a["activeUserDetails"].as_array().unwrap();
    assert_eq!(details.len(), 4);
    for d in details {
        assert!(uuid::Uuid::parse_str(d["clientId"].as_str().unwrap()).is_ok());
        assert!(d["joinedAt"].as_str().unwrap().ends_with('Z'));
        assert!(d["roomId"].as_str().unwrap().starts_with("an"));
    }
    let workers = a["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    assert_eq!(
        workers
            .iter()
            .map(|w| w["connections"].as_u64().unwrap())
            .sum::<u64>(),
        4
    );
    // The messages are retained: each counts its encoded size plus 128 bytes.
    let history: u64 = workers
        .iter()
        .map(|w| w["historyBytes"].as_u64().expect("historyBytes"))
        .sum();
    assert!(history >= 4 * 128, "{history}");
    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert!(
        metrics.body.contains("hubbub_messages_total 4\n"),
        "{}",
        metrics.body
    );
    assert!(metrics.body.contains("hubbub_connections 4\n"));
    assert!(metrics
        .body
        .contains("hubbub_worker_connections{worker=\"1\"}"));
    drop(clients);
    let a = server.analytics_until(|a| a["activeConnections"] == 0);
    assert_eq!(
        (
            a["activeConnections"].as_u64(),
            a["peakConnections"].as_u64()
        ),
        (Some(0), Some(4))
    );
}

#[test]
fn http_limits_keepalive_and_static_files() {
    let server = Server::start(1, &[]);
    // Keep-alive: two requests on one connection.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    use std::io::Write;
    for _ in 0..2 {
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let r = http::read_response(&mut s).unwrap();
        assert_eq!(r.status, 200);
    }
    let big = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(17 * 1024)
    );
    assert_eq!(http::send(server.port, &big).unwrap().status, 431);
    assert_eq!(
        http::send(server.port, "NOT HTTP AT ALL\r\n\r\n")
            .unwrap()
            .status,
        400
    );
    let index = server.get("/");
    assert_eq!(
        (index.status, index.header("content-type")),
        (200, Some("text/html; charset=utf-8"))
    );
    assert!(index.body.contains("hubbub"));
    let js = server.get("/assets/app.js");
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(js.header("cache-control").unwrap().contains("immutable"));
    assert_eq!(server.get("/../../etc/passwd").status, 404);
    assert_eq!(server.get("/missing.png").status, 404);
}

#[test]
fn slow_request_head_is_disconnected() {
    let server = Server::start(1, &[]);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(9) && waited < std::time::Duration::from_secs(13),
        "{waited:?}"
    );
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 408"));
}

#[test]
fn head_requests_and_request_bodies() {
    let server = Server::start(1, &[]);
    // HEAD: the GET's status and headers, and not one byte of body after them.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_millis(300)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n @ 1..) = s.read(&mut buf) {
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(got).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        !text.contains("Content-Length: 0\r\n"),
        "the GET's length: {text}"
    );
    assert!(
        text.ends_with("\r\n\r\n"),
        "no body after the head: {text:?}"
    );
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    // A small body is skipped and the connection stays usable for the next request, also
    // when the body arrives after the head has been read.
    s.write_all(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    s.write_all(b"helloGET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(http::read_response(&mut s).unwrap().status, 405);
    assert_eq!(http::read_response(&mut s).unwrap().status, 200);
    // Chunked bodies are refused with a clear 400.
    let r = server
        .request("POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("bad_request"))
    );
}
