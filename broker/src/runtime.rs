//! The broker thread: a tokio current-thread runtime with a `LocalSet`, and its tasks —
//! the sequencer loop (queue → one script call per batch), the fetch tasks, the
//! controller (loads and forgets), the subscriber (the pub/sub connection: messages in,
//! SUBSCRIBE / UNSUBSCRIBE out, reconnects), the health probe and the outbox flusher.
//! Everything runs on this one thread, so the state they share is `Rc<RefCell<…>>`.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_channel::mpsc::Sender as EventSender;
use futures_channel::oneshot as foneshot;
use futures_util::StreamExt;
use hubbub_core::owner_of;
use hubbub_core::protocol::ChatMessage;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink, PubSubStream};
use redis::{RedisError, Value};
use tokio::sync::{mpsc, oneshot, watch, Notify, Semaphore};
use tokio::task::{spawn_local, LocalSet};

use crate::outbox::Outbox;
use crate::shared::Shared;
use crate::{scripts, wire, BrokerConfig, BrokerDown, BrokerEvent, LoadedRoom, MAX_FETCH};

/// Connecting (TCP and handshake) may take this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A command or script may take this long to answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The pub/sub connection's backoff between failed attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How often the health probe PINGs while the command connection is up / down.
const PROBE_UP: Duration = Duration::from_secs(1);
const PROBE_DOWN: Duration = Duration::from_millis(200);
/// How often parked answers and owed resyncs are retried.
const FLUSH_EVERY: Duration = Duration::from_millis(5);
/// Fetches and loads in flight at once.
const MAX_FETCHES_IN_FLIGHT: usize = 64;
/// The first connections' wait at start.
const START_WAIT: Duration = Duration::from_secs(3);

/// A message waiting for its seq.
pub(crate) struct SeqReq {
    pub worker: u16,
    pub token: u64,
    pub room: Arc<str>,
    pub line: Vec<u8>,
    pub candidate: Box<str>,
    pub floor: u64,
}

/// A range of a room's log asked for.
pub(crate) struct FetchReq {
    pub worker: u16,
    pub room: Arc<str>,
    pub after: u64,
    pub upto: u64,
}

/// Loads and forgets, in the order they were asked.
pub(crate) enum Control {
    Load {
        room: Arc<str>,
        recent: usize,
        candidate: Box<str>,
        floor: u64,
        reply: foneshot::Sender<Result<LoadedRoom, BrokerDown>>,
    },
    Forget(Arc<str>),
}

/// What `Broker::start` hands the thread.
pub(crate) struct ThreadParts {
    pub cfg: BrokerConfig,
    pub client: redis::Client,
    pub shared: Arc<Shared>,
    pub senders: Vec<EventSender<BrokerEvent>>,
    pub seq_rx: mpsc::Receiver<SeqReq>,
    pub fetch_rx: mpsc::Receiver<FetchReq>,
    pub ctl_rx: mpsc::Receiver<Control>,
    pub stop_rx: watch::Receiver<Option<Instant>>,
}

/// What the tasks share.
struct Ctx {
    cfg: BrokerConfig,
    client: redis::Client,
    conn: ConnectionManager,
    shared: Arc<Shared>,
    outbox: RefCell<Outbox>,
    /// Rung when the pub/sub connection is lost: the probe checks the command
    /// connection at once (it most likely broke too).
    probe_now: Notify,
    sequence: redis::Script,
    load: redis::Script,
    fetch: redis::Script,
}

impl Ctx {
    /// Counts a round trip and notes what it says about the command connection.
    fn note<T>(self: &Rc<Self>, result: &Result<T, RedisError>) {
        Shared::add(&self.shared.round_trips, 1);
        match result {
            Ok(_) => {
                if self.shared.set_cmd(true) {
                    spawn_local(set_name(self.clone()));
                }
            }
            Err(e) if is_down(e) => {
                self.shared.set_cmd(false);
            }
            Err(e) => tracing::warn!("Redis answered an error: {e}"),
        }
    }

    fn answer(&self, worker: u16, event: BrokerEvent) {
        self.outbox.borrow_mut().answer(usize::from(worker), event);
    }
}

/// Whether an error means Redis is not reachable (rather than a refused command).
fn is_down(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}

/// The thread's body: runs until the stop signal (or every handle gone), then lets the
/// sequencer finish its call in flight until the deadline; whatever is still pending is
/// answered as the tasks are dropped.
pub(crate) fn run(
    rt: tokio::runtime::Runtime,
    parts: ThreadParts,
    ready: std::sync::mpsc::Sender<()>,
) {
    let local = LocalSet::new();
    local.block_on(&rt, main(parts, ready));
    // Dropping the set drops every task left: their guards answer what they held.
    drop(local);
}

async fn main(parts: ThreadParts, ready: std::sync::mpsc::Sender<()>) {
    let ThreadParts {
        cfg,
        client,
        shared,
        senders,
        seq_rx,
        fetch_rx,
        ctl_rx,
        mut stop_rx,
    } = parts;
    let begun = Instant::now();
    let manager_cfg = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(200));
    let conn = match ConnectionManager::new_lazy_with_config(client.clone(), manager_cfg) {
        Ok(conn) => conn,
        Err(e) => {
            // Only a configuration the code does not make fails here.
            tracing::error!("cannot set up the Redis connection: {e}");
            return;
        }
    };
    let outbox = Outbox::new(senders, cfg.queue_size, shared.clone());
    let ctx = Rc::new(Ctx {
        cfg,
        client,
        conn,
        shared,
        outbox: RefCell::new(outbox),
        probe_now: Notify::new(),
        sequence: redis::Script::new(scripts::SEQUENCE),
        load: redis::Script::new(scripts::LOAD),
        fetch: redis::Script::new(scripts::FETCH),
    });

    // Stop signal for the tasks: `true` once shutdown began.
    let (halt_tx, halt_rx) = watch::channel(false);
    let (sub_tx, sub_rx) = mpsc::unbounded_channel();
    let (first_tx, first_rx) = oneshot::channel();
    spawn_local(subscriber(ctx.clone(), sub_rx, halt_rx.clone(), first_tx));
    let first_ping = tokio::time::timeout(START_WAIT, ping(&ctx));
    let _ = first_ping.await;
    let left = START_WAIT.saturating_sub(begun.elapsed());
    let _ = tokio::time::timeout(left, first_rx).await;
    let _ = ready.send(());

    let sequencer = spawn_local(sequencer(
        ctx.clone(),
        SeqQueue {
            rx: seq_rx,
            ctx: ctx.clone(),
        },
        halt_rx.clone(),
    ));
    spawn_local(fetcher(
        ctx.clone(),
        FetchQueue {
            rx: fetch_rx,
            ctx: ctx.clone(),
        },
        halt_rx.clone(),
    ));
    spawn_local(controller(ctx.clone(), ctl_rx, sub_tx, halt_rx.clone()));
    spawn_local(probe(ctx.clone(), halt_rx.clone()));
    spawn_local(flusher(ctx.clone(), halt_rx));

    let deadline = loop {
        if stop_rx.changed().await.is_err() {
            break Instant::now() + Duration::from_secs(1);
        }
        if let Some(deadline) = *stop_rx.borrow() {
            break deadline;
        }
    };
    let _ = halt_tx.send(true);
    let left = deadline.saturating_duration_since(Instant::now());
    if tokio::time::timeout(left, sequencer).await.is_err() {
        tracing::warn!("a sequencing call was still in flight at the shutdown deadline");
    }
    ctx.outbox.borrow_mut().flush();
}

/// Resolves once `halt` says stop (or its sender is gone).
async fn halted(halt: &mut watch::Receiver<bool>) {
    let _ = halt.wait_for(|stop| *stop).await;
}

// ---------------------------------------------------------------------------------------
// Sequencing

/// The sequence queue; requests still in it when it is dropped are answered BrokerDown.
struct SeqQueue {
    rx: mpsc::Receiver<SeqReq>,
    ctx: Rc<Ctx>,
}

impl Drop for SeqQueue {
    fn drop(&mut self) {
        self.rx.close();
        let mut failed = 0;
        while let Ok(req) = self.rx.try_recv() {
            failed += 1;
            self.ctx.answer(
                req.worker,
                BrokerEvent::Sequenced {
                    token: req.token,
                    result: Err(BrokerDown),
                },
            );
        }
        Shared::add(&self.ctx.shared.sequence_failed, failed);
    }
}

/// A batch in flight; if dropped unanswered (the call failed, or the task was dropped),
/// every message in it is answered BrokerDown.
struct Batch {
    reqs: Vec<SeqReq>,
    ctx: Rc<Ctx>,
}

impl Drop for Batch {
    fn drop(&mut self) {
        if self.reqs.is_empty() {
            return;
        }
        Shared::add(&self.ctx.shared.sequence_failed, self.reqs.len() as u64);
        let mut outbox = self.ctx.outbox.borrow_mut();
        for req in self.reqs.drain(..) {
            outbox.answer(
                usize::from(req.worker),
                BrokerEvent::Sequenced {
                    token: req.token,
                    result: Err(BrokerDown),
                },
            );
        }
    }
}

async fn sequencer(ctx: Rc<Ctx>, mut queue: SeqQueue, mut halt: watch::Receiver<bool>) {
    let batch_max = ctx.cfg.batch_max;
    loop {
        let mut reqs = Vec::with_capacity(batch_max.min(queue.rx.len().max(1)));
        tokio::select! {
            biased;
            _ = halted(&mut halt) => return,
            n = queue.rx.recv_many(&mut reqs, batch_max) => {
                if n == 0 {
                    return;
                }
            }
        }
        sequence_batch(
            &ctx,
            Batch {
                reqs,
                ctx: ctx.clone(),
            },
        )
        .await;
    }
}

/// One script call for the batch; answers every message in it.
async fn sequence_batch(ctx: &Rc<Ctx>, mut batch: Batch) {
    // The rooms in order of first appearance, each with its requests in order.
    let mut rooms: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, req) in batch.reqs.iter().enumerate() {
        let g = *rooms.entry(&req.room).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    let mut invocation = ctx.sequence.prepare_invoke();
    invocation.arg(ctx.cfg.stream_len);
    for group in &groups {
        let head = &batch.reqs[group[0]];
        invocation
            .key(wire::meta_key(&head.room))
            .key(wire::log_key(&head.room))
            .arg(wire::channel(&head.room))
            .arg(&*head.candidate)
            .arg(head.floor)
            .arg(group.len());
        for &i in group {
            invocation.arg(&batch.reqs[i].line[..]);
        }
    }
    let mut conn = ctx.conn.clone();
    Shared::add(&ctx.shared.scripts, 1);
    let result: Result<Value, RedisError> = invocation.invoke_async(&mut conn).await;
    drop(invocation);
    ctx.note(&result);
    let answers = match result {
        Ok(value) => match parse_sequenced(&value, groups.len()) {
            Some(answers) => answers,
            None => {
                tracing::warn!("the sequence script answered {value:?}");
                return; // `batch` answers BrokerDown
            }
        },
        Err(e) => {
            tracing::warn!(messages = batch.reqs.len(), "sequencing failed: {e}");
            return;
        }
    };
    drop(rooms);
    let mut outbox = ctx.outbox.borrow_mut();
    let reqs = std::mem::take(&mut batch.reqs);
    Shared::add(&ctx.shared.sequenced, reqs.len() as u64);
    let mut reqs: Vec<Option<SeqReq>> = reqs.into_iter().map(Some).collect();
    for (group, (epoch, first)) in groups.iter().zip(answers) {
        for (j, &i) in group.iter().enumerate() {
            if let Some(req) = reqs[i].take() {
                outbox.answer(
                    usize::from(req.worker),
                    BrokerEvent::Sequenced {
                        token: req.token,
                        result: Ok((epoch.clone(), first + j as u64)),
                    },
                );
            }
        }
    }
}

/// Runs a script that may safely run twice (a load, a fetch): once more if the first
/// call found the connection broken (the manager has reconnected meanwhile: the first
/// call after an outage otherwise fails on the old connection).
async fn invoke_idempotent(
    ctx: &Rc<Ctx>,
    invocation: &redis::ScriptInvocation<'_>,
) -> Result<Value, RedisError> {
    let mut conn = ctx.conn.clone();
    let result: Result<Value, RedisError> = invocation.invoke_async(&mut conn).await;
    ctx.note(&result);
    match result {
        Err(e) if is_down(&e) => {
            let again: Result<Value, RedisError> = invocation.invoke_async(&mut conn).await;
            ctx.note(&again);
            again
        }
        other => other,
    }
}

fn as_bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn as_str(value: &Value) -> Option<&str> {
    std::str::from_utf8(as_bytes(value)?).ok()
}

fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => as_str(other)?.parse().ok(),
    }
}

/// `{{epoch, first}, …}`, one per room.
fn parse_sequenced(value: &Value, rooms: usize) -> Option<Vec<(Arc<str>, u64)>> {
    let Value::Array(items) = value else {
        return None;
    };
    if items.len() != rooms {
        return None;
    }
    items
        .iter()
        .map(|item| match item {
            Value::Array(pair) if pair.len() == 2 => {
                Some((Arc::from(as_str(&pair[0])?), as_u64(&pair[1])?))
            }
            _ => None,
        })
        .collect()
}

/// `id, line, id, line, …` as messages (undecodable ones skipped, logged).
fn parse_entries(room: &str, items: &[Value]) -> Vec<ChatMessage> {
    let mut out = Vec::with_capacity(items.len() / 2);
    for pair in items.chunks_exact(2) {
        let (Some(id), Some(line)) = (as_bytes(&pair[0]), as_bytes(&pair[1])) else {
            tracing::warn!(room, "a malformed stream entry");
            continue;
        };
        let Some(seq) = wire::seq_of_id(id) else {
            tracing::warn!(room, "a stream entry id that is not a seq");
            continue;
        };
        match wire::decode_line(line, seq) {
            Ok(message) => out.push(message),
            Err(e) => tracing::warn!(room, seq, "a stored message cannot be read: {e}"),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Fetches

/// The fetch queue; requests still in it when dropped are answered `Fetched { None }`.
struct FetchQueue {
    rx: mpsc::Receiver<FetchReq>,
    ctx: Rc<Ctx>,
}

impl Drop for FetchQueue {
    fn drop(&mut self) {
        self.rx.close();
        while let Ok(req) = self.rx.try_recv() {
            drop(FetchJob {
                req: Some(req),
                ctx: self.ctx.clone(),
            });
        }
    }
}

/// A fetch being answered; dropped unanswered, it answers `None`.
struct FetchJob {
    req: Option<FetchReq>,
    ctx: Rc<Ctx>,
}

impl FetchJob {
    fn finish(&mut self, answer: Option<(Arc<str>, Vec<ChatMessage>)>) {
        if let Some(req) = self.req.take() {
            self.ctx.answer(
                req.worker,
                BrokerEvent::Fetched {
                    room: req.room,
                    answer,
                },
            );
        }
    }
}

impl Drop for FetchJob {
    fn drop(&mut self) {
        self.finish(None);
    }
}

async fn fetcher(ctx: Rc<Ctx>, mut queue: FetchQueue, mut halt: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(MAX_FETCHES_IN_FLIGHT));
    loop {
        let req = tokio::select! {
            biased;
            _ = halted(&mut halt) => return,
            req = queue.rx.recv() => match req {
                Some(req) => req,
                None => return,
            },
        };
        let job = FetchJob {
            req: Some(req),
            ctx: ctx.clone(),
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return; // never closed
        };
        spawn_local(async move {
            fetch(job).await;
            drop(permit);
        });
    }
}

async fn fetch(mut job: FetchJob) {
    let Some(req) = job.req.as_ref() else {
        return;
    };
    let ctx = job.ctx.clone();
    let start = format!("{}-0", req.after.saturating_add(1));
    let end = if req.upto == u64::MAX {
        "+".to_owned()
    } else {
        format!("{}-0", req.upto)
    };
    let mut invocation = ctx.fetch.prepare_invoke();
    invocation
        .key(wire::meta_key(&req.room))
        .key(wire::log_key(&req.room))
        .arg(start)
        .arg(end)
        .arg(MAX_FETCH);
    let result = invoke_idempotent(&ctx, &invocation).await;
    let answer = match &result {
        Ok(Value::Array(items)) => match items.split_first() {
            None => Some((Arc::from(""), Vec::new())),
            Some((epoch, entries)) => {
                as_str(epoch).map(|epoch| (Arc::from(epoch), parse_entries(&req.room, entries)))
            }
        },
        Ok(other) => {
            tracing::warn!("the fetch script answered {other:?}");
            None
        }
        Err(e) => {
            tracing::debug!(room = %req.room, "fetch failed: {e}");
            None
        }
    };
    if answer.is_some() {
        Shared::add(&ctx.shared.fetches, 1);
    }
    job.finish(answer);
}

// ---------------------------------------------------------------------------------------
// Loads and forgets

/// What the subscriber is asked to do, in order.
enum SubOp {
    Subscribe(Arc<str>, Reply),
    Unsubscribe(Arc<str>),
}

async fn controller(
    ctx: Rc<Ctx>,
    mut rx: mpsc::Receiver<Control>,
    subscriber: mpsc::UnboundedSender<SubOp>,
    mut halt: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_FETCHES_IN_FLIGHT));
    loop {
        let control = tokio::select! {
            biased;
            _ = halted(&mut halt) => return,
            control = rx.recv() => match control {
                Some(control) => control,
                None => return,
            },
        };
        match control {
            Control::Load {
                room,
                recent,
                candidate,
                floor,
                reply,
            } => {
                // Asked now, in order with the forgets; answered by the subscriber
                // once Redis confirms.
                let (confirm_tx, confirm_rx) = oneshot::channel();
                if subscriber
                    .send(SubOp::Subscribe(room.clone(), confirm_tx))
                    .is_err()
                {
                    let _ = reply.send(Err(BrokerDown));
                    continue;
                }
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let ctx = ctx.clone();
                spawn_local(async move {
                    let answer = match confirm_rx.await {
                        Ok(Ok(())) => load(&ctx, &room, recent, &candidate, floor).await,
                        _ => Err(BrokerDown),
                    };
                    let _ = reply.send(answer);
                    drop(permit);
                });
            }
            Control::Forget(room) => {
                let _ = subscriber.send(SubOp::Unsubscribe(room));
            }
        }
    }
}

/// The load script, once the room's channel is subscribed.
async fn load(
    ctx: &Rc<Ctx>,
    room: &str,
    recent: usize,
    candidate: &str,
    floor: u64,
) -> Result<LoadedRoom, BrokerDown> {
    let mut invocation = ctx.load.prepare_invoke();
    invocation
        .key(wire::meta_key(room))
        .key(wire::log_key(room))
        .arg(candidate)
        .arg(floor)
        .arg(recent);
    let result = invoke_idempotent(ctx, &invocation).await;
    let value = result.map_err(|e| {
        tracing::debug!(room, "load failed: {e}");
        BrokerDown
    })?;
    let Value::Array(items) = &value else {
        tracing::warn!(room, "the load script answered {value:?}");
        return Err(BrokerDown);
    };
    let (Some(epoch), Some(last_seq)) = (
        items.first().and_then(as_str),
        items.get(1).and_then(as_u64),
    ) else {
        tracing::warn!(room, "the load script answered {value:?}");
        return Err(BrokerDown);
    };
    let mut recent = parse_entries(room, items.get(2..).unwrap_or_default());
    recent.reverse();
    Ok(LoadedRoom {
        epoch: Arc::from(epoch),
        last_seq,
        recent,
    })
}

// ---------------------------------------------------------------------------------------
// Pub/sub

/// Polls a future once, so that what it sends on its first poll is sent now, in the
/// caller's order.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
    poll_fn(|cx| match Pin::new(&mut *future).poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Where a load waits for its SUBSCRIBE's confirmation.
type Reply = oneshot::Sender<Result<(), BrokerDown>>;

type Confirm = Pin<Box<dyn Future<Output = Result<(), RedisError>>>>;

/// Sends SUBSCRIBE (or UNSUBSCRIBE) for `room` now; the future is its confirmation.
async fn start_command(shared: &Shared, sink: &PubSubSink, room: &str, subscribe: bool) -> Confirm {
    let mut sink = sink.clone();
    let channel = wire::channel(room);
    Shared::add(&shared.round_trips, 1);
    let mut confirm: Confirm = Box::pin(async move {
        if subscribe {
            sink.subscribe(channel).await
        } else {
            sink.unsubscribe(channel).await
        }
    });
    match poll_once(&mut confirm).await {
        Some(done) => Box::pin(std::future::ready(done)),
        None => confirm,
    }
}

/// Waits for every confirmation (at most RESPONSE_TIMEOUT); whether all came.
async fn confirm_all(confirms: Vec<(Confirm, Option<Reply>)>) -> bool {
    let deadline = tokio::time::Instant::now() + RESPONSE_TIMEOUT;
    let mut all = true;
    for (confirm, reply) in confirms {
        let ok = matches!(tokio::time::timeout_at(deadline, confirm).await, Ok(Ok(())));
        all &= ok;
        if let Some(reply) = reply {
            let _ = reply.send(if ok { Ok(()) } else { Err(BrokerDown) });
        }
    }
    all
}

/// Opens the pub/sub connection and subscribes to every watched room.
async fn connect(
    ctx: &Ctx,
    watched: &HashSet<Arc<str>>,
) -> Result<(PubSubSink, PubSubStream), RedisError> {
    Shared::add(&ctx.shared.round_trips, 1);
    let (sink, stream) = ctx.client.get_async_pubsub().await?.split();
    let mut confirms = Vec::with_capacity(watched.len());
    for room in watched {
        confirms.push((start_command(&ctx.shared, &sink, room, true).await, None));
    }
    if confirm_all(confirms).await {
        Ok((sink, stream))
    } else {
        Err(RedisError::from((
            redis::ErrorKind::Io,
            "the subscriptions were not confirmed",
        )))
    }
}

/// How serving a pub/sub connection ended.
enum Ended {
    Halt,
    Lost,
}

async fn subscriber(
    ctx: Rc<Ctx>,
    mut ops: mpsc::UnboundedReceiver<SubOp>,
    mut halt: watch::Receiver<bool>,
    first: oneshot::Sender<()>,
) {
    let mut watched: HashSet<Arc<str>> = HashSet::new();
    let mut first = Some(first);
    let mut connected_before = false;
    let mut backoff = BACKOFF_MIN;
    loop {
        if *halt.borrow() {
            return;
        }
        let attempt = tokio::select! {
            biased;
            _ = halted(&mut halt) => return,
            attempt = tokio::time::timeout(2 * CONNECT_TIMEOUT, connect(&ctx, &watched)) => attempt,
        };
        match attempt {
            Ok(Ok((sink, stream))) => {
                ctx.shared.set_sub(true);
                backoff = BACKOFF_MIN;
                if connected_before {
                    Shared::add(&ctx.shared.reconnects, 1);
                    tracing::info!(rooms = watched.len(), "pub/sub reconnected; resync");
                    ctx.outbox.borrow_mut().resync_all();
                }
                connected_before = true;
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
                match serve(&ctx, sink, stream, &mut ops, &mut watched, &mut halt).await {
                    Ended::Halt => return,
                    Ended::Lost => {
                        ctx.shared.set_sub(false);
                        ctx.probe_now.notify_one();
                        tracing::warn!("the pub/sub connection was lost");
                    }
                }
            }
            failed => {
                if let Ok(Err(e)) = failed {
                    tracing::debug!("pub/sub connection failed: {e}");
                }
                ctx.shared.set_sub(false);
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
                let sleep = tokio::time::sleep(backoff);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        biased;
                        _ = halted(&mut halt) => return,
                        _ = &mut sleep => break,
                        op = ops.recv() => match op {
                            None => return,
                            // Not connected: a load fails now (the hub tries again).
                            Some(SubOp::Subscribe(_, reply)) => {
                                let _ = reply.send(Err(BrokerDown));
                            }
                            Some(SubOp::Unsubscribe(room)) => {
                                watched.remove(&room);
                            }
                        },
                    }
                }
                ctx.shared
                    .watched
                    .store(watched.len() as u64, std::sync::atomic::Ordering::Relaxed);
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Serves one pub/sub connection: messages to the workers, subscriptions in order.
async fn serve(
    ctx: &Rc<Ctx>,
    sink: PubSubSink,
    mut stream: PubSubStream,
    ops: &mut mpsc::UnboundedReceiver<SubOp>,
    watched: &mut HashSet<Arc<str>>,
    halt: &mut watch::Receiver<bool>,
) -> Ended {
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            biased;
            _ = halted(halt) => return Ended::Halt,
            n = ops.recv_many(&mut batch, 256) => {
                if n == 0 {
                    return Ended::Halt;
                }
                let mut confirms = Vec::with_capacity(n);
                for op in batch.drain(..) {
                    match op {
                        SubOp::Subscribe(room, reply) => {
                            let confirm = start_command(&ctx.shared, &sink, &room, true).await;
                            watched.insert(room);
                            confirms.push((confirm, Some(reply)));
                        }
                        SubOp::Unsubscribe(room) => {
                            let confirm = start_command(&ctx.shared, &sink, &room, false).await;
                            watched.remove(&room);
                            confirms.push((confirm, None));
                        }
                    }
                }
                ctx.shared
                    .watched
                    .store(watched.len() as u64, std::sync::atomic::Ordering::Relaxed);
                if !confirm_all(confirms).await {
                    return Ended::Lost;
                }
            }
            msg = stream.next() => match msg {
                None => return Ended::Lost,
                Some(msg) => deliver(ctx, watched, &msg),
            },
        }
    }
}

/// One published payload: one `Message` event per line to the room's owner worker.
fn deliver(ctx: &Ctx, watched: &HashSet<Arc<str>>, msg: &redis::Msg) {
    let Some(room) = wire::room_of_channel(msg.get_channel_name()) else {
        return;
    };
    let Some(room) = watched.get(room) else {
        return; // forgotten meanwhile
    };
    let Some(payload) = wire::split_payload(msg.get_payload_bytes()) else {
        tracing::warn!(room = %room, "a malformed publication");
        return;
    };
    let epoch: Arc<str> = Arc::from(payload.epoch);
    let outbox = &mut *ctx.outbox.borrow_mut();
    let worker = owner_of(room, outbox.workers().min(usize::from(u16::MAX)) as u16).index();
    let mut received = 0;
    for (i, line) in payload.lines.enumerate() {
        let seq = payload.first + i as u64;
        match wire::decode_line(line, seq) {
            Ok(message) => {
                received += 1;
                outbox.message(
                    worker,
                    BrokerEvent::Message {
                        room: room.clone(),
                        epoch: epoch.clone(),
                        message,
                    },
                );
            }
            Err(e) => tracing::warn!(room = %room, seq, "a published message cannot be read: {e}"),
        }
    }
    Shared::add(&ctx.shared.received, received);
}

// ---------------------------------------------------------------------------------------
// Health and upkeep

async fn ping(ctx: &Rc<Ctx>) {
    let mut conn = ctx.conn.clone();
    let result: Result<Value, RedisError> = redis::cmd("PING").query_async(&mut conn).await;
    ctx.note(&result);
}

/// `CLIENT SETNAME hubbub-<node_id>-cmd`, after each (re)connection the probe sees.
async fn set_name(ctx: Rc<Ctx>) {
    let node: String = ctx
        .cfg
        .node_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut conn = ctx.conn.clone();
    let result: Result<Value, RedisError> = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(format!("hubbub-{node}-cmd"))
        .query_async(&mut conn)
        .await;
    Shared::add(&ctx.shared.round_trips, 1);
    if let Err(e) = result {
        tracing::debug!("CLIENT SETNAME failed: {e}");
    }
}

/// PINGs every second (every 200 ms while Redis is unreachable): the command
/// connection's status when nothing else is sent.
async fn probe(ctx: Rc<Ctx>, mut halt: watch::Receiver<bool>) {
    loop {
        let period = if ctx.shared.cmd_up() {
            PROBE_UP
        } else {
            PROBE_DOWN
        };
        tokio::select! {
            biased;
            _ = halted(&mut halt) => return,
            _ = tokio::time::sleep(period) => {}
            _ = ctx.probe_now.notified() => {}
        }
        ping(&ctx).await;
    }
}

/// Moves parked answers and owed resyncs to the workers as they drain their channels.
async fn flusher(ctx: Rc<Ctx>, mut halt: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            biased;
            _ = halted(&mut halt) => return,
            _ = tokio::time::sleep(FLUSH_EVERY) => {}
        }
        ctx.outbox.borrow_mut().flush();
    }
}
