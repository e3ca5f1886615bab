//! The worker's readiness set: every open WebSocket connection of the worker in one
//! epoll instance, which a single task waits on.
//!
//! Waiting per connection (a read with a buffer in flight, or a poll operation and the
//! task that awaits it) costs user memory for every idle connection. Here an idle
//! connection costs an epoll registration, which lives in the kernel; the worker learns
//! which sockets are ready in batches and reads them into one scratch buffer.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

/// What epoll reported for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    /// The key the connection was added with.
    pub key: u64,
    /// Bytes, the end of the stream, or an error are waiting to be read.
    pub readable: bool,
    /// The socket accepts bytes again (only reported while writes are watched).
    pub writable: bool,
}

/// Events taken per `epoll_wait`.
pub const BATCH: usize = 256;

/// An epoll set of sockets.
pub struct Poller {
    /// The epoll descriptor, wrapped in monoio's TcpStream only to wait on it: monoio has
    /// no general "pollable descriptor" type, and its `readable()` is a plain poll of the
    /// descriptor (io_uring POLL_ADD, or its own epoll in fallback mode), which an epoll
    /// descriptor supports. No other stream method is ever called on it. Dropping it
    /// closes the descriptor.
    epoll: monoio::net::TcpStream,
}

const READ_EVENTS: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;

impl Poller {
    /// A new, empty set. Must be called inside the worker's runtime.
    pub fn new() -> io::Result<Poller> {
        // SAFETY: epoll_create1 takes no pointers; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let std = unsafe { std::net::TcpStream::from_raw_fd(fd) };
        let epoll = monoio::net::TcpStream::from_std(std)?;
        Ok(Poller { epoll })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, key: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: key };
        // SAFETY: the epoll descriptor is open while `self` lives; `event` is a live local
        // the kernel only reads. A stale `fd` can only make the call fail.
        let r = unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut event) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Watches `fd` for reading; events carry `key`.
    pub fn add(&self, fd: RawFd, key: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, READ_EVENTS, key)
    }

    /// Watches `fd` for writing as well (while its send buffer is full), or no longer.
    pub fn watch_writes(&self, fd: RawFd, key: u64, on: bool) -> io::Result<()> {
        let events = if on {
            READ_EVENTS | libc::EPOLLOUT as u32
        } else {
            READ_EVENTS
        };
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, key)
    }

    /// Stops watching `fd` (before it is closed).
    pub fn remove(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits until some socket in the set is ready.
    pub async fn wait(&self) -> io::Result<()> {
        self.epoll.readable(false).await
    }

    /// Takes up to [`BATCH`] ready sockets without waiting; `out` is cleared first.
    pub fn poll(&self, out: &mut Vec<Ready>) {
        out.clear();
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; BATCH];
        // SAFETY: the kernel writes at most BATCH entries into `events`, a live local of
        // that length; timeout 0 never blocks.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                BATCH as libc::c_int,
                0,
            )
        };
        for e in events.iter().take(n.max(0) as usize) {
            let flags = e.events;
            out.push(Ready {
                key: e.u64,
                readable: flags & (READ_EVENTS | (libc::EPOLLHUP | libc::EPOLLERR) as u32) != 0,
                // An error is reported as readable: the read sees it and ends the
                // connection. Counting it as writable too could start a second send.
                writable: flags & libc::EPOLLOUT as u32 != 0,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    use super::*;

    #[test]
    fn reports_readable_writable_and_forgets_removed_sockets() {
        let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (ours, _) = listener.accept().unwrap();
            let poller = Poller::new().unwrap();
            let mut out = Vec::new();
            poller.add(ours.as_raw_fd(), 7).unwrap();
            poller.poll(&mut out);
            assert!(out.is_empty(), "nothing to read yet");

            peer.write_all(b"x").unwrap();
            monoio::time::timeout(Duration::from_secs(5), poller.wait())
                .await
                .expect("woken by the peer's byte")
                .unwrap();
            poller.poll(&mut out);
            assert_eq!(
                out,
                [Ready {
                    key: 7,
                    readable: true,
                    writable: false
                }]
            );

            poller.watch_writes(ours.as_raw_fd(), 7, true).unwrap();
            poller.poll(&mut out);
            assert_eq!(out.len(), 1);
            assert!(out[0].writable && out[0].readable);
            poller.watch_writes(ours.as_raw_fd(), 7, false).unwrap();

            // The peer resets the connection: an error is readable (the read ends the
            // connection), never writable — a writable report could start a second send
            // beside the send ring's.
            crate::engine::test_support::reset_on_close(&peer);
            drop(peer);
            std::thread::sleep(Duration::from_millis(50));
            poller.poll(&mut out);
            assert_eq!(out.len(), 1);
            assert!(out[0].readable && !out[0].writable, "{:?}", out[0]);

            poller.remove(ours.as_raw_fd()).unwrap();
            poller.poll(&mut out);
            assert!(out.is_empty(), "a removed socket is not reported");
            assert!(
                poller.remove(ours.as_raw_fd()).is_err(),
                "and cannot be removed twice"
            );
        });
    }
}
