//! The durable load gate: with a store, a room's first use asks for its stored state
//! ([`Output::LoadRoom`]) and holds the room's joins, leaves and messages until the answer
//! ([`Hub::handle_room_loaded`]), so `seq` and the backlog carry on across restarts.

use super::*;

impl Hub {
    /// With a durable store, holds back what concerns a room whose state is not loaded
    /// yet (asking for it on first use); hands everything else through.
    pub(super) fn gate(&mut self, msg: PeerMsg) -> Option<PeerMsg> {
        if !self.cfg.durable && !self.cfg.broker {
            return Some(msg);
        }
        let (room, first_use) = match &msg {
            PeerMsg::Join { member, .. } => (member.room.clone(), true),
            PeerMsg::Submit(s) => (s.member.room.clone(), true),
            PeerMsg::Ask {
                ask: peer::Ask::Publish(p),
                ..
            } => (Arc::from(p.room_id.as_str()), true),
            PeerMsg::Ask {
                ask: peer::Ask::Room(r),
                ..
            } => (Arc::from(r.room.as_str()), true),
            PeerMsg::Ask {
                ask: peer::Ask::UserRoom { room, .. },
                ..
            } => (room.clone(), true),
            // A leave must not overtake the join it undoes while that join waits, nor
            // typing or a read marker the join they follow.
            PeerMsg::Leave { member, .. }
            | PeerMsg::Typing { member, .. }
            | PeerMsg::Read { member, .. } => (member.room.clone(), false),
            // A shared room's numbered message waits behind the room's state, which it
            // follows.
            PeerMsg::Remote(r) => (r.room.clone(), false),
            _ => return Some(msg),
        };
        let workers = self.cfg.workers as usize;
        match self.owned.get_mut(&*room) {
            Some(r) => match r.loading.as_mut() {
                Some(waiting) => {
                    waiting.push(msg);
                    None
                }
                None => Some(msg),
            },
            None if first_use => {
                let id = self.next_room_id;
                self.next_room_id += 1;
                let mut r = OwnedRoom::new(id, workers, rooms::random_epoch(&mut self.rng));
                r.loading = Some(vec![msg]);
                self.owned.insert(room.clone(), r);
                let recent = self.cfg.history_size;
                self.out.push_back(Output::LoadRoom { room, recent });
                None
            }
            None => Some(msg),
        }
    }

    /// The durable store answered an [`Output::LoadRoom`]: `state` is the room's last
    /// stored `seq`, its newest messages and its read markers, or `None` if the store could
    /// not answer (the room then starts afresh, with a new epoch: availability over
    /// continuity, and the log of the driver should say so). What waited for the room is
    /// handled now.
    pub fn handle_room_loaded(&mut self, now: Now, room: &str, state: Option<StoredRoom>) {
        let Some((name, _)) = self.owned.get_key_value(room) else {
            return;
        };
        let name = name.clone();
        let Some(r) = self.owned.get_mut(room) else {
            return;
        };
        let Some(waiting) = r.loading.take() else {
            return;
        };
        let incarnation = r.id;
        // Only a room whose seq carries on from the store keeps the store's epoch (or
        // the sequencer's, for a shared room).
        if let Some(s) = &state {
            r.epoch = s.epoch.clone().unwrap_or_else(super::rooms::durable_epoch);
        }
        if let Some(StoredRoom {
            last_seq,
            recent,
            read_markers,
            room: record,
            epoch: _,
        }) = state
        {
            if let Some(record) = record {
                self.restore_room(record);
            }
            let Some(r) = self.owned.get_mut(room) else {
                return;
            };
            r.last_seq = r.last_seq.max(last_seq);
            if !read_markers.is_empty() {
                let signals = r.signals.get_or_insert_with(Default::default);
                for (user, seq) in read_markers {
                    signals.restore_read(Arc::from(user), seq);
                }
            }
            for m in recent {
                self.scratch.clear();
                protocol::encode_chat_message(&mut self.scratch, &m);
                let frame = Bytes::copy_from_slice(&self.scratch);
                if let Some(r) = self.owned.get_mut(room) {
                    r.last_seq = r.last_seq.max(m.seq);
                }
                self.retain(&name, Entry { seq: m.seq, frame });
            }
        }
        for msg in waiting {
            self.on_peer(now, msg);
        }
        // Loaded for a question or a publish rather than a connection: idle from the start,
        // so that it goes in its turn. (What waited may have emptied and evicted it, and a
        // later join begun loading it again: that one is not idle.)
        if let Some(r) = self.owned.get_mut(room) {
            if r.id == incarnation && r.connections == 0 && r.idle_mark == 0 {
                let mark = self.next_idle_mark;
                self.next_idle_mark += 1;
                r.idle_mark = mark;
                self.idle.push_back((name, mark));
                self.idle_count += 1;
                self.evict_idle_rooms(now);
            }
        }
    }
}
