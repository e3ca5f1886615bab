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
