//! Start-up errors, shutdown, slow consumers, cross-core fan-out and idle connections.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Client, Server};
use hubbub_core::protocol::ServerFrame;
use hubbub_test_support::free_port;
use hubbub_test_support::process::Process;

fn run_with_env(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .env_clear()
        .env("PORT", free_port().to_string())
        .env("BIND", "127.0.0.1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn bad_configuration_stops_start_naming_the_variable() {
    for (var, value) in [
        ("PERSIST_BATCH_SIZE", "26"),
        ("PORT", "eighty"),
        ("STORE", "redis"),
        ("WORKERS", "0"),
        ("RATE_LIMIT_PER_SEC", "fast"),
        ("HISTORY_SIZE", "-1"),
        ("ALLOWED_ORIGINS", " , "),
        ("LOG_LEVEL", "loud"),
        ("IO_URING", "maybe"),
        ("MAX_HISTORY_BYTES", "1000"),
        ("PRESENCE_MAX_MEMBERS", "0"),
        ("AUTH_SECRET", "31-bytes-is-one-byte-too-short"),
        ("JWT_HS256_SECRET", "short"),
        ("JWT_RS256_PUBLIC_KEY_FILE", "/nonexistent/key.pem"),
        ("JWT_RS256_PUBLIC_KEY_FILE", "/etc/hostname"),
        ("JWT_ISSUER", "https://id.example"),
        ("JWT_LEEWAY_SECS", "3601"),
        ("ACCOUNT_TOKEN_TTL_SECS", "10"),
        ("SEARCH", "maybe"),
        ("SEARCH_MAX_MESSAGES", "10"),
        ("SEARCH_QUEUE_SIZE", "0"),
        ("SEARCH_REBUILD", "true"),
        ("SEARCH_DIR", "/proc/hubbub-search"),
        ("FILES", "maybe"),
        ("FILES_DIR", "/proc/hubbub-files"),
        ("FILES_S3_BUCKET", "Not_A_Bucket"),
        ("FILES_S3_ENDPOINT", "ftp://127.0.0.1"),
        ("MAX_FILE_BYTES", "0"),
        ("FILES_ALLOWED_TYPES", "png"),
        ("FILES_QUOTA_BYTES_PER_HOUR", "0"),
        ("FILES_URL_TTL_SECS", "0"),
    ] {
        let (code, stderr) = run_with_env(&[(var, value)]);
        assert!(matches!(code, Some(c) if c != 0), "{var}={value} started");
        assert!(
            stderr.contains(var),
            "{var}={value}: message does not name it: {stderr}"
        );
    }
    let help = Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for var in [
        "PORT",
        "BIND",
        "WORKERS",
        "LOG_LEVEL",
        "STORE",
        "DYNAMODB_ENDPOINT",
        "DYNAMODB_REGION",
        "DYNAMODB_TABLE",
        "ALLOWED_ORIGINS",
        "AUTH_SECRET",
        "JWT_HS256_SECRET",
        "JWT_RS256_PUBLIC_KEY_FILE",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
        "JWT_LEEWAY_SECS",
        "ACCOUNT_TOKEN_TTL_SECS",
        "RATE_LIMIT_PER_SEC",
        "RATE_LIMIT_BURST",
        "PERSIST_BATCH_SIZE",
        "PERSIST_QUEUE_SIZE",
        "PERSIST_WORKERS",
        "HISTORY_SIZE",
        "MAX_HISTORY_BYTES",
        "PRESENCE_MAX_MEMBERS",
        "SEARCH",
        "SEARCH_DIR",
        "SEARCH_MAX_MESSAGES",
        "SEARCH_QUEUE_SIZE",
        "SEARCH_REBUILD",
        "FILES",
        "FILES_DIR",
        "FILES_S3_BUCKET",
        "FILES_S3_ENDPOINT",
        "FILES_S3_REGION",
        "MAX_FILE_BYTES",
        "FILES_ALLOWED_TYPES",
        "FILES_QUOTA_BYTES_PER_HOUR",
        "FILES_URL_TTL_SECS",
    ] {
        assert!(help.contains(&format!("[env: {var}")), "--help lacks {var}");
    }
}

#[test]
fn port_in_use_is_a_clear_error() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .env_clear()
        .env("PORT", &port)
        .env("BIND", "127.0.0.1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("PORT={port}")));
}

#[test]
fn sigterm_closes_every_connection_with_1001_and_exits_zero() {
    let mut server = Server::start(2, &[]);
    let mut clients: Vec<Client> = (0..6)
        .map(|i| server.connect(&format!("room=s{i}")))
        .collect();
    for c in clients.iter_mut() {
        c.frame(); // own join: the connection is live
    }
    let started = Instant::now();
    server.signal("TERM");
    for c in clients.iter_mut() {
        assert_eq!(c.close_code(), Some(1001));
    }
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "still accepting"
    );
}

#[test]
fn sigint_also_shuts_down() {
    let mut server = Server::start(1, &[]);
    server.signal("INT");
    let started = Instant::now();
    while server.child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.child.try_wait().unwrap().unwrap().success());
}

#[test]
fn cross_core_fanout_delivers_every_message_once_in_order() {
    cross_core_fanout(&[]);
}

/// The epoll fallback (what runs where io_uring is blocked): reads, writes with
/// `sendmsg`, cross-worker fan-out.
#[test]
fn cross_core_fanout_on_the_epoll_fallback() {
    cross_core_fanout(&[("IO_URING", "false")]);
}

fn cross_core_fanout(env: &[(&str, &str)]) {
    let server = Server::start(2, env);
    let rooms = 8;
    let per_room = 5;
    let sends = 5;
    // Each connection is live (past its backlog) once it sees its own join.
    let mut clients: Vec<(usize, Client)> = (0..rooms * per_room)
        .map(|i| {
            let mut c = server.connect(&format!("room=x{}&userId=u{i}", i % rooms));
            while !matches!(c.frame(), ServerFrame::Join(j) if j.user_id == format!("u{i}")) {}
            (i % rooms, c)
        })
        .collect();
    for (i, (_, c)) in clients.iter_mut().enumerate() {
        for k in 0..sends {
            c.chat(&format!("{i}:{k}"));
        }
    }
    let mut received: HashMap<usize, Vec<Vec<String>>> = HashMap::new();
    for (room, c) in clients.iter_mut() {
        let mut seqs = Vec::new();
        let mut contents = Vec::new();
        for _ in 0..per_room * sends {
            let m = c.next_chat();
            assert_eq!(m.room_id, format!("x{room}"), "nothing from another room");
            seqs.push(m.seq);
            contents.push(m.content);
        }
        assert_eq!(
            seqs,
            (1..=(per_room * sends) as u64).collect::<Vec<_>>(),
            "room x{room}: gap, duplicate or reorder"
        );
        c.expect_silence(50);
        received.entry(*room).or_default().push(contents);
    }
    for (room, views) in received {
        assert!(
            views.windows(2).all(|w| w[0] == w[1]),
            "room {room}: members saw different orders"
        );
    }
    let a = server.analytics_until(|a| a["totalMessages"] == 200);
    assert_eq!(a["totalMessages"], 200);
    // 1000 chat frames, plus each room's joins: the k-th joiner's join reaches k members.
    assert_eq!(a["totalDeliveries"], 1000 + 8 * (1 + 2 + 3 + 4 + 5));
    assert!(
        a["workers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["connections"].as_u64().unwrap() > 0),
        "both workers hold connections"
    );
}

#[test]
fn slow_consumer_is_closed_and_nobody_else_loses_anything() {
    slow_consumer(&[]);
}

/// On the epoll fallback a full socket is waited on with EPOLLOUT instead of the ring.
#[test]
fn slow_consumer_on_the_epoll_fallback() {
    slow_consumer(&[("IO_URING", "false")]);
}

fn slow_consumer(extra: &[(&str, &str)]) {
    let mut env = vec![
        ("RATE_LIMIT_PER_SEC", "0"),
        ("PRESENCE", "false"),
        ("MAX_QUEUED_BYTES", "65536"),
    ];
    env.extend_from_slice(extra);
    let server = Server::start(1, &env);
    let total = 6000u64;
    // Never reads a byte after the handshake, and its kernel buffers are tiny: the server
    // can never write the close frame to it.
    let slow = common::stuck_client(server.port, "room=slow&userId=slow");
    let mut good = server.connect("room=slow&userId=good");
    let reader = std::thread::spawn(move || {
        let mut seqs = Vec::with_capacity(total as usize);
        while (seqs.len() as u64) < total {
            seqs.push(good.next_chat().seq);
        }
        // Handed back, so it stays connected: the count below must drop by `slow` alone.
        (seqs, good)
    });
    let mut sender = server.connect("room=slow&userId=sender");
    let content = "x".repeat(1000);
    for _ in 0..total {
        sender.chat(&content);
        sender.next_chat();
    }
    let (seqs, _good) = reader.join().unwrap();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
    let a = server
        .analytics_until(|a| a["slowConsumerDisconnects"] == 1 && a["activeConnections"] == 2);
    assert_eq!(a["slowConsumerDisconnects"], 1);
    assert_eq!(
        a["activeConnections"], 2,
        "only the slow consumer was closed"
    );
    // The server let go of it even though the close frame could never be written.
    drop(slow);
}

#[test]
fn idle_connections_are_pinged_then_closed() {
    let server = Server::start(1, &[("IDLE_TIMEOUT_SECS", "2"), ("PRESENCE", "false")]);
    let mut silent = server.connect("room=idle");
    let mut lively = server.connect("room=idle");
    // `lively` keeps reading, so its client answers pings with pongs.
    lively
        .ws
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let started = Instant::now();
    let mut pinged = false;
    while started.elapsed() < Duration::from_millis(3500) {
        match lively.ws.read() {
            Ok(tungstenite::Message::Ping(_)) => pinged = true,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::Io(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(pinged, "an idle connection is pinged");
    lively
        .ws
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    lively.chat("still here");
    assert_eq!(lively.next_chat().content, "still here");
    // `silent` never read, so never answered: closed after 2 s of silence.
    let mut saw_ping = false;
    let code = loop {
        match silent.ws.read() {
            Ok(tungstenite::Message::Ping(_)) => saw_ping = true,
            Ok(tungstenite::Message::Close(c)) => break c.map(|c| u16::from(c.code)),
            Ok(tungstenite::Message::Text(t)) => {
                assert!(
                    !matches!(ServerFrame::decode(t.as_bytes()), Ok(ServerFrame::Chat(_)))
                        || t.contains("still here")
                )
            }
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    };
    assert!(saw_ping);
    assert_eq!(code, Some(1000));
}

#[test]
fn json_logs_and_nothing_per_message_at_info() {
    use std::io::{BufRead, BufReader};
    let port = free_port();
    let mut child = Process::spawn(
        Command::new(env!("CARGO_BIN_EXE_hubbub"))
            .env_clear()
            .envs([
                ("PORT", port.to_string().as_str()),
                ("BIND", "127.0.0.1"),
                ("WORKERS", "2"),
            ])
            .envs([
                ("LOG_LEVEL", "info"),
                ("LOG_FORMAT", "json"),
                ("RATE_LIMIT_PER_SEC", "0"),
            ])
            .stderr(std::process::Stdio::piped()),
        "hubbub",
    );
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["fields"]["message"], "hubbub listening");
    assert_eq!(first["fields"]["workers"], 2);
    let server = Server { port, child };
    let mut c = server.connect("room=logs");
    for i in 0..50 {
        c.chat(&format!("m{i}"));
    }
    for _ in 0..50 {
        c.next_chat();
    }
    c.close();
    server.signal("TERM");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    for line in &rest {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string());
    }
    assert!(
        rest.len() <= 5,
        "start and stop only, nothing per message: {rest:?}"
    );
}
