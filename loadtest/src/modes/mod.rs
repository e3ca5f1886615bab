//! The modes, and what they share: building the plan, checking limits, sampling CPU.
//! `rooms` and `typing` (protocol v2) are in [`v2`].

pub mod connect;
pub mod fanout;
pub mod idle;
pub mod soak;
pub mod steps;
pub mod v2;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cli::Common;
use crate::engine::{Engine, Plan};
use crate::procfs;
use crate::progress::Progress;
use crate::report::{Check, ConnsReport, Errors, Generator, Server};
use crate::stats::{Percentiles, Stats};
use crate::target::Target;

/// Open files kept spare for the process itself (runtime, /proc reads, stdio).
pub const SPARE_FILES: u64 = 200;

/// Refuses more connections than the open-file limit allows, saying what to do instead.
pub fn check_fd_budget(conns: usize) -> Result<()> {
    let limit = procfs::raise_nofile_limit().context("cannot read the open-file limit")?;
    let budget = limit.saturating_sub(procfs::open_files() + SPARE_FILES);
    if conns as u64 > budget {
        let procs = (conns as u64).div_ceil(budget.max(1));
        bail!(
            "{conns} connections need {conns} open files, but this process may open {limit} \
             (RLIMIT_NOFILE) and keeps {SPARE_FILES} spare: at most {budget} connections per \
             process. Run {procs} processes with --conns {} each (or raise the hard limit).",
            (conns as u64).div_ceil(procs)
        );
    }
    Ok(())
}

/// The source addresses `--source-ips` asks for, for this target.
pub fn sources(spec: &str, target: &Target) -> Result<Vec<IpAddr>> {
    let loopback_v4 = target.addr.ip().is_loopback() && target.addr.is_ipv4();
    match spec.trim() {
        "none" | "" => Ok(Vec::new()),
        "auto" => Ok(if loopback_v4 {
            crate::net::loopback_sources(8)
        } else {
            Vec::new()
        }),
        s => {
            if let Ok(n) = s.parse::<usize>() {
                if !loopback_v4 {
                    bail!("--source-ips {n} needs a 127.x IPv4 target; give addresses instead");
                }
                return Ok(crate::net::loopback_sources(n));
            }
            s.split(',')
                .map(|a| {
                    a.trim()
                        .parse::<IpAddr>()
                        .with_context(|| format!("bad --source-ips entry {a:?}"))
                })
                .collect()
        }
    }
}

/// A plan from the shared options and the mode's shape.
pub fn plan(
    c: &Common,
    conns: usize,
    rooms: usize,
    senders: usize,
    rate: f64,
    payload_bytes: usize,
) -> Result<Plan> {
    if conns == 0 {
        bail!("--conns must be at least 1");
    }
    if senders > conns {
        bail!("--senders {senders} is more than --conns {conns}");
    }
    if !(c.ramp.is_finite() && c.ramp >= 0.0) {
        bail!("--ramp must be a number ≥ 0 (connections per second)");
    }
    check_fd_budget(conns)?;
    let target = Target::resolve(&c.url)?;
    let sources = sources(&c.source_ips, &target)?;
    Ok(Plan {
        target,
        conns,
        rooms,
        room_prefix: c.room_prefix.clone(),
        senders,
        rate,
        payload_bytes,
        ramp: c.ramp,
        in_flight: c.in_flight as usize,
        threads: usize::from(c.threads),
        cpus: c.cpu.clone().map(|c| c.0).unwrap_or_default(),
        read_buffer: c.read_buffer as usize,
        auth_secret: c.auth_secret.clone(),
        sources,
        connect_timeout: c.connect_timeout,
        churn_per_sec: 0.0,
        reconnect: false,
        interval_latency: false,
        v2: None,
    })
}

/// CPU and memory readings at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    at: Instant,
    self_cpu: u64,
    threads: Vec<u64>,
    server_cpu: Option<u64>,
    server_rss: Option<u64>,
}

/// Reads the process's, the engine threads' and the server's figures now.
pub fn sample(engine: &Engine, server_pid: Option<u32>) -> Sample {
    sample_opt(Some(engine), server_pid)
}

/// As [`sample`], also before the engine exists (then without thread figures).
pub fn sample_opt(engine: Option<&Engine>, server_pid: Option<u32>) -> Sample {
    Sample {
        at: Instant::now(),
        self_cpu: procfs::cpu_ns("/proc/self/stat").unwrap_or(0),
        threads: engine.map(Engine::thread_cpu_ns).unwrap_or_default(),
        server_cpu: server_pid.and_then(|p| procfs::pid_cpu_ns(p).ok()),
        server_rss: server_pid.and_then(|p| procfs::rss_bytes(p).ok()),
    }
}

/// The generator's CPU between two samples.
pub fn generator(a: &Sample, b: &Sample) -> Generator {
    let secs = (b.at - a.at).as_secs_f64().max(1e-9);
    let pct = |x: u64, y: u64| (y.saturating_sub(x)) as f64 / 1e9 / secs * 100.0;
    let per: Vec<f64> = a
        .threads
        .iter()
        .zip(&b.threads)
        .map(|(x, y)| pct(*x, *y))
        .collect();
    let legacy = std::env::var_os("MONOIO_FORCE_LEGACY_DRIVER").is_some_and(|v| v == "1")
        || !monoio::utils::detect_uring();
    Generator {
        threads: per.len(),
        driver: if legacy { "epoll" } else { "io_uring" },
        cpu_percent: pct(a.self_cpu, b.self_cpu),
        saturated: per.iter().any(|p| *p > 90.0),
        cpu_percent_per_thread: per,
    }
}

/// The server's CPU and RSS between two samples (`None` without `--server-pid`).
pub fn server(
    pid: Option<u32>,
    a: &Sample,
    b: &Sample,
    warnings: &mut Vec<String>,
) -> Option<Server> {
    let pid = pid?;
    let (Some(c0), Some(c1)) = (a.server_cpu, b.server_cpu) else {
        warnings.push(format!(
            "cannot read /proc/{pid}/stat: is --server-pid right?"
        ));
        return None;
    };
    let secs = (b.at - a.at).as_secs_f64().max(1e-9);
    let cpu = c1.saturating_sub(c0);
    Some(Server {
        pid,
        cpu_ms: cpu as f64 / 1e6,
        cpu_percent: cpu as f64 / 1e9 / secs * 100.0,
        cpu_ns_per_frame: None,
        cpu_us_per_handshake: None,
        rss_before_bytes: a.server_rss.unwrap_or(0),
        rss_after_bytes: b.server_rss.unwrap_or(0),
    })
}

/// Waits until every connection opened or failed, updating the progress line; fails when
/// an engine thread died.
pub fn wait_settled(engine: &Engine, conns: usize, progress: &mut Progress) -> Result<()> {
    while engine.settled() < conns {
        if !engine.threads_alive() {
            bail!("an engine thread stopped while connecting");
        }
        progress.update("connecting", engine.open(), conns, engine.live());
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A connections-only run (`idle`, `connect`) once every connection opened or failed.
pub struct Opened {
    pub url: String,
    pub engine: Engine,
    /// The server before the first connection.
    pub server_before: Sample,
    /// The generator (and server) once the engine's threads exist.
    pub before: Sample,
}

/// Starts `conns` connections over `rooms` rooms and waits until they settle; with
/// `proto` 2 they are v2 connections naming their room in the upgrade (§7's implicit
/// first subscribe), so presence is v2's coalesced per-user frames.
pub fn open_connections(
    c: &Common,
    conns: usize,
    rooms: usize,
    proto: u8,
    progress: &mut Progress,
) -> Result<Opened> {
    let mut p = plan(c, conns, rooms, 0, 0.0, 0)?;
    if proto == 2 {
        p.v2 = Some(crate::engine::V2Plan {
            subscriptions: 1,
            typing_every: None,
            room_in_url: true,
        });
    }
    let url = p.target.url.clone();
    // The server's figures from before the first connection; the generator's from
    // after its threads exist.
    let server_before = sample_opt(None, c.server_pid);
    let engine = Engine::start(p)?;
    let before = sample(&engine, c.server_pid);
    wait_settled(&engine, conns, progress)?;
    Ok(Opened {
        url,
        engine,
        server_before,
        before,
    })
}

/// The error counters of merged stats.
pub fn errors(s: &Stats) -> Errors {
    Errors {
        error_frames: s.error_frames.clone(),
        closes: s.closes.clone(),
        connect_failures: s.connect_failures.clone(),
    }
}

/// Warnings every mode shares.
pub fn common_warnings(s: &Stats, g: &Generator, conns: usize, w: &mut Vec<String>) {
    if g.saturated {
        w.push(
            "the generator saturated (an engine thread used > 90% of a core): the figures may \
             measure the generator; add --threads or give it a CPU of its own"
                .into(),
        );
    }
    let failed: u64 = s.connect_failures.values().map(|c| c.count).sum();
    if failed > 0 {
        w.push(format!("{failed} of {conns} connections could not open"));
    }
    let dropped: u64 = s.closes.values().map(|c| c.count).sum();
    if dropped > 0 {
        w.push(format!(
            "{dropped} connections were closed by the server or the network"
        ));
    }
    if s.error_frames.contains_key("rate_limited") {
        w.push(
            "the server rate-limited the senders (rate_limited errors): start it with \
             RATE_LIMIT_PER_SEC=0 (or a rate above --rate) to measure fan-out"
                .into(),
        );
    }
}

/// The error for a run in which not one connection opened, with the reasons seen.
pub fn no_connection(url: &str, stats: &Stats) -> anyhow::Error {
    let why: Vec<String> = stats
        .connect_failures
        .iter()
        .map(|(k, v)| format!("{k} ×{} ({})", v.count, v.example))
        .collect();
    anyhow::anyhow!("no connection to {url} could be opened: {}", why.join("; "))
}

/// What `idle` and `connect` measured, before it becomes a [`ConnsReport`].
pub struct ConnsOutcome {
    pub mode: &'static str,
    pub url: String,
    pub conns_requested: usize,
    pub rooms: usize,
    pub stats: Stats,
    pub open_at_end: usize,
    pub connect_seconds: f64,
    pub rss_per_conn_bytes: Option<f64>,
    pub generator: Generator,
    pub server: Option<Server>,
    /// The one pass/fail check: its name, the failures counted and the limit.
    pub check: (&'static str, u64, u64),
    pub warnings: Vec<String>,
}

impl ConnsOutcome {
    /// The report, with its check judged.
    pub fn report(self) -> ConnsReport {
        let (name, failures, max) = self.check;
        let checks = vec![Check {
            name: name.into(),
            limit: format!("<= {max}"),
            value: failures.to_string(),
            pass: failures <= max,
        }];
        let pass = checks.iter().all(|c| c.pass);
        let s = &self.stats;
        ConnsReport {
            mode: self.mode,
            url: self.url,
            conns_requested: self.conns_requested,
            conns_opened: s.connected,
            conns_open_at_end: self.open_at_end,
            rooms: self.rooms,
            connect_seconds: self.connect_seconds,
            handshakes_per_sec: s.connected as f64 / self.connect_seconds.max(1e-9),
            handshake_ms: Percentiles::of(&s.handshake),
            rss_per_conn_bytes: self.rss_per_conn_bytes,
            frames_received: s.frames_total,
            errors: errors(s),
            generator: self.generator,
            server: self.server,
            checks,
            pass,
            warnings: self.warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_budget_refuses_with_advice() {
        assert!(check_fd_budget(10).is_ok());
        let e = check_fd_budget(10_000_000).unwrap_err().to_string();
        assert!(
            e.contains("processes") && e.contains("RLIMIT_NOFILE"),
            "{e}"
        );
    }

    #[test]
    fn source_specs() {
        let t = Target::resolve("ws://127.0.0.1:9/ws").unwrap();
        assert_eq!(sources("auto", &t).unwrap().len(), 8);
        assert!(sources("none", &t).unwrap().is_empty());
        assert_eq!(sources("3", &t).unwrap().len(), 3);
        assert_eq!(sources("127.0.0.5, 127.0.0.6", &t).unwrap().len(), 2);
        assert!(sources("bogus", &t).is_err());
    }
}
