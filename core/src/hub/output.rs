use std::sync::Arc;

use bytes::Bytes;

use super::peer::PeerEvent;
use crate::analytics::Snapshot;
use crate::route::WorkerId;
use crate::time::Mono;

/// A connection of this hub. Its [`index`](ConnId::index) is dense and reused, so a driver
/// can keep its own per-connection state in a `Vec`; the generation tells a reused slot
/// from the connection that held it before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl ConnId {
    /// Dense slot index, `0..` the most connections this hub held at once.
    pub const fn index(self) -> usize {
        self.index as usize
    }

    /// How many times the slot was used before this connection.
    pub const fn generation(self) -> u32 {
        self.generation
    }
}

/// The driver's name for an HTTP query, echoed in its [`Output::Reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueryId(pub u64);

/// An HTTP query the hubs answer together.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Query {
    /// `GET /health`.
    Health,
    /// `GET /api/analytics` and `GET /metrics`: a merged [`Snapshot`].
    Stats,
    /// `GET /api/rooms`.
    Rooms,
    /// `GET /api/rooms/{id}/messages?limit=N`.
    RoomMessages {
        /// The room id (any string; an unknown room has no messages).
        room: String,
        /// How many of the newest messages, already clamped by [`history_limit`](crate::history_limit).
        limit: usize,
    },
    /// `GET /api/users/{id}/messages?limit=N`.
    UserMessages {
        /// The user id.
        user: String,
        /// How many of the newest messages.
        limit: usize,
    },
}

/// The answer to a [`Query`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Answer {
    /// A complete `application/json` body.
    Json(Bytes),
    /// The merged figures, for the driver to add its own (persistence) and render as JSON
    /// ([`Snapshot::to_json`]) or in another format.
    Stats(Box<Snapshot>),
}

/// What the driver must do next, yielded by [`Hub::poll_output`](crate::Hub::poll_output).
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum Output {
    /// Write `frame` (one text frame's payload) to every connection in `to`, in order with
    /// this hub's other outputs. The same bytes go to every recipient.
    Deliver {
        /// The encoded JSON, shared.
        frame: Bytes,
        /// The recipients: live members of one room on this worker.
        to: Arc<[ConnId]>,
        /// When the chat message was read from its sender, if this is one: once the
        /// frame is handed to the sockets, report it with
        /// [`Hub::handle_delivered`](crate::Hub::handle_delivered) (the fan-out latency).
        received: Option<Mono>,
    },
    /// Write `frame` to one connection (backlog, error frames).
    Send {
        /// The recipient.
        conn: ConnId,
        /// The encoded JSON.
        frame: Bytes,
    },
    /// Call [`Hub::handle_written`](crate::Hub::handle_written) once everything queued
    /// for `conn` so far has been written to its socket: the next slice of a replay waits
    /// for it. Not needed if the connection closes first.
    NotifyWritten {
        /// The connection.
        conn: ConnId,
    },
    /// Send a WebSocket ping to `conn`.
    Ping {
        /// The idle connection.
        conn: ConnId,
    },
    /// Close `conn` with this code and reason, after flushing what is queued for it; then
    /// call [`Hub::handle_close`](crate::Hub::handle_close).
    Close {
        /// The connection.
        conn: ConnId,
        /// WebSocket close code (1000, 1001, 1003, 1007, 1008, 1009).
        code: u16,
        /// Close reason for people.
        reason: &'static str,
    },
    /// Carry `event` to worker `to` and give it to that hub's
    /// [`handle_peer`](crate::Hub::handle_peer), preserving order per pair of workers.
    Peer {
        /// The destination worker.
        to: WorkerId,
        /// Opaque to the driver.
        event: PeerEvent,
    },
    /// The answer to a query started with [`handle_query`](crate::Hub::handle_query).
    Reply {
        /// The query.
        id: QueryId,
        /// Its answer.
        answer: Answer,
    },
    /// With a durable store: load this room's last `seq` and newest messages, then call
    /// [`Hub::handle_room_loaded`](crate::Hub::handle_room_loaded). Until then the room's
    /// joins and messages wait.
    LoadRoom {
        /// The room.
        room: Arc<str>,
        /// How many of its newest messages to load (the history size).
        recent: usize,
    },
    /// Nothing more to do until this instant (or the next input): call
    /// [`handle_timeout`](crate::Hub::handle_timeout) then.
    Timeout(Mono),
}
