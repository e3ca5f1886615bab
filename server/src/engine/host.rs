//! What the engine asks of the world outside it. Today: a room's stored state, with a
//! durable store. (Next: the broker between nodes.)

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hubbub_core::StoredRoom;

/// A room's stored state as the hub takes it: its last `seq`, newest messages and read
/// markers, or `None` when the store could not say (the room starts afresh).
pub(crate) type LoadFuture = Pin<Box<dyn Future<Output = Option<StoredRoom>>>>;

/// The outside the engine depends on, implemented by the server's top (`store`) and by
/// tests.
pub(crate) trait Host {
    /// Loads `room`'s last `seq` and its newest `recent` messages. The future runs on
    /// the worker's thread; its answer goes to the hub.
    fn load_room(&self, room: Arc<str>, recent: usize) -> LoadFuture;
}

/// A host with nothing behind it: for the memory store, which never loads a room.
pub(crate) struct NoStore;

impl Host for NoStore {
    fn load_room(&self, _room: Arc<str>, _recent: usize) -> LoadFuture {
        // The hub asks only when it is durable, and it is durable only with a store.
        Box::pin(std::future::ready(None))
    }
}
