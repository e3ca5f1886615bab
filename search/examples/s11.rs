//! S11 (docs/PERFORMANCE.md): search latency over 1,000,000 stored messages in 100 rooms,
//! side by side with a reference — a linear scan of the room's messages with the same
//! matching rule (every word, the last as a prefix, case folded) — in the same run.
//!
//!   cargo run --release -p hubbub-search --example s11 [-- MESSAGES SEARCHES]
//!
//! Messages are 4 to 12 words drawn from a 5,000-word vocabulary (Zipf-like: a few words
//! are common, most rare); queries are 1 to 3 words of it, the last cut to a prefix half
//! of the time, each in a random room.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hubbub_core::{PersistRecord, UnixMillis};
use hubbub_search::{SearchConfig, SearchIndex, SearchQuery};

const ROOMS: usize = 100;
const VOCABULARY: usize = 5_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Skewed towards small indexes: word i with weight about 1/(i+1).
    fn zipf(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) as usize).saturating_sub(1).min(n - 1)
    }
}

fn word(i: usize) -> String {
    const SYL: [&str; 16] = [
        "ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "ve", "du", "ga", "zo", "ha", "ju", "we",
        "xi",
    ];
    let mut w = String::new();
    let mut n = i + 16;
    while n > 0 {
        w.push_str(SYL[n % 16]);
        n /= 16;
    }
    w
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let messages = args.first().copied().unwrap_or(1_000_000);
    let searches = args.get(1).copied().unwrap_or(2_000);
    let vocabulary: Vec<String> = (0..VOCABULARY).map(word).collect();
    let mut rng = Rng(0x5111);
    let index = SearchIndex::start(SearchConfig {
        queue_size: 1 << 20,
        max_messages: messages as u64 + 1,
        ..SearchConfig::default()
    })
    .expect("index");
    let queue = index.queue();
    // The reference's copy: each room's messages, lower-cased words.
    let mut rooms: Vec<Vec<Vec<String>>> = vec![Vec::new(); ROOMS];
    let started = Instant::now();
    for n in 0..messages {
        let room = n % ROOMS;
        let words: Vec<String> = (0..4 + rng.below(9))
            .map(|_| vocabulary[rng.zipf(VOCABULARY)].clone())
            .collect();
        let content = words.join(" ");
        rooms[room].push(words);
        let record = PersistRecord {
            message_id: uuid::Uuid::from_u128(n as u128 + 1),
            room_id: Arc::from(format!("room-{room}")),
            kind: Default::default(),
            user_id: Arc::from("u"),
            username: Arc::from("U"),
            content: content.into(),
            timestamp: UnixMillis(1_700_000_000_000 + n as u64),
            seq: (n / ROOMS) as u64 + 1,
            attachments: Default::default(),
        };
        // The queue is the workers' path; wait for room in it as a worker never would.
        while index.stats().queued.saturating_sub(index.stats().indexed) > (1 << 19) {
            std::thread::sleep(Duration::from_millis(5));
        }
        queue.push(record);
    }
    while index.stats().indexed < messages as u64 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let indexing = started.elapsed();
    println!(
        "indexed {messages} messages in {ROOMS} rooms in {:.1} s ({:.0} messages/s), dropped {}",
        indexing.as_secs_f64(),
        messages as f64 / indexing.as_secs_f64(),
        index.stats().dropped
    );

    let mut ours = Histogram::<u64>::new(3).expect("histogram");
    let mut reference = Histogram::<u64>::new(3).expect("histogram");
    let mut hits = (0usize, 0usize);
    for _ in 0..searches {
        let room = rng.below(ROOMS);
        let mut terms: Vec<String> = (0..1 + rng.below(3))
            .map(|_| vocabulary[rng.zipf(VOCABULARY)].clone())
            .collect();
        if rng.below(2) == 0 {
            if let Some(last) = terms.last_mut() {
                last.truncate(3.max(last.len() / 2));
            }
        }
        let q = terms.join(" ");
        let t = Instant::now();
        let rx = index.search(SearchQuery {
            room: format!("room-{room}"),
            q: q.clone(),
            before: None,
            limit: 20,
        });
        let page = wait(rx);
        ours.saturating_record(t.elapsed().as_micros() as u64);
        hits.0 += page.frames.len();

        let t = Instant::now();
        let (last, rest) = terms.split_last().expect("a term");
        let found = rooms[room]
            .iter()
            .rev()
            .filter(|m| {
                rest.iter().all(|w| m.contains(w)) && m.iter().any(|w| w.starts_with(last.as_str()))
            })
            .take(20)
            .count();
        reference.saturating_record(t.elapsed().as_micros() as u64);
        hits.1 += found;
    }
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{searches} searches, 20 per page: tantivy p50 {:.3} ms p99 {:.3} ms max {:.3} ms | linear scan p50 {:.3} ms p99 {:.3} ms | p99 ratio scan/tantivy {:.1} | results {} vs {}",
        ms(&ours, 0.5),
        ms(&ours, 0.99),
        ours.max() as f64 / 1000.0,
        ms(&reference, 0.5),
        ms(&reference, 0.99),
        ms(&reference, 0.99) / ms(&ours, 0.99).max(0.001),
        hits.0,
        hits.1
    );
    index.shutdown();
}

fn wait<T>(mut rx: futures_channel::oneshot::Receiver<Result<T, hubbub_search::SearchError>>) -> T {
    loop {
        match rx.try_recv() {
            Ok(Some(Ok(v))) => return v,
            Ok(Some(Err(e))) => panic!("search failed: {e}"),
            Ok(None) => std::thread::yield_now(),
            Err(_) => panic!("the index stopped"),
        }
    }
}
