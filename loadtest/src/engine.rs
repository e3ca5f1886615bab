//! The thread-per-core engine: each thread runs a monoio runtime that opens its share of
//! the connections, reads and counts their frames, and (for senders) writes messages on
//! schedule. The main thread steers phases through atomics and collects each thread's
//! [`Stats`] at the end.
//!
//! Connection `i` is user `lt-<i>` in room `<prefix><i % rooms>`, handled by thread
//! `i % threads`; connections `0 .. senders` send (so senders spread over the rooms).

use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context as _, Result};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;

use crate::handshake::{build_request, handshake, HandshakeError};
use crate::recv::{compact, ConnRecv, Reply, Window};
use crate::send::{write_chat, write_close, write_pong, MaskRng};
use crate::stats::Stats;
use crate::target::Target;

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
}

const CONNECTING: u8 = 0;
const RUNNING: u8 = 1;
const STOPPING: u8 = 2;

/// Most messages one sender writes in one go when it is behind schedule; beyond that
/// sends are skipped (and counted) rather than burst.
const MAX_CATCH_UP: u64 = 64;

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
        }
        t
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
    outs: RefCell<Vec<Rc<Out>>>,
    open_here: Cell<usize>,
    started: Instant,
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
        plan,
        shared,
        stats: RefCell::new(Stats::default()),
        outs: RefCell::new(Vec::new()),
        open_here: Cell::new(0),
        started,
    });
    rt.block_on(root(ctx.clone()));
    let stats = ctx.stats.take();
    Ok(stats)
}

fn publish(ctx: &Ctx) {
    let st = ctx.stats.borrow();
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
                open_conn(&ctx, mine[j]).await;
            }
        });
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
    for out in outs {
        if !out.dead.get() {
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

async fn open_conn(ctx: &Rc<Ctx>, i: usize) {
    let plan = &ctx.plan;
    if plan.ramp > 0.0 {
        let at = ctx.started + Duration::from_secs_f64(i as f64 / plan.ramp);
        let now = Instant::now();
        if at > now {
            monoio::time::sleep(at - now).await;
        }
    }
    let room = i % plan.rooms.max(1);
    let room_name = format!("{}{room}", plan.room_prefix);
    let user = format!("lt-{i}");
    let token = plan.auth_secret.as_ref().map(|s| {
        let expiry = realtime_ns() / 1_000_000_000 + 24 * 3600;
        hubbub_core::auth::sign(s.as_bytes(), &user, expiry)
    });
    let key = tungstenite::handshake::client::generate_key();
    let request = build_request(&plan.target, &user, &room_name, token.as_deref(), &key);
    let source = (!plan.sources.is_empty()).then(|| plan.sources[i % plan.sources.len()]);
    let begin = Instant::now();
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
    ctx.shared.settled.fetch_add(1, Relaxed);
    ctx.shared.last_settled_ns.fetch_max(realtime_ns(), Relaxed);
    match result {
        Ok((stream, buf)) => {
            {
                let mut st = ctx.stats.borrow_mut();
                st.handshake
                    .saturating_record((begin.elapsed().as_nanos() as u64).max(1));
                st.connected += 1;
            }
            monoio::spawn(run_conn(ctx.clone(), i, room, stream, buf));
        }
        Err(e) => ctx
            .stats
            .borrow_mut()
            .count_connect_failure(e.kind(), &e.detail()),
    }
}

/// The write side of a connection, shared by its reader (pongs, closes) and its sender.
/// Whoever holds `half` writes everything pending; the others only queue.
struct Out {
    half: RefCell<Option<OwnedWriteHalf<TcpStream>>>,
    pending: RefCell<Vec<u8>>,
    spare: RefCell<Vec<u8>>,
    rng: RefCell<MaskRng>,
    dead: Cell<bool>,
}

impl Out {
    fn new(half: OwnedWriteHalf<TcpStream>, seed: u64) -> Self {
        Self {
            half: RefCell::new(Some(half)),
            pending: RefCell::new(Vec::new()),
            spare: RefCell::new(Vec::new()),
            rng: RefCell::new(MaskRng::new(seed)),
            dead: Cell::new(false),
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
        *self.half.borrow_mut() = Some(half);
    }
}

fn close_name(code: Option<u16>) -> String {
    match code {
        Some(c) => format!("close_{c}"),
        None => "close_no_code".into(),
    }
}

async fn run_conn(ctx: Rc<Ctx>, i: usize, room: usize, stream: TcpStream, mut buf: Vec<u8>) {
    ctx.shared.members[room].fetch_add(1, Relaxed);
    ctx.shared.open.fetch_add(1, Relaxed);
    ctx.open_here.set(ctx.open_here.get() + 1);
    let (mut rd, wr) = stream.into_split();
    let out = Rc::new(Out::new(wr, i as u64));
    ctx.outs.borrow_mut().push(out.clone());
    if i < ctx.plan.senders && ctx.plan.rate > 0.0 {
        monoio::spawn(sender(ctx.clone(), i, room, out.clone()));
    }
    let mut recv = ConnRecv::new(i as u32);
    let mut reply = Reply::default();
    let min_room = ctx.plan.read_buffer.clamp(64, 1 << 20);
    let (kind, detail) = loop {
        if !buf.is_empty() {
            let now = realtime_ns();
            let win = ctx.shared.window();
            let r = {
                let mut st = ctx.stats.borrow_mut();
                recv.on_bytes(&buf, now, win, &mut st, &mut reply)
            };
            match r {
                Ok((used, next)) => compact(&mut buf, used, next),
                Err(e) => break ("protocol_error".to_string(), e.to_string()),
            }
            if let Some((p, n)) = reply.pong.take() {
                out.queue_pong(&p[..usize::from(n)]);
                out.flush().await;
            }
            if let Some(code) = reply.closed.take() {
                // Echo the close, as RFC 6455 asks, then stop.
                if ctx.shared.phase.load(Relaxed) != STOPPING {
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
    ctx.shared.members[room].fetch_sub(1, Relaxed);
    ctx.shared.open.fetch_sub(1, Relaxed);
    ctx.open_here.set(ctx.open_here.get().saturating_sub(1));
    if ctx.shared.phase.load(Relaxed) != STOPPING {
        ctx.stats.borrow_mut().count_close(kind, &detail);
    }
}

async fn sender(ctx: Rc<Ctx>, i: usize, room: usize, out: Rc<Out>) {
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
    let mut scheduled: u64 = 0;
    loop {
        if shared.phase.load(Relaxed) != RUNNING || out.dead.get() {
            break;
        }
        let now = realtime_ns();
        if now >= win.t1 {
            break;
        }
        let due_total = if now < start {
            0
        } else {
            ((now - start) as f64 / period_ns) as u64 + 1
        };
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
                    write_chat(
                        &mut pending,
                        i as u32,
                        now,
                        plan.payload_bytes,
                        rng.next_mask(),
                    );
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
