//! Process figures from `/proc`: CPU time, resident memory, open descriptors, thread ids,
//! open-file limit.

use std::io;

/// Clock ticks per second for `/proc/*/stat` times.
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a configuration value; it has no memory side effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// utime + stime in nanoseconds from the text of a `/proc/<pid>/stat` file.
pub fn parse_stat_cpu_ns(stat: &str, ticks: u64) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: fields resume after the
    // last ')'. Field 3 (state) is then index 0, so utime (14) and stime (15) are 11, 12.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime).saturating_mul(1_000_000_000) / ticks.max(1))
}

/// CPU time (user + system) used so far by the process or thread whose stat file is
/// `path` (e.g. `/proc/self/stat`, `/proc/123/stat`, `/proc/self/task/456/stat`).
pub fn cpu_ns(path: &str) -> io::Result<u64> {
    let s = std::fs::read_to_string(path)?;
    parse_stat_cpu_ns(&s, clock_ticks())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("unparsable {path}")))
}

/// CPU time of process `pid`.
pub fn pid_cpu_ns(pid: u32) -> io::Result<u64> {
    cpu_ns(&format!("/proc/{pid}/stat"))
}

/// `VmRSS` of process `pid` in bytes.
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_rss(&s).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS"))
}

/// `VmRSS` in bytes from the text of a `/proc/<pid>/status` file.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line["VmRSS:".len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The calling thread's kernel id (for `/proc/self/task/<tid>/stat`).
pub fn gettid() -> i64 {
    // SAFETY: the gettid system call takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// Raises the soft open-file limit to the hard one (allowed without privileges) and
/// returns the resulting soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `want` is a valid rlimit; setrlimit only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is u64 here, not on every target
    Ok(lim.rlim_cur as u64)
}

/// Open file descriptors of process `pid` (entries in `/proc/<pid>/fd`; readable for
/// one's own processes).
pub fn fd_count(pid: u32) -> io::Result<u64> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64)
}

/// Files this process has open now.
pub fn open_files() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_and_status() {
        let stat = "42 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_stat_cpu_ns(stat, 100), Some(3_000_000_000));
        assert_eq!(parse_stat_cpu_ns("garbage", 100), None);
        assert_eq!(
            parse_vm_rss("Name: x\nVmRSS:\t  1234 kB\n"),
            Some(1234 * 1024)
        );
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn reads_this_process() {
        assert!(clock_ticks() > 0);
        let pid = std::process::id();
        assert!(pid_cpu_ns(pid).is_ok());
        assert!(rss_bytes(pid).unwrap() > 0);
        let tid = gettid();
        assert!(tid > 0);
        assert!(cpu_ns(&format!("/proc/self/task/{tid}/stat")).is_ok());
        let lim = raise_nofile_limit().unwrap();
        assert!(lim > 0 && open_files() > 0 && open_files() < lim);
        assert!(pid_cpu_ns(u32::MAX).is_err());
        // Other tests open and close files meanwhile: 64 more, give or take a few.
        let fds = fd_count(pid).unwrap();
        let extra: Vec<_> = (0..64)
            .map(|_| std::fs::File::open("/proc/self/status").unwrap())
            .collect();
        assert!(fd_count(pid).unwrap() >= fds + 48);
        drop(extra);
        assert!(fd_count(u32::MAX).is_err());
    }
}
