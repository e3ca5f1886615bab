//! Test harness: the real `hubbub` binary on a free loopback port, a real WebSocket
//! client (tungstenite over std::net) and a plain HTTP/1.1 client.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hubbub_core::protocol::ServerFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

pub struct Server {
    pub port: u16,
    pub child: Child,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts the binary with `WORKERS=workers` plus `env`, and waits for `/health`.
    pub fn start(workers: u16, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        Server::start_on(port, workers, env)
    }

    pub fn start_on(port: u16, workers: u16, env: &[(&str, &str)]) -> Server {
        Server::start_with_stderr(port, workers, env, Stdio::inherit())
    }

    /// Like [`start`](Server::start), with the server's log (its standard error) written
    /// to `log`.
    pub fn start_logging_to(workers: u16, env: &[(&str, &str)], log: &std::path::Path) -> Server {
        let file = std::fs::File::create(log).unwrap();
        Server::start_with_stderr(free_port(), workers, env, Stdio::from(file))
    }

    fn start_with_stderr(port: u16, workers: u16, env: &[(&str, &str)], stderr: Stdio) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hubbub"));
        cmd.env_clear()
            .env("PORT", port.to_string())
            .env("BIND", "127.0.0.1")
            .env("WORKERS", workers.to_string())
            .env("LOG_LEVEL", "warn")
            .env("STATIC_DIR", static_dir())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start hubbub");
        let server = Server { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok()
                && server.try_get("/health").is_some()
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("hubbub did not become healthy on port {port}");
    }

    pub fn url(&self, query: &str) -> String {
        format!("ws://127.0.0.1:{}/ws?{query}", self.port)
    }

    pub fn connect(&self, query: &str) -> Client {
        Client::connect(&self.url(query), &[]).unwrap_or_else(|e| panic!("connect {query}: {e:?}"))
    }

    fn try_get(&self, path: &str) -> Option<HttpResponse> {
        http(
            self.port,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
        .ok()
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        self.request(&format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ))
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "GET {path}"
        );
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("GET {path}: {e}: {}", r.body))
    }

    pub fn request(&self, raw: &str) -> HttpResponse {
        http(self.port, raw).unwrap_or_else(|e| panic!("request failed: {e}"))
    }

    /// Polls `/api/analytics` until `pred` holds (the figures are merged across workers).
    pub fn analytics_until(&self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let a = self.get_json("/api/analytics");
            if pred(&a) || Instant::now() > deadline {
                return a;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn static_dir() -> String {
    // A tiny dashboard stand-in so static serving is testable without a frontend build.
    let dir = std::env::temp_dir().join("hubbub-test-static");
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><title>hubbub</title>",
    )
    .unwrap();
    std::fs::write(dir.join("assets/app.js"), "console.log('hubbub')").unwrap();
    dir.display().to_string()
}

/// The `seq` of each message of a history body (`{"messages":[…]}`), in order.
pub fn seqs(body: &serde_json::Value) -> Vec<u64> {
    messages(body)
        .map(|m| m["seq"].as_u64().expect("seq"))
        .collect()
}

/// The `content` of each message of a history body, in order.
pub fn contents(body: &serde_json::Value) -> Vec<&str> {
    messages(body)
        .map(|m| m["content"].as_str().expect("content"))
        .collect()
}

fn messages(body: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    body["messages"]
        .as_array()
        .expect("a messages array")
        .iter()
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Sends `raw` and reads one response (to Content-Length, or to EOF).
pub fn http(port: u16, raw: &str) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(raw.as_bytes())?;
    read_response(&mut s)
}

/// Reads exactly one response, so that pipelined responses that arrive together are
/// left for the next call (the head a byte at a time, then exactly its body).
pub fn read_response(s: &mut TcpStream) -> std::io::Result<HttpResponse> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    let head_end = loop {
        if buf.ends_with(b"\r\n\r\n") {
            break buf.len();
        }
        if s.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.push(byte[0]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap_or("")
        .split(' ')
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    let len: Option<usize> = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok());
    let mut body = Vec::new();
    match len {
        Some(len) => {
            body.resize(len, 0);
            s.read_exact(&mut body)?;
        }
        None => {
            let _ = s.read_to_end(&mut body);
        }
    }
    Ok(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    })
}

pub struct Client {
    pub ws: WebSocket<TcpStream>,
}

#[derive(Debug)]
pub enum Event {
    Frame(ServerFrame),
    Closed(Option<u16>),
}

impl Client {
    /// Connects with extra request headers; on refusal returns the HTTP status and body.
    pub fn connect(url: &str, headers: &[(&str, &str)]) -> Result<Client, (u16, String)> {
        use tungstenite::client::IntoClientRequest;
        let mut req = url.into_client_request().unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let host = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let stream = TcpStream::connect(host).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        match tungstenite::client(req, stream) {
            Ok((ws, _)) => Ok(Client { ws }),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
                let body = resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).to_string())
                    .unwrap_or_default();
                Err((resp.status().as_u16(), body))
            }
            Err(e) => panic!("handshake: {e}"),
        }
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).unwrap();
    }

    pub fn chat(&mut self, content: &str) {
        let frame = serde_json::json!({"type": "chat", "content": content}).to_string();
        self.send_text(&frame);
    }

    /// The next frame or the close, waiting up to the read timeout.
    pub fn next(&mut self) -> Event {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let frame = ServerFrame::decode(t.as_bytes())
                        .unwrap_or_else(|e| panic!("undecodable frame {t}: {e}"));
                    return Event::Frame(frame);
                }
                Ok(Message::Close(c)) => return Event::Closed(c.map(|c| u16::from(c.code))),
                Ok(_) => continue,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Event::Closed(None)
                }
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    pub fn frame(&mut self) -> ServerFrame {
        match self.next() {
            Event::Frame(f) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The next chat message, skipping presence events.
    pub fn next_chat(&mut self) -> hubbub_core::protocol::ChatMessage {
        loop {
            match self.frame() {
                ServerFrame::Chat(m) => return m,
                ServerFrame::Join(_) | ServerFrame::Leave(_) => continue,
                other => panic!("expected chat, got {other:?}"),
            }
        }
    }

    /// The next error frame's code, skipping presence events.
    pub fn next_error(&mut self) -> String {
        loop {
            match self.frame() {
                ServerFrame::Error(e) => return e.code,
                ServerFrame::Join(_) | ServerFrame::Leave(_) => continue,
                other => panic!("expected error, got {other:?}"),
            }
        }
    }

    /// Reads until the connection closes; returns the close code.
    pub fn close_code(&mut self) -> Option<u16> {
        loop {
            if let Event::Closed(code) = self.next() {
                return code;
            }
        }
    }

    /// Asserts nothing arrives for `ms` milliseconds (presence aside).
    pub fn expect_silence(&mut self, ms: u64) {
        self.ws
            .get_mut()
            .set_read_timeout(Some(Duration::from_millis(ms)))
            .unwrap();
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let f = ServerFrame::decode(t.as_bytes()).unwrap();
                    assert!(
                        matches!(f, ServerFrame::Join(_) | ServerFrame::Leave(_)),
                        "unexpected {f:?}"
                    );
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) => panic!("read: {e}"),
            }
        }
        self.ws
            .get_mut()
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
    }

    pub fn close(mut self) {
        let _ = self.ws.close(Some(tungstenite::protocol::CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }));
        let _ = self.ws.flush();
    }
}

/// A WebSocket client socket with a 4 KiB receive buffer that will never read.
pub fn stuck_client(port: u16, query: &str) -> std::net::TcpStream {
    let mut s = tiny_receive_buffer(port);
    s.write_all(
        format!(
            "GET /ws?{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    s
}

/// A connection to `port` whose receive buffer is 4 KiB: what it does not read soon
/// fills the server's side.
pub fn tiny_receive_buffer(port: u16) -> std::net::TcpStream {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket(2); the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0);
    let size: libc::c_int = 4096;
    // SAFETY: `fd` is the socket just made; the option value is a live c_int whose size
    // is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    // SAFETY: `fd` is an open socket owned by nothing else; the TcpStream takes ownership
    // and closes it on drop.
    let s = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `addr` is a valid sockaddr_in for the call's duration, with its size given.
    let rc = unsafe {
        libc::connect(
            fd,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    s
}
