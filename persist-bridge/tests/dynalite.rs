//! The bridge against a real DynamoDB-API server (dynalite, in memory) on loopback.
//! Needs `npm ci` in tools/dynalite; fails (does not skip) without it.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use common::*;
use hubbub_core::protocol::ChatMessage;
use hubbub_core::{PersistRecord, PersistSink, StorageStatus};
use hubbub_persist_bridge::{Bridge, BridgeConfig, QueryError, StartError};
use hubbub_test_support::dynalite::{endpoint, Dynalite};
use hubbub_test_support::free_port;
use hubbub_test_support::poll::wait_until;

const TABLE: &str = "chat-messages";

fn expected_item(r: &PersistRecord) -> HashMap<String, AttributeValue> {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    HashMap::from([
        ("MessageID".to_owned(), s(&r.message_id.to_string())),
        ("RoomID".to_owned(), s(&r.room_id)),
        ("Type".to_owned(), s("chat")),
        ("UserID".to_owned(), s(&r.user_id)),
        ("Username".to_owned(), s(&r.username)),
        ("Content".to_owned(), s(&r.content)),
        ("Timestamp".to_owned(), s(r.timestamp.to_rfc3339().as_str())),
        ("Seq".to_owned(), AttributeValue::N(r.seq.to_string())),
    ])
}

fn item_ids(items: &[HashMap<String, AttributeValue>]) -> HashSet<String> {
    items
        .iter()
        .filter_map(|i| i.get("MessageID")?.as_s().ok().cloned())
        .collect()
}

fn push_all(bridge: &Bridge, records: &[PersistRecord]) {
    let mut sink = bridge.sink();
    for r in records {
        assert!(sink.try_push(r.clone()).is_ok(), "queue refused a record");
    }
}

fn wait_written(bridge: &Bridge, n: u64, timeout: Duration) {
    let ok = wait_until(timeout, || bridge.stats().written >= n);
    assert!(ok, "not written in {timeout:?}: {:?}", bridge.stats());
}

#[test]
fn creates_the_table_with_both_indexes() {
    init_tracing();
    let db = Dynalite::start();
    let bridge = Bridge::start(config(db.endpoint())).expect("start");
    assert_eq!(bridge.status(), StorageStatus::Ok);
    let stats = bridge.stats();
    assert!(stats.enabled);
    assert_eq!(stats.status, "ok");

    let desc = block_on(async {
        let client = raw_client(&db.endpoint()).await;
        client.describe_table().table_name(TABLE).send().await
    })
    .expect("describe")
    .table
    .expect("table description");
    let keys = |schema: &[KeySchemaElement]| -> Vec<(String, KeyType)> {
        schema
            .iter()
            .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
            .collect()
    };
    assert_eq!(
        keys(desc.key_schema()),
        [
            ("RoomID".to_owned(), KeyType::Hash),
            ("MessageID".to_owned(), KeyType::Range)
        ]
    );
    let mut defs: Vec<(String, ScalarAttributeType)> = desc
        .attribute_definitions()
        .iter()
        .map(|d| (d.attribute_name().to_owned(), d.attribute_type().clone()))
        .collect();
    defs.sort_by(|a, b| a.0.cmp(&b.0));
    let s = ScalarAttributeType::S;
    assert_eq!(
        defs,
        [
            ("MessageID".to_owned(), s.clone()),
            ("RoomID".to_owned(), s.clone()),
            ("Timestamp".to_owned(), s.clone()),
            ("UserID".to_owned(), s)
        ]
    );
    assert_eq!(
        desc.billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .cloned(),
        Some(BillingMode::PayPerRequest)
    );
    type Index = (String, Vec<(String, KeyType)>, String);
    let mut gsis: Vec<Index> = desc
        .global_secondary_indexes()
        .iter()
        .map(|g| {
            (
                g.index_name().unwrap_or_default().to_owned(),
                keys(g.key_schema()),
                g.projection()
                    .and_then(|p| p.projection_type())
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
            )
        })
        .collect();
    gsis.sort_by(|a, b| a.0.cmp(&b.0));
    let ts = ("Timestamp".to_owned(), KeyType::Range);
    assert_eq!(
        gsis,
        [
            (
                "RoomID-Timestamp-index".to_owned(),
                vec![("RoomID".to_owned(), KeyType::Hash), ts.clone()],
                "ALL".to_owned()
            ),
            (
                "UserID-Timestamp-index".to_owned(),
                vec![("UserID".to_owned(), KeyType::Hash), ts],
                "ALL".to_owned()
            ),
        ]
    );
    let report = bridge.shutdown(Duration::from_secs(2));
    assert!(report.completed);

    // A second start finds the table and accepts it.
    let again = Bridge::start(config(db.endpoint())).expect("start on an existing table");
    assert_eq!(again.status(), StorageStatus::Ok);
}

#[test]
fn every_record_lands_with_exactly_the_table_attributes() {
    init_tracing();
    let db = Dynalite::start();
    let bridge = Bridge::start(config(db.endpoint())).expect("start");
    let contents = [
        "Hello",
        "with \"quotes\" and \\ backslash",
        "unicode: żółć 😀 中文",
        "  leading and trailing spaces  ",
        "line\nbreak",
    ];
    let records: Vec<PersistRecord> = (0..40u64)
        .map(|i| {
            let room = if i % 3 == 0 {
                "global"
            } else {
                "room:a-b_c.d@e"
            };
            let content = contents[(i as usize) % contents.len()];
            record(room, &format!("user{}", i % 4), content, T0 + i * 7, i + 1)
        })
        .collect();
    let started = std::time::Instant::now();
    push_all(&bridge, &records);
    wait_written(&bridge, 40, Duration::from_secs(10));
    let window_ms = started.elapsed().as_secs_f64() * 1000.0;

    let items = scan_all(&db.endpoint(), TABLE);
    assert_eq!(items.len(), records.len());
    let by_id: HashMap<String, &HashMap<String, AttributeValue>> = items
        .iter()
        .filter_map(|i| Some((i.get("MessageID")?.as_s().ok()?.clone(), i)))
        .collect();
    for r in &records {
        let got = by_id
            .get(&r.message_id.to_string())
            .unwrap_or_else(|| panic!("record {} not stored", r.message_id));
        assert_eq!(**got, expected_item(r));
    }
    let stats = bridge.stats();
    assert_eq!(
        (stats.queued, stats.written, stats.failed, stats.dropped),
        (40, 40, 0, 0)
    );
    // Every batch call ran inside the window the test measured; a real call to dynalite
    // takes more than the 1 µs a sample is clamped to (2 significant digits: ≤ 1 % over).
    assert!(
        stats.batch_p99_ms > 0.001 && stats.batch_p99_ms <= window_ms * 1.01,
        "batch p99 {} ms, the writes took {window_ms:.3} ms",
        stats.batch_p99_ms
    );
}

#[test]
fn five_hundred_records_then_shutdown_gives_500_items() {
    init_tracing();
    let db = Dynalite::start();
    let bridge = Bridge::start(config(db.endpoint())).expect("start");
    let records: Vec<PersistRecord> = (0..500u64)
        .map(|i| record(&format!("room{}", i % 7), "u", "m", T0 + i, i + 1))
        .collect();
    push_all(&bridge, &records);
    let started = std::time::Instant::now();
    let report = bridge.shutdown(Duration::from_secs(20));
    assert!(report.completed, "{report:?}");
    assert!(report.unwritten.is_empty());
    assert_eq!(report.stats.written, 500);
    assert_eq!(report.stats.failed, 0);
    assert_eq!(report.stats.queue_depth, 0);
    assert!(started.elapsed() < Duration::from_secs(20));
    let items = scan_all(&db.endpoint(), TABLE);
    assert_eq!(items.len(), 500);
    let want: HashSet<String> = records.iter().map(|r| r.message_id.to_string()).collect();
    assert_eq!(item_ids(&items), want);
}

#[test]
fn start_with_the_endpoint_down_queues_then_writes_when_it_comes_up() {
    init_tracing();
    let port = free_port();
    let cfg = BridgeConfig {
        start_timeout: Duration::from_millis(500),
        ..config(endpoint(port))
    };
    let started = std::time::Instant::now();
    let bridge = Bridge::start(cfg).expect("an unreachable store is not a start error");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(bridge.status(), StorageStatus::Unavailable);
    assert_eq!(bridge.stats().status, "unavailable");

    let records: Vec<PersistRecord> = (0..60u64)
        .map(|i| record("lobby", "u", "queued while down", T0 + i, i + 1))
        .collect();
    push_all(&bridge, &records);
    std::thread::sleep(Duration::from_millis(300));
    let stats = bridge.stats();
    assert_eq!(
        (stats.queued, stats.written, stats.queue_depth),
        (60, 0, 60)
    );
    let history = block_on(bridge.room_history("lobby", 10)).expect("reply");
    assert!(matches!(history, Err(QueryError::Unavailable(_))));

    let db = Dynalite::start_on(port);
    wait_written(&bridge, 60, Duration::from_secs(15));
    assert!(wait_until(Duration::from_secs(5), || bridge.status()
        == StorageStatus::Ok));
    let items = scan_all(&db.endpoint(), TABLE);
    let want: HashSet<String> = records.iter().map(|r| r.message_id.to_string()).collect();
    assert_eq!(item_ids(&items), want);
    assert_eq!(bridge.stats().failed, 0);
    assert_eq!(bridge.stats().queue_depth, 0);
}

#[test]
fn a_store_restarted_mid_run_loses_nothing_that_was_queued() {
    init_tracing();
    let mut db = Dynalite::start();
    let port = db.port;
    let bridge = Bridge::start(config(db.endpoint())).expect("start");
    let batch = |from: u64| -> Vec<PersistRecord> {
        (from..from + 100)
            .map(|i| record("busy", "u", "m", T0 + i, i + 1))
            .collect()
    };
    let first = batch(0);
    push_all(&bridge, &first);
    wait_written(&bridge, 100, Duration::from_secs(10));

    db.kill();
    let second = batch(100);
    push_all(&bridge, &second);
    assert!(
        wait_until(Duration::from_secs(10), || bridge.status()
            == StorageStatus::Unavailable),
        "the bridge did not notice the store went away"
    );
    let third = batch(200);
    push_all(&bridge, &third);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(bridge.stats().written, 100);

    // dynalite is in memory: the new one has no table, and the bridge must create it.
    let db = Dynalite::start_on(port);
    wait_written(&bridge, 300, Duration::from_secs(20));
    assert!(wait_until(Duration::from_secs(5), || bridge.status()
        == StorageStatus::Ok));
    let items = scan_all(&db.endpoint(), TABLE);
    let want: HashSet<String> = second
        .iter()
        .chain(&third)
        .map(|r| r.message_id.to_string())
        .collect();
    assert_eq!(item_ids(&items), want);
    let stats = bridge.stats();
    assert_eq!((stats.failed, stats.dropped, stats.queue_depth), (0, 0, 0));
    let report = bridge.shutdown(Duration::from_secs(5));
    assert!(report.completed);
}

#[test]
fn a_table_that_vanished_between_probes_is_recreated_on_the_first_write() {
    init_tracing();
    let mut db = Dynalite::start();
    let port = db.port;
    // Probes so rare that only the writes can notice the restart.
    let cfg = BridgeConfig {
        probe_interval: Duration::from_secs(3600),
        ..config(db.endpoint())
    };
    let bridge = Bridge::start(cfg).expect("start");
    let first: Vec<PersistRecord> = (0..10u64)
        .map(|i| record("x", "u", "m", T0 + i, i + 1))
        .collect();
    push_all(&bridge, &first);
    wait_written(&bridge, 10, Duration::from_secs(10));
    db.kill();
    let db = Dynalite::start_on(port);
    assert_eq!(bridge.status(), StorageStatus::Ok, "no probe has run");
    let second: Vec<PersistRecord> = (10..50u64)
        .map(|i| record("x", "u", "m", T0 + i, i + 1))
        .collect();
    push_all(&bridge, &second);
    wait_written(&bridge, 50, Duration::from_secs(15));
    let want: HashSet<String> = second.iter().map(|r| r.message_id.to_string()).collect();
    assert_eq!(item_ids(&scan_all(&db.endpoint(), TABLE)), want);
    assert_eq!(bridge.stats().failed, 0);
    assert_eq!(bridge.status(), StorageStatus::Ok);
}

#[test]
fn a_frozen_store_times_out_and_nothing_is_lost_when_it_thaws() {
    init_tracing();
    let db = Dynalite::start();
    let cfg = BridgeConfig {
        connect_timeout: Duration::from_millis(300),
        attempt_timeout: Duration::from_millis(400),
        operation_timeout: Duration::from_millis(800),
        ..config(db.endpoint())
    };
    let bridge = Bridge::start(cfg).expect("start");
    let records: Vec<PersistRecord> = (0..80u64)
        .map(|i| record("frozen", "u", "m", T0 + i, i + 1))
        .collect();
    db.signal("STOP");
    push_all(&bridge, &records[..40]);
    assert!(
        wait_until(Duration::from_secs(5), || bridge.status()
            == StorageStatus::Unavailable),
        "a frozen store must be reported unavailable (timeouts are set)"
    );
    push_all(&bridge, &records[40..]);
    let t0 = std::time::Instant::now();
    let history = block_on(bridge.room_history("frozen", 5)).expect("reply");
    assert!(history.is_err() && t0.elapsed() < Duration::from_millis(100));
    db.signal("CONT");
    wait_written(&bridge, 80, Duration::from_secs(20));
    let want: HashSet<String> = records.iter().map(|r| r.message_id.to_string()).collect();
    assert_eq!(item_ids(&scan_all(&db.endpoint(), TABLE)), want);
    let stats = bridge.stats();
    assert_eq!((stats.failed, stats.dropped), (0, 0));
}

#[test]
fn a_full_queue_refuses_and_counts_dropped() {
    init_tracing();
    let cfg = BridgeConfig {
        queue_size: 8,
        start_timeout: Duration::from_millis(200),
        ..config(endpoint(free_port()))
    };
    let bridge = Bridge::start(cfg).expect("start");
    let mut sink = bridge.sink();
    let records: Vec<PersistRecord> = (0..10u64)
        .map(|i| record("r", "u", "m", T0 + i, i + 1))
        .collect();
    for r in &records[..8] {
        assert!(sink.try_push(r.clone()).is_ok());
    }
    let refused = sink.try_push(records[8].clone());
    assert_eq!(refused, Err(records[8].clone()), "the record comes back");
    assert!(sink.try_push(records[9].clone()).is_err());
    let stats = bridge.stats();
    assert_eq!((stats.queued, stats.dropped, stats.queue_depth), (8, 2, 8));

    // Shutting down with the store still away: the queued records are reported by id.
    let report = bridge.shutdown(Duration::from_millis(300));
    assert!(!report.completed);
    let mut unwritten = report.unwritten.clone();
    unwritten.sort();
    let mut want: Vec<uuid::Uuid> = records[..8].iter().map(|r| r.message_id).collect();
    want.sort();
    assert_eq!(unwritten, want);
    assert_eq!(report.stats.failed, 8);
    assert!(
        sink.try_push(records[0].clone()).is_err(),
        "closed after shutdown"
    );
}

#[test]
fn history_queries_return_the_newest_oldest_first() {
    init_tracing();
    let db = Dynalite::start();
    let bridge = Bridge::start(config(db.endpoint())).expect("start");
    // Room r1: 30 messages from alice and bob; pairs share a millisecond, so the GSI
    // order within a pair is arbitrary and the bridge must settle it by seq.
    let r1: Vec<PersistRecord> = (1..=30u64)
        .map(|seq| {
            let user = if seq % 3 == 0 { "bob" } else { "alice" };
            record("r1", user, &format!("message {seq}"), T0 + seq / 2, seq)
        })
        .collect();
    let r2: Vec<PersistRecord> = (1..=5u64)
        .map(|seq| record("r2", "alice", "elsewhere", T0 + 1000 + seq, seq))
        .collect();
    push_all(&bridge, &r1);
    push_all(&bridge, &r2);
    wait_written(&bridge, 35, Duration::from_secs(10));

    let got = block_on(bridge.room_history("r1", 10))
        .expect("reply")
        .expect("room history");
    let want: Vec<ChatMessage> = r1[20..].iter().map(PersistRecord::to_message).collect();
    assert_eq!(got, want);

    let all = block_on(bridge.room_history("r1", 200))
        .expect("reply")
        .expect("room history");
    assert_eq!(
        all,
        r1.iter().map(PersistRecord::to_message).collect::<Vec<_>>()
    );

    let none = block_on(bridge.room_history("nobody-here", 50))
        .expect("reply")
        .expect("room history");
    assert!(none.is_empty());
    let zero = block_on(bridge.room_history("r1", 0))
        .expect("reply")
        .expect("room history");
    assert!(zero.is_empty());

    // alice: r1 messages not divisible by 3, then the five r2 ones (newer).
    let got = block_on(bridge.user_history("alice", 7))
        .expect("reply")
        .expect("user history");
    let alice: Vec<ChatMessage> = r1
        .iter()
        .chain(&r2)
        .filter(|r| &*r.user_id == "alice")
        .map(PersistRecord::to_message)
        .collect();
    assert_eq!(got, alice[alice.len() - 7..].to_vec());
    let bob = block_on(bridge.user_history("bob", 100))
        .expect("reply")
        .expect("user history");
    assert_eq!(bob.len(), 10);
    assert!(bob.windows(2).all(|w| w[0].seq < w[1].seq));

    let state = block_on(bridge.load_room("r1", 5))
        .expect("reply")
        .expect("load room");
    assert_eq!(state.last_seq, 30);
    assert_eq!(
        state.recent,
        r1[25..]
            .iter()
            .map(PersistRecord::to_message)
            .collect::<Vec<_>>()
    );
    let state = block_on(bridge.load_room("r1", 0))
        .expect("reply")
        .expect("load room");
    assert_eq!((state.last_seq, state.recent.len()), (30, 0));
    let empty = block_on(bridge.load_room("fresh", 50))
        .expect("reply")
        .expect("load room");
    assert_eq!((empty.last_seq, empty.recent.len()), (0, 0));
}

/// What a v2 recovery past the ring asks: exactly the messages with `after < seq <=
/// upto`, across pages of the index and with five messages a millisecond, so timestamps
/// tie across the range's start and across page ends.
#[test]
fn a_range_of_seqs_comes_whole_across_pages_and_tied_timestamps() {
    init_tracing();
    let db = Dynalite::start();
    let bridge = Bridge::start(config(db.endpoint())).expect("start");
    let records: Vec<PersistRecord> = (1..=2_500u64)
        .map(|seq| record("deep", "alice", &format!("m{seq}"), T0 + seq / 5, seq))
        .collect();
    push_all(&bridge, &records);
    push_all(
        &bridge,
        &[record("other", "bob", "elsewhere", T0 + 9, 1_300)],
    );
    wait_written(&bridge, 2_501, Duration::from_secs(60));
    let mut got = block_on(bridge.load_range("deep", 1_202, 2_300))
        .expect("reply")
        .expect("range");
    got.sort_by_key(|m| m.seq);
    let want: Vec<ChatMessage> = records[1_202..2_300]
        .iter()
        .map(PersistRecord::to_message)
        .collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    let none = block_on(bridge.load_range("deep", 7, 7))
        .expect("reply")
        .expect("range");
    assert!(none.is_empty());
    let unknown = block_on(bridge.load_range("nobody-here", 0, 5))
        .expect("reply")
        .expect("range");
    assert!(unknown.is_empty());
}

#[test]
fn an_existing_table_with_another_schema_is_a_mismatch() {
    init_tracing();
    let db = Dynalite::start();
    let endpoint = db.endpoint();
    block_on(async {
        let client = raw_client(&endpoint).await;
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .expect("key")
        };
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute")
        };
        client
            .create_table()
            .table_name("other-keys")
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("id", KeyType::Hash))
            .attribute_definitions(attr("id"))
            .send()
            .await
            .expect("create other-keys");
        client
            .create_table()
            .table_name("no-indexes")
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("RoomID", KeyType::Hash))
            .key_schema(key("MessageID", KeyType::Range))
            .attribute_definitions(attr("RoomID"))
            .attribute_definitions(attr("MessageID"))
            .send()
            .await
            .expect("create no-indexes");
    });

    let start = |table: &str| {
        Bridge::start(BridgeConfig {
            table: table.to_owned(),
            ..config(endpoint.clone())
        })
    };
    match start("other-keys") {
        Err(e @ StartError::SchemaMismatch { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("other-keys"), "{msg}");
            assert!(msg.contains("(id, no sort key)"), "{msg}");
            assert!(msg.contains("RoomID"), "{msg}");
        }
        other => panic!("expected a schema mismatch, got {other:?}"),
    }
    match start("no-indexes") {
        Err(e @ StartError::SchemaMismatch { .. }) => {
            assert!(e.to_string().contains("UserID-Timestamp-index"), "{e}");
        }
        other => panic!("expected a schema mismatch, got {other:?}"),
    }
}

#[test]
fn without_static_keys_the_credential_chain_signs() {
    init_tracing();
    // The environment is the first link of the chain. No other test reads these.
    std::env::set_var("AWS_ACCESS_KEY_ID", "from-env");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "from-env");
    let db = Dynalite::start();
    let bridge = Bridge::start(BridgeConfig {
        access_key_id: None,
        secret_access_key: None,
        ..config(db.endpoint())
    })
    .expect("start");
    assert_eq!(bridge.status(), StorageStatus::Ok);
    push_all(&bridge, &[record("env", "u", "m", T0, 1)]);
    wait_written(&bridge, 1, Duration::from_secs(10));
}

#[test]
fn shutdown_with_the_store_away_and_nothing_queued_is_immediate() {
    let bridge = Bridge::start(BridgeConfig {
        start_timeout: Duration::from_millis(100),
        ..config(endpoint(free_port()))
    })
    .expect("start");
    let t0 = std::time::Instant::now();
    let report = bridge.shutdown(Duration::from_secs(10));
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(report.completed);
    assert!(report.unwritten.is_empty());
}

#[test]
fn a_bad_setting_is_a_start_error() {
    let err = Bridge::start(BridgeConfig {
        batch_size: 26,
        ..BridgeConfig::default()
    });
    assert!(matches!(err, Err(StartError::Config(_))));
}

/// Not a benchmark of DynamoDB (dynalite is a single Node process), but shows the bridge
/// keeps `in_flight` full batches going: `cargo test -p hubbub-persist-bridge --release --test
/// dynalite throughput -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn throughput_against_dynalite() {
    init_tracing();
    let db = Dynalite::start();
    let bridge = Bridge::start(config(db.endpoint())).expect("start");
    let n = 20_000u64;
    let records: Vec<PersistRecord> = (0..n)
        .map(|i| {
            record(
                &format!("room{}", i % 50),
                "u",
                "some chat text",
                T0 + i,
                i + 1,
            )
        })
        .collect();
    let started = std::time::Instant::now();
    push_all(&bridge, &records);
    let report = bridge.shutdown(Duration::from_secs(120));
    let took = started.elapsed();
    assert!(report.completed, "{report:?}");
    println!(
        "{n} records in {took:?}: {:.0} records/s, batch p99 {} ms, retried {}",
        n as f64 / took.as_secs_f64(),
        report.stats.batch_p99_ms,
        report.stats.retried
    );
}

#[test]
fn read_markers_and_last_seen_survive_a_restart_in_the_state_table() {
    use hubbub_core::{StateWrite, UnixMillis};
    init_tracing();
    let db = Dynalite::start();
    let bridge = Bridge::start(config(db.endpoint())).expect("start");
    // Before the state table exists, a room loads with no markers and nobody was seen.
    let empty = block_on(bridge.load_room("dev", 10))
        .expect("reply")
        .expect("load");
    assert!(empty.read_markers.is_empty());
    let mut sink = bridge.sink();
    let marker = |user: &str, seq| StateWrite::ReadMarker {
        room_id: "dev".into(),
        user_id: user.into(),
        seq,
    };
    for w in [
        marker("alice", 3),
        marker("bob", 5),
        marker("alice", 7), // the newest value of a key wins
        StateWrite::LastSeen {
            user_id: "alice".into(),
            at: UnixMillis(T0),
        },
        StateWrite::ReadMarker {
            room_id: "other".into(),
            user_id: "alice".into(),
            seq: 1,
        },
    ] {
        assert!(sink.try_push_state(w).is_ok());
    }
    let report = bridge.shutdown(Duration::from_secs(10));
    assert!(report.completed, "{report:?}");
    // A new bridge (a restarted server) reads them back.
    let bridge = Bridge::start(config(db.endpoint())).expect("restart");
    let state = block_on(bridge.load_room("dev", 10))
        .expect("reply")
        .expect("load");
    let mut markers = state.read_markers;
    markers.sort();
    assert_eq!(markers, [("alice".to_owned(), 7), ("bob".to_owned(), 5)]);
    let seen = block_on(bridge.last_seen(vec!["alice".into(), "carol".into()]))
        .expect("reply")
        .expect("last seen");
    assert_eq!(seen, [Some(T0), None]);
    bridge.shutdown(Duration::from_secs(5));
}
