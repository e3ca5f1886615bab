//! The JSON bodies of the server API (`POST /api/server/…`, docs/PROTOCOL.md §4.2): what
//! a backend holding the `API_KEY` asks the server to do.

use serde::Deserialize;

use super::inbound::validate_content;
use super::{FrameError, MessageKind};
use crate::upgrade::{valid_room, valid_username, MAX_USER_ID_CHARS};

/// The user id of a published message that names none.
pub const SYSTEM_USER_ID: &str = "system";
/// The username of a published message that names no user (or no username).
pub const SYSTEM_USERNAME: &str = "System";

/// `POST /api/server/publish`: a message sequenced, stored and broadcast in `room_id` like
/// any other; the only way a `system` message is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// The room (the rules of the `room` parameter).
    pub room_id: String,
    /// `chat` (in a user's name) or `system`.
    pub kind: MessageKind,
    /// The text (the rules of a client's `content`).
    pub content: String,
    /// The sender: `userId`, default [`SYSTEM_USER_ID`].
    pub user_id: String,
    /// `username`, default the user id for a chat message and [`SYSTEM_USERNAME`] for a
    /// system one that names no user.
    pub username: String,
}

/// `POST /api/server/disconnect`: every connection of `user_id` is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisconnectRequest {
    /// The user whose connections close.
    pub user_id: String,
}

/// `POST /api/server/unsubscribe`: every subscription of `user_id` to `room_id` ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeRequest {
    /// The user.
    pub user_id: String,
    /// The room.
    pub room_id: String,
}

/// Why a server API body was refused: 400 with [`BodyError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// Not a JSON object of the endpoint's fields (a field of the wrong type included).
    #[error("the body must be a JSON object: {0}")]
    InvalidBody(&'static str),
    /// `roomId` missing or breaking the room rules.
    #[error("roomId must be 1 to 128 of the characters A-Z a-z 0-9 - _ . : @")]
    InvalidRoom,
    /// `userId` missing where required, empty or over 128 characters.
    #[error("userId must be 1 to 128 characters")]
    InvalidUser,
    /// `username` empty, over 50 characters or with control characters.
    #[error("username must be 1 to 50 characters, with no control characters")]
    InvalidUsername,
    /// `type` other than `chat` or `system`.
    #[error("type must be \"chat\" or \"system\"")]
    InvalidType,
    /// `content` missing, empty or whitespace only.
    #[error("content must hold a non-whitespace character")]
    EmptyContent,
    /// `content` over 1000 scalar values.
    #[error("content must be at most 1000 characters")]
    ContentTooLong,
    /// A room's `name` missing (where required), empty, over 100 characters or with
    /// control characters.
    #[error("name must be 1 to 100 characters, with no control characters")]
    InvalidName,
    /// `visibility` other than `public`, `private` or `group`.
    #[error("visibility must be \"public\", \"private\" or \"group\"")]
    InvalidVisibility,
    /// `role` other than `member` or `admin`.
    #[error("role must be \"member\" or \"admin\"")]
    InvalidRole,
    /// `members` with an id that is empty or over 128 characters, or more than 1000 ids.
    #[error("members must be at most 1000 user ids of 1 to 128 characters")]
    InvalidMembers,
}

impl BodyError {
    /// The `error` code of the 400 answer.
    pub const fn code(&self) -> &'static str {
        match self {
            BodyError::InvalidBody(_) => "invalid_body",
            BodyError::InvalidRoom => "invalid_room",
            BodyError::InvalidUser => "invalid_user_id",
            BodyError::InvalidUsername => "invalid_username",
            BodyError::InvalidType => "invalid_type",
            BodyError::EmptyContent => "empty_content",
            BodyError::ContentTooLong => "content_too_long",
            BodyError::InvalidName => "invalid_name",
            BodyError::InvalidVisibility => "invalid_visibility",
            BodyError::InvalidRole => "invalid_role",
            BodyError::InvalidMembers => "invalid_members",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPublish {
    room_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    content: Option<String>,
    user_id: Option<String>,
    username: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTarget {
    user_id: Option<String>,
    room_id: Option<String>,
}

pub(super) fn json<'a, T: Deserialize<'a>>(
    body: &'a [u8],
    fields: &'static str,
) -> Result<T, BodyError> {
    sonic_rs::from_slice(body).map_err(|_| BodyError::InvalidBody(fields))
}

pub(super) fn room(raw: Option<String>) -> Result<String, BodyError> {
    raw.filter(|r| valid_room(r)).ok_or(BodyError::InvalidRoom)
}

pub(super) fn user(raw: Option<String>) -> Result<String, BodyError> {
    raw.filter(|u| !u.is_empty() && u.chars().count() <= MAX_USER_ID_CHARS)
        .ok_or(BodyError::InvalidUser)
}

impl PublishRequest {
    /// Decodes and validates a publish body.
    ///
    /// ```
    /// use hubbub_core::protocol::{BodyError, MessageKind, PublishRequest};
    /// let p = PublishRequest::decode(br#"{"roomId":"dev","content":"Deploy at 5","type":"system"}"#).unwrap();
    /// assert_eq!((p.kind, p.user_id.as_str(), p.username.as_str()), (MessageKind::System, "system", "System"));
    /// let chat = PublishRequest::decode(br#"{"roomId":"dev","content":"hi","userId":"bot"}"#).unwrap();
    /// assert_eq!((chat.kind, chat.username.as_str()), (MessageKind::Chat, "bot"));
    /// assert_eq!(PublishRequest::decode(br#"{"roomId":"dev","content":"x","type":"join"}"#), Err(BodyError::InvalidType));
    /// ```
    pub fn decode(body: &[u8]) -> Result<PublishRequest, BodyError> {
        let raw: RawPublish = json(body, "roomId, content, type?, userId?, username?")?;
        let room_id = room(raw.room_id)?;
        let kind = match raw.kind.as_deref() {
            None => MessageKind::Chat,
            Some(k) => MessageKind::parse(k).ok_or(BodyError::InvalidType)?,
        };
        let content = raw.content.ok_or(BodyError::EmptyContent)?;
        validate_content(&content).map_err(|e| match e {
            FrameError::ContentTooLong => BodyError::ContentTooLong,
            _ => BodyError::EmptyContent,
        })?;
        let named = raw.user_id.is_some();
        let user_id = match raw.user_id {
            None => SYSTEM_USER_ID.to_owned(),
            given => user(given)?,
        };
        let username = match raw.username {
            Some(name) => valid_username(&name)
                .ok_or(BodyError::InvalidUsername)?
                .to_owned(),
            None if named || kind == MessageKind::Chat => user_id.clone(),
            None => SYSTEM_USERNAME.to_owned(),
        };
        Ok(PublishRequest {
            room_id,
            kind,
            content,
            user_id,
            username,
        })
    }
}

impl DisconnectRequest {
    /// Decodes and validates a disconnect body.
    ///
    /// ```
    /// use hubbub_core::protocol::{BodyError, DisconnectRequest};
    /// assert_eq!(DisconnectRequest::decode(br#"{"userId":"eve"}"#).unwrap().user_id, "eve");
    /// assert_eq!(DisconnectRequest::decode(b"{}"), Err(BodyError::InvalidUser));
    /// ```
    pub fn decode(body: &[u8]) -> Result<DisconnectRequest, BodyError> {
        let raw: RawTarget = json(body, "userId")?;
        Ok(DisconnectRequest {
            user_id: user(raw.user_id)?,
        })
    }
}

impl UnsubscribeRequest {
    /// Decodes and validates an unsubscribe body.
    ///
    /// ```
    /// use hubbub_core::protocol::{BodyError, UnsubscribeRequest};
    /// let u = UnsubscribeRequest::decode(br#"{"userId":"eve","roomId":"dev"}"#).unwrap();
    /// assert_eq!((u.user_id.as_str(), u.room_id.as_str()), ("eve", "dev"));
    /// assert_eq!(UnsubscribeRequest::decode(br#"{"userId":"eve"}"#), Err(BodyError::InvalidRoom));
    /// ```
    pub fn decode(body: &[u8]) -> Result<UnsubscribeRequest, BodyError> {
        let raw: RawTarget = json(body, "userId, roomId")?;
        Ok(UnsubscribeRequest {
            user_id: user(raw.user_id)?,
            room_id: room(raw.room_id)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_rules() {
        let p = |b: &str| PublishRequest::decode(b.as_bytes());
        assert!(matches!(p("nope"), Err(BodyError::InvalidBody(_))));
        assert!(matches!(p("[]"), Err(BodyError::InvalidBody(_))));
        assert!(matches!(
            p(r#"{"roomId":5,"content":"x"}"#),
            Err(BodyError::InvalidBody(_))
        ));
        assert_eq!(p(r#"{"content":"x"}"#), Err(BodyError::InvalidRoom));
        assert_eq!(
            p(r#"{"roomId":"a b","content":"x"}"#),
            Err(BodyError::InvalidRoom)
        );
        assert_eq!(p(r#"{"roomId":"r"}"#), Err(BodyError::EmptyContent));
        assert_eq!(
            p(r#"{"roomId":"r","content":"  "}"#),
            Err(BodyError::EmptyContent)
        );
        let long = format!(r#"{{"roomId":"r","content":"{}"}}"#, "é".repeat(1001));
        assert_eq!(p(&long), Err(BodyError::ContentTooLong));
        let edge = format!(r#"{{"roomId":"r","content":"{}"}}"#, "é".repeat(1000));
        assert!(p(&edge).is_ok());
        assert_eq!(
            p(r#"{"roomId":"r","content":"x","userId":""}"#),
            Err(BodyError::InvalidUser)
        );
        assert_eq!(
            p(r#"{"roomId":"r","content":"x","username":" "}"#),
            Err(BodyError::InvalidUsername)
        );
        let named =
            p(r#"{"roomId":"r","content":"x","type":"system","userId":"ops","username":" Ops "}"#)
                .unwrap();
        assert_eq!(
            (named.user_id.as_str(), named.username.as_str()),
            ("ops", "Ops")
        );
        let ops = p(r#"{"roomId":"r","content":"x","type":"system","userId":"ops"}"#).unwrap();
        assert_eq!(ops.username, "ops");
        // Content is kept exactly as sent.
        assert_eq!(
            p(r#"{"roomId":"r","content":"  hi  "}"#).unwrap().content,
            "  hi  "
        );
    }

    #[test]
    fn codes_are_distinct() {
        let all = [
            BodyError::InvalidBody(""),
            BodyError::InvalidRoom,
            BodyError::InvalidUser,
            BodyError::InvalidUsername,
            BodyError::InvalidType,
            BodyError::EmptyContent,
            BodyError::ContentTooLong,
        ];
        let mut codes: Vec<&str> = all.iter().map(BodyError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }
}
