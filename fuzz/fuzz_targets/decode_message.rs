//! Any bytes: a presence message or an error, never a panic; what decodes
//! re-encodes to something that decodes to the same message.
#![no_main]

use bytes::Bytes;
use hyper_presence::proto::wire::{Limits, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(message) = Message::decode(&Bytes::copy_from_slice(data), &limits) {
        let again =
            Message::decode(&message.encode(), &limits).expect("re-encoded message decodes");
        assert_eq!(again, message);
    }
});
