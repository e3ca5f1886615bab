//! Accounts against the real binary (docs/PROTOCOL.md §4.4): signup and login answer a
//! JWT the server then accepts, on the memory store and on DynamoDB (dynalite; the
//! account survives a restart there), every error code, and the throttling of failed
//! logins per username and per address.

mod common;

use serde_json::{json, Value};

use common::{assert_refused, Server};
use hubbub_test_support::dynalite::Dynalite;
use hubbub_test_support::http::{self, Response};
use hubbub_test_support::ws::WsClient;

const SECRET: &str = "accounts-test-jwt-secret-0123456789";

fn post(server: &Server, path: &str, body: &str) -> Response {
    http::post(server.port, path, &["Content-Type: application/json"], body)
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

fn creds(username: &str, password: &str) -> String {
    json!({"username": username, "password": password}).to_string()
}

/// The hello of a v2 connection opened with `token`.
fn hello_with(server: &Server, token: &str) -> Value {
    let mut c = WsClient::connect(&server.url(&format!("proto=2&userId=spoof&token={token}")));
    c.next_json()
}

fn signup_and_login(server: &Server, store: &str) {
    let r = post(
        server,
        "/auth/signup",
        &creds("Ada_L", "correct horse battery"),
    );
    assert_eq!(r.status, 201, "{store}: {}", r.body);
    let body = r.json();
    assert_eq!(
        (body["userId"].as_str(), body["username"].as_str()),
        (Some("ada_l"), Some("Ada_L")),
        "{store}: {body}"
    );
    assert!(body["expiresAt"].as_str().is_some_and(|t| t.ends_with('Z')));
    let hello = hello_with(server, body["token"].as_str().unwrap());
    assert_eq!(
        (hello["userId"].as_str(), hello["username"].as_str()),
        (Some("ada_l"), Some("Ada_L")),
        "{store}: the account's token names the user: {hello}"
    );
    // Another case is the same account.
    assert_refused(
        &post(server, "/auth/signup", &creds("ADA_l", "another password")),
        409,
        "username_taken",
    );
    let r = post(
        server,
        "/auth/login",
        &creds("ada_L", "correct horse battery"),
    );
    assert_eq!(r.status, 200, "{store}: {}", r.body);
    let token = r.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(hello_with(server, &token)["userId"], "ada_l");
    // The token reads what a user may read.
    let page = http::get_with(
        server.port,
        "/api/rooms/lobby/messages",
        &[&format!("Authorization: Bearer {token}")],
    )
    .unwrap();
    assert_eq!(page.status, 200, "{}", page.body);

    // A wrong password and an unknown user get the same answer.
    let wrong = post(
        server,
        "/auth/login",
        &creds("ada_l", "wrong horse battery"),
    );
    let unknown = post(
        server,
        "/auth/login",
        &creds("nobody", "wrong horse battery"),
    );
    assert_refused(&wrong, 401, "bad_credentials");
    assert_eq!((wrong.status, &wrong.body), (unknown.status, &unknown.body));

    for (path, body, code) in [
        ("/auth/signup", "not json", "invalid_body"),
        ("/auth/signup", r#"{"username":"ab"}"#, "invalid_body"),
        (
            "/auth/signup",
            &creds("ab", "long enough password"),
            "invalid_username",
        ),
        (
            "/auth/signup",
            &creds("a b c", "long enough password"),
            "invalid_username",
        ),
        ("/auth/signup", &creds("grace", "short"), "invalid_password"),
        (
            "/auth/signup",
            &creds("grace", &"p".repeat(257)),
            "invalid_password",
        ),
        ("/auth/login", "[]", "invalid_body"),
    ] {
        assert_refused(&post(server, path, body), 400, code);
    }
    let r = server.get("/auth/login");
    assert_eq!(r.status, 405, "{}", r.body);
    assert_eq!(r.header("allow"), Some("POST, OPTIONS"));
    assert_refused(&post(server, "/auth/other", "{}"), 404, "not_found");
}

#[test]
fn signup_and_login_answer_a_token_the_server_accepts() {
    let server = Server::start(2, &[("JWT_HS256_SECRET", SECRET)]);
    signup_and_login(&server, "memory");
    let metrics = server.get("/metrics").body;
    for line in [
        "hubbub_account_signups_total 1",
        "hubbub_account_logins_total 1",
        "hubbub_account_login_failures_total 2",
    ] {
        assert!(metrics.contains(line), "{line} missing: {metrics}");
    }

    // Without JWT_HS256_SECRET there are no accounts.
    let off = Server::start(1, &[]);
    assert_refused(
        &post(
            &off,
            "/auth/signup",
            &creds("grace", "long enough password"),
        ),
        404,
        "not_found",
    );
}

#[test]
fn with_dynamodb_an_account_outlives_a_restart() {
    let db = Dynalite::start();
    let mut env: Vec<(&str, String)> = common::dynamodb_env(&db.endpoint(), "accounts");
    env.push(("JWT_HS256_SECRET", SECRET.to_owned()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(2, &env);
    server.wait_for_storage();
    signup_and_login(&server, "dynamodb");
    server.stop();
    let server = Server::start(1, &env);
    server.wait_for_storage();
    let r = post(
        &server,
        "/auth/login",
        &creds("Ada_L", "correct horse battery"),
    );
    assert_eq!(r.status, 200, "after a restart: {}", r.body);
    assert_refused(
        &post(&server, "/auth/signup", &creds("ada_l", "another password")),
        409,
        "username_taken",
    );
}

#[test]
fn failed_logins_are_throttled_per_username_and_per_address() {
    let server = Server::start(2, &[("JWT_HS256_SECRET", SECRET)]);
    let good = "correct horse battery";
    assert_eq!(
        post(&server, "/auth/signup", &creds("ann", good)).status,
        201
    );
    for i in 0..5 {
        let r = post(&server, "/auth/login", &creds("ann", "wrong password"));
        assert_refused(&r, 401, "bad_credentials");
        assert!(r.header("retry-after").is_none(), "attempt {i}");
    }
    // The sixth is refused before any check, even with the right password.
    let r = post(&server, "/auth/login", &creds("ann", good));
    assert_refused(&r, 429, "too_many_attempts");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    // Another username from the same address still may, until the address has failed 20
    // times in the minute (the signup, 5 above and 14 here).
    for i in 0..14 {
        let r = post(
            &server,
            "/auth/login",
            &creds(&format!("guess{i}"), "x".repeat(8).as_str()),
        );
        assert_refused(&r, 401, "bad_credentials");
    }
    let r = post(&server, "/auth/login", &creds("someone", "whatever1"));
    assert_refused(&r, 429, "too_many_attempts");
    assert_refused(
        &post(
            &server,
            "/auth/signup",
            &creds("newbie", "long enough password"),
        ),
        429,
        "too_many_attempts",
    );
    let metrics = server.get("/metrics").body;
    let throttled = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hubbub_account_throttled_total "))
        .unwrap();
    assert_eq!(throttled, "3", "{metrics}");
}
