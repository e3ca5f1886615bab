//! One WebSocket connection: the upgrade, then a reader (this task) that validates and
//! publishes, and a writer task that forwards the room's broadcasts and this connection's
//! own error and close frames.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::protocol::{parse_chat, Params, MAX_FRAME_BYTES};
use super::room::Room;
use super::State;

type WsSink = SplitSink<WebSocketStream<TcpStream>, Message>;
type WsSource = SplitStream<WebSocketStream<TcpStream>>;

/// Longest a peer may take to complete the upgrade.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest one batch of writes may stay blocked on a peer that does not read its socket
/// before the connection is dropped (the broadcast lag check cannot fire while the writer
/// is stuck inside a write).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the writer gets to send a final close frame once the reader is done.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Frames the writer buffers before one flush (one `write` syscall) when a burst is queued.
const MAX_BATCH: usize = 64;
/// This connection's own outbound frames (errors, close) waiting for the writer.
const CONTROL_QUEUE: usize = 32;

/// The tungstenite configuration of every connection.
///
/// - `read_buffer_size` 4 KiB instead of the default 128 KiB: the read buffer is allocated
///   up front for every connection, and 128 KiB of it made an idle connection cost ~139 KB
///   (PERFORMANCE.md, S3). Client frames are small (at most 8 KiB, usually ~100 B), so 4 KiB
///   costs one extra `read` for the rare big frame and nothing otherwise.
/// - `write_buffer_size` 16 KiB instead of 128 KiB: this is how many bytes of queued frames
///   tungstenite gathers before it writes them to the socket on its own; the writer flushes
///   after each batch of at most [`MAX_BATCH`] frames anyway. The buffer is allocated lazily
///   but keeps its largest size, so 16 KiB (≈ 60 typical 250-byte broadcasts per `write`,
///   already far past the point where the syscall cost is amortized) bounds what a burst
///   leaves behind on each connection, where 128 KiB would let every member of a busy room
///   keep 128 KiB.
/// - `max_frame_size` / `max_message_size` 8192: PROTOCOL.md §3 (a bigger frame gets 1009).
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024)
        .max_frame_size(Some(MAX_FRAME_BYTES))
        .max_message_size(Some(MAX_FRAME_BYTES))
}

/// A refusal at the upgrade, with PROTOCOL.md's JSON body.
fn refusal(status: StatusCode, code: &str, message: &str) -> ErrorResponse {
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CONNECTION, "close")
        .body(Some(body))
        .expect("a response built from valid parts")
}

/// Who is on the other end, and the room they joined.
struct Member {
    params: Params,
    room: Arc<Room>,
}

/// Serves one accepted TCP connection that asked for something other than `/health`.
pub async fn serve(stream: TcpStream, state: Arc<State>) {
    // Subscribing inside the callback, before the 101 response is written, means a client
    // receives every message published after its handshake completed.
    let mut joined: Option<(Member, broadcast::Receiver<Utf8Bytes>)> = None;
    // The `Err` type is tungstenite's `Callback` contract, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        if request.uri().path() != "/ws" {
            return Err(refusal(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint",
            ));
        }
        match Params::from_query(request.uri().query()) {
            Ok(params) => {
                let room = state.rooms.get_or_create(&params.room);
                let rx = room.subscribe();
                joined = Some((Member { params, room }, rx));
                Ok(response)
            }
            Err(e) => Err(refusal(StatusCode::BAD_REQUEST, e.code(), e.message())),
        }
    };
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(ws_config()));
    let ws = match timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(ws)) => ws,
        // Refused, not WebSocket, broken or too slow: nothing more to do.
        _ => return,
    };
    let Some((member, room_rx)) = joined else {
        return;
    };

    let _client = state.client_guard();
    let (sink, mut source) = ws.split();
    let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let mut writer = tokio::spawn(write_loop(sink, room_rx, control_rx));

    match read_loop(&mut source, &mut writer, &member, &control_tx).await {
        ReadEnd::WriterDone => return,
        ReadEnd::PeerGone => {}
        ReadEnd::Close(code, reason) => {
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            let _ = control_tx.send(Message::Close(Some(frame))).await;
        }
    }
    // The writer ends when the control channel closes (after sending what is queued).
    drop(control_tx);
    if timeout(CLOSE_TIMEOUT, &mut writer).await.is_err() {
        writer.abort();
    }
}

/// Why the reader stopped.
enum ReadEnd {
    /// The writer ended first (socket error, slow consumer, write timeout).
    WriterDone,
    /// The peer closed the connection or it broke.
    PeerGone,
    /// The peer broke a rule: close the connection with this code.
    Close(CloseCode, &'static str),
}

async fn read_loop(
    source: &mut WsSource,
    writer: &mut JoinHandle<()>,
    member: &Member,
    control_tx: &mpsc::Sender<Message>,
) -> ReadEnd {
    loop {
        let next = tokio::select! {
            biased;
            next = source.next() => next,
            _ = &mut *writer => return ReadEnd::WriterDone,
        };
        match next {
            Some(Ok(Message::Text(text))) => match parse_chat(&text) {
                Ok(content) => {
                    let Member { params, room } = member;
                    room.publish(&params.user_id, &params.username, &content);
                }
                Err(e) => {
                    let frame = Message::Text(e.to_json().into());
                    if control_tx.send(frame).await.is_err() {
                        return ReadEnd::WriterDone;
                    }
                }
            },
            Some(Ok(Message::Binary(_))) => {
                return ReadEnd::Close(CloseCode::Unsupported, "binary frames are not accepted")
            }
            // tungstenite answers pings itself and replies to a close frame.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Ok(Message::Close(_))) | None => return ReadEnd::PeerGone,
            Some(Err(WsError::Capacity(_))) => {
                return ReadEnd::Close(CloseCode::Size, "frame larger than 8192 bytes")
            }
            Some(Err(WsError::Utf8(_))) => {
                return ReadEnd::Close(CloseCode::Invalid, "text frame is not valid UTF-8")
            }
            Some(Err(_)) => return ReadEnd::PeerGone,
        }
    }
}

/// Forwards the room's broadcasts and this connection's own frames to the socket until
/// the control channel closes, a close frame has been sent, or the socket fails.
///
/// Whatever is already queued when the writer wakes goes out in one flush, so a burst in a
/// busy room costs one `write` per batch instead of one per frame.
async fn write_loop(
    mut sink: WsSink,
    mut room_rx: broadcast::Receiver<Utf8Bytes>,
    mut control_rx: mpsc::Receiver<Message>,
) {
    loop {
        let first = tokio::select! {
            biased;
            control = control_rx.recv() => match control {
                Some(frame) => frame,
                None => return,
            },
            chat = room_rx.recv() => match chat {
                Ok(text) => Message::Text(text),
                Err(RecvError::Lagged(_)) => slow_consumer(),
                // The room outlives its members, so this does not happen.
                Err(RecvError::Closed) => return,
            },
        };
        let batch = async {
            let mut next = Some(first);
            let mut fed = 0;
            while let Some(frame) = next.take() {
                let closing = matches!(frame, Message::Close(_));
                sink.feed(frame).await?;
                if closing {
                    sink.flush().await?;
                    return Ok::<bool, WsError>(false);
                }
                fed += 1;
                if fed < MAX_BATCH {
                    next = match room_rx.try_recv() {
                        Ok(text) => Some(Message::Text(text)),
                        Err(TryRecvError::Lagged(_)) => Some(slow_consumer()),
                        Err(TryRecvError::Empty | TryRecvError::Closed) => None,
                    };
                }
            }
            sink.flush().await?;
            Ok(true)
        };
        match timeout(WRITE_TIMEOUT, batch).await {
            Ok(Ok(true)) => {}
            // Closed, failed or stuck: dropping the sink lets the socket go.
            _ => return,
        }
    }
}

/// The close frame for a member that fell more than a channel's worth behind.
fn slow_consumer() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Policy,
        reason: Utf8Bytes::from_static("slow consumer"),
    }))
}
