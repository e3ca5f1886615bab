use std::io::Read;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::engine::test_support::{conn, pair, reset_on_close};

/// Reaps until nothing is in flight (or `limit` passes).
fn settle(ring: &SendRing, limit: Duration) {
    let deadline = Instant::now() + limit;
    while ring.in_flight() > 0 && Instant::now() < deadline {
        ring.ring.borrow().submit_and_wait(1).unwrap();
        ring.reap();
        ring.submit();
    }
}

#[test]
fn one_submit_sends_every_connection_its_frames_in_order() {
    let ring = SendRing::new().unwrap();
    let pairs: Vec<_> = (0..3).map(|_| pair()).collect();
    let ios: Vec<_> = pairs
        .iter()
        .map(|(ours, _)| Rc::new(Outbox::new(ours.as_raw_fd(), conn())))
        .collect();
    for (i, io) in ios.iter().enumerate() {
        io.push(Bytes::from(format!("a{i}")));
        io.push(Bytes::from(format!("b{i}")));
        ring.start(io);
        assert!(io.is_sending());
        assert!(
            !io.push(Bytes::from_static(b"c")).needs_flush,
            "queued behind the send"
        );
    }
    ring.submit();
    settle(&ring, Duration::from_secs(5));
    for (i, (_, peer)) in pairs.into_iter().enumerate() {
        let mut got = vec![0u8; 5];
        let mut peer = peer;
        peer.read_exact(&mut got).unwrap();
        assert_eq!(
            got,
            format!("a{i}b{i}c").as_bytes(),
            "the queued tail follows"
        );
        assert_eq!(ios[i].queued(), 0);
    }
}

#[test]
fn a_full_socket_keeps_its_send_in_flight_and_loses_nothing() {
    let ring = SendRing::new().unwrap();
    let (ours, mut peer) = pair();
    let io = Rc::new(Outbox::new(ours.as_raw_fd(), conn()));
    // Far more than loopback's socket buffers hold.
    let frames: Vec<Bytes> = (0..300u32)
        .map(|i| Bytes::from(vec![(i % 251) as u8; 100_000]))
        .collect();
    for f in &frames[..150] {
        io.push(f.clone());
    }
    ring.start(&io);
    ring.submit();
    std::thread::sleep(Duration::from_millis(100));
    ring.reap();
    ring.submit();
    assert_eq!(
        ring.in_flight(),
        1,
        "waits in the kernel for the peer to read"
    );
    for f in &frames[150..] {
        io.push(f.clone());
    }
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        peer.read_to_end(&mut all).unwrap();
        all
    });
    settle(&ring, Duration::from_secs(10));
    assert_eq!(io.queued(), 0);
    io.finish();
    drop(ours);
    let all = reader.join().unwrap();
    let want: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
    assert!(all == want, "every byte, in order");
}

#[test]
fn a_reset_peer_loses_its_queue_and_the_close_frame_ends_the_write_side() {
    let ring = SendRing::new().unwrap();
    let (ours, peer) = pair();
    reset_on_close(&peer);
    drop(peer);
    std::thread::sleep(Duration::from_millis(50));
    let io = Rc::new(Outbox::new(ours.as_raw_fd(), conn()));
    io.push(Bytes::from(vec![0u8; 1000]));
    ring.start(&io);
    ring.submit();
    settle(&ring, Duration::from_secs(5));
    assert_eq!(
        (io.queued(), io.is_sending()),
        (0, false),
        "nothing kept for a dead peer"
    );

    let (ours, mut peer) = pair();
    let io = Rc::new(Outbox::new(ours.as_raw_fd(), conn()));
    io.push(Bytes::from_static(b"last"));
    io.close(Bytes::from_static(b"X"));
    ring.start(&io);
    ring.submit();
    settle(&ring, Duration::from_secs(5));
    let mut all = Vec::new();
    peer.read_to_end(&mut all).unwrap();
    assert_eq!(all, b"lastX", "the close frame, then the end of the stream");
    io.finish();
}

#[test]
fn dropping_the_ring_cancels_a_send_stuck_on_a_peer_that_never_reads() {
    let ring = SendRing::new().unwrap();
    let (ours, _peer) = pair();
    let io = Rc::new(Outbox::new(ours.as_raw_fd(), conn()));
    io.push(Bytes::from(vec![7u8; 16 * 1024 * 1024]));
    ring.start(&io);
    ring.submit();
    std::thread::sleep(Duration::from_millis(50));
    ring.reap();
    assert_eq!(ring.in_flight(), 1);
    let started = Instant::now();
    drop(ring);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "cancelled, not waited out"
    );
}

#[test]
fn a_finished_connection_s_send_never_reaches_the_socket_that_reuses_its_number() {
    use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

    let ring = SendRing::new().unwrap();
    let (ours_a, mut peer_a) = pair();
    let number = ours_a.into_raw_fd();
    let a = Rc::new(Outbox::new(number, conn()));
    // Far more than the socket takes: the first send completes in part, the rest is
    // resubmitted and waits in the kernel for the peer to read.
    a.push(Bytes::from(vec![b'A'; 16 * 1024 * 1024]));
    ring.start(&a);
    ring.submit();
    std::thread::sleep(Duration::from_millis(50));
    ring.reap();
    ring.submit();
    assert_eq!(ring.in_flight(), 1, "a send of A's is in flight");

    // A is over; its number now names B's socket (dup2 swaps it in atomically, as a
    // close followed by an accept that got the same number would).
    a.finish();
    let (ours_b, mut peer_b) = pair();
    // SAFETY: dup2 takes two descriptors and no memory; `number` is ours to replace.
    assert_eq!(unsafe { libc::dup2(ours_b.as_raw_fd(), number) }, number);
    // SAFETY: `number` is an open descriptor owned by nothing else from here on.
    let number = unsafe { OwnedFd::from_raw_fd(number) };

    // A's peer reads a little: the send in flight completes with part of its buffer, and
    // without the check the rest would go to `number`, B's socket.
    let mut some = vec![0u8; 1 << 20];
    peer_a.read_exact(&mut some).unwrap();
    // Without the check the resubmitted rest would wait forever on B's unread socket: so
    // no blocking wait here, only polls until a deadline.
    let deadline = Instant::now() + Duration::from_secs(2);
    while ring.in_flight() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        ring.reap();
        ring.submit();
    }
    assert_eq!(
        ring.in_flight(),
        0,
        "A's send completed and was not resubmitted"
    );

    // B's own frame is all B gets.
    let b = Rc::new(Outbox::new(number.as_raw_fd(), conn()));
    b.push(Bytes::from_static(b"B's own"));
    ring.start(&b);
    ring.submit();
    settle(&ring, Duration::from_secs(5));
    b.finish();
    drop(number);
    drop(ours_b);
    let mut got = Vec::new();
    peer_b.read_to_end(&mut got).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        "B's own",
        "nothing of A's reached B"
    );
}
