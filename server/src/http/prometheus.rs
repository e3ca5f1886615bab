//! `/metrics`: the analytics snapshot in the Prometheus text exposition format (0.0.4).
//!
//! Written by hand on purpose: the figures are already merged snapshot values, so a
//! metrics registry would only copy them once more per scrape.

use std::fmt::Write;

use std::sync::atomic::Ordering::Relaxed;

use hubbub_core::Snapshot;

use crate::figures::ServerFigures;

/// The exposition text for `s` and the server's own `figures`.
pub fn render(
    s: &Snapshot,
    figures: &ServerFigures,
    accounts: Option<&crate::accounts::AccountFigures>,
    search: Option<hubbub_search::SearchStats>,
    files: Option<&hubbub_files::FileStats>,
) -> String {
    let mut out = String::with_capacity(2048);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(
            out,
            "# HELP hubbub_{name} {help}\n# TYPE hubbub_{name} {kind}"
        );
        for (labels, v) in samples {
            let _ = writeln!(out, "hubbub_{name}{labels} {v}");
        }
    };
    metric(
        "messages_total",
        "counter",
        "Chat messages accepted and sequenced.",
        &[("", s.total_messages as f64)],
    );
    metric(
        "deliveries_total",
        "counter",
        "Frames handed to sockets.",
        &[("", s.total_deliveries as f64)],
    );
    metric(
        "rate_limited_total",
        "counter",
        "Messages dropped by rate limiting.",
        &[("", s.rate_limited as f64)],
    );
    metric(
        "rejected_total",
        "counter",
        "Client frames refused by validation.",
        &[("", s.rejected as f64)],
    );
    metric(
        "overloaded_total",
        "counter",
        "Messages refused with overloaded.",
        &[("", s.overloaded as f64)],
    );
    metric(
        "slow_consumer_disconnects_total",
        "counter",
        "Connections closed because they did not read their frames.",
        &[("", s.slow_consumer_disconnects as f64)],
    );
    metric(
        "presence_withheld_total",
        "counter",
        "Joins and leaves not announced because their room had more than PRESENCE_MAX_MEMBERS users.",
        &[("", s.presence_withheld as f64)],
    );
    metric(
        "typing_dropped_total",
        "counter",
        "v2 typing frames dropped by their per-connection rate bucket.",
        &[("", s.typing_dropped as f64)],
    );
    metric(
        "duplicates_acked_total",
        "counter",
        "v2 sends acknowledged as duplicates of an earlier clientMsgId, not broadcast again.",
        &[("", s.duplicates_acked as f64)],
    );
    metric(
        "recovered_from_store_total",
        "counter",
        "v2 recoveries that went past the memory ring to the durable store.",
        &[("", s.recovered_from_store as f64)],
    );
    metric(
        "server_published_total",
        "counter",
        "Messages published through the server API (also in messages_total).",
        &[("", s.server_published as f64)],
    );
    metric(
        "tokens_refreshed_total",
        "counter",
        "v2 refresh frames that moved a connection's token expiry.",
        &[("", s.tokens_refreshed as f64)],
    );
    metric(
        "refreshes_refused_total",
        "counter",
        "v2 refresh frames refused: a bad, expired or another user's token.",
        &[("", s.refreshes_refused as f64)],
    );
    metric(
        "token_expiry_closes_total",
        "counter",
        "Connections closed with 4001 because their token expired.",
        &[("", s.token_expiry_closes as f64)],
    );
    metric(
        "rooms_created_total",
        "counter",
        "Rooms made through the rooms API (POST /api/rooms).",
        &[("", s.rooms_created as f64)],
    );
    metric(
        "room_joins_refused_total",
        "counter",
        "Subscriptions refused: a private or group room the user is not a member of, or a deleted room.",
        &[("", s.room_joins_refused as f64)],
    );
    metric(
        "membership_writes_dropped_total",
        "counter",
        "Writes to the state table's per-user room index lost to a full queue.",
        &[("", s.membership_writes_dropped as f64)],
    );
    metric(
        "connections",
        "gauge",
        "Open WebSocket connections.",
        &[("", s.active_connections as f64)],
    );
    metric(
        "connections_peak",
        "gauge",
        "Most connections open at once.",
        &[("", s.peak_connections as f64)],
    );
    metric(
        "users",
        "gauge",
        "Distinct users connected.",
        &[("", s.active_users as f64)],
    );
    metric(
        "rooms",
        "gauge",
        "Rooms with at least one connection.",
        &[("", s.rooms as f64)],
    );
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since start.",
        &[("", s.uptime_seconds as f64)],
    );
    metric(
        "fanout_latency_ms",
        "gauge",
        "Fan-out latency over the last one to two minutes, by quantile.",
        &[
            ("{quantile=\"0.5\"}", s.latency_p50_ms),
            ("{quantile=\"0.95\"}", s.latency_p95_ms),
            ("{quantile=\"0.99\"}", s.latency_p99_ms),
        ],
    );
    let per_worker = |f: fn(&hubbub_core::analytics::WorkerLoad) -> u64| -> Vec<(String, f64)> {
        s.workers
            .iter()
            .map(|w| (format!("{{worker=\"{}\"}}", w.id), f(w) as f64))
            .collect()
    };
    for (name, kind, help, values) in [
        (
            "worker_connections",
            "gauge",
            "Connections per worker.",
            per_worker(|w| w.connections),
        ),
        (
            "worker_messages_total",
            "counter",
            "Messages sequenced per worker.",
            per_worker(|w| w.messages),
        ),
        (
            "worker_deliveries_total",
            "counter",
            "Frames delivered per worker.",
            per_worker(|w| w.deliveries),
        ),
        (
            "worker_history_bytes",
            "gauge",
            "Bytes of room history retained per worker (bounded by MAX_HISTORY_BYTES).",
            per_worker(|w| w.history_bytes),
        ),
    ] {
        let samples: Vec<(&str, f64)> = values.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        metric(name, kind, help, &samples);
    }
    if let Some(a) = accounts {
        use std::sync::atomic::Ordering::Relaxed;
        for (name, help, v) in [
            (
                "account_signups_total",
                "Accounts created (POST /auth/signup).",
                &a.signups,
            ),
            (
                "account_logins_total",
                "Successful logins (POST /auth/login).",
                &a.logins,
            ),
            (
                "account_login_failures_total",
                "Logins refused with bad_credentials.",
                &a.login_failures,
            ),
            (
                "account_throttled_total",
                "Signups and logins refused with 429 before any hashing.",
                &a.throttled,
            ),
        ] {
            metric(name, "counter", help, &[("", v.load(Relaxed) as f64)]);
        }
    }
    if let Some(s) = search {
        for (name, kind, help, v) in [
            (
                "search_indexed_total",
                "counter",
                "Messages made searchable since start.",
                s.indexed,
            ),
            (
                "search_dropped_total",
                "counter",
                "Accepted messages not indexed: the search queue was full (SEARCH_QUEUE_SIZE).",
                s.dropped,
            ),
            (
                "search_pending",
                "gauge",
                "Messages queued for the index and not yet searchable: how far behind it is.",
                s.pending,
            ),
            (
                "search_rebuilt_total",
                "counter",
                "Messages read back from the messages table by SEARCH_REBUILD.",
                s.rebuilt,
            ),
            (
                "searches_total",
                "counter",
                "Searches answered (GET /api/rooms/{id}/search).",
                s.searches,
            ),
        ] {
            metric(name, kind, help, &[("", v as f64)]);
        }
    }
    if let Some(f) = files {
        for (name, help, v) in [
            (
                "file_uploads_total",
                "Uploads granted (POST /api/rooms/{id}/uploads answered 201).",
                &f.uploads,
            ),
            (
                "file_uploads_refused_total",
                "Uploads refused: at the request (size, type, quota) or where the bytes landed.",
                &f.refused,
            ),
            (
                "files_stored_total",
                "Files whose bytes were stored (FILES_DIR) or found in the bucket (S3).",
                &f.stored,
            ),
            (
                "file_bytes_stored_total",
                "Bytes of those files.",
                &f.stored_bytes,
            ),
            (
                "file_downloads_total",
                "Download URLs handed out (GET /api/files/{id}).",
                &f.downloads,
            ),
            (
                "files_busy_total",
                "File requests refused because the files thread's queue was full.",
                &f.busy,
            ),
        ] {
            let v = hubbub_files::FileStats::get(v);
            metric(name, "counter", help, &[("", v as f64)]);
        }
    }
    metric(
        "http_connections",
        "gauge",
        "Open connections still speaking HTTP (they count toward MAX_CONNECTIONS).",
        &[("", figures.http_connections() as f64)],
    );
    let sampled = |f: fn(&crate::figures::WorkerFigures) -> u64| -> Vec<(String, f64)> {
        figures
            .workers
            .iter()
            .enumerate()
            .map(|(id, w)| (format!("{{worker=\"{id}\"}}"), f(w) as f64))
            .collect()
    };
    for (name, help, values) in [
        (
            "worker_queued_bytes",
            "Bytes queued or in flight to the worker's WebSocket connections (sampled every 250 ms).",
            sampled(|w| w.queued_bytes.load(Relaxed)),
        ),
        (
            "worker_mesh_backlog",
            "Events waiting to reach other workers (sampled every 250 ms).",
            sampled(|w| w.mesh_backlog.load(Relaxed)),
        ),
    ] {
        let samples: Vec<(&str, f64)> = values.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        metric(name, "gauge", help, &samples);
    }
    let p = &s.persistence;
    metric(
        "persist_queued_total",
        "counter",
        "Records accepted into the persistence queue.",
        &[("", p.queued as f64)],
    );
    metric(
        "persist_written_total",
        "counter",
        "Items written to the store.",
        &[("", p.written as f64)],
    );
    metric(
        "persist_retried_total",
        "counter",
        "Items retried.",
        &[("", p.retried as f64)],
    );
    metric(
        "persist_failed_total",
        "counter",
        "Items given up on.",
        &[("", p.failed as f64)],
    );
    metric(
        "persist_dropped_total",
        "counter",
        "Records dropped on a full queue.",
        &[("", p.dropped as f64)],
    );
    metric(
        "persist_queue_depth",
        "gauge",
        "Records waiting in the persistence queue.",
        &[("", p.queue_depth as f64)],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_has_help_and_type() {
        let snap: Snapshot = Snapshot::default();
        let figures = ServerFigures::new(2);
        figures.workers[1].queued_bytes.store(4096, Relaxed);
        let search = hubbub_search::SearchStats {
            pending: 3,
            ..Default::default()
        };
        let files = hubbub_files::FileStats::default();
        files.stored_bytes.store(7, Relaxed);
        let text = render(&snap, &figures, None, Some(search), Some(&files));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} lacks TYPE"
            );
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
        assert!(text.contains("hubbub_messages_total 0\n"));
        assert!(text.contains("hubbub_http_connections 0\n"));
        assert!(text.contains("hubbub_worker_queued_bytes{worker=\"1\"} 4096\n"));
        assert!(text.contains("hubbub_worker_mesh_backlog{worker=\"0\"} 0\n"));
        assert!(text.contains("hubbub_search_pending 3\n"));
        assert!(text.contains("hubbub_file_bytes_stored_total 7\n"));
    }
}
