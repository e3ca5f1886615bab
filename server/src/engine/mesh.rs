//! Cross-worker wiring: a full mesh of bounded single-producer queues (one per ordered
//! pair of workers) and one doorbell per worker.
//!
//! A sender pushes and rings the receiver's doorbell only if the receiver said it was
//! going to sleep, so a busy receiver is never woken per event — the wake-up round trip
//! costs tens of microseconds. A full queue hands the event back; the sender keeps it in
//! a local overflow list and retries, so nothing is lost and order per pair holds.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use atomic_waker::AtomicWaker;
use crossbeam_queue::ArrayQueue;
use hubbub_core::WorkerId;

struct Doorbell {
    waker: AtomicWaker,
    sleeping: AtomicBool,
    /// Set by the signal thread; the worker checks it whenever it wakes.
    shutdown: AtomicBool,
}

/// The shared part: every queue and doorbell, built before the workers start.
pub struct Mesh<T> {
    workers: usize,
    /// Events each queue holds; also the bound of each overflow list.
    capacity: usize,
    /// `queues[from * workers + to]`.
    queues: Vec<ArrayQueue<T>>,
    bells: Vec<Doorbell>,
}

impl<T> Mesh<T> {
    /// Queues of `capacity` events for every ordered pair of `workers` workers.
    pub fn new(workers: usize, capacity: usize) -> Arc<Mesh<T>> {
        Arc::new(Mesh {
            workers,
            capacity: capacity.max(1),
            queues: (0..workers * workers)
                .map(|_| ArrayQueue::new(capacity.max(1)))
                .collect(),
            bells: (0..workers)
                .map(|_| Doorbell {
                    waker: AtomicWaker::new(),
                    sleeping: AtomicBool::new(false),
                    shutdown: AtomicBool::new(false),
                })
                .collect(),
        })
    }

    /// Asks every worker to shut down.
    pub fn shutdown_all(&self) {
        for bell in &self.bells {
            bell.shutdown.store(true, Ordering::SeqCst);
            bell.waker.wake();
        }
    }
}

/// One worker's end of the mesh.
pub struct Endpoint<T> {
    mesh: Arc<Mesh<T>>,
    me: usize,
    /// Events a full queue handed back, per destination, oldest first.
    overflow: Vec<VecDeque<T>>,
}

impl<T> Endpoint<T> {
    /// Worker `me`'s end.
    pub fn new(mesh: Arc<Mesh<T>>, me: WorkerId) -> Endpoint<T> {
        let overflow = (0..mesh.workers).map(|_| VecDeque::new()).collect();
        Endpoint {
            mesh,
            me: me.index(),
            overflow,
        }
    }

    /// Sends `mail` to worker `to`; never blocks.
    pub fn send(&mut self, to: WorkerId, mail: T) {
        let to = to.index();
        if self.overflow[to].is_empty() {
            match self.mesh.queues[self.me * self.mesh.workers + to].push(mail) {
                Ok(()) => self.ring(to),
                Err(mail) => self.overflow[to].push_back(mail),
            }
        } else {
            self.overflow[to].push_back(mail);
        }
    }

    /// Whether events wait in overflow lists.
    pub fn has_overflow(&self) -> bool {
        self.overflow.iter().any(|q| !q.is_empty())
    }

    /// Whether the overflow toward some worker has reached the bound (as many events as
    /// a queue holds): that worker is not keeping up, and this one should stop taking in
    /// new work (reading its clients) until the overflow drains. Nothing is dropped.
    pub fn backed_up(&self) -> bool {
        let bound = self.mesh.capacity;
        self.overflow.iter().any(|q| q.len() >= bound)
    }

    /// Events waiting to reach other workers: in the queues from this worker and in its
    /// overflow lists.
    pub fn backlog(&self) -> usize {
        let queued: usize = (0..self.mesh.workers)
            .map(|to| self.mesh.queues[self.me * self.mesh.workers + to].len())
            .sum();
        queued + self.overflow.iter().map(VecDeque::len).sum::<usize>()
    }

    /// Moves overflowed events into their queues as room allows.
    pub fn retry_overflow(&mut self) {
        for to in 0..self.mesh.workers {
            let queue = &self.mesh.queues[self.me * self.mesh.workers + to];
            let mut moved = false;
            while let Some(mail) = self.overflow[to].pop_front() {
                if let Err(mail) = queue.push(mail) {
                    self.overflow[to].push_front(mail);
                    break;
                }
                moved = true;
            }
            if moved {
                self.ring(to);
            }
        }
    }

    fn ring(&self, to: usize) {
        let bell = &self.mesh.bells[to];
        if bell.sleeping.swap(false, Ordering::SeqCst) {
            bell.waker.wake();
        }
    }

    /// Takes up to `max` events addressed to this worker, from every sender in turn.
    pub fn drain(&self, max: usize, mut each: impl FnMut(T)) -> usize {
        let mut n = 0;
        for from in 0..self.mesh.workers {
            let queue = &self.mesh.queues[from * self.mesh.workers + self.me];
            while n < max {
                let Some(mail) = queue.pop() else { break };
                each(mail);
                n += 1;
            }
        }
        n
    }

    /// Whether shutdown was requested.
    pub fn shutdown_requested(&self) -> bool {
        self.mesh.shutdown_requested(WorkerId(self.me as u16))
    }
}

impl<T> Mesh<T> {
    fn inbox_empty(&self, me: usize) -> bool {
        (0..self.workers).all(|from| self.queues[from * self.workers + me].is_empty())
    }

    /// Whether shutdown was requested of worker `me`.
    pub fn shutdown_requested(&self, me: WorkerId) -> bool {
        self.bells[me.index()].shutdown.load(Ordering::SeqCst)
    }

    /// Waits until mail for worker `me` arrives, or (when `watch_shutdown`) shutdown is
    /// requested. A worker that has already acted on shutdown stops watching for it, or
    /// this would return at once forever.
    pub async fn wait(&self, me: WorkerId, watch_shutdown: bool) {
        let bell = &self.bells[me.index()];
        let ready =
            || !self.inbox_empty(me.index()) || (watch_shutdown && self.shutdown_requested(me));
        poll_fn(|cx| {
            if ready() {
                return Poll::Ready(());
            }
            bell.waker.register(cx.waker());
            bell.sleeping.store(true, Ordering::SeqCst);
            // Re-check after announcing sleep: a sender that pushed before seeing the flag
            // did not ring.
            if ready() {
                bell.sleeping.store(false, Ordering::SeqCst);
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take_all(ep: &Endpoint<u32>) -> Vec<u32> {
        let mut got = Vec::new();
        ep.drain(usize::MAX, |m| got.push(m));
        got
    }

    #[test]
    fn full_queue_overflows_in_order_and_retries() {
        let mesh = Mesh::new(2, 2);
        let mut a = Endpoint::new(mesh.clone(), WorkerId(0));
        let b = Endpoint::new(mesh, WorkerId(1));
        for i in 0..5 {
            a.send(WorkerId(1), i);
        }
        assert!(a.has_overflow());
        assert_eq!(take_all(&b), [0, 1]);
        a.retry_overflow();
        a.send(WorkerId(1), 5);
        assert_eq!(take_all(&b), [2, 3]);
        a.retry_overflow();
        assert_eq!(take_all(&b), [4, 5]);
        assert!(!a.has_overflow());
    }

    #[test]
    fn a_worker_is_backed_up_while_its_overflow_is_at_the_bound() {
        let mesh = Mesh::new(2, 2);
        let mut a = Endpoint::new(mesh.clone(), WorkerId(0));
        let b = Endpoint::new(mesh, WorkerId(1));
        for i in 0..3 {
            a.send(WorkerId(1), i);
        }
        assert_eq!(a.backlog(), 3);
        assert!(!a.backed_up(), "one event over: below the bound");
        a.send(WorkerId(1), 3);
        assert!(a.backed_up(), "as many waiting as a queue holds");
        assert_eq!(a.backlog(), 4);
        assert_eq!(take_all(&b), [0, 1]);
        a.retry_overflow();
        assert!(!a.backed_up(), "the receiver caught up");
        assert_eq!(take_all(&b), [2, 3], "nothing dropped, order kept");
        assert_eq!(a.backlog(), 0);
    }

    #[test]
    fn wakes_a_sleeping_worker_from_another_thread() {
        let mesh = Mesh::new(2, 16);
        let b = Endpoint::<u32>::new(mesh.clone(), WorkerId(1));
        let sender = std::thread::spawn(move || {
            let mut a = Endpoint::new(mesh, WorkerId(0));
            std::thread::sleep(std::time::Duration::from_millis(20));
            a.send(WorkerId(1), 7);
        });
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            b.mesh.wait(WorkerId(1), true).await;
            take_all(&b)
        });
        sender.join().unwrap();
        assert_eq!(got, [7]);
    }

    #[test]
    fn shutdown_wakes_every_worker() {
        let mesh = Mesh::<u32>::new(1, 4);
        let ep = Endpoint::new(mesh.clone(), WorkerId(0));
        std::thread::spawn(move || mesh.shutdown_all());
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .unwrap();
        rt.block_on(ep.mesh.wait(WorkerId(0), true));
        assert!(ep.shutdown_requested());
    }
}
