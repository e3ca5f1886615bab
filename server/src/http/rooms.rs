//! The rooms API (docs/PROTOCOL.md §4.5): `POST /api/rooms`, `GET`/`PATCH`/`DELETE
//! /api/rooms/{id}`, `PUT`/`DELETE /api/rooms/{id}/members/{userId}`, `GET
//! /api/users/{id}/rooms`, and the read check the history and presence endpoints run
//! first. The room's owner decides; this module turns requests into its questions and its
//! answers into bodies.

use hubbub_core::protocol::{member_role, CreateRoomBody, UpdateRoomBody};
use hubbub_core::{Actor, Answer, Query, RoomAction, RoomRequest};

use super::access::Caller;
use super::response::Response;
use super::{render, Context};

/// What a rooms API request asks, before its body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Create,
    Get,
    Update,
    Delete,
    SetMember,
    RemoveMember,
}

/// The actor a caller is to the room's owner; `Err` for a caller that may not ask at all.
fn actor(caller: Caller, manages: bool) -> Result<Actor, Response> {
    match caller {
        Caller::Open if manages => Err(Response::error(
            403,
            "auth_disabled",
            "rooms with members need token auth: set JWT_HS256_SECRET, JWT_RS256_PUBLIC_KEY_FILE or AUTH_SECRET",
        )),
        Caller::Open => Ok(Actor::Anyone),
        Caller::Anonymous => Err(super::access::token_required()),
        Caller::Operator => Ok(Actor::Operator),
        Caller::User(who) => Ok(Actor::User {
            id: who.user_id,
            admin: who.admin,
        }),
    }
}

/// Answers a rooms API request by `caller` about `room` (empty for a create without an
/// id) and, for the member routes, `user`.
pub(crate) async fn handle(
    ctx: &Context,
    caller: Caller,
    verb: Verb,
    room: String,
    user: Option<String>,
    body: &[u8],
) -> Response {
    let actor = match actor(caller, verb != Verb::Get) {
        Ok(actor) => actor,
        Err(refused) => return refused,
    };
    let (room, action) = match request(verb, room, user.unwrap_or_default(), body) {
        Ok(asked) => asked,
        Err(e) => return Response::error(400, e.code(), &e.to_string()),
    };
    let query = Query::Room(RoomRequest {
        room,
        actor,
        action,
    });
    match ctx.engine.query(query).await {
        Some(answer) => render::answer(&answer),
        None => render::unavailable(),
    }
}

fn request(
    verb: Verb,
    room: String,
    user: String,
    body: &[u8],
) -> Result<(String, RoomAction), hubbub_core::protocol::BodyError> {
    Ok(match verb {
        Verb::Create => {
            let b = CreateRoomBody::decode(body)?;
            let action = RoomAction::Create {
                name: b.name,
                visibility: b.visibility,
                members: b.members,
            };
            (b.room_id.unwrap_or_default(), action)
        }
        Verb::Get => (room, RoomAction::Get),
        Verb::Update => {
            let b = UpdateRoomBody::decode(body)?;
            let action = RoomAction::Update {
                name: b.name,
                visibility: b.visibility,
            };
            (room, action)
        }
        Verb::Delete => (room, RoomAction::Delete),
        Verb::SetMember => {
            let role = member_role(body)?;
            (room, RoomAction::SetMember { user, role })
        }
        Verb::RemoveMember => (room, RoomAction::RemoveMember { user }),
    })
}

/// Before a room's history or presence is read: may `caller` read it? `Err` is the
/// refusal to send instead.
pub(crate) async fn may_read(ctx: &Context, caller: Caller, room: &str) -> Result<(), Response> {
    let actor = actor(caller, false)?;
    let query = Query::Room(RoomRequest {
        room: room.to_owned(),
        actor,
        action: RoomAction::Read,
    });
    match ctx.engine.query(query).await {
        Some(Answer::Room(Ok(_))) => Ok(()),
        Some(Answer::Room(Err(refused))) => Err(render::room_refusal(refused)),
        Some(other) => Err(render::answer(&other)),
        None => Err(render::unavailable()),
    }
}

/// `GET /api/users/{id}/rooms`: with a durable store its per-user index names the rooms
/// (across restarts) and each room's owner answers for it; else the hubs know them.
pub(crate) async fn user_rooms(ctx: &Context, user: String) -> Response {
    let rooms = match &ctx.site.store {
        Some(bridge) => match bridge.user_rooms(&user).await {
            Ok(Ok(rooms)) => Some(rooms),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "a user's rooms from memory: the store did not answer");
                None
            }
            Err(_) => None,
        },
        None => None,
    };
    let query = Query::UserRooms {
        user: user.clone(),
        rooms,
    };
    match ctx.engine.query(query).await {
        Some(Answer::UserRooms(rooms)) => render::user_rooms(&user, &rooms),
        Some(other) => render::answer(&other),
        None => render::unavailable(),
    }
}
