//! `fanout` (S1/S2): connect, send at a fixed rate, measure a window, drain, report.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::{
    common_warnings, errors, generator, no_connection, plan, sample, server, wait_settled, Sample,
};
use crate::cli::FanoutArgs;
use crate::engine::{realtime_ns, Engine};
use crate::progress::Progress;
use crate::report::{Check, FanoutReport, Integrity};
use crate::stats::{Percentiles, Stats};

/// Sleeps until the wall clock reaches `t_ns`, updating the progress line.
fn sleep_until(engine: &Engine, t_ns: u64, phase: &str, wanted: usize, progress: &mut Progress) {
    loop {
        let now = realtime_ns();
        if now >= t_ns || !engine.threads_alive() {
            return;
        }
        progress.update(phase, engine.open(), wanted, engine.live());
        let left = Duration::from_nanos(t_ns - now);
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Runs the warm-up, the measured window and the drain on an engine whose connections
/// are open; returns the samples at the window's start and end.
pub fn window(
    engine: &Engine,
    warmup: Duration,
    duration: Duration,
    drain: Duration,
    wanted: usize,
    server_pid: Option<u32>,
    progress: &mut Progress,
) -> (Sample, Sample) {
    let (t0, t1) = engine.start_sending(warmup, duration);
    sleep_until(engine, t0, "warmup", wanted, progress);
    let s0 = sample(engine, server_pid);
    sleep_until(engine, t1, "measuring", wanted, progress);
    let s1 = sample(engine, server_pid);
    let drain_end = Instant::now() + drain;
    // Let the threads publish their last sends, then wait for the deliveries.
    std::thread::sleep(Duration::from_millis(120));
    while Instant::now() < drain_end && engine.threads_alive() {
        let live = engine.live();
        if live.delivered >= live.expected {
            break;
        }
        progress.update("draining", engine.open(), wanted, live);
        std::thread::sleep(Duration::from_millis(20));
    }
    (s0, s1)
}

/// What a fan-out-shaped run was and measured, for [`report`].
pub struct Outcome<'a> {
    /// The report's `mode`.
    pub mode: &'static str,
    /// The server.
    pub url: String,
    /// Connections asked for.
    pub conns: usize,
    /// Connections open when sending started.
    pub conns_open: usize,
    /// Rooms.
    pub rooms: usize,
    /// Senders.
    pub senders: usize,
    /// Messages per second per sender.
    pub rate: f64,
    /// Content bytes.
    pub payload_bytes: usize,
    /// The measured window.
    pub duration: Duration,
    /// `--max-p99`, `--min-delivery`, `--allow-loss`.
    pub max_p99: Option<f64>,
    /// See above.
    pub min_delivery: Option<f64>,
    /// See above.
    pub allow_loss: bool,
    /// `--server-pid`.
    pub server_pid: Option<u32>,
    /// The merged counts.
    pub stats: &'a Stats,
    /// The samples at the window's start and end.
    pub s0: &'a Sample,
    /// See above.
    pub s1: &'a Sample,
}

/// The report of a fan-out-shaped run: figures, checks, warnings.
pub fn report(o: Outcome<'_>) -> FanoutReport {
    let stats = o.stats;
    let window_s = o.duration.as_secs_f64().max(1e-9);
    let mut warnings = Vec::new();
    let gen = generator(o.s0, o.s1);
    let mut srv = server(o.server_pid, o.s0, o.s1, &mut warnings);
    if let Some(s) = srv.as_mut() {
        if stats.frames_in_window > 0 {
            s.cpu_ns_per_frame = Some(s.cpu_ms * 1e6 / stats.frames_in_window as f64);
        }
    }
    common_warnings(stats, &gen, o.conns, &mut warnings);
    if stats.send_skipped > 0 {
        warnings.push(format!(
            "{} sends were skipped because senders fell behind schedule: the offered load \
             was lower than asked",
            stats.send_skipped
        ));
    }
    if stats.sent > 0 && stats.accepted < stats.sent {
        warnings.push(format!(
            "the server echoed only {} of {} messages back to their senders",
            stats.accepted, stats.sent
        ));
    }
    if stats.sent == 0 {
        warnings.push("nothing was sent in the window".into());
    }
    let latency = Percentiles::of(&stats.latency);
    let ratio = stats.delivery_ratio();
    let mut checks = Vec::new();
    if let Some(max) = o.max_p99 {
        checks.push(Check {
            name: "p99 latency".into(),
            limit: format!("<= {max} ms"),
            value: format!("{:.3} ms", latency.p99),
            pass: latency.p99 <= max && latency.count > 0,
        });
    }
    if let Some(min) = o.min_delivery {
        checks.push(Check {
            name: "delivery ratio".into(),
            limit: format!(">= {min}"),
            value: format!("{ratio:.5}"),
            pass: ratio >= min && stats.expected > 0,
        });
    }
    if !o.allow_loss {
        checks.push(Check {
            name: "gaps, duplicates, order".into(),
            limit: "0 (--allow-loss to ignore)".into(),
            value: format!(
                "{} gaps, {} duplicates, {} out of order",
                stats.gaps, stats.duplicates, stats.order_violations
            ),
            pass: stats.integrity_violations() == 0,
        });
    }
    let pass = checks.iter().all(|c| c.pass);
    FanoutReport {
        mode: o.mode,
        url: o.url,
        conns_requested: o.conns,
        conns_open: o.conns_open,
        rooms: o.rooms,
        senders: o.senders,
        rate_per_sender: o.rate,
        payload_bytes: o.payload_bytes,
        window_s,
        sent: stats.sent,
        accepted: stats.accepted,
        expected: stats.expected,
        delivered: stats.delivered,
        delivery_ratio: ratio,
        sent_per_sec: stats.sent as f64 / window_s,
        delivered_per_sec: stats.delivered as f64 / window_s,
        frames_received_per_sec: stats.frames_in_window as f64 / window_s,
        send_skipped: stats.send_skipped,
        latency_ms: latency,
        integrity: Integrity::of(stats),
        errors: errors(stats),
        generator: gen,
        server: srv,
        v2: None,
        checks,
        pass,
        warnings,
    }
}

/// Runs one fan-out measurement at `rate` messages/s per sender.
pub fn measure(a: &FanoutArgs, rate: f64, progress: &mut Progress) -> Result<FanoutReport> {
    let c = &a.common;
    let rooms = a.rooms as usize;
    let p = plan(
        c,
        a.conns,
        rooms,
        a.senders,
        rate,
        usize::from(a.payload_bytes),
    )?;
    let url = p.target.url.clone();
    let engine = Engine::start(p)?;
    wait_settled(&engine, a.conns, progress)?;
    let conns_open = engine.open();
    if conns_open == 0 {
        let stats = engine.stop()?;
        return Err(no_connection(&url, &stats));
    }
    if conns_open < a.conns {
        progress.note(&format!(
            "warning: only {conns_open} of {} connections opened",
            a.conns
        ));
    }
    let (s0, s1) = window(
        &engine,
        a.warmup,
        a.duration,
        a.drain,
        a.conns,
        c.server_pid,
        progress,
    );
    let stats = engine.stop()?;
    Ok(report(Outcome {
        mode: "fanout",
        url,
        conns: a.conns,
        conns_open,
        rooms,
        senders: a.senders,
        rate,
        payload_bytes: usize::from(a.payload_bytes),
        duration: a.duration,
        max_p99: a.max_p99,
        min_delivery: a.min_delivery,
        allow_loss: a.allow_loss,
        server_pid: c.server_pid,
        stats: &stats,
        s0: &s0,
        s1: &s1,
    }))
}

/// `fanout`.
pub fn run(a: &FanoutArgs) -> Result<FanoutReport> {
    let mut progress = Progress::new(!a.common.json);
    let r = measure(a, a.rate, &mut progress);
    progress.finish();
    r
}
