//! dynalite, an in-memory DynamoDB-API server (npm, pinned in `tools/dynalite`), one per
//! test on a free loopback port: the binary itself is started (not through `npx`, whose
//! PID is not the server's) and killed by PID when dropped.

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::Process;

/// How long dynalite may take to accept connections (it needs ≈ 0.25 s).
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running dynalite.
pub struct Dynalite {
    /// `None` once [`kill`](Dynalite::kill)ed.
    process: Option<Process>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

/// `tools/dynalite/node_modules/.bin/dynalite` of this workspace, where `npm ci` in
/// `tools/dynalite` (or `. scripts/lib/dynalite.sh && setup_dynalite`, as `scripts/test`
/// does) puts it.
pub fn binary() -> PathBuf {
    crate::workspace_root().join("tools/dynalite/node_modules/.bin/dynalite")
}

/// `http://127.0.0.1:<port>`: the endpoint of a dynalite on `port`, or of nothing there.
pub fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

impl Dynalite {
    /// Starts dynalite on a free port.
    pub fn start() -> Dynalite {
        Dynalite::start_on(crate::free_port())
    }

    /// Starts dynalite on `port` (tables ACTIVE at once after CreateTable, gone at once
    /// after DeleteTable) and waits until it accepts connections. Panics, saying how to
    /// install it, when it is not installed: tests that need it fail rather than skip.
    pub fn start_on(port: u16) -> Dynalite {
        let bin = binary();
        assert!(
            bin.exists(),
            "dynalite is not installed at {}: run `npm ci` in tools/dynalite \
             (or `. scripts/lib/dynalite.sh && setup_dynalite`; scripts/test does)",
            bin.display()
        );
        let process = Process::spawn(
            Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--createTableMs", "0", "--deleteTableMs", "0"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit()),
            "dynalite",
        );
        let mut dynalite = Dynalite {
            process: Some(process),
            port,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(Ok(Some(status))) = dynalite.process.as_mut().map(|p| p.try_wait()) {
                panic!("dynalite exited at start with {status} (port {port} taken?)");
            }
            assert!(
                Instant::now() < deadline,
                "dynalite did not answer on port {port} within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        dynalite
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        endpoint(self.port)
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the process, by PID.
    pub fn signal(&self, signal: &str) {
        self.process
            .as_ref()
            .expect("dynalite is running (not killed)")
            .signal(signal);
    }

    /// Kills the process (SIGKILL, by PID) and reaps it; the port then refuses.
    pub fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            // A stopped process must be continued to die cleanly on some systems.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(process.pid().to_string())
                .status();
            drop(process);
        }
    }

    /// The number of items in `table`, counted by one Scan with `Select: COUNT`: no index
    /// and no order involved (dynalite's index pagination over tied timestamps is not
    /// what the callers test). Needs no AWS SDK: dynalite checks a signature's shape,
    /// not its value.
    pub fn count_items_in(&self, table: &str) -> u64 {
        let body = serde_json::json!({ "TableName": table, "Select": "COUNT" }).to_string();
        let request = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.0\r\n\
             X-Amz-Target: DynamoDB_20120810.Scan\r\nX-Amz-Date: 20260101T000000Z\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("connect to dynalite on port {}: {e}", self.port));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set a read timeout on a connected socket");
        stream
            .write_all(request.as_bytes())
            .expect("send the Scan to dynalite");
        let response = crate::http::read_response(&mut stream).expect("dynalite's Scan answer");
        assert_eq!(response.status, 200, "Scan {table}: {}", response.body);
        let answer = response.json();
        assert!(
            answer.get("LastEvaluatedKey").is_none(),
            "one page holds them all: {answer}"
        );
        answer["Count"]
            .as_u64()
            .unwrap_or_else(|| panic!("no Count in the Scan answer {answer}"))
    }
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        self.kill();
    }
}
