//! The real `hubbub` server for integration tests: built if needed, started on a free
//! loopback port, killed by PID when dropped.
//!
//! The server binary is `target/debug/hubbub`, (re)built with `cargo build -p
//! hubbub-server` first: this crate cannot name another package's binary as a
//! dependency, so it builds it the way a developer would.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use hubbub_test_support::poll::wait_until;
use hubbub_test_support::process::Process;
use hubbub_test_support::{free_port, http, workspace_root};

/// How long the server may take to answer `/health` with 200.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// `target/debug/hubbub`, (re)built now.
fn hubbub_binary() -> PathBuf {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| root.join(dir))
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug").join("hubbub");
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "hubbub-server"])
        .current_dir(&root)
        .status()
        .expect("run cargo build -p hubbub-server");
    assert!(status.success(), "cargo build -p hubbub-server failed");
    assert!(bin.exists(), "{} missing after the build", bin.display());
    bin
}

/// A running server, killed by PID when dropped.
pub struct Hubbub {
    process: Process,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Hubbub {
    /// Starts the server (one unpinned worker, logs at `warn`, otherwise its defaults
    /// unless `env` says otherwise) and waits until `/health` answers 200.
    pub fn start(env: &[(&str, &str)]) -> Hubbub {
        let port = free_port();
        let mut cmd = Command::new(hubbub_binary());
        cmd.env("PORT", port.to_string())
            .env("BIND", "127.0.0.1")
            .env("WORKERS", "1")
            .env("LOG_LEVEL", "warn")
            .env("PIN_WORKERS", "false");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::inherit());
        let server = Hubbub {
            process: Process::spawn(&mut cmd, "hubbub"),
            port,
        };
        let healthy = wait_until(START_TIMEOUT, || {
            http::get(port, "/health").is_ok_and(|r| r.status == 200)
        });
        assert!(healthy, "hubbub did not become healthy on port {port}");
        server
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Its WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// `GET /api/analytics`, parsed.
    pub fn analytics(&self) -> sonic_rs::Value {
        let r = http::get(self.port, "/api/analytics").expect("GET /api/analytics");
        assert_eq!(r.status, 200, "{}", r.body);
        sonic_rs::from_str(&r.body).expect("analytics JSON")
    }
}
