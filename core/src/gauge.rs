//! The one piece of state the hubs share: how many connections are open in the whole
//! process, and the peak. Touched once per connect and disconnect, never per message.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Process-wide open-connection count, peak and limit, shared by every hub.
///
/// ```
/// use hubbub_core::ConnectionGauge;
/// let gauge = ConnectionGauge::new(1);
/// let first = gauge.try_reserve().expect("room for one");
/// assert!(gauge.try_reserve().is_none(), "at the limit");
/// drop(first); // an admission never used gives its place back
/// assert_eq!(gauge.current(), 0);
/// assert_eq!(gauge.peak(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct ConnectionGauge(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    current: AtomicUsize,
    peak: AtomicUsize,
    limit: usize,
}

impl ConnectionGauge {
    /// A gauge allowing at most `limit` open connections.
    pub fn new(limit: usize) -> Self {
        ConnectionGauge(Arc::new(Inner {
            current: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            limit,
        }))
    }

    /// Open connections (including admitted ones still upgrading).
    pub fn current(&self) -> usize {
        self.0.current.load(Ordering::Relaxed)
    }

    /// Most connections open at once since start.
    pub fn peak(&self) -> usize {
        self.0.peak.load(Ordering::Relaxed)
    }

    /// The configured limit.
    pub fn limit(&self) -> usize {
        self.0.limit
    }

    /// Takes a place for one connection, or `None` at the limit. The place is released
    /// when the returned [`Reservation`] is dropped.
    pub fn try_reserve(&self) -> Option<Reservation> {
        let inner = &self.0;
        let mut cur = inner.current.load(Ordering::Relaxed);
        loop {
            if cur >= inner.limit {
                return None;
            }
            match inner.current.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(seen) => cur = seen,
            }
        }
        inner.peak.fetch_max(cur + 1, Ordering::Relaxed);
        Some(Reservation(self.clone()))
    }
}

/// One connection's place in the [`ConnectionGauge`]; dropping it gives the place back.
#[derive(Debug)]
pub struct Reservation(ConnectionGauge);

impl Drop for Reservation {
    fn drop(&mut self) {
        self.0 .0.current.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_reservations_never_pass_the_limit() {
        let gauge = ConnectionGauge::new(100);
        let held: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..100)
                            .filter_map(|_| gauge.try_reserve())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(held.len(), 100);
        assert_eq!(gauge.current(), 100);
        drop(held);
        assert_eq!((gauge.current(), gauge.peak()), (0, 100));
    }
}
