//! WebSocket framing (RFC 6455) on the server side: client frames decoded from whatever
//! bytes have arrived, with no buffer held while a connection is idle.
//!
//! A general-purpose codec keeps a read buffer and a context per connection; with tens of
//! thousands of idle connections that memory is most of a server's footprint. This
//! decoder works in place on the caller's buffer (the driver reads into one scratch
//! buffer per worker) and keeps bytes only when a frame is split across reads, or a
//! message across frames, and only until it is complete.
//!
//! ```
//! use hubbub_core::ws::{Event, FrameDecoder};
//!
//! // A masked client text frame "hi" (mask 1,2,3,4), split across two reads.
//! let mut frame = vec![0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
//! let mut decoder = FrameDecoder::new(8192);
//! let mut texts = Vec::new();
//! let (first, second) = frame.split_at_mut(5);
//! decoder.decode(first, |e| if let Event::Text(t) = e { texts.push(t.to_owned()) });
//! assert!(texts.is_empty() && !decoder.is_idle(), "holds the first part");
//! decoder.decode(second, |e| if let Event::Text(t) = e { texts.push(t.to_owned()) });
//! assert_eq!(texts, ["hi"]);
//! assert!(decoder.is_idle(), "and nothing once the frame is complete");
//! ```

/// What a client's bytes meant, frame by frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete text message (possibly reassembled from fragments), valid UTF-8.
    Text(&'a str),
    /// A binary frame began. Reported at its header; the decoder is done afterwards.
    Binary,
    /// A ping: answer with a pong carrying the same payload.
    Ping(&'a [u8]),
    /// A pong.
    Pong,
    /// The client's close frame with its status code, if any. The decoder is done.
    Close(Option<u16>),
    /// The bytes break a rule; the decoder is done.
    Violation(Violation),
}

/// Why a client's frames were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// A message over the limit (close with 1009).
    TooLarge,
    /// Text that is not UTF-8 (close with 1007).
    InvalidUtf8,
    /// Any other breach of RFC 6455 (close with 1002); the text says which.
    Protocol(&'static str),
}

impl Violation {
    /// The close code RFC 6455 gives this violation.
    pub fn close_code(self) -> u16 {
        match self {
            Violation::TooLarge => 1009,
            Violation::InvalidUtf8 => 1007,
            Violation::Protocol(_) => 1002,
        }
    }
}

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// Decodes the frames of one client connection.
///
/// Its size is a few words; it owns heap memory only while a frame is incomplete or a
/// fragmented message is being reassembled.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    /// Bytes held between reads; allocated only while something is incomplete.
    held: Option<Box<Held>>,
    max_message: u32,
    in_message: bool,
    done: bool,
}

/// What an incomplete frame or message needs kept.
#[derive(Debug, Default)]
struct Held {
    /// The start of a frame whose end has not arrived.
    carry: Vec<u8>,
    /// The fragments so far of a fragmented text message.
    message: Vec<u8>,
}

struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    header_len: usize,
    payload_len: u64,
}

impl FrameDecoder {
    /// A decoder refusing messages over `max_message` payload bytes (at most
    /// `u32::MAX`; larger limits are clamped).
    pub fn new(max_message: usize) -> FrameDecoder {
        FrameDecoder {
            max_message: u32::try_from(max_message).unwrap_or(u32::MAX),
            ..FrameDecoder::default()
        }
    }

    /// Whether a close frame or a violation ended decoding (later bytes are ignored).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether it holds no bytes (and so no heap memory).
    pub fn is_idle(&self) -> bool {
        self.held.is_none()
    }

    fn held(&mut self) -> &mut Held {
        self.held.get_or_insert_with(Box::default)
    }

    /// Frees what is held once nothing is incomplete.
    fn release_if_empty(&mut self) {
        if self
            .held
            .as_ref()
            .is_some_and(|h| h.carry.is_empty() && h.message.is_empty())
        {
            self.held = None;
        }
    }

    fn message_len(&self) -> usize {
        self.held.as_ref().map_or(0, |h| h.message.len())
    }

    /// Decodes the frames in `input` (the next bytes from the client), calling `on` for
    /// each event in order. Unmasks in place, so `input` is scrambled afterwards. A
    /// trailing partial frame is kept for the next call.
    pub fn decode(&mut self, input: &mut [u8], mut on: impl FnMut(Event<'_>)) {
        if self.done {
            return;
        }
        let mut carry = self
            .held
            .as_mut()
            .map(|h| std::mem::take(&mut h.carry))
            .unwrap_or_default();
        if carry.is_empty() {
            let used = self.decode_frames(input, &mut on);
            if !self.done && used < input.len() {
                self.held().carry = input[used..].to_vec();
            }
        } else {
            carry.extend_from_slice(input);
            let used = self.decode_frames(&mut carry, &mut on);
            if !self.done && used < carry.len() {
                carry.drain(..used);
                self.held().carry = carry;
            }
        }
        self.release_if_empty();
    }

    /// Decodes whole frames from the start of `buf`; returns how many bytes they took.
    fn decode_frames(&mut self, buf: &mut [u8], on: &mut impl FnMut(Event<'_>)) -> usize {
        let mut pos = 0;
        while !self.done {
            let header = match parse_header(&buf[pos..]) {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(v) => {
                    self.fail(v, on);
                    break;
                }
            };
            if let Err(v) = self.check(&header) {
                self.fail(v, on);
                break;
            }
            if header.opcode == OP_BINARY {
                // Binary is refused whatever it carries: no need to wait for the payload.
                self.done = true;
                on(Event::Binary);
                break;
            }
            // `check` bounded the length by the message limit, so it fits in usize.
            let end = pos + header.header_len + header.payload_len as usize;
            if buf.len() < end {
                break;
            }
            let payload = &mut buf[pos + header.header_len..end];
            unmask(payload, header.mask);
            pos = end;
            self.frame(&header, payload, on);
        }
        pos
    }

    /// The rules a frame's header alone can break.
    fn check(&self, h: &Header) -> Result<(), Violation> {
        match h.opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if !h.fin {
                    return Err(Violation::Protocol("fragmented control frame"));
                }
                if h.payload_len > MAX_CONTROL_PAYLOAD {
                    return Err(Violation::Protocol("control frame over 125 bytes"));
                }
                Ok(())
            }
            OP_CONTINUATION if !self.in_message => {
                Err(Violation::Protocol("continuation frame outside a message"))
            }
            OP_TEXT | OP_BINARY if self.in_message => Err(Violation::Protocol(
                "new message before the fragmented one ended",
            )),
            // Binary is refused (1003) whatever its size: its length is not a violation.
            OP_BINARY => Ok(()),
            OP_CONTINUATION | OP_TEXT => {
                let so_far = self.message_len() as u64;
                if so_far.saturating_add(h.payload_len) > u64::from(self.max_message) {
                    Err(Violation::TooLarge)
                } else {
                    Ok(())
                }
            }
            _ => Err(Violation::Protocol("reserved opcode")),
        }
    }

    /// Acts on one complete, unmasked frame.
    fn frame(&mut self, h: &Header, payload: &[u8], on: &mut impl FnMut(Event<'_>)) {
        match h.opcode {
            OP_TEXT if h.fin => match std::str::from_utf8(payload) {
                Ok(text) => on(Event::Text(text)),
                Err(_) => self.fail(Violation::InvalidUtf8, on),
            },
            OP_TEXT => {
                self.in_message = true;
                self.held().message.extend_from_slice(payload);
            }
            OP_CONTINUATION => {
                self.held().message.extend_from_slice(payload);
                if h.fin {
                    // Give the buffer back once the message is out: none is kept while idle.
                    let message = std::mem::take(&mut self.held().message);
                    self.in_message = false;
                    match std::str::from_utf8(&message) {
                        Ok(text) => on(Event::Text(text)),
                        Err(_) => self.fail(Violation::InvalidUtf8, on),
                    }
                }
            }
            OP_PING => on(Event::Ping(payload)),
            OP_PONG => on(Event::Pong),
            _ => match close_code(payload) {
                Ok(code) => {
                    self.finish();
                    on(Event::Close(code));
                }
                Err(v) => self.fail(v, on),
            },
        }
    }

    fn fail(&mut self, violation: Violation, on: &mut impl FnMut(Event<'_>)) {
        self.finish();
        on(Event::Violation(violation));
    }

    fn finish(&mut self) {
        self.done = true;
        self.held = None;
    }
}

/// The header at the start of `b`, or `None` if it has not all arrived.
fn parse_header(b: &[u8]) -> Result<Option<Header>, Violation> {
    let (Some(&b0), Some(&b1)) = (b.first(), b.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(Violation::Protocol("reserved bits set"));
    }
    if b1 & 0x80 == 0 {
        return Err(Violation::Protocol("unmasked client frame"));
    }
    let (payload_len, len_bytes) = match b1 & 0x7F {
        126 => match b.get(2..4) {
            Some(x) => (u64::from(u16::from_be_bytes([x[0], x[1]])), 2),
            None => return Ok(None),
        },
        127 => match b.get(2..10) {
            Some(x) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(x);
                let len = u64::from_be_bytes(be);
                if len >> 63 != 0 {
                    return Err(Violation::Protocol("length with its top bit set"));
                }
                (len, 8)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 0),
    };
    let mask_at = 2 + len_bytes;
    let Some(m) = b.get(mask_at..mask_at + 4) else {
        return Ok(None);
    };
    Ok(Some(Header {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0F,
        mask: [m[0], m[1], m[2], m[3]],
        header_len: mask_at + 4,
        payload_len,
    }))
}

/// The status code of a close frame's payload, checked as RFC 6455 §7.4 says.
fn close_code(payload: &[u8]) -> Result<Option<u16>, Violation> {
    match payload {
        [] => Ok(None),
        [_] => Err(Violation::Protocol("close payload of one byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
                return Err(Violation::Protocol("close code not allowed"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(Violation::InvalidUtf8);
            }
            Ok(Some(code))
        }
    }
}

/// XORs `payload` with the repeating 4-byte `mask`, a word at a time.
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let word = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(b) ^ word).to_ne_bytes());
    }
    // Every chunk so far was a multiple of 4 long, so the mask restarts at index 0.
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

#[cfg(test)]
mod tests;
