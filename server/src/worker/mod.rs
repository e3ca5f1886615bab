//! A worker: one pinned thread, one monoio runtime, one hub, one `SO_REUSEPORT` listener.
//! Connections live their whole life on the worker that accepted them.

pub mod connio;
pub mod deadlines;
pub mod mesh;
pub mod poller;
pub mod send_ring;
pub mod sessions;
#[cfg(test)]
mod test_support;
pub(crate) mod wire;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_channel::oneshot;
use hubbub_core::{
    Answer, ConnId, Hub, HubConfig, Mono, Now, Output, PeerEvent, Query, QueryId, RateLimit,
    UnixMillis, WorkerId,
};
use monoio::net::{ListenerOpts, TcpListener};

use crate::config::Config;
use crate::http::static_files::StaticFiles;
use connio::ConnIo;
use deadlines::CloseDeadlines;
use mesh::{Endpoint, Mesh};
use poller::Poller;
use send_ring::SendRing;
use sessions::{lookup, Sessions, READ_BUDGET};

/// What every worker shares: settings and the few process-wide pieces.
pub struct Shared {
    /// The validated configuration.
    pub config: Config,
    /// The parsed origin allowlist.
    pub origins: hubbub_core::connect::AllowedOrigins,
    /// Open-connection count and limit.
    pub gauge: hubbub_core::ConnectionGauge,
    /// The dashboard.
    pub static_files: StaticFiles,
    /// The monotonic epoch every worker measures from.
    pub epoch: Instant,
    /// When the server started.
    pub started_at: UnixMillis,
    /// Cross-worker queues.
    pub mesh: Arc<Mesh<PeerEvent>>,
    /// Worker count.
    pub workers: u16,
    /// The DynamoDB bridge, with `STORE=dynamodb`.
    pub store: Option<Arc<hubbub_persist::Bridge>>,
    /// HTTP connections and per-worker queues, for `/metrics`.
    pub figures: crate::figures::ServerFigures,
}

impl Shared {
    /// The hub settings for worker `id`.
    pub fn hub_config(&self, id: WorkerId) -> HubConfig {
        let c = &self.config;
        let mut h = HubConfig::new(id, self.workers);
        h.history_size = c.history_size as usize;
        h.max_history_bytes = usize::try_from(c.max_history_bytes).unwrap_or(usize::MAX);
        h.backlog_size = c.backlog_size as usize;
        h.max_idle_rooms = c.max_idle_rooms as usize;
        h.rate_limit = RateLimit {
            per_sec: c.rate_limit_per_sec,
            burst: c.rate_limit_burst,
        };
        h.auth_secret = c.auth_secret.as_ref().map(|s| s.as_bytes().to_vec());
        h.allowed_origins = self.origins.clone();
        h.presence = c.presence;
        h.max_queued_bytes = c.max_queued_bytes as usize;
        h.idle_timeout = Duration::from_secs(u64::from(c.idle_timeout_secs));
        h.ping_after = h.idle_timeout / 2;
        h.sweep_every = (h.idle_timeout / 12).max(Duration::from_millis(200));
        h.overflow = c.overflow();
        h.started_at = self.started_at;
        h.seed = random_seed();
        h.durable = self.store.is_some();
        h
    }
}

/// One worker's state, shared by its tasks (all on one thread).
pub struct Worker {
    /// This worker.
    pub id: WorkerId,
    /// Process-wide settings.
    pub shared: Arc<Shared>,
    hub: RefCell<Hub>,
    sessions: RefCell<Sessions>,
    poller: Poller,
    /// Where writes go; `None` where io_uring is unavailable (then `send`).
    ring: Option<SendRing>,
    mesh: RefCell<Endpoint<PeerEvent>>,
    queries: RefCell<HashMap<u64, oneshot::Sender<Answer>>>,
    next_query: Cell<u64>,
    ping: Bytes,
    max_queued: usize,
    /// Connections owed a flush once the hub's outputs are carried out.
    dirty: RefCell<Vec<Rc<ConnIo>>>,
    /// When the chat messages delivered since the last flush were read: latency samples
    /// for the hub once the sends are out.
    delivered: RefCell<Vec<Mono>>,
    /// Connections whose written notice came due, for the hub.
    written: RefCell<Vec<ConnId>>,
    /// A call up the stack is handing written notices to the hub.
    notifying: Cell<bool>,
    corked: Cell<bool>,
    /// Closing connections, cut off if they have not gone by their deadline.
    closing: CloseDeadlines,
    /// Where every connection of this worker reads into, one at a time.
    scratch: RefCell<Box<[u8]>>,
    /// Ourselves, to spawn tasks from `drain` (which only has `&self`).
    me: std::rc::Weak<Worker>,
}

impl Worker {
    /// A worker with an empty hub. Must be called inside the worker's runtime.
    pub fn new(id: WorkerId, shared: Arc<Shared>) -> std::io::Result<Rc<Worker>> {
        let poller = Poller::new()?;
        // On the epoll fallback (no io_uring for the runtime) writes go straight to the sockets with send(2).
        let ring = if monoio::utils::is_legacy() {
            None
        } else {
            match SendRing::new() {
                Ok(ring) => {
                    poller.add(ring.fd(), sessions::RING_KEY)?;
                    Some(ring)
                }
                Err(e) => {
                    tracing::info!(worker = id.0, error = %e, "no send ring: writing with send(2)");
                    None
                }
            }
        };
        let mut hub = Hub::new(shared.hub_config(id), shared.gauge.clone());
        if let Some(bridge) = &shared.store {
            hub.set_persist_sink(Box::new(bridge.sink()));
            hub.set_storage_status(bridge.status());
        }
        Ok(Rc::new_cyclic(|me| Worker {
            me: me.clone(),
            id,
            mesh: RefCell::new(Endpoint::new(shared.mesh.clone(), id)),
            hub: RefCell::new(hub),
            sessions: RefCell::new(Vec::new()),
            poller,
            ring,
            queries: RefCell::new(HashMap::new()),
            next_query: Cell::new(0),
            ping: wire::ping(),
            max_queued: shared.config.max_queued_bytes as usize,
            dirty: RefCell::new(Vec::new()),
            delivered: RefCell::new(Vec::new()),
            written: RefCell::new(Vec::new()),
            notifying: Cell::new(false),
            corked: Cell::new(false),
            closing: CloseDeadlines::default(),
            scratch: RefCell::new(vec![0; READ_BUDGET].into_boxed_slice()),
            shared,
        }))
    }

    /// The time inputs for the hub.
    pub fn now(&self) -> Now {
        let mono = Mono::from_nanos(self.shared.epoch.elapsed().as_nanos() as u64);
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Now::new(mono, UnixMillis(wall))
    }

    /// Runs `f` on the hub, then carries out everything it decided.
    pub fn with_hub<R>(&self, f: impl FnOnce(&mut Hub, Now) -> R) -> R {
        let now = self.now();
        let r = f(&mut self.hub.borrow_mut(), now);
        self.drain(now);
        r
    }

    /// Queues `frame` for `io`, written at the end of the current drain; returns the
    /// bytes now owed to it.
    pub fn queue(&self, io: &Rc<ConnIo>, frame: Bytes) -> usize {
        let pushed = io.push(frame);
        if pushed.needs_flush {
            self.dirty.borrow_mut().push(io.clone());
        }
        pushed.queued
    }

    /// Queues the close frame for `io` (nothing is sent after it).
    pub fn queue_close(&self, io: &Rc<ConnIo>, frame: Bytes) {
        if let Some(needs_flush) = io.close(frame) {
            self.closing.arm(Instant::now(), io.clone());
            if needs_flush {
                self.dirty.borrow_mut().push(io.clone());
            }
        }
    }

    /// Holds flushes back until [`uncork`](Self::uncork): while the reactor serves a
    /// batch of ready sockets, every message of the batch is queued first, so a
    /// connection owed several gets them in one send.
    fn cork(&self) {
        self.corked.set(true);
    }

    /// Ends [`cork`](Self::cork) and writes what was held back.
    fn uncork(&self) {
        self.corked.set(false);
        self.flush();
    }

    /// Sends what every connection queued since the last flush: one send each, all
    /// submitted to the send ring at once (or, without a ring, straight to the sockets).
    fn flush(&self) {
        if self.corked.get() {
            return;
        }
        {
            let mut dirty = self.dirty.borrow_mut();
            if let Some(ring) = &self.ring {
                for io in dirty.drain(..) {
                    ring.start(&io);
                }
                ring.submit();
            } else {
                for io in dirty.drain(..) {
                    self.send_now(&io);
                }
            }
        }
        // The broadcasts are in the sockets' hands (or the ring's): their latency ends here.
        let mut delivered = self.delivered.borrow_mut();
        if !delivered.is_empty() {
            let now = self.now();
            let mut hub = self.hub.borrow_mut();
            for received in delivered.drain(..) {
                hub.handle_delivered(now, received);
            }
        }
    }

    /// Writes straight to the socket (no send ring), watching for writability while
    /// part is left, and notes a written notice that came due.
    fn send_now(&self, io: &Rc<ConnIo>) {
        io.send_now();
        self.watch_writes(io);
        if io.take_written_notice() {
            self.written.borrow_mut().push(io.conn());
        }
    }

    /// Hands the hub the written notices that came due; what it sends in answer may make
    /// more come due, so until none is left. Re-entrant calls leave it to the outer one.
    fn deliver_written_notices(&self) {
        if self.notifying.replace(true) {
            return;
        }
        loop {
            let due = std::mem::take(&mut *self.written.borrow_mut());
            if due.is_empty() {
                break;
            }
            let now = self.now();
            {
                let mut hub = self.hub.borrow_mut();
                for conn in due {
                    hub.handle_written(now, conn);
                }
            }
            self.drain(now);
        }
        self.notifying.set(false);
    }

    /// Asks the hubs a question; resolves when every worker involved has answered, or
    /// with `None` after [`QUERY_TIMEOUT`].
    pub async fn query(&self, query: Query) -> Option<Answer> {
        let id = self.next_query.get();
        self.next_query.set(id + 1);
        let (tx, rx) = oneshot::channel();
        self.queries.borrow_mut().insert(id, tx);
        self.with_hub(|hub, now| hub.handle_query(now, QueryId(id), query));
        match monoio::time::timeout(QUERY_TIMEOUT, rx).await {
            Ok(Ok(answer)) => Some(answer),
            _ => {
                // A worker did not answer (wedged, or overloaded past reason): the HTTP
                // client gets a 503 instead of waiting forever. A late answer is dropped.
                self.queries.borrow_mut().remove(&id);
                None
            }
        }
    }

    /// The merged analytics snapshot, with the persistence figures when a store runs.
    pub async fn snapshot(&self) -> Option<Box<hubbub_core::Snapshot>> {
        match self.query(Query::Stats).await? {
            Answer::Stats(mut snapshot) => {
                if let Some(bridge) = &self.shared.store {
                    snapshot.persistence = bridge.stats();
                }
                Some(snapshot)
            }
            _ => None,
        }
    }

    /// Carries out the hub's outputs until it has nothing more to say.
    pub fn drain(&self, now: Now) {
        let mut slow: Vec<(ConnId, usize)> = Vec::new();
        loop {
            let out = self.hub.borrow_mut().poll_output();
            match out {
                Output::Deliver {
                    frame,
                    to,
                    received,
                } => {
                    let wire = wire::text(&frame);
                    let sessions = self.sessions.borrow();
                    for &conn in to.iter() {
                        self.push(&sessions, conn, &wire, &mut slow);
                    }
                    if let Some(received) = received {
                        self.delivered.borrow_mut().push(received);
                    }
                }
                Output::NotifyWritten { conn } => {
                    if let Some(session) = lookup(&self.sessions.borrow(), conn) {
                        session.io().notify_when_written();
                    }
                }
                Output::Send { conn, frame } => self.push(
                    &self.sessions.borrow(),
                    conn,
                    &wire::text(&frame),
                    &mut slow,
                ),
                Output::Ping { conn } => {
                    self.push(&self.sessions.borrow(), conn, &self.ping, &mut slow)
                }
                Output::Close { conn, code, reason } => {
                    if let Some(session) = lookup(&self.sessions.borrow(), conn) {
                        self.queue_close(session.io(), wire::close(code, reason));
                    }
                }
                Output::Peer { to, event } => self.mesh.borrow_mut().send(to, event),
                Output::Reply { id, answer } => {
                    if let Some(tx) = self.queries.borrow_mut().remove(&id.0) {
                        let _ = tx.send(answer);
                    }
                }
                Output::LoadRoom { room, recent } => {
                    if let (Some(bridge), Some(me)) = (&self.shared.store, self.me.upgrade()) {
                        monoio::spawn(crate::store::load_room(me, bridge.clone(), room, recent));
                    }
                }
                Output::Timeout(_) => {
                    if slow.is_empty() {
                        break;
                    }
                    let mut hub = self.hub.borrow_mut();
                    for (conn, bytes) in slow.drain(..) {
                        hub.handle_queued(now, conn, bytes);
                    }
                }
                _ => {}
            }
        }
        self.flush();
        self.deliver_written_notices();
    }

    /// Queues `wire` for `conn`; a backlog past the bound is noted in `slow`.
    fn push(
        &self,
        sessions: &Sessions,
        conn: ConnId,
        wire: &Bytes,
        slow: &mut Vec<(ConnId, usize)>,
    ) {
        if let Some(io) = lookup(sessions, conn).map(sessions::Session::io) {
            let queued = self.queue(io, wire.clone());
            // Only a backlog past the bound goes to the hub, which decides and counts;
            // below it there is nothing to decide, so the hot path makes no call per
            // recipient.
            if queued > self.max_queued {
                slow.push((conn, queued));
            }
        }
    }

    /// Handles mail from the other workers until told to shut down.
    async fn inbox_loop(self: Rc<Self>, stop: oneshot::Sender<()>, mut end: End) {
        let mut stop = Some(stop);
        loop {
            let overflow = self.mesh.borrow().has_overflow();
            let watch_shutdown = stop.is_some();
            if overflow {
                let wait = self.shared.mesh.wait(self.id, watch_shutdown);
                let wait = monoio::time::timeout(Duration::from_micros(200), wait);
                if until(wait, &mut end).await.is_none() {
                    return;
                }
                self.mesh.borrow_mut().retry_overflow();
            } else if until(self.shared.mesh.wait(self.id, watch_shutdown), &mut end)
                .await
                .is_none()
            {
                return;
            }
            let now = self.now();
            {
                let mesh = self.mesh.borrow();
                let mut hub = self.hub.borrow_mut();
                mesh.drain(4096, |event| hub.handle_peer(now, event));
            }
            self.drain(now);
            if self.mesh.borrow().shutdown_requested() {
                if let Some(tx) = stop.take() {
                    let _ = tx.send(());
                }
            }
        }
    }

    /// Ticks the hub's timers (pings, idle closes, minute windows).
    async fn timer_loop(self: Rc<Self>, mut end: End) {
        let mut ticks: u32 = 0;
        loop {
            let tick = monoio::time::sleep(Duration::from_millis(250));
            if until(tick, &mut end).await.is_none() {
                return;
            }
            ticks = ticks.wrapping_add(1);
            if ticks.is_multiple_of(4) {
                // Hand pages freed by closed connections back to the OS: without this an
                // idle server keeps them until its next allocation burst.
                // SAFETY: mi_collect takes no pointers and only tidies this thread's heap.
                unsafe { libmimalloc_sys::mi_collect(false) };
            }
            self.closing.expire(Instant::now());
            self.sample_figures();
            let storage = self.shared.store.as_ref().map(|b| b.status());
            self.with_hub(|hub, now| {
                if let Some(status) = storage {
                    hub.set_storage_status(status);
                }
                hub.handle_timeout(now)
            });
        }
    }

    /// Publishes this worker's queue figures for `/metrics`.
    fn sample_figures(&self) {
        let Some(figures) = self.shared.figures.workers.get(self.id.index()) else {
            return;
        };
        let queued: usize = self
            .sessions
            .borrow()
            .iter()
            .flatten()
            .map(|s| s.io().queued())
            .sum();
        figures.queued_bytes.store(queued as u64, Relaxed);
        let backlog = self.mesh.borrow().backlog();
        figures.mesh_backlog.store(backlog as u64, Relaxed);
    }

    /// Accepts connections until shutdown, then closes them all (1001) and waits for
    /// them to go, at most the grace period.
    pub async fn run(self: Rc<Self>, listener: TcpListener) {
        let (stop_tx, mut stop_rx) = oneshot::channel();
        // The worker's own tasks end with `run`, so that the worker (and what it shares,
        // such as the persistence bridge) is released when its thread ends.
        let (end_inbox, inbox_end) = oneshot::channel();
        let (end_timer, timer_end) = oneshot::channel();
        let (end_reactor, reactor_end) = oneshot::channel();
        let tasks = [
            monoio::spawn(self.clone().inbox_loop(stop_tx, inbox_end)),
            monoio::spawn(self.clone().timer_loop(timer_end)),
            monoio::spawn(self.clone().reactor(reactor_end)),
        ];
        let mut accept_errors = AcceptErrors::default();
        loop {
            monoio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        let _ = stream.set_nodelay(true);
                        monoio::spawn(crate::conn::serve(self.clone(), stream));
                    }
                    Err(e) => {
                        accept_errors.failed(self.id, &e, Instant::now());
                        // Out of descriptors (EMFILE) clears only as connections close:
                        // waiting a while keeps the worker from spinning on it.
                        monoio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                _ = &mut stop_rx => break,
            }
        }
        drop(listener);
        self.with_hub(|hub, now| hub.begin_shutdown(now));
        let grace = Duration::from_secs(u64::from(self.shared.config.shutdown_grace_secs));
        let deadline = Instant::now() + grace;
        while self.hub.borrow().connections() > 0 && Instant::now() < deadline {
            monoio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.hub.borrow().connections();
        if left > 0 {
            tracing::warn!(
                worker = self.id.0,
                connections = left,
                "shutdown grace ran out"
            );
        }
        for end in [end_inbox, end_timer, end_reactor] {
            let _ = end.send(());
        }
        for task in tasks {
            task.await;
        }
    }
}

/// 64 bits from the kernel's random source, for the random bits of message and client
/// ids: anything derived from the start time or the pid would let one guess them.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // std keys every `RandomState` from the OS's random source (getrandom(2)): no
    // unsafe call of our own, and no fallback that would be guessable.
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// How long the accept loop waits after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// At most one warning about failed accepts per this long; the rest are counted.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(5);

/// Failed accepts, logged at most once per [`ACCEPT_WARN_EVERY`] with how many there were
/// since the last warning (out of descriptors, an accept fails every time it is tried).
#[derive(Debug, Default)]
struct AcceptErrors {
    next_warning: Option<Instant>,
    since_warning: u64,
}

impl AcceptErrors {
    /// Notes a failure at `now`; returns whether it was logged.
    fn failed(&mut self, worker: WorkerId, error: &std::io::Error, now: Instant) -> bool {
        self.since_warning += 1;
        if self.next_warning.is_some_and(|t| now < t) {
            return false;
        }
        tracing::warn!(
            worker = worker.0,
            %error,
            failures = self.since_warning,
            "accept failed (repeats are counted, and logged at most every 5 s)"
        );
        self.since_warning = 0;
        self.next_warning = Some(now + ACCEPT_WARN_EVERY);
        true
    }
}

/// How long an HTTP question waits for every worker's part of the answer.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Tells one of the worker's tasks to end.
type End = oneshot::Receiver<()>;

/// Runs `f` unless `end` fires first (then `None`).
async fn until<F: std::future::Future>(f: F, end: &mut End) -> Option<F::Output> {
    monoio::select! {
        out = f => Some(out),
        _ = end => None,
    }
}

/// Binds worker `id`'s listener (with `SO_REUSEPORT`, so every worker has its own).
pub fn bind(config: &Config) -> std::io::Result<TcpListener> {
    let addr = std::net::SocketAddr::new(config.bind, config.port);
    TcpListener::bind_with_config(addr, &ListenerOpts::new().reuse_port(true).backlog(4096))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn id_seeds_are_random_not_derived_from_the_start() {
        let seeds: std::collections::HashSet<u64> = (0..8).map(|_| random_seed()).collect();
        assert_eq!(seeds.len(), 8, "eight draws, eight seeds");
    }

    #[test]
    fn failed_accepts_warn_once_per_interval() {
        let mut errors = AcceptErrors::default();
        let e = std::io::Error::from_raw_os_error(libc::EMFILE);
        let t0 = Instant::now();
        assert!(errors.failed(WorkerId(0), &e, t0), "the first is logged");
        let logged = (1..100)
            .filter(|i| errors.failed(WorkerId(0), &e, t0 + Duration::from_millis(10 * i)))
            .count();
        assert_eq!(
            logged, 0,
            "a second of failures every 10 ms: counted, not logged"
        );
        assert!(errors.failed(WorkerId(0), &e, t0 + ACCEPT_WARN_EVERY));
        assert_eq!(errors.since_warning, 0);
    }

    #[test]
    fn a_question_a_worker_never_answers_times_out() {
        let config = Config::parse_from(["hubbub"]);
        let origins = config.origins().unwrap();
        // Two workers in the mesh, but only the first ever runs.
        let shared = Arc::new(Shared {
            origins,
            gauge: hubbub_core::ConnectionGauge::new(10),
            static_files: StaticFiles::new(None),
            epoch: Instant::now(),
            started_at: UnixMillis(1_795_257_000_000),
            mesh: Mesh::new(2, 16),
            workers: 2,
            store: None,
            figures: crate::figures::ServerFigures::new(2),
            config,
        });
        let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            let worker = Worker::new(WorkerId(0), shared).unwrap();
            let started = Instant::now();
            assert!(worker.query(Query::Stats).await.is_none());
            let waited = started.elapsed();
            assert!(
                waited >= QUERY_TIMEOUT && waited < QUERY_TIMEOUT * 2,
                "{waited:?}"
            );
            assert!(worker.queries.borrow().is_empty(), "nothing left waiting");
        });
    }
}
