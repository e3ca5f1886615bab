//! Rooms made through the rooms API, in the state table:
//! - a room: `PK = "room#<roomId>"`, `SK = "meta"`, with `Name`, `Visibility`, `Owner`,
//!   `CreatedAt` (N, Unix ms), `Members` (M: user id → role) and `Deleted` (BOOL), written
//!   whole at every change;
//! - the per-user index: `PK = "user#<userId>"`, `SK = "room#<roomId>"`, `Member` (BOOL),
//!   so `GET /api/users/{id}/rooms` finds a user's rooms after a restart.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use hubbub_core::{Role, RoomRecord, UnixMillis, Visibility};

use crate::dynamo::{classify, query_error};
use crate::error::{QueryError, WriteError};

/// Rooms listed for one user at most.
pub const MAX_USER_ROOMS: usize = 1000;

pub(crate) fn room_key(room: &str) -> (String, String) {
    (format!("room#{room}"), "meta".to_owned())
}

pub(crate) fn membership_key(user: &str, room: &str) -> (String, String) {
    (format!("user#{user}"), format!("room#{room}"))
}

/// The attributes of a room's item, besides its key.
pub(crate) fn room_attributes(record: &RoomRecord, item: &mut HashMap<String, AttributeValue>) {
    let members = record
        .members
        .iter()
        .map(|(u, r)| (u.clone(), AttributeValue::S(r.as_str().to_owned())))
        .collect();
    item.insert("Name".into(), AttributeValue::S(record.name.clone()));
    item.insert(
        "Visibility".into(),
        AttributeValue::S(record.visibility.as_str().to_owned()),
    );
    item.insert("Owner".into(), AttributeValue::S(record.owner.clone()));
    item.insert(
        "CreatedAt".into(),
        AttributeValue::N(record.created_at.0.to_string()),
    );
    item.insert("Members".into(), AttributeValue::M(members));
    item.insert("Deleted".into(), AttributeValue::Bool(record.deleted));
}

/// A room's record from its item; `None` for an item that is not a whole record.
pub(crate) fn room_of(room: &str, item: &HashMap<String, AttributeValue>) -> Option<RoomRecord> {
    let text = |name: &str| item.get(name)?.as_s().ok().cloned();
    let members = item
        .get("Members")?
        .as_m()
        .ok()?
        .iter()
        .filter_map(|(u, r)| Some((u.clone(), Role::parse(r.as_s().ok()?)?)))
        .collect();
    Some(RoomRecord {
        room_id: room.to_owned(),
        name: text("Name")?,
        visibility: Visibility::parse(&text("Visibility")?)?,
        owner: text("Owner")?,
        created_at: UnixMillis(item.get("CreatedAt")?.as_n().ok()?.parse().ok()?),
        members,
        deleted: matches!(item.get("Deleted"), Some(AttributeValue::Bool(true))),
    })
}

/// The record of `room`, if it was made through the rooms API; none if the state table
/// does not exist yet.
pub(crate) async fn record(
    client: &Client,
    table: &str,
    room: &str,
) -> Result<Option<RoomRecord>, QueryError> {
    let (pk, sk) = room_key(room);
    let out = client
        .get_item()
        .table_name(table)
        .key("PK", AttributeValue::S(pk))
        .key("SK", AttributeValue::S(sk))
        .consistent_read(true)
        .send()
        .await;
    match out {
        Ok(out) => Ok(out.item().and_then(|item| room_of(room, item))),
        Err(e) => match classify(&e) {
            WriteError::TableMissing(_) => Ok(None),
            other => Err(query_error(other)),
        },
    }
}

/// The rooms `user` is a member of, by the per-user index (at most [`MAX_USER_ROOMS`]).
pub(crate) async fn of_user(
    client: &Client,
    table: &str,
    user: &str,
) -> Result<Vec<String>, QueryError> {
    let mut rooms = Vec::new();
    let pk = format!("user#{user}");
    crate::state::items_under(client, table, pk, "room#", MAX_USER_ROOMS, |room, item| {
        let member = matches!(item.get("Member"), Some(AttributeValue::Bool(true)));
        if member {
            rooms.push(room.to_owned());
        }
        member
    })
    .await?;
    Ok(rooms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_its_item() {
        let record = RoomRecord {
            room_id: "team".into(),
            name: "Team".into(),
            visibility: Visibility::Group,
            owner: "alice".into(),
            created_at: UnixMillis(1_700_000_000_000),
            members: vec![("alice".into(), Role::Admin), ("bob".into(), Role::Member)],
            deleted: false,
        };
        let mut item = HashMap::new();
        room_attributes(&record, &mut item);
        let mut back = room_of("team", &item).expect("a whole record");
        back.members.sort();
        assert_eq!(back, record);
        item.remove("Owner");
        assert_eq!(room_of("team", &item), None);
    }
}
