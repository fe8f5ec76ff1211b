//! Any bytes: a flood packet or an error, never a panic; what decodes
//! re-encodes to something that decodes to the same packet, and no longer
//! than the input: every field is required and written once, in minimal
//! form, so the encoder never adds what the input left out.
#![no_main]

use bytes::Bytes;
use hyper_presence::proto::wire::{FloodPacket, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(packet) = FloodPacket::decode(&Bytes::copy_from_slice(data), &limits) {
        let encoded = packet.encode();
        assert_eq!(encoded.len(), packet.encoded_len());
        assert!(encoded.len() <= data.len());
        let again = FloodPacket::decode(&encoded, &limits).expect("re-encoded packet decodes");
        assert_eq!(again, packet);
    }
});
