//! What goes into Redis: key and channel names, a message as one line (a kind character
//! and the JSON of its [`ChatMessage`]), and the pub/sub payload `epoch\nfirst\nline…`.

use hubbub_core::protocol::{Attachment, ChatMessage, MessageKind};
use hubbub_core::PersistRecord;
use serde::Serialize;

/// The channel prefix; the room follows in braces.
const CHANNEL_PREFIX: &str = "hubbub:room:{";

/// `hubbub:{R}:meta`: the room's hash (`epoch`, `seq`).
pub(crate) fn meta_key(room: &str) -> String {
    format!("hubbub:{{{room}}}:meta")
}

/// `hubbub:{R}:log`: the room's stream, entry ids `{seq}-0`.
pub(crate) fn log_key(room: &str) -> String {
    format!("hubbub:{{{room}}}:log")
}

/// `hubbub:room:{R}`: the room's pub/sub channel.
pub(crate) fn channel(room: &str) -> String {
    format!("{CHANNEL_PREFIX}{room}}}")
}

/// The room of a channel name made by [`channel`].
pub(crate) fn room_of_channel(channel: &str) -> Option<&str> {
    channel.strip_prefix(CHANNEL_PREFIX)?.strip_suffix('}')
}

/// An epoch as it is stored: one line (a newline would break the payload's header), so
/// newlines become spaces.
pub(crate) fn clean_epoch(epoch: &str) -> Box<str> {
    if epoch.contains(['\n', '\r']) {
        epoch.replace(['\n', '\r'], " ").into_boxed_str()
    } else {
        epoch.into()
    }
}

/// The fields of [`ChatMessage`]'s JSON, borrowed from a record (no owned copy of the
/// message is made). `seq` is written as 0: the real one is the stream id.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LineRef<'a> {
    message_id: &'a str,
    room_id: &'a str,
    user_id: &'a str,
    username: &'a str,
    content: &'a str,
    timestamp: &'a str,
    seq: u64,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    attachments: &'a [Attachment],
}

/// The line of `record`: `c` (chat) or `s` (system), then its JSON. JSON escapes control
/// characters, so the line holds no raw newline.
pub(crate) fn encode_line(record: &PersistRecord) -> Result<Vec<u8>, sonic_rs::Error> {
    let mut id_buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let message_id: &str = record.message_id.hyphenated().encode_lower(&mut id_buf);
    let timestamp = record.timestamp.to_rfc3339();
    let line = LineRef {
        message_id,
        room_id: &record.room_id,
        user_id: &record.user_id,
        username: &record.username,
        content: &record.content,
        timestamp: timestamp.as_str(),
        seq: 0,
        attachments: &record.attachments,
    };
    let mut out = Vec::with_capacity(160 + record.content.len());
    out.push(match record.kind {
        MessageKind::Chat => b'c',
        MessageKind::System => b's',
    });
    sonic_rs::to_writer(&mut out, &line)?;
    Ok(out)
}

/// Why a line could not be read back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LineError {
    /// Empty, or a kind character other than `c` and `s`.
    #[error("unknown message kind")]
    Kind,
    /// The JSON is not a `ChatMessage`.
    #[error("bad message JSON: {0}")]
    Json(#[from] sonic_rs::Error),
}

/// A line read back, with its `seq`.
pub(crate) fn decode_line(line: &[u8], seq: u64) -> Result<ChatMessage, LineError> {
    let (kind, json) = match line.split_first() {
        Some((b'c', json)) => (MessageKind::Chat, json),
        Some((b's', json)) => (MessageKind::System, json),
        _ => return Err(LineError::Kind),
    };
    let mut message: ChatMessage = sonic_rs::from_slice(json)?;
    message.kind = kind;
    message.seq = seq;
    Ok(message)
}

/// A pub/sub payload split: the epoch, the first seq, and the lines (seq `first + i`).
pub(crate) struct Payload<'a> {
    pub epoch: &'a str,
    pub first: u64,
    pub lines: std::slice::Split<'a, u8, fn(&u8) -> bool>,
}

fn is_newline(b: &u8) -> bool {
    *b == b'\n'
}

/// Splits `epoch\nfirst\nline_1\n…\nline_n`; `None` if the header is malformed.
pub(crate) fn split_payload(payload: &[u8]) -> Option<Payload<'_>> {
    let mut parts = payload.splitn(3, |b| *b == b'\n');
    let epoch = std::str::from_utf8(parts.next()?).ok()?;
    let first = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let rest = parts.next()?;
    let split: fn(&u8) -> bool = is_newline;
    Some(Payload {
        epoch,
        first,
        lines: rest.split(split),
    })
}

/// The seq of a stream entry id `{seq}-0`.
pub(crate) fn seq_of_id(id: &[u8]) -> Option<u64> {
    let digits = id.split(|b| *b == b'-').next()?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubbub_core::UnixMillis;
    use std::sync::Arc;

    fn record(kind: MessageKind, content: &str) -> PersistRecord {
        PersistRecord {
            message_id: uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            room_id: Arc::from("room"),
            kind,
            user_id: Arc::from("u1"),
            username: Arc::from("Ann"),
            content: content.into(),
            timestamp: UnixMillis(1_700_000_000_123),
            seq: 99,
            attachments: Default::default(),
        }
    }

    #[test]
    fn a_line_round_trips_without_raw_newlines() {
        let rec = record(MessageKind::System, "two\nlines \"quoted\" ✓");
        let line = encode_line(&rec).expect("encodes");
        assert_eq!(line[0], b's');
        assert!(!line.contains(&b'\n'));
        let back = decode_line(&line, 7).expect("decodes");
        let mut want = rec.to_message();
        want.seq = 7;
        assert_eq!(back, want);
        assert_eq!(back.kind, MessageKind::System);
    }

    #[test]
    fn payloads_and_names_split() {
        let p = split_payload(b"ep\n41\nca\ncb").expect("splits");
        assert_eq!((p.epoch, p.first), ("ep", 41));
        assert_eq!(p.lines.collect::<Vec<_>>(), vec![&b"ca"[..], &b"cb"[..]]);
        assert!(split_payload(b"ep\nx\nca").is_none());
        assert!(split_payload(b"ep").is_none());
        assert_eq!(room_of_channel(&channel("a{b}")), Some("a{b}"));
        assert_eq!(meta_key("r"), "hubbub:{r}:meta");
        assert_eq!(log_key("r"), "hubbub:{r}:log");
        assert_eq!(seq_of_id(b"123-0"), Some(123));
        assert!(matches!(decode_line(b"xjunk", 1), Err(LineError::Kind)));
        assert!(matches!(decode_line(b"c{", 1), Err(LineError::Json(_))));
        assert_eq!(&*clean_epoch("a\nb"), "a b");
    }
}
