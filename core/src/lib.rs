//! # hubbub-core
//!
//! The sans-IO heart of [hubbub](https://example.invalid/hubbub): everything the chat
//! server decides — what a frame means, whether it is allowed, who receives it, in what
//! order, what is kept, what is counted — as deterministic state machines that perform no
//! I/O, read no clock and need no runtime. The `hubbub` server drives it with monoio; a
//! test drives it with a virtual clock; you can drive it with anything.
//!
//! ## Layout
//! - [`protocol`]: client frames in, server frames out (sonic-rs; encode once into
//!   reusable buffers).
//! - [`upgrade`]: the upgrade request's parameters, origin rules and refusals.
//! - [`auth`]: the HMAC bearer tokens.
//! - [`RateLimit`] / [`TokenBucket`]: per-connection rate limits.
//! - [`Hub`]: one per worker; owns the rooms [`owner_of`] routes to it.
//! - [`Snapshot`]: analytics merged across hubs.
//! - [`ws`]: WebSocket framing for servers, decoding client frames in place with no
//!   buffer held while a connection is idle.
//!
//! ## Data flow
//!
//! ```text
//!  socket ─▶ driver ─▶ hub(A).handle_frame ── decode, validate, rate-limit
//!                          │
//!                          ▼  Submit (a call if A owns the room, else Output::Peer → B)
//!                      hub(B) = owner_of(room): seq, messageId, timestamp,
//!                          │    encode once, history, persistence, counters
//!                          ▼  one Broadcast per worker with members (shared Bytes)
//!                      hub(A..) ─▶ Output::Deliver { frame, to: [conn…] } ─▶ driver
//!                                                      writes the same bytes to each
//! ```
//!
//! ## The run loop
//!
//! Feed an input, then drain [`Hub::poll_output`] until [`Output::Timeout`]. Here two
//! hubs (two "workers") exchange their peer events by hand, with no runtime at all:
//!
//! ```
//! use hubbub_core::*;
//! use hubbub_core::upgrade::UpgradeRequest;
//! use std::collections::VecDeque;
//!
//! let gauge = ConnectionGauge::new(100);
//! let mut hubs: Vec<Hub> = (0..2)
//!     .map(|w| Hub::new(HubConfig::new(WorkerId(w), 2), gauge.clone()))
//!     .collect();
//! let now = Now::new(Mono::from_nanos(0), UnixMillis(1_795_257_000_000));
//!
//! // Drains every hub, carrying peer events until all are quiet; returns what was
//! // delivered to sockets as (worker, connection, frame).
//! fn run(hubs: &mut [Hub], now: Now) -> Vec<(usize, ConnId, String)> {
//!     let mut sent = Vec::new();
//!     let mut mail: VecDeque<(WorkerId, PeerEvent)> = VecDeque::new();
//!     loop {
//!         for (w, hub) in hubs.iter_mut().enumerate() {
//!             loop {
//!                 match hub.poll_output() {
//!                     Output::Deliver { frame, to, .. } => for c in to.iter() {
//!                         sent.push((w, *c, String::from_utf8(frame.to_vec()).unwrap()));
//!                     },
//!                     Output::Send { conn, frame } => {
//!                         sent.push((w, conn, String::from_utf8(frame.to_vec()).unwrap()))
//!                     }
//!                     Output::Peer { to, event } => mail.push_back((to, event)),
//!                     Output::Timeout(_) => break,
//!                     // Nothing below happens in this example: no pings, closes,
//!                     // replays, queries, durable store or files.
//!                     Output::NotifyWritten { .. } | Output::Ping { .. }
//!                     | Output::Pong { .. } | Output::Close { .. }
//!                     | Output::CloseReply { .. } | Output::Reply { .. }
//!                     | Output::LoadRoom { .. }
//!                     | Output::LoadRange { .. } | Output::CheckFiles { .. }
//!                     | Output::Sequence { .. } | Output::FetchMessages { .. }
//!                     | Output::Unwatch { .. } => {}
//!                 }
//!             }
//!         }
//!         let Some((to, event)) = mail.pop_front() else { return sent };
//!         hubs[to.index()].handle_peer(now, event);
//!     }
//! }
//!
//! // Alice connects to worker 0, Bob to worker 1; both join "lobby".
//! let req = |q| UpgradeRequest { query: q, ..Default::default() };
//! let a = hubs[0].admit(now, &req("userId=alice&room=lobby")).unwrap();
//! let alice = hubs[0].handle_open(now, a);
//! let b = hubs[1].admit(now, &req("userId=bob&room=lobby")).unwrap();
//! let bob = hubs[1].handle_open(now, b);
//! run(&mut hubs, now);
//!
//! hubs[0].handle_frame(now, alice, Inbound::Text(br#"{"type":"chat","content":"hi"}"#));
//! let sent = run(&mut hubs, now);
//! let chats: Vec<_> = sent.iter().filter(|(_, _, f)| f.contains("\"chat\"")).collect();
//! assert_eq!(chats.len(), 2, "both members receive it once");
//! assert!(chats.iter().any(|(w, c, _)| *w == 1 && *c == bob));
//! assert!(chats.iter().all(|(_, _, f)| f.contains("\"seq\":1")));
//! ```
//!
//! ## Guarantees
//! - `seq` per room is 1, 2, 3, … with no gap; every live member receives every message
//!   of its room exactly once, in `seq` order; the join-time backlog is followed by live
//!   messages with no gap and no duplicate (tested by the simulator in `tests/`).
//! - No input panics; bad input is an error frame or a close code.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod analytics;
pub mod auth;
mod gauge;
mod hub;
pub mod protocol;
mod rand;
mod ratelimit;
mod route;
mod time;
pub mod upgrade;
pub mod ws;

pub use analytics::{PersistStats, RoomActivity, SharedRoomStats, Snapshot, StorageStatus};
pub use gauge::{ConnectionGauge, Reservation};
pub use hub::{
    history_limit, Admission, Answer, ConnId, FileFacts, Hub, HubConfig, Inbound, MessageList,
    MessagesOf, Output, OverflowPolicy, PageCursor, PeerEvent, PersistRecord, PersistSink,
    PresentUser, Query, QueryId, RoomPresence, StateWrite, StoredRoom, UserStatus, MAX_HELD_SENDS,
    MAX_PRESENCE_QUERY_USERS, MAX_PRESENCE_USERS, MAX_STORE_REPLAY, REPLAY_SLICE,
};
pub use hub::{
    Actor, Role, RoomAction, RoomOutcome, RoomRecord, RoomRefused, RoomRequest, RoomView, UserRoom,
    Visibility, CLOSE_ROOM_REFUSED, MAX_DIRECTORY_ROOMS, MAX_GROUP_MEMBERS, MAX_ROOM_MEMBERS,
    MAX_ROOM_NAME_CHARS, UNSUBSCRIBED_REMOVED, UNSUBSCRIBED_ROOM_DELETED,
};
pub use hub::{
    PublishRefused, CLOSE_DISCONNECTED, CLOSE_TOKEN_EXPIRED, CLOSE_UNSUBSCRIBED,
    UNSUBSCRIBED_BY_SERVER,
};
pub use hub::{Sequenced, SequencerEvent, GAP_RETRY, MAX_REORDER};
pub use ratelimit::{RateLimit, TokenBucket};
pub use route::{owner_of, WorkerId};
pub use time::{Mono, Now, Rfc3339, UnixMillis};
