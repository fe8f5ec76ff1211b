//! Any bytes: a presence message or an error, never a panic. What decodes
//! re-encodes to bytes that decode to the same message, and the re-encoding
//! is at most [`reencoded_bound`] of the input's length.
//!
//! The re-encoding is not always within the input's size, nor within
//! `Limits::max_packet_bytes`: the encoder writes, in canonical form, some
//! things an input may leave out (see [`growth_bound`]). It is checked
//! against what the encoder can add, and decoded again with the packet size
//! limit raised to that bound (every other limit counts things the
//! re-encoding keeps one for one).
#![no_main]

use bytes::Bytes;
use hyper_presence::proto::wire::{Limits, Message};
use libfuzzer_sys::fuzz_target;

/// Fewest input bytes one bootstrap entry takes: map entry tag and length,
/// key tag and length, and the key as a raw 32-byte id (the form our peers
/// send each other; the original's 64 hex digits are longer).
const MIN_ENTRY_INPUT: usize = 1 + 1 + 1 + 1 + 32;

/// Most bytes the encoder adds to one bootstrap entry: a raw key written
/// back as 64 hex digits (32 more), an empty value it writes when the input
/// had none (tag, zero length: 2) or, when there is a value, the zero
/// incarnation and version of its two stamps (tag, zero: 2 each, 8 in all),
/// plus one byte each for the value's and the map entry's length prefixes,
/// which grow by at most a byte when their bodies grow by so little.
const MAX_ENTRY_GROWTH: usize = 32 + 8 + 1 + 1;

/// Most bytes the encoder adds to the message's own stamp: its two zero
/// fields. (The top-level message has no length prefix.)
const MAX_STAMP_GROWTH: usize = 4;

/// What the encoder may add to a decoded message of `entries` bootstrap
/// entries. Everything else it writes the input held at least as long:
/// minimal varints, lowercase keys of the same length, unknown and repeated
/// fields dropped, `features` written only when nonzero.
fn growth_bound(entries: usize) -> usize {
    MAX_STAMP_GROWTH + MAX_ENTRY_GROWTH * entries
}

/// The bound as a function of the input size alone: at most one entry per
/// [`MIN_ENTRY_INPUT`] input bytes, so at most 2.2 times the input, plus 4
/// bytes (all of it raw-keyed entries with no value).
fn reencoded_bound(input_len: usize) -> usize {
    input_len + growth_bound(input_len / MIN_ENTRY_INPUT)
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(message) = Message::decode(&Bytes::copy_from_slice(data), &limits) else {
        return;
    };
    let entries = message.bootstrap.len();
    assert!(entries * MIN_ENTRY_INPUT <= data.len());

    let encoded = message.encode();
    assert_eq!(encoded.len(), message.encoded_len());
    assert!(
        encoded.len() <= data.len() + growth_bound(entries),
        "{} input bytes with {entries} entries re-encode to {}",
        data.len(),
        encoded.len()
    );
    assert!(encoded.len() <= reencoded_bound(data.len()));

    let relaxed = Limits {
        max_packet_bytes: reencoded_bound(limits.max_packet_bytes),
        ..limits
    };
    let again = Message::decode(&encoded, &relaxed).expect("the re-encoding decodes");
    assert_eq!(again, message);
    if encoded.len() <= limits.max_packet_bytes {
        assert_eq!(Message::decode(&encoded, &limits), Ok(message));
    }
});
