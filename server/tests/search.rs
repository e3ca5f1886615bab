//! Message search against the real binary (docs/PROTOCOL.md §4.6): what was said is found
//! (in rooms the caller may read only), page by page, across a restart with SEARCH_DIR;
//! every refusal has its code.

mod common;

use std::time::Duration;

use serde_json::{json, Value};

use common::tokens::{token_of, HS_SECRET};
use common::v2::V2;
use common::{assert_refused, call, Server};
use hubbub_test_support::poll::wait_until;

fn bearer(user: &str) -> String {
    format!("Bearer {}", token_of(user, false))
}

fn search(
    server: &Server,
    room: &str,
    query: &str,
    authz: Option<&str>,
) -> hubbub_test_support::http::Response {
    call(
        server,
        "GET",
        &format!("/api/rooms/{room}/search?{query}"),
        authz,
        "",
    )
}

fn contents(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|f| f["content"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until a search answers with `n` messages.
fn found(server: &Server, room: &str, query: &str, authz: Option<&str>, n: usize) -> Value {
    let mut last = Value::Null;
    let ok = wait_until(Duration::from_secs(10), || {
        last = search(server, room, query, authz).json();
        last["messages"].as_array().is_some_and(|m| m.len() == n)
    });
    assert!(ok, "{room}?{query}: {last}");
    last
}

#[test]
fn what_was_said_is_found_by_those_who_may_read_the_room() {
    let server = Server::start(
        2,
        &[("JWT_HS256_SECRET", HS_SECRET), ("RATE_LIMIT_PER_SEC", "0")],
    );
    let r = call(
        &server,
        "POST",
        "/api/rooms",
        Some(&bearer("alice")),
        &json!({"roomId": "ops", "name": "Ops", "visibility": "private", "members": ["bob"]})
            .to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let mut bob = V2::connect(&server, &format!("token={}", token_of("bob", false)));
    bob.subscribe(1, "ops");
    bob.subscribe(2, "lobby");
    for (i, (room, text)) in [
        ("ops", "Deploy on Friday"),
        ("ops", "the crème brûlée is ready"),
        ("ops", "nothing here"),
        ("lobby", "deploy the lobby"),
    ]
    .iter()
    .enumerate()
    {
        bob.chat_acked(10 + i as u32, room, text, None);
    }
    let bob_auth = bearer("bob");
    let page = found(&server, "ops", "q=deploy", Some(&bob_auth), 1);
    assert_eq!(
        (
            page["roomId"].as_str(),
            page["query"].as_str(),
            &page["nextBefore"]
        ),
        (Some("ops"), Some("deploy"), &Value::Null),
        "{page}"
    );
    assert_eq!(page["messages"][0]["type"], "chat");
    assert_eq!(page["messages"][0]["seq"], 1);
    assert_eq!(
        contents(&found(&server, "ops", "q=CREME%20bru", Some(&bob_auth), 1)),
        ["the crème brûlée is ready"]
    );
    assert_eq!(
        contents(&found(&server, "lobby", "q=deploy", Some(&bob_auth), 1)),
        ["deploy the lobby"]
    );
    // Not a member: refused; a public room: found.
    let carol = bearer("carol");
    assert_refused(
        &search(&server, "ops", "q=deploy", Some(&carol)),
        403,
        "forbidden",
    );
    assert_eq!(
        contents(&found(&server, "lobby", "q=lobby", Some(&carol), 1)),
        ["deploy the lobby"]
    );
    assert_refused(
        &search(&server, "ops", "q=deploy", None),
        401,
        "unauthorized",
    );
    let m = server.get("/metrics").body;
    assert!(m.contains("hubbub_search_indexed_total 4"), "{m}");
    assert!(m.contains("hubbub_search_dropped_total 0"), "{m}");
}

#[test]
fn pages_go_back_and_every_refusal_has_its_code() {
    let server = Server::start(1, &[("RATE_LIMIT_PER_SEC", "0")]);
    let mut c = server.connect("room=many&userId=u");
    for i in 0..30 {
        c.chat(&format!("ping {i}"));
        c.next_chat();
    }
    let first = found(&server, "many", "q=ping&limit=20", None, 20);
    let before = first["nextBefore"].as_u64().expect("more pages");
    assert_eq!(before, 11);
    let second = found(
        &server,
        "many",
        &format!("q=pi&limit=20&before={before}"),
        None,
        10,
    );
    assert_eq!(second["nextBefore"], Value::Null);
    let seqs: Vec<u64> = first["messages"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["messages"].as_array().unwrap())
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=30).rev().collect::<Vec<u64>>());
    for (query, code) in [
        ("q=", "invalid_query"),
        ("", "invalid_query"),
        ("q=%20,;", "invalid_query"),
        (&format!("q={}", "x".repeat(201)), "invalid_query"),
        ("q=a+b+c+d+e+f+g+h+i", "invalid_query"),
        ("q=ping&before=0", "invalid_before"),
        ("q=ping&after=3", "invalid_cursor"),
        ("q=ping&limit=51", "invalid_limit"),
        ("q=ping&limit=x", "invalid_limit"),
    ] {
        assert_refused(&search(&server, "many", query, None), 400, code);
    }
    let off = Server::start(1, &[("SEARCH", "off")]);
    assert_refused(
        &search(&off, "many", "q=ping", None),
        404,
        "search_disabled",
    );
    assert!(!off
        .get("/metrics")
        .body
        .contains("hubbub_search_indexed_total"));
}

#[test]
fn an_index_in_search_dir_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("hubbub-search-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_s = dir.display().to_string();
    let env = [("SEARCH_DIR", dir_s.as_str())];
    let first = Server::start(2, &env);
    let mut c = first.connect("room=kept&userId=u");
    c.chat("remember the walrus");
    c.next_chat();
    found(&first, "kept", "q=walrus", None, 1);
    let port = first.port;
    first.stop();
    let second = Server::start_on(port, 2, &env);
    // Found at once: it was committed before the first server stopped.
    let page = search(&second, "kept", "q=walrus", None).json();
    assert_eq!(contents(&page), ["remember the walrus"], "{page}");
    second.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_fresh_node_rebuilds_its_index_from_the_table() {
    let db = hubbub_test_support::dynalite::Dynalite::start();
    let env: Vec<(&str, String)> = common::dynamodb_env(&db.endpoint(), "search_rebuild");
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("RATE_LIMIT_PER_SEC", "0"));
    let first = Server::start(2, &env);
    first.wait_for_storage();
    let mut c = first.connect("room=old&userId=u");
    for i in 0..40 {
        c.chat(&format!("archived note {i}"));
        c.next_chat();
    }
    c.chat("the needle in the haystack");
    c.next_chat();
    let port = first.port;
    first.stop();
    // A fresh node: its index (in memory) is empty until it reads the table.
    let plain = Server::start_on(port, 1, &env);
    plain.wait_for_storage();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        contents(&search(&plain, "old", "q=needle", None).json()),
        Vec::<String>::new()
    );
    plain.stop();
    env.push(("SEARCH_REBUILD", "true"));
    let rebuilt = Server::start_on(port, 1, &env);
    let page = found(&rebuilt, "old", "q=needle", None, 1);
    assert_eq!(contents(&page), ["the needle in the haystack"]);
    assert_eq!(page["messages"][0]["seq"], 41);
    found(&rebuilt, "old", "q=archived&limit=50", None, 40);
    let m = rebuilt.get("/metrics").body;
    assert!(m.contains("hubbub_search_rebuilt_total 41"), "{m}");
}
