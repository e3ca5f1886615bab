//! Results: what is reported, the human table and the JSON object.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::stats::{Counted, Percentiles};

/// What the generator itself used over the measured window.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Generator {
    /// Engine threads.
    pub threads: usize,
    /// `io_uring` or `epoll`.
    pub driver: &'static str,
    /// CPU of the whole process over the window, as % of one core.
    pub cpu_percent: f64,
    /// CPU of each engine thread over the window, % of one core.
    pub cpu_percent_per_thread: Vec<f64>,
    /// Some engine thread used over 90 % of a core: the figures may measure the
    /// generator rather than the server.
    pub saturated: bool,
}

/// The server's figures, with `--server-pid`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Server {
    /// Its PID.
    pub pid: u32,
    /// CPU time (user + system) over the window, ms.
    pub cpu_ms: f64,
    /// CPU % of one core over the window.
    pub cpu_percent: f64,
    /// CPU ns per chat frame received by the generator in the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_ns_per_frame: Option<f64>,
    /// CPU µs per handshake (connect mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_us_per_handshake: Option<f64>,
    /// VmRSS before, bytes.
    pub rss_before_bytes: u64,
    /// VmRSS after, bytes.
    pub rss_after_bytes: u64,
}

/// One pass/fail check.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// The limit, as text (`<= 10 ms`).
    pub limit: String,
    /// The measured value, as text.
    pub value: String,
    /// Whether it passed.
    pub pass: bool,
}

/// Integrity counters.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Integrity {
    /// `seq` jumps forward.
    pub gaps: u64,
    /// Seqs skipped over by the gaps.
    pub missing: u64,
    /// Repeated seqs.
    pub duplicates: u64,
    /// Seqs lower than one already seen.
    pub order_violations: u64,
}

/// Failures and drops, by kind.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Errors {
    /// Error frames by code.
    pub error_frames: BTreeMap<String, u64>,
    /// Connections the server or network ended, by close code / kind.
    pub closes: BTreeMap<String, Counted>,
    /// Connections that never opened, by HTTP status / kind.
    pub connect_failures: BTreeMap<String, Counted>,
}

/// A fan-out run (also one step of `steps`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FanoutReport {
    /// `fanout`.
    pub mode: &'static str,
    /// The server.
    pub url: String,
    /// Connections asked for.
    pub conns_requested: usize,
    /// Connections open when the window began.
    pub conns_open: usize,
    /// Rooms.
    pub rooms: usize,
    /// Senders.
    pub senders: usize,
    /// Messages per second per sender.
    pub rate_per_sender: f64,
    /// Content bytes.
    pub payload_bytes: usize,
    /// Measured window, s.
    pub window_s: f64,
    /// Messages sent in the window.
    pub sent: u64,
    /// Of those, the ones the server echoed to their sender (it accepted them).
    pub accepted: u64,
    /// Sum over sent messages of their room's members at send time.
    pub expected: u64,
    /// Deliveries of those messages received.
    pub delivered: u64,
    /// delivered ÷ expected.
    pub delivery_ratio: f64,
    /// Offered load: sent ÷ window.
    pub sent_per_sec: f64,
    /// delivered ÷ window.
    pub delivered_per_sec: f64,
    /// Chat frames received during the window ÷ window.
    pub frames_received_per_sec: f64,
    /// Sends skipped because a sender fell behind (the generator could not keep up).
    pub send_skipped: u64,
    /// End-to-end latency of the delivered messages, ms.
    pub latency_ms: Percentiles,
    /// Ordering by `seq`.
    pub integrity: Integrity,
    /// Failures and drops.
    pub errors: Errors,
    /// The generator's own CPU.
    pub generator: Generator,
    /// The server's CPU and memory, with `--server-pid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<Server>,
    /// Threshold checks.
    pub checks: Vec<Check>,
    /// All checks passed.
    pub pass: bool,
    /// Things that make the figures less trustworthy.
    pub warnings: Vec<String>,
}

/// A `steps` run.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepsReport {
    /// `steps`.
    pub mode: &'static str,
    /// Each step, in order.
    pub steps: Vec<FanoutReport>,
    /// The last step that met both criteria (the knee), by index into `steps`.
    pub knee_step: Option<usize>,
    /// Its rate per sender.
    pub knee_rate_per_sender: Option<f64>,
    /// Its delivered frames/s.
    pub knee_delivered_per_sec: Option<f64>,
    /// Why stepping stopped.
    pub stopped_because: String,
    /// A knee was found and no step lost, duplicated or reordered messages (unless
    /// allowed).
    pub pass: bool,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// An `idle` or `connect` run.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnsReport {
    /// `idle` or `connect`.
    pub mode: &'static str,
    /// The server.
    pub url: String,
    /// Connections asked for.
    pub conns_requested: usize,
    /// Connections that completed the upgrade.
    pub conns_opened: u64,
    /// Connections still open at the end.
    pub conns_open_at_end: usize,
    /// Rooms.
    pub rooms: usize,
    /// Time from the first connect to the last one settling, s.
    pub connect_seconds: f64,
    /// Successful handshakes per second over that time.
    pub handshakes_per_sec: f64,
    /// Handshake latency (connect to 101), ms.
    pub handshake_ms: Percentiles,
    /// Server RSS growth per open connection, bytes (idle, with `--server-pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_per_conn_bytes: Option<f64>,
    /// Frames received (backlog, presence, …).
    pub frames_received: u64,
    /// Failures and drops.
    pub errors: Errors,
    /// The generator's own CPU.
    pub generator: Generator,
    /// The server's CPU and memory, with `--server-pid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<Server>,
    /// Threshold checks.
    pub checks: Vec<Check>,
    /// All checks passed.
    pub pass: bool,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// JSON text of any report.
pub fn to_json<T: Serialize>(r: &T) -> String {
    sonic_rs::to_string(r).unwrap_or_else(|e| format!("{{\"error\":\"cannot encode: {e}\"}}"))
}

fn row(out: &mut String, k: &str, v: impl std::fmt::Display) {
    let _ = writeln!(out, "  {k:<28} {v}");
}

fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.3} M/s", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k/s", v / 1e3)
    } else {
        format!("{v:.1} /s")
    }
}

fn errors_rows(out: &mut String, e: &Errors) {
    for (k, v) in &e.error_frames {
        row(out, &format!("error frames: {k}"), v);
    }
    for (k, v) in &e.closes {
        row(
            out,
            &format!("dropped: {k}"),
            format!("{} ({})", v.count, v.example),
        );
    }
    for (k, v) in &e.connect_failures {
        row(
            out,
            &format!("connect failed: {k}"),
            format!("{} ({})", v.count, v.example),
        );
    }
}

fn generator_rows(out: &mut String, g: &Generator, s: &Option<Server>) {
    let per: Vec<String> = g
        .cpu_percent_per_thread
        .iter()
        .map(|p| format!("{p:.0}%"))
        .collect();
    row(
        out,
        "generator CPU",
        format!(
            "{:.0}% of a core ({} thread(s): {}; {})",
            g.cpu_percent,
            g.threads,
            per.join(", "),
            g.driver
        ),
    );
    if let Some(s) = s {
        row(
            out,
            "server CPU",
            format!("{:.0}% of a core (pid {})", s.cpu_percent, s.pid),
        );
        if let Some(ns) = s.cpu_ns_per_frame {
            row(out, "server CPU per frame", format!("{ns:.0} ns"));
        }
        if let Some(us) = s.cpu_us_per_handshake {
            row(out, "server CPU per handshake", format!("{us:.1} µs"));
        }
        row(
            out,
            "server RSS",
            format!(
                "{:.1} MiB -> {:.1} MiB",
                s.rss_before_bytes as f64 / 1048576.0,
                s.rss_after_bytes as f64 / 1048576.0
            ),
        );
    }
}

fn checks_rows(out: &mut String, checks: &[Check], warnings: &[String], pass: bool) {
    for c in checks {
        let _ = writeln!(
            out,
            "  {} {:<26} {} (limit {})",
            if c.pass { "PASS" } else { "FAIL" },
            c.name,
            c.value,
            c.limit
        );
    }
    for w in warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    let _ = writeln!(out, "  result: {}", if pass { "PASS" } else { "FAIL" });
}

/// The human table of a fan-out run.
pub fn fanout_text(r: &FanoutReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "hubbub-loadtest {} against {}", r.mode, r.url);
    row(
        &mut o,
        "connections",
        format!(
            "{} open of {}, {} rooms",
            r.conns_open, r.conns_requested, r.rooms
        ),
    );
    row(
        &mut o,
        "senders",
        format!(
            "{} × {} msg/s, {} content bytes",
            r.senders, r.rate_per_sender, r.payload_bytes
        ),
    );
    row(&mut o, "window", format!("{:.1} s", r.window_s));
    row(
        &mut o,
        "sent / accepted",
        format!("{} / {} ({})", r.sent, r.accepted, fmt_rate(r.sent_per_sec)),
    );
    row(
        &mut o,
        "delivered / expected",
        format!("{} / {} = {:.5}", r.delivered, r.expected, r.delivery_ratio),
    );
    row(&mut o, "delivered frames", fmt_rate(r.delivered_per_sec));
    row(
        &mut o,
        "received frames",
        fmt_rate(r.frames_received_per_sec),
    );
    let l = &r.latency_ms;
    row(
        &mut o,
        "latency ms p50/p90/p99",
        format!("{:.3} / {:.3} / {:.3}", l.p50, l.p90, l.p99),
    );
    row(
        &mut o,
        "latency ms p99.9/max",
        format!("{:.3} / {:.3}", l.p999, l.max),
    );
    let i = &r.integrity;
    row(
        &mut o,
        "gaps/dups/out-of-order",
        format!(
            "{} ({} missing) / {} / {}",
            i.gaps, i.missing, i.duplicates, i.order_violations
        ),
    );
    if r.send_skipped > 0 {
        row(&mut o, "sends skipped (behind)", r.send_skipped);
    }
    errors_rows(&mut o, &r.errors);
    generator_rows(&mut o, &r.generator, &r.server);
    checks_rows(&mut o, &r.checks, &r.warnings, r.pass);
    o
}

/// The human table of a steps run.
pub fn steps_text(r: &StepsReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "hubbub-loadtest steps");
    let _ = writeln!(
        o,
        "  {:>4} {:>10} {:>12} {:>12} {:>9} {:>9} {:>9} {:>6}",
        "step", "rate/snd", "sent/s", "deliv/s", "delivery", "p50 ms", "p99 ms", "gen%"
    );
    for (n, s) in r.steps.iter().enumerate() {
        let gen = s
            .generator
            .cpu_percent_per_thread
            .iter()
            .cloned()
            .fold(0.0, f64::max);
        let _ = writeln!(
            o,
            "  {:>4} {:>10.1} {:>12.0} {:>12.0} {:>9.5} {:>9.3} {:>9.3} {:>5.0}% {}",
            n + 1,
            s.rate_per_sender,
            s.sent_per_sec,
            s.delivered_per_sec,
            s.delivery_ratio,
            s.latency_ms.p50,
            s.latency_ms.p99,
            gen,
            if s.pass { "ok" } else { "FAIL" }
        );
    }
    match (r.knee_step, r.knee_delivered_per_sec) {
        (Some(k), Some(d)) => {
            let _ = writeln!(
                o,
                "  knee: step {} — {} delivered frames at {:.1} msg/s per sender",
                k + 1,
                fmt_rate(d),
                r.knee_rate_per_sender.unwrap_or(0.0)
            );
        }
        _ => {
            let _ = writeln!(o, "  knee: none (the first step already failed)");
        }
    }
    let _ = writeln!(o, "  stopped: {}", r.stopped_because);
    for w in &r.warnings {
        let _ = writeln!(o, "  warning: {w}");
    }
    let _ = writeln!(o, "  result: {}", if r.pass { "PASS" } else { "FAIL" });
    o
}

/// The human table of an idle or connect run.
pub fn conns_text(r: &ConnsReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "hubbub-loadtest {} against {}", r.mode, r.url);
    row(
        &mut o,
        "connections",
        format!(
            "{} opened of {}, {} open at the end, {} rooms",
            r.conns_opened, r.conns_requested, r.conns_open_at_end, r.rooms
        ),
    );
    row(
        &mut o,
        "connect time",
        format!("{:.3} s", r.connect_seconds),
    );
    row(&mut o, "handshakes", fmt_rate(r.handshakes_per_sec));
    let h = &r.handshake_ms;
    row(
        &mut o,
        "handshake ms p50/p99/max",
        format!("{:.3} / {:.3} / {:.3}", h.p50, h.p99, h.max),
    );
    if let Some(b) = r.rss_per_conn_bytes {
        row(&mut o, "server RSS per connection", format!("{b:.0} B"));
    }
    row(&mut o, "frames received", r.frames_received);
    errors_rows(&mut o, &r.errors);
    generator_rows(&mut o, &r.generator, &r.server);
    checks_rows(&mut o, &r.checks, &r.warnings, r.pass);
    o
}
