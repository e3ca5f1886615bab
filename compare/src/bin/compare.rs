//! `compare`: runs PERFORMANCE.md's scenarios against hubbub and tokio-broadcast (or any
//! server that speaks the chat subset), alternating the servers run by run, and writes the
//! medians side by side as Markdown and JSON.
//!
//! ```sh
//! cargo run --release -p hubbub-compare --bin compare -- --scenarios s1,s3,s4 --runs 3
//! ```
//!
//! S8 and S9 speak protocol v2: servers that do not (tokio-broadcast, any `--v1-only`)
//! are skipped for them. S2d, S3d and S4d are S2, S3 and S4 with the server's defaults
//! (presence on, the default rate limit). A scenario's targets are ratios to another
//! one run in the same session (S1 for S8 and S9, S2/S3/S4 for the defaults runs),
//! which is run too when not asked for; the targets are judged at the end.
//!
//! The pure parts (scenarios, figures, medians, Markdown) are in
//! [`hubbub_compare`].

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::Value;

use hubbub_compare::extract::generator_cpu;
use hubbub_compare::markdown;
use hubbub_compare::report::{
    lscpu_model, summarize_scenario, targets, utc_date, Comparison, RunRecord, ScenarioResult,
    ServerSpec,
};
use hubbub_compare::scenario::{parse_list, with_needed, Scenario};

const BUILD_ARGS: &[&str] = &[
    "build",
    "--release",
    "-p",
    "hubbub-server",
    "-p",
    "hubbub-loadtest",
    "-p",
    "hubbub-reference-server",
    "--bin",
    "hubbub",
    "--bin",
    "hubbub-loadtest",
    "--bin",
    "tokio-broadcast",
];

/// The environment every server gets besides `PORT`. `PIN_WORKERS=false` keeps hubbub
/// from re-pinning its worker to CPU 0 over the `taskset` mask.
const SERVER_ENV: &[(&str, &str)] = &[
    ("BIND", "127.0.0.1"),
    ("WORKERS", "1"),
    ("LOG_LEVEL", "warn"),
    ("RATE_LIMIT_PER_SEC", "0"),
    ("PRESENCE", "false"),
    ("PIN_WORKERS", "false"),
];

/// The servers known not to speak protocol v2 (skipped for S8 and S9).
const V1_ONLY: &[&str] = &["tokio-broadcast"];

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(10);
/// The longest a load generator run may take (every scenario's own time is well under a
/// minute); past it the run is killed and recorded as failed, and the next one starts.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Side-by-side benchmark: PERFORMANCE.md's scenarios against each server, alternating
/// servers run by run; writes medians [min–max] and ratios to the first server.
#[derive(Debug, Parser)]
#[command(name = "compare")]
struct Cli {
    /// Scenarios, comma-separated: s1, s2, s3, s4, s2d, s3d, s4d (S2–S4 with the
    /// server's defaults), s3v2d, s4v2d (the same with v2 clients), s8, s9 (protocol v2)
    /// or all. S8 and S9 bring S1 along, and
    /// S2d–S4d their PRESENCE=false twins, for their targets' ratios.
    #[arg(long, default_value = "all", value_parser = parse_scenarios)]
    scenarios: Scenarios,
    /// Runs per scenario and server.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Do not build the release binaries first.
    #[arg(long)]
    no_build: bool,
    /// Add or replace a server: NAME=COMMAND (run with `sh -c 'exec COMMAND'` from the
    /// workspace root; it gets PORT and BIND=127.0.0.1). Repeatable.
    #[arg(long = "server", value_name = "NAME=COMMAND", value_parser = parse_server)]
    servers: Vec<(String, String)>,
    /// The commit to record (default: `git rev-parse --short HEAD` in --root, `-dirty`
    /// with changes), e.g. when --root is an exported snapshot.
    #[arg(long)]
    commit: Option<String>,
    /// Alternate the scenarios too: run 1 of every scenario (each server in turn), then
    /// run 2, …, so that ratios between scenarios (S8 and S9 to S1, S2d–S4d to S2–S4)
    /// see the same drift of a shared machine.
    #[arg(long)]
    interleave: bool,
    /// Leave out a default server (`hubbub` or `tokio-broadcast`), e.g. to measure
    /// hubbub's own scenarios against each other (S8/S9 vs S1, S2d–S4d vs S2–S4) without
    /// building the reference server. Repeatable.
    #[arg(long = "without", value_name = "NAME")]
    without: Vec<String>,
    /// A server that does not speak protocol v2: skipped for S8 and S9 (tokio-broadcast
    /// always is). Repeatable.
    #[arg(long = "v1-only", value_name = "NAME")]
    v1_only: Vec<String>,
    /// CPUs the server is pinned to (taskset -c).
    #[arg(long, default_value = "0")]
    server_cpus: String,
    /// CPU the generator is pinned to (hubbub-loadtest --cpu).
    #[arg(long, default_value = "1")]
    generator_cpu: String,
    /// Markdown output (default: docs/compare.md under the workspace root).
    #[arg(long)]
    out_md: Option<PathBuf>,
    /// JSON output with every run (default: docs/compare.json under the workspace root).
    #[arg(long)]
    out_json: Option<PathBuf>,
    /// The workspace root (binaries are under target/release there).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/.."))]
    root: PathBuf,
    /// Multiply every scenario's --conns by this (for quick checks).
    #[arg(long, default_value_t = 1.0, hide = true, value_parser = positive_f64)]
    conns_scale: f64,
}

/// The scenarios asked for.
#[derive(Debug, Clone)]
struct Scenarios(Vec<&'static Scenario>);

fn parse_scenarios(s: &str) -> Result<Scenarios, String> {
    parse_list(s).map(Scenarios)
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} must be a positive number")),
    }
}

fn parse_server(s: &str) -> Result<(String, String), String> {
    let (name, cmd) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected NAME=COMMAND"))?;
    let name = name.trim();
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !ok {
        return Err(format!(
            "{name:?}: a server name is letters, digits, '-', '_' or '.'"
        ));
    }
    if cmd.trim().is_empty() {
        return Err(format!("{s:?}: empty command"));
    }
    Ok((name.to_string(), cmd.trim().to_string()))
}

/// `a` quoted for a POSIX shell when it needs it.
fn shell_quote(a: &str) -> String {
    let safe = !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%$".contains(c));
    if safe {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

fn shell_line<S: AsRef<str>>(args: &[S]) -> String {
    args.iter()
        .map(|a| shell_quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Output of a command, trimmed, or `None` if it failed.
fn capture(root: &Path, program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(root)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind a loopback port")?;
    Ok(l.local_addr().context("no local address")?.port())
}

/// A server process; killed on drop if it was not stopped.
struct Server {
    child: Child,
    done: bool,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the port accepts, or fails if the process exits or it takes too long.
    fn wait_ready(&mut self, port: u16) -> Result<()> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().context("cannot poll the server")? {
                self.done = true;
                bail!("the server exited before accepting: {status}");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if start.elapsed() > START_TIMEOUT {
                bail!("the server did not accept on port {port} within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether it already exited on its own (and how).
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, then SIGKILL after [`STOP_GRACE`]; waits for it.
    fn stop(mut self) -> Result<ExitStatus> {
        self.done = true;
        if let Some(status) = self.child.try_wait().context("cannot poll the server")? {
            return Ok(status);
        }
        let pid = libc::pid_t::try_from(self.child.id()).context("pid out of range")?;
        // SAFETY: kill(2) with a pid we spawned and have not reaped.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < STOP_GRACE {
            if let Some(status) = self.child.try_wait().context("cannot poll the server")? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("  server {pid} still running {STOP_GRACE:?} after SIGTERM: killing it");
        self.child.kill().context("cannot kill the server")?;
        self.child.wait().context("cannot wait for the server")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Env {
    root: PathBuf,
    loadtest: PathBuf,
    /// `loadtest` as recorded: relative to the root when under it.
    loadtest_shown: String,
    server_cpus: String,
    generator_cpu: String,
    logs: PathBuf,
}

impl Env {
    fn launch_line(&self, command: &str) -> String {
        let mut parts = vec!["PORT=$PORT".to_string()];
        parts.extend(SERVER_ENV.iter().map(|(k, v)| format!("{k}={v}")));
        parts.push(format!("taskset -c {}", shell_quote(&self.server_cpus)));
        parts.push(command.to_string());
        parts.join(" ")
    }

    fn start_server(
        &self,
        command: &str,
        port: u16,
        log: &Path,
        extra_env: &[(&str, &str)],
    ) -> Result<Server> {
        let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("cannot reopen {}", log.display()))?;
        let child = Command::new("taskset")
            .arg("-c")
            .arg(&self.server_cpus)
            .arg("sh")
            .arg("-c")
            .arg(format!("exec {command}"))
            .current_dir(&self.root)
            .env("PORT", port.to_string())
            .envs(SERVER_ENV.iter().copied())
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start `taskset -c {} {command}`", self.server_cpus))?;
        Ok(Server { child, done: false })
    }

    fn loadtest_args(&self, scn: &Scenario, scale: f64, port: &str, pid: &str) -> Vec<String> {
        let mut args = scn.scaled_args(scale);
        args.extend([
            "--url".to_string(),
            format!("ws://127.0.0.1:{port}/ws"),
            "--cpu".to_string(),
            self.generator_cpu.clone(),
            "--server-pid".to_string(),
            pid.to_string(),
            "--json".to_string(),
        ]);
        args
    }

    /// One run: start, wait, measure, stop.
    fn run_once(
        &self,
        scn: &Scenario,
        scale: f64,
        name: &str,
        command: &str,
        run: u32,
    ) -> Result<RunRecord> {
        let port = free_port()?;
        let log = self.logs.join(format!("{}-{name}-{run}.log", scn.id));
        let mut server = self.start_server(command, port, &log, scn.env)?;
        let pid = server.pid();
        let args = self.loadtest_args(scn, scale, &port.to_string(), &pid.to_string());
        let mut line = vec![self.loadtest_shown.clone()];
        line.extend(args.iter().cloned());
        let mut rec = RunRecord {
            server: name.to_string(),
            run,
            command: shell_line(&line),
            exit_code: None,
            error: None,
            report: None,
        };
        if let Err(e) = server.wait_ready(port) {
            rec.error = Some(format!("{e:#} (log: {})", log.display()));
            return Ok(rec);
        }
        let child = Command::new(&self.loadtest)
            .args(&args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot run {}", self.loadtest.display()))?;
        let out = output_within(child, RUN_TIMEOUT)?;
        let early = server.exited();
        let stopped = server.stop()?;
        rec.exit_code = out.status.code();
        let stdout = String::from_utf8_lossy(&out.stdout);
        rec.report = parse_report(&stdout);
        let mut errors = Vec::new();
        if rec.report.is_none() {
            errors.push(format!("hubbub-loadtest {}, no JSON report", out.status));
        } else if !matches!(rec.exit_code, Some(0 | 3)) {
            errors.push(format!("hubbub-loadtest {}", out.status));
        }
        if let Some(status) = early {
            errors.push(format!(
                "the server exited during the run ({status}; log: {})",
                log.display()
            ));
        } else if !stopped.success() && stopped.code().is_some() {
            errors.push(format!("the server stopped with {stopped}"));
        }
        if !errors.is_empty() {
            rec.error = Some(errors.join("; "));
        }
        Ok(rec)
    }
}

/// Waits for `child` and collects its stdout, killing it if it runs past `limit` (its
/// output so far is kept, and its status is then the kill's).
fn output_within(mut child: Child, limit: Duration) -> Result<std::process::Output> {
    use std::io::Read;
    let mut pipe = child.stdout.take().context("no stdout pipe")?;
    // Read on a thread so a large report cannot fill the pipe and stall the child.
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("cannot poll the load generator")? {
            break status;
        }
        if start.elapsed() > limit {
            eprintln!("  the load generator ran past {limit:?}: killing it");
            let _ = child.kill();
            break child.wait().context("cannot wait for the load generator")?;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = reader.join().unwrap_or_default();
    Ok(std::process::Output {
        status,
        stdout,
        stderr: Vec::new(),
    })
}

/// The report: all of stdout, or else its last line that parses.
fn parse_report(stdout: &str) -> Option<Value> {
    serde_json::from_str::<Value>(stdout.trim())
        .ok()
        .filter(Value::is_object)
        .or_else(|| {
            stdout
                .lines()
                .rev()
                .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
                .find(Value::is_object)
        })
}

fn brief(scn: &Scenario, rec: &RunRecord) -> String {
    let Some(rep) = &rec.report else {
        return format!("failed: {}", rec.error.as_deref().unwrap_or("?"));
    };
    let figs: Vec<String> = scn
        .figures()
        .iter()
        .filter_map(|f| {
            f.value(rep)
                .map(|v| format!("{} {}", f.label, markdown::fmt_num(v, f.decimals)))
        })
        .collect();
    let mut s = figs.join(", ");
    if let Some(c) = generator_cpu(rep) {
        if c > 90.0 {
            s.push_str(" [generator saturated]");
        }
    }
    if let Some(e) = &rec.error {
        s.push_str(&format!(" [{e}]"));
    }
    s
}

/// `path` relative to `root` when under it.
fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = cli
        .root
        .canonicalize()
        .with_context(|| format!("no workspace root at {}", cli.root.display()))?;
    let command = shell_line(&std::env::args().collect::<Vec<_>>());

    let build_command = (!cli.no_build).then(|| format!("cargo {}", BUILD_ARGS.join(" ")));
    if !cli.no_build {
        eprintln!("compare: cargo {}", BUILD_ARGS.join(" "));
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(BUILD_ARGS)
            .current_dir(&root)
            .status()
            .context("cannot run cargo")?;
        if !status.success() {
            bail!("the release build failed ({status})");
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|t| root.join(t))
        .unwrap_or_else(|| root.join("target"));
    let release = target.join("release");
    let loadtest = release.join("hubbub-loadtest");
    if !loadtest.is_file() {
        bail!(
            "{} does not exist (build it, or drop --no-build)",
            loadtest.display()
        );
    }
    // The default servers, by a path relative to the root when the target dir is the
    // usual one (so the recorded commands read well).
    let default_server = |bin: &str| {
        let path = release.join(bin);
        (bin.to_string(), shell_quote(&shown(&root, &path)), path)
    };
    let mut servers: Vec<(String, String)> = Vec::new();
    for (name, cmd, path) in [default_server("hubbub"), default_server("tokio-broadcast")] {
        if cli.without.contains(&name) {
            continue;
        }
        let replaced = cli.servers.iter().any(|(n, _)| *n == name);
        if !replaced && !path.is_file() {
            bail!(
                "server {name}: {} does not exist (build it, or drop --no-build)",
                path.display()
            );
        }
        servers.push((name, cmd));
    }
    for (name, cmd) in &cli.servers {
        match servers.iter_mut().find(|(n, _)| n == name) {
            Some(s) => s.1 = cmd.clone(),
            None => servers.push((name.clone(), cmd.clone())),
        }
    }
    if servers.is_empty() {
        bail!("no server left to measure (--without dropped them all)");
    }
    Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .context("taskset is needed to pin the servers (util-linux)")?;

    let logs = target.join("compare-logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let env = Env {
        root: root.clone(),
        loadtest_shown: shown(&root, &loadtest),
        loadtest,
        server_cpus: cli.server_cpus.clone(),
        generator_cpu: cli.generator_cpu.clone(),
        logs,
    };

    let v1_only = |name: &str| V1_ONLY.contains(&name) || cli.v1_only.iter().any(|n| n == name);
    let scenarios = with_needed(cli.scenarios.0.clone());
    for s in &scenarios {
        if !cli.scenarios.0.iter().any(|a| a.id == s.id) {
            eprintln!(
                "compare: adding {} (targets are ratios to it)",
                s.id.to_uppercase()
            );
        }
    }
    // Who runs each scenario, and who is skipped.
    type Plan<'a> = (Vec<&'a (String, String)>, Vec<String>);
    let plans: Vec<Plan<'_>> = scenarios
        .iter()
        .map(|scn| {
            let speaks = |name: &str| !(scn.v2 && v1_only(name));
            let here: Vec<&(String, String)> = servers.iter().filter(|(n, _)| speaks(n)).collect();
            let skipped: Vec<String> = servers
                .iter()
                .filter(|(n, _)| !speaks(n))
                .map(|(name, _)| format!("{name} (does not speak protocol v2)"))
                .collect();
            (here, skipped)
        })
        .collect();
    let mut all_runs: Vec<Vec<RunRecord>> = vec![Vec::new(); scenarios.len()];
    let mut run_one = |k: usize, run: u32| -> Result<()> {
        let scn = scenarios[k];
        for (name, cmd) in &plans[k].0 {
            let rec = env
                .run_once(scn, cli.conns_scale, name, cmd, run)
                .with_context(|| format!("{} run {run} against {name}", scn.id))?;
            eprintln!(
                "  {} {name} run {run}/{}: {}",
                scn.id,
                cli.runs,
                brief(scn, &rec)
            );
            all_runs[k].push(rec);
        }
        Ok(())
    };
    let announce = |k: usize| {
        eprintln!("compare: {}", scenarios[k].title);
        for s in &plans[k].1 {
            eprintln!("  skipping {s}");
        }
    };
    if cli.interleave {
        for k in 0..scenarios.len() {
            announce(k);
        }
        for run in 1..=cli.runs {
            for k in 0..scenarios.len() {
                run_one(k, run)?;
            }
        }
    } else {
        for k in 0..scenarios.len() {
            announce(k);
            for run in 1..=cli.runs {
                run_one(k, run)?;
            }
        }
    }
    let mut results = Vec::new();
    for (k, runs) in all_runs.into_iter().enumerate() {
        let scn = scenarios[k];
        let (here, skipped) = &plans[k];
        let skipped = skipped.clone();
        let here_names: Vec<String> = here.iter().map(|(n, _)| n.clone()).collect();
        let (figures, warnings) = if here.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            summarize_scenario(scn.figures(), &here_names, &runs)
        };
        let template = {
            let mut line = vec![env.loadtest_shown.clone()];
            line.extend(env.loadtest_args(scn, cli.conns_scale, "$PORT", "$PID"));
            shell_line(&line)
        };
        let title = if cli.conns_scale == 1.0 {
            scn.title.to_string()
        } else {
            format!("{} (scaled: --conns × {})", scn.title, cli.conns_scale)
        };
        results.push(ScenarioResult {
            id: scn.id.to_string(),
            title,
            loadtest_command: template,
            servers: here_names,
            skipped,
            server_env: scn.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            runs,
            figures,
            warnings,
        });
    }

    let from_git = || capture(&root, "git", &["rev-parse", "--short", "HEAD"]);
    let commit = cli.commit.clone().or_else(from_git).map(|c| {
        let dirty = capture(
            &root,
            "git",
            &["status", "--porcelain", "--untracked-files=no"],
        )
        .is_some_and(|s| !s.is_empty());
        if dirty {
            format!("{c}-dirty")
        } else {
            c
        }
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let comparison = Comparison {
        date: utc_date(now),
        commit: commit.unwrap_or_else(|| "unknown".into()),
        cpu_model: capture(&root, "lscpu", &[])
            .and_then(|o| lscpu_model(&o))
            .unwrap_or_else(|| "unknown".into()),
        command,
        build_command,
        server_cpus: cli.server_cpus.clone(),
        generator_cpu: cli.generator_cpu.clone(),
        runs: cli.runs,
        servers: servers
            .iter()
            .map(|(name, cmd)| ServerSpec {
                name: name.clone(),
                command: cmd.clone(),
                launch: env.launch_line(cmd),
            })
            .collect(),
        targets: targets(&results),
        scenarios: results,
    };
    for t in &comparison.targets {
        eprintln!(
            "compare: {} for {}: {} (limit {} {} {}): {}",
            t.target,
            t.server,
            t.value.map_or("unknown".into(), |v| format!("{v:.3}")),
            if t.at_least { ">=" } else { "<=" },
            t.limit,
            t.unit,
            match t.met {
                Some(true) => "met",
                Some(false) => "missed",
                None => "unknown",
            }
        );
    }

    let md = markdown::render(&comparison);
    print!("{md}");
    let out_md = cli
        .out_md
        .unwrap_or_else(|| root.join("docs").join("compare.md"));
    let out_json = cli
        .out_json
        .unwrap_or_else(|| root.join("docs").join("compare.json"));
    write_file(&out_md, &md)?;
    let json = serde_json::to_string_pretty(&comparison).context("cannot encode the results")?;
    write_file(&out_json, &(json + "\n"))?;
    eprintln!(
        "compare: wrote {} and {}",
        out_md.display(),
        out_json.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_parse() {
        assert_eq!(
            parse_server("go=./chat --fast").unwrap(),
            ("go".to_string(), "./chat --fast".to_string())
        );
        assert!(parse_server("nocommand").is_err());
        assert!(parse_server("bad name=x").is_err());
        assert!(parse_server("x=  ").is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(
            shell_line(&["a", "ws://127.0.0.1:1/ws", "b c", "it's"]),
            r"a ws://127.0.0.1:1/ws 'b c' 'it'\''s'"
        );
    }

    #[test]
    fn a_run_past_its_limit_is_killed_and_its_output_kept() {
        let spawn = |script: &str| {
            Command::new("sh")
                .arg("-c")
                .arg(script)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let start = Instant::now();
        let out = output_within(
            spawn("echo partial; exec sleep 30"),
            Duration::from_millis(300),
        )
        .unwrap();
        assert!(start.elapsed() < Duration::from_secs(5), "not waited out");
        assert!(!out.status.success());
        assert_eq!(out.stdout, b"partial\n");
        let out = output_within(spawn("echo '{\"a\":1}'"), Duration::from_secs(5)).unwrap();
        assert!(out.status.success());
        assert!(parse_report(&String::from_utf8_lossy(&out.stdout)).is_some());
    }

    #[test]
    fn reports_parse_from_noisy_stdout() {
        assert!(parse_report("{\"a\":1}\n").is_some());
        assert!(parse_report("progress\n{\"a\":1}\n").is_some());
        assert!(parse_report("nothing").is_none());
        assert!(parse_report("[1]").is_none());
    }
}
