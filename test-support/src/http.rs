//! One HTTP/1.1 request and response at a time over a plain `TcpStream`: enough to
//! probe `/health`, read JSON APIs and send deliberately malformed requests.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long a response may take to arrive.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A response as read off the wire.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code (0 if the status line did not parse).
    pub status: u16,
    /// The header fields in the order received, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, decoded as UTF-8 (lossily).
    pub body: String,
}

impl Response {
    /// The first header field called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {}", self.body))
    }
}

/// Sends `raw` (a whole request, head and body) to 127.0.0.1:`port` and reads one
/// response.
pub fn send(port: u16, raw: &str) -> io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.write_all(raw.as_bytes())?;
    read_response(&mut stream)
}

/// `GET path` on 127.0.0.1:`port` with `Connection: close`.
pub fn get(port: u16, path: &str) -> io::Result<Response> {
    get_with(port, path, &[])
}

/// `GET path` with the extra header lines `headers` (each `Name: value`).
pub fn get_with(port: u16, path: &str, headers: &[&str]) -> io::Result<Response> {
    let mut raw = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    send(port, &raw)
}

/// `POST path` on 127.0.0.1:`port` with `Connection: close`, the extra header lines
/// `headers` (each `Name: value`) and `body` (with its `Content-Length`).
pub fn post(port: u16, path: &str, headers: &[&str], body: &str) -> io::Result<Response> {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    send(port, &raw)
}

/// Reads exactly one response (to its `Content-Length`, or to EOF without one), so that
/// pipelined responses that arrive together are left for the next call: the head a byte
/// at a time, then exactly its body.
pub fn read_response(stream: &mut TcpStream) -> io::Result<Response> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    let content_length: Option<usize> = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok());
    let mut body = Vec::new();
    match content_length {
        Some(len) => {
            body.resize(len, 0);
            stream.read_exact(&mut body)?;
        }
        // The peer closes when done; whatever arrived before an error is the body.
        None => {
            let _ = stream.read_to_end(&mut body);
        }
    }
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
