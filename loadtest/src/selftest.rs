//! `self-test`: the receive path's speed on one core, over an in-memory buffer of server
//! frames, exactly as a connection runs it (copy a read's worth of bytes into the
//! connection's buffer, read the clock, scan, check seqs, record latencies, compact).

use std::time::Instant;

use anyhow::{bail, Result};
use hubbub_core::protocol::{encode_chat, ChatMessageRef};
use serde::Serialize;

use crate::cli::SelfTestArgs;
use crate::engine::realtime_ns;
use crate::frame::write_server_frame;
use crate::recv::{compact, ConnRecv, Reply, Window};
use crate::stats::Stats;

/// The self-test's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfTestReport {
    /// `self-test`.
    pub mode: &'static str,
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
            },
        );
        write_server_frame(&mut out, 0x1, true, &json);
    }
    out
}

/// Runs the receive path over the stream until `args.seconds` have passed.
pub fn run(args: &SelfTestArgs) -> Result<SelfTestReport> {
    if let Some(cpu) = args.cpu {
        monoio::utils::bind_to_cpu_set([cpu])
            .map_err(|e| anyhow::anyhow!("cannot pin to CPU {cpu}: {e}"))?;
    }
    let n = args.frames as usize;
    let base = realtime_ns().saturating_sub(1_000_000_000);
    let stream = sample_stream(n, usize::from(args.payload_bytes), base);
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
        let mut conn = ConnRecv::new(0);
        let mut reply = Reply::default();
        let before = stats.delivered;
        let mut at = 0;
        while at < stream.len() {
            let room = buf.capacity() - buf.len();
            let take = room.min(read).min(stream.len() - at);
            buf.extend_from_slice(&stream[at..at + take]);
            at += take;
            let now = realtime_ns();
            let (used, next) = match conn.on_bytes(&buf, now, win, &mut stats, &mut reply) {
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
        frames += n as u64;
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
        frames,
        bytes,
        frame_bytes: stream.len() as f64 / n as f64,
        seconds: secs,
        frames_per_sec: fps,
        bytes_per_sec: bytes as f64 / secs,
        pass: fps >= args.min_frames_per_sec,
    })
}

/// Human text of the result.
pub fn text(r: &SelfTestReport) -> String {
    format!(
        "hubbub-loadtest self-test (receive path, one core)\n  frames      {}\n  frame size  {:.0} B\n  \
         time        {:.3} s\n  throughput  {:.2} M frames/s ({:.0} MB/s)\n  result: {}\n",
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
            min_frames_per_sec: 0.0,
            json: false,
        })
        .unwrap();
        assert!(r.frames >= 2000 && r.frames % 2000 == 0);
        assert!(r.pass && r.frame_bytes > 150.0);
        assert!(text(&r).contains("PASS"));
    }
}
