//! The worker's open WebSocket connections: a table of small records, one task that
//! waits for any of them to be ready, reads into the worker's scratch buffer, and hands
//! the frames to the hub.
//!
//! An idle connection is one record here, its outbound queue ([`ConnIo`]) and its place
//! in the hub: no task, no future, no buffer (PERFORMANCE.md S3).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use hubbub_core::protocol::MAX_FRAME_BYTES;
use hubbub_core::ws::{Event, FrameDecoder, Violation};
use hubbub_core::{ConnId, Hub, Inbound, Now};

use super::connio::ConnIo;
use super::poller::{Ready, BATCH};
use super::{until, wire, End, Worker};

/// How long the reactor waits before looking again while reads are paused.
const BACKED_UP_PAUSE: Duration = Duration::from_millis(1);

/// Bytes read from one connection per readiness event (one `recv`), into a scratch
/// buffer shared by all. Epoll is level-triggered: a connection with more to read is
/// reported again, after everyone else ready in the same pass, so a client that floods
/// is served in turn instead of holding the worker. A legitimate client (messages of at
/// most 8 KiB, rate-limited) never has more than this waiting.
pub const READ_BUDGET: usize = 16 * 1024;

/// Bytes the reactor reads in one pass over the ready sockets before it yields to the
/// worker's other tasks (accepting, HTTP, the mesh inbox, timers). Sockets left over in a
/// batch are reported again by the next `epoll_wait`.
pub const PASS_BUDGET: usize = 1024 * 1024;

/// One open WebSocket connection.
pub struct Session {
    id: ConnId,
    io: Rc<ConnIo>,
    /// The socket; closed when the record goes.
    fd: OwnedFd,
    decoder: FrameDecoder,
}

impl Session {
    /// The connection's outbound queue.
    pub fn io(&self) -> &Rc<ConnIo> {
        &self.io
    }
}

/// Open connections by the hub's dense connection index; the id tells a reused slot apart.
pub type Sessions = Vec<Option<Session>>;

/// The session of `conn`, if it is still open.
pub fn lookup(sessions: &Sessions, conn: ConnId) -> Option<&Session> {
    match sessions.get(conn.index()) {
        Some(Some(s)) if s.id == conn => Some(s),
        _ => None,
    }
}

/// The epoll key of the send ring's descriptor (no connection's key: index `u32::MAX`
/// is never reached).
pub const RING_KEY: u64 = u64::MAX;

/// The epoll key of `conn`: its index and generation, so a stale event is recognised.
pub fn key(conn: ConnId) -> u64 {
    (u64::from(conn.generation()) << 32) | conn.index() as u64
}

#[derive(Debug, PartialEq, Eq)]
enum Received {
    /// This many bytes were read (0: nothing was waiting); the peer may send more.
    More(usize),
    /// The peer closed its side, or the socket failed.
    End,
}

impl Worker {
    /// Takes over the socket of a connection the hub has just opened as `conn` (its 101
    /// is sent). Called inside the hub call that opened it, so that what the hub sends it
    /// at once (presence, backlog) finds it.
    pub fn attach(&self, stream: monoio::net::TcpStream, conn: ConnId) -> io::Result<()> {
        // No operation is in flight on the stream (the 101 was written and awaited), so
        // monoio hands the descriptor over.
        // SAFETY: `into_raw_fd` gives up ownership of an open socket; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(stream.into_raw_fd()) };
        self.poller.add(fd.as_raw_fd(), key(conn))?;
        let io = Rc::new(ConnIo::new(fd.as_raw_fd(), conn));
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

    /// Decodes the bytes that came with the upgrade request, before anything is read.
    pub fn receive_early(&self, conn: ConnId, data: &mut [u8]) {
        if let Some((_, io, _, mut decoder)) = self.take_decoder(key(conn)) {
            self.with_hub(|hub, now| self.hand_over(hub, now, conn, &io, &mut decoder, data));
            self.put_back(conn, decoder);
        }
    }

    /// The session with epoll key `key` (its id, queue and socket) and its decoder, taken
    /// out while the hub runs (the hub's outputs look sessions up); `None` if it ended.
    fn take_decoder(&self, key: u64) -> Option<(ConnId, Rc<ConnIo>, RawFd, FrameDecoder)> {
        let mut sessions = self.sessions.borrow_mut();
        match sessions.get_mut(key as u32 as usize) {
            Some(Some(s)) if self::key(s.id) == key => Some((
                s.id,
                s.io.clone(),
                s.fd.as_raw_fd(),
                std::mem::take(&mut s.decoder),
            )),
            _ => None,
        }
    }

    /// Waits for ready connections and serves them until `end` fires. It must end
    /// before the runtime does: its wait is an operation in flight in the kernel.
    pub(super) async fn reactor(self: Rc<Self>, mut end: End) {
        let mut ready = Vec::with_capacity(BATCH);
        loop {
            match until(self.poller.wait(), &mut end).await {
                None => return,
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    tracing::error!(worker = self.id.0, error = %e, "waiting for sockets failed");
                    monoio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            let mut read = 0;
            loop {
                // While the mesh is backed up past its bound, reading more client frames
                // would only grow it: reads pause (TCP pushes back on the clients) while
                // sends and completions go on.
                let reads = !self.mesh.borrow().backed_up();
                self.poller.poll(&mut ready);
                self.cork();
                for r in &ready {
                    read += self.serve(*r, reads && read < PASS_BUDGET);
                }
                self.uncork();
                if !reads {
                    monoio::time::sleep(BACKED_UP_PAUSE).await;
                    break;
                }
                if ready.len() < BATCH || read >= PASS_BUDGET {
                    break;
                }
            }
        }
    }

    /// Serves one ready connection: continues a send the socket was full for, and, if
    /// `may_read`, reads what arrived (else epoll reports it again). Returns the bytes read.
    fn serve(&self, ready: Ready, may_read: bool) -> usize {
        if ready.key == RING_KEY {
            if let Some(ring) = &self.ring {
                ring.reap();
                ring.submit();
                ring.take_written(&mut self.written.borrow_mut());
                self.deliver_written_notices();
            }
            return 0;
        }
        // `None`: it ended earlier in this batch.
        let Some((conn, io, fd, mut decoder)) = self.take_decoder(ready.key) else {
            return 0;
        };
        // Only the fallback writes on writability: with a ring the kernel finishes a
        // send itself, and a second send beside the ring's would interleave bytes.
        if ready.writable && self.ring.is_none() {
            self.send_now(&io);
            self.deliver_written_notices();
        }
        if !(ready.readable && may_read) {
            self.put_back(conn, decoder);
            return 0;
        }
        match self.receive(fd, conn, &io, &mut decoder) {
            Received::End => {
                self.end(conn);
                0
            }
            Received::More(n) => {
                self.put_back(conn, decoder);
                n
            }
        }
    }

    fn put_back(&self, conn: ConnId, decoder: FrameDecoder) {
        if let Some(Some(s)) = self.sessions.borrow_mut().get_mut(conn.index()) {
            if s.id == conn {
                s.decoder = decoder;
            }
        }
    }

    /// Asks epoll for writability exactly while the connection's send buffer is full.
    pub(super) fn watch_writes(&self, io: &ConnIo) {
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

    /// The connection is over: forget it, close its socket, tell the hub.
    fn end(&self, conn: ConnId) {
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

    /// Reads once (at most [`READ_BUDGET`]) into the scratch buffer and hands the frames
    /// to the hub.
    fn receive(
        &self,
        fd: RawFd,
        conn: ConnId,
        io: &Rc<ConnIo>,
        decoder: &mut FrameDecoder,
    ) -> Received {
        let mut scratch = self.scratch.borrow_mut();
        let n = loop {
            // SAFETY: `fd` is the open socket of a session in the table (it is closed only
            // by `end`, after this returns); the kernel writes at most `scratch.len()`
            // bytes into the scratch buffer, which this borrow holds exclusively.
            // MSG_DONTWAIT: never block the worker.
            let n = unsafe {
                libc::recv(
                    fd,
                    scratch.as_mut_ptr().cast(),
                    scratch.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n >= 0 {
                break n as usize;
            }
            match io::Error::last_os_error().kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Received::More(0),
                _ => return Received::End,
            }
        };
        if n == 0 {
            return Received::End;
        }
        let data = &mut scratch[..n];
        self.with_hub(|hub, now| self.hand_over(hub, now, conn, io, decoder, data));
        Received::More(n)
    }

    /// Decodes `data` and gives each message to the hub; answers pings and the peer's close.
    fn hand_over(
        &self,
        hub: &mut Hub,
        now: Now,
        conn: ConnId,
        io: &Rc<ConnIo>,
        decoder: &mut FrameDecoder,
        data: &mut [u8],
    ) {
        decoder.decode(data, |event| {
            let inbound = match event {
                Event::Text(text) => Inbound::Text(text.as_bytes()),
                Event::Binary => Inbound::Binary,
                Event::Ping(payload) => {
                    // Counted like every other frame owed: a client that pings and never
                    // reads is a slow consumer.
                    let queued = self.queue(io, wire::pong(payload));
                    if queued > self.max_queued {
                        hub.handle_queued(now, conn, queued);
                    }
                    Inbound::Control
                }
                Event::Pong => Inbound::Control,
                Event::Close(code) => {
                    // Answer with the same code; the peer then ends the connection.
                    self.queue_close(io, wire::close_reply(code));
                    return;
                }
                Event::Violation(Violation::TooLarge) => Inbound::TooLarge,
                Event::Violation(Violation::InvalidUtf8) => Inbound::InvalidUtf8,
                Event::Violation(Violation::Protocol(why)) => {
                    tracing::debug!(conn = ?conn, why, "protocol violation");
                    Inbound::ProtocolError
                }
            };
            hub.handle_frame(now, conn, inbound);
        });
    }
}
