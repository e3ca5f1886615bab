//! A real `redis-server` (Debian's `redis-server` package, `/usr/bin/redis-server`), one
//! per test on a free loopback port, with nothing saved to disk: started as a child
//! process, killed by PID when dropped. No Redis client library is needed: readiness is
//! a `PING` over a plain `TcpStream`, and [`RedisServer::cli`] runs `redis-cli`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::Process;

/// Where Debian's package puts the server.
pub const REDIS_SERVER: &str = "/usr/bin/redis-server";
/// Where Debian's package puts the command-line client.
pub const REDIS_CLI: &str = "/usr/bin/redis-cli";

/// How long redis-server may take to answer its first PING (it needs a few ms).
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running (or, between [`stop`](RedisServer::stop) and [`start_again`](RedisServer::start_again),
/// stopped) redis-server on 127.0.0.1.
#[derive(Debug)]
pub struct RedisServer {
    /// `None` while stopped.
    process: Option<Process>,
    port: u16,
}

impl RedisServer {
    /// Starts redis-server on a free port and waits until it answers PING. Panics (saying
    /// how to install it) when it is not installed: tests that need it fail rather than
    /// skip.
    pub fn start() -> RedisServer {
        let mut server = RedisServer {
            process: None,
            port: crate::free_port(),
        };
        server.start_again();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port on 127.0.0.1 (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the process is running (not [`stop`](RedisServer::stop)ped).
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// Kills the process (SIGKILL, by PID) and reaps it; the port then refuses. All data
    /// is lost (nothing is saved). Does nothing if already stopped.
    pub fn stop(&mut self) {
        if let Some(process) = self.process.take() {
            drop(process);
        }
    }

    /// Starts the server again on the same port (empty) and waits until it answers PING.
    /// Does nothing if it is running.
    pub fn start_again(&mut self) {
        if self.process.is_some() {
            return;
        }
        assert!(
            Path::new(REDIS_SERVER).exists(),
            "redis-server not found: apt-get install redis-server"
        );
        let port = self.port;
        let process = Process::spawn(
            Command::new(REDIS_SERVER)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(["--protected-mode", "no", "--loglevel", "warning"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit()),
            "redis-server",
        );
        self.process = Some(process);
        let deadline = Instant::now() + START_TIMEOUT;
        while !ping(port) {
            if let Some(Ok(Some(status))) = self.process.as_mut().map(|p| p.try_wait()) {
                panic!("redis-server exited at start with {status} (port {port} taken?)");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on port {port} within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the server and starts it again on the same port: all data is lost, every
    /// client connection is cut.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Runs `redis-cli -p <port> args…` and returns its standard output. Panics with the
    /// command and its standard error when it cannot run or fails (redis-cli exits 0 on
    /// most server errors, printing `(error) …`: check the output where that matters).
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new(REDIS_CLI)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {REDIS_CLI} {args:?}: {e} (apt-get install redis-tools)")
            });
        assert!(
            output.status.success(),
            "redis-cli -p {} {args:?} failed with {}: {}",
            self.port,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a Redis on `port` answers `PING` with `+PONG`.
pub fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    if stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .is_err()
        || stream.write_all(b"PING\r\n").is_err()
    {
        return false;
    }
    let mut answer = [0u8; 7];
    let mut got = 0;
    while got < answer.len() {
        match stream.read(&mut answer[got..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    &answer == b"+PONG\r\n"
}
