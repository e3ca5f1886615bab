//! What the engine asks of the world outside it. Today: a room's stored state and stored
//! messages, with a durable store, and the files a message attaches. and the sequencer of rooms shared with other nodes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hubbub_core::protocol::ChatMessage;
use hubbub_core::{FileFacts, PersistRecord, StoredRoom};

/// A room's stored state as the hub takes it: its last `seq`, newest messages and read
/// markers, or `None` when the store could not say (the room starts afresh).
pub(crate) type LoadFuture = Pin<Box<dyn Future<Output = Option<StoredRoom>>>>;

/// A room's stored messages in a range of `seq`, or `None` when the store could not say
/// (the subscriber gets the backlog).
pub(crate) type RangeFuture = Pin<Box<dyn Future<Output = Option<Vec<ChatMessage>>>>>;

/// What a file store knows of each file a message names, or `None` when it could not say
/// (or there is no file store).
pub(crate) type FilesFuture = Pin<Box<dyn Future<Output = Option<Vec<Option<FileFacts>>>>>>;

/// The outside the engine depends on, implemented by the server's top (`store`) and by
/// tests.
pub(crate) trait Host {
    /// Loads `room`'s last `seq` and its newest `recent` messages. The future runs on
    /// the worker's thread; its answer goes to the hub.
    fn load_room(&self, room: Arc<str>, recent: usize) -> LoadFuture;

    /// Loads `room`'s messages with `after < seq <= upto` (any order).
    fn load_range(&self, room: Arc<str>, after: u64, upto: u64) -> RangeFuture;

    /// Looks up the files a message for `room` attaches. Without a file store: `None`
    /// (the send is refused with `files_unavailable`).
    fn check_files(&self, _room: Arc<str>, _files: Vec<Box<str>>) -> FilesFuture {
        Box::pin(std::future::ready(None))
    }

    /// Hands a shared room's message to the sequencer (`BROKER=redis`); its answer comes
    /// back among the worker's sequencer events. Never waits: `false` when it cannot
    /// take it now (or there is no broker), and the sender hears `broker_unavailable`.
    fn sequence(&self, _token: u64, _record: &PersistRecord, _epoch: &str, _floor: u64) -> bool {
        false
    }

    /// Asks the sequencer's log for a shared room's messages with `after < seq <= upto`;
    /// answered among the worker's sequencer events. `false` when it cannot ask now.
    fn fetch(&self, _room: Arc<str>, _after: u64, _upto: u64) -> bool {
        false
    }

    /// A shared room is no longer in use on this worker.
    fn unwatch(&self, _room: Arc<str>) {}
}

/// A host with nothing behind it: for the memory store, which never loads a room.
pub(crate) struct NoStore;

impl Host for NoStore {
    fn load_room(&self, _room: Arc<str>, _recent: usize) -> LoadFuture {
        // The hub asks only when it is durable, and it is durable only with a store.
        Box::pin(std::future::ready(None))
    }

    fn load_range(&self, _room: Arc<str>, _after: u64, _upto: u64) -> RangeFuture {
        Box::pin(std::future::ready(None))
    }
}
