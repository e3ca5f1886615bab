//! # hubbub-persist-bridge
//!
//! The persistence bridge of [hubbub](https://example.invalid/hubbub): one OS thread
//! running a tokio runtime between the chat workers and DynamoDB. Persistence never
//! blocks the chat: the workers hand records to a bounded lock-free queue
//! ([`PersistQueue`], a `hubbub_core::PersistSink`) and move on; the bridge groups them
//! into BatchWriteItem calls of at most 25, keeps `in_flight` calls going, retries
//! unprocessed items, throttling, 5xx and timeouts with exponential backoff and full
//! jitter, and reports written / retried / failed / dropped / queue depth.
//!
//! ```text
//!  worker ─try_push─▶ ArrayQueue ─doorbell─▶ dispatcher ─batches─▶ writers (≤ in_flight)
//!  worker ─history──▶ oneshot ◀──────────── query task ◀──────────── DynamoDB
//!                                 supervisor: bootstrap the table, probe every 2 s
//! ```
//!
//! ## Availability
//! - At start the table is bootstrapped: DescribeTable; CreateTable (on demand, with both
//!   indexes) if missing; DescribeTable every 50 ms until it and its indexes are ACTIVE.
//!   A table with another key schema or indexes is [`StartError::SchemaMismatch`].
//! - A store that does not answer is not an error. The status is `Unavailable`, the
//!   records stay in the queue (bounded: when it is full, pushes are refused and counted
//!   as `dropped`), and the bridge retries the bootstrap with backoff; when the store
//!   answers, what was queued is written. A table that disappears (an in-memory store
//!   restarted) is created again.
//! - A batch whose store went away is kept ("parked") and written when it is back; a
//!   batch the store keeps refusing (throttling or 5xx past the attempts, invalid items)
//!   is counted as `failed` and logged with its message ids.
//! - The status comes from a DescribeTable every `probe_interval` and from write
//!   failures, never from a call per request. History queries fail fast while the store
//!   is unavailable.
//!
//! ## Use
//! ```no_run
//! use hubbub_persist_bridge::{Bridge, BridgeConfig};
//! use hubbub_core::PersistSink;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bridge = Bridge::start(BridgeConfig {
//!     endpoint: Some("http://127.0.0.1:8000".into()),
//!     access_key_id: Some("local".into()),
//!     secret_access_key: Some("local".into()),
//!     ..BridgeConfig::default()
//! })?;
//! let sink = bridge.sink(); // one clone per hub: hub.set_persist_sink(Box::new(sink))
//! let history = bridge.room_history("global", 50); // a futures oneshot, await it anywhere
//! let report = bridge.shutdown(std::time::Duration::from_secs(5));
//! assert!(report.unwritten.is_empty());
//! # drop((sink, history)); Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod accounts;
mod bridge;
mod config;
pub mod dynamo;
mod error;
pub mod item;
mod queue;
mod retry;
mod rooms;
mod state;

pub use accounts::StoredAccount;
pub use bridge::{Bridge, DrainReport, RoomState};
pub use config::{BridgeConfig, ConfigError, MAX_BATCH_SIZE, MAX_IN_FLIGHT, MAX_LINGER};
pub use dynamo::ScanCursor;
pub use error::{QueryError, StartError, WriteError};
pub use queue::PersistQueue;
pub use retry::{write_with_retry, BatchWriter, Outcome, RetryPolicy};
pub use rooms::MAX_USER_ROOMS;
pub use state::MAX_READ_MARKERS;
