//! Helpers for the integration tests: a minimal in-test chat server (std::net +
//! tungstenite) that can skip, repeat or withhold messages on purpose, a runner for the
//! built binary, and (in [`hubbub`]) the real server.

#![allow(dead_code)]
// tungstenite's handshake callback returns its (large) error response by value.
#![allow(clippy::result_large_err)]

pub mod hubbub;

use std::collections::HashMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hubbub_core::protocol::{decode_client_frame, encode_chat, ChatMessageRef};
use tungstenite::handshake::server::{Request, Response};
use tungstenite::Message;

/// Faults the fake server injects.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Never assign this seq (every member sees a gap).
    pub skip_seq: Option<u64>,
    /// Broadcast the message with this seq twice (every member sees a duplicate).
    pub dup_seq: Option<u64>,
    /// Do not deliver anything to the room's last member.
    pub starve_last_member: bool,
    /// Refuse every upgrade with this HTTP status.
    pub refuse_status: Option<u16>,
}

type Member = (u64, Arc<Mutex<TcpStream>>);
/// Room name → (last seq, members).
type Rooms = Arc<Mutex<HashMap<String, (u64, Vec<Member>)>>>;

/// A running fake server.
pub struct FakeServer {
    pub port: u16,
    /// Chat messages accepted (given a seq).
    pub accepted: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn server_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    hubbub_loadtest::frame::write_server_frame(&mut out, 0x1, true, payload);
    out
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_owned())
    })
}

/// Starts a fake server on a free port.
pub fn fake_server(faults: Faults) -> FakeServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let rooms: Rooms = Arc::default();
    let (acc, stp) = (accepted.clone(), stop.clone());
    std::thread::spawn(move || {
        let mut next_id = 0u64;
        for stream in listener.incoming() {
            if stp.load(Ordering::Relaxed) {
                break;
            }
            let Ok(stream) = stream else { continue };
            next_id += 1;
            let (id, rooms, acc) = (next_id, rooms.clone(), acc.clone());
            std::thread::spawn(move || serve(id, stream, faults, rooms, acc));
        }
    });
    FakeServer {
        port,
        accepted,
        stop,
    }
}

fn serve(id: u64, stream: TcpStream, faults: Faults, rooms: Rooms, accepted: Arc<AtomicU64>) {
    let _ = stream.set_nodelay(true);
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let mut room = String::from("global");
    let mut user = String::from("anonymous");
    let cb = |req: &Request, resp: Response| {
        let q = req.uri().query().unwrap_or("");
        if let Some(r) = query_param(q, "room") {
            room = r;
        }
        if let Some(u) = query_param(q, "userId") {
            user = u;
        }
        match faults.refuse_status {
            Some(status) => {
                let mut e = tungstenite::handshake::server::ErrorResponse::new(Some(
                    r#"{"error":"unavailable","message":"injected refusal"}"#.to_owned(),
                ));
                *e.status_mut() = tungstenite::http::StatusCode::from_u16(status)
                    .unwrap_or(tungstenite::http::StatusCode::SERVICE_UNAVAILABLE);
                Err(e)
            }
            None => Ok(resp),
        }
    };
    let Ok(mut ws) = tungstenite::accept_hdr(stream, cb) else {
        return;
    };
    let me: Member = (id, Arc::new(Mutex::new(writer)));
    rooms
        .lock()
        .expect("rooms")
        .entry(room.clone())
        .or_default()
        .1
        .push(me.clone());
    loop {
        let msg = match ws.read() {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        let Ok(frame) = decode_client_frame(msg.as_bytes()) else {
            continue;
        };
        let mut rooms = rooms.lock().expect("rooms");
        let Some((seq, members)) = rooms.get_mut(&room) else {
            continue;
        };
        *seq += 1;
        if Some(*seq) == faults.skip_seq {
            *seq += 1;
        }
        accepted.fetch_add(1, Ordering::Relaxed);
        let mut json = Vec::new();
        encode_chat(
            &mut json,
            &ChatMessageRef {
                message_id: "00000000-0000-7000-8000-000000000000",
                room_id: &room,
                kind: "chat",
                user_id: &user,
                username: &user,
                content: &frame.content,
                timestamp: "2026-11-21T10:30:00.000Z",
                seq: *seq,
                attachments: &[],
            },
        );
        let bytes = server_frame(&json);
        let times = if Some(*seq) == faults.dup_seq { 2 } else { 1 };
        let n = members.len();
        for (k, (_, w)) in members.iter().enumerate() {
            if faults.starve_last_member && k + 1 == n && n > 1 {
                continue;
            }
            let mut w = w.lock().expect("writer");
            for _ in 0..times {
                let _ = w.write_all(&bytes);
            }
        }
    }
    if let Some((_, members)) = rooms.lock().expect("rooms").get_mut(&room) {
        members.retain(|(m, _)| *m != id);
    }
}

/// Starts the built binary with `args` (stdout and stderr piped).
pub fn spawn_lt(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_hubbub-loadtest"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start hubbub-loadtest")
}

/// Waits for a [`spawn_lt`] child, at most 60 s from now (then kills it and panics).
pub fn wait_lt(mut child: Child) -> Output {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!(
                    "hubbub-loadtest did not finish within 60 s; stderr:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for hubbub-loadtest: {e}"),
        }
    }
    child.wait_with_output().expect("output")
}

/// Runs the built binary with `args`, with a deadline.
pub fn run_lt(args: &[&str]) -> Output {
    wait_lt(spawn_lt(args))
}

/// The JSON report on stdout.
pub fn report(out: &Output) -> sonic_rs::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    sonic_rs::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{text}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A short fan-out against `port`, plus extra arguments.
pub fn fanout_args(port: u16, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "fanout",
        "--url",
        &format!("ws://127.0.0.1:{port}/ws"),
        "--conns",
        "6",
        "--rooms",
        "2",
        "--senders",
        "4",
        "--rate",
        "20",
        "--warmup",
        "0s",
        "--duration",
        "1s",
        "--drain",
        "1s",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}
