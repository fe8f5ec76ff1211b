//! Arbitrary open handshakes and channel messages handed to a
//! `hypercore/alpha` channel: never a panic; extensions come only from type
//! 9 and their payload is the tail of the message body.
//!
//! Input: `mode || hlen: u8 || handshake[hlen] || { kind: u8 || len: u8 ||
//! body[len] }*`. An even `mode` first pairs the channel with a genuine
//! open, so that messages are taken; an odd one uses the handshake bytes.
#![no_main]

use bytes::Bytes;
use hyper_presence::net::transport::channel::{ChannelEvent, CoreChannel, EXTENSION};
use hyper_presence::net::transport::protomux::{Mux, MuxEvent};
use libfuzzer_sys::fuzz_target;

const CORE_KEY: [u8; 32] = [3; 32];
const HANDSHAKE_HASH: [u8; 64] = [9; 64];

/// Splits `len: u8 || bytes[len]` off the front (short if the input is).
fn chunk(data: &[u8]) -> (&[u8], &[u8]) {
    match data.split_first() {
        Some((&len, tail)) => tail.split_at(usize::from(len).min(tail.len())),
        None => (&[], &[]),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let mut mux = Mux::new();
    let mut channel = CoreChannel::open(&mut mux, &CORE_KEY, &HANDSHAKE_HASH, true);
    let local = channel.local();
    let (handshake, mut rest) = chunk(data);
    let handshake = if mode % 2 == 0 {
        let mut remote = Mux::new();
        CoreChannel::open(&mut remote, &CORE_KEY, &HANDSHAKE_HASH, false);
        mux.receive(Bytes::from(remote.poll_frame().expect("an open frame")))
            .expect("a valid open");
        match mux.poll_event() {
            Some(MuxEvent::Opened { handshake, .. }) => handshake,
            other => panic!("expected the open, got {other:?}"),
        }
    } else {
        Bytes::copy_from_slice(handshake)
    };
    let opened = channel.handle(MuxEvent::Opened { local, handshake });
    assert_eq!(opened.is_ok(), channel.is_open());

    while let Some((&kind, tail)) = rest.split_first() {
        let (body, tail) = chunk(tail);
        rest = tail;
        let kind = u64::from(kind);
        let event = MuxEvent::Message {
            local,
            kind,
            body: Bytes::copy_from_slice(body),
        };
        match channel.handle(event) {
            Ok(Some(ChannelEvent::Extension { payload, .. })) => {
                assert_eq!(kind, EXTENSION);
                assert!(body.ends_with(&payload));
            }
            Ok(Some(other)) => panic!("a message gave {other:?}"),
            Ok(None) => {}
            Err(_) => return,
        }
    }
});
