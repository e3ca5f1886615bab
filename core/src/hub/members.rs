//! This worker's members of a room: becoming live (the backlog, or a replay streamed in
//! slices with live messages held behind it) and the deliveries to them.

use super::*;

impl Hub {
    /// Everything queued for `conn` has been written, as asked by
    /// [`Output::NotifyWritten`]: the next slice of its replay follows (and once the
    /// replay is out, the live messages that waited behind it).
    pub fn handle_written(&mut self, _now: Now, conn: ConnId) {
        if self.conn_mut(conn).is_some_and(|c| !c.closing) {
            self.send_replay_slice(conn);
        }
    }

    /// The driver has handed a broadcast that [`Output::Deliver`] gave it, read at
    /// `received`, to its recipients' sockets: one fan-out latency sample (`now` is
    /// when the sends went out).
    pub fn handle_delivered(&mut self, now: Now, received: Mono) {
        let micros = crate::analytics::micros_between(received, now.mono);
        self.latency.record(now.wall, micros);
    }

    pub(super) fn on_backlog(&mut self, conn: ConnId, room: &Arc<str>, frames: Vec<Bytes>) {
        let slice = self.replay_slice();
        let replaying = self.replays.contains_key(&conn);
        let Some(c) = self.conn_mut(conn) else { return };
        if c.live || replaying || c.member.room != *room {
            return;
        }
        if frames.iter().map(Bytes::len).sum::<usize>() <= slice {
            self.go_live(conn, room);
            self.out
                .extend(frames.into_iter().map(|frame| Output::Send { conn, frame }));
            return;
        }
        // Too big to queue at once (a whole retained history, say): streamed in slices as
        // the connection drains, with live messages held back behind it.
        self.replays.insert(
            conn,
            Replay {
                backlog: frames.into(),
                live: Vec::new(),
                live_bytes: 0,
            },
        );
        self.local
            .entry(room.clone())
            .or_default()
            .replaying
            .push(conn);
        self.send_replay_slice(conn);
    }

    /// How much of a replay is handed over at once: at most [`REPLAY_SLICE`], and well
    /// within the slow-consumer bound.
    pub(super) fn replay_slice(&self) -> usize {
        (self.cfg.max_queued_bytes / 2).clamp(1, REPLAY_SLICE)
    }

    /// Hands the next slice of `conn`'s replay to the driver. Once the driver has
    /// written all of it, the live messages that waited follow (as deliveries to it
    /// alone) and the connection joins its room's live members.
    pub(super) fn send_replay_slice(&mut self, conn: ConnId) {
        let slice = self.replay_slice();
        let Some(replay) = self.replays.get_mut(&conn) else {
            return;
        };
        if !replay.backlog.is_empty() {
            let mut sent = 0;
            while sent < slice {
                let Some(frame) = replay.backlog.pop_front() else {
                    break;
                };
                sent += frame.len();
                self.out.push_back(Output::Send { conn, frame });
            }
            if !(replay.backlog.is_empty() && replay.live.is_empty()) {
                self.out.push_back(Output::NotifyWritten { conn });
                return;
            }
        }
        if !replay.live.is_empty() {
            let to: Arc<[ConnId]> = Arc::from(&[conn][..]);
            self.counters.deliveries += replay.live.len() as u64;
            self.out
                .extend(replay.live.drain(..).map(|frame| Output::Deliver {
                    frame,
                    to: to.clone(),
                    received: None,
                }));
        }
        self.replays.remove(&conn);
        let Some(room) = self.conn_mut(conn).map(|c| c.member.room.clone()) else {
            return;
        };
        if let Some(local) = self.local.get_mut(&*room) {
            local.replaying.retain(|&r| r != conn);
        }
        self.go_live(conn, &room);
    }

    /// `conn`'s backlog is out: it receives the room's live messages from now on.
    pub(super) fn go_live(&mut self, conn: ConnId, room: &Arc<str>) {
        let Some(c) = self.conn_mut(conn) else { return };
        c.live = true;
        let local = self.local.entry(room.clone()).or_default();
        local.pending = local.pending.saturating_sub(1);
        let pos = local.push(conn);
        if let Some(c) = self.conn_mut(conn) {
            c.pos = pos;
        }
    }

    pub(super) fn deliver_local(&mut self, room: &str, frame: Bytes, received: Option<Mono>) {
        let Some(local) = self.local.get_mut(room) else {
            return;
        };
        if !local.replaying.is_empty() {
            // Behind their replay; sent when it is.
            let max = self.cfg.max_queued_bytes;
            let mut slow = Vec::new();
            for &id in &local.replaying {
                let closing = self.slots[id.index()]
                    .conn
                    .as_ref()
                    .is_none_or(|c| c.closing);
                let Some(replay) = self.replays.get_mut(&id).filter(|_| !closing) else {
                    continue;
                };
                replay.live.push(frame.clone());
                replay.live_bytes += frame.len();
                if replay.live_bytes > max {
                    slow.push(id);
                }
            }
            for id in slow {
                self.counters.slow_consumer_closes += 1;
                self.close(
                    id,
                    1008,
                    "slow consumer: live messages piled up behind its replay",
                );
            }
        }
        let Some(to) = self.local.get_mut(room).and_then(LocalRoom::recipients) else {
            return;
        };
        self.counters.deliveries += to.len() as u64;
        self.out.push_back(Output::Deliver {
            frame,
            to,
            received,
        });
    }
}
