//! The hubs' answers (and the few figures the server holds itself) as JSON bodies, in
//! the shapes PROTOCOL.md §4 gives.

use bytes::Bytes;
use hubbub_core::{
    Answer, MessageList, PublishRefused, RoomActivity, RoomOutcome, RoomPresence, RoomRefused,
    RoomView, StorageStatus, UserRoom, UserStatus,
};
use serde::Serialize;

use super::response::Response;

/// The `200` answering a query, whatever the hubs answered with.
pub(crate) fn answer(answer: &Answer) -> Response {
    let body = match answer {
        Answer::Stats(snapshot) => Bytes::from(snapshot.to_json()),
        Answer::Rooms(rooms) => rooms_body(rooms),
        Answer::Messages(list) => messages_body(list),
        Answer::Presence(presence) => presence_body(presence),
        Answer::UsersPresence(users) => users_presence_body(users),
        Answer::Published(Ok(frame)) => return Response::json(201, frame.clone()),
        Answer::Published(Err(refused)) => {
            let code = match refused {
                PublishRefused::Overloaded => "overloaded",
                PublishRefused::Unavailable => "broker_unavailable",
                _ => "unavailable",
            };
            return Response::error(503, code, &refused.to_string());
        }
        Answer::Affected(n) => Bytes::from(format!("{{\"affected\":{n}}}")),
        Answer::Room(outcome) => return room_outcome(outcome),
        Answer::UserRooms(rooms) => return user_rooms("", rooms),
    };
    Response::json(200, body)
}

/// `GET /api/rooms/{id}/search`: `{"roomId","query","messages":[…],"nextBefore"}`, each
/// message exactly as broadcast.
pub(crate) fn search_page(room: &str, q: &str, page: &hubbub_search::SearchPage) -> Response {
    let size = 96 + q.len() + page.frames.iter().map(|f| f.len() + 1).sum::<usize>();
    let mut buf = Vec::with_capacity(size);
    buf.extend_from_slice(b"{\"roomId\":");
    buf.extend_from_slice(&sonic_rs::to_vec(room).unwrap_or_default());
    buf.extend_from_slice(b",\"query\":");
    buf.extend_from_slice(&sonic_rs::to_vec(q).unwrap_or_default());
    buf.extend_from_slice(b",\"messages\":[");
    for (i, f) in page.frames.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(f.as_bytes());
    }
    buf.extend_from_slice(b"],\"nextBefore\":");
    match page.next_before {
        Some(seq) => buf.extend_from_slice(seq.to_string().as_bytes()),
        None => buf.extend_from_slice(b"null"),
    }
    buf.push(b'}');
    Response::json(200, buf)
}

/// The `503` for a question a worker did not answer in time.
pub(crate) fn unavailable() -> Response {
    Response::error(
        503,
        "unavailable",
        "a worker did not answer in time; try again",
    )
}

/// `GET /health`: `{"status":"ok","clients":N,"storage":"…"}`.
pub(crate) fn health(clients: usize, storage: StorageStatus) -> Response {
    #[derive(Serialize)]
    struct Health<'a> {
        status: &'a str,
        clients: usize,
        storage: &'a str,
    }
    let body = sonic_rs::to_vec(&Health {
        status: "ok",
        clients,
        storage: storage.as_str(),
    })
    .unwrap_or_default();
    Response::json(200, body)
}

/// `{"roomId"|"userId":"<id>","count":N,"messages":[…]}`, each message exactly as
/// broadcast.
pub(crate) fn messages_body(list: &MessageList) -> Bytes {
    let size = 96 + list.frames.iter().map(|f| f.len() + 1).sum::<usize>();
    let mut buf = Vec::with_capacity(size);
    hubbub_core::protocol::encode_message_list(
        &mut buf,
        list.of.key(),
        &list.id,
        list.frames.iter().map(|f| &f[..]),
        list.next,
    );
    Bytes::from(buf)
}

/// `{"roomId":…,"online":N,"users":[{"userId","username","since"}],"truncated":false}`.
fn presence_body(p: &RoomPresence) -> Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct User<'a> {
        user_id: &'a str,
        username: &'a str,
        since: String,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        room_id: &'a str,
        online: usize,
        users: Vec<User<'a>>,
        truncated: bool,
    }
    let users = p
        .users
        .iter()
        .map(|u| User {
            user_id: &u.user_id,
            username: &u.username,
            since: u.since.to_rfc3339().as_str().to_owned(),
        })
        .collect();
    let body = Body {
        room_id: &p.room_id,
        online: p.online,
        users,
        truncated: p.truncated,
    };
    Bytes::from(sonic_rs::to_vec(&body).unwrap_or_default())
}

/// `{"users":{"<id>":{"online":bool,"lastSeen":"…Z"|null},…}}`, in the order asked.
fn users_presence_body(users: &[UserStatus]) -> Bytes {
    use serde::ser::SerializeMap;
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Status {
        online: bool,
        last_seen: Option<String>,
    }
    struct Users<'a>(&'a [UserStatus]);
    impl Serialize for Users<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for u in self.0 {
                let status = Status {
                    online: u.online,
                    last_seen: u.last_seen.map(|t| t.to_rfc3339().as_str().to_owned()),
                };
                map.serialize_entry(&*u.user_id, &status)?;
            }
            map.end()
        }
    }
    #[derive(Serialize)]
    struct Body<'a> {
        users: Users<'a>,
    }
    let body = Body {
        users: Users(users),
    };
    Bytes::from(sonic_rs::to_vec(&body).unwrap_or_default())
}

/// `{"rooms":[{"roomId":…,"connections":N,"users":N}]}`.
fn rooms_body(rooms: &[RoomActivity]) -> Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Room<'a> {
        room_id: &'a str,
        connections: u64,
        users: u64,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        rooms: Vec<Room<'a>>,
    }
    let rooms = rooms
        .iter()
        .map(|r| Room {
            room_id: &r.room_id,
            connections: r.connections,
            users: r.users,
        })
        .collect();
    Bytes::from(sonic_rs::to_vec(&Body { rooms }).unwrap_or_default())
}

/// What a rooms API request did, or why it was refused.
fn room_outcome(outcome: &Result<RoomOutcome, RoomRefused>) -> Response {
    match outcome {
        Ok(RoomOutcome::Created(room)) => Response::json(201, room_body(room)),
        Ok(RoomOutcome::Room(room)) => Response::json(200, room_body(room)),
        Ok(RoomOutcome::Deleted) => Response::json(204, ""),
        Ok(RoomOutcome::Allowed) => Response::json(200, "{}"),
        Err(refused) => room_refusal(*refused),
    }
}

/// A refused rooms API request: its status and code.
pub(crate) fn room_refusal(refused: RoomRefused) -> Response {
    let status = match refused {
        RoomRefused::NotFound => 404,
        RoomRefused::Forbidden => 403,
        RoomRefused::Exists | RoomRefused::Full => 409,
        RoomRefused::OwnerStays => 400,
        _ => 503,
    };
    Response::error(status, refused.code(), &refused.to_string())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MemberBody<'a> {
    user_id: &'a str,
    role: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RoomBody<'a> {
    room_id: &'a str,
    name: &'a str,
    visibility: &'static str,
    owner: Option<&'a str>,
    created_at: Option<String>,
    member_count: usize,
    members: Vec<MemberBody<'a>>,
    seq: u64,
    epoch: Option<&'a str>,
}

/// A room: `{"roomId","name","visibility","owner","createdAt","memberCount","members",
/// "seq","epoch"}`.
fn room_body(room: &RoomView) -> Vec<u8> {
    let body = RoomBody {
        room_id: &room.room_id,
        name: &room.name,
        visibility: room.visibility.as_str(),
        owner: room.owner.as_deref(),
        created_at: room.created_at.map(|t| t.to_rfc3339().to_string()),
        member_count: room.members.len(),
        members: room
            .members
            .iter()
            .map(|(u, r)| MemberBody {
                user_id: u,
                role: r.as_str(),
            })
            .collect(),
        seq: room.seq,
        epoch: Some(&*room.epoch).filter(|e| !e.is_empty()),
    };
    sonic_rs::to_vec(&body).unwrap_or_default()
}

/// `GET /api/users/{id}/rooms`:
/// `{"userId","rooms":[{"roomId","name","visibility","role","seq","lastRead","unread"}]}`.
pub(crate) fn user_rooms(user: &str, rooms: &[UserRoom]) -> Response {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Entry<'a> {
        room_id: &'a str,
        name: &'a str,
        visibility: &'static str,
        role: &'static str,
        seq: u64,
        last_read: u64,
        unread: u64,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        user_id: &'a str,
        rooms: Vec<Entry<'a>>,
    }
    let body = Body {
        user_id: user,
        rooms: rooms
            .iter()
            .map(|r| Entry {
                room_id: &r.room_id,
                name: &r.name,
                visibility: r.visibility.as_str(),
                role: r.role.as_str(),
                seq: r.seq,
                last_read: r.last_read,
                unread: r.unread(),
            })
            .collect(),
    };
    Response::json(200, sonic_rs::to_vec(&body).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hubbub_core::{MessagesOf, PresentUser, Role, UnixMillis, Visibility};

    use super::*;

    #[test]
    fn bodies_have_the_shapes_of_the_protocol() {
        let h = health(3, StorageStatus::Unavailable);
        assert_eq!(
            &h.body[..],
            br#"{"status":"ok","clients":3,"storage":"unavailable"}"#
        );
        let rooms = vec![RoomActivity {
            room_id: "a".into(),
            connections: 2,
            users: 1,
            messages: 9,
            listed: true,
        }];
        assert_eq!(
            &answer(&Answer::Rooms(rooms)).body[..],
            br#"{"rooms":[{"roomId":"a","connections":2,"users":1}]}"#
        );
        let list = MessageList {
            of: MessagesOf::User,
            id: Arc::from("u"),
            frames: vec![Bytes::from_static(br#"{"seq":1}"#)],
            next: None,
        };
        assert_eq!(
            &answer(&Answer::Messages(list)).body[..],
            br#"{"userId":"u","count":1,"messages":[{"seq":1}]}"#
        );
        let page = MessageList {
            of: MessagesOf::Room,
            id: Arc::from("r"),
            frames: vec![Bytes::from_static(br#"{"seq":7}"#)],
            next: Some((Some(7), None)),
        };
        assert_eq!(
            &answer(&Answer::Messages(page)).body[..],
            br#"{"roomId":"r","count":1,"messages":[{"seq":7}],"nextBefore":7,"nextAfter":null}"#
        );
        let presence = RoomPresence {
            room_id: Arc::from("r"),
            online: 2,
            users: vec![PresentUser {
                user_id: Arc::from("a"),
                username: Arc::from("A"),
                since: UnixMillis(0),
            }],
            truncated: true,
        };
        let users = vec![
            UserStatus {
                user_id: Arc::from("b"),
                online: false,
                last_seen: Some(UnixMillis(0)),
            },
            UserStatus {
                user_id: Arc::from("a"),
                online: true,
                last_seen: None,
            },
        ];
        assert_eq!(
            &answer(&Answer::UsersPresence(users)).body[..],
            &br#"{"users":{"b":{"online":false,"lastSeen":"1970-01-01T00:00:00.000Z"},"a":{"online":true,"lastSeen":null}}}"#[..]
        );
        assert_eq!(
            &answer(&Answer::Presence(presence)).body[..],
            &br#"{"roomId":"r","online":2,"users":[{"userId":"a","username":"A","since":"1970-01-01T00:00:00.000Z"}],"truncated":true}"#[..]
        );
    }

    #[test]
    fn a_refused_publish_names_its_cause() {
        for (refused, code) in [
            (PublishRefused::Overloaded, "overloaded"),
            (PublishRefused::Unavailable, "broker_unavailable"),
        ] {
            let resp = answer(&Answer::Published(Err(refused)));
            assert_eq!(resp.status, 503, "{refused:?}");
            let body = String::from_utf8_lossy(&resp.body).into_owned();
            assert!(body.contains(&format!("\"error\":\"{code}\"")), "{body}");
        }
    }

    #[test]
    fn refusals_have_their_statuses_and_codes() {
        let cases = [
            (RoomRefused::NotFound, 404, "room_not_found"),
            (RoomRefused::Forbidden, 403, "forbidden"),
            (RoomRefused::Exists, 409, "room_exists"),
            (RoomRefused::Full, 409, "room_full"),
            (RoomRefused::OwnerStays, 400, "invalid_member"),
            (RoomRefused::Overloaded, 503, "overloaded"),
            (RoomRefused::TooManyRooms, 503, "too_many_rooms"),
        ];
        for (refused, status, code) in cases {
            let resp = room_refusal(refused);
            assert_eq!(resp.status, status, "{refused:?}");
            let body = String::from_utf8_lossy(&resp.body).into_owned();
            assert!(body.contains(&format!("\"error\":\"{code}\"")), "{body}");
        }
    }

    #[test]
    fn a_room_body_has_the_documented_fields() {
        let room = RoomView {
            room_id: Arc::from("ops"),
            name: "Ops".into(),
            visibility: Visibility::Private,
            owner: Some(Arc::from("alice")),
            created_at: Some(UnixMillis(0)),
            members: vec![(Arc::from("alice"), Role::Admin)],
            seq: 3,
            epoch: "e1".into(),
        };
        let v: serde_json::Value = serde_json::from_slice(&room_body(&room)).expect("a JSON room");
        assert_eq!(v["visibility"], "private");
        assert_eq!(v["memberCount"], 1);
        assert_eq!(v["members"][0]["role"], "admin");
        assert_eq!(v["createdAt"], "1970-01-01T00:00:00.000Z");
        assert_eq!(
            (v["seq"].as_u64(), v["epoch"].as_str()),
            (Some(3), Some("e1"))
        );
    }
}
