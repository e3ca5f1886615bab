//! Recovery beyond the memory ring: with a durable store, a v2 subscriber whose `since`
//! (in the room's current epoch) is older than the ring holds asks the store for the
//! messages in between ([`Output::LoadRange`]); its `subscribed` waits for the answer
//! ([`Hub::handle_range_loaded`]), then the stored messages and the ring's newer ones go
//! out as one replay, streamed in slices. If the store cannot give every one of them the
//! subscriber gets the backlog and `recovered:false`, as without a store.

use super::*;

/// The most messages a recovery asks the store for: beyond, the backlog.
pub const MAX_STORE_REPLAY: u64 = 10_000;

/// A subscription waiting for the store.
#[derive(Debug)]
pub(super) struct PendingRange {
    from: WorkerId,
    conn: ConnId,
    member: Member,
    id: Option<u32>,
    token: u32,
    /// The room's incarnation when asked: a room forgotten meanwhile is not this one.
    incarnation: u64,
    /// The replay is every message after `since`; the store gives those up to `upto`.
    since: u64,
    upto: u64,
    /// The ring's messages after `upto` when asked, up to `held_upto` (the ring may move
    /// on while the store answers: these are the ones it may drop meanwhile).
    held: Vec<Bytes>,
    held_upto: u64,
}

impl Hub {
    /// Asks the store for what `member` missed after `since`, if the ring lacks it and the
    /// store may have it; true if the subscription now waits for the answer.
    pub(super) fn ask_store(
        &mut self,
        from: WorkerId,
        conn: ConnId,
        member: &Member,
        since: Option<u64>,
        join: &peer::JoinV2,
    ) -> bool {
        let (Some(since), Some(epoch)) = (since, join.epoch.as_deref()) else {
            return false;
        };
        if !self.cfg.durable {
            return false;
        }
        let Some(room) = self.owned.get(&*member.room) else {
            return false;
        };
        // Only a room whose seq carries on from the store (its durable epoch) has the
        // missed messages there; nothing missed, or too much, is not worth a query.
        if *room.epoch != *epoch
            || since >= room.last_seq
            || room.last_seq - since > MAX_STORE_REPLAY
        {
            return false;
        }
        let upto = room
            .history
            .front()
            .map_or(room.last_seq, |oldest| oldest.seq.saturating_sub(1));
        let held = room.after(upto).map(|e| e.frame.clone()).collect();
        let held_upto = room.last_seq;
        let incarnation = room.id;
        let id = self.next_range;
        self.next_range += 1;
        self.ranges.insert(
            id,
            PendingRange {
                from,
                conn,
                member: member.clone(),
                id: join.id,
                token: join.token,
                incarnation,
                since,
                upto,
                held,
                held_upto,
            },
        );
        self.out.push_back(Output::LoadRange {
            id,
            room: member.room.clone(),
            after: since,
            upto,
        });
        true
    }

    /// The durable store answered an [`Output::LoadRange`] with the room's messages in
    /// its range (any order; `None` if it could not answer). The subscription that waited
    /// gets `subscribed`, then every message after its `since` (`recovered:true`) if the
    /// store and the ring hold each of them, else the backlog (`recovered:false`).
    ///
    /// ```
    /// use hubbub_core::protocol::ChatMessage;
    /// use hubbub_core::upgrade::UpgradeRequest;
    /// use hubbub_core::*;
    ///
    /// let msg = |seq: u64| ChatMessage {
    ///     message_id: format!("m{seq}"),
    ///     room_id: "dev".into(),
    ///     kind: Default::default(),
    ///     user_id: "ann".into(),
    ///     username: "Ann".into(),
    ///     content: format!("#{seq}"),
    ///     timestamp: "2026-12-02T10:00:00.000Z".into(),
    ///     seq,
    ///     attachments: vec![],
    /// };
    /// let mut cfg = HubConfig::new(WorkerId(0), 1);
    /// cfg.durable = true;
    /// cfg.history_size = 3;
    /// let mut hub = Hub::new(cfg, ConnectionGauge::new(10));
    /// let now = Now::new(Mono::from_nanos(0), UnixMillis(1_764_669_600_000));
    /// let mut open = |hub: &mut Hub, query: &str| {
    ///     let admission = hub.admit(now, &UpgradeRequest { query, ..Default::default() });
    ///     hub.handle_open(now, admission.expect("admitted"))
    /// };
    /// // The room's first use loads it: 10 stored messages, the newest 3 kept in memory.
    /// open(&mut hub, "proto=2&userId=bob&room=dev");
    /// while !matches!(hub.poll_output(), Output::Timeout(_)) {}
    /// let recent = (8..=10).map(msg).collect();
    /// let stored = StoredRoom { last_seq: 10, recent, ..StoredRoom::default() };
    /// hub.handle_room_loaded(now, "dev", Some(stored));
    /// let epoch = loop {
    ///     if let Output::Send { frame, .. } = hub.poll_output() {
    ///         let v: serde_json::Value = serde_json::from_slice(&frame).unwrap();
    ///         if v["type"] == "subscribed" {
    ///             break v["epoch"].as_str().unwrap().to_owned();
    ///         }
    ///     }
    /// };
    /// while !matches!(hub.poll_output(), Output::Timeout(_)) {}
    /// // Ann last saw seq 4: 5..=7 are only in the store.
    /// open(&mut hub, &format!("proto=2&userId=ann&room=dev&since=4&epoch={epoch}"));
    /// let id = loop {
    ///     match hub.poll_output() {
    ///         Output::LoadRange { id, after: 4, upto: 7, .. } => break id,
    ///         Output::Timeout(_) => panic!("the store is asked"),
    ///         _ => {}
    ///     }
    /// };
    /// hub.handle_range_loaded(now, id, Some((5..=7).map(msg).collect()));
    /// let mut seqs = Vec::new();
    /// loop {
    ///     match hub.poll_output() {
    ///         Output::Send { frame, .. } => {
    ///             let v: serde_json::Value = serde_json::from_slice(&frame).unwrap();
    ///             if v["type"] == "subscribed" {
    ///                 assert_eq!(v["recovered"], true);
    ///             } else if v["type"] == "chat" {
    ///                 seqs.push(v["seq"].as_u64().unwrap());
    ///             }
    ///         }
    ///         Output::Timeout(_) => break,
    ///         _ => {}
    ///     }
    /// }
    /// assert_eq!(seqs, [5, 6, 7, 8, 9, 10]);
    /// ```
    pub fn handle_range_loaded(
        &mut self,
        now: Now,
        id: u64,
        messages: Option<Vec<protocol::ChatMessage>>,
    ) {
        let Some(p) = self.ranges.remove(&id) else {
            return;
        };
        let Some(room) = self.owned.get(&*p.member.room) else {
            return;
        };
        if room.id != p.incarnation {
            return;
        }
        let replay = messages.and_then(|mut stored| {
            protocol::one_per_seq(&mut stored);
            stored.retain(|m| m.seq > p.since && m.seq <= p.upto);
            // Every seq from since+1 to upto from the store, what the ring held after it
            // when asked, then the ring's newer ones.
            let whole = stored.len() as u64 == p.upto - p.since && room.covers(p.held_upto);
            whole.then(|| {
                let mut frames = Vec::with_capacity(stored.len() + p.held.len());
                for m in &stored {
                    self.scratch.clear();
                    protocol::encode_chat_message(&mut self.scratch, m);
                    frames.push(Bytes::copy_from_slice(&self.scratch));
                }
                frames.extend(p.held);
                frames.extend(room.after(p.held_upto).map(|e| e.frame.clone()));
                frames
            })
        });
        if replay.is_some() {
            self.counters.store_replays += 1;
        }
        let frames = self.subscribe_answer(&p.member, p.id, replay);
        self.dispatch(
            now,
            p.from,
            PeerMsg::Backlog {
                conn: p.conn,
                room: p.member.room.clone(),
                frames,
                token: p.token,
            },
        );
    }
}
