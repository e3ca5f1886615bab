//! The engine's own tasks beside the reactor: the mesh inbox and the timer; how they
//! start, and how the engine shuts down.

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use futures_channel::oneshot;

use super::Engine;

/// Sequencer events handled before one drain.
const SHARED_BATCH: usize = 1024;

/// Tells one of the engine's tasks to end.
pub(super) type End = oneshot::Receiver<()>;

/// Runs `f` unless `end` fires first (then `None`).
pub(super) async fn until<F: std::future::Future>(f: F, end: &mut End) -> Option<F::Output> {
    monoio::select! {
        out = f => Some(out),
        _ = end => None,
    }
}

/// A started engine: its tasks, and word from the mesh that the process is shutting down.
pub(crate) struct Running {
    engine: Rc<Engine>,
    /// Fires once every worker has been told to shut down.
    pub(crate) stop: oneshot::Receiver<()>,
    ends: Vec<oneshot::Sender<()>>,
    tasks: Vec<monoio::task::JoinHandle<()>>,
}

impl Engine {
    /// Starts the reactor, the mesh inbox and the timer on this worker's runtime.
    pub(crate) fn start(self: &Rc<Self>) -> Running {
        let (stop_tx, stop) = oneshot::channel();
        // The tasks end with `Running::shutdown`, so that the engine (and what it
        // holds) is released when its thread ends.
        let (end_inbox, inbox_end) = oneshot::channel();
        let (end_timer, timer_end) = oneshot::channel();
        let (end_reactor, reactor_end) = oneshot::channel();
        let mut tasks = vec![
            monoio::spawn(self.clone().inbox_loop(stop_tx, inbox_end)),
            monoio::spawn(self.clone().timer_loop(timer_end)),
            monoio::spawn(self.clone().reactor(reactor_end)),
        ];
        let mut ends = vec![end_inbox, end_timer, end_reactor];
        if let Some(events) = self.shared.borrow_mut().take() {
            let (end_shared, shared_end) = oneshot::channel();
            tasks.push(monoio::spawn(self.clone().shared_loop(events, shared_end)));
            ends.push(end_shared);
        }
        Running {
            engine: self.clone(),
            stop,
            ends,
            tasks,
        }
    }

    /// Handles mail from the other workers until told to end.
    async fn inbox_loop(self: Rc<Self>, stop: oneshot::Sender<()>, mut end: End) {
        let mut stop = Some(stop);
        loop {
            let overflow = self.mesh.borrow().has_overflow();
            let watch_shutdown = stop.is_some();
            if overflow {
                let wait = self.mesh_queues.wait(self.id, watch_shutdown);
                let wait = monoio::time::timeout(Duration::from_micros(200), wait);
                if until(wait, &mut end).await.is_none() {
                    return;
                }
                self.mesh.borrow_mut().retry_overflow();
            } else if until(self.mesh_queues.wait(self.id, watch_shutdown), &mut end)
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

    /// Hands the sequencer's events to the hub until told to end (or the broker's
    /// thread is gone): what has arrived together is handled before one drain.
    async fn shared_loop(self: Rc<Self>, mut events: super::SharedEvents, mut end: End) {
        use futures_util::StreamExt;
        loop {
            let Some(Some(first)) = until(events.next(), &mut end).await else {
                return;
            };
            let now = self.now();
            {
                let mut hub = self.hub.borrow_mut();
                hub.handle_sequencer_event(now, first);
                for _ in 0..SHARED_BATCH {
                    match events.try_recv() {
                        Ok(event) => hub.handle_sequencer_event(now, event),
                        _ => break,
                    }
                }
            }
            self.drain(now);
        }
    }

    /// Ticks the hub's timers (pings, idle closes, minute windows) and the engine's own
    /// (close deadlines, the allocator, the figures).
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
            self.with_hub(|hub, now| hub.handle_timeout(now));
        }
    }

    /// Publishes this worker's queue figures for `/metrics`.
    fn sample_figures(&self) {
        let Some(figures) = self.figures.workers.get(self.id.index()) else {
            return;
        };
        figures
            .queued_bytes
            .store(self.queued_bytes() as u64, Relaxed);
        let backlog = self.mesh.borrow().backlog();
        figures.mesh_backlog.store(backlog as u64, Relaxed);
    }
}

impl Running {
    /// Closes every connection (1001) and waits for them to go, at most `grace`; then
    /// ends the engine's tasks.
    pub(crate) async fn shutdown(self, grace: Duration) {
        let engine = self.engine;
        engine.with_hub(|hub, now| hub.begin_shutdown(now));
        let deadline = Instant::now() + grace;
        while engine.hub.borrow().connections() > 0 && Instant::now() < deadline {
            monoio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = engine.hub.borrow().connections();
        if left > 0 {
            tracing::warn!(
                worker = engine.id.0,
                connections = left,
                "shutdown grace ran out"
            );
        }
        for end in self.ends {
            let _ = end.send(());
        }
        for task in self.tasks {
            task.await;
        }
    }
}
