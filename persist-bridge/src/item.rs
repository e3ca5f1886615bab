//! Records to DynamoDB items and items back to messages (PROTOCOL.md §6).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use hubbub_core::protocol::{Attachment, ChatMessage, MessageKind};
use hubbub_core::PersistRecord;

/// Attribute names of the table.
pub mod attr {
    /// Partition key (S).
    pub const ROOM_ID: &str = "RoomID";
    /// Sort key (S): the UUID v7, hyphenated, lower case.
    pub const MESSAGE_ID: &str = "MessageID";
    /// `"chat"`.
    pub const TYPE: &str = "Type";
    /// The sender (S); partition key of `UserID-Timestamp-index`.
    pub const USER_ID: &str = "UserID";
    /// The sender's display name (S).
    pub const USERNAME: &str = "Username";
    /// The text (S).
    pub const CONTENT: &str = "Content";
    /// RFC 3339 with milliseconds (S); sort key of both indexes. A reserved word: alias it.
    pub const TIMESTAMP: &str = "Timestamp";
    /// The room sequence number (N).
    pub const SEQ: &str = "Seq";
    /// The message's files (L of M, each `FileID`, `Name`, `ContentType` as S and `Size`
    /// as N); absent when it has none.
    pub const ATTACHMENTS: &str = "Attachments";
    /// Keys of an `Attachments` entry.
    pub const FILE_ID: &str = "FileID";
    /// The file's name (S).
    pub const NAME: &str = "Name";
    /// The file's MIME type (S).
    pub const CONTENT_TYPE: &str = "ContentType";
    /// The file's size in bytes (N).
    pub const SIZE: &str = "Size";
}

/// An item of the table.
pub type Item = HashMap<String, AttributeValue>;

/// The item of one record: exactly `MessageID`, `RoomID`, `Type`, `UserID`, `Username`,
/// `Content`, `Timestamp`, `Seq` (and `Attachments` when it has files), with the values
/// the message was broadcast with.
pub fn to_item(record: &PersistRecord) -> Item {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let mut id_buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = record.message_id.hyphenated().encode_lower(&mut id_buf);
    let mut item = HashMap::from([
        (attr::MESSAGE_ID.to_owned(), s(id)),
        (attr::ROOM_ID.to_owned(), s(&record.room_id)),
        (attr::TYPE.to_owned(), s(record.kind.as_str())),
        (attr::USER_ID.to_owned(), s(&record.user_id)),
        (attr::USERNAME.to_owned(), s(&record.username)),
        (attr::CONTENT.to_owned(), s(&record.content)),
        (
            attr::TIMESTAMP.to_owned(),
            s(record.timestamp.to_rfc3339().as_str()),
        ),
        (
            attr::SEQ.to_owned(),
            AttributeValue::N(record.seq.to_string()),
        ),
    ]);
    if !record.attachments.is_empty() {
        let files = record.attachments.iter().map(attachment_value).collect();
        item.insert(attr::ATTACHMENTS.to_owned(), AttributeValue::L(files));
    }
    item
}

fn attachment_value(a: &Attachment) -> AttributeValue {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    AttributeValue::M(HashMap::from([
        (attr::FILE_ID.to_owned(), s(&a.file_id)),
        (attr::NAME.to_owned(), s(&a.name)),
        (attr::CONTENT_TYPE.to_owned(), s(&a.content_type)),
        (attr::SIZE.to_owned(), AttributeValue::N(a.size.to_string())),
    ]))
}

fn attachments(item: &Item) -> Result<Vec<Attachment>, ItemError> {
    let Some(value) = item.get(attr::ATTACHMENTS) else {
        return Ok(Vec::new());
    };
    let AttributeValue::L(list) = value else {
        return Err(ItemError::BadAttachments);
    };
    list.iter()
        .map(|entry| {
            let AttributeValue::M(m) = entry else {
                return Err(ItemError::BadAttachments);
            };
            let s = |k: &str| match m.get(k) {
                Some(AttributeValue::S(v)) => Ok(v.clone()),
                _ => Err(ItemError::BadAttachments),
            };
            let size = match m.get(attr::SIZE) {
                Some(AttributeValue::N(n)) => n.parse().map_err(|_| ItemError::BadAttachments)?,
                _ => return Err(ItemError::BadAttachments),
            };
            Ok(Attachment {
                file_id: s(attr::FILE_ID)?,
                name: s(attr::NAME)?,
                content_type: s(attr::CONTENT_TYPE)?,
                size,
            })
        })
        .collect()
}

/// Why an item read back is not a chat message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ItemError {
    /// A required attribute is absent or not a string.
    #[error("attribute {0} is missing or not a string")]
    Missing(&'static str),
    /// `Seq` is not a non-negative integer.
    #[error("attribute Seq is not a non-negative integer: {0:?}")]
    BadSeq(String),
    /// `Attachments` is not a list of maps with `FileID`, `Name`, `ContentType` and `Size`.
    #[error("attribute Attachments is not a list of files")]
    BadAttachments,
    /// `Type` is present and is neither `chat` nor `system` (the seed's `join`/`leave`).
    #[error("item is of type {0:?}, not a chat or system message")]
    NotChat(String),
}

/// The message an item holds, exactly as it was broadcast.
///
/// Items written by the original system may lack `Seq` (read as 0) and `Username` (read
/// as the user id); everything else is required.
pub fn from_item(item: &Item) -> Result<ChatMessage, ItemError> {
    let get = |name: &'static str| -> Result<String, ItemError> {
        match item.get(name) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            _ => Err(ItemError::Missing(name)),
        }
    };
    // Items of the original system may have no `Type`: they are chat messages.
    let kind = match item.get(attr::TYPE) {
        None => MessageKind::Chat,
        Some(AttributeValue::S(raw)) => {
            MessageKind::parse(raw).ok_or_else(|| ItemError::NotChat(raw.clone()))?
        }
        Some(other) => return Err(ItemError::NotChat(format!("{other:?}"))),
    };
    let seq = match item.get(attr::SEQ) {
        None => 0,
        Some(AttributeValue::N(n)) => n.parse().map_err(|_| ItemError::BadSeq(n.clone()))?,
        Some(other) => return Err(ItemError::BadSeq(format!("{other:?}"))),
    };
    let user_id = get(attr::USER_ID)?;
    let username = get(attr::USERNAME).unwrap_or_else(|_| user_id.clone());
    Ok(ChatMessage {
        message_id: get(attr::MESSAGE_ID)?,
        room_id: get(attr::ROOM_ID)?,
        kind,
        user_id,
        username,
        content: get(attr::CONTENT)?,
        timestamp: get(attr::TIMESTAMP)?,
        seq,
        attachments: attachments(item)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubbub_core::UnixMillis;

    fn record() -> PersistRecord {
        PersistRecord {
            message_id: uuid::Uuid::from_u128(0x018f_3c1e_7b2a_7c4e_9a1b_3f2d_1c0b_9a88),
            room_id: "global".into(),
            kind: MessageKind::Chat,
            user_id: "alice".into(),
            username: "Alice".into(),
            content: "Hello \u{1F600}".into(),
            timestamp: UnixMillis(1_795_257_000_123),
            seq: 42,
            attachments: Default::default(),
        }
    }

    #[test]
    fn attachments_round_trip_and_a_bad_list_is_refused() {
        let mut r = record();
        r.attachments = vec![Attachment {
            file_id: "f".into(),
            name: "cat.png".into(),
            content_type: "image/png".into(),
            size: 12,
        }]
        .into();
        let mut item = to_item(&r);
        assert_eq!(
            from_item(&item).unwrap().attachments,
            r.attachments.to_vec()
        );
        item.insert(attr::ATTACHMENTS.into(), AttributeValue::S("x".into()));
        assert_eq!(from_item(&item), Err(ItemError::BadAttachments));
        assert!(!to_item(&record()).contains_key(attr::ATTACHMENTS));
    }

    #[test]
    fn an_item_has_exactly_the_table_attributes() {
        let item = to_item(&record());
        let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "Content",
                "MessageID",
                "RoomID",
                "Seq",
                "Timestamp",
                "Type",
                "UserID",
                "Username"
            ]
        );
        assert_eq!(
            item.get("MessageID"),
            Some(&AttributeValue::S(
                "018f3c1e-7b2a-7c4e-9a1b-3f2d1c0b9a88".into()
            ))
        );
        assert_eq!(item.get("Type"), Some(&AttributeValue::S("chat".into())));
        assert_eq!(
            item.get("Timestamp"),
            Some(&AttributeValue::S("2026-11-21T10:30:00.123Z".into()))
        );
        assert_eq!(item.get("Seq"), Some(&AttributeValue::N("42".into())));
    }

    #[test]
    fn round_trip_gives_the_broadcast_message() {
        let msg = from_item(&to_item(&record()));
        assert_eq!(
            msg,
            Ok(ChatMessage {
                message_id: "018f3c1e-7b2a-7c4e-9a1b-3f2d1c0b9a88".into(),
                room_id: "global".into(),
                kind: MessageKind::Chat,
                user_id: "alice".into(),
                username: "Alice".into(),
                content: "Hello \u{1F600}".into(),
                timestamp: "2026-11-21T10:30:00.123Z".into(),
                seq: 42,
                attachments: vec![],
            })
        );
    }

    #[test]
    fn bad_items_are_errors_not_panics() {
        let mut item = to_item(&record());
        item.insert("Seq".into(), AttributeValue::N("-1".into()));
        assert!(matches!(from_item(&item), Err(ItemError::BadSeq(_))));
        item.insert("Seq".into(), AttributeValue::S("1".into()));
        assert!(matches!(from_item(&item), Err(ItemError::BadSeq(_))));
        item.remove("Seq");
        assert_eq!(from_item(&item).map(|m| m.seq), Ok(0));
        item.remove("Username");
        assert_eq!(from_item(&item).map(|m| m.username), Ok("alice".into()));
        item.remove("Content");
        assert_eq!(from_item(&item), Err(ItemError::Missing("Content")));
        item.insert("Type".into(), AttributeValue::S("join".into()));
        assert!(matches!(from_item(&item), Err(ItemError::NotChat(_))));
    }

    #[test]
    fn a_system_message_keeps_its_kind() {
        let record = PersistRecord {
            kind: MessageKind::System,
            ..record()
        };
        let item = to_item(&record);
        assert_eq!(item.get("Type"), Some(&AttributeValue::S("system".into())));
        assert_eq!(from_item(&item).map(|m| m.kind), Ok(MessageKind::System));
        let mut legacy = item;
        legacy.remove("Type");
        assert_eq!(from_item(&legacy).map(|m| m.kind), Ok(MessageKind::Chat));
    }
}
