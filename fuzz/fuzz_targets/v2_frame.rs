//! Any bytes as a v2 client frame: decoding never panics, and what it accepts obeys the
//! rules of docs/PROTOCOL.md §7 (a valid room, except `refresh`, which has none; chat
//! content, clientMsgId, attachments and a refresh token in bounds).
#![no_main]
use hubbub_core::protocol::{
    decode_v2_frame, V2Frame, MAX_ATTACHMENTS, MAX_CLIENT_MSG_ID_CHARS, MAX_CONTENT_CHARS,
    MAX_EPOCH_BYTES, MAX_FILE_ID_CHARS, MAX_TOKEN_BYTES,
};
use hubbub_core::upgrade::valid_room;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match decode_v2_frame(data) {
        Ok((_, frame)) => {
            match frame.room() {
                Some(room) => assert!(valid_room(room)),
                None => assert!(matches!(frame, V2Frame::Refresh { .. })),
            }
            match frame {
                V2Frame::Chat {
                    content,
                    client_msg_id,
                    attachments,
                    ..
                } => {
                    assert!(content.chars().count() <= MAX_CONTENT_CHARS);
                    // Words, or files, or both.
                    assert!(content.chars().any(|c| !c.is_whitespace()) || !attachments.is_empty());
                    assert!(attachments.len() <= MAX_ATTACHMENTS);
                    for (i, f) in attachments.iter().enumerate() {
                        let n = f.chars().count();
                        assert!(n >= 1 && n <= MAX_FILE_ID_CHARS);
                        assert!(!attachments[..i].contains(f), "ids are distinct");
                    }
                    if let Some(id) = client_msg_id {
                        let n = id.chars().count();
                        assert!(n >= 1 && n <= MAX_CLIENT_MSG_ID_CHARS);
                    }
                }
                V2Frame::Refresh { token } => {
                    assert!(!token.is_empty() && token.len() <= MAX_TOKEN_BYTES);
                }
                V2Frame::Subscribe { epoch, .. } => {
                    assert!(epoch.is_none_or(|e| e.len() <= MAX_EPOCH_BYTES));
                }
                _ => {}
            }
        }
        Err(refusal) => {
            if let Some(room) = refusal.room {
                assert!(room.len() <= data.len());
            }
        }
    }
});
