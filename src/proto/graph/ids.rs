//! Where a graph keeps its nodes' ids and finds a node by id: an index of
//! its own (a real node), or one table that every engine of a process
//! shares (a simulation).
//!
//! A simulation of ten thousand peers holds ten thousand views of the same
//! ten thousand ids. Kept in each view, they are 32 bytes per node plus an
//! index per view, and every look-up misses the cache three times (the
//! index's control bytes, its slot, the node to compare ids with) because
//! the engines take turns and each one's view has gone cold. Shared, each
//! id is stored once, the one index stays warm, and a view keeps nothing
//! per node: an id's number in the table is its slot in every view.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use super::segments::Segments;
use super::Slot;
use crate::proto::PeerId;

/// Ids per block of an [`IdTable`]: blocks are handed to views whole, so a
/// view refreshes its copy of the block list once per this many new ids.
const BLOCK: usize = 1024;

/// The default [`IdTable::new`] bound: a thousand times more ids than a
/// simulation of ten thousand peers has.
pub const DEFAULT_ID_TABLE_CAPACITY: usize = 1 << 24;

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

    /// The number of `id`, given now if new, and the blocks from `known`
    /// on (those the caller does not hold yet). `None` when the table is
    /// full.
    fn number(&self, id: PeerId, known: usize) -> Option<(u32, Vec<Block>)> {
        let mut table = self.lock();
        let number = match table.find(&id) {
            Some(n) => n,
            None => table.add(id)?,
        };
        let fresh = table.blocks.get(known..).unwrap_or_default().to_vec();
        Some((number, fresh))
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
    /// Through a table shared with other graphs: an id's slot is its
    /// number there, but for the root's and 0's, which trade places (the
    /// root is always slot 0). Nothing per node is kept here, and the
    /// table's one index stays warm. Every graph then spans the numbers of
    /// all the ids it ever held, which in a simulation is about all of them.
    Shared {
        table: IdTable,
        /// The table's blocks this graph has been handed, enough for every
        /// number it placed.
        blocks: Vec<Block>,
        /// The root's number.
        root: u32,
        /// Ids held.
        len: usize,
    },
}

impl Ids {
    /// An index of the graph's own, holding `root` in slot 0.
    pub fn own(root: PeerId) -> Self {
        let mut ids = Ids::Own {
            ids: Segments::default(),
            index: HashTable::new(),
            hasher: RandomState::default(),
        };
        ids.insert(super::ROOT, root);
        ids
    }

    /// Ids through `table`, holding `root` in slot 0; an index of the
    /// graph's own if the table is full.
    pub fn shared(table: IdTable, root: PeerId) -> Self {
        match table.number(root, 0) {
            Some((number, blocks)) => Ids::Shared {
                table,
                blocks,
                root: number,
                len: 1,
            },
            None => Ids::own(root),
        }
    }

    /// The slot of `id`, if it may hold it: with an index of its own, only
    /// a slot holding it; through a table, the slot it would have, which
    /// the graph checks.
    pub fn find(&self, id: &PeerId) -> Option<Slot> {
        match self {
            Ids::Own { ids, index, hasher } => index
                .find(hasher.hash_one(id), |&s| ids[s as usize] == *id)
                .copied(),
            Ids::Shared { table, root, .. } => Some(swap(table.find(id)?, *root)),
        }
    }

    /// The id in `slot`, which holds a node or held one last.
    pub fn id(&self, slot: Slot) -> &PeerId {
        match self {
            Ids::Own { ids, .. } => &ids[slot as usize],
            Ids::Shared { blocks, root, .. } => id_in(blocks, swap(slot, *root)),
        }
    }

    /// The slot new node `id` must have, if the ids decide it (through a
    /// table); `None` when the graph picks one and then calls
    /// [`Ids::insert`]. A table that is full turns this into an index of
    /// the graph's own, for the ids in `live` (each slot's id) and those
    /// to come.
    pub fn place(&mut self, id: PeerId, live: impl Iterator<Item = Slot>) -> Option<Slot> {
        let Ids::Shared {
            table,
            blocks,
            root,
            len,
        } = self
        else {
            return None;
        };
        match table.number(id, blocks.len()) {
            Some((number, fresh)) => {
                blocks.extend(fresh);
                *len += 1;
                Some(swap(number, *root))
            }
            None => {
                let mut own = Ids::Own {
                    ids: Segments::default(),
                    index: HashTable::new(),
                    hasher: RandomState::default(),
                };
                for slot in live {
                    own.insert(slot, *id_in(blocks, swap(slot, *root)));
                }
                *self = own;
                None
            }
        }
    }

    /// Gives `id`, which the graph does not hold, `slot` (free, or at most
    /// one past the last); only for an index of the graph's own.
    pub fn insert(&mut self, slot: Slot, id: PeerId) {
        if let Ids::Own { ids, index, hasher } = self {
            // Slots between (free, held by no id here) get a filler id
            // that the index never names.
            while ids.len() < slot as usize {
                ids.push(PeerId::from_bytes([0; 32]));
            }
            match ids.get_mut(slot as usize) {
                Some(place) => *place = id,
                None => ids.push(id),
            }
            index.insert_unique(hasher.hash_one(id), slot, |&s| {
                hasher.hash_one(ids[s as usize])
            });
        }
    }

    /// Whether a freed slot may go to another id (not through a table,
    /// where each id has its own).
    pub fn reuses_slots(&self) -> bool {
        matches!(self, Ids::Own { .. })
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
            Ids::Shared { len, .. } => *len -= 1,
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
        if let Ids::Own { ids, index, hasher } = self {
            while ids.len() > len {
                ids.pop();
            }
            index.shrink_to_fit(|&s| hasher.hash_one(ids[s as usize]));
        }
    }
}

/// A number's slot, and a slot's number: the root's number and 0 trade
/// places.
fn swap(n: u32, root: u32) -> u32 {
    if n == root {
        0
    } else if n == 0 {
        root
    } else {
        n
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
            let (number, _) = table.number(id(n), 0).unwrap();
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
    fn through_a_table_a_slot_is_the_number_but_the_root_is_always_slot_0() {
        let table = IdTable::default();
        assert_eq!(table.number(id(99), 0).unwrap().0, 0, "someone else's");
        let (mut a, mut b) = (
            Ids::shared(table.clone(), id(10)),
            Ids::shared(table.clone(), id(11)),
        );
        assert_eq!((a.id(0), b.id(0)), (&id(10), &id(11)));
        // 11 is number 2 (slot 2 in a); 10 is number 1, b's 0 is 99.
        assert_eq!(a.place(id(11), std::iter::empty()), Some(2));
        assert_eq!(b.place(id(10), std::iter::empty()), Some(1));
        assert_eq!(b.place(id(99), std::iter::empty()), Some(2));
        assert_eq!((a.id(2), b.id(1), b.id(2)), (&id(11), &id(10), &id(99)));
        assert_eq!((a.find(&id(11)), b.find(&id(10))), (Some(2), Some(1)));
        // Not in the table at all.
        assert_eq!(a.find(&id(12)), None);
        assert_eq!((a.len(), b.len()), (2, 3));
        a.remove(2);
        assert_eq!(a.len(), 1);
        assert!(!a.reuses_slots(), "each id keeps its own slot");
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn a_graph_whose_table_fills_up_keeps_its_ids_in_an_index_of_its_own() {
        let table = IdTable::new(3);
        let mut ids = Ids::shared(table.clone(), id(0));
        assert_eq!(ids.place(id(1), std::iter::empty()), Some(1));
        assert_eq!(ids.place(id(2), std::iter::empty()), Some(2));
        ids.remove(1);
        // Full: the graph's slots 0 and 2 still hold their ids.
        assert_eq!(ids.place(id(3), [0, 2].into_iter()), None);
        assert!(ids.reuses_slots());
        ids.insert(1, id(3));
        assert_eq!(ids.len(), 3);
        for (n, slot) in [(0, 0), (2, 2), (3, 1)] {
            assert_eq!((ids.find(&id(n)), ids.id(slot)), (Some(slot), &id(n)));
        }
        assert_eq!(
            ids.find(&id(1)),
            None,
            "removed before the change stays removed"
        );
        assert_eq!(table.len(), 3);
        // A table full from the start: an index of the graph's own at once.
        let own = Ids::shared(table, id(7));
        assert_eq!((own.find(&id(7)), own.reuses_slots()), (Some(0), true));
    }
}
