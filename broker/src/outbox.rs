//! Delivery to the workers' bounded event channels, without ever waiting for a worker.
//!
//! - Answers (`Sequenced`, `Fetched`) are never dropped while there is room in the
//!   worker's overflow (bounded by `queue_size`): a full channel parks them, in order,
//!   until [`Outbox::flush`] finds room.
//! - Pub/sub messages are dropped when the worker's channel is full (or answers are
//!   parked before them); the worker then owes a `Resync`, sent as soon as it has room.

use std::collections::VecDeque;
use std::sync::Arc;

use futures_channel::mpsc::Sender;

use crate::shared::Shared;
use crate::BrokerEvent;

struct Lane {
    tx: Sender<BrokerEvent>,
    overflow: VecDeque<BrokerEvent>,
    owes_resync: bool,
}

/// The broker thread's ends of the workers' channels.
pub(crate) struct Outbox {
    lanes: Vec<Lane>,
    overflow_max: usize,
    shared: Arc<Shared>,
}

// A return value that hands the event back, never stored: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Sent {
    Ok,
    Full(BrokerEvent),
    Gone,
}

fn try_send(tx: &mut Sender<BrokerEvent>, event: BrokerEvent) -> Sent {
    match tx.try_send(event) {
        Ok(()) => Sent::Ok,
        Err(e) if e.is_full() => Sent::Full(e.into_inner()),
        Err(_) => Sent::Gone,
    }
}

impl Outbox {
    pub fn new(
        senders: Vec<Sender<BrokerEvent>>,
        overflow_max: usize,
        shared: Arc<Shared>,
    ) -> Self {
        Outbox {
            lanes: senders
                .into_iter()
                .map(|tx| Lane {
                    tx,
                    overflow: VecDeque::new(),
                    owes_resync: false,
                })
                .collect(),
            overflow_max: overflow_max.max(1),
            shared,
        }
    }

    pub fn workers(&self) -> usize {
        self.lanes.len()
    }

    fn dropped(&self) {
        Shared::add(&self.shared.events_dropped, 1);
    }

    /// Moves parked answers, then an owed `Resync`, into the worker's channel while it
    /// has room. Returns whether nothing is left waiting.
    fn flush_lane(&mut self, worker: usize) -> bool {
        let Some(lane) = self.lanes.get_mut(worker) else {
            return true;
        };
        while let Some(event) = lane.overflow.pop_front() {
            match try_send(&mut lane.tx, event) {
                Sent::Ok => {}
                Sent::Full(event) => {
                    lane.overflow.push_front(event);
                    return false;
                }
                Sent::Gone => {
                    let lost = lane.overflow.len() as u64 + 1;
                    lane.overflow.clear();
                    lane.owes_resync = false;
                    Shared::add(&self.shared.events_dropped, lost);
                    return true;
                }
            }
        }
        if lane.owes_resync {
            match try_send(&mut lane.tx, BrokerEvent::Resync) {
                Sent::Ok | Sent::Gone => lane.owes_resync = false,
                Sent::Full(_) => return false,
            }
        }
        true
    }

    /// Flushes every worker (the periodic task); returns whether nothing waits anywhere.
    pub fn flush(&mut self) -> bool {
        let mut clear = true;
        for worker in 0..self.lanes.len() {
            clear &= self.flush_lane(worker);
        }
        clear
    }

    /// An answer for `worker`: sent, or parked behind what already waits.
    pub fn answer(&mut self, worker: usize, event: BrokerEvent) {
        let clear = self.flush_lane(worker);
        let overflow_max = self.overflow_max;
        let Some(lane) = self.lanes.get_mut(worker) else {
            self.dropped();
            return;
        };
        if clear {
            match try_send(&mut lane.tx, event) {
                Sent::Ok => {}
                Sent::Gone => self.dropped(),
                Sent::Full(event) => lane.overflow.push_back(event),
            }
        } else if lane.overflow.len() < overflow_max {
            lane.overflow.push_back(event);
        } else {
            lane.owes_resync = true;
            self.dropped();
        }
    }

    /// A pub/sub message for `worker`: sent, or dropped (and a `Resync` owed).
    pub fn message(&mut self, worker: usize, event: BrokerEvent) {
        let clear = self.flush_lane(worker);
        let Some(lane) = self.lanes.get_mut(worker) else {
            self.dropped();
            return;
        };
        if clear {
            match try_send(&mut lane.tx, event) {
                Sent::Ok => return,
                Sent::Gone => return self.dropped(),
                Sent::Full(_) => {}
            }
        }
        lane.owes_resync = true;
        self.dropped();
    }

    /// Every worker should fetch the tails of its rooms.
    pub fn resync_all(&mut self) {
        for lane in &mut self.lanes {
            lane.owes_resync = true;
        }
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_channel::mpsc;

    fn drain(rx: &mut mpsc::Receiver<BrokerEvent>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(event) = rx.try_recv() {
            out.push(match event {
                BrokerEvent::Sequenced { token, .. } => format!("s{token}"),
                BrokerEvent::Resync => "resync".to_owned(),
                BrokerEvent::Fetched { .. } => "fetched".to_owned(),
                BrokerEvent::Message { message, .. } => format!("m{}", message.seq),
            });
        }
        out
    }

    fn seq(token: u64) -> BrokerEvent {
        BrokerEvent::Sequenced {
            token,
            result: Err(crate::BrokerDown),
        }
    }

    #[test]
    fn answers_wait_messages_drop_and_a_resync_follows() {
        let shared = Arc::new(Shared::default());
        // Capacity: buffer 1 + one sender = 2.
        let (tx, mut rx) = mpsc::channel(1);
        let mut outbox = Outbox::new(vec![tx], 8, shared.clone());
        outbox.answer(0, seq(1));
        outbox.answer(0, seq(2));
        outbox.answer(0, seq(3)); // parked
        outbox.message(
            0,
            BrokerEvent::Message {
                room: Arc::from("r"),
                epoch: Arc::from("e"),
                message: crate::wire::decode_line(
                    br#"c{"messageId":"m","roomId":"r","userId":"u","username":"U","content":"x","timestamp":"t","seq":0}"#,
                    5,
                )
                .expect("a line"),
            },
        ); // dropped: answers are parked
        assert_eq!(shared.stats().events_dropped, 1);
        assert_eq!(drain(&mut rx), vec!["s1", "s2"]);
        assert!(outbox.flush());
        assert_eq!(drain(&mut rx), vec!["s3", "resync"]);
        outbox.answer(1, seq(9)); // no such worker
        assert_eq!(shared.stats().events_dropped, 2);
    }
}
