//! The wire format: client frames in, server frames out, HTTP error bodies.
//!
//! Decoding borrows from the input; encoding writes into a caller's reusable buffer, so a
//! broadcast is serialized once and shared by every recipient.

mod inbound;
mod outbound;

pub use inbound::{decode_client_frame, ClientFrame, FrameError};
pub use outbound::{
    encode_chat, encode_chat_message, encode_error, encode_http_error, encode_message_list,
    encode_presence, ChatMessage, ChatMessageRef, ErrorFrame, PresenceEvent, PresenceKind,
    ServerFrame,
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
        }
    }
}

/// Most Unicode scalar values a chat message's content may hold.
pub const MAX_CONTENT_CHARS: usize = 1000;

/// Largest WebSocket payload the server reads; a larger one closes the connection (1009).
pub const MAX_FRAME_BYTES: usize = 8192;
