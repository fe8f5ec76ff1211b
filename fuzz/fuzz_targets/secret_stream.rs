//! Bytes cut into chunks of fuzzed sizes, fed to a secret stream of either
//! role: never a panic; a failure sticks; the buffer never holds more than
//! arrived.
//!
//! Input: `mode || rest`. Bit 0 of `mode` is our role, bits 2.. set the
//! chunk sizes. With bit 1 clear, `rest` is fed as is to a fresh stream (the
//! handshake and framing paths: nothing past the first handshake message
//! authenticates). With bit 1 set, a genuine peer first completes the
//! handshake and sends its header, so that `rest` reaches the established
//! stream: it is a sequence of `op || len: u8 || bytes[len]`, where an even
//! `op` has the peer send `bytes` as one message and an odd one injects
//! `bytes` raw. Until something is injected, every message arrives intact,
//! in order, whatever the chunking (an empty one as a keep-alive).
#![no_main]

use std::collections::VecDeque;

use bytes::Bytes;
use hyper_presence::net::transport::secret_stream::{
    SecretStream, StreamError, StreamEvent, DEFAULT_MAX_FRAME,
};
use libfuzzer_sys::fuzz_target;

/// Feeds bytes to the stream under test in chunks of cycling sizes.
struct Feeder {
    stream: SecretStream,
    max_chunk: usize,
    turn: usize,
    fed: usize,
}

impl Feeder {
    /// Feeds all of `bytes`, collecting the events; on an error, checks that
    /// it sticks and returns it.
    fn feed(&mut self, mut bytes: &[u8], events: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        while !bytes.is_empty() {
            let n = (self.turn % self.max_chunk + 1).min(bytes.len());
            self.turn += 1;
            let (chunk, tail) = bytes.split_at(n);
            bytes = tail;
            self.fed += n;
            let result = self.stream.receive(chunk);
            events.extend(std::iter::from_fn(|| self.stream.poll_event()));
            if let Err(error) = result {
                assert_eq!(self.stream.receive(b"more"), Err(error.clone()));
                assert_eq!(self.stream.send(b""), Err(error.clone()));
                assert_eq!(self.stream.error(), Some(&error));
                return Err(error);
            }
            assert!(self.stream.buffered() <= self.fed);
        }
        Ok(())
    }
}

/// Splits `len: u8 || bytes[len]` off the front (short if the input is).
fn chunk(data: &[u8]) -> (&[u8], &[u8]) {
    match data.split_first() {
        Some((&len, tail)) => tail.split_at(usize::from(len).min(tail.len())),
        None => (&[], &[]),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let initiator = mode & 1 == 1;
    let stream = SecretStream::new(initiator, &[7; 32], DEFAULT_MAX_FRAME).expect("stream builds");
    let mut feeder = Feeder {
        stream,
        max_chunk: usize::from(mode >> 2) + 1,
        turn: 0,
        fed: 0,
    };
    let mut events = Vec::new();
    if mode & 2 == 0 {
        let _ = feeder.feed(rest, &mut events);
        return;
    }

    let mut peer = SecretStream::new(!initiator, &[8; 32], DEFAULT_MAX_FRAME).expect("peer builds");
    // XX takes three messages, then each side's header: a few rounds.
    for _ in 0..4 {
        while let Some(bytes) = feeder.stream.transmit() {
            peer.receive(&bytes).expect("our handshake is genuine");
        }
        if let Some(bytes) = peer.transmit() {
            feeder
                .feed(&bytes, &mut events)
                .expect("the peer's handshake is genuine");
        }
    }
    while peer.poll_event().is_some() {}
    assert!(peer.is_established());
    assert!(feeder.stream.is_established());
    assert!(
        matches!(events.as_slice(), [StreamEvent::Established { .. }]),
        "{events:?}"
    );
    events.clear();

    let mut expected = VecDeque::new();
    let mut injected = false;
    let mut rest = rest;
    while let Some((&op, tail)) = rest.split_first() {
        let (body, tail) = chunk(tail);
        rest = tail;
        let bytes = if op & 1 == 0 {
            peer.send(body).expect("the peer is established");
            expected.push_back(if body.is_empty() {
                StreamEvent::KeepAlive
            } else {
                StreamEvent::Message(Bytes::copy_from_slice(body))
            });
            peer.transmit().expect("a frame to send")
        } else {
            injected = true;
            body.to_vec()
        };
        let result = feeder.feed(&bytes, &mut events);
        if !injected {
            assert_eq!(result, Ok(()));
            for event in events.drain(..) {
                assert_eq!(Some(event), expected.pop_front());
            }
            assert!(expected.is_empty(), "a whole frame was held back");
        }
        if result.is_err() {
            return;
        }
    }
});
