use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::rc::Rc;

use super::*;

/// A connected pair: (our side, the peer).
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (ours, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (ours, peer)
}

fn read_exact(peer: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    peer.read_exact(&mut buf).unwrap();
    buf
}

/// A connection id from a real hub (the type has no public constructor).
pub(crate) fn conn() -> ConnId {
    use hubbub_core::connect::UpgradeRequest;
    use hubbub_core::{ConnectionGauge, Hub, HubConfig, Mono, Now, UnixMillis, WorkerId};
    let mut hub = Hub::new(HubConfig::new(WorkerId(0), 1), ConnectionGauge::new(10));
    let now = Now::new(Mono::from_nanos(0), UnixMillis(1_795_257_000_000));
    let request = UpgradeRequest {
        query: "userId=u&room=r",
        ..Default::default()
    };
    let admission = hub.admit(now, &request).unwrap();
    hub.handle_open(now, admission)
}

fn runtime() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
}

#[test]
fn queued_frames_go_out_in_order_and_the_close_ends_the_write_side() {
    runtime().block_on(async {
        let (ours, mut peer) = pair();
        let io = Rc::new(ConnIo::new(ours.as_raw_fd(), conn()));
        let first = io.push(Bytes::from_static(b"lone"));
        assert_eq!(
            first,
            Pushed {
                queued: 4,
                needs_flush: true
            }
        );
        io.flush();
        assert_eq!(io.queued(), 0);
        assert_eq!(read_exact(&mut peer, 4), b"lone");
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
        assert_eq!(
            io.push(Bytes::from_static(b"late")).queued,
            0,
            "nothing after the close"
        );
        io.flush();
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"abcdeX", "everything, then the end of the stream");
        io.finish();
    });
}

#[test]
fn a_full_send_buffer_blocks_wakes_the_task_and_loses_nothing() {
    runtime().block_on(async {
        let (ours, mut peer) = pair();
        let small: libc::c_int = 4096;
        // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live local.
        unsafe {
            libc::setsockopt(
                ours.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&small as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let io = Rc::new(ConnIo::new(ours.as_raw_fd(), conn()));
        // 200 frames of 1000 numbered bytes: far more than the buffers hold.
        let frames: Vec<Bytes> = (0..200u32)
            .map(|i| Bytes::from(vec![(i % 251) as u8; 1000]))
            .collect();
        for f in &frames {
            io.push(f.clone());
        }
        io.flush();
        assert!(io.is_blocked(), "the kernel took only part");
        assert!(io.queued() > 0);
        assert!(
            !io.push(Bytes::from_static(b"tail")).needs_flush,
            "the writability event flushes, not the worker"
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
            monoio::time::sleep(Duration::from_millis(1)).await;
            io.flush();
        }
        let all = reader.join().unwrap();
        let mut want: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
        want.extend_from_slice(b"tail");
        assert!(all == want, "every byte, in order");
        io.finish();
    });
}

#[test]
fn a_peer_that_is_gone_loses_its_queue_without_blocking() {
    runtime().block_on(async {
        let (ours, peer) = pair();
        // Linger 0: closing resets the connection, so our next write fails.
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt reads `size_of::<linger>()` bytes from a live local.
        unsafe {
            libc::setsockopt(
                peer.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
        drop(peer);
        std::thread::sleep(Duration::from_millis(50));
        let io = Rc::new(ConnIo::new(ours.as_raw_fd(), conn()));
        io.push(Bytes::from(vec![0u8; 1000]));
        io.flush();
        assert_eq!(io.queued(), 0, "nothing kept for a dead peer");
        assert!(
            !io.is_blocked(),
            "and no wait for a socket that will never drain"
        );
        io.finish();
    });
}

#[test]
fn an_idle_queue_is_small() {
    // Per idle connection (PERFORMANCE.md S3): keep it within two cache lines.
    assert!(
        std::mem::size_of::<ConnIo>() <= 112,
        "{}",
        std::mem::size_of::<ConnIo>()
    );
}
