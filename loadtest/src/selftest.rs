//! `self-test`: the receive path's speed on one core, over an in-memory buffer of server
//! frames, exactly as a connection runs it (copy a read's worth of bytes into the
//! connection's buffer, read the clock, scan, check seqs, record latencies, compact).

use std::time::Instant;

use anyhow::{bail, Result};
use hubbub_core::protocol::{
    encode_ack, encode_chat, encode_subscribed, Ack, ChatMessageRef, Subscribed,
};
use serde::Serialize;

use crate::cli::SelfTestArgs;
use crate::engine::realtime_ns;
use crate::frame::write_server_frame;
use crate::recv::{compact, ConnRecv, Reply, Window};
use crate::stats::Stats;
use crate::v2::V2ConnRecv;

/// The self-test's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfTestReport {
    /// `self-test`.
    pub mode: &'static str,
    /// The protocol of the frames (1 or 2).
    pub proto: u8,
    /// Frames processed.
    pub frames: u64,
    /// Bytes processed.
    pub bytes: u64,
    /// Average frame size on the wire, bytes.
    pub frame_bytes: f64,
    /// Seconds spent.
    pub seconds: f64,
    /// Frames per second on one core.
    pub frames_per_sec: f64,
    /// Bytes per second.
    pub bytes_per_sec: f64,
    /// Meets `--min-frames-per-sec`.
    pub pass: bool,
}

/// A stream of `n` hubbub chat frames (as hubbub encodes them) with generator markers.
pub fn sample_stream(n: usize, payload_bytes: usize, base_ns: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut json = Vec::new();
    for i in 0..n {
        let sender = (i % 100) as u32;
        let mut content = format!("lt:{sender}:{}:", base_ns + i as u64);
        while content.len() < payload_bytes {
            content.push('x');
        }
        json.clear();
        encode_chat(
            &mut json,
            &ChatMessageRef {
                message_id: "019a7f3e-1c2b-7d4e-8f10-1a2b3c4d5e6f",
                room_id: "lt-room-3",
                kind: "chat",
                user_id: "lt-13",
                username: "lt-13",
                content: &content,
                timestamp: "2026-11-21T10:30:00.123Z",
                seq: i as u64 + 1,
                attachments: &[],
            },
        );
        write_server_frame(&mut out, 0x1, true, &json);
    }
    out
}

/// Rooms of the v2 stream are `lt-room-0 .. lt-room-<rooms - 1>`.
fn room_name(r: usize) -> String {
    format!("lt-room-{r}")
}

/// A stream of `n` v2 chat frames (as hubbub encodes them) spread round robin over
/// `rooms` rooms, each room's `seq` counting from 1, with an `ack` after every 100th
/// (as the sender of one message in 100 would get); returns it and its frame count.
pub fn sample_stream_v2(
    n: usize,
    payload_bytes: usize,
    base_ns: u64,
    rooms: usize,
) -> (Vec<u8>, u64) {
    let rooms = rooms.max(1);
    let names: Vec<String> = (0..rooms).map(room_name).collect();
    let mut out = Vec::new();
    let mut json = Vec::new();
    let mut frames = 0;
    for i in 0..n {
        let sender = (i % 100) as u32;
        let sent = base_ns + i as u64;
        let mut content = format!("lt:{sender}:{sent}:");
        while content.len() < payload_bytes {
            content.push('x');
        }
        json.clear();
        encode_chat(
            &mut json,
            &ChatMessageRef {
                message_id: "019a7f3e-1c2b-7d4e-8f10-1a2b3c4d5e6f",
                room_id: &names[i % rooms],
                kind: "chat",
                user_id: "lt-13",
                username: "lt-13",
                content: &content,
                timestamp: "2026-11-21T10:30:00.123Z",
                seq: (i / rooms) as u64 + 1,
                attachments: &[],
            },
        );
        write_server_frame(&mut out, 0x1, true, &json);
        frames += 1;
        if i % 100 == 99 {
            json.clear();
            let id = format!("{sent}.{i}");
            encode_ack(
                &mut json,
                &Ack {
                    id: None,
                    room_id: &names[i % rooms],
                    seq: (i / rooms) as u64 + 1,
                    message_id: "019a7f3e-1c2b-7d4e-8f10-1a2b3c4d5e6f",
                    client_msg_id: Some(&id),
                    duplicate: false,
                },
            );
            write_server_frame(&mut out, 0x1, true, &json);
            frames += 1;
        }
    }
    (out, frames)
}

/// The `subscribed` frames of the v2 stream's rooms.
fn subscribed_frames(rooms: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut json = Vec::new();
    for r in 0..rooms.max(1) {
        json.clear();
        encode_subscribed(
            &mut json,
            &Subscribed {
                id: Some(r as u32 + 1),
                room_id: &room_name(r),
                epoch: "e",
                seq: 0,
                recovered: false,
                last_read: 0,
                online: 1,
                users: None,
            },
        );
        write_server_frame(&mut out, 0x1, true, &json);
    }
    out
}

/// A connection's receive path of either protocol.
enum Path {
    V1(ConnRecv),
    V2(V2ConnRecv),
}

/// Runs the receive path over the stream until `args.seconds` have passed.
pub fn run(args: &SelfTestArgs) -> Result<SelfTestReport> {
    if let Some(cpu) = args.cpu {
        monoio::utils::bind_to_cpu_set([cpu])
            .map_err(|e| anyhow::anyhow!("cannot pin to CPU {cpu}: {e}"))?;
    }
    let n = args.frames as usize;
    let base = realtime_ns().saturating_sub(1_000_000_000);
    let rooms = args.subscriptions.max(1) as usize;
    let v2 = args.proto == 2;
    let (stream, stream_frames) = if v2 {
        sample_stream_v2(n, usize::from(args.payload_bytes), base, rooms)
    } else {
        (
            sample_stream(n, usize::from(args.payload_bytes), base),
            n as u64,
        )
    };
    let room_ids: Vec<u32> = (0..rooms as u32).collect();
    let read = args.read_size as usize;
    let mut buf: Vec<u8> = Vec::with_capacity(read + 16 * 1024);
    let mut stats = Stats::default();
    let win = Window {
        t0: 0,
        t1: u64::MAX,
    };
    let (mut frames, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    let mut passes = 0u64;
    while start.elapsed() < args.seconds || passes == 0 {
        let mut reply = Reply::default();
        let mut conn = if v2 {
            // Subscribed before the messages were sent, so they count as deliveries.
            let mut c = V2ConnRecv::new(0, &room_ids);
            let subs = subscribed_frames(rooms);
            if c.on_bytes(&subs, base - 1, win, &mut stats, &mut reply)
                .is_err()
            {
                bail!("the self-test's subscribed frames did not scan");
            }
            Path::V2(c)
        } else {
            Path::V1(ConnRecv::new(0))
        };
        let before = stats.delivered;
        let mut at = 0;
        while at < stream.len() {
            let room = buf.capacity() - buf.len();
            let take = room.min(read).min(stream.len() - at);
            buf.extend_from_slice(&stream[at..at + take]);
            at += take;
            let now = realtime_ns();
            let r = match &mut conn {
                Path::V1(c) => c.on_bytes(&buf, now, win, &mut stats, &mut reply),
                Path::V2(c) => c.on_bytes(&buf, now, win, &mut stats, &mut reply),
            };
            let (used, next) = match r {
                Ok(r) => r,
                Err(e) => bail!("the self-test stream did not scan: {e}"),
            };
            compact(&mut buf, used, next);
        }
        if stats.delivered - before != n as u64 || !buf.is_empty() {
            bail!(
                "self-test miscounted: {} of {n} frames delivered, {} bytes left",
                stats.delivered - before,
                buf.len()
            );
        }
        frames += stream_frames;
        bytes += stream.len() as u64;
        passes += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    if stats.integrity_violations() != 0 {
        bail!("self-test saw integrity violations in a clean stream");
    }
    let fps = frames as f64 / secs;
    Ok(SelfTestReport {
        mode: "self-test",
        proto: args.proto,
        frames,
        bytes,
        frame_bytes: stream.len() as f64 / stream_frames as f64,
        seconds: secs,
        frames_per_sec: fps,
        bytes_per_sec: bytes as f64 / secs,
        pass: fps >= args.min_frames_per_sec,
    })
}

/// Human text of the result.
pub fn text(r: &SelfTestReport) -> String {
    format!(
        "hubbub-loadtest self-test (receive path, protocol v{}, one core)\n  frames      {}\n  frame size  {:.0} B\n  \
         time        {:.3} s\n  throughput  {:.2} M frames/s ({:.0} MB/s)\n  result: {}\n",
        r.proto,
        r.frames,
        r.frame_bytes,
        r.seconds,
        r.frames_per_sec / 1e6,
        r.bytes_per_sec / 1e6,
        if r.pass { "PASS" } else { "FAIL" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn self_test_counts_every_frame() {
        let r = run(&SelfTestArgs {
            frames: 2000,
            payload_bytes: 64,
            read_size: 1000,
            seconds: Duration::from_millis(10),
            cpu: None,
            proto: 1,
            subscriptions: 20,
            min_frames_per_sec: 0.0,
            json: false,
        })
        .unwrap();
        assert!(r.frames >= 2000 && r.frames % 2000 == 0);
        assert!(r.pass && r.frame_bytes > 150.0);
        assert!(text(&r).contains("PASS"));
    }

    #[test]
    fn v2_self_test_counts_every_frame() {
        let r = run(&SelfTestArgs {
            frames: 2000,
            payload_bytes: 64,
            read_size: 1000,
            seconds: Duration::from_millis(10),
            cpu: None,
            proto: 2,
            subscriptions: 20,
            min_frames_per_sec: 0.0,
            json: false,
        })
        .unwrap();
        assert!(r.frames >= 2020 && r.frames % 2020 == 0, "{r:?}");
        assert!(text(&r).contains("protocol v2"));
    }
}
