//! `connect` (S4): a connection storm with a bounded number of handshakes in flight.

use anyhow::Result;

use super::{
    common_warnings, generator, no_connection, open_connections, sample, server, ConnsOutcome,
    Opened,
};
use crate::cli::ConnectArgs;
use crate::progress::Progress;
use crate::report::ConnsReport;

/// Runs `connect`.
pub fn run(a: &ConnectArgs) -> Result<ConnsReport> {
    let c = &a.common;
    let mut progress = Progress::new(!c.json);
    let Opened {
        url,
        engine,
        server_before,
        before,
    } = open_connections(c, a.conns, a.rooms as usize, a.proto, &mut progress)?;
    let after = sample(&engine, c.server_pid);
    let connect_s = engine.connect_elapsed().as_secs_f64();
    let open_at_end = engine.open();
    let stats = engine.stop()?;
    progress.finish();
    if stats.connected == 0 {
        return Err(no_connection(&url, &stats));
    }
    let mut warnings = Vec::new();
    let gen = generator(&before, &after);
    let mut srv = server(c.server_pid, &server_before, &after, &mut warnings);
    if let Some(s) = srv.as_mut() {
        s.cpu_us_per_handshake = Some(s.cpu_ms * 1e3 / stats.connected as f64);
    }
    common_warnings(&stats, &gen, a.conns, &mut warnings);
    let failures: u64 = stats.connect_failures.values().map(|c| c.count).sum();
    Ok(ConnsOutcome {
        mode: "connect",
        url,
        conns_requested: a.conns,
        rooms: a.rooms as usize,
        stats,
        open_at_end,
        connect_seconds: connect_s,
        rss_per_conn_bytes: None,
        generator: gen,
        server: srv,
        check: ("failed handshakes", failures, a.max_failures),
        warnings,
    }
    .report())
}
