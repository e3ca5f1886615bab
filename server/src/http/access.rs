//! Who may read what over HTTP (docs/PROTOCOL.md §4.3). Without token auth every read is
//! open, as in the original system; with it, the caller is whoever its `Authorization`
//! header proves.

use std::time::SystemTime;

use hubbub_core::auth::Identity;
use hubbub_core::UnixMillis;

use super::request::Head;
use super::response::Response;
use super::Site;

/// The caller of a read endpoint.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// Token auth is off: every read is open.
    Open,
    /// Auth is on and the request carries no credentials.
    Anonymous,
    /// A verified token's user.
    User(Identity),
    /// The server API's key (`Authorization: apikey …`): an operator reads everything.
    Operator,
}

impl Caller {
    /// Who `head` proves to be, or the 401 for credentials that do not hold (a bad key or
    /// token is refused, not read as no credentials).
    pub(crate) fn of(site: &Site, head: &Head) -> Result<Caller, Response> {
        if !site.auth.is_enabled() {
            return Ok(Caller::Open);
        }
        let Some(value) = head.authorization.as_deref().map(str::trim) else {
            return Ok(Caller::Anonymous);
        };
        let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("apikey") {
            return match &site.api_key {
                Some(key) if key.authorizes(Some(value)) => Ok(Caller::Operator),
                _ => Err(unauthorized("the API key is not valid", "apikey")),
            };
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(unauthorized(
                "Authorization must be `Bearer <token>` or `apikey <key>`",
                "Bearer",
            ));
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        match site.auth.verify(credential.trim(), UnixMillis(now)) {
            Ok(who) => Ok(Caller::User(who)),
            Err(e) => Err(unauthorized(
                &e.to_string(),
                &format!("Bearer error=\"{}\"", e.code()),
            )),
        }
    }

    /// May read a room's history and presence, the room list and users' presence: any
    /// verified caller (every room is public until rooms have members).
    pub(crate) fn may_read_rooms(&self) -> Result<(), Response> {
        match self {
            Caller::Anonymous => Err(token_required()),
            _ => Ok(()),
        }
    }

    /// May read `user`'s messages over all rooms: that user, an admin or an operator.
    pub(crate) fn may_read_user(&self, user: &str) -> Result<(), Response> {
        match self {
            Caller::Open | Caller::Operator => Ok(()),
            Caller::User(who) if who.admin || who.user_id == user => Ok(()),
            Caller::User(_) => Err(Response::error(
                403,
                "forbidden",
                "only that user or an admin may read a user's messages",
            )),
            Caller::Anonymous => Err(token_required()),
        }
    }

    /// Sees private rooms and groups in listings (`GET /api/rooms`, the analytics' rooms):
    /// who sees who is connected. Members find theirs in `GET /api/users/{id}/rooms`.
    pub(crate) fn sees_unlisted_rooms(&self) -> bool {
        self.sees_users()
    }

    /// Sees who is connected (`activeUserDetails`): an admin or an operator.
    pub(crate) fn sees_users(&self) -> bool {
        match self {
            Caller::Open | Caller::Operator => true,
            Caller::User(who) => who.admin,
            Caller::Anonymous => false,
        }
    }
}

pub(crate) fn token_required() -> Response {
    unauthorized(
        "this endpoint needs `Authorization: Bearer <token>`",
        "Bearer",
    )
}

fn unauthorized(message: &str, challenge: &str) -> Response {
    Response::error(401, "unauthorized", message).header("WWW-Authenticate", challenge)
}
