//! News waiting to be passed on to one neighbour in its next batch.
//!
//! Passing on every register change as its own packet costs a packet per
//! (change, link), and at ten thousand peers that is most of a join's
//! traffic. Instead each neighbour that takes batches has an outbox of the
//! nodes whose state it should hear about; the outbox only names nodes (by
//! graph slot), and what goes out is their state at the time of sending, so
//! several changes of one node within a window cost one entry, and a node
//! the neighbour has told us about itself can be struck off before it goes.
//!
//! News waits in one of two lanes: express (our own news, a direct peer's
//! news of itself, and news from a direct peer within its share of our
//! pacing) and bulk (the rest of a direct peer that sends more than its
//! share). Express goes first, so one neighbour's flood of junk cannot hold
//! back everyone else's news; bulk still gets a part of every batch.
//!
//! Beside the lanes, an outbox keeps the nodes the neighbour should hear we
//! now hold (`wire::Have` notices): news it may also have queued for us,
//! which it strikes off when the notice comes.

use super::graph::Slot;

/// Which lane news waits in (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Goes first.
    Express,
    /// Goes when express is empty, and in a part of every batch.
    Bulk,
}

/// The news for one neighbour: two [`Lane`]s of graph slots, and the
/// slots to send notices of. A slot waits in one lane at most; express news
/// of a slot that waits in bulk moves it.
#[derive(Debug, Default)]
pub struct Outbox {
    express: Slots,
    bulk: Slots,
    notices: Slots,
}

impl Outbox {
    /// Whether nothing waits, entries or notices.
    pub fn is_empty(&self) -> bool {
        self.express.is_empty() && self.bulk.is_empty() && self.notices.is_empty()
    }

    /// Queues a notice that we hold the node in `slot`.
    pub fn notify(&mut self, slot: Slot) {
        self.notices.push(slot);
    }

    /// Drops the notice of `slot`, if one waits: its entry went, which
    /// says as much.
    pub fn unnotify(&mut self, slot: Slot) {
        self.notices.remove(slot);
    }

    /// The next notice to send, without taking it.
    pub fn peek_notice(&self) -> Option<Slot> {
        self.notices.peek()
    }

    /// Takes the next notice to send.
    pub fn pop_notice(&mut self) -> Option<Slot> {
        self.notices.pop()
    }

    /// Whether nothing waits in `lane`.
    pub fn lane_is_empty(&self, lane: Lane) -> bool {
        self.lane(lane).is_empty()
    }

    /// Queues `slot` in the express lane unless it already waits there.
    pub fn push(&mut self, slot: Slot) {
        self.push_to(Lane::Express, slot);
    }

    /// Queues `slot` in `lane`, unless it already waits (express wins).
    pub fn push_to(&mut self, lane: Lane, slot: Slot) {
        match lane {
            Lane::Express => {
                self.bulk.remove(slot);
                self.express.push(slot);
            }
            Lane::Bulk => {
                if !self.express.contains(slot) {
                    self.bulk.push(slot);
                }
            }
        }
    }

    /// Whether no entry waits, in either lane (notices may).
    pub fn owes_nothing(&self) -> bool {
        self.express.is_empty() && self.bulk.is_empty()
    }

    /// Whether `slot`'s entry waits, in either lane.
    pub fn owes(&self, slot: Slot) -> bool {
        self.express.contains(slot) || self.bulk.contains(slot)
    }

    /// Strikes `slot`'s entry off, if it waits (a notice of it stays: the
    /// neighbour having the node does not tell it that we have it too).
    pub fn remove(&mut self, slot: Slot) {
        self.express.remove(slot);
        self.bulk.remove(slot);
    }

    /// Takes the next slot (express first).
    pub fn pop(&mut self) -> Option<Slot> {
        self.express.pop().or_else(|| self.bulk.pop())
    }

    /// The next slot of `lane`, without taking it.
    pub fn peek_in(&self, lane: Lane) -> Option<Slot> {
        self.lane(lane).peek()
    }

    /// Takes the next slot of `lane`.
    pub fn pop_in(&mut self, lane: Lane) -> Option<Slot> {
        match lane {
            Lane::Express => self.express.pop(),
            Lane::Bulk => self.bulk.pop(),
        }
    }

    /// Drops everything, keeping no memory.
    pub fn clear(&mut self) {
        *self = Outbox::default();
    }

    fn lane(&self, lane: Lane) -> &Slots {
        match lane {
            Lane::Express => &self.express,
            Lane::Bulk => &self.bulk,
        }
    }
}

/// A set of graph slots, taken out in rounds: each round goes up through
/// the slot numbers from where the last one stopped and wraps around, so
/// every queued slot goes within one round, whatever keeps being queued.
///
/// One bit per slot and nothing else: an outbox of a neighbour of a
/// 10,000-peer network may hold every node, and a simulation holds 40,000
/// outboxes. A queue of slots in arrival order cost 4 bytes per entry and
/// more than the views themselves at that scale.
#[derive(Debug, Default)]
struct Slots {
    bits: Vec<u64>,
    live: usize,
    /// Where the next search for a queued slot starts.
    cursor: usize,
}

impl Slots {
    fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn contains(&self, slot: Slot) -> bool {
        let (word, bit) = position(slot);
        self.bits.get(word).is_some_and(|w| w & bit != 0)
    }

    /// Queues `slot` unless it already waits.
    pub fn push(&mut self, slot: Slot) {
        let (word, bit) = position(slot);
        if word >= self.bits.len() {
            // By an eighth, not by doubling: a join queues slots in about
            // the order they were given, so a bitset grows a word at a
            // time to the view's size, and doubling left up to half of
            // each of a simulation's 120,000 bitsets unused (some 90 MB at
            // 10,000 peers).
            let want = (word + 1).max(self.bits.len() + self.bits.len() / 8);
            self.bits.reserve_exact(want - self.bits.len());
            self.bits.resize(word + 1, 0);
        }
        if self.bits[word] & bit == 0 {
            self.bits[word] |= bit;
            self.live += 1;
        }
    }

    /// Strikes `slot` off, if it waits.
    pub fn remove(&mut self, slot: Slot) {
        let (word, bit) = position(slot);
        if let Some(w) = self.bits.get_mut(word) {
            if *w & bit != 0 {
                *w &= !bit;
                self.live -= 1;
            }
        }
    }

    /// The next slot of the round, without taking it.
    pub fn peek(&self) -> Option<Slot> {
        if self.live == 0 {
            return None;
        }
        let words = self.bits.len();
        let start = if self.cursor < words * 64 {
            self.cursor
        } else {
            0
        };
        let (first_word, first_bit) = (start / 64, start % 64);
        let at = |word: usize, bits: u64| {
            Slot::try_from(word * 64 + bits.trailing_zeros() as usize).ok()
        };
        // The cursor's word from the cursor on, the words after it wrapping
        // round to those before it, then the cursor's word before the cursor.
        let from_cursor = self.bits[first_word] & (!0u64 << first_bit);
        if from_cursor != 0 {
            return at(first_word, from_cursor);
        }
        for k in 1..words {
            let word = (first_word + k) % words;
            if self.bits[word] != 0 {
                return at(word, self.bits[word]);
            }
        }
        at(first_word, self.bits[first_word] & !(!0u64 << first_bit))
    }

    /// Takes the next slot of the round.
    pub fn pop(&mut self) -> Option<Slot> {
        let slot = self.peek()?;
        self.remove(slot);
        self.cursor = slot as usize + 1;
        Some(slot)
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

    fn drain(o: &mut Outbox) -> Vec<Slot> {
        std::iter::from_fn(|| o.pop()).collect()
    }

    #[test]
    fn a_bitset_grows_by_an_eighth_not_by_doubling() {
        let mut slots = Slots::default();
        for s in 0..10_000 {
            slots.push(s);
        }
        let (len, capacity) = (slots.bits.len(), slots.bits.capacity());
        assert_eq!(len, 157);
        assert!(capacity <= len + len / 8 + 1, "{capacity} words for {len}");
        assert_eq!(slots.live, 10_000);
    }

    #[test]
    fn a_round_goes_up_through_the_slots_once_each() {
        let mut o = Outbox::default();
        for s in [5, 1, 5, 900, 1, 64, 63] {
            o.push(s);
        }
        assert_eq!(drain(&mut o), vec![1, 5, 63, 64, 900]);
        assert!(o.is_empty());
    }

    /// A slot queued behind the cursor waits for the wrap, so slots ahead
    /// cannot keep it waiting for more than one round.
    #[test]
    fn the_round_continues_where_it_stopped_and_wraps() {
        let mut o = Outbox::default();
        for s in [3, 70, 200] {
            o.push(s);
        }
        assert_eq!(o.pop(), Some(3));
        assert_eq!(o.pop(), Some(70));
        o.push(1);
        o.push(130);
        assert_eq!(drain(&mut o), vec![130, 200, 1]);
        // Same word as the cursor, before it: found on the wrap.
        o.push(10);
        o.push(2);
        assert_eq!(o.pop(), Some(2));
        o.push(0);
        assert_eq!(drain(&mut o), vec![10, 0]);
    }

    #[test]
    fn struck_off_slots_do_not_go() {
        let mut o = Outbox::default();
        o.push(1);
        o.push(2);
        o.remove(1);
        o.remove(7);
        o.remove(100_000);
        assert_eq!(o.peek_in(Lane::Express), Some(2));
        assert_eq!(drain(&mut o), vec![2]);
        assert_eq!(o.pop(), None);
    }

    /// Express goes first whatever its slots; express news of a slot in
    /// bulk moves it, bulk news of a slot in express leaves it there.
    #[test]
    fn express_goes_before_bulk_and_a_slot_waits_in_one_lane() {
        let mut o = Outbox::default();
        for s in [1, 2, 3] {
            o.push_to(Lane::Bulk, s);
        }
        o.push(900);
        o.push_to(Lane::Express, 2);
        o.push_to(Lane::Bulk, 900);
        assert!(o.owes(1) && o.owes(900) && !o.owes(4) && !o.owes(100_000));
        assert_eq!(o.peek_in(Lane::Bulk), Some(1));
        assert!(!o.lane_is_empty(Lane::Express));
        assert_eq!(drain(&mut o), vec![2, 900, 1, 3]);
        o.push_to(Lane::Bulk, 5);
        o.remove(5);
        assert!(o.is_empty() && o.lane_is_empty(Lane::Bulk));
        o.push_to(Lane::Bulk, 6);
        assert_eq!(o.pop_in(Lane::Express), None);
        assert_eq!(o.pop_in(Lane::Bulk), Some(6));
    }

    /// Notices wait apart from entries: striking an entry off leaves its
    /// notice, and sending the entry (`unnotify`) drops it.
    #[test]
    fn notices_wait_apart_from_entries() {
        let mut o = Outbox::default();
        o.notify(4);
        o.notify(9);
        assert!(!o.is_empty(), "notices wait");
        assert_eq!(o.pop(), None, "a notice is not an entry");
        assert!(o.lane_is_empty(Lane::Express) && o.lane_is_empty(Lane::Bulk));
        assert!(o.owes_nothing());
        assert!(!o.owes(4), "a notice is owed no entry");
        o.push(4);
        assert!(!o.owes_nothing());
        o.remove(4);
        assert!(o.owes_nothing());
        o.push_to(Lane::Bulk, 7);
        assert!(!o.owes_nothing(), "bulk is owed too");
        o.remove(7);
        assert_eq!(o.peek_notice(), Some(4));
        o.unnotify(4);
        assert_eq!(o.pop_notice(), Some(9));
        assert_eq!(o.pop_notice(), None);
        assert!(o.is_empty());
        o.notify(1);
        o.clear();
        assert!(o.is_empty());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(Slot),
        Remove(Slot),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u32..300).prop_map(Op::Push),
            (0u32..300).prop_map(Op::Remove),
            Just(Op::Pop),
        ]
    }

    proptest! {
        /// Against a model set and a model cursor: what comes out is the
        /// first queued slot at or after the cursor, wrapping around.
        #[test]
        fn behaves_like_a_set_taken_in_rounds(ops in prop::collection::vec(op(), 0..400)) {
            let mut o = Outbox::default();
            let mut model: BTreeSet<Slot> = BTreeSet::new();
            let mut cursor: Slot = 0;
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
                    Op::Pop => {
                        let expected = model
                            .range(cursor..)
                            .next()
                            .or_else(|| model.iter().next())
                            .copied();
                        prop_assert_eq!(o.pop(), expected);
                        if let Some(s) = expected {
                            model.remove(&s);
                            cursor = s + 1;
                        }
                    }
                }
                prop_assert_eq!(o.is_empty(), model.is_empty());
            }
            let rest: BTreeSet<Slot> = drain(&mut o).into_iter().collect();
            prop_assert_eq!(rest, model);
        }
    }
}
