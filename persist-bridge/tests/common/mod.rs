//! Test support: a real dynalite (DynamoDB API, in memory) per test on a free loopback
//! port, killed by PID on drop, and helpers to look at its table directly.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use hubbub_core::{PersistRecord, UnixMillis};
use hubbub_persist::{BridgeConfig, RetryPolicy};

/// A dynalite process.
pub struct Dynalite {
    child: Option<Child>,
    pub port: u16,
}

/// `tools/dynalite/node_modules/.bin/dynalite` of this repository.
fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tools/dynalite/node_modules/.bin/dynalite")
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

impl Dynalite {
    /// Starts dynalite on a free port.
    pub fn start() -> Dynalite {
        Dynalite::start_on(free_port())
    }

    /// Starts dynalite on `port` and waits until it accepts connections.
    pub fn start_on(port: u16) -> Dynalite {
        let bin = binary();
        assert!(
            bin.exists(),
            "dynalite is not installed at {}: run `npm ci` in tools/dynalite \
             (or `. scripts/lib/dynalite.sh && setup_dynalite`) before the persistence tests",
            bin.display()
        );
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--createTableMs", "0", "--deleteTableMs", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut d = Dynalite {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(Ok(Some(status))) = d.child.as_mut().map(Child::try_wait) {
                panic!("dynalite exited at start with {status} (port {port} taken?)");
            }
            assert!(
                Instant::now() < deadline,
                "dynalite did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        d
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        endpoint(self.port)
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the process, by PID.
    pub fn signal(&self, signal: &str) {
        let pid = self
            .child
            .as_ref()
            .map(Child::id)
            .expect("dynalite is running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// Kills the process (SIGKILL, by PID) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A stopped process must be continued to die cleanly on some systems.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(child.id().to_string())
                .status();
        }
        self.kill();
    }
}

pub fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

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
        user_id: user.into(),
        username: format!("{user} the user").into(),
        content: content.into(),
        timestamp: UnixMillis(ts),
        seq,
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
    hubbub_persist::dynamo::client(&config(endpoint.to_owned())).await
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

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
