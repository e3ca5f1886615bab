//! File sharing against the real binary (docs/PROTOCOL.md §4.7), on both stores: the
//! local `FILES_DIR` hubbub serves itself and S3 (moto_server on loopback). A file is
//! uploaded, attached, broadcast with its name, type and size, kept in the history, and
//! fetched by members only; every limit and every lie is refused where the bytes land,
//! and nothing is broadcast for it.

mod common;

use std::time::Duration;

use serde_json::{json, Value};

use common::tokens::{token_of, HS_SECRET};
use common::v2::{assert_error, V2};
use common::{assert_refused, call, Server};
use hubbub_test_support::http::{self, Response};
use hubbub_test_support::s3::Moto;

const BUCKET: &str = "hubbub-files";

fn bearer(user: &str) -> String {
    format!("Bearer {}", token_of(user, false))
}

fn files_dir() -> String {
    let dir = std::env::temp_dir().join(format!("hubbub-files-test-{}", uuid::Uuid::new_v4()));
    dir.display().to_string()
}

fn server(env: &[(&str, &str)]) -> Server {
    let mut all = vec![("JWT_HS256_SECRET", HS_SECRET)];
    all.extend_from_slice(env);
    Server::start(2, &all)
}

/// moto_server with the bucket, and a server keeping its files there.
fn on_s3() -> (Moto, Server) {
    let moto = Moto::start_with_bucket(BUCKET);
    let endpoint = moto.endpoint();
    let server = server(&[
        ("FILES_S3_BUCKET", BUCKET),
        ("FILES_S3_ENDPOINT", &endpoint),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ]);
    (moto, server)
}

fn ask_upload(
    server: &Server,
    room: &str,
    user: &str,
    name: &str,
    ct: &str,
    size: usize,
) -> Response {
    let body = json!({"name": name, "contentType": ct, "size": size}).to_string();
    call(
        server,
        "POST",
        &format!("/api/rooms/{room}/uploads"),
        Some(&bearer(user)),
        &body,
    )
}

/// A request to `url` (absolute or relative to `server`), sent to whichever port it names.
fn send_to(
    server: &Server,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &str,
) -> Response {
    let (port, path) = match url.strip_prefix("http://127.0.0.1:") {
        Some(rest) => {
            let (port, path) = rest.split_once('/').expect("a path");
            (port.parse().expect("a port"), format!("/{path}"))
        }
        None => (server.port, url.to_owned()),
    };
    let mut raw =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "PUT" {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    http::send(port, &raw).expect("the request is answered")
}

fn ticket_headers(ticket: &Value) -> Vec<(String, String)> {
    ticket["headers"]
        .as_object()
        .expect("headers")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("a string").to_owned()))
        .collect()
}

/// Asks for an upload and PUTs `bytes` as declared; returns the file id.
fn upload(server: &Server, room: &str, user: &str, name: &str, ct: &str, bytes: &str) -> String {
    let asked = ask_upload(server, room, user, name, ct, bytes.len());
    assert_eq!(asked.status, 201, "{}", asked.body);
    let ticket = asked.json();
    let put = send_to(
        server,
        "PUT",
        ticket["url"].as_str().expect("url"),
        &ticket_headers(&ticket),
        bytes,
    );
    assert!(
        put.status == 200 || put.status == 201,
        "PUT: {} {}",
        put.status,
        put.body
    );
    ticket["fileId"].as_str().expect("fileId").to_owned()
}

fn attach(v2: &mut V2, id: u32, room: &str, content: &str, files: &[&str]) {
    let list: Vec<Value> = files.iter().map(|f| json!({"fileId": f})).collect();
    v2.send(json!({"type":"chat","id":id,"roomId":room,"content":content,"attachments":list}));
}

fn private_room(server: &Server, owner: &str, room: &str, members: &[&str]) {
    let body = json!({"roomId": room, "name": room, "visibility": "private", "members": members});
    let made = call(
        server,
        "POST",
        "/api/rooms",
        Some(&bearer(owner)),
        &body.to_string(),
    );
    assert_eq!(made.status, 201, "{}", made.body);
}

fn member(server: &Server, user: &str, room: &str) -> V2 {
    let mut c = V2::connect(server, &format!("token={}", token_of(user, false)));
    let s = c.subscribe(1, room);
    assert_eq!(s["type"], "subscribed", "{s}");
    c
}

/// Where `GET /api/files/{id}` sends `user`, after checking it is a 302.
fn download_url(server: &Server, id: &str, user: &str) -> String {
    let r = call(
        server,
        "GET",
        &format!("/api/files/{id}"),
        Some(&bearer(user)),
        "",
    );
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    r.header("Location").expect("Location").to_owned()
}

/// The whole path on one store: upload, attach, broadcast, history, download by members,
/// refusal to others.
fn shared_in_a_private_room(server: &Server, moto: Option<&Moto>, granted_before: u64) {
    private_room(server, "alice", "vault", &["bob"]);
    let mut alice = member(server, "alice", "vault");
    let mut bob = member(server, "bob", "vault");
    let png = "\u{1}PNG fake picture bytes";
    let pic = upload(server, "vault", "alice", "cat.png", "image/png", png);
    let doc = upload(
        server,
        "vault",
        "alice",
        "notes é.txt",
        "text/plain; charset=utf-8",
        "hello notes",
    );
    attach(&mut alice, 7, "vault", "look", &[&pic, &doc]);
    let chat = bob.next_except(&["presence", "typing", "read"]);
    assert_eq!(chat["type"], "chat", "{chat}");
    assert_eq!(
        chat["attachments"],
        json!([
            {"fileId": pic, "name": "cat.png", "contentType": "image/png", "size": png.len()},
            {"fileId": doc, "name": "notes é.txt", "contentType": "text/plain", "size": 11},
        ])
    );
    let ack = alice.next_except(&["presence", "typing", "read", "chat"]);
    assert_eq!(
        (ack["type"].as_str(), ack["id"].as_u64()),
        (Some("ack"), Some(7)),
        "{ack}"
    );
    // The history keeps the attachments.
    let history = call(
        server,
        "GET",
        "/api/rooms/vault/messages",
        Some(&bearer("bob")),
        "",
    )
    .json();
    let kept = history["messages"]
        .as_array()
        .expect("messages")
        .last()
        .cloned()
        .unwrap_or_default();
    assert_eq!(kept["attachments"], chat["attachments"], "{history}");
    // Members fetch; the bytes are what was uploaded, typed as declared.
    let url = download_url(server, &doc, "bob");
    let got = send_to(server, "GET", &url, &[], "");
    assert_eq!(
        (got.status, got.body.as_str()),
        (200, "hello notes"),
        "{url}"
    );
    assert!(got
        .header("Content-Type")
        .is_some_and(|t| t.starts_with("text/plain")));
    if moto.is_none() {
        assert_eq!(got.header("X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(
            got.header("Content-Disposition"),
            Some("inline; filename*=UTF-8''notes%20%C3%A9.txt")
        );
    }
    // Others are refused, and an unknown id is not found.
    let r = call(
        server,
        "GET",
        &format!("/api/files/{doc}"),
        Some(&bearer("carol")),
        "",
    );
    assert_refused(&r, 403, "forbidden");
    let r = call(server, "GET", &format!("/api/files/{doc}"), None, "");
    assert_eq!(r.status, 401, "{}", r.body);
    let unknown = uuid::Uuid::new_v4();
    let r = call(
        server,
        "GET",
        &format!("/api/files/{unknown}"),
        Some(&bearer("bob")),
        "",
    );
    assert_refused(&r, 404, "file_not_found");
    // Nobody but a member may upload to the room either.
    assert_refused(
        &ask_upload(server, "vault", "carol", "x.png", "image/png", 3),
        403,
        "forbidden",
    );
    if let Some(moto) = moto {
        assert_eq!(
            moto.object(BUCKET, &pic).as_deref(),
            Some(png.as_bytes()),
            "in the bucket"
        );
    }
    let m = server.get("/metrics").body;
    let granted = format!("hubbub_file_uploads_total {}\n", granted_before + 2);
    assert!(m.contains(&granted), "{m}");
    assert!(m.contains("hubbub_file_downloads_total 1\n"), "{m}");
    alice.close();
    bob.close();
}

#[test]
fn a_file_in_files_dir_is_shared_with_members_only() {
    let dir = files_dir();
    let server = server(&[("FILES_DIR", &dir)]);
    shared_in_a_private_room(&server, None, 0);
    // The bytes are in FILES_DIR, with their record beside them.
    let kept = std::fs::read_dir(&dir).expect("FILES_DIR exists").count();
    assert_eq!(kept, 4, "two files and two records");
}

#[test]
fn a_file_in_s3_is_shared_with_members_only() {
    let (moto, server) = on_s3();
    let endpoint = moto.endpoint();
    let asked = ask_upload(&server, "lobby", "alice", "a.png", "image/png", 4).json();
    let url = asked["url"].as_str().unwrap_or_default();
    assert!(url.starts_with(&format!("{endpoint}/{BUCKET}/")), "{asked}");
    assert!(
        url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=300"),
        "{url}"
    );
    let signed: Vec<String> = ticket_headers(&asked)
        .into_iter()
        .map(|(k, _)| k.to_lowercase())
        .collect();
    assert!(signed.contains(&"content-type".to_owned()), "{signed:?}");
    assert!(
        signed.contains(&"x-amz-meta-hubbub-room".to_owned()),
        "{signed:?}"
    );
    shared_in_a_private_room(&server, Some(&moto), 1);
}

#[test]
fn an_s3_object_larger_than_declared_is_refused_and_removed() {
    let (moto, server) = on_s3();
    let mut alice = member(&server, "alice", "lobby");
    let mut bob = member(&server, "bob", "lobby");
    let asked = ask_upload(&server, "lobby", "alice", "small.txt", "text/plain", 10).json();
    let id = asked["fileId"].as_str().expect("fileId").to_owned();
    // The client lies: it declared 10 bytes and sends 50 (moto, unlike S3, lets it).
    let mut headers = ticket_headers(&asked);
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case("content-length"));
    let big = "x".repeat(50);
    let put = send_to(
        &server,
        "PUT",
        asked["url"].as_str().expect("url"),
        &headers,
        &big,
    );
    assert_eq!(put.status, 200, "{}", put.body);
    attach(&mut alice, 3, "lobby", "", &[&id]);
    let refused = alice.next_except(&["presence", "typing", "read"]);
    assert_error(&refused, "file_too_large", Some(3), Some("lobby"));
    bob.expect_silence(300);
    assert_eq!(
        moto.object(BUCKET, &id),
        None,
        "the oversize object is deleted"
    );
    let m = server.get("/metrics").body;
    assert!(m.contains("hubbub_file_uploads_refused_total 1\n"), "{m}");
}

#[test]
fn every_limit_and_every_lie_is_refused_where_the_bytes_land() {
    let dir = files_dir();
    let server = server(&[
        ("FILES_DIR", &dir),
        ("MAX_FILE_BYTES", "1000"),
        ("FILES_QUOTA_BYTES_PER_HOUR", "3000"),
    ]);
    let mut alice = member(&server, "alice", "lobby");
    let mut bob = member(&server, "bob", "lobby");
    let r = ask_upload(&server, "lobby", "alice", "big.png", "image/png", 1001);
    assert_refused(&r, 413, "file_too_large");
    assert_eq!(r.json()["maxBytes"], 1000, "the limit as a number");
    let r = ask_upload(&server, "bad%20room", "alice", "a.png", "image/png", 10);
    assert_refused(&r, 400, "invalid_room");
    let r = ask_upload(
        &server,
        "lobby",
        "alice",
        "evil.exe",
        "application/x-msdownload",
        10,
    );
    assert_refused(&r, 415, "unsupported_type");
    let r = ask_upload(&server, "lobby", "alice", "page.html", "text/html", 10);
    assert_refused(&r, 415, "unsupported_type");
    let r = ask_upload(&server, "lobby", "alice", "", "image/png", 10);
    assert_refused(&r, 400, "invalid_name");
    let r = ask_upload(&server, "lobby", "alice", "a.png", "image/png", 0);
    assert_refused(&r, 400, "invalid_size");
    let r = call(
        &server,
        "POST",
        "/api/rooms/lobby/uploads",
        Some(&bearer("alice")),
        "{",
    );
    assert_refused(&r, 400, "invalid_body");
    let r = call(
        &server,
        "POST",
        "/api/rooms/lobby/uploads",
        None,
        r#"{"name":"a","contentType":"image/png","size":1}"#,
    );
    assert_eq!(r.status, 401, "{}", r.body);

    // A lying size: declared 100, sent 900 — refused before it is read, nothing kept.
    let asked = ask_upload(&server, "lobby", "alice", "a.txt", "text/plain", 100).json();
    let (url, id) = (
        asked["url"].as_str().expect("url"),
        asked["fileId"].as_str().expect("id"),
    );
    let ct = vec![("Content-Type".to_owned(), "text/plain".to_owned())];
    let put = send_to(&server, "PUT", url, &ct, &"x".repeat(900));
    assert_refused(&put, 413, "file_too_large");
    assert_eq!(put.json()["maxBytes"], 100, "what the upload declared");
    // Another type than declared.
    let png = vec![("Content-Type".to_owned(), "image/png".to_owned())];
    assert_refused(
        &send_to(&server, "PUT", url, &png, "hi"),
        415,
        "unsupported_type",
    );
    // A forged or altered URL.
    let forged = url.replace("sig=", "sig=AAAA");
    assert_refused(
        &send_to(&server, "PUT", &forged, &ct, "hi"),
        403,
        "bad_signature",
    );
    let other = url.replace(id, &uuid::Uuid::new_v4().to_string());
    assert_refused(
        &send_to(&server, "PUT", &other, &ct, "hi"),
        403,
        "bad_signature",
    );
    // An attachment whose bytes never came is not sent, and nobody hears of it.
    attach(&mut alice, 1, "lobby", "here", &[id]);
    assert_error(
        &alice.next_except(&["presence", "typing", "read"]),
        "file_not_found",
        Some(1),
        Some("lobby"),
    );
    bob.expect_silence(200);
    // Then the honest PUT lands; a second one is refused.
    assert_eq!(send_to(&server, "PUT", url, &ct, "honest").status, 201);
    assert_refused(
        &send_to(&server, "PUT", url, &ct, "again"),
        409,
        "already_uploaded",
    );
    attach(&mut alice, 2, "lobby", "", &[id]);
    let chat = bob.next_except(&["presence", "typing", "read"]);
    assert_eq!(
        (
            chat["content"].as_str(),
            chat["attachments"][0]["size"].as_u64()
        ),
        (Some(""), Some(6))
    );
    // A file of another room is not this room's.
    let elsewhere = upload(&server, "ops", "alice", "o.txt", "text/plain", "ops");
    attach(&mut alice, 3, "lobby", "x", &[&elsewhere]);
    let got = alice.next_except(&["presence", "typing", "read", "chat", "ack"]);
    assert_error(&got, "file_not_found", Some(3), Some("lobby"));
    // Too many, or malformed.
    let five = ["a", "b", "c", "d", "e"];
    attach(&mut alice, 4, "lobby", "x", &five);
    assert_error(
        &alice.next_except(&["presence", "typing", "read"]),
        "too_many_attachments",
        Some(4),
        Some("lobby"),
    );
    alice.send(json!({"type":"chat","id":5,"roomId":"lobby","attachments":"nope"}));
    assert_error(
        &alice.next_except(&["presence", "typing", "read"]),
        "invalid_attachments",
        Some(5),
        Some("lobby"),
    );
    // The hourly quota: 100 + 6... declared so far 100 + 3 bytes; 2,897 left.
    assert_eq!(
        ask_upload(&server, "lobby", "alice", "q.txt", "text/plain", 1000).status,
        201
    );
    assert_eq!(
        ask_upload(&server, "lobby", "alice", "q.txt", "text/plain", 1000).status,
        201
    );
    let r = ask_upload(&server, "lobby", "alice", "q.txt", "text/plain", 1000);
    assert_refused(&r, 429, "upload_quota_exceeded");
    let retry: u64 = r
        .header("Retry-After")
        .and_then(|s| s.parse().ok())
        .expect("Retry-After");
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(
        ask_upload(&server, "lobby", "bob", "q.txt", "text/plain", 1000).status,
        201,
        "per user"
    );
    bob.expect_silence(200);
}

#[test]
fn a_partial_upload_leaves_nothing_and_urls_expire() {
    let dir = files_dir();
    let server = server(&[("FILES_DIR", &dir), ("FILES_URL_TTL_SECS", "1")]);
    let asked = ask_upload(&server, "lobby", "alice", "a.txt", "text/plain", 100).json();
    let url = asked["url"].as_str().expect("url").to_owned();
    let id = asked["fileId"].as_str().expect("id").to_owned();
    // Half the body, then the client goes away.
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        let head = format!("PUT {url} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n");
        s.write_all(head.as_bytes()).expect("write");
        s.write_all(&[b'x'; 40]).expect("write");
    }
    let ok = hubbub_test_support::poll::wait_until(Duration::from_secs(5), || {
        !std::path::Path::new(&dir)
            .join(format!("{id}.part"))
            .exists()
    });
    assert!(ok, "the partial file is removed");
    assert!(!std::path::Path::new(&dir).join(&id).exists());
    std::thread::sleep(Duration::from_millis(2100));
    let ct = vec![("Content-Type".to_owned(), "text/plain".to_owned())];
    assert_refused(
        &send_to(&server, "PUT", &url, &ct, &"x".repeat(100)),
        403,
        "url_expired",
    );
}

#[test]
fn files_dir_keeps_files_across_a_restart() {
    let dir = files_dir();
    let env = [("JWT_HS256_SECRET", HS_SECRET), ("FILES_DIR", dir.as_str())];
    let server = Server::start(1, &env);
    let id = upload(
        &server,
        "lobby",
        "alice",
        "keep.txt",
        "text/plain",
        "still here",
    );
    let port = server.port;
    server.stop();
    let server = Server::start_on(port, 1, &env);
    let url = download_url(&server, &id, "bob");
    let got = send_to(&server, "GET", &url, &[], "");
    assert_eq!((got.status, got.body.as_str()), (200, "still here"));
    // A new node has a new signing key: the old URL does not hold, a new one is made.
    let mut v2 = member(&server, "alice", "lobby");
    attach(&mut v2, 1, "lobby", "", &[&id]);
    let chat = v2.next_except(&["presence", "typing", "read"]);
    assert_eq!(chat["attachments"][0]["name"], "keep.txt", "{chat}");
}

#[test]
fn with_files_off_uploads_and_attachments_are_refused() {
    let server = server(&[("FILES", "off")]);
    let r = ask_upload(&server, "lobby", "alice", "a.png", "image/png", 3);
    assert_refused(&r, 404, "files_disabled");
    let mut alice = member(&server, "alice", "lobby");
    attach(
        &mut alice,
        9,
        "lobby",
        "x",
        &[&uuid::Uuid::new_v4().to_string()],
    );
    let got = alice.next_except(&["presence", "typing", "read"]);
    assert_error(&got, "files_unavailable", Some(9), Some("lobby"));
}

#[test]
fn without_auth_an_address_uploads_within_its_quota() {
    let dir = files_dir();
    let server = Server::start(
        1,
        &[("FILES_DIR", &dir), ("FILES_QUOTA_BYTES_PER_HOUR", "10")],
    );
    let body = json!({"name":"a.txt","contentType":"text/plain","size":6}).to_string();
    let asked = call(&server, "POST", "/api/rooms/lobby/uploads", None, &body);
    assert_eq!(asked.status, 201, "{}", asked.body);
    let r = call(&server, "POST", "/api/rooms/lobby/uploads", None, &body);
    assert_refused(&r, 429, "upload_quota_exceeded");
}
