//! The Markdown rendering of a [`Comparison`].

use std::fmt::Write as _;

use super::report::{Comparison, FigureResult, ScenarioResult, TargetResult};
use super::stats::Summary;

/// `v` with `decimals` decimals and thousands separators (`1,234,567.5`).
pub fn fmt_num(v: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, v.abs());
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s.as_str(), None),
    };
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let neg = v < 0.0 && s.chars().any(|c| c.is_ascii_digit() && c != '0');
    format!(
        "{}{grouped}{}",
        if neg { "-" } else { "" },
        frac.map(|f| format!(".{f}")).unwrap_or_default()
    )
}

/// `median [min–max]`, or the median alone for one run, or `—`.
pub fn fmt_summary(s: Option<Summary>, decimals: usize) -> String {
    match s {
        None => "—".to_string(),
        Some(s) if s.n == 1 || s.min == s.max => fmt_num(s.median, decimals),
        Some(s) => format!(
            "{} [{}–{}]",
            fmt_num(s.median, decimals),
            fmt_num(s.min, decimals),
            fmt_num(s.max, decimals)
        ),
    }
}

/// A ratio as `0.42×`.
pub fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        None => "—".to_string(),
        Some(r) if r >= 100.0 => format!("{}×", fmt_num(r, 0)),
        Some(r) => format!("{r:.2}×"),
    }
}

/// The header and separator rows of a scenario table for these servers.
pub fn table_header(servers: &[String]) -> String {
    let mut cols = vec!["figure".to_string()];
    cols.extend(servers.iter().map(|s| format!("{s} median [min–max]")));
    if let Some((first, rest)) = servers.split_first() {
        cols.extend(rest.iter().map(|s| format!("{s} / {first}")));
    }
    let sep: Vec<&str> = cols
        .iter()
        .enumerate()
        .map(|(i, _)| if i == 0 { "---" } else { "---:" })
        .collect();
    format!("| {} |\n| {} |\n", cols.join(" | "), sep.join(" | "))
}

/// One table row: the figure, each server's median and range, each other server's ratio
/// to the first.
pub fn table_row(f: &FigureResult) -> String {
    let arrow = if f.lower_is_better { "↓" } else { "↑" };
    let mut cells = vec![format!("{} {arrow}", f.label)];
    cells.extend(f.servers.iter().map(|s| fmt_summary(s.summary, f.decimals)));
    cells.extend(
        f.servers
            .iter()
            .skip(1)
            .map(|s| fmt_ratio(s.ratio_to_first)),
    );
    format!("| {} |\n", cells.join(" | "))
}

fn scenario_section(out: &mut String, servers: &[String], s: &ScenarioResult) {
    let _ = writeln!(out, "## {}\n", s.title);
    let _ = writeln!(out, "`{}`\n", s.loadtest_command);
    if !s.server_env.is_empty() {
        let _ = writeln!(out, "Server environment: `{}`\n", s.server_env.join(" "));
    }
    for k in &s.skipped {
        let _ = writeln!(out, "- skipped: {k}");
    }
    if !s.skipped.is_empty() {
        out.push('\n');
    }
    if s.figures.is_empty() {
        return;
    }
    let servers = if s.servers.is_empty() {
        servers
    } else {
        &s.servers[..]
    };
    out.push_str(&table_header(servers));
    for f in &s.figures {
        out.push_str(&table_row(f));
    }
    out.push('\n');
    for w in &s.warnings {
        let _ = writeln!(out, "- ⚠ {w}");
    }
    if !s.warnings.is_empty() {
        out.push('\n');
    }
}

/// A target's value with its unit.
fn fmt_target_value(t: &TargetResult) -> String {
    match (t.value, t.unit.as_str()) {
        (None, _) => "—".to_string(),
        (Some(v), "×") => format!("{v:.2}×"),
        (Some(v), "") => fmt_num(v, if v.fract() == 0.0 { 0 } else { 5 }),
        (Some(v), unit) => format!("{} {unit}", fmt_num(v, 1)),
    }
}

/// The targets table (v2, defaults).
pub fn targets_section(out: &mut String, targets: &[TargetResult]) {
    if targets.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Targets (PERFORMANCE.md), from this session's medians\n"
    );
    let _ = writeln!(out, "| target | server | value | limit | | from |");
    let _ = writeln!(out, "| --- | --- | ---: | ---: | --- | --- |");
    for t in targets {
        let op = if t.at_least { "≥" } else { "≤" };
        let limit = match t.unit.as_str() {
            "×" => format!("{op} {:.2}×", t.limit),
            "" => format!("{op} {}", t.limit),
            unit => format!("{op} {} {unit}", fmt_num(t.limit, 0)),
        };
        let met = match t.met {
            Some(true) => "**met**",
            Some(false) => "missed",
            None => "unknown",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {limit} | {met} | {} |",
            t.target,
            t.server,
            fmt_target_value(t),
            t.from
        );
    }
    out.push('\n');
}

/// The whole document.
pub fn render(c: &Comparison) -> String {
    let names: Vec<String> = c.servers.iter().map(|s| s.name.clone()).collect();
    let mut out = String::new();
    let _ = writeln!(out, "# Side by side: {}\n", names.join(" vs "));
    let _ = writeln!(out, "- Date: {}", c.date);
    let _ = writeln!(out, "- Commit: `{}`", c.commit);
    let _ = writeln!(out, "- CPU: {}", c.cpu_model);
    let _ = writeln!(
        out,
        "- Server on CPU(s) `{}` (taskset), generator on CPU `{}`; {} run(s) per server, \
         servers alternating; median [min–max] over the runs; ratios are medians ÷ {}'s; \
         ↓ lower is better, ↑ higher is better",
        c.server_cpus,
        c.generator_cpu,
        c.runs,
        names.first().map_or("the first server", String::as_str)
    );
    let _ = writeln!(out, "- Command: `{}`\n", c.command);
    let saturated = c
        .scenarios
        .iter()
        .flat_map(|s| &s.warnings)
        .any(|w| w.contains("measured itself"));
    if saturated {
        let _ = writeln!(
            out,
            "> **Warning:** the generator used more than 90 % of a core in some runs: the \
             generator measured itself there (see the scenario notes).\n"
        );
    }
    for s in &c.scenarios {
        scenario_section(&mut out, &names, s);
    }
    targets_section(&mut out, &c.targets);
    let _ = writeln!(out, "## Commands\n");
    let _ = writeln!(out, "```sh");
    if let Some(b) = &c.build_command {
        let _ = writeln!(out, "{b}");
    }
    for s in &c.servers {
        let _ = writeln!(out, "# {}\n{}", s.name, s.launch);
    }
    for s in &c.scenarios {
        if s.server_env.is_empty() {
            let _ = writeln!(out, "# {}\n{}", s.id, s.loadtest_command);
        } else {
            let _ = writeln!(
                out,
                "# {} (server also with {})\n{}",
                s.id,
                s.server_env.join(" "),
                s.loadtest_command
            );
        }
    }
    let _ = writeln!(out, "```");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::CONNECT_FIGURES;
    use crate::report::tests::run;
    use crate::report::{summarize_scenario, ServerSpec};
    use serde_json::json;

    #[test]
    fn numbers() {
        assert_eq!(fmt_num(1234567.0, 0), "1,234,567");
        assert_eq!(fmt_num(999.0, 0), "999");
        assert_eq!(fmt_num(1000.5, 1), "1,000.5");
        assert_eq!(fmt_num(0.123456, 3), "0.123");
        assert_eq!(fmt_num(-1234.0, 0), "-1,234");
        assert_eq!(fmt_num(-0.0001, 2), "0.00");
        assert_eq!(fmt_ratio(Some(0.4166)), "0.42×");
        assert_eq!(fmt_ratio(Some(208.4)), "208×");
        assert_eq!(fmt_ratio(None), "—");
    }

    #[test]
    fn summaries() {
        let s = Summary {
            n: 3,
            median: 2.0,
            min: 1.0,
            max: 3000.0,
        };
        assert_eq!(fmt_summary(Some(s), 1), "2.0 [1.0–3,000.0]");
        let one = Summary {
            n: 1,
            median: 5.0,
            min: 5.0,
            max: 5.0,
        };
        assert_eq!(fmt_summary(Some(one), 0), "5");
        assert_eq!(fmt_summary(None, 0), "—");
    }

    #[test]
    fn header_and_rows() {
        let servers = vec!["hubbub".to_string(), "tokio-broadcast".to_string()];
        assert_eq!(
            table_header(&servers),
            "| figure | hubbub median [min–max] | tokio-broadcast median [min–max] \
             | tokio-broadcast / hubbub |\n| --- | ---: | ---: | ---: |\n"
        );
        let report = |hs: f64| {
            Some(
                json!({"handshakesPerSec": hs, "server": {"cpuUsPerHandshake": 10.0},
                        "generator": {"cpuPercent": 50.0}}),
            )
        };
        let runs = vec![
            run("hubbub", 1, report(30000.0)),
            run("tokio-broadcast", 1, report(10000.0)),
            run("hubbub", 2, report(20000.0)),
            run("tokio-broadcast", 2, report(12000.0)),
        ];
        let (figs, _) = summarize_scenario(CONNECT_FIGURES, &servers, &runs);
        assert_eq!(
            table_row(&figs[0]),
            "| handshakes/s ↑ | 25,000 [20,000–30,000] | 11,000 [10,000–12,000] | 0.44× |\n"
        );
        assert_eq!(
            table_row(&figs[1]),
            "| server CPU per handshake (µs) ↓ | 10.0 | 10.0 | 1.00× |\n"
        );
    }

    #[test]
    fn document() {
        let servers = vec!["hubbub".to_string(), "tb".to_string()];
        let runs = vec![
            run(
                "hubbub",
                1,
                Some(json!({"handshakesPerSec": 1.0, "generator": {"cpuPercent": 99.0}})),
            ),
            run("tb", 1, None),
        ];
        let (figures, warnings) = summarize_scenario(CONNECT_FIGURES, &servers, &runs);
        let c = Comparison {
            date: "2025-01-01T00:00:00Z".into(),
            commit: "abc1234".into(),
            cpu_model: "Test CPU".into(),
            command: "compare --scenarios s4".into(),
            build_command: Some("cargo build --release".into()),
            server_cpus: "0".into(),
            generator_cpu: "1".into(),
            runs: 1,
            servers: servers
                .iter()
                .map(|n| ServerSpec {
                    name: n.clone(),
                    command: n.clone(),
                    launch: format!("PORT=$PORT taskset -c 0 {n}"),
                })
                .collect(),
            scenarios: vec![
                ScenarioResult {
                    id: "s4".into(),
                    title: "S4 connect storm".into(),
                    loadtest_command: "hubbub-loadtest connect".into(),
                    servers: servers.clone(),
                    skipped: Vec::new(),
                    server_env: Vec::new(),
                    runs,
                    figures,
                    warnings,
                },
                ScenarioResult {
                    id: "s9".into(),
                    title: "S9 typing".into(),
                    loadtest_command: "hubbub-loadtest typing".into(),
                    servers: vec!["hubbub".into()],
                    skipped: vec!["tb (does not speak protocol v2)".into()],
                    server_env: vec!["PRESENCE=true".into()],
                    runs: Vec::new(),
                    figures: Vec::new(),
                    warnings: Vec::new(),
                },
            ],
            targets: vec![
                TargetResult {
                    target: "S9 chat latency p99 ÷ S1's".into(),
                    server: "hubbub".into(),
                    value: Some(1.05),
                    limit: 1.2,
                    at_least: false,
                    unit: "×".into(),
                    met: Some(true),
                    from: "S9 5.2 ÷ S1 4.95".into(),
                },
                TargetResult {
                    target: "S8 server RSS per subscription".into(),
                    server: "hubbub".into(),
                    value: None,
                    limit: 64.0,
                    at_least: false,
                    unit: "B".into(),
                    met: None,
                    from: "x".into(),
                },
                TargetResult {
                    target: "S2 with defaults: delivery ratio".into(),
                    server: "hubbub".into(),
                    value: Some(0.9995),
                    limit: 0.999,
                    at_least: true,
                    unit: String::new(),
                    met: Some(true),
                    from: "y".into(),
                },
            ],
        };
        let md = render(&c);
        assert!(md.starts_with("# Side by side: hubbub vs tb\n"), "{md}");
        assert!(md.contains("- Commit: `abc1234`"));
        assert!(md.contains("- CPU: Test CPU"));
        assert!(md.contains("**Warning:** the generator used more than 90 %"));
        assert!(md.contains("## S4 connect storm"));
        assert!(md.contains("| handshakes/s ↑ | 1 | — | — |"));
        assert!(md.contains("- ⚠ tb run 1: no report"));
        assert!(
            md.contains("```sh\ncargo build --release\n# hubbub\nPORT=$PORT taskset -c 0 hubbub\n")
        );
        assert!(md.contains("## S9 typing\n\n`hubbub-loadtest typing`\n\nServer environment: `PRESENCE=true`\n\n- skipped: tb (does not speak protocol v2)\n"), "{md}");
        assert!(md.contains(
            "| S9 chat latency p99 ÷ S1's | hubbub | 1.05× | ≤ 1.20× | **met** | S9 5.2 ÷ S1 4.95 |"
        ));
        assert!(
            md.contains("| S8 server RSS per subscription | hubbub | — | ≤ 64 B | unknown | x |")
        );
        assert!(md.contains("# s9 (server also with PRESENCE=true)\nhubbub-loadtest typing\n"));
        assert!(
            md.contains(
                "| S2 with defaults: delivery ratio | hubbub | 0.99950 | ≥ 0.999 | **met** | y |"
            ),
            "{md}"
        );
    }
}
