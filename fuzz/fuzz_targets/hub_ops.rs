//! Random operation sequences against two hubs: opens (v1, and v2 with or without a room
//! in the URL), frames of any bytes and v2 frames built from them (subscribe with since
//! and epoch, unsubscribe, chat with a clientMsgId or a file, typing, read), closes, slow-consumer
//! reports, timeouts and queries, with peer events delivered in order. No sequence may
//! panic, and the chat `seq` numbers a connection sees of a room rise by one within each
//! subscription to it.
#![no_main]
use std::collections::{HashMap, VecDeque};

use hubbub_core::upgrade::UpgradeRequest;
use hubbub_core::*;
use libfuzzer_sys::fuzz_target;

/// A connection's view of one room: (worker, connection, room).
type Key = (usize, ConnId, String);

const ROOMS: [&str; 3] = ["a", "b", "c"];

fuzz_target!(|data: &[u8]| {
    let gauge = ConnectionGauge::new(64);
    let mut hubs: Vec<Hub> = (0..2)
        .map(|w| Hub::new(HubConfig::new(WorkerId(w), 2), gauge.clone()))
        .collect();
    let mut conns: Vec<(usize, ConnId)> = Vec::new();
    let mut last_seq: HashMap<Key, u64> = HashMap::new();
    let mut t = 0u64;
    let mut bytes = data.iter().copied();
    while let Some(op) = bytes.next() {
        t += u64::from(bytes.next().unwrap_or(0)) * 10_000_000;
        let now = Now::new(
            Mono::from_nanos(t),
            UnixMillis(1_700_000_000_000 + t / 1_000_000),
        );
        let w = usize::from(op & 1);
        match op >> 1 & 7 {
            0 | 1 => {
                let room = ROOMS[usize::from(op >> 4) % 3];
                let v2 = bytes.next().unwrap_or(0);
                let mut q = format!("userId=u{}", op >> 6);
                if v2 & 1 == 1 {
                    q.push_str("&proto=2");
                    if v2 & 2 == 2 {
                        q.push_str(&format!("&room={room}"));
                    }
                    if v2 & 4 == 4 {
                        q.push_str(&format!("&since={}&epoch=e{}", v2 >> 4, v2 >> 6));
                    }
                } else {
                    q.push_str(&format!("&room={room}"));
                }
                if let Ok(adm) = hubs[w].admit(
                    now,
                    &UpgradeRequest {
                        query: &q,
                        ..Default::default()
                    },
                ) {
                    conns.push((w, hubs[w].handle_open(now, adm)));
                }
            }
            2 => {
                if let Some(&(w, c)) = conns.get(usize::from(op >> 4)) {
                    let len = usize::from(bytes.next().unwrap_or(0)) % 40;
                    let text: Vec<u8> = bytes.by_ref().take(len).collect();
                    hubs[w].handle_frame(now, c, Inbound::Text(&text));
                    hubs[w].handle_frame(
                        now,
                        c,
                        Inbound::Text(br#"{"type":"chat","content":"x"}"#),
                    );
                }
            }
            3 => {
                // A v2 frame (a v1 connection answers it with an error).
                if let Some(&(w, c)) = conns.get(usize::from(op >> 4)) {
                    let b = bytes.next().unwrap_or(0);
                    let arg = bytes.next().unwrap_or(0);
                    let frame = v2_frame(b, arg);
                    hubs[w].handle_frame(now, c, Inbound::Text(frame.as_bytes()));
                }
            }
            4 => {
                if !conns.is_empty() {
                    let (w, c) = conns.remove(usize::from(op >> 4) % conns.len());
                    hubs[w].handle_close(now, c);
                }
            }
            5 => {
                if let Some(&(w, c)) = conns.first() {
                    hubs[w].handle_queued(now, c, usize::from(op) << 16);
                }
            }
            6 => hubs[w].handle_timeout(now),
            _ => hubs[w].handle_query(now, QueryId(u64::from(op)), Query::Stats),
        }
        // Drain both hubs, carrying peer events in order.
        let mut mail = VecDeque::new();
        let mut written = Vec::new();
        let mut checks = Vec::new();
        loop {
            for (w, hub) in hubs.iter_mut().enumerate() {
                loop {
                    match hub.poll_output() {
                        Output::Deliver { frame, to, .. } => {
                            for c in to.iter() {
                                check_seq(&mut last_seq, w, *c, &frame);
                            }
                        }
                        Output::Send { conn, frame } => check_seq(&mut last_seq, w, conn, &frame),
                        Output::Peer { to, event } => mail.push_back((to, event)),
                        // The next slice of a replay: as if the socket took it all.
                        Output::NotifyWritten { conn } => written.push((w, conn)),
                        Output::CheckFiles { id, room, files } => {
                            checks.push((w, id, room, files.len()))
                        }
                        Output::Timeout(_) => break,
                        // No sockets here: pings, pongs, closes and replies have no
                        // effect to check; no durable store, so no loads.
                        Output::Ping { .. }
                        | Output::Pong { .. }
                        | Output::Close { .. }
                        | Output::CloseReply { .. }
                        | Output::Reply { .. }
                        | Output::LoadRoom { .. }
                        | Output::LoadRange { .. }
                        | Output::Sequence { .. }
                        | Output::FetchMessages { .. }
                        | Output::Unwatch { .. } => {}
                    }
                }
            }
            let answered = !written.is_empty() || !checks.is_empty();
            for (w, conn) in written.drain(..) {
                hubs[w].handle_written(now, conn);
            }
            // The file store answers each check, in turn: found, larger than declared,
            // of another room, or no answer at all.
            for (k, (w, id, room, n)) in checks.drain(..).enumerate() {
                let facts = |stored: u64, room: &str| FileFacts {
                    room: room.to_owned(),
                    name: "f".into(),
                    content_type: "text/plain".into(),
                    declared: 1,
                    stored: Some(stored),
                };
                let answer = match k % 4 {
                    0 => Some(vec![Some(facts(1, &room)); n]),
                    1 => Some(vec![Some(facts(2, &room)); n]),
                    2 => Some(vec![Some(facts(1, "elsewhere")); n]),
                    _ => None,
                };
                hubs[w].handle_files_checked(now, id, answer);
            }
            let Some((to, event)) = mail.pop_front() else {
                if answered {
                    continue;
                }
                break;
            };
            hubs[to.index()].handle_peer(now, event);
        }
    }
});

/// A v2 client frame of kind `b % 7` about a room `b` picks, with `arg` as its
/// `since`, `seq`, `clientMsgId`, `stop` or attached file.
fn v2_frame(b: u8, arg: u8) -> String {
    let room = ROOMS[usize::from(b >> 3) % 3];
    let id = b >> 5;
    match b % 7 {
        0 => format!(r#"{{"type":"subscribe","id":{id},"roomId":"{room}"}}"#),
        1 => format!(
            r#"{{"type":"subscribe","id":{id},"roomId":"{room}","since":{},"epoch":"e{}"}}"#,
            arg >> 2,
            arg & 3
        ),
        2 => format!(r#"{{"type":"unsubscribe","id":{id},"roomId":"{room}"}}"#),
        3 => format!(
            r#"{{"type":"chat","id":{id},"roomId":"{room}","content":"m","clientMsgId":"k{}"}}"#,
            arg % 4
        ),
        4 => format!(
            r#"{{"type":"typing","roomId":"{room}","stop":{}}}"#,
            arg & 1 == 1
        ),
        5 => format!(r#"{{"type":"read","id":{id},"roomId":"{room}","seq":{arg}}}"#),
        _ => format!(
            r#"{{"type":"chat","id":{id},"roomId":"{room}","attachments":[{{"fileId":"f{}"}}]}}"#,
            arg % 3
        ),
    }
}

/// The value of `"roomId"` in a frame, if it has one (frames are compact JSON).
fn room_of(frame: &[u8]) -> Option<String> {
    let key = br#""roomId":""#;
    let start = frame.windows(key.len()).position(|w| w == key)? + key.len();
    let len = frame[start..].iter().position(|&b| b == b'"')?;
    Some(String::from_utf8_lossy(&frame[start..start + len]).into_owned())
}

fn check_seq(last: &mut HashMap<Key, u64>, w: usize, conn: ConnId, frame: &[u8]) {
    // A new subscription to a room starts its stream afresh; an ended one has none.
    if frame.starts_with(br#"{"type":"subscribed""#)
        || frame.starts_with(br#"{"type":"unsubscribed""#)
    {
        if let Some(room) = room_of(frame) {
            last.remove(&(w, conn, room));
        }
        return;
    }
    if let Ok(protocol::ServerFrame::Chat(m)) = protocol::ServerFrame::decode(frame) {
        let prev = last.insert((w, conn, m.room_id), m.seq);
        if let Some(prev) = prev {
            assert_eq!(m.seq, prev + 1, "gap or reorder");
        }
    }
}
