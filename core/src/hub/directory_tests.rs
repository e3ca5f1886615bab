//! Unit tests of the rooms of the rooms API on one hub: what the owner refuses, and that
//! a refused subscription leaves no trace in the room.

use serde_json::Value;

use super::*;
use crate::upgrade::UpgradeRequest;

fn at(ms: u64) -> Now {
    Now::new(
        Mono::from_nanos(ms * 1_000_000),
        UnixMillis(1_795_257_000_000 + ms),
    )
}

/// Refuses every state write: the store's queue is full.
struct FullQueue;

impl PersistSink for FullQueue {
    fn try_push(&mut self, record: PersistRecord) -> Result<(), PersistRecord> {
        Err(record)
    }
    fn try_push_state(&mut self, write: StateWrite) -> Result<(), StateWrite> {
        Err(write)
    }
}

struct Bench {
    hub: Hub,
    frames: HashMap<ConnId, Vec<Value>>,
    closes: Vec<(ConnId, u16, &'static str)>,
    replies: Vec<Answer>,
    next_query: u64,
}

impl Bench {
    fn new(hub: Hub) -> Bench {
        Bench {
            hub,
            frames: HashMap::new(),
            closes: Vec::new(),
            replies: Vec::new(),
            next_query: 0,
        }
    }

    fn memory() -> Bench {
        let hub = Hub::new(HubConfig::new(WorkerId(0), 1), ConnectionGauge::new(100));
        Bench::new(hub)
    }

    fn pump(&mut self) {
        loop {
            match self.hub.poll_output() {
                Output::Timeout(_) => return,
                Output::Send { conn, frame } => self.record(conn, &frame),
                Output::Deliver { frame, to, .. } => {
                    for &c in to.iter() {
                        self.record(c, &frame);
                    }
                }
                Output::NotifyWritten { conn } => self.hub.handle_written(at(0), conn),
                Output::Close { conn, code, reason } => {
                    self.closes.push((conn, code, reason));
                    self.hub.handle_close(at(0), conn);
                }
                Output::Reply { answer, .. } => self.replies.push(answer),
                _ => {}
            }
        }
    }

    fn record(&mut self, conn: ConnId, frame: &[u8]) {
        let v: Value = serde_json::from_slice(frame).expect("every frame is JSON");
        self.frames.entry(conn).or_default().push(v);
    }

    fn open(&mut self, query: &str) -> ConnId {
        let req = UpgradeRequest {
            query,
            ..Default::default()
        };
        let adm = self.hub.admit(at(0), &req).expect("admitted");
        let c = self.hub.handle_open(at(0), adm);
        self.pump();
        c
    }

    fn ask(&mut self, query: Query) -> Answer {
        self.next_query += 1;
        self.hub
            .handle_query(at(0), QueryId(self.next_query), query);
        self.pump();
        self.replies.pop().expect("one worker answers at once")
    }

    fn room(
        &mut self,
        room: &str,
        by: &str,
        action: RoomAction,
    ) -> Result<RoomOutcome, RoomRefused> {
        let actor = Actor::User {
            id: by.to_owned(),
            admin: false,
        };
        match self.ask(Query::Room(RoomRequest {
            room: room.to_owned(),
            actor,
            action,
        })) {
            Answer::Room(outcome) => outcome,
            other => panic!("a room request answers Room, not {other:?}"),
        }
    }

    fn create(
        &mut self,
        room: &str,
        by: &str,
        visibility: Visibility,
    ) -> Result<RoomOutcome, RoomRefused> {
        let action = RoomAction::Create {
            name: room.to_owned(),
            visibility,
            members: Vec::new(),
        };
        self.room(room, by, action)
    }

    fn types(&self, conn: ConnId) -> Vec<String> {
        self.frames
            .get(&conn)
            .into_iter()
            .flatten()
            .map(|f| f["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

#[test]
fn a_refused_subscription_leaves_no_trace_in_the_room() {
    let mut b = Bench::memory();
    assert!(matches!(
        b.create("vip", "ann", Visibility::Private),
        Ok(RoomOutcome::Created(_))
    ));
    let ann = b.open("proto=2&userId=ann&room=vip");
    let eve = b.open("proto=2&userId=eve&room=vip");
    let refused = b.frames[&eve].last().cloned().unwrap_or_default();
    assert_eq!(
        (
            refused["type"].as_str(),
            refused["code"].as_str(),
            refused["roomId"].as_str()
        ),
        (Some("error"), Some("forbidden"), Some("vip")),
        "{refused}"
    );
    // Ann heard nothing of Eve; the room counts Ann alone.
    assert!(
        !b.types(ann).iter().any(|t| t == "presence"),
        "{:?}",
        b.types(ann)
    );
    let Answer::Rooms(rooms) = b.ask(Query::Rooms) else {
        panic!("rooms")
    };
    assert_eq!((rooms[0].connections, rooms[0].users), (1, 1), "{rooms:?}");
    // Eve's connection stays open, unsubscribed; closing it changes nothing of the room.
    b.hub.handle_close(at(1), eve);
    b.pump();
    let Answer::Rooms(rooms) = b.ask(Query::Rooms) else {
        panic!("rooms")
    };
    assert_eq!((rooms[0].connections, rooms[0].users), (1, 1), "{rooms:?}");
    // A v1 connection of a non-member is closed with 4004, before any frame of the room.
    let v1 = b.open("userId=eve&room=vip");
    assert_eq!(b.closes, [(v1, CLOSE_ROOM_REFUSED, "forbidden")]);
    assert!(b.types(v1).is_empty(), "{:?}", b.types(v1));
    assert_eq!(b.hub.counters.joins_refused, 2);
}

#[test]
fn a_change_the_store_cannot_take_is_refused_and_changes_nothing() {
    let hub = Hub::with_persist(
        HubConfig::new(WorkerId(0), 1),
        ConnectionGauge::new(10),
        Box::new(FullQueue),
    );
    let mut b = Bench::new(hub);
    assert_eq!(
        b.create("r", "ann", Visibility::Private),
        Err(RoomRefused::Overloaded)
    );
    let Ok(RoomOutcome::Room(view)) = b.room("r", "ann", RoomAction::Get) else {
        panic!("a room never made is public")
    };
    assert_eq!((view.visibility, view.owner), (Visibility::Public, None));
}

#[test]
fn a_hub_holds_at_most_its_share_of_rooms() {
    let mut b = Bench::memory();
    for i in 0..MAX_DIRECTORY_ROOMS {
        let made = b.create(&format!("r{i}"), "ann", Visibility::Public);
        assert!(made.is_ok(), "room {i}: {made:?}");
    }
    assert_eq!(
        b.create("one-more", "ann", Visibility::Public),
        Err(RoomRefused::TooManyRooms)
    );
}

#[test]
fn a_deleted_rooms_history_is_forgotten_and_its_id_stays_taken() {
    let mut b = Bench::memory();
    b.create("g", "ann", Visibility::Group).expect("made");
    let ann = b.open("proto=2&userId=ann&room=g");
    let chat = serde_json::json!({"type":"chat","roomId":"g","content":"secret"}).to_string();
    b.hub
        .handle_frame(at(1), ann, Inbound::Text(chat.as_bytes()));
    b.pump();
    assert_eq!(
        b.room("g", "ann", RoomAction::Delete),
        Ok(RoomOutcome::Deleted)
    );
    let last = b.frames[&ann].last().cloned().unwrap_or_default();
    assert_eq!(
        (last["type"].as_str(), last["reason"].as_str()),
        (Some("unsubscribed"), Some(UNSUBSCRIBED_ROOM_DELETED)),
        "{last}"
    );
    let Answer::Messages(page) = b.ask(Query::RoomMessages {
        room: "g".into(),
        limit: 50,
        cursor: PageCursor::Newest,
    }) else {
        panic!("messages")
    };
    assert!(page.frames.is_empty(), "the history went with the room");
    assert_eq!(
        b.room("g", "ann", RoomAction::Read),
        Err(RoomRefused::NotFound)
    );
    assert_eq!(
        b.create("g", "bob", Visibility::Public),
        Err(RoomRefused::Exists)
    );
}
