//! The index on its threads: what it finds, in which order, page by page; across a
//! restart in a directory; within its bounds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hubbub_core::{PersistRecord, UnixMillis};
use hubbub_search::{QueryRule, SearchConfig, SearchIndex, SearchPage, SearchQuery};

fn record(room: &str, seq: u64, content: &str) -> PersistRecord {
    PersistRecord {
        message_id: uuid::Uuid::from_u128(u128::from(seq) << 64 | room.len() as u128),
        room_id: Arc::from(room),
        kind: Default::default(),
        user_id: Arc::from("u"),
        username: Arc::from("U"),
        content: content.into(),
        timestamp: UnixMillis(1_700_000_000_000 + seq),
        seq,
        attachments: Default::default(),
    }
}

fn quick(dir: Option<std::path::PathBuf>) -> SearchConfig {
    SearchConfig {
        dir,
        commit_every: Duration::from_millis(20),
        ..SearchConfig::default()
    }
}

fn until_indexed(index: &SearchIndex, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while index.stats().indexed < n {
        assert!(Instant::now() < deadline, "indexed: {:?}", index.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn find(index: &SearchIndex, room: &str, q: &str, before: Option<u64>, limit: usize) -> SearchPage {
    let query = SearchQuery {
        room: room.into(),
        q: q.into(),
        before,
        limit,
    };
    futures_executor_block_on(index.search(query))
        .expect("answered")
        .expect("searched")
}

/// A oneshot's answer, waited for on this thread.
fn futures_executor_block_on<T>(mut rx: futures_channel::oneshot::Receiver<T>) -> Result<T, ()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match rx.try_recv() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            _ => return Err(()),
        }
    }
}

fn seqs(page: &SearchPage) -> Vec<u64> {
    page.frames
        .iter()
        .map(|f| {
            let v: serde_json::Value = serde_json::from_str(f).expect("a chat frame");
            v["seq"].as_u64().expect("seq")
        })
        .collect()
}

#[test]
fn every_term_must_match_the_last_as_a_prefix_newest_first_in_the_room_only() {
    let index = SearchIndex::start(quick(None)).unwrap();
    let q = index.queue();
    q.push(record("ops", 1, "Deploy on Friday"));
    q.push(record("ops", 2, "deploying the café fix"));
    q.push(record("ops", 3, "nothing to see"));
    q.push(record("dev", 4, "deploy dev friday"));
    q.push(record("ops", 5, "東京タワーで会議"));
    until_indexed(&index, 5);
    assert_eq!(seqs(&find(&index, "ops", "deploy", None, 10)), [2, 1]);
    assert_eq!(seqs(&find(&index, "ops", "deploy fri", None, 10)), [1]);
    assert_eq!(seqs(&find(&index, "ops", "CAFE", None, 10)), [2]);
    assert_eq!(seqs(&find(&index, "ops", "東京", None, 10)), [5]);
    assert_eq!(seqs(&find(&index, "dev", "deploy", None, 10)), [4]);
    assert!(find(&index, "ops", "absent", None, 10).frames.is_empty());
    // The frame is the message as broadcast.
    let page = find(&index, "ops", "friday", None, 10);
    let frame: serde_json::Value = serde_json::from_str(&page.frames[0]).unwrap();
    assert_eq!(
        (frame["type"].as_str(), frame["content"].as_str()),
        (Some("chat"), Some("Deploy on Friday"))
    );
    assert_eq!(index.check("a b c d e f g h"), Ok(()));
    assert_eq!(
        index.check("a b c d e f g h i"),
        Err(QueryRule::TooManyTerms)
    );
    assert_eq!(index.check(" ,; "), Err(QueryRule::Empty));
    assert_eq!(index.stats().searches, 7);
}

#[test]
fn pages_go_back_by_seq_each_message_once() {
    let index = SearchIndex::start(quick(None)).unwrap();
    let q = index.queue();
    for seq in 1..=120 {
        q.push(record("r", seq, &format!("ping number {seq}")));
    }
    until_indexed(&index, 120);
    let mut before = None;
    let mut all = Vec::new();
    loop {
        let page = find(&index, "r", "ping", before, 50);
        all.extend(seqs(&page));
        match page.next_before {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    assert_eq!(all, (1..=120).rev().collect::<Vec<_>>());
}

#[test]
fn a_directorys_index_survives_a_restart_and_a_message_indexed_twice_is_found_once() {
    let dir = std::env::temp_dir().join(format!("hubbub-search-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let index = SearchIndex::start(quick(Some(dir.clone()))).unwrap();
        index.queue().push(record("r", 1, "kept across restarts"));
        until_indexed(&index, 1);
        index.shutdown();
    }
    let index = SearchIndex::start(quick(Some(dir.clone()))).unwrap();
    assert_eq!(seqs(&find(&index, "r", "restarts", None, 10)), [1]);
    index.queue().push(record("r", 1, "kept across restarts"));
    until_indexed(&index, 1);
    assert_eq!(seqs(&find(&index, "r", "kept", None, 10)), [1]);
    index.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_queue_drops_and_counts_an_index_in_memory_keeps_the_newest() {
    let cfg = SearchConfig {
        queue_size: 4,
        commit_every: Duration::from_secs(3600),
        ..SearchConfig::default()
    };
    let index = SearchIndex::start(cfg).unwrap();
    let q = index.queue();
    for seq in 1..=10_000 {
        q.push(record("r", seq, "flood"));
    }
    let s = index.stats();
    assert!(s.dropped > 0, "{s:?}");
    assert_eq!(s.queued + s.dropped, 10_000, "{s:?}");

    let bounded = SearchIndex::start(SearchConfig {
        max_messages: 10,
        ..quick(None)
    })
    .unwrap();
    for seq in 1..=30 {
        bounded.queue().push(record("r", seq, "old and new"));
    }
    until_indexed(&bounded, 30);
    // One more commit applies the bound to everything before it.
    bounded.queue().push(record("r", 31, "old and new"));
    until_indexed(&bounded, 31);
    let found = seqs(&find(&bounded, "r", "old", None, 50));
    assert!(found.len() <= 11 && found[0] == 31, "{found:?}");
    assert!(!found.contains(&1), "{found:?}");
}

#[test]
fn a_search_right_after_start_is_answered() {
    // The query thread once started before the index it serves existed, ended, and left
    // every search unanswered; many starts under load found it.
    let load: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| (0..20_000_000u64).fold(0u64, |a, b| a ^ b.wrapping_mul(31)))
        })
        .collect();
    for _ in 0..30 {
        let index = SearchIndex::start(quick(None)).unwrap();
        assert!(find(&index, "r", "anything", None, 5).frames.is_empty());
        index.shutdown();
    }
    for l in load {
        let _ = l.join();
    }
}
