//! What the engine keeps about each node besides its edges.

use std::sync::Arc;

use crate::proto::wire::{Signature, Stamp};
use crate::proto::Interner;

/// Data up to this many bytes is kept inside the record, without a heap
/// block: typical presence data (a name, a status, a port) is this small.
const INLINE_DATA: usize = 24;

const EDGES_STAMPED: u8 = 1;
const DATA_STAMPED: u8 = 2;
const HAS_DATA: u8 = 4;
/// The data bytes are kept (they are signed and must go on as they came)
/// but our codec cannot decode them: for the application there is no data.
const DATA_INVALID: u8 = 8;
const EDGES_SIGNED: u8 = 16;
const DATA_SIGNED: u8 = 32;
/// News of the node came from a second direct peer besides [`Record::via`]:
/// more than one neighbour vouches for it.
const VOUCHED_TWICE: u8 = 64;

/// Bytes of one signature in the buffer.
const SIG: usize = 64;

/// One node's two last-writer-wins registers (its edge list's stamp and
/// signature; its data, the data's stamp and signature). An absent stamp
/// stands for the unordered news of a JavaScript origin, an absent signature
/// for an origin that does not sign.
///
/// Every engine keeps one per known peer, so a simulation of ten thousand
/// peers holds 10^8 of them: the optional parts share one flag byte instead
/// of an `Option` each, data is kept encoded only (decoded when asked
/// for), and small data sits inline. Signatures share the data's buffer
/// (edges signature, data signature, then the data), so a signed node costs
/// one heap block and the record stays 72 bytes. That block is
/// reference-counted and never changed in place, so that the engines of
/// one process can share it ([`Record::share`]).
#[derive(Debug, Default)]
pub(super) struct Record {
    edges_stamp: Stamp,
    data_stamp: Stamp,
    bytes: Block,
    flags: u8,
    /// The number of the direct peer whose news first brought the node
    /// (0: none), which the view's byte budget charges it to. In what was
    /// padding: the record stays 72 bytes.
    via: u16,
}

impl Record {
    /// How new the node's edge list is, if an ordered origin said.
    pub fn edges_stamp(&self) -> Option<Stamp> {
        (self.flags & EDGES_STAMPED != 0).then_some(self.edges_stamp)
    }

    pub fn set_edges_stamp(&mut self, stamp: Stamp) {
        self.edges_stamp = stamp;
        self.flags |= EDGES_STAMPED;
    }

    /// How new the node's data is, if an ordered origin said.
    pub fn data_stamp(&self) -> Option<Stamp> {
        (self.flags & DATA_STAMPED != 0).then_some(self.data_stamp)
    }

    pub fn set_data_stamp(&mut self, stamp: Stamp) {
        self.data_stamp = stamp;
        self.flags |= DATA_STAMPED;
    }

    /// The node's valid encoded data; `None` when unknown or undecodable
    /// (empty data is data).
    pub fn data(&self) -> Option<&[u8]> {
        (self.flags & (HAS_DATA | DATA_INVALID) == HAS_DATA).then(|| self.data_bytes())
    }

    /// The node's data as it came, decodable or not: what a view passes on
    /// (the origin's signature covers these bytes).
    pub fn wire_data(&self) -> Option<&[u8]> {
        (self.flags & HAS_DATA != 0).then(|| self.data_bytes())
    }

    /// Sets the data (`valid`: our codec decodes it).
    pub fn set_data(&mut self, data: Option<&[u8]>, valid: bool) {
        let bytes = Self::layout(self.edges_signature(), self.data_signature(), data);
        self.flags &= !(HAS_DATA | DATA_INVALID);
        if data.is_some() {
            self.flags |= HAS_DATA;
            if !valid {
                self.flags |= DATA_INVALID;
            }
        }
        self.bytes = bytes;
    }

    /// The origin's signature of its edge list, if it signs.
    pub fn edges_signature(&self) -> Option<Signature> {
        self.signature_at(EDGES_SIGNED, 0)
    }

    /// The origin's signature of its data, if it signs.
    pub fn data_signature(&self) -> Option<Signature> {
        let at = if self.flags & EDGES_SIGNED != 0 {
            SIG
        } else {
            0
        };
        self.signature_at(DATA_SIGNED, at)
    }

    pub fn set_edges_signature(&mut self, signature: Option<Signature>) {
        let bytes = Self::layout(signature, self.data_signature(), self.wire_data());
        self.set_flag(EDGES_SIGNED, signature.is_some());
        self.bytes = bytes;
    }

    pub fn set_data_signature(&mut self, signature: Option<Signature>) {
        let bytes = Self::layout(self.edges_signature(), signature, self.wire_data());
        self.set_flag(DATA_SIGNED, signature.is_some());
        self.bytes = bytes;
    }

    /// Whether we hold a register its origin signed: from then on the
    /// origin counts as one that signs.
    pub fn is_signed(&self) -> bool {
        self.flags & (EDGES_SIGNED | DATA_SIGNED) != 0
    }

    /// Forgets the edge register's stamp and signature (the edges themselves
    /// live in the graph).
    pub fn clear_edges_register(&mut self) {
        self.set_edges_signature(None);
        self.flags &= !EDGES_STAMPED;
        self.edges_stamp = Stamp::default();
    }

    /// Forgets the data register: data, stamp and signature.
    pub fn clear_data_register(&mut self) {
        self.set_data_signature(None);
        self.set_data(None, true);
        self.flags &= !DATA_STAMPED;
        self.data_stamp = Stamp::default();
    }

    /// The number of the direct peer the node is charged to (0: none).
    pub fn via(&self) -> u16 {
        self.via
    }

    /// Whether news of the node came from more than one direct peer.
    pub fn vouched_twice(&self) -> bool {
        self.flags & VOUCHED_TWICE != 0
    }

    /// News of the node came from direct peer `number`: the first one (or
    /// the first after the one it was charged to left, `live` false) is
    /// charged for it; another one vouches for it too.
    pub fn vouch(&mut self, number: u16, live: impl Fn(u16) -> bool) {
        if self.via == number {
            return;
        }
        if self.via == 0 || !live(self.via) {
            self.via = number;
        } else {
            self.flags |= VOUCHED_TWICE;
        }
    }

    /// Bytes the record holds on the heap (data and signatures past the
    /// inline size).
    /// A block shared with other records counts in full: what a view is
    /// charged must not depend on what other engines hold.
    pub fn heap_bytes(&self) -> usize {
        match &self.bytes {
            Block::Inline { .. } => 0,
            Block::Heap(block) => block.len(),
        }
    }

    /// Swaps the heap block, if any, for the interner's one of the same
    /// contents, so that identical blocks of many engines are kept once.
    pub fn share(&mut self, interner: &Interner) {
        if let Block::Heap(block) = &self.bytes {
            let shared = interner.share(block);
            if !Arc::ptr_eq(&shared, block) {
                self.bytes = Block::Heap(shared);
            }
        }
    }

    fn set_flag(&mut self, flag: u8, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }

    fn signature_at(&self, flag: u8, at: usize) -> Option<Signature> {
        if self.flags & flag == 0 {
            return None;
        }
        self.bytes.as_slice().get(at..at + SIG)?.try_into().ok()
    }

    fn data_bytes(&self) -> &[u8] {
        let signatures =
            (self.flags & EDGES_SIGNED != 0) as usize + (self.flags & DATA_SIGNED != 0) as usize;
        self.bytes
            .as_slice()
            .get(signatures * SIG..)
            .unwrap_or_default()
    }

    /// A buffer laid out from its parts (the caller sets the flags that
    /// say which are there). Built from borrowed parts of the old buffer
    /// and sized exactly: one allocation at most, none inline, instead of
    /// a copy of the data and a growth per part; a value that shrank back
    /// under the inline size gives its heap block back.
    fn layout(edges: Option<Signature>, data_sig: Option<Signature>, data: Option<&[u8]>) -> Block {
        let parts = [
            edges.as_ref().map_or(&[][..], |s| &s[..]),
            data_sig.as_ref().map_or(&[][..], |s| &s[..]),
            data.unwrap_or_default(),
        ];
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len <= INLINE_DATA {
            let mut bytes = [0; INLINE_DATA];
            let mut at = 0;
            for p in parts {
                bytes[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
            // At most INLINE_DATA: fits the byte.
            return Block::Inline {
                len: len as u8,
                bytes,
            };
        }
        // A chain of slice iterators knows its exact length, so it is
        // collected in one allocation (a flattened array would go through
        // a vector first).
        let [a, b, c] = parts;
        Block::Heap(a.iter().chain(b).chain(c).copied().collect())
    }
}

/// A record's signatures and data: inline when small, else one heap block
/// that is never changed in place (a change lays out a new one), so that it
/// can be shared.
#[derive(Debug)]
enum Block {
    Inline { len: u8, bytes: [u8; INLINE_DATA] },
    Heap(Arc<[u8]>),
}

impl Default for Block {
    fn default() -> Self {
        Block::Inline {
            len: 0,
            bytes: [0; INLINE_DATA],
        }
    }
}

impl Block {
    fn as_slice(&self) -> &[u8] {
        match self {
            Block::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Block::Heap(block) => block,
        }
    }

    #[cfg(test)]
    fn spilled(&self) -> bool {
        matches!(self, Block::Heap(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_72_bytes() {
        assert!(std::mem::size_of::<Record>() <= 72);
    }

    #[test]
    fn the_first_live_voucher_is_charged_and_a_second_one_counted() {
        let mut r = Record::default();
        r.vouch(3, |_| true);
        assert_eq!((r.via(), r.vouched_twice()), (3, false));
        r.vouch(3, |_| true);
        assert!(!r.vouched_twice());
        r.vouch(5, |_| true);
        assert_eq!((r.via(), r.vouched_twice()), (3, true));
        // Once peer 3 is gone, the next one to bring news is charged.
        r.vouch(7, |n| n != 3);
        assert_eq!(r.via(), 7);
        let mut big = Record::default();
        big.set_data(Some(&[1; 1000]), true);
        assert!(big.heap_bytes() >= 1000);
        assert_eq!(r.heap_bytes(), 0);
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
    fn data_of_any_size_round_trips_and_small_data_stays_inline() {
        let mut r = Record::default();
        let big = vec![7u8; 1000];
        r.set_data(Some(&big), true);
        assert_eq!(r.data(), Some(&big[..]));
        assert!(r.bytes.spilled());
        r.set_data(Some(b"{\"peer\":9999,\"life\":1}"), true);
        assert_eq!(r.data(), Some(&b"{\"peer\":9999,\"life\":1}"[..]));
        assert!(!r.bytes.spilled());
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
            !r.bytes.spilled(),
            "an unsigned record gives its heap block back"
        );
    }

    fn signed(data: &[u8]) -> Record {
        let mut r = Record::default();
        r.set_edges_signature(Some([1; 64]));
        r.set_data_signature(Some([2; 64]));
        r.set_data(Some(data), true);
        r
    }

    fn block_of(r: &Record) -> &Arc<[u8]> {
        match &r.bytes {
            Block::Heap(block) => block,
            Block::Inline { .. } => panic!("inline"),
        }
    }

    #[test]
    fn records_with_equal_registers_share_one_block_and_read_as_before() {
        let interner = Interner::new(64);
        let (mut a, mut b, mut c) = (signed(b"same"), signed(b"same"), signed(b"else"));
        let alone = a.heap_bytes();
        assert!(!Arc::ptr_eq(block_of(&a), block_of(&b)));
        for r in [&mut a, &mut b, &mut c] {
            r.share(&interner);
        }
        assert!(Arc::ptr_eq(block_of(&a), block_of(&b)));
        assert!(!Arc::ptr_eq(block_of(&a), block_of(&c)));
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
        assert_eq!(Arc::strong_count(block_of(&b)), 2, "b and the table");
        a.share(&interner);
        b.share(&interner);
        assert_eq!(b.data(), Some(&b"same"[..]));
        // Small data stays inline and is not interned.
        let mut small = Record::default();
        small.set_data(Some(b"tiny"), true);
        let before = interner.len();
        small.share(&interner);
        assert_eq!(interner.len(), before);
        assert_eq!(small.data(), Some(&b"tiny"[..]));
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
