//! Which endpoint a request is for, and its answer.

use std::sync::Arc;

use hubbub_core::protocol::ChatMessage;
use hubbub_core::{
    history_limit, Answer, MessageList, MessagesOf, PageCursor, Query, StorageStatus,
};

use hubbub_search::{QueryRule, SearchError, SearchQuery, MAX_SEARCH_LIMIT};

use super::access::Caller;
use super::request::Head;
use super::response::Response;
use super::server_api::{self, Action};
use super::{files, prometheus, render, rooms, Context};

/// The endpoints of PROTOCOL.md §4.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Ws,
    Health,
    Analytics,
    Metrics,
    Rooms,
    /// `/api/rooms/{id}`.
    Room(String),
    /// `/api/rooms/{id}/members/{userId}`.
    RoomMember(String, String),
    /// `/api/users/{id}/rooms`.
    UserRooms(String),
    RoomMessages(String),
    /// `/api/rooms/{id}/search`.
    RoomSearch(String),
    /// `POST /api/rooms/{id}/uploads`.
    RoomUploads(String),
    /// `/api/files/{id}`.
    File(String),
    /// `/api/files/{id}/content` (its `PUT` is read by the connection).
    FileContent(String),
    RoomPresence(String),
    UsersPresence,
    UserMessages(String),
    /// `POST /api/server/{action}`.
    Server(Action),
    /// `POST /auth/signup`, `POST /auth/login`.
    Auth(crate::accounts::Action),
    /// Unknown under `/api/`.
    ApiNotFound,
    /// Anything else: the dashboard's files.
    Static,
}

fn route(path: &str) -> Route {
    match path {
        "/ws" => Route::Ws,
        "/health" => Route::Health,
        "/api/analytics" => Route::Analytics,
        "/metrics" => Route::Metrics,
        "/api/rooms" | "/api/rooms/" => Route::Rooms,
        "/api/presence" => Route::UsersPresence,
        "/auth/signup" => Route::Auth(crate::accounts::Action::Signup),
        "/auth/login" => Route::Auth(crate::accounts::Action::Login),
        _ if path.starts_with("/auth/") => Route::ApiNotFound,
        _ => {
            let Some(rest) = path.strip_prefix("/api/") else {
                return Route::Static;
            };
            let parts: Vec<&str> = rest.split('/').collect();
            match parts.as_slice() {
                ["rooms", id] if !id.is_empty() => Route::Room(decode(id)),
                ["rooms", id, "members", user] if !id.is_empty() && !user.is_empty() => {
                    Route::RoomMember(decode(id), decode(user))
                }
                ["users", id, "rooms"] if !id.is_empty() => Route::UserRooms(decode(id)),
                ["rooms", id, "messages"] if !id.is_empty() => Route::RoomMessages(decode(id)),
                ["rooms", id, "presence"] if !id.is_empty() => Route::RoomPresence(decode(id)),
                ["rooms", id, "search"] if !id.is_empty() => Route::RoomSearch(decode(id)),
                ["rooms", id, "uploads"] if !id.is_empty() => Route::RoomUploads(decode(id)),
                ["files", id] if !id.is_empty() => Route::File(decode(id)),
                ["files", id, "content"] if !id.is_empty() => Route::FileContent(decode(id)),
                ["users", id, "messages"] if !id.is_empty() => Route::UserMessages(decode(id)),
                ["server", name] => Action::named(name).map_or(Route::ApiNotFound, Route::Server),
                _ => Route::ApiNotFound,
            }
        }
    }
}

fn decode(segment: &str) -> String {
    percent_decode(segment)
}

/// Percent-decodes a path segment (`+` stays a plus sign).
fn percent_decode(s: &str) -> String {
    let escaped = s.replace('+', "%2B");
    form_urlencoded::parse(format!("v={escaped}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Which page of a room's history: `before` (a `seq`, 1 or more), `after` (a `seq`, 0
/// or more), or neither (the newest); a refusal is its `(code, message)`.
fn page_cursor(query: &str) -> Result<PageCursor, (&'static str, &'static str)> {
    let before = query_param(query, "before");
    let after = query_param(query, "after");
    match (before, after) {
        (Some(_), Some(_)) => Err(("invalid_cursor", "give before or after, not both")),
        (Some(raw), None) => match raw.parse::<u64>() {
            Ok(seq) if seq > 0 => Ok(PageCursor::Before(seq)),
            _ => Err((
                "invalid_before",
                "before must be a seq: an integer of 1 or more",
            )),
        },
        (None, Some(raw)) => raw.parse::<u64>().map(PageCursor::After).map_err(|_| {
            (
                "invalid_after",
                "after must be a seq: an integer of 0 or more",
            )
        }),
        (None, None) => Ok(PageCursor::Newest),
    }
}

/// The `users` of `GET /api/presence`: 1 to 100 distinct, comma-separated user ids, in
/// the order given.
fn presence_users(query: &str) -> Result<Vec<String>, &'static str> {
    const RULE: &str = "users must be 1 to 100 comma-separated user ids of 1 to 128 characters";
    let raw = query_param(query, "users").ok_or(RULE)?;
    let mut users: Vec<String> = Vec::new();
    for id in raw.split(',') {
        let n = id.chars().count();
        if n == 0 || n > hubbub_core::upgrade::MAX_USER_ID_CHARS {
            return Err(RULE);
        }
        if !users.iter().any(|u| u == id) {
            users.push(id.to_owned());
        }
    }
    if users.len() > hubbub_core::MAX_PRESENCE_QUERY_USERS {
        return Err(RULE);
    }
    Ok(users)
}

/// Answers one request (the WebSocket upgrade is handled before this).
pub(crate) async fn handle(ctx: &Context, head: &Head, body: &[u8]) -> Response {
    let site = &ctx.site;
    let r = route(&head.path);
    let api = !matches!(r, Route::Static | Route::Ws);
    let get = head.method == "GET" || head.method == "HEAD";
    let cors = |resp: Response| resp.cors(&site.cors, head.origin.as_deref());
    if api && head.method == "OPTIONS" {
        return cors(Response::json(204, "").header("Access-Control-Max-Age", "600"));
    }
    if let Route::Auth(action) = r {
        let resp = match (&site.accounts, head.method.as_str()) {
            (None, _) => Response::error(
                404,
                "not_found",
                "accounts are off: the server has no JWT_HS256_SECRET",
            ),
            (Some(accounts), "POST") => {
                let r = accounts.handle(action, body, head.peer).await;
                let resp = Response::json(r.status, r.body);
                match r.retry_after {
                    Some(secs) => resp.header("Retry-After", &secs.to_string()),
                    None => resp,
                }
            }
            (Some(_), _) => method_not_allowed(&head.method, "POST, OPTIONS"),
        };
        return cors(resp);
    }
    if let Route::Server(action) = r {
        let resp = if head.method == "POST" {
            server_api::handle(ctx, action, head, body).await
        } else {
            method_not_allowed(&head.method, "POST, OPTIONS")
        };
        return cors(resp);
    }
    if let Route::RoomUploads(room) = &r {
        let resp = if head.method == "POST" {
            files::upload(ctx, head, room.clone(), body).await
        } else {
            method_not_allowed(&head.method, "POST, OPTIONS")
        };
        return cors(resp);
    }
    if let Some((verb, allow)) = room_verb(&r, &head.method) {
        let resp = match verb {
            Some(verb) => match Caller::of(site, head) {
                Ok(caller) => {
                    let (room, user) = match r {
                        Route::Room(id) => (id, None),
                        Route::RoomMember(id, user) => (id, Some(user)),
                        _ => (String::new(), None),
                    };
                    rooms::handle(ctx, caller, verb, room, user, body).await
                }
                Err(refused) => refused,
            },
            None => method_not_allowed(&head.method, allow),
        };
        return cors(resp);
    }
    // An unknown endpoint is 404 whatever the method.
    if !get && r != Route::ApiNotFound {
        let allow = if api {
            "GET, HEAD, OPTIONS"
        } else {
            "GET, HEAD"
        };
        let resp = method_not_allowed(&head.method, allow);
        return if api { cors(resp) } else { resp };
    }
    let resp = match r {
        Route::Ws => Response::error(
            426,
            "upgrade_required",
            "GET /ws must be a WebSocket upgrade",
        )
        .header("Upgrade", "websocket"),
        Route::Health => {
            // No hub needed: the count is the process's, the status the bridge's.
            let storage = site
                .store
                .as_ref()
                .map_or(StorageStatus::Disabled, |b| b.status());
            render::health(site.gauge.current(), storage)
        }
        Route::Analytics => match snapshot(ctx).await {
            Some(mut snapshot) => {
                let caller = Caller::of(site, head);
                if !matches!(&caller, Ok(c) if c.sees_users()) {
                    // Aggregates stay open; who is connected needs an admin.
                    snapshot.active_user_details.clear();
                    snapshot.active_user_details_truncated = false;
                }
                if !matches!(&caller, Ok(c) if c.sees_unlisted_rooms()) {
                    snapshot.room_activity.retain(|r| r.listed);
                }
                Response::json(200, snapshot.to_json())
            }
            None => render::unavailable(),
        },
        Route::Metrics => match snapshot(ctx).await {
            Some(snapshot) => Response {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8".into(),
                headers: String::new(),
                body: prometheus::render(
                    &snapshot,
                    &site.figures,
                    site.accounts.as_ref().map(|a| &a.figures),
                    site.search.as_ref().map(|s| s.stats()),
                    site.files.as_ref().map(|f| f.stats()),
                )
                .into(),
            },
            None => render::unavailable(),
        },
        Route::Rooms
        | Route::RoomMessages(_)
        | Route::RoomSearch(_)
        | Route::RoomPresence(_)
        | Route::UsersPresence
        | Route::UserMessages(_)
        | Route::UserRooms(_) => match allowed(ctx, head, &r).await {
            Ok(()) => read(ctx, head, r).await,
            Err(refused) => refused,
        },
        // Answered above.
        Route::File(id) => files::redirect(ctx, head, &id).await,
        Route::FileContent(id) => files::content(ctx, head, &id).await,
        Route::Server(_)
        | Route::Auth(_)
        | Route::Room(_)
        | Route::RoomMember(..)
        | Route::RoomUploads(_) => return method_not_allowed(&head.method, "POST, OPTIONS"),
        Route::ApiNotFound => {
            Response::error(404, "not_found", &format!("no endpoint at {}", head.path))
        }
        Route::Static => {
            return match site.static_files.get(&head.path) {
                Some(resp) => resp,
                None if head.path == "/" => Response::error(
                    404,
                    "no_dashboard",
                    "the dashboard has not been built: run scripts/run, or npm run build in frontend/",
                ),
                None => Response::error(404, "not_found", &format!("no file at {}", head.path)),
            };
        }
    };
    if api {
        cors(resp)
    } else {
        resp
    }
}

/// Which rooms API request `method` on `r` is (`Some(None)`: a rooms API route that does
/// not take the method), with the methods the route takes; `None` for another route (a
/// `GET /api/rooms` is the room list, a read).
fn room_verb(r: &Route, method: &str) -> Option<(Option<rooms::Verb>, &'static str)> {
    use rooms::Verb;
    match (r, method) {
        (Route::Rooms, "POST") => Some((Some(Verb::Create), "")),
        (Route::Rooms, "GET" | "HEAD") => None,
        (Route::Rooms, _) => Some((None, "GET, HEAD, POST, OPTIONS")),
        (Route::Room(_), "GET" | "HEAD") => Some((Some(Verb::Get), "")),
        (Route::Room(_), "PATCH") => Some((Some(Verb::Update), "")),
        (Route::Room(_), "DELETE") => Some((Some(Verb::Delete), "")),
        (Route::Room(_), _) => Some((None, "GET, HEAD, PATCH, DELETE, OPTIONS")),
        (Route::RoomMember(..), "PUT") => Some((Some(Verb::SetMember), "")),
        (Route::RoomMember(..), "DELETE") => Some((Some(Verb::RemoveMember), "")),
        (Route::RoomMember(..), _) => Some((None, "PUT, DELETE, OPTIONS")),
        _ => None,
    }
}

/// May the caller read `r`: who they are (§4.3), and for a room's history and presence,
/// what its owner says.
async fn allowed(ctx: &Context, head: &Head, r: &Route) -> Result<(), Response> {
    let caller = Caller::of(&ctx.site, head)?;
    match r {
        Route::UserMessages(user) | Route::UserRooms(user) => caller.may_read_user(user),
        Route::RoomMessages(room) | Route::RoomPresence(room) | Route::RoomSearch(room) => {
            caller.may_read_rooms()?;
            rooms::may_read(ctx, caller, room).await
        }
        _ => caller.may_read_rooms(),
    }
}

/// The answer of a read endpoint the caller may read.
async fn read(ctx: &Context, head: &Head, r: Route) -> Response {
    match r {
        Route::UserRooms(user) => rooms::user_rooms(ctx, user).await,
        Route::RoomSearch(room) => search(ctx, head, room).await,
        Route::Rooms => match ctx.engine.query(Query::Rooms).await {
            Some(Answer::Rooms(mut rooms)) => {
                if !matches!(Caller::of(&ctx.site, head), Ok(c) if c.sees_unlisted_rooms()) {
                    rooms.retain(|r| r.listed);
                }
                render::answer(&Answer::Rooms(rooms))
            }
            Some(other) => render::answer(&other),
            None => render::unavailable(),
        },
        Route::RoomMessages(room) => {
            let limit = history_limit(query_param(&head.query, "limit").as_deref());
            match page_cursor(&head.query) {
                Err((code, message)) => Response::error(400, code, message),
                Ok(cursor) => match stored_room_page(ctx, &room, limit, cursor).await {
                    Some(list) => Response::json(200, render::messages_body(&list)),
                    None => {
                        let query = Query::RoomMessages {
                            room,
                            limit,
                            cursor,
                        };
                        asked(ctx, query).await
                    }
                },
            }
        }
        Route::RoomPresence(room) => asked(ctx, Query::RoomPresence { room }).await,
        Route::UsersPresence => match presence_users(&head.query) {
            Ok(users) => users_presence(ctx, users).await,
            Err(message) => Response::error(400, "invalid_users", message),
        },
        Route::UserMessages(user) => {
            let limit = history_limit(query_param(&head.query, "limit").as_deref());
            match stored_history(ctx, &user, limit).await {
                Some(list) => Response::json(200, render::messages_body(&list)),
                None => asked(ctx, Query::UserMessages { user, limit }).await,
            }
        }
        // `handle` sends only the read endpoints here.
        _ => Response::error(404, "not_found", &format!("no endpoint at {}", head.path)),
    }
}

/// `GET /api/rooms/{id}/search?q=&before=&limit=` for a caller who may read the room.
async fn search(ctx: &Context, head: &Head, room: String) -> Response {
    let Some(index) = &ctx.site.search else {
        return Response::error(404, "search_disabled", "message search is off (SEARCH=off)");
    };
    let q = query_param(&head.query, "q")
        .unwrap_or_default()
        .into_owned();
    if let Err(rule) = index.check(&q) {
        let message = match rule {
            QueryRule::TooManyTerms => "q must have at most 8 words",
            _ => "q must be 1 to 200 characters with a word in it",
        };
        return Response::error(400, "invalid_query", message);
    }
    let before = match page_cursor(&head.query) {
        Ok(PageCursor::Newest) => None,
        Ok(PageCursor::Before(seq)) => Some(seq),
        Ok(PageCursor::After(_)) => {
            return Response::error(400, "invalid_cursor", "search pages go back: give before")
        }
        Err((code, message)) => return Response::error(400, code, message),
    };
    let limit = match query_param(&head.query, "limit").map(|l| l.parse::<usize>()) {
        None => DEFAULT_SEARCH_LIMIT,
        Some(Ok(n)) if (1..=MAX_SEARCH_LIMIT).contains(&n) => n,
        Some(_) => {
            return Response::error(
                400,
                "invalid_limit",
                "limit must be an integer from 1 to 50",
            )
        }
    };
    let asked = SearchQuery {
        room: room.clone(),
        q: q.clone(),
        before,
        limit,
    };
    match index.search(asked).await {
        Ok(Ok(page)) => render::search_page(&room, &q, &page),
        Ok(Err(SearchError::Busy)) => {
            Response::error(503, "busy", "too many searches are waiting; retry")
                .header("Retry-After", "1")
        }
        Ok(Err(e)) => Response::error(503, "unavailable", &e.to_string()),
        Err(_) => render::unavailable(),
    }
}

/// Results a search page holds without `limit`.
const DEFAULT_SEARCH_LIMIT: usize = 20;

/// 405, with the methods the endpoint takes.
fn method_not_allowed(method: &str, allow: &str) -> Response {
    Response::error(
        405,
        "method_not_allowed",
        &format!("{method} is not allowed here"),
    )
    .header("Allow", allow)
}

/// The hubs' answer to `query`, rendered; a 503 if a worker did not answer in time.
async fn asked(ctx: &Context, query: Query) -> Response {
    match ctx.engine.query(query).await {
        Some(answer) => render::answer(&answer),
        None => render::unavailable(),
    }
}

/// Who of `users` is online, and when the others were last seen: the workers know their
/// own connections and the users whose last connection closed since start; with a durable
/// store, the state table knows the rest (across restarts).
async fn users_presence(ctx: &Context, users: Vec<String>) -> Response {
    let Some(answer) = ctx.engine.query(Query::UsersPresence { users }).await else {
        return render::unavailable();
    };
    let Answer::UsersPresence(mut statuses) = answer else {
        return render::answer(&answer);
    };
    if let Some(bridge) = &ctx.site.store {
        let unknown: Vec<usize> = (0..statuses.len())
            .filter(|&i| !statuses[i].online && statuses[i].last_seen.is_none())
            .collect();
        let ids = unknown
            .iter()
            .map(|&i| statuses[i].user_id.to_string())
            .collect();
        match bridge.last_seen(ids).await {
            Ok(Ok(found)) => {
                for (&i, at) in unknown.iter().zip(found) {
                    statuses[i].last_seen = at.map(hubbub_core::UnixMillis);
                }
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "last seen from memory only"),
            Err(_) => {}
        }
    }
    render::answer(&Answer::UsersPresence(statuses))
}

/// The merged analytics snapshot, with the persistence figures when a store runs.
async fn snapshot(ctx: &Context) -> Option<Box<hubbub_core::Snapshot>> {
    match ctx.engine.query(Query::Stats).await? {
        Answer::Stats(mut snapshot) => {
            if let Some(bridge) = &ctx.site.store {
                snapshot.persistence = bridge.stats();
            }
            Some(snapshot)
        }
        // The hubs answer `Stats` with nothing else (`Query`'s docs pair them).
        _ => None,
    }
}

/// A page of a room's history from the table: the newest, or with a cursor the `limit`
/// seqs below or above it (each seq once: a seq stored by two lives of the room is the
/// newer message), with its cursors. `None` as for [`stored_history`].
async fn stored_room_page(
    ctx: &Context,
    room: &str,
    limit: usize,
    cursor: PageCursor,
) -> Option<MessageList> {
    let bridge = ctx.site.store.as_ref()?;
    // The seqs `after < seq <= upto` of a page with a cursor.
    let range = match cursor {
        PageCursor::Newest => None,
        PageCursor::Before(b) => Some(((b - 1).saturating_sub(limit as u64), b - 1)),
        PageCursor::After(a) => Some((a, a.saturating_add(limit as u64))),
    };
    let messages = match range {
        None => from_store(bridge.room_history(room, limit).await)?,
        Some((after, upto)) => {
            let mut messages = from_store(bridge.load_range(room, after, upto).await)?;
            hubbub_core::protocol::one_per_seq(&mut messages);
            messages
        }
    };
    let mut list = message_list(MessagesOf::Room, room, &messages);
    let seqs = messages
        .first()
        .zip(messages.last())
        .map(|(a, b)| (a.seq, b.seq));
    list.next = Some(cursor.next(limit, seqs, messages.len()));
    Some(list)
}

/// The store's answer; `None` (logged) when it did not answer, so that memory does.
fn from_store<T>(
    answer: Result<
        Result<T, hubbub_persist_bridge::QueryError>,
        futures_channel::oneshot::Canceled,
    >,
) -> Option<T> {
    match answer {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "history from memory: the store did not answer");
            None
        }
        Err(_) => None,
    }
}

/// Messages as the history endpoints render them: each exactly as broadcast.
fn message_list(of: MessagesOf, id: &str, messages: &[ChatMessage]) -> MessageList {
    let frames = messages
        .iter()
        .map(|m| {
            let mut frame = Vec::with_capacity(256);
            hubbub_core::protocol::encode_chat_message(&mut frame, m);
            frame.into()
        })
        .collect();
    MessageList {
        of,
        id: Arc::from(id),
        frames,
        next: None,
    }
}

/// A user's history from the table; `None` (the store does not answer, or there is none)
/// means the in-memory history answers instead.
async fn stored_history(ctx: &Context, user: &str, limit: usize) -> Option<MessageList> {
    let bridge = ctx.site.store.as_ref()?;
    let messages = from_store(bridge.user_history(user, limit).await)?;
    Some(message_list(MessagesOf::User, user, &messages))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_before_a_seq_of_one_or_more_or_after_one_of_zero_or_more() {
        assert_eq!(page_cursor(""), Ok(PageCursor::Newest));
        assert_eq!(page_cursor("limit=5&before=42"), Ok(PageCursor::Before(42)));
        assert_eq!(page_cursor("after=0"), Ok(PageCursor::After(0)));
        for bad in ["before=0", "before=-1", "before=x", "before=", "before=1.5"] {
            assert_eq!(
                page_cursor(bad).map_err(|e| e.0),
                Err("invalid_before"),
                "{bad}"
            );
        }
        for bad in ["after=-1", "after=x", "after="] {
            assert_eq!(
                page_cursor(bad).map_err(|e| e.0),
                Err("invalid_after"),
                "{bad}"
            );
        }
        assert_eq!(
            page_cursor("before=5&after=2").map_err(|e| e.0),
            Err("invalid_cursor")
        );
    }

    #[test]
    fn users_are_distinct_ids_in_order_one_to_a_hundred() {
        assert_eq!(presence_users("users=b,a,b").unwrap(), ["b", "a"]);
        assert_eq!(presence_users("users=a%2Cb").unwrap(), ["a", "b"]);
        assert!(presence_users("").is_err());
        assert!(presence_users("users=").is_err());
        assert!(presence_users("users=a,,b").is_err());
        let many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
        assert!(presence_users(&format!("users={}", many.join(","))).is_err());
        assert_eq!(
            presence_users(&format!("users={}", many[..100].join(",")))
                .unwrap()
                .len(),
            100
        );
        assert!(presence_users(&format!("users={}", "x".repeat(129))).is_err());
    }

    #[test]
    fn routes() {
        assert_eq!(
            route("/api/rooms/a%3Ab/messages"),
            Route::RoomMessages("a:b".into())
        );
        assert_eq!(
            route("/api/users/x+y/messages"),
            Route::UserMessages("x+y".into())
        );
        assert_eq!(route("/api/users//messages"), Route::ApiNotFound);
        assert_eq!(
            route("/api/rooms/a%20b/presence"),
            Route::RoomPresence("a b".into())
        );
        assert_eq!(route("/api/nope"), Route::ApiNotFound);
        assert_eq!(route("/api/server/publish"), Route::Server(Action::Publish));
        assert_eq!(route("/api/server/reboot"), Route::ApiNotFound);
        assert_eq!(route("/index.html"), Route::Static);
        assert_eq!(query_param("a=1&limit=7", "limit").as_deref(), Some("7"));
    }
}
