//! The `hubbub` server: thread-per-core monoio workers driving
//! [`hubbub_core`] over WebSocket and HTTP/1.1.
//!
//! # Layout
//! - [`config`]: flags and environment variables.
//! - [`runtime`]: starts the workers, waits for a signal, shuts down.
//! - [`worker`]: one thread, one runtime, one hub, one listener; the mesh between workers.
//! - [`conn`]: one TCP connection: HTTP requests, then maybe a WebSocket.
//! - [`http`]: request heads, responses, routes, static files, Prometheus text.
//! - [`store`]: the DynamoDB bridge, when `STORE=dynamodb`.
//! - [`figures`]: what the server counts beside the hubs (HTTP connections, queues).

pub mod config;
pub mod conn;
pub mod figures;
pub mod http;
pub mod logging;
pub mod runtime;
pub mod store;
pub mod worker;
