//! One shared copy of each distinct register block (signatures and data) for
//! the many engines of one process.
//!
//! Every engine of a simulation holds the same signatures and data for each
//! node (same origin and stamp, same bytes), so ten thousand engines would
//! each keep their own copy of ten thousand blocks. Given one [`Interner`],
//! they keep one copy between them. A real node runs one engine and never
//! needs it.

use std::fmt;
use std::hash::BuildHasher;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use triomphe::ThinArc;

/// The default [`Interner::new`] bound: more distinct blocks than ten
/// thousand peers' registers, a few lives each.
pub const DEFAULT_INTERNER_CAPACITY: usize = 1 << 20;

/// Fewest entries before the first sweep: sweeping a small table often
/// would cost more than the blocks it frees.
const FIRST_SWEEP: usize = 1024;

/// A bounded table of shared byte blocks, keyed by their contents, handed
/// to every engine of a process through
/// [`Config::interner`](super::Config::interner). Cloning it gives another
/// handle to the same table.
///
/// A block is looked up by a hash of its bytes and only shared with one whose
/// bytes are equal, so a collision costs a comparison, never a wrong block.
/// Blocks no engine holds any more are dropped by a sweep each time the table
/// has doubled since the last one; when the table is full even after a
/// sweep, new blocks are simply not shared.
#[derive(Clone)]
pub struct Interner {
    table: Arc<Mutex<Table>>,
}

struct Table {
    blocks: HashTable<SharedBlock>,
    /// Seeded per table: a peer cannot choose data whose hashes collide.
    hasher: RandomState,
    capacity: usize,
    /// The size at which the next sweep runs.
    next_sweep: usize,
    /// Blocks not kept since the last sweep because the table was full:
    /// a full table of held blocks is swept again only after a quarter of
    /// its capacity was refused, not on every new block.
    refused: usize,
    /// Sweeps so far.
    sweeps: u64,
}

impl Interner {
    /// An empty table that holds at most `capacity` distinct blocks.
    pub fn new(capacity: usize) -> Self {
        Interner {
            table: Arc::new(Mutex::new(Table {
                blocks: HashTable::new(),
                hasher: RandomState::default(),
                capacity,
                next_sweep: FIRST_SWEEP.min(capacity),
                refused: 0,
                sweeps: 0,
            })),
        }
    }

    /// The shared block with `block`'s contents: one already in the table,
    /// or `block` itself, kept for the next caller when there is room.
    pub fn share(&self, block: &SharedBlock) -> SharedBlock {
        let mut table = self.lock();
        let table = &mut *table;
        let hash = table.hasher.hash_one(&block[..]);
        if let Some(found) = table.blocks.find(hash, |b| b[..] == block[..]) {
            return found.clone();
        }
        let full = table.blocks.len() >= table.capacity;
        if table.blocks.len() >= table.next_sweep
            && (!full || table.refused >= (table.capacity / 4).max(1))
        {
            table.sweep();
        }
        if table.blocks.len() < table.capacity {
            let hasher = &table.hasher;
            table
                .blocks
                .insert_unique(hash, block.clone(), |b| hasher.hash_one(&b[..]));
        } else {
            table.refused += 1;
        }
        block.clone()
    }

    /// How many distinct blocks the table holds, some perhaps no longer
    /// held by any engine (until the next sweep).
    pub fn len(&self) -> usize {
        self.lock().blocks.len()
    }

    /// Whether the table holds no block.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every block only the table holds now.
    pub fn sweep(&self) {
        self.lock().sweep();
    }

    /// The table, even if a holder panicked: every change to it is complete
    /// before the lock is let go, so it is never left half done.
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for Interner {
    /// An empty table of [`DEFAULT_INTERNER_CAPACITY`] blocks.
    fn default() -> Self {
        Interner::new(DEFAULT_INTERNER_CAPACITY)
    }
}

impl Table {
    fn sweep(&mut self) {
        // A count of one is the table's own reference: nobody else can take
        // another while we hold the lock, so the block is unused for good.
        self.blocks.retain(|b| b.holders() > 1);
        self.refused = 0;
        self.sweeps += 1;
        self.next_sweep = (self.blocks.len() * 2).max(FIRST_SWEEP).min(self.capacity);
    }
}

/// An immutable, reference-counted run of bytes behind a pointer of one
/// word (its length lives in the allocation): a view keeps one per known
/// node, so a fat `Arc<[u8]>` would cost every node of every view another
/// 8 bytes.
#[derive(Clone)]
pub struct SharedBlock(ThinArc<(), u8>);

impl SharedBlock {
    /// A new block holding a copy of `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        SharedBlock(ThinArc::from_header_and_slice((), bytes))
    }

    /// A new block holding `pieces` one after the other. Registers (some
    /// 200 bytes) are joined on the stack first and copied into the block
    /// in one go: writing the block byte by byte cost more than the second
    /// copy.
    pub fn concat(pieces: &[&[u8]]) -> Self {
        const ON_STACK: usize = 512;
        let len: usize = pieces.iter().map(|p| p.len()).sum();
        let mut stack = [0; ON_STACK];
        let mut heap = Vec::new();
        let joined = if len <= ON_STACK {
            &mut stack[..len]
        } else {
            heap.resize(len, 0);
            &mut heap[..]
        };
        let mut at = 0;
        for p in pieces {
            joined[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        SharedBlock::new(joined)
    }

    /// Whether `a` and `b` are the same allocation, not just equal bytes.
    pub fn same(a: &SharedBlock, b: &SharedBlock) -> bool {
        a.0.ptr() == b.0.ptr()
    }

    /// How many handles to the block exist.
    pub fn holders(&self) -> usize {
        ThinArc::strong_count(&self.0)
    }
}

impl Deref for SharedBlock {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0.slice
    }
}

impl fmt::Debug for SharedBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedBlock({} bytes)", self.len())
    }
}

// By hand: the table is behind a lock and its blocks are many.
impl fmt::Debug for Interner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = self.lock();
        f.debug_struct("Interner")
            .field("blocks", &table.blocks.len())
            .field("capacity", &table.capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(bytes: &[u8]) -> SharedBlock {
        SharedBlock::new(bytes)
    }

    #[test]
    fn a_block_is_one_word_and_knows_its_holders() {
        assert_eq!(std::mem::size_of::<Option<SharedBlock>>(), 8);
        let a = block(b"abc");
        let b = a.clone();
        assert!(SharedBlock::same(&a, &b));
        assert!(!SharedBlock::same(&a, &block(b"abc")));
        assert_eq!((&a[..], a.holders()), (&b"abc"[..], 2));
        drop(b);
        assert_eq!(a.holders(), 1);
        assert!(block(b"").is_empty());
        let joined = SharedBlock::concat(&[b"ab", b"", b"cde"]);
        assert_eq!((&joined[..], joined.holders()), (&b"abcde"[..], 1));
        let long = SharedBlock::concat(&[&[1; 400], &[2; 400]]);
        assert_eq!((long.len(), long[399], long[400]), (800, 1, 2));
    }

    #[test]
    fn equal_contents_get_one_block_and_different_ones_their_own() {
        let i = Interner::new(16);
        let a = block(b"abc");
        let shared = i.share(&a);
        assert!(SharedBlock::same(&shared, &a));
        let again = i.share(&block(b"abc"));
        assert!(SharedBlock::same(&again, &a), "a copy gets the first block");
        let other = i.share(&block(b"abd"));
        assert_eq!(&other[..], b"abd");
        assert!(!SharedBlock::same(&other, &a));
        assert_eq!(i.len(), 2);
        // Another handle is the same table.
        assert!(SharedBlock::same(&i.clone().share(&block(b"abc")), &a));
    }

    #[test]
    fn a_hash_collision_never_shares_different_contents() {
        let i = Interner::new(16);
        let x = block(b"x");
        {
            // "y" filed under the hash of "x", as a collision would file it.
            let mut t = i.lock();
            let t = &mut *t;
            let hash_of_x = t.hasher.hash_one(&x[..]);
            let hasher = &t.hasher;
            t.blocks
                .insert_unique(hash_of_x, block(b"y"), |b| hasher.hash_one(&b[..]));
        }
        let shared = i.share(&x);
        assert_eq!(&shared[..], b"x");
        assert!(
            SharedBlock::same(&shared, &x),
            "x is kept beside y, not given y"
        );
        assert!(SharedBlock::same(&i.share(&block(b"x")), &x));
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn blocks_nobody_holds_are_swept_and_the_table_is_bounded() {
        let i = Interner::new(3);
        let held = i.share(&block(b"held"));
        let _ = i.share(&block(b"dropped"));
        assert_eq!(i.len(), 2);
        i.sweep();
        assert_eq!(i.len(), 1, "only the held block stays");
        assert!(SharedBlock::same(&i.share(&block(b"held")), &held));
        let b = i.share(&block(b"b"));
        let c = i.share(&block(b"c"));
        assert_eq!(i.len(), 3);
        // Full, with every block held: a new one is not kept, but still
        // handed back whole.
        let d = block(b"d");
        assert!(SharedBlock::same(&i.share(&d), &d));
        assert_eq!(i.len(), 3);
        assert!(!SharedBlock::same(&i.share(&block(b"d")), &d));
        // Once one is let go, the next sweep makes room.
        drop(c);
        let e = i.share(&block(b"e"));
        assert!(SharedBlock::same(&i.share(&block(b"e")), &e));
        assert_eq!(i.len(), 3);
        drop((b, e));
    }

    /// A table full of blocks still held is not swept on every new block
    /// (each sweep reads the whole table), only after a quarter of its
    /// capacity was refused; blocks let go meanwhile are found then.
    #[test]
    fn a_full_table_is_swept_once_per_quarter_of_its_capacity_refused() {
        let i = Interner::new(8);
        let held: Vec<_> = (0..8u8).map(|n| i.share(&block(&[n]))).collect();
        let sweeps = |i: &Interner| i.lock().sweeps;
        let before = sweeps(&i);
        for n in 100..140u8 {
            let _ = i.share(&block(&[n]));
        }
        assert_eq!(i.len(), 8);
        let swept = sweeps(&i) - before;
        assert!(
            (1..=40 / 2).contains(&swept),
            "{swept} sweeps for 40 refused"
        );
        drop(held);
        let _ = i.share(&block(b"x"));
        let kept = i.share(&block(b"y"));
        assert!(i.len() <= 2, "the sweep found the blocks let go");
        assert!(SharedBlock::same(&i.share(&block(b"y")), &kept));
    }

    #[test]
    fn the_table_sweeps_by_itself_as_it_grows() {
        let i = Interner::new(1 << 16);
        for n in 0..10 * FIRST_SWEEP as u32 {
            // Each block is dropped at once: sweeps keep the table small.
            let _ = i.share(&block(&n.to_le_bytes()));
        }
        assert!(i.len() <= FIRST_SWEEP, "{} blocks kept", i.len());
    }
}
