//! Typed errors of the bridge.

use crate::config::ConfigError;

/// Why [`Bridge::start`](crate::Bridge::start) refused to start.
///
/// An endpoint that does not answer is not one of these: the bridge starts with status
/// `Unavailable` and keeps trying.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A setting is out of range.
    #[error("invalid persistence setting: {0}")]
    Config(#[from] ConfigError),
    /// The table exists with another layout than PROTOCOL.md §6; the bridge will not
    /// write into it.
    #[error("DynamoDB table `{table}` exists with a different schema: {detail} (expected partition key RoomID (S), sort key MessageID (S), and global secondary indexes UserID-Timestamp-index (UserID, Timestamp) and RoomID-Timestamp-index (RoomID, Timestamp) with projection ALL; use another DYNAMODB_TABLE or fix the table)")]
    SchemaMismatch {
        /// The table.
        table: String,
        /// What differs.
        detail: String,
    },
    /// The bridge's thread or runtime could not be made.
    #[error("cannot start the persistence thread: {0}")]
    Runtime(#[from] std::io::Error),
    /// The bridge's thread ended before it reported.
    #[error("the persistence thread ended during start")]
    ThreadExited,
}

/// Why a history query failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The store does not answer (or the table is being (re)created); try again later.
    #[error("the message store is unavailable: {0}")]
    Unavailable(String),
    /// The store answered with an error.
    #[error("the message store refused the query: {0}")]
    Service(String),
    /// The bridge is shutting down.
    #[error("the persistence bridge is shutting down")]
    ShuttingDown,
}

/// How one BatchWriteItem call failed; decides what the retry loop does with the batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Throttling (ProvisionedThroughputExceeded, RequestLimitExceeded, Throttling):
    /// retried with backoff.
    #[error("throttled: {0}")]
    Throttled(String),
    /// A 5xx or an unreadable response: retried with backoff.
    #[error("server error: {0}")]
    Server(String),
    /// The call timed out: retried; the batch is kept, not failed, if it still times out.
    #[error("timed out: {0}")]
    Timeout(String),
    /// No connection: retried; the batch is kept, not failed, if the store stays away.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The table does not exist (e.g. an in-memory store restarted): the batch is kept
    /// and the table re-created.
    #[error("table missing: {0}")]
    TableMissing(String),
    /// The credentials are refused: the batch is kept (not failed) and the store is
    /// reported unavailable until the probe gets through.
    #[error("access denied: {0}")]
    Denied(String),
    /// The request is invalid (4xx validation): never retried; the batch fails.
    #[error("rejected: {0}")]
    Rejected(String),
}

impl WriteError {
    /// Worth another attempt after a backoff.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            WriteError::Throttled(_)
                | WriteError::Server(_)
                | WriteError::Timeout(_)
                | WriteError::Unreachable(_)
        )
    }

    /// Says the store is away rather than refusing: the batch is parked until it answers
    /// again instead of being counted as failed.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            WriteError::Timeout(_)
                | WriteError::Unreachable(_)
                | WriteError::TableMissing(_)
                | WriteError::Denied(_)
        )
    }
}
