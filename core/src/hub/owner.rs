//! The room-owner side of a hub: joins, leaves and messages of the rooms it owns —
//! sequencing, history within its byte budget, presence, fan-out. (Loading a durable
//! room's state first is `durable`.)

use super::*;

impl Hub {
    pub(super) fn owned_room(&mut self, room: &Arc<str>) -> &mut OwnedRoom {
        let workers = self.cfg.workers as usize;
        let next_id = &mut self.next_room_id;
        let rng = &mut self.rng;
        self.owned.entry(room.clone()).or_insert_with(|| {
            *next_id += 1;
            OwnedRoom::new(*next_id - 1, workers, rooms::random_epoch(rng))
        })
    }

    /// Keeps `entry` in `room`'s history (which must exist), within both the room's
    /// count and the hub's byte budget.
    pub(super) fn retain(&mut self, room: &Arc<str>, entry: Entry) {
        let history = self.cfg.history_size;
        if history == 0 {
            return;
        }
        let Some(r) = self.owned.get_mut(&**room) else {
            return;
        };
        let retained = Retained {
            key: room.clone(),
            incarnation: r.id,
            seq: entry.seq,
            cost: entry.cost(),
        };
        if let Some(dropped) = r.append(entry, history) {
            self.retention.released(dropped.cost());
        }
        self.retention.retained(retained);
        let owned = &mut self.owned;
        self.retention.trim(|oldest, release| {
            let Some(r) = owned.get_mut(&*oldest.key) else {
                return;
            };
            if r.id != oldest.incarnation {
                return;
            }
            // Entries before the room's oldest retained message are stale; the first live
            // one is that message.
            while r.history.front().is_some_and(|e| e.seq <= oldest.seq) {
                if let Some(e) = r.history.pop_front() {
                    release(e.cost());
                }
            }
            // A ring the budget has thinned gives back its room (an idle room may keep
            // it for a long time).
            let len = r.history.len();
            if r.history.capacity() > 2 * len + 16 {
                r.history.shrink_to(len);
            }
        });
        let owned = &self.owned;
        self.retention.compact(|e| {
            owned.get(&*e.key).is_some_and(|r| {
                r.id == e.incarnation && r.history.front().is_some_and(|f| f.seq <= e.seq)
            })
        });
    }

    /// Forgets an owned room and the history it retained.
    pub(super) fn forget_room(&mut self, now: Now, room: &str) {
        if let Some((name, r)) = self.owned.remove_entry(room) {
            for e in &r.history {
                self.retention.released(e.cost());
            }
            self.unwatch(now, &name);
        }
    }

    pub(super) fn on_join(
        &mut self,
        now: Now,
        from: WorkerId,
        conn: ConnId,
        member: Member,
        since: Option<u64>,
        v2: Option<peer::JoinV2>,
    ) {
        let backlog = self.cfg.backlog_size;
        let presence_max = self.cfg.presence_max_members;
        self.owned_room(&member.room);
        let Some(room) = self.owned.get_mut(&*member.room) else {
            return;
        };
        let was_idle = std::mem::take(&mut room.idle_mark) != 0;
        if let Some(n) = room.per_worker.get_mut(from.index()) {
            n[usize::from(v2.is_some())] += 1;
        }
        let granted = v2.as_ref().is_some_and(|j| j.granted);
        if let Some(code) = self
            .directory
            .join_refusal(&member.room, &member.user, granted)
        {
            // Counted as a connection (its leave follows, from the connection's worker or
            // on its close) but not as a user: nobody hears of it.
            room.connections += 1;
            if was_idle {
                self.idle_count -= 1;
            }
            self.counters.joins_refused += 1;
            let (token, id) = v2.map_or((0, None), |j| (j.token, j.id));
            let refused = PeerMsg::Refused {
                conn,
                room: member.room,
                token,
                id,
                code,
            };
            return self.dispatch(now, from, refused);
        }
        let user = room
            .users
            .entry(member.user.clone())
            .or_insert_with(|| RoomUser {
                connections: 0,
                username: member.username.clone(),
                since: now.wall,
            });
        user.connections += 1;
        let came_online = user.connections == 1;
        room.connections += 1;
        // Presence only while the room is small enough for it: every join goes to every
        // member, so above the bound a connect storm would cost O(members) per connection.
        let announce = room.users.len() <= presence_max;
        if came_online {
            // Before the newcomer's `subscribed`, whose list is the set this change is
            // pending against.
            self.note_presence(now, &member, false);
        }
        let Some(room) = self.owned.get_mut(&*member.room) else {
            return;
        };
        let mut frames = Vec::new();
        let token = match &v2 {
            None => {
                match since {
                    Some(since) => frames.extend(room.after(since).map(|e| e.frame.clone())),
                    None => frames.extend(room.newest(backlog).map(|e| e.frame.clone())),
                }
                0
            }
            Some(join) => {
                // Exactly what was missed, or the backlog and a word that it is not.
                let replay = match (since, &join.epoch) {
                    (Some(since), Some(epoch)) if *room.epoch == **epoch && room.covers(since) => {
                        Some(room.after(since).map(|e| e.frame.clone()).collect())
                    }
                    _ => None,
                };
                let token = join.token;
                if replay.is_none() && self.ask_store(from, conn, &member, since, join) {
                    // The subscription is answered when the store is.
                    if was_idle {
                        self.idle_count -= 1;
                    }
                    self.announce(now, PresenceKind::Join, &member, announce);
                    return;
                }
                frames = self.subscribe_answer(&member, join.id, replay);
                token
            }
        };
        if was_idle {
            self.idle_count -= 1;
        }
        let room_name = member.room.clone();
        self.dispatch(
            now,
            from,
            PeerMsg::Backlog {
                conn,
                room: room_name,
                frames,
                token,
            },
        );
        self.announce(now, PresenceKind::Join, &member, announce);
    }

    /// A v2 subscriber's first frames: `subscribed`, then `replay` (exactly what it
    /// missed) or the backlog, then who is typing.
    pub(super) fn subscribe_answer(
        &mut self,
        member: &Member,
        id: Option<u32>,
        replay: Option<Vec<Bytes>>,
    ) -> Vec<Bytes> {
        let backlog = self.cfg.backlog_size;
        let presence = self.cfg.presence;
        let presence_max = self.cfg.presence_max_members;
        let Some(room) = self.owned.get_mut(&*member.room) else {
            return Vec::new();
        };
        let last_read = room
            .signals
            .as_ref()
            .map_or(0, |s| s.last_read(&member.user));
        let online = room.users.len();
        if let Some(s) = room.signals.as_deref_mut() {
            s.told_count(online);
        }
        // Bounded like the presence endpoint's list: a frame of every member of a huge
        // room (PRESENCE_MAX_MEMBERS goes to a million) would be a slow consumer's end.
        let users = (presence && online <= presence_max.min(MAX_PRESENCE_USERS))
            .then(|| signals::announced(room.signals.as_deref(), &room.users));
        self.scratch.clear();
        protocol::encode_subscribed(
            &mut self.scratch,
            &protocol::Subscribed {
                id,
                room_id: &member.room,
                epoch: &room.epoch,
                seq: room.last_seq,
                recovered: replay.is_some(),
                last_read,
                online,
                users: users.as_deref(),
            },
        );
        let mut frames = vec![Bytes::copy_from_slice(&self.scratch)];
        match replay {
            Some(replay) => frames.extend(replay),
            None => frames.extend(room.newest(backlog).map(|e| e.frame.clone())),
        }
        // Who is typing already: a newcomer would otherwise hear of it only at the next
        // change.
        if let Some(typing) = room
            .signals
            .as_ref()
            .and_then(|s| s.typing_now(&member.room, &mut self.scratch))
        {
            frames.push(typing);
        }
        frames
    }

    pub(super) fn on_leave(
        &mut self,
        now: Now,
        from: WorkerId,
        member: Member,
        v2: bool,
        unsubscribe: Option<peer::Unsubscribe>,
    ) {
        if let Some(peer::Unsubscribe { conn, id, reason }) = unsubscribe {
            // Behind every ack of the room's chat messages the connection sent before.
            self.scratch.clear();
            protocol::encode_unsubscribed(&mut self.scratch, id, &member.room, reason);
            let frame = Bytes::copy_from_slice(&self.scratch);
            self.dispatch(
                now,
                from,
                PeerMsg::Direct {
                    conn,
                    room: None,
                    frame,
                },
            );
        }
        let Some(room) = self.owned.get_mut(&*member.room) else {
            return;
        };
        if let Some(n) = room.per_worker.get_mut(from.index()) {
            let n = &mut n[usize::from(v2)];
            *n = n.saturating_sub(1);
        }
        // A refused subscription's leave: it was never a user of the room.
        let refused = !room.users.contains_key(&*member.user);
        // Counted with the user who leaves, as their join was.
        let announce = room.users.len() <= self.cfg.presence_max_members;
        let mut went_offline = false;
        if let Some(u) = room.users.get_mut(&*member.user) {
            u.connections -= 1;
            if u.connections == 0 {
                room.users.remove(&*member.user);
                went_offline = true;
            }
        }
        room.connections = room.connections.saturating_sub(1);
        if room.connections == 0 {
            let mark = self.next_idle_mark;
            self.next_idle_mark += 1;
            room.idle_mark = mark;
            self.idle.push_back((member.room.clone(), mark));
            self.idle_count += 1;
            self.evict_idle_rooms(now);
        }
        if !refused {
            self.announce(now, PresenceKind::Leave, &member, announce);
        }
        if went_offline {
            self.note_presence(now, &member, true);
            // Gone is not typing.
            self.stopped_typing(now, &member);
        }
    }

    /// Forgets the longest-idle rooms beyond `max_idle_rooms`.
    pub(super) fn evict_idle_rooms(&mut self, now: Now) {
        while self.idle_count > self.cfg.max_idle_rooms {
            let Some((name, mark)) = self.idle.pop_front() else {
                break;
            };
            if self.owned.get(&*name).is_some_and(|r| r.idle_mark == mark) {
                self.forget_room(now, &name);
                self.idle_count -= 1;
            }
        }
        // Entries of rooms that became active again are skipped above and dropped from
        // the front as they surface; one that churns (a single occupant coming and going)
        // leaves them behind live ones, so they are swept out once they outnumber the
        // idle rooms: the queue stays proportional to the idle rooms.
        while let Some((name, mark)) = self.idle.front() {
            if self
                .owned
                .get(&**name)
                .is_some_and(|r| r.idle_mark == *mark)
            {
                break;
            }
            self.idle.pop_front();
        }
        if self.idle.len() > 2 * self.idle_count + 64 {
            let owned = &self.owned;
            self.idle
                .retain(|(name, mark)| owned.get(&**name).is_some_and(|r| r.idle_mark == *mark));
        }
    }

    /// Broadcasts a join or leave if its room is within the bound, else counts it.
    fn announce(&mut self, now: Now, kind: PresenceKind, member: &Member, within_bound: bool) {
        if !self.cfg.presence {
            return;
        }
        if within_bound {
            self.presence(now, kind, member);
        } else {
            self.counters.presence_withheld += 1;
        }
    }

    /// Encodes and fans out a join or leave frame.
    fn presence(&mut self, now: Now, kind: PresenceKind, member: &Member) {
        self.scratch.clear();
        let ts = now.wall.to_rfc3339();
        protocol::encode_presence(
            &mut self.scratch,
            kind,
            &member.room,
            &member.user,
            &member.username,
            ts.as_str(),
        );
        let frame = Bytes::copy_from_slice(&self.scratch);
        self.fan_out(&member.room, frame, None, Audience::V1);
    }

    pub(super) fn on_submit(&mut self, now: Now, submit: peer::Submit) {
        let peer::Submit {
            from,
            conn,
            member,
            content,
            received,
            mut v2,
        } = submit;
        // A subscription on its way may send before the owner refuses it: what it sends
        // is refused here too (a token's claim, accepted as a user of the room, passes).
        if let Some(code) = self
            .directory
            .join_refusal(&member.room, &member.user, false)
        {
            let accepted = code == ErrorCode::Forbidden
                && self
                    .owned
                    .get(&*member.room)
                    .is_some_and(|r| r.users.contains_key(&*member.user));
            if !accepted {
                self.counters.rejected += 1;
                let id = v2.as_ref().and_then(|v| v.id);
                return self.refuse_submit(now, from, conn, &member.room, v2.is_some(), id, code);
            }
        }
        let room_id = self.owned_room(&member.room).id;
        let resend = v2.as_ref().and_then(|v| {
            let cmid = v.client_msg_id.clone()?;
            Some((member.room.clone(), member.user.clone(), cmid))
        });
        if let Some(key) = &resend {
            if let Some(first) = self
                .sends
                .get(key, now.mono)
                .filter(|a| a.room_id == room_id)
            {
                self.counters.duplicates += 1;
                let id = v2.as_ref().and_then(|v| v.id);
                return self.ack(now, from, conn, &member.room, id, &key.2, first, true);
            }
        }
        if self.cfg.broker {
            let submit = peer::Submit {
                from,
                conn,
                member,
                content,
                received,
                v2,
            };
            return self.sequence_submit(now, submit);
        }
        let attachments = v2
            .as_mut()
            .map(|v| std::mem::take(&mut v.attachments))
            .unwrap_or_default();
        let accepted = match self.accept_message(
            now,
            &member,
            content,
            attachments,
            protocol::MessageKind::Chat,
            Some(received),
        ) {
            Ok((accepted, _)) => accepted,
            Err(refused) => {
                let id = v2.as_ref().and_then(|v| v.id);
                let code = match refused {
                    server_api::PublishRefused::Overloaded => ErrorCode::Overloaded,
                    server_api::PublishRefused::Unavailable => ErrorCode::BrokerUnavailable,
                };
                return self.refuse_submit(now, from, conn, &member.room, v2.is_some(), id, code);
            }
        };
        self.stopped_typing(now, &member);
        if let Some(v2) = v2 {
            let cmid = v2.client_msg_id.as_deref().unwrap_or("");
            self.ack(now, from, conn, &member.room, v2.id, cmid, accepted, false);
            if let Some(key) = resend {
                self.sends.insert(key, accepted, now.mono);
            }
        }
    }

    /// Sequences one message of `member` in its room (which this hub owns), hands it to
    /// the store, keeps it in the history and the user index, and fans it out. `received`
    /// (a client's message) feeds the latency figures. Refused only when the store's
    /// queue is full under `PERSIST_OVERFLOW=reject`: then nothing happened.
    pub(super) fn accept_message(
        &mut self,
        now: Now,
        member: &Member,
        content: Box<str>,
        attachments: Vec<protocol::Attachment>,
        kind: protocol::MessageKind,
        received: Option<Mono>,
    ) -> Result<(Accepted, Bytes), server_api::PublishRefused> {
        let room_id = self.owned_room(&member.room).id;
        let seq = self.owned_room(&member.room).last_seq + 1;
        let message_id = self.rng.uuid_v7(now.wall.0);
        if let Some(sink) = self.persist.as_mut() {
            let record = PersistRecord {
                message_id,
                room_id: member.room.clone(),
                kind,
                user_id: member.user.clone(),
                username: member.username.clone(),
                content: content.clone(),
                timestamp: now.wall,
                seq,
                attachments: attachments.as_slice().into(),
            };
            if sink.try_push(record).is_err() {
                match self.cfg.overflow {
                    OverflowPolicy::Reject => {
                        self.counters.overloaded += 1;
                        return Err(server_api::PublishRefused::Overloaded);
                    }
                    OverflowPolicy::Drop => self.counters.persist_dropped += 1,
                }
            }
        }
        let mut id_buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let ts = now.wall.to_rfc3339();
        self.scratch.clear();
        protocol::encode_chat(
            &mut self.scratch,
            &ChatMessageRef {
                message_id: message_id.hyphenated().encode_lower(&mut id_buf),
                room_id: &member.room,
                kind: kind.as_str(),
                user_id: &member.user,
                username: &member.username,
                content: &content,
                timestamp: ts.as_str(),
                seq,
                attachments: &attachments,
            },
        );
        let frame = Bytes::copy_from_slice(&self.scratch);
        let room = self.owned_room(&member.room);
        room.last_seq = seq;
        room.messages += 1;
        self.retain(
            &member.room,
            Entry {
                seq,
                frame: frame.clone(),
            },
        );
        self.user_index.push(&member.user, now.wall, frame.clone());
        self.counters.messages += 1;
        self.minutes.add(now.wall, 1);
        self.fan_out(&member.room, frame.clone(), received, Audience::All);
        let accepted = Accepted {
            room_id,
            seq,
            message_id,
        };
        Ok((accepted, frame))
    }

    /// Acknowledges an accepted send to its sender, behind the message itself.
    /// A chat message not accepted: its sender hears `code` (a v2 sender with the
    /// request's `id` and the room).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn refuse_submit(
        &mut self,
        now: Now,
        from: WorkerId,
        conn: ConnId,
        room: &Arc<str>,
        v2: bool,
        id: Option<u32>,
        code: ErrorCode,
    ) {
        let frame = if v2 {
            self.scratch.clear();
            protocol::encode_error_v2(&mut self.scratch, code, id, Some(room));
            Bytes::copy_from_slice(&self.scratch)
        } else {
            self.error_frame(code)
        };
        let room = v2.then(|| room.clone());
        self.dispatch(now, from, PeerMsg::Direct { conn, room, frame });
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn ack(
        &mut self,
        now: Now,
        from: WorkerId,
        conn: ConnId,
        room: &Arc<str>,
        id: Option<u32>,
        client_msg_id: &str,
        accepted: Accepted,
        duplicate: bool,
    ) {
        let mut id_buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        self.scratch.clear();
        protocol::encode_ack(
            &mut self.scratch,
            &protocol::Ack {
                id,
                room_id: room,
                seq: accepted.seq,
                message_id: accepted.message_id.hyphenated().encode_lower(&mut id_buf),
                client_msg_id: (!client_msg_id.is_empty()).then_some(client_msg_id),
                duplicate,
            },
        );
        let frame = Bytes::copy_from_slice(&self.scratch);
        let room = Some(room.clone());
        self.dispatch(now, from, PeerMsg::Direct { conn, room, frame });
    }

    /// One push per worker with members in `room`; our own members get it directly.
    pub(super) fn fan_out(
        &mut self,
        room: &Arc<str>,
        frame: Bytes,
        received: Option<Mono>,
        audience: Audience,
    ) {
        let mut targets = std::mem::take(&mut self.fanout_scratch);
        targets.clear();
        if let Some(r) = self.owned.get(&**room) {
            let with_members = r.per_worker.iter().enumerate().filter(|(_, n)| {
                (audience.includes(false) && n[0] > 0) || (audience.includes(true) && n[1] > 0)
            });
            targets.extend(with_members.map(|(w, _)| WorkerId(w as u16)));
        }
        for &w in &targets {
            if w == self.cfg.worker {
                self.deliver_local(room, frame.clone(), received, audience);
            } else {
                let msg = PeerMsg::Broadcast {
                    room: room.clone(),
                    frame: frame.clone(),
                    received,
                    audience,
                };
                self.out.push_back(Output::Peer {
                    to: w,
                    event: PeerEvent(msg),
                });
            }
        }
        self.fanout_scratch = targets;
    }
}
