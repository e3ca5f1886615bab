//! TCP connect with a chosen source address (bind before connect), handed to monoio.
//!
//! Spreading connections over 127.0.0.2, .3, … gives each source address its own
//! ephemeral port range, so tens of thousands of connections to one server port do not
//! run out of ports. `IP_BIND_ADDRESS_NO_PORT` lets the kernel pick the port at connect
//! time, from the whole 4-tuple.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

/// The default source addresses for a loopback target: 127.0.0.2 ..= 127.0.0.(1 + n).
pub fn loopback_sources(n: usize) -> Vec<IpAddr> {
    (0..n.clamp(1, 250))
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8)))
        .collect()
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A `sockaddr_storage` for `addr` and its length.
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for
            // sockaddr_in, and the pointer comes from a live local.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// Creates a non-blocking TCP socket, binds it to `source` (port chosen at connect) when
/// given, and starts connecting to `dst`. The connection completes when the socket
/// becomes writable; check [`take_error`] then.
pub fn start_connect(dst: SocketAddr, source: Option<IpAddr>) -> io::Result<OwnedFd> {
    let domain = if dst.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket creation; the result is checked.
    let fd = cvt(unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: `fd` was just returned by socket() and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    if let Some(src) = source.filter(|s| s.is_ipv4() == dst.is_ipv4()) {
        let one: libc::c_int = 1;
        // SAFETY: `one` is a valid c_int for the option's size. Failure (old kernels)
        // only means the port is chosen at bind time, so the result is ignored.
        unsafe {
            libc::setsockopt(
                raw,
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                &one as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        let (ss, len) = sockaddr(SocketAddr::new(src, 0));
        // SAFETY: `ss` holds a valid sockaddr of `len` bytes.
        cvt(unsafe { libc::bind(raw, &ss as *const _ as *const libc::sockaddr, len) })?;
    }
    let (ss, len) = sockaddr(dst);
    // SAFETY: `ss` holds a valid sockaddr of `len` bytes.
    let r = unsafe { libc::connect(raw, &ss as *const _ as *const libc::sockaddr, len) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    Ok(fd)
}

/// The pending socket error (`SO_ERROR`), if any.
pub fn take_error(fd: libc::c_int) -> io::Result<Option<io::Error>> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid, writable and sized for SO_ERROR.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut _ as *mut libc::c_void,
            &mut len,
        )
    })?;
    Ok((err != 0).then(|| io::Error::from_raw_os_error(err)))
}

/// Sets or clears `O_NONBLOCK`.
pub fn set_nonblocking(fd: libc::c_int, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer flags only.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) })?;
    Ok(())
}

/// Connects to `dst` from `source` within `timeout`, on the current monoio runtime.
pub async fn connect(
    dst: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> io::Result<monoio::net::TcpStream> {
    let fd = start_connect(dst, source)?;
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let stream = monoio::net::TcpStream::from_std(std::net::TcpStream::from(fd))?;
    match monoio::time::timeout(timeout, stream.writable(false)).await {
        Ok(r) => r?,
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    }
    if let Some(e) = take_error(raw)? {
        return Err(e);
    }
    if !monoio::utils::is_legacy() {
        // io_uring drives blocking sockets itself (it polls internally); with O_NONBLOCK
        // some kernels hand EAGAIN back instead.
        set_nonblocking(raw, false)?;
    }
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A short name for a connect error, for counting failures by kind.
pub fn error_kind(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => "refused".into(),
        Some(libc::ECONNRESET) => "reset".into(),
        Some(libc::ETIMEDOUT) => "timeout".into(),
        Some(libc::EADDRNOTAVAIL) => "no_source_port".into(),
        Some(libc::EMFILE | libc::ENFILE) => "too_many_open_files".into(),
        Some(libc::ENETUNREACH | libc::EHOSTUNREACH) => "unreachable".into(),
        _ => match e.kind() {
            io::ErrorKind::TimedOut => "timeout".into(),
            io::ErrorKind::UnexpectedEof => "eof".into(),
            io::ErrorKind::ConnectionReset => "reset".into(),
            io::ErrorKind::BrokenPipe => "broken_pipe".into(),
            _ => "io".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;

    #[test]
    fn bind_before_connect_uses_the_source_address() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let dst = l.local_addr().unwrap();
        let src = loopback_sources(3)[2];
        assert_eq!(src, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)));
        let fd = start_connect(dst, Some(src)).unwrap();
        let (_peer, from) = l.accept().unwrap();
        assert_eq!(from.ip(), src);
        assert!(take_error(fd.as_raw_fd()).unwrap().is_none());
        set_nonblocking(fd.as_raw_fd(), false).unwrap();
        set_nonblocking(fd.as_raw_fd(), true).unwrap();
        let v6 = start_connect("[::1]:1".parse().unwrap(), Some(src));
        // Either IPv6 loopback exists (and port 1 refuses) or it does not; never a panic.
        drop(v6);
    }

    #[test]
    fn monoio_connect_and_refusal() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let dst = l.local_addr().unwrap();
        drop(l);
        let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        let e = rt
            .block_on(connect(dst, None, Duration::from_secs(2)))
            .err()
            .unwrap();
        assert_eq!(error_kind(&e), "refused");
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let dst = l.local_addr().unwrap();
        let s = rt
            .block_on(connect(
                dst,
                loopback_sources(1).first().copied(),
                Duration::from_secs(2),
            ))
            .unwrap();
        assert_eq!(s.peer_addr().unwrap(), dst);
    }
}
