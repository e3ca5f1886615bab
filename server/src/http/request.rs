//! Reading one HTTP/1.1 request head with `httparse`, within the protocol's limits.

/// Largest request head accepted; a larger one is answered with 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

/// The parts of a request head hubbub routes on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// `GET`, `OPTIONS`, …
    pub method: String,
    /// The path, still percent-encoded, without the query.
    pub path: String,
    /// The raw query string (after `?`), if any.
    pub query: String,
    /// HTTP/1.0 or 1.1 minor version.
    pub minor_version: u8,
    /// `Origin`.
    pub origin: Option<String>,
    /// `Authorization`.
    pub authorization: Option<String>,
    /// `Upgrade: websocket` was asked for.
    pub upgrade_websocket: bool,
    /// `Sec-WebSocket-Key`.
    pub websocket_key: Option<String>,
    /// `Sec-WebSocket-Version`.
    pub websocket_version: Option<String>,
    /// The `Connection` header asked to close, or HTTP/1.0 without keep-alive.
    pub wants_close: bool,
    /// `Content-Length`, if any.
    pub content_length: usize,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// Bytes of the head, including the final blank line.
    pub len: usize,
    /// The peer's address (set by the connection, not parsed).
    pub peer: Option<std::net::IpAddr>,
}

/// Why a head could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// Over [`MAX_HEAD_BYTES`] or too many headers: 431.
    #[error("request header fields too large")]
    TooLarge,
    /// Not HTTP: 400.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
}

/// Parses a head from the start of `buf`: `Ok(None)` while it is incomplete.
pub fn parse(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > MAX_HEAD_BYTES {
                Err(HeadError::TooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed("not an HTTP/1.x request")),
    };
    if len > MAX_HEAD_BYTES {
        return Err(HeadError::TooLarge);
    }
    let target = req.path.ok_or(HeadError::Malformed("no request target"))?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let minor_version = req.version.unwrap_or(1);
    let mut head = Head {
        method: req.method.unwrap_or("GET").to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        minor_version,
        len,
        ..Head::default()
    };
    let mut keep_alive_asked = false;
    let mut length_seen: Option<usize> = None;
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| HeadError::Malformed("header value is not UTF-8"));
        let name = h.name;
        if name.eq_ignore_ascii_case("origin") {
            head.origin = Some(value?.trim().to_owned());
        } else if name.eq_ignore_ascii_case("authorization") {
            head.authorization = Some(value?.to_owned());
        } else if name.eq_ignore_ascii_case("upgrade") {
            head.upgrade_websocket = value?.trim().eq_ignore_ascii_case("websocket");
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            head.websocket_key = Some(value?.trim().to_owned());
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            head.websocket_version = Some(value?.trim().to_owned());
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value?.split(',') {
                let token = token.trim();
                head.wants_close |= token.eq_ignore_ascii_case("close");
                keep_alive_asked |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            // Digits only (RFC 9110 §8.6: no sign), and a repeat must agree: a proxy in
            // front that read another length would see other request boundaries.
            let v = value?.trim();
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HeadError::Malformed("bad Content-Length"));
            }
            let n = v
                .parse()
                .map_err(|_| HeadError::Malformed("bad Content-Length"))?;
            if length_seen.replace(n).is_some_and(|seen| seen != n) {
                return Err(HeadError::Malformed("conflicting Content-Length headers"));
            }
            head.content_length = n;
        } else if name.eq_ignore_ascii_case("content-type") {
            head.content_type = Some(value?.trim().to_owned());
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HeadError::Malformed(
                "Transfer-Encoding is not accepted: send Content-Length",
            ));
        }
    }
    if minor_version == 0 && !keep_alive_asked {
        head.wants_close = true;
    }
    Ok(Some(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_upgrade_head() {
        let raw = b"GET /ws?room=a&userId=b HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Key: abc==\r\nSec-WebSocket-Version: 13\r\n\
            Origin: http://o\r\n\r\nEXTRA";
        let h = parse(raw).unwrap().unwrap();
        assert_eq!(
            (h.method.as_str(), h.path.as_str(), h.query.as_str()),
            ("GET", "/ws", "room=a&userId=b")
        );
        assert!(h.upgrade_websocket && !h.wants_close);
        assert_eq!(h.websocket_key.as_deref(), Some("abc=="));
        assert_eq!(h.origin.as_deref(), Some("http://o"));
        assert_eq!(&raw[h.len..], b"EXTRA");
    }

    #[test]
    fn limits_and_errors() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(parse(big.as_bytes()), Err(HeadError::TooLarge));
        let many: String = (0..70).map(|i| format!("H{i}: v\r\n")).collect();
        assert_eq!(
            parse(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
            Err(HeadError::TooLarge)
        );
        assert!(matches!(
            parse(b"\x16\x03\x01garbage\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
        let h = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(h.wants_close);
        for bad in ["+5", "-1", "5 5", "0x10", ""] {
            let raw = format!("GET / HTTP/1.1\r\nContent-Length: {bad}\r\n\r\n");
            assert!(
                matches!(parse(raw.as_bytes()), Err(HeadError::Malformed(_))),
                "{bad:?}"
            );
        }
        let twice = b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n";
        assert!(matches!(parse(twice), Err(HeadError::Malformed(_))));
        let same = b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(parse(same).unwrap().unwrap().content_length, 5);
        let h = parse(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.wants_close);
    }
}
