//! A node's outgoing edges as the graph keeps them: 8 bytes, up to four
//! targets inline while their slots fit in 2 bytes, longer lists in the
//! graph's [`Spills`].

use std::num::NonZeroU16;

use super::Slot;

/// How many targets a list keeps without a heap block.
pub(super) const INLINE: usize = 4;

/// A word of an inline list that holds no target; slots from this one up
/// do not fit inline.
const NONE: u16 = u16::MAX;

/// A node's targets: slots, sorted, without duplicates.
///
/// Every view keeps one per known node, so its size is paid 10^8 times in
/// a simulation of ten thousand peers. Most peers keep about four
/// connections and most views hold fewer than 65,535 nodes: up to four
/// targets whose slots fit in 2 bytes sit inline, unused words holding
/// [`NONE`], and any other list goes to the graph's [`Spills`], of which
/// the list keeps the 4-byte number. The last inline word is never zero
/// (it is [`NONE`] or the largest of four distinct slots), and that spare
/// value tells the two forms apart: 8 bytes, where a pointer to a heap
/// block beside four 4-byte words took 16, and a node 24 bytes instead of
/// 32.
///
/// Not `Clone`: a spilled list's number names one block of [`Spills`],
/// which [`Spills::free`] gives back when the list goes.
pub(super) enum Edges {
    Inline(Four),
    Spilled(u32),
}

/// Four inline words, laid out in order so that the never-zero one is last
/// and a spilled list's number fits beside it.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct Four {
    first: [u16; 3],
    last: NonZeroU16,
}

const EMPTY: Four = Four {
    first: [NONE; 3],
    last: NonZeroU16::MAX,
};

impl Default for Edges {
    fn default() -> Self {
        Edges::Inline(EMPTY)
    }
}

impl Edges {
    #[inline]
    pub fn is_empty(&self) -> bool {
        match self {
            Edges::Inline(four) => four.first[0] == NONE,
            Edges::Spilled(_) => false,
        }
    }

    /// Whether the list is in [`Spills`].
    #[cfg(test)]
    pub fn spilled(&self) -> bool {
        matches!(self, Edges::Spilled(_))
    }
}

/// The edge lists of a graph that do not fit inline: more than four
/// targets, or a slot of 65,535 or more. A list's number is its place
/// here; freed places are reused, last freed first.
#[derive(Debug, Default)]
pub(super) struct Spills {
    lists: Vec<Box<[Slot]>>,
    free: Vec<u32>,
}

impl Spills {
    /// The list of `sorted`, which is sorted and holds no duplicates.
    pub fn make(&mut self, sorted: &[Slot]) -> Edges {
        debug_assert!(sorted.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
        if sorted.len() <= INLINE && sorted.iter().all(|&s| s < Slot::from(NONE)) {
            let mut words = [NONE; INLINE];
            for (w, &s) in words.iter_mut().zip(sorted) {
                *w = s as u16;
            }
            return Edges::Inline(Four {
                first: [words[0], words[1], words[2]],
                // The largest of four distinct slots is at least 3.
                last: NonZeroU16::new(words[3]).unwrap_or(NonZeroU16::MAX),
            });
        }
        let list: Box<[Slot]> = sorted.into();
        match self.free.pop() {
            Some(n) => {
                self.lists[n as usize] = list;
                Edges::Spilled(n)
            }
            None => {
                // A graph holds at most one list per slot, and slots are
                // 4-byte numbers.
                let n = u32::try_from(self.lists.len()).expect("fewer than 2^32 lists");
                self.lists.push(list);
                Edges::Spilled(n)
            }
        }
    }

    /// Gives back what `edges` held here, if anything.
    pub fn free(&mut self, edges: Edges) {
        if let Edges::Spilled(n) = edges {
            self.lists[n as usize] = Box::default();
            self.free.push(n);
        }
    }

    /// The targets in slot order as a slice: the spilled block's, or the
    /// inline ones widened into `buf`. Cheaper than [`Spills::iter`]
    /// where a list is read whole.
    #[inline]
    pub fn slice<'a>(&'a self, edges: &Edges, buf: &'a mut [Slot; INLINE]) -> &'a [Slot] {
        match edges {
            Edges::Inline(four) => {
                let (words, len) = four.widened();
                *buf = words;
                &buf[..len]
            }
            Edges::Spilled(n) => &self.lists[*n as usize],
        }
    }

    /// The targets in slot order.
    #[inline]
    pub fn iter(&self, edges: &Edges) -> Iter<'_> {
        match edges {
            Edges::Inline(four) => {
                let (words, len) = four.widened();
                Iter::Inline(words, 0, len)
            }
            Edges::Spilled(n) => Iter::Spilled(self.lists[*n as usize].iter()),
        }
    }

    /// Whether `slot` is a target.
    #[inline]
    pub fn contains(&self, edges: &Edges, slot: Slot) -> bool {
        match edges {
            Edges::Inline(four) => slot < Slot::from(NONE) && four.words().contains(&(slot as u16)),
            Edges::Spilled(n) => self.lists[*n as usize].binary_search(&slot).is_ok(),
        }
    }

    /// How many targets.
    #[cfg(test)]
    pub fn len(&self, edges: &Edges) -> usize {
        match edges {
            Edges::Inline(four) => four.widened().1,
            Edges::Spilled(n) => self.lists[*n as usize].len(),
        }
    }

    /// Gives back the room of freed places at the end (a spilled list is
    /// never empty, so an empty place is a free one), for after a sweep
    /// that forgot many nodes.
    pub fn shrink_to_fit(&mut self) {
        while self.lists.last().is_some_and(|l| l.is_empty()) {
            self.lists.pop();
        }
        let len = self.lists.len();
        self.free.retain(|&n| (n as usize) < len);
        self.lists.shrink_to_fit();
        self.free.shrink_to_fit();
    }

    /// Lists held here, for tests that none is lost.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.lists.len() - self.free.len()
    }
}

impl Four {
    #[inline]
    fn words(&self) -> [u16; INLINE] {
        [self.first[0], self.first[1], self.first[2], self.last.get()]
    }

    /// The words as slots, and how many are targets: the unused ones are
    /// at the end.
    #[inline]
    fn widened(&self) -> ([Slot; INLINE], usize) {
        let words = self.words();
        let len = words.iter().filter(|&&w| w != NONE).count();
        (words.map(Slot::from), len)
    }
}

impl std::fmt::Debug for Edges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Edges::Inline(four) => {
                let (words, len) = four.widened();
                f.debug_list().entries(&words[..len]).finish()
            }
            Edges::Spilled(n) => write!(f, "spilled #{n}"),
        }
    }
}

/// The targets of an [`Edges`], in slot order.
#[derive(Clone)]
pub enum Iter<'a> {
    /// The words, the next one to give and how many are targets.
    Inline([Slot; INLINE], usize, usize),
    Spilled(std::slice::Iter<'a, Slot>),
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
            Iter::Spilled(slots) => slots.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self {
            Iter::Inline(_, at, len) => len - at,
            Iter::Spilled(slots) => slots.len(),
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
    fn a_list_is_8_bytes() {
        assert_eq!(std::mem::size_of::<Edges>(), 8);
    }

    #[test]
    fn four_narrow_targets_stay_inline_and_five_or_a_wide_one_spill() {
        let mut spills = Spills::default();
        let four = spills.make(&[0, 1, 2, 65_534]);
        assert!(!four.spilled());
        assert_eq!(spills.iter(&four).collect::<Vec<_>>(), [0, 1, 2, 65_534]);
        let five = spills.make(&[0, 1, 2, 3, 9]);
        assert!(five.spilled());
        assert_eq!(
            (
                spills.len(&five),
                spills.contains(&five, 9),
                spills.contains(&five, 4)
            ),
            (5, true, false)
        );
        let wide = spills.make(&[3, 65_535]);
        assert!(wide.spilled());
        assert!(spills.contains(&wide, 65_535) && !spills.contains(&four, 65_535));
        assert_eq!(spills.held(), 2);
        spills.free(five);
        spills.free(four);
        assert_eq!(spills.held(), 1);
        // The freed place is taken again before the list grows.
        let again = spills.make(&[1 << 20]);
        assert!(matches!(again, Edges::Spilled(0)));
        assert_eq!(spills.iter(&wide).collect::<Vec<_>>(), [3, 65_535]);
        spills.free(again);
        spills.shrink_to_fit();
        // Place 1 is the last one held: place 0, free, stays for reuse.
        assert_eq!((spills.lists.len(), spills.free.as_slice()), (2, &[0][..]));
        spills.free(wide);
        spills.shrink_to_fit();
        assert_eq!((spills.lists.len(), spills.held()), (0, 0));
        let none = Edges::default();
        assert!(none.is_empty() && !spills.contains(&none, Slot::from(NONE)));
        assert_eq!(spills.iter(&none).len(), 0);
    }

    proptest! {
        #[test]
        fn a_list_reads_back_what_it_was_given(
            lists in proptest::collection::vec(
                proptest::collection::btree_set(
                    prop_oneof![0..8u32, 0..70_000u32, 0..Slot::MAX],
                    0..12,
                ),
                1..6,
            ),
            probe in prop_oneof![0..8u32, 0..70_000u32, 0..Slot::MAX],
        ) {
            let mut spills = Spills::default();
            let made: Vec<Edges> = lists
                .iter()
                .map(|set| spills.make(&set.iter().copied().collect::<Vec<_>>()))
                .collect();
            for (set, edges) in lists.iter().zip(&made) {
                let sorted: Vec<Slot> = set.iter().copied().collect();
                prop_assert_eq!(spills.iter(edges).collect::<Vec<_>>(), sorted.clone());
                let mut buf = [0; INLINE];
                prop_assert_eq!(spills.slice(edges, &mut buf), &sorted[..]);
                prop_assert_eq!(spills.iter(edges).len(), sorted.len());
                prop_assert_eq!(spills.len(edges), sorted.len());
                prop_assert_eq!(edges.is_empty(), sorted.is_empty());
                let fits = sorted.len() <= INLINE && sorted.iter().all(|&s| s < 65_535);
                prop_assert_eq!(edges.spilled(), !fits);
                prop_assert_eq!(spills.contains(edges, probe), set.contains(&probe));
                for &s in &sorted {
                    prop_assert!(spills.contains(edges, s));
                }
            }
            let spilled = made.iter().filter(|e| e.spilled()).count();
            prop_assert_eq!(spills.held(), spilled);
            for edges in made {
                spills.free(edges);
            }
            prop_assert_eq!(spills.held(), 0);
        }
    }
}
