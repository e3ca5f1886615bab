//! What the server itself counts, beside the hubs' analytics: open HTTP connections and,
//! per worker, what waits to be written or to cross to another worker. Each figure is
//! one atomic written by its owner (a worker's once per tick) and read by `/metrics`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// One worker's sampled queues (updated by its 250 ms tick).
#[derive(Debug, Default)]
pub struct WorkerFigures {
    /// Bytes queued or in flight to this worker's WebSocket connections.
    pub queued_bytes: AtomicU64,
    /// Events waiting to reach other workers (queues from this worker and its overflow).
    pub mesh_backlog: AtomicU64,
}

/// The server's own figures.
#[derive(Debug)]
pub struct ServerFigures {
    /// Accepted connections still speaking HTTP (not yet, or never, upgraded).
    http_connections: AtomicUsize,
    /// By worker id.
    pub workers: Box<[WorkerFigures]>,
}

impl ServerFigures {
    /// Figures for `workers` workers, all zero.
    pub fn new(workers: u16) -> ServerFigures {
        ServerFigures {
            http_connections: AtomicUsize::new(0),
            workers: (0..workers).map(|_| WorkerFigures::default()).collect(),
        }
    }

    /// Open HTTP connections.
    pub fn http_connections(&self) -> usize {
        self.http_connections.load(Relaxed)
    }

    /// Counts one more HTTP connection if `open_websockets` plus the HTTP ones stay below
    /// `limit` (every connection holds a descriptor, whatever it speaks); the place is
    /// given back when the returned guard drops. `None` at the limit.
    pub fn try_open_http(&self, open_websockets: usize, limit: usize) -> Option<HttpSlot<'_>> {
        let mut cur = self.http_connections.load(Relaxed);
        loop {
            if open_websockets.saturating_add(cur) >= limit {
                return None;
            }
            match self
                .http_connections
                .compare_exchange_weak(cur, cur + 1, Relaxed, Relaxed)
            {
                Ok(_) => return Some(HttpSlot(self)),
                Err(seen) => cur = seen,
            }
        }
    }
}

/// One open HTTP connection's place; dropping it gives the place back.
#[derive(Debug)]
pub struct HttpSlot<'a>(&'a ServerFigures);

impl Drop for HttpSlot<'_> {
    fn drop(&mut self) {
        self.0.http_connections.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_connections_share_the_limit_with_websockets() {
        let figures = ServerFigures::new(1);
        let first = figures.try_open_http(2, 4).expect("2 + 0 < 4");
        let second = figures.try_open_http(2, 4).expect("2 + 1 < 4");
        assert!(figures.try_open_http(2, 4).is_none(), "2 + 2 is the limit");
        assert_eq!(figures.http_connections(), 2);
        drop(first);
        assert!(figures.try_open_http(3, 4).is_none(), "3 + 1 is the limit");
        drop(second);
        assert_eq!(figures.http_connections(), 0);
    }
}
