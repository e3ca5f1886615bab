//! The bounded queue between the workers and the bridge, and the figures both sides share.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use hdrhistogram::Histogram;
use hubbub_core::{PersistRecord, PersistSink, PersistStats, StateWrite, StorageStatus};
use tokio::sync::Notify;

/// State shared by the workers' [`PersistQueue`]s, the [`Bridge`](crate::Bridge) handle
/// and the bridge thread.
pub(crate) struct Shared {
    pub queue: ArrayQueue<PersistRecord>,
    /// v2 state writes (read markers, last seen), for the state table.
    pub states: ArrayQueue<StateWrite>,
    /// Rung after every state push; the state writer sleeps on it.
    pub state_bell: Notify,
    pub state_written: AtomicU64,
    /// State writes dropped: queue full, closed, or refused past the retries.
    pub state_failed: AtomicU64,
    /// Rung after every push; the dispatcher sleeps on it.
    pub doorbell: Notify,
    /// Set by shutdown: pushes are refused from then on.
    pub closed: AtomicBool,
    status: AtomicU8,
    pub queued: AtomicU64,
    pub written: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    /// Records taken off the queue and kept while the store is away.
    pub parked: AtomicU64,
    /// Duration of every BatchWriteItem call, µs (`None` only if the histogram could not be
    /// made, which constant bounds rule out).
    latency: Mutex<Option<Histogram<u64>>>,
}

const STATUS_OK: u8 = 1;
const STATUS_UNAVAILABLE: u8 = 2;

impl Shared {
    pub fn new(capacity: usize) -> Arc<Shared> {
        // 1 µs ..= 10 min, 2 significant digits.
        let histogram = Histogram::new_with_bounds(1, 600_000_000, 2).ok();
        Arc::new(Shared {
            queue: ArrayQueue::new(capacity.max(1)),
            states: ArrayQueue::new(capacity.max(1)),
            state_bell: Notify::new(),
            state_written: AtomicU64::new(0),
            state_failed: AtomicU64::new(0),
            doorbell: Notify::new(),
            closed: AtomicBool::new(false),
            status: AtomicU8::new(STATUS_UNAVAILABLE),
            queued: AtomicU64::new(0),
            written: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            parked: AtomicU64::new(0),
            latency: Mutex::new(histogram),
        })
    }

    pub fn status(&self) -> StorageStatus {
        match self.status.load(Relaxed) {
            STATUS_OK => StorageStatus::Ok,
            _ => StorageStatus::Unavailable,
        }
    }

    /// Sets the status; returns the previous one.
    pub fn set_status(&self, ok: bool) -> StorageStatus {
        let new = if ok { STATUS_OK } else { STATUS_UNAVAILABLE };
        match self.status.swap(new, Relaxed) {
            STATUS_OK => StorageStatus::Ok,
            _ => StorageStatus::Unavailable,
        }
    }

    pub fn record_call(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        if let Ok(mut guard) = self.latency.lock() {
            if let Some(h) = guard.as_mut() {
                h.saturating_record(micros);
            }
        }
    }

    pub fn stats(&self) -> PersistStats {
        let batch_p99_ms = self
            .latency
            .lock()
            .ok()
            .and_then(|guard| {
                let h = guard.as_ref()?;
                (!h.is_empty()).then(|| h.value_at_quantile(0.99) as f64 / 1000.0)
            })
            .unwrap_or(0.0);
        PersistStats {
            enabled: true,
            status: self.status().as_str().to_owned(),
            queued: self.queued.load(Relaxed),
            written: self.written.load(Relaxed),
            retried: self.retried.load(Relaxed),
            failed: self.failed.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            queue_depth: self.queue.len() as u64 + self.parked.load(Relaxed),
            batch_p99_ms,
        }
    }
}

/// The workers' end of the queue: cheap to clone, `Send`, and never blocks. Install one
/// per hub with `Hub::set_persist_sink(Box::new(bridge.sink()))`.
#[derive(Clone)]
pub struct PersistQueue {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for PersistQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistQueue")
            .field("len", &self.shared.queue.len())
            .field("capacity", &self.shared.queue.capacity())
            .finish()
    }
}

impl PersistQueue {
    /// Records waiting in the queue.
    pub fn len(&self) -> usize {
        self.shared.queue.len()
    }

    /// Whether no record waits.
    pub fn is_empty(&self) -> bool {
        self.shared.queue.is_empty()
    }
}

impl PersistSink for PersistQueue {
    /// Takes the record, or hands it back (counted as `dropped`) when the queue is full or
    /// the bridge is shutting down. A lock-free push and a wake-up; never blocks.
    fn try_push(&mut self, record: PersistRecord) -> Result<(), PersistRecord> {
        let shared = &*self.shared;
        if shared.closed.load(Relaxed) {
            shared.dropped.fetch_add(1, Relaxed);
            return Err(record);
        }
        match shared.queue.push(record) {
            Ok(()) => {
                shared.queued.fetch_add(1, Relaxed);
                shared.doorbell.notify_one();
                Ok(())
            }
            Err(record) => {
                shared.dropped.fetch_add(1, Relaxed);
                Err(record)
            }
        }
    }

    /// Takes a state write for the state table, or hands it back (counted) when its queue
    /// is full or the bridge is shutting down. Never blocks.
    fn try_push_state(&mut self, write: StateWrite) -> Result<(), StateWrite> {
        let shared = &*self.shared;
        if shared.closed.load(Relaxed) {
            shared.state_failed.fetch_add(1, Relaxed);
            return Err(write);
        }
        match shared.states.push(write) {
            Ok(()) => {
                shared.state_bell.notify_one();
                Ok(())
            }
            Err(write) => {
                shared.state_failed.fetch_add(1, Relaxed);
                Err(write)
            }
        }
    }
}
