//! Rooms shared with other nodes (`BROKER=redis`): the room's `seq` comes from one
//! sequencer outside the process ([`Output::Sequence`]), and every node, this one
//! included, delivers a room's messages as the sequencer hands them out
//! ([`Hub::handle_broker_message`]), in `seq` order: a message that arrives early waits
//! until the gap before it is filled ([`Output::FetchMessages`]); one that arrives twice
//! is delivered once. A sender's `ack` follows its message's delivery here.
//!
//! The owner keeps the room's history, members per worker and fan-out as without a
//! broker; only the numbering moves out.

use std::collections::BTreeMap;

use super::peer::{GatherId, Part};
use super::*;

/// Out-of-order messages one room may hold while a gap is filled; beyond it the gap is
/// given up (skipped, counted) rather than memory grown without bound.
pub const MAX_REORDER: usize = 4096;

/// How long a gap's fetch may go unanswered before it is asked again.
pub const GAP_RETRY: Duration = Duration::from_millis(500);

/// A message the sequencer numbered, as the driver hands it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequenced {
    /// The room's epoch at the sequencer.
    pub epoch: Arc<str>,
    /// The message's `seq`.
    pub seq: u64,
}

/// Who waits for a message's number.
#[derive(Debug)]
enum Origin {
    /// A client's chat frame: v2 senders get an `ack`.
    Client {
        from: WorkerId,
        conn: ConnId,
        v2: Option<(Option<u32>, Option<Box<str>>)>,
    },
    /// The server API's publish: the HTTP answer.
    Publish { from: WorkerId, gather: GatherId },
}

/// A message on its way to the sequencer.
#[derive(Debug)]
pub(crate) struct PendingSend {
    member: Member,
    record: PersistRecord,
    received: Option<Mono>,
    origin: Origin,
}

/// A room whose deliveries have a hole: what came after it, and the senders whose acks
/// wait for it.
#[derive(Debug, Default)]
pub(crate) struct Gap {
    early: BTreeMap<u64, (protocol::ChatMessage, Option<Mono>)>,
    asked: Option<Mono>,

    acks: Vec<(u64, PendingSend)>,
}

/// A numbered message of a shared room, from the sequencer's publication or a fetch.
#[derive(Debug)]
pub(crate) struct Remote {
    pub room: Arc<str>,
    pub epoch: Arc<str>,
    pub message: protocol::ChatMessage,
    pub received: Option<Mono>,
}

impl Hub {
    /// In place of numbering a message itself: hands it to the sequencer and remembers
    /// who waits for the answer.
    pub(super) fn sequence_submit(&mut self, now: Now, submit: peer::Submit) {
        let peer::Submit {
            from,
            conn,
            member,
            content,
            received,
            v2,
        } = submit;
        let (attachments, v2) = match v2 {
            Some(v) => (v.attachments, Some((v.id, v.client_msg_id))),
            None => (Vec::new(), None),
        };
        let record = self.new_record(
            now,
            &member,
            content,
            attachments,
            protocol::MessageKind::Chat,
        );
        self.stopped_typing(now, &member);
        let origin = Origin::Client { from, conn, v2 };
        self.send_to_sequencer(member, record, Some(received), origin);
    }

    /// The server API's publish to a shared room: answered once the sequencer has
    /// numbered it and it is delivered here.
    pub(super) fn sequence_publish(
        &mut self,
        now: Now,
        from: WorkerId,
        gather: GatherId,
        p: &protocol::PublishRequest,
    ) {
        let member = Member {
            room: Arc::from(p.room_id.as_str()),
            user: Arc::from(p.user_id.as_str()),
            username: Arc::from(p.username.as_str()),
        };
        let record = self.new_record(now, &member, p.content.as_str().into(), Vec::new(), p.kind);
        self.send_to_sequencer(member, record, None, Origin::Publish { from, gather });
    }

    fn new_record(
        &mut self,
        now: Now,
        member: &Member,
        content: Box<str>,
        attachments: Vec<protocol::Attachment>,
        kind: protocol::MessageKind,
    ) -> PersistRecord {
        PersistRecord {
            message_id: self.rng.uuid_v7(now.wall.0),
            room_id: member.room.clone(),
            kind,
            user_id: member.user.clone(),
            username: member.username.clone(),
            content,
            timestamp: now.wall,
            seq: 0,
            attachments: attachments.into(),
        }
    }

    fn send_to_sequencer(
        &mut self,
        member: Member,
        record: PersistRecord,
        received: Option<Mono>,
        origin: Origin,
    ) {
        let room = self.owned_room(&member.room);
        let epoch = room.epoch.clone();
        let floor = room.last_seq;
        let token = self.next_sequence_token;
        self.next_sequence_token += 1;
        self.out.push_back(Output::Sequence {
            token,
            record: record.clone(),
            epoch,
            floor,
        });
        self.sequencing.insert(
            token,
            PendingSend {
                member,
                record,
                received,
                origin,
            },
        );
    }

    /// The sequencer's answer to [`Output::Sequence`] `token`: the message's number, or
    /// `None` if the sequencer could not be reached (the sender hears
    /// `broker_unavailable`; nothing was delivered anywhere).
    pub fn handle_sequenced(&mut self, now: Now, token: u64, answer: Option<Sequenced>) {
        let Some(mut pending) = self.sequencing.remove(&token) else {
            return;
        };
        let Some(Sequenced { epoch, seq }) = answer else {
            self.counters.broker_refused += 1;
            return self.refuse_pending(now, pending, ErrorCode::BrokerUnavailable);
        };
        pending.record.seq = seq;
        if let Some(sink) = self.persist.as_mut() {
            // The message is numbered and published already: a full queue can only drop
            // it from the store, whatever the policy (docs/PROTOCOL.md §8).
            if sink.try_push(pending.record.clone()).is_err() {
                self.counters.persist_dropped += 1;
            }
        }
        let room = pending.member.room.clone();
        let remote = Remote {
            room: room.clone(),
            epoch: epoch.clone(),
            message: pending.record.to_message(),
            received: pending.received.take(),
        };
        self.on_peer(now, PeerMsg::Remote(Box::new(remote)));
        let delivered = self
            .owned
            .get(&*room)
            .is_some_and(|r| *r.epoch == *epoch && r.last_seq >= seq);
        if delivered {
            self.finish_pending(now, pending);
        } else if self.owned.get(&*room).is_some_and(|r| *r.epoch == *epoch) {
            self.gaps.entry(room).or_default().acks.push((seq, pending));
        } else {
            // The room is gone or its epoch moved on: the message is numbered, so it
            // was accepted.
            self.finish_pending(now, pending);
        }
    }

    /// A numbered message of a room this node watches, published by the sequencer
    /// (whichever node sent it). Delivered here in `seq` order, once.
    pub fn handle_broker_message(
        &mut self,
        now: Now,
        room: &str,
        epoch: Arc<str>,
        message: protocol::ChatMessage,
    ) {
        let Some((name, _)) = self.owned.get_key_value(room) else {
            self.counters.broker_unwatched += 1;
            return;
        };
        let remote = Remote {
            room: name.clone(),
            epoch,
            message,
            received: None,
        };
        self.on_peer(now, PeerMsg::Remote(Box::new(remote)));
    }

    /// The answer to [`Output::FetchMessages`] `after`..=`upto`: the room's epoch and
    /// its numbered messages in that range, oldest first, or `None` if the sequencer
    /// could not answer (asked again after [`GAP_RETRY`]).
    pub fn handle_fetched(
        &mut self,
        now: Now,
        room: &str,
        (after, upto): (u64, u64),
        answer: Option<(Arc<str>, Vec<protocol::ChatMessage>)>,
    ) {
        let Some((name, _)) = self.owned.get_key_value(room) else {
            return;
        };
        let name = name.clone();
        let Some((epoch, messages)) = answer else {
            return;
        };
        for message in messages {
            self.on_remote(
                now,
                Remote {
                    room: name.clone(),
                    epoch: epoch.clone(),
                    message,
                    received: None,
                },
            );
        }
        // A hole left inside the range this answered is gone from the sequencer's log
        // (trimmed): skip to the first message held rather than wait for ever. A hole
        // beyond it (the answer was to an older question) is asked for now.
        let last = self.owned.get(&*name).map_or(0, |r| r.last_seq);
        let Some(g) = self.gaps.get_mut(&*name) else {
            return;
        };
        let Some(first) = g.early.keys().next().copied().filter(|&f| f > last + 1) else {
            g.asked = None;
            return;
        };
        if after <= last && last < upto {
            self.counters.broker_gaps_skipped += 1;
            if let Some(r) = self.owned.get_mut(&*name) {
                r.last_seq = first - 1;
            }
            self.drain_early(now, &name);
        } else {
            g.asked = Some(now.mono);
            self.counters.broker_gap_fetches += 1;
            self.out.push_back(Output::FetchMessages {
                room: name,
                after: last,
                upto: first - 1,
            });
            self.arm_gap_check(now);
        }
    }

    /// The driver's link to the sequencer was re-established (or lost events): anything
    /// may have been missed, so every shared room asks for what came after its last
    /// message.
    pub fn handle_broker_resync(&mut self, _now: Now) {
        let rooms: Vec<(Arc<str>, u64)> = self
            .owned
            .iter()
            .filter(|(_, r)| r.loading.is_none())
            .map(|(name, r)| (name.clone(), r.last_seq))
            .collect();
        for (room, after) in rooms {
            self.out.push_back(Output::FetchMessages {
                room,
                after,
                upto: u64::MAX,
            });
        }
    }

    /// One numbered message at its room's owner: delivered if it is the next, held if
    /// it is early (and the gap before it fetched), dropped if it is old.
    pub(super) fn on_remote(&mut self, now: Now, remote: Remote) {
        let Remote {
            room,
            epoch,
            message,
            received,
        } = remote;
        let seq = message.seq;
        let Some(r) = self.owned.get_mut(&*room) else {
            return;
        };
        if *r.epoch != *epoch {
            // The sequencer lost the room's state and began it again: what this node
            // held belongs to the old numbering.
            self.counters.broker_epoch_changes += 1;
            r.epoch = Box::from(&*epoch);
            r.last_seq = seq.saturating_sub(1);
            self.drop_history(&room);
            if let Some(g) = self.gaps.remove(&*room) {
                for (_, pending) in g.acks {
                    self.finish_pending(now, pending);
                }
            }
        }
        let Some(r) = self.owned.get(&*room) else {
            return;
        };
        if seq <= r.last_seq {
            self.counters.broker_duplicates += 1;
            return;
        }
        if seq > r.last_seq + 1 {
            let last = r.last_seq;
            let gap = self.gaps.entry(room.clone()).or_default();
            gap.early.insert(seq, (message, received));
            if gap.early.len() > MAX_REORDER {
                // Give up on the hole: deliver from the first held.
                self.counters.broker_gaps_skipped += 1;
                let first = gap.early.keys().next().copied().unwrap_or(seq);
                if let Some(r) = self.owned.get_mut(&*room) {
                    r.last_seq = first - 1;
                }
                return self.drain_early(now, &room);
            }
            if gap
                .asked
                .is_none_or(|at| now.mono.saturating_since(at) >= GAP_RETRY)
            {
                gap.asked = Some(now.mono);
                self.counters.broker_gap_fetches += 1;
                self.out.push_back(Output::FetchMessages {
                    room,
                    after: last,
                    upto: seq - 1,
                });
                self.arm_gap_check(now);
            }
            return;
        }
        self.deliver_numbered(now, &room, &message, received);
        self.drain_early(now, &room);
    }

    /// Delivers what was held behind a gap that is now filled, then the acks that
    /// waited for it.
    fn drain_early(&mut self, now: Now, room: &Arc<str>) {
        loop {
            let last = self.owned.get(&**room).map_or(0, |r| r.last_seq);
            let Some(g) = self.gaps.get_mut(&**room) else {
                return;
            };
            while g.early.first_key_value().is_some_and(|(&s, _)| s <= last) {
                g.early.pop_first();
            }
            match g.early.first_key_value() {
                Some((&s, _)) if s == last + 1 => {
                    if let Some((_, (message, received))) = g.early.pop_first() {
                        self.deliver_numbered(now, room, &message, received);
                    }
                }
                _ => break,
            }
        }
        let last = self.owned.get(&**room).map_or(0, |r| r.last_seq);
        let Some(g) = self.gaps.get_mut(&**room) else {
            return;
        };
        let acks = std::mem::take(&mut g.acks);
        let (done, waiting): (Vec<_>, Vec<_>) = acks.into_iter().partition(|(s, _)| *s <= last);
        g.acks = waiting;
        if g.early.is_empty() && g.acks.is_empty() {
            self.gaps.remove(&**room);
        } else if g.early.is_empty() {
            g.asked = None;
        }
        for (_, pending) in done {
            self.finish_pending(now, pending);
        }
    }

    /// The next message of a shared room: history, user index, counters, fan-out, as a
    /// message numbered here would have.
    fn deliver_numbered(
        &mut self,
        now: Now,
        room: &Arc<str>,
        message: &protocol::ChatMessage,
        received: Option<Mono>,
    ) {
        self.scratch.clear();
        protocol::encode_chat_message(&mut self.scratch, message);
        let frame = Bytes::copy_from_slice(&self.scratch);
        let Some(r) = self.owned.get_mut(&**room) else {
            return;
        };
        r.last_seq = message.seq;
        r.messages += 1;
        self.retain(
            room,
            Entry {
                seq: message.seq,
                frame: frame.clone(),
            },
        );
        let user: Arc<str> = Arc::from(message.user_id.as_str());
        self.user_index.push(&user, now.wall, frame.clone());
        self.counters.messages += 1;
        self.minutes.add(now.wall, 1);
        self.fan_out(room, frame, received, Audience::All);
    }

    /// Forgets a room's retained history (its numbering began again).
    fn drop_history(&mut self, room: &str) {
        if let Some(r) = self.owned.get_mut(room) {
            for e in r.history.drain(..) {
                self.retention.released(e.cost());
            }
        }
    }

    /// The sender of a numbered, delivered message hears of it.
    fn finish_pending(&mut self, now: Now, pending: PendingSend) {
        let PendingSend {
            member,
            record,
            origin,
            ..
        } = pending;
        let room_id = self.owned.get(&*member.room).map_or(0, |r| r.id);
        let accepted = Accepted {
            room_id,
            seq: record.seq,
            message_id: record.message_id,
        };
        match origin {
            Origin::Client { v2: None, .. } => {}
            Origin::Client {
                from,
                conn,
                v2: Some((id, cmid)),
            } => {
                let cmid_str = cmid.as_deref().unwrap_or("");
                self.ack(now, from, conn, &member.room, id, cmid_str, accepted, false);
                if let Some(cmid) = cmid {
                    let key = (member.room.clone(), member.user.clone(), cmid);
                    self.sends.insert(key, accepted, now.mono);
                }
            }
            Origin::Publish { from, gather } => {
                self.counters.published += 1;
                self.scratch.clear();
                protocol::encode_chat_message(&mut self.scratch, &record.to_message());
                let frame = Bytes::copy_from_slice(&self.scratch);
                let part = Part::Published(Ok(frame));
                self.dispatch(now, from, PeerMsg::Part { gather, part });
            }
        }
    }

    fn refuse_pending(&mut self, now: Now, pending: PendingSend, code: ErrorCode) {
        match pending.origin {
            Origin::Client { from, conn, v2 } => {
                let id = v2.as_ref().and_then(|(id, _)| *id);
                let room = pending.member.room;
                self.refuse_submit(now, from, conn, &room, v2.is_some(), id, code);
            }
            Origin::Publish { from, gather } => {
                let part = Part::Published(Err(server_api::PublishRefused::Unavailable));
                self.dispatch(now, from, PeerMsg::Part { gather, part });
            }
        }
    }

    fn arm_gap_check(&mut self, now: Now) {
        let at = now.mono + GAP_RETRY;
        if self.next_gap_check.is_none_or(|t| at < t) {
            self.next_gap_check = Some(at);
        }
    }

    /// Gaps whose fetch went unanswered are asked again (from `handle_timeout`).
    pub(super) fn retry_gaps(&mut self, now: Now) {
        if self.next_gap_check.is_none_or(|t| now.mono < t) {
            return;
        }
        self.next_gap_check = None;
        let mut again = Vec::new();
        for (room, g) in &mut self.gaps {
            let Some((&first, _)) = g.early.first_key_value() else {
                continue;
            };
            if g.asked
                .is_none_or(|at| now.mono.saturating_since(at) >= GAP_RETRY)
            {
                g.asked = Some(now.mono);
                again.push((room.clone(), first));
            }
        }
        let live = !self.gaps.is_empty();
        for (room, first) in again {
            let after = self.owned.get(&*room).map_or(0, |r| r.last_seq);
            self.counters.broker_gap_fetches += 1;
            self.out.push_back(Output::FetchMessages {
                room,
                after,
                upto: first - 1,
            });
        }
        if live {
            self.arm_gap_check(now);
        }
    }

    /// A shared room forgotten here: the driver may stop watching it.
    pub(super) fn unwatch(&mut self, now: Now, room: &Arc<str>) {
        if !self.cfg.broker {
            return;
        }
        if let Some(g) = self.gaps.remove(&**room) {
            // Numbered, so accepted: their senders are not left waiting.
            for (_, pending) in g.acks {
                self.finish_pending(now, pending);
            }
        }
        self.out.push_back(Output::Unwatch { room: room.clone() });
    }
}

/// What the driver's link to the sequencer hands a hub, as one type (for drivers that
/// carry these over a queue): each variant is one of the hub's inputs.
#[derive(Debug)]
pub enum SequencerEvent {
    /// [`Hub::handle_broker_message`].
    Message {
        /// The room.
        room: Arc<str>,
        /// Its epoch at the sequencer.
        epoch: Arc<str>,
        /// The numbered message (`seq` and `kind` set).
        message: protocol::ChatMessage,
    },
    /// [`Hub::handle_sequenced`].
    Sequenced {
        /// The [`Output::Sequence`] answered.
        token: u64,
        /// The number given, or `None` if the sequencer could not be reached.
        answer: Option<Sequenced>,
    },
    /// [`Hub::handle_fetched`].
    Fetched {
        /// The room of the [`Output::FetchMessages`] answered.
        room: Arc<str>,
        /// Its `after` and `upto`.
        range: (u64, u64),
        /// Its epoch and messages, or `None` if the sequencer could not answer.
        answer: Option<(Arc<str>, Vec<protocol::ChatMessage>)>,
    },
    /// [`Hub::handle_broker_resync`].
    Resync,
}

impl Hub {
    /// Hands one [`SequencerEvent`] to the input it names.
    pub fn handle_sequencer_event(&mut self, now: Now, event: SequencerEvent) {
        match event {
            SequencerEvent::Message {
                room,
                epoch,
                message,
            } => self.handle_broker_message(now, &room, epoch, message),
            SequencerEvent::Sequenced { token, answer } => {
                self.handle_sequenced(now, token, answer)
            }
            SequencerEvent::Fetched {
                room,
                range,
                answer,
            } => self.handle_fetched(now, &room, range, answer),
            SequencerEvent::Resync => self.handle_broker_resync(now),
        }
    }
}
