//! The receive path of one connection: bytes in, counters and latency samples out.
//!
//! Per read: one clock reading (every frame in a read arrived at the same time), one scan
//! over the buffer, one compaction of the partial frame left at its end. No allocation.

use crate::frame::{Event, ScanError, Scanner};
use crate::stats::{SeqTrack, Stats};

/// The measured window, by the generator's clock (Unix ns); empty until sending starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start (inclusive).
    pub t0: u64,
    /// End (exclusive).
    pub t1: u64,
}

impl Window {
    /// No window yet: nothing counts.
    pub const NONE: Window = Window {
        t0: u64::MAX,
        t1: u64::MAX,
    };

    /// Whether `t` falls inside.
    #[inline]
    pub fn contains(&self, t: u64) -> bool {
        t >= self.t0 && t < self.t1
    }
}

/// What the connection must do after a read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// A ping's payload to echo in a pong (the last ping of the read).
    pub pong: Option<([u8; 125], u8)>,
    /// The server closed the connection, with this code.
    pub closed: Option<Option<u16>>,
}

/// One connection's receive state.
#[derive(Debug)]
pub struct ConnRecv {
    /// This connection's index (to recognise its own messages coming back).
    pub conn: u32,
    seq: SeqTrack,
    scanner: Scanner,
}

impl ConnRecv {
    /// A fresh connection `conn`.
    pub fn new(conn: u32) -> Self {
        Self {
            conn,
            seq: SeqTrack::default(),
            scanner: Scanner::new(),
        }
    }

    /// Processes the whole frames at the front of `buf`, received at `now_ns`, and
    /// returns how many bytes they took and the length of the incomplete frame after
    /// them, when known.
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
        let seq = &mut self.seq;
        let recv_in_window = win.contains(now_ns);
        let r = self.scanner.scan(buf, &mut |ev| {
            stats.frames_total += 1;
            match ev {
                Event::Chat { seq: s, marker } => {
                    stats.count_seq(seq.check(s));
                    stats.frames_in_window += u64::from(recv_in_window);
                    match marker {
                        Some(m) if win.contains(m.sent_ns) => {
                            stats.delivered += 1;
                            stats.accepted += u64::from(m.sender == me);
                            stats.record_latency(now_ns.saturating_sub(m.sent_ns));
                        }
                        Some(_) => {}
                        None => stats.foreign_chat += 1,
                    }
                }
                Event::Presence => {
                    stats.presence += 1;
                    stats.presence_in_window += u64::from(recv_in_window);
                }
                Event::Error { code } => stats.count_error_frame(code),
                Event::OtherText | Event::Binary | Event::Pong => stats.other_text += 1,
                Event::Ping(p) => {
                    let mut a = [0u8; 125];
                    let n = p.len().min(125);
                    a[..n].copy_from_slice(&p[..n]);
                    reply.pong = Some((a, n as u8));
                }
                Event::Close(code) => reply.closed = Some(code),
            }
        })?;
        Ok((r.consumed, r.next_frame_len))
    }
}

/// Moves the unconsumed tail of `buf` to its front and makes sure an incomplete frame of
/// `next_frame_len` bytes will fit (growing only for frames larger than the buffer).
#[inline]
pub fn compact(buf: &mut Vec<u8>, consumed: usize, next_frame_len: usize) {
    let len = buf.len();
    if consumed > 0 {
        buf.copy_within(consumed..len, 0);
        buf.truncate(len - consumed);
    }
    if next_frame_len > buf.capacity() {
        buf.reserve(next_frame_len - buf.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::write_server_frame;

    fn chat(seq: u64, content: &str) -> Vec<u8> {
        format!(
            r#"{{"messageId":"m","roomId":"r","type":"chat","userId":"u","username":"U","content":"{content}","timestamp":"t","seq":{seq}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn counts_window_latency_integrity_and_replies() {
        let mut buf = Vec::new();
        write_server_frame(&mut buf, 1, true, &chat(1, "lt:3:1000:x")); // before the window
        write_server_frame(&mut buf, 1, true, &chat(2, "lt:3:2000:x")); // own, in window
        write_server_frame(&mut buf, 1, true, &chat(2, "lt:4:2500:x")); // duplicate seq
        write_server_frame(&mut buf, 1, true, &chat(5, "hello")); // gap of 2, foreign
        write_server_frame(
            &mut buf,
            1,
            true,
            br#"{"type":"error","code":"rate_limited"}"#,
        );
        write_server_frame(&mut buf, 9, true, b"p");
        write_server_frame(&mut buf, 8, true, &1001u16.to_be_bytes());
        write_server_frame(&mut buf, 1, true, &chat(6, "after close"));
        let mut c = ConnRecv::new(3);
        let mut st = Stats::default();
        let mut reply = Reply::default();
        let win = Window { t0: 1500, t1: 3000 };
        let (used, next) = c.on_bytes(&buf, 4000, win, &mut st, &mut reply).unwrap();
        assert!(used < buf.len() && next == 0);
        assert_eq!(st.delivered, 2);
        assert_eq!(st.accepted, 1);
        assert_eq!(st.latency.len(), 2);
        assert_eq!(st.duplicates, 1);
        assert_eq!((st.gaps, st.missing), (1, 2));
        assert_eq!(st.foreign_chat, 1);
        assert_eq!(st.frames_in_window, 0, "received after t1");
        assert_eq!(st.error_frames["rate_limited"], 1);
        assert_eq!(
            reply.pong.map(|(a, n)| a[..n as usize].to_vec()),
            Some(b"p".to_vec())
        );
        assert_eq!(reply.closed, Some(Some(1001)));
    }

    #[test]
    fn compact_keeps_the_tail_and_grows_for_big_frames() {
        let mut v = Vec::with_capacity(8);
        v.extend_from_slice(b"abcdef");
        compact(&mut v, 4, 0);
        assert_eq!(v, b"ef");
        compact(&mut v, 0, 100);
        assert!(v.capacity() >= 100);
        assert_eq!(v, b"ef");
    }
}
