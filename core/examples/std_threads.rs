//! A complete hubbub chat server on plain `std::net` + threads + tungstenite: the sans-IO
//! core needs no async runtime.
//!
//! ```text
//! cargo run -p hubbub-core --example std_threads -- 127.0.0.1:9000
//! websocat 'ws://127.0.0.1:9000/ws?userId=alice&room=lobby'
//! ```
//!
//! The run loop: one [`Hub`] (one worker) sits in a `Mutex` with a map from [`ConnId`] to
//! each connection's outbox. Every input — a connection admitted, a frame read, a
//! connection gone, the once-a-second timer — locks it, calls the hub's `handle_*` with
//! the time read from the OS clock, then drains [`Hub::poll_output`] until
//! [`Output::Timeout`], pushing each frame into its recipients' outboxes (a broadcast's
//! bytes are shared, not copied, by every recipient). A thread per connection reads with
//! a short timeout and writes what its outbox holds between reads.
//!
//! Being a clear example rather than a fast one, it keeps a thread per socket and up to
//! `POLL` of extra latency; the `hubbub` server drives the same core with io_uring.

// A driver reads the clock and hands the time to the core; core's clippy.toml bans clock
// reads for the library, not for its drivers.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hubbub_core::protocol::MAX_FRAME_BYTES;
use hubbub_core::upgrade::UpgradeRequest;
use hubbub_core::*;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::http::header::{HeaderValue, CONTENT_TYPE};
use tungstenite::protocol::{frame::coding::CloseCode, CloseFrame, WebSocketConfig};
use tungstenite::{Error, Message, Utf8Bytes};

/// How long a connection thread waits for a frame before writing its outbox.
const POLL: Duration = Duration::from_millis(5);

/// What the hub asks a connection's thread to do.
enum Out {
    Frame(Bytes),
    Ping,
    Close(u16, &'static str),
}

struct Outbox {
    tx: Sender<Out>,
    /// Bytes handed to the thread and not yet written (for slow-consumer protection).
    queued: Arc<AtomicUsize>,
}

/// The hub and where its outputs go.
struct Shared {
    hub: Hub,
    outboxes: HashMap<ConnId, Outbox>,
    epoch: Instant,
}

impl Shared {
    fn now(&self) -> Now {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mono = Instant::now().duration_since(self.epoch);
        Now::new(
            Mono::from_nanos(mono.as_nanos() as u64),
            UnixMillis(wall.as_millis() as u64),
        )
    }

    /// One input, then drain the outputs it caused.
    fn input<R>(&mut self, f: impl FnOnce(&mut Hub, Now) -> R) -> R {
        let now = self.now();
        let result = f(&mut self.hub, now);
        self.drain(now);
        result
    }

    fn drain(&mut self, now: Now) {
        let mut backed_up = Vec::new();
        let mut written = Vec::new();
        let mut unchecked = Vec::new();
        loop {
            let (conn, out) = match self.hub.poll_output() {
                Output::Deliver { frame, to, .. } => {
                    for &conn in to.iter() {
                        self.push(conn, Out::Frame(frame.clone()), &mut backed_up);
                    }
                    continue;
                }
                Output::Send { conn, frame } => (conn, Out::Frame(frame)),
                Output::Ping { conn } => (conn, Out::Ping),
                Output::Close { conn, code, reason } => (conn, Out::Close(code, reason)),
                // The writer threads take frames as fast as they are queued (what is still
                // queued is reported with `handle_queued`), so a replay's next slice can
                // follow at once.
                Output::NotifyWritten { conn } => {
                    written.push(conn);
                    continue;
                }
                // No file store here: a message with attachments is refused.
                Output::CheckFiles { id, .. } => {
                    unchecked.push(id);
                    continue;
                }
                // One process, no broker: rooms are never shared, so never sequenced outside.
                Output::Sequence { .. } | Output::FetchMessages { .. } | Output::Unwatch { .. } => {
                    continue
                }
                Output::Timeout(_) => break,
                // tungstenite answers pings and the client's close itself (fed to the hub
                // as a pong and not at all), so these never come.
                Output::Pong { .. } | Output::CloseReply { .. } => continue,
                // One worker: no peers; no HTTP queries, no durable store in this example.
                Output::Peer { .. }
                | Output::Reply { .. }
                | Output::LoadRoom { .. }
                | Output::LoadRange { .. } => continue,
            };
            self.push(conn, out, &mut backed_up);
        }
        for (conn, bytes) in backed_up {
            self.hub.handle_queued(now, conn, bytes);
            self.drain(now);
        }
        for conn in written {
            self.hub.handle_written(now, conn);
            self.drain(now);
        }
        for id in unchecked {
            self.hub.handle_files_checked(now, id, None);
            self.drain(now);
        }
    }

    fn push(&mut self, conn: ConnId, out: Out, backed_up: &mut Vec<(ConnId, usize)>) {
        let Some(outbox) = self.outboxes.get(&conn) else {
            return;
        };
        if let Out::Frame(frame) = &out {
            let queued = outbox.queued.fetch_add(frame.len(), Ordering::Relaxed) + frame.len();
            if queued > self.hub.config().max_queued_bytes {
                backed_up.push((conn, queued));
            }
        }
        let _ = outbox.tx.send(out);
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Serves `GET /ws` on `listener` until the process ends.
pub fn serve(listener: TcpListener) -> std::io::Result<()> {
    let hub = Hub::new(HubConfig::new(WorkerId(0), 1), ConnectionGauge::new(10_000));
    let outboxes = HashMap::new();
    let shared = Arc::new(Mutex::new(Shared {
        hub,
        outboxes,
        epoch: Instant::now(),
    }));
    let timer = shared.clone();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(1));
        lock(&timer).input(|hub, now| hub.handle_timeout(now));
    });
    for stream in listener.incoming() {
        let shared = shared.clone();
        let stream = stream?;
        std::thread::spawn(move || connection(&shared, stream));
    }
    Ok(())
}

/// One connection's life: the upgrade (refused before any frame if the hub says no), the
/// join, then reading frames and writing the outbox in turn until either side closes.
fn connection(shared: &Mutex<Shared>, stream: TcpStream) {
    let mut admission = None;
    #[allow(clippy::result_large_err)] // the error type is tungstenite's
    let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let (status, body) = if req.uri().path() != "/ws" {
            (
                404,
                br#"{"error":"not_found","message":"no such path"}"#.to_vec(),
            )
        } else {
            let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
            let upgrade = UpgradeRequest {
                query: req.uri().query().unwrap_or(""),
                origin: header("origin"),
                authorization: header("authorization"),
            };
            let guard = lock(shared);
            match guard.hub.admit(guard.now(), &upgrade) {
                Ok(a) => {
                    admission = Some(a);
                    return Ok(resp);
                }
                Err(refusal) => (refusal.status(), refusal.body()),
            }
        };
        let mut refusal = ErrorResponse::new(Some(String::from_utf8_lossy(&body).into_owned()));
        *refusal.status_mut() = status.try_into().unwrap_or_default();
        let json = HeaderValue::from_static("application/json");
        refusal.headers_mut().insert(CONTENT_TYPE, json);
        Err(refusal)
    };
    let config = WebSocketConfig::default().max_message_size(Some(MAX_FRAME_BYTES));
    let Ok(mut ws) = tungstenite::accept_hdr_with_config(stream, check, Some(config)) else {
        return;
    };
    let Some(admission) = admission else { return };
    let _ = ws.get_ref().set_read_timeout(Some(POLL));
    let _ = ws.get_ref().set_write_timeout(Some(Duration::from_secs(1)));
    let (tx, rx): (Sender<Out>, Receiver<Out>) = channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let conn = {
        // Register the outbox before draining, so the backlog the join queued finds it.
        let mut guard = lock(shared);
        let now = guard.now();
        let conn = guard.hub.handle_open(now, admission);
        let outbox = Outbox {
            tx,
            queued: queued.clone(),
        };
        guard.outboxes.insert(conn, outbox);
        guard.drain(now);
        conn
    };
    let feed =
        |frame: Inbound<'_>| lock(shared).input(|hub, now| hub.handle_frame(now, conn, frame));
    let mut unflushed = 0;
    'conn: loop {
        match ws.read() {
            Ok(Message::Text(text)) => feed(Inbound::Text(text.as_bytes())),
            Ok(Message::Binary(_)) => feed(Inbound::Binary),
            // tungstenite answers a ping itself: for the hub it is activity, like a pong.
            Ok(Message::Ping(_) | Message::Pong(_)) => feed(Inbound::Pong),
            Ok(Message::Close(_) | Message::Frame(_)) => {} // tungstenite answers the close
            Err(Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(Error::Capacity(_)) => feed(Inbound::TooLarge),
            Err(Error::Utf8(_)) => feed(Inbound::InvalidUtf8),
            Err(Error::Protocol(_)) => feed(Inbound::ProtocolError),
            Err(_) => break, // closed, or the socket failed
        }
        for out in rx.try_iter() {
            let written = match out {
                Out::Frame(frame) => {
                    unflushed += frame.len();
                    let text = Utf8Bytes::try_from(frame).expect("the hub writes UTF-8 JSON");
                    ws.write(Message::Text(text))
                }
                Out::Ping => ws.write(Message::Ping(Bytes::new())),
                Out::Close(code, reason) => {
                    let code = CloseCode::from(code);
                    let _ = ws.close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    }));
                    let _ = ws.flush();
                    break 'conn;
                }
            };
            if written.is_err() {
                break 'conn;
            }
        }
        // Bytes still in tungstenite's buffer after a timed-out write stay counted.
        if ws.flush().is_ok() {
            queued.fetch_sub(std::mem::take(&mut unflushed), Ordering::Relaxed);
        }
    }
    let mut guard = lock(shared);
    guard.outboxes.remove(&conn);
    guard.input(|hub, now| hub.handle_close(now, conn));
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".to_owned());
    let listener = TcpListener::bind(&addr)?;
    println!("hubbub (std threads) on ws://{}/ws", listener.local_addr()?);
    serve(listener)
}
