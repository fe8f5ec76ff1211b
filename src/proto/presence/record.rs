//! What the engine keeps about each node besides its edges.

use smallvec::SmallVec;

use crate::proto::wire::Stamp;

/// Data up to this many bytes is kept inside the record, without a heap
/// block: typical presence data (a name, a status, a port) is this small.
const INLINE_DATA: usize = 24;

const EDGES_STAMPED: u8 = 1;
const DATA_STAMPED: u8 = 2;
const HAS_DATA: u8 = 4;

/// One node's two last-writer-wins registers (its edge list's stamp; its
/// data and the data's stamp). An absent stamp stands for the unordered news
/// of a JavaScript origin.
///
/// Every engine keeps one per known peer, so a simulation of ten thousand
/// peers holds 10^8 of them: the optional parts share one flag byte instead
/// of an `Option` each, data is kept encoded only (decoded when asked
/// for), and small data sits inline. 72 bytes in all.
#[derive(Debug, Default)]
pub(super) struct Record {
    edges_stamp: Stamp,
    data_stamp: Stamp,
    data: SmallVec<[u8; INLINE_DATA]>,
    flags: u8,
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
        (self.flags & HAS_DATA != 0).then_some(&self.data[..])
    }

    pub fn set_data(&mut self, data: Option<&[u8]>) {
        self.data.clear();
        match data {
            Some(bytes) => {
                self.data.extend_from_slice(bytes);
                // A value that shrank back under the inline size gives its
                // heap block back.
                self.data.shrink_to_fit();
                self.flags |= HAS_DATA;
            }
            None => {
                self.data.shrink_to_fit();
                self.flags &= !HAS_DATA;
            }
        }
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
    fn absent_and_empty_are_told_apart() {
        let mut r = Record::default();
        assert_eq!(
            (r.edges_stamp(), r.data_stamp(), r.data()),
            (None, None, None)
        );
        r.set_data(Some(b""));
        assert_eq!(r.data(), Some(&b""[..]));
        let zero = Stamp::default();
        r.set_edges_stamp(zero);
        assert_eq!((r.edges_stamp(), r.data_stamp()), (Some(zero), None));
        r.set_data(None);
        assert_eq!(r.data(), None);
    }

    #[test]
    fn data_of_any_size_round_trips_and_small_data_stays_inline() {
        let mut r = Record::default();
        let big = vec![7u8; 1000];
        r.set_data(Some(&big));
        assert_eq!(r.data(), Some(&big[..]));
        assert!(r.data.spilled());
        r.set_data(Some(b"{\"peer\":9999,\"life\":1}"));
        assert_eq!(r.data(), Some(&b"{\"peer\":9999,\"life\":1}"[..]));
        assert!(!r.data.spilled());
    }
}
