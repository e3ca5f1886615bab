//! Any text as a search query (`q` of `GET /api/rooms/{id}/search`): the rules never
//! panic, what they accept is 1 to 200 characters, and the index answers it.
#![no_main]
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hubbub_search::{SearchConfig, SearchIndex, SearchQuery, MAX_QUERY_CHARS};
use libfuzzer_sys::fuzz_target;

fn index() -> &'static Arc<SearchIndex> {
    static INDEX: OnceLock<Arc<SearchIndex>> = OnceLock::new();
    INDEX.get_or_init(|| SearchIndex::start(SearchConfig::default()).expect("an index in memory"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    let index = index();
    if index.check(q).is_err() {
        return;
    }
    let n = q.chars().count();
    assert!(n > 0 && n <= MAX_QUERY_CHARS);
    let mut rx = index.search(SearchQuery {
        room: "r".into(),
        q: q.to_owned(),
        before: None,
        limit: 20,
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match rx.try_recv() {
            Ok(Some(answer)) => {
                assert!(answer.is_ok(), "{q:?}: {answer:?}");
                return;
            }
            Ok(None) if Instant::now() < deadline => std::thread::yield_now(),
            other => panic!("{q:?}: no answer ({other:?})"),
        }
    }
});
