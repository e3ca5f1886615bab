//! The index's threads run at a lower CPU priority than the chat's workers.

/// Puts the calling thread in the idle scheduling class (`SCHED_IDLE`): it runs only on
/// a CPU nothing else wants, and a worker that wakes up takes the CPU at once. The
/// threads it starts inherit the class. A failure leaves the class as it was (logged).
pub(crate) fn idle() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is the calling
    // thread. Exercised by `tests::the_calling_thread_is_idle_class`.
    let failed = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 };
    if failed {
        tracing::debug!("the search index's threads keep their scheduling class");
    }
}

/// Sets the calling thread's nice value to `nice` (Linux keeps one per thread, and the
/// threads it starts inherit it). A failure leaves the priority as it was (logged).
pub(crate) fn lower(nice: i32) {
    // SAFETY: gettid(2) has no arguments and cannot fail; setpriority(2) only reads its
    // integer arguments. Exercised by `tests::the_calling_thread_is_niced`.
    let failed = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice) != 0
    };
    if failed {
        tracing::debug!(nice, "the search threads keep their priority");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_calling_thread_is_idle_class() {
        let policy = std::thread::spawn(|| {
            super::idle();
            // SAFETY: pid 0 is the calling thread.
            unsafe { libc::sched_getscheduler(0) }
        })
        .join()
        .unwrap();
        assert_eq!(policy, libc::SCHED_IDLE);
    }

    #[test]
    fn the_calling_thread_is_niced() {
        let seen = std::thread::spawn(|| {
            super::lower(7);
            // SAFETY: as in `lower`.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::getpriority(libc::PRIO_PROCESS, tid)
            }
        })
        .join()
        .unwrap();
        assert_eq!(seen, 7);
    }
}
