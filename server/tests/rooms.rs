//! The rooms API against the real binary (docs/PROTOCOL.md §4.3, §4.5): who may do what
//! to a room, every refusal, membership deciding who may subscribe and read, removal and
//! deletion ending subscriptions, a user's rooms with their unread counts, and rooms kept
//! in the DynamoDB state table across a restart.

mod common;

use serde_json::{json, Value};

use common::tokens::{token_of, HS_SECRET};
use common::v2::{assert_error, V2};
use common::{assert_refused, call, Server};
use hubbub_test_support::dynalite::Dynalite;
use hubbub_test_support::http::Response;
use hubbub_test_support::ws::{WsClient, WsEvent};

const API_KEY: &str = "rooms-test-api-key-0123456789";

fn server(workers: u16, extra: &[(&str, &str)]) -> Server {
    let mut env = vec![
        ("JWT_HS256_SECRET", HS_SECRET),
        ("API_KEY", API_KEY),
        ("RATE_LIMIT_PER_SEC", "0"),
    ];
    env.extend_from_slice(extra);
    Server::start(workers, &env)
}

fn bearer(user: &str) -> String {
    format!("Bearer {}", token_of(user, false))
}

fn create(server: &Server, owner: &str, body: Value) -> Response {
    call(
        server,
        "POST",
        "/api/rooms",
        Some(&bearer(owner)),
        &body.to_string(),
    )
}

/// A v2 connection of `user` under their token.
fn v2(server: &Server, user: &str) -> V2 {
    V2::connect(server, &format!("token={}", token_of(user, false)))
}

/// Sends a subscribe and returns the first answer that is not presence, typing or read.
fn try_subscribe(c: &mut V2, id: u32, room: &str) -> Value {
    c.send(json!({"type": "subscribe", "id": id, "roomId": room}));
    c.next_except(&["presence", "read", "typing"])
}

#[test]
fn a_private_room_takes_members_only_and_tells_the_removed_why() {
    let server = server(2, &[]);
    let r = create(
        &server,
        "alice",
        json!({"roomId": "ops", "name": "Ops", "visibility": "private", "members": ["bob"]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let room = r.json();
    assert_eq!(
        (
            room["roomId"].as_str(),
            room["name"].as_str(),
            room["visibility"].as_str(),
            room["owner"].as_str(),
            room["memberCount"].as_u64(),
            room["seq"].as_u64(),
        ),
        (
            Some("ops"),
            Some("Ops"),
            Some("private"),
            Some("alice"),
            Some(2),
            Some(0)
        ),
        "{room}"
    );
    assert_eq!(
        room["members"],
        json!([{"userId": "alice", "role": "admin"}, {"userId": "bob", "role": "member"}])
    );
    assert!(room["createdAt"].as_str().is_some_and(|t| t.ends_with('Z')));

    // A member subscribes and chats; a non-member is refused, and hears nothing of it.
    let mut bob = v2(&server, "bob");
    bob.subscribe(1, "ops");
    let mut carol = v2(&server, "carol");
    assert_error(
        &try_subscribe(&mut carol, 2, "ops"),
        "forbidden",
        Some(2),
        Some("ops"),
    );
    bob.chat_acked(3, "ops", "members only", None);
    carol.expect_nothing(300);
    // A v1 connection of a non-member is closed with 4004.
    let mut v1 =
        WsClient::connect(&server.url(&format!("room=ops&token={}", token_of("carol", false))));
    loop {
        match v1.next_event() {
            WsEvent::Closed(code) => {
                assert_eq!(code, Some(4004));
                break;
            }
            WsEvent::Text(t) => assert!(!t.contains("members only"), "{t}"),
        }
    }

    // Invited, carol may subscribe; removed, her subscription ends with reason removed.
    let r = call(
        &server,
        "PUT",
        "/api/rooms/ops/members/carol",
        Some(&bearer("alice")),
        "",
    );
    assert_eq!((r.status, r.json()["memberCount"].as_u64()), (200, Some(3)));
    carol.subscribe(4, "ops");
    let r = call(
        &server,
        "DELETE",
        "/api/rooms/ops/members/carol",
        Some(&bearer("alice")),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // (Behind the backlog of her subscription.)
    let gone = loop {
        let f = carol.next_except(&["presence", "read", "typing"]);
        if f["type"] != "chat" {
            break f;
        }
    };
    assert_eq!(
        (
            gone["type"].as_str(),
            gone["roomId"].as_str(),
            gone["reason"].as_str()
        ),
        (Some("unsubscribed"), Some("ops"), Some("removed")),
        "{gone}"
    );
    assert_error(
        &try_subscribe(&mut carol, 5, "ops"),
        "forbidden",
        Some(5),
        Some("ops"),
    );

    // Deleted: every subscriber hears room_deleted, the id stays taken and unknown.
    let r = call(
        &server,
        "DELETE",
        "/api/rooms/ops",
        Some(&bearer("bob")),
        "",
    );
    assert_refused(&r, 403, "forbidden");
    let r = call(
        &server,
        "DELETE",
        "/api/rooms/ops",
        Some(&bearer("alice")),
        "",
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let gone = loop {
        let f = bob.next_except(&["presence", "read", "typing"]);
        if f["type"] != "chat" {
            break f;
        }
    };
    assert_eq!(
        (gone["type"].as_str(), gone["reason"].as_str()),
        (Some("unsubscribed"), Some("room_deleted")),
        "{gone}"
    );
    assert_error(
        &try_subscribe(&mut bob, 6, "ops"),
        "room_not_found",
        Some(6),
        Some("ops"),
    );
    let r = call(&server, "GET", "/api/rooms/ops", Some(&bearer("alice")), "");
    assert_refused(&r, 404, "room_not_found");
    let r = call(
        &server,
        "GET",
        "/api/rooms/ops/messages",
        Some(&bearer("alice")),
        "",
    );
    assert_refused(&r, 404, "room_not_found");
    let again = create(
        &server,
        "alice",
        json!({"roomId": "ops", "name": "Ops", "visibility": "public"}),
    );
    assert_refused(&again, 409, "room_exists");
    let m = server.get("/metrics").body;
    assert!(m.contains("hubbub_rooms_created_total 1"), "{m}");
    assert!(m.contains("hubbub_room_joins_refused_total 4"), "{m}");
}

#[test]
fn each_refusal_of_the_rooms_api_has_its_code() {
    let server = server(1, &[]);
    let alice = bearer("alice");
    let post = |body: &str| call(&server, "POST", "/api/rooms", Some(&alice), body);
    assert_refused(&post("not json"), 400, "invalid_body");
    assert_refused(
        &post(r#"{"roomId":"a b","name":"x","visibility":"public"}"#),
        400,
        "invalid_room",
    );
    assert_refused(&post(r#"{"visibility":"public"}"#), 400, "invalid_name");
    assert_refused(
        &post(r#"{"name":"x","visibility":"secret"}"#),
        400,
        "invalid_visibility",
    );
    assert_refused(
        &post(r#"{"name":"x","visibility":"group","members":[""]}"#),
        400,
        "invalid_members",
    );
    let huge = format!(
        r#"{{"name":"{}","visibility":"public"}}"#,
        "x".repeat(20_000)
    );
    assert_eq!(post(&huge).status, 413);
    // A room in use as a public one cannot be claimed.
    let mut c =
        WsClient::connect(&server.url(&format!("room=lobby&token={}", token_of("bob", false))));
    c.send_text(r#"{"type":"chat","content":"mine too"}"#);
    let _ = c.next_json();
    server.analytics_until(|a| a["totalMessages"] == 1);
    assert_refused(
        &post(r#"{"roomId":"lobby","name":"Lobby","visibility":"private"}"#),
        409,
        "room_exists",
    );
    // Without an id the server makes one.
    let made = post(r#"{"name":"Made","visibility":"group"}"#);
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.json()["roomId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("r-") && id.len() == 18, "{id}");
    // The owner stays; the wrong role and a member route's method are refused.
    let path = format!("/api/rooms/{id}/members/alice");
    assert_refused(
        &call(&server, "DELETE", &path, Some(&alice), ""),
        400,
        "invalid_member",
    );
    assert_refused(
        &call(&server, "PUT", &path, Some(&alice), r#"{"role":"member"}"#),
        400,
        "invalid_member",
    );
    assert_refused(
        &call(
            &server,
            "PUT",
            &format!("/api/rooms/{id}/members/bob"),
            Some(&alice),
            r#"{"role":"owner"}"#,
        ),
        400,
        "invalid_role",
    );
    let r = call(&server, "POST", &path, Some(&alice), "");
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("PUT, DELETE, OPTIONS"))
    );
    assert_refused(
        &call(
            &server,
            "PATCH",
            &format!("/api/rooms/{id}"),
            Some(&alice),
            "{}",
        ),
        400,
        "invalid_body",
    );
    // A group holds 256; one more is refused.
    let members: Vec<String> = (1..256).map(|i| format!("m{i}")).collect();
    let full = post(
        &json!({"roomId": "big", "name": "Big", "visibility": "group", "members": members})
            .to_string(),
    );
    assert_eq!(
        (full.status, full.json()["memberCount"].as_u64()),
        (201, Some(256))
    );
    let r = call(
        &server,
        "PUT",
        "/api/rooms/big/members/m256",
        Some(&alice),
        "",
    );
    assert_refused(&r, 409, "room_full");
    let too_many: Vec<String> = (1..257).map(|i| format!("m{i}")).collect();
    let r = post(
        &json!({"roomId": "bigger", "name": "B", "visibility": "group", "members": too_many})
            .to_string(),
    );
    assert_refused(&r, 409, "room_full");
    // Managing a room never made through the API is nobody's.
    let r = call(
        &server,
        "PATCH",
        "/api/rooms/lobby",
        Some(&alice),
        r#"{"name":"Mine"}"#,
    );
    assert_refused(&r, 403, "forbidden");
    // With no token auth there are no members to check: rooms are not made.
    let open = Server::start(1, &[]);
    let r = call(
        &open,
        "POST",
        "/api/rooms",
        None,
        r#"{"name":"x","visibility":"public"}"#,
    );
    assert_refused(&r, 403, "auth_disabled");
    let r = call(&open, "GET", "/api/rooms/lobby", None, "");
    assert_eq!(
        (r.status, r.json()["visibility"].as_str()),
        (200, Some("public"))
    );
}

#[test]
fn who_may_do_what_to_a_private_room() {
    let server = server(2, &[]);
    let made = create(
        &server,
        "owner",
        json!({"roomId": "vault", "name": "Vault", "visibility": "private", "members": ["member"]}),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let roles: [(&str, Option<String>); 6] = [
        ("no credentials", None),
        ("outsider", Some(bearer("outsider"))),
        ("member", Some(bearer("member"))),
        ("owner", Some(bearer("owner"))),
        ("admin", Some(format!("Bearer {}", token_of("root", true)))),
        ("API key", Some(format!("apikey {API_KEY}"))),
    ];
    // (method, path, body), then the status for each role in the order above
    // (docs/PROTOCOL.md §4.3). Writes that succeed are undone by the next row.
    let table: &[(&str, &str, &str, [u16; 6])] = &[
        (
            "GET",
            "/api/rooms/vault",
            "",
            [401, 403, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/rooms/vault/messages",
            "",
            [401, 403, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/rooms/vault/presence",
            "",
            [401, 403, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/users/member/rooms",
            "",
            [401, 403, 200, 403, 200, 200],
        ),
        (
            "PATCH",
            "/api/rooms/vault",
            r#"{"name":"V"}"#,
            [401, 403, 403, 200, 200, 200],
        ),
        (
            "PUT",
            "/api/rooms/vault/members/guest",
            "",
            [401, 403, 403, 200, 200, 200],
        ),
        (
            "DELETE",
            "/api/rooms/vault/members/guest",
            "",
            [401, 403, 403, 200, 200, 200],
        ),
        (
            "POST",
            "/api/rooms",
            r#"{"name":"n","visibility":"public"}"#,
            [401, 201, 201, 201, 201, 403],
        ),
    ];
    for (method, path, body, statuses) in table {
        for ((role, authz), want) in roles.iter().zip(statuses) {
            let r = call(&server, method, path, authz.as_deref(), body);
            assert_eq!(r.status, *want, "{method} {path} as {role}: {}", r.body);
            if *want == 403 {
                assert_eq!(r.json()["error"], "forbidden", "{method} {path} as {role}");
            }
        }
    }
    // A public room is every verified user's to read; a deleted one nobody's.
    for (room, visibility) in [("square", "public"), ("gone", "private")] {
        let r = create(
            &server,
            "owner",
            json!({"roomId": room, "name": room, "visibility": visibility, "members": ["member"]}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = call(
        &server,
        "DELETE",
        "/api/rooms/gone",
        Some(&bearer("owner")),
        "",
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let reads: &[(&str, [u16; 6])] = &[
        ("/api/rooms/square", [401, 200, 200, 200, 200, 200]),
        ("/api/rooms/square/messages", [401, 200, 200, 200, 200, 200]),
        ("/api/rooms/square/presence", [401, 200, 200, 200, 200, 200]),
        ("/api/rooms/gone", [401, 404, 404, 404, 404, 404]),
        ("/api/rooms/gone/messages", [401, 404, 404, 404, 404, 404]),
        ("/api/rooms/gone/presence", [401, 404, 404, 404, 404, 404]),
    ];
    for (path, statuses) in reads {
        for ((role, authz), want) in roles.iter().zip(statuses) {
            let r = call(&server, "GET", path, authz.as_deref(), "");
            assert_eq!(r.status, *want, "GET {path} as {role}: {}", r.body);
            if *want == 404 {
                assert_eq!(r.json()["error"], "room_not_found", "{path} as {role}");
            }
        }
    }
    // With auth off every read is open and no room is made or managed.
    let open = Server::start(1, &[]);
    for (method, path, body, want) in [
        ("GET", "/api/rooms/vault", "", 200),
        ("GET", "/api/rooms/vault/messages", "", 200),
        ("GET", "/api/users/member/rooms", "", 200),
        (
            "POST",
            "/api/rooms",
            r#"{"name":"n","visibility":"public"}"#,
            403,
        ),
        ("PATCH", "/api/rooms/vault", r#"{"name":"V"}"#, 403),
        ("DELETE", "/api/rooms/vault", "", 403),
        ("PUT", "/api/rooms/vault/members/guest", "", 403),
        ("DELETE", "/api/rooms/vault/members/guest", "", 403),
    ] {
        let r = call(&open, method, path, None, body);
        assert_eq!(r.status, want, "{method} {path} with auth off: {}", r.body);
        if want == 403 {
            assert_eq!(r.json()["error"], "auth_disabled", "{method} {path}");
        }
    }

    // The member leaves (removes themselves); then they are an outsider.
    let r = call(
        &server,
        "DELETE",
        "/api/rooms/vault/members/member",
        Some(&bearer("member")),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        &server,
        "GET",
        "/api/rooms/vault/messages",
        Some(&bearer("member")),
        "",
    );
    assert_refused(&r, 403, "forbidden");
    // A group's members may add members, not admins; a private room's may not.
    let g = create(
        &server,
        "owner",
        json!({"roomId": "band", "name": "Band", "visibility": "group", "members": ["member"]}),
    );
    assert_eq!(g.status, 201);
    let add = |path: &str, body: &str| call(&server, "PUT", path, Some(&bearer("member")), body);
    assert_eq!(add("/api/rooms/band/members/friend", "").status, 200);
    assert_refused(
        &add("/api/rooms/band/members/boss", r#"{"role":"admin"}"#),
        403,
        "forbidden",
    );
}

#[test]
fn a_users_rooms_count_what_they_have_not_read_and_a_token_claim_grants_its_rooms() {
    let server = server(2, &[]);
    for (room, visibility) in [("dm-ab", "group"), ("news", "public")] {
        let r = create(
            &server,
            "alice",
            json!({"roomId": room, "name": room, "visibility": visibility, "members": ["bob"]}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let mut alice = v2(&server, "alice");
    alice.subscribe(1, "dm-ab");
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        alice.chat_acked(10 + i as u32, "dm-ab", text, None);
    }
    let mut bob = v2(&server, "bob");
    bob.subscribe(2, "dm-ab");
    bob.send(json!({"type": "read", "roomId": "dm-ab", "seq": 1}));
    let rooms_of = |user: &str| {
        call(
            &server,
            "GET",
            &format!("/api/users/{user}/rooms"),
            Some(&bearer(user)),
            "",
        )
        .json()
    };
    let read = hubbub_test_support::poll::wait_until(std::time::Duration::from_secs(5), || {
        rooms_of("bob")["rooms"][0]["lastRead"] == 1
    });
    assert!(read, "bob's read marker reaches his room list");
    let listed = rooms_of("bob");
    assert_eq!(listed["userId"], "bob");
    assert_eq!(
        listed["rooms"],
        json!([
            {"roomId": "dm-ab", "name": "dm-ab", "visibility": "group", "role": "member", "seq": 3, "lastRead": 1, "unread": 2},
            {"roomId": "news", "name": "news", "visibility": "public", "role": "member", "seq": 0, "lastRead": 0, "unread": 0},
        ])
    );
    assert_eq!(rooms_of("carol")["rooms"], json!([]));
    // A token whose `rooms` claim names a private room subscribes to it, member or not.
    let claim = common::tokens::hs256(&json!({
        "sub": "carol", "exp": common::tokens::now_secs() + 600, "rooms": ["dm-ab"]
    }));
    let mut carol = V2::connect(&server, &format!("token={claim}"));
    let s = carol.next_except(&["presence", "read", "typing"]);
    assert_eq!(
        (s["type"].as_str(), s["roomId"].as_str()),
        (Some("subscribed"), Some("dm-ab")),
        "{s}"
    );
}

#[test]
fn rooms_and_their_members_survive_a_restart_in_the_state_table() {
    let db = Dynalite::start();
    let mut env: Vec<(&str, String)> = common::dynamodb_env(&db.endpoint(), "rooms_restart");
    env.push(("JWT_HS256_SECRET", HS_SECRET.to_owned()));
    env.push(("RATE_LIMIT_PER_SEC", "0".to_owned()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = Server::start(2, &env);
    first.wait_for_storage();
    let r = create(
        &first,
        "alice",
        json!({"roomId": "crew", "name": "Crew", "visibility": "private", "members": ["bob"]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = call(
        &first,
        "PATCH",
        "/api/rooms/crew",
        Some(&bearer("alice")),
        r#"{"name":"Crew 2"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let mut bob = v2(&first, "bob");
    bob.subscribe(1, "crew");
    bob.chat_acked(2, "crew", "stored", None);
    bob.close();
    let port = first.port;
    first.stop();

    let second = Server::start_on(port, 2, &env);
    second.wait_for_storage();
    let mut carol = v2(&second, "carol");
    assert_error(
        &try_subscribe(&mut carol, 1, "crew"),
        "forbidden",
        Some(1),
        Some("crew"),
    );
    let r = call(
        &second,
        "GET",
        "/api/rooms/crew/messages",
        Some(&bearer("carol")),
        "",
    );
    assert_refused(&r, 403, "forbidden");
    let room = call(&second, "GET", "/api/rooms/crew", Some(&bearer("bob")), "").json();
    assert_eq!(
        (room["name"].as_str(), room["seq"].as_u64()),
        (Some("Crew 2"), Some(1)),
        "{room}"
    );
    let mut bob = v2(&second, "bob");
    bob.subscribe(1, "crew");
    let listed = call(
        &second,
        "GET",
        "/api/users/bob/rooms",
        Some(&bearer("bob")),
        "",
    )
    .json();
    assert_eq!(listed["rooms"][0]["roomId"], "crew", "{listed}");
    assert_eq!(listed["rooms"][0]["unread"], 1, "{listed}");
}

#[test]
fn listings_show_private_rooms_and_groups_to_admins_only() {
    let server = server(2, &[]);
    for (room, visibility) in [("vip", "private"), ("trio", "group"), ("hall", "public")] {
        let made = create(
            &server,
            "alice",
            json!({"roomId": room, "name": room, "visibility": visibility}),
        );
        assert_eq!(made.status, 201, "{}", made.body);
    }
    let mut alice = v2(&server, "alice");
    for (i, room) in ["vip", "trio", "hall"].into_iter().enumerate() {
        assert_eq!(
            try_subscribe(&mut alice, i as u32, room)["type"],
            "subscribed"
        );
    }
    let ids = |body: &Value, key: &str| -> Vec<String> {
        let mut ids: Vec<String> = body[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} in {body}"))
            .iter()
            .map(|r| r["roomId"].as_str().unwrap_or_default().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let admin = format!("Bearer {}", token_of("root", true));
    for (who, all) in [
        (bearer("bob"), false),
        (bearer("alice"), false),
        (admin, true),
    ] {
        let want: Vec<String> = if all {
            vec!["hall", "trio", "vip"]
        } else {
            vec!["hall"]
        }
        .into_iter()
        .map(String::from)
        .collect();
        let rooms = call(&server, "GET", "/api/rooms", Some(&who), "").json();
        assert_eq!(ids(&rooms, "rooms"), want, "{rooms}");
        let analytics = call(&server, "GET", "/api/analytics", Some(&who), "").json();
        assert_eq!(ids(&analytics, "roomActivity"), want, "{analytics}");
    }
    // A member finds their own rooms, private ones included, where they are listed for them.
    let mine = call(
        &server,
        "GET",
        "/api/users/alice/rooms",
        Some(&bearer("alice")),
        "",
    )
    .json();
    assert_eq!(ids(&mine, "rooms"), ["hall", "trio", "vip"], "{mine}");
    // The operator sees everything too.
    let rooms = call(
        &server,
        "GET",
        "/api/rooms",
        Some(&format!("apikey {API_KEY}")),
        "",
    )
    .json();
    assert_eq!(ids(&rooms, "rooms").len(), 3, "{rooms}");
}
