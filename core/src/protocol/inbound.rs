use std::borrow::Cow;

use serde::Deserialize;

use super::{ErrorCode, MAX_CONTENT_CHARS};

/// A valid chat frame from a client, borrowing its content from the input when it held no
/// escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame<'a> {
    /// The message text, exactly as sent (not trimmed).
    pub content: Cow<'a, str>,
}

/// Why a client frame was refused; each maps to one error frame [`ErrorCode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Not a JSON object with string `type` and `content`.
    #[error("invalid JSON frame")]
    InvalidJson,
    /// `type` missing or other than `chat`.
    #[error("invalid frame type")]
    InvalidType,
    /// Content missing, empty or whitespace only.
    #[error("empty content")]
    EmptyContent,
    /// Content over [`MAX_CONTENT_CHARS`] scalar values.
    #[error("content too long")]
    ContentTooLong,
}

impl FrameError {
    /// The error frame code this refusal is reported with.
    pub const fn code(self) -> ErrorCode {
        match self {
            FrameError::InvalidJson => ErrorCode::InvalidJson,
            FrameError::InvalidType => ErrorCode::InvalidType,
            FrameError::EmptyContent => ErrorCode::EmptyContent,
            FrameError::ContentTooLong => ErrorCode::ContentTooLong,
        }
    }
}

#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
}

/// Decodes and validates one client text frame.
///
/// Unknown fields are ignored, including any server-authoritative ones a client tried to
/// set (`messageId`, `userId`, `seq`, …).
///
/// ```
/// use hubbub_core::protocol::{decode_client_frame, FrameError};
/// let f = decode_client_frame(br#"{"type":"chat","content":"hi","seq":99}"#).unwrap();
/// assert_eq!(f.content, "hi");
/// assert_eq!(decode_client_frame(br#"{"type":"join"}"#), Err(FrameError::InvalidType));
/// assert_eq!(decode_client_frame(b"nope"), Err(FrameError::InvalidJson));
/// ```
pub fn decode_client_frame(bytes: &[u8]) -> Result<ClientFrame<'_>, FrameError> {
    let raw: RawFrame<'_> = sonic_rs::from_slice(bytes).map_err(|_| FrameError::InvalidJson)?;
    if raw.kind.as_deref() != Some("chat") {
        return Err(FrameError::InvalidType);
    }
    let content = raw.content.ok_or(FrameError::EmptyContent)?;
    validate_content(&content)?;
    Ok(ClientFrame { content })
}

/// The content rules: a non-whitespace character, at most 1000 Unicode scalar values.
///
/// ```
/// use hubbub_core::protocol::{validate_content, FrameError};
/// assert_eq!(validate_content(" hi "), Ok(()));
/// assert_eq!(validate_content(" \n"), Err(FrameError::EmptyContent));
/// ```
pub fn validate_content(content: &str) -> Result<(), FrameError> {
    // Fast path: at most 1000 bytes is at most 1000 scalar values.
    if content.len() > MAX_CONTENT_CHARS && content.chars().count() > MAX_CONTENT_CHARS {
        return Err(FrameError::ContentTooLong);
    }
    if content.chars().all(char::is_whitespace) {
        return Err(FrameError::EmptyContent);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let cases: &[(&[u8], Result<&str, FrameError>)] = &[
            (br#"{"type":"chat","content":"  hi  "}"#, Ok("  hi  ")),
            (
                br#"{"content":"x","type":"chat","extra":{"a":[1,2]}}"#,
                Ok("x"),
            ),
            (
                br#"{"type":"chat","content":"caf\u00e9 \"q\""}"#,
                Ok("café \"q\""),
            ),
            (br#"{"type":"chat"}"#, Err(FrameError::EmptyContent)),
            (
                br#"{"type":"chat","content":" \n\t "}"#,
                Err(FrameError::EmptyContent),
            ),
            (
                br#"{"type":"chat","content":""}"#,
                Err(FrameError::EmptyContent),
            ),
            (
                br#"{"type":"system","content":"x"}"#,
                Err(FrameError::InvalidType),
            ),
            (
                br#"{"type":"leave","content":"x"}"#,
                Err(FrameError::InvalidType),
            ),
            (br#"{"content":"x"}"#, Err(FrameError::InvalidType)),
            (br#"{"type":1,"content":"x"}"#, Err(FrameError::InvalidJson)),
            (
                br#"{"type":"chat","content":5}"#,
                Err(FrameError::InvalidJson),
            ),
            (br#"[1,2]"#, Err(FrameError::InvalidJson)),
            (br#""chat""#, Err(FrameError::InvalidJson)),
            (
                br#"{"type":"chat","content":"x"} trailing"#,
                Err(FrameError::InvalidJson),
            ),
            (b"", Err(FrameError::InvalidJson)),
        ];
        for (input, want) in cases {
            let got = decode_client_frame(input).map(|f| f.content.into_owned());
            assert_eq!(
                got.as_deref().map_err(|e| *e),
                *want,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn length_counts_scalar_values_not_bytes() {
        let at_limit = "é".repeat(1000); // 2000 bytes, 1000 scalar values
        assert!(validate_content(&at_limit).is_ok());
        assert_eq!(
            validate_content(&"é".repeat(1001)),
            Err(FrameError::ContentTooLong)
        );
        assert!(validate_content(&"a".repeat(1000)).is_ok());
        assert_eq!(
            validate_content(&"a".repeat(1001)),
            Err(FrameError::ContentTooLong)
        );
        assert!(validate_content(&"😀".repeat(1000)).is_ok());
    }
}
