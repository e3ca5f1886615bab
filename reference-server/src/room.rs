//! Rooms: one `tokio::sync::broadcast` channel each, and the registry that finds them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use hubbub_core::UnixMillis;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use uuid::Uuid;

use super::protocol::ChatMessage;

/// Messages a member may fall behind before it is closed as a slow consumer (1008).
pub const ROOM_CHANNEL_CAPACITY: usize = 1024;

/// One chat room. Every member holds a receiver of `tx`; a message is serialized once and
/// each member's writer gets a cheap reference-counted clone of the same bytes.
pub struct Room {
    id: String,
    tx: broadcast::Sender<Utf8Bytes>,
    /// The last `seq` handed out. The lock is held from taking the next number until the
    /// message is in the channel, so the channel order is the `seq` order: every member sees
    /// 1, 2, 3, … with no gap and no inversion even when members on different worker
    /// threads publish at the same time. (An `AtomicU64` alone would let two publishers
    /// take 5 and 6 and then send 6 before 5.)
    seq: Mutex<u64>,
}

impl Room {
    fn new(id: String) -> Self {
        let (tx, _) = broadcast::channel(ROOM_CHANNEL_CAPACITY);
        Room {
            id,
            tx,
            seq: Mutex::new(0),
        }
    }

    /// The room id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A receiver that gets every message published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Utf8Bytes> {
        self.tx.subscribe()
    }

    /// Assigns the next `seq`, stamps the message (UUID v7 and its millisecond as the
    /// timestamp, so the two always agree), serializes it once and broadcasts it to every
    /// member, the sender included. Returns the `seq`.
    pub fn publish(&self, user_id: &str, username: &str, content: &str) -> u64 {
        let mut seq = self.seq.lock().unwrap_or_else(PoisonError::into_inner);
        *seq += 1;
        let id = Uuid::now_v7();
        let millis = id.get_timestamp().map_or(0, |ts| {
            let (secs, nanos) = ts.to_unix();
            secs * 1000 + u64::from(nanos / 1_000_000)
        });
        let timestamp = UnixMillis(millis).to_rfc3339();
        let mut id_buf = Uuid::encode_buffer();
        let json = serde_json::to_string(&ChatMessage {
            message_id: id.hyphenated().encode_lower(&mut id_buf),
            room_id: &self.id,
            kind: "chat",
            user_id,
            username,
            content,
            timestamp: timestamp.as_str(),
            seq: *seq,
        })
        .expect("a struct of strings and integers always serializes");
        // `send` only fails when nobody is subscribed; the sender itself is, but either way
        // there is nobody to tell.
        let _ = self.tx.send(Utf8Bytes::from(json));
        *seq
    }
}

/// Every room that has ever had a member, by id.
///
/// Rooms are kept when their last member leaves, so that a room's `seq` keeps counting
/// (PROTOCOL.md: 1, 2, 3, … without gaps) instead of restarting at 1. The lock is taken
/// only when a connection joins; publishing goes straight to the member's `Arc<Room>`.
#[derive(Default)]
pub struct Rooms {
    map: Mutex<HashMap<String, Arc<Room>>>,
}

impl Rooms {
    /// The room `id`, created on first use.
    pub fn get_or_create(&self, id: &str) -> Arc<Room> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(room) = map.get(id) {
            return Arc::clone(room);
        }
        let room = Arc::new(Room::new(id.to_owned()));
        map.insert(id.to_owned(), Arc::clone(&room));
        room
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_is_sequenced_and_shared() {
        let rooms = Rooms::default();
        let room = rooms.get_or_create("lobby");
        assert!(Arc::ptr_eq(&room, &rooms.get_or_create("lobby")));
        let mut a = room.subscribe();
        let mut b = rooms.get_or_create("lobby").subscribe();
        assert_eq!(room.publish("u1", "U \"1\"", "hi"), 1);
        assert_eq!(room.publish("u2", "U2", "yo"), 2);
        let first = a.try_recv().unwrap();
        assert_eq!(first, b.try_recv().unwrap());
        let v: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(v["roomId"], "lobby");
        assert_eq!(v["type"], "chat");
        assert_eq!(v["userId"], "u1");
        assert_eq!(v["username"], "U \"1\"");
        assert_eq!(v["content"], "hi");
        assert_eq!(v["seq"], 1);
        let id = Uuid::parse_str(v["messageId"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7);
        let ts = v["timestamp"].as_str().unwrap();
        assert_eq!((ts.len(), &ts[19..20], &ts[23..]), (24, ".", "Z"));
        let second: serde_json::Value = serde_json::from_str(&a.try_recv().unwrap()).unwrap();
        assert_eq!(second["seq"], 2);
        assert_eq!(rooms.get_or_create("other").publish("u", "U", "x"), 1);
    }
}
