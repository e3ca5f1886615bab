//! A blocking WebSocket client for black-box tests: tungstenite over a std `TcpStream`
//! with a read timeout, so that a server that stays silent fails the test instead of
//! hanging it.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::Duration;

use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderName;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{HandshakeError, Message, WebSocket};

/// How long a read waits before the test fails (and what [`WsClient::expect_silence`]
/// restores afterwards). Generous on purpose: only a failing test waits it out, and on a
/// loaded 2-core CI machine (tests in parallel, dynalite, a server loading a room from
/// it) 5 s was seen to run out once.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// An open WebSocket connection.
pub struct WsClient {
    /// The connection itself, for tests that send raw frames or read pings.
    pub ws: WebSocket<TcpStream>,
}

/// An upgrade the server refused: its HTTP response (header names lower-case).
pub type Refusal = crate::http::Response;

/// What the next read brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// A text message.
    Text(String),
    /// The connection closed: the close frame's code, or `None` (no code, or no close
    /// frame before the end of the stream).
    Closed(Option<u16>),
}

impl WsClient {
    /// Connects to `url` (`ws://host:port/path?query`); panics if the upgrade fails.
    pub fn connect(url: &str) -> WsClient {
        WsClient::try_connect(url, &[])
            .unwrap_or_else(|r| panic!("the upgrade to {url} was refused: {} {}", r.status, r.body))
    }

    /// Connects to `url` with extra request header fields; a refusal with an HTTP
    /// response is returned, any other failure panics.
    pub fn try_connect(url: &str, headers: &[(&str, &str)]) -> Result<WsClient, Refusal> {
        let mut request = url
            .into_client_request()
            .unwrap_or_else(|e| panic!("not a WebSocket URL {url:?}: {e}"));
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .unwrap_or_else(|e| panic!("bad header name {name:?}: {e}"));
            let value = value
                .parse()
                .unwrap_or_else(|e| panic!("bad value {value:?} for {name}: {e}"));
            request.headers_mut().insert(name, value);
        }
        let host = url
            .trim_start_matches("ws://")
            .split(['/', '?'])
            .next()
            .unwrap_or_default();
        let stream =
            TcpStream::connect(host).unwrap_or_else(|e| panic!("cannot connect to {host}: {e}"));
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("set a read timeout on a connected socket");
        match tungstenite::client(request, stream) {
            Ok((ws, _)) => Ok(WsClient { ws }),
            Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => Err(Refusal {
                status: response.status().as_u16(),
                headers: response
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                        (k.as_str().to_owned(), v)
                    })
                    .collect(),
                body: response
                    .body()
                    .as_deref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default(),
            }),
            Err(e) => panic!("the handshake with {url} failed: {e}"),
        }
    }

    /// Sends one text message.
    pub fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text))
            .unwrap_or_else(|e| panic!("send a text message: {e}"));
    }

    /// The next text message or the close, waiting up to the read timeout (pings and
    /// pongs are skipped; tungstenite answers pings itself).
    pub fn next_event(&mut self) -> WsEvent {
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => return WsEvent::Text(text.as_str().to_owned()),
                Ok(Message::Close(frame)) => {
                    return WsEvent::Closed(frame.map(|f| u16::from(f.code)))
                }
                Ok(Message::Binary(b)) => panic!("unexpected binary message ({} bytes)", b.len()),
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return WsEvent::Closed(None)
                }
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// The next text message; panics if the connection closes first.
    pub fn next_text(&mut self) -> String {
        match self.next_event() {
            WsEvent::Text(text) => text,
            WsEvent::Closed(code) => {
                panic!("expected a text message, the connection closed ({code:?})")
            }
        }
    }

    /// The next text message as JSON.
    pub fn next_json(&mut self) -> serde_json::Value {
        let text = self.next_text();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// Reads until the connection closes; returns the close code.
    pub fn close_code(&mut self) -> Option<u16> {
        loop {
            if let WsEvent::Closed(code) = self.next_event() {
                return code;
            }
        }
    }

    /// Asserts that no text message arrives for `quiet`, except those `ignored` accepts
    /// (presence events, say); then restores the usual read timeout.
    pub fn expect_silence(&mut self, quiet: Duration, mut ignored: impl FnMut(&str) -> bool) {
        self.set_read_timeout(quiet);
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    assert!(ignored(text.as_str()), "expected silence, got {text}")
                }
                Ok(Message::Close(frame)) => panic!("expected silence, got a close: {frame:?}"),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    break
                }
                Err(e) => panic!("read: {e}"),
            }
        }
        self.set_read_timeout(READ_TIMEOUT);
    }

    /// The next text message or the close if one comes within `wait`, else `None` (pings
    /// and pongs are skipped); then restores the usual read timeout. For tests that read
    /// until a quiet moment, or time when a frame comes.
    pub fn next_event_within(&mut self, wait: Duration) -> Option<WsEvent> {
        let deadline = std::time::Instant::now() + wait;
        let event = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break None;
            }
            self.set_read_timeout(left);
            match self.ws.read() {
                Ok(Message::Text(text)) => break Some(WsEvent::Text(text.as_str().to_owned())),
                Ok(Message::Close(frame)) => {
                    break Some(WsEvent::Closed(frame.map(|f| u16::from(f.code))))
                }
                Ok(Message::Binary(b)) => panic!("unexpected binary message ({} bytes)", b.len()),
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    break Some(WsEvent::Closed(None))
                }
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    break None
                }
                Err(e) => panic!("read: {e}"),
            }
        };
        self.set_read_timeout(READ_TIMEOUT);
        event
    }

    /// Sets how long a read waits.
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.ws
            .get_mut()
            .set_read_timeout(Some(timeout))
            .expect("set a read timeout on a connected socket");
    }

    /// Sends a normal close and flushes it; errors are ignored (the server may have
    /// closed already).
    pub fn close(mut self) {
        let _ = self.ws.close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }));
        let _ = self.ws.flush();
    }
}
