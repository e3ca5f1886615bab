//! Test support of the bridge: its settings for tests, records, and helpers to look at
//! dynalite's table through the AWS SDK (dynalite itself, free ports and polling are in
//! `hubbub-test-support`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use hubbub_core::{PersistRecord, UnixMillis};
use hubbub_persist_bridge::{BridgeConfig, RetryPolicy};

/// Settings for tests: static dummy keys, short probes and backoffs.
pub fn config(endpoint: String) -> BridgeConfig {
    BridgeConfig {
        endpoint: Some(endpoint),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        linger: Duration::from_millis(5),
        start_timeout: Duration::from_secs(5),
        probe_interval: Duration::from_millis(200),
        connect_timeout: Duration::from_millis(500),
        retry: RetryPolicy {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(200),
            max_attempts: 5,
        },
        reconnect: RetryPolicy {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(300),
            max_attempts: u32::MAX,
        },
        ..BridgeConfig::default()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// 2026-11-21T10:30:00.000Z
pub const T0: u64 = 1_795_257_000_000;

/// A record with a fresh message id.
pub fn record(room: &str, user: &str, content: &str, ts: u64, seq: u64) -> PersistRecord {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    // A version-7-shaped id: the timestamp in the top 48 bits, a counter below.
    let id = (u128::from(ts) << 80) | (0x7u128 << 76) | (0x8u128 << 60) | u128::from(n);
    PersistRecord {
        message_id: uuid::Uuid::from_u128(id),
        room_id: room.into(),
        kind: Default::default(),
        user_id: user.into(),
        username: format!("{user} the user").into(),
        content: content.into(),
        timestamp: UnixMillis(ts),
        seq,
        attachments: Default::default(),
    }
}

/// Runs `fut` to completion on a fresh current-thread runtime.
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(fut)
}

/// A client on the same endpoint as the bridge.
pub async fn raw_client(endpoint: &str) -> Client {
    hubbub_persist_bridge::dynamo::client(&config(endpoint.to_owned())).await
}

/// Every item of `table`.
pub fn scan_all(endpoint: &str, table: &str) -> Vec<HashMap<String, AttributeValue>> {
    block_on(async {
        let client = raw_client(endpoint).await;
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = client
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            items.extend(out.items().iter().cloned());
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return items;
            }
        }
    })
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
