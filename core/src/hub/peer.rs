use std::sync::Arc;

use bytes::Bytes;

use super::output::{ConnId, RoomPresence};
use crate::analytics::{RoomActivity, StatsPart};
use crate::protocol::ErrorCode;
use crate::route::WorkerId;
use crate::time::{Mono, UnixMillis};

/// An event from one hub to another. The driver carries it without looking inside
/// (the model is quinn-proto's `ConnectionEvent`).
#[derive(Debug)]
pub struct PeerEvent(pub(crate) PeerMsg);

/// Identifies a gather (scatter/gather query) on the hub that started it.
pub(crate) type GatherId = u64;

#[derive(Debug)]
pub(crate) enum PeerMsg {
    /// To the room's owner: a connection of worker `from` entered the room.
    Join {
        from: WorkerId,
        conn: ConnId,
        member: Member,
        since: Option<u64>,
    },
    /// To the connection's worker: the backlog, after which the connection is live.
    Backlog {
        conn: ConnId,
        room: Arc<str>,
        frames: Vec<Bytes>,
    },
    /// To the room's owner: a connection of worker `from` left the room.
    Leave { from: WorkerId, member: Member },
    /// To the room's owner: a valid, rate-checked chat message.
    Submit {
        from: WorkerId,
        conn: ConnId,
        member: Member,
        content: Box<str>,
        received: Mono,
    },
    /// To a worker with members: deliver this frame to them.
    Broadcast {
        room: Arc<str>,
        frame: Bytes,
        received: Option<Mono>,
    },
    /// To the connection's worker: the owner refused its message.
    Refused { conn: ConnId, code: ErrorCode },
    /// To a worker: contribute to gather `gather` of worker `from`.
    Ask {
        from: WorkerId,
        gather: GatherId,
        ask: Ask,
    },
    /// To the gathering worker: one contribution.
    Part { gather: GatherId, part: Part },
}

/// Who did something in a room.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub room: Arc<str>,
    pub user: Arc<str>,
    pub username: Arc<str>,
}

#[derive(Debug, Clone)]
pub(crate) enum Ask {
    Stats,
    Rooms,
    RoomMessages { room: Arc<str>, limit: usize },
    UserMessages { user: Arc<str>, limit: usize },
    RoomPresence { room: Arc<str> },
}

#[derive(Debug)]
pub(crate) enum Part {
    Stats(Box<StatsPart>),
    Rooms(Vec<RoomActivity>),
    Messages(Vec<(UnixMillis, Bytes)>),
    Presence(RoomPresence),
}
