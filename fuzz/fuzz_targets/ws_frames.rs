//! Any bytes, cut into reads at points the input chooses, as a client's WebSocket
//! stream: decoding never panics, ends at most once and last, and holds no more than
//! one message plus one read.
#![no_main]
use hubbub_core::ws::{Event, FrameDecoder};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(cut).max(1);
    let mut decoder = FrameDecoder::new(MAX);
    let mut ended = false;
    for chunk in rest.chunks(step) {
        let mut read = chunk.to_vec();
        decoder.decode(&mut read, |e| {
            assert!(!ended, "an event after the end");
            match e {
                Event::Text(t) => assert!(t.len() <= MAX),
                Event::Ping(p) => assert!(p.len() <= 125),
                Event::Close(_) | Event::Binary | Event::Violation(_) => ended = true,
                Event::Pong => {}
            }
        });
        assert_eq!(ended, decoder.is_done());
    }
    if decoder.is_done() {
        assert!(decoder.is_idle());
    }
});
