//! The client side of the WebSocket upgrade, on monoio's owned buffers.

use std::fmt::Write as _;
use std::io;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use crate::target::Target;

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Why an upgrade did not happen.
#[derive(Debug)]
pub enum HandshakeError {
    /// The socket failed.
    Io(io::Error),
    /// The server answered with a status other than 101.
    Http {
        /// The status code.
        status: u16,
        /// The start of the body (the server's JSON error, usually).
        body: String,
    },
    /// The server closed before a whole response head.
    Eof,
    /// Not HTTP, or a 101 without a matching `Sec-WebSocket-Accept`.
    Bad(String),
}

impl HandshakeError {
    /// A short name for counting failures by kind: `http_503`, `refused`, `eof`, …
    pub fn kind(&self) -> String {
        match self {
            HandshakeError::Io(e) => crate::net::error_kind(e),
            HandshakeError::Http { status, .. } => format!("http_{status}"),
            HandshakeError::Eof => "eof_before_response".into(),
            HandshakeError::Bad(_) => "bad_response".into(),
        }
    }

    /// A human detail, kept as the first example of its kind.
    pub fn detail(&self) -> String {
        match self {
            HandshakeError::Io(e) => e.to_string(),
            HandshakeError::Http { status, body } => format!("HTTP {status}: {body}"),
            HandshakeError::Eof => "the server closed the connection before answering".into(),
            HandshakeError::Bad(s) => s.clone(),
        }
    }
}

/// Percent-encodes a query value (letters, digits and `-_.~` pass).
fn encode_query_value(out: &mut String, v: &str) {
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// The upgrade request for one connection: the URL's own query, then `proto=2` for a
/// protocol v2 connection, `userId`, `username`, `room` (when given: a v2 connection
/// subscribes with frames instead) and, with a secret, a signed `token`.
pub fn build_request(
    target: &Target,
    user: &str,
    room: Option<&str>,
    v2: bool,
    token: Option<&str>,
    key: &str,
) -> Vec<u8> {
    let mut q = String::with_capacity(256);
    if !target.query.is_empty() {
        q.push_str(&target.query);
        q.push('&');
    }
    if v2 {
        q.push_str("proto=2&");
    }
    q.push_str("userId=");
    encode_query_value(&mut q, user);
    q.push_str("&username=");
    encode_query_value(&mut q, user);
    if let Some(room) = room {
        q.push_str("&room=");
        encode_query_value(&mut q, room);
    }
    if let Some(t) = token {
        q.push_str("&token=");
        encode_query_value(&mut q, t);
    }
    format!(
        "GET {}?{q} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: hubbub-loadtest\r\n\r\n",
        target.path, target.host_header
    )
    .into_bytes()
}

/// Checks a complete response head at the start of `buf`: `Ok(Some(head_len))` on a
/// valid 101, `Ok(None)` when the head is not complete yet.
pub fn check_response(buf: &[u8], key: &str) -> Result<Option<usize>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HandshakeError::Bad(format!("not an HTTP response: {e}"))),
    };
    let status = resp.code.unwrap_or(0);
    if status != 101 {
        let body = &buf[head_len..buf.len().min(head_len + 300)];
        return Err(HandshakeError::Http {
            status,
            body: String::from_utf8_lossy(body).trim().to_owned(),
        });
    }
    let want = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let accept = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|h| h.value);
    if accept != Some(want.as_bytes()) {
        return Err(HandshakeError::Bad(
            "101 without the right Sec-WebSocket-Accept".into(),
        ));
    }
    Ok(Some(head_len))
}

/// Sends `request` and reads the response into `buf` (cleared first). On success the
/// bytes after the response head — frames the server sent right away, such as the
/// backlog — are left at the front of `buf`.
pub async fn handshake(
    stream: &mut TcpStream,
    request: Vec<u8>,
    key: &str,
    mut buf: Vec<u8>,
) -> (Result<(), HandshakeError>, Vec<u8>) {
    let (r, _) = stream.write_all(request).await;
    if let Err(e) = r {
        return (Err(HandshakeError::Io(e)), buf);
    }
    buf.clear();
    loop {
        let len = buf.len();
        if len == buf.capacity() {
            if len >= MAX_HEAD {
                return (
                    Err(HandshakeError::Bad("response head over 16 KiB".into())),
                    buf,
                );
            }
            buf.reserve(4096);
        }
        let (r, slice) = stream.read(buf.slice_mut(len..)).await;
        buf = slice.into_inner();
        match r {
            Ok(0) => return (Err(HandshakeError::Eof), buf),
            Ok(_) => {}
            Err(e) => return (Err(HandshakeError::Io(e)), buf),
        }
        match check_response(&buf, key) {
            Ok(Some(head)) => {
                let n = buf.len();
                buf.copy_within(head..n, 0);
                buf.truncate(n - head);
                return (Ok(()), buf);
            }
            Ok(None) => {}
            Err(e) => return (Err(e), buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(q: &str) -> Target {
        Target {
            url: String::new(),
            host_header: "h:1".into(),
            path: "/ws".into(),
            query: q.into(),
            addr: "127.0.0.1:1".parse().unwrap(),
        }
    }

    #[test]
    fn request_carries_identity_room_and_token() {
        let r = build_request(
            &target("a=1"),
            "lt-3",
            Some("r 1"),
            false,
            Some("t.k"),
            "KEY",
        );
        let s = String::from_utf8(r).unwrap();
        assert!(s.starts_with(
            "GET /ws?a=1&userId=lt-3&username=lt-3&room=r%201&token=t.k HTTP/1.1\r\n"
        ));
        assert!(s.contains("Sec-WebSocket-Key: KEY\r\n") && s.ends_with("\r\n\r\n"));
        let r = build_request(&target(""), "lt-3", None, true, None, "KEY");
        let s = String::from_utf8(r).unwrap();
        assert!(
            s.starts_with("GET /ws?proto=2&userId=lt-3&username=lt-3 HTTP/1.1\r\n"),
            "{s}"
        );
    }

    #[test]
    fn response_checks() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ok = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x00";
        assert_eq!(check_response(ok, key).unwrap(), Some(ok.len() - 2));
        assert_eq!(check_response(&ok[..20], key).unwrap(), None);
        let e = check_response(ok, "other").unwrap_err();
        assert_eq!(e.kind(), "bad_response");
        let busy = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 20\r\n\r\n{\"error\":\"overload\"}";
        let e = check_response(busy, key).unwrap_err();
        assert_eq!(e.kind(), "http_503");
        assert!(e.detail().contains("overload"));
        assert_eq!(
            check_response(b"SSH-2.0\r\n\r\n", key).unwrap_err().kind(),
            "bad_response"
        );
    }
}
