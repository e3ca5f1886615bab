//! The engine: one worker's hub and the sockets of its WebSocket connections. It knows
//! nothing of HTTP: the HTTP side asks it questions and hands it upgraded connections
//! through a [`Handle`]; what it needs from outside (a room's stored state) it asks of
//! its [`Host`].
//!
//! One chat frame, hop by hop:
//! - [`reactor`]: the socket is ready; one `recv` into the worker's scratch buffer; the
//!   session's decoder turns the bytes into [`Inbound`](hubbub_core::Inbound)s for the hub.
//! - the hub decides (in `hubbub-core`); [`drain`] carries out its outputs: frames onto
//!   each recipient's [`outbox`], events to other workers over the [`mesh`].
//! - [`drain`] flushes: one send per connection owed frames, through the [`send_ring`]
//!   (io_uring) or straight to the socket; [`poller`] reports sockets and completions.

mod deadlines;
mod drain;
mod handle;
mod host;
pub(crate) mod mesh;
mod outbox;
mod poller;
mod reactor;
mod send_ring;
mod sessions;
mod tasks;
#[cfg(test)]
mod test_support;
mod wire;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use futures_channel::oneshot;
use hubbub_core::{
    Answer, ConnectionGauge, Hub, HubConfig, Mono, Now, PeerEvent, UnixMillis, WorkerId,
};

use crate::figures::ServerFigures;
use deadlines::CloseDeadlines;
use mesh::{Endpoint, Mesh};
use outbox::Outbox;
use poller::Poller;
use send_ring::SendRing;
use sessions::Sessions;

pub(crate) use handle::Handle;
pub(crate) use host::{FilesFuture, Host, LoadFuture, NoStore, RangeFuture};

/// What an engine is built from.
pub(crate) struct Parts {
    /// The hub's settings (its worker id among them).
    pub hub: HubConfig,
    /// The process's connection count and limit, shared by every hub.
    pub gauge: ConnectionGauge,
    /// Where the owners hand messages to store, with a durable store.
    pub persist: Option<Box<dyn hubbub_core::PersistSink>>,
    /// What the engine asks of the outside.
    pub host: Box<dyn Host>,
    /// The queues between workers.
    pub mesh: Arc<Mesh<PeerEvent>>,
    /// The monotonic epoch every worker measures from.
    pub epoch: Instant,
    /// Where the worker publishes its queue figures for `/metrics`.
    pub figures: Arc<ServerFigures>,
    /// What the sequencer of shared rooms tells this worker (`BROKER=redis`).
    pub shared: Option<SharedEvents>,
}

/// The sequencer's events for one worker, as the broker's thread queues them.
pub(crate) type SharedEvents = futures_channel::mpsc::Receiver<hubbub_core::SequencerEvent>;

/// One worker's hub and sockets. All its tasks run on the worker's thread.
pub(crate) struct Engine {
    id: WorkerId,
    epoch: Instant,
    hub: RefCell<Hub>,
    host: Box<dyn Host>,
    sessions: RefCell<Sessions>,
    poller: Poller,
    /// Where writes go; `None` where io_uring is unavailable (then `send`).
    ring: Option<SendRing>,
    mesh_queues: Arc<Mesh<PeerEvent>>,
    mesh: RefCell<Endpoint<PeerEvent>>,
    figures: Arc<ServerFigures>,
    queries: RefCell<HashMap<u64, oneshot::Sender<Answer>>>,
    next_query: Cell<u64>,
    ping: Bytes,
    max_queued: usize,
    /// Connections owed a flush once the hub's outputs are carried out.
    dirty: RefCell<Vec<Rc<Outbox>>>,
    /// When the chat messages delivered since the last flush were read: latency samples
    /// for the hub once the sends are out.
    delivered: RefCell<Vec<Mono>>,
    /// Connections whose written notice came due, for the hub.
    written: RefCell<Vec<hubbub_core::ConnId>>,
    /// A call up the stack is handing written notices to the hub.
    notifying: Cell<bool>,
    corked: Cell<bool>,
    /// Closing connections, cut off if they have not gone by their deadline.
    closing: CloseDeadlines,
    /// Where every connection of this worker reads into, one at a time.
    scratch: RefCell<Box<[u8]>>,
    /// Taken by `start`.
    shared: RefCell<Option<SharedEvents>>,
}

impl Engine {
    /// An engine with an empty hub. Must be called inside the worker's runtime.
    pub(crate) fn new(parts: Parts) -> std::io::Result<Rc<Engine>> {
        let id = parts.hub.worker;
        let poller = Poller::new()?;
        // On the epoll fallback (no io_uring for the runtime) writes go straight to the
        // sockets with send(2).
        let ring = if monoio::utils::is_legacy() {
            None
        } else {
            match SendRing::new() {
                Ok(ring) => {
                    poller.add(ring.fd(), sessions::RING_KEY)?;
                    Some(ring)
                }
                Err(e) => {
                    tracing::info!(worker = id.0, error = %e, "no send ring: writing with send(2)");
                    None
                }
            }
        };
        let max_queued = parts.hub.max_queued_bytes;
        let hub = match parts.persist {
            Some(sink) => Hub::with_persist(parts.hub, parts.gauge, sink),
            None => Hub::new(parts.hub, parts.gauge),
        };
        Ok(Rc::new(Engine {
            id,
            epoch: parts.epoch,
            mesh: RefCell::new(Endpoint::new(parts.mesh.clone(), id)),
            mesh_queues: parts.mesh,
            hub: RefCell::new(hub),
            host: parts.host,
            sessions: RefCell::new(Vec::new()),
            poller,
            ring,
            figures: parts.figures,
            queries: RefCell::new(HashMap::new()),
            next_query: Cell::new(0),
            ping: wire::ping(),
            max_queued,
            dirty: RefCell::new(Vec::new()),
            delivered: RefCell::new(Vec::new()),
            written: RefCell::new(Vec::new()),
            notifying: Cell::new(false),
            corked: Cell::new(false),
            closing: CloseDeadlines::default(),
            scratch: RefCell::new(vec![0; reactor::READ_BUDGET].into_boxed_slice()),
            shared: RefCell::new(parts.shared),
        }))
    }

    /// The time inputs for the hub.
    fn now(&self) -> Now {
        let mono = Mono::from_nanos(self.epoch.elapsed().as_nanos() as u64);
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Now::new(mono, UnixMillis(wall))
    }

    /// Runs `f` on the hub, then carries out everything it decided.
    fn with_hub<R>(self: &Rc<Self>, f: impl FnOnce(&mut Hub, Now) -> R) -> R {
        let now = self.now();
        let r = f(&mut self.hub.borrow_mut(), now);
        self.drain(now);
        r
    }
}
