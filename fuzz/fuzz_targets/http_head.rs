//! Any bytes as the start of a connection: `hubbub_server::http_head::parse` never
//! panics, a head it returns is the start of the input and agrees with a plain line-by-line
//! reading of those bytes, it does not depend on what follows the head or on where the
//! reads were cut, and it refuses or waits exactly within the size limits.
//!
//! An input starting with 0xFF (never the start of a request) inserts a filler header of
//! `u16` little-endian bytes 1..3 (modulo 20,000) after the first line of the rest, so the
//! 16 KiB limit is reached without megabyte inputs.
#![no_main]
use hubbub_server::http_head::{parse, Head, HeadError, MAX_HEAD_BYTES};
use libfuzzer_sys::fuzz_target;

/// `request.rs`'s header array; a head with more header lines is refused as too large.
const MAX_HEADERS: usize = 64;

fuzz_target!(|data: &[u8]| {
    let buf = with_filler(data);
    let buf = buf.as_slice();
    match parse(buf) {
        Ok(Some(head)) => check_head(buf, &head),
        Ok(None) => assert!(buf.len() <= MAX_HEAD_BYTES, "waits beyond the limit"),
        Err(HeadError::TooLarge) => assert!(
            buf.len() > MAX_HEAD_BYTES || newlines(buf) > MAX_HEADERS,
            "431 for a small head with few lines"
        ),
        Err(HeadError::Malformed(_)) => {}
    }
});

fn with_filler(data: &[u8]) -> Vec<u8> {
    let [0xFF, lo, hi, rest @ ..] = data else {
        return data.to_vec();
    };
    let n = usize::from(u16::from_le_bytes([*lo, *hi])) % 20_000;
    let at = rest
        .iter()
        .position(|&b| b == b'\n')
        .map_or(rest.len(), |i| i + 1);
    let mut buf = Vec::with_capacity(rest.len() + n + 10);
    buf.extend_from_slice(&rest[..at]);
    buf.extend_from_slice(b"X-Fill: ");
    buf.resize(buf.len() + n, b'a');
    buf.extend_from_slice(b"\r\n");
    buf.extend_from_slice(&rest[at..]);
    buf
}

fn newlines(buf: &[u8]) -> usize {
    buf.iter().filter(|&&b| b == b'\n').count()
}

fn check_head(buf: &[u8], head: &Head) {
    let len = head.len;
    assert!(len > 0 && len <= buf.len(), "len {len} of {}", buf.len());
    assert!(len <= MAX_HEAD_BYTES);
    let raw = &buf[..len];
    assert!(
        raw.ends_with(b"\n\n") || raw.ends_with(b"\n\r\n"),
        "a head ends with a blank line"
    );

    // Bytes after the head change nothing, and every shorter prefix is incomplete: the
    // result does not depend on how the connection's reads were cut.
    assert_eq!(parse(raw), Ok(Some(head.clone())));
    assert_eq!(parse(&raw[..len - 1]), Ok(None));
    let cut = usize::from(buf[0]) * 31 % len;
    assert_eq!(parse(&raw[..cut]), Ok(None), "prefix of {cut}");

    // The same head read as plain lines: optional empty lines, the request line, header
    // lines `name:value`, the blank line. (httparse allows no obsolete line folding and no
    // space before the colon, and CR only right before LF.)
    let mut lines: Vec<&[u8]> = raw
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    assert_eq!(lines.pop(), Some(&b""[..]), "split after the final LF");
    assert_eq!(lines.pop(), Some(&b""[..]), "the blank line");
    let first = lines
        .iter()
        .position(|l| !l.is_empty())
        .unwrap_or(lines.len());
    let (request_line, header_lines) = match lines[first..].split_first() {
        Some(split) => split,
        None => panic!("no request line"),
    };

    let parts: Vec<&[u8]> = request_line.split(|&b| b == b' ').collect();
    let [method, target, version] = parts[..] else {
        panic!("request line {:?}", String::from_utf8_lossy(request_line));
    };
    assert_eq!(head.method.as_bytes(), method);
    assert!(!method.is_empty() && method.iter().all(|&b| is_tchar(b)));
    let target = std::str::from_utf8(target).expect("the target was read as UTF-8");
    assert!(!target.is_empty());
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    assert_eq!((head.path.as_str(), head.query.as_str()), (path, query));
    assert!(!head.path.contains(['?', ' ']) && !head.query.contains(' '));
    assert!(head.path.len() + head.query.len() <= target.len());
    match version {
        b"HTTP/1.0" => assert_eq!(head.minor_version, 0),
        b"HTTP/1.1" => assert_eq!(head.minor_version, 1),
        _ => panic!("version {:?}", String::from_utf8_lossy(version)),
    }

    assert!(
        header_lines.len() <= MAX_HEADERS,
        "{} headers",
        header_lines.len()
    );
    let mut want = Head {
        method: head.method.clone(),
        path: head.path.clone(),
        query: head.query.clone(),
        minor_version: head.minor_version,
        len,
        ..Head::default()
    };
    let mut keep_alive = false;
    let mut length_seen: Option<usize> = None;
    for line in header_lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            panic!(
                "header line without a colon: {:?}",
                String::from_utf8_lossy(line)
            );
        };
        let (name, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
        assert!(!name.is_empty() && name.iter().all(|&b| is_tchar(b)));
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        let known = [
            "origin",
            "authorization",
            "upgrade",
            "sec-websocket-key",
            "sec-websocket-version",
            "connection",
            "content-length",
        ];
        if !known.iter().any(|n| is(n)) {
            assert!(!is("transfer-encoding"), "a body was accepted");
            continue;
        }
        let value = std::str::from_utf8(value).expect("a header hubbub reads is UTF-8");
        if is("origin") {
            want.origin = Some(value.trim().to_owned());
        } else if is("authorization") {
            want.authorization = Some(value.to_owned());
        } else if is("upgrade") {
            want.upgrade_websocket = value.trim().eq_ignore_ascii_case("websocket");
        } else if is("sec-websocket-key") {
            want.websocket_key = Some(value.trim().to_owned());
        } else if is("sec-websocket-version") {
            want.websocket_version = Some(value.trim().to_owned());
        } else if is("connection") {
            for token in value.split(',').map(str::trim) {
                want.wants_close |= token.eq_ignore_ascii_case("close");
                keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else {
            let v = value.trim();
            assert!(
                !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()),
                "a bad Content-Length was accepted: {value:?}"
            );
            let n = match v.parse() {
                Ok(n) => n,
                Err(_) => panic!("a bad Content-Length was accepted: {value:?}"),
            };
            if let Some(seen) = length_seen.replace(n) {
                assert_eq!(seen, n, "conflicting Content-Length headers were accepted");
            }
            want.content_length = n;
        }
    }
    want.wants_close |= head.minor_version == 0 && !keep_alive;
    assert_eq!(head, &want);
}

/// Leading and trailing spaces and tabs, which httparse leaves out of a header value.
fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// RFC 9110 `tchar`, what methods and header names are made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
