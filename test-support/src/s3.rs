//! moto_server, an in-memory S3-API server (PyPI `moto[server]`, pinned in
//! `tools/moto/requirements.txt`), one per test on a free loopback port, killed by PID when
//! dropped. It does not check signatures: what a test relies on (sizes, existence,
//! metadata) it keeps as S3 does.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::Process;

/// moto needs ≈ 0.7 s to accept connections; a loaded CI machine more.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running moto_server.
pub struct Moto {
    _process: Process,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

/// `tools/moto/.venv/bin/moto_server`, where `. scripts/lib/moto.sh && setup_moto` (as
/// `scripts/test` does) puts it.
pub fn binary() -> PathBuf {
    crate::workspace_root().join("tools/moto/.venv/bin/moto_server")
}

impl Moto {
    /// Starts moto_server on a free port and makes `bucket` in it. Panics, saying how to
    /// install it, when it is not installed: tests that need it fail rather than skip.
    pub fn start_with_bucket(bucket: &str) -> Moto {
        let bin = binary();
        assert!(
            bin.exists(),
            "moto_server is not installed at {}: run `. scripts/lib/moto.sh && setup_moto` \
             (scripts/test does)",
            bin.display()
        );
        let port = crate::free_port();
        let process = Process::spawn(
            Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "moto_server",
        );
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {port} within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let made = crate::http::send(
            port,
            &format!("PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        )
        .expect("CreateBucket on moto_server");
        assert_eq!(made.status, 200, "CreateBucket {bucket}: {}", made.body);
        Moto {
            _process: process,
            port,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bytes of `key` in `bucket` (`None`: no such object; any other answer panics).
    pub fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let r = crate::http::send(
            self.port,
            // moto refuses anonymous reads; it checks that a request is signed, not how.
            &format!(
                "GET /{bucket}/{key} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
                 Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, \
                 SignedHeaders=host, Signature=0\r\n\r\n"
            ),
        )
        .expect("GetObject on moto_server");
        match r.status {
            200 => Some(r.body.into_bytes()),
            404 => None,
            other => panic!("GetObject {bucket}/{key}: {other} {}", r.body),
        }
    }
}
