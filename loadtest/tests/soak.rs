//! `soak` against the real `hubbub` server with its default settings (rate limit and
//! presence on): a short run with heavy churn must sample the server, keep its
//! descriptors within the drift bound, replace connections (the server sees the new
//! identities), deliver messages, and see no unexpected close or error.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::hubbub::Hubbub;
use common::{report, run_lt, spawn_lt, wait_lt};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

const CONNS: u64 = 300;

fn u(v: &sonic_rs::Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// The user ids the server lists as connected now.
fn connected_users(server: &Hubbub) -> Vec<String> {
    let a = server.analytics();
    assert_eq!(
        a["activeUserDetailsTruncated"].as_bool(),
        Some(false),
        "all {CONNS} users must be listed"
    );
    a["activeUserDetails"]
        .as_array()
        .expect("activeUserDetails")
        .iter()
        .map(|d| d["userId"].as_str().expect("userId").to_owned())
        .collect()
}

#[test]
fn short_soak_with_churn_against_the_real_server() {
    let server = Hubbub::start(&[]);
    let url = server.ws_url();
    let pid = server.pid().to_string();
    let child = spawn_lt(&[
        "soak",
        "--url",
        &url,
        "--conns",
        "300",
        "--rooms",
        "10",
        "--churn",
        "10",
        "--rate",
        "100",
        "--duration",
        "5s",
        "--sample-every",
        "1s",
        "--server-pid",
        &pid,
        "--metric",
        "hubbub_messages_total",
        "--json",
    ]);
    // While it runs: every user id the server lists as connected.
    let mut seen: HashSet<String> = HashSet::new();
    let mut child = child;
    while child.try_wait().expect("try_wait").is_none() {
        seen.extend(connected_users(&server));
        std::thread::sleep(Duration::from_millis(250));
    }
    let out = wait_lt(child);
    let r = report(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{r}\n{stderr}");
    assert_eq!(r["pass"].as_bool(), Some(true), "{r}");

    // Samples: one when sending starts, then one a second.
    let samples = r["samples"].as_array().expect("samples");
    assert_eq!(samples.len(), 6, "{r}");
    let mut fds = Vec::new();
    for s in samples.iter() {
        let f = u(s, "serverFds");
        // The server holds a descriptor per connection: this is its PID, really sampled.
        assert!(f >= CONNS, "server fds {f} < {CONNS}: {s}");
        assert!(u(s, "serverRssBytes") > 0, "{s}");
        fds.push(f);
        assert!(
            s["metrics"]["hubbub_messages_total"].as_array().is_some(),
            "a --metric series is sampled: {s}"
        );
        // The server's own count of open connections stays near 300 throughout.
        let srv = s["metrics"]["hubbub_connections"][0]["value"]
            .as_f64()
            .unwrap_or_else(|| panic!("hubbub_connections: {s}"));
        assert!(
            (290.0..=310.0).contains(&srv),
            "server connections {srv}: {s}"
        );
    }
    // Descriptors within the drift bound (2 % of 300 = 6) in the verdict and sample by
    // sample after the first.
    let v = &r["verdict"];
    let drift = v["fdDrift"].as_f64().expect("fdDrift");
    assert!(drift.abs() <= 6.0, "fd drift {drift}: {v}");
    let (lo, hi) = (
        fds[1..].iter().min().unwrap(),
        fds[1..].iter().max().unwrap(),
    );
    assert!(hi - lo <= 6, "server fds ranged {lo}..{hi}: {fds:?}");
    assert!(v["rssGrowthPercent"].as_f64().is_some(), "{v}");

    // Churn happened, and the server saw it: users of the first connections left and new
    // identities (lt-<i>-g<n>) joined.
    let t = &r["totals"];
    let churned = u(t, "churned");
    assert!(
        (100..=180).contains(&churned),
        "10 %/s of 300 for 5 s ≈ 150: {t}"
    );
    assert!(u(t, "connsOpened") >= CONNS + churned - 5, "{t}");
    let replacements = seen.iter().filter(|id| id.contains("-g")).count() as u64;
    assert!(
        replacements >= churned / 2,
        "the server listed {replacements} replacement users (of {churned} churned): {seen:?}"
    );
    // The samples add up to the total (but for the last ~50 ms before the engine stopped).
    let per_sample_churn: u64 = samples.iter().map(|s| u(s, "churned")).sum();
    assert!(
        per_sample_churn <= churned && churned - per_sample_churn <= 5,
        "{per_sample_churn} in the samples, {churned} in all"
    );

    // Chat flowed with the server's default rate limit, and nothing went wrong.
    assert!(u(t, "delivered") > 0, "{t}");
    for s in samples.iter().skip(1) {
        assert!(u(s, "delivered") > 0, "every interval delivers: {s}");
        assert_eq!(u(s, "unexpectedCloses"), 0, "{s}");
        assert_eq!(u(s, "errors"), 0, "{s}");
        assert!(s["latencyP99Ms"].as_f64().is_some(), "{s}");
    }
    let e = &r["errors"];
    assert!(
        e["closes"].as_object().expect("closes").is_empty(),
        "unexpected closes: {e}"
    );
    assert!(
        e["errorFrames"]
            .as_object()
            .expect("errorFrames")
            .is_empty(),
        "error frames (rate_limited?): {e}"
    );
    assert!(
        e["connectFailures"]
            .as_object()
            .expect("connectFailures")
            .is_empty(),
        "{e}"
    );
    // The generator's progress lines: one per sample, on stderr.
    assert_eq!(stderr.matches("] rss ").count(), samples.len(), "{stderr}");
}

#[test]
fn soak_refuses_what_it_cannot_judge_or_hold() {
    // Nothing listens there: both are refused before connecting.
    let url = format!("ws://127.0.0.1:{}/ws", hubbub_test_support::free_port());
    let out = run_lt(&["soak", "--url", &url, "--conns", "10"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--server-pid"), "{err}");
    let me = std::process::id().to_string();
    let out = run_lt(&[
        "soak",
        "--url",
        &url,
        "--conns",
        "1000000",
        "--server-pid",
        &me,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("RLIMIT_NOFILE") && err.contains("processes"),
        "{err}"
    );
}
