//! Where a graph keeps its nodes' ids and finds a node by id: an index of
//! its own (a real node), or one table that every engine of a process
//! shares (a simulation).
//!
//! A simulation of ten thousand peers holds ten thousand views of the same
//! ten thousand ids. Kept in each view, they are 32 bytes per node plus an
//! index per view, and every look-up misses the cache three times (the
//! index's control bytes, its slot, the node to compare ids with) because
//! the engines take turns and each one's view has gone cold. Shared, each
//! id is stored once, the one index stays warm, and a view keeps only two
//! numbers per node, of 2 bytes each while they fit ([`Packed`]).

use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use super::packed::{Packed, NONE};
use super::segments::Segments;
use super::Slot;
use crate::proto::PeerId;

/// Ids per block of an [`IdTable`]: blocks are handed to views whole, so a
/// view refreshes its copy of the block list once per this many new ids.
const BLOCK: usize = 1024;

/// The default [`IdTable::new`] bound: a thousand times more ids than a
/// simulation of ten thousand peers has.
pub const DEFAULT_ID_TABLE_CAPACITY: usize = 1 << 24;

/// Marks a number no node of this view holds in [`Ids::Shared`]'s slots.
const NO_SLOT: Slot = NONE;

/// One block of a table: each id is written once and then only read, so
/// views read it without the table's lock.
type Block = Arc<[OnceLock<PeerId>]>;

/// A table of ids numbered in the order first seen, shared by the graphs
/// of every engine in one process through
/// [`Config::shared_ids`](crate::proto::Config::shared_ids). Cloning gives
/// another handle to the same table.
///
/// Ids are never removed: a number, once given, names the same id for the
/// table's life, so views can hold numbers instead of ids. The table is
/// bounded; a simulation that meets more distinct ids than its capacity
/// must run without one.
#[derive(Clone)]
pub struct IdTable {
    table: Arc<Mutex<Table>>,
}

struct Table {
    /// Number by id: holds numbers and compares ids through `blocks`.
    index: HashTable<u32>,
    /// Seeded per table, as a view's own index is.
    hasher: RandomState,
    blocks: Vec<Block>,
    len: usize,
    capacity: usize,
}

impl IdTable {
    /// An empty table for at most `capacity` distinct ids.
    pub fn new(capacity: usize) -> Self {
        IdTable {
            table: Arc::new(Mutex::new(Table {
                index: HashTable::new(),
                hasher: RandomState::default(),
                blocks: Vec::new(),
                len: 0,
                capacity: capacity.min(u32::MAX as usize),
            })),
        }
    }

    /// Number of distinct ids seen.
    pub fn len(&self) -> usize {
        self.lock().len
    }

    /// True before the first id.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of `id`, if the table has it.
    fn find(&self, id: &PeerId) -> Option<u32> {
        self.lock().find(id)
    }

    /// The number of `id`, given now if new, the blocks from `known` on
    /// (those the caller does not hold yet), and how many ids the table
    /// holds. `None` when the table is full.
    fn number(&self, id: PeerId, known: usize) -> Option<(u32, Vec<Block>, usize)> {
        let mut table = self.lock();
        let number = match table.find(&id) {
            Some(n) => n,
            None => table.add(id)?,
        };
        let fresh = table.blocks.get(known..).unwrap_or_default().to_vec();
        Some((number, fresh, table.len))
    }

    /// The number of each of `ids` the table has, in order, under one
    /// lock: taking the lock is a full barrier, which would keep the reads
    /// that follow each look-up from overlapping the next.
    fn find_each<'a>(&self, ids: impl Iterator<Item = &'a PeerId>, mut each: impl FnMut(u32)) {
        let table = self.lock();
        for id in ids {
            if let Some(number) = table.find(id) {
                each(number);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic elsewhere cannot leave the table half-written: every
        // change is complete before the guard goes.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for IdTable {
    fn default() -> Self {
        IdTable::new(DEFAULT_ID_TABLE_CAPACITY)
    }
}

impl fmt::Debug for IdTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTable").field("len", &self.len()).finish()
    }
}

impl Table {
    fn find(&self, id: &PeerId) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        self.index
            .find(hash, |&n| id_in(&self.blocks, n) == id)
            .copied()
    }

    fn add(&mut self, id: PeerId) -> Option<u32> {
        if self.len >= self.capacity {
            return None;
        }
        let number = u32::try_from(self.len).ok()?;
        if self.len.is_multiple_of(BLOCK) {
            self.blocks
                .push((0..BLOCK).map(|_| OnceLock::new()).collect());
        }
        // The next place is one no id was ever written to.
        let _ = self.blocks[self.len / BLOCK][self.len % BLOCK].set(id);
        self.len += 1;
        let Table {
            index,
            hasher,
            blocks,
            ..
        } = self;
        // Growing the index rehashes every number, by its id.
        index.insert_unique(hasher.hash_one(id), number, |&n| {
            hasher.hash_one(id_in(blocks, n))
        });
        Some(number)
    }
}

/// The id numbered `n` in `blocks`.
fn id_in(blocks: &[Block], n: u32) -> &PeerId {
    let n = n as usize;
    blocks[n / BLOCK][n % BLOCK]
        .get()
        .expect("a number is given only once its id is written")
}

/// How one graph maps ids to slots and back.
pub(super) enum Ids {
    /// The graph's own: the id of each slot, and an index of slots by id
    /// that compares ids through `ids`.
    Own {
        ids: Segments<PeerId>,
        index: HashTable<Slot>,
        /// Seeded per graph: a peer cannot choose ids that collide in
        /// every node's table.
        hasher: RandomState,
    },
    /// Through a table shared with other graphs: each slot's number there,
    /// and each number's slot here ([`NO_SLOT`] for none).
    Shared {
        table: IdTable,
        /// The table's blocks this graph has been handed, enough for every
        /// number in `numbers`.
        blocks: Vec<Block>,
        numbers: Packed,
        slots: Packed,
        len: usize,
    },
}

impl Ids {
    /// An index of the graph's own.
    pub fn own() -> Self {
        Ids::Own {
            ids: Segments::default(),
            index: HashTable::new(),
            hasher: RandomState::default(),
        }
    }

    /// Ids through `table`.
    pub fn shared(table: IdTable) -> Self {
        Ids::Shared {
            table,
            blocks: Vec::new(),
            numbers: Packed::default(),
            slots: Packed::default(),
            len: 0,
        }
    }

    /// The slot of `id`, if the graph holds it.
    pub fn find(&self, id: &PeerId) -> Option<Slot> {
        match self {
            Ids::Own { ids, index, hasher } => index
                .find(hasher.hash_one(id), |&s| ids[s as usize] == *id)
                .copied(),
            Ids::Shared { table, slots, .. } => {
                let number = table.find(id)?;
                slots.get(number as usize).filter(|&s| s != NO_SLOT)
            }
        }
    }

    /// Tells `each` the slot of every one of `ids` the graph holds, in
    /// order (those it does not hold are skipped).
    pub fn find_each<'a>(&self, ids: impl Iterator<Item = &'a PeerId>, mut each: impl FnMut(Slot)) {
        match self {
            Ids::Own { .. } => {
                for id in ids {
                    if let Some(slot) = self.find(id) {
                        each(slot);
                    }
                }
            }
            Ids::Shared { table, slots, .. } => table.find_each(ids, |number| {
                if let Some(slot) = slots.get(number as usize).filter(|&s| s != NO_SLOT) {
                    each(slot);
                }
            }),
        }
    }

    /// The id in `slot`, which holds a node or held one last.
    pub fn id(&self, slot: Slot) -> &PeerId {
        match self {
            Ids::Own { ids, .. } => &ids[slot as usize],
            Ids::Shared {
                blocks, numbers, ..
            } => id_in(blocks, numbers.get(slot as usize).unwrap_or(NONE)),
        }
    }

    /// Gives `id`, which the graph does not hold, the new or freed `slot`
    /// (at most one past the last).
    pub fn insert(&mut self, slot: Slot, id: PeerId) {
        if let Ids::Shared {
            table,
            blocks,
            numbers,
            slots,
            len,
        } = self
        {
            match table.number(id, blocks.len()) {
                Some((number, fresh, known)) => {
                    blocks.extend(fresh);
                    numbers.put(slot as usize, number);
                    let at = number as usize;
                    if slots.len() <= at {
                        // To the table's size: the engines of a simulation
                        // learn the same ids, so this view will soon number
                        // them all, and doubling would leave up to half of
                        // 10,000 views' maps unused. At least an eighth
                        // more, so that a view learning each new id as the
                        // table gains it does not copy its map every time.
                        let want = known.max(at + 1).max(slots.len() + slots.len() / 8);
                        slots.resize(want, NO_SLOT);
                    }
                    slots.set(at, slot);
                    *len += 1;
                    return;
                }
                // A full table: this graph keeps its own ids from now on.
                None => self.go_own(),
            }
        }
        if let Ids::Own { ids, index, hasher } = self {
            put(ids, slot, id);
            index.insert_unique(hasher.hash_one(id), slot, |&s| {
                hasher.hash_one(ids[s as usize])
            });
        }
    }

    /// `slot` no longer holds a node.
    pub fn remove(&mut self, slot: Slot) {
        match self {
            Ids::Own { ids, index, hasher } => {
                let hash = hasher.hash_one(ids[slot as usize]);
                if let Ok(entry) = index.find_entry(hash, |&s| s == slot) {
                    entry.remove();
                }
            }
            Ids::Shared {
                numbers,
                slots,
                len,
                ..
            } => {
                let at = numbers.get(slot as usize).unwrap_or(NONE) as usize;
                if slots.get(at) == Some(slot) {
                    slots.set(at, NO_SLOT);
                    *len -= 1;
                }
            }
        }
    }

    /// Number of ids held.
    pub fn len(&self) -> usize {
        match self {
            Ids::Own { index, .. } => index.len(),
            Ids::Shared { len, .. } => *len,
        }
    }

    /// Drops what slots from `len` on held (they hold no node) and gives
    /// back spare capacity.
    pub fn shrink_to(&mut self, len: usize) {
        match self {
            Ids::Own { ids, index, hasher } => {
                while ids.len() > len {
                    ids.pop();
                }
                index.shrink_to_fit(|&s| hasher.hash_one(ids[s as usize]));
            }
            Ids::Shared { numbers, slots, .. } => {
                numbers.truncate(len);
                let mut end = slots.len();
                while end > 0 && slots.get(end - 1) == Some(NO_SLOT) {
                    end -= 1;
                }
                slots.truncate(end);
            }
        }
    }

    /// Turns a shared graph into one with its own index, holding the same
    /// ids in the same slots.
    fn go_own(&mut self) {
        let Ids::Shared {
            blocks,
            numbers,
            slots,
            ..
        } = self
        else {
            return;
        };
        let mut own = Ids::own();
        if let Ids::Own { ids, index, hasher } = &mut own {
            for (slot, number) in numbers.iter().enumerate() {
                let id = *id_in(blocks, number);
                ids.push(id);
                let live = slots.get(number as usize) == Some(slot as Slot);
                if live {
                    index.insert_unique(hasher.hash_one(id), slot as Slot, |&s| {
                        hasher.hash_one(ids[s as usize])
                    });
                }
            }
        }
        *self = own;
    }
}

/// Writes `value` at `slot` of `list`, one past the end included.
fn put<T>(list: &mut Segments<T>, slot: Slot, value: T) {
    match list.get_mut(slot as usize) {
        Some(place) => *place = value,
        None => list.push(value),
    }
}

impl fmt::Debug for Ids {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ids::Own { index, .. } => f.debug_struct("Own").field("len", &index.len()).finish(),
            Ids::Shared { table, len, .. } => f
                .debug_struct("Shared")
                .field("len", len)
                .field("table", table)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> PeerId {
        let mut bytes = [0; 32];
        bytes[..4].copy_from_slice(&n.to_le_bytes());
        PeerId::from_bytes(bytes)
    }

    #[test]
    fn a_table_numbers_each_id_once_in_the_order_first_seen_up_to_its_capacity() {
        let table = IdTable::new(BLOCK + 3);
        for n in 0..(BLOCK as u32 + 3) {
            let (number, _, _) = table.number(id(n), 0).unwrap();
            assert_eq!(number, n);
        }
        // Known ids keep their number when the table is full; new ones get
        // none.
        assert_eq!(table.number(id(BLOCK as u32), 0).unwrap().0, BLOCK as u32);
        assert!(table.number(id(u32::MAX), 0).is_none());
        assert_eq!(table.find(&id(5)), Some(5));
        assert_eq!(table.find(&id(u32::MAX)), None);
        assert_eq!(table.len(), BLOCK + 3);
        // A caller holding the first block is handed only the second.
        assert_eq!(table.number(id(1), 1).unwrap().1.len(), 1);
    }

    #[test]
    fn a_view_sizes_its_map_of_numbers_to_the_table_once() {
        let table = IdTable::new(1 << 16);
        for n in 0..1000 {
            table.number(id(n), 0).unwrap();
        }
        let mut ids = Ids::shared(table.clone());
        ids.insert(0, id(3));
        ids.insert(1, id(999));
        let Ids::Shared { slots, .. } = &ids else {
            panic!("shared");
        };
        assert_eq!((slots.len(), slots.capacity()), (1000, 1000));
        assert_eq!((ids.find(&id(999)), ids.find(&id(4))), (Some(1), None));
        ids.insert(2, id(5000));
        assert_eq!(ids.find(&id(5000)), Some(2), "a new id past the end");
        let Ids::Shared { slots, .. } = &ids else {
            panic!("shared");
        };
        assert_eq!(slots.len(), 1125, "grown by an eighth, not by one");
    }

    #[test]
    fn a_views_numbers_go_wide_past_two_bytes_and_read_the_same() {
        let table = IdTable::new(1 << 20);
        let mut ids = Ids::shared(table.clone());
        // Slots past 65,534 in this view, numbers past it in the table.
        for n in 0..70_000 {
            ids.insert(n, id(n));
        }
        let mut other = Ids::shared(table);
        other.insert(0, id(69_999));
        other.insert(1, id(3));
        for n in [0, 65_534, 65_535, 69_999] {
            assert_eq!((ids.find(&id(n)), ids.id(n)), (Some(n), &id(n)));
        }
        assert_eq!(other.find(&id(69_999)), Some(0));
        assert_eq!(other.id(0), &id(69_999));
        ids.remove(65_535);
        assert_eq!((ids.find(&id(65_535)), ids.len()), (None, 69_999));
        let Ids::Shared { numbers, slots, .. } = &other else {
            panic!("shared");
        };
        assert!(matches!(numbers, Packed::Wide(_)), "number 69,999");
        assert!(matches!(slots, Packed::Narrow(_)), "slots 0 and 1");
    }

    #[test]
    fn find_each_gives_the_slots_of_held_ids_in_order_own_or_shared() {
        let table = IdTable::default();
        let other = {
            let mut o = Ids::shared(table.clone());
            o.insert(0, id(9));
            o
        };
        for mut ids in [Ids::own(), Ids::shared(table.clone())] {
            ids.insert(0, id(1));
            ids.insert(1, id(2));
            ids.insert(2, id(3));
            ids.remove(1);
            let mut seen = Vec::new();
            // 2 was removed; 9 is only in another graph of the same table;
            // 4 is nowhere.
            let asked = [id(3), id(2), id(9), id(4), id(1), id(3)];
            ids.find_each(asked.iter(), |slot| seen.push(slot));
            assert_eq!(seen, [2, 0, 2]);
        }
        assert_eq!(other.find(&id(9)), Some(0));
    }

    #[test]
    fn graphs_sharing_a_table_find_only_their_own_ids() {
        let table = IdTable::default();
        let (mut a, mut b) = (Ids::shared(table.clone()), Ids::shared(table.clone()));
        a.insert(0, id(10));
        a.insert(1, id(11));
        b.insert(0, id(11));
        b.insert(1, id(12));
        assert_eq!((a.find(&id(11)), b.find(&id(11))), (Some(1), Some(0)));
        assert_eq!((a.find(&id(12)), b.find(&id(10))), (None, None));
        assert_eq!((a.id(1), b.id(1)), (&id(11), &id(12)));
        a.remove(1);
        assert_eq!((a.find(&id(11)), a.len()), (None, 1));
        // A freed slot reused for another id.
        a.insert(1, id(12));
        assert_eq!((a.find(&id(12)), a.id(1)), (Some(1), &id(12)));
        assert_eq!(b.find(&id(11)), Some(0), "untouched by a");
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn a_graph_whose_table_fills_up_keeps_its_ids_in_an_index_of_its_own() {
        let table = IdTable::new(3);
        let mut ids = Ids::shared(table.clone());
        for n in 0..3 {
            ids.insert(n, id(n));
        }
        ids.remove(1);
        ids.insert(3, id(3));
        assert!(matches!(ids, Ids::Own { .. }));
        assert_eq!(ids.len(), 3);
        for n in [0, 2, 3] {
            assert_eq!((ids.find(&id(n)), ids.id(n)), (Some(n), &id(n)));
        }
        assert_eq!(
            ids.find(&id(1)),
            None,
            "removed before the change stays removed"
        );
        assert_eq!(table.len(), 3);
    }
}
