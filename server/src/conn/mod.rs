//! One accepted TCP connection: HTTP/1.1 requests until it upgrades to a WebSocket or
//! closes.

mod ws;

use std::rc::Rc;
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use crate::http::request::{self, Head, HeadError, MAX_HEAD_BYTES};
use crate::http::response::Response;
use crate::http::routes;
use crate::worker::Worker;

/// A client must send a whole request head (and a skipped body) within this time.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request body read and thrown away to keep a connection alive.
const MAX_SKIPPED_BODY: usize = 64 * 1024;

/// Serves one connection.
pub async fn serve(worker: Rc<Worker>, mut stream: TcpStream) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let head = match monoio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream, &mut buf)).await
        {
            Err(_elapsed) => {
                if !buf.is_empty() {
                    let r = Response::error(
                        408,
                        "request_timeout",
                        "the request head took longer than 10 s",
                    );
                    let _ = stream.write_all(r.encode(false, false)).await;
                }
                return;
            }
            Ok(Err(ReadError::Closed)) => return,
            Ok(Err(ReadError::Head(e))) => {
                let r = match e {
                    HeadError::TooLarge => Response::error(431, "header_too_large", &e.to_string()),
                    HeadError::Malformed(_) => Response::error(400, "bad_request", &e.to_string()),
                };
                let _ = stream.write_all(r.encode(false, false)).await;
                return;
            }
            Ok(Ok(head)) => head,
        };
        let rest = buf.split_off(head.len);
        buf = rest;
        if head.upgrade_websocket && head.path == "/ws" {
            // The WebSocket phase runs as its own task, so the HTTP phase's state is freed
            // instead of living as long as the connection (memory per idle connection).
            monoio::spawn(ws::upgrade(worker, stream, head, buf));
            return;
        }
        // Bodies are not part of any hubbub endpoint: skip a small one (reading what has not
        // arrived yet), and close after answering a big one rather than read it.
        let mut keep_alive = !head.wants_close;
        if head.content_length > 0 {
            let fill = read_at_least(&mut stream, &mut buf, head.content_length);
            if head.content_length <= MAX_SKIPPED_BODY
                && monoio::time::timeout(HEAD_TIMEOUT, fill)
                    .await
                    .is_ok_and(|r| r.is_ok())
            {
                buf.drain(..head.content_length);
            } else {
                keep_alive = false;
            }
        }
        let response = routes::handle(&worker, &head).await;
        let bytes = response.encode(keep_alive, head.method == "HEAD");
        let (res, _) = stream.write_all(bytes).await;
        if res.is_err() || !keep_alive {
            return;
        }
    }
}

enum ReadError {
    Closed,
    Head(HeadError),
}

/// Reads until `buf` holds at least `n` bytes (returns at once for `n` beyond the skip
/// limit: the caller closes instead).
async fn read_at_least(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    n: usize,
) -> Result<(), ReadError> {
    while buf.len() < n && n <= MAX_SKIPPED_BODY {
        let want = (n - buf.len()).clamp(512, 16 * 1024);
        let (res, chunk) = stream.read(Vec::with_capacity(want)).await;
        match res {
            Ok(0) | Err(_) => return Err(ReadError::Closed),
            Ok(got) => buf.extend_from_slice(&chunk[..got]),
        }
    }
    Ok(())
}

/// Reads until `buf` starts with a whole request head.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Head, ReadError> {
    loop {
        if !buf.is_empty() {
            if let Some(head) = request::parse(buf).map_err(ReadError::Head)? {
                return Ok(head);
            }
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(ReadError::Head(HeadError::TooLarge));
        }
        // Read into a separate chunk: if the head timeout cancels this read, what was
        // already received stays in `buf` (and earns a 408 rather than silence).
        let want = if buf.is_empty() { 512 } else { 4096 };
        let (res, chunk) = stream.read(Vec::with_capacity(want)).await;
        match res {
            Ok(0) | Err(_) => return Err(ReadError::Closed),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
