//! `connect` (S4): a connection storm with a bounded number of handshakes in flight.

use anyhow::{bail, Result};

use super::{common_warnings, errors, generator, plan, sample, sample_opt, server, wait_settled};
use crate::cli::ConnectArgs;
use crate::engine::Engine;
use crate::progress::Progress;
use crate::report::{Check, ConnsReport};
use crate::stats::Percentiles;

/// Runs `connect`.
pub fn run(a: &ConnectArgs) -> Result<ConnsReport> {
    let c = &a.common;
    let mut progress = Progress::new(!c.json);
    let p = plan(c, a.conns, a.rooms as usize, 0, 0.0, 0)?;
    let url = p.target.url.clone();
    // The server's figures from before the first connection; the generator's from
    // after its threads exist.
    let server_before = sample_opt(None, c.server_pid);
    let engine = Engine::start(p)?;
    let before = sample(&engine, c.server_pid);
    wait_settled(&engine, a.conns, &mut progress)?;
    let after = sample(&engine, c.server_pid);
    let connect_s = engine.connect_elapsed().as_secs_f64();
    let open_at_end = engine.open();
    let stats = engine.stop()?;
    progress.finish();
    if stats.connected == 0 {
        let why: Vec<String> = stats
            .connect_failures
            .iter()
            .map(|(k, v)| format!("{k} ×{} ({})", v.count, v.example))
            .collect();
        bail!("no connection to {url} could be opened: {}", why.join("; "));
    }
    let mut warnings = Vec::new();
    let gen = generator(&before, &after);
    let mut srv = server(c.server_pid, &server_before, &after, &mut warnings);
    if let Some(s) = srv.as_mut() {
        s.cpu_us_per_handshake = Some(s.cpu_ms * 1e3 / stats.connected as f64);
    }
    common_warnings(&stats, &gen, a.conns, &mut warnings);
    let failures: u64 = stats.connect_failures.values().map(|c| c.count).sum();
    let checks = vec![Check {
        name: "failed handshakes".into(),
        limit: format!("<= {}", a.max_failures),
        value: failures.to_string(),
        pass: failures <= a.max_failures,
    }];
    let pass = checks.iter().all(|c| c.pass);
    Ok(ConnsReport {
        mode: "connect",
        url,
        conns_requested: a.conns,
        conns_opened: stats.connected,
        conns_open_at_end: open_at_end,
        rooms: a.rooms as usize,
        connect_seconds: connect_s,
        handshakes_per_sec: stats.connected as f64 / connect_s.max(1e-9),
        handshake_ms: Percentiles::of(&stats.handshake),
        rss_per_conn_bytes: None,
        frames_received: stats.frames_total,
        errors: errors(&stats),
        generator: gen,
        server: srv,
        checks,
        pass,
        warnings,
    })
}
