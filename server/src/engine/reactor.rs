//! The reactor: one task per worker that waits for any WebSocket connection to be ready,
//! reads each ready one once into the worker's scratch buffer, and hands the decoded
//! frames to the hub.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use hubbub_core::ws::{Event, Violation};
use hubbub_core::{ConnId, Inbound};

use super::poller::{Ready, BATCH};
use super::sessions::{by_key, lookup_mut, RING_KEY};
use super::tasks::{until, End};
use super::Engine;

/// How long the reactor waits before looking again while reads are paused.
const BACKED_UP_PAUSE: Duration = Duration::from_millis(1);

/// Bytes read from one connection per readiness event (one `recv`), into a scratch
/// buffer shared by all. Epoll is level-triggered: a connection with more to read is
/// reported again, after everyone else ready in the same pass, so a client that floods
/// is served in turn instead of holding the worker. A legitimate client (messages of at
/// most 8 KiB, rate-limited) never has more than this waiting.
pub(super) const READ_BUDGET: usize = 16 * 1024;

/// Bytes the reactor reads in one pass over the ready sockets before it yields to the
/// worker's other tasks (accepting, HTTP, the mesh inbox, timers). Sockets left over in a
/// batch are reported again by the next `epoll_wait`.
const PASS_BUDGET: usize = 1024 * 1024;

#[derive(Debug, PartialEq, Eq)]
enum Received {
    /// This many bytes were read (0: nothing was waiting); the peer may send more.
    More(usize),
    /// The peer closed its side, or the socket failed.
    End,
}

impl Engine {
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
    fn serve(self: &Rc<Self>, ready: Ready, may_read: bool) -> usize {
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
        let Some((conn, io, fd)) = by_key(&self.sessions.borrow(), ready.key)
            .map(|s| (s.id, s.io().clone(), s.fd.as_raw_fd()))
        else {
            return 0;
        };
        // Only the fallback writes on writability: with a ring the kernel finishes a
        // send itself, and a second send beside the ring's would interleave bytes.
        if ready.writable && self.ring.is_none() {
            self.send_now(&io);
            self.deliver_written_notices();
        }
        if !(ready.readable && may_read) {
            return 0;
        }
        match self.receive(fd, conn) {
            Received::End => {
                self.end(conn);
                0
            }
            Received::More(n) => n,
        }
    }

    /// Reads once (at most [`READ_BUDGET`]) into the scratch buffer and hands the frames
    /// to the hub.
    fn receive(self: &Rc<Self>, fd: RawFd, conn: ConnId) -> Received {
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
        self.decode(conn, &mut scratch[..n]);
        Received::More(n)
    }

    /// Decodes `data`, read from `conn`, gives each message to the hub, then carries out
    /// what it decided.
    pub(super) fn decode(self: &Rc<Self>, conn: ConnId, data: &mut [u8]) {
        let now = self.now();
        {
            let mut sessions = self.sessions.borrow_mut();
            let Some(session) = lookup_mut(&mut sessions, conn) else {
                return;
            };
            // The hub only decides here; its outputs (which look sessions up) are carried
            // out below, once the table is free again.
            let mut hub = self.hub.borrow_mut();
            session.decoder.decode(data, |event| {
                let inbound = match event {
                    Event::Text(text) => Inbound::Text(text.as_bytes()),
                    Event::Binary => Inbound::Binary,
                    Event::Ping(payload) => Inbound::Ping(payload),
                    Event::Pong => Inbound::Pong,
                    Event::Close(code) => Inbound::Close(code),
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
        self.drain(now);
    }
}
