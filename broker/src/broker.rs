//! The handle: the workers' (never blocking) calls, and start and shutdown.

use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc as std_mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_channel::{mpsc as fmpsc, oneshot};
use hubbub_core::PersistRecord;
use tokio::sync::{mpsc, watch};

use crate::runtime::{self, Control, FetchReq, SeqReq, ThreadParts};
use crate::shared::Shared;
use crate::{
    wire, BrokerConfig, BrokerDown, BrokerError, BrokerEvent, BrokerStats, BrokerStatus, Busy,
    LoadedRoom,
};

/// How long [`Broker::start`] waits for the first answers (PING, and the pub/sub
/// connection).
const START_WAIT: Duration = Duration::from_secs(3);

/// The broker: the Redis side of rooms shared between nodes. Cheap to clone (an `Arc`
/// inside), `Send + Sync`. See the [crate docs](crate).
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    workers: u16,
    seq_tx: mpsc::Sender<SeqReq>,
    fetch_tx: mpsc::Sender<FetchReq>,
    ctl_tx: mpsc::Sender<Control>,
    /// Tells the thread to stop by a deadline; dropping it stops the thread too.
    stop: Mutex<Option<watch::Sender<Option<Instant>>>>,
    thread: Mutex<Option<(JoinHandle<()>, std_mpsc::Receiver<()>)>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("workers", &self.inner.workers)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Broker {
    /// Connects (waiting at most ~3 s for a first PING and the pub/sub connection;
    /// Redis unreachable at start is NOT an error: the status is then `Unreachable` and
    /// the broker keeps retrying with backoff), starts the thread `hubbub-broker`, and
    /// returns one event receiver per worker (index = worker id).
    ///
    /// It blocks the calling thread for up to ~3 s: call it at start-up, not from an
    /// async task.
    pub fn start(
        cfg: BrokerConfig,
    ) -> Result<(Broker, Vec<fmpsc::Receiver<BrokerEvent>>), BrokerError> {
        if cfg.workers == 0 {
            return Err(BrokerError::Config("workers must be at least 1"));
        }
        if cfg.batch_max == 0 || cfg.queue_size == 0 || cfg.events_per_worker == 0 {
            return Err(BrokerError::Config(
                "batch_max, queue_size and events_per_worker must be at least 1",
            ));
        }
        if cfg.stream_len == 0 {
            return Err(BrokerError::Config("stream_len must be at least 1"));
        }
        let client = redis::Client::open(cfg.url.as_str()).map_err(|source| BrokerError::Url {
            url: cfg.url.clone(),
            source,
        })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared::default());
        let (seq_tx, seq_rx) = mpsc::channel(cfg.queue_size);
        let (fetch_tx, fetch_rx) = mpsc::channel(cfg.queue_size);
        let (ctl_tx, ctl_rx) = mpsc::channel(cfg.queue_size);
        let (stop_tx, stop_rx) = watch::channel(None);
        let mut senders = Vec::with_capacity(usize::from(cfg.workers));
        let mut receivers = Vec::with_capacity(usize::from(cfg.workers));
        for _ in 0..cfg.workers {
            // A futures channel holds `buffer` + one per sender.
            let (tx, rx) = fmpsc::channel(cfg.events_per_worker.saturating_sub(1));
            senders.push(tx);
            receivers.push(rx);
        }
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let (done_tx, done_rx) = std_mpsc::channel();
        let workers = cfg.workers;
        let parts = ThreadParts {
            cfg,
            client,
            shared: shared.clone(),
            senders,
            seq_rx,
            fetch_rx,
            ctl_rx,
            stop_rx,
        };
        let thread = std::thread::Builder::new()
            .name("hubbub-broker".to_owned())
            .spawn(move || {
                runtime::run(rt, parts, ready_tx);
                let _ = done_tx.send(());
            })?;
        match ready_rx.recv_timeout(START_WAIT + Duration::from_millis(500)) {
            Ok(()) | Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                let _ = thread.join();
                return Err(BrokerError::ThreadExited);
            }
        }
        if shared.status() != BrokerStatus::Connected {
            tracing::warn!(
                "Redis not reachable at start; the broker keeps retrying (status {})",
                shared.status().as_str()
            );
        }
        let broker = Broker {
            inner: Arc::new(Inner {
                shared,
                workers,
                seq_tx,
                fetch_tx,
                ctl_tx,
                stop: Mutex::new(Some(stop_tx)),
                thread: Mutex::new(Some((thread, done_rx))),
            }),
        };
        Ok((broker, receivers))
    }

    fn busy(&self) -> Busy {
        Shared::add(&self.inner.shared.busy, 1);
        Busy
    }

    /// Never blocks. Queues `record` (its `seq` is ignored) for sequencing in
    /// `record.room_id`. `candidate_epoch` is used only if Redis has no state for the
    /// room (fresh room, or Redis lost it); then its seq starts after `floor`. The answer
    /// comes as [`BrokerEvent::Sequenced`] with `token` on `worker`'s channel.
    /// `Err(Busy)` when the queue is full, the broker is shut down, or `worker` is not a
    /// worker id (the caller refuses the send).
    pub fn sequence(
        &self,
        worker: u16,
        token: u64,
        record: &PersistRecord,
        candidate_epoch: &str,
        floor: u64,
    ) -> Result<(), Busy> {
        let inner = &*self.inner;
        if worker >= inner.workers || inner.shared.closed.load(Relaxed) {
            return Err(self.busy());
        }
        let line = match wire::encode_line(record) {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!(room = %record.room_id, "cannot encode a message: {e}");
                return Err(self.busy());
            }
        };
        let request = SeqReq {
            worker,
            token,
            room: record.room_id.clone(),
            line,
            candidate: wire::clean_epoch(candidate_epoch),
            floor,
        };
        inner.seq_tx.try_send(request).map_err(|_| self.busy())
    }

    /// Subscribes to the room's channel (and waits for Redis to confirm), then reads (or,
    /// if absent, creates with `candidate_epoch` / `floor`) its state and its newest
    /// `recent` messages (at most [`MAX_FETCH`](crate::MAX_FETCH)), oldest first. Runs on
    /// the broker thread; the future can be awaited on any runtime (a oneshot). The room
    /// stays watched (even after an error) until [`forget`](Broker::forget).
    pub fn load_room(
        &self,
        room: Arc<str>,
        recent: usize,
        candidate_epoch: Box<str>,
        floor: u64,
    ) -> impl Future<Output = Result<LoadedRoom, BrokerDown>> + 'static {
        let (reply, answer) = oneshot::channel();
        let inner = &*self.inner;
        if !inner.shared.closed.load(Relaxed) {
            let request = Control::Load {
                room,
                recent: recent.min(crate::MAX_FETCH),
                candidate: wire::clean_epoch(&candidate_epoch),
                floor,
                reply,
            };
            if inner.ctl_tx.try_send(request).is_err() {
                Shared::add(&inner.shared.busy, 1);
            }
        }
        // A request not taken drops its `reply`: the answer is then BrokerDown.
        async move { answer.await.unwrap_or(Err(BrokerDown)) }
    }

    /// Never blocks: asks for the room's messages with `after < seq <= upto` (`upto` may
    /// be `u64::MAX` = "to the end"; at most [`MAX_FETCH`](crate::MAX_FETCH) are
    /// answered); answered by [`BrokerEvent::Fetched`] on `worker`'s channel. `Err(Busy)`
    /// if the queue is full, the broker is shut down, or `worker` is not a worker id.
    pub fn fetch(&self, worker: u16, room: Arc<str>, after: u64, upto: u64) -> Result<(), Busy> {
        let inner = &*self.inner;
        if worker >= inner.workers || inner.shared.closed.load(Relaxed) {
            return Err(self.busy());
        }
        let request = FetchReq {
            worker,
            room,
            after,
            upto,
        };
        inner.fetch_tx.try_send(request).map_err(|_| self.busy())
    }

    /// Never blocks: stop watching the room (UNSUBSCRIBE). Best effort (dropped, and
    /// counted as busy, if the queue is full).
    pub fn forget(&self, room: Arc<str>) {
        let inner = &*self.inner;
        if inner.shared.closed.load(Relaxed) {
            return;
        }
        if inner.ctl_tx.try_send(Control::Forget(room)).is_err() {
            Shared::add(&inner.shared.busy, 1);
        }
    }

    /// Whether both connections reach Redis, as they last found. Never a call to Redis.
    pub fn status(&self) -> BrokerStatus {
        self.inner.shared.status()
    }

    /// The counters.
    pub fn stats(&self) -> BrokerStats {
        self.inner.shared.stats()
    }

    /// Stops the thread and joins it, within `deadline`: a script call in flight may
    /// finish until then; every request still pending is answered (`Sequenced` with
    /// `Err(BrokerDown)`, `Fetched` with `None`, `load_room` with `Err`). Requests made
    /// afterwards are refused. Later calls do nothing.
    pub fn shutdown(&self, deadline: Duration) {
        let inner = &*self.inner;
        inner.shared.closed.store(true, Relaxed);
        let begun = Instant::now();
        if let Some(stop) = lock(&inner.stop).take() {
            let _ = stop.send(Some(begun + deadline));
        }
        let Some((thread, done)) = lock(&inner.thread).take() else {
            return;
        };
        // The thread leaves its run loop by the deadline; dropping its tasks is quick.
        let wait = deadline + Duration::from_millis(250);
        match done.recv_timeout(wait) {
            Ok(()) | Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                if thread.join().is_err() {
                    tracing::error!("the broker thread panicked");
                }
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => {
                tracing::warn!("the broker thread did not stop within {wait:?}; left running");
            }
        }
    }
}
