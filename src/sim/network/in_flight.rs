//! Packets in flight, stored so that the fields many of them carry are
//! kept once for the whole network.
//!
//! A paced join keeps every link as full as its pacing allows for as long
//! as its latency, so what is in flight grows with the network: about
//! 100 KB a peer at 8,000 bytes per 10 ms and 1 to 50 ms of latency, half
//! the heap at the peak of a 3,000-peer join. Most of those bytes are the
//! same entries and notices over and over: a node's entry at one version
//! encodes to the same bytes in every view that sends it, and so does a
//! notice of it. So a packet waits as the bytes that are its own and the
//! places of its long fields, each of which is kept once in a
//! [`FieldTable`], counted, and the packet is laid out again when it
//! arrives.
//!
//! Only protobuf's framing is read (the flood packet's payload, the
//! message's top-level fields), never what a field means: the part of a
//! packet that does not parse stays in the packet. A field is known again
//! by 128 bits of hash, not by comparing it with the copy held (a cache
//! miss per field sent, which made a 3,000-peer join 11 % slower instead
//! of 5 %); debug builds, where the tests run, compare the bytes too.

use std::hash::BuildHasher;

use bytes::Bytes;
use foldhash::fast::FixedState;
use hashbrown::HashTable;

use crate::proto::wire::protobuf::{Reader, LEN};

/// Fields shorter than this stay in their packet: an entry (about 250
/// bytes) or a notice (38 and up) is worth a place in the table, a stamp is
/// not.
const MIN_SHARED: usize = 32;

/// The flood packet's payload field (hyper-flood's `data`).
const PAYLOAD: u64 = 4;

/// One packet in flight: its own bytes and where its shared fields go.
///
/// Not `Clone`: each holds counted references into the [`FieldTable`] that
/// made it, which [`FieldTable::restore`] or [`FieldTable::release`] gives
/// back ([`FieldTable::copy`] makes a second one).
#[derive(Debug)]
pub(crate) struct StoredPacket {
    /// The packet's bytes outside its shared fields, in order.
    own: Bytes,
    /// Each shared field's offset in the packet and its number in the
    /// table, in order of offset.
    shared: Box<[(u32, u32)]>,
    /// The whole packet's length.
    len: usize,
}

impl StoredPacket {
    /// Length of the packet as sent.
    pub fn len(&self) -> usize {
        self.len
    }
}

/// Seeds of the two hashes that name a field: 128 bits, so that two
/// different fields of one run sharing both is not to be expected (below
/// 10^-24 with a million held at once and a hundred million passing
/// through); debug builds compare the bytes as well.
const HASH: FixedState = FixedState::with_seed(0x6a09_e667_f3bc_c908);
const CHECK: FixedState = FixedState::with_seed(0xbb67_ae85_84ca_a73b);

/// The long fields of the packets in flight, one copy of each, with how
/// many stored packets hold it.
#[derive(Debug, Default)]
pub(crate) struct FieldTable {
    /// Each place's bytes (none while it is free).
    bytes: Vec<Box<[u8]>>,
    /// Each place's hashes and count, apart from its bytes: finding a field
    /// and counting a reference read these, a few bytes each, and not the
    /// field, which the packet that holds it reads again only on delivery.
    meta: Vec<Meta>,
    /// Numbers of the fields held, by [`HASH`]; a field is given back by
    /// number, without hashing it again.
    index: HashTable<u32>,
    /// Numbers of places emptied, reused first.
    free: Vec<u32>,
    /// Reused by [`FieldTable::store`] for the fields it finds.
    scratch: Vec<(usize, usize)>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Meta {
    hash: u64,
    check: u64,
    refs: u32,
}

impl FieldTable {
    /// Stores `packet` until it is delivered: its long fields go to the
    /// table (or add a reference to the copy it holds), the rest is copied
    /// into the stored packet.
    pub fn store(&mut self, packet: &Bytes) -> StoredPacket {
        let mut spans = std::mem::take(&mut self.scratch);
        spans.clear();
        // Offsets are kept in 4 bytes; a larger packet (only a test's
        // injection could be one) waits whole.
        if u32::try_from(packet.len()).is_ok() {
            long_fields(packet, &mut spans);
        }
        if spans.is_empty() {
            self.scratch = spans;
            return StoredPacket {
                own: packet.clone(),
                shared: Box::default(),
                len: packet.len(),
            };
        }
        let shared_len: usize = spans.iter().map(|(start, end)| end - start).sum();
        let mut own = Vec::with_capacity(packet.len() - shared_len);
        let mut shared = Vec::with_capacity(spans.len());
        let mut at = 0;
        for &(start, end) in &spans {
            own.extend_from_slice(&packet[at..start]);
            shared.push((start as u32, self.intern(&packet[start..end])));
            at = end;
        }
        own.extend_from_slice(&packet[at..]);
        self.scratch = spans;
        StoredPacket {
            own: Bytes::from(own),
            shared: shared.into_boxed_slice(),
            len: packet.len(),
        }
    }

    /// A second stored copy of `packet` (the same packet to one more
    /// target), sharing its own bytes and its fields.
    pub fn copy(&mut self, packet: &StoredPacket) -> StoredPacket {
        for &(_, number) in packet.shared.iter() {
            self.meta[number as usize].refs += 1;
        }
        StoredPacket {
            own: packet.own.clone(),
            shared: packet.shared.clone(),
            len: packet.len,
        }
    }

    /// The packet's bytes as they were sent; gives its fields back.
    pub fn restore(&mut self, packet: StoredPacket) -> Bytes {
        if packet.shared.is_empty() {
            return packet.own;
        }
        let mut out = Vec::with_capacity(packet.len);
        let mut own = &packet.own[..];
        for &(offset, number) in packet.shared.iter() {
            let (before, rest) =
                own.split_at((offset as usize).saturating_sub(out.len()).min(own.len()));
            out.extend_from_slice(before);
            own = rest;
            out.extend_from_slice(&self.bytes[number as usize]);
            self.unref(number);
        }
        out.extend_from_slice(own);
        debug_assert_eq!(out.len(), packet.len, "a packet comes back whole");
        Bytes::from(out)
    }

    /// Drops a packet that will not be delivered; gives its fields back.
    pub fn release(&mut self, packet: StoredPacket) {
        for &(_, number) in packet.shared.iter() {
            self.unref(number);
        }
    }

    /// How many distinct fields the table holds.
    #[cfg(test)]
    pub fn fields_held(&self) -> usize {
        self.index.len()
    }

    fn intern(&mut self, bytes: &[u8]) -> u32 {
        let (hash, check) = (HASH.hash_one(bytes), CHECK.hash_one(bytes));
        let meta = &mut self.meta;
        if let Some(&number) = self.index.find(hash, |&n| {
            let m = &meta[n as usize];
            m.hash == hash && m.check == check
        }) {
            debug_assert_eq!(*self.bytes[number as usize], *bytes, "a field named twice");
            meta[number as usize].refs += 1;
            return number;
        }
        let held = Meta {
            hash,
            check,
            refs: 1,
        };
        let number = match self.free.pop() {
            Some(number) => {
                meta[number as usize] = held;
                self.bytes[number as usize] = bytes.into();
                number
            }
            None => {
                meta.push(held);
                self.bytes.push(bytes.into());
                (meta.len() - 1) as u32
            }
        };
        self.index
            .insert_unique(hash, number, |&n| meta[n as usize].hash);
        number
    }

    fn unref(&mut self, number: u32) {
        let meta = &mut self.meta[number as usize];
        meta.refs -= 1;
        if meta.refs == 0 {
            self.bytes[number as usize] = Box::default();
            if let Ok(entry) = self.index.find_entry(meta.hash, |&n| n == number) {
                entry.remove();
            }
            self.free.push(number);
        }
    }
}

/// Appends to `spans` the byte ranges (tag to end) of the long
/// length-delimited fields at the top level of a flood packet's payload.
/// Stops at the first thing that does not parse: ranges found until then
/// are exact all the same.
fn long_fields(packet: &Bytes, spans: &mut Vec<(usize, usize)>) {
    let mut top = Reader::new(packet);
    while !top.is_empty() {
        let Ok((number, wire_type)) = top.read_tag() else {
            return;
        };
        if number != PAYLOAD || wire_type != LEN {
            if top.skip(wire_type).is_err() {
                return;
            }
            continue;
        }
        let Ok(mut message) = top.read_nested() else {
            return;
        };
        while !message.is_empty() {
            let start = message.position();
            let Ok((_, wire_type)) = message.read_tag() else {
                return;
            };
            if message.skip(wire_type).is_err() {
                return;
            }
            let end = message.position();
            if wire_type == LEN && end - start >= MIN_SHARED {
                spans.push((start, end));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use std::time::Duration;

    use super::*;
    use crate::proto::wire::{FloodPacket, Have, Kind, Message, Stamp};
    use crate::proto::PeerId;
    use crate::sim::{sim_id, Faults, Network};

    fn have(n: u8) -> Have {
        Have {
            id: PeerId::from_bytes([n; 32]),
            edges: Stamp {
                incarnation: 1,
                version: u64::from(n),
            },
            data: Stamp {
                incarnation: 1,
                version: 2,
            },
        }
    }

    /// A flood packet whose payload holds the notices of `nodes`, as a
    /// view's flush lays them out.
    fn packet(origin: u8, nodes: &[u8]) -> Bytes {
        let mut message = Vec::new();
        Message::encode_entries_start(Kind::BootstrapResponse, &mut message);
        for &n in nodes {
            Message::encode_have(&mut message, &have(n));
        }
        FloodPacket {
            origin: PeerId::from_bytes([origin; 32]),
            number: 7,
            ttl: 0,
            data: Bytes::from(message),
        }
        .encode()
    }

    #[test]
    fn fields_that_several_packets_carry_are_held_once_and_come_back_in_place() {
        let mut table = FieldTable::default();
        let a = packet(1, &[10, 11, 12]);
        let b = packet(2, &[11, 12, 13]);
        let (sa, sb) = (table.store(&a), table.store(&b));
        assert_eq!(table.fields_held(), 4, "notices of 10, 11, 12 and 13");
        // Each stored packet keeps its header (origin and all), not its notices.
        assert_eq!(sa.own.len(), a.len() - 3 * 38);
        assert!(sa.own.windows(32).any(|w| w == [1; 32]));
        let copy = table.copy(&sa);
        assert_eq!(table.restore(sa), a);
        assert_eq!(table.fields_held(), 4, "the copy still holds 10 to 12");
        table.release(copy);
        assert_eq!(table.fields_held(), 3, "b's notices of 11, 12 and 13");
        assert_eq!(table.restore(sb), b);
        assert_eq!(table.fields_held(), 0);
        // A place emptied is used again.
        let again = table.store(&a);
        assert_eq!(table.meta.len(), 4);
        assert_eq!(table.restore(again), a);
    }

    #[test]
    fn a_packet_that_does_not_parse_is_kept_whole() {
        let mut table = FieldTable::default();
        let junk = Bytes::from_static(&[0x22, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]);
        let stored = table.store(&junk);
        assert_eq!(table.fields_held(), 0);
        assert_eq!(stored.len(), junk.len());
        assert_eq!(table.restore(stored), junk);
    }

    #[test]
    fn a_cut_packet_shares_the_fields_before_the_cut() {
        let mut table = FieldTable::default();
        let whole = packet(1, &[10, 11, 12]);
        // The payload's length now claims more than is there: its fields
        // are not read, and the packet waits as it came.
        let cut = whole.slice(..whole.len() - 1);
        let stored = table.store(&cut);
        assert_eq!(table.fields_held(), 0);
        assert_eq!(table.restore(stored), cut);
    }

    #[test]
    fn a_network_holds_no_field_once_nothing_is_in_flight() {
        // Packets delivered, duplicated, lost to the drop fault and lost on
        // a cut link all give their fields back.
        let faults = Faults {
            drop: 0.02,
            duplicate: 0.2,
            ..Faults::default()
        };
        let mut net = Network::new(11, faults).without_event_log();
        for i in 0..20 {
            net.start(sim_id(i), Bytes::from(format!("{{\"peer\":{i}}}")), false);
        }
        for i in 0..20 {
            net.connect(sim_id(i), sim_id((i + 1) % 20));
            net.connect(sim_id(i), sim_id((i + 5) % 20));
        }
        net.run_for(Duration::from_millis(30));
        assert!(net.fields.fields_held() > 0, "entries in flight, held once");
        net.disconnect(sim_id(0), sim_id(1));
        assert!(net.run_until_quiet(10_000_000));
        assert!(net.stats().lost > 0);
        assert_eq!(net.fields.fields_held(), 0);
        assert_eq!(net.check_converged(), Ok(()));
    }

    proptest! {
        #[test]
        fn any_bytes_come_back_as_they_went(
            packets in proptest::collection::vec(
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::from),
                    (any::<u8>(), proptest::collection::vec(0u8..6, 0..8))
                        .prop_map(|(origin, nodes)| packet(origin, &nodes)),
                ],
                1..12,
            ),
        ) {
            let mut table = FieldTable::default();
            let stored: Vec<_> = packets.iter().map(|p| table.store(p)).collect();
            for (packet, stored) in packets.iter().zip(stored) {
                prop_assert_eq!(table.restore(stored), packet.clone());
            }
            prop_assert_eq!(table.fields_held(), 0);
        }
    }
}
