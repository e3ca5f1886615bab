//! Carrying out the hub's decisions: every [`Output`] becomes frames on outboxes, mail
//! for other workers, a reply to a waiting question or a room load; then one flush.

use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use hubbub_core::{ConnId, Now, Output};

use super::outbox::Outbox;
use super::sessions::{lookup, Session, Sessions};
use super::{wire, Engine};

impl Engine {
    /// Carries out the hub's outputs until it has nothing more to say, then writes.
    pub(super) fn drain(self: &Rc<Self>, now: Now) {
        let mut slow: Vec<(ConnId, usize)> = Vec::new();
        loop {
            let out = self.hub.borrow_mut().poll_output();
            match out {
                Output::Deliver {
                    frame,
                    to,
                    received,
                } => {
                    let wire = wire::text(&frame);
                    let sessions = self.sessions.borrow();
                    for &conn in to.iter() {
                        self.push(&sessions, conn, &wire, &mut slow);
                    }
                    if let Some(received) = received {
                        self.delivered.borrow_mut().push(received);
                    }
                }
                Output::Send { conn, frame } => {
                    let wire = wire::text(&frame);
                    self.push(&self.sessions.borrow(), conn, &wire, &mut slow);
                }
                Output::Ping { conn } => {
                    self.push(&self.sessions.borrow(), conn, &self.ping, &mut slow)
                }
                Output::Pong { conn, payload } => {
                    let wire = wire::pong(&payload);
                    self.push(&self.sessions.borrow(), conn, &wire, &mut slow);
                }
                Output::NotifyWritten { conn } => {
                    if let Some(session) = lookup(&self.sessions.borrow(), conn) {
                        session.io().notify_when_written();
                    }
                }
                Output::Close { conn, code, reason } => {
                    self.close(conn, wire::close(code, reason));
                }
                Output::CloseReply { conn, code } => self.close(conn, wire::close_reply(code)),
                Output::Peer { to, event } => self.mesh.borrow_mut().send(to, event),
                Output::Reply { id, answer } => {
                    if let Some(tx) = self.queries.borrow_mut().remove(&id.0) {
                        let _ = tx.send(answer);
                    }
                }
                Output::LoadRoom { room, recent } => self.load_room(room, recent),
                Output::LoadRange {
                    id,
                    room,
                    after,
                    upto,
                } => self.load_range(id, room, after, upto),
                Output::CheckFiles { id, room, files } => self.check_files(id, room, files),
                Output::Sequence {
                    token,
                    record,
                    epoch,
                    floor,
                } => {
                    if !self.host.sequence(token, &record, &epoch, floor) {
                        self.later(move |hub, now| hub.handle_sequenced(now, token, None));
                    }
                }
                Output::FetchMessages { room, after, upto } => {
                    if !self.host.fetch(room.clone(), after, upto) {
                        self.later(move |hub, now| {
                            hub.handle_fetched(now, &room, (after, upto), None)
                        });
                    }
                }
                Output::Unwatch { room } => self.host.unwatch(room),
                Output::Timeout(_) => {
                    if slow.is_empty() {
                        break;
                    }
                    let mut hub = self.hub.borrow_mut();
                    for (conn, bytes) in slow.drain(..) {
                        hub.handle_queued(now, conn, bytes);
                    }
                }
            }
        }
        self.flush();
        self.deliver_written_notices();
    }

    /// Runs `f` on the hub once this drain is over (an answer the host gave at once).
    fn later(self: &Rc<Self>, f: impl FnOnce(&mut hubbub_core::Hub, Now) + 'static) {
        let engine = Rc::clone(self);
        monoio::spawn(async move { engine.with_hub(f) });
    }

    /// Asks the host for a room's stored state; the hub hears the answer when it comes.
    fn load_room(self: &Rc<Self>, room: std::sync::Arc<str>, recent: usize) {
        let load = self.host.load_room(room.clone(), recent);
        let engine = Rc::clone(self);
        monoio::spawn(async move {
            let state = load.await;
            engine.with_hub(|hub, now| hub.handle_room_loaded(now, &room, state));
        });
    }

    /// Asks the host for what a v2 subscriber missed beyond the ring; the hub hears the
    /// answer when it comes.
    fn load_range(self: &Rc<Self>, id: u64, room: std::sync::Arc<str>, after: u64, upto: u64) {
        let load = self.host.load_range(room, after, upto);
        let engine = Rc::clone(self);
        monoio::spawn(async move {
            let messages = load.await;
            engine.with_hub(|hub, now| hub.handle_range_loaded(now, id, messages));
        });
    }

    /// Asks the host about the files a v2 send attaches; the hub hears the answer when
    /// it comes.
    fn check_files(self: &Rc<Self>, id: u64, room: std::sync::Arc<str>, files: Vec<Box<str>>) {
        let check = self.host.check_files(room, files);
        let engine = Rc::clone(self);
        monoio::spawn(async move {
            let facts = check.await;
            engine.with_hub(|hub, now| hub.handle_files_checked(now, id, facts));
        });
    }

    /// Queues `wire` for `conn`; a backlog past the bound is noted in `slow` (the hub
    /// decides and counts).
    fn push(
        &self,
        sessions: &Sessions,
        conn: ConnId,
        wire: &Bytes,
        slow: &mut Vec<(ConnId, usize)>,
    ) {
        if let Some(io) = lookup(sessions, conn).map(Session::io) {
            let queued = self.queue(io, wire.clone());
            // Only a backlog past the bound goes to the hub; below it there is nothing
            // to decide, so the hot path makes no call per recipient.
            if queued > self.max_queued {
                slow.push((conn, queued));
            }
        }
    }

    /// Queues `frame` for `io`, written at the next flush; returns the bytes now owed to it.
    fn queue(&self, io: &Rc<Outbox>, frame: Bytes) -> usize {
        let pushed = io.push(frame);
        if pushed.needs_flush {
            self.dirty.borrow_mut().push(io.clone());
        }
        pushed.queued
    }

    /// Queues the close frame for `conn` (nothing is sent after it) and starts its
    /// close deadline.
    fn close(&self, conn: ConnId, frame: Bytes) {
        let sessions = self.sessions.borrow();
        let Some(io) = lookup(&sessions, conn).map(Session::io) else {
            return;
        };
        if let Some(needs_flush) = io.close(frame) {
            self.closing.arm(Instant::now(), io.clone());
            if needs_flush {
                self.dirty.borrow_mut().push(io.clone());
            }
        }
    }

    /// Holds flushes back until [`uncork`](Self::uncork): while the reactor serves a
    /// batch of ready sockets, every message of the batch is queued first, so a
    /// connection owed several gets them in one send.
    pub(super) fn cork(&self) {
        self.corked.set(true);
    }

    /// Ends [`cork`](Self::cork) and writes what was held back.
    pub(super) fn uncork(self: &Rc<Self>) {
        self.corked.set(false);
        self.flush();
    }

    /// Sends what every connection queued since the last flush: one send each, all
    /// submitted to the send ring at once (or, without a ring, straight to the sockets).
    fn flush(self: &Rc<Self>) {
        if self.corked.get() {
            return;
        }
        {
            let mut dirty = self.dirty.borrow_mut();
            if let Some(ring) = &self.ring {
                for io in dirty.drain(..) {
                    ring.start(&io);
                }
                ring.submit();
            } else {
                for io in dirty.drain(..) {
                    self.send_now(&io);
                }
            }
        }
        // The broadcasts are in the sockets' hands (or the ring's): their latency ends here.
        let mut delivered = self.delivered.borrow_mut();
        if !delivered.is_empty() {
            let now = self.now();
            let mut hub = self.hub.borrow_mut();
            for received in delivered.drain(..) {
                hub.handle_delivered(now, received);
            }
        }
    }

    /// Writes straight to the socket (no send ring), watching for writability while
    /// part is left, and notes a written notice that came due.
    pub(super) fn send_now(&self, io: &Rc<Outbox>) {
        io.send_now();
        self.watch_writes(io);
        if io.take_written_notice() {
            self.written.borrow_mut().push(io.conn());
        }
    }

    /// Hands the hub the written notices that came due; what it sends in answer may make
    /// more come due, so until none is left. Re-entrant calls leave it to the outer one.
    pub(super) fn deliver_written_notices(self: &Rc<Self>) {
        if self.notifying.replace(true) {
            return;
        }
        loop {
            let due = std::mem::take(&mut *self.written.borrow_mut());
            if due.is_empty() {
                break;
            }
            let now = self.now();
            {
                let mut hub = self.hub.borrow_mut();
                for conn in due {
                    hub.handle_written(now, conn);
                }
            }
            self.drain(now);
        }
        self.notifying.set(false);
    }
}
