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
    /// The sum of the `count` of every entry of the object at this path (0 when it is
    /// empty): e.g. connections closed, over every close code.
    CountSum(&'static [&'static str]),
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

const P50: Figure = Figure {
    key: "latencyMs.p50",
    label: "latency p50 (ms)",
    decimals: 3,
    lower_is_better: true,
    source: Source::Path(&["latencyMs", "p50"]),
};

const P99: Figure = Figure {
    key: "latencyMs.p99",
    label: "latency p99 (ms)",
    decimals: 3,
    lower_is_better: true,
    source: Source::Path(&["latencyMs", "p99"]),
};

const P999: Figure = Figure {
    key: "latencyMs.p999",
    label: "latency p99.9 (ms)",
    decimals: 3,
    lower_is_better: true,
    source: Source::Path(&["latencyMs", "p999"]),
};

const CPU_PER_FRAME: Figure = Figure {
    key: "server.cpuNsPerFrame",
    label: "server CPU per delivered frame (ns)",
    decimals: 0,
    lower_is_better: true,
    source: Source::Path(&["server", "cpuNsPerFrame"]),
};

const DELIVERY: Figure = Figure {
    key: "deliveryRatio",
    label: "delivery ratio",
    decimals: 5,
    lower_is_better: false,
    source: Source::Path(&["deliveryRatio"]),
};

const DELIVERED: Figure = Figure {
    key: "deliveredPerSec",
    label: "delivered frames/s",
    decimals: 0,
    lower_is_better: false,
    source: Source::Path(&["deliveredPerSec"]),
};

const ACK_P99: Figure = Figure {
    key: "v2.ackLatencyMs.p99",
    label: "send → ack p99 (ms)",
    decimals: 3,
    lower_is_better: true,
    source: Source::Path(&["v2", "ackLatencyMs", "p99"]),
};

const DISCONNECTS: Figure = Figure {
    key: "errors.closes",
    label: "connections closed by the server",
    decimals: 0,
    lower_is_better: true,
    source: Source::CountSum(&["errors", "closes"]),
};

const CONNECT_FAILURES: Figure = Figure {
    key: "errors.connectFailures",
    label: "connections that failed to open",
    decimals: 0,
    lower_is_better: true,
    source: Source::CountSum(&["errors", "connectFailures"]),
};

/// Fan-out (S1, S2) figures.
pub const FANOUT_FIGURES: &[Figure] = &[
    P50,
    P99,
    P999,
    CPU_PER_FRAME,
    DELIVERY,
    DELIVERED,
    DISCONNECTS,
    CONNECT_FAILURES,
    GEN_CPU,
];

/// Many rooms per connection (S8, v2) figures.
pub const ROOMS_FIGURES: &[Figure] = &[
    P50,
    P99,
    P999,
    CPU_PER_FRAME,
    DELIVERY,
    DELIVERED,
    Figure {
        key: "v2.rssPerSubscriptionBytes",
        label: "server RSS growth per subscription (B)",
        decimals: 1,
        lower_is_better: true,
        source: Source::Path(&["v2", "rssPerSubscriptionBytes"]),
    },
    Figure {
        key: "v2.rssPerFirstSubscriptionBytes",
        label: "server RSS growth per first subscription, rooms created (B)",
        decimals: 1,
        lower_is_better: true,
        source: Source::Path(&["v2", "rssPerFirstSubscriptionBytes"]),
    },
    Figure {
        key: "v2.rssPerConnBytes",
        label: "server RSS growth per v2 connection (B)",
        decimals: 0,
        lower_is_better: true,
        source: Source::Path(&["v2", "rssPerConnBytes"]),
    },
    ACK_P99,
    GEN_CPU,
];

/// Typing + presence churn (S9, v2) figures.
pub const TYPING_FIGURES: &[Figure] = &[
    P50,
    P99,
    P999,
    CPU_PER_FRAME,
    DELIVERY,
    DELIVERED,
    Figure {
        key: "v2.typingPerMemberPerSec",
        label: "typing frames per member per s",
        decimals: 2,
        lower_is_better: true,
        source: Source::Path(&["v2", "typingPerMemberPerSec"]),
    },
    Figure {
        key: "v2.presencePerMemberPerSec",
        label: "presence frames per member per s",
        decimals: 2,
        lower_is_better: true,
        source: Source::Path(&["v2", "presencePerMemberPerSec"]),
    },
    ACK_P99,
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
    CONNECT_FAILURES,
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
            Source::CountSum(path) => {
                let m = at(report, path)?.as_object()?;
                // An empty float sum is -0.0: add 0.0 so that none prints as 0.
                let sum: f64 = m
                    .values()
                    .filter_map(|c| c.get("count").and_then(Value::as_f64))
                    .sum();
                Some(sum + 0.0)
            }
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
                None,
                None,
                Some(55.0)
            ]
        );
        assert!(!generator_saturated(&r));
    }

    #[test]
    fn disconnects_and_connect_failures_are_summed() {
        let mut r = fanout();
        r.as_object_mut().unwrap().insert(
            "errors".into(),
            json!({"errorFrames": {}, "closes": {"close_1008": {"count": 3, "example": "x"},
                   "eof": {"count": 2}}, "connectFailures": {}}),
        );
        let key = |k: &str| {
            FANOUT_FIGURES
                .iter()
                .find(|f| f.key == k)
                .and_then(|f| f.value(&r))
        };
        assert_eq!(key("errors.closes"), Some(5.0));
        assert_eq!(key("errors.connectFailures"), Some(0.0));
        assert!(key("errors.connectFailures").unwrap().is_sign_positive());
        assert_eq!(DISCONNECTS.value(&fanout()), None, "no errors object");
    }

    #[test]
    fn v2_figures() {
        let mut r = fanout();
        r.as_object_mut().unwrap().insert(
            "v2".into(),
            json!({"rssPerSubscriptionBytes": 48.5, "rssPerConnBytes": 600.0,
                   "ackLatencyMs": {"p99": 2.5},
                   "typingPerMemberPerSec": 3.9, "presencePerMemberPerSec": 0.4}),
        );
        let key =
            |figs: &[Figure], k: &str| figs.iter().find(|f| f.key == k).and_then(|f| f.value(&r));
        assert_eq!(key(ROOMS_FIGURES, "v2.rssPerSubscriptionBytes"), Some(48.5));
        assert_eq!(key(ROOMS_FIGURES, "v2.ackLatencyMs.p99"), Some(2.5));
        assert_eq!(key(ROOMS_FIGURES, "server.cpuNsPerFrame"), Some(812.5));
        assert_eq!(key(TYPING_FIGURES, "v2.typingPerMemberPerSec"), Some(3.9));
        assert_eq!(key(TYPING_FIGURES, "v2.presencePerMemberPerSec"), Some(0.4));
        assert_eq!(key(TYPING_FIGURES, "latencyMs.p99"), Some(1.5));
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
        assert_eq!(got, [Some(25000.0), Some(31.5), None, Some(95.0)]);
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
