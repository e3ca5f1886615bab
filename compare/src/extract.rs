//! The figures taken from one `hubbub-loadtest --json` report (`FanoutReport` or
//! `ConnsReport` in `loadtest/src/report.rs`, camelCase).

use serde_json::Value;

/// Where a figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A number at this path of keys.
    Path(&'static [&'static str]),
    /// `rssPerConnBytes` if present, else
    /// (`server.rssAfterBytes` − `server.rssBeforeBytes`) ÷ `connsOpened`.
    RssPerConn,
}

/// One compared figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figure {
    /// Stable key for the JSON output.
    pub key: &'static str,
    /// Row label, with the unit.
    pub label: &'static str,
    /// Decimals shown in the Markdown table.
    pub decimals: usize,
    /// Whether a lower value is better (for the reader; shown as ↓ or ↑).
    pub lower_is_better: bool,
    /// Where it comes from.
    pub source: Source,
}

const GEN_CPU: Figure = Figure {
    key: "generator.cpuPercent",
    label: "generator CPU (% of a core)",
    decimals: 0,
    lower_is_better: true,
    source: Source::Path(&["generator", "cpuPercent"]),
};

/// Fan-out (S1, S2) figures.
pub const FANOUT_FIGURES: &[Figure] = &[
    Figure {
        key: "latencyMs.p50",
        label: "latency p50 (ms)",
        decimals: 3,
        lower_is_better: true,
        source: Source::Path(&["latencyMs", "p50"]),
    },
    Figure {
        key: "latencyMs.p99",
        label: "latency p99 (ms)",
        decimals: 3,
        lower_is_better: true,
        source: Source::Path(&["latencyMs", "p99"]),
    },
    Figure {
        key: "latencyMs.p999",
        label: "latency p99.9 (ms)",
        decimals: 3,
        lower_is_better: true,
        source: Source::Path(&["latencyMs", "p999"]),
    },
    Figure {
        key: "server.cpuNsPerFrame",
        label: "server CPU per delivered frame (ns)",
        decimals: 0,
        lower_is_better: true,
        source: Source::Path(&["server", "cpuNsPerFrame"]),
    },
    Figure {
        key: "deliveryRatio",
        label: "delivery ratio",
        decimals: 5,
        lower_is_better: false,
        source: Source::Path(&["deliveryRatio"]),
    },
    Figure {
        key: "deliveredPerSec",
        label: "delivered frames/s",
        decimals: 0,
        lower_is_better: false,
        source: Source::Path(&["deliveredPerSec"]),
    },
    GEN_CPU,
];

/// Idle (S3) figures.
pub const IDLE_FIGURES: &[Figure] = &[Figure {
    key: "rssPerConnBytes",
    label: "server RSS growth per connection (B)",
    decimals: 0,
    lower_is_better: true,
    source: Source::RssPerConn,
}];

/// Connect-storm (S4) figures.
pub const CONNECT_FIGURES: &[Figure] = &[
    Figure {
        key: "handshakesPerSec",
        label: "handshakes/s",
        decimals: 0,
        lower_is_better: false,
        source: Source::Path(&["handshakesPerSec"]),
    },
    Figure {
        key: "server.cpuUsPerHandshake",
        label: "server CPU per handshake (µs)",
        decimals: 1,
        lower_is_better: true,
        source: Source::Path(&["server", "cpuUsPerHandshake"]),
    },
    GEN_CPU,
];

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn number(v: &Value, path: &[&str]) -> Option<f64> {
    at(v, path)?.as_f64().filter(|x| x.is_finite())
}

impl Figure {
    /// This figure's value in `report`, if it is there.
    pub fn value(&self, report: &Value) -> Option<f64> {
        match self.source {
            Source::Path(path) => number(report, path),
            Source::RssPerConn => number(report, &["rssPerConnBytes"]).or_else(|| {
                let after = number(report, &["server", "rssAfterBytes"])?;
                let before = number(report, &["server", "rssBeforeBytes"])?;
                let opened = number(report, &["connsOpened"]).filter(|n| *n > 0.0)?;
                Some((after - before) / opened)
            }),
        }
    }
}

/// The generator's CPU over the window, % of one core (the busiest engine thread's if
/// larger, so a saturated thread shows even with several).
pub fn generator_cpu(report: &Value) -> Option<f64> {
    let whole = number(report, &["generator", "cpuPercent"]);
    let busiest = at(report, &["generator", "cpuPercentPerThread"])
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .filter_map(Value::as_f64)
                .filter(|x| x.is_finite())
                .reduce(f64::max)
        });
    match (whole, busiest) {
        (Some(w), Some(b)) => Some(w.max(b)),
        (w, b) => w.or(b),
    }
}

/// The generator used more than 90 % of a core (or said it saturated): the figures may
/// measure the generator rather than the server.
pub fn generator_saturated(report: &Value) -> bool {
    generator_cpu(report).is_some_and(|c| c > 90.0)
        || at(report, &["generator", "saturated"]).and_then(Value::as_bool) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fanout() -> Value {
        json!({
            "mode": "fanout",
            "deliveryRatio": 0.99995,
            "deliveredPerSec": 200000.0,
            "latencyMs": {"count": 10, "p50": 0.5, "p90": 0.8, "p99": 1.5, "p999": 3.25, "max": 9.0},
            "generator": {"threads": 1, "driver": "io_uring", "cpuPercent": 55.0,
                          "cpuPercentPerThread": [55.0], "saturated": false},
            "server": {"pid": 1, "cpuMs": 1.0, "cpuPercent": 40.0, "cpuNsPerFrame": 812.5,
                       "rssBeforeBytes": 1000, "rssAfterBytes": 2000}
        })
    }

    #[test]
    fn fanout_figures() {
        let r = fanout();
        let got: Vec<Option<f64>> = FANOUT_FIGURES.iter().map(|f| f.value(&r)).collect();
        assert_eq!(
            got,
            [
                Some(0.5),
                Some(1.5),
                Some(3.25),
                Some(812.5),
                Some(0.99995),
                Some(200000.0),
                Some(55.0)
            ]
        );
        assert!(!generator_saturated(&r));
    }

    #[test]
    fn missing_server_figures_are_none() {
        let mut r = fanout();
        r.as_object_mut().unwrap().remove("server");
        assert_eq!(FANOUT_FIGURES[3].value(&r), None);
        assert_eq!(
            FANOUT_FIGURES[0].value(&json!({"latencyMs": {"p50": "x"}})),
            None
        );
    }

    #[test]
    fn rss_per_connection_computed_or_reported() {
        let r = json!({"connsOpened": 100, "server": {"rssBeforeBytes": 1_000_000u64,
                                                       "rssAfterBytes": 1_066_700u64}});
        assert_eq!(IDLE_FIGURES[0].value(&r), Some(667.0));
        let r = json!({"connsOpened": 100, "rssPerConnBytes": 650.0,
                       "server": {"rssBeforeBytes": 0, "rssAfterBytes": 1}});
        assert_eq!(IDLE_FIGURES[0].value(&r), Some(650.0));
        let r = json!({"connsOpened": 0, "server": {"rssBeforeBytes": 0, "rssAfterBytes": 1}});
        assert_eq!(IDLE_FIGURES[0].value(&r), None);
    }

    #[test]
    fn connect_figures() {
        let r = json!({"handshakesPerSec": 25000.0, "server": {"cpuUsPerHandshake": 31.5},
                       "generator": {"cpuPercent": 95.0, "cpuPercentPerThread": [95.0]}});
        let got: Vec<Option<f64>> = CONNECT_FIGURES.iter().map(|f| f.value(&r)).collect();
        assert_eq!(got, [Some(25000.0), Some(31.5), Some(95.0)]);
        assert!(generator_saturated(&r));
    }

    #[test]
    fn generator_busiest_thread_counts() {
        let r = json!({"generator": {"cpuPercent": 60.0, "cpuPercentPerThread": [30.0, 92.0]}});
        assert_eq!(generator_cpu(&r), Some(92.0));
        assert!(generator_saturated(&r));
        assert!(generator_saturated(
            &json!({"generator": {"saturated": true}})
        ));
        assert_eq!(generator_cpu(&json!({})), None);
    }
}
