//! Protocol v2's frames (docs/PROTOCOL.md §7): a connection holds several rooms, each
//! request may carry an `id` the answer echoes.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::attachments::decode_attachments;
use super::inbound::validate_content;
use super::{ErrorCode, FrameError, MAX_CONTENT_CHARS, MAX_FRAME_BYTES};
use crate::upgrade::valid_room;

/// Most characters in a `clientMsgId`.
pub const MAX_CLIENT_MSG_ID_CHARS: usize = 64;

/// A valid v2 client frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V2Frame<'a> {
    /// Enter a room, optionally recovering what was missed after `since` in `epoch`.
    Subscribe {
        /// The room.
        room: Cow<'a, str>,
        /// The last `seq` the client saw.
        since: Option<u64>,
        /// The epoch that `since` belongs to.
        epoch: Option<Cow<'a, str>>,
    },
    /// Leave a room.
    Unsubscribe {
        /// The room.
        room: Cow<'a, str>,
    },
    /// Send a message.
    Chat {
        /// The room.
        room: Cow<'a, str>,
        /// The text (the v1 content rules).
        content: Cow<'a, str>,
        /// The client's id for this send: a resend with the same one is not broadcast again.
        client_msg_id: Option<Cow<'a, str>>,
        /// The `fileId`s of its attachments (at most [`MAX_ATTACHMENTS`](super::MAX_ATTACHMENTS)); with some, the
        /// content may be empty.
        attachments: Vec<Box<str>>,
    },
    /// The user is typing (or stopped).
    Typing {
        /// The room.
        room: Cow<'a, str>,
        /// Stopped typing.
        stop: bool,
    },
    /// The user has read the room up to `seq`.
    Read {
        /// The room.
        room: Cow<'a, str>,
        /// Read up to here.
        seq: u64,
    },
    /// A new token for the connection, before the one it opened with expires.
    Refresh {
        /// The token (at most [`MAX_TOKEN_BYTES`]).
        token: Cow<'a, str>,
    },
}

/// Most bytes in a `refresh` frame's token.
pub const MAX_TOKEN_BYTES: usize = 4096;

impl V2Frame<'_> {
    /// The room the frame concerns (`None` for `refresh`, which concerns the connection).
    pub fn room(&self) -> Option<&str> {
        match self {
            V2Frame::Subscribe { room, .. }
            | V2Frame::Unsubscribe { room }
            | V2Frame::Chat { room, .. }
            | V2Frame::Typing { room, .. }
            | V2Frame::Read { room, .. } => Some(room),
            V2Frame::Refresh { .. } => None,
        }
    }
}

/// A v2 frame refused: the code, and the `id` and room to echo when the frame gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Refusal<'a> {
    /// Why.
    pub code: ErrorCode,
    /// The frame's `id`, if it could be read.
    pub id: Option<u32>,
    /// The frame's `roomId`, if it could be read.
    pub room: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawV2<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    /// Present-and-null is kept apart from absent: a null `id` is not an integer.
    #[serde(default, deserialize_with = "present")]
    id: Option<Option<u32>>,
    #[serde(borrow, default)]
    room_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    client_msg_id: Option<Cow<'a, str>>,
    #[serde(default)]
    since: Option<u64>,
    #[serde(borrow, default)]
    epoch: Option<Cow<'a, str>>,
    /// Kept loose so that a bad one is `invalid_seq`, not `invalid_json`.
    #[serde(default)]
    seq: Option<sonic_rs::Value>,
    #[serde(default)]
    stop: Option<bool>,
    #[serde(borrow, default)]
    token: Option<Cow<'a, str>>,
    /// Kept loose so that a bad one is `invalid_attachments`, not `invalid_json`.
    #[serde(default)]
    attachments: Option<sonic_rs::Value>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

/// Decodes and validates one v2 client frame, with its `id`.
///
/// ```
/// use hubbub_core::protocol::{decode_v2_frame, ErrorCode, V2Frame};
/// let (id, f) = decode_v2_frame(br#"{"type":"subscribe","id":7,"roomId":"dev","since":42}"#).unwrap();
/// assert_eq!(id, Some(7));
/// assert!(matches!(f, V2Frame::Subscribe { since: Some(42), .. }));
/// let e = decode_v2_frame(br#"{"type":"chat","id":9,"content":"hi"}"#).unwrap_err();
/// assert_eq!((e.code, e.id), (ErrorCode::RoomRequired, Some(9)));
/// ```
pub fn decode_v2_frame(bytes: &[u8]) -> Result<(Option<u32>, V2Frame<'_>), V2Refusal<'_>> {
    let raw: RawV2<'_> = sonic_rs::from_slice(bytes).map_err(|_| V2Refusal {
        code: ErrorCode::InvalidJson,
        id: None,
        room: None,
    })?;
    let id = match raw.id {
        None => None,
        Some(Some(id)) => Some(id),
        Some(None) => return Err(refuse(ErrorCode::InvalidJson, None, None)),
    };
    fn refuse(code: ErrorCode, id: Option<u32>, room: Option<Cow<'_, str>>) -> V2Refusal<'_> {
        V2Refusal { code, id, room }
    }
    let kind = match raw.kind.as_deref() {
        Some(k @ ("subscribe" | "unsubscribe" | "chat" | "typing" | "read")) => k,
        Some("refresh") => {
            return match raw.token {
                Some(token) if !token.is_empty() && token.len() <= MAX_TOKEN_BYTES => {
                    Ok((id, V2Frame::Refresh { token }))
                }
                _ => Err(refuse(ErrorCode::InvalidToken, id, None)),
            }
        }
        _ => return Err(refuse(ErrorCode::InvalidType, id, raw.room_id)),
    };
    let Some(room) = raw.room_id else {
        return Err(refuse(ErrorCode::RoomRequired, id, None));
    };
    if !valid_room(&room) {
        return Err(refuse(ErrorCode::InvalidRoom, id, Some(room)));
    }
    let frame = match kind {
        "subscribe" => {
            if raw
                .epoch
                .as_ref()
                .is_some_and(|e| e.len() > MAX_EPOCH_BYTES)
            {
                return Err(refuse(ErrorCode::InvalidEpoch, id, Some(room)));
            }
            V2Frame::Subscribe {
                room,
                since: raw.since,
                epoch: raw.epoch,
            }
        }
        "unsubscribe" => V2Frame::Unsubscribe { room },
        "chat" => {
            let attachments = match decode_attachments(raw.attachments.as_ref()) {
                Ok(files) => files,
                Err(code) => return Err(refuse(code, id, Some(room))),
            };
            // A message of files alone may have no words.
            let content = match (raw.content, attachments.is_empty()) {
                (None, true) => return Err(refuse(ErrorCode::EmptyContent, id, Some(room))),
                (None, false) => Cow::Borrowed(""),
                (Some(c), _) => c,
            };
            match validate_content(&content) {
                Err(FrameError::EmptyContent) if !attachments.is_empty() => {}
                Err(e) => return Err(refuse(FrameError::code(e), id, Some(room))),
                Ok(()) => {}
            }
            if let Some(cmid) = &raw.client_msg_id {
                let n = cmid.chars().count();
                if n == 0 || n > MAX_CLIENT_MSG_ID_CHARS {
                    return Err(refuse(ErrorCode::InvalidClientMsgId, id, Some(room)));
                }
            }
            V2Frame::Chat {
                room,
                content,
                client_msg_id: raw.client_msg_id,
                attachments,
            }
        }
        "typing" => V2Frame::Typing {
            room,
            stop: raw.stop.unwrap_or(false),
        },
        _ => {
            use sonic_rs::JsonValueTrait;
            match raw.seq.as_ref().and_then(|v| v.as_u64()) {
                Some(seq) => V2Frame::Read { room, seq },
                None => return Err(refuse(ErrorCode::InvalidSeq, id, Some(room))),
            }
        }
    };
    Ok((id, frame))
}

/// Most bytes in an `epoch` a client sends back.
pub const MAX_EPOCH_BYTES: usize = 32;

fn write_json<T: Serialize>(buf: &mut Vec<u8>, value: &T) {
    // Plain structs of strings, integers and booleans into a Vec: this cannot fail.
    if sonic_rs::to_writer(&mut *buf, value).is_err() {
        unreachable!("serializing a frame into a Vec failed");
    }
}

/// Appends the `hello` frame, the first of every v2 connection.
///
/// ```
/// let mut buf = Vec::new();
/// hubbub_core::protocol::encode_hello(&mut buf, "u", "U", "c", "n", 64);
/// assert!(buf.starts_with(br#"{"type":"hello","proto":2,"userId":"u""#));
/// ```
pub fn encode_hello(
    buf: &mut Vec<u8>,
    user_id: &str,
    username: &str,
    connection_id: &str,
    node: &str,
    subscriptions: usize,
) {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Limits {
        subscriptions: usize,
        content_chars: usize,
        frame_bytes: usize,
        client_msg_id_chars: usize,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Hello<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        proto: u8,
        user_id: &'a str,
        username: &'a str,
        connection_id: &'a str,
        node: &'a str,
        limits: Limits,
    }
    write_json(
        buf,
        &Hello {
            kind: "hello",
            proto: 2,
            user_id,
            username,
            connection_id,
            node,
            limits: Limits {
                subscriptions,
                content_chars: MAX_CONTENT_CHARS,
                frame_bytes: MAX_FRAME_BYTES,
                client_msg_id_chars: MAX_CLIENT_MSG_ID_CHARS,
            },
        },
    );
}

/// The answer to a `subscribe`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscribed<'a> {
    /// The request's `id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    /// The room.
    pub room_id: &'a str,
    /// The room's epoch.
    pub epoch: &'a str,
    /// The room's last `seq`.
    pub seq: u64,
    /// Everything after the client's `since` follows.
    pub recovered: bool,
    /// The user's read marker in the room.
    pub last_read: u64,
    /// Distinct users connected to the room.
    pub online: usize,
    /// Within `PRESENCE_MAX_MEMBERS`: the users online as of the room's last `presence`
    /// frame, the set that the next one's `joined` and `left` change (so a subscriber
    /// who applies them is never off by a change that was pending when it came).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<&'a [UserRef<'a>]>,
}

/// Appends a `subscribed` frame.
pub fn encode_subscribed(buf: &mut Vec<u8>, s: &Subscribed<'_>) {
    #[derive(Serialize)]
    struct Tagged<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(flatten)]
        body: &'a Subscribed<'a>,
    }
    write_json(
        buf,
        &Tagged {
            kind: "subscribed",
            body: s,
        },
    );
}

/// Appends an `unsubscribed` frame: the answer to `unsubscribe` (with its `id`), or the
/// end of a subscription the client did not ask for (with a `reason`).
pub fn encode_unsubscribed(
    buf: &mut Vec<u8>,
    id: Option<u32>,
    room_id: &str,
    reason: Option<&str>,
) {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Unsubscribed<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
        room_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
    }
    write_json(
        buf,
        &Unsubscribed {
            kind: "unsubscribed",
            id,
            room_id,
            reason,
        },
    );
}

/// An accepted chat message, acknowledged to its sender.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ack<'a> {
    /// The request's `id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    /// The room.
    pub room_id: &'a str,
    /// The message's `seq`.
    pub seq: u64,
    /// The message's id.
    pub message_id: &'a str,
    /// The client's id for the send, echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<&'a str>,
    /// A resend of a message already accepted: nothing was broadcast again.
    pub duplicate: bool,
}

/// Appends an `ack` frame.
///
/// ```
/// use hubbub_core::protocol::{encode_ack, Ack};
/// let mut buf = Vec::new();
/// encode_ack(&mut buf, &Ack { id: Some(9), room_id: "dev", seq: 58, message_id: "m",
///     client_msg_id: Some("c-17"), duplicate: false });
/// assert_eq!(buf, br#"{"type":"ack","id":9,"roomId":"dev","seq":58,"messageId":"m","clientMsgId":"c-17","duplicate":false}"#);
/// ```
pub fn encode_ack(buf: &mut Vec<u8>, ack: &Ack<'_>) {
    #[derive(Serialize)]
    struct Tagged<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(flatten)]
        body: &'a Ack<'a>,
    }
    write_json(
        buf,
        &Tagged {
            kind: "ack",
            body: ack,
        },
    );
}

/// `{"type":"refreshed","id":…,"expiresAt":"…"}`: the connection now runs on a new token.
///
/// ```
/// let mut buf = Vec::new();
/// hubbub_core::protocol::encode_refreshed(&mut buf, Some(3), "2026-12-03T10:00:00.000Z");
/// assert_eq!(buf, br#"{"type":"refreshed","id":3,"expiresAt":"2026-12-03T10:00:00.000Z"}"#);
/// ```
pub fn encode_refreshed(buf: &mut Vec<u8>, id: Option<u32>, expires_at: &str) {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Refreshed<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
        expires_at: &'a str,
    }
    write_json(
        buf,
        &Refreshed {
            kind: "refreshed",
            id,
            expires_at,
        },
    );
}

/// A user as presence and typing frames name them.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRef<'a> {
    /// The user id.
    pub user_id: &'a str,
    /// The display name.
    pub username: &'a str,
}

/// A user who went offline in a room.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeftRef<'a> {
    /// The user id.
    pub user_id: &'a str,
    /// When their last connection to the room closed (RFC 3339).
    pub last_seen: &'a str,
}

/// What a `presence` frame within `PRESENCE_MAX_MEMBERS` lists.
#[derive(Debug, Clone, Copy, Default)]
pub struct PresenceLists<'a> {
    /// Who came online since the last frame.
    pub joined: &'a [UserRef<'a>],
    /// Who went offline since the last frame, with when.
    pub left: &'a [LeftRef<'a>],
    /// The whole set online now, when subscribers cannot know it from the changes: the
    /// room was over the bound since they last had a list.
    pub users: Option<&'a [UserRef<'a>]>,
}

/// Appends a `presence` frame; `lists` is `None` above `PRESENCE_MAX_MEMBERS`, where
/// only the count is sent.
///
/// ```
/// use hubbub_core::protocol::{encode_presence_v2, PresenceLists, UserRef};
/// let ann = [UserRef { user_id: "u1", username: "Ann" }];
/// let mut buf = Vec::new();
/// encode_presence_v2(&mut buf, "dev", 1, Some(PresenceLists { joined: &ann, left: &[], users: Some(&ann) }));
/// assert_eq!(
///     buf,
///     br#"{"type":"presence","roomId":"dev","online":1,"joined":[{"userId":"u1","username":"Ann"}],"left":[],"users":[{"userId":"u1","username":"Ann"}]}"#
/// );
/// ```
pub fn encode_presence_v2(
    buf: &mut Vec<u8>,
    room_id: &str,
    online: usize,
    lists: Option<PresenceLists<'_>>,
) {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Presence<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        room_id: &'a str,
        online: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        joined: Option<&'a [UserRef<'a>]>,
        #[serde(skip_serializing_if = "Option::is_none")]
        left: Option<&'a [LeftRef<'a>]>,
        #[serde(skip_serializing_if = "Option::is_none")]
        users: Option<&'a [UserRef<'a>]>,
    }
    write_json(
        buf,
        &Presence {
            kind: "presence",
            room_id,
            online,
            joined: lists.map(|l| l.joined),
            left: lists.map(|l| l.left),
            users: lists.and_then(|l| l.users),
        },
    );
}

/// Most users a `typing` frame names; `count` says how many type in all. A room where a
/// hundred type costs a frame of ten names, not of a hundred.
pub const MAX_TYPING_LISTED: usize = 10;

/// Appends a `typing` frame: the first [`MAX_TYPING_LISTED`] of `users` (who type in
/// `room_id`, in the order given) and `count`, all of them.
///
/// ```
/// use hubbub_core::protocol::{encode_typing, UserRef};
/// let mut buf = Vec::new();
/// let ann = UserRef { user_id: "ann", username: "Ann" };
/// encode_typing(&mut buf, "dev", &[ann], 1);
/// assert_eq!(buf, br#"{"type":"typing","roomId":"dev","users":[{"userId":"ann","username":"Ann"}],"count":1}"#);
/// ```
pub fn encode_typing(buf: &mut Vec<u8>, room_id: &str, users: &[UserRef<'_>], count: usize) {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Typing<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        room_id: &'a str,
        users: &'a [UserRef<'a>],
        count: usize,
    }
    write_json(
        buf,
        &Typing {
            kind: "typing",
            room_id,
            users: &users[..users.len().min(MAX_TYPING_LISTED)],
            count,
        },
    );
}

/// Appends a `read` frame: `user_id` has read `room_id` up to `seq`.
pub fn encode_read(buf: &mut Vec<u8>, room_id: &str, user_id: &str, seq: u64) {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Read<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        room_id: &'a str,
        user_id: &'a str,
        seq: u64,
    }
    write_json(
        buf,
        &Read {
            kind: "read",
            room_id,
            user_id,
            seq,
        },
    );
}

/// Appends a v2 error frame: the v1 shape plus the request's `id` and the room.
///
/// ```
/// use hubbub_core::protocol::{encode_error_v2, ErrorCode};
/// let mut buf = Vec::new();
/// encode_error_v2(&mut buf, ErrorCode::NotSubscribed, Some(3), Some("dev"));
/// assert!(buf.starts_with(br#"{"type":"error","code":"not_subscribed","#));
/// assert!(buf.ends_with(br#","id":3,"roomId":"dev"}"#));
/// ```
pub fn encode_error_v2(buf: &mut Vec<u8>, code: ErrorCode, id: Option<u32>, room: Option<&str>) {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Error<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        room_id: Option<&'a str>,
    }
    let message = match code {
        ErrorCode::InvalidType => {
            "type must be one of subscribe, unsubscribe, chat, typing, read, refresh"
        }
        _ => code.message(),
    };
    write_json(
        buf,
        &Error {
            kind: "error",
            code: code.as_str(),
            message,
            id,
            room_id: room,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(bytes: &[u8]) -> (ErrorCode, Option<u32>, Option<String>) {
        let e = decode_v2_frame(bytes).unwrap_err();
        (e.code, e.id, e.room.map(Cow::into_owned))
    }

    #[test]
    fn frames_decode() {
        fn ok(b: &[u8]) -> (Option<u32>, V2Frame<'_>) {
            decode_v2_frame(b).unwrap()
        }
        assert_eq!(
            ok(br#"{"type":"unsubscribe","roomId":"a"}"#),
            (None, V2Frame::Unsubscribe { room: "a".into() })
        );
        assert_eq!(
            ok(br#"{"type":"chat","id":1,"roomId":"a","content":"x","clientMsgId":"c"}"#),
            (
                Some(1),
                V2Frame::Chat {
                    room: "a".into(),
                    content: "x".into(),
                    client_msg_id: Some("c".into()),
                    attachments: vec![],
                }
            )
        );
        assert_eq!(
            ok(br#"{"type":"chat","roomId":"a","attachments":[{"fileId":"f"}]}"#).1,
            V2Frame::Chat {
                room: "a".into(),
                content: "".into(),
                client_msg_id: None,
                attachments: vec!["f".into()],
            }
        );
        for (raw, code) in [
            (&br#"{"type":"chat","roomId":"a","content":"  "}"#[..], ErrorCode::EmptyContent),
            (br#"{"type":"chat","roomId":"a","attachments":[]}"#, ErrorCode::EmptyContent),
            (br#"{"type":"chat","roomId":"a","attachments":{"fileId":"f"}}"#, ErrorCode::InvalidAttachments),
            (
                br#"{"type":"chat","roomId":"a","attachments":[{"fileId":"1"},{"fileId":"2"},{"fileId":"3"},{"fileId":"4"},{"fileId":"5"}]}"#,
                ErrorCode::TooManyAttachments,
            ),
        ] {
            assert_eq!(decode_v2_frame(raw).unwrap_err().code, code);
        }
        assert_eq!(
            ok(br#"{"type":"typing","roomId":"a","stop":true}"#).1,
            V2Frame::Typing {
                room: "a".into(),
                stop: true
            }
        );
        assert_eq!(
            ok(br#"{"type":"read","roomId":"a","seq":5,"extra":[1]}"#).1,
            V2Frame::Read {
                room: "a".into(),
                seq: 5
            }
        );
        assert_eq!(
            ok(br#"{"type":"subscribe","roomId":"a","since":3,"epoch":"e"}"#).1,
            V2Frame::Subscribe {
                room: "a".into(),
                since: Some(3),
                epoch: Some("e".into())
            }
        );
    }

    #[test]
    fn refusals_carry_id_and_room() {
        assert_eq!(code(b"nope"), (ErrorCode::InvalidJson, None, None));
        assert_eq!(
            code(br#"{"type":"chat","id":-1,"roomId":"a","content":"x"}"#).0,
            ErrorCode::InvalidJson,
            "an id that is not a u32"
        );
        assert_eq!(
            code(br#"{"type":"unsubscribe","id":null,"roomId":"a"}"#),
            (ErrorCode::InvalidJson, None, None),
            "a null id is not an integer"
        );
        assert_eq!(
            code(br#"{"type":"join","id":4,"roomId":"a"}"#),
            (ErrorCode::InvalidType, Some(4), Some("a".into()))
        );
        assert_eq!(
            code(br#"{"type":"subscribe","id":5}"#),
            (ErrorCode::RoomRequired, Some(5), None)
        );
        assert_eq!(
            code(br#"{"type":"subscribe","roomId":"a b"}"#).0,
            ErrorCode::InvalidRoom
        );
        assert_eq!(
            code(br#"{"type":"chat","roomId":"a","content":"  "}"#).0,
            ErrorCode::EmptyContent
        );
        assert_eq!(
            code(br#"{"type":"chat","roomId":"a"}"#).0,
            ErrorCode::EmptyContent
        );
        let long = format!(
            r#"{{"type":"chat","roomId":"a","content":"{}"}}"#,
            "x".repeat(1001)
        );
        assert_eq!(code(long.as_bytes()).0, ErrorCode::ContentTooLong);
        let cmid = format!(
            r#"{{"type":"chat","roomId":"a","content":"x","clientMsgId":"{}"}}"#,
            "é".repeat(65)
        );
        assert_eq!(code(cmid.as_bytes()).0, ErrorCode::InvalidClientMsgId);
        assert_eq!(
            code(br#"{"type":"chat","roomId":"a","content":"x","clientMsgId":""}"#).0,
            ErrorCode::InvalidClientMsgId
        );
        for seq in [r#""5""#, "-1", "1.5", "null"] {
            let f = format!(r#"{{"type":"read","roomId":"a","seq":{seq}}}"#);
            assert_eq!(code(f.as_bytes()).0, ErrorCode::InvalidSeq, "{seq}");
        }
        assert_eq!(
            code(br#"{"type":"read","roomId":"a"}"#).0,
            ErrorCode::InvalidSeq
        );
        let epoch = format!(
            r#"{{"type":"subscribe","roomId":"a","epoch":"{}"}}"#,
            "e".repeat(33)
        );
        assert_eq!(code(epoch.as_bytes()).0, ErrorCode::InvalidEpoch);
    }

    #[test]
    fn server_frames_are_json_objects_of_their_type() {
        let mut buf = Vec::new();
        encode_presence_v2(
            &mut buf,
            "r",
            2,
            Some(PresenceLists {
                joined: &[UserRef {
                    user_id: "b",
                    username: "B",
                }],
                left: &[LeftRef {
                    user_id: "c",
                    last_seen: "t",
                }],
                users: None,
            }),
        );
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"presence","roomId":"r","online":2,
                "joined":[{"userId":"b","username":"B"}],"left":[{"userId":"c","lastSeen":"t"}]})
        );
        buf.clear();
        encode_presence_v2(&mut buf, "r", 300, None);
        assert_eq!(buf, br#"{"type":"presence","roomId":"r","online":300}"#);
        buf.clear();
        encode_subscribed(
            &mut buf,
            &Subscribed {
                id: None,
                room_id: "r",
                epoch: "e",
                seq: 3,
                recovered: true,
                last_read: 1,
                online: 1,
                users: None,
            },
        );
        assert_eq!(
            buf,
            br#"{"type":"subscribed","roomId":"r","epoch":"e","seq":3,"recovered":true,"lastRead":1,"online":1}"#
        );
        buf.clear();
        encode_subscribed(
            &mut buf,
            &Subscribed {
                id: Some(4),
                room_id: "r",
                epoch: "e",
                seq: 0,
                recovered: false,
                last_read: 0,
                online: 1,
                users: Some(&[UserRef {
                    user_id: "a",
                    username: "A",
                }]),
            },
        );
        assert_eq!(
            buf,
            br#"{"type":"subscribed","id":4,"roomId":"r","epoch":"e","seq":0,"recovered":false,"lastRead":0,"online":1,"users":[{"userId":"a","username":"A"}]}"#
        );
        buf.clear();
        encode_typing(&mut buf, "r", &[], 0);
        assert_eq!(
            buf,
            br#"{"type":"typing","roomId":"r","users":[],"count":0}"#
        );
        buf.clear();
        let names: Vec<String> = (0..30).map(|i| format!("u{i:02}")).collect();
        let many: Vec<UserRef<'_>> = names
            .iter()
            .map(|n| UserRef {
                user_id: n,
                username: n,
            })
            .collect();
        encode_typing(&mut buf, "r", &many, 30);
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(
            (v["users"].as_array().map(Vec::len), &v["count"]),
            (Some(MAX_TYPING_LISTED), &serde_json::json!(30)),
            "a long set is cut, its count whole"
        );
        buf.clear();
        encode_read(&mut buf, "r", "u", 9);
        assert_eq!(buf, br#"{"type":"read","roomId":"r","userId":"u","seq":9}"#);
    }
}
