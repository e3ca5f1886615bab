use std::net::TcpListener;

/// A loopback TCP port nothing listens on right now (bound to port 0, then released).
///
/// Another process may take it before the caller binds it; tests use a fresh one each
/// time rather than a fixed port, since a server with `SO_REUSEPORT` would silently share
/// a port a stale server still holds.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener
        .local_addr()
        .expect("the local address of a bound listener")
        .port()
}
