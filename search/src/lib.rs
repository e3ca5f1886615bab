//! hubbub's message search (docs/PROTOCOL.md §4.6): a tantivy index of every message a
//! node accepted since its index began, on threads of its own.
//!
//! - The workers hand each accepted message to a bounded, lock-free queue
//!   ([`SearchQueue`], never blocking); a full queue drops the message from the index
//!   and counts it (`dropped`), so a slow index never slows the chat and always says how
//!   far behind it is.
//! - One thread (`hubbub-search`) takes the queue into the index writer and commits every
//!   [`SearchConfig::commit_every`]; what is searchable lags the chat by about that.
//! - Searches run on a second thread (`hubbub-search-query`) behind a bounded queue of
//!   their own, so a commit never waits for a search, nor a search for a commit.
//!
//! The index lives in memory (bounded to [`SearchConfig::max_messages`], the oldest going
//! first) or, with a directory, on disk across restarts.

mod priority;
mod query;
mod schema;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use futures_channel::oneshot;
use hubbub_core::PersistRecord;

pub use query::{
    QueryRule, SearchPage, SearchQuery, MAX_QUERY_CHARS, MAX_QUERY_TERMS, MAX_SEARCH_LIMIT,
};

/// Settings of the index.
#[derive(Debug, Clone)]
pub struct SearchConfig {
    /// Where the index persists (`SEARCH_DIR`); `None`: in memory.
    pub dir: Option<PathBuf>,
    /// Messages waiting to be indexed at most (`SEARCH_QUEUE_SIZE`).
    pub queue_size: usize,
    /// How often what was indexed becomes searchable.
    pub commit_every: Duration,
    /// Messages an index in memory keeps (the oldest indexed go first); a directory's
    /// index keeps everything.
    pub max_messages: u64,
    /// Searches waiting for the query thread at most: beyond, `busy`.
    pub pending_searches: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            dir: None,
            queue_size: 65_536,
            commit_every: Duration::from_millis(500),
            max_messages: 1_000_000,
            pending_searches: 256,
        }
    }
}

/// Why the index could not start or answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The directory cannot hold an index (unwritable, or another program's files).
    #[error("the search index at {dir} cannot be opened: {reason}")]
    Open {
        /// The directory.
        dir: String,
        /// What tantivy said.
        reason: String,
    },
    /// tantivy failed.
    #[error("the search index failed: {0}")]
    Engine(String),
    /// Too many searches are waiting.
    #[error("too many searches are waiting; retry")]
    Busy,
    /// The index is shutting down.
    #[error("the search index is stopped")]
    Stopped,
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(e: tantivy::TantivyError) -> Self {
        SearchError::Engine(e.to_string())
    }
}

/// What the index has done, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Messages handed to the queue.
    pub queued: u64,
    /// Messages made searchable (committed) since start.
    pub indexed: u64,
    /// Messages not indexed: the queue was full.
    pub dropped: u64,
    /// Messages queued and not yet searchable: how far behind the index is.
    pub pending: u64,
    /// Searches answered.
    pub searches: u64,
    /// Messages read back from the durable store by a rebuild.
    pub rebuilt: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    queued: AtomicU64,
    indexed: AtomicU64,
    dropped: AtomicU64,
    searches: AtomicU64,
    rebuilt: AtomicU64,
}

/// What waits to be indexed: a message a worker accepted, or one read back from the store
/// by a rebuild.
pub(crate) enum Entry {
    Accepted(PersistRecord),
    Stored(hubbub_core::protocol::ChatMessage),
}

pub(crate) struct Shared {
    queue: ArrayQueue<Entry>,
    counters: Counters,
    closed: AtomicBool,
}

/// The index: its threads, its queues. Dropping it stops the threads.
pub struct SearchIndex {
    shared: Arc<Shared>,
    /// For the query rules (its analyzer).
    index: tantivy::Index,
    searches: crossbeam_queue::ArrayQueue<query::Job>,
    query_thread: Mutex<Option<JoinHandle<()>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    query_bell: std::thread::Thread,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("stats", &self.stats())
            .finish()
    }
}

impl SearchIndex {
    /// Opens (or creates) the index and starts its threads at a lower CPU priority than
    /// the workers (the idle class for the writer and the threads tantivy starts from it,
    /// nice 10 for searches): on cores that also run the workers, the chat goes first.
    pub fn start(cfg: SearchConfig) -> Result<Arc<SearchIndex>, SearchError> {
        let shared = Arc::new(Shared {
            queue: ArrayQueue::new(cfg.queue_size.max(1)),
            counters: Counters::default(),
            closed: AtomicBool::new(false),
        });
        let pending_searches = cfg.pending_searches.max(1);
        let writer_shared = shared.clone();
        let (opened_tx, opened_rx) = std::sync::mpsc::channel();
        let writer_thread = std::thread::Builder::new()
            .name("hubbub-search".into())
            .spawn(move || {
                // Before tantivy starts its indexing and merging threads, which inherit it.
                priority::idle();
                match writer::open(&cfg) {
                    Ok(opened) => {
                        let _ = opened_tx.send(Ok(opened.reader.clone()));
                        writer::run(opened, cfg, &writer_shared);
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| SearchError::Engine(e.to_string()))?;
        let reader = opened_rx
            .recv()
            .map_err(|_| SearchError::Engine("the index thread ended at start".into()))??;
        let engine = reader.index.clone();
        // The query thread reaches the index through a weak handle, which exists only
        // once the index is built: it waits for it (before, a search thread that started
        // too early found no index and ended, and every search went unanswered).
        let (weak_tx, weak_rx) = std::sync::mpsc::channel::<std::sync::Weak<SearchIndex>>();
        let query_thread = std::thread::Builder::new()
            .name("hubbub-search-query".into())
            .spawn(move || {
                priority::lower(10);
                if let Ok(weak) = weak_rx.recv() {
                    query::run(reader, weak);
                }
            })
            .map_err(|e| SearchError::Engine(e.to_string()))?;
        let query_bell = query_thread.thread().clone();
        let index = Arc::new(SearchIndex {
            shared,
            index: engine,
            searches: ArrayQueue::new(pending_searches),
            query_thread: Mutex::new(Some(query_thread)),
            writer_thread: Mutex::new(Some(writer_thread)),
            query_bell,
        });
        let _ = weak_tx.send(Arc::downgrade(&index));
        Ok(index)
    }

    /// The queue the workers hand accepted messages to.
    pub fn queue(&self) -> SearchQueue {
        SearchQueue {
            shared: self.shared.clone(),
        }
    }

    /// Whether `q` follows the query rules (1 to 200 characters, 1 to 8 terms).
    pub fn check(&self, q: &str) -> Result<(), QueryRule> {
        query::parse(&self.index, q).map(|_| ())
    }

    /// Searches `query`; the answer comes from the query thread.
    pub fn search(&self, query: SearchQuery) -> oneshot::Receiver<Result<SearchPage, SearchError>> {
        let (tx, rx) = oneshot::channel();
        if self.shared.closed.load(Relaxed) {
            let _ = tx.send(Err(SearchError::Stopped));
            return rx;
        }
        match self.searches.push(query::Job { query, reply: tx }) {
            Ok(()) => self.query_bell.unpark(),
            Err(job) => {
                let _ = job.reply.send(Err(SearchError::Busy));
            }
        }
        rx
    }

    /// The figures so far.
    pub fn stats(&self) -> SearchStats {
        let c = &self.shared.counters;
        let queued = c.queued.load(Relaxed);
        let indexed = c.indexed.load(Relaxed);
        let dropped = c.dropped.load(Relaxed);
        SearchStats {
            queued,
            indexed,
            dropped,
            pending: queued.saturating_sub(indexed),
            searches: c.searches.load(Relaxed),
            rebuilt: c.rebuilt.load(Relaxed),
        }
    }

    /// Indexes what is queued, commits, and stops both threads.
    pub fn shutdown(&self) {
        self.shared.closed.store(true, Relaxed);
        self.query_bell.unpark();
        for slot in [&self.writer_thread, &self.query_thread] {
            let handle = slot.lock().ok().and_then(|mut h| h.take());
            if let Some(h) = handle {
                h.thread().unpark();
                let _ = h.join();
            }
        }
    }

    /// Indexes a message read back from the durable store (a rebuild): waits while the
    /// queue is more than half full, so that the workers' messages always find room;
    /// `false` once the index is stopping. A message indexed twice is there once.
    pub fn index_stored(&self, message: hubbub_core::protocol::ChatMessage) -> bool {
        let half = self.shared.queue.capacity() / 2;
        let mut entry = Entry::Stored(message);
        loop {
            if self.shared.closed.load(Relaxed) {
                return false;
            }
            if self.shared.queue.len() < half.max(1) {
                match self.shared.queue.push(entry) {
                    Ok(()) => {
                        let c = &self.shared.counters;
                        c.queued.fetch_add(1, Relaxed);
                        c.rebuilt.fetch_add(1, Relaxed);
                        return true;
                    }
                    Err(back) => entry = back,
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub(crate) fn next_job(&self) -> Option<query::Job> {
        self.searches.pop()
    }

    /// The index takes messages (it is not stopping).
    pub fn is_open(&self) -> bool {
        !self.shared.closed.load(Relaxed)
    }

    pub(crate) fn closed(&self) -> bool {
        self.shared.closed.load(Relaxed)
    }

    pub(crate) fn counted_search(&self) {
        self.shared.counters.searches.fetch_add(1, Relaxed);
    }
}

impl Drop for SearchIndex {
    fn drop(&mut self) {
        self.shared.closed.store(true, Relaxed);
    }
}

/// The workers' side: hands an accepted message to the index without waiting.
#[derive(Clone)]
pub struct SearchQueue {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SearchQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SearchQueue")
    }
}

impl SearchQueue {
    /// Queues `record` for the index; a full queue (or a stopped index) drops it and
    /// counts it. One lock-free push; never blocks.
    pub fn push(&self, record: PersistRecord) {
        let c = &self.shared.counters;
        let entry = Entry::Accepted(record);
        if self.shared.closed.load(Relaxed) || self.shared.queue.push(entry).is_err() {
            c.dropped.fetch_add(1, Relaxed);
            return;
        }
        c.queued.fetch_add(1, Relaxed);
    }
}
