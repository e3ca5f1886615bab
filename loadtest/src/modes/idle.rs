//! `idle` (S3): open N connections, hold them, report the server's RSS per connection.

use anyhow::Result;

use super::{
    common_warnings, generator, no_connection, open_connections, sample, server, ConnsOutcome,
    Opened,
};
use crate::cli::IdleArgs;
use crate::progress::Progress;
use crate::report::ConnsReport;

/// Runs `idle`.
pub fn run(a: &IdleArgs) -> Result<ConnsReport> {
    let c = &a.common;
    let mut progress = Progress::new(!c.json);
    let Opened {
        url,
        engine,
        server_before,
        before,
    } = open_connections(c, a.conns, a.rooms as usize, a.proto, &mut progress)?;
    let connect_s = engine.connect_elapsed().as_secs_f64();
    if engine.open() == 0 {
        let stats = engine.stop()?;
        progress.finish();
        return Err(no_connection(&url, &stats));
    }
    let settle_end = std::time::Instant::now() + a.settle;
    while std::time::Instant::now() < settle_end {
        progress.update("settling", engine.open(), a.conns, engine.live());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let open_at_rss = engine.open();
    let after = sample(&engine, c.server_pid);
    let hold_end = std::time::Instant::now() + a.hold;
    while std::time::Instant::now() < hold_end && engine.threads_alive() {
        progress.update("holding", engine.open(), a.conns, engine.live());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let end = sample(&engine, c.server_pid);
    let open_at_end = engine.open();
    let stats = engine.stop()?;
    progress.finish();
    let mut warnings = Vec::new();
    let gen = generator(&before, &end);
    let srv = server(c.server_pid, &server_before, &after, &mut warnings);
    let rss_per_conn = srv.as_ref().map(|s| {
        (s.rss_after_bytes as f64 - s.rss_before_bytes as f64) / open_at_rss.max(1) as f64
    });
    if rss_per_conn.is_some_and(|b| b <= 0.0) {
        warnings.push(
            "the server's RSS did not grow (it had freed memory from earlier connections): \
             measure idle memory on a freshly started server"
                .into(),
        );
    }
    if c.server_pid.is_none() {
        warnings.push("pass --server-pid <pid> to measure the server's RSS per connection".into());
    }
    common_warnings(&stats, &gen, a.conns, &mut warnings);
    let failures: u64 = stats
        .connect_failures
        .values()
        .map(|c| c.count)
        .sum::<u64>()
        + stats.closes.values().map(|c| c.count).sum::<u64>();
    Ok(ConnsOutcome {
        mode: "idle",
        url,
        conns_requested: a.conns,
        rooms: a.rooms as usize,
        stats,
        open_at_end,
        connect_seconds: connect_s,
        rss_per_conn_bytes: rss_per_conn,
        generator: gen,
        server: srv,
        check: ("failed or dropped", failures, a.max_failures),
        warnings,
    }
    .report())
}
