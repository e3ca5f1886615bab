//! Scanning server → client WebSocket frames without allocating or parsing JSON.
//!
//! The receive path must outrun the server it measures (≥ 4 M frames/s on one core), so
//! it reads the RFC 6455 frame header itself and looks at a text frame's payload only
//! for the two things the generator needs: the room's `"seq":` number and the marker the
//! sender put at the start of the content (`lt:<sender>:<unix nanos>:`). Fragmented
//! messages (which hubbub never sends) take a slow path through a per-connection buffer.

use std::sync::LazyLock;

use memchr::memmem::Finder;

/// The prefix of every message content the generator sends.
pub const MARKER_PREFIX: &[u8] = b"lt:";

/// The largest message the scanner accepts (server frames are at most a few KiB).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

static SEQ_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"seq\""));
static CONTENT_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"content\""));
pub(crate) static TYPE_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"type\""));
pub(crate) static CODE_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"code\""));

/// What the sender embedded at the start of the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// The sending connection's index.
    pub sender: u32,
    /// When it was written, Unix nanoseconds (`CLOCK_REALTIME`).
    pub sent_ns: u64,
}

/// One complete server frame, as much as the generator needs of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A chat message: it has a `seq`; `marker` is `None` when someone else sent it.
    Chat {
        /// The room's sequence number.
        seq: u64,
        /// The generator's marker, when the content carries one.
        marker: Option<Marker>,
    },
    /// A `join` or `leave` presence event.
    Presence,
    /// An error frame; `code` is the raw bytes of its `code` string (empty when absent).
    Error {
        /// E.g. `rate_limited`.
        code: &'a [u8],
    },
    /// A text frame of some other shape.
    OtherText,
    /// A binary data frame (not part of the protocol).
    Binary,
    /// A ping with its payload (to be echoed in a pong).
    Ping(&'a [u8]),
    /// A pong.
    Pong,
    /// A close frame with its status code, when it has one.
    Close(Option<u16>),
}

/// One complete server frame, its text payload not yet looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A text message (reassembled when it was fragmented).
    Text(&'a [u8]),
    /// A binary data message.
    Binary,
    /// A ping with its payload.
    Ping(&'a [u8]),
    /// A pong.
    Pong,
    /// A close frame with its status code, when it has one.
    Close(Option<u16>),
}

/// The stream broke the WebSocket framing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanError {
    /// A frame from the server was masked (RFC 6455 §5.1 forbids it).
    Masked,
    /// Reserved bits or an unknown opcode.
    BadHeader,
    /// A control frame that is fragmented or longer than 125 bytes.
    BadControl,
    /// A continuation frame with no message to continue, or a new data frame in the
    /// middle of a fragmented one.
    BadContinuation,
    /// A message over [`MAX_MESSAGE_BYTES`].
    TooLarge,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ScanError::Masked => "the server sent a masked frame",
            ScanError::BadHeader => "the server sent a frame with reserved bits or opcode",
            ScanError::BadControl => "the server sent a fragmented or oversized control frame",
            ScanError::BadContinuation => "the server sent a stray continuation frame",
            ScanError::TooLarge => "the server sent a message over 1 MiB",
        };
        f.write_str(s)
    }
}

impl std::error::Error for ScanError {}

/// The result of scanning a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scanned {
    /// Bytes of whole frames consumed from the front of the buffer.
    pub consumed: usize,
    /// When the next frame is incomplete and its header is known: its whole length
    /// (header + payload), so the caller can make room for it.
    pub next_frame_len: usize,
    /// A close frame was seen; nothing after it was scanned.
    pub closed: bool,
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    fin: bool,
    opcode: u8,
    header_len: usize,
    payload_len: usize,
}

/// Parses the header at the start of `buf`; `Ok(None)` when more bytes are needed.
#[inline]
fn parse_header(buf: &[u8]) -> Result<Option<Header>, ScanError> {
    let (b0, b1) = match buf {
        [b0, b1, ..] => (*b0, *b1),
        _ => return Ok(None),
    };
    if b0 & 0x70 != 0 {
        return Err(ScanError::BadHeader);
    }
    if b1 & 0x80 != 0 {
        return Err(ScanError::Masked);
    }
    let (header_len, payload_len) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (4, u16::from_be_bytes([b[0], b[1]]) as usize),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                let n = u64::from_be_bytes(a);
                if n > MAX_MESSAGE_BYTES as u64 {
                    return Err(ScanError::TooLarge);
                }
                (10, n as usize)
            }
            None => return Ok(None),
        },
        n => (2, n as usize),
    };
    Ok(Some(Header {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0f,
        header_len,
        payload_len,
    }))
}

/// Per-connection scanning state: only a fragmented message's bytes, which hubbub never
/// produces, ever need it.
#[derive(Debug, Default)]
pub struct Scanner {
    /// Opcode of the fragmented message in progress (0 when none).
    frag_opcode: u8,
    frag: Vec<u8>,
}

impl Scanner {
    /// A scanner with no fragmented message in progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scans the whole frames at the front of `buf`, calling `on` for each with its text
    /// classified by [`classify_text`] (protocol v1), and stops at an incomplete frame or
    /// after a close frame.
    #[inline]
    pub fn scan<F: FnMut(Event<'_>)>(
        &mut self,
        buf: &[u8],
        on: &mut F,
    ) -> Result<Scanned, ScanError> {
        self.scan_frames(buf, &mut |f| {
            on(match f {
                Frame::Text(p) => classify_text(p),
                Frame::Binary => Event::Binary,
                Frame::Ping(p) => Event::Ping(p),
                Frame::Pong => Event::Pong,
                Frame::Close(code) => Event::Close(code),
            })
        })
    }

    /// As [`Scanner::scan`], with each text payload handed over unclassified (protocol
    /// v2 classifies it with [`crate::v2::classify`]).
    #[inline]
    pub fn scan_frames<F: FnMut(Frame<'_>)>(
        &mut self,
        buf: &[u8],
        on: &mut F,
    ) -> Result<Scanned, ScanError> {
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            let Some(h) = parse_header(rest)? else {
                return Ok(Scanned {
                    consumed: pos,
                    next_frame_len: 0,
                    closed: false,
                });
            };
            let total = h.header_len + h.payload_len;
            if rest.len() < total {
                return Ok(Scanned {
                    consumed: pos,
                    next_frame_len: total,
                    closed: false,
                });
            }
            let payload = &rest[h.header_len..total];
            pos += total;
            match (h.opcode, h.fin) {
                (0x1, true) if self.frag_opcode == 0 => on(Frame::Text(payload)),
                (0x2, true) if self.frag_opcode == 0 => on(Frame::Binary),
                (0x1 | 0x2, false) if self.frag_opcode == 0 => {
                    self.frag_opcode = h.opcode;
                    self.frag.clear();
                    self.frag.extend_from_slice(payload);
                }
                (0x0, fin) if self.frag_opcode != 0 => {
                    if self.frag.len() + payload.len() > MAX_MESSAGE_BYTES {
                        return Err(ScanError::TooLarge);
                    }
                    self.frag.extend_from_slice(payload);
                    if fin {
                        let op = std::mem::replace(&mut self.frag_opcode, 0);
                        if op == 0x1 {
                            on(Frame::Text(&self.frag));
                        } else {
                            on(Frame::Binary);
                        }
                        self.frag.clear();
                    }
                }
                (0x0..=0x2, _) => return Err(ScanError::BadContinuation),
                (0x8..=0xa, false) => return Err(ScanError::BadControl),
                (0x8..=0xa, true) if payload.len() > 125 => return Err(ScanError::BadControl),
                (0x8, true) => {
                    let code = match payload {
                        [a, b, ..] => Some(u16::from_be_bytes([*a, *b])),
                        _ => None,
                    };
                    on(Frame::Close(code));
                    return Ok(Scanned {
                        consumed: pos,
                        next_frame_len: 0,
                        closed: true,
                    });
                }
                (0x9, true) => on(Frame::Ping(payload)),
                (0xa, true) => on(Frame::Pong),
                _ => return Err(ScanError::BadHeader),
            }
        }
    }
}

#[inline]
fn skip_ws(p: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = p.get(i) {
        i += 1;
    }
    i
}

/// Parses ASCII digits at `p[i..]`: (value, index after them); `None` without a digit or
/// on overflow.
#[inline]
pub(crate) fn digits(p: &[u8], mut i: usize) -> Option<(u64, usize)> {
    let start = i;
    let mut v: u64 = 0;
    while let Some(&d) = p.get(i) {
        if !d.is_ascii_digit() {
            break;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        i += 1;
    }
    (i > start).then_some((v, i))
}

/// The index just after `key` (a quoted JSON key), the colon and any white space.
#[inline]
pub(crate) fn value_of(p: &[u8], key: &Finder<'_>) -> Option<usize> {
    let mut from = 0;
    loop {
        let at = from + key.find(&p[from..])?;
        let i = skip_ws(p, at + key.needle().len());
        if p.get(i) == Some(&b':') {
            return Some(skip_ws(p, i + 1));
        }
        from = at + 1;
    }
}

/// The `seq` number of a chat frame. hubbub writes it last (`…,"seq":42}`), which is
/// checked from the end first; any other placement is found by search.
#[inline]
pub(crate) fn find_seq(p: &[u8]) -> Option<u64> {
    let mut end = p.len();
    while end > 0 && matches!(p[end - 1], b' ' | b'\t' | b'\n' | b'\r') {
        end -= 1;
    }
    if end > 0 && p[end - 1] == b'}' {
        let last = end - 1;
        let mut start = last;
        while start > 0 && p[start - 1].is_ascii_digit() {
            start -= 1;
        }
        if start < last && start >= 6 && &p[start - 6..start] == b"\"seq\":" {
            return digits(p, start).map(|(v, _)| v);
        }
    }
    let at = value_of(p, &SEQ_KEY)?;
    digits(p, at).map(|(v, _)| v)
}

/// The generator's marker at the start of the `content` string.
#[inline]
pub(crate) fn find_marker(p: &[u8]) -> Option<Marker> {
    let at = value_of(p, &CONTENT_KEY)?;
    let rest = p.get(at..)?;
    if rest.len() < 1 + MARKER_PREFIX.len() || rest[0] != b'"' || &rest[1..4] != MARKER_PREFIX {
        return None;
    }
    let (sender, i) = digits(rest, 4)?;
    if rest.get(i) != Some(&b':') {
        return None;
    }
    let (sent_ns, j) = digits(rest, i + 1)?;
    if rest.get(j) != Some(&b':') {
        return None;
    }
    Some(Marker {
        sender: u32::try_from(sender).ok()?,
        sent_ns,
    })
}

/// The raw bytes of a string value (up to its closing quote; escapes are left as is).
#[inline]
pub(crate) fn string_value<'a>(p: &'a [u8], key: &Finder<'_>) -> Option<&'a [u8]> {
    let at = value_of(p, key)?;
    let rest = p.get(at..)?.strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', rest)?;
    Some(&rest[..end])
}

/// Classifies a text payload.
#[inline]
pub fn classify_text(p: &[u8]) -> Event<'_> {
    if let Some(seq) = find_seq(p) {
        return Event::Chat {
            seq,
            marker: find_marker(p),
        };
    }
    match string_value(p, &TYPE_KEY) {
        Some(b"error") => Event::Error {
            code: string_value(p, &CODE_KEY).unwrap_or(b""),
        },
        Some(b"join" | b"leave") => Event::Presence,
        _ => Event::OtherText,
    }
}

/// Appends an unmasked server frame (FIN set) to `out`: for tests and the self-test.
pub fn write_server_frame(out: &mut Vec<u8>, opcode: u8, fin: bool, payload: &[u8]) {
    out.push(if fin { 0x80 } else { 0 } | (opcode & 0x0f));
    let n = payload.len();
    if n < 126 {
        out.push(n as u8);
    } else if n <= usize::from(u16::MAX) {
        out.push(126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubbub_core::protocol::{encode_chat, ChatMessageRef};
    use proptest::prelude::*;

    fn chat(seq: u64, content: &str) -> Vec<u8> {
        let mut v = Vec::new();
        encode_chat(
            &mut v,
            &ChatMessageRef {
                message_id: "018f3c1e-7b2a-7c4e-9a1b-3f2d1c0b9a88",
                room_id: "lt-room-1",
                kind: "chat",
                user_id: "lt-7",
                username: "lt-7",
                content,
                timestamp: "2026-11-21T10:30:00.123Z",
                seq,
                attachments: &[],
            },
        );
        v
    }

    fn collect(buf: &[u8]) -> (Vec<String>, Scanned) {
        let mut out = Vec::new();
        let r = Scanner::new()
            .scan(buf, &mut |e| out.push(format!("{e:?}")))
            .unwrap();
        (out, r)
    }

    #[test]
    fn hubbub_chat_frame_yields_seq_and_marker() {
        let p = chat(42, "lt:12:1795257000123456789:xxxxxxxx");
        assert_eq!(
            classify_text(&p),
            Event::Chat {
                seq: 42,
                marker: Some(Marker {
                    sender: 12,
                    sent_ns: 1_795_257_000_123_456_789
                })
            }
        );
    }

    #[test]
    fn other_field_orders_and_white_space() {
        let p = br#"{ "seq" : 7 , "type": "chat", "content": "lt:3:99:pad", "x": 1 }"#;
        assert_eq!(
            classify_text(p),
            Event::Chat {
                seq: 7,
                marker: Some(Marker {
                    sender: 3,
                    sent_ns: 99
                })
            }
        );
        // Someone else's message: a seq, no marker.
        let p = chat(5, "hello \"seq\": 3 lt:1:2:");
        assert_eq!(
            classify_text(&p),
            Event::Chat {
                seq: 5,
                marker: None
            }
        );
    }

    #[test]
    fn errors_presence_and_others() {
        let p = br#"{"type":"error","code":"rate_limited","message":"slow down"}"#;
        assert_eq!(
            classify_text(p),
            Event::Error {
                code: b"rate_limited"
            }
        );
        let p = br#"{"type":"join","roomId":"r","userId":"u","username":"U","timestamp":"t"}"#;
        assert_eq!(classify_text(p), Event::Presence);
        assert_eq!(classify_text(b"{}"), Event::OtherText);
        assert_eq!(classify_text(b"not json"), Event::OtherText);
        assert_eq!(
            classify_text(br#"{"seq":99999999999999999999999}"#),
            Event::OtherText
        );
    }

    #[test]
    fn control_frames_and_close_stop_the_scan() {
        let mut buf = Vec::new();
        write_server_frame(&mut buf, 0x9, true, b"hi");
        write_server_frame(&mut buf, 0xa, true, b"");
        write_server_frame(&mut buf, 0x2, true, b"\x00");
        write_server_frame(&mut buf, 0x8, true, &1008u16.to_be_bytes());
        let before_chat = buf.len();
        write_server_frame(&mut buf, 0x1, true, &chat(1, "x"));
        let (ev, r) = collect(&buf);
        assert_eq!(
            ev,
            ["Ping([104, 105])", "Pong", "Binary", "Close(Some(1008))"]
        );
        assert!(r.closed);
        assert_eq!(r.consumed, before_chat);
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        let mut s = Scanner::new();
        let mut f = |_: Event<'_>| {};
        assert_eq!(
            s.scan(&[0x81, 0x81, 0, 0, 0, 0, b'a'], &mut f),
            Err(ScanError::Masked)
        );
        assert_eq!(s.scan(&[0xc1, 0x00], &mut f), Err(ScanError::BadHeader));
        assert_eq!(s.scan(&[0x83, 0x00], &mut f), Err(ScanError::BadHeader));
        assert_eq!(
            s.scan(&[0x80, 0x00], &mut f),
            Err(ScanError::BadContinuation)
        );
        assert_eq!(s.scan(&[0x09, 0x00], &mut f), Err(ScanError::BadControl));
        let mut big = vec![0x81, 127];
        big.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(s.scan(&big, &mut f), Err(ScanError::TooLarge));
    }

    #[test]
    fn fragmented_text_is_reassembled() {
        let p = chat(9, "lt:1:5:abc");
        let mut buf = Vec::new();
        write_server_frame(&mut buf, 0x1, false, &p[..10]);
        write_server_frame(&mut buf, 0x9, true, b"");
        write_server_frame(&mut buf, 0x0, false, &p[10..20]);
        write_server_frame(&mut buf, 0x0, true, &p[20..]);
        let (ev, _) = collect(&buf);
        assert_eq!(
            ev,
            [
                "Ping([])",
                "Chat { seq: 9, marker: Some(Marker { sender: 1, sent_ns: 5 }) }"
            ]
        );
    }

    #[test]
    fn incomplete_frame_reports_its_length() {
        let mut buf = Vec::new();
        let p = chat(1, &"y".repeat(300));
        write_server_frame(&mut buf, 0x1, true, &p);
        let (ev, r) = collect(&buf[..100]);
        assert!(ev.is_empty());
        assert_eq!(r.consumed, 0);
        assert_eq!(r.next_frame_len, buf.len());
        let (_, r) = collect(&buf[..3]);
        assert_eq!(
            r.next_frame_len, 0,
            "the 16-bit length is not all there yet"
        );
    }

    proptest! {
        /// Any sequence of server frames, split at any byte boundaries and fed through a
        /// compacting buffer the way the connection does, yields exactly their seqs and
        /// markers, in order.
        #[test]
        fn split_anywhere_yields_every_seq_and_marker(
            msgs in proptest::collection::vec(
                (1u64..u64::MAX, any::<u32>(), any::<u64>(), 0usize..1200, any::<bool>()),
                1..40,
            ),
            cuts in proptest::collection::vec(1usize..700, 1..60),
        ) {
            let mut stream = Vec::new();
            let mut want = Vec::new();
            for (seq, sender, ns, pad, presence) in &msgs {
                if *presence {
                    write_server_frame(&mut stream, 0x1, true,
                        br#"{"type":"leave","roomId":"r","userId":"u","username":"U","timestamp":"t"}"#);
                    want.push(None);
                }
                let content = format!("lt:{sender}:{ns}:{}", "x".repeat(*pad));
                write_server_frame(&mut stream, 0x1, true, &chat(*seq, &content));
                want.push(Some((*seq, *sender, *ns)));
            }
            let mut got = Vec::new();
            let mut scanner = Scanner::new();
            let mut buf: Vec<u8> = Vec::new();
            let (mut at, mut i) = (0, 0);
            while at < stream.len() {
                let n = cuts[i % cuts.len()].min(stream.len() - at);
                i += 1;
                buf.extend_from_slice(&stream[at..at + n]);
                at += n;
                let r = scanner.scan(&buf, &mut |e| match e {
                    Event::Chat { seq, marker: Some(m) } => got.push(Some((seq, m.sender, m.sent_ns))),
                    Event::Presence => got.push(None),
                    other => panic!("unexpected {other:?}"),
                }).unwrap();
                buf.drain(..r.consumed);
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(got, want);
        }
    }
}
