//! A v2 connection's requests, on its own worker: subscribe and unsubscribe, chat (acked
//! by the room's owner), typing and read markers (sent on to the owner). Each answer or
//! error echoes the request's `id` (docs/PROTOCOL.md §7).

use super::*;
use attachments::ChatSend;
use protocol::V2Frame;

/// The bucket of `subscribe`, `unsubscribe`, `read` and `refresh`: a client may subscribe to every
/// room it is allowed at once, then a few a second.
pub(super) const CONTROL_LIMIT: RateLimit = RateLimit {
    per_sec: 10.0,
    burst: 64.0,
};

/// The bucket of `typing`: excess is dropped and counted, never answered.
pub(super) const TYPING_LIMIT: RateLimit = RateLimit {
    per_sec: 1.0,
    burst: 3.0,
};

impl Hub {
    /// A text frame of a v2 connection.
    pub(super) fn handle_v2_text(&mut self, now: Now, conn: ConnId, text: &[u8]) {
        let (id, frame) = match protocol::decode_v2_frame(text) {
            Ok(ok) => ok,
            Err(refusal) => {
                self.counters.rejected += 1;
                let room = refusal.room.as_deref();
                return self.send_error_v2(conn, refusal.code, refusal.id, room);
            }
        };
        let room = frame.room();
        let limit = self.cfg.rate_limit;
        let typing = matches!(frame, V2Frame::Typing { .. });
        let Some(c) = self.conn_mut(conn) else { return };
        if let Some(room) = room {
            if c.sub_mut(room).is_none() && !matches!(frame, V2Frame::Subscribe { .. }) {
                return self.send_error_v2(conn, ErrorCode::NotSubscribed, id, Some(room));
            }
        }
        let Some(v2) = c.v2.as_mut() else { return };
        let allowed = match frame {
            V2Frame::Chat { .. } => c.bucket.try_take(limit, now.mono),
            V2Frame::Typing { .. } => v2.typing.try_take(TYPING_LIMIT, now.mono),
            _ => v2.control.try_take(CONTROL_LIMIT, now.mono),
        };
        if !allowed {
            // At most one rate error a second; typing is dropped without one.
            let report = !typing
                && c.last_rate_error
                    .is_none_or(|t| now.mono.saturating_since(t) >= Duration::from_secs(1));
            if report {
                c.last_rate_error = Some(now.mono);
            }
            if typing {
                self.counters.typing_dropped += 1;
            } else {
                self.counters.rate_limited += 1;
            }
            if report {
                self.send_error_v2(conn, ErrorCode::RateLimited, id, room);
            }
            return;
        }
        match frame {
            V2Frame::Subscribe { room, since, epoch } => {
                let epoch = epoch.map(|e| e.into_owned().into_boxed_str());
                self.subscribe(now, conn, id, &room, since, epoch, false);
            }
            V2Frame::Unsubscribe { room } => self.unsubscribe(now, conn, id, &room),
            V2Frame::Chat {
                room,
                content,
                client_msg_id,
                attachments,
            } => {
                let Some(room) = self.sub_room(conn, &room) else {
                    return;
                };
                let chat = ChatSend {
                    id,
                    room,
                    content: &content,
                    client_msg_id: client_msg_id.as_deref(),
                    files: attachments,
                };
                self.send_chat_v2(now, conn, chat);
            }
            V2Frame::Typing { room, stop } => {
                if let Some(member) = self.sub_member(conn, &room) {
                    let owner = owner_of(&member.room, self.cfg.workers);
                    self.dispatch(now, owner, PeerMsg::Typing { member, stop });
                }
            }
            V2Frame::Read { room, seq } => {
                if let Some(member) = self.sub_member(conn, &room) {
                    let owner = owner_of(&member.room, self.cfg.workers);
                    self.dispatch(now, owner, PeerMsg::Read { member, seq });
                }
            }
            V2Frame::Refresh { token } => self.refresh(now, conn, id, &token),
        }
    }

    /// The shared name of `conn`'s subscribed room `room`.
    pub(super) fn sub_room(&mut self, conn: ConnId, room: &str) -> Option<Arc<str>> {
        Some(self.conn_mut(conn)?.sub_mut(room)?.room.clone())
    }

    fn sub_member(&mut self, conn: ConnId, room: &str) -> Option<Member> {
        let room = self.sub_room(conn, room)?;
        Some(self.conn_mut(conn)?.member(&room))
    }

    /// Subscribes `conn` to `room`: the owner answers with `subscribed`, then the backlog
    /// or what was missed after `since` (or refuses a private room to a non-member, unless
    /// the token's `rooms` claim `granted` it).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn subscribe(
        &mut self,
        now: Now,
        conn: ConnId,
        id: Option<u32>,
        room: &str,
        since: Option<u64>,
        epoch: Option<Box<str>>,
        granted: bool,
    ) {
        let max = self.cfg.max_subscriptions;
        let Some(c) = self.conn_mut(conn) else { return };
        if c.sub_mut(room).is_some() {
            return self.send_error_v2(conn, ErrorCode::AlreadySubscribed, id, Some(room));
        }
        if c.sub_count() >= max {
            return self.send_error_v2(conn, ErrorCode::TooManySubscriptions, id, Some(room));
        }
        let Some(v2) = c.v2.as_mut() else { return };
        let token = v2.next_token;
        v2.next_token = v2.next_token.wrapping_add(1).max(1);
        let join = peer::JoinV2 {
            id,
            token,
            epoch,
            granted,
        };
        self.enter(now, conn, room, since, Some(join));
    }

    fn unsubscribe(&mut self, now: Now, conn: ConnId, id: Option<u32>, room: &str) {
        let Some(c) = self.conn_mut(conn) else { return };
        let Some(sub) = c.take_sub(room) else {
            return self.send_error_v2(conn, ErrorCode::NotSubscribed, id, Some(room));
        };
        let member = c.member(&sub.room);
        let answer = peer::Unsubscribe {
            conn,
            id,
            reason: None,
        };
        self.leave(now, conn, member, sub, true, Some(answer));
    }

    pub(super) fn send_error_v2(
        &mut self,
        conn: ConnId,
        code: ErrorCode,
        id: Option<u32>,
        room: Option<&str>,
    ) {
        self.scratch.clear();
        protocol::encode_error_v2(&mut self.scratch, code, id, room);
        let frame = Bytes::copy_from_slice(&self.scratch);
        self.out.push_back(Output::Send { conn, frame });
    }
}
