//! The direct (no send ring) path; the ring's own tests are in `send_ring`.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::Duration;

use super::*;
use crate::engine::test_support::{conn, pair, reset_on_close, small_send_buffer};

#[test]
fn queued_frames_go_out_in_order_and_the_close_ends_the_write_side() {
    let (ours, mut peer) = pair();
    let io = Outbox::new(ours.as_raw_fd(), conn());
    let first = io.push(Bytes::from_static(b"lone"));
    assert_eq!(
        first,
        Pushed {
            queued: 4,
            needs_flush: true
        }
    );
    io.send_now();
    assert_eq!((io.queued(), io.is_sending()), (0, false));
    let mut lone = [0u8; 4];
    peer.read_exact(&mut lone).unwrap();
    assert_eq!(&lone, b"lone");
    assert!(io.push(Bytes::from_static(b"ab")).needs_flush);
    assert_eq!(
        io.push(Bytes::from_static(b"cde")),
        Pushed {
            queued: 5,
            needs_flush: false
        },
        "already owed a flush"
    );
    assert_eq!(
        io.close(Bytes::from_static(b"X")),
        Some(false),
        "the flush is owed already"
    );
    assert_eq!(io.close(Bytes::from_static(b"Y")), None, "closes once");
    assert_eq!(
        io.push(Bytes::from_static(b"late")).queued,
        0,
        "nothing after the close"
    );
    io.send_now();
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"abcdeX", "everything, then the end of the stream");
    io.finish();
}

#[test]
fn a_full_socket_keeps_the_rest_in_flight_and_loses_nothing() {
    let (ours, mut peer) = pair();
    small_send_buffer(&ours, 4096);
    let io = Outbox::new(ours.as_raw_fd(), conn());
    // 200 frames of 1000 numbered bytes: far more than the buffers hold.
    let frames: Vec<Bytes> = (0..200u32)
        .map(|i| Bytes::from(vec![(i % 251) as u8; 1000]))
        .collect();
    for f in &frames {
        io.push(f.clone());
    }
    io.send_now();
    assert!(io.is_sending(), "the socket took only part");
    assert!(io.queued() > 0);
    assert!(
        !io.push(Bytes::from_static(b"tail")).needs_flush,
        "the writability event sends it, not the worker's flush"
    );
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 65536];
        while all.len() < 200_004 {
            let n = peer.read(&mut buf).unwrap();
            assert!(n > 0);
            all.extend_from_slice(&buf[..n]);
        }
        all
    });
    while io.queued() > 0 {
        std::thread::sleep(Duration::from_millis(1));
        io.send_now();
    }
    assert!(!io.is_sending());
    let all = reader.join().unwrap();
    let mut want: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
    want.extend_from_slice(b"tail");
    assert!(all == want, "every byte, in order");
    io.finish();
}

#[test]
fn a_peer_that_is_gone_loses_its_queue_without_waiting() {
    let (ours, peer) = pair();
    reset_on_close(&peer);
    drop(peer);
    std::thread::sleep(Duration::from_millis(50));
    let io = Outbox::new(ours.as_raw_fd(), conn());
    io.push(Bytes::from(vec![0u8; 1000]));
    io.send_now();
    assert_eq!(io.queued(), 0, "nothing kept for a dead peer");
    assert!(
        !io.is_sending(),
        "and no wait for a socket that will never drain"
    );
    io.finish();
}

#[test]
fn nothing_touches_the_socket_once_the_connection_is_over() {
    let (ours, mut peer) = pair();
    small_send_buffer(&ours, 4096);
    let io = Outbox::new(ours.as_raw_fd(), conn());
    io.push(Bytes::from(vec![1u8; 1 << 20]));
    io.send_now();
    assert!(io.is_sending(), "most of it still in flight");
    io.finish();
    assert_eq!(io.queued(), 0);
    // Drain what the kernel took; then the socket has room again.
    peer.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    while peer.read(&mut buf).is_ok() {}
    // Once over, its descriptor may be closed or another connection's: not one byte more.
    io.send_now();
    assert!(
        peer.read(&mut buf).is_err(),
        "nothing was sent after finish"
    );
    assert_eq!(io.begin_send(), None);
    assert_eq!(io.push(Bytes::from_static(b"x")).queued, 0);
}

#[test]
fn an_idle_queue_is_small() {
    // Per idle connection (PERFORMANCE.md S3): keep it within two cache lines.
    assert!(
        std::mem::size_of::<Outbox>() <= 112,
        "{}",
        std::mem::size_of::<Outbox>()
    );
}
