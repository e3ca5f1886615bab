//! The top of the server: binds, starts the store and one worker thread per core, wires
//! each worker's engine to its listener and the HTTP side, waits for SIGTERM/SIGINT, then
//! shuts everything down within the grace period. The only module that sees all others.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context as _};
use hubbub_core::{ConnectionGauge, HubConfig, PeerEvent, RateLimit, UnixMillis, WorkerId};
use monoio::net::{ListenerOpts, TcpListener};

use crate::config::Config;
use crate::engine::mesh::Mesh;
use crate::engine::{Engine, Host, NoStore, Parts};
use crate::figures::ServerFigures;
use crate::http::static_files::StaticFiles;
use crate::http::{self, Site};
use crate::store::StoreHost;

/// Events queued between one pair of workers before the sender overflows locally.
const MESH_QUEUE: usize = 64 * 1024;
/// File descriptors kept free for listeners, files and the runtime itself.
const FD_RESERVE: u64 = 128;
/// How long the accept loop waits after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// At most one warning about failed accepts per this long; the rest are counted.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(5);

/// What every worker thread starts from.
struct Process {
    config: Config,
    site: Arc<Site>,
    mesh: Arc<Mesh<PeerEvent>>,
    epoch: Instant,
    started_at: UnixMillis,
    workers: u16,
}

/// Runs the server until a signal stops it.
pub fn run(config: Config) -> anyhow::Result<()> {
    let workers = config.worker_count();
    let max_connections = match config.max_connections {
        Some(n) => n as usize,
        None => default_max_connections(),
    };
    let origins = config.origins()?;
    let api_key = config.api_key()?;
    let auth = Arc::new(config.authenticator()?);
    let cors = config.cors_origins(auth.is_enabled())?;
    let addr = std::net::SocketAddr::new(config.bind, config.port);
    // SO_REUSEPORT would silently share the port with a stale server: a plain bind first
    // turns "address in use" into a clear error.
    drop(std::net::TcpListener::bind(addr).with_context(|| {
        format!(
            "cannot listen on {addr}: is another server using PORT={}?",
            config.port
        )
    })?);
    if let Some(dir) = &config.static_dir {
        if !dir.join("index.html").exists() {
            bail!("STATIC_DIR={} has no index.html", dir.display());
        }
    }
    let store = crate::store::start(&config)?;
    let accounts = crate::accounts::start(&config, store.as_ref())?;
    let search = crate::search::start(&config)?;
    let files = crate::files::start(&config)?;
    let site = Arc::new(Site {
        origins,
        gauge: ConnectionGauge::new(max_connections),
        static_files: StaticFiles::new(config.static_dir.clone()),
        figures: Arc::new(ServerFigures::new(workers)),
        store,
        api_key,
        auth,
        cors,
        accounts,
        search,
        files,
    });
    if config.search_rebuild {
        if let (Some(index), Some(bridge)) = (&site.search, &site.store) {
            crate::search::rebuild(index.clone(), bridge.clone())?;
        }
    }
    let process = Arc::new(Process {
        site,
        mesh: Mesh::new(workers as usize, MESH_QUEUE),
        epoch: Instant::now(),
        started_at: UnixMillis(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        ),
        workers,
        config,
    });
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = process.config.pin_workers && cpus >= workers as usize;
    let (ready_tx, ready_rx) = mpsc::channel::<Result<bool, String>>();
    let mut handles = Vec::new();
    for id in 0..workers {
        let process = process.clone();
        let ready = ready_tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("hubbub-worker-{id}"))
            .spawn(move || worker_thread(WorkerId(id), process, pin, ready))
            .context("cannot start a worker thread")?;
        handles.push(handle);
    }
    drop(ready_tx);
    let mut legacy = false;
    for _ in 0..workers {
        match ready_rx.recv() {
            Ok(Ok(is_legacy)) => legacy |= is_legacy,
            Ok(Err(e)) => {
                process.mesh.shutdown_all();
                bail!("a worker could not start: {e}");
            }
            Err(_) => bail!("a worker exited during start-up"),
        }
    }
    tracing::info!(
        %addr,
        workers,
        pinned = pin,
        driver = if legacy { "epoll" } else { "io_uring" },
        max_connections,
        dashboard = process.site.static_files.describe(),
        files = crate::files::describe(process.site.files.as_ref()),
        "hubbub listening"
    );
    wait_for_signal()?;
    process.mesh.shutdown_all();
    // One budget for the whole shutdown: closing connections, then draining persistence.
    let signalled = Instant::now();
    tracing::info!("shutting down: closing connections");
    let budget = Duration::from_secs(u64::from(process.config.shutdown_grace_secs));
    let deadline = Instant::now() + budget + Duration::from_secs(1);
    for h in handles {
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if h.is_finished() {
            let _ = h.join();
        }
    }
    if let Some(bridge) = &process.site.store {
        let left = budget
            .saturating_sub(signalled.elapsed())
            .max(Duration::from_secs(1));
        crate::store::shutdown(bridge, left);
    }
    if let Some(search) = &process.site.search {
        search.shutdown();
    }
    tracing::info!("stopped");
    Ok(())
}

fn worker_thread(
    id: WorkerId,
    process: Arc<Process>,
    pin: bool,
    ready: mpsc::Sender<Result<bool, String>>,
) {
    if pin {
        if let Err(e) = monoio::utils::bind_to_cpu_set([id.index()]) {
            tracing::warn!(worker = id.0, error = ?e, "could not pin worker to its CPU");
        }
    }
    if process.config.io_uring {
        match monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .with_entries(4096)
            .build()
        {
            Ok(mut rt) => rt.block_on(worker(id, process, ready)),
            Err(e) => {
                let _ = ready.send(Err(format!("runtime: {e}")));
            }
        }
    } else {
        match monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
        {
            Ok(mut rt) => rt.block_on(worker(id, process, ready)),
            Err(e) => {
                let _ = ready.send(Err(format!("runtime: {e}")));
            }
        }
    }
}

/// A worker's life inside its runtime: its listener, its engine, its accept loop; at
/// the mesh's word, the engine's shutdown.
async fn worker(id: WorkerId, process: Arc<Process>, ready: mpsc::Sender<Result<bool, String>>) {
    let listener = match bind(&process.config) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(format!("listen: {e}")));
            return;
        }
    };
    let site = process.site.clone();
    let host: Box<dyn Host> = match &site.store {
        Some(bridge) => Box::new(StoreHost(bridge.clone())),
        None => Box::new(NoStore),
    };
    let host: Box<dyn Host> = match &site.files {
        Some(files) => Box::new(crate::files::FilesHost {
            inner: host,
            files: files.clone(),
        }),
        None => host,
    };
    let reject = process.config.persist_overflow == crate::config::Overflow::Reject;
    let persist = crate::search::AcceptedSink::boxed(
        site.search.as_ref(),
        site.store.as_ref().map(|b| b.sink()),
        reject,
    );
    let engine = Engine::new(Parts {
        hub: hub_config(&process, id),
        gauge: site.gauge.clone(),
        persist,
        host,
        mesh: process.mesh.clone(),
        epoch: process.epoch,
        figures: site.figures.clone(),
        shared: None,
    });
    let engine = match engine {
        Ok(e) => e,
        Err(e) => {
            let _ = ready.send(Err(format!("readiness set (epoll): {e}")));
            return;
        }
    };
    let _ = ready.send(Ok(monoio::utils::is_legacy()));
    let mut running = engine.start();
    let ctx = http::Context {
        site,
        engine: engine.handle(),
    };
    let mut accept_errors = AcceptErrors::default();
    loop {
        monoio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let peer = Some(peer.ip());
                    monoio::spawn(http::connection::serve(ctx.clone(), stream, peer));
                }
                Err(e) => {
                    accept_errors.failed(id, &e, Instant::now());
                    // Out of descriptors (EMFILE) clears only as connections close:
                    // waiting a while keeps the worker from spinning on it.
                    monoio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            _ = &mut running.stop => break,
        }
    }
    drop(listener);
    let grace = Duration::from_secs(u64::from(process.config.shutdown_grace_secs));
    running.shutdown(grace).await;
}

/// The hub settings for worker `id`.
fn hub_config(process: &Process, id: WorkerId) -> HubConfig {
    let c = &process.config;
    let mut h = HubConfig::new(id, process.workers);
    h.history_size = c.history_size as usize;
    h.max_history_bytes = usize::try_from(c.max_history_bytes).unwrap_or(usize::MAX);
    h.backlog_size = c.backlog_size as usize;
    h.max_idle_rooms = c.max_idle_rooms as usize;
    h.rate_limit = RateLimit {
        per_sec: c.rate_limit_per_sec,
        burst: c.rate_limit_burst,
    };
    h.auth = process.site.auth.clone();
    h.allowed_origins = process.site.origins.clone();
    h.presence = c.presence;
    h.presence_max_members = c.presence_max_members as usize;
    h.max_subscriptions = c.max_subscriptions as usize;
    h.presence_interval = Duration::from_millis(u64::from(c.presence_interval_ms));
    h.node = Arc::from(c.node_id.as_str());
    h.max_queued_bytes = c.max_queued_bytes as usize;
    h.idle_timeout = Duration::from_secs(u64::from(c.idle_timeout_secs));
    h.ping_after = h.idle_timeout / 2;
    h.sweep_every = (h.idle_timeout / 12).max(Duration::from_millis(200));
    h.overflow = c.overflow();
    h.started_at = process.started_at;
    h.seed = random_seed();
    h.durable = process.site.store.is_some();
    h
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

/// Binds a worker's listener (with `SO_REUSEPORT`, so every worker has its own).
fn bind(config: &Config) -> std::io::Result<TcpListener> {
    let addr = std::net::SocketAddr::new(config.bind, config.port);
    TcpListener::bind_with_config(addr, &ListenerOpts::new().reuse_port(true).backlog(4096))
}

fn wait_for_signal() -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .context("cannot install signal handlers")?;
    if let Some(sig) = signals.forever().next() {
        tracing::info!(signal = sig, "signal received");
    }
    Ok(())
}

/// The open-file limit less a reserve: each connection holds one descriptor.
fn default_max_connections() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the valid, exclusively borrowed struct
    // passed to it and has no other effect.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return 1_000_000;
    }
    limit.rlim_cur.saturating_sub(FD_RESERVE).max(16) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_connections_follow_the_fd_limit() {
        let n = default_max_connections();
        assert!(n >= 16);
    }

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
}
