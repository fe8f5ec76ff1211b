//! Arbitrary bytes, cut into chunks, fed to a fresh secret stream of either
//! role: an error or nothing, never a panic; a failure sticks; the buffer
//! never holds more than arrived.
#![no_main]

use hyper_presence::net::transport::secret_stream::{SecretStream, DEFAULT_MAX_FRAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let initiator = mode & 1 == 1;
    // Chunk sizes cycle through the other bits of the mode byte.
    let max_chunk = usize::from(mode >> 1) + 1;
    let mut stream =
        SecretStream::new(initiator, &[7; 32], DEFAULT_MAX_FRAME).expect("stream builds");
    let mut fed = 0;
    let mut turn = 0;
    while !rest.is_empty() {
        let n = (turn % max_chunk + 1).min(rest.len());
        turn += 1;
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        fed += n;
        if let Err(error) = stream.receive(chunk) {
            assert_eq!(stream.receive(b"more"), Err(error.clone()));
            assert_eq!(stream.send(b""), Err(error));
            return;
        }
        assert!(stream.buffered() <= fed);
        while stream.poll_event().is_some() {}
    }
});
