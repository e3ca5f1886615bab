//! # hubbub-loadtest
//!
//! The load generator bundled with hubbub. It speaks PROTOCOL.md's chat subset, so it
//! measures any server that does, and it is built to be faster than the servers it
//! measures: thread-per-core monoio runtimes, a receive path that reads WebSocket frame
//! headers itself and looks at each text frame only for its `"seq":` number and the send
//! time the sender embedded in the content (`lt:<sender>:<unix nanos>:`), with no
//! allocation and no JSON parsing.
//!
//! Modules, one job each:
//! - [`cli`]: the command line.
//! - [`target`]: the `ws://` URL.
//! - [`net`]: TCP connect from chosen source addresses; [`handshake`]: the upgrade.
//! - [`frame`]: scanning server frames; [`send`]: writing client frames.
//! - [`recv`]: one connection's receive path; [`stats`]: counters and histograms.
//! - [`v2`]: protocol v2's rooms per connection, client frames and receive path.
//! - [`engine`]: the threads, connections, senders and phases.
//! - [`modes`]: `fanout`, `steps`, `idle`, `connect`, `soak`, and on protocol v2 `rooms`
//!   and `typing`; [`selftest`]: the receive path's speed.
//! - [`report`]: tables and JSON; [`progress`]: the live line; [`procfs`]: CPU, RSS and
//!   descriptors; [`prometheus`]: a server's `/metrics`, fetched and parsed.

pub mod cli;
pub mod engine;
pub mod frame;
pub mod handshake;
pub mod modes;
pub mod net;
pub mod procfs;
pub mod progress;
pub mod prometheus;
pub mod recv;
pub mod report;
pub mod selftest;
pub mod send;
pub mod stats;
pub mod target;
pub mod v2;
