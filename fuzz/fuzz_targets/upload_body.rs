//! Any bytes as the body of `POST /api/rooms/{id}/uploads`: decoding never panics, and
//! what it accepts obeys docs/PROTOCOL.md §4.7 (a name of 1 to 255 characters without
//! control characters or slashes, a size of 1 to MAX_FILE_BYTES, an allowed type).
#![no_main]
use hubbub_files::{Limits, UploadBody, MAX_NAME_CHARS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(body) = UploadBody::decode(data, &limits) {
        let n = body.name.chars().count();
        assert!(n >= 1 && n <= MAX_NAME_CHARS);
        assert!(!body
            .name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\'));
        assert!(body.size >= 1 && body.size <= limits.max_file_bytes);
        assert!(limits.allowed_types.contains(&body.content_type));
    }
});
