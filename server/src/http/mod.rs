//! HTTP/1.1 on the WebSocket port: request heads, responses, routes, the dashboard's files
//! and the Prometheus text.

pub mod prometheus;
pub mod request;
pub mod response;
pub mod routes;
pub mod static_files;
