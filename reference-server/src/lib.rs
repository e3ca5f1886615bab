//! `tokio-broadcast`, the reference server hubbub is measured against (PERFORMANCE.md,
//! "The reference servers"): what a Rust developer would write first, written carefully.
//! tokio's multi-thread runtime, tokio-tungstenite, serde_json, and one
//! `tokio::sync::broadcast` channel per room, speaking PROTOCOL.md's chat subset.
//!
//! Environment: `PORT` (default 8080, `0` picks a free port), `BIND` (default `0.0.0.0`),
//! `WORKERS` (runtime worker threads, default: the number of cores). Once listening it
//! prints `listening on <addr>` on stdout.

mod connection;
pub mod protocol;
pub mod room;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::timeout;

use room::Rooms;

/// Where to listen and how many runtime threads to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `BIND`:`PORT`.
    pub addr: SocketAddr,
    /// `WORKERS`: tokio worker threads.
    pub workers: usize,
}

impl Config {
    /// Reads `PORT`, `BIND` and `WORKERS` from the environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let port = match var("PORT") {
            Some(v) => v
                .trim()
                .parse::<u16>()
                .map_err(|_| format!("bad PORT {v:?}"))?,
            None => 8080,
        };
        let bind = match var("BIND") {
            Some(v) => v
                .trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("bad BIND {v:?}"))?,
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        let workers = match var("WORKERS") {
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=1024).contains(&n) => n,
                _ => return Err(format!("bad WORKERS {v:?} (1 to 1024)")),
            },
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Ok(Config {
            addr: SocketAddr::new(bind, port),
            workers,
        })
    }
}

/// What every connection shares.
#[derive(Default)]
pub struct State {
    rooms: Rooms,
    clients: AtomicUsize,
}

impl State {
    /// Counts an open WebSocket connection until the guard is dropped.
    fn client_guard(&self) -> ClientGuard<'_> {
        self.clients.fetch_add(1, Ordering::Relaxed);
        ClientGuard(&self.clients)
    }
}

struct ClientGuard<'a>(&'a AtomicUsize);

impl Drop for ClientGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Binds the listener (with `SO_REUSEADDR`, so alternating benchmark runs can rebind at
/// once).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accepts connections forever, one task each.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    let state = Arc::new(State::default());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                eprintln!("tokio-broadcast: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        tokio::spawn(handle(stream, Arc::clone(&state)));
    }
}

async fn handle(stream: TcpStream, state: Arc<State>) {
    // Chat frames are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    match timeout(connection::HANDSHAKE_TIMEOUT, is_health_request(&stream)).await {
        Ok(Ok(false)) => connection::serve(stream, state).await,
        Ok(Ok(true)) => {
            let _ = timeout(connection::HANDSHAKE_TIMEOUT, answer_health(stream, &state)).await;
        }
        _ => {}
    }
}

/// Whether the request waiting on `stream` is `GET /health`. Peeks, so a WebSocket upgrade
/// is left untouched for tungstenite (whose handshake refuses non-upgrade requests before
/// any application callback sees them).
async fn is_health_request(stream: &TcpStream) -> io::Result<bool> {
    const PREFIX: &[u8] = b"GET /health";
    let mut buf = [0u8; PREFIX.len() + 1];
    loop {
        let n = stream.peek(&mut buf).await?;
        let seen = &buf[..n];
        if n == 0 || !PREFIX.starts_with(&seen[..n.min(PREFIX.len())]) {
            return Ok(false);
        }
        if n == buf.len() {
            return Ok(matches!(buf[PREFIX.len()], b' ' | b'?'));
        }
        // Only part of the request line has arrived: rare, wait for the rest.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Reads the request head and answers `{"status":"ok","clients":N}`.
async fn answer_health(mut stream: TcpStream, state: &State) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let body = serde_json::json!({
        "status": "ok",
        "clients": state.clients.load(Ordering::Relaxed),
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_from_vars() {
        let c = Config::from_vars(|_| None).unwrap();
        assert_eq!(c.addr, "0.0.0.0:8080".parse().unwrap());
        assert!(c.workers >= 1);
        let vars = |name: &str| match name {
            "PORT" => Some("9001".to_owned()),
            "BIND" => Some("127.0.0.1".to_owned()),
            "WORKERS" => Some("3".to_owned()),
            _ => None,
        };
        let c = Config::from_vars(vars).unwrap();
        assert_eq!((c.addr, c.workers), ("127.0.0.1:9001".parse().unwrap(), 3));
        assert!(Config::from_vars(|n| (n == "WORKERS").then(|| "0".to_owned())).is_err());
        assert!(Config::from_vars(|n| (n == "PORT").then(|| "x".to_owned())).is_err());
    }
}
