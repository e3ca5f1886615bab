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

impl Integrity {
    /// What a run's receive side counted.
    pub fn of(stats: &crate::stats::Stats) -> Integrity {
        Integrity {
            gaps: stats.gaps,
            missing: stats.missing,
            duplicates: stats.duplicates,
            order_violations: stats.order_violations,
        }
    }
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
    /// Protocol v2's figures (`rooms`, `typing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v2: Option<V2Figures>,
    /// Threshold checks.
    pub checks: Vec<Check>,
    /// All checks passed.
    pub pass: bool,
    /// Things that make the figures less trustworthy.
    pub warnings: Vec<String>,
}

/// What a protocol v2 run (`rooms`, `typing`) measured besides the fan-out figures.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct V2Figures {
    /// Rooms each connection subscribed to.
    pub subscriptions_per_conn: usize,
    /// Subscriptions the server confirmed before sending started.
    pub subscriptions: usize,
    /// Time from asking every connection to subscribe to the last confirmation, s.
    pub subscribe_seconds: f64,
    /// Server RSS growth per open connection while connecting (before any subscription),
    /// bytes (with `--server-pid` and `--settle` > 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_per_conn_bytes: Option<f64>,
    /// Server RSS growth per subscription while every connection subscribed to its
    /// first room, bytes: this step creates the rooms, so their cost is in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_per_first_subscription_bytes: Option<f64>,
    /// Server RSS growth per subscription while the connections subscribed to their
    /// other rooms (which exist by then), bytes: a subscription's own cost (with one
    /// room per connection, the first step's figure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_per_subscription_bytes: Option<f64>,
    /// `ack` frames received (acks are not deliveries).
    pub acks: u64,
    /// Acks of messages sent in the window.
    pub acks_in_window: u64,
    /// Acks with `duplicate:true`.
    pub duplicate_acks: u64,
    /// Send → ack time of the messages sent in the window, ms.
    pub ack_latency_ms: Percentiles,
    /// `typing` frames the generator sent (whole run).
    pub typing_sent: u64,
    /// `typing` frames received during the window.
    pub typing_received: u64,
    /// `presence` frames received during the window.
    pub presence_received: u64,
    /// Typing frames received per connection per second of the window.
    pub typing_per_member_per_sec: f64,
    /// Presence frames received per connection per second of the window.
    pub presence_per_member_per_sec: f64,
    /// The most typing frames per connection per second the coalescing allows (one per
    /// room and typing interval, plus one per room at the window's edge).
    pub typing_bound_per_member_per_sec: f64,
    /// The same for presence (one per room and `PRESENCE_INTERVAL_MS`).
    pub presence_bound_per_member_per_sec: f64,
    /// Connections closed and replaced per second (asked).
    pub churn_per_sec: f64,
    /// Connections the generator closed and replaced (whole run).
    pub churned: u64,
    /// Chat frames of a room the connection had not subscribed to.
    pub unknown_room: u64,
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
    if let Some(v) = &r.v2 {
        v2_rows(&mut o, v);
    }
    errors_rows(&mut o, &r.errors);
    generator_rows(&mut o, &r.generator, &r.server);
    checks_rows(&mut o, &r.checks, &r.warnings, r.pass);
    o
}

fn v2_rows(o: &mut String, v: &V2Figures) {
    row(
        o,
        "subscriptions",
        format!(
            "{} ({} per connection), confirmed in {:.2} s",
            v.subscriptions, v.subscriptions_per_conn, v.subscribe_seconds
        ),
    );
    if let Some(b) = v.rss_per_conn_bytes {
        row(o, "server RSS per connection", format!("{b:.0} B"));
    }
    if let Some(b) = v.rss_per_first_subscription_bytes {
        row(
            o,
            "server RSS per 1st subscription",
            format!("{b:.1} B (rooms created)"),
        );
    }
    if let Some(b) = v.rss_per_subscription_bytes {
        row(o, "server RSS per subscription", format!("{b:.1} B"));
    }
    row(
        o,
        "acks (in window / dup)",
        format!("{} ({} / {})", v.acks, v.acks_in_window, v.duplicate_acks),
    );
    let a = &v.ack_latency_ms;
    row(
        o,
        "ack latency ms p50/p99",
        format!("{:.3} / {:.3}", a.p50, a.p99),
    );
    row(
        o,
        "typing per member",
        format!(
            "{:.2} /s (bound {:.2}; {} received, {} sent)",
            v.typing_per_member_per_sec,
            v.typing_bound_per_member_per_sec,
            v.typing_received,
            v.typing_sent
        ),
    );
    row(
        o,
        "presence per member",
        format!(
            "{:.2} /s (bound {:.2}; {} received)",
            v.presence_per_member_per_sec, v.presence_bound_per_member_per_sec, v.presence_received
        ),
    );
    if v.churn_per_sec > 0.0 {
        row(
            o,
            "churn",
            format!("{:.1} /s asked, {} replaced", v.churn_per_sec, v.churned),
        );
    }
    if v.unknown_room > 0 {
        row(o, "chat of unsubscribed rooms", v.unknown_room);
    }
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

/// One value of a `/metrics` series.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricPoint {
    /// Its labels (e.g. `worker` → `0`).
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// A `/metrics` column of the soak table: a title and the series it shows (the first
/// of `names` the server exposes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricColumn {
    /// Short title.
    pub title: String,
    /// Series names, in order of preference (aliases across server versions).
    pub names: Vec<String>,
    /// A queue depth (its maximum is part of the verdict).
    pub queue: bool,
}

/// One soak sample: the server's resources now, and what happened since the last one.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SoakSample {
    /// Seconds since sending started.
    pub elapsed_s: f64,
    /// The server's VmRSS, bytes.
    pub server_rss_bytes: Option<u64>,
    /// Entries in `/proc/<pid>/fd`.
    pub server_fds: Option<u64>,
    /// The server's CPU over the interval, % of one core.
    pub server_cpu_percent: Option<f64>,
    /// The generator's CPU over the interval, % of one core.
    pub generator_cpu_percent: f64,
    /// Connections the generator has open.
    pub conns_open: usize,
    /// Messages sent in the interval.
    pub sent: u64,
    /// Deliveries of the generator's messages received in the interval.
    pub delivered: u64,
    /// Error frames and failed connects in the interval.
    pub errors: u64,
    /// Connections the server or the network ended in the interval (churn answered
    /// wrongly or not at all included).
    pub unexpected_closes: u64,
    /// Connections the generator closed (churn) in the interval.
    pub churned: u64,
    /// Connections opened in the interval (replacements).
    pub opened: u64,
    /// Latency of the deliveries received in the interval, ms.
    pub latency_p50_ms: Option<f64>,
    /// p99 of the same.
    pub latency_p99_ms: Option<f64>,
    /// Each sampled series by name: its values, or `None` when the server does not
    /// expose it.
    pub metrics: BTreeMap<String, Option<Vec<MetricPoint>>>,
    /// Why `/metrics` could not be read this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_error: Option<String>,
}

impl SoakSample {
    /// The values of `column` in this sample (the first of its names exposed), if any.
    pub fn column<'a>(&'a self, column: &MetricColumn) -> Option<&'a [MetricPoint]> {
        column
            .names
            .iter()
            .find_map(|n| self.metrics.get(n).and_then(|v| v.as_deref()))
    }
}

/// The largest value of a series over the judged samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesMax {
    /// The column's title.
    pub title: String,
    /// The series that had it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its labels (`worker=0`), empty when it has none.
    pub labels: String,
    /// The largest value; `None` when the server never exposed the series.
    pub max: Option<f64>,
    /// Whether it is a queue depth.
    pub queue: bool,
}

/// Whether the server's resources stayed flat.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SoakVerdict {
    /// Samples before this many seconds were not judged.
    pub warmup_s: f64,
    /// Samples judged (after the warm-up, never the first).
    pub judged_samples: usize,
    /// Samples averaged at each end (a third of the judged ones, at least one).
    pub third: usize,
    /// Average RSS of the first third, bytes.
    pub rss_first_bytes: Option<f64>,
    /// Average RSS of the last third, bytes.
    pub rss_last_bytes: Option<f64>,
    /// (last − first) ÷ first, percent.
    pub rss_growth_percent: Option<f64>,
    /// Average open descriptors of the first third.
    pub fds_first: Option<f64>,
    /// Average open descriptors of the last third.
    pub fds_last: Option<f64>,
    /// last − first.
    pub fd_drift: Option<f64>,
    /// The largest value of each sampled series after the warm-up.
    pub series_max: Vec<SeriesMax>,
    /// The checks (RSS growth, descriptor drift, failures, enough samples).
    pub checks: Vec<Check>,
    /// All checks passed.
    pub pass: bool,
}

/// Totals over the whole soak.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SoakTotals {
    /// Messages sent.
    pub sent: u64,
    /// Of those, echoed back to their sender.
    pub accepted: u64,
    /// Sum over sent messages of their room's members at send time (churn makes this
    /// approximate).
    pub expected: u64,
    /// Deliveries received (to connections opened before the message was sent).
    pub delivered: u64,
    /// delivered ÷ expected (approximate under churn).
    pub delivery_ratio: f64,
    /// Upgrades completed, replacements included.
    pub conns_opened: u64,
    /// Connections closed by churn and answered with close 1000.
    pub churned: u64,
    /// Churn ticks that found no open connection to close.
    pub churn_missed: u64,
    /// Sends skipped because a sender fell behind.
    pub send_skipped: u64,
    /// End-to-end latency of every delivery, ms.
    pub latency_ms: Percentiles,
    /// Ordering by `seq`, per connection.
    pub integrity: Integrity,
}

/// A soak run.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SoakReport {
    /// `soak`.
    pub mode: &'static str,
    /// The server.
    pub url: String,
    /// Where `/metrics` was read (`None`: not scraped).
    pub metrics_url: Option<String>,
    /// Its PID.
    pub server_pid: u32,
    /// Connections asked for.
    pub conns_requested: usize,
    /// Connections open when sending started.
    pub conns_open: usize,
    /// Rooms.
    pub rooms: usize,
    /// Churn, percent of the connections per second.
    pub churn_percent_per_sec: f64,
    /// Churn, connections per second.
    pub churn_per_sec: f64,
    /// Messages per second, in total.
    pub rate: f64,
    /// Senders.
    pub senders: usize,
    /// Messages per second per sender.
    pub rate_per_sender: f64,
    /// Content bytes.
    pub payload_bytes: usize,
    /// Planned duration, s.
    pub duration_s: f64,
    /// Time between samples, s.
    pub sample_every_s: f64,
    /// The `/metrics` columns.
    pub columns: Vec<MetricColumn>,
    /// The samples, in order; the first is taken when sending starts.
    pub samples: Vec<SoakSample>,
    /// Totals.
    pub totals: SoakTotals,
    /// Failures and drops.
    pub errors: Errors,
    /// The generator's own CPU over the run.
    pub generator: Generator,
    /// Flatness.
    pub verdict: SoakVerdict,
    /// The verdict passed.
    pub pass: bool,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// A count or size in few characters: `950`, `12.3k`, `4.56M`.
pub fn compact_num(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        format!("{v}")
    } else if a >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A column's values in a sample, joined with `/` (per worker, in worker order), or `—`.
pub fn column_text(s: &SoakSample, c: &MetricColumn) -> String {
    match s.column(c) {
        None => "—".into(),
        Some([]) => "—".into(),
        Some(points) => points
            .iter()
            .map(|p| compact_num(p.value))
            .collect::<Vec<_>>()
            .join("/"),
    }
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{v:.2}"))
}

fn opt_mib(v: Option<u64>) -> String {
    v.map_or_else(|| "—".into(), |b| format!("{:.1}", b as f64 / 1048576.0))
}

fn opt_num<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "—".into(), |v| v.to_string())
}

/// The progress line for one sample (printed as it is taken).
pub fn soak_line(s: &SoakSample, wanted: usize, columns: &[MetricColumn]) -> String {
    let mut o = format!(
        "[{:>6.0}s] rss {} MiB, fds {}, cpu {} | conns {}/{wanted} | sent {} deliv {} err {} \
         closes {} churn {} | p50 {} p99 {} ms",
        s.elapsed_s,
        opt_mib(s.server_rss_bytes),
        opt_num(s.server_fds),
        s.server_cpu_percent
            .map_or_else(|| "—".into(), |c| format!("{c:.0}%")),
        s.conns_open,
        s.sent,
        s.delivered,
        s.errors,
        s.unexpected_closes,
        s.churned,
        opt_ms(s.latency_p50_ms),
        opt_ms(s.latency_p99_ms),
    );
    for c in columns {
        let _ = write!(o, " | {} {}", c.title, column_text(s, c));
    }
    if let Some(e) = &s.metrics_error {
        let _ = write!(o, " | /metrics: {e}");
    }
    o
}

/// The human table of a soak run: one row per sample, totals, verdict.
pub fn soak_text(r: &SoakReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "hubbub-loadtest soak against {}", r.url);
    row(
        &mut o,
        "connections",
        format!(
            "{} open of {}, {} rooms; churn {}%/s ({:.1}/s, random connections, replaced in \
             the same room)",
            r.conns_open, r.conns_requested, r.rooms, r.churn_percent_per_sec, r.churn_per_sec
        ),
    );
    row(
        &mut o,
        "chat",
        format!(
            "{} msg/s from {} senders ({:.2}/s each), {} content bytes",
            r.rate, r.senders, r.rate_per_sender, r.payload_bytes
        ),
    );
    row(
        &mut o,
        "duration",
        format!(
            "{:.0} s, a sample every {:.1} s (server pid {}, /metrics {})",
            r.duration_s,
            r.sample_every_s,
            r.server_pid,
            r.metrics_url.as_deref().unwrap_or("not read")
        ),
    );
    let _ = write!(
        o,
        "\n  {:>7} {:>8} {:>6} {:>5} {:>6} {:>6} {:>8} {:>5} {:>6} {:>5} {:>7} {:>7}",
        "elapsed",
        "rss MiB",
        "fds",
        "cpu%",
        "conns",
        "sent",
        "deliv",
        "err",
        "closes",
        "churn",
        "p50 ms",
        "p99 ms"
    );
    for c in &r.columns {
        let _ = write!(o, " {:>10}", c.title);
    }
    let _ = writeln!(o);
    for s in &r.samples {
        let _ = write!(
            o,
            "  {:>6.0}s {:>8} {:>6} {:>5} {:>6} {:>6} {:>8} {:>5} {:>6} {:>5} {:>7} {:>7}",
            s.elapsed_s,
            opt_mib(s.server_rss_bytes),
            opt_num(s.server_fds),
            s.server_cpu_percent
                .map_or_else(|| "—".into(), |c| format!("{c:.0}")),
            s.conns_open,
            s.sent,
            compact_num(s.delivered as f64),
            s.errors,
            s.unexpected_closes,
            s.churned,
            opt_ms(s.latency_p50_ms),
            opt_ms(s.latency_p99_ms),
        );
        for c in &r.columns {
            let _ = write!(o, " {:>10}", column_text(s, c));
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o);
    let t = &r.totals;
    row(
        &mut o,
        "sent / delivered",
        format!(
            "{} / {} (delivery {:.5}, approximate under churn)",
            t.sent, t.delivered, t.delivery_ratio
        ),
    );
    row(
        &mut o,
        "connections opened / churned",
        format!(
            "{} / {} ({} churn ticks found nothing to close)",
            t.conns_opened, t.churned, t.churn_missed
        ),
    );
    let l = &t.latency_ms;
    row(
        &mut o,
        "latency ms p50/p99/p99.9/max",
        format!("{:.3} / {:.3} / {:.3} / {:.3}", l.p50, l.p99, l.p999, l.max),
    );
    let i = &t.integrity;
    row(
        &mut o,
        "gaps/dups/out-of-order",
        format!(
            "{} ({} missing) / {} / {}",
            i.gaps, i.missing, i.duplicates, i.order_violations
        ),
    );
    if t.send_skipped > 0 {
        row(&mut o, "sends skipped (behind)", t.send_skipped);
    }
    errors_rows(&mut o, &r.errors);
    generator_rows(&mut o, &r.generator, &None);
    let v = &r.verdict;
    let _ = writeln!(
        o,
        "  verdict over {} samples after {:.0} s of warm-up (first third vs last third, {} \
         each):",
        v.judged_samples, v.warmup_s, v.third
    );
    let f = |x: Option<f64>| x.map_or_else(|| "—".into(), |x| format!("{x:.1}"));
    row(
        &mut o,
        "server RSS MiB",
        format!(
            "{} -> {} ({}%)",
            v.rss_first_bytes
                .map_or_else(|| "—".into(), |b| format!("{:.1}", b / 1048576.0)),
            v.rss_last_bytes
                .map_or_else(|| "—".into(), |b| format!("{:.1}", b / 1048576.0)),
            v.rss_growth_percent
                .map_or_else(|| "—".into(), |p| format!("{p:+.2}"))
        ),
    );
    row(
        &mut o,
        "server descriptors",
        format!(
            "{} -> {} ({})",
            f(v.fds_first),
            f(v.fds_last),
            v.fd_drift
                .map_or_else(|| "—".into(), |d| format!("{d:+.1}"))
        ),
    );
    for m in &v.series_max {
        let what = match (&m.name, m.max) {
            (Some(name), Some(max)) if m.labels.is_empty() => {
                format!("{} ({name})", compact_num(max))
            }
            (Some(name), Some(max)) => format!("{} ({name}{{{}}})", compact_num(max), m.labels),
            _ => "— (not exposed)".into(),
        };
        row(&mut o, &format!("max {}", m.title), what);
    }
    checks_rows(&mut o, &v.checks, &r.warnings, r.pass);
    o
}
