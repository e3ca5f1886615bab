//! The thread-per-core engine: each thread runs a monoio runtime that opens its share of
//! the connections, reads and counts their frames, and (for senders) writes messages on
//! schedule. The main thread steers phases through atomics and collects each thread's
//! [`Stats`] at the end.
//!
//! Connection `i` is user `lt-<i>` in room `<prefix><i % rooms>`, handled by thread
//! `i % threads`; connections `0 .. senders` send (so senders spread over the rooms).
//!
//! With [`Plan::churn_per_sec`] (the `soak` mode) random open connections are closed
//! (close frame 1000) while sending runs, and every connection that ends then is replaced
//! in its slot — same index, same room, sender if the slot sends — by a new identity,
//! `lt-<i>-g<generation>`, so per-user server state turns over too.
//!
//! With [`Plan::v2`] the connections speak protocol v2: connection `i` subscribes to the
//! rooms [`crate::v2::rooms_of`] gives it (its first, `i % rooms`, is the one it sends
//! to): its first room once [`Engine::subscribe_first`] is called, the others once
//! [`Engine::subscribe_all`] is (a replacement subscribes to all at once); with
//! [`V2Plan::typing_every`] it sends `typing` on schedule while sending runs.

use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context as _, Result};
use hdrhistogram::Histogram;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;

use crate::handshake::{build_request, handshake, HandshakeError};
use crate::recv::{compact, ConnRecv, Reply, Window};
use crate::send::{write_chat, write_close, write_pong, MaskRng};
use crate::stats::{new_histogram, Stats};
use crate::target::Target;
use crate::v2::{self, V2ConnRecv};

/// Wall-clock time in Unix nanoseconds (the clock senders embed and receivers compare).
#[inline]
pub fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// What the engine does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The server.
    pub target: Target,
    /// Connections to open.
    pub conns: usize,
    /// Rooms they are spread over.
    pub rooms: usize,
    /// Room name prefix (`<prefix><n>`).
    pub room_prefix: String,
    /// How many of the connections send.
    pub senders: usize,
    /// Messages per second per sender.
    pub rate: f64,
    /// Content length of each message.
    pub payload_bytes: usize,
    /// Connections opened per second (0: as fast as `in_flight` allows).
    pub ramp: f64,
    /// Handshakes in progress at once (over all threads).
    pub in_flight: usize,
    /// Engine threads.
    pub threads: usize,
    /// CPUs to pin the threads to (round robin); empty: no pinning.
    pub cpus: Vec<usize>,
    /// Read buffer per connection.
    pub read_buffer: usize,
    /// Sign a token per connection with this secret.
    pub auth_secret: Option<String>,
    /// Source addresses to spread connections over (empty: the kernel's choice).
    pub sources: Vec<IpAddr>,
    /// Limit for TCP connect + upgrade.
    pub connect_timeout: Duration,
    /// While sending runs, close this many random connections per second (over all
    /// threads) and replace them; 0: no churn.
    pub churn_per_sec: f64,
    /// While sending runs, replace a connection that ended (churned or dropped by the
    /// server) by a new one in its slot.
    pub reconnect: bool,
    /// Keep latency samples per interval for [`Engine::take_interval_latency`].
    pub interval_latency: bool,
    /// Speak protocol v2 (`None`: v1, one room per connection given in the upgrade).
    pub v2: Option<V2Plan>,
}

/// What v2 connections do besides chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Plan {
    /// Rooms each connection subscribes to (at most [`Plan::rooms`]).
    pub subscriptions: usize,
    /// Every connection sends `typing` this often while sending runs, staggered over the
    /// period and rotating over its rooms; `None`: never.
    pub typing_every: Option<Duration>,
    /// The first room is named in the upgrade request (`room=`, §7's implicit first
    /// subscribe) instead of a `subscribe` frame: a v2 connect storm (`idle`/`connect`
    /// `--proto 2`).
    pub room_in_url: bool,
}

const CONNECTING: u8 = 0;
const RUNNING: u8 = 1;
const STOPPING: u8 = 2;

/// Most messages one sender writes in one go when it is behind schedule; beyond that
/// sends are skipped (and counted) rather than burst.
const MAX_CATCH_UP: u64 = 64;

/// How long a churned connection waits for the server's close frame before its socket is
/// shut down (the server ends TCP itself after 3 s without the client doing so).
const CHURN_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause before replacing a connection the server dropped or that failed to reopen.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// Counters a thread publishes every 50 ms for the main thread.
#[derive(Debug, Default)]
pub struct Live {
    /// Kernel thread id (for its CPU time).
    pub tid: AtomicU64,
    /// See [`Stats::sent`].
    pub sent: AtomicU64,
    /// See [`Stats::expected`].
    pub expected: AtomicU64,
    /// See [`Stats::delivered`].
    pub delivered: AtomicU64,
    /// See [`Stats::frames_total`].
    pub frames: AtomicU64,
    /// Gaps + duplicates + order violations.
    pub integrity: AtomicU64,
    /// Error frames.
    pub error_frames: AtomicU64,
    /// Connect failures.
    pub connect_failures: AtomicU64,
    /// Connections ended by the server or the network (see [`Stats::closes`]).
    pub closes: AtomicU64,
    /// Upgrades completed (replacements included).
    pub connected: AtomicU64,
    /// Connections the generator closed to churn them (see [`Stats::churned`]).
    pub churned: AtomicU64,
}

/// State shared between the main thread and the engine threads.
#[derive(Debug)]
pub struct Shared {
    phase: AtomicU8,
    t0: AtomicU64,
    t1: AtomicU64,
    send_start: AtomicU64,
    members: Vec<AtomicU32>,
    /// Per-thread published counters.
    pub live: Vec<Live>,
    settled: AtomicUsize,
    open: AtomicUsize,
    last_settled_ns: AtomicU64,
    /// v2: how far the first connections may subscribe: 0 not yet, 1 their first room,
    /// 2 all their rooms.
    subscribe_stage: AtomicU8,
    /// v2: subscriptions confirmed (`subscribed` received) on connections still open.
    subs_open: AtomicUsize,
    /// Per thread: latency samples published since the main thread last took them
    /// (empty unless [`Plan::interval_latency`]).
    interval_latency: Vec<Mutex<Histogram<u64>>>,
}

impl Shared {
    fn window(&self) -> Window {
        Window {
            t0: self.t0.load(Relaxed),
            t1: self.t1.load(Relaxed),
        }
    }
}

/// Totals of the published counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveTotals {
    /// Messages sent in the window.
    pub sent: u64,
    /// Deliveries expected for them.
    pub expected: u64,
    /// Delivered so far.
    pub delivered: u64,
    /// Frames received.
    pub frames: u64,
    /// Integrity violations.
    pub integrity: u64,
    /// Error frames.
    pub error_frames: u64,
    /// Connect failures.
    pub connect_failures: u64,
    /// Connections ended by the server or the network.
    pub closes: u64,
    /// Upgrades completed.
    pub connected: u64,
    /// Connections closed by the generator's churn.
    pub churned: u64,
}

/// A running engine.
pub struct Engine {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<Result<Stats>>>,
    started: Instant,
    started_ns: u64,
}

impl Engine {
    /// Starts the threads; they begin connecting at once.
    pub fn start(plan: Plan) -> Result<Engine> {
        let plan = Arc::new(plan);
        let threads = plan.threads.max(1);
        let shared = Arc::new(Shared {
            phase: AtomicU8::new(CONNECTING),
            t0: AtomicU64::new(u64::MAX),
            t1: AtomicU64::new(u64::MAX),
            send_start: AtomicU64::new(u64::MAX),
            members: (0..plan.rooms.max(1)).map(|_| AtomicU32::new(0)).collect(),
            live: (0..threads).map(|_| Live::default()).collect(),
            settled: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            last_settled_ns: AtomicU64::new(0),
            subscribe_stage: AtomicU8::new(0),
            subs_open: AtomicUsize::new(0),
            interval_latency: if plan.interval_latency {
                (0..threads).map(|_| Mutex::new(new_histogram())).collect()
            } else {
                Vec::new()
            },
        });
        let started = Instant::now();
        let started_ns = realtime_ns();
        let mut handles = Vec::with_capacity(threads);
        for k in 0..threads {
            let plan = plan.clone();
            let shared2 = shared.clone();
            let h = std::thread::Builder::new()
                .name(format!("lt-{k}"))
                .spawn(move || thread_main(k, plan, shared2, started))
                .context("cannot start an engine thread")?;
            handles.push(h);
        }
        Ok(Engine {
            shared,
            handles,
            started,
            started_ns,
        })
    }

    /// Connections that opened or failed so far.
    pub fn settled(&self) -> usize {
        self.shared.settled.load(Relaxed)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.shared.open.load(Relaxed)
    }

    /// When the engine started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Time from start to the last connection settling (opened or failed).
    pub fn connect_elapsed(&self) -> Duration {
        let last = self.shared.last_settled_ns.load(Relaxed);
        Duration::from_nanos(last.saturating_sub(self.started_ns))
    }

    /// v2: lets the connections subscribe to their first room (which creates every
    /// room when there are at least as many connections as rooms).
    pub fn subscribe_first(&self) {
        self.shared.subscribe_stage.fetch_max(1, Release);
    }

    /// v2: lets the connections subscribe to all their rooms (the first ones wait for
    /// this or [`Engine::subscribe_first`]; replacements subscribe to all at once).
    pub fn subscribe_all(&self) {
        self.shared.subscribe_stage.store(2, Release);
    }

    /// v2: subscriptions confirmed by the server on connections open now.
    pub fn subscriptions(&self) -> usize {
        self.shared.subs_open.load(Relaxed)
    }

    /// Whether every engine thread is still running.
    pub fn threads_alive(&self) -> bool {
        self.handles.iter().all(|h| !h.is_finished())
    }

    /// Starts sending now; messages written in `[now + warmup, now + warmup + duration)`
    /// are measured, and sending stops at the end of that window. Returns (t0, t1).
    pub fn start_sending(&self, warmup: Duration, duration: Duration) -> (u64, u64) {
        let now = realtime_ns();
        let t0 = now + warmup.as_nanos() as u64;
        let t1 = t0 + duration.as_nanos() as u64;
        self.shared.t0.store(t0, Relaxed);
        self.shared.t1.store(t1, Relaxed);
        self.shared.send_start.store(now, Relaxed);
        self.shared.phase.store(RUNNING, Release);
        (t0, t1)
    }

    /// Sum of the threads' published counters (at most ~50 ms old).
    pub fn live(&self) -> LiveTotals {
        let mut t = LiveTotals::default();
        for l in &self.shared.live {
            t.sent += l.sent.load(Relaxed);
            t.expected += l.expected.load(Relaxed);
            t.delivered += l.delivered.load(Relaxed);
            t.frames += l.frames.load(Relaxed);
            t.integrity += l.integrity.load(Relaxed);
            t.error_frames += l.error_frames.load(Relaxed);
            t.connect_failures += l.connect_failures.load(Relaxed);
            t.closes += l.closes.load(Relaxed);
            t.connected += l.connected.load(Relaxed);
            t.churned += l.churned.load(Relaxed);
        }
        t
    }

    /// The latency samples (ns) the threads published since the last call (with
    /// [`Plan::interval_latency`]; otherwise always empty). Samples reach it within
    /// ~50 ms of being recorded.
    pub fn take_interval_latency(&self) -> Histogram<u64> {
        let mut h = new_histogram();
        for m in &self.shared.interval_latency {
            let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
            // Same bounds: adding cannot fail.
            let _ = h.add(&*m);
            m.reset();
        }
        h
    }

    /// CPU time used so far by each engine thread, ns (0 when unreadable).
    pub fn thread_cpu_ns(&self) -> Vec<u64> {
        self.shared
            .live
            .iter()
            .map(|l| match l.tid.load(Relaxed) {
                0 => 0,
                tid => crate::procfs::cpu_ns(&format!("/proc/self/task/{tid}/stat")).unwrap_or(0),
            })
            .collect()
    }

    /// Closes every connection (close frame 1000), stops the threads and merges their
    /// counts.
    pub fn stop(self) -> Result<Stats> {
        self.shared.phase.store(STOPPING, Relaxed);
        let mut total = Stats::default();
        let mut first_err = None;
        for h in self.handles {
            match h.join() {
                Ok(Ok(s)) => total.merge(&s),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(anyhow!("an engine thread panicked"));
                }
            }
        }
        match first_err {
            Some(e) if total.connected == 0 && total.connect_failures.is_empty() => Err(e),
            Some(e) => {
                eprintln!("warning: {e:#} (results are partial)");
                Ok(total)
            }
            None => Ok(total),
        }
    }
}

/// One engine thread's context, shared by its tasks.
struct Ctx {
    k: usize,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    stats: RefCell<Stats>,
    /// This thread's connections by slot (`i / threads`); `None` while a slot has no
    /// open connection.
    outs: RefCell<Vec<Option<Rc<Out>>>>,
    open_here: Cell<usize>,
    started: Instant,
    /// Every latency sample of the run, with [`Plan::interval_latency`] (`stats.latency`
    /// then only holds the samples since the last publish).
    total_latency: RefCell<Histogram<u64>>,
}

impl Ctx {
    fn slot(&self, i: usize) -> usize {
        i / self.plan.threads.max(1)
    }
}

fn thread_main(k: usize, plan: Arc<Plan>, shared: Arc<Shared>, started: Instant) -> Result<Stats> {
    shared.live[k]
        .tid
        .store(crate::procfs::gettid() as u64, Relaxed);
    if !plan.cpus.is_empty() {
        let cpu = plan.cpus[k % plan.cpus.len()];
        monoio::utils::bind_to_cpu_set([cpu])
            .map_err(|e| anyhow!("cannot pin thread {k} to CPU {cpu}: {e}"))?;
    }
    let per_thread = plan.conns.div_ceil(plan.threads.max(1));
    let entries = (per_thread * 2 + 256).clamp(256, 32768) as u32;
    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .with_entries(entries)
        .enable_timer()
        .build()
        .context("cannot build the monoio runtime")?;
    let ctx = Rc::new(Ctx {
        k,
        stats: RefCell::new(Stats::default()),
        outs: RefCell::new(vec![None; per_thread]),
        open_here: Cell::new(0),
        started,
        total_latency: RefCell::new(if plan.interval_latency {
            new_histogram()
        } else {
            Histogram::new(1).unwrap_or_else(|_| unreachable!())
        }),
        plan,
        shared,
    });
    rt.block_on(root(ctx.clone()));
    let mut stats = ctx.stats.take();
    if ctx.plan.interval_latency {
        // The last publish moved every sample to `total_latency`.
        let _ = stats.latency.add(&*ctx.total_latency.borrow());
    }
    Ok(stats)
}

fn publish(ctx: &Ctx) {
    let mut st = ctx.stats.borrow_mut();
    if let Some(m) = ctx.shared.interval_latency.get(ctx.k) {
        if !st.latency.is_empty() {
            // Same bounds everywhere: adding cannot fail.
            let _ = m.lock().unwrap_or_else(|e| e.into_inner()).add(&st.latency);
            let _ = ctx.total_latency.borrow_mut().add(&st.latency);
            st.latency.reset();
        }
    }
    let l = &ctx.shared.live[ctx.k];
    l.sent.store(st.sent, Relaxed);
    l.expected.store(st.expected, Relaxed);
    l.delivered.store(st.delivered, Relaxed);
    l.frames.store(st.frames_total, Relaxed);
    l.integrity.store(st.integrity_violations(), Relaxed);
    l.error_frames
        .store(st.error_frames.values().sum(), Relaxed);
    l.connect_failures
        .store(st.connect_failures.values().map(|c| c.count).sum(), Relaxed);
    l.closes
        .store(st.closes.values().map(|c| c.count).sum(), Relaxed);
    l.connected.store(st.connected, Relaxed);
    l.churned.store(st.churned, Relaxed);
}

async fn root(ctx: Rc<Ctx>) {
    let threads = ctx.plan.threads.max(1);
    let mine: Rc<Vec<usize>> = Rc::new((ctx.k..ctx.plan.conns).step_by(threads).collect());
    let next = Rc::new(Cell::new(0usize));
    let connectors = ctx
        .plan
        .in_flight
        .div_ceil(threads)
        .clamp(1, mine.len().max(1));
    for _ in 0..connectors {
        let (ctx, mine, next) = (ctx.clone(), mine.clone(), next.clone());
        monoio::spawn(async move {
            loop {
                let j = next.get();
                if j >= mine.len() || ctx.shared.phase.load(Relaxed) == STOPPING {
                    break;
                }
                next.set(j + 1);
                open_conn(&ctx, mine[j], 0).await;
            }
        });
    }
    if ctx.plan.churn_per_sec > 0.0 {
        monoio::spawn(churner(ctx.clone()));
    }
    if ctx.plan.v2.is_some() {
        monoio::spawn(v2_driver(ctx.clone()));
    }
    loop {
        monoio::time::sleep(Duration::from_millis(50)).await;
        publish(&ctx);
        if ctx.shared.phase.load(Relaxed) == STOPPING {
            break;
        }
    }
    // Say goodbye properly, then give the server a moment to answer.
    let outs = ctx.outs.take();
    for out in outs.into_iter().flatten() {
        if !out.dead.get() && !out.closing.get() {
            out.queue_close(1000);
            monoio::spawn(async move { out.flush().await });
        }
    }
    let deadline = Instant::now() + Duration::from_millis(500);
    while ctx.open_here.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    publish(&ctx);
}

/// Opens connection `i` (generation `gen`: 0 for the first, higher for replacements) and
/// spawns its task; returns whether it opened.
async fn open_conn(ctx: &Rc<Ctx>, i: usize, gen: u64) -> bool {
    let plan = &ctx.plan;
    if plan.ramp > 0.0 && gen == 0 {
        let at = ctx.started + Duration::from_secs_f64(i as f64 / plan.ramp);
        let now = Instant::now();
        if at > now {
            monoio::time::sleep(at - now).await;
        }
    }
    let room = i % plan.rooms.max(1);
    // A v2 connection names its rooms in subscribe frames (unless its first is in the
    // upgrade request).
    let room_name = plan
        .v2
        .as_ref()
        .is_none_or(|v| v.room_in_url)
        .then(|| format!("{}{room}", plan.room_prefix));
    let user = if gen == 0 {
        format!("lt-{i}")
    } else {
        format!("lt-{i}-g{gen}")
    };
    let token = plan.auth_secret.as_ref().map(|s| {
        let expiry = realtime_ns() / 1_000_000_000 + 24 * 3600;
        hubbub_core::auth::sign(s.as_bytes(), &user, expiry)
    });
    let key = tungstenite::handshake::client::generate_key();
    let request = build_request(
        &plan.target,
        &user,
        room_name.as_deref(),
        plan.v2.is_some(),
        token.as_deref(),
        &key,
    );
    let source = (!plan.sources.is_empty()).then(|| plan.sources[i % plan.sources.len()]);
    let begin = Instant::now();
    let begin_ns = realtime_ns();
    let attempt = async {
        let mut stream = crate::net::connect(plan.target.addr, source, plan.connect_timeout)
            .await
            .map_err(HandshakeError::Io)?;
        let buf = Vec::with_capacity(plan.read_buffer);
        let (r, buf) = handshake(&mut stream, request, &key, buf).await;
        r.map(|()| (stream, buf))
    };
    let result = match monoio::time::timeout(plan.connect_timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(HandshakeError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect + upgrade timed out",
        ))),
    };
    if gen == 0 {
        ctx.shared.settled.fetch_add(1, Relaxed);
        ctx.shared.last_settled_ns.fetch_max(realtime_ns(), Relaxed);
    }
    match result {
        Ok((stream, buf)) => {
            {
                let mut st = ctx.stats.borrow_mut();
                st.handshake
                    .saturating_record((begin.elapsed().as_nanos() as u64).max(1));
                st.connected += 1;
            }
            let conn = Conn {
                i,
                gen,
                room,
                since_ns: begin_ns,
            };
            monoio::spawn(run_conn(ctx.clone(), conn, stream, buf));
            true
        }
        Err(e) => {
            ctx.stats
                .borrow_mut()
                .count_connect_failure(e.kind(), &e.detail());
            false
        }
    }
}

/// Replaces connection `i` after its generation `gen - 1` ended: opens generation `gen`
/// (after `pause`), retrying every [`RECONNECT_PAUSE`] while sending runs.
async fn replace(ctx: Rc<Ctx>, i: usize, mut gen: u64, pause: Duration) {
    if !pause.is_zero() {
        monoio::time::sleep(pause).await;
    }
    while ctx.shared.phase.load(Relaxed) == RUNNING {
        if open_conn(&ctx, i, gen).await {
            return;
        }
        gen += 1;
        monoio::time::sleep(RECONNECT_PAUSE).await;
    }
}

/// Closes random open connections of this thread at its share of
/// [`Plan::churn_per_sec`] while sending runs; each one is replaced when it has closed.
async fn churner(ctx: Rc<Ctx>) {
    let shared = &ctx.shared;
    while shared.phase.load(Acquire) == CONNECTING {
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
    let per_thread = ctx.plan.churn_per_sec / ctx.plan.threads.max(1) as f64;
    if per_thread.is_nan() || per_thread <= 0.0 {
        return;
    }
    let period = Duration::from_secs_f64(1.0 / per_thread);
    let mut rng = MaskRng::new(0x5eed ^ ctx.k as u64);
    let start = Instant::now();
    let mut done: u64 = 0;
    while shared.phase.load(Relaxed) == RUNNING {
        let due = (start.elapsed().as_secs_f64() * per_thread) as u64;
        // Never more than a second's worth at once (after a stall).
        done = done.max(due.saturating_sub(per_thread.ceil() as u64));
        while done < due {
            done += 1;
            churn_one(&ctx, &mut rng);
        }
        let next = start + period.mul_f64((done + 1) as f64);
        let wait = next
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), Duration::from_millis(100));
        monoio::time::sleep(wait).await;
    }
}

/// Starts closing one random open connection of this thread (a few tries to find one).
fn churn_one(ctx: &Rc<Ctx>, rng: &mut MaskRng) {
    let picked = {
        let outs = ctx.outs.borrow();
        if outs.is_empty() {
            return;
        }
        (0..16).find_map(|_| {
            let j = (rng.next_u64() % outs.len() as u64) as usize;
            outs[j]
                .as_ref()
                .filter(|o| !o.dead.get() && !o.closing.get())
                .cloned()
        })
    };
    let Some(out) = picked else {
        ctx.stats.borrow_mut().churn_missed += 1;
        return;
    };
    out.closing.set(true);
    out.queue_close(1000);
    let weak = Rc::downgrade(&out);
    monoio::spawn(async move { out.flush().await });
    monoio::spawn(async move {
        monoio::time::sleep(CHURN_CLOSE_TIMEOUT).await;
        if let Some(out) = weak.upgrade() {
            if !out.dead.get() {
                // The reader still owns the socket (single-threaded: it cannot close in
                // between), so the descriptor is this connection's.
                out.timed_out.set(true);
                // SAFETY: shutdown on a descriptor that is open (see above); it only
                // ends the connection, the descriptor stays valid until the halves drop.
                unsafe { libc::shutdown(out.fd, libc::SHUT_RDWR) };
            }
        }
    });
}

/// The write side of a connection, shared by its reader (pongs, closes) and its sender.
/// Whoever holds `half` writes everything pending; the others only queue.
struct Out {
    half: RefCell<Option<OwnedWriteHalf<TcpStream>>>,
    pending: RefCell<Vec<u8>>,
    spare: RefCell<Vec<u8>>,
    rng: RefCell<MaskRng>,
    dead: Cell<bool>,
    /// The generator sent (or queued) a close frame: nothing more is written.
    closing: Cell<bool>,
    /// The server did not answer that close in time and the socket was shut down.
    timed_out: Cell<bool>,
    /// The socket's descriptor (valid while `dead` is false).
    fd: RawFd,
    /// Its slot.
    i: usize,
    /// v2: the rooms it subscribes to.
    rooms: Rc<[u32]>,
    /// v2: how many of its rooms' subscribe frames were queued.
    subscribing: Cell<usize>,
    /// v2: its typing task was started.
    typing: Cell<bool>,
}

impl Out {
    fn new(
        half: OwnedWriteHalf<TcpStream>,
        fd: RawFd,
        seed: u64,
        i: usize,
        rooms: Rc<[u32]>,
    ) -> Self {
        Self {
            i,
            rooms,
            subscribing: Cell::new(0),
            typing: Cell::new(false),
            half: RefCell::new(Some(half)),
            pending: RefCell::new(Vec::new()),
            spare: RefCell::new(Vec::new()),
            rng: RefCell::new(MaskRng::new(seed)),
            dead: Cell::new(false),
            closing: Cell::new(false),
            timed_out: Cell::new(false),
            fd,
        }
    }

    fn mask(&self) -> [u8; 4] {
        self.rng.borrow_mut().next_mask()
    }

    fn queue_close(&self, code: u16) {
        let m = self.mask();
        write_close(&mut self.pending.borrow_mut(), code, m);
    }

    fn queue_pong(&self, payload: &[u8]) {
        let m = self.mask();
        write_pong(&mut self.pending.borrow_mut(), payload, m);
    }

    async fn flush(&self) {
        let Some(mut half) = self.half.borrow_mut().take() else {
            return; // another task is writing and will take our bytes too
        };
        loop {
            let mut buf = std::mem::take(&mut *self.spare.borrow_mut());
            std::mem::swap(&mut buf, &mut *self.pending.borrow_mut());
            if buf.is_empty() {
                *self.spare.borrow_mut() = buf;
                break;
            }
            let (r, mut b) = half.write_all(buf).await;
            b.clear();
            *self.spare.borrow_mut() = b;
            if r.is_err() {
                self.dead.set(true);
                self.pending.borrow_mut().clear();
                return;
            }
        }
        if !self.dead.get() {
            // A connection that ended meanwhile drops its half here, closing the socket.
            *self.half.borrow_mut() = Some(half);
        }
    }
}

fn close_name(code: Option<u16>) -> String {
    match code {
        Some(c) => format!("close_{c}"),
        None => "close_no_code".into(),
    }
}

/// Who a connection is.
#[derive(Debug, Clone, Copy)]
struct Conn {
    /// Its slot (user `lt-<i>`, room `i % rooms`, sends when `i < senders`).
    i: usize,
    /// 0 for the first connection in the slot, then one more per replacement.
    gen: u64,
    /// Its room.
    room: usize,
    /// When it began connecting: messages sent earlier reach it only as backlog, so they
    /// are not counted as its deliveries.
    since_ns: u64,
}

/// A connection's receive path, by protocol.
enum Recv {
    V1(ConnRecv),
    V2(V2ConnRecv),
}

async fn run_conn(ctx: Rc<Ctx>, conn: Conn, stream: TcpStream, mut buf: Vec<u8>) {
    let Conn { i, room, .. } = conn;
    let v2 = ctx.plan.v2.clone();
    let rooms: Rc<[u32]> = match &v2 {
        Some(v) => v2::rooms_of(i, ctx.plan.rooms, v.subscriptions).into(),
        None => Rc::new([room as u32]),
    };
    if v2.is_none() {
        // A v2 connection becomes a member of each room when its `subscribed` arrives.
        ctx.shared.members[room].fetch_add(1, Relaxed);
    }
    ctx.shared.open.fetch_add(1, Relaxed);
    ctx.open_here.set(ctx.open_here.get() + 1);
    let fd = stream.as_raw_fd();
    let (mut rd, wr) = stream.into_split();
    let out = Rc::new(Out::new(
        wr,
        fd,
        i as u64 ^ conn.gen.rotate_left(32),
        i,
        rooms.clone(),
    ));
    let slot = ctx.slot(i);
    if let Some(s) = ctx.outs.borrow_mut().get_mut(slot) {
        *s = Some(out.clone());
    }
    if ctx.shared.phase.load(Relaxed) == STOPPING {
        // Opened after the goodbyes went out: say goodbye too.
        out.closing.set(true);
        out.queue_close(1000);
        out.flush().await;
    }
    if let Some(v) = &v2 {
        if v.room_in_url {
            // Its first room was subscribed by the upgrade.
            out.subscribing.set(1);
        }
        // The first connections wait for the main thread (the v2 driver then subscribes
        // them); one that opens after it subscribes as far as it allows, and a
        // replacement to all its rooms, now.
        let upto = if conn.gen > 0 {
            rooms.len()
        } else {
            subscribe_upto(&ctx, rooms.len())
        };
        if upto > 0 {
            queue_subscribes(&ctx, &out, upto);
            let o = out.clone();
            monoio::spawn(async move { o.flush().await });
        }
        if let Some(every) = v.typing_every {
            if ctx.shared.phase.load(Relaxed) == RUNNING {
                out.typing.set(true);
                monoio::spawn(typer(ctx.clone(), out.clone(), every));
            }
        }
    }
    if i < ctx.plan.senders && ctx.plan.rate > 0.0 {
        monoio::spawn(sender(ctx.clone(), i, room, out.clone(), conn.gen > 0));
    }
    let mut recv = match &v2 {
        None => Recv::V1(ConnRecv::new(i as u32)),
        Some(_) => Recv::V2(V2ConnRecv::new(i as u32, &rooms)),
    };
    let mut reply = Reply::default();
    let min_room = ctx.plan.read_buffer.clamp(64, 1 << 20);
    let (kind, detail) = loop {
        if !buf.is_empty() {
            let now = realtime_ns();
            let mut win = ctx.shared.window();
            win.t0 = win.t0.max(conn.since_ns);
            let r = {
                let mut st = ctx.stats.borrow_mut();
                match &mut recv {
                    Recv::V1(c) => c.on_bytes(&buf, now, win, &mut st, &mut reply),
                    Recv::V2(c) => c.on_bytes(&buf, now, win, &mut st, &mut reply),
                }
            };
            if let Recv::V2(c) = &mut recv {
                for r in c.take_subscribed() {
                    ctx.shared.members[r as usize].fetch_add(1, Relaxed);
                    ctx.shared.subs_open.fetch_add(1, Relaxed);
                }
            }
            match r {
                Ok((used, next)) => compact(&mut buf, used, next),
                Err(e) => break ("protocol_error".to_string(), e.to_string()),
            }
            if let Some((p, n)) = reply.pong.take() {
                if !out.closing.get() {
                    out.queue_pong(&p[..usize::from(n)]);
                    out.flush().await;
                }
            }
            if let Some(code) = reply.closed.take() {
                // Echo the close, as RFC 6455 asks (unless this is the answer to ours),
                // then stop.
                if ctx.shared.phase.load(Relaxed) != STOPPING && !out.closing.get() {
                    out.queue_close(code.unwrap_or(1000));
                    out.flush().await;
                }
                break (close_name(code), "the server closed the connection".into());
            }
        }
        if buf.capacity() - buf.len() < min_room / 4 {
            buf.reserve(min_room);
        }
        let len = buf.len();
        let (r, slice) = rd.read(buf.slice_mut(len..)).await;
        buf = slice.into_inner();
        match r {
            Ok(0) => {
                break (
                    "eof".into(),
                    "the server closed TCP without a close frame".into(),
                )
            }
            Ok(n) => ctx.stats.borrow_mut().bytes_in += n as u64,
            Err(e) => break (crate::net::error_kind(&e), e.to_string()),
        }
    };
    out.dead.set(true);
    // Close the socket now (with the read half, below), not when the last task holding
    // `out` lets go of it; a flush in progress drops its half when it finishes.
    drop(out.half.borrow_mut().take());
    drop(rd);
    if let Some(s) = ctx.outs.borrow_mut().get_mut(slot) {
        if s.as_ref().is_some_and(|o| Rc::ptr_eq(o, &out)) {
            *s = None;
        }
    }
    match &recv {
        Recv::V1(_) => {
            ctx.shared.members[room].fetch_sub(1, Relaxed);
        }
        Recv::V2(c) => {
            for r in c.subscribed() {
                ctx.shared.members[r as usize].fetch_sub(1, Relaxed);
                ctx.shared.subs_open.fetch_sub(1, Relaxed);
            }
        }
    }
    ctx.shared.open.fetch_sub(1, Relaxed);
    ctx.open_here.set(ctx.open_here.get().saturating_sub(1));
    let running = ctx.shared.phase.load(Relaxed) == RUNNING;
    if out.closing.get() && ctx.shared.phase.load(Relaxed) != STOPPING {
        let mut st = ctx.stats.borrow_mut();
        if out.timed_out.get() {
            st.count_close(
                "churn_close_unanswered".into(),
                "the server did not answer the generator's close frame within 5 s",
            );
        } else if kind == "close_1000" {
            st.churned += 1;
        } else {
            st.count_close(
                format!("churn_reply_{kind}"),
                &format!("answer to the generator's close 1000: {detail}"),
            );
        }
    } else if ctx.shared.phase.load(Relaxed) != STOPPING {
        ctx.stats.borrow_mut().count_close(kind, &detail);
    }
    if running && ctx.plan.reconnect {
        let pause = if out.closing.get() {
            Duration::ZERO
        } else {
            RECONNECT_PAUSE
        };
        monoio::spawn(replace(ctx.clone(), i, conn.gen + 1, pause));
    }
}

/// Writes connection `i`'s messages on schedule. A `late` sender (a replacement) starts
/// at the next slot of the schedule instead of catching up from its beginning.
async fn sender(ctx: Rc<Ctx>, i: usize, room: usize, out: Rc<Out>, late: bool) {
    let shared = &ctx.shared;
    while shared.phase.load(Acquire) == CONNECTING {
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
    let plan = &ctx.plan;
    let period_ns = 1e9 / plan.rate;
    // Spread the senders' first messages over one period.
    let offset = (period_ns * i as f64 / plan.senders.max(1) as f64) as u64;
    let start = shared.send_start.load(Relaxed).saturating_add(offset);
    let win = shared.window();
    let due_at = |now: u64| {
        if now < start {
            0
        } else {
            ((now - start) as f64 / period_ns) as u64 + 1
        }
    };
    let mut scheduled: u64 = if late { due_at(realtime_ns()) } else { 0 };
    // v2: the room is named in every chat frame.
    let room_name = plan
        .v2
        .is_some()
        .then(|| format!("{}{room}", plan.room_prefix));
    let mut n: u64 = 0;
    loop {
        if shared.phase.load(Relaxed) != RUNNING || out.dead.get() || out.closing.get() {
            break;
        }
        let now = realtime_ns();
        if now >= win.t1 {
            break;
        }
        let due_total = due_at(now);
        if due_total > scheduled {
            let mut due = due_total - scheduled;
            scheduled = due_total;
            let mut skipped = 0;
            if due > MAX_CATCH_UP {
                skipped = due - MAX_CATCH_UP;
                due = MAX_CATCH_UP;
            }
            {
                let mut pending = out.pending.borrow_mut();
                let mut rng = out.rng.borrow_mut();
                for _ in 0..due {
                    match &room_name {
                        None => write_chat(
                            &mut pending,
                            i as u32,
                            now,
                            plan.payload_bytes,
                            rng.next_mask(),
                        ),
                        Some(r) => v2::write_chat(
                            &mut pending,
                            r,
                            i as u32,
                            now,
                            n,
                            plan.payload_bytes,
                            rng.next_mask(),
                        ),
                    }
                    n += 1;
                }
            }
            {
                let mut st = ctx.stats.borrow_mut();
                st.sent_total += due;
                if win.contains(now) {
                    let members = u64::from(shared.members[room].load(Relaxed));
                    st.sent += due;
                    st.expected += due * members;
                    st.send_skipped += skipped;
                }
            }
            out.flush().await;
        }
        let next = start + (scheduled as f64 * period_ns) as u64;
        let wait = next.saturating_sub(realtime_ns()).max(200_000);
        monoio::time::sleep(Duration::from_nanos(wait)).await;
    }
}

/// v2: how many of a connection's `n` rooms the first connections may subscribe to now.
fn subscribe_upto(ctx: &Ctx, n: usize) -> usize {
    match ctx.shared.subscribe_stage.load(Acquire) {
        0 => 0,
        1 => n.min(1),
        _ => n,
    }
}

/// v2: queues the subscribe frames of connection `out`'s rooms up to `upto` (ids 1, 2,
/// …, one per room) that are not queued yet.
fn queue_subscribes(ctx: &Ctx, out: &Out, upto: usize) {
    let from = out.subscribing.get();
    let upto = upto.min(out.rooms.len());
    if from >= upto || out.dead.get() || out.closing.get() {
        return;
    }
    out.subscribing.set(upto);
    {
        let mut pending = out.pending.borrow_mut();
        let mut rng = out.rng.borrow_mut();
        let mut name = String::with_capacity(ctx.plan.room_prefix.len() + 10);
        for (n, r) in out.rooms.iter().enumerate().take(upto).skip(from) {
            name.clear();
            name.push_str(&ctx.plan.room_prefix);
            name.push_str(&r.to_string());
            v2::write_subscribe(&mut pending, n as u32 + 1, &name, rng.next_mask());
        }
    }
    ctx.stats.borrow_mut().subscribes_sent += (upto - from) as u64;
}

/// v2, one per thread: as [`Engine::subscribe_first`] and [`Engine::subscribe_all`] are
/// called, queues the subscribe frames of every open connection of this thread; when
/// sending starts, starts their typing tasks (connections opened later do both
/// themselves).
async fn v2_driver(ctx: Rc<Ctx>) {
    let open_outs = |ctx: &Ctx| -> Vec<Rc<Out>> {
        ctx.outs
            .borrow()
            .iter()
            .flatten()
            .filter(|o| !o.dead.get() && !o.closing.get())
            .cloned()
            .collect()
    };
    let mut stage = 0;
    while stage < 2 {
        if ctx.shared.phase.load(Relaxed) == STOPPING {
            return;
        }
        let now = ctx.shared.subscribe_stage.load(Acquire);
        if now > stage {
            stage = now;
            for out in open_outs(&ctx) {
                let upto = subscribe_upto(&ctx, out.rooms.len());
                if out.subscribing.get() < upto {
                    queue_subscribes(&ctx, &out, upto);
                    monoio::spawn(async move { out.flush().await });
                }
            }
        } else {
            monoio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let Some(every) = ctx.plan.v2.as_ref().and_then(|v| v.typing_every) else {
        return;
    };
    while ctx.shared.phase.load(Acquire) == CONNECTING {
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
    for out in open_outs(&ctx) {
        if !out.typing.replace(true) {
            monoio::spawn(typer(ctx.clone(), out, every));
        }
    }
}

/// The `n`-th typing time of connection `i` of `conns`: from `start`, staggered over
/// one period by `i`, then once a period. Unix ns.
pub fn typing_at(start: u64, every_ns: u64, i: usize, conns: usize, n: u64) -> u64 {
    let offset = (u128::from(every_ns) * (i % conns.max(1)) as u128 / conns.max(1) as u128) as u64;
    start
        .saturating_add(offset)
        .saturating_add(n.saturating_mul(every_ns))
}

/// The first typing slot at or after `now` (so a connection opened late does not catch
/// up on the ones it missed).
pub fn first_typing_slot(start: u64, every_ns: u64, i: usize, conns: usize, now: u64) -> u64 {
    let first = typing_at(start, every_ns, i, conns, 0);
    if now <= first || every_ns == 0 {
        0
    } else {
        (now - first).div_ceil(every_ns)
    }
}

/// v2: sends `typing` every `every` (staggered by slot, rotating over the connection's
/// rooms) until the window ends or the connection does.
async fn typer(ctx: Rc<Ctx>, out: Rc<Out>, every: Duration) {
    let shared = &ctx.shared;
    let start = shared.send_start.load(Relaxed);
    let t1 = shared.window().t1;
    let every_ns = (every.as_nanos() as u64).max(1);
    let conns = ctx.plan.conns;
    let mut n = first_typing_slot(start, every_ns, out.i, conns, realtime_ns());
    let mut name = String::with_capacity(ctx.plan.room_prefix.len() + 10);
    loop {
        let at = typing_at(start, every_ns, out.i, conns, n);
        if at >= t1 {
            break;
        }
        let wait = at.saturating_sub(realtime_ns());
        if wait > 0 {
            monoio::time::sleep(Duration::from_nanos(wait)).await;
        }
        if shared.phase.load(Relaxed) != RUNNING || out.dead.get() || out.closing.get() {
            break;
        }
        let room = out.rooms[(n % out.rooms.len() as u64) as usize];
        name.clear();
        name.push_str(&ctx.plan.room_prefix);
        name.push_str(&room.to_string());
        {
            let m = out.mask();
            v2::write_typing(&mut out.pending.borrow_mut(), &name, m);
        }
        ctx.stats.borrow_mut().typing_sent += 1;
        out.flush().await;
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_is_staggered_and_late_connections_skip_missed_slots() {
        let s = 1_000_000_000_000;
        let every = 3_000_000_000;
        assert_eq!(typing_at(s, every, 0, 1000, 0), s);
        assert_eq!(typing_at(s, every, 500, 1000, 0), s + 1_500_000_000);
        assert_eq!(typing_at(s, every, 500, 1000, 2), s + 7_500_000_000);
        assert_eq!(
            typing_at(s, every, 1500, 1000, 0),
            s + 1_500_000_000,
            "slot i % conns"
        );
        // Spread: the first slots of all connections cover one period evenly.
        let firsts: Vec<u64> = (0..4).map(|i| typing_at(0, 100, i, 4, 0)).collect();
        assert_eq!(firsts, [0, 25, 50, 75]);
        assert_eq!(first_typing_slot(s, every, 0, 1000, s - 5), 0);
        assert_eq!(first_typing_slot(s, every, 0, 1000, s), 0);
        assert_eq!(first_typing_slot(s, every, 0, 1000, s + 1), 1);
        assert_eq!(first_typing_slot(s, every, 0, 1000, s + 6_000_000_000), 2);
        assert_eq!(typing_at(u64::MAX - 5, every, 1, 2, 9), u64::MAX);
    }
}
