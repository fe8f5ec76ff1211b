//! Any bytes: a flood packet or an error, never a panic; what decodes
//! re-encodes to something that decodes to the same packet.
#![no_main]

use bytes::Bytes;
use hyper_presence::proto::wire::{FloodPacket, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(packet) = FloodPacket::decode(&Bytes::copy_from_slice(data), &limits) {
        let again =
            FloodPacket::decode(&packet.encode(), &limits).expect("re-encoded packet decodes");
        assert_eq!(again, packet);
    }
});
