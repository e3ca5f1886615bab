//! The generator against the real `hubbub` server: what it says it sent and got accepted
//! must equal the server's own `totalMessages` in `/api/analytics`.
//!
//! The server binary is `target/debug/hubbub`; when it is missing and the `server/` crate
//! exists, the test builds it with `cargo build -p hubbub-server`. Without the crate the
//! test says so and returns (the same check runs against the in-test server in
//! `fake_server.rs`).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, report, run_lt};
use sonic_rs::JsonValueTrait;

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

/// The server process, killed by PID when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET `path` on 127.0.0.1:`port`: (status, body).
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
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

fn total_messages(port: u16) -> u64 {
    let (status, body) = http_get(port, "/api/analytics").expect("GET /api/analytics");
    assert_eq!(status, 200, "{body}");
    let v: sonic_rs::Value = sonic_rs::from_str(&body).expect("analytics JSON");
    v["totalMessages"].as_u64().expect("totalMessages")
}

#[test]
fn counts_match_the_servers_analytics() {
    let Some(bin) = hubbub_binary() else {
        eprintln!("server/ does not exist yet: skipping the real-server test");
        return;
    };
    let port = free_port();
    let child = Command::new(bin)
        .env("PORT", port.to_string())
        .env("BIND", "127.0.0.1")
        .env("WORKERS", "1")
        .env("LOG_LEVEL", "warn")
        .env("PIN_WORKERS", "false")
        .env("RATE_LIMIT_PER_SEC", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start hubbub");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !matches!(http_get(port, "/health"), Ok((200, _))) {
        assert!(Instant::now() < deadline, "hubbub did not become healthy");
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = total_messages(port);
    let url = format!("ws://127.0.0.1:{port}/ws");
    let pid = server.0.id().to_string();
    let out = run_lt(&[
        "fanout",
        "--url",
        &url,
        "--conns",
        "40",
        "--rooms",
        "4",
        "--senders",
        "8",
        "--rate",
        "25",
        "--warmup",
        "0s",
        "--duration",
        "1s",
        "--drain",
        "2s",
        "--server-pid",
        &pid,
        "--min-delivery",
        "1.0",
        "--json",
    ]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r}");
    let sent = r["sent"].as_u64().expect("sent");
    assert!(sent >= 150, "{r}");
    assert_eq!(r["accepted"].as_u64(), Some(sent), "{r}");
    assert_eq!(
        total_messages(port) - before,
        sent,
        "server totalMessages vs generator"
    );
    assert_eq!(
        r["delivered"].as_u64(),
        Some(sent * 10),
        "10 members per room: {r}"
    );
    assert_eq!(r["integrity"]["gaps"].as_u64(), Some(0), "{r}");
    assert!(r["server"]["cpuMs"].as_f64().is_some(), "{r}");
}
