//! Black-box tests of the `tokio-broadcast` reference server: the built binary on a free
//! loopback port, driven by the shared blocking WebSocket client.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use hubbub_test_support::http;
use hubbub_test_support::process::Process;
use hubbub_test_support::ws::{Refusal, WsClient, WsEvent};
use serde_json::Value;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::Message;

struct Server {
    /// Killed by PID when the test ends.
    _process: Process,
    addr: SocketAddr,
}

/// Starts the binary on `127.0.0.1:0` and reads the address it printed.
fn start() -> Server {
    let mut process = Process::spawn(
        Command::new(env!("CARGO_BIN_EXE_tokio-broadcast"))
            .env("PORT", "0")
            .env("BIND", "127.0.0.1")
            .env("WORKERS", "2")
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
        "tokio-broadcast",
    );
    let stdout = process.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("an address");
    Server {
        _process: process,
        addr,
    }
}

fn connect(addr: SocketAddr, path_and_query: &str) -> Result<WsClient, Refusal> {
    WsClient::try_connect(&format!("ws://{addr}{path_and_query}"), &[])
}

fn join(addr: SocketAddr, query: &str) -> WsClient {
    WsClient::connect(&format!("ws://{addr}/ws?{query}"))
}

fn chat(content: &str) -> String {
    serde_json::json!({ "type": "chat", "content": content }).to_string()
}

/// Asserts that nothing arrives for a while.
fn assert_silent(ws: &mut WsClient) {
    ws.expect_silence(Duration::from_millis(300), |_| false);
}

/// Reads until the server's close frame and returns its code.
fn close_code(ws: &mut WsClient) -> u16 {
    ws.close_code().expect("a close frame with a code")
}

fn assert_chat(v: &Value, room: &str, user: &str, name: &str, content: &str, seq: u64) {
    assert_eq!(v["type"], "chat", "{v}");
    assert_eq!(v["roomId"], room, "{v}");
    assert_eq!(v["userId"], user, "{v}");
    assert_eq!(v["username"], name, "{v}");
    assert_eq!(v["content"], content, "{v}");
    assert_eq!(v["seq"], seq, "{v}");
    let id = v["messageId"].as_str().expect("messageId");
    let id = uuid::Uuid::parse_str(id).expect("a UUID");
    assert_eq!(id.get_version_num(), 7, "{v}");
    assert_eq!(id.hyphenated().to_string(), v["messageId"], "{v}");
    let ts = v["timestamp"].as_str().expect("timestamp");
    let b = ts.as_bytes();
    assert_eq!(b.len(), 24, "{ts}");
    assert!(ts.starts_with("20") && ts.ends_with('Z'), "{ts}");
    for (i, sep) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ] {
        assert_eq!(b[i], sep, "{ts}");
    }
}

#[test]
fn room_members_all_get_each_message_in_seq_order() {
    let server = start();
    let mut alice = join(server.addr, "userId=alice&username=%20Alice%20&room=team-1");
    let mut bob = join(server.addr, "userId=bob&username=Bob&room=team-1");
    let mut carol = join(server.addr, "userId=carol&username=Carol&room=other");

    // Server-authoritative fields sent by the client are ignored.
    alice
        .send_text(r#"{"type":"chat","content":"hello","seq":99,"userId":"mallory","roomId":"x"}"#);
    for ws in [&mut alice, &mut bob] {
        assert_chat(&ws.next_json(), "team-1", "alice", "Alice", "hello", 1);
    }
    bob.send_text(&chat("  hi \"there\" é  "));
    for ws in [&mut alice, &mut bob] {
        assert_chat(
            &ws.next_json(),
            "team-1",
            "bob",
            "Bob",
            "  hi \"there\" é  ",
            2,
        );
    }
    assert_silent(&mut carol);

    // Rooms count independently.
    carol.send_text(&chat("alone"));
    assert_chat(&carol.next_json(), "other", "carol", "Carol", "alone", 1);
    assert_silent(&mut alice);

    // Defaults.
    let mut anon = join(server.addr, "");
    anon.send_text(&chat("x"));
    assert_chat(
        &anon.next_json(),
        "global",
        "anonymous",
        "Anonymous",
        "x",
        1,
    );
}

#[test]
fn invalid_frames_get_error_frames_and_the_connection_stays_open() {
    let server = start();
    let mut ws = join(server.addr, "room=errors");
    let long = "a".repeat(1001);
    let cases = [
        ("nope".to_owned(), "invalid_json"),
        (r#"{"type":"chat","content":5}"#.to_owned(), "invalid_json"),
        (
            r#"{"type":"join","content":"x"}"#.to_owned(),
            "invalid_type",
        ),
        (r#"{"content":"x"}"#.to_owned(), "invalid_type"),
        (r#"{"type":"chat"}"#.to_owned(), "empty_content"),
        (chat(" \n\t "), "empty_content"),
        (chat(&long), "content_too_long"),
        // Exactly 8192 bytes is read, and its content is too long.
        (chat(&"a".repeat(8192 - 28)), "content_too_long"),
    ];
    for (frame, code) in cases {
        ws.send_text(&frame);
        let v = ws.next_json();
        assert_eq!(v["type"], "error", "{frame}: {v}");
        assert_eq!(v["code"], code, "{frame}: {v}");
        assert!(v["message"].is_string(), "{v}");
    }
    // 1000 scalar values is fine even at 2000 bytes.
    let max = "é".repeat(1000);
    ws.send_text(&chat(&max));
    assert_eq!(ws.next_json()["seq"], 1);
}

#[test]
fn oversized_and_binary_frames_close_the_connection() {
    let server = start();
    let mut big = join(server.addr, "");
    big.send_text(&chat(&"a".repeat(8192)));
    assert_eq!(close_code(&mut big), u16::from(CloseCode::Size));

    let mut bin = join(server.addr, "");
    bin.ws
        .send(Message::binary(vec![1, 2, 3]))
        .expect("send a binary message");
    assert_eq!(close_code(&mut bin), u16::from(CloseCode::Unsupported));

    let mut latin1 = join(server.addr, "");
    let frame = Frame::message(b"caf\xe9".to_vec(), OpCode::Data(Data::Text), true);
    latin1
        .ws
        .send(Message::Frame(frame))
        .expect("send a raw frame");
    assert_eq!(close_code(&mut latin1), u16::from(CloseCode::Invalid));
}

#[test]
fn bad_params_are_refused_with_400() {
    let server = start();
    let cases = [
        ("/ws?room=a%20b", 400, "invalid_room"),
        ("/ws?room=", 400, "invalid_room"),
        ("/ws?username=%20", 400, "invalid_username"),
        ("/ws?userId=", 400, "invalid_user_id"),
        ("/ws?since=x", 400, "invalid_since"),
        ("/elsewhere", 404, "not_found"),
    ];
    for (path, status, code) in cases {
        match connect(server.addr, path) {
            Err(refusal) => {
                assert_eq!(refusal.status, status, "{path}");
                assert_eq!(
                    refusal.header("content-type"),
                    Some("application/json"),
                    "{path}"
                );
                let body = refusal.json();
                assert_eq!(body["error"], code, "{path}");
                assert!(body["message"].is_string(), "{path}");
            }
            Ok(_) => panic!("{path}: expected a refusal, got an upgrade"),
        }
    }
}

fn get_health(addr: SocketAddr) -> Value {
    let response = http::get(addr.port(), "/health").expect("GET /health");
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()
}

#[test]
fn health() {
    let server = start();
    assert_eq!(get_health(server.addr)["status"], "ok");
    let _member = join(server.addr, "");
    // The count is taken just after the 101 is written: allow the server a moment.
    for _ in 0..100 {
        if get_health(server.addr)["clients"] == 1 {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("clients never reached 1: {}", get_health(server.addr));
}

#[test]
fn a_member_that_does_not_read_is_closed_as_a_slow_consumer() {
    const SENT: usize = 6000;
    let server = start();
    let mut slow = join(server.addr, "room=busy");
    let mut talker = join(server.addr, "room=busy");
    let content = "x".repeat(1000);
    for seq in 1..=SENT {
        talker.send_text(&chat(&content));
        assert_eq!(talker.next_json()["seq"], seq);
    }
    // Whatever was already in flight arrives in order, then the close frame.
    let mut received = 0;
    loop {
        match slow.next_event() {
            WsEvent::Text(_) => received += 1,
            WsEvent::Closed(code) => {
                assert_eq!(code, Some(u16::from(CloseCode::Policy)));
                break;
            }
        }
    }
    assert!(received < SENT, "received all {received}");
}

#[test]
fn concurrent_senders_see_one_gap_free_order() {
    const CLIENTS: usize = 4;
    const EACH: usize = 200;
    let server = start();
    let members: Vec<WsClient> = (0..CLIENTS)
        .map(|i| join(server.addr, &format!("userId=u{i}&room=busy")))
        .collect();
    let threads: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            std::thread::spawn(move || {
                for n in 0..EACH {
                    ws.send_text(&chat(&format!("{i}:{n}")));
                }
                let mut next_from = [0usize; CLIENTS];
                let mut seqs = Vec::with_capacity(CLIENTS * EACH);
                for _ in 0..CLIENTS * EACH {
                    let v = ws.next_json();
                    seqs.push(v["seq"].as_u64().expect("a seq"));
                    let content = v["content"].as_str().expect("a content");
                    let (who, n) = content.split_once(':').expect("sender:n");
                    let (who, n): (usize, usize) = (
                        who.parse().expect("a sender index"),
                        n.parse().expect("a message index"),
                    );
                    // Each sender's messages arrive in the order it sent them.
                    assert_eq!(n, next_from[who]);
                    next_from[who] += 1;
                }
                seqs
            })
        })
        .collect();
    let expected: Vec<u64> = (1..=(CLIENTS * EACH) as u64).collect();
    for t in threads {
        assert_eq!(t.join().expect("a member thread finished"), expected);
    }
}
