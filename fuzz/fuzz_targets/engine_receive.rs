//! Any bytes from two neighbours, fed as packets to a running engine with
//! time passing in between: never a panic; whatever they say, we and both
//! neighbours stay online (our own edges are ours alone), the view stays
//! within `max_known_peers`, timers make progress; once both neighbours are
//! gone and their grace has passed, we are the only peer online.
//!
//! Input: a sequence of `ctl: u8 || len: u16 LE || packet[len]` (the last
//! packet may be short). Bit 0 of `ctl` picks the neighbour; the other bits
//! are how many 50 ms steps pass (and timers fire) before the packet.
#![no_main]

use std::time::Duration;

use bytes::Bytes;
use hyper_presence::proto::{Config, DataCodec, PeerId, Presence};
use libfuzzer_sys::fuzz_target;

/// Enough timer firings for any input: a stuck timer (due but never
/// cleared) would loop here forever.
const MAX_TICKS: usize = 10_000;

/// Fires every timer due by `until`, in order.
fn run_timers<C: DataCodec>(engine: &mut Presence<C>, until: Duration) {
    for _ in 0..MAX_TICKS {
        match engine.poll_timeout() {
            Some(due) if due <= until => {
                engine.tick(due);
                engine.drain_outputs().for_each(drop);
            }
            _ => {
                engine.tick(until);
                engine.drain_outputs().for_each(drop);
                return;
            }
        }
    }
    panic!("timers still due after {MAX_TICKS} ticks");
}

fuzz_target!(|data: &[u8]| {
    let me = PeerId::from_bytes([1; 32]);
    let neighbours = [PeerId::from_bytes([2; 32]), PeerId::from_bytes([3; 32])];
    let config = Config::new(me);
    let (grace, forget_after, max_known) = (
        config.disconnect_grace,
        config.forget_after,
        config.max_known_peers,
    );
    let mut engine = Presence::new(config, Duration::ZERO).expect("default config");
    for neighbour in neighbours {
        engine.peer_connected(Duration::ZERO, neighbour);
    }
    engine.drain_outputs().for_each(drop);

    let mut now = Duration::ZERO;
    let mut rest = data;
    while let Some((&ctl, tail)) = rest.split_first() {
        let (len, tail) = match tail {
            [lo, hi, tail @ ..] => (usize::from(u16::from_le_bytes([*lo, *hi])), tail),
            _ => (tail.len(), &[][..]),
        };
        let (packet, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        now += Duration::from_millis(50) * u32::from(ctl >> 1);
        run_timers(&mut engine, now);
        let from = neighbours[usize::from(ctl & 1)];
        engine.receive(now, from, Bytes::copy_from_slice(packet));
        engine.drain_outputs().for_each(drop);
        assert!(engine.is_online(&me));
        for neighbour in &neighbours {
            assert!(
                engine.is_online(neighbour),
                "a packet took a neighbour offline"
            );
        }
        assert!(engine.known_count() <= max_known);
    }

    for neighbour in neighbours {
        engine.peer_disconnected(now, neighbour);
    }
    run_timers(
        &mut engine,
        now + grace + forget_after + Duration::from_secs(1),
    );
    assert_eq!(engine.online(), vec![me]);
});
