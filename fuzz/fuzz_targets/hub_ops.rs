//! Random operation sequences against two hubs: opens, frames of any bytes, closes,
//! slow-consumer reports, timeouts and queries, with peer events delivered in order.
//! No sequence may panic, and every room's chat `seq` numbers seen by a connection rise
//! by one.
#![no_main]
use std::collections::{HashMap, VecDeque};

use hubbub_core::upgrade::UpgradeRequest;
use hubbub_core::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let gauge = ConnectionGauge::new(64);
    let mut hubs: Vec<Hub> = (0..2)
        .map(|w| Hub::new(HubConfig::new(WorkerId(w), 2), gauge.clone()))
        .collect();
    let mut conns: Vec<(usize, ConnId)> = Vec::new();
    let mut last_seq: HashMap<(usize, ConnId), u64> = HashMap::new();
    let mut t = 0u64;
    let rooms = ["a", "b", "c"];
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
                let q = format!(
                    "room={}&userId=u{}",
                    rooms[usize::from(op >> 4) % 3],
                    op >> 6
                );
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
            2 | 3 => {
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
        loop {
            for (w, hub) in hubs.iter_mut().enumerate() {
                loop {
                    match hub.poll_output() {
                        Output::Deliver { frame, to, .. } => {
                            for c in to.iter() {
                                check_seq(&mut last_seq, (w, *c), &frame);
                            }
                        }
                        Output::Send { conn, frame } => check_seq(&mut last_seq, (w, conn), &frame),
                        Output::Peer { to, event } => mail.push_back((to, event)),
                        // The next slice of a replay: as if the socket took it all.
                        Output::NotifyWritten { conn } => written.push((w, conn)),
                        Output::Timeout(_) => break,
                        // No sockets here: pings, pongs, closes and replies have no
                        // effect to check; no durable store, so no loads.
                        Output::Ping { .. }
                        | Output::Pong { .. }
                        | Output::Close { .. }
                        | Output::CloseReply { .. }
                        | Output::Reply { .. }
                        | Output::LoadRoom { .. } => {}
                    }
                }
            }
            let answered = !written.is_empty();
            for (w, conn) in written.drain(..) {
                hubs[w].handle_written(now, conn);
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

fn check_seq(last: &mut HashMap<(usize, ConnId), u64>, key: (usize, ConnId), frame: &[u8]) {
    if let Ok(protocol::ServerFrame::Chat(m)) = protocol::ServerFrame::decode(frame) {
        let prev = last.insert(key, m.seq);
        if let Some(prev) = prev {
            assert_eq!(m.seq, prev + 1, "gap or reorder");
        }
    }
}
