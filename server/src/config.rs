//! Configuration: every variable of PROTOCOL.md §5, each mirrored by a flag, validated at
//! start. A bad value stops the server with a message naming the variable.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use hubbub_core::auth::{Authenticator, JwtConfig, JwtVerifier};
use hubbub_core::upgrade::AllowedOrigins;
use hubbub_core::OverflowPolicy;

/// The durable store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Store {
    /// In-memory history only (the default).
    Memory,
    /// Amazon DynamoDB (or a DynamoDB-API server at `DYNAMODB_ENDPOINT`).
    Dynamodb,
}

/// A feature on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Everything, including per-connection events.
    Debug,
    /// Start, stop, and what an operator should know.
    Info,
    /// Problems that did not stop the server.
    Warn,
    /// Failures only.
    Error,
}

/// Overflow policy of the persistence queue, as a flag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Overflow {
    /// Count and warn; the message is broadcast but not stored.
    Drop,
    /// The sender gets `overloaded`; nothing is broadcast.
    Reject,
}

/// hubbub: a thread-per-core WebSocket chat and analytics server.
///
/// Every option can be given as a flag or as the environment variable named beside it.
#[derive(Debug, Clone, Parser)]
#[command(name = "hubbub", version, about, long_about = None)]
pub struct Config {
    /// Listen port.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Listen address.
    #[arg(long, env = "BIND", default_value = "0.0.0.0")]
    pub bind: IpAddr,

    /// Thread-per-core workers (default: number of cores).
    #[arg(long, env = "WORKERS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,

    /// Pin worker N to CPU N (when there are at least as many CPUs as workers).
    #[arg(long, env = "PIN_WORKERS", default_value_t = true, action = clap::ArgAction::Set)]
    pub pin_workers: bool,

    /// Use io_uring when the kernel allows it; `false` runs on epoll and writes with
    /// `send(2)` (what happens anyway where io_uring is blocked, e.g. by a container's
    /// seccomp profile).
    #[arg(long, env = "IO_URING", default_value_t = true, action = clap::ArgAction::Set)]
    pub io_uring: bool,

    /// Log level.
    #[arg(
        long,
        env = "LOG_LEVEL",
        value_enum,
        default_value = "info",
        ignore_case = true
    )]
    pub log_level: LogLevel,

    /// Log format.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "human",
        ignore_case = true
    )]
    pub log_format: LogFormat,

    /// Durable store.
    #[arg(
        long,
        env = "STORE",
        value_enum,
        default_value = "memory",
        ignore_case = true
    )]
    pub store: Store,

    /// DynamoDB endpoint, e.g. http://localhost:8000 (unset: AWS's own).
    #[arg(long, env = "DYNAMODB_ENDPOINT")]
    pub dynamodb_endpoint: Option<String>,

    /// DynamoDB region.
    #[arg(long, env = "DYNAMODB_REGION", default_value = "us-east-1")]
    pub dynamodb_region: String,

    /// DynamoDB table (created with its indexes if missing).
    #[arg(long, env = "DYNAMODB_TABLE", default_value = "chat-messages")]
    pub dynamodb_table: String,

    /// DynamoDB table of v2 state: read markers and last-seen times (created if missing).
    #[arg(long, env = "DYNAMODB_STATE_TABLE", default_value = "hubbub-state")]
    pub dynamodb_state_table: String,

    /// Static AWS access key (for local endpoints; unset: the standard credential chain).
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub aws_access_key_id: Option<String>,

    /// Static AWS secret key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub aws_secret_access_key: Option<String>,

    /// Comma-separated CORS and WebSocket origin allowlist, or `*` (unset: any origin may
    /// open a WebSocket; CORS answers `*` without auth and no other origin with it).
    #[arg(long, env = "ALLOWED_ORIGINS")]
    pub allowed_origins: Option<String>,

    /// HMAC secret of the original system's tokens, at least 32 bytes (unset: no legacy
    /// tokens).
    #[arg(long, env = "AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<String>,

    /// HS256 secret of JWTs, at least 32 bytes (unset: no HS256).
    #[arg(long, env = "JWT_HS256_SECRET", hide_env_values = true)]
    pub jwt_hs256_secret: Option<String>,

    /// PEM file of the RSA public key that verifies RS256 JWTs (unset: no RS256).
    #[arg(long, env = "JWT_RS256_PUBLIC_KEY_FILE")]
    pub jwt_rs256_public_key_file: Option<PathBuf>,

    /// Required `iss` of JWTs (unset: not checked).
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` of JWTs (unset: not checked).
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Lifetime of the tokens `POST /auth/signup` and `/auth/login` answer, 60 s to 30 days
    /// (accounts are on with JWT_HS256_SECRET).
    #[arg(long, env = "ACCOUNT_TOKEN_TTL_SECS", default_value_t = 43_200, value_parser = clap::value_parser!(u64).range(60..=2_592_000))]
    pub account_token_ttl_secs: u64,

    /// Seconds of clock skew allowed on a JWT's `exp` and `nbf`, 0 to 3600.
    #[arg(long, env = "JWT_LEEWAY_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub jwt_leeway_secs: u64,

    /// Key of the server API (`POST /api/server/…`, sent as `Authorization: apikey <key>`),
    /// at least 16 bytes (unset: no server API).
    #[arg(long, env = "API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Messages per second per connection (<= 0 disables rate limiting).
    #[arg(
        long,
        env = "RATE_LIMIT_PER_SEC",
        default_value_t = 5.0,
        allow_negative_numbers = true
    )]
    pub rate_limit_per_sec: f64,

    /// Burst size of the per-connection token bucket (<= 0 disables rate limiting).
    #[arg(
        long,
        env = "RATE_LIMIT_BURST",
        default_value_t = 10.0,
        allow_negative_numbers = true
    )]
    pub rate_limit_burst: f64,

    /// Message search (`GET /api/rooms/{id}/search`): `on` or `off`.
    #[arg(
        long,
        env = "SEARCH",
        value_enum,
        default_value = "on",
        ignore_case = true
    )]
    pub search: Switch,

    /// Where the search index persists across restarts (unset: in memory, bounded by
    /// SEARCH_MAX_MESSAGES).
    #[arg(long, env = "SEARCH_DIR")]
    pub search_dir: Option<PathBuf>,

    /// With STORE=dynamodb: rebuild the search index from the messages table at start, in
    /// the background (progress in the log and in hubbub_search_rebuilt_total).
    #[arg(long, env = "SEARCH_REBUILD", default_value_t = false, action = clap::ArgAction::Set)]
    pub search_rebuild: bool,

    /// Messages an in-memory search index keeps, the oldest going first (1000 to 100 million).
    #[arg(long, env = "SEARCH_MAX_MESSAGES", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1000..=100_000_000))]
    pub search_max_messages: u64,

    /// Bounded queue between the workers and the search index: beyond it messages are not
    /// indexed (counted as hubbub_search_dropped_total).
    #[arg(long, env = "SEARCH_QUEUE_SIZE", default_value_t = 65_536,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub search_queue_size: u32,

    /// File sharing (`POST /api/rooms/{id}/uploads`, attachments, `GET /api/files/{id}`):
    /// `on` or `off`.
    #[arg(
        long,
        env = "FILES",
        value_enum,
        default_value = "on",
        ignore_case = true
    )]
    pub files: Switch,

    /// Where uploaded files are kept and served from, with signed expiring URLs (unset: a
    /// folder under the system's temporary directory, named in the start-up log).
    #[arg(long, env = "FILES_DIR")]
    pub files_dir: Option<PathBuf>,

    /// Keep files in this S3 bucket instead, behind presigned URLs (credentials from the
    /// standard AWS chain: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...).
    #[arg(long, env = "FILES_S3_BUCKET")]
    pub files_s3_bucket: Option<String>,

    /// With FILES_S3_BUCKET: an S3-API endpoint other than AWS (path-style addressing).
    #[arg(long, env = "FILES_S3_ENDPOINT")]
    pub files_s3_endpoint: Option<String>,

    /// With FILES_S3_BUCKET: the bucket's region.
    #[arg(long, env = "FILES_S3_REGION", default_value = "us-east-1")]
    pub files_s3_region: String,

    /// Largest file accepted, in bytes (1 to 5 GiB).
    #[arg(long, env = "MAX_FILE_BYTES", default_value_t = hubbub_files::DEFAULT_MAX_FILE_BYTES,
          value_parser = clap::value_parser!(u64).range(1..=5 * 1024 * 1024 * 1024))]
    pub max_file_bytes: u64,

    /// The MIME types accepted, comma-separated.
    #[arg(long, env = "FILES_ALLOWED_TYPES", default_value = hubbub_files::DEFAULT_ALLOWED_TYPES,
          value_parser = parse_types)]
    pub files_allowed_types: Types,

    /// Bytes one user (or, without auth, one address) may upload per clock hour.
    #[arg(long, env = "FILES_QUOTA_BYTES_PER_HOUR",
          default_value_t = hubbub_files::DEFAULT_QUOTA_BYTES_PER_HOUR,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub files_quota_bytes_per_hour: u64,

    /// How long an upload or download URL stays valid, in seconds (1 to 86400).
    #[arg(long, env = "FILES_URL_TTL_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub files_url_ttl_secs: u64,

    /// Items per DynamoDB BatchWriteItem (1..=25).
    #[arg(long, env = "PERSIST_BATCH_SIZE", default_value_t = 25,
          value_parser = clap::value_parser!(u16).range(1..=25))]
    pub persist_batch_size: u16,

    /// Bounded queue between the workers and the persistence bridge.
    #[arg(long, env = "PERSIST_QUEUE_SIZE", default_value_t = 65_536,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub persist_queue_size: u32,

    /// Batch writes in flight at once.
    #[arg(long, env = "PERSIST_WORKERS", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub persist_workers: u16,

    /// What a full persistence queue does.
    #[arg(
        long,
        env = "PERSIST_OVERFLOW",
        value_enum,
        default_value = "drop",
        ignore_case = true
    )]
    pub persist_overflow: Overflow,

    /// Messages kept in memory per room.
    #[arg(long, env = "HISTORY_SIZE", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub history_size: u32,

    /// Bytes of room history each worker keeps over all its rooms (each message counts
    /// its encoded size plus 128); beyond it the oldest retained message of any room goes
    /// first. At least 1 MiB.
    #[arg(long, env = "MAX_HISTORY_BYTES", default_value_t = 128 << 20,
          value_parser = clap::value_parser!(u64).range((1 << 20)..=(1 << 40)))]
    pub max_history_bytes: u64,

    /// Messages a new connection receives on join (without `since`).
    #[arg(long, env = "BACKLOG_SIZE", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub backlog_size: u32,

    /// Idle rooms (no connection) kept in memory per worker with their history.
    #[arg(long, env = "MAX_IDLE_ROOMS", default_value_t = 10_000)]
    pub max_idle_rooms: u32,

    /// Most open connections (default: the open-file limit less a reserve).
    #[arg(long, env = "MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,

    /// Send join/leave presence events.
    #[arg(long, env = "PRESENCE", default_value_t = true, action = clap::ArgAction::Set)]
    pub presence: bool,

    /// Join/leave events are sent only while a room has at most this many distinct
    /// connected users (above it a connect storm would cost every member a frame per
    /// arrival); `/api/rooms/{id}/presence` answers at any size.
    #[arg(long, env = "PRESENCE_MAX_MEMBERS", default_value_t = 250,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub presence_max_members: u32,

    /// v2: rooms one connection may subscribe to at once.
    #[arg(long, env = "MAX_SUBSCRIPTIONS", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_subscriptions: u32,

    /// v2: a room's presence changes are sent at most once per this many milliseconds,
    /// coalesced into one frame.
    #[arg(long, env = "PRESENCE_INTERVAL_MS", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(10..=60_000))]
    pub presence_interval_ms: u32,

    /// This server's name, sent in v2 `hello` frames (1 to 64 characters).
    #[arg(long, env = "NODE_ID", default_value = "hubbub", value_parser = node_id)]
    pub node_id: String,

    /// Bytes queued for one connection before it is closed as a slow consumer (1008).
    #[arg(long, env = "MAX_QUEUED_BYTES", default_value_t = 1 << 20,
          value_parser = clap::value_parser!(u32).range(4096..))]
    pub max_queued_bytes: u32,

    /// Seconds without any frame (pongs included) before a connection is closed.
    #[arg(long, env = "IDLE_TIMEOUT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(2..))]
    pub idle_timeout_secs: u32,

    /// Dashboard files served at `/` (unset: the copy built into the binary, if any).
    #[arg(long, env = "STATIC_DIR")]
    pub static_dir: Option<PathBuf>,

    /// Seconds to wait for connections and persistence to drain on shutdown.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=600))]
    pub shutdown_grace_secs: u32,
}

impl Config {
    /// The number of workers to run.
    pub fn worker_count(&self) -> u16 {
        self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(1024) as u16)
        })
    }

    /// The parsed origin allowlist.
    pub fn origins(&self) -> anyhow::Result<AllowedOrigins> {
        let Some(spec) = &self.allowed_origins else {
            return Ok(AllowedOrigins::Any);
        };
        AllowedOrigins::parse(spec).ok_or_else(|| {
            anyhow::anyhow!(
                "ALLOWED_ORIGINS={spec:?} lists no origin: give `*` or comma-separated origins"
            )
        })
    }

    /// The origins CORS grants: `ALLOWED_ORIGINS` when set; unset, every origin without
    /// auth and none with it (a page elsewhere must not read what a token guards).
    pub fn cors_origins(&self, auth_enabled: bool) -> anyhow::Result<AllowedOrigins> {
        match (&self.allowed_origins, auth_enabled) {
            (None, true) => Ok(AllowedOrigins::List(Vec::new())),
            _ => self.origins(),
        }
    }

    /// The token checks of `AUTH_SECRET` and the `JWT_*` settings.
    pub fn authenticator(&self) -> anyhow::Result<Authenticator> {
        let pem = match &self.jwt_rs256_public_key_file {
            Some(path) => Some(std::fs::read(path).with_context(|| {
                format!("cannot read JWT_RS256_PUBLIC_KEY_FILE={}", path.display())
            })?),
            None => None,
        };
        let any_jwt = self.jwt_hs256_secret.is_some()
            || pem.is_some()
            || self.jwt_issuer.is_some()
            || self.jwt_audience.is_some();
        let jwt = if any_jwt {
            Some(
                JwtVerifier::new(JwtConfig {
                    hs256_secret: self
                        .jwt_hs256_secret
                        .as_ref()
                        .map(|s| s.as_bytes().to_vec()),
                    rs256_public_pem: pem,
                    issuer: self.jwt_issuer.clone(),
                    audience: self.jwt_audience.clone(),
                    leeway_secs: self.jwt_leeway_secs,
                })
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            )
        } else {
            None
        };
        Authenticator::new(self.auth_secret.as_ref().map(|s| s.as_bytes()), jwt)
            .map_err(|e| anyhow::anyhow!("{e} (unset it to turn legacy tokens off)"))
    }

    /// The server API's key, if one is set.
    pub fn api_key(&self) -> anyhow::Result<Option<hubbub_core::auth::ApiKey>> {
        self.api_key
            .as_deref()
            .map(hubbub_core::auth::ApiKey::new)
            .transpose()
            .map_err(|e| anyhow::anyhow!("{e} (unset it to turn the server API off)"))
    }

    /// The persistence overflow policy.
    pub fn overflow(&self) -> OverflowPolicy {
        match self.persist_overflow {
            Overflow::Drop => OverflowPolicy::Drop,
            Overflow::Reject => OverflowPolicy::Reject,
        }
    }

    /// Checks what clap's types cannot; every error names its variable.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.origins()?;
        self.api_key()?;
        for (name, v) in [
            ("RATE_LIMIT_PER_SEC", self.rate_limit_per_sec),
            ("RATE_LIMIT_BURST", self.rate_limit_burst),
        ] {
            anyhow::ensure!(v.is_finite(), "{name}={v} is not a finite number");
        }
        if let Some(secret) = &self.auth_secret {
            anyhow::ensure!(
                !secret.is_empty(),
                "AUTH_SECRET is set but empty: unset it to disable auth"
            );
        }
        self.authenticator()?;
        if let Some(endpoint) = &self.dynamodb_endpoint {
            anyhow::ensure!(
                endpoint.starts_with("http://") || endpoint.starts_with("https://"),
                "DYNAMODB_ENDPOINT={endpoint:?} must be an http:// or https:// URL"
            );
        }
        if let Some(endpoint) = &self.files_s3_endpoint {
            anyhow::ensure!(
                endpoint.starts_with("http://") || endpoint.starts_with("https://"),
                "FILES_S3_ENDPOINT={endpoint:?} must be an http:// or https:// URL"
            );
        }
        if let Some(bucket) = &self.files_s3_bucket {
            anyhow::ensure!(
                (3..=63).contains(&bucket.len())
                    && bucket.bytes().all(|b| b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b"-.".contains(&b)),
                "FILES_S3_BUCKET={bucket:?} is not a bucket name (3 to 63 of a-z 0-9 . -)"
            );
            anyhow::ensure!(
                self.files_dir.is_none(),
                "FILES_DIR and FILES_S3_BUCKET are both set: choose one place for files"
            );
        }
        anyhow::ensure!(
            !self.dynamodb_table.is_empty(),
            "DYNAMODB_TABLE must not be empty"
        );
        anyhow::ensure!(
            !self.dynamodb_state_table.is_empty()
                && self.dynamodb_state_table != self.dynamodb_table,
            "DYNAMODB_STATE_TABLE must be set and differ from DYNAMODB_TABLE"
        );
        Ok(())
    }
}

/// `FILES_ALLOWED_TYPES`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Types(pub Vec<String>);

fn parse_types(raw: &str) -> Result<Types, String> {
    hubbub_files::parse_types(raw)
        .map(Types)
        .map_err(|bad| format!("{bad:?} is not a MIME type (type/subtype)"))
}

/// `NODE_ID`: 1 to 64 characters, none of them control characters.
fn node_id(raw: &str) -> Result<String, String> {
    let n = raw.chars().count();
    if n == 0 || n > 64 || raw.chars().any(char::is_control) {
        return Err("must be 1 to 64 characters with no control characters".into());
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("hubbub").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_the_protocol() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            (c.port, c.persist_batch_size, c.persist_queue_size),
            (8080, 25, 65_536)
        );
        assert_eq!((c.rate_limit_per_sec, c.rate_limit_burst), (5.0, 10.0));
        assert_eq!((c.history_size, c.store), (1000, Store::Memory));
        c.validate().unwrap();
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--persist-batch-size", "26"]).is_err());
        assert!(
            parse(&["--max-history-bytes", "1000"]).is_err(),
            "under 1 MiB"
        );
        assert!(parse(&["--port", "http"]).is_err());
        assert!(parse(&["--store", "redis"]).is_err());
        assert!(parse(&["--workers", "0"]).is_err());
        assert!(parse(&["--max-subscriptions", "0"]).is_err());
        assert!(parse(&["--max-subscriptions", "1025"]).is_err());
        assert!(parse(&["--presence-interval-ms", "9"]).is_err());
        assert!(parse(&["--node-id", ""]).is_err());
        assert!(parse(&["--node-id", &"n".repeat(65)]).is_err());
        assert_eq!(parse(&["--node-id", "eu-1"]).unwrap().node_id, "eu-1");
        let c = parse(&["--allowed-origins", " , "]).unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("ALLOWED_ORIGINS"));
        let c = parse(&["--api-key", "short"]).unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("API_KEY"));
        let c = parse(&["--api-key", "0123456789abcdef"]).unwrap();
        assert!(c.api_key().unwrap().is_some());
        let c = parse(&["--rate-limit-per-sec", "-1"]).unwrap();
        c.validate().unwrap();
        let c = parse(&["--dynamodb-endpoint", "localhost:8000"]).unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("DYNAMODB_ENDPOINT"));
    }

    #[test]
    fn overflow_policy_maps_to_the_core() {
        assert_eq!(parse(&[]).unwrap().overflow(), OverflowPolicy::Drop);
        let c = parse(&["--persist-overflow", "REJECT"]).unwrap();
        assert_eq!(c.overflow(), OverflowPolicy::Reject);
        assert!(parse(&["--persist-overflow", "block"]).is_err());
    }
}
