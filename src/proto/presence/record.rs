//! What the engine keeps about each node besides its edges.

use crate::proto::wire::{Signature, Stamp};
use crate::proto::{Interner, SharedBlock};

/// What the view's byte budget counts as part of the node itself of a
/// node's signatures and data together: up to this many bytes, nothing
/// more; past it, all of them. Fixed apart from how the record lays its
/// parts out, so that what a view is charged does not change with it.
const CHARGED_WITH_NODE: usize = 24;

const EDGES_STAMPED: u8 = 1;
const DATA_STAMPED: u8 = 2;
const HAS_DATA: u8 = 4;
/// The data bytes are kept (they are signed and must go on as they came)
/// but our codec cannot decode them: for the application there is no data.
const DATA_INVALID: u8 = 8;
const EDGES_SIGNED: u8 = 16;
const DATA_SIGNED: u8 = 32;

/// Bytes of one stamp in the block (incarnation, version, little-endian).
const STAMP: usize = 16;
/// Bytes of one signature in the block.
const SIG: usize = 64;

/// One node's two last-writer-wins registers (its edge list's stamp and
/// signature; its data, the data's stamp and signature). An absent stamp
/// stands for the unordered news of a JavaScript origin, an absent signature
/// for an origin that does not sign.
///
/// Every engine keeps one per known peer, so a simulation of ten thousand
/// peers holds 10^8 of them: the optional parts share one flag byte instead
/// of an `Option` each, data is kept encoded only (decoded when asked for),
/// and the registers are one block (the flag byte, then edges stamp, data
/// stamp, edges signature, data signature and the data, each there if its
/// flag says) behind a one-word pointer: the record is 8 bytes. A block is
/// reference-counted and never changed in place (a change lays out a new
/// one), so that the engines of one process can share it
/// ([`Record::share`]): theirs are the same bytes, as each node's registers
/// are the same in every view. Who the node is charged to is the view's
/// own, and kept in the graph's tag of the node
/// ([`ChargedTo`](super::budget::ChargedTo)).
#[derive(Debug, Default)]
pub(super) struct Record {
    bytes: Block,
}

/// A data register to set ([`Record::set_registers`]).
pub(super) struct DataRegister<'a> {
    /// Its stamp; `None` keeps the one held.
    pub stamp: Option<Stamp>,
    pub signature: Option<Signature>,
    pub data: Option<&'a [u8]>,
    /// Our codec decodes `data`.
    pub valid: bool,
}

/// A record's registers, read out of its block or about to be laid out.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Parts<'a> {
    edges_stamp: Option<Stamp>,
    data_stamp: Option<Stamp>,
    edges_signature: Option<Signature>,
    data_signature: Option<Signature>,
    data: Option<&'a [u8]>,
    /// Our codec decodes the data.
    valid: bool,
}

impl Record {
    /// How new the node's edge list is, if an ordered origin said.
    pub fn edges_stamp(&self) -> Option<Stamp> {
        self.stamp_at(EDGES_STAMPED, 0)
    }

    #[cfg(test)]
    pub fn set_edges_stamp(&mut self, stamp: Stamp) {
        let parts = Parts {
            edges_stamp: Some(stamp),
            ..self.parts()
        };
        self.put(self.relaid(parts));
    }

    /// How new the node's data is, if an ordered origin said.
    pub fn data_stamp(&self) -> Option<Stamp> {
        self.stamp_at(DATA_STAMPED, self.width(EDGES_STAMPED, STAMP))
    }

    #[cfg(test)]
    pub fn set_data_stamp(&mut self, stamp: Stamp) {
        let parts = Parts {
            data_stamp: Some(stamp),
            ..self.parts()
        };
        self.put(self.relaid(parts));
    }

    /// The node's valid encoded data; `None` when unknown or undecodable
    /// (empty data is data).
    pub fn data(&self) -> Option<&[u8]> {
        (self.flags() & (HAS_DATA | DATA_INVALID) == HAS_DATA).then(|| self.data_bytes())
    }

    /// The node's data as it came, decodable or not: what a view passes on
    /// (the origin's signature covers these bytes).
    pub fn wire_data(&self) -> Option<&[u8]> {
        (self.flags() & HAS_DATA != 0).then(|| self.data_bytes())
    }

    /// Sets the data (`valid`: our codec decodes it).
    pub fn set_data(&mut self, data: Option<&[u8]>, valid: bool) {
        let parts = Parts {
            data,
            valid,
            ..self.parts()
        };
        self.put(self.relaid(parts));
    }

    /// The origin's signature of its edge list, if it signs.
    pub fn edges_signature(&self) -> Option<Signature> {
        self.signature_at(EDGES_SIGNED, self.stamps_len())
    }

    /// The origin's signature of its data, if it signs.
    pub fn data_signature(&self) -> Option<Signature> {
        let at = self.stamps_len() + self.width(EDGES_SIGNED, SIG);
        self.signature_at(DATA_SIGNED, at)
    }

    #[cfg(test)]
    pub fn set_edges_signature(&mut self, signature: Option<Signature>) {
        let parts = Parts {
            edges_signature: signature,
            ..self.parts()
        };
        self.put(self.relaid(parts));
    }

    #[cfg(test)]
    pub fn set_data_signature(&mut self, signature: Option<Signature>) {
        let parts = Parts {
            data_signature: signature,
            ..self.parts()
        };
        self.put(self.relaid(parts));
    }

    /// Sets the edge register's stamp and signature at once: one new block
    /// instead of one per part (a block is never changed in place).
    pub fn set_edges_register(&mut self, stamp: Stamp, signature: Option<Signature>) {
        self.set_registers(Some((stamp, signature)), None);
    }

    /// Sets the data register at once: its stamp (kept when `None`), its
    /// signature, and its data (`valid`: our codec decodes it).
    pub fn set_data_register(
        &mut self,
        stamp: Option<Stamp>,
        signature: Option<Signature>,
        data: Option<&[u8]>,
        valid: bool,
    ) {
        self.set_registers(
            None,
            Some(DataRegister {
                stamp,
                signature,
                data,
                valid,
            }),
        );
    }

    /// Sets the registers given (the edge register's stamp and signature,
    /// the data register) in one new block: an entry that is news in both
    /// costs one allocation, not two.
    pub fn set_registers(
        &mut self,
        edges: Option<(Stamp, Option<Signature>)>,
        data: Option<DataRegister<'_>>,
    ) {
        let mut parts = self.parts();
        if let Some((stamp, signature)) = edges {
            parts.edges_stamp = Some(stamp);
            parts.edges_signature = signature;
        }
        if let Some(d) = data {
            parts.data_stamp = d.stamp.or(parts.data_stamp);
            parts.data_signature = d.signature;
            parts.data = d.data;
            parts.valid = d.valid;
        }
        self.put(self.relaid(parts));
    }

    /// Whether we hold a register its origin signed: from then on the
    /// origin counts as one that signs.
    pub fn is_signed(&self) -> bool {
        self.flags() & (EDGES_SIGNED | DATA_SIGNED) != 0
    }

    /// Forgets the edge register's stamp and signature (the edges themselves
    /// live in the graph).
    pub fn clear_edges_register(&mut self) {
        let parts = Parts {
            edges_stamp: None,
            edges_signature: None,
            ..self.parts()
        };
        self.put(self.relaid(parts));
    }

    /// Forgets the data register: data, stamp and signature.
    pub fn clear_data_register(&mut self) {
        let parts = Parts {
            data_stamp: None,
            data_signature: None,
            data: None,
            valid: true,
            ..self.parts()
        };
        self.put(self.relaid(parts));
    }

    /// What the view's byte budget charges for the node's signatures and
    /// data besides the node itself (see [`CHARGED_WITH_NODE`]). A block
    /// shared with other records counts in full: what a view is charged
    /// must not depend on what other engines hold.
    pub fn heap_bytes(&self) -> usize {
        let len = self.bytes.as_slice().len() - self.stamps_len();
        if len > CHARGED_WITH_NODE {
            len
        } else {
            0
        }
    }

    /// Swaps the heap block, if any, for the interner's one of the same
    /// contents, so that identical blocks of many engines are kept once.
    pub fn share(&mut self, interner: &Interner) {
        if let Some(block) = &self.bytes.0 {
            let shared = interner.share(block);
            if !SharedBlock::same(&shared, block) {
                self.bytes = Block(Some(shared));
            }
        }
    }

    /// Every register as it is now.
    fn parts(&self) -> Parts<'_> {
        Parts {
            edges_stamp: self.edges_stamp(),
            data_stamp: self.data_stamp(),
            edges_signature: self.edges_signature(),
            data_signature: self.data_signature(),
            data: self.wire_data(),
            valid: self.flags() & DATA_INVALID == 0,
        }
    }

    /// `parts` laid out as a new block and its flags, unless nothing
    /// changed: one allocation at most, sized exactly, none when there are
    /// no parts.
    fn relaid(&self, parts: Parts<'_>) -> Option<Block> {
        (parts != self.parts()).then(|| parts.laid_out())
    }

    fn put(&mut self, relaid: Option<Block>) {
        if let Some(bytes) = relaid {
            self.bytes = bytes;
        }
    }

    /// Which parts the block holds.
    fn flags(&self) -> u8 {
        self.bytes.flags()
    }

    /// Reads the first byte of the record's block, where its stamps are:
    /// a hint for [`Graph::warm`](crate::proto::graph::Graph::warm).
    pub fn warm(&self) {
        std::hint::black_box(self.flags());
    }

    /// `size` if the block holds the part `flag` says, else 0.
    fn width(&self, flag: u8, size: usize) -> usize {
        if self.flags() & flag != 0 {
            size
        } else {
            0
        }
    }

    fn stamps_len(&self) -> usize {
        self.width(EDGES_STAMPED, STAMP) + self.width(DATA_STAMPED, STAMP)
    }

    fn stamp_at(&self, flag: u8, at: usize) -> Option<Stamp> {
        if self.flags() & flag == 0 {
            return None;
        }
        let bytes = self.bytes.as_slice().get(at..at + STAMP)?;
        let (incarnation, version) = bytes.split_at(8);
        Some(Stamp {
            incarnation: u64::from_le_bytes(incarnation.try_into().ok()?),
            version: u64::from_le_bytes(version.try_into().ok()?),
        })
    }

    fn signature_at(&self, flag: u8, at: usize) -> Option<Signature> {
        if self.flags() & flag == 0 {
            return None;
        }
        self.bytes.as_slice().get(at..at + SIG)?.try_into().ok()
    }

    fn data_bytes(&self) -> &[u8] {
        let at = self.stamps_len() + self.width(EDGES_SIGNED, SIG) + self.width(DATA_SIGNED, SIG);
        self.bytes.as_slice().get(at..).unwrap_or_default()
    }
}

impl Parts<'_> {
    /// The block holding these parts, with the flags that say which it
    /// holds. Built from borrowed parts of the old block in one pass.
    fn laid_out(&self) -> Block {
        let stamp = |s: Option<Stamp>| {
            s.map(|s| {
                let mut b = [0; STAMP];
                b[..8].copy_from_slice(&s.incarnation.to_le_bytes());
                b[8..].copy_from_slice(&s.version.to_le_bytes());
                b
            })
        };
        let mut flags = 0;
        for (present, flag) in [
            (self.edges_stamp.is_some(), EDGES_STAMPED),
            (self.data_stamp.is_some(), DATA_STAMPED),
            (self.edges_signature.is_some(), EDGES_SIGNED),
            (self.data_signature.is_some(), DATA_SIGNED),
            (self.data.is_some(), HAS_DATA),
            (self.data.is_some() && !self.valid, DATA_INVALID),
        ] {
            if present {
                flags |= flag;
            }
        }
        // No flag, no part: nothing to keep.
        if flags == 0 {
            return Block(None);
        }
        let (edges_stamp, data_stamp) = (stamp(self.edges_stamp), stamp(self.data_stamp));
        Block(Some(SharedBlock::concat(&[
            &[flags],
            edges_stamp.as_ref().map_or(&[], |s| &s[..]),
            data_stamp.as_ref().map_or(&[], |s| &s[..]),
            self.edges_signature.as_ref().map_or(&[], |s| &s[..]),
            self.data_signature.as_ref().map_or(&[], |s| &s[..]),
            self.data.unwrap_or_default(),
        ])))
    }
}

/// A record's registers: one block that is never changed in place, so
/// that it can be shared, or none when there are none. Its first byte
/// says which parts it holds: in the block, not beside its pointer, where
/// it would pad the record to 16 bytes (and as triomphe's header, it would
/// take a padded word of each block).
#[derive(Debug, Default)]
struct Block(Option<SharedBlock>);

impl Block {
    /// The parts, after the flag byte.
    fn as_slice(&self) -> &[u8] {
        self.0
            .as_deref()
            .and_then(|b| b.get(1..))
            .unwrap_or_default()
    }

    fn flags(&self) -> u8 {
        self.0
            .as_deref()
            .and_then(|b| b.first())
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_record_is_8_bytes_and_a_known_node_24() {
        assert_eq!(std::mem::size_of::<Block>(), 8);
        assert_eq!(std::mem::size_of::<Record>(), 8);
        let node = std::mem::size_of::<crate::proto::graph::Node<Record>>();
        assert_eq!(node, 24, "a view's node: 16, and the record");
    }

    #[test]
    fn only_signatures_and_data_past_the_node_are_charged() {
        let mut big = Record::default();
        big.set_data(Some(&[1; 1000]), true);
        assert!(big.heap_bytes() >= 1000);
        let mut small = Record::default();
        small.set_data(Some(b"{}"), true);
        assert_eq!((small.heap_bytes(), Record::default().heap_bytes()), (0, 0));
    }

    #[test]
    fn absent_and_empty_are_told_apart() {
        let mut r = Record::default();
        assert_eq!(
            (r.edges_stamp(), r.data_stamp(), r.data()),
            (None, None, None)
        );
        r.set_data(Some(b""), true);
        assert_eq!(r.data(), Some(&b""[..]));
        let zero = Stamp::default();
        r.set_edges_stamp(zero);
        assert_eq!((r.edges_stamp(), r.data_stamp()), (Some(zero), None));
        r.set_data(None, true);
        assert_eq!(r.data(), None);
    }

    #[test]
    fn data_of_any_size_round_trips_and_empty_registers_hold_no_block() {
        let mut r = Record::default();
        assert!(r.bytes.0.is_none());
        let big = vec![7u8; 1000];
        r.set_data(Some(&big), true);
        assert_eq!(r.data(), Some(&big[..]));
        assert_eq!(r.bytes.as_slice().len(), 1000);
        r.set_data(Some(b"{\"a\":1}"), true);
        assert_eq!(r.data(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(r.bytes.as_slice().len(), 7, "sized exactly");
        r.set_data(Some(b""), true);
        assert_eq!(r.data(), Some(&b""[..]));
        assert!(r.bytes.as_slice().is_empty(), "empty data, no bytes");
        r.set_data(None, true);
        assert!(r.bytes.0.is_none(), "no parts, no block");
    }

    #[test]
    fn signatures_and_data_share_the_buffer_in_any_order_of_setting() {
        let mut r = Record::default();
        r.set_data(Some(b"abc"), true);
        r.set_data_signature(Some([2; 64]));
        assert_eq!(
            (r.edges_signature(), r.data_signature()),
            (None, Some([2; 64]))
        );
        r.set_edges_signature(Some([1; 64]));
        assert_eq!(r.edges_signature(), Some([1; 64]));
        assert_eq!(r.data_signature(), Some([2; 64]));
        assert_eq!(r.data(), Some(&b"abc"[..]));
        r.set_data(Some(b"defg"), true);
        assert_eq!(r.data_signature(), Some([2; 64]));
        assert_eq!(r.data(), Some(&b"defg"[..]));
        assert!(r.is_signed());
        r.clear_edges_register();
        assert_eq!((r.edges_signature(), r.edges_stamp()), (None, None));
        assert_eq!(
            (r.data_signature(), r.data()),
            (Some([2; 64]), Some(&b"defg"[..]))
        );
        r.clear_data_register();
        assert!(!r.is_signed());
        assert_eq!(
            (r.data(), r.wire_data(), r.data_stamp()),
            (None, None, None)
        );
        assert!(
            r.bytes.0.is_none(),
            "a record without registers gives its block back"
        );
    }

    #[test]
    fn a_register_is_set_whole_in_one_block() {
        let s = |version| Stamp {
            incarnation: 1,
            version,
        };
        let mut r = Record::default();
        r.set_edges_register(s(1), Some([1; 64]));
        r.set_data_register(Some(s(2)), Some([2; 64]), Some(b"bad"), false);
        assert_eq!(
            (r.edges_stamp(), r.edges_signature()),
            (Some(s(1)), Some([1; 64]))
        );
        assert_eq!(
            (r.data_stamp(), r.data_signature()),
            (Some(s(2)), Some([2; 64]))
        );
        assert_eq!((r.data(), r.wire_data()), (None, Some(&b"bad"[..])));
        let before = r.bytes.as_slice().as_ptr();
        // The same again changes nothing, not even the block.
        r.set_data_register(None, Some([2; 64]), Some(b"bad"), false);
        assert_eq!(r.bytes.as_slice().as_ptr(), before);
        // No stamp given keeps the one held; the rest is replaced.
        r.set_data_register(None, None, Some(b"ok"), true);
        assert_eq!((r.data_stamp(), r.data_signature()), (Some(s(2)), None));
        assert_eq!(r.data(), Some(&b"ok"[..]));
        assert_eq!(
            r.edges_signature(),
            Some([1; 64]),
            "the other register stays"
        );
    }

    fn signed(data: &[u8]) -> Record {
        let mut r = Record::default();
        r.set_edges_signature(Some([1; 64]));
        r.set_data_signature(Some([2; 64]));
        r.set_data(Some(data), true);
        r
    }

    fn block_of(r: &Record) -> &SharedBlock {
        r.bytes.0.as_ref().expect("a block")
    }

    #[test]
    fn records_with_equal_registers_share_one_block_and_read_as_before() {
        let interner = Interner::new(64);
        let (mut a, mut b, mut c) = (signed(b"same"), signed(b"same"), signed(b"else"));
        let alone = a.heap_bytes();
        assert!(!SharedBlock::same(block_of(&a), block_of(&b)));
        for r in [&mut a, &mut b, &mut c] {
            r.share(&interner);
        }
        assert!(SharedBlock::same(block_of(&a), block_of(&b)));
        assert!(!SharedBlock::same(block_of(&a), block_of(&c)));
        // Sharing changes no reading, nor what the view is charged.
        assert_eq!(a.heap_bytes(), alone);
        assert_eq!(
            (b.edges_signature(), b.data_signature(), b.data()),
            (Some([1; 64]), Some([2; 64]), Some(&b"same"[..]))
        );
        assert_eq!(c.data(), Some(&b"else"[..]));
        // A change lays out a block of its own: the other record keeps
        // what it had.
        a.set_data(Some(b"new"), true);
        assert_eq!(a.data(), Some(&b"new"[..]));
        assert_eq!(b.data(), Some(&b"same"[..]));
        assert_eq!(block_of(&b).holders(), 2, "b and the table");
        a.share(&interner);
        b.share(&interner);
        assert_eq!(b.data(), Some(&b"same"[..]));
        // Small data is shared too, and a record without registers has
        // nothing to share.
        let (mut small, mut twin) = (Record::default(), Record::default());
        small.set_data(Some(b"tiny"), true);
        twin.set_data(Some(b"tiny"), true);
        small.share(&interner);
        twin.share(&interner);
        assert!(SharedBlock::same(block_of(&small), block_of(&twin)));
        assert_eq!(small.data(), Some(&b"tiny"[..]));
        let before = interner.len();
        Record::default().share(&interner);
        assert_eq!(interner.len(), before);
    }

    /// What a record must read back: each register part on its own.
    #[derive(Debug, Default, Clone, PartialEq)]
    struct Model {
        edges_stamp: Option<Stamp>,
        data_stamp: Option<Stamp>,
        edges_signature: Option<Signature>,
        data_signature: Option<Signature>,
        data: Option<(Vec<u8>, bool)>,
    }

    fn read(r: &Record) -> Model {
        let data = r.wire_data().map(|d| (d.to_vec(), r.data().is_some()));
        Model {
            edges_stamp: r.edges_stamp(),
            data_stamp: r.data_stamp(),
            edges_signature: r.edges_signature(),
            data_signature: r.data_signature(),
            data,
        }
    }

    fn stamp() -> impl Strategy<Value = Stamp> {
        (0u64..3, any::<u64>()).prop_map(|(incarnation, version)| Stamp {
            incarnation,
            version,
        })
    }

    fn signature() -> impl Strategy<Value = Option<Signature>> {
        prop::option::of(any::<u8>().prop_map(|b| [b; 64]))
    }

    #[derive(Debug, Clone)]
    enum Op {
        EdgesStamp(Stamp),
        DataStamp(Stamp),
        EdgesSignature(Option<Signature>),
        DataSignature(Option<Signature>),
        Data(Option<Vec<u8>>, bool),
        ClearEdges,
        ClearData,
        Share,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            stamp().prop_map(Op::EdgesStamp),
            stamp().prop_map(Op::DataStamp),
            signature().prop_map(Op::EdgesSignature),
            signature().prop_map(Op::DataSignature),
            (
                prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
                any::<bool>()
            )
                .prop_map(|(d, v)| Op::Data(d, v)),
            Just(Op::ClearEdges),
            Just(Op::ClearData),
            Just(Op::Share),
        ]
    }

    proptest! {
        /// Whatever order parts are set, cleared and shared in, each reads
        /// back as last set, the others untouched, and the budget's charge
        /// is that of the signatures and data alone.
        #[test]
        fn every_part_reads_back_as_last_set(ops in prop::collection::vec(op(), 0..24)) {
            let interner = Interner::new(64);
            let (mut r, mut m) = (Record::default(), Model::default());
            for op in ops {
                match op {
                    Op::EdgesStamp(s) => { r.set_edges_stamp(s); m.edges_stamp = Some(s); }
                    Op::DataStamp(s) => { r.set_data_stamp(s); m.data_stamp = Some(s); }
                    Op::EdgesSignature(s) => { r.set_edges_signature(s); m.edges_signature = s; }
                    Op::DataSignature(s) => { r.set_data_signature(s); m.data_signature = s; }
                    Op::Data(d, valid) => {
                        r.set_data(d.as_deref(), valid);
                        m.data = d.map(|d| (d, valid));
                    }
                    Op::ClearEdges => {
                        r.clear_edges_register();
                        (m.edges_stamp, m.edges_signature) = (None, None);
                    }
                    Op::ClearData => {
                        r.clear_data_register();
                        (m.data_stamp, m.data_signature, m.data) = (None, None, None);
                    }
                    Op::Share => {
                        // A twin with the same registers gets the same block.
                        let mut twin = Record::default();
                        twin.put(twin.relaid(r.parts()));
                        r.share(&interner);
                        twin.share(&interner);
                        if let (Some(a), Some(b)) = (&r.bytes.0, &twin.bytes.0) {
                            prop_assert!(SharedBlock::same(a, b));
                        }
                        prop_assert_eq!(r.bytes.0.is_some(), twin.bytes.0.is_some());
                    }
                }
                prop_assert_eq!(read(&r), m.clone());
                prop_assert_eq!(r.is_signed(), m.edges_signature.is_some() || m.data_signature.is_some());
                let charged = 64 * (m.edges_signature.is_some() as usize + m.data_signature.is_some() as usize)
                    + m.data.as_ref().map_or(0, |(d, _)| d.len());
                prop_assert_eq!(r.heap_bytes(), if charged > 24 { charged } else { 0 });
            }
        }
    }

    #[test]
    fn undecodable_data_is_kept_for_the_wire_but_not_shown() {
        let mut r = Record::default();
        r.set_data(Some(b"\xff"), false);
        assert_eq!((r.data(), r.wire_data()), (None, Some(&b"\xff"[..])));
        r.set_data(Some(b"1"), true);
        assert_eq!(
            (r.data(), r.wire_data()),
            (Some(&b"1"[..]), Some(&b"1"[..]))
        );
    }
}
