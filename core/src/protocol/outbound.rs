use serde::{Deserialize, Serialize};

use super::{Attachment, ErrorCode};

/// A chat message as broadcast, borrowed for encoding (the hub's hot path).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessageRef<'a> {
    /// UUID v7, hyphenated.
    pub message_id: &'a str,
    /// The room.
    pub room_id: &'a str,
    /// `"chat"`, or `"system"` for a message published through the server API.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// Sender's user id.
    pub user_id: &'a str,
    /// Sender's display name.
    pub username: &'a str,
    /// The text, as sent.
    pub content: &'a str,
    /// RFC 3339 with milliseconds, UTC.
    pub timestamp: &'a str,
    /// Per-room sequence number, from 1 without gaps.
    pub seq: u64,
    /// Its files (absent from the frame when none).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub attachments: &'a [Attachment],
}

/// What a message in a room's log is: a user's, or the server's own announcement.
///
/// ```
/// use hubbub_core::protocol::MessageKind;
/// assert_eq!(MessageKind::parse("system"), Some(MessageKind::System));
/// assert_eq!(MessageKind::Chat.as_str(), "chat");
/// assert_eq!(MessageKind::parse("join"), None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// Sent by a user (a client's `chat` frame, or the server API's `"type":"chat"`).
    #[default]
    Chat,
    /// An announcement: only the server API makes these; clients cannot send them.
    System,
}

impl MessageKind {
    /// The frame's (and the stored item's) `type`.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageKind::Chat => "chat",
            MessageKind::System => "system",
        }
    }

    /// The kind named `raw`, if it is one.
    pub fn parse(raw: &str) -> Option<MessageKind> {
        match raw {
            "chat" => Some(MessageKind::Chat),
            "system" => Some(MessageKind::System),
            _ => None,
        }
    }
}

/// A chat message as a client receives it (owned; for clients, tests and tools).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    /// UUID v7, hyphenated.
    pub message_id: String,
    /// The room.
    pub room_id: String,
    /// `chat` or `system`: the frame's `type`, which [`ServerFrame`]'s tag carries (so it
    /// is not a field of its own when (de)serialized; [`ServerFrame::decode`] sets it).
    #[serde(skip)]
    pub kind: MessageKind,
    /// Sender's user id.
    pub user_id: String,
    /// Sender's display name.
    pub username: String,
    /// The text, as sent.
    pub content: String,
    /// RFC 3339 with milliseconds, UTC.
    pub timestamp: String,
    /// Per-room sequence number.
    pub seq: u64,
    /// Its files (absent from the frame when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

/// `join` or `leave`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceKind {
    /// A connection entered the room.
    Join,
    /// A connection left the room.
    Leave,
}

/// A presence event as a client receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceEvent {
    /// The room.
    pub room_id: String,
    /// Who joined or left.
    pub user_id: String,
    /// Their display name.
    pub username: String,
    /// When, RFC 3339 with milliseconds.
    pub timestamp: String,
}

/// An error frame as a client receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// One of the codes of [`ErrorCode`], as its wire name.
    pub code: String,
    /// A sentence for people.
    pub message: String,
}

/// Any frame the server sends, tagged by `type`; unknown fields are ignored.
///
/// ```
/// use hubbub_core::protocol::ServerFrame;
/// let f: ServerFrame = sonic_rs::from_str(r#"{"type":"error","code":"rate_limited","message":"slow"}"#).unwrap();
/// assert!(matches!(f, ServerFrame::Error(e) if e.code == "rate_limited"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ServerFrame {
    /// A chat message.
    Chat(ChatMessage),
    /// An announcement published through the server API (`kind` is `System`).
    System(ChatMessage),
    /// Someone joined the room.
    Join(PresenceEvent),
    /// Someone left the room.
    Leave(PresenceEvent),
    /// Something this connection sent was refused.
    Error(ErrorFrame),
}

impl ServerFrame {
    /// Decodes one server frame (for clients, tests and tools).
    ///
    /// ```
    /// use hubbub_core::protocol::ServerFrame;
    /// let f = ServerFrame::decode(br#"{"type":"join","roomId":"r","userId":"u","username":"U","timestamp":"t"}"#);
    /// assert!(matches!(f, Ok(ServerFrame::Join(_))));
    /// ```
    pub fn decode(bytes: &[u8]) -> Result<ServerFrame, sonic_rs::Error> {
        let mut frame = sonic_rs::from_slice(bytes)?;
        if let ServerFrame::System(m) = &mut frame {
            m.kind = MessageKind::System;
        }
        Ok(frame)
    }
}

fn write_json<T: Serialize>(buf: &mut Vec<u8>, value: &T) {
    // Serializing these plain structs into memory cannot fail: every field is a string or
    // an integer and the writer is a Vec.
    if sonic_rs::to_writer(&mut *buf, value).is_err() {
        unreachable!("serializing a frame into a Vec failed");
    }
}

/// Appends a chat message's JSON to `buf`.
///
/// ```
/// use hubbub_core::protocol::{encode_chat, ChatMessageRef};
/// let mut buf = Vec::new();
/// encode_chat(&mut buf, &ChatMessageRef { message_id: "m", room_id: "r", kind: "chat",
///     user_id: "u", username: "U", content: "hi", timestamp: "t", seq: 1, attachments: &[] });
/// assert_eq!(buf, br#"{"messageId":"m","roomId":"r","type":"chat","userId":"u","username":"U","content":"hi","timestamp":"t","seq":1}"#);
/// ```
pub fn encode_chat(buf: &mut Vec<u8>, msg: &ChatMessageRef<'_>) {
    write_json(buf, msg);
}

/// Appends a presence event's JSON to `buf`.
pub fn encode_presence(
    buf: &mut Vec<u8>,
    kind: PresenceKind,
    room_id: &str,
    user_id: &str,
    username: &str,
    timestamp: &str,
) {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Presence<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        room_id: &'a str,
        user_id: &'a str,
        username: &'a str,
        timestamp: &'a str,
    }
    let kind = match kind {
        PresenceKind::Join => "join",
        PresenceKind::Leave => "leave",
    };
    write_json(
        buf,
        &Presence {
            kind,
            room_id,
            user_id,
            username,
            timestamp,
        },
    );
}

/// Appends an error frame's JSON to `buf`.
///
/// ```
/// use hubbub_core::protocol::{encode_error, ErrorCode};
/// let mut buf = Vec::new();
/// encode_error(&mut buf, ErrorCode::EmptyContent);
/// assert!(buf.starts_with(br#"{"type":"error","code":"empty_content","#));
/// ```
pub fn encode_error(buf: &mut Vec<u8>, code: ErrorCode) {
    #[derive(Serialize)]
    struct Error<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        code: &'a str,
        message: &'a str,
    }
    write_json(
        buf,
        &Error {
            kind: "error",
            code: code.as_str(),
            message: code.message(),
        },
    );
}

/// Appends a history body `{"<key>":"<id>","count":N,"messages":[…]}` to `buf`, each
/// message being a frame exactly as it was broadcast; a room's page also carries its
/// cursors, `"nextBefore"` and `"nextAfter"` (a `seq`, or `null` where there is no more).
///
/// ```
/// use hubbub_core::protocol::encode_message_list;
/// let mut buf = Vec::new();
/// let frames = [&br#"{"seq":1}"#[..], br#"{"seq":2}"#];
/// encode_message_list(&mut buf, "userId", "u", frames, None);
/// assert_eq!(buf, br#"{"userId":"u","count":2,"messages":[{"seq":1},{"seq":2}]}"#);
/// buf.clear();
/// encode_message_list(&mut buf, "roomId", "r", frames, Some((None, Some(2))));
/// assert_eq!(
///     buf,
///     br#"{"roomId":"r","count":2,"messages":[{"seq":1},{"seq":2}],"nextBefore":null,"nextAfter":2}"#
/// );
/// ```
pub fn encode_message_list<'a>(
    buf: &mut Vec<u8>,
    key: &str,
    id: &str,
    frames: impl IntoIterator<Item = &'a [u8], IntoIter: ExactSizeIterator>,
    next: Option<(Option<u64>, Option<u64>)>,
) {
    let frames = frames.into_iter();
    buf.extend_from_slice(b"{\"");
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(b"\":");
    write_json(buf, &id);
    buf.extend_from_slice(format!(",\"count\":{},\"messages\":[", frames.len()).as_bytes());
    for (i, f) in frames.enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(f);
    }
    buf.push(b']');
    if let Some((before, after)) = next {
        let seq = |s: Option<u64>| s.map_or_else(|| "null".to_owned(), |s| s.to_string());
        buf.extend_from_slice(
            format!(
                ",\"nextBefore\":{},\"nextAfter\":{}",
                seq(before),
                seq(after)
            )
            .as_bytes(),
        );
    }
    buf.push(b'}');
}

/// Orders stored messages by `seq` and keeps one per `seq`: the newer, by timestamp. A
/// seq stored twice is of two lives of a room (one that started afresh when the store
/// could not be read); the newer life is the room's current one.
///
/// ```
/// use hubbub_core::protocol::{one_per_seq, ChatMessage};
/// let m = |seq, ts: &str| ChatMessage {
///     message_id: format!("m{seq}{ts}"),
///     room_id: "dev".into(),
///     kind: Default::default(),
///     user_id: "ann".into(),
///     username: "Ann".into(),
///     content: String::new(),
///     timestamp: ts.into(),
///     seq,
///     attachments: vec![],
/// };
/// let mut got = vec![m(2, "b"), m(1, "a"), m(2, "c")];
/// one_per_seq(&mut got);
/// let kept: Vec<(u64, &str)> = got.iter().map(|m| (m.seq, m.timestamp.as_str())).collect();
/// assert_eq!(kept, [(1, "a"), (2, "c")]);
/// ```
pub fn one_per_seq(messages: &mut Vec<ChatMessage>) {
    messages.sort_unstable_by(|a, b| (b.seq, &b.timestamp).cmp(&(a.seq, &a.timestamp)));
    messages.dedup_by_key(|m| m.seq);
    messages.reverse();
}

/// Appends a chat message's JSON to `buf` from its owned form (as read back from a store),
/// byte for byte as it was broadcast.
pub fn encode_chat_message(buf: &mut Vec<u8>, m: &ChatMessage) {
    encode_chat(
        buf,
        &ChatMessageRef {
            message_id: &m.message_id,
            room_id: &m.room_id,
            kind: m.kind.as_str(),
            user_id: &m.user_id,
            username: &m.username,
            content: &m.content,
            timestamp: &m.timestamp,
            seq: m.seq,
            attachments: &m.attachments,
        },
    );
}

/// Appends an HTTP error body `{"error":code,"message":message}` to `buf`.
pub fn encode_http_error(buf: &mut Vec<u8>, code: &str, message: &str) {
    #[derive(Serialize)]
    struct Body<'a> {
        error: &'a str,
        message: &'a str,
    }
    write_json(
        buf,
        &Body {
            error: code,
            message,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_round_trips_with_escapes() {
        let mut buf = Vec::new();
        let content = "line\nbreak \"quoted\" \\ \u{1} 😀";
        encode_chat(
            &mut buf,
            &ChatMessageRef {
                message_id: "id",
                room_id: "r",
                kind: "chat",
                user_id: "u",
                username: "Ü",
                content,
                timestamp: "2026-01-01T00:00:00.000Z",
                seq: u64::MAX,
                attachments: &[],
            },
        );
        let generic: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(generic["content"], content);
        assert_eq!(generic["seq"], u64::MAX);
        match sonic_rs::from_slice::<ServerFrame>(&buf).unwrap() {
            ServerFrame::Chat(m) => assert_eq!(m.content, content),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn presence_and_error_decode_as_server_frames() {
        let mut buf = Vec::new();
        encode_presence(&mut buf, PresenceKind::Leave, "r", "u", "n", "t");
        assert!(
            matches!(sonic_rs::from_slice(&buf).unwrap(), ServerFrame::Leave(p) if p.room_id == "r")
        );
        buf.clear();
        encode_error(&mut buf, ErrorCode::Overloaded);
        assert!(
            matches!(sonic_rs::from_slice(&buf).unwrap(), ServerFrame::Error(e) if e.code == "overloaded")
        );
    }
}
