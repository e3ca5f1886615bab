//! The wire format: client frames in, server frames out, HTTP error bodies.
//!
//! Decoding borrows from the input; encoding writes into a caller's reusable buffer, so a
//! broadcast is serialized once and shared by every recipient.

mod attachments;
mod inbound;
mod outbound;
mod rooms_api;
mod server_api;
mod v2;

pub use attachments::{decode_attachments, Attachment, MAX_ATTACHMENTS, MAX_FILE_ID_CHARS};
pub use inbound::{decode_client_frame, validate_content, ClientFrame, FrameError};
pub use outbound::{
    encode_chat, encode_chat_message, encode_error, encode_http_error, encode_message_list,
    encode_presence, one_per_seq, ChatMessage, ChatMessageRef, ErrorFrame, MessageKind,
    PresenceEvent, PresenceKind, ServerFrame,
};
pub use rooms_api::{member_role, CreateRoomBody, UpdateRoomBody};
pub use server_api::{
    BodyError, DisconnectRequest, PublishRequest, UnsubscribeRequest, SYSTEM_USERNAME,
    SYSTEM_USER_ID,
};
pub use v2::{
    decode_v2_frame, encode_ack, encode_error_v2, encode_hello, encode_presence_v2, encode_read,
    encode_refreshed, encode_subscribed, encode_typing, encode_unsubscribed, Ack, LeftRef,
    PresenceLists, Subscribed, UserRef, V2Frame, V2Refusal, MAX_CLIENT_MSG_ID_CHARS,
    MAX_EPOCH_BYTES, MAX_TOKEN_BYTES, MAX_TYPING_LISTED,
};

/// The `code` of an error frame sent to one connection (PROTOCOL.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame is not a JSON object of the expected shape.
    InvalidJson,
    /// `type` is missing or is not `chat`.
    InvalidType,
    /// `content` is missing or holds only whitespace.
    EmptyContent,
    /// `content` is over 1000 Unicode scalar values.
    ContentTooLong,
    /// The connection's token bucket is empty.
    RateLimited,
    /// The server refused the message (persistence saturated under the reject policy).
    Overloaded,
    /// v2: a frame that names no `roomId`.
    RoomRequired,
    /// v2: a `roomId` that breaks the room id rule.
    InvalidRoom,
    /// v2: `subscribe` to a room the connection is subscribed to.
    AlreadySubscribed,
    /// v2: `subscribe` beyond `MAX_SUBSCRIPTIONS`.
    TooManySubscriptions,
    /// v2: a frame about a room the connection is not subscribed to.
    NotSubscribed,
    /// v2: a `clientMsgId` empty or over 64 characters.
    InvalidClientMsgId,
    /// v2: a `read` whose `seq` is not a non-negative integer.
    InvalidSeq,
    /// v2: an `epoch` over 32 bytes.
    InvalidEpoch,
    /// v2 `refresh`: the token is missing, malformed, badly signed or its claims are refused.
    InvalidToken,
    /// v2 `refresh`: the token has expired.
    TokenExpired,
    /// v2 `refresh`: the token names another user.
    Forbidden,
    /// v2 `refresh` on a server without token auth.
    AuthDisabled,
    /// v2 `subscribe` to a room that was deleted.
    RoomNotFound,
    /// v2 chat: `attachments` is not an array of `{"fileId"}` with distinct ids of 1 to
    /// 64 characters.
    InvalidAttachments,
    /// v2 chat: more than [`MAX_ATTACHMENTS`] attachments.
    TooManyAttachments,
    /// v2 chat: an attachment names no file uploaded to this room (or its bytes have not
    /// arrived).
    FileNotFound,
    /// v2 chat: an attachment's stored bytes are more than its upload declared.
    FileTooLarge,
    /// v2 chat: the server could not check the attachments (files off, or its file
    /// store did not answer); nothing was sent.
    FilesUnavailable,
    /// Chat in a room shared with other nodes while their broker (Redis) cannot be
    /// reached; nothing was sent.
    BrokerUnavailable,
}

impl ErrorCode {
    /// The wire name, e.g. `"rate_limited"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidType => "invalid_type",
            ErrorCode::EmptyContent => "empty_content",
            ErrorCode::ContentTooLong => "content_too_long",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::RoomRequired => "room_required",
            ErrorCode::InvalidRoom => "invalid_room",
            ErrorCode::AlreadySubscribed => "already_subscribed",
            ErrorCode::TooManySubscriptions => "too_many_subscriptions",
            ErrorCode::NotSubscribed => "not_subscribed",
            ErrorCode::InvalidClientMsgId => "invalid_client_msg_id",
            ErrorCode::InvalidSeq => "invalid_seq",
            ErrorCode::InvalidEpoch => "invalid_epoch",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::AuthDisabled => "auth_disabled",
            ErrorCode::RoomNotFound => "room_not_found",
            ErrorCode::InvalidAttachments => "invalid_attachments",
            ErrorCode::TooManyAttachments => "too_many_attachments",
            ErrorCode::FileNotFound => "file_not_found",
            ErrorCode::FileTooLarge => "file_too_large",
            ErrorCode::FilesUnavailable => "files_unavailable",
            ErrorCode::BrokerUnavailable => "broker_unavailable",
        }
    }

    /// A sentence for people, sent as the error frame's `message`.
    pub const fn message(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => {
                "frame must be a JSON object like {\"type\":\"chat\",\"content\":\"...\"}"
            }
            ErrorCode::InvalidType => "only frames of type \"chat\" may be sent",
            ErrorCode::EmptyContent => "content must contain a non-whitespace character",
            ErrorCode::ContentTooLong => "content must be at most 1000 characters",
            ErrorCode::RateLimited => "too many messages: slow down",
            ErrorCode::Overloaded => {
                "the server is overloaded and did not accept the message; retry later"
            }
            ErrorCode::RoomRequired => "this frame needs a roomId",
            ErrorCode::InvalidRoom => {
                "roomId must be 1 to 128 of the characters A-Z a-z 0-9 - _ . : @"
            }
            ErrorCode::AlreadySubscribed => "this connection is already subscribed to the room",
            ErrorCode::TooManySubscriptions => {
                "this connection holds as many subscriptions as the server allows"
            }
            ErrorCode::NotSubscribed => "this connection is not subscribed to the room",
            ErrorCode::InvalidClientMsgId => "clientMsgId must be 1 to 64 characters",
            ErrorCode::InvalidSeq => "seq must be a non-negative integer",
            ErrorCode::InvalidEpoch => "epoch must be at most 32 bytes",
            ErrorCode::InvalidToken => {
                "the token was refused: malformed, badly signed, or with claims not accepted"
            }
            ErrorCode::TokenExpired => "the token has expired",
            ErrorCode::Forbidden => {
                "not allowed for this connection's user (a private or group room takes members only)"
            }
            ErrorCode::AuthDisabled => "the server has no token auth: there is nothing to refresh",
            ErrorCode::RoomNotFound => "the room was deleted",
            ErrorCode::InvalidAttachments => {
                "attachments must be an array of {\"fileId\":\"...\"} with distinct ids of 1 to 64 characters"
            }
            ErrorCode::TooManyAttachments => "a message carries at most 4 attachments",
            ErrorCode::FileNotFound => {
                "an attachment names no file uploaded to this room, or its upload has not finished"
            }
            ErrorCode::FileTooLarge => "an attachment's bytes are more than its upload declared",
            ErrorCode::FilesUnavailable => {
                "the attachments could not be checked (file sharing is off or unavailable); nothing was sent"
            }
            ErrorCode::BrokerUnavailable => {
                "the servers cannot reach the broker that orders this room's messages; nothing was sent, retry later"
            }
        }
    }
}

/// Most Unicode scalar values a chat message's content may hold.
pub const MAX_CONTENT_CHARS: usize = 1000;

/// Largest WebSocket payload the server reads; a larger one closes the connection (1009).
pub const MAX_FRAME_BYTES: usize = 8192;
