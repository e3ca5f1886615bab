//! The connection side of a hub: what this worker's own connections do — admission,
//! frames, closes, idle timers, shutdown.

use super::*;

impl Hub {
    /// Decides an upgrade request before any WebSocket frame: shutdown, origin,
    /// parameters, token, then the connection limit.
    pub fn admit(&self, now: Now, req: &UpgradeRequest<'_>) -> Result<Admission, Refusal> {
        if self.shutting_down {
            return Err(Refusal::ShuttingDown);
        }
        if let Some(origin) = req.origin {
            if !self.cfg.allowed_origins.allows(origin) {
                return Err(Refusal::Origin);
            }
        }
        let mut params = ConnectParams::parse(req.query)?;
        let mut valid_until = UnixMillis(u64::MAX);
        let mut rooms = Vec::new();
        if self.cfg.auth.is_enabled() {
            let token = params
                .token
                .as_deref()
                .or(req.bearer())
                .ok_or(crate::auth::TokenError::Missing)?;
            let who = self.cfg.auth.verify(token, now.wall)?;
            // The token names the user and the name: a URL cannot impersonate anyone.
            params.username = who.username.unwrap_or_else(|| {
                // A user id may be longer than a display name may.
                let max = crate::upgrade::MAX_USERNAME_CHARS;
                who.user_id.chars().take(max).collect()
            });
            params.user_id = who.user_id;
            valid_until = who.valid_until;
            if params.proto == 2 {
                rooms = who.rooms;
            }
        }
        params.token = None;
        let reservation = self.gauge.try_reserve().ok_or(Refusal::AtCapacity)?;
        Ok(Admission {
            params,
            reservation,
            valid_until,
            rooms,
        })
    }

    /// A connection finished its upgrade. A v1 connection joins its room: the room's
    /// owner sends the backlog (or the `since` replay), then live messages follow. A v2
    /// connection gets its `hello`, then subscribes to the room its URL named, if any.
    pub fn handle_open(&mut self, now: Now, admission: Admission) -> ConnId {
        self.arm_sweep(now);
        let Admission {
            params,
            reservation,
            valid_until,
            rooms,
        } = admission;
        let v2 = params.proto == 2;
        // Names are shared with the maps that already hold them (and the username with
        // the user id when they are equal): no string per connection while idle.
        let user = match self.users.get_key_value(params.user_id.as_str()) {
            Some((name, _)) => name.clone(),
            None => Arc::from(params.user_id),
        };
        let username = if params.username == *user {
            user.clone()
        } else if params.username == *self.anonymous {
            self.anonymous.clone()
        } else {
            Arc::from(params.username)
        };
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        let id = ConnId {
            index,
            generation: slot.generation,
        };
        *self.users.entry(user.clone()).or_insert(0) += 1;
        let client_id = self.rng.uuid_v7(now.wall.0);
        slot.conn = Some(Conn {
            user: user.clone(),
            username: username.clone(),
            first: None,
            v2: v2.then(|| {
                Box::new(V2Conn {
                    more: Vec::new(),
                    control: TokenBucket::new(subscriptions::CONTROL_LIMIT, now.mono),
                    typing: TokenBucket::new(subscriptions::TYPING_LIMIT, now.mono),
                    next_token: 1,
                })
            }),
            client_id,
            joined_at: now.wall,
            bucket: TokenBucket::new(self.cfg.rate_limit, now.mono),
            last_seen: now.mono,
            pinged: false,
            last_rate_error: None,
            closing: false,
            valid_until,
            _reservation: reservation,
        });
        self.open += 1;
        if v2 {
            self.scratch.clear();
            let client_id = client_id.hyphenated().to_string();
            protocol::encode_hello(
                &mut self.scratch,
                &user,
                &username,
                &client_id,
                &self.cfg.node,
                self.cfg.max_subscriptions,
            );
            let frame = Bytes::copy_from_slice(&self.scratch);
            self.out.push_back(Output::Send { conn: id, frame });
            if params.room_given {
                let epoch = params.epoch.map(String::into_boxed_str);
                self.subscribe(now, id, None, &params.room, params.since, epoch, false);
            }
            // The token's rooms, each once, up to the subscription limit.
            let mut seen = std::collections::HashSet::new();
            let named = params.room_given.then_some(params.room.as_str());
            let claimed = rooms
                .iter()
                .filter(|r| Some(r.as_str()) != named && seen.insert(r.as_str()))
                .take(
                    self.cfg
                        .max_subscriptions
                        .saturating_sub(usize::from(named.is_some())),
                );
            for room in claimed {
                // The token's claim grants them: a member or not.
                self.subscribe(now, id, None, room, None, None, true);
            }
        } else {
            self.enter(now, id, &params.room, params.since, None);
        }
        id
    }

    /// Adds `conn`'s subscription to `room` and asks the room's owner for its backlog.
    pub(super) fn enter(
        &mut self,
        now: Now,
        conn: ConnId,
        room: &str,
        since: Option<u64>,
        v2: Option<peer::JoinV2>,
    ) {
        let room = match self.local.get_key_value(room) {
            Some((name, _)) => name.clone(),
            None => Arc::from(room),
        };
        let token = v2.as_ref().map_or(0, |j| j.token);
        let Some(c) = self.conn_mut(conn) else { return };
        c.add_sub(Sub {
            room: room.clone(),
            live: false,
            pos: 0,
            token,
        });
        let member = c.member(&room);
        self.local.entry(room.clone()).or_default().pending += 1;
        let owner = owner_of(&room, self.cfg.workers);
        let from = self.cfg.worker;
        self.dispatch(
            now,
            owner,
            PeerMsg::Join {
                from,
                conn,
                member,
                since,
                v2,
            },
        );
    }

    /// Takes `conn`'s subscription to `room` out of the room's members on this worker
    /// and tells the owner (who answers `unsubscribe`, if that is why).
    pub(super) fn leave(
        &mut self,
        now: Now,
        conn: ConnId,
        member: Member,
        sub: Sub,
        v2: bool,
        unsubscribe: Option<peer::Unsubscribe>,
    ) {
        let open = self.conn_mut(conn).is_some_and(|c| !c.closing);
        if let Some(room) = self.local.get_mut(&*sub.room) {
            if sub.live {
                if let Some(moved) = room.swap_remove(sub.pos, v2) {
                    let slot = &mut self.slots[moved.index()];
                    if let Some(s) = slot.conn.as_mut().and_then(|m| m.sub_mut(&sub.room)) {
                        s.pos = sub.pos;
                    }
                }
            } else {
                room.pending = room.pending.saturating_sub(1);
                if let Some(replay) = self.replays.remove(&(conn, sub.room.clone())) {
                    room.replaying.retain(|&r| r != conn);
                    // The room's frames end with the subscription; the answers to what
                    // the connection asked of it do not.
                    if open {
                        let answers = replay.live.into_iter().filter(|h| h.direct);
                        self.out.extend(answers.map(|h| Output::Send {
                            conn,
                            frame: h.frame,
                        }));
                    }
                }
            }
            if room.is_empty() {
                self.local.remove(&*sub.room);
            }
        }
        let owner = owner_of(&sub.room, self.cfg.workers);
        self.dispatch(
            now,
            owner,
            PeerMsg::Leave {
                from: self.cfg.worker,
                member,
                v2,
                unsubscribe,
            },
        );
    }

    pub(super) fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        let slot = self.slots.get_mut(id.index())?;
        if slot.generation != id.generation {
            return None;
        }
        slot.conn.as_mut()
    }

    /// A frame arrived on `conn`.
    pub fn handle_frame(&mut self, now: Now, conn: ConnId, frame: Inbound<'_>) {
        let limit = self.cfg.rate_limit;
        let Some(c) = self.conn_mut(conn) else { return };
        if c.closing {
            return;
        }
        c.last_seen = now.mono;
        c.pinged = false;
        let text = match frame {
            Inbound::Text(text) => text,
            Inbound::Pong => return,
            Inbound::Ping(payload) => {
                let payload = Bytes::copy_from_slice(payload);
                self.out.push_back(Output::Pong { conn, payload });
                return;
            }
            Inbound::Close(code) => {
                // Nothing more is sent to it; it goes when the client ends the connection.
                c.closing = true;
                self.out.push_back(Output::CloseReply { conn, code });
                return;
            }
            Inbound::Binary => return self.close(conn, 1003, "binary frames are not supported"),
            Inbound::InvalidUtf8 => return self.close(conn, 1007, "text frames must be UTF-8"),
            Inbound::TooLarge => return self.close(conn, 1009, "frame larger than 8192 bytes"),
            Inbound::ProtocolError => return self.close(conn, 1002, "WebSocket protocol error"),
        };
        if c.is_v2() {
            return self.handle_v2_text(now, conn, text);
        }
        if !c.bucket.try_take(limit, now.mono) {
            let report = c
                .last_rate_error
                .is_none_or(|t| now.mono.saturating_since(t) >= Duration::from_secs(1));
            if report {
                c.last_rate_error = Some(now.mono);
            }
            self.counters.rate_limited += 1;
            if report {
                self.send_error(conn, ErrorCode::RateLimited);
            }
            return;
        }
        match protocol::decode_client_frame(text) {
            Ok(frame) => {
                let Some(room) = c.first.as_ref().map(|s| s.room.clone()) else {
                    return;
                };
                let member = c.member(&room);
                let owner = owner_of(&room, self.cfg.workers);
                let msg = PeerMsg::Submit(peer::Submit {
                    from: self.cfg.worker,
                    conn,
                    member,
                    content: frame.content.into(),
                    received: now.mono,
                    v2: None,
                });
                self.dispatch(now, owner, msg);
            }
            Err(e) => {
                self.counters.rejected += 1;
                self.send_error(conn, FrameError::code(e));
            }
        }
    }

    /// The driver's outbound queue for `conn` holds `queued_bytes` it could not write yet.
    /// Report it whenever a write leaves bytes behind; past the bound the connection is
    /// closed with 1008 so it never slows anyone else.
    pub fn handle_queued(&mut self, _now: Now, conn: ConnId, queued_bytes: usize) {
        let max = self.cfg.max_queued_bytes;
        let Some(c) = self.conn_mut(conn) else { return };
        if c.closing || queued_bytes <= max {
            return;
        }
        self.counters.slow_consumer_closes += 1;
        self.close(conn, 1008, "slow consumer: outbound queue full");
    }

    /// `conn` is gone (closed by either side). Releases it; its id becomes stale.
    pub fn handle_close(&mut self, now: Now, conn: ConnId) {
        let Some(slot) = self.slots.get_mut(conn.index()) else {
            return;
        };
        if slot.generation != conn.generation {
            return;
        }
        let Some(mut c) = slot.conn.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(conn.index);
        self.open -= 1;
        self.held.forget(conn);
        if let Some(n) = self.users.get_mut(&*c.user) {
            *n -= 1;
            if *n == 0 {
                self.users.remove(&*c.user);
                self.last_seen.insert(c.user.clone(), now.wall);
                self.store_state(StateWrite::LastSeen {
                    user_id: c.user.clone(),
                    at: now.wall,
                });
            }
        }
        let v2 = c.is_v2();
        while let Some(room) = c.first.as_ref().map(|s| s.room.clone()) {
            let Some(sub) = c.take_sub(&room) else { break };
            let member = c.member(&room);
            self.leave(now, conn, member, sub, v2, None);
        }
    }

    /// Timers: pings idle connections and closes silent ones; sends the v2 presence,
    /// typing and read-marker frames whose coalescing interval ended, and expires typing.
    pub fn handle_timeout(&mut self, now: Now) {
        self.run_signal_timers(now);
        self.retry_gaps(now);
        self.arm_sweep(now);
        if self.next_sweep.is_some_and(|t| now.mono < t) {
            return;
        }
        self.next_sweep = Some(now.mono + self.cfg.sweep_every);
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            let id = ConnId {
                index: index as u32,
                generation: slot.generation,
            };
            let Some(c) = slot.conn.as_mut() else {
                continue;
            };
            if c.closing {
                continue;
            }
            if now.wall > c.valid_until {
                self.counters.token_expiries += 1;
                self.close(id, CLOSE_TOKEN_EXPIRED, "token_expired");
                continue;
            }
            let silent = now.mono.saturating_since(c.last_seen);
            if silent >= self.cfg.idle_timeout {
                self.close(id, 1000, "idle timeout");
            } else if silent >= self.cfg.ping_after && !c.pinged {
                c.pinged = true;
                self.out.push_back(Output::Ping { conn: id });
            }
        }
    }

    /// Stops admitting and closes every connection with 1001. The driver keeps draining
    /// outputs and reporting closes until [`connections`](Hub::connections) is 0.
    pub fn begin_shutdown(&mut self, _now: Now) {
        self.shutting_down = true;
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            let id = ConnId {
                index: index as u32,
                generation: slot.generation,
            };
            if slot.conn.as_ref().is_some_and(|c| !c.closing) {
                self.close(id, 1001, "server shutting down");
            }
        }
    }

    pub(super) fn arm_sweep(&mut self, now: Now) {
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now.mono + self.cfg.sweep_every);
        }
    }

    pub(super) fn close(&mut self, conn: ConnId, code: u16, reason: &'static str) {
        if let Some(c) = self.conn_mut(conn) {
            c.closing = true;
            self.out.push_back(Output::Close { conn, code, reason });
        }
    }

    pub(super) fn send_error(&mut self, conn: ConnId, code: ErrorCode) {
        let frame = self.error_frame(code);
        self.out.push_back(Output::Send { conn, frame });
    }

    /// A v1 error frame: the common ones encoded once, at start.
    pub(super) fn error_frame(&self, code: ErrorCode) -> Bytes {
        match ERROR_CODES.iter().position(|&c| c == code) {
            Some(i) => self.errors[i].clone(),
            None => {
                let mut buf = Vec::new();
                protocol::encode_error(&mut buf, code);
                Bytes::from(buf)
            }
        }
    }

    /// A frame for `conn` alone from a room's owner: in order behind the room's frames
    /// (behind its replay while one streams).
    pub(super) fn send_direct(&mut self, conn: ConnId, room: Option<Arc<str>>, frame: Bytes) {
        if self.conn_mut(conn).is_none_or(|c| c.closing) {
            return;
        }
        if let Some(replay) = room.and_then(|r| self.replays.get_mut(&(conn, r))) {
            replay.live_bytes += frame.len();
            replay.live.push(Held {
                frame,
                direct: true,
            });
            return;
        }
        self.out.push_back(Output::Send { conn, frame });
    }
}
