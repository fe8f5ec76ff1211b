//! Arbitrary handshake messages, to a responder from the start and to an
//! initiator after its F1: errors, never a panic; a failure sticks; replies
//! have the lengths of F2 and F3.
#![no_main]

use hyper_presence::net::transport::noise::Handshake;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let initiator = mode & 1 == 1;
    let mut handshake = Handshake::new(initiator, &[7; 32]).expect("handshake builds");
    if initiator {
        let f1 = handshake
            .start()
            .expect("F1 writes")
            .expect("an initiator starts");
        assert_eq!(f1.len(), 32);
    }
    // Each message: one length byte, then up to that many bytes.
    while let Some((&len, tail)) = rest.split_first() {
        let (message, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        match handshake.receive(message) {
            Ok(Some(reply)) => assert!(reply.len() == 96 || reply.len() == 64),
            Ok(None) => {}
            Err(error) => {
                assert_eq!(handshake.receive(message), Err(error));
                assert!(handshake.keys().is_none());
                return;
            }
        }
    }
});
