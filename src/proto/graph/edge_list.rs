//! A node's outgoing edges as the graph keeps them: 16 bytes, four targets
//! inline.

use std::num::NonZeroU32;

use triomphe::ThinArc;

use super::Slot;

/// How many targets a list keeps without a heap block.
pub(super) const INLINE: usize = 4;

/// A word of an inline list that holds no target. Slots count nodes, which
/// a view's budget bounds far below it.
const NONE: Slot = Slot::MAX;

/// A node's targets: slots, sorted, without duplicates.
///
/// Every view keeps one per known node, so its size is paid 10^8 times in
/// a simulation of ten thousand peers. Most peers keep about four
/// connections: up to four targets sit inline, unused words holding
/// [`NONE`], and a longer list goes to one heap block behind a one-word
/// pointer. The last inline word is never zero (it is [`NONE`] or the
/// largest of four distinct slots), and that spare value tells the two
/// forms apart, so the list is 16 bytes where a `SmallVec` of four slots
/// is 24 and a node 32 bytes instead of 40.
#[derive(Clone)]
pub(super) enum Edges {
    Inline(Four),
    Heap(ThinArc<(), Slot>),
}

/// Four inline words, laid out in order so that the never-zero one is last
/// and the heap pointer fits beside it.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct Four {
    first: [Slot; 3],
    last: NonZeroU32,
}

const EMPTY: Four = Four {
    first: [NONE; 3],
    last: NonZeroU32::MAX,
};

impl Default for Edges {
    fn default() -> Self {
        Edges::Inline(EMPTY)
    }
}

impl Edges {
    /// The list of `sorted`, which is sorted and holds no duplicates.
    pub fn from_sorted(sorted: &[Slot]) -> Edges {
        debug_assert!(sorted.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
        debug_assert!(!sorted.contains(&NONE), "a slot is never NONE");
        if sorted.len() > INLINE {
            return Edges::Heap(ThinArc::from_header_and_slice((), sorted));
        }
        let mut words = [NONE; INLINE];
        words[..sorted.len()].copy_from_slice(sorted);
        Edges::Inline(Four {
            first: [words[0], words[1], words[2]],
            // The largest of four distinct slots is at least 3.
            last: NonZeroU32::new(words[3]).unwrap_or(NonZeroU32::MAX),
        })
    }

    /// How many targets.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        match self {
            Edges::Inline(four) => Four::len(&four.words()),
            Edges::Heap(heap) => heap.slice.len(),
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        match self {
            Edges::Inline(four) => four.first[0] == NONE,
            Edges::Heap(_) => false,
        }
    }

    /// Whether `slot` is a target.
    #[inline]
    pub fn contains(&self, slot: Slot) -> bool {
        match self {
            Edges::Inline(four) => slot != NONE && four.words().contains(&slot),
            Edges::Heap(heap) => heap.slice.binary_search(&slot).is_ok(),
        }
    }

    /// The targets in slot order.
    #[inline]
    pub fn iter(&self) -> Iter<'_> {
        match self {
            Edges::Inline(four) => {
                let words = four.words();
                Iter::Inline(words, 0, Four::len(&words))
            }
            Edges::Heap(heap) => Iter::Heap(heap.slice.iter()),
        }
    }

    /// The targets in slot order as a slice: the heap block's, or the
    /// inline ones copied into `buf`. Cheaper than [`Edges::iter`] where a
    /// list is read whole.
    #[inline]
    pub fn as_slice<'a>(&'a self, buf: &'a mut [Slot; INLINE]) -> &'a [Slot] {
        match self {
            Edges::Inline(four) => {
                *buf = four.words();
                &buf[..Four::len(buf)]
            }
            Edges::Heap(heap) => &heap.slice,
        }
    }

    /// Whether the list has a heap block.
    #[cfg(test)]
    pub fn spilled(&self) -> bool {
        matches!(self, Edges::Heap(_))
    }
}

impl Four {
    #[inline]
    fn words(&self) -> [Slot; INLINE] {
        [self.first[0], self.first[1], self.first[2], self.last.get()]
    }

    /// How many of `words` are targets: the unused ones are at the end.
    #[inline]
    fn len(words: &[Slot; INLINE]) -> usize {
        words.iter().filter(|&&w| w != NONE).count()
    }
}

impl std::fmt::Debug for Edges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Edges {
    type Item = Slot;
    type IntoIter = Iter<'a>;

    #[inline]
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The targets of an [`Edges`], in slot order.
#[derive(Clone)]
pub enum Iter<'a> {
    /// The words, the next one to give and how many are targets.
    Inline([Slot; INLINE], usize, usize),
    Heap(std::slice::Iter<'a, Slot>),
}

impl Iterator for Iter<'_> {
    type Item = Slot;

    #[inline]
    fn next(&mut self) -> Option<Slot> {
        match self {
            Iter::Inline(words, at, len) => {
                if *at == *len {
                    return None;
                }
                *at += 1;
                Some(words[*at - 1])
            }
            Iter::Heap(slots) => slots.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self {
            Iter::Inline(_, at, len) => len - at,
            Iter::Heap(slots) => slots.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_list_is_16_bytes() {
        assert_eq!(std::mem::size_of::<Edges>(), 16);
    }

    #[test]
    fn four_targets_stay_inline_and_five_spill() {
        let four = Edges::from_sorted(&[0, 1, 2, 3]);
        assert!(!four.spilled());
        assert_eq!(four.iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
        let five = Edges::from_sorted(&[0, 1, 2, 3, 9]);
        assert!(five.spilled());
        assert_eq!(
            (five.len(), five.contains(9), five.contains(4)),
            (5, true, false)
        );
        let none = Edges::default();
        assert!(none.is_empty() && !none.contains(NONE));
        assert_eq!(none.iter().len(), 0);
    }

    proptest! {
        #[test]
        fn a_list_reads_back_what_it_was_given(
            set in proptest::collection::btree_set(0..Slot::MAX - 1, 0..12),
            probe in 0..Slot::MAX,
        ) {
            let sorted: Vec<Slot> = set.iter().copied().collect();
            let edges = Edges::from_sorted(&sorted);
            prop_assert_eq!(edges.iter().collect::<Vec<_>>(), sorted.clone());
            let mut buf = [0; INLINE];
            prop_assert_eq!(edges.as_slice(&mut buf), &sorted[..]);
            prop_assert_eq!(edges.iter().len(), sorted.len());
            prop_assert_eq!(edges.len(), sorted.len());
            prop_assert_eq!(edges.is_empty(), sorted.is_empty());
            prop_assert_eq!(edges.spilled(), sorted.len() > INLINE);
            prop_assert_eq!(edges.contains(probe), set.contains(&probe));
            for &s in &sorted {
                prop_assert!(edges.contains(s));
            }
        }
    }
}
