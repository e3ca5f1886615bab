//! Writing HTTP/1.1 responses: status line, the headers hubbub always sends, CORS.

use hubbub_core::upgrade::AllowedOrigins;

/// A complete response, ready to write.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`, if there is a body.
    pub content_type: std::borrow::Cow<'static, str>,
    /// Extra header lines, each ending in `\r\n`.
    pub headers: String,
    /// The body.
    pub body: bytes::Bytes,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, body: impl Into<bytes::Bytes>) -> Response {
        Response {
            status,
            content_type: "application/json".into(),
            headers: String::new(),
            body: body.into(),
        }
    }

    /// The JSON error body `{"error":code,"message":message}`.
    pub fn error(status: u16, code: &str, message: &str) -> Response {
        let mut body = Vec::new();
        hubbub_core::protocol::encode_http_error(&mut body, code, message);
        Response::json(status, body)
    }

    /// Adds a header line.
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push_str(name);
        self.headers.push_str(": ");
        self.headers.push_str(value);
        self.headers.push_str("\r\n");
        self
    }

    /// Adds the CORS headers of PROTOCOL.md §4 for a request from `origin`.
    pub fn cors(self, allowed: &AllowedOrigins, origin: Option<&str>) -> Response {
        let r = match (allowed, origin) {
            (AllowedOrigins::Any, _) => self.header("Access-Control-Allow-Origin", "*"),
            (list, Some(o)) if list.allows(o) => self
                .header("Access-Control-Allow-Origin", o)
                .header("Vary", "Origin"),
            _ => self.header("Vary", "Origin"),
        };
        r.header(
            "Access-Control-Allow-Methods",
            "GET, POST, PUT, PATCH, DELETE, OPTIONS",
        )
        .header(
            "Access-Control-Allow-Headers",
            "Content-Type, Authorization",
        )
    }

    /// Serializes the head (and the body unless `head_only`).
    pub fn encode(&self, keep_alive: bool, head_only: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(160 + self.headers.len() + self.body.len());
        out.extend_from_slice(
            format!(
                "HTTP/1.1 {} {}\r\nServer: hubbub\r\nContent-Length: {}\r\n",
                self.status,
                reason(self.status),
                self.body.len()
            )
            .as_bytes(),
        );
        if !self.body.is_empty() || self.status != 204 {
            out.extend_from_slice(format!("Content-Type: {}\r\n", self.content_type).as_bytes());
        }
        if !keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(self.headers.as_bytes());
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// The reason phrase of the statuses hubbub sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        426 => "Upgrade Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_variants() {
        let any = String::from_utf8(
            Response::json(200, "{}")
                .cors(&AllowedOrigins::Any, Some("http://x"))
                .encode(true, false),
        )
        .unwrap();
        assert!(any.contains("Access-Control-Allow-Origin: *\r\n"));
        assert!(any
            .contains("Access-Control-Allow-Methods: GET, POST, PUT, PATCH, DELETE, OPTIONS\r\n"));
        let list = AllowedOrigins::parse("http://a").unwrap();
        let echo = String::from_utf8(
            Response::json(200, "{}")
                .cors(&list, Some("http://a"))
                .encode(true, false),
        )
        .unwrap();
        assert!(
            echo.contains("Access-Control-Allow-Origin: http://a\r\n")
                && echo.contains("Vary: Origin\r\n")
        );
        let denied = String::from_utf8(
            Response::json(200, "{}")
                .cors(&list, Some("http://b"))
                .encode(true, false),
        )
        .unwrap();
        assert!(!denied.contains("Access-Control-Allow-Origin"));
    }

    #[test]
    fn framing() {
        let r = String::from_utf8(Response::error(404, "not_found", "no").encode(false, false))
            .unwrap();
        assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(
            r.contains("Content-Type: application/json\r\n") && r.contains("Connection: close\r\n")
        );
        assert!(r.ends_with("\r\n\r\n{\"error\":\"not_found\",\"message\":\"no\"}"));
    }
}
