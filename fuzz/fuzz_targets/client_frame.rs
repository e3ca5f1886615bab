//! Any bytes as a client text frame: decoding never panics, and what it accepts obeys
//! the content rules.
#![no_main]
use hubbub_core::protocol::{decode_client_frame, MAX_CONTENT_CHARS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = decode_client_frame(data) {
        assert!(frame.content.chars().count() <= MAX_CONTENT_CHARS);
        assert!(frame.content.chars().any(|c| !c.is_whitespace()));
    }
});
