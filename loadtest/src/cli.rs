//! Command-line interface.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// hubbub's load generator: measures any server that speaks PROTOCOL.md's chat subset.
///
/// Exit status: 0 all checks passed; 1 error (bad input, nothing could connect); 2 usage;
/// 3 a threshold (--max-p99, --min-delivery, --max-failures, --max-rss-growth,
/// --max-fd-drift) failed or messages were lost, duplicated or reordered (unless
/// --allow-loss).
#[derive(Debug, Parser)]
#[command(name = "hubbub-loadtest", version, about, long_about)]
pub struct Cli {
    /// What to measure.
    #[command(subcommand)]
    pub mode: Mode,
}

/// The modes.
#[derive(Debug, Subcommand)]
pub enum Mode {
    /// S1/S2: rooms of connections, some of them sending at a fixed rate; measures
    /// end-to-end latency, delivery and ordering.
    Fanout(FanoutArgs),
    /// Fan-out repeated with the per-sender rate stepped up until delivery falls under
    /// --min-delivery or p99 goes over --max-p99; prints the knee.
    Steps(StepsArgs),
    /// S3: opens N connections and holds them; reports the server's RSS growth per
    /// connection (with --server-pid).
    Idle(IdleArgs),
    /// S4: opens N connections, --in-flight handshakes at once; reports handshakes/s and
    /// failures.
    Connect(ConnectArgs),
    /// Holds many connections for a long time with churn and steady chat, samples the
    /// server's RSS, open descriptors and /metrics queues over time, and judges whether
    /// they stayed flat (needs --server-pid).
    ///
    /// Connection i is user lt-<i> in room i % --rooms; connections 0..--senders send.
    /// Churn closes random open connections (senders included) with a normal close
    /// (1000) and replaces each, once closed, by a new connection in the same slot: the
    /// same room, a sender if the slot sends, a new identity lt-<i>-g<generation>.
    /// Connections the server drops are replaced too (after 1 s) and count as failures.
    ///
    /// Each sample: the server's VmRSS and open descriptors (/proc/<pid>) and CPU; the
    /// generator's open connections; the interval's messages sent, deliveries, errors
    /// (error frames, failed connects), unexpected closes, churned connections and
    /// latency p50/p99; and from /metrics hubbub_worker_queued_bytes and
    /// hubbub_worker_mesh_backlog (per worker), hubbub_connections,
    /// hubbub_http_connections, hubbub_persistence_queue_depth (or the older
    /// hubbub_persist_queue_depth) and any --metric, "—" for a series the server does not
    /// expose. A line per sample goes to stderr as it is taken; the table and the
    /// verdict come at the end (--json: one JSON object on stdout instead).
    ///
    /// Verdict: of the samples after --warmup (never the first one; by default until the
    /// server's room history has filled), the average of the last third is compared with
    /// the first third's: RSS growth in percent
    /// (--max-rss-growth), descriptor drift (--max-fd-drift); the largest queue depths
    /// are reported. With the server's default rate limit (RATE_LIMIT_PER_SEC=5) keep
    /// --rate / --senders under 5 (the default --senders does), or start the server
    /// with RATE_LIMIT_PER_SEC=0.
    Soak(SoakArgs),
    /// S8 (protocol v2): many rooms per connection. Each of --conns v2 connections
    /// subscribes to --subscriptions of --rooms rooms; connections 0..--senders send to
    /// their first room (room i % --rooms). Reports delivered frames/s, delivery, latency,
    /// server CPU per delivered chat frame (acks are not deliveries) and server RSS
    /// growth per subscription (measured between connecting and subscribing, each
    /// after --settle). With --factor the rate is stepped up as in `steps`.
    ///
    /// Connection i subscribes to rooms (i + j·s) % rooms, j < --subscriptions, with a
    /// stride s coprime with --rooms that changes every --rooms connections: every room
    /// gets the same number of members and the rooms' member sets overlap in many ways.
    /// Chat frames carry a clientMsgId (<send ns>.<n>), so acks are timed too.
    Rooms(RoomsArgs),
    /// S9 (protocol v2): S1's shape on v2 connections, every connection sending typing
    /// every --typing-every (staggered) and --churn percent of the connections closed
    /// and replaced (resubscribing) per second; reports chat latency and typing and
    /// presence frames received per member per second against the coalescing bound.
    /// Start the server with presence on (its default), RATE_LIMIT_PER_SEC=0.
    Typing(TypingArgs),
    /// Measures the receive path (frame scan + seq check + latency record) over an
    /// in-memory buffer of server frames, on one core.
    SelfTest(SelfTestArgs),
}

/// Parses `10`, `10s`, `250ms`, `2m`, `1.5s` into a duration (plain numbers are seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" | "" => v,
        "m" | "min" => v * 60.0,
        _ => return Err(format!("unknown unit {unit:?} (use ms, s or m)")),
    };
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("{s:?} is out of range (0 .. 24 h)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A CPU list, e.g. `1`, `0,2`, `2-5`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

/// Parses a CPU list: `1`, `0,2`, `2-5`.
pub fn parse_cpus(s: &str) -> Result<CpuList, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("bad CPU list {s:?} (e.g. 1 or 0,2 or 2-5)");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b || b >= 1024 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => {
                let c: usize = part.parse().map_err(|_| bad())?;
                if c >= 1024 {
                    return Err(bad());
                }
                out.push(c);
            }
        }
    }
    if out.is_empty() {
        return Err(format!("empty CPU list {s:?}"));
    }
    Ok(CpuList(out))
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} must be a positive number")),
    }
}

fn non_negative_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} must be a number ≥ 0")),
    }
}

fn percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} must be a percentage between 0 and 100")),
    }
}

fn ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} must be a ratio between 0 and 1 (e.g. 0.999)"
        )),
    }
}

/// Options every networked mode shares.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// The server's WebSocket endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws", env = "LT_URL")]
    pub url: String,
    /// Engine threads (one monoio runtime each).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
    /// Pin the engine threads to these CPUs, round robin (e.g. `1` or `2-3`).
    #[arg(long, value_parser = parse_cpus)]
    pub cpu: Option<CpuList>,
    /// Sign a token per connection with this secret (the server's AUTH_SECRET).
    #[arg(long, env = "LT_AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<String>,
    /// Source addresses: `auto` (127.0.0.2..9 for a loopback IPv4 target), `none`, a
    /// count of loopback addresses, or a comma-separated list of IPs.
    #[arg(long, default_value = "auto")]
    pub source_ips: String,
    /// Connections opened per second (0: as fast as --in-flight allows).
    #[arg(long, default_value_t = 0.0)]
    pub ramp: f64,
    /// Handshakes in progress at once.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub in_flight: u32,
    /// Limit for one TCP connect + WebSocket upgrade.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Read buffer per connection, bytes.
    #[arg(long, default_value_t = 16384, value_parser = clap::value_parser!(u32).range(256..=16_777_216))]
    pub read_buffer: u32,
    /// Room name prefix: rooms are `<prefix>0`, `<prefix>1`, …
    #[arg(long, default_value = "lt-room-")]
    pub room_prefix: String,
    /// The server's PID, to report its CPU time per delivered frame and its RSS.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Fan-out options (S1/S2).
#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: Common,
    /// Connections.
    #[arg(long, default_value_t = 1000)]
    pub conns: usize,
    /// Rooms the connections are spread over (connection i joins room i % rooms).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub rooms: u32,
    /// How many connections send (connections 0..senders, so spread over the rooms).
    #[arg(long, default_value_t = 100)]
    pub senders: usize,
    /// Messages per second per sender.
    #[arg(long, default_value_t = 10.0, value_parser = positive_f64)]
    pub rate: f64,
    /// Measured window.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Sending before the measured window (not counted).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Longest wait after the window for messages still in flight.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Content bytes per message (at least the ~30-byte marker; at most 1000).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub payload_bytes: u16,
    /// Fail (exit 3) when p99 end-to-end latency is over this many milliseconds.
    #[arg(long, value_parser = positive_f64)]
    pub max_p99: Option<f64>,
    /// Fail (exit 3) when delivered / expected is under this ratio (e.g. 0.999).
    #[arg(long, value_parser = ratio)]
    pub min_delivery: Option<f64>,
    /// Do not fail on gaps, duplicates or order violations.
    #[arg(long)]
    pub allow_loss: bool,
}

/// Step options.
#[derive(Debug, Clone, Args)]
pub struct StepsArgs {
    /// Fan-out options; --rate is the first step's rate, --max-p99 defaults to 10 and
    /// --min-delivery to 0.999.
    #[command(flatten)]
    pub fanout: FanoutArgs,
    /// Each step's rate is the previous one's times this.
    #[arg(long, default_value_t = 1.5, value_parser = positive_f64)]
    pub factor: f64,
    /// Give up after this many steps.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_steps: u32,
    /// Pause between steps (the server settles; connections are reopened each step).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub pause: Duration,
}

/// Idle options (S3).
#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: Common,
    /// Connections to open and hold.
    #[arg(long, default_value_t = 1000)]
    pub conns: usize,
    /// Rooms (many small rooms keep join/leave presence traffic low).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub rooms: u32,
    /// Wait after the last connection opened before reading the server's RSS.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Then hold the connections this long (answering pings) and count drops.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub hold: Duration,
    /// Protocol: 1, or 2 (`proto=2` with the room in the upgrade request: §7's implicit
    /// subscribe, so the server's presence is v2's coalesced frames, not v1's join per
    /// connection).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub proto: u8,
    /// Fail (exit 3) when more connections than this failed to open or were dropped.
    #[arg(long, default_value_t = 0)]
    pub max_failures: u64,
}

/// Connect-storm options (S4).
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: Common,
    /// Connections to open.
    #[arg(long, default_value_t = 10_000)]
    pub conns: usize,
    /// Rooms (many small rooms keep join/leave presence traffic low).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub rooms: u32,
    /// Protocol: 1, or 2 (`proto=2` with the room in the upgrade request: §7's implicit
    /// subscribe, so the server's presence is v2's coalesced frames, not v1's join per
    /// connection).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub proto: u8,
    /// Fail (exit 3) when more connections than this failed.
    #[arg(long, default_value_t = 0)]
    pub max_failures: u64,
}

/// Soak options.
#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// Shared options (--server-pid is required).
    #[command(flatten)]
    pub common: Common,
    /// Connections to hold (one process holds at most its open-file limit less 200:
    /// about 19,800 here; more is refused).
    #[arg(long, default_value_t = 15_000)]
    pub conns: usize,
    /// Rooms (connection i, and every replacement of it, joins room i % rooms).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub rooms: u32,
    /// Percent of --conns closed (close 1000) and replaced per second: random open
    /// connections, each replaced in the same room once it has closed; 0: no churn.
    #[arg(long, default_value_t = 2.0, value_parser = percent, value_name = "PCT")]
    pub churn: f64,
    /// Chat messages per second in total, over all senders (fanout's --rate is per
    /// sender); 0: no chat.
    #[arg(long, default_value_t = 500.0, value_parser = non_negative_f64)]
    pub rate: f64,
    /// Connections that send (0..senders, spread over the rooms). Default: enough that
    /// each sends at most 2.5 msg/s, half the server's default per-connection limit.
    #[arg(long)]
    pub senders: Option<usize>,
    /// Content bytes per message (at least the ~30-byte marker; at most 1000).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub payload_bytes: u16,
    /// How long to soak, after the connections opened.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time between samples (the first is taken when sending starts).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub sample_every: Duration,
    /// Samples taken before this are not judged (the first sample never is). Default:
    /// 1 min, or longer while the server's per-room history fills (its default 1,000
    /// messages × --rooms ÷ --rate, plus 20 %: 4 min with the defaults); at most half of
    /// --duration.
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Fail (exit 3) when the server's RSS grew more than PCT percent (last third of the
    /// judged samples against the first third).
    #[arg(long, default_value_t = 10.0, value_parser = non_negative_f64, value_name = "PCT")]
    pub max_rss_growth: f64,
    /// Fail (exit 3) when the server's open descriptors moved by more than N (last third
    /// against first third); default 2 % of --conns.
    #[arg(long, value_name = "N")]
    pub max_fd_drift: Option<u64>,
    /// Fail (exit 3) when more connections than this failed to open, were closed by the
    /// server or the network, or had the generator's close unanswered.
    #[arg(long, default_value_t = 0)]
    pub max_failures: u64,
    /// The server's Prometheus endpoint (default: http://<--url's host:port>/metrics;
    /// `none`: do not scrape).
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// Another /metrics series to sample besides the defaults (repeatable; every label
    /// set of the name is kept).
    #[arg(long = "metric", value_name = "NAME")]
    pub metrics: Vec<String>,
}

/// Options both protocol v2 modes share.
#[derive(Debug, Clone, Args)]
pub struct V2Common {
    /// Shared options.
    #[command(flatten)]
    pub common: Common,
    /// Measured window.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Sending before the measured window (not counted).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Longest wait after the window for messages still in flight.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Content bytes per message (at least the ~30-byte marker; at most 1000).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub payload_bytes: u16,
    /// Longest wait for every subscription to be confirmed (`subscribed`).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub subscribe_timeout: Duration,
    /// The server's PRESENCE_INTERVAL_MS, for the presence frames' coalescing bound.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub presence_interval_ms: u32,
    /// The server's typing interval (ms), for the typing frames' coalescing bound.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u32).range(1..))]
    pub typing_interval_ms: u32,
    /// Fail (exit 3) when p99 end-to-end latency is over this many milliseconds.
    #[arg(long, value_parser = positive_f64)]
    pub max_p99: Option<f64>,
    /// Fail (exit 3) when delivered / expected is under this ratio (e.g. 0.999).
    #[arg(long, value_parser = ratio)]
    pub min_delivery: Option<f64>,
    /// Do not fail on gaps, duplicates or order violations.
    #[arg(long)]
    pub allow_loss: bool,
}

/// `rooms` options (S8).
#[derive(Debug, Clone, Args)]
pub struct RoomsArgs {
    /// Options both v2 modes share.
    #[command(flatten)]
    pub v2: V2Common,
    /// Connections.
    #[arg(long, default_value_t = 2000)]
    pub conns: usize,
    /// Rooms.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub rooms: u32,
    /// Rooms each connection subscribes to (at most --rooms and the server's
    /// MAX_SUBSCRIPTIONS, 64 by default).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub subscriptions: u32,
    /// How many connections send (0..senders, each to its first room).
    #[arg(long, default_value_t = 200)]
    pub senders: usize,
    /// Messages per second per sender (the first step's with --factor). The default
    /// gives 200k deliveries/s with the other defaults, as S1.
    #[arg(long, default_value_t = 5.0, value_parser = positive_f64)]
    pub rate: f64,
    /// Every connection sends typing this often (staggered); none by default.
    #[arg(long, value_parser = parse_duration)]
    pub typing_every: Option<Duration>,
    /// Percent of the connections closed and replaced per second while sending.
    #[arg(long, default_value_t = 0.0, value_parser = percent, value_name = "PCT")]
    pub churn: f64,
    /// Wait after connecting, and again after subscribing, before reading the server's
    /// RSS (0: no RSS figures).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Fail (exit 3) when the server's RSS grew more than this per subscription, bytes.
    #[arg(long, value_parser = positive_f64)]
    pub max_rss_per_subscription: Option<f64>,
    /// Step the rate: each step's rate is the previous one's times this, until a step
    /// fails --max-p99 (default 10) or --min-delivery (default 0.999); connections are
    /// reopened each step.
    #[arg(long, value_parser = positive_f64)]
    pub factor: Option<f64>,
    /// With --factor: give up after this many steps.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_steps: u32,
    /// With --factor: pause between steps.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub pause: Duration,
}

/// `typing` options (S9).
#[derive(Debug, Clone, Args)]
pub struct TypingArgs {
    /// Options both v2 modes share.
    #[command(flatten)]
    pub v2: V2Common,
    /// Connections.
    #[arg(long, default_value_t = 1000)]
    pub conns: usize,
    /// Rooms.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub rooms: u32,
    /// Rooms each connection subscribes to.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub subscriptions: u32,
    /// How many connections send (0..senders, each to its first room).
    #[arg(long, default_value_t = 100)]
    pub senders: usize,
    /// Messages per second per sender (the default gives S1's 200k deliveries/s).
    #[arg(long, default_value_t = 20.0, value_parser = positive_f64)]
    pub rate: f64,
    /// Every connection sends typing this often, staggered over the period.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub typing_every: Duration,
    /// Percent of the connections closed (close 1000) and replaced per second while
    /// sending; a replacement is a new user (lt-<i>-g<n>) that subscribes again.
    #[arg(long, default_value_t = 1.0, value_parser = percent, value_name = "PCT")]
    pub churn: f64,
}

/// Self-test options.
#[derive(Debug, Clone, Args)]
pub struct SelfTestArgs {
    /// Frames in the in-memory buffer.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u32).range(1000..=10_000_000))]
    pub frames: u32,
    /// Content bytes per message.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub payload_bytes: u16,
    /// Bytes handed to the receive path per simulated read.
    #[arg(long, default_value_t = 65536, value_parser = clap::value_parser!(u32).range(64..=16_777_216))]
    pub read_size: u32,
    /// Measure for about this long.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub seconds: Duration,
    /// Pin to this CPU.
    #[arg(long)]
    pub cpu: Option<usize>,
    /// Protocol of the frames: 1 (v1 chat frames, one room) or 2 (v2 chat frames over
    /// --subscriptions rooms, the per-room seq check and an ack per 100 frames).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub proto: u8,
    /// With --proto 2: rooms the frames are spread over.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub subscriptions: u32,
    /// Fail (exit 3) under this many frames per second.
    #[arg(long, default_value_t = 0.0)]
    pub min_frames_per_sec: f64,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_and_cpus() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        for bad in ["", "x", "10h", "-1s", "1e9", "99999999"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_cpus("1").unwrap().0, [1]);
        assert_eq!(parse_cpus("0,2-3").unwrap().0, [0, 2, 3]);
        for bad in ["", "a", "3-1", "5000"] {
            assert!(parse_cpus(bad).is_err(), "{bad}");
        }
        assert!(ratio("1.5").is_err() && ratio("0.999").is_ok());
        assert!(positive_f64("0").is_err() && positive_f64("inf").is_err());
    }

    #[test]
    fn parses_a_fanout_line() {
        let c = Cli::try_parse_from([
            "lt",
            "fanout",
            "--conns",
            "5",
            "--rate",
            "2.5",
            "--max-p99",
            "10",
            "--json",
            "--cpu",
            "1",
        ])
        .unwrap();
        let Mode::Fanout(f) = c.mode else { panic!() };
        assert_eq!(
            (f.conns, f.rate, f.max_p99, f.common.json),
            (5, 2.5, Some(10.0), true)
        );
        assert_eq!(f.common.cpu, Some(CpuList(vec![1])));
        assert!(Cli::try_parse_from(["lt", "fanout", "--rate", "0"]).is_err());
    }

    #[test]
    fn v2_modes_have_the_scenarios_defaults() {
        let c = Cli::try_parse_from(["lt", "rooms"]).unwrap();
        let Mode::Rooms(r) = c.mode else { panic!() };
        assert_eq!(
            (r.conns, r.rooms, r.subscriptions, r.senders, r.rate),
            (2000, 200, 20, 200, 5.0)
        );
        assert_eq!((r.typing_every, r.churn, r.factor), (None, 0.0, None));
        assert_eq!(r.settle, Duration::from_secs(2));
        assert_eq!(
            (r.v2.presence_interval_ms, r.v2.typing_interval_ms),
            (200, 250)
        );
        let c = Cli::try_parse_from(["lt", "typing"]).unwrap();
        let Mode::Typing(t) = c.mode else { panic!() };
        assert_eq!(
            (
                t.conns,
                t.rooms,
                t.subscriptions,
                t.senders,
                t.rate,
                t.churn
            ),
            (1000, 10, 1, 100, 20.0, 1.0)
        );
        assert_eq!(t.typing_every, Duration::from_secs(3));
        let c = Cli::try_parse_from([
            "lt",
            "rooms",
            "--factor",
            "1.5",
            "--typing-every",
            "500ms",
            "--max-rss-per-subscription",
            "64",
        ])
        .unwrap();
        let Mode::Rooms(r) = c.mode else { panic!() };
        assert_eq!(r.factor, Some(1.5));
        assert_eq!(r.typing_every, Some(Duration::from_millis(500)));
        assert_eq!(r.max_rss_per_subscription, Some(64.0));
        assert!(Cli::try_parse_from(["lt", "typing", "--churn", "200"]).is_err());
        assert!(Cli::try_parse_from(["lt", "self-test", "--proto", "3"]).is_err());
    }

    #[test]
    fn soak_defaults_and_limits() {
        let c = Cli::try_parse_from(["lt", "soak", "--server-pid", "7"]).unwrap();
        let Mode::Soak(s) = c.mode else { panic!() };
        assert_eq!(
            (s.conns, s.rooms, s.churn, s.rate),
            (15_000, 100, 2.0, 500.0)
        );
        assert_eq!(s.duration, Duration::from_secs(600));
        assert_eq!(s.sample_every, Duration::from_secs(10));
        assert_eq!(
            (s.max_rss_growth, s.max_fd_drift, s.senders),
            (10.0, None, None)
        );
        assert_eq!(s.common.server_pid, Some(7));
        assert_eq!(s.warmup, None);
        assert!(s.metrics.is_empty());
        let c = Cli::try_parse_from([
            "lt", "soak", "--churn", "0", "--rate", "0", "--metric", "a", "--metric", "b",
        ])
        .unwrap();
        let Mode::Soak(s) = c.mode else { panic!() };
        assert_eq!((s.churn, s.rate, s.metrics.len()), (0.0, 0.0, 2));
        for bad in [["--churn", "101"], ["--churn", "-1"], ["--rate", "-5"]] {
            assert!(
                Cli::try_parse_from(["lt", "soak", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
    }
}
