//! The JSON bodies of the rooms API (`POST`/`PATCH /api/rooms…`, `PUT
//! /api/rooms/{id}/members/{userId}`, docs/PROTOCOL.md §4.5).

use serde::Deserialize;

use super::server_api::{json, room, user, BodyError};
use crate::hub::{Role, Visibility, MAX_ROOM_MEMBERS, MAX_ROOM_NAME_CHARS};

/// `POST /api/rooms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRoomBody {
    /// The id asked for (the rules of the `room` parameter); `None` for the server to make
    /// one.
    pub room_id: Option<String>,
    /// Its name.
    pub name: String,
    /// Its visibility.
    pub visibility: Visibility,
    /// Users who join as members, distinct, in the order given.
    pub members: Vec<String>,
}

/// `PATCH /api/rooms/{id}`: what changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRoomBody {
    /// A new name.
    pub name: Option<String>,
    /// A new visibility.
    pub visibility: Option<Visibility>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoom {
    room_id: Option<String>,
    name: Option<String>,
    visibility: Option<String>,
    members: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawMember {
    role: Option<String>,
}

fn name(raw: String) -> Result<String, BodyError> {
    let n = raw.chars().count();
    if n == 0
        || n > MAX_ROOM_NAME_CHARS
        || raw.chars().any(char::is_control)
        || raw.trim().is_empty()
    {
        return Err(BodyError::InvalidName);
    }
    Ok(raw)
}

fn visibility(raw: &str) -> Result<Visibility, BodyError> {
    Visibility::parse(raw).ok_or(BodyError::InvalidVisibility)
}

impl CreateRoomBody {
    /// Decodes and validates a create body.
    ///
    /// ```
    /// use hubbub_core::protocol::{BodyError, CreateRoomBody};
    /// use hubbub_core::Visibility;
    /// let b = CreateRoomBody::decode(br#"{"name":"Ops","visibility":"private","members":["bob","bob"]}"#).unwrap();
    /// assert_eq!((b.room_id, b.visibility, b.members), (None, Visibility::Private, vec!["bob".to_owned()]));
    /// assert_eq!(CreateRoomBody::decode(br#"{"name":"x","visibility":"secret"}"#), Err(BodyError::InvalidVisibility));
    /// assert_eq!(CreateRoomBody::decode(br#"{"roomId":"a/b","name":"x","visibility":"public"}"#), Err(BodyError::InvalidRoom));
    /// ```
    pub fn decode(body: &[u8]) -> Result<CreateRoomBody, BodyError> {
        let raw: RawRoom = json(body, "roomId?, name, visibility, members?")?;
        let room_id = match raw.room_id {
            None => None,
            given => Some(room(given)?),
        };
        let name = name(raw.name.ok_or(BodyError::InvalidName)?)?;
        let visibility = visibility(raw.visibility.as_deref().unwrap_or_default())?;
        let given = raw.members.unwrap_or_default();
        if given.len() > MAX_ROOM_MEMBERS {
            return Err(BodyError::InvalidMembers);
        }
        let mut members: Vec<String> = Vec::with_capacity(given.len());
        for m in given {
            let m = user(Some(m)).map_err(|_| BodyError::InvalidMembers)?;
            if !members.contains(&m) {
                members.push(m);
            }
        }
        Ok(CreateRoomBody {
            room_id,
            name,
            visibility,
            members,
        })
    }
}

impl UpdateRoomBody {
    /// Decodes and validates a change: a `name`, a `visibility`, or both.
    ///
    /// ```
    /// use hubbub_core::protocol::{BodyError, UpdateRoomBody};
    /// let b = UpdateRoomBody::decode(br#"{"name":"Ops 2"}"#).unwrap();
    /// assert_eq!((b.name.as_deref(), b.visibility), (Some("Ops 2"), None));
    /// assert!(matches!(UpdateRoomBody::decode(b"{}"), Err(BodyError::InvalidBody(_))));
    /// ```
    pub fn decode(body: &[u8]) -> Result<UpdateRoomBody, BodyError> {
        let raw: RawRoom = json(body, "name?, visibility? (one at least)")?;
        if raw.room_id.is_some() || raw.members.is_some() {
            return Err(BodyError::InvalidBody(
                "name?, visibility? (the id and members change elsewhere)",
            ));
        }
        if raw.name.is_none() && raw.visibility.is_none() {
            return Err(BodyError::InvalidBody("name?, visibility? (one at least)"));
        }
        Ok(UpdateRoomBody {
            name: raw.name.map(name).transpose()?,
            visibility: raw.visibility.as_deref().map(visibility).transpose()?,
        })
    }
}

/// The role of `PUT /api/rooms/{id}/members/{userId}`: `{"role":…}`, or no body for
/// [`Role::Member`].
///
/// ```
/// use hubbub_core::protocol::{member_role, BodyError};
/// use hubbub_core::Role;
/// assert_eq!(member_role(b""), Ok(Role::Member));
/// assert_eq!(member_role(br#"{"role":"admin"}"#), Ok(Role::Admin));
/// assert_eq!(member_role(br#"{"role":"owner"}"#), Err(BodyError::InvalidRole));
/// ```
pub fn member_role(body: &[u8]) -> Result<Role, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Role::Member);
    }
    let raw: RawMember = json(body, "role?")?;
    match raw.role {
        None => Ok(Role::Member),
        Some(r) => Role::parse(&r).ok_or(BodyError::InvalidRole),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_to_a_hundred_printable_characters() {
        let body = |n: &str| {
            let name = sonic_rs::to_string(n).unwrap_or_default();
            format!(r#"{{"name":{name},"visibility":"public"}}"#)
        };
        assert!(CreateRoomBody::decode(body(&"é".repeat(100)).as_bytes()).is_ok());
        for bad in ["", "   ", "a\u{7}b"] {
            assert_eq!(
                CreateRoomBody::decode(body(bad).as_bytes()),
                Err(BodyError::InvalidName),
                "{bad:?}"
            );
        }
        assert_eq!(
            CreateRoomBody::decode(body(&"x".repeat(101)).as_bytes()),
            Err(BodyError::InvalidName)
        );
        assert_eq!(
            CreateRoomBody::decode(br#"{"visibility":"public"}"#),
            Err(BodyError::InvalidName)
        );
    }

    #[test]
    fn members_are_valid_ids_at_most_a_thousand() {
        let ids = |n: usize| {
            let list: Vec<String> = (0..n).map(|i| format!("\"u{i}\"")).collect();
            format!(
                r#"{{"name":"r","visibility":"group","members":[{}]}}"#,
                list.join(",")
            )
        };
        assert_eq!(
            CreateRoomBody::decode(ids(1000).as_bytes()).map(|b| b.members.len()),
            Ok(1000)
        );
        assert_eq!(
            CreateRoomBody::decode(ids(1001).as_bytes()),
            Err(BodyError::InvalidMembers)
        );
        assert_eq!(
            CreateRoomBody::decode(br#"{"name":"r","visibility":"group","members":[""]}"#),
            Err(BodyError::InvalidMembers)
        );
        assert!(matches!(
            CreateRoomBody::decode(br#"{"name":"r","visibility":"group","members":"bob"}"#),
            Err(BodyError::InvalidBody(_))
        ));
    }

    #[test]
    fn a_change_names_no_id_nor_members() {
        assert!(UpdateRoomBody::decode(br#"{"visibility":"group"}"#).is_ok());
        assert!(matches!(
            UpdateRoomBody::decode(br#"{"name":"n","members":[]}"#),
            Err(BodyError::InvalidBody(_))
        ));
        assert_eq!(
            UpdateRoomBody::decode(br#"{"visibility":"open"}"#),
            Err(BodyError::InvalidVisibility)
        );
    }
}
