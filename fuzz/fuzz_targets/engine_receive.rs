//! Any bytes from a neighbour, fed to a running engine: never a panic, and
//! the engine stays usable (we stay online, outputs drain).
#![no_main]

use std::time::Duration;

use bytes::Bytes;
use hyper_presence::proto::{Config, PeerId, Presence};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let me = PeerId::from_bytes([1; 32]);
    let neighbour = PeerId::from_bytes([2; 32]);
    let mut engine = Presence::new(Config::new(me), Duration::ZERO).expect("default config");
    engine.peer_connected(Duration::ZERO, neighbour);
    engine.drain_outputs().for_each(drop);
    engine.receive(
        Duration::from_millis(1),
        neighbour,
        Bytes::copy_from_slice(data),
    );
    engine.drain_outputs().for_each(drop);
    assert!(engine.is_online(&me));
});
