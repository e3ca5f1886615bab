//! Files attached to chat messages (docs/PROTOCOL.md §4.7): a client names files it
//! uploaded by `fileId`; every recipient sees each one's name, type and size, once the
//! server found its bytes.

use serde::{Deserialize, Serialize};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

use super::ErrorCode;

/// Most files one chat message may carry.
pub const MAX_ATTACHMENTS: usize = 4;

/// Most characters of a `fileId` (the server makes UUIDs: 36).
pub const MAX_FILE_ID_CHARS: usize = 64;

/// A file attached to a message, as a chat frame (and the messages table) carries it.
///
/// ```
/// use hubbub_core::protocol::Attachment;
/// let a = Attachment {
///     file_id: "f1".into(),
///     name: "cat.png".into(),
///     content_type: "image/png".into(),
///     size: 1234,
/// };
/// assert_eq!(
///     sonic_rs::to_string(&a).unwrap(),
///     r#"{"fileId":"f1","name":"cat.png","contentType":"image/png","size":1234}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// The id the upload was given.
    pub file_id: String,
    /// The file's name, as the uploader gave it.
    pub name: String,
    /// Its MIME type (one the server accepts).
    pub content_type: String,
    /// Its size in bytes, as stored.
    pub size: u64,
}

/// Reads a v2 chat frame's `attachments`: an array of at most [`MAX_ATTACHMENTS`] objects
/// with a `fileId` of 1 to [`MAX_FILE_ID_CHARS`] characters, each named once. `null` or
/// absent is no attachment.
///
/// ```
/// use hubbub_core::protocol::{decode_attachments, ErrorCode};
/// let v = sonic_rs::from_str(r#"[{"fileId":"a"},{"fileId":"b"}]"#).unwrap();
/// assert_eq!(decode_attachments(Some(&v)).unwrap(), vec!["a".into(), "b".into()] as Vec<Box<str>>);
/// let v = sonic_rs::from_str(r#"[{"id":"a"}]"#).unwrap();
/// assert_eq!(decode_attachments(Some(&v)), Err(ErrorCode::InvalidAttachments));
/// ```
pub fn decode_attachments(raw: Option<&sonic_rs::Value>) -> Result<Vec<Box<str>>, ErrorCode> {
    let Some(raw) = raw.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = raw.as_array().ok_or(ErrorCode::InvalidAttachments)?;
    if list.len() > MAX_ATTACHMENTS {
        return Err(ErrorCode::TooManyAttachments);
    }
    let mut ids: Vec<Box<str>> = Vec::with_capacity(list.len());
    for item in list.iter() {
        let id = item
            .get("fileId")
            .and_then(|v| v.as_str())
            .ok_or(ErrorCode::InvalidAttachments)?;
        let n = id.chars().count();
        if n == 0 || n > MAX_FILE_ID_CHARS || ids.iter().any(|seen| &**seen == id) {
            return Err(ErrorCode::InvalidAttachments);
        }
        ids.push(id.into());
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(raw: &str) -> Result<Vec<Box<str>>, ErrorCode> {
        let v: sonic_rs::Value = sonic_rs::from_str(raw).unwrap();
        decode_attachments(Some(&v))
    }

    #[test]
    fn shapes() {
        assert_eq!(decode("null"), Ok(vec![]));
        assert_eq!(decode("[]"), Ok(vec![]));
        assert_eq!(
            decode(r#"[{"fileId":"x","name":"lie"}]"#),
            Ok(vec!["x".into()])
        );
        let four = r#"[{"fileId":"a"},{"fileId":"b"},{"fileId":"c"},{"fileId":"d"}]"#;
        assert_eq!(decode(four).map(|v| v.len()), Ok(4));
        let five =
            r#"[{"fileId":"a"},{"fileId":"b"},{"fileId":"c"},{"fileId":"d"},{"fileId":"e"}]"#;
        assert_eq!(decode(five), Err(ErrorCode::TooManyAttachments));
        for bad in [
            r#"{"fileId":"a"}"#,
            r#"["a"]"#,
            r#"[{"fileId":""}]"#,
            r#"[{"fileId":7}]"#,
            r#"[{"fileId":"a"},{"fileId":"a"}]"#,
        ] {
            assert_eq!(decode(bad), Err(ErrorCode::InvalidAttachments), "{bad}");
        }
        let long = format!(r#"[{{"fileId":"{}"}}]"#, "f".repeat(MAX_FILE_ID_CHARS + 1));
        assert_eq!(decode(&long), Err(ErrorCode::InvalidAttachments));
    }
}
