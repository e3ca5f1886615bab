//! The bridge: one OS thread running a tokio runtime with three kinds of task — the
//! dispatcher (queue → batches), the batch writers (at most `in_flight` at once) and the
//! supervisor (table bootstrap and the health probe) — plus the history queries.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::Client;
use futures_channel::oneshot;
use hubbub_core::protocol::ChatMessage;
use hubbub_core::{PersistStats, StorageStatus};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

use crate::config::BridgeConfig;
use crate::dynamo::{self, BootError, DynamoWriter, Pending, ROOM_INDEX, USER_INDEX};
use crate::error::{QueryError, StartError};
use crate::item::{attr, to_item};
use crate::queue::{PersistQueue, Shared};
use crate::retry::write_with_retry;

/// What [`Bridge::load_room`] returns: where a room's sequence stands and its newest
/// messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoomState {
    /// The largest `Seq` stored for the room; 0 if none.
    pub last_seq: u64,
    /// The newest messages, oldest first.
    pub recent: Vec<ChatMessage>,
    /// Its users' read markers from the state table: (user id, seq).
    pub read_markers: Vec<(String, u64)>,
    /// Its record, if it was made through the rooms API.
    pub room: Option<hubbub_core::RoomRecord>,
}

/// What [`Bridge::shutdown`] achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct DrainReport {
    /// Every accepted record was written or given up on before the deadline.
    pub completed: bool,
    /// How long the drain took.
    pub elapsed: Duration,
    /// Records not written: still queued, kept for an unavailable store, or in a call that
    /// had not answered at the deadline. Counted in `stats.failed` and logged.
    pub unwritten: Vec<uuid::Uuid>,
    /// The figures at the end.
    pub stats: PersistStats,
}

/// The persistence bridge between the workers and DynamoDB. See the [crate docs](crate).
pub struct Bridge {
    shared: Arc<Shared>,
    handle: tokio::runtime::Handle,
    ctx: Arc<Ctx>,
    /// Tells the thread to drain by a deadline; taken by the first stop.
    control: Mutex<Option<watch::Sender<Option<Instant>>>>,
    /// The thread, joined by the first [`Bridge::shutdown`].
    thread: Mutex<Option<JoinHandle<DrainReport>>>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("table", &self.ctx.table)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// What the bridge thread tells `start`.
enum StartMsg {
    Started(Arc<Ctx>),
    Ready,
    Mismatch(String),
}

impl Bridge {
    /// Starts the bridge thread and bootstraps the table (DescribeTable; CreateTable with
    /// both indexes if missing; wait until everything is ACTIVE), waiting at most
    /// `cfg.start_timeout`. A store that does not answer in that time is not an error: the
    /// bridge returns with status `Unavailable`, queues records, and keeps trying in the
    /// background. A table with another layout is [`StartError::SchemaMismatch`].
    ///
    /// It blocks the calling thread for up to `start_timeout`: call it at start-up, not
    /// from an async task.
    pub fn start(cfg: BridgeConfig) -> Result<Bridge, StartError> {
        cfg.validate()?;
        let begun = Instant::now();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let shared = Shared::new(cfg.queue_size);
        let (tx, rx) = mpsc::channel();
        let (control_tx, control_rx) = watch::channel(None);
        let start_timeout = cfg.start_timeout;
        let table = cfg.table.clone();
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("hubbub-persist-bridge".to_owned())
                .spawn(move || run(rt, cfg, shared, tx, control_rx))?
        };
        let ctx = match rx.recv() {
            Ok(StartMsg::Started(ctx)) => ctx,
            _ => return Err(StartError::ThreadExited),
        };
        let bridge = Bridge {
            shared,
            handle,
            ctx,
            control: Mutex::new(Some(control_tx)),
            thread: Mutex::new(Some(thread)),
        };
        let left = start_timeout.saturating_sub(begun.elapsed());
        match rx.recv_timeout(left) {
            Ok(StartMsg::Ready) => Ok(bridge),
            Ok(StartMsg::Mismatch(detail)) => {
                bridge.shutdown(Duration::ZERO);
                Err(StartError::SchemaMismatch { table, detail })
            }
            Ok(StartMsg::Started(_)) | Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    table = %bridge.ctx.table,
                    "DynamoDB not ready after {start_timeout:?}; starting with storage \
                     unavailable, records are queued until it answers"
                );
                Ok(bridge)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(StartError::ThreadExited),
        }
    }

    /// The workers' end of the queue; install one per hub as its `PersistSink`.
    pub fn sink(&self) -> PersistQueue {
        PersistQueue {
            shared: self.shared.clone(),
        }
    }

    /// The figures, read from atomics (and the batch latency histogram).
    pub fn stats(&self) -> PersistStats {
        self.shared.stats()
    }

    /// `Ok` or `Unavailable`, as the last probe (DescribeTable every `probe_interval`) or
    /// write found it. Never a call to the store.
    pub fn status(&self) -> StorageStatus {
        self.shared.status()
    }

    /// The newest `limit` messages of `room` (at most [`dynamo::MAX_QUERY_LIMIT`]), oldest
    /// first, each as it was broadcast. Fails at once with [`QueryError::Unavailable`]
    /// while the store is unavailable.
    pub fn room_history(
        &self,
        room: &str,
        limit: usize,
    ) -> oneshot::Receiver<Result<Vec<ChatMessage>, QueryError>> {
        self.history(ROOM_INDEX, attr::ROOM_ID, room, limit)
    }

    /// The newest `limit` messages of `user` over all rooms, oldest first.
    pub fn user_history(
        &self,
        user: &str,
        limit: usize,
    ) -> oneshot::Receiver<Result<Vec<ChatMessage>, QueryError>> {
        self.history(USER_INDEX, attr::USER_ID, user, limit)
    }

    /// The newest `limit` messages under `key` in `index`, oldest first.
    fn history(
        &self,
        index: &'static str,
        key_attr: &'static str,
        key: &str,
        limit: usize,
    ) -> oneshot::Receiver<Result<Vec<ChatMessage>, QueryError>> {
        let (client, table, key) = (self.ctx.query_client.clone(), self.table(), key.to_owned());
        self.spawn_query(limit == 0, async move {
            let mut msgs =
                dynamo::query_newest(&client, &table, index, key_attr, &key, limit).await?;
            msgs.truncate(limit.min(dynamo::MAX_QUERY_LIMIT));
            msgs.reverse();
            Ok(msgs)
        })
    }

    /// Where `room` stands: its largest stored `Seq` (0 if none) and its newest `recent`
    /// messages, oldest first — for warming a room before it takes messages.
    pub fn load_room(
        &self,
        room: &str,
        recent: usize,
    ) -> oneshot::Receiver<Result<RoomState, QueryError>> {
        let (client, table, room) = (self.ctx.query_client.clone(), self.table(), room.to_owned());
        let state_table = self.ctx.cfg.state_table.clone();
        self.spawn_query(false, async move {
            let mut msgs =
                dynamo::query_newest(&client, &table, ROOM_INDEX, attr::ROOM_ID, &room, recent)
                    .await?;
            let last_seq = msgs.iter().map(|m| m.seq).max().unwrap_or(0);
            msgs.truncate(recent.min(dynamo::MAX_QUERY_LIMIT));
            msgs.reverse();
            let read_markers = crate::state::read_markers(&client, &state_table, &room).await?;
            let record = crate::rooms::record(&client, &state_table, &room).await?;
            Ok(RoomState {
                last_seq,
                recent: msgs,
                read_markers,
                room: record,
            })
        })
    }

    /// The messages of `room` with `after < seq <= upto`, in any order: what a
    /// subscriber missed that the memory ring no longer holds.
    pub fn load_range(
        &self,
        room: &str,
        after: u64,
        upto: u64,
    ) -> oneshot::Receiver<Result<Vec<ChatMessage>, QueryError>> {
        let (client, table, room) = (self.ctx.query_client.clone(), self.table(), room.to_owned());
        self.spawn_query(upto <= after, async move {
            dynamo::query_range(&client, &table, &room, after, upto).await
        })
    }

    /// When each of `users` was last seen, as the state table keeps it (Unix ms; `None`
    /// for a user never stored), in the order given.
    pub fn last_seen(
        &self,
        users: Vec<String>,
    ) -> oneshot::Receiver<Result<Vec<Option<u64>>, QueryError>> {
        let (client, state_table) = (
            self.ctx.query_client.clone(),
            self.ctx.cfg.state_table.clone(),
        );
        self.spawn_query(users.is_empty(), async move {
            crate::state::last_seen(&client, &state_table, &users).await
        })
    }

    /// One page of a scan of the whole messages table (for rebuilding a search index), from
    /// `cursor` (the default: the start); with the next page's cursor, `None` at the end.
    #[allow(clippy::type_complexity)]
    pub fn scan_messages(
        &self,
        cursor: crate::dynamo::ScanCursor,
    ) -> oneshot::Receiver<Result<(Vec<ChatMessage>, Option<crate::dynamo::ScanCursor>), QueryError>>
    {
        let (client, table) = (self.ctx.query_client.clone(), self.table());
        self.spawn_query(false, async move {
            crate::dynamo::scan_page(&client, &table, cursor, 1000).await
        })
    }

    /// The rooms `user_id` is a member of, by the state table's per-user index (at most
    /// [`MAX_USER_ROOMS`](crate::MAX_USER_ROOMS)); none before the table exists.
    pub fn user_rooms(&self, user_id: &str) -> oneshot::Receiver<Result<Vec<String>, QueryError>> {
        let (client, table, user) = (
            self.ctx.query_client.clone(),
            self.ctx.cfg.state_table.clone(),
            user_id.to_owned(),
        );
        self.spawn_query(user.is_empty(), async move {
            crate::rooms::of_user(&client, &table, &user).await
        })
    }

    /// The account of `user_id` in the state table, if there is one (the table is created
    /// first if need be).
    pub fn account(
        &self,
        user_id: &str,
    ) -> oneshot::Receiver<Result<Option<crate::StoredAccount>, QueryError>> {
        let (client, table, user) = (
            self.ctx.query_client.clone(),
            self.ctx.cfg.state_table.clone(),
            user_id.to_owned(),
        );
        self.spawn_query(user.is_empty(), async move {
            crate::state::ensure(&client, &table).await?;
            crate::accounts::get(&client, &table, &user).await
        })
    }

    /// Stores a new account unless its user id is taken (`Ok(false)`).
    pub fn create_account(
        &self,
        account: crate::StoredAccount,
    ) -> oneshot::Receiver<Result<bool, QueryError>> {
        let (client, table) = (
            self.ctx.query_client.clone(),
            self.ctx.cfg.state_table.clone(),
        );
        self.spawn_query(false, async move {
            crate::state::ensure(&client, &table).await?;
            crate::accounts::create(&client, &table, &account).await
        })
    }

    /// Stops accepting records (pushes are refused and counted as dropped), writes what is
    /// queued within `deadline`, then stops the thread. What could not be written is
    /// counted as failed, logged with its message ids, and listed in the report.
    ///
    /// It takes `&self` on purpose: the drain must not depend on every holder of the
    /// bridge (a worker, a task still waiting for a room's state) having let go of it
    /// first. Only the first call drains; a later one reports the figures and
    /// `completed: false`. Blocks the calling thread for up to `deadline`.
    pub fn shutdown(&self, deadline: Duration) -> DrainReport {
        let started = Instant::now();
        self.stop(deadline);
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        match thread.map(JoinHandle::join) {
            Some(Ok(report)) => report,
            _ => DrainReport {
                completed: false,
                elapsed: started.elapsed(),
                unwritten: Vec::new(),
                stats: self.stats(),
            },
        }
    }

    fn stop(&self, deadline: Duration) {
        self.shared.closed.store(true, Relaxed);
        if let Some(control) = self.control.lock().ok().and_then(|mut c| c.take()) {
            control.send_replace(Some(Instant::now() + deadline));
        }
        self.shared.doorbell.notify_one();
    }

    fn table(&self) -> String {
        self.ctx.table.clone()
    }

    fn spawn_query<T: Send + Default + 'static>(
        &self,
        trivially_empty: bool,
        query: impl Future<Output = Result<T, QueryError>> + Send + 'static,
    ) -> oneshot::Receiver<Result<T, QueryError>> {
        let (tx, rx) = oneshot::channel();
        if self.shared.closed.load(Relaxed) {
            let _ = tx.send(Err(QueryError::ShuttingDown));
        } else if trivially_empty {
            let _ = tx.send(Ok(T::default()));
        } else if self.status() != StorageStatus::Ok {
            let _ = tx.send(Err(QueryError::Unavailable(
                "DynamoDB does not answer".to_owned(),
            )));
        } else {
            self.handle.spawn(async move {
                let _ = tx.send(query.await);
            });
        }
        rx
    }
}

impl Drop for Bridge {
    /// Dropping without [`Bridge::shutdown`] stops the thread at once, without draining.
    fn drop(&mut self) {
        self.stop(Duration::ZERO);
    }
}

/// The bridge thread's shared context.
struct Ctx {
    shared: Arc<Shared>,
    /// Writes and probes: no SDK retries (the bridge retries).
    client: Client,
    /// Queries: the SDK's standard retries, so that a stale pooled connection is no error.
    query_client: Client,
    table: String,
    cfg: BridgeConfig,
    /// `true` while the store answers; the dispatcher waits on it.
    health: watch::Sender<bool>,
    /// Asks the supervisor to probe now.
    kick: Notify,
    /// Batches kept while the store is away, written first when it answers.
    parked: Mutex<VecDeque<Vec<Pending>>>,
    /// Message ids of the batches being written, by batch number.
    in_flight: Mutex<HashMap<u64, Vec<uuid::Uuid>>>,
}

impl Ctx {
    fn set_ok(&self) {
        if self.shared.set_status(true) != StorageStatus::Ok {
            tracing::info!(table = %self.table, "DynamoDB available");
        }
        self.health.send_replace(true);
        self.shared.doorbell.notify_one();
    }

    fn set_unavailable(&self, reason: &dyn std::fmt::Display) {
        if self.shared.set_status(false) == StorageStatus::Ok {
            tracing::warn!(
                table = %self.table,
                %reason,
                "DynamoDB unavailable; records stay queued until it answers"
            );
        }
        self.health.send_replace(false);
    }

    fn closing(&self) -> bool {
        self.shared.closed.load(Relaxed)
    }

    fn pop_into(&self, batch: &mut Vec<Pending>) {
        while batch.len() < self.cfg.batch_size {
            let Some(record) = self.shared.queue.pop() else {
                break;
            };
            batch.push(Pending {
                id: record.message_id,
                item: to_item(&record),
            });
        }
    }

    fn take_parked(&self) -> Option<Vec<Pending>> {
        let batch = self.parked.lock().ok()?.pop_front()?;
        self.shared.parked.fetch_sub(batch.len() as u64, Relaxed);
        Some(batch)
    }

    fn park(&self, batch: Vec<Pending>) {
        let n = batch.len() as u64;
        if let Ok(mut parked) = self.parked.lock() {
            parked.push_back(batch);
            self.shared.parked.fetch_add(n, Relaxed);
        }
        // The dispatcher may be waiting for records: have it look again.
        self.shared.doorbell.notify_one();
    }

    /// Nothing queued, parked or being written.
    fn nothing_left(&self) -> bool {
        self.shared.queue.is_empty()
            && !self.has_parked()
            && self.in_flight.lock().map(|f| f.is_empty()).unwrap_or(true)
    }

    /// Has the dispatcher look at the health and the closing flag again.
    fn nudge(&self) {
        self.health.send_modify(|_| {});
    }

    fn has_parked(&self) -> bool {
        self.parked.lock().map(|p| !p.is_empty()).unwrap_or(false)
    }

    fn healthy(&self) -> bool {
        *self.health.borrow()
    }

    /// The next batch: a parked one first, else from the queue — waiting for a first
    /// record, then up to `linger` for the batch to fill (no lingering while draining).
    async fn next_batch(&self) -> Next {
        let mut batch = Vec::with_capacity(self.cfg.batch_size);
        loop {
            // Only reached with an empty `batch`: leaving here loses nothing.
            if !self.healthy() {
                return Next::Unhealthy;
            }
            if let Some(parked) = self.take_parked() {
                return Next::Batch(parked);
            }
            self.pop_into(&mut batch);
            if !batch.is_empty() {
                break;
            }
            if self.closing() {
                return Next::Drained;
            }
            self.shared.doorbell.notified().await;
        }
        let deadline = tokio::time::Instant::now() + self.cfg.linger;
        while batch.len() < self.cfg.batch_size && !self.closing() {
            let rang = tokio::time::timeout_at(deadline, self.shared.doorbell.notified()).await;
            self.pop_into(&mut batch);
            if rang.is_err() {
                break;
            }
        }
        Next::Batch(batch)
    }
}

/// What the dispatcher does next.
enum Next {
    /// Write this.
    Batch(Vec<Pending>),
    /// The store is away: wait for it.
    Unhealthy,
    /// Closing, and nothing is queued or parked.
    Drained,
}

/// The bridge thread.
fn run(
    rt: tokio::runtime::Runtime,
    cfg: BridgeConfig,
    shared: Arc<Shared>,
    tx: mpsc::Sender<StartMsg>,
    mut control: watch::Receiver<Option<Instant>>,
) -> DrainReport {
    rt.block_on(async move {
        let client = dynamo::client(&cfg).await;
        let query_client = Client::from_conf(
            client
                .config()
                .to_builder()
                .retry_config(RetryConfig::standard().with_max_attempts(3))
                .build(),
        );
        let (health, _) = watch::channel(false);
        let ctx = Arc::new(Ctx {
            shared: shared.clone(),
            client,
            query_client,
            table: cfg.table.clone(),
            cfg,
            health,
            kick: Notify::new(),
            parked: Mutex::new(VecDeque::new()),
            in_flight: Mutex::new(HashMap::new()),
        });
        if tx.send(StartMsg::Started(ctx.clone())).is_err() {
            return drain_report(&ctx, true, Duration::ZERO);
        }
        let supervisor = tokio::spawn(supervise(ctx.clone(), tx));
        let state_writer = tokio::spawn(crate::state::run_writer(
            ctx.client.clone(),
            ctx.cfg.state_table.clone(),
            shared.clone(),
        ));
        let mut dispatcher = tokio::spawn(dispatch(ctx.clone()));

        let deadline = match control.wait_for(Option::is_some).await {
            Ok(d) => d.unwrap_or_else(Instant::now),
            Err(_) => Instant::now(),
        };
        let begun = Instant::now();
        shared.closed.store(true, Relaxed);
        shared.doorbell.notify_one();
        ctx.nudge();
        let completed = match tokio::time::timeout_at(deadline.into(), &mut dispatcher).await {
            Ok(_) => true,
            Err(_) => {
                dispatcher.abort();
                false
            }
        };
        // State writes get what is left of the deadline once the messages are written.
        shared.state_bell.notify_one();
        if tokio::time::timeout_at(deadline.into(), state_writer)
            .await
            .is_err()
        {
            tracing::warn!(
                "shutdown deadline reached: some read markers or last-seen times not written"
            );
        }
        supervisor.abort();
        drain_report(&ctx, completed, begun.elapsed())
    })
}

/// Counts and logs what was not written, and makes the report.
fn drain_report(ctx: &Ctx, completed: bool, elapsed: Duration) -> DrainReport {
    let mut unwritten = Vec::new();
    if let Ok(mut in_flight) = ctx.in_flight.lock() {
        unwritten.extend(in_flight.drain().flat_map(|(_, ids)| ids));
    }
    if let Ok(mut parked) = ctx.parked.lock() {
        unwritten.extend(parked.drain(..).flatten().map(|p| p.id));
    }
    ctx.shared.parked.store(0, Relaxed);
    while let Some(record) = ctx.shared.queue.pop() {
        unwritten.push(record.message_id);
    }
    if !unwritten.is_empty() {
        ctx.shared.failed.fetch_add(unwritten.len() as u64, Relaxed);
        tracing::warn!(
            table = %ctx.table,
            count = unwritten.len(),
            "shutdown deadline reached: records not written"
        );
        log_ids(&unwritten, "not written at shutdown");
    }
    DrainReport {
        completed: completed && unwritten.is_empty(),
        elapsed,
        unwritten,
        stats: ctx.shared.stats(),
    }
}

/// Logs message ids, 200 per line.
fn log_ids(ids: &[uuid::Uuid], what: &str) {
    for chunk in ids.chunks(200) {
        let list = chunk
            .iter()
            .map(uuid::Uuid::to_string)
            .collect::<Vec<_>>()
            .join(",");
        tracing::warn!(count = chunk.len(), message_ids = %list, "{what}");
    }
}

/// Keeps the table ready and the status true: bootstrap, then probe every
/// `probe_interval` (or when a writer asks); on trouble, bootstrap again with backoff.
async fn supervise(ctx: Arc<Ctx>, tx: mpsc::Sender<StartMsg>) {
    let mut tx = Some(tx);
    let mut failures: u32 = 0;
    let mut rng = fastrand::Rng::new();
    loop {
        match dynamo::bootstrap(&ctx.client, &ctx.table).await {
            Ok(()) => {
                failures = 0;
                ctx.set_ok();
                if let Some(tx) = tx.take() {
                    let _ = tx.send(StartMsg::Ready);
                }
                probe_until_trouble(&ctx).await;
            }
            Err(BootError::Mismatch(detail)) => {
                ctx.set_unavailable(&"the table has a different schema");
                tracing::error!(
                    table = %ctx.table,
                    "DynamoDB table has a different schema: {detail}; not writing to it"
                );
                if let Some(tx) = tx.take() {
                    if tx.send(StartMsg::Mismatch(detail)).is_ok() {
                        return;
                    }
                }
                tokio::time::sleep(ctx.cfg.probe_interval * 5).await;
            }
            Err(BootError::Unavailable(e)) => {
                ctx.set_unavailable(&e);
                failures = failures.saturating_add(1);
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!(table = %ctx.table, attempt = failures, error = %e,
                        "DynamoDB not reachable; retrying");
                }
                let policy = &ctx.cfg.reconnect;
                let delay = policy.delay(failures.min(32), &mut rng).max(policy.base);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Probes until the table is missing or the store does not answer.
async fn probe_until_trouble(ctx: &Ctx) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(ctx.cfg.probe_interval) => {}
            () = ctx.kick.notified() => {}
        }
        match dynamo::describe(&ctx.client, &ctx.table).await {
            Ok(Some(desc)) if dynamo::is_ready(&desc) => ctx.set_ok(),
            Ok(Some(_)) => {
                ctx.set_unavailable(&"the table is not active");
                return;
            }
            Ok(None) => {
                ctx.set_unavailable(&"the table is missing; re-creating it");
                return;
            }
            Err(e) => {
                ctx.set_unavailable(&e);
                return;
            }
        }
    }
}

/// Turns the queue into batches and starts their writes, at most `in_flight` at once,
/// only while the store answers. Returns when closing and everything is written.
async fn dispatch(ctx: Arc<Ctx>) {
    let permits = Arc::new(Semaphore::new(ctx.cfg.in_flight));
    let writer = Arc::new(DynamoWriter {
        client: ctx.client.clone(),
        table: ctx.table.clone(),
    });
    let mut health = ctx.health.subscribe();
    let mut next_id: u64 = 0;
    loop {
        // Wait for the store — unless closing with nothing left to write, when waiting
        // for a store that is away would only hold up the shutdown.
        let finished = |ok: &bool| !*ok && ctx.closing() && ctx.nothing_left();
        match health.wait_for(|ok| *ok || finished(ok)).await {
            Err(_) => return,
            Ok(ok) if finished(&ok) => return,
            Ok(_) => {}
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let batch = match ctx.next_batch().await {
            Next::Batch(batch) => batch,
            Next::Unhealthy => continue,
            Next::Drained => {
                // Wait for the writes in flight, then finish unless one of them parked its
                // batch or a late push came in.
                drop(permit);
                let all = u32::try_from(ctx.cfg.in_flight).unwrap_or(u32::MAX);
                let Ok(all) = permits.acquire_many(all).await else {
                    return;
                };
                drop(all);
                if ctx.has_parked() || !ctx.shared.queue.is_empty() {
                    continue;
                }
                return;
            }
        };
        next_id += 1;
        tokio::spawn(write_batch(
            ctx.clone(),
            writer.clone(),
            batch,
            permit,
            next_id,
        ));
    }
}

/// Writes one batch with retries and accounts for it.
async fn write_batch(
    ctx: Arc<Ctx>,
    writer: Arc<DynamoWriter>,
    batch: Vec<Pending>,
    _permit: OwnedSemaphorePermit,
    id: u64,
) {
    if let Ok(mut in_flight) = ctx.in_flight.lock() {
        in_flight.insert(id, batch.iter().map(|p| p.id).collect());
    }
    let mut rng = fastrand::Rng::new();
    let shared = ctx.shared.clone();
    let out = write_with_retry(&*writer, batch, &ctx.cfg.retry, &mut rng, |took| {
        shared.record_call(took)
    })
    .await;
    shared.written.fetch_add(out.written as u64, Relaxed);
    shared.retried.fetch_add(out.retried as u64, Relaxed);
    if !out.failed.is_empty() {
        shared.failed.fetch_add(out.failed.len() as u64, Relaxed);
        let error = out
            .last_error
            .as_ref()
            .map_or_else(String::new, ToString::to_string);
        tracing::warn!(table = %ctx.table, count = out.failed.len(), attempts = out.attempts,
            %error, "giving up on records");
        let ids: Vec<uuid::Uuid> = out.failed.iter().map(|p| p.id).collect();
        log_ids(&ids, "records not written");
    }
    if !out.parked.is_empty() {
        ctx.park(out.parked);
        match &out.last_error {
            Some(e) => ctx.set_unavailable(e),
            None => ctx.set_unavailable(&"write failed"),
        }
        ctx.kick.notify_one();
    }
    if let Ok(mut in_flight) = ctx.in_flight.lock() {
        in_flight.remove(&id);
    }
    if ctx.closing() {
        ctx.nudge();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Bridge>();
        send::<PersistQueue>();
        send::<oneshot::Receiver<Result<RoomState, QueryError>>>();
    }
}
