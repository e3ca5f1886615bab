//! The broker against a real redis-server (test-support's `RedisServer`): batching and
//! per-room seqs, two nodes sharing a room, fetches, a killed pub/sub connection, a
//! restarted (emptied) Redis, and a stopped one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_channel::mpsc::Receiver;
use futures_util::StreamExt;
use hubbub_broker::{Broker, BrokerConfig, BrokerDown, BrokerEvent, BrokerStatus, Busy};
use hubbub_core::protocol::{ChatMessage, MessageKind};
use hubbub_core::{owner_of, PersistRecord, UnixMillis};
use hubbub_test_support::poll::wait_until;
use hubbub_test_support::redis::RedisServer;

const WAIT: Duration = Duration::from_secs(10);

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a test runtime")
        .block_on(future)
}

/// The next event on `rx` within `within`, or `None`.
fn next_event(rx: &mut Receiver<BrokerEvent>, within: Duration) -> Option<BrokerEvent> {
    block_on(async { tokio::time::timeout(within, rx.next()).await.ok().flatten() })
}

fn start(url: &str, node: &str, workers: u16) -> (Broker, Vec<Receiver<BrokerEvent>>) {
    Broker::start(BrokerConfig {
        url: url.to_owned(),
        node_id: node.to_owned(),
        workers,
        ..BrokerConfig::default()
    })
    .expect("the broker starts")
}

fn record(room: &str, n: u64, kind: MessageKind) -> PersistRecord {
    PersistRecord {
        message_id: uuid::Uuid::from_u128(
            0x0190_0000_0000_7000_8000_0000_0000_0000 | u128::from(n),
        ),
        room_id: Arc::from(room),
        kind,
        user_id: Arc::from("u1"),
        username: Arc::from("Ann"),
        content: format!("message {n} of {room}\nwith a newline").into(),
        timestamp: UnixMillis(1_700_000_000_000 + n),
        seq: 0,
        attachments: Default::default(),
    }
}

/// Waits for the `Sequenced` answers of `tokens` on `rx`, skipping other events.
fn sequenced(
    rx: &mut Receiver<BrokerEvent>,
    count: usize,
) -> HashMap<u64, Result<(Arc<str>, u64), BrokerDown>> {
    let mut out = HashMap::new();
    let deadline = Instant::now() + WAIT;
    while out.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match next_event(rx, left) {
            Some(BrokerEvent::Sequenced { token, result }) => {
                assert!(
                    out.insert(token, result).is_none(),
                    "token {token} answered twice"
                );
            }
            Some(_) => {}
            None => panic!("only {} of {count} Sequenced answers arrived", out.len()),
        }
    }
    out
}

/// The next `count` Message events of `room` on `rx` (other events skipped).
fn messages(
    rx: &mut Receiver<BrokerEvent>,
    room: &str,
    count: usize,
) -> Vec<(Arc<str>, ChatMessage)> {
    let mut out = Vec::new();
    let deadline = Instant::now() + WAIT;
    while out.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match next_event(rx, left) {
            Some(BrokerEvent::Message {
                room: r,
                epoch,
                message,
            }) if &*r == room => out.push((epoch, message)),
            Some(_) => {}
            None => panic!("only {} of {count} messages of {room} arrived", out.len()),
        }
    }
    out
}

/// A `Fetched` event: the room and the answer.
type FetchedEvent = (Arc<str>, Option<(Arc<str>, Vec<ChatMessage>)>);

fn fetched(rx: &mut Receiver<BrokerEvent>) -> FetchedEvent {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match next_event(rx, left) {
            Some(BrokerEvent::Fetched { room, answer }) => return (room, answer),
            Some(_) => {}
            None => panic!("no Fetched answer"),
        }
    }
}

fn wait_status(broker: &Broker, status: BrokerStatus) {
    assert!(
        wait_until(WAIT, || broker.status() == status),
        "status stayed {:?}, wanted {status:?}",
        broker.status()
    );
}

#[test]
fn batches_many_rooms_and_numbers_each_room_without_gaps() {
    let redis = RedisServer::start();
    let (broker, mut rx) = start(&redis.url(), "a", 2);
    wait_status(&broker, BrokerStatus::Connected);
    let rooms = ["alpha", "beta", "gamma"];
    const PER_ROOM: u64 = 500;
    let mut order: HashMap<u64, (usize, u64)> = HashMap::new(); // token → (room, index)
    let mut per_worker = [0usize; 2];
    for i in 0..PER_ROOM {
        for (r, room) in rooms.iter().enumerate() {
            let token = r as u64 * 10_000 + i;
            let worker = ((i as usize) + r) % 2;
            let kind = if i % 7 == 0 {
                MessageKind::System
            } else {
                MessageKind::Chat
            };
            broker
                .sequence(worker as u16, token, &record(room, i, kind), "epoch-1", 0)
                .expect("the queue takes it");
            order.insert(token, (r, i));
            per_worker[worker] += 1;
        }
    }
    let mut answers = sequenced(&mut rx[0], per_worker[0]);
    answers.extend(sequenced(&mut rx[1], per_worker[1]));
    assert_eq!(answers.len(), order.len());
    for (token, result) in answers {
        let (epoch, seq) = result.expect("sequenced");
        let (_, index) = order[&token];
        assert_eq!(&*epoch, "epoch-1");
        assert_eq!(
            seq,
            index + 1,
            "token {token}: seqs follow submission order"
        );
    }
    let stats = broker.stats();
    let total = PER_ROOM * rooms.len() as u64;
    eprintln!("{total} messages: {stats:?}");
    assert_eq!(stats.sequenced, total);
    assert_eq!(stats.sequence_failed, 0);
    assert!(
        stats.scripts * 10 <= total,
        "{} script calls for {total} messages: not batched",
        stats.scripts
    );
    // The log holds them too, as `{seq}-0`.
    assert_eq!(redis.cli(&["XLEN", "hubbub:{beta}:log"]).trim(), "500");
    assert_eq!(
        redis.cli(&["HGET", "hubbub:{beta}:meta", "seq"]).trim(),
        "500"
    );
    broker.shutdown(Duration::from_secs(2));
}

#[test]
fn two_nodes_share_a_room_in_seq_order() {
    let redis = RedisServer::start();
    let (a, mut rx_a) = start(&redis.url(), "node-a", 2);
    let (b, mut rx_b) = start(&redis.url(), "node-b", 3);
    let room: Arc<str> = Arc::from("shared room");
    let la = block_on(a.load_room(room.clone(), 10, "epoch-a".into(), 0)).expect("A loads");
    let lb = block_on(b.load_room(room.clone(), 10, "epoch-b".into(), 0)).expect("B loads");
    assert_eq!((&*la.epoch, la.last_seq), ("epoch-a", 0));
    assert_eq!(
        (&*lb.epoch, lb.last_seq),
        ("epoch-a", 0),
        "B finds A's epoch"
    );
    assert!(la.recent.is_empty() && lb.recent.is_empty());
    assert_eq!(a.stats().watched, 1);

    let owner_a = owner_of(&room, 2).index();
    let owner_b = owner_of(&room, 3).index();
    const N: u64 = 200;
    for i in 0..N {
        let kind = if i == 3 {
            MessageKind::System
        } else {
            MessageKind::Chat
        };
        a.sequence(owner_a as u16, i, &record(&room, i, kind), "ignored", 0)
            .expect("queued");
    }
    let got_b = messages(&mut rx_b[owner_b], &room, N as usize);
    let got_a = messages(&mut rx_a[owner_a], &room, N as usize);
    for got in [&got_a, &got_b] {
        for (i, (epoch, message)) in got.iter().enumerate() {
            assert_eq!(&**epoch, "epoch-a");
            assert_eq!(message.seq, i as u64 + 1, "in seq order, none missing");
            let mut want = record(&room, i as u64, message.kind).to_message();
            want.seq = i as u64 + 1;
            assert_eq!(message, &want);
            assert_eq!(message.kind == MessageKind::System, i == 3);
        }
    }
    assert!(b.stats().received >= N);
    // Only the owner worker hears of the room.
    for (w, rx) in rx_b.iter_mut().enumerate() {
        if w != owner_b {
            assert!(next_event(rx, Duration::from_millis(50)).is_none());
        }
    }
    // Forgotten: B hears no more.
    b.forget(room.clone());
    assert!(wait_until(WAIT, || b.stats().watched == 0));
    a.sequence(
        owner_a as u16,
        999,
        &record(&room, 999, MessageKind::Chat),
        "x",
        0,
    )
    .expect("queued");
    assert_eq!(messages(&mut rx_a[owner_a], &room, 1)[0].1.seq, N + 1);
    assert!(next_event(&mut rx_b[owner_b], Duration::from_millis(200)).is_none());
    a.shutdown(Duration::from_secs(2));
    b.shutdown(Duration::from_secs(2));
}

#[test]
fn fetch_answers_exactly_the_range_and_load_the_tail() {
    let redis = RedisServer::start();
    let (broker, mut rx) = start(&redis.url(), "f", 1);
    let room: Arc<str> = Arc::from("history");
    for i in 0..30 {
        broker
            .sequence(0, i, &record(&room, i, MessageKind::Chat), "ep", 0)
            .expect("queued");
    }
    assert!(sequenced(&mut rx[0], 30).values().all(Result::is_ok));

    broker.fetch(0, room.clone(), 10, 20).expect("queued");
    let (r, answer) = fetched(&mut rx[0]);
    let (epoch, got) = answer.expect("Redis answered");
    assert_eq!((&*r, &*epoch), (&*room, "ep"));
    assert_eq!(
        got.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (11..=20).collect::<Vec<_>>()
    );
    assert_eq!(got[0].content, "message 10 of history\nwith a newline");

    broker.fetch(0, room.clone(), 25, u64::MAX).expect("queued");
    let (_, answer) = fetched(&mut rx[0]);
    let seqs: Vec<u64> = answer.expect("answered").1.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![26, 27, 28, 29, 30]);

    broker.fetch(0, room.clone(), 30, u64::MAX).expect("queued");
    assert_eq!(fetched(&mut rx[0]).1.expect("answered").1.len(), 0);

    broker
        .fetch(0, Arc::from("nowhere"), 0, u64::MAX)
        .expect("queued");
    let (_, answer) = fetched(&mut rx[0]);
    let (epoch, got) = answer.expect("answered");
    assert!(
        epoch.is_empty() && got.is_empty(),
        "no state: empty epoch, no messages"
    );
    assert_eq!(redis.cli(&["EXISTS", "hubbub:{nowhere}:meta"]).trim(), "0");

    let loaded = block_on(broker.load_room(room.clone(), 5, "other".into(), 0)).expect("loads");
    assert_eq!((&*loaded.epoch, loaded.last_seq), ("ep", 30));
    assert_eq!(
        loaded.recent.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![26, 27, 28, 29, 30],
        "the newest, oldest first"
    );
    assert_eq!(broker.stats().fetches, 4);
    assert!(broker.fetch(1, room, 0, 1).is_err(), "no worker 1");
    broker.shutdown(Duration::from_secs(2));
}

#[test]
fn a_killed_pubsub_connection_resyncs_every_worker() {
    let redis = RedisServer::start();
    let (broker, mut rx) = start(&redis.url(), "k", 3);
    let room: Arc<str> = Arc::from("watched");
    block_on(broker.load_room(room.clone(), 0, "ep".into(), 0)).expect("loads");
    let owner = owner_of(&room, 3).index();
    broker
        .sequence(
            owner as u16,
            1,
            &record(&room, 1, MessageKind::Chat),
            "ep",
            0,
        )
        .expect("queued");
    assert_eq!(messages(&mut rx[owner], &room, 1)[0].1.seq, 1);

    let killed = redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert_eq!(
        killed.trim(),
        "1",
        "one pub/sub connection killed: {killed}"
    );
    for (w, rx) in rx.iter_mut().enumerate() {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match next_event(rx, left) {
                Some(BrokerEvent::Resync) => break,
                Some(_) => {}
                None => panic!("worker {w} got no Resync"),
            }
        }
    }
    assert_eq!(broker.stats().reconnects, 1);
    wait_status(&broker, BrokerStatus::Connected);
    broker
        .sequence(
            owner as u16,
            2,
            &record(&room, 2, MessageKind::Chat),
            "ep",
            0,
        )
        .expect("queued");
    let got = messages(&mut rx[owner], &room, 1);
    assert_eq!((&*got[0].0, got[0].1.seq), ("ep", 2), "subscribed again");
    broker.shutdown(Duration::from_secs(2));
}

#[test]
fn a_restarted_redis_gives_rooms_a_new_epoch_after_the_floor() {
    let mut redis = RedisServer::start();
    let (broker, mut rx) = start(&redis.url(), "r", 1);
    let room: Arc<str> = Arc::from("phoenix");
    let loaded = block_on(broker.load_room(room.clone(), 0, "ep1".into(), 0)).expect("loads");
    assert_eq!(&*loaded.epoch, "ep1");
    for i in 0..3 {
        broker
            .sequence(0, i, &record(&room, i, MessageKind::Chat), "ep1", 0)
            .expect("queued");
    }
    assert!(sequenced(&mut rx[0], 3).values().all(Result::is_ok));
    let _ = messages(&mut rx[0], &room, 3);

    redis.stop();
    wait_status(&broker, BrokerStatus::Unreachable);
    redis.start_again();
    wait_status(&broker, BrokerStatus::Connected);
    assert!(broker.stats().reconnects >= 1);

    // Redis lost everything: the room is made again with the hub's new epoch, after
    // the floor it gives (its last seq).
    let loaded = block_on(broker.load_room(room.clone(), 10, "ep2".into(), 3)).expect("loads");
    assert_eq!((&*loaded.epoch, loaded.last_seq), ("ep2", 3));
    assert!(loaded.recent.is_empty());
    broker
        .sequence(0, 10, &record(&room, 10, MessageKind::Chat), "ep2", 3)
        .expect("queued");
    let answer = sequenced(&mut rx[0], 1).remove(&10).expect("answered");
    assert_eq!(
        answer.map(|(e, s)| (e.to_string(), s)),
        Ok(("ep2".to_owned(), 4))
    );

    // The same through `restart` (kill and start at once), for a room only sequenced.
    redis.restart();
    let other: Arc<str> = Arc::from("other");
    let deadline = Instant::now() + WAIT;
    let answer = loop {
        broker
            .sequence(0, 20, &record(&other, 20, MessageKind::Chat), "ep3", 41)
            .expect("queued");
        match sequenced(&mut rx[0], 1).remove(&20).expect("answered") {
            Ok(answer) => break answer,
            Err(BrokerDown) => {
                assert!(Instant::now() < deadline, "Redis never came back");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert_eq!((&*answer.0, answer.1), ("ep3", 42));
    wait_status(&broker, BrokerStatus::Connected);
    broker.shutdown(Duration::from_secs(2));
}

#[test]
fn a_stopped_redis_fails_requests_fast_and_never_blocks() {
    let mut redis = RedisServer::start();
    redis.stop();
    let begun = Instant::now();
    let (broker, mut rx) = start(&redis.url(), "down", 1);
    assert!(
        begun.elapsed() < Duration::from_secs(4),
        "start waits at most ~3 s"
    );
    wait_status(&broker, BrokerStatus::Unreachable);

    let room: Arc<str> = Arc::from("void");
    let begun = Instant::now();
    for i in 0..100 {
        broker
            .sequence(0, i, &record(&room, i, MessageKind::Chat), "ep", 0)
            .expect("queued");
    }
    assert!(
        begun.elapsed() < Duration::from_millis(100),
        "sequence never blocks"
    );
    let answers = sequenced(&mut rx[0], 100);
    assert!(answers.values().all(|a| *a == Err(BrokerDown)));
    assert_eq!(broker.stats().sequence_failed, 100);
    assert_eq!(
        block_on(broker.load_room(room.clone(), 5, "ep".into(), 0)),
        Err(BrokerDown)
    );
    broker.fetch(0, room.clone(), 0, u64::MAX).expect("queued");
    assert!(fetched(&mut rx[0]).1.is_none());

    // Redis comes up: the broker connects without help.
    redis.start_again();
    wait_status(&broker, BrokerStatus::Connected);
    let loaded = block_on(broker.load_room(room.clone(), 5, "ep".into(), 7)).expect("loads");
    assert_eq!(loaded.last_seq, 7);

    broker.shutdown(Duration::from_secs(2));
    assert_eq!(
        broker.sequence(0, 1, &record(&room, 1, MessageKind::Chat), "ep", 0),
        Err(Busy)
    );
    assert_eq!(
        block_on(broker.load_room(room, 5, "ep".into(), 0)),
        Err(BrokerDown)
    );
}

#[test]
fn a_full_worker_channel_drops_messages_and_then_resyncs() {
    let redis = RedisServer::start();
    let (broker, mut rx) = Broker::start(BrokerConfig {
        url: redis.url(),
        workers: 1,
        events_per_worker: 8,
        ..BrokerConfig::default()
    })
    .expect("starts");
    let room: Arc<str> = Arc::from("busy");
    block_on(broker.load_room(room.clone(), 0, "ep".into(), 0)).expect("loads");
    for i in 0..20 {
        broker
            .sequence(0, i, &record(&room, i, MessageKind::Chat), "ep", 0)
            .expect("queued");
    }
    // Nobody reads: 20 answers (parked, never lost) and 20 messages (mostly dropped).
    assert!(wait_until(WAIT, || broker.stats().events_dropped > 0));
    let mut tokens = Vec::new();
    let mut resync = false;
    let deadline = Instant::now() + WAIT;
    while (tokens.len() < 20 || !resync) && Instant::now() < deadline {
        match next_event(&mut rx[0], Duration::from_millis(500)) {
            Some(BrokerEvent::Sequenced { token, result }) => {
                assert!(result.is_ok());
                tokens.push(token);
            }
            Some(BrokerEvent::Resync) => resync = true,
            Some(_) | None => {}
        }
    }
    tokens.sort_unstable();
    assert_eq!(tokens, (0..20).collect::<Vec<_>>(), "every answer arrives");
    assert!(resync, "a Resync follows the drops");
    broker.shutdown(Duration::from_secs(2));
}
