//! Rooms made through the rooms API (docs/PROTOCOL.md §4.5): name, visibility, owner and
//! members, kept by the hub that owns the room, so the one check a subscription needs runs
//! where the room is sequenced and costs the chat path nothing. A room never made here is
//! public, as every room of protocol v1 is.

use std::collections::{HashMap, HashSet};

use super::peer::Part;
use super::*;

/// Members a public or private room may have.
pub const MAX_ROOM_MEMBERS: usize = 1000;
/// Members a group (a closed set; a direct message is a group of two) may have.
pub const MAX_GROUP_MEMBERS: usize = 256;
/// Characters of a room's name.
pub const MAX_ROOM_NAME_CHARS: usize = 100;
/// Rooms made through the API that one hub owns at most (deleted ones included: their
/// ids stay taken).
pub const MAX_DIRECTORY_ROOMS: usize = 100_000;

/// The `reason` of the `unsubscribed` frame of a deleted room's subscribers.
pub const UNSUBSCRIBED_ROOM_DELETED: &str = "room_deleted";
/// The `reason` of the `unsubscribed` frame of a member removed from a room.
pub const UNSUBSCRIBED_REMOVED: &str = "removed";
/// The close code of a v1 connection refused its room: a private or group room it is not
/// a member of (reason `forbidden`), or a deleted room (reason `room_not_found`).
pub const CLOSE_ROOM_REFUSED: u16 = 4004;

/// Who may see and join a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Anyone may read and subscribe (every room never made through the API).
    Public,
    /// Members only.
    Private,
    /// Members only, a closed set of at most [`MAX_GROUP_MEMBERS`] to which any member may
    /// add; a direct message is a group of two.
    Group,
}

impl Visibility {
    /// Its name in the API.
    ///
    /// ```
    /// use hubbub_core::Visibility;
    /// assert_eq!(Visibility::parse("group"), Some(Visibility::Group));
    /// assert_eq!(Visibility::Private.as_str(), "private");
    /// assert_eq!(Visibility::parse("secret"), None);
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Group => "group",
        }
    }

    /// The visibility named `s`.
    pub fn parse(s: &str) -> Option<Visibility> {
        [Visibility::Public, Visibility::Private, Visibility::Group]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    fn member_cap(self) -> usize {
        match self {
            Visibility::Group => MAX_GROUP_MEMBERS,
            _ => MAX_ROOM_MEMBERS,
        }
    }
}

/// A member's role in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads and chats.
    Member,
    /// Also renames the room, changes its visibility, adds and removes members, deletes it.
    Admin,
}

impl Role {
    /// Its name in the API.
    ///
    /// ```
    /// use hubbub_core::Role;
    /// assert_eq!(Role::parse("admin"), Some(Role::Admin));
    /// assert_eq!(Role::Member.as_str(), "member");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    /// The role named `s`.
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Member, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// Who asks something of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// Token auth is off: every room may be read, none managed.
    Anyone,
    /// The server API's key: reads and manages every room (but makes none: a room has a
    /// user for its owner).
    Operator,
    /// A verified token's user; `admin` (the token's claim) reads and manages every room.
    User {
        /// The user id.
        id: String,
        /// The token's `admin` claim.
        admin: bool,
    },
}

/// One request of the rooms API, answered with [`Answer::Room`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRequest {
    /// The room id; empty in a [`RoomAction::Create`] for the hub to make one.
    pub room: String,
    /// Who asks.
    pub actor: Actor,
    /// What.
    pub action: RoomAction,
}

/// What a [`RoomRequest`] asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomAction {
    /// `POST /api/rooms`: the actor becomes its owner (an admin); `members` join as members.
    Create {
        /// Its name.
        name: String,
        /// Its visibility.
        visibility: Visibility,
        /// Users who join it as members.
        members: Vec<String>,
    },
    /// `GET /api/rooms/{id}`.
    Get,
    /// `PATCH /api/rooms/{id}`.
    Update {
        /// A new name.
        name: Option<String>,
        /// A new visibility.
        visibility: Option<Visibility>,
    },
    /// `DELETE /api/rooms/{id}`: its subscribers are unsubscribed, its id stays taken.
    Delete,
    /// `PUT /api/rooms/{id}/members/{user}`.
    SetMember {
        /// The user.
        user: String,
        /// Their role.
        role: Role,
    },
    /// `DELETE /api/rooms/{id}/members/{user}`: their subscriptions end.
    RemoveMember {
        /// The user.
        user: String,
    },
    /// May the actor read the room's history and presence? (Answered
    /// [`RoomOutcome::Allowed`].)
    Read,
}

/// What a [`RoomRequest`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomOutcome {
    /// The room made.
    Created(Box<RoomView>),
    /// The room as it is now.
    Room(Box<RoomView>),
    /// It was deleted.
    Deleted,
    /// The actor may read it.
    Allowed,
}

/// Why a [`RoomRequest`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomRefused {
    /// The room was deleted.
    #[error("no such room: it was deleted")]
    NotFound,
    /// The actor may not do that.
    #[error("not allowed: the room's members (its admins, to manage it) only")]
    Forbidden,
    /// The id is taken: a room of that id was made, deleted or has been used.
    #[error("a room with that id exists (or existed)")]
    Exists,
    /// The room would have more members than its visibility allows.
    #[error("the room has as many members as it may (256 for a group, 1000 otherwise)")]
    Full,
    /// The owner cannot leave their room, nor stop being one of its admins.
    #[error("the owner stays an admin of the room: delete it instead")]
    OwnerStays,
    /// The store's queue is full: nothing changed.
    #[error("the state store is not keeping up: nothing changed; retry later")]
    Overloaded,
    /// This hub owns as many API rooms as it may.
    #[error("the server holds as many rooms as it may")]
    TooManyRooms,
}

impl RoomRefused {
    /// Its code in the API's error bodies.
    ///
    /// ```
    /// assert_eq!(hubbub_core::RoomRefused::NotFound.code(), "room_not_found");
    /// ```
    pub const fn code(self) -> &'static str {
        match self {
            RoomRefused::NotFound => "room_not_found",
            RoomRefused::Forbidden => "forbidden",
            RoomRefused::Exists => "room_exists",
            RoomRefused::Full => "room_full",
            RoomRefused::OwnerStays => "invalid_member",
            RoomRefused::Overloaded => "overloaded",
            RoomRefused::TooManyRooms => "too_many_rooms",
        }
    }
}

/// A room as the rooms API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomView {
    /// The id.
    pub room_id: Arc<str>,
    /// Its name (its id, for a room never made through the API).
    pub name: Box<str>,
    /// Its visibility.
    pub visibility: Visibility,
    /// Who made it (`None` for a room never made through the API).
    pub owner: Option<Arc<str>>,
    /// When (`None` as for `owner`).
    pub created_at: Option<UnixMillis>,
    /// Its members by user id.
    pub members: Vec<(Arc<str>, Role)>,
    /// The last `seq` of its messages.
    pub seq: u64,
    /// Its epoch (docs/PROTOCOL.md §7).
    pub epoch: Box<str>,
}

/// A room as the store keeps it: written whole ([`StateWrite::Room`]) at every change and
/// handed back with the room's state ([`StoredRoom::room`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    /// The id.
    pub room_id: String,
    /// Its name.
    pub name: String,
    /// Its visibility.
    pub visibility: Visibility,
    /// Who made it.
    pub owner: String,
    /// When.
    pub created_at: UnixMillis,
    /// Its members (the owner among them, an admin).
    pub members: Vec<(String, Role)>,
    /// It was deleted: the id stays taken, nobody may read or join it.
    pub deleted: bool,
}

/// One of a user's rooms, for `GET /api/users/{id}/rooms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRoom {
    /// The room.
    pub room_id: Arc<str>,
    /// Its name.
    pub name: Box<str>,
    /// Its visibility.
    pub visibility: Visibility,
    /// The user's role.
    pub role: Role,
    /// The room's last `seq`.
    pub seq: u64,
    /// The user's read marker (0 if none).
    pub last_read: u64,
}

impl UserRoom {
    /// Messages after the read marker.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use hubbub_core::{Role, UserRoom, Visibility};
    /// let r = UserRoom { room_id: Arc::from("r"), name: "R".into(), visibility: Visibility::Group,
    ///     role: Role::Member, seq: 9, last_read: 4 };
    /// assert_eq!(r.unread(), 5);
    /// ```
    pub fn unread(&self) -> u64 {
        self.seq.saturating_sub(self.last_read)
    }
}

#[derive(Debug)]
pub(crate) struct RoomMeta {
    name: Box<str>,
    visibility: Visibility,
    owner: Arc<str>,
    created_at: UnixMillis,
    members: HashMap<Arc<str>, Role>,
    deleted: bool,
}

impl RoomMeta {
    fn record(&self, room: &str) -> RoomRecord {
        let mut members: Vec<(String, Role)> = self
            .members
            .iter()
            .map(|(u, r)| (u.to_string(), *r))
            .collect();
        members.sort_unstable();
        RoomRecord {
            room_id: room.to_owned(),
            name: self.name.to_string(),
            visibility: self.visibility,
            owner: self.owner.to_string(),
            created_at: self.created_at,
            members,
            deleted: self.deleted,
        }
    }

    fn manages(&self, actor: &Actor) -> bool {
        match actor {
            Actor::Anyone => false,
            Actor::Operator => true,
            Actor::User { id, admin } => {
                *admin || self.members.get(id.as_str()) == Some(&Role::Admin)
            }
        }
    }

    fn reads(&self, actor: &Actor) -> bool {
        match actor {
            Actor::Anyone | Actor::Operator => true,
            Actor::User { id, admin } => {
                *admin
                    || self.visibility == Visibility::Public
                    || self.members.contains_key(id.as_str())
            }
        }
    }
}

/// The API rooms a hub owns, and which of them each user is a member of.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    rooms: HashMap<Arc<str>, RoomMeta>,
    by_user: HashMap<Arc<str>, HashSet<Arc<str>>>,
}

impl Directory {
    fn insert(&mut self, room: Arc<str>, meta: RoomMeta) {
        if let Some(old) = self.rooms.remove(&room) {
            for user in old.members.keys() {
                self.unlist(user, &room);
            }
        }
        for user in meta.members.keys() {
            self.by_user
                .entry(user.clone())
                .or_default()
                .insert(room.clone());
        }
        self.rooms.insert(room, meta);
    }

    fn unlist(&mut self, user: &str, room: &str) {
        if let Some(rooms) = self.by_user.get_mut(user) {
            rooms.remove(room);
            if rooms.is_empty() {
                self.by_user.remove(user);
            }
        }
    }

    fn restore(&mut self, record: RoomRecord) {
        let room: Arc<str> = Arc::from(record.room_id.as_str());
        if self.rooms.contains_key(&room) {
            // What this hub holds is newer than what the store gave back.
            return;
        }
        let meta = RoomMeta {
            name: record.name.into(),
            visibility: record.visibility,
            owner: Arc::from(record.owner),
            created_at: record.created_at,
            members: record
                .members
                .into_iter()
                .map(|(u, r)| (Arc::from(u), r))
                .collect(),
            deleted: record.deleted,
        };
        self.insert(room, meta);
    }

    /// Is `room` one that listings show to anyone: public (or not a rooms API room)?
    pub(crate) fn is_listed(&self, room: &str) -> bool {
        self.rooms
            .get(room)
            .is_none_or(|m| m.visibility == Visibility::Public && !m.deleted)
    }

    /// Why `user` may not subscribe to `room`, if they may not; `granted`: their token's
    /// `rooms` claim names the room.
    pub(crate) fn join_refusal(&self, room: &str, user: &str, granted: bool) -> Option<ErrorCode> {
        let meta = self.rooms.get(room)?;
        if meta.deleted {
            Some(ErrorCode::RoomNotFound)
        } else if meta.visibility != Visibility::Public
            && !granted
            && !meta.members.contains_key(user)
        {
            Some(ErrorCode::Forbidden)
        } else {
            None
        }
    }
}

impl Hub {
    /// A room's state came back from the store with its record.
    pub(super) fn restore_room(&mut self, record: RoomRecord) {
        self.directory.restore(record);
    }

    /// At the room's owner: answers a rooms API request.
    pub(super) fn room_request(&mut self, now: Now, req: &RoomRequest) -> Part {
        let room: Arc<str> = match self.directory.rooms.get_key_value(req.room.as_str()) {
            Some((name, _)) => name.clone(),
            None => Arc::from(req.room.as_str()),
        };
        Part::Room(self.room_action(now, &room, &req.actor, &req.action))
    }

    fn room_action(
        &mut self,
        now: Now,
        room: &Arc<str>,
        actor: &Actor,
        action: &RoomAction,
    ) -> Result<RoomOutcome, RoomRefused> {
        if let RoomAction::Create {
            name,
            visibility,
            members,
        } = action
        {
            return self.create_room(now, room, actor, name, *visibility, members);
        }
        let Some(meta) = self.directory.rooms.get(room) else {
            // A room never made through the API: public, and nobody's to manage.
            return match action {
                RoomAction::Get => Ok(RoomOutcome::Room(Box::new(self.public_view(room)))),
                RoomAction::Read => Ok(RoomOutcome::Allowed),
                _ if matches!(actor, Actor::Operator) => Err(RoomRefused::NotFound),
                _ => Err(RoomRefused::Forbidden),
            };
        };
        if meta.deleted {
            return Err(RoomRefused::NotFound);
        }
        if !meta.reads(actor) {
            return Err(RoomRefused::Forbidden);
        }
        let manages = meta.manages(actor);
        let mut changed = RoomMeta {
            name: meta.name.clone(),
            visibility: meta.visibility,
            owner: meta.owner.clone(),
            created_at: meta.created_at,
            members: meta.members.clone(),
            deleted: false,
        };
        // (user, now a member) to write to the per-user index, and whose subscriptions end.
        let mut listed: Option<(Arc<str>, bool)> = None;
        match action {
            // Answered by `create_room` above.
            RoomAction::Create { .. } => return Err(RoomRefused::Exists),
            RoomAction::Get => return Ok(RoomOutcome::Room(Box::new(self.view(room)))),
            RoomAction::Read => return Ok(RoomOutcome::Allowed),
            RoomAction::Update { name, visibility } => {
                if !manages {
                    return Err(RoomRefused::Forbidden);
                }
                if let Some(name) = name {
                    changed.name = name.as_str().into();
                }
                if let Some(v) = visibility {
                    if changed.members.len() > v.member_cap() {
                        return Err(RoomRefused::Full);
                    }
                    changed.visibility = *v;
                }
            }
            RoomAction::Delete => {
                if !manages {
                    return Err(RoomRefused::Forbidden);
                }
                changed.deleted = true;
            }
            RoomAction::SetMember { user, role } => {
                let user: Arc<str> = Arc::from(user.as_str());
                let current = changed.members.get(&user).copied();
                // In a group any member may add members; everything else is an admin's.
                let adds_to_group = changed.visibility == Visibility::Group
                    && current.is_none()
                    && *role == Role::Member;
                if !manages && !adds_to_group {
                    return Err(RoomRefused::Forbidden);
                }
                if user == changed.owner && *role != Role::Admin {
                    return Err(RoomRefused::OwnerStays);
                }
                if current == Some(*role) {
                    return Ok(RoomOutcome::Room(Box::new(self.view(room))));
                }
                if current.is_none() && changed.members.len() >= changed.visibility.member_cap() {
                    return Err(RoomRefused::Full);
                }
                changed.members.insert(user.clone(), *role);
                listed = current.is_none().then_some((user, true));
            }
            RoomAction::RemoveMember { user } => {
                let leaves = matches!(actor, Actor::User { id, .. } if id == user);
                if !manages && !leaves {
                    return Err(RoomRefused::Forbidden);
                }
                if *changed.owner == **user {
                    return Err(RoomRefused::OwnerStays);
                }
                let Some((user, _)) = changed.members.remove_entry(user.as_str()) else {
                    return Ok(RoomOutcome::Room(Box::new(self.view(room))));
                };
                listed = Some((user, false));
            }
        }
        if !self.store_room(room, &changed) {
            return Err(RoomRefused::Overloaded);
        }
        let deleted = changed.deleted;
        let dropped: Vec<Arc<str>> = if deleted {
            changed.members.keys().cloned().collect()
        } else {
            Vec::new()
        };
        if deleted {
            changed.members.clear();
        }
        self.directory.insert(room.clone(), changed);
        for user in &dropped {
            self.store_membership(room, user, false);
        }
        if let Some((user, member)) = &listed {
            self.store_membership(room, user, *member);
        }
        if deleted {
            self.forget_room(now, room);
            self.end_everywhere(now, room, None, UNSUBSCRIBED_ROOM_DELETED);
            return Ok(RoomOutcome::Deleted);
        }
        if let Some((user, false)) = listed {
            self.end_everywhere(now, room, Some(user), UNSUBSCRIBED_REMOVED);
        }
        Ok(RoomOutcome::Room(Box::new(self.view(room))))
    }

    fn create_room(
        &mut self,
        now: Now,
        room: &Arc<str>,
        actor: &Actor,
        name: &str,
        visibility: Visibility,
        members: &[String],
    ) -> Result<RoomOutcome, RoomRefused> {
        let Actor::User { id: owner, .. } = actor else {
            return Err(RoomRefused::Forbidden);
        };
        // A room already in use as a public one stays public: nobody may claim it.
        let in_use = self
            .owned
            .get(&**room)
            .is_some_and(|r| r.last_seq > 0 || r.connections > 0);
        if self.directory.rooms.contains_key(room) || in_use {
            return Err(RoomRefused::Exists);
        }
        if self.directory.rooms.len() >= MAX_DIRECTORY_ROOMS {
            return Err(RoomRefused::TooManyRooms);
        }
        let owner: Arc<str> = Arc::from(owner.as_str());
        let mut roster: HashMap<Arc<str>, Role> = HashMap::from([(owner.clone(), Role::Admin)]);
        for m in members {
            roster.entry(Arc::from(m.as_str())).or_insert(Role::Member);
        }
        if roster.len() > visibility.member_cap() {
            return Err(RoomRefused::Full);
        }
        let meta = RoomMeta {
            name: name.into(),
            visibility,
            owner,
            created_at: now.wall,
            members: roster,
            deleted: false,
        };
        if !self.store_room(room, &meta) {
            return Err(RoomRefused::Overloaded);
        }
        let listed: Vec<Arc<str>> = meta.members.keys().cloned().collect();
        self.directory.insert(room.clone(), meta);
        for user in &listed {
            self.store_membership(room, user, true);
        }
        self.counters.rooms_created += 1;
        Ok(RoomOutcome::Created(Box::new(self.view(room))))
    }

    /// Hands the room's record to the store; `false` if its queue is full. (Without a store
    /// the directory is the only copy.)
    fn store_room(&mut self, room: &str, meta: &RoomMeta) -> bool {
        let Some(sink) = self.persist.as_mut() else {
            return true;
        };
        sink.try_push_state(StateWrite::Room(Box::new(meta.record(room))))
            .is_ok()
    }

    /// The per-user index of the store (`GET /api/users/{id}/rooms` after a restart). A
    /// write lost to a full queue leaves the room out of that user's list until the next
    /// change of their membership; the room's own record, which decides access, is
    /// never lost that way (its change is refused instead).
    fn store_membership(&mut self, room: &Arc<str>, user: &Arc<str>, member: bool) {
        let Some(sink) = self.persist.as_mut() else {
            return;
        };
        let write = StateWrite::Membership {
            room_id: room.clone(),
            user_id: user.clone(),
            member,
        };
        if sink.try_push_state(write).is_err() {
            self.counters.state_dropped += 1;
        }
    }

    /// Ends the subscriptions to `room` (of `user`, or everyone's) on every worker.
    fn end_everywhere(
        &mut self,
        now: Now,
        room: &Arc<str>,
        user: Option<Arc<str>>,
        reason: &'static str,
    ) {
        for w in 0..self.cfg.workers {
            let msg = PeerMsg::End {
                room: room.clone(),
                user: user.clone(),
                reason,
            };
            self.dispatch(now, WorkerId(w), msg);
        }
    }

    fn view(&self, room: &Arc<str>) -> RoomView {
        let Some(meta) = self.directory.rooms.get(room) else {
            return self.public_view(room);
        };
        let mut members: Vec<(Arc<str>, Role)> =
            meta.members.iter().map(|(u, r)| (u.clone(), *r)).collect();
        members.sort_unstable();
        let (seq, epoch) = self.seq_and_epoch(room);
        RoomView {
            room_id: room.clone(),
            name: meta.name.clone(),
            visibility: meta.visibility,
            owner: Some(meta.owner.clone()),
            created_at: Some(meta.created_at),
            members,
            seq,
            epoch,
        }
    }

    fn public_view(&self, room: &Arc<str>) -> RoomView {
        let (seq, epoch) = self.seq_and_epoch(room);
        RoomView {
            room_id: room.clone(),
            name: room.as_ref().into(),
            visibility: Visibility::Public,
            owner: None,
            created_at: None,
            members: Vec::new(),
            seq,
            epoch,
        }
    }

    fn seq_and_epoch(&self, room: &str) -> (u64, Box<str>) {
        self.owned
            .get(room)
            .map_or((0, Box::from("")), |r| (r.last_seq, r.epoch.clone()))
    }

    /// At a worker: the API rooms it owns that `user` is a member of.
    pub(super) fn user_rooms(&self, user: &str) -> Part {
        let rooms = self.directory.by_user.get(user);
        Part::UserRooms(
            rooms
                .into_iter()
                .flatten()
                .filter_map(|room| self.user_room(user, room))
                .collect(),
        )
    }

    /// At the owner of `room`: `user`'s place in it, if they are a member.
    pub(super) fn user_room(&self, user: &str, room: &str) -> Option<UserRoom> {
        let (name, meta) = self.directory.rooms.get_key_value(room)?;
        let role = *meta.members.get(user)?;
        let (seq, last_read) = self.owned.get(room).map_or((0, 0), |r| {
            let read = r.signals.as_ref().map_or(0, |s| s.last_read(user));
            (r.last_seq, read)
        });
        Some(UserRoom {
            room_id: name.clone(),
            name: meta.name.clone(),
            visibility: meta.visibility,
            role,
            seq,
            last_read,
        })
    }

    /// At a connection's worker: the owner refused its subscription to `room` (number
    /// `token`); the subscription ends, a v2 connection hears why, a v1 connection closes.
    pub(super) fn on_refused(
        &mut self,
        now: Now,
        conn: ConnId,
        room: &str,
        token: u32,
        id: Option<u32>,
        code: ErrorCode,
    ) {
        let Some(c) = self.conn_mut(conn) else { return };
        if c.closing || !c.sub_mut(room).is_some_and(|s| s.token == token && !s.live) {
            return;
        }
        if !c.is_v2() {
            let reason = code.as_str();
            return self.close(conn, CLOSE_ROOM_REFUSED, reason);
        }
        let Some(sub) = c.take_sub(room) else { return };
        let member = c.member(&sub.room);
        self.leave(now, conn, member, sub, true, None);
        self.send_error_v2(conn, code, id, Some(room));
    }

    /// At a worker: ends its subscriptions to `room` (of `user`, or everyone's): a v2
    /// subscription with `unsubscribed` and `reason`, a v1 connection (whose room is its only
    /// one) closed with 4003 and `close_reason`; how many.
    pub(super) fn end_subscriptions(
        &mut self,
        now: Now,
        room: &str,
        user: Option<&str>,
        reason: &'static str,
        close_reason: &'static str,
    ) -> usize {
        let subscribed = |c: &Conn| {
            c.first.as_ref().is_some_and(|s| *s.room == *room)
                || c.v2
                    .as_ref()
                    .is_some_and(|v| v.more.iter().any(|s| *s.room == *room))
        };
        let affected = match user {
            Some(user) => self.conns_of(user, subscribed),
            None if self.local.contains_key(room) => self.conns_where(subscribed),
            None => Vec::new(),
        };
        for &conn in &affected {
            let Some(c) = self.conn_mut(conn) else {
                continue;
            };
            if !c.is_v2() {
                self.close(conn, server_api::CLOSE_UNSUBSCRIBED, close_reason);
                continue;
            }
            let Some(sub) = c.take_sub(room) else {
                continue;
            };
            let member = c.member(&sub.room);
            let answer = peer::Unsubscribe {
                conn,
                id: None,
                reason: Some(reason),
            };
            self.leave(now, conn, member, sub, true, Some(answer));
        }
        affected.len()
    }
}
