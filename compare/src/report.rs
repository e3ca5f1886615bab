//! The result model written as JSON (`--out-json`) and rendered as Markdown, and the
//! per-scenario summary: medians, ranges, ratios to the first server, warnings.

use serde::Serialize;
use serde_json::Value;

use super::extract::{generator_cpu, generator_saturated, Figure};
use super::stats::{ratio, summarize, Summary};

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// UTC date and time, RFC 3339.
    pub date: String,
    /// `git rev-parse --short HEAD`.
    pub commit: String,
    /// `lscpu`'s model name.
    pub cpu_model: String,
    /// The `compare` command line.
    pub command: String,
    /// The build command, unless `--no-build`.
    pub build_command: Option<String>,
    /// CPUs the servers are pinned to (`taskset -c`).
    pub server_cpus: String,
    /// CPU the generator is pinned to (`--cpu`).
    pub generator_cpu: String,
    /// Runs per scenario and server.
    pub runs: u32,
    /// The servers, the first one is the baseline of the ratios.
    pub servers: Vec<ServerSpec>,
    /// Each scenario.
    pub scenarios: Vec<ScenarioResult>,
    /// The targets (v2, defaults), judged from the medians of this session (empty
    /// without S8, S9, S2d, S3d or S4d).
    pub targets: Vec<TargetResult>,
}

/// A server under test.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerSpec {
    /// Its name (`hubbub`).
    pub name: String,
    /// Its command.
    pub command: String,
    /// The full launch command (environment, taskset), with `$PORT` for the port.
    pub launch: String,
}

/// One scenario's runs and figures.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioResult {
    /// `s1`, …
    pub id: String,
    /// Heading.
    pub title: String,
    /// The loadtest command, with `$PORT` and `$PID` for the per-run values.
    pub loadtest_command: String,
    /// The servers it ran against (the first is the ratios' baseline).
    pub servers: Vec<String>,
    /// Servers left out, with why (a v1-only server in a v2 scenario).
    pub skipped: Vec<String>,
    /// Server environment this scenario sets on top of the harness's (`KEY=value`).
    pub server_env: Vec<String>,
    /// Every run, in the order they ran.
    pub runs: Vec<RunRecord>,
    /// Each figure's summary per server.
    pub figures: Vec<FigureResult>,
    /// Things that make the figures less trustworthy.
    pub warnings: Vec<String>,
}

/// One loadtest run against one server.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// Server name.
    pub server: String,
    /// 1-based run number.
    pub run: u32,
    /// The exact loadtest command.
    pub command: String,
    /// Its exit status (0 all checks passed, 3 a check failed).
    pub exit_code: Option<i32>,
    /// Why there is no report, or what went wrong around it (the server exited early).
    pub error: Option<String>,
    /// The parsed report.
    pub report: Option<Value>,
}

/// One figure, per server.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FigureResult {
    /// Key (`latencyMs.p99`).
    pub key: String,
    /// Row label.
    pub label: String,
    /// Decimals shown.
    #[serde(skip)]
    pub decimals: usize,
    /// Whether lower is better.
    pub lower_is_better: bool,
    /// Per server, in the servers' order.
    pub servers: Vec<ServerFigure>,
}

/// One figure of one server.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerFigure {
    /// Server name.
    pub server: String,
    /// The value of each run that had it.
    pub values: Vec<f64>,
    /// Median and range.
    pub summary: Option<Summary>,
    /// This server's median ÷ the first server's.
    pub ratio_to_first: Option<f64>,
}

/// Medians, ranges and ratios of `figures` over `runs`, per server in `servers`' order,
/// and the warnings: the generator over 90 % of a core, runs without a report, checks
/// that failed.
pub fn summarize_scenario(
    figures: &[Figure],
    servers: &[String],
    runs: &[RunRecord],
) -> (Vec<FigureResult>, Vec<String>) {
    let mut out = Vec::new();
    for fig in figures {
        let mut per: Vec<ServerFigure> = servers
            .iter()
            .map(|name| {
                let values: Vec<f64> = runs
                    .iter()
                    .filter(|r| &r.server == name)
                    .filter_map(|r| r.report.as_ref().and_then(|rep| fig.value(rep)))
                    .collect();
                ServerFigure {
                    server: name.clone(),
                    summary: summarize(&values),
                    values,
                    ratio_to_first: None,
                }
            })
            .collect();
        let base = per.first().and_then(|p| p.summary).map(|s| s.median);
        for p in &mut per {
            p.ratio_to_first = ratio(p.summary.map(|s| s.median), base);
        }
        out.push(FigureResult {
            key: fig.key.to_string(),
            label: fig.label.to_string(),
            decimals: fig.decimals,
            lower_is_better: fig.lower_is_better,
            servers: per,
        });
    }
    let mut warnings = Vec::new();
    for r in runs {
        let who = format!("{} run {}", r.server, r.run);
        match &r.report {
            None => warnings.push(format!(
                "{who}: no report ({})",
                r.error.as_deref().unwrap_or("unknown error")
            )),
            Some(rep) => {
                if let Some(e) = &r.error {
                    warnings.push(format!("{who}: {e}"));
                }
                if generator_saturated(rep) {
                    let cpu = generator_cpu(rep).map_or("?".to_string(), |c| format!("{c:.0}"));
                    warnings.push(format!(
                        "{who}: generator CPU {cpu}% of a core (> 90 %): the generator \
                         measured itself; this run's figures are a bound on the generator, \
                         not the server"
                    ));
                }
                if r.exit_code == Some(3) {
                    let failed: Vec<String> = rep
                        .get("checks")
                        .and_then(Value::as_array)
                        .map(|cs| {
                            cs.iter()
                                .filter(|c| c.get("pass").and_then(Value::as_bool) == Some(false))
                                .map(|c| {
                                    let s = |k: &str| {
                                        c.get(k).and_then(Value::as_str).unwrap_or("?").to_string()
                                    };
                                    format!("{} {} (limit {})", s("name"), s("value"), s("limit"))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    warnings.push(if failed.is_empty() {
                        format!("{who}: the loadtest reported a failed check")
                    } else {
                        format!("{who}: failed check: {}", failed.join("; "))
                    });
                }
            }
        }
    }
    (out, warnings)
}

/// One target judged for one server.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetResult {
    /// What is judged (`S8 CPU per delivered frame ÷ S1's`).
    pub target: String,
    /// The server.
    pub server: String,
    /// The value (a ratio, bytes, a count).
    pub value: Option<f64>,
    /// The limit.
    pub limit: f64,
    /// The value must be at least the limit (else at most).
    pub at_least: bool,
    /// `×` for a ratio, `B` for bytes, empty for a plain number.
    pub unit: String,
    /// Whether it was met (`None` when a figure is missing).
    pub met: Option<bool>,
    /// Where the value comes from (the medians).
    pub from: String,
}

/// A target: `scenario`'s median of `key` (divided by `baseline`'s median of the same
/// figure when there is one) must be at most `limit` (at least, with `at_least`).
struct TargetSpec {
    target: &'static str,
    scenario: &'static str,
    key: &'static str,
    baseline: Option<&'static str>,
    limit: f64,
    at_least: bool,
    unit: &'static str,
}

/// PERFORMANCE.md's targets for protocol v2 and for the server's defaults.
const TARGETS: &[TargetSpec] = &[
    TargetSpec {
        target: "S8 server CPU per delivered frame ÷ S1's",
        scenario: "s8",
        key: "server.cpuNsPerFrame",
        baseline: Some("s1"),
        limit: 1.1,
        at_least: false,
        unit: "×",
    },
    TargetSpec {
        target: "S8 server RSS per subscription",
        scenario: "s8",
        key: "v2.rssPerSubscriptionBytes",
        baseline: None,
        limit: 64.0,
        at_least: false,
        unit: "B",
    },
    TargetSpec {
        target: "S9 chat latency p99 ÷ S1's",
        scenario: "s9",
        key: "latencyMs.p99",
        baseline: Some("s1"),
        limit: 1.2,
        at_least: false,
        unit: "×",
    },
    TargetSpec {
        target: "S2 with defaults: delivery ratio",
        scenario: "s2d",
        key: "deliveryRatio",
        baseline: None,
        limit: 0.999,
        at_least: true,
        unit: "",
    },
    TargetSpec {
        target: "S2 with defaults: connections closed by the server",
        scenario: "s2d",
        key: "errors.closes",
        baseline: None,
        limit: 0.0,
        at_least: false,
        unit: "",
    },
    TargetSpec {
        target: "S2 with defaults: p99 ÷ PRESENCE=false's",
        scenario: "s2d",
        key: "latencyMs.p99",
        baseline: Some("s2"),
        limit: 1.25,
        at_least: false,
        unit: "×",
    },
    TargetSpec {
        target: "S3 with defaults: RSS per connection ÷ PRESENCE=false's",
        scenario: "s3d",
        key: "rssPerConnBytes",
        baseline: Some("s3"),
        limit: 1.25,
        at_least: false,
        unit: "×",
    },
    TargetSpec {
        target: "S3 with defaults, v2 clients: RSS per connection ÷ PRESENCE=false's",
        scenario: "s3v2d",
        key: "rssPerConnBytes",
        baseline: Some("s3"),
        limit: 1.25,
        at_least: false,
        unit: "×",
    },
    TargetSpec {
        target: "S4 with defaults, v2 clients: CPU per handshake ÷ PRESENCE=false's",
        scenario: "s4v2d",
        key: "server.cpuUsPerHandshake",
        baseline: Some("s4"),
        limit: 1.25,
        at_least: false,
        unit: "×",
    },
    TargetSpec {
        target: "S4 with defaults: CPU per handshake ÷ PRESENCE=false's",
        scenario: "s4d",
        key: "server.cpuUsPerHandshake",
        baseline: Some("s4"),
        limit: 1.25,
        at_least: false,
        unit: "×",
    },
];

/// `server`'s median of figure `key` in scenario `id`.
pub fn median_of(results: &[ScenarioResult], id: &str, key: &str, server: &str) -> Option<f64> {
    results
        .iter()
        .find(|s| s.id == id)?
        .figures
        .iter()
        .find(|f| f.key == key)?
        .servers
        .iter()
        .find(|f| f.server == server)?
        .summary
        .map(|s| s.median)
}

/// PERFORMANCE.md's targets for every server that ran a scenario that has one: S8's CPU
/// per delivered frame and S9's p99 as ratios to the same server's S1 in this session,
/// S8's RSS per subscription, and the defaults runs (S2d, S3d, S4d) against their
/// `PRESENCE=false` twins.
pub fn targets(results: &[ScenarioResult]) -> Vec<TargetResult> {
    let mut out = Vec::new();
    for t in TARGETS {
        let Some(scn) = results.iter().find(|s| s.id == t.scenario) else {
            continue;
        };
        for server in &scn.servers {
            let v = median_of(results, t.scenario, t.key, server);
            let (value, from) = match t.baseline {
                Some(baseline) => {
                    let b = median_of(results, baseline, t.key, server);
                    let show = |x: Option<f64>| x.map_or("—".to_string(), |x| format!("{x:.3}"));
                    (
                        ratio(v, b),
                        format!(
                            "{} {} ÷ {} {} ({})",
                            t.scenario.to_uppercase(),
                            show(v),
                            baseline.to_uppercase(),
                            show(b),
                            t.key
                        ),
                    )
                }
                None => (
                    v,
                    format!("{} median of {}", t.scenario.to_uppercase(), t.key),
                ),
            };
            out.push(TargetResult {
                target: t.target.to_string(),
                server: server.clone(),
                value,
                limit: t.limit,
                at_least: t.at_least,
                unit: t.unit.to_string(),
                met: value.map(|v| {
                    if t.at_least {
                        v >= t.limit
                    } else {
                        v <= t.limit
                    }
                }),
                from,
            });
        }
    }
    out
}

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The `Model name:` of `lscpu`'s output.
pub fn lscpu_model(lscpu: &str) -> Option<String> {
    lscpu.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "Model name").then(|| v.trim().to_string())
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::extract::{CONNECT_FIGURES, IDLE_FIGURES};
    use serde_json::json;

    pub(crate) fn run(server: &str, n: u32, report: Option<Value>) -> RunRecord {
        RunRecord {
            server: server.into(),
            run: n,
            command: "hubbub-loadtest ...".into(),
            exit_code: Some(if report.is_some() { 0 } else { 1 }),
            error: report.is_none().then(|| "exit status 1".to_string()),
            report,
        }
    }

    fn connect(hs: f64, us: f64, gen: f64) -> Option<Value> {
        Some(
            json!({"handshakesPerSec": hs, "server": {"cpuUsPerHandshake": us},
                    "generator": {"cpuPercent": gen}}),
        )
    }

    #[test]
    fn medians_and_ratios_against_the_first_server() {
        let servers = vec!["hubbub".to_string(), "tokio-broadcast".to_string()];
        let runs = vec![
            run("hubbub", 1, connect(30000.0, 20.0, 50.0)),
            run("tokio-broadcast", 1, connect(10000.0, 60.0, 40.0)),
            run("hubbub", 2, connect(34000.0, 10.0, 50.0)),
            run("tokio-broadcast", 2, connect(14000.0, 80.0, 95.0)),
        ];
        let (figs, warnings) = summarize_scenario(CONNECT_FIGURES, &servers, &runs);
        let hs = &figs[0];
        assert_eq!(hs.key, "handshakesPerSec");
        assert_eq!(hs.servers[0].summary.unwrap().median, 32000.0);
        assert_eq!(hs.servers[0].ratio_to_first, Some(1.0));
        assert_eq!(hs.servers[1].summary.unwrap().median, 12000.0);
        assert_eq!(hs.servers[1].ratio_to_first, Some(0.375));
        assert_eq!(hs.servers[1].values, [10000.0, 14000.0]);
        let us = &figs[1];
        assert_eq!(us.servers[1].ratio_to_first, Some(70.0 / 15.0));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("tokio-broadcast run 2"));
        assert!(warnings[0].contains("measured itself"));
    }

    #[test]
    fn failed_runs_are_warned_and_skipped() {
        let servers = vec!["a".to_string(), "b".to_string()];
        let runs = vec![
            run("a", 1, None),
            run(
                "b",
                1,
                Some(json!({"rssPerConnBytes": 700.0, "generator": {"cpuPercent": 10.0}})),
            ),
        ];
        let (figs, warnings) = summarize_scenario(IDLE_FIGURES, &servers, &runs);
        assert!(figs[0].servers[0].summary.is_none());
        assert_eq!(figs[0].servers[1].ratio_to_first, None);
        assert_eq!(warnings, ["a run 1: no report (exit status 1)"]);
    }

    #[test]
    fn failed_checks_are_named() {
        let mut r = run(
            "a",
            1,
            Some(json!({"checks": [
                {"name": "failures", "limit": "<= 0", "value": "3", "pass": false},
                {"name": "other", "limit": "x", "value": "y", "pass": true}]})),
        );
        r.exit_code = Some(3);
        let (_, warnings) = summarize_scenario(IDLE_FIGURES, &["a".to_string()], &[r]);
        assert_eq!(warnings, ["a run 1: failed check: failures 3 (limit <= 0)"]);
    }

    fn scenario(id: &str, servers: &[&str], figures: Vec<FigureResult>) -> ScenarioResult {
        ScenarioResult {
            id: id.into(),
            title: id.into(),
            loadtest_command: String::new(),
            servers: servers.iter().map(|s| s.to_string()).collect(),
            skipped: Vec::new(),
            server_env: Vec::new(),
            runs: Vec::new(),
            figures,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn v2_targets_are_ratios_to_the_servers_own_s1() {
        use crate::extract::{FANOUT_FIGURES, ROOMS_FIGURES, TYPING_FIGURES};
        let both = vec!["hubbub".to_string(), "tokio-broadcast".to_string()];
        let hub = vec!["hubbub".to_string()];
        let s1 = |cpu: f64, p99: f64| {
            Some(json!({"latencyMs": {"p99": p99}, "server": {"cpuNsPerFrame": cpu}}))
        };
        let (f1, _) = summarize_scenario(
            FANOUT_FIGURES,
            &both,
            &[
                run("hubbub", 1, s1(3000.0, 5.0)),
                run("tokio-broadcast", 1, s1(4000.0, 10.0)),
                run("hubbub", 2, s1(3400.0, 7.0)),
            ],
        );
        let s8 = |cpu: f64, rss: f64| {
            Some(json!({"server": {"cpuNsPerFrame": cpu}, "v2": {"rssPerSubscriptionBytes": rss}}))
        };
        let (f8, _) = summarize_scenario(
            ROOMS_FIGURES,
            &hub,
            &[
                run("hubbub", 1, s8(3300.0, 70.0)),
                run("hubbub", 2, s8(3500.0, 50.0)),
            ],
        );
        let (f9, _) = summarize_scenario(
            TYPING_FIGURES,
            &hub,
            &[run("hubbub", 1, Some(json!({"latencyMs": {"p99": 9.6}})))],
        );
        let results = vec![
            scenario("s1", &["hubbub", "tokio-broadcast"], f1),
            scenario("s8", &["hubbub"], f8),
            scenario("s9", &["hubbub"], f9),
        ];
        assert_eq!(
            median_of(&results, "s1", "latencyMs.p99", "hubbub"),
            Some(6.0)
        );
        let t = targets(&results);
        assert_eq!(t.len(), 3, "{t:?}");
        assert_eq!(t[0].server, "hubbub");
        assert!((t[0].value.unwrap() - 3400.0 / 3200.0).abs() < 1e-9);
        assert_eq!(t[0].met, Some(true));
        assert!(
            t[0].from.contains("S8 3400.000 ÷ S1 3200.000"),
            "{}",
            t[0].from
        );
        assert_eq!(
            (t[1].value, t[1].met, t[1].unit.as_str()),
            (Some(60.0), Some(true), "B")
        );
        assert!((t[2].value.unwrap() - 1.6).abs() < 1e-9);
        assert_eq!(t[2].met, Some(false));
        // Without S1 the ratios are unknown, not met.
        let t = targets(&results[1..]);
        assert_eq!((t[0].value, t[0].met), (None, None));
        assert!(targets(&results[..1]).is_empty());
    }

    #[test]
    fn defaults_targets_are_ratios_to_their_twins_and_absolute_bounds() {
        use crate::extract::{CONNECT_FIGURES, FANOUT_FIGURES};
        let hub = vec!["hubbub".to_string()];
        let fan = |p99: f64, ratio: f64, closes: u64| {
            Some(json!({"latencyMs": {"p99": p99}, "deliveryRatio": ratio,
                        "errors": {"closes": {"close_1008": {"count": closes}}}}))
        };
        let (f2, _) =
            summarize_scenario(FANOUT_FIGURES, &hub, &[run("hubbub", 1, fan(40.0, 1.0, 0))]);
        let (f2d, _) = summarize_scenario(
            FANOUT_FIGURES,
            &hub,
            &[run("hubbub", 1, fan(60.0, 0.9995, 0))],
        );
        let conn = |us: f64| Some(json!({"server": {"cpuUsPerHandshake": us}}));
        let (f4, _) = summarize_scenario(CONNECT_FIGURES, &hub, &[run("hubbub", 1, conn(26.0))]);
        let (f4d, _) = summarize_scenario(CONNECT_FIGURES, &hub, &[run("hubbub", 1, conn(3428.0))]);
        let results = vec![
            scenario("s2", &["hubbub"], f2),
            scenario("s2d", &["hubbub"], f2d),
            scenario("s4", &["hubbub"], f4),
            scenario("s4d", &["hubbub"], f4d),
        ];
        let t = targets(&results);
        let names: Vec<&str> = t.iter().map(|t| t.target.as_str()).collect();
        assert_eq!(
            names,
            [
                "S2 with defaults: delivery ratio",
                "S2 with defaults: connections closed by the server",
                "S2 with defaults: p99 ÷ PRESENCE=false's",
                "S4 with defaults: CPU per handshake ÷ PRESENCE=false's"
            ]
        );
        assert_eq!(
            (t[0].value, t[0].met, t[0].at_least),
            (Some(0.9995), Some(true), true)
        );
        assert_eq!((t[1].value, t[1].met), (Some(0.0), Some(true)));
        assert_eq!((t[2].value, t[2].met), (Some(1.5), Some(false)));
        assert!((t[3].value.unwrap() - 3428.0 / 26.0).abs() < 1e-9);
        assert_eq!(t[3].met, Some(false));
    }

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_date(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_date(1_767_225_599), "2025-12-31T23:59:59Z");
    }

    #[test]
    fn lscpu_model_name() {
        let out = "Architecture:  x86_64\nModel name:   AMD EPYC 7B13\nBIOS Model name: x\n";
        assert_eq!(lscpu_model(out).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(lscpu_model("nothing"), None);
    }
}
