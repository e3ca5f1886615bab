//! Protocol v2 (docs/PROTOCOL.md §7) for the black-box tests: a client whose frames are
//! JSON values (so that a test asserts exactly the fields the contract names), the
//! checks every v2 test makes on them, and rooms placed on a chosen worker.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use hubbub_core::{owner_of, WorkerId};
use hubbub_test_support::ws::{WsClient, WsEvent, READ_TIMEOUT};

use super::Server;

/// A v2 connection (`/ws?proto=2&…`), its `hello` already read.
pub struct V2 {
    pub ws: WsClient,
    /// The first frame the server sent.
    pub hello: Value,
}

/// How long [`V2::settle`] waits for the next frame before it calls the connection quiet:
/// two presence intervals (200 ms each) and some slack.
pub const QUIET: Duration = Duration::from_millis(500);

impl V2 {
    /// Opens `/ws?proto=2&{query}` and reads the `hello`, which must be the first frame.
    pub fn connect(server: &Server, query: &str) -> V2 {
        let url = server.url(&format!("proto=2&{query}"));
        let mut ws = WsClient::try_connect(&url, &[]).unwrap_or_else(|r| {
            panic!("the v2 upgrade {url} was refused: {} {}", r.status, r.body)
        });
        let hello = ws.next_json();
        assert_eq!(
            hello["type"], "hello",
            "the first frame of a v2 connection ({query}) is hello: {hello}"
        );
        V2 { ws, hello }
    }

    /// Sends one frame.
    pub fn send(&mut self, frame: Value) {
        self.ws.send_text(&frame.to_string());
    }

    /// Sends one text message exactly as given.
    pub fn send_raw(&mut self, text: &str) {
        self.ws.send_text(text);
    }

    /// The next frame, whatever its type (panics at a close or after the read timeout).
    pub fn next_any(&mut self) -> Value {
        self.next_within(READ_TIMEOUT)
            .unwrap_or_else(|| panic!("{}: no frame within {READ_TIMEOUT:?}", self.hello["userId"]))
    }

    /// The next frame that is not of one of the `skipped` types.
    pub fn next_except(&mut self, skipped: &[&str]) -> Value {
        loop {
            let frame = self.next_any();
            if !skipped.iter().any(|t| frame["type"] == *t) {
                return frame;
            }
        }
    }

    /// The next frame, presence frames skipped (they come whenever someone joins or
    /// leaves; the presence tests read them with [`next_any`](V2::next_any)).
    pub fn next(&mut self) -> Value {
        self.next_except(&["presence"])
    }

    /// The next frame (presence skipped), which must be of type `kind`.
    pub fn expect(&mut self, kind: &str) -> Value {
        let frame = self.next();
        assert_eq!(frame["type"], kind, "expected a {kind} frame, got {frame}");
        frame
    }

    /// The next frame of any type within `wait`, or `None`.
    pub fn next_within(&mut self, wait: Duration) -> Option<Value> {
        match self.ws.next_event_within(wait)? {
            WsEvent::Text(text) => Some(
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
            ),
            WsEvent::Closed(code) => panic!("the connection closed ({code:?})"),
        }
    }

    /// Reads until no frame has come for [`QUIET`] (at most 5 s in all), and returns what
    /// came: lets the presence of a room's earlier joins go by before a test watches it.
    pub fn settle(&mut self) -> Vec<Value> {
        self.settle_for(QUIET)
    }

    /// [`settle`](V2::settle) with a quiet window of `quiet`.
    pub fn settle_for(&mut self, quiet: Duration) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        while let Some(frame) = self.next_within(quiet) {
            seen.push(frame);
            assert!(
                Instant::now() < deadline,
                "the connection never went quiet: {seen:?}"
            );
        }
        seen
    }

    /// Asserts that no frame but presence arrives within `ms`.
    pub fn expect_silence(&mut self, ms: u64) {
        self.ws.expect_silence(Duration::from_millis(ms), |text| {
            serde_json::from_str::<Value>(text).is_ok_and(|f| f["type"] == "presence")
        });
    }

    /// Asserts that no frame at all arrives within `ms`.
    pub fn expect_nothing(&mut self, ms: u64) {
        self.ws.expect_silence(Duration::from_millis(ms), |_| false);
    }

    /// `subscribe` with `id`; returns the `subscribed` answer, checked for `id` and room.
    pub fn subscribe(&mut self, id: u32, room: &str) -> Value {
        self.subscribe_with(json!({"type": "subscribe", "id": id, "roomId": room}))
    }

    /// Sends a `subscribe` frame (with an `id`) and returns the `subscribed` answer,
    /// checked for its `id` and room and the fields every answer has.
    pub fn subscribe_with(&mut self, frame: Value) -> Value {
        self.send(frame.clone());
        // Read markers and typing of rooms already subscribed may come first.
        let answer = self.next_except(&["presence", "read", "typing"]);
        assert_subscribed_shape(&answer);
        assert_eq!(
            answer["id"], frame["id"],
            "the id echoed: {frame} → {answer}"
        );
        assert_eq!(answer["roomId"], frame["roomId"], "{frame} → {answer}");
        answer
    }

    /// `unsubscribe` with `id`; checks the `unsubscribed` answer (chat frames of the room
    /// that were on their way before it are skipped).
    pub fn unsubscribe(&mut self, id: u32, room: &str) {
        self.send(json!({"type": "unsubscribe", "id": id, "roomId": room}));
        loop {
            let frame = self.next_except(&["presence", "read", "typing"]);
            if frame["type"] == "chat" && frame["roomId"] == room {
                continue;
            }
            assert_eq!(
                (
                    frame["type"].as_str(),
                    frame["id"].as_u64(),
                    frame["roomId"].as_str()
                ),
                (Some("unsubscribed"), Some(u64::from(id)), Some(room)),
                "the answer to unsubscribe: {frame}"
            );
            return;
        }
    }

    /// Sends a `chat` (with `clientMsgId` when given) and reads this connection's own
    /// chat frame and then the `ack`, both checked; returns `(chat, ack)`. Other chat
    /// frames on the way are not expected: nobody else writes meanwhile.
    pub fn chat_acked(
        &mut self,
        id: u32,
        room: &str,
        content: &str,
        client_msg_id: Option<&str>,
    ) -> (Value, Value) {
        let mut frame = json!({"type": "chat", "id": id, "roomId": room, "content": content});
        if let Some(c) = client_msg_id {
            frame["clientMsgId"] = json!(c);
        }
        self.send(frame);
        // Typing and read frames may come in between (a chat ends its sender's typing).
        let mut next = |kind: &str| {
            let f = self.next_except(&["presence", "typing", "read"]);
            assert_eq!(f["type"], kind, "expected a {kind} frame, got {f}");
            f
        };
        let chat = next("chat");
        assert_eq!(
            (chat["roomId"].as_str(), chat["content"].as_str()),
            (Some(room), Some(content)),
            "this connection's own chat frame comes before its ack: {chat}"
        );
        let ack = next("ack");
        assert_eq!(chat["userId"], self.hello["userId"], "{chat}");
        assert_ack(&ack, id, room, &chat, client_msg_id, false);
        (chat, ack)
    }

    pub fn close(self) {
        self.ws.close();
    }
}

/// The fields of every `subscribed`: `epoch` a non-empty string, `seq`, `lastRead` and
/// `online` integers, `recovered` a boolean.
pub fn assert_subscribed_shape(s: &Value) {
    assert_eq!(s["type"], "subscribed", "{s}");
    assert!(
        s["epoch"].as_str().is_some_and(|e| !e.is_empty()),
        "epoch is a non-empty string: {s}"
    );
    for field in ["seq", "lastRead", "online"] {
        assert!(s[field].is_u64(), "{field} is an integer: {s}");
    }
    assert!(s["recovered"].is_boolean(), "recovered is a boolean: {s}");
}

/// A `subscribed` frame's `(seq, recovered, lastRead, online)`.
pub fn subscribed_state(s: &Value) -> (u64, bool, u64, u64) {
    assert_subscribed_shape(s);
    (
        s["seq"].as_u64().unwrap_or_default(),
        s["recovered"].as_bool().unwrap_or_default(),
        s["lastRead"].as_u64().unwrap_or_default(),
        s["online"].as_u64().unwrap_or_default(),
    )
}

/// An `ack` for a `chat` with `id` in `room`, answering with `chat`'s `seq` and
/// `messageId`.
pub fn assert_ack(
    ack: &Value,
    id: u32,
    room: &str,
    chat: &Value,
    client_msg_id: Option<&str>,
    duplicate: bool,
) {
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["id"], id, "the ack echoes the chat's id: {ack}");
    assert_eq!(ack["roomId"], room, "{ack}");
    assert_eq!(
        ack["seq"], chat["seq"],
        "the ack's seq is the message's: {ack} {chat}"
    );
    assert_eq!(
        ack["messageId"], chat["messageId"],
        "the ack's messageId is the message's: {ack} {chat}"
    );
    match client_msg_id {
        Some(c) => assert_eq!(ack["clientMsgId"], c, "{ack}"),
        None => assert!(
            ack.get("clientMsgId").is_none(),
            "no clientMsgId sent: {ack}"
        ),
    }
    assert_eq!(ack["duplicate"], duplicate, "{ack}");
}

/// A chat frame of `room` with `seq` and `content`, every server-set field present.
pub fn assert_chat(frame: &Value, room: &str, seq: u64, content: &str) {
    assert_eq!(frame["type"], "chat", "{frame}");
    assert_eq!(
        (
            frame["roomId"].as_str(),
            frame["seq"].as_u64(),
            frame["content"].as_str()
        ),
        (Some(room), Some(seq), Some(content)),
        "chat frame: {frame}"
    );
    for field in ["messageId", "userId", "username", "timestamp"] {
        assert!(frame[field].is_string(), "{field} in {frame}");
    }
}

/// An error frame with `code`, echoing `id` and naming `room` (each absent when `None`).
pub fn assert_error(frame: &Value, code: &str, id: Option<u64>, room: Option<&str>) {
    assert_eq!(frame["type"], "error", "expected error {code}, got {frame}");
    assert_eq!(frame["code"], code, "{frame}");
    assert!(
        frame["message"].as_str().is_some_and(|m| !m.is_empty()),
        "an error has a message: {frame}"
    );
    match id {
        Some(id) => assert_eq!(frame["id"], id, "the error echoes the frame's id: {frame}"),
        None => assert!(frame.get("id").is_none(), "no id to echo: {frame}"),
    }
    match room {
        Some(room) => assert_eq!(frame["roomId"], room, "the error names the room: {frame}"),
        None => assert!(frame.get("roomId").is_none(), "no room to name: {frame}"),
    }
}

/// The first room `{tag}-{n}` that `worker` owns among `workers`.
pub fn room_on(tag: &str, worker: u16, workers: u16) -> String {
    (0..)
        .map(|n| format!("{tag}-{n}"))
        .find(|r| owner_of(r, workers) == WorkerId(worker))
        .unwrap_or_default()
}

/// One room per worker, named after `tag`: whichever worker a connection lands on, one
/// of them is owned by another worker when there are two.
pub fn rooms(tag: &str, workers: u16) -> Vec<String> {
    (0..workers).map(|w| room_on(tag, w, workers)).collect()
}

/// `(userId, username)` of each entry of a `joined` or `typing.users` list, sorted.
pub fn users(list: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = list
        .as_array()
        .unwrap_or_else(|| panic!("a list of users: {list}"))
        .iter()
        .map(|u| {
            (
                u["userId"].as_str().unwrap_or_default().to_owned(),
                u["username"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// `[(userId, username), …]` from string pairs, sorted, to compare with [`users`].
pub fn named(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = pairs
        .iter()
        .map(|(u, n)| ((*u).to_owned(), (*n).to_owned()))
        .collect();
    out.sort();
    out
}

/// A UTC RFC 3339 timestamp (`2026-12-02T06:55:23.123Z`-like).
pub fn is_timestamp(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        let b = s.as_bytes();
        s.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && s.ends_with('Z')
    })
}
