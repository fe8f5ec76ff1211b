//! The flood layer (hyper-flood's job): numbering what we originate,
//! recognising packets seen before, and relaying with a hop budget.
//!
//! Only messages without our ordering stamps (those of JavaScript peers, and
//! message types we do not know) rely on the duplicate cache here; stamped
//! messages are deduplicated by the presence layer's per-origin watermarks,
//! which cannot be evicted while the origin is known.

use std::num::NonZeroUsize;

use bytes::Bytes;
use lru::LruCache;

use super::wire::{FloodPacket, Kind, Stamp};
use super::PeerId;

/// Numbers and wraps our outgoing messages and remembers recent
/// (origin, number) pairs of unstamped incoming ones.
#[derive(Debug)]
pub struct Flood {
    origin: PeerId,
    next_number: u32,
    ttl: u32,
    seen: LruCache<(PeerId, u32), ()>,
    /// Counts our corrections ([`Flood::correction_number`]) from a start
    /// drawn from the incarnation, so no two of ours share a number.
    corrections: u64,
}

impl Flood {
    /// A flood layer for `origin`. `incarnation` picks where message numbers
    /// start, so that a restarted peer's numbers do not collide with those
    /// of its previous life still in other peers' caches (the original
    /// restarts at 1 and its first messages are dropped as duplicates).
    pub fn new(origin: PeerId, incarnation: u64, ttl: u32, capacity: NonZeroUsize) -> Self {
        Flood {
            origin,
            next_number: first_number(incarnation),
            ttl,
            // Grown as messages come, not sized for `capacity` up front:
            // between our own peers nothing is numbered, and a table for
            // 4,096 entries is 139 KB per engine, 1.4 GB for ten thousand.
            seen: LruCache::sparse(capacity),
            corrections: mix(incarnation ^ 0x243f_6a88_85a3_08d3),
        }
    }

    /// Wraps a presence message we originate. `direct` messages get ttl 0:
    /// they are for the receiving neighbour only.
    pub fn originate(&mut self, message: Bytes, direct: bool) -> Bytes {
        let number = self.next_number;
        self.next_number = self.next_number.wrapping_add(1);
        FloodPacket {
            origin: self.origin,
            number,
            ttl: if direct { 0 } else { self.ttl },
            data: message,
        }
        .encode()
    }

    /// Wraps a presence message as a flood packet from `origin` numbered
    /// `number`, with our hop budget: for our own register changes and for
    /// those of others that we pass to JavaScript peers as the packets their
    /// origin would have sent ([`register_number`]).
    pub fn wrap(&self, origin: PeerId, number: u32, message: Bytes) -> Bytes {
        FloodPacket {
            origin,
            number,
            ttl: self.ttl,
            data: message,
        }
        .encode()
    }

    /// A number for a *correction*: a packet that says again what the
    /// change numbered `change` (its [`register_number`]) said, for a
    /// JavaScript peer that may have taken an older copy of the register
    /// from a view after it saw the change's own packet. The original adds
    /// every edge a view lists and drops a number it has seen, so only a
    /// number it has not seen can take the stale edge out again: this one
    /// differs from the change's and from every correction we made before.
    pub fn correction_number(&mut self, change: u32) -> u32 {
        self.corrections = self.corrections.wrapping_add(1);
        (mix(u64::from(change) ^ mix(self.corrections)) as u32).max(1)
    }

    /// True the first time (origin, number) is seen while it is in the cache.
    pub fn first_sighting(&mut self, origin: PeerId, number: u32) -> bool {
        self.seen.put((origin, number), ()).is_none()
    }

    /// The packet to pass on: one hop less. `ttl` 0 is passed on only when
    /// `ignore_ttl` (stamped messages, whose dedupe bounds them without a
    /// hop count, so a network wider than 255 hops is still covered).
    pub fn relay(packet: &FloodPacket, ignore_ttl: bool) -> Option<Bytes> {
        if packet.ttl == 0 && !ignore_ttl {
            return None;
        }
        let relayed = FloodPacket {
            ttl: packet.ttl.saturating_sub(1),
            ..packet.clone()
        };
        Some(relayed.encode())
    }
}

/// The message number of the flood packet that says "at `stamp`, the
/// origin's register is this": `kind` CONNECTED or DISCONNECTED of `id`, or
/// STATE (no `id`). Every peer derives the same number for the same news,
/// so the copies that reach a JavaScript peer by several paths (the
/// origin's own flood, and those our peers make from batches) are one
/// packet to its duplicate cache; different news gets a different number
/// (a 32-bit hash: two of one origin's packets collide with odds of 2^-32).
pub fn register_number(kind: Kind, stamp: Stamp, id: Option<&PeerId>) -> u32 {
    let mut h = mix(stamp.incarnation);
    h = mix(h ^ stamp.version);
    h = mix(h ^ kind.to_u64());
    if let Some(id) = id {
        for chunk in id.as_bytes().chunks_exact(8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            h = mix(h ^ u64::from_le_bytes(word));
        }
    }
    (h as u32).max(1)
}

/// splitmix64's step and finaliser: consecutive inputs give unrelated outputs.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A start for message numbers spread over the u32 range by the incarnation
/// (splitmix64's finaliser), never 0.
fn first_number(incarnation: u64) -> u32 {
    (mix(incarnation) as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wire::Limits;

    fn flood(incarnation: u64) -> Flood {
        Flood::new(
            PeerId::from_bytes([1; 32]),
            incarnation,
            255,
            NonZeroUsize::new(2).unwrap(),
        )
    }

    fn decode(bytes: &Bytes) -> FloodPacket {
        FloodPacket::decode(bytes, &Limits::default()).unwrap()
    }

    #[test]
    fn originated_packets_count_up_and_direct_ones_have_ttl_zero() {
        let mut f = flood(7);
        let a = decode(&f.originate(Bytes::from_static(b"x"), false));
        let b = decode(&f.originate(Bytes::from_static(b"y"), true));
        assert_eq!(b.number, a.number.wrapping_add(1));
        assert_eq!((a.ttl, b.ttl), (255, 0));
        assert_eq!(a.origin, PeerId::from_bytes([1; 32]));
    }

    #[test]
    fn a_new_incarnation_starts_its_numbers_elsewhere() {
        let first = |inc| decode(&flood(inc).originate(Bytes::new(), false)).number;
        assert_ne!(first(1), first(2));
        assert_ne!(
            first(1),
            1,
            "numbers must not restart at 1 as the original's do"
        );
    }

    #[test]
    fn duplicates_are_recognised_until_evicted() {
        let mut f = flood(0);
        let o = PeerId::from_bytes([9; 32]);
        assert!(f.first_sighting(o, 1));
        assert!(!f.first_sighting(o, 1));
        assert!(f.first_sighting(o, 2));
        assert!(f.first_sighting(o, 3)); // evicts (o, 1) at capacity 2
        assert!(f.first_sighting(o, 1));
    }

    #[test]
    fn register_numbers_name_the_news_not_the_sender() {
        let s = |incarnation, version| Stamp {
            incarnation,
            version,
        };
        let (a, b) = (PeerId::from_bytes([1; 32]), PeerId::from_bytes([2; 32]));
        let n = register_number(Kind::Connected, s(1, 4), Some(&a));
        assert_eq!(n, register_number(Kind::Connected, s(1, 4), Some(&a)));
        let others = [
            register_number(Kind::Connected, s(1, 4), Some(&b)),
            register_number(Kind::Disconnected, s(1, 4), Some(&a)),
            register_number(Kind::Connected, s(1, 5), Some(&a)),
            register_number(Kind::Connected, s(2, 4), Some(&a)),
            register_number(Kind::State, s(1, 4), None),
        ];
        assert!(others.iter().all(|o| *o != n), "{n} {others:?}");
    }

    #[test]
    fn relays_lose_one_hop_and_stop_at_zero_unless_stamped() {
        let p = FloodPacket {
            origin: PeerId::from_bytes([3; 32]),
            number: 4,
            ttl: 1,
            data: Bytes::from_static(b"m"),
        };
        let once = decode(&Flood::relay(&p, false).unwrap());
        assert_eq!(once.ttl, 0);
        assert_eq!(once.data, p.data);
        assert!(Flood::relay(&once, false).is_none());
        assert_eq!(decode(&Flood::relay(&once, true).unwrap()).ttl, 0);
    }
}
