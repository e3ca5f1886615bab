//! Everything that speaks DynamoDB: the SDK client, the table bootstrap and its schema
//! check, the batch writer and the history queries.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, Credentials, Region, SharedCredentialsProvider, SharedHttpClient,
};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex,
    GlobalSecondaryIndexDescription, IndexStatus, KeySchemaElement, KeyType, Projection,
    ProjectionType, PutRequest, ScalarAttributeType, TableDescription, TableStatus, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use hubbub_core::protocol::ChatMessage;

use crate::config::BridgeConfig;
use crate::error::{QueryError, WriteError};
use crate::item::{attr, from_item, Item};
use crate::retry::BatchWriter;

/// The global secondary index by user.
pub const USER_INDEX: &str = "UserID-Timestamp-index";
/// The global secondary index by room, in time order.
pub const ROOM_INDEX: &str = "RoomID-Timestamp-index";

/// Most items one history query returns; larger limits are clamped.
pub const MAX_QUERY_LIMIT: usize = 1000;
/// Pages one history query reads at most (a guard against pathological tie runs).
const MAX_PAGES: usize = 64;

/// The HTTP client of the SDK: hyper 1 with rustls on ring (plain `http://` works too).
fn http_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The SDK client the bridge uses for `cfg`: its endpoint, region and credentials, the
/// timeouts of `cfg` on every call, and no SDK-level retries (the bridge retries itself).
/// Public for tools and tests that want to look at the same table.
pub async fn client(cfg: &BridgeConfig) -> Client {
    let http = http_client();
    let region = Region::new(cfg.region.clone());
    let mut builder = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region.clone())
        .http_client(http.clone())
        .credentials_provider(credentials(cfg, region, http).await)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(cfg.connect_timeout)
                .operation_attempt_timeout(cfg.attempt_timeout)
                .operation_timeout(cfg.operation_timeout)
                .build(),
        )
        .retry_config(RetryConfig::disabled());
    if let Some(endpoint) = &cfg.endpoint {
        builder = builder.endpoint_url(endpoint.clone());
    }
    Client::from_conf(builder.build())
}

async fn credentials(
    cfg: &BridgeConfig,
    region: Region,
    http: SharedHttpClient,
) -> SharedCredentialsProvider {
    if let (Some(key), Some(secret)) = (&cfg.access_key_id, &cfg.secret_access_key) {
        return SharedCredentialsProvider::new(Credentials::new(
            key.clone(),
            secret.clone(),
            None,
            None,
            "hubbub-static",
        ));
    }
    #[cfg(feature = "credential-chain")]
    {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            .http_client(http)
            .load()
            .await;
        if let Some(chain) = sdk.credentials_provider() {
            return chain;
        }
    }
    #[cfg(not(feature = "credential-chain"))]
    let _ = (region, http);
    tracing::warn!(
        "no AWS credentials configured and no credential chain available; signing with dummy \
         keys, which only a local DynamoDB accepts"
    );
    SharedCredentialsProvider::new(Credentials::new(
        "hubbub-local",
        "hubbub-local",
        None,
        None,
        "hubbub-dummy",
    ))
}

/// Sorts an SDK error into what the retry loop and the health logic need.
pub(crate) fn classify<E>(err: &SdkError<E, HttpResponse>) -> WriteError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let text = DisplayErrorContext(err).to_string();
    match err {
        SdkError::TimeoutError(_) => WriteError::Timeout(text),
        SdkError::DispatchFailure(d) if d.is_timeout() => WriteError::Timeout(text),
        SdkError::DispatchFailure(_) => WriteError::Unreachable(text),
        // Our requests are well-formed, so this is identity or endpoint resolution: the
        // store cannot be reached as configured.
        SdkError::ConstructionFailure(_) => WriteError::Unreachable(text),
        SdkError::ResponseError(_) => WriteError::Server(text),
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            match service.err().code().unwrap_or_default() {
                "ResourceNotFoundException" => WriteError::TableMissing(text),
                "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException" => WriteError::Throttled(text),
                "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "AccessDeniedException"
                | "ExpiredTokenException"
                | "MissingAuthenticationTokenException"
                | "IncompleteSignatureException" => WriteError::Denied(text),
                _ if status >= 500 => WriteError::Server(text),
                _ if status == 429 => WriteError::Throttled(text),
                _ => WriteError::Rejected(text),
            }
        }
        _ => WriteError::Server(text),
    }
}

/// A query error for the caller.
pub(crate) fn query_error(e: WriteError) -> QueryError {
    match e {
        WriteError::Rejected(m) | WriteError::Denied(m) => QueryError::Service(m),
        WriteError::TableMissing(_) => {
            QueryError::Unavailable("the table is missing and being re-created".to_owned())
        }
        other => QueryError::Unavailable(other.to_string()),
    }
}

/// Why the table is not ready.
#[derive(Debug)]
pub(crate) enum BootError {
    /// The table has another layout; the detail says how.
    Mismatch(String),
    /// The store does not answer, or refuses.
    Unavailable(WriteError),
}

/// The table's description, `None` when it does not exist.
pub(crate) async fn describe(
    client: &Client,
    table: &str,
) -> Result<Option<TableDescription>, WriteError> {
    match client.describe_table().table_name(table).send().await {
        Ok(out) => Ok(out.table),
        Err(e) => match classify(&e) {
            WriteError::TableMissing(_) => Ok(None),
            other => Err(other),
        },
    }
}

/// Whether writes and queries can go to the table now.
pub(crate) fn is_ready(desc: &TableDescription) -> bool {
    let table_ok = matches!(
        desc.table_status(),
        Some(TableStatus::Active | TableStatus::Updating)
    );
    table_ok
        && desc.global_secondary_indexes().iter().all(|g| {
            matches!(
                g.index_status(),
                Some(IndexStatus::Active | IndexStatus::Updating) | None
            )
        })
}

fn key_names(schema: &[KeySchemaElement]) -> (Option<&str>, Option<&str>) {
    let find = |kind: KeyType| {
        schema
            .iter()
            .find(|k| *k.key_type() == kind)
            .map(|k| k.attribute_name())
    };
    (find(KeyType::Hash), find(KeyType::Range))
}

fn show_keys(keys: (Option<&str>, Option<&str>)) -> String {
    format!(
        "({}, {})",
        keys.0.unwrap_or("no partition key"),
        keys.1.unwrap_or("no sort key")
    )
}

/// Checks the key schema, the key types and both indexes against PROTOCOL.md §6.
pub(crate) fn check_schema(desc: &TableDescription) -> Result<(), String> {
    let keys = key_names(desc.key_schema());
    if keys != (Some(attr::ROOM_ID), Some(attr::MESSAGE_ID)) {
        return Err(format!(
            "its key schema is {}, expected (RoomID, MessageID)",
            show_keys(keys)
        ));
    }
    let defs = desc.attribute_definitions();
    for name in [attr::ROOM_ID, attr::MESSAGE_ID] {
        if let Some(d) = defs.iter().find(|d| d.attribute_name() == name) {
            if *d.attribute_type() != ScalarAttributeType::S {
                return Err(format!(
                    "key attribute {name} has type {}, expected S",
                    d.attribute_type().as_str()
                ));
            }
        }
    }
    for (index, hash) in [(USER_INDEX, attr::USER_ID), (ROOM_INDEX, attr::ROOM_ID)] {
        let gsi: Option<&GlobalSecondaryIndexDescription> = desc
            .global_secondary_indexes()
            .iter()
            .find(|g| g.index_name() == Some(index));
        let Some(gsi) = gsi else {
            return Err(format!("it has no global secondary index {index}"));
        };
        let keys = key_names(gsi.key_schema());
        if keys != (Some(hash), Some(attr::TIMESTAMP)) {
            return Err(format!(
                "index {index} has keys {}, expected ({hash}, Timestamp)",
                show_keys(keys)
            ));
        }
        let projection = gsi.projection().and_then(|p| p.projection_type());
        if projection != Some(&ProjectionType::All) {
            return Err(format!(
                "index {index} projects {}, expected ALL",
                projection.map_or("nothing", |p| p.as_str())
            ));
        }
    }
    Ok(())
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, WriteError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| WriteError::Rejected(e.to_string()))
}

fn string_attr(name: &str) -> Result<AttributeDefinition, WriteError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| WriteError::Rejected(e.to_string()))
}

fn index(name: &str, hash: &str) -> Result<GlobalSecondaryIndex, WriteError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(hash, KeyType::Hash)?)
        .key_schema(key(attr::TIMESTAMP, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|e| WriteError::Rejected(e.to_string()))
}

/// CreateTable with the layout of PROTOCOL.md §6, on demand. A table that appeared in the
/// meantime (another server created it) is fine.
async fn create_table(client: &Client, table: &str) -> Result<(), WriteError> {
    let mut req = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(attr::ROOM_ID, KeyType::Hash)?)
        .key_schema(key(attr::MESSAGE_ID, KeyType::Range)?)
        .global_secondary_indexes(index(USER_INDEX, attr::USER_ID)?)
        .global_secondary_indexes(index(ROOM_INDEX, attr::ROOM_ID)?);
    for name in [
        attr::ROOM_ID,
        attr::MESSAGE_ID,
        attr::USER_ID,
        attr::TIMESTAMP,
    ] {
        req = req.attribute_definitions(string_attr(name)?);
    }
    match req.send().await {
        Ok(_) => {
            tracing::info!(table = %table, "created DynamoDB table with its indexes");
            Ok(())
        }
        Err(e) if e.code() == Some("ResourceInUseException") => Ok(()),
        Err(e) => Err(classify(&e)),
    }
}

/// Makes the table ready: DescribeTable; CreateTable if it is missing; then DescribeTable
/// every 50 ms (every 500 ms after 10 s) until the table and both indexes are ACTIVE.
pub(crate) async fn bootstrap(client: &Client, table: &str) -> Result<(), BootError> {
    let started = Instant::now();
    loop {
        match describe(client, table).await {
            Err(e) => return Err(BootError::Unavailable(e)),
            Ok(None) => create_table(client, table)
                .await
                .map_err(BootError::Unavailable)?,
            Ok(Some(desc)) => {
                check_schema(&desc).map_err(BootError::Mismatch)?;
                if is_ready(&desc) {
                    return Ok(());
                }
            }
        }
        let poll = if started.elapsed() < Duration::from_secs(10) {
            Duration::from_millis(50)
        } else {
            Duration::from_millis(500)
        };
        tokio::time::sleep(poll).await;
    }
}

/// One record on its way to the table.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub id: uuid::Uuid,
    pub item: Item,
}

/// BatchWriteItem into one table.
pub(crate) struct DynamoWriter {
    pub client: Client,
    pub table: String,
}

impl DynamoWriter {
    async fn call(&self, items: &[Pending]) -> Result<Vec<usize>, WriteError> {
        let requests = items
            .iter()
            .map(|p| {
                PutRequest::builder()
                    .set_item(Some(p.item.clone()))
                    .build()
                    .map(|put| WriteRequest::builder().put_request(put).build())
                    .map_err(|e| WriteError::Rejected(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .batch_write_item()
            .request_items(self.table.clone(), requests)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let mut unprocessed = Vec::new();
        let left = out
            .unprocessed_items()
            .and_then(|m| m.get(&self.table))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for req in left {
            let id = req
                .put_request()
                .and_then(|p| p.item().get(attr::MESSAGE_ID))
                .and_then(|v| v.as_s().ok());
            if let Some(i) = id.and_then(|id| {
                items.iter().position(|p| {
                    p.item.get(attr::MESSAGE_ID).and_then(|v| v.as_s().ok()) == Some(id)
                })
            }) {
                unprocessed.push(i);
            }
        }
        Ok(unprocessed)
    }
}

impl BatchWriter for DynamoWriter {
    type Item = Pending;

    fn write(
        &self,
        items: &[Pending],
    ) -> impl std::future::Future<Output = Result<Vec<usize>, WriteError>> + Send {
        self.call(items)
    }
}

/// One page of an index partition (`key_attr = key`), newest first.
struct Page<'a> {
    index: &'a str,
    key_attr: &'a str,
    key: &'a str,
    limit: i32,
}

async fn newest_first(
    client: &Client,
    table: &str,
    page: &Page<'_>,
    start: Option<HashMap<String, AttributeValue>>,
) -> Result<aws_sdk_dynamodb::operation::query::QueryOutput, QueryError> {
    client
        .query()
        .table_name(table)
        .index_name(page.index)
        .key_condition_expression(format!("{} = :k", page.key_attr))
        .expression_attribute_values(":k", AttributeValue::S(page.key.to_owned()))
        .scan_index_forward(false)
        .limit(page.limit)
        .set_exclusive_start_key(start)
        .send()
        .await
        .map_err(|e| query_error(classify(&e)))
}

/// The messages of `room` with `after < Seq <= upto`, in any order (a seq stored twice,
/// by two lives of the room, comes twice). Reads the room's partition of the room index
/// newest first until every seq of the range is in hand, or one page past the first
/// message at or before `after` by timestamp (ties in a GSI come back in any order; the
/// extra page is slack for a tie that straddles the page boundary), or the partition's end.
pub(crate) async fn query_range(
    client: &Client,
    table: &str,
    room: &str,
    after: u64,
    upto: u64,
) -> Result<Vec<ChatMessage>, QueryError> {
    if room.is_empty() || upto <= after {
        return Ok(Vec::new());
    }
    let page = i32::try_from(MAX_QUERY_LIMIT).unwrap_or(i32::MAX);
    let wanted = upto - after;
    let mut found = std::collections::HashSet::new();
    let mut out: Vec<ChatMessage> = Vec::new();
    // The timestamp of the newest message at or before `after`: older pages hold none of
    // the range.
    let mut boundary: Option<String> = None;
    let mut past_pages = 0;
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    for _ in 0..MAX_PAGES {
        let page = Page {
            index: ROOM_INDEX,
            key_attr: attr::ROOM_ID,
            key: room,
            limit: page,
        };
        let resp = newest_first(client, table, &page, start.take()).await?;
        let mut oldest: Option<String> = None;
        for item in resp.items() {
            match from_item(item) {
                Ok(msg) => {
                    oldest = Some(msg.timestamp.clone());
                    if msg.seq <= after {
                        boundary.get_or_insert_with(|| msg.timestamp.clone());
                    } else if msg.seq <= upto {
                        found.insert(msg.seq);
                        out.push(msg);
                    }
                }
                Err(e) => tracing::debug!(table = %table, error = %e, "skipping item"),
            }
        }
        start = resp.last_evaluated_key().cloned();
        if matches!((&boundary, &oldest), (Some(b), Some(o)) if o < b) {
            past_pages += 1;
        }
        if start.is_none() || found.len() as u64 == wanted || past_pages > 1 {
            break;
        }
    }
    Ok(out)
}

/// The newest messages of one partition of `index` (`key_attr = key`), newest first by
/// (`Timestamp`, `Seq`, `MessageID`): at least the `want` newest, plus every message that
/// shares the timestamp of the last of those (ties in a GSI come back in any order, so
/// this reads on until the timestamp changes).
pub(crate) async fn query_newest(
    client: &Client,
    table: &str,
    index: &str,
    key_attr: &str,
    key: &str,
    want: usize,
) -> Result<Vec<ChatMessage>, QueryError> {
    if key.is_empty() {
        // DynamoDB rejects an empty key value; nothing can be stored under one.
        return Ok(Vec::new());
    }
    let want = want.clamp(1, MAX_QUERY_LIMIT);
    let page = i32::try_from(want + 1).unwrap_or(i32::MAX);
    let mut out: Vec<ChatMessage> = Vec::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    for _ in 0..MAX_PAGES {
        let query = Page {
            index,
            key_attr,
            key,
            limit: page,
        };
        let resp = newest_first(client, table, &query, start.take()).await?;
        for item in resp.items() {
            match from_item(item) {
                Ok(msg) => out.push(msg),
                Err(e) => {
                    tracing::debug!(table = %table, index = %index, error = %e, "skipping item")
                }
            }
        }
        start = resp.last_evaluated_key().cloned();
        let Some(_) = start else { break };
        if let (Some(boundary), Some(last)) = (out.get(want - 1), out.last()) {
            if out.len() > want && last.timestamp < boundary.timestamp {
                break;
            }
        }
    }
    out.sort_unstable_by(|a, b| {
        (&b.timestamp, b.seq, &b.message_id).cmp(&(&a.timestamp, a.seq, &a.message_id))
    });
    Ok(out)
}

/// Where a scan of the messages table stands: the key to go on from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanCursor(Option<HashMap<String, AttributeValue>>);

/// One page (at most `limit` items) of a scan of the whole messages table, from `cursor`;
/// the cursor of the next page, `None` at the end. Items that are not messages are skipped.
pub(crate) async fn scan_page(
    client: &Client,
    table: &str,
    cursor: ScanCursor,
    limit: i32,
) -> Result<(Vec<ChatMessage>, Option<ScanCursor>), QueryError> {
    let out = client
        .scan()
        .table_name(table)
        .limit(limit)
        .set_exclusive_start_key(cursor.0)
        .send()
        .await
        .map_err(|e| query_error(classify(&e)))?;
    let messages = out
        .items()
        .iter()
        .filter_map(|item| from_item(item).ok())
        .collect();
    let next = out
        .last_evaluated_key()
        .cloned()
        .map(|k| ScanCursor(Some(k)));
    Ok((messages, next))
}
