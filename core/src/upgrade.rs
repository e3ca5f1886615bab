//! The upgrade request: query parameters, token and origin rules, and the refusals that
//! answer a bad one before any WebSocket frame (PROTOCOL.md §1).

use crate::auth::TokenError;

/// Most characters in a `userId`.
pub const MAX_USER_ID_CHARS: usize = 128;
/// The `username` of a connection that gives none.
pub const DEFAULT_USERNAME: &str = "Anonymous";

/// Most characters in a `username`, after trimming.
pub const MAX_USERNAME_CHARS: usize = 50;
/// Most bytes in a room id.
pub const MAX_ROOM_BYTES: usize = 128;

/// The validated parameters of a `GET /ws` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectParams {
    /// `userId`, default `anonymous` (replaced by the token's user when auth is on).
    pub user_id: String,
    /// `username`, trimmed, default `Anonymous`.
    pub username: String,
    /// `room`, default `global`.
    pub room: String,
    /// `since`: replay retained messages with a greater `seq` instead of the backlog.
    pub since: Option<u64>,
    /// `token`, if given in the query.
    pub token: Option<String>,
    /// `proto`: 1 (the default) or 2 (docs/PROTOCOL.md §7).
    pub proto: u8,
    /// `room` was in the query (a v2 connection subscribes to it only then).
    pub room_given: bool,
    /// `epoch`: v2, the epoch `since` belongs to.
    pub epoch: Option<String>,
}

/// A query parameter that breaks its rule (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// `userId` empty or over 128 characters.
    #[error("userId must be 1 to 128 characters")]
    UserId,
    /// `username` empty after trimming, over 50 characters, or with control characters.
    #[error("username must be 1 to 50 characters after trimming, with no control characters")]
    Username,
    /// `room` empty, over 128 bytes, or with characters other than letters, digits and `-_.:@`.
    #[error("room must be 1 to 128 of the characters A-Z a-z 0-9 - _ . : @")]
    Room,
    /// `since` is not an unsigned 64-bit integer.
    #[error("since must be a non-negative integer sequence number")]
    Since,
    /// `proto` other than 1 or 2.
    #[error("proto must be 1 or 2")]
    Proto,
    /// `epoch` over 32 bytes.
    #[error("epoch must be at most 32 bytes")]
    Epoch,
}

impl ParamError {
    /// The `error` code of the refusal body.
    pub const fn code(&self) -> &'static str {
        match self {
            ParamError::UserId => "invalid_user_id",
            ParamError::Username => "invalid_username",
            ParamError::Room => "invalid_room",
            ParamError::Since => "invalid_since",
            ParamError::Proto => "invalid_proto",
            ParamError::Epoch => "invalid_epoch",
        }
    }
}

impl ConnectParams {
    /// Parses and validates a raw (percent-encoded) query string. Unknown parameters are
    /// ignored; when a parameter repeats, the last one counts.
    ///
    /// ```
    /// use hubbub_core::upgrade::{ConnectParams, ParamError};
    /// let p = ConnectParams::parse("room=lobby&username=%20Alice%20&since=7").unwrap();
    /// assert_eq!((p.room.as_str(), p.username.as_str(), p.since), ("lobby", "Alice", Some(7)));
    /// assert_eq!(p.user_id, "anonymous");
    /// assert_eq!(ConnectParams::parse("room=a%20b"), Err(ParamError::Room));
    /// ```
    pub fn parse(query: &str) -> Result<Self, ParamError> {
        let mut params = ConnectParams {
            user_id: "anonymous".to_owned(),
            username: DEFAULT_USERNAME.to_owned(),
            room: "global".to_owned(),
            since: None,
            token: None,
            proto: 1,
            room_given: false,
            epoch: None,
        };
        // Judged after the loop: a repeated parameter takes its last value, even when an
        // earlier one was bad.
        let (mut since, mut proto) = (None, None);
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "userId" => params.user_id = value.into_owned(),
                "username" => params.username = value.trim().to_owned(),
                "room" => {
                    params.room = value.into_owned();
                    params.room_given = true;
                }
                "proto" => proto = Some(value),
                "epoch" => params.epoch = Some(value.into_owned()),
                "since" => since = Some(value),
                "token" => params.token = Some(value.into_owned()),
                _ => {}
            }
        }
        if let Some(since) = since {
            params.since = Some(since.parse().map_err(|_| ParamError::Since)?);
        }
        params.proto = match proto.as_deref() {
            None | Some("1") => 1,
            Some("2") => 2,
            Some(_) => return Err(ParamError::Proto),
        };
        let user_chars = params.user_id.chars().count();
        if user_chars == 0 || user_chars > MAX_USER_ID_CHARS {
            return Err(ParamError::UserId);
        }
        if valid_username(&params.username).is_none() {
            return Err(ParamError::Username);
        }
        if !valid_room(&params.room) {
            return Err(ParamError::Room);
        }
        if params
            .epoch
            .as_ref()
            .is_some_and(|e| e.len() > crate::protocol::MAX_EPOCH_BYTES)
        {
            return Err(ParamError::Epoch);
        }
        Ok(params)
    }
}

/// `name` trimmed, if it is a valid display name: 1 to 50 characters after trimming, none
/// of them a control character.
///
/// ```
/// use hubbub_core::upgrade::valid_username;
/// assert_eq!(valid_username("  Alice "), Some("Alice"));
/// assert_eq!(valid_username("  "), None);
/// assert_eq!(valid_username("a\u{7}b"), None);
/// ```
pub fn valid_username(name: &str) -> Option<&str> {
    let name = name.trim();
    let chars = name.chars().count();
    (chars > 0 && chars <= MAX_USERNAME_CHARS && !name.chars().any(char::is_control))
        .then_some(name)
}

/// Whether `room` is a valid room id: 1..=128 bytes of letters, digits and `-_.:@`.
///
/// ```
/// assert!(hubbub_core::upgrade::valid_room("team-1:eu@prod"));
/// assert!(!hubbub_core::upgrade::valid_room("a/b"));
/// ```
pub fn valid_room(room: &str) -> bool {
    !room.is_empty()
        && room.len() <= MAX_ROOM_BYTES
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b))
}

/// Which `Origin` headers may open a WebSocket and receive CORS grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// `*`: every origin.
    Any,
    /// Exactly these origins (compared as written, without a trailing `/`).
    List(Vec<String>),
}

impl AllowedOrigins {
    /// Parses `ALLOWED_ORIGINS`: `*` or a comma-separated list. Returns `None` for a list
    /// with no origin in it.
    ///
    /// ```
    /// use hubbub_core::upgrade::AllowedOrigins;
    /// let o = AllowedOrigins::parse("https://a.example, https://b.example/").unwrap();
    /// assert!(o.allows("https://b.example"));
    /// assert!(!o.allows("https://c.example"));
    /// assert!(AllowedOrigins::parse(" , ").is_none());
    /// ```
    pub fn parse(spec: &str) -> Option<Self> {
        let items: Vec<String> = spec
            .split(',')
            .map(|s| s.trim().trim_end_matches('/').to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if items.iter().any(|s| s == "*") {
            Some(AllowedOrigins::Any)
        } else if items.is_empty() {
            None
        } else {
            Some(AllowedOrigins::List(items))
        }
    }

    /// Whether `origin` is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            AllowedOrigins::Any => true,
            AllowedOrigins::List(list) => {
                let origin = origin.trim_end_matches('/');
                list.iter().any(|o| o.eq_ignore_ascii_case(origin))
            }
        }
    }
}

/// The parts of an upgrade request the core decides on.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpgradeRequest<'a> {
    /// The raw query string (after `?`), percent-encoded.
    pub query: &'a str,
    /// The `Origin` header, if any.
    pub origin: Option<&'a str>,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
}

impl<'a> UpgradeRequest<'a> {
    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer(&self) -> Option<&'a str> {
        let value = self.authorization?.trim();
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }
}

/// Why an upgrade was refused, with the HTTP status and JSON body it is answered with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// A query parameter breaks its rule: 400.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// Token missing, malformed, badly signed or expired: 401.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// `Origin` not allowed: 403.
    #[error("origin not allowed")]
    Origin,
    /// At the connection limit: 503.
    #[error("the server is at its connection limit")]
    AtCapacity,
    /// Shutting down: 503.
    #[error("the server is shutting down")]
    ShuttingDown,
}

impl Refusal {
    /// The HTTP status of the refusal.
    pub const fn status(&self) -> u16 {
        match self {
            Refusal::Param(_) => 400,
            Refusal::Token(_) => 401,
            Refusal::Origin => 403,
            Refusal::AtCapacity | Refusal::ShuttingDown => 503,
        }
    }

    /// The `error` code of the JSON body.
    pub const fn code(&self) -> &'static str {
        match self {
            Refusal::Param(p) => p.code(),
            Refusal::Token(_) => "unauthorized",
            Refusal::Origin => "forbidden_origin",
            Refusal::AtCapacity => "at_capacity",
            Refusal::ShuttingDown => "shutting_down",
        }
    }

    /// The JSON body `{"error":…,"message":…}`.
    pub fn body(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        crate::protocol::encode_http_error(&mut buf, self.code(), &self.to_string());
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let p = ConnectParams::parse("").unwrap();
        assert_eq!(
            (p.user_id.as_str(), p.username.as_str(), p.room.as_str()),
            ("anonymous", "Anonymous", "global")
        );
        assert_eq!((p.since, p.token), (None, None));
    }

    #[test]
    fn boundaries() {
        let ok = |q: String| ConnectParams::parse(&q);
        assert!(ok(format!("userId={}", "u".repeat(128))).is_ok());
        assert_eq!(
            ok(format!("userId={}", "u".repeat(129))),
            Err(ParamError::UserId)
        );
        assert_eq!(ok("userId=".into()), Err(ParamError::UserId));
        assert!(ok(format!("username={}", "é".repeat(50))).is_ok());
        assert_eq!(
            ok(format!("username={}", "n".repeat(51))),
            Err(ParamError::Username)
        );
        assert_eq!(ok("username=%20%20".into()), Err(ParamError::Username));
        assert_eq!(ok("username=a%07b".into()), Err(ParamError::Username));
        assert!(ok(format!("room={}", "r".repeat(128))).is_ok());
        assert_eq!(
            ok(format!("room={}", "r".repeat(129))),
            Err(ParamError::Room)
        );
        assert_eq!(ok("room=".into()), Err(ParamError::Room));
        assert_eq!(ok("room=%C3%A9".into()), Err(ParamError::Room));
        assert_eq!(ok("since=-1".into()), Err(ParamError::Since));
        assert_eq!(ok("proto=3".into()), Err(ParamError::Proto));
        assert_eq!(
            ok("proto=3&proto=2".into()).unwrap().proto,
            2,
            "the last one"
        );
        assert_eq!(ok("since=x&since=4".into()).unwrap().since, Some(4));
        assert_eq!(ok("proto=".into()), Err(ParamError::Proto));
        assert_eq!(ok("proto=2".into()).unwrap().proto, 2);
        assert_eq!(ok("".into()).unwrap().proto, 1);
        assert!(!ok("".into()).unwrap().room_given);
        assert!(ok("room=a".into()).unwrap().room_given);
        assert_eq!(
            ok(format!("epoch={}", "e".repeat(33))),
            Err(ParamError::Epoch)
        );
        assert_eq!(
            ok(format!("epoch={}", "e".repeat(32)))
                .unwrap()
                .epoch
                .map(|e| e.len()),
            Some(32)
        );
        assert_eq!(ok("since=1.5".into()), Err(ParamError::Since));
        assert_eq!(
            ok("since=18446744073709551616".into()),
            Err(ParamError::Since)
        );
        assert_eq!(
            ok("since=18446744073709551615".into()).unwrap().since,
            Some(u64::MAX)
        );
    }

    #[test]
    fn refusal_statuses_and_bodies() {
        assert_eq!(Refusal::from(ParamError::Room).status(), 400);
        assert_eq!(Refusal::from(TokenError::Expired).status(), 401);
        assert_eq!(Refusal::Origin.status(), 403);
        assert_eq!(Refusal::AtCapacity.status(), 503);
        let body: serde_json::Value = serde_json::from_slice(&Refusal::Origin.body()).unwrap();
        assert_eq!(body["error"], "forbidden_origin");
        assert!(body["message"].as_str().unwrap().contains("origin"));
    }

    #[test]
    fn bearer_header() {
        let r = UpgradeRequest {
            authorization: Some("Bearer abc.def"),
            ..Default::default()
        };
        assert_eq!(r.bearer(), Some("abc.def"));
        let r = UpgradeRequest {
            authorization: Some("Basic abc"),
            ..Default::default()
        };
        assert_eq!(r.bearer(), None);
    }
}
