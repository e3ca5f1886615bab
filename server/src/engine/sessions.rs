//! The worker's open WebSocket connections: a table of small records indexed like the
//! hub's connection slots. A connection joins the table once its 101 is out and leaves
//! it when its socket ends.
//!
//! An idle connection is one record here, its [`Outbox`] and its place in the hub: no
//! task, no future, no buffer (PERFORMANCE.md S3).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;

use hubbub_core::protocol::MAX_FRAME_BYTES;
use hubbub_core::ws::FrameDecoder;
use hubbub_core::ConnId;

use super::outbox::Outbox;
use super::Engine;

/// One open WebSocket connection.
pub(super) struct Session {
    pub(super) id: ConnId,
    io: Rc<Outbox>,
    /// The socket; closed when the record goes.
    pub(super) fd: OwnedFd,
    /// Client frames split across reads wait here (one word while none is).
    pub(super) decoder: FrameDecoder,
}

impl Session {
    /// The connection's outbound queue.
    pub(super) fn io(&self) -> &Rc<Outbox> {
        &self.io
    }
}

/// Open connections by the hub's dense connection index; the id tells a reused slot apart.
pub(super) type Sessions = Vec<Option<Session>>;

/// The session of `conn`, if it is still open.
pub(super) fn lookup(sessions: &Sessions, conn: ConnId) -> Option<&Session> {
    match sessions.get(conn.index()) {
        Some(Some(s)) if s.id == conn => Some(s),
        _ => None,
    }
}

/// The session of `conn` to change (its decoder), if it is still open.
pub(super) fn lookup_mut(sessions: &mut Sessions, conn: ConnId) -> Option<&mut Session> {
    match sessions.get_mut(conn.index()) {
        Some(Some(s)) if s.id == conn => Some(s),
        _ => None,
    }
}

/// The session with epoll key `key`, if it is still open.
pub(super) fn by_key(sessions: &Sessions, key: u64) -> Option<&Session> {
    match sessions.get(key as u32 as usize) {
        Some(Some(s)) if self::key(s.id) == key => Some(s),
        _ => None,
    }
}

/// The epoll key of the send ring's descriptor (no connection's key: index `u32::MAX`
/// is never reached).
pub(super) const RING_KEY: u64 = u64::MAX;

/// The epoll key of `conn`: its index and generation, so a stale event is recognised.
pub(super) fn key(conn: ConnId) -> u64 {
    (u64::from(conn.generation()) << 32) | conn.index() as u64
}

impl Engine {
    /// Takes over the socket of a connection the hub has just opened as `conn` (its 101
    /// is sent). Called inside the hub call that opened it, so that what the hub sends it
    /// at once (presence, backlog) finds it.
    pub(super) fn attach(&self, stream: monoio::net::TcpStream, conn: ConnId) -> io::Result<()> {
        // No operation is in flight on the stream (the 101 was written and awaited), so
        // monoio hands the descriptor over.
        // SAFETY: `into_raw_fd` gives up ownership of an open socket; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(stream.into_raw_fd()) };
        self.poller.add(fd.as_raw_fd(), key(conn))?;
        let io = Rc::new(Outbox::new(fd.as_raw_fd(), conn));
        let mut sessions = self.sessions.borrow_mut();
        if sessions.len() <= conn.index() {
            sessions.resize_with(conn.index() + 1, || None);
        }
        sessions[conn.index()] = Some(Session {
            id: conn,
            io,
            fd,
            decoder: FrameDecoder::new(MAX_FRAME_BYTES),
        });
        Ok(())
    }

    /// The connection is over: forget it, close its socket, tell the hub.
    pub(super) fn end(self: &Rc<Self>, conn: ConnId) {
        let session = {
            let mut sessions = self.sessions.borrow_mut();
            match sessions.get_mut(conn.index()) {
                Some(slot) if slot.as_ref().is_some_and(|s| s.id == conn) => slot.take(),
                _ => None,
            }
        };
        if let Some(session) = session {
            let _ = self.poller.remove(session.fd.as_raw_fd());
            // Nothing may use the descriptor once it is closed (below, by the drop).
            session.io.finish();
            drop(session);
            self.with_hub(|hub, now| hub.handle_close(now, conn));
        }
    }

    /// Asks epoll for writability exactly while the connection's send buffer is full.
    pub(super) fn watch_writes(&self, io: &Outbox) {
        if io.is_done() {
            // Its socket is closed and its number may already be another connection's.
            return;
        }
        let want = io.is_sending();
        if want != io.watching_writes() {
            if let Err(e) = self.poller.watch_writes(io.fd(), key(io.conn()), want) {
                tracing::debug!(error = %e, "cannot change write interest; ending the connection");
                io.abort();
                return;
            }
            io.set_watching_writes(want);
        }
    }

    /// Bytes queued or in flight to this worker's connections.
    pub(super) fn queued_bytes(&self) -> usize {
        self.sessions
            .borrow()
            .iter()
            .flatten()
            .map(|s| s.io().queued())
            .sum()
    }
}
