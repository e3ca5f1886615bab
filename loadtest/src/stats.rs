//! Counters and histograms, kept per thread and merged at the end.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

/// Largest latency recorded (larger values are clamped): one minute, in nanoseconds.
const MAX_NS: u64 = 60_000_000_000;

/// A new latency histogram: 1 ns .. 60 s, 3 significant figures.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy the constructor's rules (low ≥ 1,
    // high ≥ 2 × low, sigfig ≤ 5), so this cannot fail.
    Histogram::new_with_bounds(1, MAX_NS, 3).unwrap_or_else(|_| unreachable!())
}

/// Order checking of one connection's `seq` stream (a connection is in one room).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqTrack {
    last: Option<u64>,
}

/// What one `seq` meant for its connection's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// The first, or the one after the last.
    InOrder,
    /// Equal to the last one.
    Duplicate,
    /// Lower than the last one.
    OutOfOrder,
    /// Higher than the last + 1: this many were skipped.
    Gap(u64),
}

impl SeqTrack {
    /// Checks `seq` against the stream so far and remembers the highest seen.
    #[inline]
    pub fn check(&mut self, seq: u64) -> SeqCheck {
        let r = match self.last {
            None => SeqCheck::InOrder,
            Some(l) if seq == l.wrapping_add(1) => SeqCheck::InOrder,
            Some(l) if seq == l => SeqCheck::Duplicate,
            Some(l) if seq < l => SeqCheck::OutOfOrder,
            Some(l) => SeqCheck::Gap(seq - l - 1),
        };
        if self.last.is_none_or(|l| seq > l) {
            self.last = Some(seq);
        }
        r
    }
}

/// A count with one example of what was counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counted {
    /// How many.
    pub count: u64,
    /// The first example's text (e.g. an HTTP error body).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub example: String,
}

/// Everything one thread counted.
#[derive(Debug, Clone)]
pub struct Stats {
    /// End-to-end latency of the generator's messages sent in the window, ns.
    pub latency: Histogram<u64>,
    /// Handshake time (TCP connect to 101), ns.
    pub handshake: Histogram<u64>,
    /// Messages written inside the measured window.
    pub sent: u64,
    /// Messages written at any time.
    pub sent_total: u64,
    /// Sum over messages sent in the window of the room's members at send time.
    pub expected: u64,
    /// Sends skipped because the sender fell more than its catch-up limit behind.
    pub send_skipped: u64,
    /// Frames of the generator's messages sent in the window, received by anyone.
    pub delivered: u64,
    /// Of those, the ones the sender itself got back (the server accepted them).
    pub accepted: u64,
    /// Every frame received (text, binary, control).
    pub frames_total: u64,
    /// Chat frames received during the window (by receive time), for per-frame costs.
    pub frames_in_window: u64,
    /// Chat frames without the generator's marker (other clients, backlog of others).
    pub foreign_chat: u64,
    /// Presence frames.
    pub presence: u64,
    /// Text frames of unknown shape.
    pub other_text: u64,
    /// Bytes read from sockets.
    pub bytes_in: u64,
    /// `seq` jumps forward by more than one.
    pub gaps: u64,
    /// Total seqs skipped over by those gaps.
    pub missing: u64,
    /// The same `seq` twice in a row.
    pub duplicates: u64,
    /// A `seq` lower than one already received.
    pub order_violations: u64,
    /// Error frames by `code`.
    pub error_frames: BTreeMap<String, u64>,
    /// Connections ended by the server or the network, by how (close code, `eof`, …).
    pub closes: BTreeMap<String, Counted>,
    /// Connections that never opened, by why (`http_503`, `refused`, `timeout`, …).
    pub connect_failures: BTreeMap<String, Counted>,
    /// Connections that completed the handshake.
    pub connected: u64,
    /// Connections the generator closed (close 1000, answered in kind) to churn them.
    pub churned: u64,
    /// Churn ticks that found no open connection to close.
    pub churn_missed: u64,
    /// v2: `ack` frames received.
    pub acks: u64,
    /// v2: of those, acks of messages sent inside the measured window.
    pub acks_in_window: u64,
    /// v2: acks saying `duplicate:true` (the generator never resends, so 0 expected).
    pub duplicate_acks: u64,
    /// v2: send → ack time of the messages sent in the window, ns.
    pub ack_latency: Histogram<u64>,
    /// v2: `hello` frames.
    pub hellos: u64,
    /// v2: `subscribe` frames written.
    pub subscribes_sent: u64,
    /// v2: `subscribed` frames received.
    pub subscribed: u64,
    /// v2: `typing` frames written.
    pub typing_sent: u64,
    /// v2: `typing` frames received.
    pub typing: u64,
    /// v2: of those, received during the window.
    pub typing_in_window: u64,
    /// Presence frames (v1 join/leave, v2 presence) received during the window.
    pub presence_in_window: u64,
    /// v2: chat frames of a room the connection did not subscribe to.
    pub unknown_room: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            latency: new_histogram(),
            handshake: new_histogram(),
            sent: 0,
            sent_total: 0,
            expected: 0,
            send_skipped: 0,
            delivered: 0,
            accepted: 0,
            frames_total: 0,
            frames_in_window: 0,
            foreign_chat: 0,
            presence: 0,
            other_text: 0,
            bytes_in: 0,
            gaps: 0,
            missing: 0,
            duplicates: 0,
            order_violations: 0,
            error_frames: BTreeMap::new(),
            closes: BTreeMap::new(),
            connect_failures: BTreeMap::new(),
            connected: 0,
            churned: 0,
            churn_missed: 0,
            acks: 0,
            acks_in_window: 0,
            duplicate_acks: 0,
            ack_latency: new_histogram(),
            hellos: 0,
            subscribes_sent: 0,
            subscribed: 0,
            typing_sent: 0,
            typing: 0,
            typing_in_window: 0,
            presence_in_window: 0,
            unknown_room: 0,
        }
    }
}

fn add_counted(into: &mut BTreeMap<String, Counted>, from: &BTreeMap<String, Counted>) {
    for (k, v) in from {
        let e = into.entry(k.clone()).or_default();
        e.count += v.count;
        if e.example.is_empty() {
            e.example.clone_from(&v.example);
        }
    }
}

impl Stats {
    /// Records one latency sample in nanoseconds (clamped to the histogram's range).
    #[inline]
    pub fn record_latency(&mut self, ns: u64) {
        self.latency.saturating_record(ns.clamp(1, MAX_NS));
    }

    /// Records one send → ack time in nanoseconds (clamped like latency).
    #[inline]
    pub fn record_ack_latency(&mut self, ns: u64) {
        self.ack_latency.saturating_record(ns.clamp(1, MAX_NS));
    }

    /// Applies one `seq` check result to the integrity counters.
    #[inline]
    pub fn count_seq(&mut self, c: SeqCheck) {
        match c {
            SeqCheck::InOrder => {}
            SeqCheck::Duplicate => self.duplicates += 1,
            SeqCheck::OutOfOrder => self.order_violations += 1,
            SeqCheck::Gap(n) => {
                self.gaps += 1;
                self.missing += n;
            }
        }
    }

    /// Counts a connection that ended, with an example detail.
    pub fn count_close(&mut self, kind: String, example: &str) {
        let e = self.closes.entry(kind).or_default();
        e.count += 1;
        if e.example.is_empty() {
            e.example = example.to_owned();
        }
    }

    /// Counts a connection that could not open, with an example detail.
    pub fn count_connect_failure(&mut self, kind: String, example: &str) {
        let e = self.connect_failures.entry(kind).or_default();
        e.count += 1;
        if e.example.is_empty() {
            e.example = example.to_owned();
        }
    }

    /// Counts an error frame by its code.
    pub fn count_error_frame(&mut self, code: &[u8]) {
        let code = String::from_utf8_lossy(code);
        match self.error_frames.get_mut(code.as_ref()) {
            Some(n) => *n += 1,
            None => {
                self.error_frames.insert(code.into_owned(), 1);
            }
        }
    }

    /// Adds another thread's counts into this one.
    pub fn merge(&mut self, o: &Stats) {
        // Both histograms have the same bounds, so adding cannot fail; a failure would
        // only lose samples, never panic.
        let _ = self.latency.add(&o.latency);
        let _ = self.handshake.add(&o.handshake);
        self.sent += o.sent;
        self.sent_total += o.sent_total;
        self.expected += o.expected;
        self.send_skipped += o.send_skipped;
        self.delivered += o.delivered;
        self.accepted += o.accepted;
        self.frames_total += o.frames_total;
        self.frames_in_window += o.frames_in_window;
        self.foreign_chat += o.foreign_chat;
        self.presence += o.presence;
        self.other_text += o.other_text;
        self.bytes_in += o.bytes_in;
        self.gaps += o.gaps;
        self.missing += o.missing;
        self.duplicates += o.duplicates;
        self.order_violations += o.order_violations;
        for (k, v) in &o.error_frames {
            *self.error_frames.entry(k.clone()).or_default() += v;
        }
        add_counted(&mut self.closes, &o.closes);
        add_counted(&mut self.connect_failures, &o.connect_failures);
        self.connected += o.connected;
        self.churned += o.churned;
        self.churn_missed += o.churn_missed;
        self.acks += o.acks;
        self.acks_in_window += o.acks_in_window;
        self.duplicate_acks += o.duplicate_acks;
        let _ = self.ack_latency.add(&o.ack_latency);
        self.hellos += o.hellos;
        self.subscribes_sent += o.subscribes_sent;
        self.subscribed += o.subscribed;
        self.typing_sent += o.typing_sent;
        self.typing += o.typing;
        self.typing_in_window += o.typing_in_window;
        self.presence_in_window += o.presence_in_window;
        self.unknown_room += o.unknown_room;
    }

    /// Delivered ÷ expected (1 when nothing was expected).
    pub fn delivery_ratio(&self) -> f64 {
        if self.expected == 0 {
            1.0
        } else {
            self.delivered as f64 / self.expected as f64
        }
    }

    /// Sum of integrity violations (gaps, duplicates, order violations).
    pub fn integrity_violations(&self) -> u64 {
        self.gaps + self.duplicates + self.order_violations
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of a nanosecond histogram, in milliseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |ns: u64| ns as f64 / 1e6;
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_track_classifies() {
        let mut t = SeqTrack::default();
        assert_eq!(t.check(5), SeqCheck::InOrder);
        assert_eq!(t.check(6), SeqCheck::InOrder);
        assert_eq!(t.check(6), SeqCheck::Duplicate);
        assert_eq!(t.check(9), SeqCheck::Gap(2));
        assert_eq!(t.check(8), SeqCheck::OutOfOrder);
        assert_eq!(t.check(10), SeqCheck::InOrder, "the highest seen is kept");
        assert_eq!(t.check(u64::MAX), SeqCheck::Gap(u64::MAX - 11));
    }

    #[test]
    fn counts_and_merge() {
        let mut a = Stats::default();
        a.count_seq(SeqCheck::Gap(3));
        a.count_seq(SeqCheck::Duplicate);
        a.count_error_frame(b"rate_limited");
        a.count_error_frame(b"rate_limited");
        a.count_close("1008".into(), "policy");
        a.record_latency(1_000_000);
        a.record_latency(0);
        a.record_latency(u64::MAX);
        a.expected = 10;
        a.delivered = 9;
        let mut b = Stats::default();
        b.count_seq(SeqCheck::OutOfOrder);
        b.count_close("1008".into(), "other");
        b.count_connect_failure("http_503".into(), "busy");
        b.record_latency(2_000_000);
        b.expected = 10;
        b.delivered = 10;
        a.merge(&b);
        assert_eq!(
            (a.gaps, a.missing, a.duplicates, a.order_violations),
            (1, 3, 1, 1)
        );
        assert_eq!(a.integrity_violations(), 3);
        assert_eq!(a.error_frames["rate_limited"], 2);
        assert_eq!(a.closes["1008"].count, 2);
        assert_eq!(a.closes["1008"].example, "policy");
        assert_eq!(a.connect_failures["http_503"].count, 1);
        assert_eq!(a.latency.len(), 4);
        assert!((a.delivery_ratio() - 0.95).abs() < 1e-9);
        let p = Percentiles::of(&a.latency);
        assert_eq!(p.count, 4);
        assert!(p.p50 >= 0.99 && p.p50 <= 1.01, "{p:?}");
        assert!(p.max >= 59_000.0, "clamped to a minute: {p:?}");
        assert_eq!(Percentiles::of(&new_histogram()), Percentiles::default());
        assert_eq!(Stats::default().delivery_ratio(), 1.0);
    }
}
