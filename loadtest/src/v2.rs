//! Protocol v2 (docs/PROTOCOL.md §7) for the load generator: which rooms a connection
//! subscribes to, the client frames it writes (`subscribe`, `chat` with its `roomId` and
//! a `clientMsgId`, `typing`), and the receive path of a connection holding several
//! rooms.
//!
//! The receive path is v1's ([`crate::recv`]) with one more look at each text frame: its
//! `"type"` (read in place when the frame starts with it, as every v2 control frame
//! does; one search for chat frames, which hubbub writes with `messageId` first). A chat
//! frame is matched to its room by the number at the end of its `roomId` (rooms are
//! `<prefix><n>`), and each room has its own `seq` check. Acks, `hello`, `subscribed`,
//! `presence` and `typing` frames are counted apart: acks are not deliveries.

use std::io::Write as _;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use crate::frame::{
    digits, find_marker, find_seq, string_value, value_of, Frame, Marker, ScanError, Scanner,
    CODE_KEY, TYPE_KEY,
};
use crate::recv::{Reply, Window};
use crate::send::{apply_mask, write_masked};
use crate::stats::{SeqTrack, Stats};

static ROOM_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"roomId\""));
static CLIENT_MSG_ID_KEY: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(b"\"clientMsgId\""));
static DUPLICATE_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"duplicate\""));

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The stride of connections `block · rooms .. (block + 1) · rooms`: the `block`-th
/// (cycling) number in `1..rooms` coprime with `rooms` (1 when `rooms` ≤ 2).
pub fn stride(block: usize, rooms: usize) -> usize {
    if rooms <= 2 {
        return 1;
    }
    let coprime = |s: &usize| gcd(*s, rooms) == 1;
    let count = (1..rooms).filter(coprime).count().max(1);
    (1..rooms).filter(coprime).nth(block % count).unwrap_or(1)
}

/// The rooms (numbers, `0..rooms`) connection `i` subscribes to: `(i + j·s) % rooms` for
/// `j < subscriptions` (at most `rooms`), with the stride `s` of `i / rooms`. The first is
/// `i % rooms`, the room it sends to. The rooms are distinct (`s` is coprime with
/// `rooms`), and over each block of `rooms` consecutive connections every room gets
/// exactly `subscriptions` members.
pub fn rooms_of(i: usize, rooms: usize, subscriptions: usize) -> Vec<u32> {
    let rooms = rooms.max(1);
    let s = stride(i / rooms, rooms);
    (0..subscriptions.min(rooms))
        .map(|j| ((i % rooms + j * s) % rooms) as u32)
        .collect()
}

/// Appends one masked text frame whose payload is `parts`, concatenated.
fn write_text(out: &mut Vec<u8>, parts: &[&[u8]], mask: [u8; 4]) {
    let len = parts.iter().map(|p| p.len()).sum();
    let body = write_masked(out, 0x1, len, mask);
    for p in parts {
        out.extend_from_slice(p);
    }
    debug_assert_eq!(out.len() - body, len);
    apply_mask(&mut out[body..], mask);
}

/// `n` in decimal, in a stack buffer.
struct Num {
    buf: [u8; 20],
    len: usize,
}

impl Num {
    fn new(n: u64) -> Self {
        let mut buf = [0u8; 20];
        let mut cur = std::io::Cursor::new(&mut buf[..]);
        // u64::MAX has 20 digits: this write cannot fail.
        let _ = write!(cur, "{n}");
        let len = cur.position() as usize;
        Self { buf, len }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Appends a masked `{"type":"subscribe","id":<id>,"roomId":"<room>"}`. `room` is a
/// valid room name (`A–Z a–z 0–9 - _ . : @`), so it needs no JSON escaping.
pub fn write_subscribe(out: &mut Vec<u8>, id: u32, room: &str, mask: [u8; 4]) {
    let id = Num::new(u64::from(id));
    write_text(
        out,
        &[
            br#"{"type":"subscribe","id":"#,
            id.bytes(),
            br#","roomId":""#,
            room.as_bytes(),
            br#""}"#,
        ],
        mask,
    );
}

/// Appends a masked `{"type":"typing","roomId":"<room>"}`.
pub fn write_typing(out: &mut Vec<u8>, room: &str, mask: [u8; 4]) {
    write_text(
        out,
        &[br#"{"type":"typing","roomId":""#, room.as_bytes(), br#""}"#],
        mask,
    );
}

/// Appends one masked v2 chat frame to `room`: the content is v1's
/// (`lt:<sender>:<sent_ns>:` padded with `x` to `content_bytes`), and the
/// `clientMsgId` is `<sent_ns>.<n>` (at most 40 characters; unique per sender, so the
/// server never takes a message for a resend), from which the ack is timed.
pub fn write_chat(
    out: &mut Vec<u8>,
    room: &str,
    sender: u32,
    sent_ns: u64,
    n: u64,
    content_bytes: usize,
    mask: [u8; 4],
) {
    let mut marker = [0u8; 48];
    let mut cur = std::io::Cursor::new(&mut marker[..]);
    // 3 + 10 + 1 + 20 + 1 bytes at most: fits in 48, so this write cannot fail.
    let _ = write!(cur, "lt:{sender}:{sent_ns}:");
    let mlen = cur.position() as usize;
    let content_len = content_bytes.max(mlen);
    let ns = Num::new(sent_ns);
    let n = Num::new(n);
    let head: [&[u8]; 8] = [
        br#"{"type":"chat","roomId":""#,
        room.as_bytes(),
        br#"","clientMsgId":""#,
        ns.bytes(),
        b".",
        n.bytes(),
        br#"","content":""#,
        &marker[..mlen],
    ];
    const TAIL: &[u8] = br#""}"#;
    let head_len: usize = head.iter().map(|p| p.len()).sum();
    let payload_len = head_len + (content_len - mlen) + TAIL.len();
    let body = write_masked(out, 0x1, payload_len, mask);
    for p in head {
        out.extend_from_slice(p);
    }
    out.resize(out.len() + (content_len - mlen), b'x');
    out.extend_from_slice(TAIL);
    debug_assert_eq!(out.len() - body, payload_len);
    apply_mask(&mut out[body..], mask);
}

/// One v2 server text frame, as much as the generator needs of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V<'a> {
    /// A chat message of room `room` (the number at the end of its `roomId`).
    Chat {
        /// The room's number, `None` when the `roomId` does not end in one.
        room: Option<u32>,
        /// Its `seq`.
        seq: u64,
        /// The generator's marker, when the content carries one.
        marker: Option<Marker>,
    },
    /// The answer to an accepted chat.
    Ack {
        /// The send time from the generator's `clientMsgId` (`<ns>.<n>`), when it has one.
        sent_ns: Option<u64>,
        /// `duplicate:true`.
        duplicate: bool,
    },
    /// The answer to a subscribe.
    Subscribed {
        /// The room's number.
        room: Option<u32>,
    },
    /// The first frame of the connection.
    Hello,
    /// A `presence` frame.
    Presence,
    /// A `typing` frame.
    Typing,
    /// An error frame; `code` is the raw bytes of its `code` string (empty when absent).
    Error {
        /// E.g. `not_subscribed`.
        code: &'a [u8],
    },
    /// `unsubscribed`, `read`, or any other shape.
    Other,
}

/// The frame's `type`: in place when the payload starts with `{"type":"`, else by search.
#[inline]
fn frame_type(p: &[u8]) -> Option<&[u8]> {
    const HEAD: &[u8] = br#"{"type":""#;
    if let Some(rest) = p.strip_prefix(HEAD) {
        let end = memchr::memchr(b'"', rest)?;
        return Some(&rest[..end]);
    }
    string_value(p, &TYPE_KEY)
}

/// hubbub's chat frame layout, `{"messageId":"…","roomId":"…","type":"chat",…`, read in
/// place: the room's name and the offset just after the type; `None` for any other
/// layout (which [`classify`] then reads by search).
#[inline]
fn hubbub_chat(p: &[u8]) -> Option<(&[u8], usize)> {
    const HEAD: &[u8] = br#"{"messageId":""#;
    const ROOM: &[u8] = br#","roomId":""#;
    const TYPE: &[u8] = br#","type":"chat""#;
    let rest = p.strip_prefix(HEAD)?;
    let id_end = memchr::memchr(b'"', rest)?;
    let rest = rest[id_end + 1..].strip_prefix(ROOM)?;
    let room_end = memchr::memchr(b'"', rest)?;
    let room = &rest[..room_end];
    rest[room_end + 1..].strip_prefix(TYPE)?;
    let after = HEAD.len() + id_end + 1 + ROOM.len() + room_end + 1 + TYPE.len();
    Some((room, after))
}

/// The number at the end of a room's name.
#[inline]
fn name_number(name: &[u8]) -> Option<u32> {
    let mut start = name.len();
    while start > 0 && name[start - 1].is_ascii_digit() {
        start -= 1;
    }
    let (v, _) = digits(name, start)?;
    u32::try_from(v).ok()
}

/// The number at the end of the `roomId` string.
#[inline]
fn room_number(p: &[u8]) -> Option<u32> {
    name_number(string_value(p, &ROOM_KEY)?)
}

/// The send time at the start of the generator's `clientMsgId` (`<ns>.<n>`).
fn ack_sent_ns(p: &[u8]) -> Option<u64> {
    let id = string_value(p, &CLIENT_MSG_ID_KEY)?;
    let (ns, i) = digits(id, 0)?;
    (id.get(i) == Some(&b'.')).then_some(ns)
}

/// Classifies a v2 text payload.
#[inline]
pub fn classify(p: &[u8]) -> V<'_> {
    if let Some((room, after)) = hubbub_chat(p) {
        return match find_seq(p) {
            Some(seq) => V::Chat {
                room: name_number(room),
                seq,
                marker: find_marker(&p[after..]),
            },
            None => V::Other,
        };
    }
    match frame_type(p) {
        Some(b"chat") => match find_seq(p) {
            Some(seq) => V::Chat {
                room: room_number(p),
                seq,
                marker: find_marker(p),
            },
            None => V::Other,
        },
        Some(b"ack") => V::Ack {
            sent_ns: ack_sent_ns(p),
            duplicate: value_of(p, &DUPLICATE_KEY).is_some_and(|at| p[at..].starts_with(b"true")),
        },
        Some(b"subscribed") => V::Subscribed {
            room: room_number(p),
        },
        Some(b"hello") => V::Hello,
        Some(b"presence") => V::Presence,
        Some(b"typing") => V::Typing,
        Some(b"error") => V::Error {
            code: string_value(p, &CODE_KEY).unwrap_or(b""),
        },
        _ => V::Other,
    }
}

/// One subscribed room's receive state.
#[derive(Debug, Clone, Copy, Default)]
struct RoomRecv {
    seq: SeqTrack,
    /// When its `subscribed` arrived (Unix ns): messages sent earlier are not counted as
    /// deliveries (they come, if at all, as backlog).
    since_ns: Option<u64>,
}

/// One v2 connection's receive state.
#[derive(Debug)]
pub struct V2ConnRecv {
    /// This connection's index (to recognise its own messages coming back).
    pub conn: u32,
    scanner: Scanner,
    /// The rooms it subscribes to, sorted, and their states.
    ids: Vec<u32>,
    rooms: Vec<RoomRecv>,
    /// Rooms confirmed since [`V2ConnRecv::take_subscribed`] was last called.
    newly: Vec<u32>,
}

impl V2ConnRecv {
    /// A fresh connection `conn` that subscribes to `rooms`.
    pub fn new(conn: u32, rooms: &[u32]) -> Self {
        let mut ids = rooms.to_vec();
        ids.sort_unstable();
        ids.dedup();
        Self {
            conn,
            scanner: Scanner::new(),
            rooms: vec![RoomRecv::default(); ids.len()],
            ids,
            newly: Vec::new(),
        }
    }

    /// Processes the whole frames at the front of `buf`, received at `now_ns`, as
    /// [`crate::recv::ConnRecv::on_bytes`] does.
    #[inline]
    pub fn on_bytes(
        &mut self,
        buf: &[u8],
        now_ns: u64,
        win: Window,
        stats: &mut Stats,
        reply: &mut Reply,
    ) -> Result<(usize, usize), ScanError> {
        let me = self.conn;
        let recv_in_window = win.contains(now_ns);
        let (ids, rooms, newly) = (&self.ids, &mut self.rooms, &mut self.newly);
        let r = self.scanner.scan_frames(buf, &mut |f| {
            stats.frames_total += 1;
            match f {
                Frame::Text(p) => match classify(p) {
                    V::Chat { room, seq, marker } => {
                        let st = room
                            .and_then(|r| ids.binary_search(&r).ok())
                            .map(|k| &mut rooms[k]);
                        let Some(st) = st.filter(|s| s.since_ns.is_some()) else {
                            stats.unknown_room += 1;
                            return;
                        };
                        stats.count_seq(st.seq.check(seq));
                        stats.frames_in_window += u64::from(recv_in_window);
                        match marker {
                            Some(m)
                                if win.contains(m.sent_ns)
                                    && st.since_ns.is_some_and(|t| m.sent_ns >= t) =>
                            {
                                stats.delivered += 1;
                                stats.accepted += u64::from(m.sender == me);
                                stats.record_latency(now_ns.saturating_sub(m.sent_ns));
                            }
                            Some(_) => {}
                            None => stats.foreign_chat += 1,
                        }
                    }
                    V::Ack { sent_ns, duplicate } => {
                        stats.acks += 1;
                        stats.duplicate_acks += u64::from(duplicate);
                        if let Some(t) = sent_ns.filter(|t| win.contains(*t)) {
                            stats.acks_in_window += 1;
                            stats.record_ack_latency(now_ns.saturating_sub(t));
                        }
                    }
                    V::Subscribed { room } => {
                        stats.subscribed += 1;
                        if let Some(k) = room.and_then(|r| ids.binary_search(&r).ok()) {
                            if rooms[k].since_ns.is_none() {
                                rooms[k].since_ns = Some(now_ns);
                                newly.push(ids[k]);
                            }
                        }
                    }
                    V::Hello => stats.hellos += 1,
                    V::Presence => {
                        stats.presence += 1;
                        stats.presence_in_window += u64::from(recv_in_window);
                    }
                    V::Typing => {
                        stats.typing += 1;
                        stats.typing_in_window += u64::from(recv_in_window);
                    }
                    V::Error { code } => stats.count_error_frame(code),
                    V::Other => stats.other_text += 1,
                },
                Frame::Binary | Frame::Pong => stats.other_text += 1,
                Frame::Ping(p) => {
                    let mut a = [0u8; 125];
                    let n = p.len().min(125);
                    a[..n].copy_from_slice(&p[..n]);
                    reply.pong = Some((a, n as u8));
                }
                Frame::Close(code) => reply.closed = Some(code),
            }
        })?;
        Ok((r.consumed, r.next_frame_len))
    }

    /// The rooms whose `subscribed` arrived since the last call.
    pub fn take_subscribed(&mut self) -> std::vec::Drain<'_, u32> {
        self.newly.drain(..)
    }

    /// Every room whose `subscribed` arrived.
    pub fn subscribed(&self) -> impl Iterator<Item = u32> + '_ {
        self.ids
            .iter()
            .zip(&self.rooms)
            .filter(|(_, s)| s.since_ns.is_some())
            .map(|(r, _)| *r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::write_server_frame;
    use crate::send::tests::unmask;
    use hubbub_core::protocol::{
        decode_v2_frame, encode_ack, encode_chat, encode_error_v2, encode_hello,
        encode_presence_v2, encode_subscribed, encode_typing, Ack, ChatMessageRef, ErrorCode,
        Subscribed, UserRef, V2Frame,
    };
    use proptest::prelude::*;

    fn chat(room: &str, seq: u64, content: &str) -> Vec<u8> {
        let mut v = Vec::new();
        encode_chat(
            &mut v,
            &ChatMessageRef {
                message_id: "019a7f3e-1c2b-7d4e-8f10-1a2b3c4d5e6f",
                room_id: room,
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

    fn subscribed(room: &str, seq: u64) -> Vec<u8> {
        let mut v = Vec::new();
        let users = [UserRef {
            user_id: "lt-1",
            username: "lt-1",
        }];
        encode_subscribed(
            &mut v,
            &Subscribed {
                id: Some(1),
                room_id: room,
                epoch: "e1",
                seq,
                recovered: false,
                last_read: 0,
                online: 1,
                users: Some(&users),
            },
        );
        v
    }

    fn ack(room: &str, seq: u64, cmid: Option<&str>, duplicate: bool) -> Vec<u8> {
        let mut v = Vec::new();
        encode_ack(
            &mut v,
            &Ack {
                id: None,
                room_id: room,
                seq,
                message_id: "m",
                client_msg_id: cmid,
                duplicate,
            },
        );
        v
    }

    #[test]
    fn rooms_are_distinct_first_is_the_sending_room_and_members_even() {
        for (rooms, subs, conns) in [(200, 20, 2000), (8, 4, 40), (10, 1, 1000), (7, 7, 70)] {
            let mut members = vec![0usize; rooms];
            let mut sets = std::collections::HashSet::new();
            for i in 0..conns {
                let r = rooms_of(i, rooms, subs);
                assert_eq!(r.len(), subs);
                assert_eq!(r[0] as usize, i % rooms);
                let mut d = r.clone();
                d.sort_unstable();
                d.dedup();
                assert_eq!(d.len(), subs, "distinct: {r:?}");
                for x in &r {
                    members[*x as usize] += 1;
                }
                sets.insert(d);
            }
            assert!(
                members.iter().all(|&m| m == conns * subs / rooms),
                "{members:?}"
            );
            if subs > 1 && subs < rooms {
                assert!(sets.len() > rooms, "the strides vary the member sets");
            }
        }
        assert_eq!(rooms_of(5, 1, 3), [0]);
        assert_eq!(rooms_of(3, 0, 2), [0]);
        assert_eq!(stride(0, 10), 1);
        assert_eq!(stride(1, 10), 3);
        assert_eq!(stride(4, 10), 1, "cycles over 1, 3, 7, 9");
    }

    #[test]
    fn client_frames_decode_with_the_servers_own_decoder() {
        let mut out = Vec::new();
        write_subscribe(&mut out, 7, "lt-room-12", [1, 2, 3, 4]);
        let (op, p, used) = unmask(&out);
        assert_eq!((op, used), (1, out.len()));
        let (id, f) = decode_v2_frame(&p).unwrap();
        assert_eq!(id, Some(7));
        assert!(
            matches!(f, V2Frame::Subscribe { ref room, since: None, epoch: None } if room == "lt-room-12")
        );

        out.clear();
        write_typing(&mut out, "lt-room-3", [9, 8, 7, 6]);
        let (_, p, _) = unmask(&out);
        let (id, f) = decode_v2_frame(&p).unwrap();
        assert_eq!(id, None);
        assert!(matches!(f, V2Frame::Typing { ref room, stop: false } if room == "lt-room-3"));

        for size in [0usize, 10, 64, 200, 1000, 1024, 3000] {
            out.clear();
            write_chat(
                &mut out,
                "lt-room-4",
                12,
                1_795_257_000_000_000_001,
                u64::MAX,
                size,
                [5, 6, 7, 8],
            );
            let (op, p, used) = unmask(&out);
            assert_eq!((op, used), (1, out.len()));
            let content_ok = size <= 1000;
            match decode_v2_frame(&p) {
                Ok((
                    None,
                    V2Frame::Chat {
                        room,
                        content,
                        client_msg_id,
                        ..
                    },
                )) => {
                    assert!(content_ok, "{size}");
                    assert_eq!(room, "lt-room-4");
                    assert!(content.starts_with("lt:12:1795257000000000001:"));
                    assert_eq!(content.len(), size.max(26));
                    assert_eq!(
                        client_msg_id.as_deref(),
                        Some("1795257000000000001.18446744073709551615")
                    );
                    // The server echoes the content: the marker is found.
                    let echoed = chat("lt-room-4", 3, &content);
                    assert_eq!(
                        classify(&echoed),
                        V::Chat {
                            room: Some(4),
                            seq: 3,
                            marker: Some(Marker {
                                sender: 12,
                                sent_ns: 1_795_257_000_000_000_001
                            })
                        }
                    );
                }
                Err(e) => {
                    assert!(!content_ok, "{size}: {e:?}");
                    assert_eq!(e.code, ErrorCode::ContentTooLong);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn server_frames_are_classified() {
        assert_eq!(
            classify(&chat("lt-room-17", 9, "hello")),
            V::Chat {
                room: Some(17),
                seq: 9,
                marker: None
            }
        );
        assert_eq!(
            classify(&chat("general", 9, "hello")).clone(),
            V::Chat {
                room: None,
                seq: 9,
                marker: None
            }
        );
        // Another server's layout is read by search.
        let p = br#"{"type":"chat","seq":4,"roomId":"lt-room-8","content":"lt:3:99:pad"}"#;
        assert_eq!(
            classify(p),
            V::Chat {
                room: Some(8),
                seq: 4,
                marker: Some(Marker {
                    sender: 3,
                    sent_ns: 99
                })
            }
        );
        assert_eq!(hubbub_chat(p), None);
        let p = chat("lt-room-8", 4, "x");
        let (room, after) = hubbub_chat(&p).unwrap();
        assert_eq!(room, b"lt-room-8");
        assert!(p[after..].starts_with(br#","userId""#));
        // An ack carries a seq, and so does a read marker: neither is a chat message.
        assert_eq!(
            classify(&ack("lt-room-1", 5, Some("1700.3"), false)),
            V::Ack {
                sent_ns: Some(1700),
                duplicate: false
            }
        );
        assert_eq!(
            classify(&ack("lt-room-1", 5, None, true)),
            V::Ack {
                sent_ns: None,
                duplicate: true
            }
        );
        assert_eq!(
            classify(&ack("lt-room-1", 5, Some("someone-else"), false)),
            V::Ack {
                sent_ns: None,
                duplicate: false
            }
        );
        let mut read = Vec::new();
        hubbub_core::protocol::encode_read(&mut read, "lt-room-1", "u", 4);
        assert_eq!(classify(&read), V::Other);
        assert_eq!(
            classify(&subscribed("lt-room-42", 0)),
            V::Subscribed { room: Some(42) }
        );
        let mut hello = Vec::new();
        encode_hello(&mut hello, "u", "U", "c", "n", 64);
        assert_eq!(classify(&hello), V::Hello);
        let mut pres = Vec::new();
        encode_presence_v2(&mut pres, "lt-room-1", 3, None);
        assert_eq!(classify(&pres), V::Presence);
        let mut typing = Vec::new();
        encode_typing(
            &mut typing,
            "lt-room-1",
            &[UserRef {
                user_id: "u",
                username: "U",
            }],
            1,
        );
        assert_eq!(classify(&typing), V::Typing);
        let mut err = Vec::new();
        encode_error_v2(
            &mut err,
            ErrorCode::NotSubscribed,
            Some(3),
            Some("lt-room-1"),
        );
        assert_eq!(
            classify(&err),
            V::Error {
                code: b"not_subscribed"
            }
        );
        let mut unsub = Vec::new();
        hubbub_core::protocol::encode_unsubscribed(&mut unsub, Some(2), "lt-room-1", None);
        assert_eq!(classify(&unsub), V::Other);
        assert_eq!(classify(b"{}"), V::Other);
        assert_eq!(classify(b"not json"), V::Other);
    }

    #[test]
    fn receive_path_counts_per_room_and_only_after_subscribed() {
        let mut buf = Vec::new();
        let mut hello = Vec::new();
        encode_hello(&mut hello, "u", "U", "c", "n", 64);
        write_server_frame(&mut buf, 1, true, &hello);
        // Room 3 is confirmed; room 5 is one of ours but not yet; room 9 is not ours.
        write_server_frame(&mut buf, 1, true, &subscribed("lt-room-3", 1));
        write_server_frame(&mut buf, 1, true, &chat("lt-room-3", 1, "lt:2:1000:x")); // backlog
        write_server_frame(&mut buf, 1, true, &chat("lt-room-5", 1, "lt:2:2000:x"));
        write_server_frame(&mut buf, 1, true, &chat("lt-room-9", 1, "lt:2:2000:x"));
        let mut c = V2ConnRecv::new(4, &[5, 3]);
        let mut st = Stats::default();
        let mut reply = Reply::default();
        let win = Window { t0: 1500, t1: 9000 };
        let (used, _) = c.on_bytes(&buf, 1800, win, &mut st, &mut reply).unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(c.take_subscribed().collect::<Vec<_>>(), [3]);
        assert_eq!(c.take_subscribed().count(), 0);
        assert_eq!((st.hellos, st.subscribed, st.unknown_room), (1, 1, 2));
        assert_eq!(st.delivered, 0, "the backlog is not a delivery");

        buf.clear();
        write_server_frame(&mut buf, 1, true, &subscribed("lt-room-5", 7));
        write_server_frame(&mut buf, 1, true, &chat("lt-room-3", 2, "lt:4:2000:x")); // own
        write_server_frame(&mut buf, 1, true, &chat("lt-room-5", 8, "lt:2:2100:x"));
        write_server_frame(&mut buf, 1, true, &chat("lt-room-5", 8, "lt:2:2100:x")); // dup
        write_server_frame(&mut buf, 1, true, &chat("lt-room-3", 4, "hello")); // gap, foreign
        write_server_frame(
            &mut buf,
            1,
            true,
            &ack("lt-room-3", 2, Some("2000.0"), false),
        );
        write_server_frame(&mut buf, 1, true, &ack("lt-room-3", 2, Some("900.1"), true));
        let mut pres = Vec::new();
        encode_presence_v2(&mut pres, "lt-room-3", 3, None);
        write_server_frame(&mut buf, 1, true, &pres);
        let mut typing = Vec::new();
        encode_typing(&mut typing, "lt-room-5", &[], 0);
        write_server_frame(&mut buf, 1, true, &typing);
        write_server_frame(&mut buf, 9, true, b"p");
        write_server_frame(&mut buf, 8, true, &1000u16.to_be_bytes());
        let (used, _) = c.on_bytes(&buf, 2000, win, &mut st, &mut reply).unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(c.take_subscribed().collect::<Vec<_>>(), [5]);
        let mut subs: Vec<u32> = c.subscribed().collect();
        subs.sort_unstable();
        assert_eq!(subs, [3, 5]);
        assert_eq!(st.delivered, 3, "own in room 3, room 5 twice");
        assert_eq!(st.accepted, 1);
        assert_eq!(st.duplicates, 1);
        assert_eq!((st.gaps, st.missing), (1, 1));
        assert_eq!(st.foreign_chat, 1);
        assert_eq!(
            st.frames_in_window,
            4 + 1,
            "chat frames received in the window"
        );
        assert_eq!((st.acks, st.acks_in_window, st.duplicate_acks), (2, 1, 1));
        assert_eq!(st.ack_latency.len(), 1);
        assert_eq!((st.presence_in_window, st.typing_in_window), (1, 1));
        assert_eq!(
            reply.pong.map(|(a, n)| a[..n as usize].to_vec()),
            Some(b"p".to_vec())
        );
        assert_eq!(reply.closed, Some(Some(1000)));
    }

    proptest! {
        /// Chat frames of several rooms interleaved with acks and presence, split at any
        /// byte boundaries, yield every delivery once and no integrity violation.
        #[test]
        fn interleaved_rooms_split_anywhere(
            msgs in proptest::collection::vec((0u32..6, 0usize..300, any::<bool>()), 1..60),
            cuts in proptest::collection::vec(1usize..500, 1..40),
        ) {
            let rooms: Vec<u32> = (0..6).collect();
            let mut stream = Vec::new();
            for r in &rooms {
                write_server_frame(&mut stream, 1, true, &subscribed(&format!("lt-room-{r}"), 0));
            }
            let mut seqs = [0u64; 6];
            for (k, (room, pad, extra)) in msgs.iter().enumerate() {
                let r = *room as usize;
                seqs[r] += 1;
                let content = format!("lt:1:{}:{}", 5000 + k, "x".repeat(*pad));
                let name = format!("lt-room-{r}");
                write_server_frame(&mut stream, 1, true, &chat(&name, seqs[r], &content));
                if *extra {
                    write_server_frame(&mut stream, 1, true, &ack(&name, seqs[r], Some("5000.1"), false));
                    let mut p = Vec::new();
                    encode_presence_v2(&mut p, &name, 2, None);
                    write_server_frame(&mut stream, 1, true, &p);
                }
            }
            let mut c = V2ConnRecv::new(0, &rooms);
            let mut st = Stats::default();
            let mut reply = Reply::default();
            let win = Window { t0: 4000, t1: u64::MAX - 1 };
            let mut buf: Vec<u8> = Vec::new();
            let (mut at, mut i) = (0, 0);
            while at < stream.len() {
                let n = cuts[i % cuts.len()].min(stream.len() - at);
                i += 1;
                buf.extend_from_slice(&stream[at..at + n]);
                at += n;
                let (used, _) = c.on_bytes(&buf, 4500, win, &mut st, &mut reply).unwrap();
                buf.drain(..used);
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(st.delivered, msgs.len() as u64);
            prop_assert_eq!(st.integrity_violations(), 0);
            prop_assert_eq!(st.unknown_room, 0);
            prop_assert_eq!(st.subscribed, 6);
            let extras = msgs.iter().filter(|m| m.2).count() as u64;
            prop_assert_eq!((st.acks, st.presence), (extras, extras));
        }
    }
}
