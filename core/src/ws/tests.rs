use super::*;
use proptest::prelude::*;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::CloseFrame;

/// What the tests compare: events with owned payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Text(String),
    Binary,
    Ping(Vec<u8>),
    Pong,
    Close(Option<u16>),
    Violation(Violation),
}

fn collect(decoder: &mut FrameDecoder, input: &mut [u8], out: &mut Vec<Got>) {
    decoder.decode(input, |e| {
        out.push(match e {
            Event::Text(t) => Got::Text(t.to_owned()),
            Event::Binary => Got::Binary,
            Event::Ping(p) => Got::Ping(p.to_vec()),
            Event::Pong => Got::Pong,
            Event::Close(c) => Got::Close(c),
            Event::Violation(v) => Got::Violation(v),
        })
    });
}

fn decode_all(bytes: &[u8]) -> Vec<Got> {
    let mut out = Vec::new();
    collect(&mut FrameDecoder::new(8192), &mut bytes.to_vec(), &mut out);
    out
}

/// A client frame as tungstenite (an independent encoder) writes it, masked.
fn client(frame: Frame, mask: [u8; 4]) -> Vec<u8> {
    let mut frame = frame;
    frame.header_mut().mask = Some(mask);
    let mut out = Vec::new();
    frame.format(&mut out).unwrap();
    out
}

fn text(s: &str) -> Vec<u8> {
    client(
        Frame::message(s.to_owned(), OpCode::Data(Data::Text), true),
        [7, 1, 9, 3],
    )
}

/// A raw frame: first byte, masked flag and payload given by hand.
fn raw(b0: u8, masked: bool, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut out = vec![b0, payload.len() as u8 | if masked { 0x80 } else { 0 }];
    if masked {
        out.extend_from_slice(&[0, 0, 0, 0]);
    }
    out.extend_from_slice(payload);
    out
}

fn protocol(got: &[Got]) -> bool {
    matches!(got.last(), Some(Got::Violation(Violation::Protocol(_))))
}

#[test]
fn text_frames_of_every_length_form() {
    for len in [0, 1, 125, 126, 127, 300, 8192] {
        let s = "x".repeat(len);
        assert_eq!(decode_all(&text(&s)), [Got::Text(s)], "length {len}");
    }
}

#[test]
fn several_frames_in_one_read() {
    let mut bytes = text("a");
    bytes.extend(client(Frame::ping(vec![1, 2]), [1, 2, 3, 4]));
    bytes.extend(text("b"));
    bytes.extend(client(Frame::pong(vec![]), [1, 2, 3, 4]));
    assert_eq!(
        decode_all(&bytes),
        [
            Got::Text("a".into()),
            Got::Ping(vec![1, 2]),
            Got::Text("b".into()),
            Got::Pong
        ]
    );
}

#[test]
fn a_fragmented_message_with_a_ping_between() {
    let mut bytes = client(
        Frame::message("he", OpCode::Data(Data::Text), false),
        [1; 4],
    );
    bytes.extend(client(Frame::ping(vec![9]), [2; 4]));
    bytes.extend(client(
        Frame::message("ll", OpCode::Data(Data::Continue), false),
        [3; 4],
    ));
    bytes.extend(client(
        Frame::message("o", OpCode::Data(Data::Continue), true),
        [4; 4],
    ));
    assert_eq!(
        decode_all(&bytes),
        [Got::Ping(vec![9]), Got::Text("hello".into())]
    );
}

#[test]
fn holds_memory_only_while_something_is_incomplete() {
    let mut d = FrameDecoder::new(8192);
    let mut out = Vec::new();
    let mut bytes = text("hello");
    let (a, b) = bytes.split_at_mut(3);
    collect(&mut d, a, &mut out);
    assert!(!d.is_idle());
    collect(&mut d, b, &mut out);
    assert!(d.is_idle());
    let mut first = client(
        Frame::message("he", OpCode::Data(Data::Text), false),
        [1; 4],
    );
    collect(&mut d, &mut first, &mut out);
    assert!(!d.is_idle(), "a message in fragments");
    let mut last = client(
        Frame::message("y", OpCode::Data(Data::Continue), true),
        [1; 4],
    );
    collect(&mut d, &mut last, &mut out);
    assert!(d.is_idle());
    assert_eq!(out, [Got::Text("hello".into()), Got::Text("hey".into())]);
}

#[test]
fn binary_is_reported_at_its_header_and_ends_decoding() {
    // Only the header has arrived.
    let bytes = [0x82, 0xFE, 0x10, 0x00, 1, 2, 3, 4];
    assert_eq!(decode_all(&bytes), [Got::Binary]);
    let mut d = FrameDecoder::new(8192);
    let mut out = Vec::new();
    collect(&mut d, &mut bytes.to_vec(), &mut out);
    collect(&mut d, &mut text("after"), &mut out);
    assert_eq!(out, [Got::Binary], "nothing after");
    assert!(d.is_done() && d.is_idle());
}

#[test]
fn binary_over_the_message_limit_is_still_binary() {
    // 9,000 bytes announced (over 8192): PROTOCOL.md gives binary 1003, not 1009.
    let bytes = [0x82, 0xFE, 0x23, 0x28, 1, 2, 3, 4];
    assert_eq!(decode_all(&bytes), [Got::Binary]);
    // A 64-bit length, even beyond any limit.
    let huge = [0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4];
    assert_eq!(decode_all(&huge), [Got::Binary]);
}

#[test]
fn too_large_at_the_header_and_across_fragments() {
    let s = "x".repeat(8193);
    assert_eq!(
        decode_all(&text(&s)[..20]),
        [Got::Violation(Violation::TooLarge)]
    );
    let mut bytes = client(
        Frame::message("x".repeat(5000), OpCode::Data(Data::Text), false),
        [1; 4],
    );
    bytes.extend(client(
        Frame::message("x".repeat(3193), OpCode::Data(Data::Continue), true),
        [1; 4],
    ));
    assert_eq!(decode_all(&bytes), [Got::Violation(Violation::TooLarge)]);
    // A length with the top bit set is a protocol error, not a huge allocation.
    let huge = [0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    assert!(protocol(&decode_all(&huge)));
}

#[test]
fn invalid_utf8_whole_and_fragmented() {
    let bad = client(
        Frame::message(vec![0xC3, 0x28], OpCode::Data(Data::Text), true),
        [5; 4],
    );
    assert_eq!(decode_all(&bad), [Got::Violation(Violation::InvalidUtf8)]);
    // A code point split between fragments is fine; a broken one is not.
    let mut ok = client(
        Frame::message(vec![0xC3], OpCode::Data(Data::Text), false),
        [5; 4],
    );
    ok.extend(client(
        Frame::message(vec![0xA9], OpCode::Data(Data::Continue), true),
        [5; 4],
    ));
    assert_eq!(decode_all(&ok), [Got::Text("é".into())]);
    let mut broken = client(
        Frame::message(vec![0xC3], OpCode::Data(Data::Text), false),
        [5; 4],
    );
    broken.extend(client(
        Frame::message(vec![0x28], OpCode::Data(Data::Continue), true),
        [5; 4],
    ));
    assert_eq!(
        decode_all(&broken),
        [Got::Violation(Violation::InvalidUtf8)]
    );
}

#[test]
fn protocol_violations() {
    assert!(protocol(&decode_all(&raw(0x81, false, b"hi"))), "unmasked");
    assert!(protocol(&decode_all(&raw(0xC1, true, b"hi"))), "rsv1");
    assert!(
        protocol(&decode_all(&raw(0x83, true, b""))),
        "reserved data opcode"
    );
    assert!(
        protocol(&decode_all(&raw(0x8B, true, b""))),
        "reserved control opcode"
    );
    assert!(
        protocol(&decode_all(&raw(0x09, true, b""))),
        "fragmented ping"
    );
    assert!(
        protocol(&decode_all(&raw(0x80, true, b"x"))),
        "continuation alone"
    );
    let long_ping = [&[0x89u8, 0xFE, 0, 126][..], &[0; 4], &[0; 126]].concat();
    assert!(protocol(&decode_all(&long_ping)), "ping over 125 bytes");
    let mut two = client(Frame::message("a", OpCode::Data(Data::Text), false), [1; 4]);
    two.extend(text("b"));
    assert!(
        protocol(&decode_all(&two)),
        "new message inside a fragmented one"
    );
}

#[test]
fn close_frames() {
    let close = |code: u16, reason: &str| {
        client(
            Frame::close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            })),
            [1, 2, 3, 4],
        )
    };
    assert_eq!(decode_all(&close(1000, "bye")), [Got::Close(Some(1000))]);
    assert_eq!(decode_all(&close(4001, "")), [Got::Close(Some(4001))]);
    assert_eq!(
        decode_all(&client(Frame::close(None), [1; 4])),
        [Got::Close(None)]
    );
    for bad in [999, 1004, 1005, 1006, 1015, 2000, 5000] {
        assert!(protocol(&decode_all(&close(bad, ""))), "code {bad}");
    }
    assert!(protocol(&decode_all(&raw(0x88, true, &[3]))), "one byte");
    assert_eq!(
        decode_all(&raw(0x88, true, &[3, 232, 0xFF])),
        [Got::Violation(Violation::InvalidUtf8)]
    );
    // Nothing after the close is decoded.
    let mut bytes = close(1000, "");
    bytes.extend(text("late"));
    assert_eq!(decode_all(&bytes), [Got::Close(Some(1000))]);
}

#[test]
fn a_decoder_is_two_words() {
    assert!(std::mem::size_of::<FrameDecoder>() <= 16);
}

#[test]
fn close_codes_per_violation() {
    assert_eq!(Violation::TooLarge.close_code(), 1009);
    assert_eq!(Violation::InvalidUtf8.close_code(), 1007);
    assert_eq!(Violation::Protocol("x").close_code(), 1002);
}

#[derive(Debug, Clone)]
enum Msg {
    Text(String, usize),
    Ping(Vec<u8>),
}

fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        ("\\PC{0,300}", 1usize..4).prop_map(|(s, parts)| Msg::Text(s, parts)),
        proptest::collection::vec(any::<u8>(), 0..125).prop_map(Msg::Ping),
    ]
}

/// Splits `s` into `parts` byte ranges (possibly cutting a code point, as fragments may).
fn fragments(s: &str, parts: usize) -> Vec<Vec<u8>> {
    let b = s.as_bytes();
    let step = b.len().div_ceil(parts).max(1);
    let mut out: Vec<Vec<u8>> = b.chunks(step).map(<[u8]>::to_vec).collect();
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}

proptest! {
    /// Whatever tungstenite encodes, split across reads anywhere, decodes to the same
    /// messages in the same order, and the decoder is idle afterwards.
    #[test]
    fn decodes_tungstenite_frames_split_anywhere(
        msgs in proptest::collection::vec(msg(), 1..12),
        mask in any::<[u8; 4]>(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut bytes = Vec::new();
        let mut want = Vec::new();
        for m in &msgs {
            match m {
                Msg::Text(s, parts) => {
                    let frags = fragments(s, *parts);
                    let n = frags.len();
                    for (i, f) in frags.into_iter().enumerate() {
                        let op = if i == 0 { Data::Text } else { Data::Continue };
                        bytes.extend(client(Frame::message(f, OpCode::Data(op), i + 1 == n), mask));
                    }
                    want.push(Got::Text(s.clone()));
                }
                Msg::Ping(p) => {
                    bytes.extend(client(Frame::ping(p.clone()), mask));
                    want.push(Got::Ping(p.clone()));
                }
            }
        }
        let mut cut_at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        cut_at.push(0);
        cut_at.push(bytes.len());
        cut_at.sort_unstable();
        let mut d = FrameDecoder::new(8192);
        let mut got = Vec::new();
        for w in cut_at.windows(2) {
            collect(&mut d, &mut bytes[w[0]..w[1]].to_vec(), &mut got);
        }
        prop_assert_eq!(got, want);
        prop_assert!(d.is_idle());
        prop_assert!(!d.is_done());
    }

    /// Any bytes: no panic, at most one ending event and it comes last, and memory held
    /// stays bounded by the message limit plus what one read brought.
    #[test]
    fn any_bytes_end_at_most_once(chunks in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let mut d = FrameDecoder::new(256);
        let mut got = Vec::new();
        for mut c in chunks {
            collect(&mut d, &mut c, &mut got);
            let held = d.held.as_ref().map_or(0, |h| h.carry.len());
            prop_assert!(held <= 256 + 14 + 64);
        }
        let ends = got.iter().filter(|g| matches!(g, Got::Close(_) | Got::Binary | Got::Violation(_))).count();
        prop_assert!(ends <= 1);
        if ends == 1 {
            prop_assert!(matches!(got.last(), Some(Got::Close(_) | Got::Binary | Got::Violation(_))));
            prop_assert!(d.is_done());
        }
    }

    #[test]
    fn unmask_matches_the_bytewise_definition(
        data in proptest::collection::vec(any::<u8>(), 0..100), mask in any::<[u8; 4]>()) {
        let mut fast = data.clone();
        unmask(&mut fast, mask);
        let slow: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
        prop_assert_eq!(fast, slow);
    }
}

#[test]
fn a_control_frame_is_the_only_other_thing_allowed_mid_message() {
    let mut bytes = client(Frame::message("a", OpCode::Data(Data::Text), false), [1; 4]);
    bytes.extend(client(
        Frame::message(vec![1], OpCode::Data(Data::Binary), true),
        [1; 4],
    ));
    assert!(protocol(&decode_all(&bytes)));
}
