//! Start and stop: binds, starts one worker thread per core, waits for SIGTERM/SIGINT,
//! then shuts the workers down within the grace period.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use hubbub_core::{ConnectionGauge, UnixMillis, WorkerId};

use crate::config::Config;
use crate::http::static_files::StaticFiles;
use crate::worker::mesh::Mesh;
use crate::worker::{self, Shared, Worker};

/// Events queued between one pair of workers before the sender overflows locally.
const MESH_QUEUE: usize = 64 * 1024;
/// File descriptors kept free for listeners, files and the runtime itself.
const FD_RESERVE: u64 = 128;

/// Runs the server until a signal stops it.
pub fn run(config: Config) -> anyhow::Result<()> {
    let workers = config.worker_count();
    let max_connections = match config.max_connections {
        Some(n) => n as usize,
        None => default_max_connections(),
    };
    let origins = config.origins()?;
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
    let started_at = UnixMillis(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    );
    let shared = Arc::new(Shared {
        origins,
        gauge: ConnectionGauge::new(max_connections),
        static_files: StaticFiles::new(config.static_dir.clone()),
        epoch: Instant::now(),
        started_at,
        mesh: Mesh::new(workers as usize, MESH_QUEUE),
        workers,
        store,
        figures: crate::figures::ServerFigures::new(workers),
        config,
    });
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = shared.config.pin_workers && cpus >= workers as usize;
    let (ready_tx, ready_rx) = mpsc::channel::<Result<bool, String>>();
    let mut handles = Vec::new();
    for id in 0..workers {
        let shared = shared.clone();
        let ready = ready_tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("hubbub-worker-{id}"))
            .spawn(move || worker_thread(WorkerId(id), shared, pin, ready))
            .context("cannot start a worker thread")?;
        handles.push(handle);
    }
    drop(ready_tx);
    let mut legacy = false;
    for _ in 0..workers {
        match ready_rx.recv() {
            Ok(Ok(is_legacy)) => legacy |= is_legacy,
            Ok(Err(e)) => {
                shared.mesh.shutdown_all();
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
        dashboard = shared.static_files.describe(),
        "hubbub listening"
    );
    wait_for_signal(&shared)?;
    // One budget for the whole shutdown: closing connections, then draining persistence.
    let signalled = Instant::now();
    tracing::info!("shutting down: closing connections");
    let grace =
        Duration::from_secs(u64::from(shared.config.shutdown_grace_secs)) + Duration::from_secs(1);
    let deadline = Instant::now() + grace;
    for h in handles {
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if h.is_finished() {
            let _ = h.join();
        }
    }
    let store = shared.store.clone();
    let budget = Duration::from_secs(u64::from(shared.config.shutdown_grace_secs));
    drop(shared);
    if let Some(bridge) = store {
        let left = budget
            .saturating_sub(signalled.elapsed())
            .max(Duration::from_secs(1));
        crate::store::shutdown(&bridge, left);
    }
    tracing::info!("stopped");
    Ok(())
}

fn worker_thread(
    id: WorkerId,
    shared: Arc<Shared>,
    pin: bool,
    ready: mpsc::Sender<Result<bool, String>>,
) {
    if pin {
        if let Err(e) = monoio::utils::bind_to_cpu_set([id.index()]) {
            tracing::warn!(worker = id.0, error = ?e, "could not pin worker to its CPU");
        }
    }
    if shared.config.io_uring {
        match monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .with_entries(4096)
            .build()
        {
            Ok(mut rt) => rt.block_on(serve(id, shared, ready)),
            Err(e) => {
                let _ = ready.send(Err(format!("runtime: {e}")));
            }
        }
    } else {
        match monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
        {
            Ok(mut rt) => rt.block_on(serve(id, shared, ready)),
            Err(e) => {
                let _ = ready.send(Err(format!("runtime: {e}")));
            }
        }
    }
}

/// A worker's life inside its runtime.
async fn serve(id: WorkerId, shared: Arc<Shared>, ready: mpsc::Sender<Result<bool, String>>) {
    let listener = match worker::bind(&shared.config) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(format!("listen: {e}")));
            return;
        }
    };
    let worker = match Worker::new(id, shared) {
        Ok(w) => w,
        Err(e) => {
            let _ = ready.send(Err(format!("readiness set (epoll): {e}")));
            return;
        }
    };
    let _ = ready.send(Ok(monoio::utils::is_legacy()));
    worker.run(listener).await;
}

fn wait_for_signal(shared: &Arc<Shared>) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .context("cannot install signal handlers")?;
    if let Some(sig) = signals.forever().next() {
        tracing::info!(signal = sig, "signal received");
    }
    shared.mesh.shutdown_all();
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
    #[test]
    fn max_connections_follow_the_fd_limit() {
        let n = super::default_max_connections();
        assert!(n >= 16);
    }
}
