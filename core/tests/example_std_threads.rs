//! Runs the `std_threads` example's server on a free loopback port and chats through it
//! with two real WebSocket clients.

#[allow(dead_code)] // its `main`
#[path = "../examples/std_threads.rs"]
mod example;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use serde_json::Value;
use tungstenite::{Message, WebSocket};

type Client = WebSocket<TcpStream>;

fn start() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || example::serve(listener));
    addr
}

fn connect(addr: SocketAddr, query: &str) -> Result<Client, tungstenite::Error> {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        // Generous: on a loaded 2-core machine (CI next to builds) 10 s ran out once;
        // only a failing test waits this long.
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let url = format!("ws://{addr}/ws?{query}");
    tungstenite::client(url.as_str(), stream)
        .map(|(ws, _)| ws)
        .map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            other => panic!("handshake: {other}"),
        })
}

/// The next text frame of `kind`, skipping others (presence, other chats).
fn next(ws: &mut Client, kind: &str) -> Value {
    loop {
        let read = ws
            .read()
            .unwrap_or_else(|e| panic!("waiting up to 30 s for a {kind} frame: {e}"));
        match read {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == kind {
                    return v;
                }
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn chat(ws: &mut Client, content: &str) {
    let frame = serde_json::json!({"type": "chat", "content": content}).to_string();
    ws.send(Message::text(frame)).unwrap();
}

#[test]
fn two_clients_chat_through_the_std_threads_server() {
    let addr = start();
    let mut alice = connect(addr, "userId=alice&username=Alice&room=lobby").unwrap();
    let mut bob = connect(addr, "userId=bob&room=lobby").unwrap();
    // Alice sees herself, then Bob arrive: both are live members of the room.
    assert_eq!(next(&mut alice, "join")["userId"], "alice");
    assert_eq!(next(&mut alice, "join")["userId"], "bob");

    chat(&mut alice, "hello bob");
    for ws in [&mut alice, &mut bob] {
        let m = next(ws, "chat");
        assert_eq!(
            (m["seq"].as_u64(), m["content"].as_str()),
            (Some(1), Some("hello bob"))
        );
        assert_eq!(
            (m["userId"].as_str(), m["roomId"].as_str()),
            (Some("alice"), Some("lobby"))
        );
    }
    chat(&mut bob, "hi alice");
    assert_eq!(next(&mut alice, "chat")["seq"], 2);
    assert_eq!(next(&mut bob, "chat")["content"], "hi alice");

    // Errors go to the sender only, and the connection stays open.
    bob.send(Message::text(r#"{"type":"join"}"#)).unwrap();
    assert_eq!(next(&mut bob, "error")["code"], "invalid_type");
    chat(&mut bob, "still here");
    assert_eq!(next(&mut alice, "chat")["seq"], 3);

    // A late joiner gets the backlog after `since`, then live messages.
    let mut carol = connect(addr, "userId=carol&room=lobby&since=1").unwrap();
    assert_eq!(next(&mut carol, "chat")["seq"], 2);
    assert_eq!(next(&mut carol, "chat")["seq"], 3);
    chat(&mut alice, "welcome carol");
    assert_eq!(next(&mut carol, "chat")["seq"], 4);

    // A binary frame closes that connection with 1003; the others carry on.
    bob.send(Message::Binary(vec![1, 2, 3].into())).unwrap();
    let code = loop {
        match bob.read() {
            Ok(Message::Close(Some(f))) => break u16::from(f.code),
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    assert_eq!(code, 1003);
    assert_eq!(next(&mut alice, "leave")["userId"], "bob");
}

#[test]
fn bad_upgrades_are_refused_before_any_frame() {
    let addr = start();
    let status = |query: &str| match connect(addr, query) {
        Err(tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.headers()["content-type"], "application/json");
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
            (
                resp.status().as_u16(),
                body["error"].as_str().unwrap().to_owned(),
            )
        }
        other => panic!("{query}: {:?}", other.map(|_| "upgraded")),
    };
    assert_eq!(status("room=no/slash"), (400, "invalid_room".to_owned()));
    assert_eq!(status("since=-1"), (400, "invalid_since".to_owned()));
}
