//! The scenarios (PERFORMANCE.md's S1–S4) as `hubbub-loadtest` arguments.

use super::extract::{Figure, CONNECT_FIGURES, FANOUT_FIGURES, IDLE_FIGURES};

/// The loadtest mode a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `fanout`: latency, delivery, CPU per frame.
    Fanout,
    /// `idle`: RSS per connection.
    Idle,
    /// `connect`: handshakes per second.
    Connect,
}

/// One scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scenario {
    /// `s1`, `s2`, …
    pub id: &'static str,
    /// What it is, for the headings.
    pub title: &'static str,
    /// Its mode.
    pub kind: Kind,
    /// The loadtest arguments, mode first (without `--url`, `--cpu`, `--server-pid`,
    /// `--json`).
    pub args: &'static [&'static str],
}

/// All scenarios, in order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "s1",
        title: "S1 fan-out: 1,000 connections, 10 rooms, 100 senders × 20 msg/s",
        kind: Kind::Fanout,
        args: &[
            "fanout",
            "--conns",
            "1000",
            "--rooms",
            "10",
            "--senders",
            "100",
            "--rate",
            "20",
            "--payload-bytes",
            "64",
            "--duration",
            "8s",
            "--warmup",
            "2s",
            "--allow-loss",
        ],
    },
    Scenario {
        id: "s2",
        title: "S2 large room: 5,000 connections in 1 room, 10 senders × 2 msg/s",
        kind: Kind::Fanout,
        args: &[
            "fanout",
            "--conns",
            "5000",
            "--rooms",
            "1",
            "--senders",
            "10",
            "--rate",
            "2",
            "--payload-bytes",
            "64",
            "--duration",
            "8s",
            "--warmup",
            "3s",
            "--allow-loss",
        ],
    },
    Scenario {
        id: "s3",
        title: "S3 idle memory: 18,000 idle connections",
        kind: Kind::Idle,
        args: &["idle", "--conns", "18000"],
    },
    Scenario {
        id: "s4",
        title: "S4 connect storm: 10,000 connections, 100 handshakes in flight",
        kind: Kind::Connect,
        args: &["connect", "--conns", "10000", "--in-flight", "100"],
    },
];

impl Scenario {
    /// The scenario with this id (case-insensitive).
    pub fn find(id: &str) -> Option<&'static Scenario> {
        let id = id.trim();
        SCENARIOS.iter().find(|s| s.id.eq_ignore_ascii_case(id))
    }

    /// The figures compared for it.
    pub fn figures(&self) -> &'static [Figure] {
        match self.kind {
            Kind::Fanout => FANOUT_FIGURES,
            Kind::Idle => IDLE_FIGURES,
            Kind::Connect => CONNECT_FIGURES,
        }
    }

    /// The loadtest arguments with `--conns` multiplied by `scale` (at least 1), and
    /// `--senders`, `--rooms` and `--in-flight` kept at most `--conns`.
    pub fn scaled_args(&self, scale: f64) -> Vec<String> {
        let mut args: Vec<String> = self.args.iter().map(|a| a.to_string()).collect();
        if scale == 1.0 {
            return args;
        }
        let Some(conns) = flag_value(&args, "--conns") else {
            return args;
        };
        let scaled = ((conns as f64) * scale).round().max(1.0) as usize;
        set_flag(&mut args, "--conns", scaled);
        for flag in ["--senders", "--rooms", "--in-flight"] {
            if let Some(v) = flag_value(&args, flag) {
                set_flag(&mut args, flag, v.min(scaled));
            }
        }
        args
    }
}

fn flag_value(args: &[String], flag: &str) -> Option<usize> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1)?.parse().ok()
}

fn set_flag(args: &mut [String], flag: &str, value: usize) {
    if let Some(i) = args.iter().position(|a| a == flag) {
        if let Some(v) = args.get_mut(i + 1) {
            *v = value.to_string();
        }
    }
}

/// Parses `s1,s3,s4` (or `all`) into scenarios, in the order given, without repeats.
pub fn parse_list(s: &str) -> Result<Vec<&'static Scenario>, String> {
    if s.trim().eq_ignore_ascii_case("all") {
        return Ok(SCENARIOS.iter().collect());
    }
    let mut out: Vec<&'static Scenario> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let scn = Scenario::find(part).ok_or_else(|| {
            let known: Vec<&str> = SCENARIOS.iter().map(|s| s.id).collect();
            format!(
                "unknown scenario {part:?} (known: {}, or all)",
                known.join(", ")
            )
        })?;
        if !out.iter().any(|o| o.id == scn.id) {
            out.push(scn);
        }
    }
    if out.is_empty() {
        return Err(format!("no scenario in {s:?}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        let l = parse_list("s1, S3,s4,s1").unwrap();
        let ids: Vec<&str> = l.iter().map(|s| s.id).collect();
        assert_eq!(ids, ["s1", "s3", "s4"]);
        assert_eq!(parse_list("all").unwrap().len(), 4);
        assert!(parse_list("s9").unwrap_err().contains("s9"));
        assert!(parse_list(" , ").is_err());
    }

    #[test]
    fn scenario_table_matches_the_brief() {
        let s1 = Scenario::find("s1").unwrap();
        assert_eq!(s1.kind, Kind::Fanout);
        assert_eq!(
            s1.args.join(" "),
            "fanout --conns 1000 --rooms 10 --senders 100 --rate 20 --payload-bytes 64 \
             --duration 8s --warmup 2s --allow-loss"
        );
        assert_eq!(
            Scenario::find("s2").unwrap().args.join(" "),
            "fanout --conns 5000 --rooms 1 --senders 10 --rate 2 --payload-bytes 64 \
             --duration 8s --warmup 3s --allow-loss"
        );
        assert_eq!(
            Scenario::find("s3").unwrap().args.join(" "),
            "idle --conns 18000"
        );
        assert_eq!(
            Scenario::find("s4").unwrap().args.join(" "),
            "connect --conns 10000 --in-flight 100"
        );
    }

    #[test]
    fn scaling_keeps_the_arguments_consistent() {
        let s1 = Scenario::find("s1").unwrap();
        assert_eq!(s1.scaled_args(1.0).join(" "), s1.args.join(" "));
        let a = s1.scaled_args(0.05).join(" ");
        assert!(a.contains("--conns 50 --rooms 10 --senders 50"), "{a}");
        let a = Scenario::find("s4").unwrap().scaled_args(0.001).join(" ");
        assert_eq!(a, "connect --conns 10 --in-flight 10");
        let a = Scenario::find("s3").unwrap().scaled_args(0.0).join(" ");
        assert_eq!(a, "idle --conns 1");
    }
}
