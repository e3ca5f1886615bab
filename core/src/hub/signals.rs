//! What a room's owner coalesces for its v2 subscribers and sends on a timer: presence
//! per user (one frame per room per `PRESENCE_INTERVAL_MS`, only the count above
//! `PRESENCE_MAX_MEMBERS`), the typing set (at most one frame per room per 250 ms,
//! entries expiring after 6 s) and read markers (per user at most one frame per 2 s).
//! A connect storm costs O(1) per connection here: a join is one map entry, and the
//! room's members get one frame per interval, whatever the number of joins.

use super::*;

/// A user types for this long after their last `typing`.
pub(crate) const TYPING_TTL: Duration = Duration::from_secs(6);
/// Typing frames of one room at most this often.
pub(crate) const TYPING_INTERVAL: Duration = Duration::from_millis(250);
/// A user's read marker in one room is broadcast at most this often.
pub(crate) const READ_INTERVAL: Duration = Duration::from_secs(2);
/// Above `PRESENCE_MAX_MEMBERS`, the online count at most this often.
pub(crate) const COUNT_INTERVAL: Duration = Duration::from_secs(1);

/// A room's coalesced state.
/// Keeps the typists a `typing` frame names: the first [`MAX_TYPING_LISTED`] by user id,
/// in that order (the same ones from frame to frame while they type), without sorting
/// the rest.
fn first_typists(users: &mut Vec<protocol::UserRef<'_>>) {
    use protocol::MAX_TYPING_LISTED;
    if users.len() > MAX_TYPING_LISTED {
        users.select_nth_unstable_by(MAX_TYPING_LISTED, |a, b| a.user_id.cmp(b.user_id));
        users.truncate(MAX_TYPING_LISTED);
    }
    users.sort_unstable_by(|a, b| a.user_id.cmp(b.user_id));
}

#[derive(Debug, Default)]
pub(crate) struct Signals {
    /// When the hub's timer heap holds this room's next look.
    timer: Option<Mono>,
    /// Users whose online state changed since the last presence frame: whether they were
    /// online at it, the name to announce, and when they left.
    changes: HashMap<Arc<str>, Change>,
    presence_due: Option<Mono>,
    /// Above the bound: the count changed since it was last sent.
    count_dirty: bool,
    /// The room was over the bound since subscribers last had a list (its joins and
    /// leaves went unrecorded): the next list frame carries the whole set.
    resync: bool,
    /// The lowest and highest count a `subscribed` said while a change was pending: the
    /// next look sends a frame if the interval ends at another, even if its changes
    /// cancel out.
    told: Option<(usize, usize)>,
    count_sent: usize,
    count_sent_at: Option<Mono>,
    typists: Vec<Typist>,
    typing_dirty: bool,
    typing_sent_at: Option<Mono>,
    reads: HashMap<Arc<str>, ReadMark>,
    reads_pending: bool,
}

#[derive(Debug)]
struct Change {
    was_online: bool,
    username: Arc<str>,
    left_at: UnixMillis,
}

#[derive(Debug)]
struct Typist {
    user: Arc<str>,
    username: Arc<str>,
    until: Mono,
}

#[derive(Debug, Default)]
struct ReadMark {
    seq: u64,
    sent: u64,
    sent_at: Option<Mono>,
}

impl Signals {
    /// `user`'s read marker in the room (0 if none).
    pub fn last_read(&self, user: &str) -> u64 {
        self.reads.get(user).map_or(0, |m| m.seq)
    }

    /// The typing set as a frame for one new subscriber, if anyone types.
    pub fn typing_now(&self, room: &str, scratch: &mut Vec<u8>) -> Option<Bytes> {
        if self.typists.is_empty() {
            return None;
        }
        let mut users: Vec<protocol::UserRef<'_>> = self
            .typists
            .iter()
            .map(|t| protocol::UserRef {
                user_id: &t.user,
                username: &t.username,
            })
            .collect();
        let count = users.len();
        first_typists(&mut users);
        scratch.clear();
        protocol::encode_typing(scratch, room, &users, count);
        Some(Bytes::copy_from_slice(scratch))
    }

    /// A read marker as the store kept it: known, not to be broadcast again.
    pub fn restore_read(&mut self, user: Arc<str>, seq: u64) {
        let mark = self.reads.entry(user).or_default();
        mark.seq = mark.seq.max(seq);
        mark.sent = mark.sent.max(seq);
    }
}

/// The users online in a room as of its last presence frame (`signals` is `None` if it
/// never had one pending), given those online now: what a new subscriber takes as the
/// set that the next frame's `joined` and `left` change.
pub(crate) fn announced<'a>(
    signals: Option<&'a Signals>,
    now_online: &'a HashMap<Arc<str>, RoomUser>,
) -> Vec<protocol::UserRef<'a>> {
    let pending = |user: &str| signals.and_then(|s| s.changes.get(user));
    let mut users: Vec<protocol::UserRef<'a>> = now_online
        .iter()
        .filter(|(user, _)| pending(user).is_none_or(|c| c.was_online))
        .map(|(user, u)| protocol::UserRef {
            user_id: user,
            username: &u.username,
        })
        .collect();
    if let Some(s) = signals {
        users.extend(
            s.changes
                .iter()
                .filter(|(user, c)| c.was_online && !now_online.contains_key(&***user))
                .map(|(user, c)| protocol::UserRef {
                    user_id: user,
                    username: &c.username,
                }),
        );
    }
    users.sort_unstable_by(|a, b| a.user_id.cmp(b.user_id));
    users
}

impl Signals {
    /// A subscriber was just told the room's count: if a change is pending, the next
    /// look makes sure it hears the count that change ends at.
    pub fn told_count(&mut self, online: usize) {
        if self.presence_due.is_some() {
            let (lo, hi) = self.told.get_or_insert((online, online));
            *lo = (*lo).min(online);
            *hi = (*hi).max(online);
        }
    }
}

impl Hub {
    /// Hands a state write to the store, if there is one. A full queue drops it (the
    /// store counts it); the next write of the same key carries the newer value.
    pub(super) fn store_state(&mut self, write: StateWrite) {
        if let Some(sink) = self.persist.as_mut() {
            let _ = sink.try_push_state(write);
        }
    }

    fn signals(&mut self, room: &str) -> Option<&mut Signals> {
        let r = self.owned.get_mut(room)?;
        Some(r.signals.get_or_insert_with(Default::default))
    }

    /// Has the room looked at no later than `at`.
    fn schedule(&mut self, room: &Arc<str>, at: Mono) {
        let Some(s) = self.signals(room) else { return };
        if s.timer.is_some_and(|t| t <= at) {
            return;
        }
        s.timer = Some(at);
        self.timers.push(Reverse((at, room.clone())));
    }

    /// A user came online in a room (`was_online` false) or went offline (true), as the
    /// owner counts them.
    pub(super) fn note_presence(&mut self, now: Now, member: &Member, was_online: bool) {
        if !self.cfg.presence {
            return;
        }
        let max = self.cfg.presence_max_members;
        let interval = self.cfg.presence_interval;
        let Some(r) = self.owned.get(&*member.room) else {
            return;
        };
        if r.v2_members() == 0 && r.signals.is_none() {
            return;
        }
        let online = r.users.len();
        let Some(s) = self.signals(&member.room) else {
            return;
        };
        let at = if online > max {
            s.count_dirty = true;
            s.resync = true;
            let earliest = s.count_sent_at.map_or(now.mono, |t| t + COUNT_INTERVAL);
            earliest.max(now.mono + interval)
        } else {
            let change = s.changes.entry(member.user.clone()).or_insert(Change {
                was_online,
                username: member.username.clone(),
                left_at: now.wall,
            });
            change.username = member.username.clone();
            change.left_at = now.wall;
            now.mono + interval
        };
        let due = *s.presence_due.get_or_insert(at);
        self.schedule(&member.room, due);
    }

    /// A v2 `typing` (or its `stop`) from a member of the room.
    pub(super) fn on_typing(&mut self, now: Now, member: Member, stop: bool) {
        let max = self.cfg.presence_max_members;
        let Some(r) = self.owned.get(&*member.room) else {
            return;
        };
        // Typing is presence: off with it, and none in rooms over the bound.
        if !self.cfg.presence || r.users.len() > max || !r.users.contains_key(&*member.user) {
            return;
        }
        let Some(s) = self.signals(&member.room) else {
            return;
        };
        let at = s.typists.iter().position(|t| t.user == member.user);
        match (at, stop) {
            (Some(i), true) => {
                s.typists.swap_remove(i);
                s.typing_dirty = true;
            }
            (None, true) => return,
            (Some(i), false) => {
                s.typists[i].until = now.mono + TYPING_TTL;
                s.typists[i].username = member.username.clone();
            }
            (None, false) => {
                s.typists.push(Typist {
                    user: member.user.clone(),
                    username: member.username.clone(),
                    until: now.mono + TYPING_TTL,
                });
                s.typing_dirty = true;
            }
        }
        let due = match (s.typing_dirty, s.typing_sent_at) {
            (true, Some(sent)) => (sent + TYPING_INTERVAL).max(now.mono),
            (true, None) => now.mono,
            (false, _) => now.mono + TYPING_TTL,
        };
        self.schedule(&member.room, due);
        if due <= now.mono {
            self.look_at(now, &member.room);
        }
    }

    /// A member sent a chat message, or their last connection left: they are no longer
    /// typing.
    pub(super) fn stopped_typing(&mut self, now: Now, member: &Member) {
        let Some(s) = self
            .owned
            .get_mut(&*member.room)
            .and_then(|r| r.signals.as_deref_mut())
        else {
            return;
        };
        let Some(i) = s.typists.iter().position(|t| t.user == member.user) else {
            return;
        };
        s.typists.swap_remove(i);
        s.typing_dirty = true;
        let due = s
            .typing_sent_at
            .map_or(now.mono, |sent| (sent + TYPING_INTERVAL).max(now.mono));
        self.schedule(&member.room, due);
        if due <= now.mono {
            self.look_at(now, &member.room);
        }
    }

    /// A v2 `read` from a member: forward only, clamped to the room's `seq`.
    pub(super) fn on_read(&mut self, now: Now, member: Member, seq: u64) {
        let Some(r) = self.owned.get(&*member.room) else {
            return;
        };
        let seq = seq.min(r.last_seq);
        let Some(s) = self.signals(&member.room) else {
            return;
        };
        let mark = s.reads.entry(member.user.clone()).or_default();
        if seq <= mark.seq {
            return;
        }
        mark.seq = seq;
        let due = mark.sent_at.map_or(now.mono, |t| t + READ_INTERVAL);
        s.reads_pending = true;
        self.schedule(&member.room, due.max(now.mono));
        if due <= now.mono {
            self.look_at(now, &member.room);
        }
    }

    /// Looks at every room whose time has come.
    pub(super) fn run_signal_timers(&mut self, now: Now) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now.mono {
                break;
            }
            let Some(Reverse((at, room))) = self.timers.pop() else {
                break;
            };
            let current = self
                .owned
                .get(&*room)
                .and_then(|r| r.signals.as_ref())
                .is_some_and(|s| s.timer == Some(at));
            if current {
                self.look_at(now, &room);
            }
        }
    }

    /// Sends what is due in `room`, expires typing, and schedules the next look.
    fn look_at(&mut self, now: Now, room: &Arc<str>) {
        let max = self.cfg.presence_max_members;
        let Some(r) = self.owned.get_mut(&**room) else {
            return;
        };
        let online = r.users.len();
        let Some(s) = r.signals.as_deref_mut() else {
            return;
        };
        s.timer = None;
        let mut frames: Vec<Bytes> = Vec::new();
        let scratch = &mut self.scratch;
        // Presence.
        if s.presence_due.is_some_and(|t| t <= now.mono) {
            s.presence_due = None;
            let changes = std::mem::take(&mut s.changes);
            let told_otherwise = s.told.take().is_some_and(|told| told != (online, online));
            if online <= max {
                let resync = std::mem::take(&mut s.resync);
                let mut joined = Vec::new();
                let mut left = Vec::new();
                let mut stamps = Vec::new();
                for (user, c) in &changes {
                    let now_online = r.users.contains_key(&**user);
                    if now_online && !c.was_online {
                        let username = r.users.get(&**user).map_or(&c.username, |u| &u.username);
                        joined.push(protocol::UserRef {
                            user_id: user,
                            username,
                        });
                    } else if !now_online && c.was_online {
                        stamps.push((user, c.left_at.to_rfc3339()));
                    }
                }
                for (user, stamp) in &stamps {
                    left.push(protocol::LeftRef {
                        user_id: user,
                        last_seen: stamp.as_str(),
                    });
                }
                if resync || told_otherwise || !joined.is_empty() || !left.is_empty() {
                    joined.sort_unstable_by(|a, b| a.user_id.cmp(b.user_id));
                    left.sort_unstable_by(|a, b| a.user_id.cmp(b.user_id));
                    let everyone = (resync && online <= MAX_PRESENCE_USERS).then(|| {
                        let mut all: Vec<protocol::UserRef<'_>> = r
                            .users
                            .iter()
                            .map(|(user, u)| protocol::UserRef {
                                user_id: user,
                                username: &u.username,
                            })
                            .collect();
                        all.sort_unstable_by(|a, b| a.user_id.cmp(b.user_id));
                        all
                    });
                    let lists = protocol::PresenceLists {
                        joined: &joined,
                        left: &left,
                        users: everyone.as_deref(),
                    };
                    scratch.clear();
                    protocol::encode_presence_v2(scratch, room, online, Some(lists));
                    frames.push(Bytes::copy_from_slice(scratch));
                    s.count_sent = online;
                }
            } else if s.count_dirty && (online != s.count_sent || told_otherwise) {
                scratch.clear();
                protocol::encode_presence_v2(scratch, room, online, None);
                frames.push(Bytes::copy_from_slice(scratch));
                s.count_sent = online;
                s.count_sent_at = Some(now.mono);
            }
            s.count_dirty = false;
        }
        // Typing.
        let before = s.typists.len();
        s.typists.retain(|t| t.until > now.mono);
        s.typing_dirty |= s.typists.len() != before;
        let typing_due = s.typing_sent_at.map_or(now.mono, |t| t + TYPING_INTERVAL);
        if s.typing_dirty && typing_due <= now.mono {
            s.typing_dirty = false;
            s.typing_sent_at = Some(now.mono);
            let mut users: Vec<protocol::UserRef<'_>> = s
                .typists
                .iter()
                .map(|t| protocol::UserRef {
                    user_id: &t.user,
                    username: &t.username,
                })
                .collect();
            let count = users.len();
            first_typists(&mut users);
            scratch.clear();
            protocol::encode_typing(scratch, room, &users, count);
            frames.push(Bytes::copy_from_slice(scratch));
        }
        // Read markers.
        let mut next_read: Option<Mono> = None;
        // Kept as they go out: at most one write per user and room per READ_INTERVAL.
        let mut stored: Vec<(Arc<str>, u64)> = Vec::new();
        if s.reads_pending {
            s.reads_pending = false;
            for (user, mark) in s.reads.iter_mut().filter(|(_, m)| m.seq > m.sent) {
                let due = mark.sent_at.map_or(now.mono, |t| t + READ_INTERVAL);
                if due <= now.mono {
                    mark.sent = mark.seq;
                    mark.sent_at = Some(now.mono);
                    scratch.clear();
                    protocol::encode_read(scratch, room, user, mark.seq);
                    frames.push(Bytes::copy_from_slice(scratch));
                    stored.push((user.clone(), mark.seq));
                } else {
                    s.reads_pending = true;
                    next_read = Some(next_read.map_or(due, |n: Mono| n.min(due)));
                }
            }
        }
        // The next look: whichever comes first.
        let typing_next = if s.typing_dirty {
            Some(typing_due.max(now.mono))
        } else {
            s.typists.iter().map(|t| t.until).min()
        };
        let next = [s.presence_due, typing_next, next_read]
            .into_iter()
            .flatten()
            .min();
        for frame in frames {
            self.fan_out(room, frame, None, Audience::V2);
        }
        for (user_id, seq) in stored {
            self.store_state(StateWrite::ReadMarker {
                room_id: room.clone(),
                user_id,
                seq,
            });
        }
        if let Some(at) = next {
            self.schedule(room, at);
        }
    }
}
