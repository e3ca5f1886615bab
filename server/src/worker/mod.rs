//! A worker: one pinned thread, one monoio runtime, one hub, one `SO_REUSEPORT` listener.
//! Connections live their whole life on the worker that accepted them.

pub mod connio;
pub mod mesh;
mod wire;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
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
use mesh::{Endpoint, Mesh};

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
}

impl Shared {
    /// The hub settings for worker `id`.
    pub fn hub_config(&self, id: WorkerId) -> HubConfig {
        let c = &self.config;
        let mut h = HubConfig::new(id, self.workers);
        h.history_size = c.history_size as usize;
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
        h.seed = self.started_at.0 ^ (std::process::id() as u64) << 32;
        h.durable = self.store.is_some();
        h
    }
}

/// Outbound queues by the hub's dense connection index; the id tells a reused slot apart.
type ConnTable = Vec<Option<(ConnId, Rc<ConnIo>)>>;

/// One worker's state, shared by its tasks (all on one thread).
pub struct Worker {
    /// This worker.
    pub id: WorkerId,
    /// Process-wide settings.
    pub shared: Arc<Shared>,
    hub: RefCell<Hub>,
    conns: RefCell<ConnTable>,
    mesh: RefCell<Endpoint<PeerEvent>>,
    queries: RefCell<HashMap<u64, oneshot::Sender<Answer>>>,
    next_query: Cell<u64>,
    ping: Bytes,
    max_queued: usize,
    /// Ourselves, to spawn tasks from `drain` (which only has `&self`).
    me: std::rc::Weak<Worker>,
}

impl Worker {
    /// A worker with an empty hub.
    pub fn new(id: WorkerId, shared: Arc<Shared>) -> Rc<Worker> {
        let mut hub = Hub::new(shared.hub_config(id), shared.gauge.clone());
        if let Some(bridge) = &shared.store {
            hub.set_persist_sink(Box::new(bridge.sink()));
            hub.set_storage_status(bridge.status());
        }
        Rc::new_cyclic(|me| Worker {
            me: me.clone(),
            id,
            mesh: RefCell::new(Endpoint::new(shared.mesh.clone(), id)),
            hub: RefCell::new(hub),
            conns: RefCell::new(Vec::new()),
            queries: RefCell::new(HashMap::new()),
            next_query: Cell::new(0),
            ping: wire::ping(),
            max_queued: shared.config.max_queued_bytes as usize,
            shared,
        })
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

    /// Registers the outbound queue of a connection the hub just opened.
    pub fn attach(&self, conn: ConnId, io: Rc<ConnIo>) {
        let mut conns = self.conns.borrow_mut();
        if conns.len() <= conn.index() {
            conns.resize_with(conn.index() + 1, || None);
        }
        conns[conn.index()] = Some((conn, io));
    }

    /// Forgets a connection's outbound queue.
    pub fn detach(&self, conn: ConnId) {
        if let Some(slot) = self.conns.borrow_mut().get_mut(conn.index()) {
            if slot.as_ref().is_some_and(|(id, _)| *id == conn) {
                *slot = None;
            }
        }
    }

    /// Asks the hubs a question; resolves when every worker involved has answered.
    pub async fn query(&self, query: Query) -> Option<Answer> {
        let id = self.next_query.get();
        self.next_query.set(id + 1);
        let (tx, rx) = oneshot::channel();
        self.queries.borrow_mut().insert(id, tx);
        self.with_hub(|hub, now| hub.handle_query(now, QueryId(id), query));
        rx.await.ok()
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
                Output::Deliver { frame, to } => {
                    let wire = wire::text(&frame);
                    let conns = self.conns.borrow();
                    for &conn in to.iter() {
                        push(&conns, conn, &wire, self.max_queued, &mut slow);
                    }
                }
                Output::Send { conn, frame } => push(
                    &self.conns.borrow(),
                    conn,
                    &wire::text(&frame),
                    self.max_queued,
                    &mut slow,
                ),
                Output::Ping { conn } => push(
                    &self.conns.borrow(),
                    conn,
                    &self.ping,
                    self.max_queued,
                    &mut slow,
                ),
                Output::Close { conn, code, reason } => {
                    if let Some(io) = lookup(&self.conns.borrow(), conn) {
                        io.close(wire::close(code, reason));
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
    }

    /// Handles mail from the other workers until told to shut down.
    async fn inbox_loop(self: Rc<Self>, stop: oneshot::Sender<()>) {
        let mut stop = Some(stop);
        loop {
            let overflow = self.mesh.borrow().has_overflow();
            let watch_shutdown = stop.is_some();
            if overflow {
                let wait = self.shared.mesh.wait(self.id, watch_shutdown);
                let _ = monoio::time::timeout(Duration::from_micros(200), wait).await;
                self.mesh.borrow_mut().retry_overflow();
            } else {
                self.shared.mesh.wait(self.id, watch_shutdown).await;
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
    async fn timer_loop(self: Rc<Self>) {
        loop {
            monoio::time::sleep(Duration::from_millis(250)).await;
            let storage = self.shared.store.as_ref().map(|b| b.status());
            self.with_hub(|hub, now| {
                if let Some(status) = storage {
                    hub.set_storage_status(status);
                }
                hub.handle_timeout(now)
            });
        }
    }

    /// Accepts connections until shutdown, then closes them all (1001) and waits for
    /// them to go, at most the grace period.
    pub async fn run(self: Rc<Self>, listener: TcpListener) {
        let (stop_tx, mut stop_rx) = oneshot::channel();
        monoio::spawn(self.clone().inbox_loop(stop_tx));
        monoio::spawn(self.clone().timer_loop());
        loop {
            monoio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        let _ = stream.set_nodelay(true);
                        monoio::spawn(crate::conn::serve(self.clone(), stream));
                    }
                    Err(e) => {
                        tracing::warn!(worker = self.id.0, error = %e, "accept failed");
                        monoio::time::sleep(Duration::from_millis(10)).await;
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
    }
}

fn lookup(conns: &ConnTable, conn: ConnId) -> Option<&Rc<ConnIo>> {
    match conns.get(conn.index()) {
        Some(Some((id, io))) if *id == conn => Some(io),
        _ => None,
    }
}

fn push(
    conns: &ConnTable,
    conn: ConnId,
    wire: &Bytes,
    max_queued: usize,
    slow: &mut Vec<(ConnId, usize)>,
) {
    if let Some(io) = lookup(conns, conn) {
        let queued = io.push(wire.clone());
        // Only a backlog past the bound goes to the hub, which decides and counts; below
        // it there is nothing to decide, so the hot path makes no call per recipient.
        if queued > max_queued {
            slow.push((conn, queued));
        }
    }
}

/// Binds worker `id`'s listener (with `SO_REUSEPORT`, so every worker has its own).
pub fn bind(config: &Config) -> std::io::Result<TcpListener> {
    let addr = std::net::SocketAddr::new(config.bind, config.port);
    TcpListener::bind_with_config(addr, &ListenerOpts::new().reuse_port(true).backlog(4096))
}
