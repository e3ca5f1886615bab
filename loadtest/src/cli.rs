//! Command-line interface.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// hubbub's load generator: measures any server that speaks PROTOCOL.md's chat subset.
///
/// Exit status: 0 all checks passed; 1 error (bad input, nothing could connect); 2 usage;
/// 3 a threshold (--max-p99, --min-delivery, --max-failures) failed or messages were
/// lost, duplicated or reordered (unless --allow-loss).
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
    /// Fail (exit 3) when more connections than this failed.
    #[arg(long, default_value_t = 0)]
    pub max_failures: u64,
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
}
