//! The chat subset of PROTOCOL.md: the `GET /ws` query parameters (§1), the client's chat
//! frame (§3), and the chat and error frames the server sends (§2). Plain serde_json, as a
//! typical tokio server would have it.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Most Unicode scalar values in a chat message's `content`.
pub const MAX_CONTENT_CHARS: usize = 1000;
/// Largest client frame payload, in bytes; a bigger one closes the connection with 1009.
pub const MAX_FRAME_BYTES: usize = 8192;

const MAX_USER_ID_CHARS: usize = 128;
const MAX_USERNAME_CHARS: usize = 50;
const MAX_ROOM_BYTES: usize = 128;

/// The validated query parameters of a `GET /ws` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// `userId`, default `anonymous`.
    pub user_id: String,
    /// `username`, trimmed, default `Anonymous`.
    pub username: String,
    /// `room`, default `global`.
    pub room: String,
}

/// A query parameter that breaks its rule: the upgrade is refused with `400`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamError {
    /// `userId` empty or over 128 characters.
    UserId,
    /// `username` empty after trimming, over 50 characters, or with a control character.
    Username,
    /// `room` empty, over 128 bytes, or with a character other than `A-Za-z0-9-_.:@`.
    Room,
    /// `since` is not a `u64` (backlog replay itself is not implemented here).
    Since,
}

impl ParamError {
    /// The `error` code of the refusal body.
    pub fn code(self) -> &'static str {
        match self {
            ParamError::UserId => "invalid_user_id",
            ParamError::Username => "invalid_username",
            ParamError::Room => "invalid_room",
            ParamError::Since => "invalid_since",
        }
    }

    /// The `message` of the refusal body.
    pub fn message(self) -> &'static str {
        match self {
            ParamError::UserId => "userId must be 1 to 128 characters",
            ParamError::Username => {
                "username must be 1 to 50 characters after trimming, with no control characters"
            }
            ParamError::Room => "room must be 1 to 128 of the characters A-Z a-z 0-9 - _ . : @",
            ParamError::Since => "since must be a non-negative integer sequence number",
        }
    }
}

impl Params {
    /// Parses and validates the raw (percent-encoded) query string of the upgrade request.
    /// Unknown parameters are ignored; a repeated one counts with its last value.
    pub fn from_query(query: Option<&str>) -> Result<Self, ParamError> {
        let mut params = Params {
            user_id: "anonymous".to_owned(),
            username: "Anonymous".to_owned(),
            room: "global".to_owned(),
        };
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*key {
                "userId" => params.user_id = value.into_owned(),
                "username" => params.username = value.trim().to_owned(),
                "room" => params.room = value.into_owned(),
                "since" => {
                    value.parse::<u64>().map_err(|_| ParamError::Since)?;
                }
                _ => {}
            }
        }
        let user_id_chars = params.user_id.chars().count();
        if user_id_chars == 0 || user_id_chars > MAX_USER_ID_CHARS {
            return Err(ParamError::UserId);
        }
        let username_chars = params.username.chars().count();
        if username_chars == 0
            || username_chars > MAX_USERNAME_CHARS
            || params.username.chars().any(char::is_control)
        {
            return Err(ParamError::Username);
        }
        let room_ok = !params.room.is_empty()
            && params.room.len() <= MAX_ROOM_BYTES
            && params
                .room
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b));
        if !room_ok {
            return Err(ParamError::Room);
        }
        Ok(params)
    }
}

/// Why a client text frame was not accepted; answered with an error frame, the connection
/// stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Not a JSON object with string `type` and `content` fields.
    InvalidJson,
    /// `type` missing or not `"chat"`.
    InvalidType,
    /// `content` missing, empty or only whitespace.
    EmptyContent,
    /// `content` over 1000 Unicode scalar values.
    ContentTooLong,
}

impl FrameError {
    /// The error frame's `code`.
    pub fn code(self) -> &'static str {
        match self {
            FrameError::InvalidJson => "invalid_json",
            FrameError::InvalidType => "invalid_type",
            FrameError::EmptyContent => "empty_content",
            FrameError::ContentTooLong => "content_too_long",
        }
    }

    /// The error frame's `message`.
    pub fn message(self) -> &'static str {
        match self {
            FrameError::InvalidJson => {
                "frame must be a JSON object like {\"type\":\"chat\",\"content\":\"...\"}"
            }
            FrameError::InvalidType => "only frames of type \"chat\" may be sent",
            FrameError::EmptyContent => "content must contain a non-whitespace character",
            FrameError::ContentTooLong => "content must be at most 1000 characters",
        }
    }

    /// The JSON error frame sent to the connection that caused it.
    pub fn to_json(self) -> String {
        serde_json::to_string(&ErrorFrame {
            kind: "error",
            code: self.code(),
            message: self.message(),
        })
        .expect("a struct of strings always serializes")
    }
}

#[derive(Deserialize)]
struct ClientFrame<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
}

/// Parses and validates a client text frame, returning the chat `content`. Unknown fields,
/// including server-authoritative ones the client tried to set, are ignored.
pub fn parse_chat(text: &str) -> Result<Cow<'_, str>, FrameError> {
    let frame: ClientFrame<'_> = serde_json::from_str(text).map_err(|_| FrameError::InvalidJson)?;
    if frame.kind.as_deref() != Some("chat") {
        return Err(FrameError::InvalidType);
    }
    let content = frame.content.ok_or(FrameError::EmptyContent)?;
    if content.chars().count() > MAX_CONTENT_CHARS {
        return Err(FrameError::ContentTooLong);
    }
    if content.trim().is_empty() {
        return Err(FrameError::EmptyContent);
    }
    Ok(content)
}

/// A chat message as broadcast to every connection of its room.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage<'a> {
    /// UUID v7, hyphenated lower case.
    pub message_id: &'a str,
    /// The room.
    pub room_id: &'a str,
    /// Always `"chat"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The sender's user id.
    pub user_id: &'a str,
    /// The sender's display name.
    pub username: &'a str,
    /// The content, as sent.
    pub content: &'a str,
    /// RFC 3339 UTC with exactly millisecond precision.
    pub timestamp: &'a str,
    /// Per-room sequence number, from 1, without gaps.
    pub seq: u64,
}

#[derive(Serialize)]
struct ErrorFrame {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'static str,
    message: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_defaults_and_rules() {
        let p = Params::from_query(None).unwrap();
        assert_eq!(
            (p.user_id.as_str(), p.username.as_str(), p.room.as_str()),
            ("anonymous", "Anonymous", "global")
        );
        let p = Params::from_query(Some(
            "userId=a%7Cb&username=%20Al%C3%AFce%20&room=x:y@z-1.2_3",
        ))
        .unwrap();
        assert_eq!(
            (p.user_id.as_str(), p.username.as_str(), p.room.as_str()),
            ("a|b", "Alïce", "x:y@z-1.2_3")
        );
        assert!(Params::from_query(Some("since=12")).is_ok());
        let bad = [
            ("room=a%20b", ParamError::Room),
            ("room=", ParamError::Room),
            ("room=a/b", ParamError::Room),
            ("userId=", ParamError::UserId),
            ("username=%20%20", ParamError::Username),
            ("username=a%07b", ParamError::Username),
            ("since=-1", ParamError::Since),
        ];
        for (query, err) in bad {
            assert_eq!(Params::from_query(Some(query)), Err(err), "{query}");
        }
        let long_room = format!("room={}", "r".repeat(129));
        assert_eq!(Params::from_query(Some(&long_room)), Err(ParamError::Room));
        let long_name = format!("username={}", "é".repeat(51));
        assert_eq!(
            Params::from_query(Some(&long_name)),
            Err(ParamError::Username)
        );
        assert!(Params::from_query(Some(&format!("username={}", "é".repeat(50)))).is_ok());
    }

    #[test]
    fn client_frames() {
        let ok = |s: &str| parse_chat(s).map(Cow::into_owned);
        assert_eq!(
            ok(r#"{"type":"chat","content":"  hi  "}"#),
            Ok("  hi  ".into())
        );
        assert_eq!(
            ok(r#"{"content":"x","type":"chat","seq":9,"userId":"m","extra":[1]}"#),
            Ok("x".into())
        );
        assert_eq!(
            ok(r#"{"type":"chat","content":"caf\u00e9 \"q\""}"#),
            Ok("café \"q\"".into())
        );
        let cases = [
            ("nope", FrameError::InvalidJson),
            ("[1,2]", FrameError::InvalidJson),
            (r#"{"type":1,"content":"x"}"#, FrameError::InvalidJson),
            (r#"{"type":"chat","content":5}"#, FrameError::InvalidJson),
            (
                r#"{"type":"chat","content":"x"} x"#,
                FrameError::InvalidJson,
            ),
            (r#"{"content":"x"}"#, FrameError::InvalidType),
            (r#"{"type":"join","content":"x"}"#, FrameError::InvalidType),
            (r#"{"type":"chat"}"#, FrameError::EmptyContent),
            (
                r#"{"type":"chat","content":" \n\t "}"#,
                FrameError::EmptyContent,
            ),
        ];
        for (text, err) in cases {
            assert_eq!(parse_chat(text), Err(err), "{text}");
        }
        let max = format!(r#"{{"type":"chat","content":"{}"}}"#, "é".repeat(1000));
        assert!(parse_chat(&max).is_ok());
        let over = format!(r#"{{"type":"chat","content":"{}"}}"#, "a".repeat(1001));
        assert_eq!(parse_chat(&over), Err(FrameError::ContentTooLong));
    }

    #[test]
    fn error_frame_shape() {
        let v: serde_json::Value =
            serde_json::from_str(&FrameError::InvalidType.to_json()).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "invalid_type");
        assert!(v["message"].is_string());
    }
}
