//! End-to-end check of `compare`: S3 at 1 % of its connections, one run per server,
//! against the release binaries. Skipped (with a message) when they are not built, since
//! CI builds debug only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Why the test cannot run here, if it cannot.
fn missing() -> Option<String> {
    if std::env::var_os("CARGO_TARGET_DIR").is_some() {
        return Some("CARGO_TARGET_DIR is set".into());
    }
    let release = root().join("target").join("release");
    for bin in ["hubbub", "hubbub-loadtest", "tokio-broadcast"] {
        if !release.join(bin).is_file() {
            return Some(format!("{} is not built", release.join(bin).display()));
        }
    }
    let taskset = Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !taskset.is_ok_and(|s| s.success()) {
        return Some("taskset is not installed".into());
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        return Some("fewer than 2 CPUs".into());
    }
    None
}

#[test]
fn s3_scaled_down_side_by_side() {
    if let Some(why) = missing() {
        println!("skipping the compare end-to-end test: {why} (build with `cargo build --release -p hubbub-server -p hubbub-loadtest -p hubbub-benches`)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("hubbub-compare-test-{}", std::process::id()));
    let (md, json) = (dir.join("compare.md"), dir.join("compare.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_compare"))
        .args(["--no-build", "--scenarios", "s3", "--runs", "1"])
        .args(["--conns-scale", "0.01"])
        .arg("--root")
        .arg(root())
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

    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("read the JSON")).unwrap();
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
