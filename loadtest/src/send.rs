//! Client → server frames: masked chat messages carrying the marker, pongs and closes.

use std::io::Write as _;

/// A small xorshift generator for mask keys (not cryptographic; RFC 6455 only needs the
/// key to be unpredictable to intermediaries, not to the server).
#[derive(Debug, Clone)]
pub struct MaskRng(u64);

impl MaskRng {
    /// Seeded from a connection index (any seed works; zero is remapped).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 4-byte mask.
    #[inline]
    pub fn next_mask(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_le_bytes()
    }

    /// The next 64 pseudo-random bits (also used to pick connections to churn).
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Appends a masked frame with `payload` to `out`.
pub(crate) fn write_masked(
    out: &mut Vec<u8>,
    opcode: u8,
    payload_len: usize,
    mask: [u8; 4],
) -> usize {
    out.push(0x80 | opcode);
    if payload_len < 126 {
        out.push(0x80 | payload_len as u8);
    } else if payload_len <= usize::from(u16::MAX) {
        out.push(0x80 | 126);
        out.extend_from_slice(&(payload_len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(payload_len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.len()
}

pub(crate) fn apply_mask(bytes: &mut [u8], mask: [u8; 4]) {
    for (i, b) in bytes.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Appends one masked chat frame whose content is `lt:<sender>:<sent_ns>:` padded with
/// `x` to `content_bytes` (never shorter than the marker itself).
pub fn write_chat(
    out: &mut Vec<u8>,
    sender: u32,
    sent_ns: u64,
    content_bytes: usize,
    mask: [u8; 4],
) {
    // Build the payload in place after a maximal header, then fix up the header: the
    // payload is `{"type":"chat","content":"` + content + `"}`.
    let start = out.len();
    let mut marker = [0u8; 48];
    let mut cur = std::io::Cursor::new(&mut marker[..]);
    // 3 + 10 + 1 + 20 + 1 bytes at most: fits in 48, so this write cannot fail.
    let _ = write!(cur, "lt:{sender}:{sent_ns}:");
    let mlen = cur.position() as usize;
    let content_len = content_bytes.max(mlen);
    const HEAD: &[u8] = br#"{"type":"chat","content":""#;
    const TAIL: &[u8] = br#""}"#;
    let payload_len = HEAD.len() + content_len + TAIL.len();
    let body = write_masked(out, 0x1, payload_len, mask);
    out.extend_from_slice(HEAD);
    out.extend_from_slice(&marker[..mlen]);
    out.resize(out.len() + (content_len - mlen), b'x');
    out.extend_from_slice(TAIL);
    debug_assert_eq!(out.len() - body, payload_len);
    apply_mask(&mut out[body..], mask);
    debug_assert!(out.len() > start);
}

/// Appends a masked pong echoing `payload` (at most 125 bytes).
pub fn write_pong(out: &mut Vec<u8>, payload: &[u8], mask: [u8; 4]) {
    let payload = &payload[..payload.len().min(125)];
    let body = write_masked(out, 0xa, payload.len(), mask);
    out.extend_from_slice(payload);
    apply_mask(&mut out[body..], mask);
}

/// Appends a masked close frame with `code` (no reason).
pub fn write_close(out: &mut Vec<u8>, code: u16, mask: [u8; 4]) {
    let body = write_masked(out, 0x8, 2, mask);
    out.extend_from_slice(&code.to_be_bytes());
    apply_mask(&mut out[body..], mask);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hubbub_core::protocol::{decode_client_frame, ClientFrame};

    /// Decodes one masked client frame: (opcode, unmasked payload, bytes used).
    pub(crate) fn unmask(buf: &[u8]) -> (u8, Vec<u8>, usize) {
        assert_eq!(buf[0] & 0x80, 0x80, "FIN");
        assert_eq!(buf[1] & 0x80, 0x80, "masked");
        let (len, mut i) = match buf[1] & 0x7f {
            126 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let mask = [buf[i], buf[i + 1], buf[i + 2], buf[i + 3]];
        i += 4;
        let mut p = buf[i..i + len].to_vec();
        apply_mask(&mut p, mask);
        (buf[0] & 0x0f, p, i + len)
    }

    #[test]
    fn chat_frames_decode_with_the_servers_own_decoder() {
        let mut rng = MaskRng::new(0);
        for size in [0usize, 10, 64, 100, 200, 1000] {
            let mut out = Vec::new();
            write_chat(
                &mut out,
                7,
                1_795_257_000_000_000_001,
                size,
                rng.next_mask(),
            );
            let (op, p, used) = unmask(&out);
            assert_eq!((op, used), (1, out.len()));
            let ClientFrame { content } = decode_client_frame(&p).unwrap();
            assert!(content.starts_with("lt:7:1795257000000000001:"));
            assert_eq!(content.len(), size.max(25));
            let echoed = format!(r#"{{"content":"{content}","seq":1}}"#);
            assert!(matches!(
                crate::frame::classify_text(echoed.as_bytes()),
                crate::frame::Event::Chat { seq: 1, marker: Some(m) }
                    if m.sender == 7 && m.sent_ns == 1_795_257_000_000_000_001
            ));
        }
    }

    #[test]
    fn pong_and_close() {
        let mut out = Vec::new();
        write_pong(&mut out, b"abc", [1, 2, 3, 4]);
        let (op, p, n) = unmask(&out);
        assert_eq!((op, p.as_slice()), (0xa, &b"abc"[..]));
        write_close(&mut out, 1000, [9, 9, 9, 9]);
        let (op, p, _) = unmask(&out[n..]);
        assert_eq!((op, p.as_slice()), (0x8, &1000u16.to_be_bytes()[..]));
    }
}
