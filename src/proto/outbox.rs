//! News waiting to be passed on to one neighbour in its next batch.
//!
//! Passing on every register change as its own packet costs a packet per
//! (change, link), and at ten thousand peers that is most of a join's
//! traffic. Instead each neighbour that takes batches has an outbox of the
//! nodes whose state it should hear about; the outbox only names nodes (by
//! graph slot), and what goes out is their state at the time of sending, so
//! several changes of one node within a window cost one entry, and a node
//! the neighbour has told us about itself can be struck off before it goes.

use std::collections::VecDeque;

use super::graph::Slot;

/// A set of graph slots that comes out roughly in the order it went in.
///
/// Each slot is queued at most once at a time. Striking a slot off only
/// clears its bit; the stale queue entry is skipped when it comes up (or,
/// if the slot was queued again meanwhile, stands for it, so a slot queued
/// again may come out at its earlier place). The queue is compacted when
/// stale entries outnumber live ones, so its length stays within twice the
/// live count.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<Slot>,
    /// One bit per slot: queued and not struck off.
    queued: Vec<u64>,
    live: usize,
}

impl Outbox {
    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Queues `slot` unless it already waits.
    pub fn push(&mut self, slot: Slot) {
        let (word, bit) = position(slot);
        if word >= self.queued.len() {
            self.queued.resize(word + 1, 0);
        }
        if self.queued[word] & bit == 0 {
            self.queued[word] |= bit;
            self.queue.push_back(slot);
            self.live += 1;
        }
    }

    /// Strikes `slot` off, if it waits.
    pub fn remove(&mut self, slot: Slot) {
        let (word, bit) = position(slot);
        if let Some(w) = self.queued.get_mut(word) {
            if *w & bit != 0 {
                *w &= !bit;
                self.live -= 1;
                self.bound_stale();
            }
        }
    }

    /// The slot that has waited longest, without taking it.
    pub fn peek(&mut self) -> Option<Slot> {
        while let Some(&slot) = self.queue.front() {
            if self.is_queued(slot) {
                return Some(slot);
            }
            self.queue.pop_front();
        }
        None
    }

    /// Takes the slot that has waited longest.
    pub fn pop(&mut self) -> Option<Slot> {
        let slot = self.peek()?;
        self.queue.pop_front();
        let (word, bit) = position(slot);
        self.queued[word] &= !bit;
        self.live -= 1;
        self.bound_stale();
        Some(slot)
    }

    /// Drops everything, keeping no memory.
    pub fn clear(&mut self) {
        *self = Outbox::default();
    }

    fn is_queued(&self, slot: Slot) -> bool {
        let (word, bit) = position(slot);
        self.queued.get(word).is_some_and(|w| w & bit != 0)
    }

    fn bound_stale(&mut self) {
        if self.queue.len() > 2 * self.live + 64 {
            self.compact();
        }
    }

    /// Drops stale queue entries. A slot struck off and queued again has
    /// two entries; only the first live one may stay, or it would go twice.
    fn compact(&mut self) {
        let mut seen = vec![0u64; self.queued.len()];
        let queued = &self.queued;
        self.queue.retain(|&slot| {
            let (word, bit) = position(slot);
            let keep = queued[word] & bit != 0 && seen[word] & bit == 0;
            seen[word] |= bit;
            keep
        });
    }
}

fn position(slot: Slot) -> (usize, u64) {
    ((slot / 64) as usize, 1u64 << (slot % 64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn slots_come_out_in_order_once() {
        let mut o = Outbox::default();
        for s in [5, 1, 5, 900, 1] {
            o.push(s);
        }
        assert_eq!(o.live, 3);
        let out: Vec<Slot> = std::iter::from_fn(|| o.pop()).collect();
        assert_eq!(out, vec![5, 1, 900]);
        assert!(o.is_empty());
    }

    #[test]
    fn struck_off_slots_are_skipped_and_can_be_queued_again() {
        let mut o = Outbox::default();
        o.push(1);
        o.push(2);
        o.remove(1);
        o.remove(7);
        assert_eq!(o.peek(), Some(2));
        o.push(1);
        assert_eq!(o.pop(), Some(2));
        assert_eq!(o.pop(), Some(1));
        assert_eq!(o.pop(), None);
    }

    /// The same slot struck off and queued again goes once, even when a
    /// compaction runs in between.
    #[test]
    fn compaction_keeps_one_entry_per_slot() {
        let mut o = Outbox::default();
        for round in 0..200 {
            o.push(3);
            o.push(round + 10);
            o.remove(round + 10);
            if round % 2 == 0 {
                o.remove(3);
            }
        }
        assert!(o.queue.len() <= 2 * o.live + 64);
        let out: Vec<Slot> = std::iter::from_fn(|| o.pop()).collect();
        assert_eq!(out, vec![3]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(Slot),
        Remove(Slot),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u32..200).prop_map(Op::Push),
            (0u32..200).prop_map(Op::Remove),
            Just(Op::Pop),
        ]
    }

    proptest! {
        /// Against a model set: only queued slots come out, each once, and
        /// the stale entries stay bounded.
        #[test]
        fn behaves_like_a_set(ops in prop::collection::vec(op(), 0..400)) {
            let mut o = Outbox::default();
            let mut model: BTreeSet<Slot> = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Push(s) => {
                        o.push(s);
                        model.insert(s);
                    }
                    Op::Remove(s) => {
                        o.remove(s);
                        model.remove(&s);
                    }
                    Op::Pop => match o.pop() {
                        Some(s) => prop_assert!(model.remove(&s)),
                        None => prop_assert!(model.is_empty()),
                    },
                }
                prop_assert_eq!(o.live, model.len());
                prop_assert!(o.queue.len() <= 2 * o.live + 64);
            }
            let rest: Vec<Slot> = std::iter::from_fn(|| o.pop()).collect();
            prop_assert_eq!(rest.iter().copied().collect::<BTreeSet<_>>(), model);
            prop_assert_eq!(rest.iter().collect::<BTreeSet<_>>().len(), rest.len());
        }
    }
}
