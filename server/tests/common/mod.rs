//! Test harness: the real `hubbub` binary on a free loopback port, with its frames read
//! through the shared WebSocket client of `hubbub-test-support` and decoded as
//! [`ServerFrame`]s.
#![allow(dead_code)]

pub mod matrix;
pub mod tokens;
pub mod v2;

use std::io::{Read, Write};
use std::ops::{Deref, DerefMut};
use std::process::{Command, Stdio};
use std::time::Duration;

use hubbub_core::protocol::ServerFrame;
use hubbub_test_support::free_port;
use hubbub_test_support::http::{self, Response};
use hubbub_test_support::poll::wait_until;
use hubbub_test_support::process::Process;
use hubbub_test_support::ws::{WsClient, WsEvent};

/// A running `hubbub`, killed by PID when dropped.
pub struct Server {
    pub port: u16,
    pub child: Process,
}

/// How long the server may take to answer `/health` after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(10);

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
        let file = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("create the server log {}: {e}", log.display()));
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
        let server = Server {
            port,
            child: Process::spawn(&mut cmd, "hubbub"),
        };
        // Any answer will do: with its store down, `/health` says 503 and the server is up.
        let up = wait_until(START_TIMEOUT, || http::get(port, "/health").is_ok());
        assert!(up, "hubbub did not answer /health on port {port}");
        server
    }

    pub fn url(&self, query: &str) -> String {
        format!("ws://127.0.0.1:{}/ws?{query}", self.port)
    }

    pub fn connect(&self, query: &str) -> Client {
        Client::connect(&self.url(query), &[]).unwrap_or_else(|e| panic!("connect {query}: {e:?}"))
    }

    pub fn get(&self, path: &str) -> Response {
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

    pub fn request(&self, raw: &str) -> Response {
        http::send(self.port, raw).unwrap_or_else(|e| panic!("request failed: {e}"))
    }

    /// Polls `/api/analytics` until `pred` holds (the figures are merged across workers).
    pub fn analytics_until(&self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let mut last = serde_json::Value::Null;
        wait_until(Duration::from_secs(5), || {
            last = self.get_json("/api/analytics");
            pred(&last)
        });
        last
    }

    /// Sends `signal` (`TERM`, `INT`, …) to the server, by PID.
    pub fn signal(&self, signal: &str) {
        self.child.signal(signal);
    }

    /// Stops the server with SIGTERM and asserts it exits 0 (with a durable store, every
    /// accepted message is written by then).
    pub fn stop(mut self) {
        self.signal("TERM");
        let status = self.child.wait().expect("wait for hubbub to exit");
        assert!(
            status.success(),
            "hubbub exited with {status:?} after SIGTERM"
        );
    }

    /// Polls `/health` until the durable store answers (`storage: ok`).
    pub fn wait_for_storage(&self) {
        let mut last = serde_json::Value::Null;
        let ok = wait_until(Duration::from_secs(15), || {
            // 503 while the store is down: read the body whatever the status.
            last = serde_json::from_str(&self.get("/health").body).unwrap_or_default();
            last["storage"] == "ok"
        });
        assert!(ok, "the store did not come up: /health says {last}");
    }
}

/// The settings that run a server on DynamoDB at `endpoint` (a dynalite), in `table`.
pub fn dynamodb_env(endpoint: &str, table: &str) -> Vec<(&'static str, String)> {
    vec![
        ("STORE", "dynamodb".into()),
        ("DYNAMODB_ENDPOINT", endpoint.into()),
        ("DYNAMODB_TABLE", table.into()),
        // Each test's own state table too: read markers of one must not meet another's.
        ("DYNAMODB_STATE_TABLE", format!("{table}-state")),
        ("AWS_ACCESS_KEY_ID", "local".into()),
        ("AWS_SECRET_ACCESS_KEY", "local".into()),
    ]
}

fn static_dir() -> String {
    // A tiny dashboard stand-in so static serving is testable without a frontend build.
    let dir = std::env::temp_dir().join("hubbub-test-static");
    std::fs::create_dir_all(dir.join("assets")).expect("create the test static dir");
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><title>hubbub</title>",
    )
    .expect("write the test index.html");
    std::fs::write(dir.join("assets/app.js"), "console.log('hubbub')")
        .expect("write the test app.js");
    dir.display().to_string()
}

/// `method path` with `Authorization: {authorization}` when given and `body` (JSON).
pub fn call(
    server: &Server,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: &str,
) -> Response {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(a) = authorization {
        raw.push_str(&format!("Authorization: {a}\r\n"));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    http::send(server.port, &raw).unwrap()
}

/// `r` is an HTTP refusal with `status` and the JSON error `code`.
pub fn assert_refused(r: &Response, status: u16, code: &str) {
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (status, Some(code)),
        "{}",
        r.body
    );
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

/// A WebSocket client of the server: the shared client, with frames decoded as
/// [`ServerFrame`]s. Derefs to the [`WsClient`] (its `ws` for raw frames and pings).
pub struct Client(WsClient);

#[derive(Debug)]
pub enum Event {
    Frame(ServerFrame),
    Closed(Option<u16>),
}

impl Deref for Client {
    type Target = WsClient;

    fn deref(&self) -> &WsClient {
        &self.0
    }
}

impl DerefMut for Client {
    fn deref_mut(&mut self) -> &mut WsClient {
        &mut self.0
    }
}

fn is_presence(frame: &ServerFrame) -> bool {
    matches!(frame, ServerFrame::Join(_) | ServerFrame::Leave(_))
}

fn decode(text: &str) -> ServerFrame {
    ServerFrame::decode(text.as_bytes()).unwrap_or_else(|e| panic!("undecodable frame {text}: {e}"))
}

impl Client {
    /// Connects with extra request headers; on refusal returns the HTTP status and body.
    pub fn connect(url: &str, headers: &[(&str, &str)]) -> Result<Client, (u16, String)> {
        WsClient::try_connect(url, headers)
            .map(Client)
            .map_err(|refusal| (refusal.status, refusal.body))
    }

    pub fn chat(&mut self, content: &str) {
        let frame = serde_json::json!({"type": "chat", "content": content}).to_string();
        self.send_text(&frame);
    }

    /// The next frame or the close, waiting up to the read timeout.
    pub fn next(&mut self) -> Event {
        match self.next_event() {
            WsEvent::Text(text) => Event::Frame(decode(&text)),
            WsEvent::Closed(code) => Event::Closed(code),
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
                f if is_presence(&f) => continue,
                other => panic!("expected chat, got {other:?}"),
            }
        }
    }

    /// The next frame as JSON, join and leave skipped.
    pub fn next_json_not_presence(&mut self) -> serde_json::Value {
        loop {
            let frame = self.next_json();
            if frame["type"] != "join" && frame["type"] != "leave" {
                return frame;
            }
        }
    }

    /// The next error frame's code, skipping presence events.
    pub fn next_error(&mut self) -> String {
        loop {
            match self.frame() {
                ServerFrame::Error(e) => return e.code,
                f if is_presence(&f) => continue,
                other => panic!("expected error, got {other:?}"),
            }
        }
    }

    /// Asserts nothing arrives for `ms` milliseconds (presence aside).
    pub fn expect_silence(&mut self, ms: u64) {
        self.0
            .expect_silence(Duration::from_millis(ms), |text| is_presence(&decode(text)));
    }

    pub fn close(self) {
        self.0.close();
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
    .expect("send the upgrade request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("read the upgrade answer");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "upgrade refused: {}",
        String::from_utf8_lossy(&head)
    );
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
