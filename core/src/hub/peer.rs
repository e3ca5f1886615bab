use std::sync::Arc;

use bytes::Bytes;

use super::output::{ConnId, PageCursor, RoomPresence, UserStatus};
use super::rooms::Audience;
use crate::analytics::{RoomActivity, StatsPart};
use crate::protocol;
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
        /// A v2 subscription (v1: `None`).
        v2: Option<JoinV2>,
    },
    /// To the connection's worker: the backlog (for v2 after its `subscribed` frame),
    /// after which the subscription is live.
    Backlog {
        conn: ConnId,
        room: Arc<str>,
        frames: Vec<Bytes>,
        token: u32,
    },
    /// To the room's owner: a connection of worker `from` left the room.
    Leave {
        from: WorkerId,
        member: Member,
        v2: bool,
        /// A v2 `unsubscribe`: the owner answers it, so that the answer follows the
        /// acks of the room's chat messages sent before it.
        unsubscribe: Option<Unsubscribe>,
    },
    /// To the room's owner: a valid, rate-checked chat message.
    Submit(Submit),
    /// To a worker with members: deliver this frame to those of `audience`.
    Broadcast {
        room: Arc<str>,
        frame: Bytes,
        received: Option<Mono>,
        audience: Audience,
    },
    /// To the connection's worker: a frame for it alone (an ack, an error), in order
    /// behind what it gets from `room` (behind its replay, if one is streaming).
    Direct {
        conn: ConnId,
        room: Option<Arc<str>>,
        frame: Bytes,
    },
    /// To the room's owner: a user typing (or stopped).
    Typing { member: Member, stop: bool },
    /// To the room's owner: a user's read marker.
    Read { member: Member, seq: u64 },
    /// To a worker: contribute to gather `gather` of worker `from`.
    Ask {
        from: WorkerId,
        gather: GatherId,
        ask: Ask,
    },
    /// To the gathering worker: one contribution.
    Part { gather: GatherId, part: Part },
    /// To the connection's worker: the owner refused its subscription `token` to `room`.
    Refused {
        conn: ConnId,
        room: Arc<str>,
        token: u32,
        id: Option<u32>,
        code: protocol::ErrorCode,
    },
    /// To every worker: end the subscriptions to `room` (of `user`, or everyone's).
    End {
        room: Arc<str>,
        user: Option<Arc<str>>,
        reason: &'static str,
    },
    /// A shared room's numbered message (never between workers: from the driver's
    /// broker input, through the load gate).
    Remote(Box<super::sequencer::Remote>),
}

/// A v2 `subscribe` as the owner needs it.
#[derive(Debug)]
pub(crate) struct JoinV2 {
    pub id: Option<u32>,
    pub token: u32,
    pub epoch: Option<Box<str>>,
    /// The token's `rooms` claim names the room: it may be joined by a non-member.
    pub granted: bool,
}

/// A v2 `unsubscribe` for the owner to answer.
#[derive(Debug)]
pub(crate) struct Unsubscribe {
    pub conn: ConnId,
    pub id: Option<u32>,
    /// Why, when the client did not ask (the `unsubscribed` frame's `reason`).
    pub reason: Option<&'static str>,
}

/// A chat message on its way to its room's owner.
#[derive(Debug)]
pub(crate) struct Submit {
    pub from: WorkerId,
    pub conn: ConnId,
    pub member: Member,
    pub content: Box<str>,
    pub received: Mono,
    /// A v2 send: the request `id` and `clientMsgId` to acknowledge.
    pub v2: Option<SubmitV2>,
}

#[derive(Debug)]
pub(crate) struct SubmitV2 {
    pub id: Option<u32>,
    pub client_msg_id: Option<Box<str>>,
    /// Its files, already found in the file store (empty for most).
    pub attachments: Vec<protocol::Attachment>,
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
    RoomMessages {
        room: Arc<str>,
        limit: usize,
        cursor: PageCursor,
    },
    UserMessages {
        user: Arc<str>,
        limit: usize,
    },
    RoomPresence {
        room: Arc<str>,
    },
    UsersPresence {
        users: Arc<[Arc<str>]>,
    },
    /// The server API's (at the room's owner, through the durable gate).
    Publish(Arc<protocol::PublishRequest>),
    Disconnect {
        user: Arc<str>,
    },
    Unsubscribe {
        user: Arc<str>,
        room: Arc<str>,
    },
    /// The rooms API's (at the room's owner, through the durable gate).
    Room(Arc<super::directory::RoomRequest>),
    /// Every worker's API rooms `user` is a member of.
    UserRooms {
        user: Arc<str>,
    },
    /// `user`'s place in `room` (at its owner, through the durable gate).
    UserRoom {
        user: Arc<str>,
        room: Arc<str>,
    },
}

#[derive(Debug)]
pub(crate) enum Part {
    Stats(Box<StatsPart>),
    Rooms(Vec<RoomActivity>),
    Messages(Vec<(UnixMillis, Bytes)>),
    /// A page of a room's history: (seq, frame), in seq order.
    RoomPage(Vec<(u64, Bytes)>),
    Presence(RoomPresence),
    UsersPresence(Vec<UserStatus>),
    /// The published frame, as broadcast.
    Published(Result<Bytes, super::server_api::PublishRefused>),
    /// Connections or subscriptions a server API request ended.
    Affected(usize),
    Room(Result<super::directory::RoomOutcome, super::directory::RoomRefused>),
    UserRooms(Vec<super::directory::UserRoom>),
}
