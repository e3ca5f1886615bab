//! The durable store: with `STORE=dynamodb`, the persistence bridge (one tokio thread,
//! `hubbub-persist-bridge`) and what the workers ask of it. With the memory store none of this
//! runs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hubbub_persist_bridge::{Bridge, BridgeConfig};

use hubbub_core::StoredRoom;

use crate::config::{Config, Store};
use crate::engine::{Host, LoadFuture, RangeFuture};

/// Tries to load a room's state before starting it afresh.
const LOAD_ATTEMPTS: u32 = 4;

/// Starts the bridge when the configuration asks for DynamoDB. Waits at most a few
/// seconds: an unreachable endpoint is not an error (storage is `unavailable` and the
/// bridge keeps trying), a table with another key schema is.
pub(crate) fn start(config: &Config) -> anyhow::Result<Option<Arc<Bridge>>> {
    if config.store != Store::Dynamodb {
        return Ok(None);
    }
    let cfg = BridgeConfig {
        endpoint: config.dynamodb_endpoint.clone(),
        region: config.dynamodb_region.clone(),
        table: config.dynamodb_table.clone(),
        state_table: config.dynamodb_state_table.clone(),
        access_key_id: config.aws_access_key_id.clone(),
        secret_access_key: config.aws_secret_access_key.clone(),
        batch_size: usize::from(config.persist_batch_size),
        queue_size: config.persist_queue_size as usize,
        in_flight: usize::from(config.persist_workers),
        ..BridgeConfig::default()
    };
    let bridge = Bridge::start(cfg).context("cannot start DynamoDB persistence")?;
    tracing::info!(
        table = %config.dynamodb_table,
        endpoint = config.dynamodb_endpoint.as_deref().unwrap_or("AWS"),
        status = bridge.status().as_str(),
        "persistence bridge started"
    );
    Ok(Some(Arc::new(bridge)))
}

/// Closes the queue and drains it within `deadline`; reports what could not be written
/// (the bridge logs those message ids and counts them as failed). It does not wait for
/// anyone else to let go of the bridge: a worker or a task still holding it cannot stop
/// the drain.
pub(crate) fn shutdown(bridge: &Bridge, deadline: Duration) {
    let report = bridge.shutdown(deadline);
    if report.unwritten.is_empty() {
        tracing::info!(
            written = report.stats.written,
            took_ms = report.elapsed.as_millis() as u64,
            "persistence queue drained"
        );
    } else {
        tracing::warn!(
            unwritten = report.unwritten.len(),
            written = report.stats.written,
            "persistence queue not fully drained before the deadline"
        );
    }
}

/// The engine's [`Host`] with a durable store: a room's state comes from the table.
pub(crate) struct StoreHost(pub(crate) Arc<Bridge>);

impl Host for StoreHost {
    fn load_room(&self, room: Arc<str>, recent: usize) -> LoadFuture {
        Box::pin(load_room(self.0.clone(), room, recent))
    }

    fn load_range(&self, room: Arc<str>, after: u64, upto: u64) -> RangeFuture {
        let bridge = self.0.clone();
        Box::pin(async move {
            // One try: the subscriber waits, and the backlog is a fine answer too.
            match bridge.load_range(&room, after, upto).await {
                Ok(Ok(messages)) => Some(messages),
                Ok(Err(e)) => {
                    tracing::debug!(room = %room, error = %e, "missed messages not loaded: backlog instead");
                    None
                }
                Err(_canceled) => None,
            }
        })
    }
}

/// Asks the store for a room's last `seq` and newest messages. If the store cannot
/// answer after a few tries the room starts afresh — the chat stays available, at the
/// cost of `seq` restarting for that room (logged).
async fn load_room(bridge: Arc<Bridge>, room: Arc<str>, recent: usize) -> Option<StoredRoom> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match bridge.load_room(&room, recent).await {
            Ok(Ok(state)) => {
                return Some(StoredRoom {
                    last_seq: state.last_seq,
                    recent: state.recent,
                    read_markers: state.read_markers,
                    room: state.room,
                    epoch: None,
                })
            }
            Ok(Err(e)) if attempt < LOAD_ATTEMPTS => {
                tracing::debug!(room = %room, error = %e, attempt, "room state not loaded yet");
                monoio::time::sleep(Duration::from_millis(150 * u64::from(attempt))).await;
            }
            Ok(Err(e)) => {
                tracing::warn!(room = %room, error = %e, "room state could not be loaded: starting it afresh");
                return None;
            }
            Err(_canceled) => return None,
        }
    }
}
