//! The real `hubbub` server for integration tests: built if needed, started on a free
//! loopback port, killed by PID when dropped.
//!
//! The server binary is `target/debug/hubbub`; when the `server/` crate exists it is
//! (re)built with `cargo build -p hubbub-server` first. Without the crate, [`Hubbub::start`]
//! says so and returns `None`, and the calling test returns.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `target/debug/hubbub`, built if needed; `None` when the server crate does not exist.
fn hubbub_binary() -> Option<PathBuf> {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug").join("hubbub");
    if !root.join("server").join("Cargo.toml").exists() {
        return None;
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "hubbub-server"])
        .current_dir(&root)
        .status()
        .expect("run cargo build -p hubbub-server");
    assert!(status.success(), "cargo build -p hubbub-server failed");
    assert!(bin.exists(), "{} missing after the build", bin.display());
    Some(bin)
}

/// A running server, killed by PID when dropped.
pub struct Hubbub {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Drop for Hubbub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Hubbub {
    /// Starts the server (one unpinned worker, logs at `warn`, otherwise its defaults
    /// unless `env` says otherwise) and waits until `/health` answers; `None` without
    /// the server crate.
    pub fn start(env: &[(&str, &str)]) -> Option<Hubbub> {
        let Some(bin) = hubbub_binary() else {
            eprintln!("server/ does not exist yet: skipping the real-server test");
            return None;
        };
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.env("PORT", port.to_string())
            .env("BIND", "127.0.0.1")
            .env("WORKERS", "1")
            .env("LOG_LEVEL", "warn")
            .env("PIN_WORKERS", "false");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start hubbub");
        let server = Hubbub { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !matches!(http_get(port, "/health"), Ok((200, _))) {
            assert!(Instant::now() < deadline, "hubbub did not become healthy");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// `GET /api/analytics`, parsed.
    pub fn analytics(&self) -> sonic_rs::Value {
        let (status, body) = http_get(self.port, "/api/analytics").expect("GET /api/analytics");
        assert_eq!(status, 200, "{body}");
        sonic_rs::from_str(&body).expect("analytics JSON")
    }
}

/// GET `path` on 127.0.0.1:`port`: (status, body).
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let head = text[..head_end].to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if let Some(len) = len {
                if buf.len() >= head_end + 4 + len {
                    break;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
