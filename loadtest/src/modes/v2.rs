//! `rooms` (S8) and `typing` (S9): fan-out on protocol v2 connections.
//!
//! One run: connect (v2, no room), settle, read the server's RSS; ask every connection to
//! subscribe to its first room (which creates every room), wait until the server
//! confirmed them, settle, read the RSS; then to its other rooms, likewise; then the fan-out window of [`super::fanout`] (warm-up, window, drain), with
//! typing and churn running if asked. The report is a [`FanoutReport`] whose
//! chat figures count chat frames only, plus [`V2Figures`].

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::fanout::{report, window, Outcome};
use super::{no_connection, plan, sample, sample_opt, wait_settled, Sample};
use crate::cli::{RoomsArgs, TypingArgs, V2Common};
use crate::engine::{Engine, V2Plan};
use crate::progress::Progress;
use crate::report::{Check, FanoutReport, StepsReport, V2Figures};
use crate::stats::Percentiles;

/// One v2 run's shape (from `rooms` or `typing` arguments).
#[derive(Debug, Clone)]
pub struct Shape<'a> {
    /// The report's `mode`.
    pub mode: &'static str,
    /// Shared v2 options.
    pub c: &'a V2Common,
    /// Connections.
    pub conns: usize,
    /// Rooms.
    pub rooms: usize,
    /// Rooms per connection.
    pub subscriptions: usize,
    /// Senders.
    pub senders: usize,
    /// Typing period.
    pub typing_every: Option<Duration>,
    /// Percent of the connections replaced per second.
    pub churn_pct: f64,
    /// Settle time before each RSS reading (zero: no RSS figures).
    pub settle: Duration,
    /// `--max-rss-per-subscription`.
    pub max_rss_per_subscription: Option<f64>,
    /// Overrides of `--max-p99` and `--min-delivery` (stepping sets them).
    pub max_p99: Option<f64>,
    /// See above.
    pub min_delivery: Option<f64>,
    /// Do not fail on integrity (stepping judges it over all steps).
    pub allow_loss: bool,
}

impl<'a> Shape<'a> {
    /// The shape `rooms` asks for.
    pub fn rooms(a: &'a RoomsArgs) -> Self {
        Shape {
            mode: "rooms",
            c: &a.v2,
            conns: a.conns,
            rooms: a.rooms as usize,
            subscriptions: a.subscriptions as usize,
            senders: a.senders,
            typing_every: a.typing_every,
            churn_pct: a.churn,
            settle: a.settle,
            max_rss_per_subscription: a.max_rss_per_subscription,
            max_p99: a.v2.max_p99,
            min_delivery: a.v2.min_delivery,
            allow_loss: a.v2.allow_loss,
        }
    }

    /// The shape `typing` asks for (no RSS figures: connections churn).
    pub fn typing(a: &'a TypingArgs) -> Self {
        Shape {
            mode: "typing",
            c: &a.v2,
            conns: a.conns,
            rooms: a.rooms as usize,
            subscriptions: a.subscriptions as usize,
            senders: a.senders,
            typing_every: Some(a.typing_every),
            churn_pct: a.churn,
            settle: Duration::ZERO,
            max_rss_per_subscription: None,
            max_p99: a.v2.max_p99,
            min_delivery: a.v2.min_delivery,
            allow_loss: a.v2.allow_loss,
        }
    }
}

/// The most frames per connection per second a per-room coalescing interval allows over
/// a window: one per room and interval, plus one per room at the window's edge.
pub fn coalescing_bound(rooms_per_conn: usize, interval_ms: u32, window_s: f64) -> f64 {
    let w = window_s.max(1e-9);
    rooms_per_conn as f64 * ((w * 1000.0 / f64::from(interval_ms.max(1))).floor() + 1.0) / w
}

/// RSS growth per item between two readings, when both exist and `items` > 0.
pub fn per_item(before: Option<u64>, after: Option<u64>, items: usize) -> Option<f64> {
    match (before, after) {
        (Some(b), Some(a)) if items > 0 => Some((a as f64 - b as f64) / items as f64),
        _ => None,
    }
}

/// What `rooms` produced: one run, or the steps.
pub enum RoomsOutcome {
    /// A fixed rate.
    Fixed(Box<FanoutReport>),
    /// `--factor`: stepped rates.
    Steps(StepsReport),
}

/// `rooms`.
pub fn run_rooms(a: &RoomsArgs) -> Result<RoomsOutcome> {
    let mut progress = Progress::new(!a.v2.common.json);
    let shape = Shape::rooms(a);
    let r = match a.factor {
        None => measure(&shape, a.rate, &mut progress).map(|r| RoomsOutcome::Fixed(Box::new(r))),
        Some(factor) => {
            let mut s = shape.clone();
            let max_p99 = *s.max_p99.get_or_insert(10.0);
            let min_delivery = *s.min_delivery.get_or_insert(0.999);
            s.allow_loss = true;
            super::steps::run_steps(
                &super::steps::Stepping {
                    mode: "rooms-steps",
                    first_rate: a.rate,
                    factor,
                    max_steps: a.max_steps,
                    pause: a.pause,
                    max_p99,
                    min_delivery,
                    allow_loss: a.v2.allow_loss,
                },
                &mut progress,
                |rate, progress| measure(&s, rate, progress),
            )
            .map(RoomsOutcome::Steps)
        }
    };
    progress.finish();
    r
}

/// `typing`.
pub fn run_typing(a: &TypingArgs) -> Result<FanoutReport> {
    let mut progress = Progress::new(!a.v2.common.json);
    let r = measure(&Shape::typing(a), a.rate, &mut progress);
    progress.finish();
    r
}

fn settle(engine: &Engine, d: Duration, wanted: usize, progress: &mut Progress) {
    let end = Instant::now() + d;
    while Instant::now() < end && engine.threads_alive() {
        progress.update("settling", engine.open(), wanted, engine.live());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One v2 run at `rate` messages/s per sender.
pub fn measure(s: &Shape<'_>, rate: f64, progress: &mut Progress) -> Result<FanoutReport> {
    let c = s.c;
    if s.subscriptions > s.rooms {
        bail!(
            "--subscriptions {} is more than --rooms {}",
            s.subscriptions,
            s.rooms
        );
    }
    if c.common
        .room_prefix
        .ends_with(|ch: char| ch.is_ascii_digit())
    {
        bail!(
            "--room-prefix {:?} ends with a digit: v2 frames are matched to rooms by the \
             number at the end of their roomId",
            c.common.room_prefix
        );
    }
    let mut p = plan(
        &c.common,
        s.conns,
        s.rooms,
        s.senders,
        rate,
        usize::from(c.payload_bytes),
    )?;
    p.v2 = Some(V2Plan {
        subscriptions: s.subscriptions,
        typing_every: s.typing_every,
        room_in_url: false,
    });
    p.churn_per_sec = s.conns as f64 * s.churn_pct / 100.0;
    p.reconnect = p.churn_per_sec > 0.0;
    let churn_per_sec = p.churn_per_sec;
    let url = p.target.url.clone();
    let pid = c.common.server_pid;
    let before_all = sample_opt(None, pid);
    let engine = Engine::start(p)?;
    wait_settled(&engine, s.conns, progress)?;
    let conns_open = engine.open();
    if conns_open == 0 {
        let stats = engine.stop()?;
        return Err(no_connection(&url, &stats));
    }
    if conns_open < s.conns {
        progress.note(&format!(
            "warning: only {conns_open} of {} connections opened",
            s.conns
        ));
    }
    let rss_phases = !s.settle.is_zero();
    settle(&engine, s.settle, s.conns, progress);
    let after_conns = sample(&engine, pid);
    let open_at_conns = engine.open();

    // Subscribe in two steps: every connection's first room (which creates every room,
    // as there are at least as many connections as rooms), then the others, so that the
    // second step's RSS growth is the subscriptions' own, without the rooms'.
    let sub_start = Instant::now();
    let wait_subs = |wanted: usize, progress: &mut Progress| {
        while engine.subscriptions() < wanted
            && sub_start.elapsed() < c.subscribe_timeout
            && engine.threads_alive()
        {
            progress.update("subscribing", engine.subscriptions(), wanted, engine.live());
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let wanted = open_at_conns * s.subscriptions;
    let two_steps = rss_phases && s.subscriptions > 1;
    let (after_first, subs_first) = if two_steps {
        engine.subscribe_first();
        wait_subs(open_at_conns, progress);
        settle(&engine, s.settle, s.conns, progress);
        (Some(sample(&engine, pid)), engine.subscriptions())
    } else {
        (None, 0)
    };
    engine.subscribe_all();
    wait_subs(wanted, progress);
    let subscribe_seconds = sub_start.elapsed().as_secs_f64();
    settle(&engine, s.settle, s.conns, progress);
    let after_subs = sample(&engine, pid);
    let subs = engine.subscriptions();

    let (s0, s1) = window(
        &engine, c.warmup, c.duration, c.drain, s.conns, pid, progress,
    );
    let stats = engine.stop()?;
    let mut r = report(Outcome {
        mode: s.mode,
        url,
        conns: s.conns,
        conns_open,
        rooms: s.rooms,
        senders: s.senders,
        rate,
        payload_bytes: usize::from(c.payload_bytes),
        duration: c.duration,
        max_p99: s.max_p99,
        min_delivery: s.min_delivery,
        allow_loss: s.allow_loss,
        server_pid: pid,
        stats: &stats,
        s0: &s0,
        s1: &s1,
    });

    let window_s = r.window_s;
    let members = conns_open.max(1) as f64;
    let rss = |a: &Sample| a.server_rss;
    let (rss_per_conn, rss_per_first, rss_per_sub) = match (&after_first, rss_phases) {
        (Some(first), true) => (
            per_item(rss(&before_all), rss(&after_conns), open_at_conns),
            per_item(rss(&after_conns), rss(first), subs_first),
            per_item(
                rss(first),
                rss(&after_subs),
                subs.saturating_sub(subs_first),
            ),
        ),
        (None, true) => {
            // One room per connection: the first subscriptions are all there are.
            let first = per_item(rss(&after_conns), rss(&after_subs), subs);
            (
                per_item(rss(&before_all), rss(&after_conns), open_at_conns),
                first,
                first,
            )
        }
        _ => (None, None, None),
    };
    let v = V2Figures {
        subscriptions_per_conn: s.subscriptions,
        subscriptions: subs,
        subscribe_seconds,
        rss_per_conn_bytes: rss_per_conn,
        rss_per_first_subscription_bytes: rss_per_first,
        rss_per_subscription_bytes: rss_per_sub,
        acks: stats.acks,
        acks_in_window: stats.acks_in_window,
        duplicate_acks: stats.duplicate_acks,
        ack_latency_ms: Percentiles::of(&stats.ack_latency),
        typing_sent: stats.typing_sent,
        typing_received: stats.typing_in_window,
        presence_received: stats.presence_in_window,
        typing_per_member_per_sec: stats.typing_in_window as f64 / members / window_s,
        presence_per_member_per_sec: stats.presence_in_window as f64 / members / window_s,
        typing_bound_per_member_per_sec: coalescing_bound(
            s.subscriptions,
            c.typing_interval_ms,
            window_s,
        ),
        presence_bound_per_member_per_sec: coalescing_bound(
            s.subscriptions,
            c.presence_interval_ms,
            window_s,
        ),
        churn_per_sec,
        churned: stats.churned,
        unknown_room: stats.unknown_room,
    };

    let w = &mut r.warnings;
    if subs < wanted {
        w.push(format!(
            "only {subs} of {wanted} subscriptions were confirmed within {:?} (see the error \
             frames; the server's MAX_SUBSCRIPTIONS is 64 by default)",
            c.subscribe_timeout
        ));
    }
    if stats.sent > 0 && stats.acks_in_window < stats.sent {
        w.push(format!(
            "the server acked only {} of {} messages sent in the window",
            stats.acks_in_window, stats.sent
        ));
    }
    if stats.duplicate_acks > 0 {
        w.push(format!(
            "{} acks said duplicate:true, but the generator never resends",
            stats.duplicate_acks
        ));
    }
    if stats.unknown_room > 0 {
        w.push(format!(
            "{} chat frames came from rooms the connection had not subscribed to",
            stats.unknown_room
        ));
    }
    if s.typing_every.is_some() && stats.typing_in_window == 0 {
        w.push("no typing frames were received: is the server running with PRESENCE=false?".into());
    }
    if rss_per_sub.is_some_and(|b| b <= 0.0) {
        w.push(
            "the server's RSS did not grow with the subscriptions (it had freed memory from \
             earlier connections): measure on a freshly started server"
                .into(),
        );
    }
    if rss_phases && pid.is_none() {
        w.push("pass --server-pid <pid> to measure the server's RSS per subscription".into());
    }
    if s.typing_every.is_some() {
        r.checks.push(Check {
            name: "typing frames per member".into(),
            limit: format!("<= {:.2} /s", v.typing_bound_per_member_per_sec),
            value: format!("{:.2} /s", v.typing_per_member_per_sec),
            pass: v.typing_per_member_per_sec <= v.typing_bound_per_member_per_sec,
        });
    }
    r.checks.push(Check {
        name: "presence frames per member".into(),
        limit: format!("<= {:.2} /s", v.presence_bound_per_member_per_sec),
        value: format!("{:.2} /s", v.presence_per_member_per_sec),
        pass: v.presence_per_member_per_sec <= v.presence_bound_per_member_per_sec,
    });
    if let Some(max) = s.max_rss_per_subscription {
        r.checks.push(Check {
            name: "server RSS per subscription".into(),
            limit: format!("<= {max} B"),
            value: rss_per_sub.map_or("unknown".into(), |b| format!("{b:.1} B")),
            pass: rss_per_sub.is_some_and(|b| b <= max),
        });
    }
    r.pass = r.checks.iter().all(|c| c.pass);
    r.v2 = Some(v);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalescing_bounds() {
        // 10 s window, one room, 250 ms: 40 intervals + the edge = 4.1 per second.
        assert!((coalescing_bound(1, 250, 10.0) - 4.1).abs() < 1e-9);
        // 20 rooms, 200 ms, 8 s: 20 × 41 / 8.
        assert!((coalescing_bound(20, 200, 8.0) - 102.5).abs() < 1e-9);
        assert!(coalescing_bound(1, 0, 0.0).is_finite());
    }

    #[test]
    fn rss_per_item() {
        assert_eq!(per_item(Some(1000), Some(1640), 10), Some(64.0));
        assert_eq!(per_item(Some(1000), Some(900), 10), Some(-10.0));
        assert_eq!(per_item(None, Some(900), 10), None);
        assert_eq!(per_item(Some(1), Some(2), 0), None);
    }
}
