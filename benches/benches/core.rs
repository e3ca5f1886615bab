//! S6 of PERFORMANCE.md: the core's per-message costs, with no I/O.
//!
//! ```text
//! cargo bench -p hubbub-benches --bench core -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! - `decode/*`: decode + validate a 100-byte chat frame, hubbub's sonic-rs path beside
//!   the same decode with serde_json (target ≤ 300 ns).
//! - `broadcast/1`: one message through a hub with one member: rate check, decode,
//!   sequence, encode once, history append (room full at `HISTORY_SIZE` = 1000), user
//!   index, deliver; `broadcast/0-history` is the same with no history kept, so the
//!   difference is the history append.
//! - `fanout/N`: the same with N live members in the room, the driver's loop over the
//!   recipients included; throughput is reported per recipient.
//! - `token/verify`: one HMAC-SHA256 bearer token check.

use std::borrow::Cow;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hubbub_core::protocol::decode_client_frame;
use hubbub_core::upgrade::UpgradeRequest;
use hubbub_core::*;
use serde::Deserialize;

const WALL: u64 = 1_795_257_000_000;

/// A 100-byte chat frame with 72 ASCII characters of content.
fn frame_100() -> Vec<u8> {
    let content = "The quick brown fox jumps over the lazy dog; pack my box with five dozen";
    let frame = format!(r#"{{"type":"chat","content":"{content}"}}"#);
    assert_eq!(frame.len(), 100);
    frame.into_bytes()
}

/// The same decode and validation as `decode_client_frame`, with serde_json.
fn decode_serde_json(bytes: &[u8]) -> Option<Cow<'_, str>> {
    #[derive(Deserialize)]
    struct RawFrame<'a> {
        #[serde(rename = "type", borrow, default)]
        kind: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        content: Option<Cow<'a, str>>,
    }
    let raw: RawFrame<'_> = serde_json::from_slice(bytes).ok()?;
    if raw.kind.as_deref() != Some("chat") {
        return None;
    }
    let content = raw.content?;
    let too_long = content.len() > 1000 && content.chars().count() > 1000;
    if too_long || content.chars().all(char::is_whitespace) {
        return None;
    }
    Some(content)
}

fn decode(c: &mut Criterion) {
    let frame = frame_100();
    assert!(decode_client_frame(&frame).is_ok() && decode_serde_json(&frame).is_some());
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("sonic-rs (hubbub)", |b| {
        b.iter(|| decode_client_frame(black_box(&frame)).is_ok())
    });
    g.bench_function("serde_json", |b| {
        b.iter(|| decode_serde_json(black_box(&frame)).is_some())
    });
    g.finish();
}

/// A one-worker hub with `members` live connections in room `bench`, and the sender.
fn hub_with(members: usize, history: usize) -> (Hub, ConnId) {
    let mut cfg = HubConfig::new(WorkerId(0), 1);
    cfg.rate_limit = RateLimit {
        per_sec: 0.0,
        burst: 0.0,
    };
    cfg.history_size = history;
    cfg.presence = false;
    let mut hub = Hub::new(cfg, ConnectionGauge::new(1 << 20));
    let now = Now::new(Mono::from_nanos(0), UnixMillis(WALL));
    let mut sender = None;
    for i in 0..members {
        let query = format!("userId=u{i}&room=bench");
        let req = UpgradeRequest {
            query: &query,
            ..Default::default()
        };
        let admission = hub.admit(now, &req).expect("admitted");
        sender.get_or_insert(hub.handle_open(now, admission));
    }
    drain(&mut hub);
    let sender = sender.expect("at least one member");
    // Fill the history so appends are in steady state (evict one, push one).
    let frame = frame_100();
    for _ in 0..history.max(1) {
        hub.handle_frame(now, sender, Inbound::Text(&frame));
        drain(&mut hub);
    }
    (hub, sender)
}

/// The driver's side: every output until `Timeout`, touching each recipient once.
fn drain(hub: &mut Hub) -> usize {
    let mut recipients = 0;
    loop {
        match hub.poll_output() {
            Output::Deliver { frame, to, .. } => {
                for conn in to.iter() {
                    black_box((conn, &frame));
                    recipients += 1;
                }
            }
            Output::Timeout(_) => return recipients,
            other => {
                let _ = black_box(other);
            }
        }
    }
}

fn broadcast(c: &mut Criterion) {
    let frame = frame_100();
    let now = Now::new(Mono::from_nanos(1), UnixMillis(WALL + 1));
    let mut g = c.benchmark_group("broadcast");
    g.throughput(Throughput::Elements(1));
    for (name, history) in [("1", 1000), ("1-no-history", 0)] {
        let (mut hub, sender) = hub_with(1, history);
        g.bench_function(name, |b| {
            b.iter(|| {
                hub.handle_frame(now, sender, Inbound::Text(black_box(&frame)));
                drain(&mut hub)
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("fanout");
    for members in [1usize, 100, 1000] {
        let (mut hub, sender) = hub_with(members, 1000);
        g.throughput(Throughput::Elements(members as u64));
        g.bench_with_input(BenchmarkId::from_parameter(members), &members, |b, &n| {
            b.iter(|| {
                hub.handle_frame(now, sender, Inbound::Text(black_box(&frame)));
                assert_eq!(drain(&mut hub), n);
            })
        });
    }
    g.finish();
}

fn token(c: &mut Criterion) {
    let secret = b"a-32-byte-secret-for-benchmarks!";
    let token = auth::sign(secret, "alice", 2_000_000_000);
    let now = UnixMillis(WALL);
    assert!(auth::verify(secret, &token, now).is_ok());
    c.bench_function("token/verify", |b| {
        b.iter(|| auth::verify(black_box(secret), black_box(&token), now).is_ok())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = decode, broadcast, token
}
criterion_main!(benches);
