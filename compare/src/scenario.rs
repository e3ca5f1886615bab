//! The scenarios (PERFORMANCE.md's S1–S4, and S8–S9 on protocol v2) as
//! `hubbub-loadtest` arguments.

use super::extract::{
    Figure, CONNECT_FIGURES, FANOUT_FIGURES, IDLE_FIGURES, ROOMS_FIGURES, TYPING_FIGURES,
};

/// The loadtest mode a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `fanout`: latency, delivery, CPU per frame.
    Fanout,
    /// `idle`: RSS per connection.
    Idle,
    /// `connect`: handshakes per second.
    Connect,
    /// `rooms` (v2): fan-out over many rooms per connection, RSS per subscription.
    Rooms,
    /// `typing` (v2): fan-out with typing and presence churn.
    Typing,
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
    /// It speaks protocol v2: servers that do not are skipped.
    pub v2: bool,
    /// Server environment on top of the harness's (e.g. presence on).
    pub env: &'static [(&'static str, &'static str)],
    /// Scenarios its targets are ratios to: run in the same session, before it.
    pub needs: &'static [&'static str],
}

/// The server's own defaults for what the harness's environment turns off or changes
/// (presence, the rate limit): the `d` scenarios run with these, as users do.
pub const DEFAULTS: &[(&str, &str)] = &[("PRESENCE", "true"), ("RATE_LIMIT_PER_SEC", "5")];

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
        v2: false,
        env: &[],
        needs: &[],
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
        v2: false,
        env: &[],
        needs: &[],
    },
    Scenario {
        id: "s3",
        title: "S3 idle memory: 18,000 idle connections",
        kind: Kind::Idle,
        args: &["idle", "--conns", "18000"],
        v2: false,
        env: &[],
        needs: &[],
    },
    Scenario {
        id: "s4",
        title: "S4 connect storm: 10,000 connections, 100 handshakes in flight",
        kind: Kind::Connect,
        args: &["connect", "--conns", "10000", "--in-flight", "100"],
        v2: false,
        env: &[],
        needs: &[],
    },
    Scenario {
        id: "s2d",
        title: "S2 large room with the server's defaults (presence on, rate limit 5/s)",
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
        v2: false,
        env: DEFAULTS,
        needs: &["s2"],
    },
    Scenario {
        id: "s3d",
        title: "S3 idle memory with the server's defaults (presence on)",
        kind: Kind::Idle,
        args: &["idle", "--conns", "18000"],
        v2: false,
        env: DEFAULTS,
        needs: &["s3"],
    },
    Scenario {
        id: "s4d",
        title: "S4 connect storm with the server's defaults (presence on)",
        kind: Kind::Connect,
        args: &["connect", "--conns", "10000", "--in-flight", "100"],
        v2: false,
        env: DEFAULTS,
        needs: &["s4"],
    },
    Scenario {
        id: "s3v2d",
        title: "S3 idle memory with the server's defaults, protocol v2 clients (room in the \
                upgrade: coalesced presence)",
        kind: Kind::Idle,
        args: &["idle", "--conns", "18000", "--proto", "2"],
        v2: true,
        env: DEFAULTS,
        needs: &["s3"],
    },
    Scenario {
        id: "s4v2d",
        title: "S4 connect storm with the server's defaults, protocol v2 clients (room in \
                the upgrade: coalesced presence)",
        kind: Kind::Connect,
        args: &[
            "connect",
            "--conns",
            "10000",
            "--in-flight",
            "100",
            "--proto",
            "2",
        ],
        v2: true,
        env: DEFAULTS,
        needs: &["s4"],
    },
    Scenario {
        id: "s8",
        title: "S8 many rooms per connection (v2): 2,000 connections × 20 of 200 rooms, \
                200 senders × 5 msg/s, presence on",
        kind: Kind::Rooms,
        args: &[
            "rooms",
            "--conns",
            "2000",
            "--rooms",
            "200",
            "--subscriptions",
            "20",
            "--senders",
            "200",
            "--rate",
            "5",
            "--payload-bytes",
            "64",
            "--duration",
            "8s",
            "--warmup",
            "2s",
            "--allow-loss",
        ],
        v2: true,
        // Issue 13 asks for S8 with the server's defaults: presence on (the rate limit
        // stays off, as in S1, which S8's figures are ratios to).
        env: &[("PRESENCE", "true")],
        needs: &["s1"],
    },
    Scenario {
        id: "s9",
        title: "S9 typing + presence churn (v2): S1's shape, typing every 3 s, 1 % \
                reconnecting per second, presence on",
        kind: Kind::Typing,
        args: &[
            "typing",
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
            "--typing-every",
            "3s",
            "--churn",
            "1",
            "--duration",
            "8s",
            "--warmup",
            "2s",
            "--allow-loss",
        ],
        v2: true,
        env: &[("PRESENCE", "true")],
        needs: &["s1"],
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
            Kind::Rooms => ROOMS_FIGURES,
            Kind::Typing => TYPING_FIGURES,
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
        if let (Some(subs), Some(rooms)) = (
            flag_value(&args, "--subscriptions"),
            flag_value(&args, "--rooms"),
        ) {
            set_flag(&mut args, "--subscriptions", subs.min(rooms));
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

/// `list` with every scenario a listed one [`Scenario::needs`] inserted before it when
/// not asked for: the targets are ratios to scenarios run in the same session (S1 for
/// S8 and S9, S2/S3/S4 for their defaults runs).
pub fn with_needed(list: Vec<&'static Scenario>) -> Vec<&'static Scenario> {
    let mut out: Vec<&'static Scenario> = Vec::new();
    for scn in list {
        for id in scn.needs {
            if let Some(n) = Scenario::find(id) {
                if !out.iter().any(|o| o.id == n.id) {
                    out.push(n);
                }
            }
        }
        if !out.iter().any(|o| o.id == scn.id) {
            out.push(scn);
        }
    }
    out
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
        assert_eq!(parse_list("all").unwrap().len(), 11);
        assert!(parse_list("s10").unwrap_err().contains("s10"));
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
    fn v2_scenarios_match_the_brief() {
        let s8 = Scenario::find("s8").unwrap();
        assert_eq!((s8.kind, s8.v2), (Kind::Rooms, true));
        assert_eq!(
            s8.args.join(" "),
            "rooms --conns 2000 --rooms 200 --subscriptions 20 --senders 200 --rate 5 \
             --payload-bytes 64 --duration 8s --warmup 2s --allow-loss"
        );
        let s9 = Scenario::find("s9").unwrap();
        assert_eq!((s9.kind, s9.v2), (Kind::Typing, true));
        assert_eq!(
            s9.args.join(" "),
            "typing --conns 1000 --rooms 10 --senders 100 --rate 20 --payload-bytes 64 \
             --typing-every 3s --churn 1 --duration 8s --warmup 2s --allow-loss"
        );
        assert_eq!(s9.env, [("PRESENCE", "true")]);
        assert_eq!(s8.env, [("PRESENCE", "true")]);
        // 200 senders × 5 msg/s × 200 members a room = S1's 200k deliveries/s.
        assert_eq!(200 * 5 * (2000 * 20 / 200), 200_000);
        assert!(SCENARIOS
            .iter()
            .filter(|s| !s.v2 && !s.id.ends_with('d'))
            .all(|s| s.env.is_empty()));
    }

    #[test]
    fn scenarios_bring_what_they_are_compared_to() {
        let ids = |l: Vec<&'static Scenario>| l.iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(
            ids(with_needed(parse_list("s8,s9").unwrap())),
            ["s1", "s8", "s9"]
        );
        assert_eq!(
            ids(with_needed(parse_list("s9,s1").unwrap())),
            ["s1", "s9"],
            "the baseline runs first"
        );
        assert_eq!(
            ids(with_needed(parse_list("s4d,s2d,s2").unwrap())),
            ["s4", "s4d", "s2", "s2d"]
        );
        assert_eq!(ids(with_needed(parse_list("s3").unwrap())), ["s3"]);
        assert_eq!(with_needed(parse_list("all").unwrap()).len(), 11);
    }

    #[test]
    fn defaults_scenarios_are_their_benchmark_twins_with_the_servers_defaults() {
        for (d, b) in [("s2d", "s2"), ("s3d", "s3"), ("s4d", "s4")] {
            let (d, b) = (Scenario::find(d).unwrap(), Scenario::find(b).unwrap());
            assert_eq!((d.args, d.kind, d.needs), (b.args, b.kind, &[b.id][..]));
            assert_eq!(d.env, DEFAULTS);
            assert!(b.env.is_empty());
        }
        for (d, b) in [("s3v2d", "s3"), ("s4v2d", "s4")] {
            let (d, b) = (Scenario::find(d).unwrap(), Scenario::find(b).unwrap());
            assert_eq!(d.args[..d.args.len() - 2], *b.args);
            assert_eq!(d.args[d.args.len() - 2..], ["--proto", "2"]);
            assert_eq!(
                (d.kind, d.needs, d.env, d.v2),
                (b.kind, &[b.id][..], DEFAULTS, true)
            );
        }
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
        let a = Scenario::find("s8").unwrap().scaled_args(0.005).join(" ");
        assert!(
            a.contains("--conns 10 --rooms 10 --subscriptions 10 --senders 10"),
            "{a}"
        );
    }
}
