//! STORE=dynamodb against a real DynamoDB-API server (dynalite, started here on loopback).

mod common;

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;

struct Dynalite {
    port: u16,
    child: Child,
}

impl Dynalite {
    fn start_on(port: u16) -> Dynalite {
        let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tools/dynalite/node_modules/.bin/dynalite");
        assert!(
            bin.exists(),
            "dynalite is not installed: run `npm ci` in tools/dynalite (scripts/test does)"
        );
        let child = Command::new(bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--createTableMs",
                "0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "dynalite did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Dynalite { port, child }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Items in the messages table, counted by a Scan: no index and no order involved
    /// (dynalite's index pagination over tied timestamps is not what is under test).
    fn count_items(&self) -> u64 {
        use std::io::Write;
        let body = r#"{"TableName":"chat-messages","Select":"COUNT"}"#;
        // dynalite wants a signature's shape, not a valid one.
        let request = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.0\r\n\
             X-Amz-Target: DynamoDB_20120810.Scan\r\nX-Amz-Date: 20260101T000000Z\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let r = common::read_response(&mut s).unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert!(
            v.get("LastEvaluatedKey").is_none(),
            "one page holds them all"
        );
        v["Count"].as_u64().unwrap()
    }
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dynamo_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("STORE", "dynamodb".into()),
        ("DYNAMODB_ENDPOINT", endpoint.into()),
        ("AWS_ACCESS_KEY_ID", "local".into()),
        ("AWS_SECRET_ACCESS_KEY", "local".into()),
        ("RATE_LIMIT_PER_SEC", "0".into()),
        ("PRESENCE", "false".into()),
    ]
}

fn start(port: u16, env: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start_on(port, 2, &env)
}

fn wait_for(
    server: &Server,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
    path: &str,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = server.get_json(path);
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(mut server: Server) {
    server.signal("-TERM");
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn messages_are_stored_and_history_and_seq_survive_a_restart() {
    let db = Dynalite::start_on(common::free_port());
    let env = dynamo_env(&db.endpoint());
    let port = common::free_port();
    let server = start(port, &env);
    wait_for(&server, "storage ok", |h| h["storage"] == "ok", "/health");
    let mut c = server.connect("room=durable&userId=dora&username=Dora");
    for i in 1..=500 {
        c.chat(&format!("m{i}"));
    }
    for i in 1..=500u64 {
        assert_eq!(c.next_chat().seq, i);
    }
    let a = server.get_json("/api/analytics");
    assert_eq!(a["persistence"]["enabled"], true);
    // SIGTERM right away: the queue is drained before the process exits.
    stop(server);

    let server = start(port, &env);
    let mut again = server.connect("room=durable&userId=dora");
    let backlog: Vec<u64> = (0..50).map(|_| again.next_chat().seq).collect();
    assert_eq!(
        backlog,
        (451..=500).collect::<Vec<_>>(),
        "backlog warmed from the table"
    );
    again.chat("after restart");
    let m = again.next_chat();
    assert_eq!(
        (m.seq, m.content.as_str()),
        (501, "after restart"),
        "seq continues"
    );
    let h = wait_for(
        &server,
        "501 stored",
        |h| h["messages"][199]["seq"] == 501,
        "/api/rooms/durable/messages?limit=200",
    );
    let seqs = common::seqs(&h);
    assert_eq!(
        seqs,
        (302..=501).collect::<Vec<_>>(),
        "from the table, newest 200, oldest first"
    );
    let first = &h["messages"][0];
    assert_eq!(
        (
            first["userId"].as_str(),
            first["username"].as_str(),
            first["type"].as_str()
        ),
        (Some("dora"), Some("Dora"), Some("chat"))
    );
    // Two more, a few milliseconds apart: 500 messages of the same millisecond make the
    // index's tie order (which DynamoDB leaves undefined) the subject instead.
    for text in ["later 1", "later 2"] {
        std::thread::sleep(Duration::from_millis(5));
        again.chat(text);
        again.next_chat();
    }
    let u = wait_for(
        &server,
        "user history",
        |u| u["messages"][2]["content"] == "later 2",
        "/api/users/dora/messages?limit=3",
    );
    let contents = common::contents(&u);
    assert_eq!(contents, ["after restart", "later 1", "later 2"]);
    assert_eq!(u["userId"], "dora");
    let a = wait_for(
        &server,
        "written",
        |a| a["persistence"]["written"] == 3,
        "/api/analytics",
    );
    assert_eq!(a["persistence"]["failed"], 0);
    assert!(server
        .get("/metrics")
        .body
        .contains("hubbub_persist_written_total 3\n"));
    stop(server);
}

#[test]
fn chat_works_while_the_store_is_down_and_catches_up_when_it_returns() {
    let db_port = common::free_port();
    let env = dynamo_env(&format!("http://127.0.0.1:{db_port}"));
    let server = start(common::free_port(), &env);
    assert_eq!(server.get_json("/health")["storage"], "unavailable");
    let mut c = server.connect("room=offline&userId=o");
    c.chat("while down");
    assert_eq!(c.next_chat().content, "while down");
    let _db = Dynalite::start_on(db_port);
    wait_for(&server, "storage ok", |h| h["storage"] == "ok", "/health");
    wait_for(
        &server,
        "queued message written",
        |a| a["persistence"]["written"] == 1,
        "/api/analytics",
    );
    let h = wait_for(
        &server,
        "history from the table",
        |h| h["count"] == 1,
        "/api/rooms/offline/messages",
    );
    assert_eq!(h["messages"][0]["content"], "while down");
}

#[test]
fn sigterm_writes_everything_queued_before_exiting() {
    let db = Dynalite::start_on(common::free_port());
    let env = dynamo_env(&db.endpoint());
    let port = common::free_port();
    let server = start(port, &env);
    wait_for(&server, "storage ok", |h| h["storage"] == "ok", "/health");
    let mut clients: Vec<_> = (0..10)
        .map(|r| server.connect(&format!("room=burst{r}&userId=u{r}")))
        .collect();
    for i in 0..200 {
        for c in clients.iter_mut() {
            c.chat(&format!("m{i}"));
        }
    }
    for c in clients.iter_mut() {
        for i in 1..=200u64 {
            assert_eq!(c.next_chat().seq, i);
        }
    }
    for c in clients {
        c.close();
    }
    // 2,000 messages accepted and broadcast, most still queued for the table: stop now.
    stop(server);
    assert_eq!(
        db.count_items(),
        2000,
        "every message written before the exit"
    );
}
