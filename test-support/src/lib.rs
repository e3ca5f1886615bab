//! Test support shared by the tests of every hubbub crate (a `[dev-dependencies]` entry
//! each): what used to be copied between their `tests/common` modules.
//!
//! - [`free_port`]: a loopback port nothing listens on.
//! - [`process::Process`]: a child process killed by PID and reaped when dropped.
//! - [`poll::wait_until`]: polls a condition with a deadline.
//! - [`http`]: one HTTP/1.1 request and response over a plain `TcpStream`.
//! - [`ws::WsClient`]: a blocking WebSocket client (tungstenite over std `TcpStream`).
//! - [`dynalite::Dynalite`]: an in-memory DynamoDB-API server on loopback.
//! - [`redis::RedisServer`]: a real redis-server on loopback, nothing saved to disk.
//!
//! Everything here panics with a message on failure: it runs inside tests, where a
//! panic is the failure report.

#![warn(missing_docs)]

pub mod dynalite;
pub mod http;
pub mod poll;
mod ports;
pub mod process;
pub mod redis;
pub mod s3;
pub mod ws;

use std::path::PathBuf;

pub use ports::free_port;

/// The workspace root (the folder of the root `Cargo.toml`): every crate, this one
/// included, is one folder below it.
pub fn workspace_root() -> PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .expect("test-support/ lies inside the workspace root")
        .to_path_buf()
}
