//! Child processes that a test starts and must not leave behind.

use std::ops::{Deref, DerefMut};
use std::process::{Child, Command};

/// A child process that is killed (SIGKILL, by PID) and reaped when dropped, so that a
/// failing test leaves no server running. Derefs to the [`Child`] for `wait`, `try_wait`
/// and `id`.
#[derive(Debug)]
pub struct Process {
    child: Child,
}

impl Process {
    /// Spawns `command`; `what` names it in the panic message if it cannot start.
    pub fn spawn(command: &mut Command, what: &str) -> Process {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} ({command:?}): {e}"));
        Process { child }
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (a name as `kill` takes it: `TERM`, `INT`, `STOP`, `CONT`) by PID.
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }
}

/// Sends `signal` (`TERM`, `STOP`, …) to process `pid` with `kill(1)`.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill(1)");
    assert!(status.success(), "kill -{signal} {pid} failed: {status}");
}

impl Deref for Process {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.child
    }
}

impl DerefMut for Process {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Either may fail only because the process is already gone, which is the goal.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
