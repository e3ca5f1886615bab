//! STORE=dynamodb against a real DynamoDB-API server (dynalite, started here on loopback).

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;
use hubbub_test_support::dynalite::{self, Dynalite};
use hubbub_test_support::{free_port, http};

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
    server.signal("TERM");
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn messages_are_stored_and_history_and_seq_survive_a_restart() {
    let db = Dynalite::start_on(free_port());
    let env = dynamo_env(&db.endpoint());
    let port = free_port();
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
    let db_port = free_port();
    let env = dynamo_env(&dynalite::endpoint(db_port));
    let server = start(free_port(), &env);
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

/// A DynamoDB endpoint that answers slowly: a TCP proxy to `upstream` that holds every
/// chunk of a request for `delay` before passing it on (responses pass at once).
struct SlowProxy {
    port: u16,
}

impl SlowProxy {
    fn start(upstream: u16, delay: Duration) -> SlowProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("the proxy's address").port();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let mut buf = vec![0; 64 * 1024];
                    while let Ok(n @ 1..) = c_read.read(&mut buf) {
                        std::thread::sleep(delay);
                        if s_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                let (mut s_read, mut c_write) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_read, &mut c_write);
                    let _ = c_write.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        SlowProxy { port }
    }

    fn endpoint(&self) -> String {
        dynalite::endpoint(self.port)
    }
}

/// One SIGTERM case: the server's settings and how much it is sent.
struct Drain<'a> {
    /// A fresh table per case.
    table: &'a str,
    workers: u16,
    batch: u8,
    writers: u8,
    rooms: usize,
    per_room: u64,
    /// The store is slow enough that records must still be queued at the signal.
    expect_queued: bool,
}

/// `rooms × per_room` messages, accepted and broadcast, then SIGTERM at once: every one
/// of them must be in the table after the exit.
fn sigterm_drains(db: &Dynalite, endpoint: &str, case: Drain<'_>) {
    let Drain {
        table,
        workers,
        batch,
        writers,
        rooms,
        per_room,
        expect_queued,
    } = case;
    let mut env = dynamo_env(endpoint);
    env.push(("DYNAMODB_TABLE", table.into()));
    env.push(("PERSIST_BATCH_SIZE", batch.to_string()));
    env.push(("PERSIST_WORKERS", writers.to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_on(free_port(), workers, &env);
    wait_for(&server, "storage ok", |h| h["storage"] == "ok", "/health");
    let mut clients: Vec<_> = (0..rooms)
        .map(|r| server.connect(&format!("room=drain{r}&userId=u{r}")))
        .collect();
    for i in 0..per_room {
        for c in clients.iter_mut() {
            c.chat(&format!("m{i}"));
        }
    }
    for c in clients.iter_mut() {
        for i in 1..=per_room {
            assert_eq!(c.next_chat().seq, i);
        }
    }
    for c in clients {
        c.close();
    }
    if expect_queued {
        let depth = server.get_json("/api/analytics")["persistence"]["queueDepth"].as_u64();
        assert!(
            depth > Some(0),
            "{table}: the drain has work to do: {depth:?}"
        );
    }
    // An HTTP client stays connected between requests (a dashboard polling with
    // keep-alive): the drain must not depend on its connection having gone.
    let mut poller = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    {
        use std::io::Write;
        poller
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(http::read_response(&mut poller).unwrap().status, 200);
    }
    let started = Instant::now();
    stop(server);
    drop(poller);
    let took = started.elapsed();
    assert_eq!(
        db.count_items_in(table),
        rooms as u64 * per_room,
        "{table} (WORKERS={workers}, batch {batch}, {writers} writers): every accepted message \
         written before the exit ({took:?})"
    );
}

#[test]
fn sigterm_drains_a_fast_store_at_several_batch_sizes_and_worker_counts() {
    let db = Dynalite::start_on(free_port());
    let endpoint = db.endpoint();
    let case = |table, workers, batch, writers, rooms, per_room| Drain {
        table,
        workers,
        batch,
        writers,
        rooms,
        per_room,
        expect_queued: false,
    };
    sigterm_drains(&db, &endpoint, case("drain-fast-1", 1, 25, 4, 5, 100));
    sigterm_drains(&db, &endpoint, case("drain-fast-2", 2, 5, 1, 5, 100));
    // The defaults (batches of 25, 4 writers), 2,000 messages over 10 rooms.
    sigterm_drains(&db, &endpoint, case("drain-fast-3", 2, 25, 4, 10, 200));
}

#[test]
fn sigterm_drains_a_slow_store_at_several_batch_sizes_and_worker_counts() {
    let db = Dynalite::start_on(free_port());
    // Every request waits 25 ms: 500 records in batches of 5 with one writer take ≈ 2.5 s,
    // so most are still queued when the signal comes.
    let slow = SlowProxy::start(db.port, Duration::from_millis(25));
    let endpoint = slow.endpoint();
    let case = |table, workers, batch, writers| Drain {
        table,
        workers,
        batch,
        writers,
        rooms: 5,
        per_room: 100,
        expect_queued: true,
    };
    sigterm_drains(&db, &endpoint, case("drain-slow-1", 1, 5, 1));
    sigterm_drains(&db, &endpoint, case("drain-slow-2", 2, 10, 2));
}

/// `GET /api/rooms/{id}/messages?before=S` pages back by seq: over 10,000 messages sent
/// as fast as one client can (many share a millisecond), every message comes exactly
/// once and each page in order, from memory (HISTORY_SIZE 10,000) and from the table.
#[test]
fn history_pages_back_and_on_by_seq_over_ten_thousand_messages_with_tied_timestamps() {
    const N: u64 = 10_000;
    let db = Dynalite::start_on(free_port());
    let memory = vec![
        ("RATE_LIMIT_PER_SEC", "0".to_owned()),
        ("PRESENCE", "false".to_owned()),
        ("HISTORY_SIZE", N.to_string()),
    ];
    for (store, env) in [("memory", memory), ("dynamodb", dynamo_env(&db.endpoint()))] {
        let server = start(free_port(), &env);
        let mut c = server.connect("room=pages&userId=pat");
        let mut stamps = std::collections::HashSet::new();
        for batch in 0..N / 100 {
            for i in 0..100 {
                c.chat(&format!("m{}", batch * 100 + i + 1));
            }
            for _ in 0..100 {
                stamps.insert(c.next_chat().timestamp);
            }
        }
        assert!(
            (stamps.len() as u64) < N / 2,
            "{store}: most messages share a millisecond ({} stamps)",
            stamps.len()
        );
        if store == "dynamodb" {
            wait_for(
                &server,
                "all stored",
                |a| a["persistence"]["written"].as_u64() >= Some(N),
                "/api/analytics",
            );
        }
        // Back from the newest page, following nextBefore until it is null.
        let mut seen = Vec::new();
        let mut path = "/api/rooms/pages/messages?limit=200".to_owned();
        for pages in 0.. {
            let body = server.get_json(&path);
            let page = common::seqs(&body);
            assert!(pages < N / 200, "{store}: more pages than messages allow");
            assert!(
                seen.first()
                    .is_none_or(|&oldest| page[page.len() - 1] + 1 == oldest),
                "{store}: a page right before the last"
            );
            assert!(
                page.windows(2).all(|w| w[0] + 1 == w[1]),
                "{store}: {page:?}"
            );
            assert!(
                page.len() == 200 || page[0] == 1,
                "{store}: a short page only at the start"
            );
            let newest_page = pages == 0;
            assert_eq!(
                body["nextAfter"].as_u64(),
                (!newest_page).then(|| page[page.len() - 1]),
                "{store}: nothing after the newest page, more after every other"
            );
            seen.splice(0..0, page.iter().copied());
            match body["nextBefore"].as_u64() {
                Some(next) => {
                    assert_eq!(next, page[0], "{store}");
                    path = format!("/api/rooms/pages/messages?limit=200&before={next}");
                }
                None => {
                    assert_eq!(page[0], 1, "{store}: nextBefore is null only at the start");
                    break;
                }
            }
        }
        assert_eq!(
            seen,
            (1..=N).collect::<Vec<_>>(),
            "{store}: each message once"
        );
        // On from the start, following nextAfter until it is null.
        let mut on = Vec::new();
        let mut after = 0;
        loop {
            let body = server.get_json(&format!(
                "/api/rooms/pages/messages?limit=200&after={after}"
            ));
            let page = common::seqs(&body);
            assert!(
                page.first().is_none_or(|&s| s == after + 1),
                "{store}: {page:?}"
            );
            on.extend(page.iter().copied());
            match body["nextAfter"].as_u64() {
                Some(next) => after = next,
                None => break,
            }
            assert!(on.len() as u64 <= N, "{store}: more than every message");
        }
        assert_eq!(
            on,
            (1..=N).collect::<Vec<_>>(),
            "{store}: each message once, forward"
        );
        let beyond = server.get_json(&format!("/api/rooms/pages/messages?after={N}"));
        assert_eq!(beyond["count"], 0, "{store}: {beyond}");
        assert!(beyond["nextAfter"].is_null() && beyond["nextBefore"].is_null());
        for (query, code) in [
            ("after=-1", "invalid_after"),
            ("after=x", "invalid_after"),
            ("after=3&before=9", "invalid_cursor"),
        ] {
            let r = server.get(&format!("/api/rooms/pages/messages?{query}"));
            assert_eq!(r.status, 400, "{store}: {query}");
            assert!(r.body.contains(code), "{store}: {query}: {}", r.body);
        }
        for bad in ["0", "-3", "x", ""] {
            let r = server.get(&format!("/api/rooms/pages/messages?before={bad}"));
            assert_eq!(r.status, 400, "{store}: before={bad}");
            assert!(r.body.contains("invalid_before"), "{}", r.body);
        }
        stop(server);
    }
}
