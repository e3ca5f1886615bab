//! A WebSocket connection: the upgrade (admitted or refused by the hub), then a reader
//! that feeds frames to the hub and a writer that drains the connection's queue.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::rc::Rc;

use bytes::Bytes;
use hubbub_core::connect::UpgradeRequest;
use hubbub_core::protocol::MAX_FRAME_BYTES;
use hubbub_core::{ConnId, Inbound};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;
use tungstenite::error::{CapacityError, Error as WsError};
use tungstenite::protocol::WebSocketContext;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::Message;

use crate::http::request::Head;
use crate::http::response::Response;
use crate::worker::connio::{Batch, ConnIo};
use crate::worker::Worker;

/// Bytes read from the socket at a time; also tungstenite's read buffer. Both exist per
/// connection, so they are sized for typical chat frames (larger ones take more reads).
const READ_CHUNK: usize = 512;

fn ws_config() -> WebSocketConfig {
    // Sized on purpose: these buffers are per connection (PERFORMANCE.md S3).
    WebSocketConfig::default()
        .read_buffer_size(READ_CHUNK)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

/// Completes (or refuses) the upgrade, then runs the connection until it closes.
pub async fn upgrade(worker: Rc<Worker>, mut stream: TcpStream, head: Head, rest: Vec<u8>) {
    let request = UpgradeRequest {
        query: &head.query,
        origin: head.origin.as_deref(),
        authorization: head.authorization.as_deref(),
    };
    let key = match (&head.websocket_key, head.websocket_version.as_deref()) {
        (Some(key), Some("13")) => key.clone(),
        _ => {
            let r = Response::error(
                400,
                "bad_upgrade",
                "a WebSocket upgrade needs Sec-WebSocket-Key and version 13",
            )
            .header("Sec-WebSocket-Version", "13");
            let _ = stream.write_all(r.encode(false, false)).await;
            return;
        }
    };
    let admission = worker.with_hub(|hub, now| hub.admit(now, &request));
    let admission = match admission {
        Ok(a) => a,
        Err(refusal) => {
            tracing::debug!(
                status = refusal.status(),
                code = refusal.code(),
                "upgrade refused"
            );
            let r = Response::json(refusal.status(), refusal.body());
            let _ = stream.write_all(r.encode(false, false)).await;
            return;
        }
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nServer: hubbub\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if stream.write_all(response.into_bytes()).await.0.is_err() {
        return;
    }
    let io = Rc::new(ConnIo::new(stream.as_raw_fd()));
    let conn = worker.with_hub(|hub, now| {
        let conn = hub.handle_open(now, admission);
        worker.attach(conn, io.clone());
        conn
    });
    let (reader, writer) = stream.into_split();
    let write_task = monoio::spawn(write_loop(io.clone(), writer));
    read_loop(&worker, conn, &io, reader, rest).await;
    io.finish();
    worker.with_hub(|hub, now| hub.handle_close(now, conn));
    worker.detach(conn);
    write_task.await;
}

/// Lets tungstenite read frames out of bytes we already have, and collects what it
/// wants to send (pongs, the answer to a close).
struct Adapter<'a> {
    input: &'a [u8],
    output: Vec<u8>,
}

impl Read for Adapter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Adapter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

async fn read_loop(
    worker: &Rc<Worker>,
    conn: ConnId,
    io: &Rc<ConnIo>,
    mut reader: OwnedReadHalf<TcpStream>,
    rest: Vec<u8>,
) {
    let mut ctx = WebSocketContext::from_partially_read(rest, Role::Server, Some(ws_config()));
    // Once the codec is done (close received, protocol error), bytes are only drained
    // until the peer goes or the writer ends the socket.
    let mut codec_done = false;
    let mut buf = Vec::with_capacity(READ_CHUNK);
    // Frames that arrived with the upgrade request are already in the codec: decode
    // them before the first read.
    let mut n = 0;
    loop {
        if !codec_done {
            let mut adapter = Adapter {
                input: &buf[..n],
                output: Vec::new(),
            };
            codec_done = decode_available(worker, conn, &mut ctx, &mut adapter);
            if !adapter.output.is_empty() {
                // The codec's own replies: pongs, or the answer to the peer's close.
                let reply = Bytes::from(adapter.output);
                if codec_done {
                    io.close(reply)
                } else {
                    io.push(reply);
                }
            } else if codec_done && !io.is_closing() {
                // Nothing to answer with; stop sending and let the writer end the socket.
                io.close(Bytes::new());
            }
        }
        buf.clear();
        let (res, b) = reader
            .read(std::mem::take(&mut buf).slice_mut(0..READ_CHUNK))
            .await;
        buf = b.into_inner();
        n = match res {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
    }
}

/// Hands every complete frame in the codec to the hub. Returns `true` when the codec is
/// done with this connection.
fn decode_available(
    worker: &Rc<Worker>,
    conn: ConnId,
    ctx: &mut WebSocketContext,
    adapter: &mut Adapter<'_>,
) -> bool {
    loop {
        let inbound = match ctx.read(adapter) {
            Ok(Message::Text(text)) => {
                worker.with_hub(|hub, now| {
                    hub.handle_frame(now, conn, Inbound::Text(text.as_bytes()))
                });
                continue;
            }
            Ok(Message::Binary(_)) => Inbound::Binary,
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => Inbound::Control,
            Ok(Message::Close(_)) => {
                // The codec queued its answer to the peer's close; have it written out.
                let _ = ctx.flush(adapter);
                return true;
            }
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => return true,
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(WsError::Capacity(CapacityError::MessageTooLong { .. })) => Inbound::TooLarge,
            Err(WsError::Utf8(_)) => Inbound::InvalidUtf8,
            Err(_) => Inbound::ProtocolError,
        };
        worker.with_hub(|hub, now| hub.handle_frame(now, conn, inbound));
        if inbound != Inbound::Control {
            return true;
        }
    }
}

async fn write_loop(io: Rc<ConnIo>, mut writer: OwnedWriteHalf<TcpStream>) {
    while let Some(batch) = io.next_batch().await {
        let len = batch.byte_len();
        let result = match batch {
            Batch::One(frame) => writer.write_all(frame).await.0,
            Batch::Joined(bytes) => writer.write_all(bytes).await.0,
        };
        io.written(len);
        if result.is_err() {
            // The peer is gone: end the reader too.
            io.abort();
            return;
        }
        if io.close_taken() {
            // The close frame is out; the close deadline ends the socket if the peer
            // does not.
            return;
        }
    }
}
