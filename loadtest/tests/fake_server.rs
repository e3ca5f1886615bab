//! The generator against a minimal in-test server that misbehaves on purpose: it must see
//! injected gaps and duplicates, count exactly, set the exit code from thresholds, and
//! fail clearly (never panic) on bad input.

mod common;

use common::{fake_server, fanout_args, report, run_lt, Faults};
use hubbub_test_support::free_port;
use sonic_rs::JsonValueTrait;

fn run(args: Vec<String>) -> std::process::Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run_lt(&refs)
}

fn u(v: &sonic_rs::Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p).unwrap_or_else(|| panic!("no {path:?} in {v}"));
    }
    cur.as_u64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {v}"))
}

#[test]
fn clean_run_counts_exactly_and_passes() {
    let srv = fake_server(Faults::default());
    let out = run(fanout_args(
        srv.port,
        &["--min-delivery", "1.0", "--max-p99", "1000"],
    ));
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r}");
    let sent = u(&r, &["sent"]);
    // 4 senders × 20 msg/s × 1 s, give or take the last tick.
    assert!((70..=84).contains(&sent), "{r}");
    assert_eq!(u(&r, &["accepted"]), sent, "{r}");
    assert_eq!(
        srv.accepted.load(std::sync::atomic::Ordering::Relaxed),
        sent,
        "the server accepted exactly what the generator sent (warmup 0)"
    );
    // 6 connections over 2 rooms: 3 members each.
    assert_eq!(u(&r, &["expected"]), sent * 3, "{r}");
    assert_eq!(u(&r, &["delivered"]), sent * 3, "{r}");
    assert_eq!(u(&r, &["integrity", "gaps"]), 0);
    assert_eq!(r["latencyMs"]["count"].as_u64(), Some(sent * 3));
}

#[test]
fn injected_gap_is_detected_and_fails_the_run() {
    let srv = fake_server(Faults {
        skip_seq: Some(5),
        ..Faults::default()
    });
    let out = run(fanout_args(srv.port, &[]));
    let r = report(&out);
    assert_eq!(out.status.code(), Some(3), "{r}");
    // Seq 5 is skipped in both rooms; each of the 6 members sees one gap of one.
    assert_eq!(u(&r, &["integrity", "gaps"]), 6, "{r}");
    assert_eq!(u(&r, &["integrity", "missing"]), 6, "{r}");
    assert_eq!(u(&r, &["integrity", "duplicates"]), 0, "{r}");
    assert_eq!(r["pass"].as_bool(), Some(false));

    let out = run(fanout_args(srv.port, &["--allow-loss"]));
    assert_eq!(out.status.code(), Some(0), "--allow-loss: {}", report(&out));
}

#[test]
fn injected_duplicate_is_detected() {
    let srv = fake_server(Faults {
        dup_seq: Some(3),
        ..Faults::default()
    });
    let out = run(fanout_args(srv.port, &[]));
    let r = report(&out);
    assert_eq!(out.status.code(), Some(3), "{r}");
    assert_eq!(u(&r, &["integrity", "duplicates"]), 6, "{r}");
    assert_eq!(u(&r, &["integrity", "gaps"]), 0, "{r}");
}

#[test]
fn thresholds_set_the_exit_code() {
    let srv = fake_server(Faults::default());
    // Nothing is delivered in a picosecond.
    let out = run(fanout_args(srv.port, &["--max-p99", "0.000000001"]));
    assert_eq!(out.status.code(), Some(3), "{}", report(&out));
    // Human output names the failed check.
    let mut args = fanout_args(srv.port, &["--max-p99", "0.000000001"]);
    args.retain(|a| a != "--json");
    let out = run(args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3));
    assert!(text.contains("FAIL p99 latency"), "{text}");

    let starving = fake_server(Faults {
        starve_last_member: true,
        ..Faults::default()
    });
    let out = run(fanout_args(
        starving.port,
        &["--min-delivery", "0.999", "--allow-loss"],
    ));
    let r = report(&out);
    assert_eq!(out.status.code(), Some(3), "{r}");
    let ratio = r["deliveryRatio"].as_f64().unwrap_or(1.0);
    assert!(ratio < 0.8 && ratio > 0.5, "2 of 3 members served: {r}");
}

#[test]
fn refused_upgrades_are_counted_by_status() {
    let srv = fake_server(Faults {
        refuse_status: Some(503),
        ..Faults::default()
    });
    let out = run(fanout_args(srv.port, &[]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("http_503") && err.contains("injected refusal"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let port = free_port();
    let out = run(fanout_args(port, &[]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refused"), "{err}");

    for (args, needle) in [
        (
            vec!["fanout", "--url", "http://127.0.0.1:1/ws"],
            "unsupported scheme",
        ),
        (
            vec!["fanout", "--url", "ws://127.0.0.1:99999/ws"],
            "bad port",
        ),
        (vec!["fanout", "--conns", "1000000"], "processes"),
        (
            vec!["fanout", "--conns", "5", "--senders", "9"],
            "more than --conns",
        ),
        (vec!["idle", "--url", "wss://x/ws"], "TLS"),
    ] {
        let out = run_lt(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = run_lt(&["fanout", "--rate", "-1"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn idle_and_connect_modes_run() {
    let srv = fake_server(Faults::default());
    let url = format!("ws://127.0.0.1:{}/ws", srv.port);
    let pid = std::process::id().to_string();
    let out = run_lt(&[
        "idle",
        "--url",
        &url,
        "--conns",
        "20",
        "--settle",
        "100ms",
        "--hold",
        "200ms",
        "--server-pid",
        &pid,
        "--json",
    ]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r}");
    assert_eq!(u(&r, &["connsOpened"]), 20);
    assert!(r["rssPerConnBytes"].as_f64().is_some(), "{r}");

    let out = run_lt(&[
        "connect",
        "--url",
        &url,
        "--conns",
        "50",
        "--in-flight",
        "10",
        "--json",
    ]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r}");
    assert_eq!(u(&r, &["connsOpened"]), 50);
    assert!(r["handshakesPerSec"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
}
