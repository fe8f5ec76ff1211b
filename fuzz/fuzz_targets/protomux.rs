//! Frames from a remote that has paired with our `hypercore/alpha` channel:
//! never a panic; the mux keeps its remote slots within the bound; every
//! extension payload shares the bytes of the frame it came in.
//!
//! Input: a sequence of `len: u8 || frame[len]` (the last frame may be short).
#![no_main]

use bytes::Bytes;
use hyper_presence::net::transport::channel::{ChannelEvent, CoreChannel};
use hyper_presence::net::transport::protomux::{Mux, MAX_REMOTE_CHANNELS};
use libfuzzer_sys::fuzz_target;

const CORE_KEY: [u8; 32] = [3; 32];
const HANDSHAKE_HASH: [u8; 64] = [9; 64];

fuzz_target!(|data: &[u8]| {
    let mut mux = Mux::new();
    let mut channel = CoreChannel::open(&mut mux, &CORE_KEY, &HANDSHAKE_HASH, true);
    // The remote's genuine open, so that messages reach the channel.
    let mut remote = Mux::new();
    CoreChannel::open(&mut remote, &CORE_KEY, &HANDSHAKE_HASH, false);
    let open = remote.poll_frame().expect("an open frame");
    mux.receive(Bytes::from(open)).expect("a valid open");
    while let Some(event) = mux.poll_event() {
        channel.handle(event).expect("a valid capability");
    }
    assert!(channel.is_open());

    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (frame, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        let frame = Bytes::copy_from_slice(frame);
        let result = mux.receive(frame.clone());
        assert!(mux.remote_slots() <= MAX_REMOTE_CHANNELS as usize);
        while mux.poll_frame().is_some() {}
        while let Some(event) = mux.poll_event() {
            match channel.handle(event) {
                Ok(Some(ChannelEvent::Extension { payload, .. })) if !payload.is_empty() => {
                    // Shared with the frame, not copied.
                    let start = (payload.as_ptr() as usize)
                        .checked_sub(frame.as_ptr() as usize)
                        .expect("the payload lies in the frame");
                    assert!(start + payload.len() <= frame.len());
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
        if result.is_err() {
            return;
        }
    }
});
