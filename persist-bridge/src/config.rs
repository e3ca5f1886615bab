//! The bridge's settings, with the protocol's defaults and their checks.

use std::time::Duration;

use crate::retry::RetryPolicy;

/// BatchWriteItem's limit.
pub const MAX_BATCH_SIZE: usize = 25;
/// The longest a partial batch may wait for more records.
pub const MAX_LINGER: Duration = Duration::from_millis(50);
/// Most batch writes in flight at once.
pub const MAX_IN_FLIGHT: usize = 256;

/// Settings of one [`Bridge`](crate::Bridge). [`BridgeConfig::default`] gives the
/// protocol's defaults (PROTOCOL.md §5); build one with struct-update syntax:
///
/// ```
/// use hubbub_persist_bridge::BridgeConfig;
/// let cfg = BridgeConfig {
///     endpoint: Some("http://127.0.0.1:8000".into()),
///     access_key_id: Some("local".into()),
///     secret_access_key: Some("local".into()),
///     ..BridgeConfig::default()
/// };
/// assert!(cfg.validate().is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// `DYNAMODB_ENDPOINT`: e.g. `http://localhost:8000`; `None` means AWS's own endpoint.
    pub endpoint: Option<String>,
    /// `DYNAMODB_REGION`.
    pub region: String,
    /// `DYNAMODB_TABLE`: created with its indexes if missing.
    pub table: String,
    /// `DYNAMODB_STATE_TABLE`: v2 read markers and last-seen times, created if missing.
    pub state_table: String,
    /// `AWS_ACCESS_KEY_ID`: with the secret, static credentials; without, the standard
    /// AWS credential chain (feature `credential-chain`, on by default).
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// `PERSIST_BATCH_SIZE`: items per BatchWriteItem, `1..=25`.
    pub batch_size: usize,
    /// `PERSIST_QUEUE_SIZE`: capacity of the queue between the workers and the bridge.
    pub queue_size: usize,
    /// `PERSIST_WORKERS`: batch writes in flight at once.
    pub in_flight: usize,
    /// How long a partial batch waits for more records before it is sent (at most 50 ms).
    pub linger: Duration,
    /// TCP connect timeout of every call.
    pub connect_timeout: Duration,
    /// Timeout of one HTTP attempt.
    pub attempt_timeout: Duration,
    /// Timeout of a whole SDK operation.
    pub operation_timeout: Duration,
    /// How long [`Bridge::start`](crate::Bridge::start) waits for the table before it
    /// returns with status `Unavailable` and keeps trying in the background.
    pub start_timeout: Duration,
    /// How often the table is probed (one DescribeTable) to report the store's health.
    pub probe_interval: Duration,
    /// Backoff of a batch write: throttling, unprocessed items, 5xx, timeouts.
    pub retry: RetryPolicy,
    /// Backoff between attempts to reach the store (bootstrap) while it is unavailable.
    pub reconnect: RetryPolicy,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            endpoint: None,
            region: "us-east-1".to_owned(),
            table: "chat-messages".to_owned(),
            state_table: "hubbub-state".to_owned(),
            access_key_id: None,
            secret_access_key: None,
            batch_size: MAX_BATCH_SIZE,
            queue_size: 65_536,
            in_flight: 4,
            linger: Duration::from_millis(20),
            connect_timeout: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(5),
            start_timeout: Duration::from_secs(3),
            probe_interval: Duration::from_secs(2),
            retry: RetryPolicy {
                base: Duration::from_millis(25),
                cap: Duration::from_secs(2),
                max_attempts: 8,
            },
            reconnect: RetryPolicy {
                base: Duration::from_millis(50),
                cap: Duration::from_secs(2),
                max_attempts: u32::MAX,
            },
        }
    }
}

/// A setting out of range. The message names the setting and its environment variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `batch_size` is 0 or over 25.
    #[error("batch_size (PERSIST_BATCH_SIZE) must be 1..=25, got {0}")]
    BatchSize(usize),
    /// `queue_size` is 0.
    #[error("queue_size (PERSIST_QUEUE_SIZE) must be at least 1")]
    QueueSize,
    /// `in_flight` is 0 or too large.
    #[error("in_flight (PERSIST_WORKERS) must be 1..={MAX_IN_FLIGHT}, got {0}")]
    InFlight(usize),
    /// `linger` is over 50 ms.
    #[error("linger must be at most 50 ms, got {0:?}")]
    Linger(Duration),
    /// The table name breaks DynamoDB's rules.
    #[error("table (DYNAMODB_TABLE) must be 3..=255 characters of a-z A-Z 0-9 _ - ., got {0:?}")]
    Table(String),
    /// The region is empty.
    #[error("region (DYNAMODB_REGION) must not be empty")]
    Region,
    /// The endpoint is not an http(s) URL.
    #[error("endpoint (DYNAMODB_ENDPOINT) must start with http:// or https://, got {0:?}")]
    Endpoint(String),
    /// Only one of the two static keys is set.
    #[error("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together")]
    HalfCredentials,
    /// A timeout or backoff is zero, or a retry policy allows no attempt.
    #[error("{0} must be positive")]
    Zero(&'static str),
}

impl BridgeConfig {
    /// Checks every setting; [`Bridge::start`](crate::Bridge::start) calls it first.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return Err(ConfigError::BatchSize(self.batch_size));
        }
        if self.queue_size == 0 {
            return Err(ConfigError::QueueSize);
        }
        if !(1..=MAX_IN_FLIGHT).contains(&self.in_flight) {
            return Err(ConfigError::InFlight(self.in_flight));
        }
        if self.linger > MAX_LINGER {
            return Err(ConfigError::Linger(self.linger));
        }
        let table_ok = (3..=255).contains(&self.table.len())
            && self
                .table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !table_ok {
            return Err(ConfigError::Table(self.table.clone()));
        }
        if self.region.trim().is_empty() {
            return Err(ConfigError::Region);
        }
        if let Some(ep) = &self.endpoint {
            if !(ep.starts_with("http://") || ep.starts_with("https://")) {
                return Err(ConfigError::Endpoint(ep.clone()));
            }
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return Err(ConfigError::HalfCredentials);
        }
        let positive = [
            ("connect_timeout", self.connect_timeout),
            ("attempt_timeout", self.attempt_timeout),
            ("operation_timeout", self.operation_timeout),
            ("probe_interval", self.probe_interval),
            ("retry.base", self.retry.base),
            ("retry.cap", self.retry.cap),
            ("reconnect.base", self.reconnect.base),
            ("reconnect.cap", self.reconnect.cap),
        ];
        for (name, d) in positive {
            if d.is_zero() {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.retry.max_attempts == 0 {
            return Err(ConfigError::Zero("retry.max_attempts"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_protocol() {
        let cfg = BridgeConfig::default();
        assert_eq!(cfg.validate(), Ok(()));
        assert_eq!(cfg.table, "chat-messages");
        assert_eq!(cfg.region, "us-east-1");
        assert_eq!(cfg.batch_size, 25);
        assert_eq!(cfg.queue_size, 65_536);
        assert_eq!(cfg.in_flight, 4);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let bad = |f: fn(&mut BridgeConfig)| {
            let mut cfg = BridgeConfig::default();
            f(&mut cfg);
            cfg.validate().map_err(|e| e.to_string())
        };
        assert!(bad(|c| c.batch_size = 26)
            .unwrap_err()
            .contains("PERSIST_BATCH_SIZE"));
        assert!(bad(|c| c.batch_size = 0).is_err());
        assert!(bad(|c| c.queue_size = 0)
            .unwrap_err()
            .contains("PERSIST_QUEUE_SIZE"));
        assert!(bad(|c| c.in_flight = 0)
            .unwrap_err()
            .contains("PERSIST_WORKERS"));
        assert!(bad(|c| c.linger = Duration::from_millis(51)).is_err());
        assert!(bad(|c| c.table = "a b".into())
            .unwrap_err()
            .contains("DYNAMODB_TABLE"));
        assert!(bad(|c| c.endpoint = Some("localhost:8000".into()))
            .unwrap_err()
            .contains("DYNAMODB_ENDPOINT"));
        assert!(bad(|c| c.access_key_id = Some("a".into())).is_err());
        assert!(bad(|c| c.attempt_timeout = Duration::ZERO).is_err());
        assert!(bad(|c| c.retry.max_attempts = 0).is_err());
    }
}
