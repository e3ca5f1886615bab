//! HTTP queries answered by the hubs together: scatter an `Ask` to the workers that hold
//! the data, gather their parts, render one body.

use std::sync::Arc;

use bytes::Bytes;

use super::output::{
    Answer, MessageList, MessagesOf, Output, PresentUser, Query, QueryId, RoomPresence, UserStatus,
    MAX_PRESENCE_USERS,
};
use super::peer::{Ask, GatherId, Part, PeerMsg};
use super::{server_api, Hub};
use crate::analytics::{
    Globals, RoomActivity, Snapshot, StatsPart, UserDetail, MAX_USER_DETAILS, TOP_ROOMS,
};
use crate::route::{owner_of, WorkerId};
use crate::time::Now;

#[derive(Debug)]
pub(crate) struct Gather {
    id: QueryId,
    ask: Ask,
    waiting: usize,
    parts: Vec<Part>,
}

impl Hub {
    /// Starts answering an HTTP query; its [`Output::Reply`] follows once every worker
    /// that holds part of the answer has replied.
    pub fn handle_query(&mut self, now: Now, id: QueryId, query: Query) {
        let all: Vec<WorkerId> = (0..self.cfg.workers).map(WorkerId).collect();
        let (ask, targets) = match query {
            Query::Room(mut req) => {
                if req.room.is_empty() {
                    req.room = format!("r-{:016x}", self.rng.next_u64());
                }
                let owner = owner_of(&req.room, self.cfg.workers);
                (Ask::Room(Arc::new(req)), vec![owner])
            }
            Query::UserRooms { user, rooms: None } => (
                Ask::UserRooms {
                    user: Arc::from(user),
                },
                all,
            ),
            Query::UserRooms {
                user,
                rooms: Some(rooms),
            } => {
                // One ask per room, each to its owner.
                let user: Arc<str> = Arc::from(user);
                let asks = rooms
                    .into_iter()
                    .map(|room| {
                        let to = owner_of(&room, self.cfg.workers);
                        let ask = Ask::UserRoom {
                            user: user.clone(),
                            room: Arc::from(room),
                        };
                        (to, ask)
                    })
                    .collect();
                return self.scatter(now, id, Ask::UserRooms { user }, asks);
            }
            Query::Stats => (Ask::Stats, all),
            Query::Rooms => (Ask::Rooms, all),
            Query::RoomMessages {
                room,
                limit,
                cursor,
            } => {
                let owner = owner_of(&room, self.cfg.workers);
                (
                    Ask::RoomMessages {
                        room: Arc::from(room),
                        limit,
                        cursor,
                    },
                    vec![owner],
                )
            }
            Query::RoomPresence { room } => {
                let owner = owner_of(&room, self.cfg.workers);
                (
                    Ask::RoomPresence {
                        room: Arc::from(room),
                    },
                    vec![owner],
                )
            }
            Query::UsersPresence { users } => (
                Ask::UsersPresence {
                    users: users.into_iter().map(Arc::from).collect(),
                },
                all,
            ),
            Query::UserMessages { user, limit } => (
                Ask::UserMessages {
                    user: Arc::from(user),
                    limit,
                },
                all,
            ),
            Query::Publish(p) => {
                let owner = owner_of(&p.room_id, self.cfg.workers);
                (Ask::Publish(Arc::new(p)), vec![owner])
            }
            Query::Disconnect(d) => (
                Ask::Disconnect {
                    user: Arc::from(d.user_id),
                },
                all,
            ),
            Query::Unsubscribe(u) => (
                Ask::Unsubscribe {
                    user: Arc::from(u.user_id),
                    room: Arc::from(u.room_id),
                },
                all,
            ),
        };
        let asks = targets.into_iter().map(|to| (to, ask.clone())).collect();
        self.scatter(now, id, ask, asks);
    }

    /// Sends each ask to its worker; the parts gather under `ask`'s kind.
    fn scatter(&mut self, now: Now, id: QueryId, ask: Ask, asks: Vec<(WorkerId, Ask)>) {
        let gather = self.next_gather;
        self.next_gather += 1;
        if asks.is_empty() {
            self.gathers.insert(
                gather,
                Gather {
                    id,
                    ask,
                    waiting: 1,
                    parts: Vec::new(),
                },
            );
            return self.on_part(now, gather, Part::UserRooms(Vec::new()));
        }
        self.gathers.insert(
            gather,
            Gather {
                id,
                ask,
                waiting: asks.len(),
                parts: Vec::new(),
            },
        );
        let from = self.cfg.worker;
        for (to, ask) in asks {
            self.dispatch(now, to, PeerMsg::Ask { from, gather, ask });
        }
    }

    /// This hub's part of an answer.
    pub(super) fn answer(&mut self, now: Now, ask: Ask) -> Part {
        match ask {
            Ask::Stats => Part::Stats(Box::new(self.stats_part(now))),
            Ask::Rooms => Part::Rooms(
                self.owned
                    .iter()
                    .filter(|(_, r)| r.connections > 0)
                    .map(|(name, r)| activity(name, r, self.directory.is_listed(name)))
                    .collect(),
            ),
            Ask::RoomMessages {
                room,
                limit,
                cursor,
            } => Part::RoomPage(
                self.owned
                    .get(&*room)
                    .map(|r| {
                        r.page(cursor, limit)
                            .map(|e| (e.seq, e.frame.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            Ask::UserMessages { user, limit } => {
                Part::Messages(self.user_index.newest(&user, limit))
            }
            Ask::RoomPresence { room } => Part::Presence(self.room_presence(room)),
            Ask::Publish(p) => self.publish(now, &p),
            Ask::Disconnect { user } => self.disconnect_user(&user),
            Ask::Unsubscribe { user, room } => self.unsubscribe_user(now, &user, &room),
            Ask::Room(req) => self.room_request(now, &req),
            Ask::UserRooms { user } => self.user_rooms(&user),
            Ask::UserRoom { user, room } => {
                Part::UserRooms(self.user_room(&user, &room).into_iter().collect())
            }
            Ask::UsersPresence { users } => Part::UsersPresence(
                users
                    .iter()
                    .map(|u| {
                        let online = self.users.contains_key(&**u);
                        UserStatus {
                            user_id: u.clone(),
                            online,
                            last_seen: self.last_seen.get(u).filter(|_| !online),
                        }
                    })
                    .collect(),
            ),
        }
    }

    /// Who is connected to `room`, which this hub owns.
    fn room_presence(&self, room: Arc<str>) -> RoomPresence {
        let Some(r) = self.owned.get(&*room) else {
            return RoomPresence::nobody(room);
        };
        let mut users: Vec<PresentUser> = r
            .users
            .iter()
            .map(|(id, u)| PresentUser {
                user_id: id.clone(),
                username: u.username.clone(),
                since: u.since,
            })
            .collect();
        users.sort_unstable_by(|a, b| a.user_id.cmp(&b.user_id));
        let online = users.len();
        users.truncate(MAX_PRESENCE_USERS);
        RoomPresence {
            room_id: room,
            online,
            truncated: online > users.len(),
            users,
        }
    }

    pub(super) fn stats_part(&mut self, now: Now) -> StatsPart {
        let mut details = Vec::new();
        for c in self
            .slots
            .iter()
            .filter_map(|s| s.conn.as_ref())
            .take(MAX_USER_DETAILS + 1)
        {
            details.push(UserDetail {
                client_id: c.client_id.to_string(),
                user_id: c.user.to_string(),
                username: c.username.to_string(),
                room_id: c
                    .first
                    .as_ref()
                    .map_or(String::new(), |s| s.room.to_string()),
                joined_at: c.joined_at.to_rfc3339().to_string(),
            });
        }
        let mut rooms: Vec<(&Arc<str>, &super::rooms::OwnedRoom)> = self.owned.iter().collect();
        let active_rooms = rooms.iter().filter(|(_, r)| r.connections > 0).count() as u64;
        rooms.sort_by(|a, b| b.1.messages.cmp(&a.1.messages).then_with(|| a.0.cmp(b.0)));
        let rooms = rooms
            .into_iter()
            .take(TOP_ROOMS)
            .map(|(n, r)| activity(n, r, self.directory.is_listed(n)))
            .collect();
        StatsPart {
            worker: self.cfg.worker,
            counters: self.counters,
            minutes: self.minutes.window(now.wall),
            latency: self.latency.merged(now.wall),
            connections: self.open as u64,
            users: self.users.keys().cloned().collect(),
            details,
            rooms,
            active_rooms,
            history_bytes: (self.retention.bytes() + self.user_index.bytes()) as u64,
        }
    }

    pub(super) fn on_part(&mut self, now: Now, gather: GatherId, part: Part) {
        let Some(g) = self.gathers.get_mut(&gather) else {
            return;
        };
        g.parts.push(part);
        g.waiting -= 1;
        if g.waiting > 0 {
            return;
        }
        let Some(g) = self.gathers.remove(&gather) else {
            return;
        };
        let answer = match g.ask {
            Ask::Room(_) => {
                // A room has one owner, which always answers.
                let room = g.parts.into_iter().find_map(|p| match p {
                    Part::Room(r) => Some(r),
                    _ => None,
                });
                Answer::Room(room.unwrap_or(Err(crate::RoomRefused::NotFound)))
            }
            Ask::UserRooms { .. } | Ask::UserRoom { .. } => {
                let mut rooms: Vec<crate::UserRoom> = g
                    .parts
                    .into_iter()
                    .flat_map(|p| match p {
                        Part::UserRooms(r) => r,
                        _ => Vec::new(),
                    })
                    .collect();
                rooms.sort_by(|a, b| a.room_id.cmp(&b.room_id));
                rooms.dedup_by(|a, b| a.room_id == b.room_id);
                Answer::UserRooms(rooms)
            }
            Ask::Publish(_) => server_api::merge_published(g.parts),
            Ask::Disconnect { .. } | Ask::Unsubscribe { .. } => {
                server_api::merge_affected(&g.parts)
            }
            Ask::Stats => {
                let parts = g
                    .parts
                    .into_iter()
                    .filter_map(|p| match p {
                        Part::Stats(s) => Some(*s),
                        _ => None,
                    })
                    .collect();
                let globals = Globals {
                    now: now.wall,
                    start: self.cfg.started_at,
                    connections: self.gauge.current() as u64,
                    peak: self.gauge.peak() as u64,
                };
                Answer::Stats(Box::new(Snapshot::merge(parts, globals)))
            }
            Ask::Rooms => {
                let mut rooms: Vec<RoomActivity> = g
                    .parts
                    .into_iter()
                    .flat_map(|p| match p {
                        Part::Rooms(r) => r,
                        _ => Vec::new(),
                    })
                    .collect();
                rooms.sort_by(|a, b| a.room_id.cmp(&b.room_id));
                Answer::Rooms(rooms)
            }
            Ask::RoomMessages {
                room,
                limit,
                cursor,
            } => {
                // A room has one owner: one part holds the page, in seq order.
                let page: Vec<(u64, Bytes)> = g
                    .parts
                    .into_iter()
                    .flat_map(|p| match p {
                        Part::RoomPage(m) => m,
                        _ => Vec::new(),
                    })
                    .take(limit)
                    .collect();
                let seqs = page.first().zip(page.last()).map(|(a, b)| (a.0, b.0));
                let next = Some(cursor.next(limit, seqs, page.len()));
                Answer::Messages(MessageList {
                    of: MessagesOf::Room,
                    frames: page.into_iter().map(|(_, f)| f).collect(),
                    id: room,
                    next,
                })
            }
            Ask::RoomPresence { room } => {
                let presence = g.parts.into_iter().find_map(|p| match p {
                    Part::Presence(p) => Some(p),
                    _ => None,
                });
                Answer::Presence(presence.unwrap_or_else(|| RoomPresence::nobody(room)))
            }
            Ask::UsersPresence { users } => {
                let mut merged: Vec<UserStatus> = users
                    .iter()
                    .map(|u| UserStatus {
                        user_id: u.clone(),
                        online: false,
                        last_seen: None,
                    })
                    .collect();
                for part in g.parts {
                    let Part::UsersPresence(statuses) = part else {
                        continue;
                    };
                    for (m, s) in merged.iter_mut().zip(statuses) {
                        m.online |= s.online;
                        m.last_seen = m.last_seen.max(s.last_seen);
                    }
                }
                for m in &mut merged {
                    if m.online {
                        m.last_seen = None;
                    }
                }
                Answer::UsersPresence(merged)
            }
            Ask::UserMessages { user, limit } => Answer::Messages(MessageList {
                of: MessagesOf::User,
                frames: merge_newest(g.parts, limit),
                id: user,
                next: None,
            }),
        };
        self.out.push_back(Output::Reply { id: g.id, answer });
    }
}

fn activity(name: &Arc<str>, r: &super::rooms::OwnedRoom, listed: bool) -> RoomActivity {
    RoomActivity {
        room_id: name.to_string(),
        connections: u64::from(r.connections),
        users: r.users.len() as u64,
        messages: r.messages,
        listed,
    }
}

/// The newest `limit` messages of all parts, oldest first (stable for equal times).
fn merge_newest(parts: Vec<Part>, limit: usize) -> Vec<Bytes> {
    let mut all: Vec<_> = parts
        .into_iter()
        .flat_map(|p| match p {
            Part::Messages(m) => m,
            _ => Vec::new(),
        })
        .collect();
    all.sort_by_key(|(at, _)| *at);
    let skip = all.len().saturating_sub(limit);
    all.into_iter().skip(skip).map(|(_, f)| f).collect()
}
