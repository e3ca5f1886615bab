//! What the worker's unit tests share: real socket pairs and connection ids.

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use hubbub_core::upgrade::UpgradeRequest;
use hubbub_core::{ConnId, ConnectionGauge, Hub, HubConfig, Mono, Now, UnixMillis, WorkerId};

/// A connected pair on loopback: (our side, the peer, with a 5 s read timeout).
pub fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (ours, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (ours, peer)
}

/// A connection id from a real hub (the type has no public constructor).
pub fn conn() -> ConnId {
    let mut hub = Hub::new(HubConfig::new(WorkerId(0), 1), ConnectionGauge::new(10));
    let now = Now::new(Mono::from_nanos(0), UnixMillis(1_795_257_000_000));
    let request = UpgradeRequest {
        query: "userId=u&room=r",
        ..Default::default()
    };
    let admission = hub.admit(now, &request).unwrap();
    hub.handle_open(now, admission)
}

/// Makes closing `socket` reset the connection (linger 0), so the other side's next
/// write fails.
pub fn reset_on_close(socket: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    set_option(socket, libc::SO_LINGER, &linger);
}

/// Shrinks `socket`'s send buffer (the kernel doubles and rounds it).
pub fn small_send_buffer(socket: &TcpStream, bytes: libc::c_int) {
    set_option(socket, libc::SO_SNDBUF, &bytes);
}

/// Sets the `SOL_SOCKET` option `name` of `socket` to `value`.
fn set_option<T>(socket: &TcpStream, name: libc::c_int, value: &T) {
    // SAFETY: setsockopt reads `size_of::<T>()` bytes from `value`, a live reference.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt {name}");
}
