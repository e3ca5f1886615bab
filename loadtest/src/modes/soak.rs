//! `soak`: many connections held for a long time with churn and steady chat, the
//! server's resources sampled over time, and a verdict on whether they stayed flat.
//!
//! The engine does the work (churn and replacement included, see [`crate::engine`]); this
//! module only samples, once per `--sample-every` on the main thread: `/proc/<pid>`
//! (VmRSS, descriptors, CPU), the engine's published counters and per-interval latency
//! histogram, and the server's `/metrics`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{common_warnings, errors, generator, no_connection, plan, sample, wait_settled};
use crate::cli::SoakArgs;
use crate::engine::{Engine, LiveTotals};
use crate::procfs;
use crate::progress::Progress;
use crate::prometheus::{self, MetricsUrl};
use crate::report::{
    Check, Integrity, MetricColumn, MetricPoint, SeriesMax, SoakReport, SoakSample, SoakTotals,
    SoakVerdict,
};
use crate::stats::Percentiles;
use crate::target::Target;

/// The server's default per-connection rate limit (RATE_LIMIT_PER_SEC).
const SERVER_DEFAULT_RATE_LIMIT: f64 = 5.0;

/// What one default sender sends at most: half the server's default limit.
const DEFAULT_PER_SENDER: f64 = SERVER_DEFAULT_RATE_LIMIT / 2.0;

/// Messages a hubbub room keeps by default (HISTORY_SIZE): until every room's history is
/// full the server's memory grows by design.
const SERVER_DEFAULT_HISTORY: f64 = 1000.0;

/// Limit for one `/metrics` request.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// The `/metrics` columns sampled by default.
pub fn default_columns() -> Vec<MetricColumn> {
    let col = |title: &str, names: &[&str], queue: bool| MetricColumn {
        title: title.into(),
        names: names.iter().map(|n| n.to_string()).collect(),
        queue,
    };
    vec![
        col("queued B", &["hubbub_worker_queued_bytes"], true),
        col("mesh", &["hubbub_worker_mesh_backlog"], true),
        col("srv conns", &["hubbub_connections"], false),
        col("http", &["hubbub_http_connections"], false),
        // The first name is the one asked for; the second is what servers before it
        // expose.
        col(
            "persist q",
            &[
                "hubbub_persistence_queue_depth",
                "hubbub_persist_queue_depth",
            ],
            true,
        ),
    ]
}

/// The default columns plus one per `--metric` not already among them.
pub fn columns(extra: &[String]) -> Vec<MetricColumn> {
    let mut cols = default_columns();
    for name in extra {
        if !cols.iter().any(|c| c.names.contains(name)) {
            cols.push(MetricColumn {
                title: name.strip_prefix("hubbub_").unwrap_or(name).to_owned(),
                names: vec![name.clone()],
                queue: false,
            });
        }
    }
    cols
}

/// The warm-up the verdict skips: `asked`, or by default 1 min or the time the server's
/// default per-room history takes to fill at `rate` (+20 %), whichever is longer; at most
/// half of `duration` either way.
pub fn warmup(asked: Option<Duration>, duration: Duration, rooms: u32, rate: f64) -> Duration {
    let w = asked.unwrap_or_else(|| {
        let fill = if rate > 0.0 {
            SERVER_DEFAULT_HISTORY * f64::from(rooms) / rate * 1.2
        } else {
            0.0
        };
        Duration::from_secs_f64(fill.clamp(60.0, 86_400.0))
    });
    w.min(duration / 2)
}

/// The limits the verdict applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest RSS growth, percent.
    pub max_rss_growth_percent: f64,
    /// Largest descriptor drift (either way).
    pub max_fd_drift: u64,
    /// Most failed, dropped or unanswered connections.
    pub max_failures: u64,
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| sum / n as f64)
}

fn labels_text(p: &MetricPoint) -> String {
    p.labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect::<Vec<_>>()
        .join(",")
}

/// Judges flatness. The samples taken before `warmup_s`, and always the first one, are
/// left out; of the `n` others the first and last `max(1, n / 3)` are averaged, and the
/// last average is compared with the first: RSS growth in percent and descriptor drift.
/// `failures` (connections that failed, were dropped or whose close went unanswered) is
/// checked too. Needs two judged samples.
pub fn judge(
    samples: &[SoakSample],
    warmup_s: f64,
    limits: &Limits,
    failures: u64,
    columns: &[MetricColumn],
) -> SoakVerdict {
    let judged: Vec<&SoakSample> = samples
        .iter()
        .skip(1)
        .filter(|s| s.elapsed_s >= warmup_s)
        .collect();
    let n = judged.len();
    let third = (n / 3).max(1).min(n);
    let (first, last) = (&judged[..third], &judged[n - third..]);
    let avg = |part: &[&SoakSample], f: fn(&SoakSample) -> Option<u64>| {
        mean(part.iter().filter_map(|s| f(s)).map(|v| v as f64))
    };
    let rss_first = avg(first, |s| s.server_rss_bytes);
    let rss_last = avg(last, |s| s.server_rss_bytes);
    let fds_first = avg(first, |s| s.server_fds);
    let fds_last = avg(last, |s| s.server_fds);
    let growth = match (rss_first, rss_last) {
        (Some(a), Some(b)) if n >= 2 && a > 0.0 => Some((b - a) / a * 100.0),
        _ => None,
    };
    let drift = match (fds_first, fds_last) {
        (Some(a), Some(b)) if n >= 2 => Some(b - a),
        _ => None,
    };
    let mut checks = vec![Check {
        name: "samples after warm-up".into(),
        limit: ">= 2 (lengthen --duration or shorten --sample-every / --warmup)".into(),
        value: n.to_string(),
        pass: n >= 2,
    }];
    checks.push(Check {
        name: "server RSS growth".into(),
        limit: format!("<= {}%", limits.max_rss_growth_percent),
        value: growth.map_or_else(|| "not measured".into(), |g| format!("{g:+.2}%")),
        pass: growth.is_some_and(|g| g <= limits.max_rss_growth_percent),
    });
    checks.push(Check {
        name: "server descriptor drift".into(),
        limit: format!("<= {} either way", limits.max_fd_drift),
        value: drift.map_or_else(|| "not measured".into(), |d| format!("{d:+.1}")),
        pass: drift.is_some_and(|d| d.abs() <= limits.max_fd_drift as f64),
    });
    checks.push(Check {
        name: "failed or dropped".into(),
        limit: format!("<= {}", limits.max_failures),
        value: failures.to_string(),
        pass: failures <= limits.max_failures,
    });
    let series_max = columns
        .iter()
        .map(|c| {
            let mut best: Option<(f64, String, String)> = None;
            for s in &judged {
                let Some(name) = c
                    .names
                    .iter()
                    .find(|n| s.metrics.get(*n).is_some_and(Option::is_some))
                else {
                    continue;
                };
                for p in s.column(c).unwrap_or_default() {
                    if p.value.is_finite() && best.as_ref().is_none_or(|b| p.value > b.0) {
                        best = Some((p.value, name.clone(), labels_text(p)));
                    }
                }
            }
            SeriesMax {
                title: c.title.clone(),
                name: best.as_ref().map(|b| b.1.clone()),
                labels: best.as_ref().map(|b| b.2.clone()).unwrap_or_default(),
                max: best.map(|b| b.0),
                queue: c.queue,
            }
        })
        .collect();
    let pass = checks.iter().all(|c| c.pass);
    SoakVerdict {
        warmup_s,
        judged_samples: n,
        third: if n == 0 { 0 } else { third },
        rss_first_bytes: rss_first,
        rss_last_bytes: rss_last,
        rss_growth_percent: growth,
        fds_first,
        fds_last,
        fd_drift: drift,
        series_max,
        checks,
        pass,
    }
}

/// The series of `columns` in a parsed exposition, by name (`None`: not exposed), each
/// sorted by its `worker` label (numerically) and then by its other labels; values that
/// are not finite are left out.
pub fn pick(
    e: &prometheus::Exposition,
    columns: &[MetricColumn],
) -> BTreeMap<String, Option<Vec<MetricPoint>>> {
    let mut out = BTreeMap::new();
    for name in columns.iter().flat_map(|c| &c.names) {
        // NaN and ±Inf have no JSON form: such a value is left out.
        let mut points: Vec<MetricPoint> = e
            .get(name)
            .filter(|s| s.value.is_finite())
            .map(|s| MetricPoint {
                labels: s.labels.iter().cloned().collect(),
                value: s.value,
            })
            .collect();
        points.sort_by(|a, b| {
            let w = |p: &MetricPoint| p.labels.get("worker").and_then(|w| w.parse::<u64>().ok());
            w(a).cmp(&w(b)).then_with(|| a.labels.cmp(&b.labels))
        });
        out.insert(name.clone(), (!points.is_empty()).then_some(points));
    }
    out
}

/// Reads `/metrics` now: the picked series, or why not.
fn scrape(
    url: Option<&MetricsUrl>,
    columns: &[MetricColumn],
) -> (BTreeMap<String, Option<Vec<MetricPoint>>>, Option<String>) {
    let Some(url) = url else {
        return (BTreeMap::new(), None);
    };
    match prometheus::fetch(url, SCRAPE_TIMEOUT) {
        Ok(body) => {
            let e = prometheus::parse(&body);
            let err = (!e.errors.is_empty()).then(|| {
                format!(
                    "{} malformed lines skipped (first: {})",
                    e.errors.len(),
                    e.errors[0]
                )
            });
            (pick(&e, columns), err)
        }
        Err(e) => (BTreeMap::new(), Some(format!("{e:#}"))),
    }
}

/// The per-sample view of the run's state, to difference against the next one.
struct Mark {
    at: super::Sample,
    live: LiveTotals,
}

/// Runs `soak`.
pub fn run(a: &SoakArgs) -> Result<SoakReport> {
    let c = &a.common;
    let Some(pid) = c.server_pid else {
        bail!(
            "soak judges the server's memory and descriptors over time: pass --server-pid \
             <pid> (the server must run on this machine, as the same user)"
        );
    };
    procfs::rss_bytes(pid)
        .with_context(|| format!("cannot read /proc/{pid}/status: is --server-pid right?"))?;
    procfs::fd_count(pid).with_context(|| {
        format!("cannot list /proc/{pid}/fd (the server must run as the same user)")
    })?;
    if a.sample_every.is_zero() || a.sample_every > a.duration {
        bail!("--sample-every must be more than 0 and at most --duration");
    }
    if a.conns == 0 {
        bail!("--conns must be at least 1");
    }
    let senders = match a.senders {
        Some(s) => s,
        None if a.rate > 0.0 => ((a.rate / DEFAULT_PER_SENDER).ceil() as usize).min(a.conns),
        None => 0,
    };
    if a.rate > 0.0 && senders == 0 {
        bail!("--rate {} needs at least one sender (--senders)", a.rate);
    }
    if senders > a.conns {
        bail!("--senders {senders} is more than --conns {}", a.conns);
    }
    let per_sender = if senders > 0 {
        a.rate / senders as f64
    } else {
        0.0
    };
    let rooms = a.rooms as usize;
    let churn_per_sec = a.conns as f64 * a.churn / 100.0;
    let cols = columns(&a.metrics);
    let target = Target::resolve(&c.url)?;
    let metrics_url = match a.metrics_url.as_deref() {
        Some("none") | Some("") => None,
        Some(u) => Some(MetricsUrl::resolve(u)?),
        None => Some(MetricsUrl::for_target(&target)),
    };
    let max_fd_drift = a
        .max_fd_drift
        .unwrap_or_else(|| ((a.conns as f64 * 0.02).ceil() as u64).max(1));
    let warmup = warmup(a.warmup, a.duration, a.rooms, a.rate);
    let mut warnings = Vec::new();
    if per_sender > SERVER_DEFAULT_RATE_LIMIT {
        warnings.push(format!(
            "each sender sends {per_sender:.2} msg/s, over the server's default limit of \
             {SERVER_DEFAULT_RATE_LIMIT}/s: start it with RATE_LIMIT_PER_SEC=0 or give more \
             --senders"
        ));
    }

    let mut progress = Progress::new(!c.json);
    for w in &warnings {
        progress.note(&format!("warning: {w}"));
    }
    let mut p = plan(
        c,
        a.conns,
        rooms,
        senders,
        per_sender,
        usize::from(a.payload_bytes),
    )?;
    p.churn_per_sec = churn_per_sec;
    p.reconnect = true;
    p.interval_latency = true;
    let url = p.target.url.clone();
    let engine = Engine::start(p)?;
    // The first sample's interval is the connect phase.
    let mut prev = Mark {
        at: sample(&engine, Some(pid)),
        live: engine.live(),
    };
    wait_settled(&engine, a.conns, &mut progress)?;
    let conns_open = engine.open();
    if conns_open == 0 {
        let stats = engine.stop()?;
        progress.finish();
        return Err(no_connection(&url, &stats));
    }
    if conns_open < a.conns {
        progress.note(&format!(
            "warning: only {conns_open} of {} connections opened",
            a.conns
        ));
    }
    progress.note(&format!(
        "soak: {conns_open} connections, {rooms} rooms, churn {churn_per_sec:.1}/s, {} msg/s \
         from {senders} senders, {:.0} s, a sample every {:.1} s",
        a.rate,
        a.duration.as_secs_f64(),
        a.sample_every.as_secs_f64()
    ));

    let started = Instant::now();
    engine.start_sending(Duration::ZERO, a.duration);
    let run_start = sample(&engine, Some(pid));
    let mut samples = Vec::new();
    let n = (a.duration.as_secs_f64() / a.sample_every.as_secs_f64()).ceil() as u32;
    let take = |prev: &mut Mark, progress: &Progress| {
        let at = sample(&engine, Some(pid));
        let fds = procfs::fd_count(pid).ok();
        let live = engine.live();
        let lat = engine.take_interval_latency();
        let (metrics, metrics_error) = scrape(metrics_url.as_ref(), &cols);
        let secs = (at.at - prev.at.at).as_secs_f64().max(1e-9);
        let d = |f: fn(&LiveTotals) -> u64| f(&live).saturating_sub(f(&prev.live));
        let pct = (!lat.is_empty()).then(|| Percentiles::of(&lat));
        let s = SoakSample {
            elapsed_s: at.at.saturating_duration_since(started).as_secs_f64(),
            server_rss_bytes: at.server_rss,
            server_fds: fds,
            server_cpu_percent: match (prev.at.server_cpu, at.server_cpu) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1e9 / secs * 100.0),
                _ => None,
            },
            generator_cpu_percent: generator(&prev.at, &at).cpu_percent,
            conns_open: engine.open(),
            sent: d(|l| l.sent),
            delivered: d(|l| l.delivered),
            errors: d(|l| l.error_frames) + d(|l| l.connect_failures),
            unexpected_closes: d(|l| l.closes),
            churned: d(|l| l.churned),
            opened: d(|l| l.connected),
            latency_p50_ms: pct.map(|p| p.p50),
            latency_p99_ms: pct.map(|p| p.p99),
            metrics,
            metrics_error,
        };
        progress.note(&crate::report::soak_line(&s, a.conns, &cols));
        *prev = Mark { at, live };
        s
    };
    samples.push(take(&mut prev, &progress));
    if target.addr.ip().is_loopback()
        && samples[0]
            .server_fds
            .is_some_and(|f| f < samples[0].conns_open as u64)
    {
        let w = format!(
            "pid {pid} has fewer open descriptors ({}) than the generator has connections \
             ({}): is --server-pid the server's own PID (not a shell's)?",
            samples[0].server_fds.unwrap_or(0),
            samples[0].conns_open
        );
        progress.note(&format!("warning: {w}"));
        warnings.push(w);
    }
    for k in 1..=n {
        let due = started + a.sample_every.mul_f64(f64::from(k)).min(a.duration);
        loop {
            let now = Instant::now();
            if now >= due || !engine.threads_alive() {
                break;
            }
            progress.update("soaking", engine.open(), a.conns, engine.live());
            std::thread::sleep((due - now).min(Duration::from_millis(200)));
        }
        if !engine.threads_alive() {
            warnings.push("an engine thread stopped early: the soak ended early".into());
            break;
        }
        samples.push(take(&mut prev, &progress));
    }
    let end = sample(&engine, Some(pid));
    let stats = engine.stop()?;
    progress.finish();

    let gen = generator(&run_start, &end);
    common_warnings(&stats, &gen, a.conns, &mut warnings);
    // Replacements open too: say attempts, not "of --conns".
    let failed: u64 = stats.connect_failures.values().map(|c| c.count).sum();
    let shared_text = format!("{failed} of {} connections could not open", a.conns);
    for w in &mut warnings {
        if *w == shared_text {
            *w = format!(
                "{failed} of {} connection attempts failed (replacements included)",
                stats.connected + failed
            );
        }
    }
    if metrics_url.is_some() && samples.iter().all(|s| s.metrics_error.is_some()) {
        warnings.push(format!(
            "/metrics could not be read in any sample: {}",
            samples
                .last()
                .and_then(|s| s.metrics_error.clone())
                .unwrap_or_default()
        ));
    }
    if stats.integrity_violations() > 0 {
        warnings.push(format!(
            "{} gaps, {} duplicates, {} out of order in the connections' seq streams",
            stats.gaps, stats.duplicates, stats.order_violations
        ));
    }
    if stats.send_skipped > 0 {
        warnings.push(format!(
            "{} sends were skipped because senders fell behind schedule",
            stats.send_skipped
        ));
    }
    if a.rate > 0.0 && stats.delivered == 0 {
        warnings.push("no message was delivered".into());
    }
    let failures = stats
        .connect_failures
        .values()
        .map(|c| c.count)
        .sum::<u64>()
        + stats.closes.values().map(|c| c.count).sum::<u64>();
    let limits = Limits {
        max_rss_growth_percent: a.max_rss_growth,
        max_fd_drift,
        max_failures: a.max_failures,
    };
    let verdict = judge(&samples, warmup.as_secs_f64(), &limits, failures, &cols);
    Ok(SoakReport {
        mode: "soak",
        url,
        metrics_url: metrics_url.map(|m| m.url),
        server_pid: pid,
        conns_requested: a.conns,
        conns_open,
        rooms,
        churn_percent_per_sec: a.churn,
        churn_per_sec,
        rate: a.rate,
        senders,
        rate_per_sender: per_sender,
        payload_bytes: usize::from(a.payload_bytes),
        duration_s: a.duration.as_secs_f64(),
        sample_every_s: a.sample_every.as_secs_f64(),
        columns: cols,
        samples,
        totals: SoakTotals {
            sent: stats.sent,
            accepted: stats.accepted,
            expected: stats.expected,
            delivered: stats.delivered,
            delivery_ratio: stats.delivery_ratio(),
            conns_opened: stats.connected,
            churned: stats.churned,
            churn_missed: stats.churn_missed,
            send_skipped: stats.send_skipped,
            latency_ms: Percentiles::of(&stats.latency),
            integrity: Integrity::of(&stats),
        },
        errors: errors(&stats),
        generator: gen,
        pass: verdict.pass,
        verdict,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(elapsed: f64, rss_mib: u64, fds: u64) -> SoakSample {
        SoakSample {
            elapsed_s: elapsed,
            server_rss_bytes: Some(rss_mib << 20),
            server_fds: Some(fds),
            ..SoakSample::default()
        }
    }

    const LIMITS: Limits = Limits {
        max_rss_growth_percent: 10.0,
        max_fd_drift: 5,
        max_failures: 0,
    };

    fn check<'a>(v: &'a SoakVerdict, name: &str) -> &'a Check {
        v.checks.iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn flat_run_passes_and_skips_warmup_and_first_sample() {
        // The first sample (connect phase) and the warm-up are far off; they must not count.
        let mut v: Vec<SoakSample> = vec![s(0.0, 10, 100), s(10.0, 400, 9000)];
        for k in 2..=10 {
            v.push(s(k as f64 * 10.0, 100 + (k % 2), 1000 + (k % 3)));
        }
        let r = judge(&v, 15.0, &LIMITS, 0, &[]);
        assert_eq!((r.judged_samples, r.third), (9, 3), "{r:?}");
        // First third: 20, 30, 40 s → RSS 100, 101, 100; last: 80, 90, 100 s → 100, 101, 100.
        assert_eq!(r.rss_growth_percent, Some(0.0));
        assert_eq!(r.fds_first, Some(1001.0)); // 1002, 1000, 1001
        assert_eq!(r.fds_last, Some(1001.0)); // 1002, 1000, 1001
        assert!(r.pass, "{r:?}");
    }

    #[test]
    fn rss_growth_over_the_limit_fails() {
        let v: Vec<SoakSample> = (0..=7).map(|k| s(k as f64, 100 + 3 * k, 1000)).collect();
        // Judged: 1..=7 (rss 103..121), third 2: first (103+106)/2, last (118+121)/2.
        let r = judge(&v, 0.0, &LIMITS, 0, &[]);
        let g = r.rss_growth_percent.unwrap();
        assert!((g - (119.5 - 104.5) / 104.5 * 100.0).abs() < 1e-9, "{g}");
        assert!(!check(&r, "server RSS growth").pass && !r.pass);
        let looser = Limits {
            max_rss_growth_percent: 15.0,
            ..LIMITS
        };
        assert!(judge(&v, 0.0, &looser, 0, &[]).pass);
    }

    #[test]
    fn descriptor_drift_either_way_fails() {
        let up: Vec<SoakSample> = (0..=4).map(|k| s(k as f64, 100, 1000 + 2 * k)).collect();
        // Judged 1..=4, third 1: 1002 → 1008 = +6 > 5.
        let r = judge(&up, 0.0, &LIMITS, 0, &[]);
        assert_eq!(r.fd_drift, Some(6.0));
        assert!(!check(&r, "server descriptor drift").pass && !r.pass);
        let down: Vec<SoakSample> = (0..=4).map(|k| s(k as f64, 100, 1000 - 2 * k)).collect();
        assert_eq!(judge(&down, 0.0, &LIMITS, 0, &[]).fd_drift, Some(-6.0));
        assert!(!judge(&down, 0.0, &LIMITS, 0, &[]).pass);
        let within: Vec<SoakSample> = (0..=4).map(|k| s(k as f64, 100, 1000 + k)).collect();
        assert!(judge(&within, 0.0, &LIMITS, 0, &[]).pass);
    }

    #[test]
    fn too_few_samples_unreadable_figures_and_failures_fail() {
        let one = vec![s(0.0, 100, 1000), s(1.0, 100, 1000)];
        let r = judge(&one, 0.0, &LIMITS, 0, &[]);
        assert_eq!(r.judged_samples, 1);
        assert!(!check(&r, "samples after warm-up").pass);
        assert_eq!(r.rss_growth_percent, None);
        assert!(!r.pass);
        // Everything inside the warm-up: nothing judged, no panic.
        let r = judge(&one, 100.0, &LIMITS, 0, &[]);
        assert_eq!((r.judged_samples, r.third), (0, 0));
        assert!(!r.pass);
        assert!(!judge(&[], 0.0, &LIMITS, 0, &[]).pass);
        let mut blind: Vec<SoakSample> = (0..5).map(|k| s(k as f64, 100, 1000)).collect();
        for x in &mut blind {
            x.server_rss_bytes = None;
        }
        let r = judge(&blind, 0.0, &LIMITS, 0, &[]);
        assert!(!check(&r, "server RSS growth").pass);
        assert!(check(&r, "server descriptor drift").pass);
        let flat: Vec<SoakSample> = (0..5).map(|k| s(k as f64, 100, 1000)).collect();
        assert!(judge(&flat, 0.0, &LIMITS, 0, &[]).pass);
        let r = judge(&flat, 0.0, &LIMITS, 1, &[]);
        assert!(!check(&r, "failed or dropped").pass && !r.pass);
    }

    #[test]
    fn warmup_covers_the_history_fill_and_half_the_run_at_most() {
        let m = |s: u64| Duration::from_secs(s);
        // Defaults: 1000 × 100 rooms ÷ 500 msg/s = 200 s, + 20 %.
        assert_eq!(warmup(None, m(600), 100, 500.0), m(240));
        assert_eq!(warmup(None, m(600), 10, 500.0), m(60), "at least a minute");
        assert_eq!(warmup(None, m(600), 100, 0.0), m(60));
        assert_eq!(warmup(None, m(5), 10, 100.0), Duration::from_millis(2500));
        assert_eq!(warmup(Some(m(10)), m(600), 100, 500.0), m(10));
        assert_eq!(warmup(Some(m(500)), m(600), 100, 500.0), m(300));
    }

    #[test]
    fn series_max_per_column_after_warmup() {
        let cols = default_columns();
        let queued = |w0: f64, w1: f64| {
            let p = |w: &str, v: f64| MetricPoint {
                labels: [("worker".to_string(), w.to_string())].into(),
                value: v,
            };
            Some(vec![p("0", w0), p("1", w1)])
        };
        let mut v: Vec<SoakSample> = (0..4).map(|k| s(k as f64, 100, 1000)).collect();
        v[0].metrics
            .insert("hubbub_worker_queued_bytes".into(), queued(1e9, 1e9));
        v[1].metrics
            .insert("hubbub_worker_queued_bytes".into(), queued(10.0, 700.0));
        v[2].metrics
            .insert("hubbub_worker_queued_bytes".into(), queued(20.0, 30.0));
        v[3].metrics
            .insert("hubbub_worker_mesh_backlog".into(), None);
        v[3].metrics.insert(
            "hubbub_persist_queue_depth".into(),
            Some(vec![MetricPoint {
                labels: BTreeMap::new(),
                value: 4.0,
            }]),
        );
        let r = judge(&v, 0.0, &LIMITS, 0, &cols);
        let m = |t: &str| r.series_max.iter().find(|m| m.title == t).unwrap();
        // The first sample's huge value is not judged.
        assert_eq!(m("queued B").max, Some(700.0));
        assert_eq!(m("queued B").labels, "worker=\"1\"");
        assert_eq!(m("mesh").max, None);
        assert_eq!(m("persist q").max, Some(4.0));
        assert_eq!(
            m("persist q").name.as_deref(),
            Some("hubbub_persist_queue_depth")
        );
        assert!(m("persist q").queue && !m("srv conns").queue);
    }

    #[test]
    fn picks_columns_sorted_by_worker() {
        let e = prometheus::parse(
            "hubbub_worker_queued_bytes{worker=\"10\"} 3\n\
             hubbub_worker_queued_bytes{worker=\"2\"} 2\n\
             hubbub_connections 5\n\
             hubbub_http_connections NaN\n\
             other 1\n",
        );
        let cols = columns(&["other".into(), "hubbub_connections".into()]);
        assert_eq!(
            cols.len(),
            default_columns().len() + 1,
            "no duplicate column"
        );
        assert_eq!(cols.last().unwrap().title, "other");
        let m = pick(&e, &cols);
        let q = m["hubbub_worker_queued_bytes"].as_ref().unwrap();
        let workers: Vec<&str> = q.iter().map(|p| p.labels["worker"].as_str()).collect();
        assert_eq!(workers, ["2", "10"]);
        assert_eq!(m["hubbub_worker_mesh_backlog"], None);
        assert_eq!(m["hubbub_http_connections"], None, "NaN is left out");
        assert_eq!(m["other"].as_ref().unwrap()[0].value, 1.0);
        let sample = SoakSample {
            metrics: m,
            ..SoakSample::default()
        };
        assert_eq!(crate::report::column_text(&sample, &cols[0]), "2/3");
        assert_eq!(crate::report::column_text(&sample, &cols[1]), "—");
        assert_eq!(crate::report::column_text(&sample, &cols[2]), "5");
    }
}
