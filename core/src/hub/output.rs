use std::sync::Arc;

use bytes::Bytes;

use super::directory::{RoomOutcome, RoomRefused, RoomRequest, UserRoom};
use super::peer::PeerEvent;
use super::server_api::PublishRefused;
use super::PersistRecord;
use crate::analytics::{RoomActivity, Snapshot};
use crate::protocol::{DisconnectRequest, PublishRequest, UnsubscribeRequest};
use crate::route::WorkerId;
use crate::time::{Mono, UnixMillis};

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

/// An HTTP query the hubs answer together. Each has one kind of [`Answer`], named in its
/// docs. (`/health` needs no hub: the driver answers it from what it holds itself.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `GET /api/analytics` and `GET /metrics`: answered with [`Answer::Stats`].
    Stats,
    /// `GET /api/rooms`: answered with [`Answer::Rooms`].
    Rooms,
    /// `GET /api/rooms/{id}/messages?limit=N&before=S|after=S`: answered with
    /// [`Answer::Messages`].
    RoomMessages {
        /// The room id (any string; an unknown room has no messages).
        room: String,
        /// How many messages, already clamped by [`history_limit`](crate::history_limit).
        limit: usize,
        /// Which page.
        cursor: PageCursor,
    },
    /// `GET /api/rooms/{id}/presence`: answered with [`Answer::Presence`].
    RoomPresence {
        /// The room id (an unknown room has nobody in it).
        room: String,
    },
    /// `GET /api/presence?users=a,b`: answered with [`Answer::UsersPresence`].
    UsersPresence {
        /// Distinct user ids, at most [`MAX_PRESENCE_QUERY_USERS`].
        users: Vec<String>,
    },
    /// `GET /api/users/{id}/messages?limit=N`: answered with [`Answer::Messages`].
    UserMessages {
        /// The user id.
        user: String,
        /// How many of the newest messages.
        limit: usize,
    },
    /// `POST /api/server/publish`: answered with [`Answer::Published`].
    Publish(PublishRequest),
    /// `POST /api/server/disconnect`: answered with [`Answer::Affected`].
    Disconnect(DisconnectRequest),
    /// `POST /api/server/unsubscribe`: answered with [`Answer::Affected`].
    Unsubscribe(UnsubscribeRequest),
    /// The rooms API (`/api/rooms[/{id}[/members/{user}]]`): answered with
    /// [`Answer::Room`].
    Room(RoomRequest),
    /// `GET /api/users/{id}/rooms`: answered with [`Answer::UserRooms`]. The hubs know the
    /// rooms made or loaded since start; with a durable store the driver names the rooms
    /// (from the store's per-user index) and each owner answers for its own.
    UserRooms {
        /// The user id.
        user: String,
        /// The rooms to look at (`None`: every room the hubs know the user in).
        rooms: Option<Vec<String>>,
    },
}

/// The answer to a [`Query`], as data: the driver renders it (JSON, Prometheus text).
#[derive(Debug, Clone)]
pub enum Answer {
    /// The merged figures, for the driver to add its own (persistence) and render as JSON
    /// ([`Snapshot::to_json`]) or in another format.
    Stats(Box<Snapshot>),
    /// The rooms with at least one connection, by room id.
    Rooms(Vec<RoomActivity>),
    /// A room's or a user's newest messages.
    Messages(MessageList),
    /// Who is connected to a room.
    Presence(RoomPresence),
    /// Whether each asked user is connected, and when they last were; in the order asked.
    UsersPresence(Vec<UserStatus>),
    /// The published message's frame, exactly as broadcast and stored (with its `seq`).
    Published(Result<Bytes, PublishRefused>),
    /// How many connections (disconnect) or subscriptions (unsubscribe) ended, over every
    /// worker.
    Affected(usize),
    /// What a rooms API request did, or why it was refused.
    Room(Result<RoomOutcome, RoomRefused>),
    /// A user's rooms, by room id.
    UserRooms(Vec<UserRoom>),
}

/// Most users one `GET /api/presence?users=` may ask about.
pub const MAX_PRESENCE_QUERY_USERS: usize = 100;

/// One user's presence over the whole server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserStatus {
    /// The user id.
    pub user_id: Arc<str>,
    /// They have a connection now.
    pub online: bool,
    /// When their last connection closed (`None` while online, or if none closed since
    /// the server started and was remembered).
    pub last_seen: Option<UnixMillis>,
}

/// Who is connected to a room, by user (not by connection), as its owner knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomPresence {
    /// The room.
    pub room_id: Arc<str>,
    /// Distinct users connected.
    pub online: usize,
    /// The first [`MAX_PRESENCE_USERS`] of them by user id.
    pub users: Vec<PresentUser>,
    /// `online` is more than the users listed.
    pub truncated: bool,
}

impl RoomPresence {
    /// A room nobody is connected to (or that does not exist).
    pub fn nobody(room_id: Arc<str>) -> RoomPresence {
        RoomPresence {
            room_id,
            online: 0,
            users: Vec::new(),
            truncated: false,
        }
    }
}

/// At most this many users are listed in a [`RoomPresence`].
pub const MAX_PRESENCE_USERS: usize = 1000;

/// One user connected to a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentUser {
    /// The user id.
    pub user_id: Arc<str>,
    /// The display name of their first connection to the room.
    pub username: Arc<str>,
    /// When their first connection to the room joined.
    pub since: UnixMillis,
}

/// Whose messages a [`MessageList`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessagesOf {
    /// A room's (`roomId`).
    Room,
    /// A user's, over every room (`userId`).
    User,
}

impl MessagesOf {
    /// The JSON key naming the id: `roomId` or `userId`.
    pub const fn key(self) -> &'static str {
        match self {
            MessagesOf::Room => "roomId",
            MessagesOf::User => "userId",
        }
    }
}

/// The newest messages of a room or a user, oldest first, each exactly as it was
/// broadcast (a `chat` frame's JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageList {
    /// A room's or a user's.
    pub of: MessagesOf,
    /// The room or user id.
    pub id: Arc<str>,
    /// The encoded `chat` frames.
    pub frames: Vec<Bytes>,
    /// A room's page: its cursors `(nextBefore, nextAfter)` ([`PageCursor::next`]);
    /// `None` for a user's messages, which have none.
    pub next: Option<(Option<u64>, Option<u64>)>,
}

/// Which page of a room's history, by `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PageCursor {
    /// The newest messages.
    #[default]
    Newest,
    /// The newest messages with a `seq` below this one (a page further back).
    Before(u64),
    /// The oldest messages with a `seq` above this one (catching up).
    After(u64),
}

impl PageCursor {
    /// The cursors of the page after this one, `(nextBefore, nextAfter)`, for a page of
    /// `limit` that held the seqs `first..=last` (`None`: it was empty). Further back
    /// there is more while the page's oldest is above 1; further on, after a page that
    /// was not the newest: every `before` page, or an `after` page that came full.
    ///
    /// ```
    /// use hubbub_core::PageCursor;
    /// assert_eq!(PageCursor::Newest.next(50, Some((951, 1000)), 50), (Some(951), None));
    /// assert_eq!(PageCursor::Before(951).next(50, Some((901, 950)), 50), (Some(901), Some(950)));
    /// assert_eq!(PageCursor::After(0).next(50, Some((1, 50)), 50), (None, Some(50)));
    /// assert_eq!(PageCursor::After(990).next(50, Some((991, 1000)), 10), (Some(991), None));
    /// assert_eq!(PageCursor::Before(1).next(50, None, 0), (None, None));
    /// ```
    pub fn next(
        self,
        limit: usize,
        seqs: Option<(u64, u64)>,
        len: usize,
    ) -> (Option<u64>, Option<u64>) {
        let Some((first, last)) = seqs else {
            return (None, None);
        };
        let back = (first > 1).then_some(first);
        let on = match self {
            PageCursor::Newest => None,
            PageCursor::Before(_) => Some(last),
            PageCursor::After(_) => (len >= limit).then_some(last),
        };
        (back, on)
    }
}

/// What the driver must do next, yielded by [`Hub::poll_output`](crate::Hub::poll_output).
///
/// Exhaustive on purpose: a new decision is a new variant, and every driver's `match`
/// stops compiling until it carries it out.
#[derive(Debug)]
#[must_use]
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
    /// Answer the client's ping on `conn` with a pong carrying `payload`, in order with
    /// the rest of what is queued for it (it counts toward the slow-consumer bound).
    Pong {
        /// The connection that pinged.
        conn: ConnId,
        /// The ping's payload (at most 125 bytes).
        payload: Bytes,
    },
    /// The client closed: answer with a close frame carrying the same `code` (an empty
    /// close if it gave none), after what is queued, and send nothing more. The client
    /// then ends the connection; call [`Hub::handle_close`](crate::Hub::handle_close)
    /// when the socket ends.
    CloseReply {
        /// The connection.
        conn: ConnId,
        /// The client's close code, if it gave one.
        code: Option<u16>,
    },
    /// Close `conn` with this code and reason, after flushing what is queued for it; then
    /// call [`Hub::handle_close`](crate::Hub::handle_close).
    Close {
        /// The connection.
        conn: ConnId,
        /// WebSocket close code (1000, 1001, 1003, 1007, 1008, 1009; 4001 at token expiry;
        /// 4002 and 4003 from the server API and the rooms API; 4004 for a room refused).
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
    /// With a durable store: a v2 subscriber asked to recover more than the memory ring
    /// holds. Load the room's messages with `seq` in `after + 1 ..= upto`, then call
    /// [`Hub::handle_range_loaded`](crate::Hub::handle_range_loaded) with `id` (with
    /// `None` if the store could not answer). Until then that subscription waits.
    LoadRange {
        /// Names the request in the answer.
        id: u64,
        /// The room.
        room: Arc<str>,
        /// The last message the subscriber has.
        after: u64,
        /// The newest message to load (the ring holds those after it).
        upto: u64,
    },
    /// A v2 send names files: look each up in the file store, then call
    /// [`Hub::handle_files_checked`](crate::Hub::handle_files_checked) with `id` (with
    /// `None` if the store could not answer). Until then that send (and those its
    /// connection makes after it) waits.
    CheckFiles {
        /// Names the request in the answer.
        id: u64,
        /// The room the message is for.
        room: Arc<str>,
        /// The `fileId`s, in the message's order.
        files: Vec<Box<str>>,
    },
    /// A shared room's message (`BROKER=redis`): have the sequencer number it, append it
    /// to the room's log and publish it to every node, then call
    /// [`Hub::handle_sequenced`](crate::Hub::handle_sequenced) with `token` (with `None`
    /// if it could not). Its delivery, here as on every node, comes with
    /// [`Hub::handle_broker_message`](crate::Hub::handle_broker_message).
    Sequence {
        /// Names the request in the answer.
        token: u64,
        /// The message; its `seq` is the sequencer's to give.
        record: PersistRecord,
        /// The room's epoch here: the sequencer's if it has none (a new room, or one it
        /// lost).
        epoch: Box<str>,
        /// The room's last `seq` here: a sequencer that lost the room numbers after it.
        floor: u64,
    },
    /// A shared room's delivered messages have a hole (or may have, after
    /// [`Hub::handle_broker_resync`](crate::Hub::handle_broker_resync)): read its
    /// messages with `seq` in `after + 1 ..= upto` (`u64::MAX`: to the newest) from the
    /// sequencer's log, then call [`Hub::handle_fetched`](crate::Hub::handle_fetched).
    FetchMessages {
        /// The room.
        room: Arc<str>,
        /// The last message delivered here.
        after: u64,
        /// The newest to read.
        upto: u64,
    },
    /// A shared room is no longer in use here: its publications need not come.
    Unwatch {
        /// The room.
        room: Arc<str>,
    },
    /// Nothing more to do until this instant (or the next input): call
    /// [`handle_timeout`](crate::Hub::handle_timeout) then.
    Timeout(Mono),
}
