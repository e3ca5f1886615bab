//! This worker's members of a room: becoming live (the backlog, or a replay streamed in
//! slices with live messages held behind it) and the deliveries to them.

use super::*;

impl Hub {
    /// Everything queued for `conn` has been written, as asked by
    /// [`Output::NotifyWritten`]: the next slice of its replay follows (and once the
    /// replay is out, the live messages that waited behind it).
    pub fn handle_written(&mut self, _now: Now, conn: ConnId) {
        if self.conn_mut(conn).is_none_or(|c| c.closing) {
            return;
        }
        // A v2 connection may be streaming several rooms' replays; each goes on.
        let rooms: Vec<Arc<str>> = self
            .replays
            .keys()
            .filter(|(c, _)| *c == conn)
            .map(|(_, room)| room.clone())
            .collect();
        for room in rooms {
            self.send_replay_slice(conn, &room);
        }
    }

    /// The driver has handed a broadcast that [`Output::Deliver`] gave it, read at
    /// `received`, to its recipients' sockets: one fan-out latency sample (`now` is
    /// when the sends went out).
    pub fn handle_delivered(&mut self, now: Now, received: Mono) {
        let micros = crate::analytics::micros_between(received, now.mono);
        self.latency.record(now.wall, micros);
    }

    pub(super) fn on_backlog(
        &mut self,
        conn: ConnId,
        room: &Arc<str>,
        frames: Vec<Bytes>,
        token: u32,
    ) {
        let slice = self.replay_slice();
        let Some(c) = self.conn_mut(conn) else { return };
        let v2 = c.is_v2();
        // Not for a subscription that ended, or a later one to the same room.
        if c.sub_mut(room).is_none_or(|s| s.live || s.token != token) {
            return;
        }
        let key = (conn, room.clone());
        if self.replays.contains_key(&key) {
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
            key,
            Replay {
                backlog: frames.into(),
                live: Vec::new(),
                live_bytes: 0,
                v2,
            },
        );
        self.local
            .entry(room.clone())
            .or_default()
            .replaying
            .push(conn);
        self.send_replay_slice(conn, room);
    }

    /// How much of a replay is handed over at once: at most [`REPLAY_SLICE`], and well
    /// within the slow-consumer bound.
    pub(super) fn replay_slice(&self) -> usize {
        (self.cfg.max_queued_bytes / 2).clamp(1, REPLAY_SLICE)
    }

    /// Hands the next slice of `conn`'s replay of `room` to the driver. Once the driver
    /// has written all of it, the live messages that waited follow (as deliveries to it
    /// alone) and the subscription joins its room's live members.
    pub(super) fn send_replay_slice(&mut self, conn: ConnId, room: &Arc<str>) {
        let slice = self.replay_slice();
        let key = (conn, room.clone());
        let Some(replay) = self.replays.get_mut(&key) else {
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
            for Held { frame, direct } in replay.live.drain(..) {
                if direct {
                    self.out.push_back(Output::Send { conn, frame });
                } else {
                    self.counters.deliveries += 1;
                    self.out.push_back(Output::Deliver {
                        frame,
                        to: to.clone(),
                        received: None,
                    });
                }
            }
        }
        self.replays.remove(&key);
        if let Some(local) = self.local.get_mut(&**room) {
            local.replaying.retain(|&r| r != conn);
        }
        self.go_live(conn, room);
    }

    /// `conn`'s backlog of `room` is out: it receives the room's live messages from now on.
    pub(super) fn go_live(&mut self, conn: ConnId, room: &Arc<str>) {
        let Some(c) = self.conn_mut(conn) else { return };
        let v2 = c.is_v2();
        let Some(sub) = c.sub_mut(room) else { return };
        sub.live = true;
        let local = self.local.entry(room.clone()).or_default();
        local.pending = local.pending.saturating_sub(1);
        let pos = local.push(conn, v2);
        if let Some(sub) = self.conn_mut(conn).and_then(|c| c.sub_mut(room)) {
            sub.pos = pos;
        }
    }

    pub(super) fn deliver_local(
        &mut self,
        room: &str,
        frame: Bytes,
        received: Option<Mono>,
        audience: Audience,
    ) {
        let Some(local) = self.local.get_mut(room) else {
            return;
        };
        if !local.replaying.is_empty() {
            // Behind their replay; sent when it is.
            let max = self.cfg.max_queued_bytes;
            let mut slow = Vec::new();
            let name: Arc<str> = Arc::from(room);
            for &id in &local.replaying {
                let closing = self.slots[id.index()]
                    .conn
                    .as_ref()
                    .is_none_or(|c| c.closing);
                let Some(replay) = self
                    .replays
                    .get_mut(&(id, name.clone()))
                    .filter(|r| !closing && audience.includes(r.v2))
                else {
                    continue;
                };
                replay.live.push(Held {
                    frame: frame.clone(),
                    direct: false,
                });
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
        let mut received = received;
        for v2 in [false, true] {
            if !audience.includes(v2) {
                continue;
            }
            let Some(to) = self.local.get_mut(room).and_then(|l| l.recipients(v2)) else {
                continue;
            };
            self.counters.deliveries += to.len() as u64;
            self.out.push_back(Output::Deliver {
                frame: frame.clone(),
                to,
                // One latency sample per broadcast.
                received: received.take(),
            });
        }
    }
}
