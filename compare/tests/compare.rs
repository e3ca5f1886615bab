//! End-to-end check of `compare`: S3 at 1 % of its connections, one run per server,
//! against the release binaries. Ignored by default (CI builds debug only, and the run
//! takes a minute); run with `--ignored` it fails, saying what is missing, rather than
//! pass without running.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use hubbub_test_support::workspace_root;
use serde_json::Value;

/// How to build what the test needs and run it.
const HOW: &str = "cargo build --release -p hubbub-server -p hubbub-loadtest \
                   -p hubbub-reference-server && cargo test -p hubbub-compare -- --ignored";

/// `target/release` where `compare` will look for the binaries: under `CARGO_TARGET_DIR`
/// (relative to the workspace root) when it is set, as in `compare` itself.
fn release_dir() -> PathBuf {
    let root = workspace_root();
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| root.join(dir))
        .unwrap_or_else(|| root.join("target"))
        .join("release")
}

/// What the test needs and this machine lacks, if anything.
fn missing() -> Vec<String> {
    let release = release_dir();
    let mut missing: Vec<String> = ["hubbub", "hubbub-loadtest", "tokio-broadcast"]
        .iter()
        .map(|bin| release.join(bin))
        .filter(|bin| !bin.is_file())
        .map(|bin| format!("{} is not built", bin.display()))
        .collect();
    let taskset = Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !taskset.is_ok_and(|s| s.success()) {
        missing.push("taskset is not installed (util-linux)".into());
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        missing.push(format!("{cpus} CPU: the servers and the generator need 2"));
    }
    missing
}

#[test]
#[ignore = "needs the release binaries, taskset and 2 CPUs: cargo build --release -p hubbub-server -p hubbub-loadtest -p hubbub-reference-server && cargo test -p hubbub-compare -- --ignored"]
fn s3_scaled_down_side_by_side() {
    let missing = missing();
    assert!(
        missing.is_empty(),
        "cannot run the compare end-to-end test: {}\n(build and run with `{HOW}`)",
        missing.join("; ")
    );
    let dir = std::env::temp_dir().join(format!("hubbub-compare-test-{}", std::process::id()));
    let (md, json) = (dir.join("compare.md"), dir.join("compare.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_compare"))
        .args(["--no-build", "--scenarios", "s3", "--runs", "1"])
        .args(["--conns-scale", "0.01"])
        .arg("--root")
        .arg(workspace_root())
        .arg("--out-md")
        .arg(&md)
        .arg("--out-json")
        .arg(&json)
        .stderr(Stdio::inherit())
        .output()
        .expect("run compare");
    assert!(out.status.success(), "compare failed: {}", out.status);
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let written = std::fs::read_to_string(&md).expect("read the Markdown");
    assert_eq!(stdout, written);
    assert!(written.starts_with("# Side by side: hubbub vs tokio-broadcast"));
    assert!(written.contains("| server RSS growth per connection (B) ↓ |"));
    assert!(written.contains("idle --conns 180 "));

    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("read the JSON"))
        .expect("the JSON output parses");
    assert_eq!(v["runs"], 1);
    assert!(v["commit"].as_str().is_some_and(|c| !c.is_empty()));
    let s3 = &v["scenarios"][0];
    assert_eq!(s3["id"], "s3");
    let runs = s3["runs"].as_array().expect("runs");
    let order: Vec<&str> = runs.iter().filter_map(|r| r["server"].as_str()).collect();
    assert_eq!(order, ["hubbub", "tokio-broadcast"]);
    for r in runs {
        assert_eq!(r["report"]["mode"], "idle", "{r}");
        assert_eq!(r["report"]["connsOpened"], 180, "{r}");
    }
    let per = s3["figures"][0]["servers"].as_array().expect("servers");
    assert_eq!(per.len(), 2);
    assert_eq!(per[0]["ratioToFirst"], 1.0);
    for p in per {
        assert!(p["summary"]["median"].is_number(), "{p}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
