//! Black-box tests of the `tokio-broadcast` reference server: the built binary on a free
//! loopback port, driven by a blocking tungstenite client.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<TcpStream>;

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on `127.0.0.1:0` and reads the address it printed.
fn start() -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokio-broadcast"))
        .env("PORT", "0")
        .env("BIND", "127.0.0.1")
        .env("WORKERS", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tokio-broadcast");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("an address");
    Server { child, addr }
}

fn connect(addr: SocketAddr, path_and_query: &str) -> Result<Ws, tungstenite::Error> {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    match tungstenite::client(format!("ws://{addr}{path_and_query}"), stream) {
        Ok((ws, _)) => Ok(ws),
        Err(HandshakeError::Failure(e)) => Err(e),
        Err(HandshakeError::Interrupted(_)) => unreachable!("blocking stream"),
    }
}

fn join(addr: SocketAddr, query: &str) -> Ws {
    connect(addr, &format!("/ws?{query}")).expect("upgrade")
}

fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).unwrap();
}

fn chat(content: &str) -> String {
    serde_json::json!({ "type": "chat", "content": content }).to_string()
}

/// The next text frame, as JSON.
fn recv(ws: &mut Ws) -> Value {
    loop {
        match ws.read().expect("a frame") {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Asserts that nothing arrives for a while.
fn assert_silent(ws: &mut Ws) {
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    match ws.read() {
        Err(tungstenite::Error::Io(e))
            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected silence, got {other:?}"),
    }
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
}

/// Reads until the server's close frame and returns its code.
fn close_code(ws: &mut Ws) -> CloseCode {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => return frame.code,
            Ok(Message::Close(None)) => panic!("close without a code"),
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    }
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
    send(
        &mut alice,
        r#"{"type":"chat","content":"hello","seq":99,"userId":"mallory","roomId":"x"}"#,
    );
    for ws in [&mut alice, &mut bob] {
        assert_chat(&recv(ws), "team-1", "alice", "Alice", "hello", 1);
    }
    send(&mut bob, &chat("  hi \"there\" é  "));
    for ws in [&mut alice, &mut bob] {
        assert_chat(&recv(ws), "team-1", "bob", "Bob", "  hi \"there\" é  ", 2);
    }
    assert_silent(&mut carol);

    // Rooms count independently.
    send(&mut carol, &chat("alone"));
    assert_chat(&recv(&mut carol), "other", "carol", "Carol", "alone", 1);
    assert_silent(&mut alice);

    // Defaults.
    let mut anon = join(server.addr, "");
    send(&mut anon, &chat("x"));
    assert_chat(&recv(&mut anon), "global", "anonymous", "Anonymous", "x", 1);
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
        send(&mut ws, &frame);
        let v = recv(&mut ws);
        assert_eq!(v["type"], "error", "{frame}: {v}");
        assert_eq!(v["code"], code, "{frame}: {v}");
        assert!(v["message"].is_string(), "{v}");
    }
    // 1000 scalar values is fine even at 2000 bytes.
    let max = "é".repeat(1000);
    send(&mut ws, &chat(&max));
    assert_eq!(recv(&mut ws)["seq"], 1);
}

#[test]
fn oversized_and_binary_frames_close_the_connection() {
    let server = start();
    let mut big = join(server.addr, "");
    send(&mut big, &chat(&"a".repeat(8192)));
    assert_eq!(close_code(&mut big), CloseCode::Size);

    let mut bin = join(server.addr, "");
    bin.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(close_code(&mut bin), CloseCode::Unsupported);

    let mut latin1 = join(server.addr, "");
    let frame = Frame::message(b"caf\xe9".to_vec(), OpCode::Data(Data::Text), true);
    latin1.send(Message::Frame(frame)).unwrap();
    assert_eq!(close_code(&mut latin1), CloseCode::Invalid);
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
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), status, "{path}");
                assert_eq!(
                    response.headers()["content-type"],
                    "application/json",
                    "{path}"
                );
                let body: Value =
                    serde_json::from_slice(response.body().as_deref().expect("a body")).unwrap();
                assert_eq!(body["error"], code, "{path}");
                assert!(body["message"].is_string(), "{path}");
            }
            other => panic!("{path}: expected a refusal, got {:?}", other.map(|_| ())),
        }
    }
}

fn get_health(addr: SocketAddr) -> Value {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap()
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
        send(&mut talker, &chat(&content));
        assert_eq!(recv(&mut talker)["seq"], seq);
    }
    // Whatever was already in flight arrives in order, then the close frame.
    let mut received = 0;
    loop {
        match slow.read().expect("a frame") {
            Message::Text(_) => received += 1,
            Message::Close(Some(frame)) => {
                assert_eq!(frame.code, CloseCode::Policy);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(received < SENT, "received all {received}");
}

#[test]
fn concurrent_senders_see_one_gap_free_order() {
    const CLIENTS: usize = 4;
    const EACH: usize = 200;
    let server = start();
    let members: Vec<Ws> = (0..CLIENTS)
        .map(|i| join(server.addr, &format!("userId=u{i}&room=busy")))
        .collect();
    let threads: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            std::thread::spawn(move || {
                for n in 0..EACH {
                    send(&mut ws, &chat(&format!("{i}:{n}")));
                }
                let mut next_from = [0usize; CLIENTS];
                let mut seqs = Vec::with_capacity(CLIENTS * EACH);
                for _ in 0..CLIENTS * EACH {
                    let v = recv(&mut ws);
                    seqs.push(v["seq"].as_u64().unwrap());
                    let (who, n) = v["content"].as_str().unwrap().split_once(':').unwrap();
                    let (who, n): (usize, usize) = (who.parse().unwrap(), n.parse().unwrap());
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
        assert_eq!(t.join().unwrap(), expected);
    }
}
