//! Any query string: parsing never panics, and accepted parameters obey their rules.
#![no_main]
use hubbub_core::upgrade::{valid_room, ConnectParams};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = ConnectParams::parse(query) {
        assert!(valid_room(&p.room));
        assert!((1..=50).contains(&p.username.chars().count()));
        assert!((1..=128).contains(&p.user_id.chars().count()));
    }
});
