//! The `hubbub` server: thread-per-core monoio workers driving [`hubbub_core`] over
//! WebSocket and HTTP/1.1.
//!
//! # Layout, top to bottom (a module uses only those below it)
//! - `serve`: start and stop — binds, starts the store and the workers, wires each
//!   worker's engine to its listener and the HTTP side, waits for a signal, shuts down.
//! - `http`: one TCP connection's requests, the upgrade, routes, rendering; it reaches
//!   the engine only through `engine::Handle`.
//! - `search`: the message search index's start, and the sink that feeds it and the
//!   store from every worker.
//! - `store`: the DynamoDB bridge, and the engine's `Host` when `STORE=dynamodb`.
//! - `engine`: one worker's hub and WebSocket sockets (reactor, outboxes, send ring,
//!   mesh); it knows nothing of HTTP or of the store.
//! - `config`, `figures`, `logging`: leaves.
//!
//! Only what `main.rs` and the fuzz targets need is public.

mod accounts;
pub mod config;
mod engine;
mod figures;
mod files;
mod http;
pub mod logging;
mod search;
mod serve;
mod store;

pub use serve::run;

/// The HTTP request-head parser, for the fuzz targets (`fuzz/fuzz_targets/http_head.rs`):
/// it reads untrusted bytes.
pub mod http_head {
    pub use crate::http::request::{parse, Head, HeadError, MAX_HEAD_BYTES};
}
