//! The unreached nodes that reached nodes list, and how many list each: a
//! count per slot, kept only while some node waits.

use super::packed::Packed;
use super::Slot;

/// For each unreached node that reached nodes list, how many do (their
/// edges do not count yet: it has not spoken, or not listed them back).
///
/// During a join most of a view waits at some moment: its nodes are
/// listed by those already reached before their own entries arrive (at
/// 3,000 peers, two thirds of each view at the peak). A hash map of slot
/// to count took about 10 bytes per waiting node and a hash and a probe
/// of a cold table per change; a count per slot, in 2 bytes while every
/// count fits ([`Packed`]), takes 2 bytes per node of the view and one
/// read, and goes whole when the last node stops waiting. Out of a join a
/// few nodes wait at a time (a new peer listed before its entry comes),
/// and laying out a count for every slot up to theirs each time would make
/// an added edge cost the view's size: up to [`FEW`] waiting nodes are a
/// short sorted list instead.
#[derive(Debug, Default)]
pub(super) struct Waiting {
    /// While at most [`FEW`] nodes wait and `counts` is empty: their slots
    /// and counts, by slot.
    few: Vec<(Slot, u32)>,
    /// Count by slot, up to the highest slot that waited since the list
    /// was last empty; 0 for a node that does not wait. Empty while `few`
    /// holds the waiting nodes.
    counts: Packed,
    /// How many nodes wait (counts that are not 0).
    nonzero: usize,
}

/// How many waiting nodes the short list holds before the counts are laid
/// out by slot.
const FEW: usize = 32;

impl Waiting {
    /// One more reached node lists the node in `slot`.
    #[inline]
    pub fn add(&mut self, slot: Slot) {
        if self.counts.len() == 0 {
            match self.few.binary_search_by_key(&slot, |&(s, _)| s) {
                Ok(i) => {
                    self.few[i].1 += 1;
                    return;
                }
                Err(i) if self.few.len() < FEW => {
                    self.few.insert(i, (slot, 1));
                    self.nonzero += 1;
                    return;
                }
                Err(_) => self.lay_out(),
            }
        }
        let i = slot as usize;
        let count = match self.counts.get(i) {
            Some(count) => count,
            None => {
                self.counts.resize(i + 1, 0);
                0
            }
        };
        if count == 0 {
            self.nonzero += 1;
        }
        self.counts.set(i, count + 1);
    }

    /// One reached node fewer lists the node in `slot`; false when it was
    /// not counted.
    #[inline]
    pub fn sub(&mut self, slot: Slot) -> bool {
        if self.counts.len() == 0 {
            let Ok(i) = self.few.binary_search_by_key(&slot, |&(s, _)| s) else {
                return false;
            };
            self.few[i].1 -= 1;
            if self.few[i].1 == 0 {
                self.few.remove(i);
                self.nonzero -= 1;
            }
            return true;
        }
        match self.counts.get(slot as usize) {
            Some(count) if count > 0 => {
                self.counts.set(slot as usize, count - 1);
                if count == 1 {
                    self.gone();
                }
                true
            }
            _ => false,
        }
    }

    /// The node in `slot` waits no more (it was reached).
    #[inline]
    pub fn remove(&mut self, slot: Slot) {
        if self.counts.len() == 0 {
            if let Ok(i) = self.few.binary_search_by_key(&slot, |&(s, _)| s) {
                self.few.remove(i);
                self.nonzero -= 1;
            }
            return;
        }
        if let Some(count) = self.counts.get(slot as usize) {
            if count > 0 {
                self.counts.set(slot as usize, 0);
                self.gone();
            }
        }
    }

    /// Whether the node in `slot` waits.
    pub fn contains(&self, slot: Slot) -> bool {
        self.counts.get(slot as usize).is_some_and(|c| c > 0)
            || self.few.binary_search_by_key(&slot, |&(s, _)| s).is_ok()
    }

    /// Nobody waits; the memory goes.
    pub fn clear(&mut self) {
        *self = Waiting::default();
    }

    /// How many nodes wait.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.nonzero
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.nonzero == 0
    }

    /// The waiting nodes' slots with their counts, in slot order: one pass
    /// over the counts.
    pub fn iter(&self) -> impl Iterator<Item = (Slot, u32)> + '_ {
        let len = if self.nonzero == 0 {
            0
        } else {
            self.counts.len()
        };
        let laid_out = (0..len).filter_map(|i| match self.counts.get(i) {
            Some(count) if count > 0 => Some((i as Slot, count)),
            _ => None,
        });
        self.few.iter().copied().chain(laid_out)
    }

    /// The short list is full: its counts go by slot.
    fn lay_out(&mut self) {
        let top = self.few.last().map_or(0, |&(s, _)| s as usize + 1);
        self.counts.resize(top, 0);
        for (slot, count) in std::mem::take(&mut self.few) {
            self.counts.set(slot as usize, count);
        }
    }

    /// A count went to 0: when it was the last, the list goes.
    fn gone(&mut self) {
        self.nonzero -= 1;
        if self.nonzero == 0 {
            self.counts = Packed::default();
        }
    }
}

/// The same waiting nodes with the same counts, however the lists are held.
impl PartialEq for Waiting {
    fn eq(&self, other: &Waiting) -> bool {
        self.nonzero == other.nonzero && self.iter().eq(other.iter())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_list_goes_when_the_last_node_stops_waiting() {
        let mut w = Waiting::default();
        w.add(5);
        w.add(5);
        w.add(70_000);
        assert_eq!(w.iter().collect::<Vec<_>>(), [(5, 2), (70_000, 1)]);
        assert!(w.sub(5) && w.contains(5));
        w.remove(70_000);
        assert!(!w.contains(70_000) && w.len() == 1);
        assert!(w.sub(5));
        assert!(w.is_empty() && w.counts.len() == 0, "the memory went");
        assert!(!w.sub(5), "not counted");
    }

    #[test]
    fn a_few_waiting_nodes_lay_out_no_count_per_slot() {
        let mut w = Waiting::default();
        for i in 0..FEW as Slot {
            w.add(90_000 - i);
        }
        w.add(90_000);
        assert_eq!(w.counts.len(), 0, "no count for each of 90,000 slots");
        assert_eq!(w.iter().next(), Some((90_000 - FEW as Slot + 1, 1)));
        assert_eq!(w.iter().last(), Some((90_000, 2)));
        w.add(5);
        assert_eq!(
            w.counts.len(),
            90_001,
            "one more, and the counts go by slot"
        );
        assert!(w.few.is_empty());
        assert_eq!(w.len(), FEW + 1);
        assert_eq!(w.iter().last(), Some((90_000, 2)));
        assert!(w.contains(5) && w.contains(90_000) && !w.contains(6));
        for i in 0..FEW as Slot {
            w.remove(90_000 - i);
        }
        assert!(w.sub(5) && w.is_empty() && w.counts.len() == 0);
    }

    #[test]
    fn counts_past_two_bytes_are_kept() {
        let mut w = Waiting::default();
        for _ in 0..70_000 {
            w.add(3);
        }
        assert_eq!(w.iter().collect::<Vec<_>>(), [(3, 70_000)]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(Slot),
        Sub(Slot),
        Remove(Slot),
        Clear,
    }

    fn slot() -> impl Strategy<Value = Slot> {
        prop_oneof![0..16u32, 0..48u32, 0..100_000u32]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => slot().prop_map(Op::Add),
            2 => slot().prop_map(Op::Sub),
            1 => slot().prop_map(Op::Remove),
            1 => Just(Op::Clear),
        ]
    }

    proptest! {
        /// `start`: nodes that wait before the operations, often more than
        /// the short list holds (clearing is too frequent among the
        /// operations to get there otherwise).
        #[test]
        fn behaves_like_a_map_of_counts(
            start in prop::collection::vec(slot(), 0..3 * FEW),
            ops in prop::collection::vec(op(), 0..200),
        ) {
            let mut w = Waiting::default();
            let mut map: BTreeMap<Slot, u32> = BTreeMap::new();
            for op in start.into_iter().map(Op::Add).chain(ops) {
                match op {
                    Op::Add(s) => {
                        w.add(s);
                        *map.entry(s).or_insert(0) += 1;
                    }
                    Op::Sub(s) => {
                        let counted = map.contains_key(&s);
                        prop_assert_eq!(w.sub(s), counted);
                        if let Some(c) = map.get_mut(&s) {
                            *c -= 1;
                            if *c == 0 {
                                map.remove(&s);
                            }
                        }
                    }
                    Op::Remove(s) => {
                        w.remove(s);
                        map.remove(&s);
                    }
                    Op::Clear => {
                        w.clear();
                        map.clear();
                    }
                }
                prop_assert_eq!(w.iter().collect::<Vec<_>>(), map.iter().map(|(&s, &c)| (s, c)).collect::<Vec<_>>());
                prop_assert_eq!(w.len(), map.len());
                for s in [0, 1, 7, 15, 99_999] {
                    prop_assert_eq!(w.contains(s), map.contains_key(&s));
                }
            }
        }
    }
}
