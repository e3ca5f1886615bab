//! One accepted TCP connection: HTTP/1.1 requests until it upgrades to a WebSocket or
//! closes.

use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use super::request::{self, Head, HeadError, MAX_HEAD_BYTES};
use super::response::Response;
use super::{files, routes, upgrade, Context};

/// A client must send a whole request head (and then its body) within this time; an
/// idle keep-alive connection is closed after it.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// A response the client does not take within this time ends the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served on one keep-alive connection; the last answer says `Connection: close`.
pub(crate) const MAX_REQUESTS_PER_CONNECTION: u32 = 1000;
/// Largest request body read (the JSON bodies of PROTOCOL.md §4 are at most this); a
/// larger one is answered with 413 without being read, and the connection closes.
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024;
/// After an answer the server closes on, how long (and how many bytes) it goes on reading
/// what the client still sends before it closes.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 4 * 1024 * 1024;

/// Serves one connection.
pub(crate) async fn serve(ctx: Context, mut stream: TcpStream, peer: Option<std::net::IpAddr>) {
    let site = ctx.site.clone();
    // Every connection holds a descriptor, HTTP or WebSocket: both count toward the limit.
    let gauge = &site.gauge;
    let Some(_slot) = site.figures.try_open_http(gauge.current(), gauge.limit()) else {
        tracing::debug!("connection refused: at MAX_CONNECTIONS");
        let r = Response::error(
            503,
            "at_capacity",
            "the server holds its maximum number of connections",
        );
        close_after(stream, r.encode(false, false)).await;
        return;
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut served: u32 = 0;
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
                    close_after(stream, r.encode(false, false)).await;
                }
                return;
            }
            Ok(Err(ReadError::Closed)) => return,
            Ok(Err(ReadError::Head(e))) => {
                let r = match e {
                    HeadError::TooLarge => Response::error(431, "header_too_large", &e.to_string()),
                    HeadError::Malformed(_) => Response::error(400, "bad_request", &e.to_string()),
                };
                close_after(stream, r.encode(false, false)).await;
                return;
            }
            Ok(Ok(mut head)) => {
                head.peer = peer;
                head
            }
        };
        let rest = buf.split_off(head.len);
        buf = rest;
        if head.upgrade_websocket && head.path == "/ws" {
            // The WebSocket phase runs as its own task, so the HTTP phase's state is freed
            // instead of living as long as the connection (memory per idle connection).
            monoio::spawn(upgrade::upgrade(ctx, stream, head, buf));
            return;
        }
        served += 1;
        let mut keep_alive = !head.wants_close && served < MAX_REQUESTS_PER_CONNECTION;
        let n = head.content_length;
        let upload = (head.method == "PUT")
            .then(|| files::content_path(&head.path))
            .flatten();
        let response = if let Some(id) = upload {
            // A file's bytes go to the file store as they arrive, not into memory.
            let (response, more) = files::receive(&ctx, &head, id, &mut stream, &mut buf).await;
            keep_alive &= more;
            response.cors(&site.cors, head.origin.as_deref())
        } else if n > MAX_BODY_BYTES {
            // Not read: closing after the answer is cheaper than taking it in.
            keep_alive = false;
            Response::error(
                413,
                "body_too_large",
                &format!("request bodies are at most {MAX_BODY_BYTES} bytes"),
            )
        } else {
            let fill = read_at_least(&mut stream, &mut buf, n);
            match monoio::time::timeout(HEAD_TIMEOUT, fill).await {
                Ok(Ok(())) => {
                    let body: Vec<u8> = buf.drain(..n).collect();
                    routes::handle(&ctx, &head, &body).await
                }
                Ok(Err(_)) => return,
                Err(_elapsed) => {
                    let r = Response::error(
                        408,
                        "request_timeout",
                        "the request body took longer than 10 s",
                    );
                    close_after(stream, r.encode(false, false)).await;
                    return;
                }
            }
        };
        let bytes = response.encode(keep_alive, head.method == "HEAD");
        if !keep_alive {
            close_after(stream, bytes).await;
            return;
        }
        match monoio::time::timeout(WRITE_TIMEOUT, stream.write_all(bytes)).await {
            Ok((Ok(_), _)) => {}
            // An error, or a client that does not read its answers: drop it.
            _ => return,
        }
    }
}

/// Writes `answer` and closes the connection without destroying the answer: a close
/// while unread bytes remain (the rest of an oversized head, a body not read, pipelined
/// requests) makes the kernel reset the connection, and a reset discards what the client
/// has not read yet. So the write side is shut, and what the client still sends is read
/// and thrown away until it closes (at most [`LINGER`] and [`LINGER_BYTES`]).
async fn close_after(mut stream: TcpStream, answer: Vec<u8>) {
    match monoio::time::timeout(WRITE_TIMEOUT, stream.write_all(answer)).await {
        Ok((Ok(_), _)) => {}
        _ => return,
    }
    if stream.shutdown().await.is_err() {
        return;
    }
    let discard = async {
        let mut total = 0;
        let mut chunk = Vec::with_capacity(4096);
        while total < LINGER_BYTES {
            let (res, back) = stream.read(chunk).await;
            chunk = back;
            chunk.clear();
            match res {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = monoio::time::timeout(LINGER, discard).await;
}

enum ReadError {
    Closed,
    Head(HeadError),
}

/// Reads until `buf` holds at least `n` bytes.
async fn read_at_least(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    n: usize,
) -> Result<(), ReadError> {
    while buf.len() < n {
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
