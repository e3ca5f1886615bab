//! The generator against the real `hubbub` server: what it says it sent and got accepted
//! must equal the server's own `totalMessages` in `/api/analytics`.
//!
//! The server is `target/debug/hubbub`, built by the test (see `common/hubbub.rs`); the
//! same check runs against the in-test server in `fake_server.rs`.

mod common;

use common::hubbub::Hubbub;
use common::{report, run_lt};
use sonic_rs::JsonValueTrait;

fn total_messages(server: &Hubbub) -> u64 {
    server.analytics()["totalMessages"]
        .as_u64()
        .expect("totalMessages")
}

#[test]
fn counts_match_the_servers_analytics() {
    let server = Hubbub::start(&[("RATE_LIMIT_PER_SEC", "0")]);
    let before = total_messages(&server);
    let url = server.ws_url();
    let pid = server.pid().to_string();
    let out = run_lt(&[
        "fanout",
        "--url",
        &url,
        "--conns",
        "40",
        "--rooms",
        "4",
        "--senders",
        "8",
        "--rate",
        "25",
        "--warmup",
        "0s",
        "--duration",
        "1s",
        "--drain",
        "2s",
        "--server-pid",
        &pid,
        "--min-delivery",
        "1.0",
        "--json",
    ]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r}");
    let sent = r["sent"].as_u64().expect("sent");
    assert!(sent >= 150, "{r}");
    assert_eq!(r["accepted"].as_u64(), Some(sent), "{r}");
    assert_eq!(
        total_messages(&server) - before,
        sent,
        "server totalMessages vs generator"
    );
    assert_eq!(
        r["delivered"].as_u64(),
        Some(sent * 10),
        "10 members per room: {r}"
    );
    assert_eq!(r["integrity"]["gaps"].as_u64(), Some(0), "{r}");
    assert!(r["server"]["cpuMs"].as_f64().is_some(), "{r}");
}

/// `rooms` (S8's shape, scaled down): every message reaches every subscriber of its
/// room exactly once, in order, and is acked once; the server counted what was sent.
#[test]
fn rooms_delivers_to_every_subscriber_and_acks() {
    let server = Hubbub::start(&[("RATE_LIMIT_PER_SEC", "0"), ("PRESENCE", "false")]);
    let before = total_messages(&server);
    let url = server.ws_url();
    let pid = server.pid().to_string();
    let out = run_lt(&[
        "rooms",
        "--url",
        &url,
        "--conns",
        "40",
        "--rooms",
        "8",
        "--subscriptions",
        "4",
        "--senders",
        "8",
        "--rate",
        "20",
        "--warmup",
        "0s",
        "--duration",
        "1s",
        "--drain",
        "2s",
        "--settle",
        "200ms",
        "--server-pid",
        &pid,
        "--min-delivery",
        "1.0",
        "--json",
    ]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r}");
    let sent = r["sent"].as_u64().expect("sent");
    assert!(sent >= 100, "{r}");
    assert_eq!(r["accepted"].as_u64(), Some(sent), "{r}");
    // 40 connections × 4 rooms over 8 rooms: 20 subscribers per room.
    assert_eq!(r["delivered"].as_u64(), Some(sent * 20), "{r}");
    assert_eq!(r["v2"]["subscriptions"].as_u64(), Some(160), "{r}");
    assert_eq!(r["v2"]["acksInWindow"].as_u64(), Some(sent), "{r}");
    assert_eq!(r["v2"]["duplicateAcks"].as_u64(), Some(0), "{r}");
    assert_eq!(r["v2"]["unknownRoom"].as_u64(), Some(0), "{r}");
    assert!(r["v2"]["rssPerSubscriptionBytes"].as_f64().is_some(), "{r}");
    assert!(
        r["v2"]["rssPerFirstSubscriptionBytes"].as_f64().is_some(),
        "{r}"
    );
    assert_eq!(
        sonic_rs::to_string(&r["errors"]["errorFrames"]).unwrap(),
        "{}",
        "no error frame: {r}"
    );
    assert!(r["server"]["cpuNsPerFrame"].as_f64().is_some(), "{r}");
    assert_eq!(r["integrity"]["gaps"].as_u64(), Some(0), "{r}");
    assert!(total_messages(&server) - before >= sent);
}

/// `typing` (S9's shape, scaled down) against the server's defaults (presence on):
/// typing and presence frames arrive, within the coalescing bound, while connections
/// churn and resubscribe.
#[test]
fn typing_sees_coalesced_typing_and_presence_under_churn() {
    let server = Hubbub::start(&[("RATE_LIMIT_PER_SEC", "0")]);
    let url = server.ws_url();
    let out = run_lt(&[
        "typing",
        "--url",
        &url,
        "--conns",
        "40",
        "--rooms",
        "4",
        "--senders",
        "4",
        "--rate",
        "10",
        "--typing-every",
        "500ms",
        "--churn",
        "10",
        "--warmup",
        "500ms",
        "--duration",
        "2s",
        "--allow-loss",
        "--json",
    ]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r}");
    let v = &r["v2"];
    assert!(v["typingReceived"].as_u64().unwrap_or(0) > 0, "{r}");
    assert!(v["presenceReceived"].as_u64().unwrap_or(0) > 0, "{r}");
    assert!(v["churned"].as_u64().unwrap_or(0) > 0, "{r}");
    assert!(v["typingSent"].as_u64().unwrap_or(0) >= 40, "{r}");
    assert!(
        r["deliveryRatio"].as_f64().unwrap_or(0.0) > 0.9,
        "most messages delivered under churn: {r}"
    );
    assert!(
        r["errors"]["errorFrames"]["not_subscribed"]
            .as_u64()
            .is_none(),
        "replacements chat only after subscribing: {r}"
    );
    assert_eq!(r["v2"]["duplicateAcks"].as_u64(), Some(0), "{r}");
}

/// `connect --proto 2` against the server's defaults: v2 connections naming their room in
/// the upgrade (the implicit subscribe) all open, nothing is refused or closed.
#[test]
fn v2_connect_storm_with_the_room_in_the_upgrade() {
    let server = Hubbub::start(&[]);
    let url = server.ws_url();
    let pid = server.pid().to_string();
    let out = run_lt(&[
        "connect",
        "--url",
        &url,
        "--conns",
        "60",
        "--rooms",
        "3",
        "--proto",
        "2",
        "--server-pid",
        &pid,
        "--json",
    ]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r}");
    assert_eq!(r["connsOpened"].as_u64(), Some(60), "{r}");
    assert_eq!(
        sonic_rs::to_string(&r["errors"]).unwrap(),
        r#"{"errorFrames":{},"closes":{},"connectFailures":{}}"#,
        "{r}"
    );
    assert!(r["server"]["cpuUsPerHandshake"].as_f64().is_some(), "{r}");
}
