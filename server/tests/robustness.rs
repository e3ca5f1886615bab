//! One bad client must not hurt another, and bad input gets its defined answer
//! (PROTOCOL.md): floods, pings that are never read, oversized heads, binary frames, too
//! many connections, clients that never read their HTTP answers.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Server;
use hubbub_test_support::http;

/// A client frame (masked, final) with `opcode` and `payload`.
fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One client streams tiny frames as fast as loopback takes them (and never reads);
/// another client's chat round trip and `/health` must not notice.
#[test]
fn a_flooding_client_does_not_delay_anyone_else() {
    let server = Server::start(1, &[("PRESENCE", "false")]);
    let mut flooder = server.connect("room=flood&userId=flooder");
    let mut stream = flooder.ws.get_mut().try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let burst: Vec<u8> = (0..8192).flat_map(|_| masked(0x1, b"{}")).collect();
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) {
                match stream.write_all(&burst) {
                    Ok(()) => sent += burst.len(),
                    Err(_) => break,
                }
            }
            sent
        })
    };
    std::thread::sleep(Duration::from_millis(300));

    let health = {
        let port = server.port;
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut took = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let r = http::send(
                    port,
                    "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                );
                assert_eq!(r.map(|r| r.status).ok(), Some(200), "/health answered");
                took.push(started.elapsed());
                std::thread::sleep(Duration::from_millis(50));
            }
            took
        })
    };
    let mut probe = server.connect("room=calm&userId=probe");
    let mut round_trips = Vec::new();
    for i in 0..16 {
        let started = Instant::now();
        probe.chat(&format!("ping {i}"));
        assert_eq!(probe.next_chat().content, format!("ping {i}"));
        round_trips.push(started.elapsed());
        // Under the default rate limit (5 per second).
        std::thread::sleep(Duration::from_millis(250));
    }
    // A fresh client can still connect.
    let started = Instant::now();
    let newcomer = server.connect("room=calm&userId=newcomer");
    let connect_took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut health = health.join().unwrap();
    drop(newcomer);
    drop(flooder);
    let sent = flood.join().unwrap();

    let a = server.get_json("/api/analytics");
    let limited = a["rateLimited"].as_u64().unwrap();
    round_trips.sort();
    health.sort();
    eprintln!(
        "flood: {} MB sent, {limited} frames rate-limited; chat round trip p50 {:?} max {:?}; \
         /health p50 {:?} max {:?} ({} probes); connect {connect_took:?}",
        sent / 1_000_000,
        percentile(&round_trips, 0.5),
        percentile(&round_trips, 1.0),
        percentile(&health, 0.5),
        percentile(&health, 1.0),
        health.len(),
    );
    assert!(
        limited > 100_000,
        "the flood was real: {limited} frames read and rate-limited"
    );
    // A debug build on a shared 2-core machine: a pass over the flooder's budget costs a
    // few milliseconds here (well under one in a release build; docs/PERFORMANCE.md).
    let bound = Duration::from_millis(100);
    assert!(
        percentile(&round_trips, 1.0) < bound,
        "chat round trips under the flood: {round_trips:?}"
    );
    assert!(
        percentile(&health, 1.0) < bound,
        "/health under the flood: {health:?}"
    );
    assert!(
        connect_took < bound * 2,
        "a new connection: {connect_took:?}"
    );
}

/// Pongs count toward the slow-consumer bound like every other frame owed.
#[test]
fn a_client_that_pings_and_never_reads_is_a_slow_consumer() {
    let server = Server::start(1, &[("PRESENCE", "false"), ("MAX_QUEUED_BYTES", "65536")]);
    let mut pinger = common::stuck_client(server.port, "room=pings&userId=pinger");
    let mut other = server.connect("room=pings&userId=other");
    let burst: Vec<u8> = (0..1000).flat_map(|_| masked(0x9, &[7; 125])).collect();
    pinger
        .set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // 127 KiB of pongs owed per burst; the server closes it well before 10 s.
    while Instant::now() < deadline {
        if pinger.write_all(&burst).is_err() {
            break;
        }
        let a = server.get_json("/api/analytics");
        if a["slowConsumerDisconnects"] == 1 {
            break;
        }
    }
    let a = server.analytics_until(|a| a["slowConsumerDisconnects"] == 1);
    assert_eq!(a["slowConsumerDisconnects"], 1, "closed with 1008: {a}");
    // The other client is untouched.
    other.chat("still here");
    assert_eq!(other.next_chat().content, "still here");
}

#[test]
fn binary_frames_over_the_text_limit_are_closed_with_1003() {
    let server = Server::start(1, &[]);
    let mut c = server.connect("room=bin");
    c.ws.send(tungstenite::Message::binary(vec![1u8; 9000]))
        .unwrap();
    assert_eq!(c.close_code(), Some(1003));
}

/// The server stops reading a head at 16 KiB, so the rest is unread when it answers. A
/// close with unread bytes makes the kernel reset the connection, and a reset can destroy
/// the answer before the client reads it (or fail the client's send, so it never reads).
/// The 431 must come with a clean end of the stream instead.
#[test]
fn an_oversized_head_gets_its_431_and_a_clean_close_not_a_reset() {
    let server = Server::start(1, &[]);
    for _ in 0..3 {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let head = format!(
            "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(64 * 1024)
        );
        s.write_all(head.as_bytes()).unwrap();
        let r = http::read_response(&mut s).expect("the answer");
        assert_eq!(r.status, 431);
        assert_eq!(r.json()["error"], "header_too_large");
        let mut rest = Vec::new();
        match s.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty()),
            Err(e) => panic!("the connection ended with {e} instead of a clean close"),
        }
    }
}

/// Every connection holds a descriptor: HTTP connections count toward
/// `MAX_CONNECTIONS` with WebSocket ones.
#[test]
fn http_connections_count_toward_max_connections() {
    let server = Server::start(1, &[("MAX_CONNECTIONS", "3")]);
    let ws = server.connect("room=cap");
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let r = server.get("/health");
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"], "at_capacity");
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(5);
    let r = loop {
        let r = server.get("/health");
        if r.status == 200 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(r.status, 200, "a place again once they closed");
    drop(ws);
}

#[test]
fn a_keep_alive_connection_serves_at_most_1000_requests() {
    let server = Server::start(1, &[]);
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for i in 1..=1000 {
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let r = http::read_response(&mut s).unwrap();
        assert_eq!(r.status, 200);
        let close = r.header("connection") == Some("close");
        assert_eq!(close, i == 1000, "request {i}");
    }
    let mut rest = Vec::new();
    assert_eq!(
        s.read_to_end(&mut rest).unwrap(),
        0,
        "then the server closes"
    );
}

/// A client that pipelines requests and never reads the answers is dropped once a write
/// has waited 10 s, instead of holding its connection (and a task) forever.
#[test]
fn an_http_client_that_never_reads_is_dropped() {
    let server = Server::start(1, &[]);
    let mut s = common::tiny_receive_buffer(server.port);
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    // Fewer than the 1000 a connection may ask, far more answers than its buffers hold.
    let requests = "GET /api/analytics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(900);
    let _ = s.write_all(requests.as_bytes());
    let open = |server: &Server| -> String {
        let metrics = server.get("/metrics").body;
        metrics
            .lines()
            .find(|l| l.starts_with("hubbub_http_connections "))
            .unwrap_or_default()
            .to_owned()
    };
    let stuck_at = Instant::now();
    // Its own scrape is the other one.
    assert_eq!(open(&server), "hubbub_http_connections 2");
    let deadline = Instant::now() + Duration::from_secs(25);
    while open(&server) != "hubbub_http_connections 1" {
        assert!(
            Instant::now() < deadline,
            "still connected: {}",
            open(&server)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let took = stuck_at.elapsed();
    assert!(
        took > Duration::from_secs(7),
        "dropped for not reading, after {took:?}"
    );
}

/// Out of descriptors, every accept fails at once: one warning, not one per try.
#[test]
fn running_out_of_descriptors_is_logged_once_not_per_accept() {
    let log = std::env::temp_dir().join(format!("hubbub-emfile-{}.log", std::process::id()));
    let server = Server::start_logging_to(1, &[("MAX_CONNECTIONS", "1000")], &log);
    let fds = std::fs::read_dir(format!("/proc/{}/fd", server.child.id()))
        .unwrap()
        .count();
    let limit = fds + 8;
    let status = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &server.child.id().to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success());
    let held: Vec<TcpStream> = (0..40)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", server.port)).ok())
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let text = std::fs::read_to_string(&log).unwrap();
    let warnings = text.matches("accept failed").count();
    assert!(
        (1..=2).contains(&warnings),
        "{warnings} warnings in 2 s:\n{text}"
    );
    drop(held);
    let _ = std::fs::remove_file(&log);
}

/// `since=0` on a room with its whole history retained (≈ 1.1 MB, four times the
/// slow-consumer bound here): streamed as the socket drains, then live, never a 1008.
#[test]
fn resuming_over_the_whole_history_stays_connected() {
    for workers in [1, 2] {
        let server = Server::start(
            workers,
            &[
                ("RATE_LIMIT_PER_SEC", "0"),
                ("PRESENCE", "false"),
                ("MAX_QUEUED_BYTES", "262144"),
            ],
        );
        let mut talker = server.connect("room=resume&userId=talker");
        let long = "r".repeat(1000);
        // In step: a talker that sent all 900 before reading would itself be owed past
        // the bound on a loaded machine (and rightly closed as a slow consumer).
        for i in 1..=900u64 {
            talker.chat(&long);
            assert_eq!(talker.next_chat().seq, i);
        }
        let mut resumer = server.connect("room=resume&userId=resumer&since=0");
        // Live messages while the replay streams (or before the join reaches the room:
        // then they are in the replay); 920 retained of the 1000 a room keeps.
        for _ in 0..20 {
            talker.chat("live");
        }
        let seqs: Vec<u64> = (0..920).map(|_| resumer.next_chat().seq).collect();
        assert_eq!(seqs, (1..=920).collect::<Vec<_>>(), "WORKERS={workers}");
        talker.chat("after");
        assert_eq!(resumer.next_chat().content, "after");
        let a = server.get_json("/api/analytics");
        assert_eq!(a["slowConsumerDisconnects"], 0, "WORKERS={workers}");
    }
}

/// With one worker a message is read and delivered by the same hub: the latency still
/// runs from the read to the hand-over to the sockets, and is not a constant.
#[test]
fn fan_out_latency_is_measured_with_one_worker() {
    let server = Server::start(1, &[("RATE_LIMIT_PER_SEC", "0"), ("PRESENCE", "false")]);
    let mut members: Vec<_> = (0..200)
        .map(|i| server.connect(&format!("room=lat&userId=m{i}")))
        .collect();
    for i in 0..50 {
        members[0].chat(&format!("m{i}"));
    }
    for m in members.iter_mut() {
        for _ in 0..50 {
            m.next_chat();
        }
    }
    let a = server.get_json("/api/analytics");
    let p50 = a["latencyP50Ms"].as_f64().unwrap();
    let p99 = a["latencyP99Ms"].as_f64().unwrap();
    // Clamped to 1 µs, the old figures were all 0.001.
    assert!(p99 > 0.001, "p50 {p50} ms, p99 {p99} ms");
}
