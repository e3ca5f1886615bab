//! WebSocket frames as bytes on the wire (server to client: never masked), encoded once
//! and shared by every recipient.

use bytes::Bytes;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{Frame, FrameHeader};
use tungstenite::protocol::CloseFrame;

/// A final text frame carrying `payload`.
pub fn text(payload: &[u8]) -> Bytes {
    let header = FrameHeader {
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    };
    let mut out = Vec::with_capacity(payload.len() + 10);
    // Formatting a header into a Vec cannot fail.
    let _ = header.format(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// A ping with no payload.
pub fn ping() -> Bytes {
    let mut out = Vec::with_capacity(2);
    let _ = Frame::ping(Bytes::new()).format(&mut out);
    Bytes::from(out)
}

/// A pong answering a ping's `payload` (at most 125 bytes, checked by the decoder).
pub fn pong(payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(2 + payload.len());
    let _ = Frame::pong(payload.to_vec()).format(&mut out);
    Bytes::from(out)
}

/// The answer to a client's close: the same code, or an empty close if it gave none.
pub fn close_reply(code: Option<u16>) -> Bytes {
    match code {
        Some(code) => close(code, ""),
        None => {
            let mut out = Vec::with_capacity(2);
            let _ = Frame::close(None).format(&mut out);
            Bytes::from(out)
        }
    }
}

/// A close frame with `code` and `reason`.
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut out = Vec::with_capacity(4 + reason.len());
    let frame = Frame::close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }));
    let _ = frame.format(&mut out);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths() {
        assert_eq!(&text(b"hi")[..], b"\x81\x02hi");
        let mid = text(&[b'a'; 200]);
        assert_eq!(&mid[..4], &[0x81, 126, 0, 200]);
        let big = text(&vec![b'a'; 70_000]);
        assert_eq!(big[1], 127);
        assert_eq!(&ping()[..], &[0x89, 0]);
        assert_eq!(&close(1008, "x")[..], &[0x88, 3, 0x03, 0xF0, b'x']);
        assert_eq!(&pong(b"ab")[..], b"\x8a\x02ab");
        assert_eq!(&close_reply(Some(1000))[..], &[0x88, 2, 0x03, 0xE8]);
        assert_eq!(&close_reply(None)[..], &[0x88, 0]);
    }
}
