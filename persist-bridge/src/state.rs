//! The state table beside the seed's messages table (which stays unchanged): v2 read
//! markers and users' last-seen times, one item per key, the latest value winning.
//!
//! Layout (`DYNAMODB_STATE_TABLE`, created on demand, PAY_PER_REQUEST): partition key `PK`
//! (S), sort key `SK` (S).
//! - a read marker: `PK = "room#<roomId>"`, `SK = "read#<userId>"`, `Seq` (N);
//! - a last-seen time: `PK = "user#<userId>"`, `SK = "lastSeen"`, `At` (N, Unix ms);
//! - an account: `PK = "account#<userId>"`, `SK = "account"` (see `accounts`);
//! - a room made through the rooms API and the per-user index of its members (see
//!   `rooms`).
//!
//! Writes come from a bounded queue of their own and go out in BatchWriteItem calls of at
//! most 25, the same key written once per batch (its newest value); a write that keeps
//! failing is dropped and counted: the next change of the same key carries a newer value.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, KeysAndAttributes,
    PutRequest, ScalarAttributeType, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use hubbub_core::StateWrite;

use crate::dynamo::{classify, describe};
use crate::error::{QueryError, WriteError};
use crate::queue::Shared;

const PK: &str = "PK";
const SK: &str = "SK";
/// Read markers loaded with a room at most (the newest users' beyond it start at 0).
pub const MAX_READ_MARKERS: usize = 10_000;
/// Items per BatchWriteItem.
const BATCH: usize = 25;
/// Attempts per batch before its writes are dropped.
const ATTEMPTS: u32 = 5;

fn key_of(write: &StateWrite) -> (String, String) {
    match write {
        StateWrite::ReadMarker {
            room_id, user_id, ..
        } => (format!("room#{room_id}"), format!("read#{user_id}")),
        StateWrite::LastSeen { user_id, .. } => (format!("user#{user_id}"), "lastSeen".into()),
        StateWrite::Room(record) => crate::rooms::room_key(&record.room_id),
        StateWrite::Membership {
            room_id, user_id, ..
        } => crate::rooms::membership_key(user_id, room_id),
    }
}

fn item_of(write: &StateWrite) -> HashMap<String, AttributeValue> {
    let (pk, sk) = key_of(write);
    let mut item = HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk)),
        (SK.to_owned(), AttributeValue::S(sk)),
    ]);
    match write {
        StateWrite::ReadMarker { seq, .. } => {
            item.insert("Seq".into(), AttributeValue::N(seq.to_string()));
        }
        StateWrite::LastSeen { at, .. } => {
            item.insert("At".into(), AttributeValue::N(at.0.to_string()));
        }
        StateWrite::Room(record) => crate::rooms::room_attributes(record, &mut item),
        StateWrite::Membership { member, .. } => {
            item.insert("Member".into(), AttributeValue::Bool(*member));
        }
    }
    item
}

/// [`bootstrap`] once per table and process: later calls return at once.
pub(crate) async fn ensure(client: &Client, table: &str) -> Result<(), QueryError> {
    static READY: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let known = |t: &str| {
        READY
            .lock()
            .map(|r| r.iter().any(|x| x == t))
            .unwrap_or(false)
    };
    if known(table) {
        return Ok(());
    }
    bootstrap(client, table)
        .await
        .map_err(crate::dynamo::query_error)?;
    if let Ok(mut ready) = READY.lock() {
        ready.push(table.to_owned());
    }
    Ok(())
}

/// Creates the state table if it is missing and waits until it is active.
pub(crate) async fn bootstrap(client: &Client, table: &str) -> Result<(), WriteError> {
    if describe(client, table).await?.is_none() {
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| WriteError::Rejected(e.to_string()))
        };
        let def = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| WriteError::Rejected(e.to_string()))
        };
        let created = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?)
            .attribute_definitions(def(PK)?)
            .attribute_definitions(def(SK)?)
            .send()
            .await;
        if let Err(e) = created {
            // Made by someone else in the meantime: fine.
            if e.as_service_error()
                .map(|s| s.is_resource_in_use_exception())
                != Some(true)
            {
                return Err(classify(&e));
            }
        }
    }
    for _ in 0..200 {
        if let Some(desc) = describe(client, table).await? {
            if crate::dynamo::is_ready(&desc) {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(WriteError::Unreachable(format!(
        "state table {table} not active after 10 s"
    )))
}

/// Writes what the workers queue, until the bridge closes and the queue is empty.
pub(crate) async fn run_writer(client: Client, table: String, shared: Arc<Shared>) {
    let mut ready = false;
    let mut rng = fastrand::Rng::new();
    loop {
        if shared.states.is_empty() {
            if shared.closed.load(Relaxed) {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), shared.state_bell.notified())
                .await;
            continue;
        }
        if !ready {
            match bootstrap(&client, &table).await {
                Ok(()) => ready = true,
                Err(e) => {
                    tracing::debug!(%table, error = %e, "state table not ready");
                    if shared.closed.load(Relaxed) {
                        drop_all(&shared);
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(250 + rng.u64(0..250))).await;
                    continue;
                }
            }
        }
        // One batch, each key once with its newest value.
        let mut batch: Vec<StateWrite> = Vec::with_capacity(BATCH);
        let mut keys: HashMap<(String, String), usize> = HashMap::new();
        while batch.len() < BATCH {
            let Some(write) = shared.states.pop() else {
                break;
            };
            match keys.get(&key_of(&write)) {
                Some(&i) => batch[i] = write,
                None => {
                    keys.insert(key_of(&write), batch.len());
                    batch.push(write);
                }
            }
        }
        let n = batch.len() as u64;
        if write_batch(&client, &table, batch, &mut rng).await {
            shared.state_written.fetch_add(n, Relaxed);
        } else {
            shared.state_failed.fetch_add(n, Relaxed);
            ready = false;
        }
    }
}

fn drop_all(shared: &Shared) {
    let mut n = 0;
    while shared.states.pop().is_some() {
        n += 1;
    }
    shared.state_failed.fetch_add(n, Relaxed);
}

/// One BatchWriteItem with its unprocessed items retried; `false` if it gave up.
async fn write_batch(
    client: &Client,
    table: &str,
    batch: Vec<StateWrite>,
    rng: &mut fastrand::Rng,
) -> bool {
    let mut requests: Vec<WriteRequest> = Vec::with_capacity(batch.len());
    for w in &batch {
        let Ok(put) = PutRequest::builder().set_item(Some(item_of(w))).build() else {
            continue;
        };
        requests.push(WriteRequest::builder().put_request(put).build());
    }
    for attempt in 0..ATTEMPTS {
        if requests.is_empty() {
            return true;
        }
        let sent = client
            .batch_write_item()
            .request_items(table, std::mem::take(&mut requests))
            .send()
            .await;
        match sent {
            Ok(out) => {
                requests = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    return true;
                }
            }
            Err(e) => {
                tracing::debug!(%table, error = %classify(&e), attempt, "state write failed");
                // The requests went with the call; rebuild them for the next attempt.
                for w in &batch {
                    if let Ok(put) = PutRequest::builder().set_item(Some(item_of(w))).build() {
                        requests.push(WriteRequest::builder().put_request(put).build());
                    }
                }
            }
        }
        let ceiling = 25u64 << attempt.min(6);
        tokio::time::sleep(Duration::from_millis(rng.u64(0..=ceiling))).await;
    }
    tracing::warn!(%table, count = batch.len(), "state writes dropped after retries");
    false
}

fn query_failed(e: WriteError) -> QueryError {
    match e {
        WriteError::TableMissing(_) => QueryError::Unavailable("no state table yet".into()),
        WriteError::Rejected(m) | WriteError::Denied(m) => QueryError::Service(m),
        other => QueryError::Unavailable(other.to_string()),
    }
}

/// The items of partition `pk` whose sort key starts with `prefix`, page by page: `take`
/// gets each one's sort key after the prefix and says whether it kept it; at most `max`
/// are kept. Nothing if the state table does not exist yet.
pub(crate) async fn items_under(
    client: &Client,
    table: &str,
    pk: String,
    prefix: &str,
    max: usize,
    mut take: impl FnMut(&str, &HashMap<String, AttributeValue>) -> bool,
) -> Result<(), QueryError> {
    let mut kept = 0;
    let mut start = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
            .set_exclusive_start_key(start)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) => match classify(&e) {
                WriteError::TableMissing(_) => return Ok(()),
                other => return Err(query_failed(other)),
            },
        };
        for item in out.items() {
            let rest = item
                .get(SK)
                .and_then(|v| v.as_s().ok())
                .and_then(|s| s.strip_prefix(prefix));
            if let Some(rest) = rest {
                if kept < max && take(rest, item) {
                    kept += 1;
                }
            }
        }
        start = out.last_evaluated_key;
        if start.is_none() || kept >= max {
            return Ok(());
        }
    }
}

/// A room's read markers, (user id, seq), at most [`MAX_READ_MARKERS`].
pub(crate) async fn read_markers(
    client: &Client,
    table: &str,
    room: &str,
) -> Result<Vec<(String, u64)>, QueryError> {
    let mut markers = Vec::new();
    let pk = format!("room#{room}");
    items_under(
        client,
        table,
        pk,
        "read#",
        MAX_READ_MARKERS,
        |user, item| {
            let seq = item
                .get("Seq")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok());
            seq.map(|seq| markers.push((user.to_owned(), seq)))
                .is_some()
        },
    )
    .await?;
    Ok(markers)
}

/// When each of `users` (at most 100) was last seen: Unix ms, `None` if never stored.
pub(crate) async fn last_seen(
    client: &Client,
    table: &str,
    users: &[String],
) -> Result<Vec<Option<u64>>, QueryError> {
    let mut found: HashMap<String, u64> = HashMap::new();
    for chunk in users.chunks(100) {
        let mut keys = KeysAndAttributes::builder();
        for u in chunk {
            keys = keys.keys(HashMap::from([
                (PK.to_owned(), AttributeValue::S(format!("user#{u}"))),
                (SK.to_owned(), AttributeValue::S("lastSeen".into())),
            ]));
        }
        let Ok(mut keys) = keys.build() else {
            continue;
        };
        for _ in 0..ATTEMPTS {
            let out = client
                .batch_get_item()
                .request_items(table, keys.clone())
                .send()
                .await;
            let out = match out {
                Ok(out) => out,
                Err(e) => match classify(&e) {
                    WriteError::TableMissing(_) => return Ok(vec![None; users.len()]),
                    other => return Err(query_failed(other)),
                },
            };
            for item in out
                .responses
                .and_then(|mut r| r.remove(table))
                .unwrap_or_default()
            {
                let user = item
                    .get(PK)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|s| s.strip_prefix("user#"));
                let at = item
                    .get("At")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok());
                if let (Some(user), Some(at)) = (user, at) {
                    found.insert(user.to_owned(), at);
                }
            }
            match out.unprocessed_keys.and_then(|mut u| u.remove(table)) {
                Some(rest) if !rest.keys().is_empty() => keys = rest,
                _ => break,
            }
        }
    }
    Ok(users.iter().map(|u| found.get(u).copied()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_items_follow_the_layout() {
        let read = StateWrite::ReadMarker {
            room_id: "dev".into(),
            user_id: "a#b".into(),
            seq: 7,
        };
        assert_eq!(key_of(&read), ("room#dev".into(), "read#a#b".into()));
        let item = item_of(&read);
        assert_eq!(item["Seq"], AttributeValue::N("7".into()));
        let seen = StateWrite::LastSeen {
            user_id: "u".into(),
            at: hubbub_core::UnixMillis(12),
        };
        assert_eq!(key_of(&seen), ("user#u".into(), "lastSeen".into()));
        assert_eq!(item_of(&seen)["At"], AttributeValue::N("12".into()));
    }
}
