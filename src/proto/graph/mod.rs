//! The network as one peer sees it: a directed graph of who says they are
//! connected to whom, and which nodes a path from us reaches (who is online).
//!
//! Two choices fix the original's defects here. Nodes that no path reaches
//! are *kept* (and only forgotten after a grace period), because over a
//! gossip network the edge that will reach a node often arrives after the
//! node's own news; the original dropped such nodes at once and so lost
//! peers for good when messages crossed. And reachability is maintained
//! incrementally: adding an edge from a reached node walks only what it newly
//! reaches, and only removing an edge that leaves a reached node costs one
//! full traversal, O(N + E), instead of one path search per node.
//!
//! Ids are interned: each node has a slot in a vector and edges are slot
//! numbers, so a traversal indexes arrays instead of hashing 32-byte keys,
//! and an edge costs 2 bytes (4 in a long list) instead of 32 in every
//! view. Ids live beside the nodes (the private `ids` module): in the
//! graph's own index, or in one table the graphs of a simulation share
//! ([`IdTable`]).

use std::time::Duration;

use super::PeerId;

mod digest;
mod edge_list;
mod edges;
mod forget;
mod ids;
mod node;
mod packed;
mod reach;
mod segments;
mod waiting;
use digest::Tracker;
pub use digest::{data_weight, id_weight, Digest};
use edge_list::{Iter, Spills, INLINE};
use forget::Clock;
use ids::Ids;
pub use ids::{IdTable, DEFAULT_ID_TABLE_CAPACITY};
pub use node::{EdgeDiff, Node, Standing, TAG_BITS};
use node::{FORGOTTEN, FREE, LENT, MUTUAL, OPEN, REACHABLE};
use segments::Segments;
use waiting::Waiting;

/// A node's place in the graph's vector.
pub type Slot = u32;

/// What [`Graph::on_settle`] runs.
struct SettleHook<N>(Box<dyn Fn(&mut N) + Send + Sync>);

// By hand: a closure has no `Debug`.
impl<N> std::fmt::Debug for SettleHook<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SettleHook")
    }
}

/// The root is always the first slot.
pub const ROOT: Slot = 0;

/// A directed graph rooted at our own id, with the set of nodes reachable from
/// the root kept up to date.
#[derive(Debug)]
pub struct Graph<N> {
    /// Id by slot and slot by id.
    ids: Ids,
    /// Node by slot. A free slot keeps a node marked [`FREE`] rather than
    /// holding an `Option`: the packed state leaves no niche, so `None`
    /// would cost 8 bytes more per slot.
    nodes: Segments<Node<N>>,
    /// The edge lists that do not fit in their nodes.
    spills: Spills,
    /// Free slots, reused last freed first.
    free: Vec<Slot>,
    reachable_count: usize,
    /// An edge out of a reached node was removed: only a full traversal can
    /// tell what is still reached.
    needs_traversal: bool,
    /// For each unreached node that reached nodes list, how many do (see
    /// [`Waiting`]). A node that starts speaking openly is then reached by
    /// a walk of what it newly reaches, not a traversal per batch of such
    /// nodes a peer invents. Exact whenever `needs_traversal` is not set;
    /// a traversal rebuilds it.
    waiting: Waiting,
    /// The reachable set changed since the last [`Graph::settle`].
    changed: bool,
    /// Full traversals so far, for tests that a path took none.
    #[cfg(test)]
    traversals: u64,
    /// The coarse time nodes keep when they fell unreachable in.
    clock: Clock,
    /// Nodes ever created here (a forgotten node known again counts again).
    created: u64,
    /// The digest of the reached nodes, once [`Graph::track_digest`] asked.
    digest: Option<Tracker<N>>,
    /// Slots whose payload was handed out mutably since the last settle
    /// (marked [`LENT`]), kept while a digest or a settle hook needs them. A
    /// slot can be listed twice when it was freed and reused meanwhile; the
    /// node's flag says which listing is current.
    lent: Vec<Slot>,
    /// Run at each settle on every payload lent since the previous one.
    on_settle: Option<SettleHook<N>>,
    /// Edges count by their target's [`Standing`]; otherwise all count.
    both_ends: bool,
    /// How many nodes are marked [`FORGOTTEN`] (all unreachable): with
    /// both ends required, a reached node may list a forgotten one for as
    /// long as it likes, and such nodes need no more sweeps.
    forgotten: usize,
    /// Slots that became reachable since [`Graph::take_reached`] last took
    /// them, once [`Graph::watch_reached`] asked.
    reached: Option<Vec<Slot>>,
}

impl<N: Default> Graph<N> {
    /// A graph holding only the root, with an index of its own.
    pub fn new(root: PeerId) -> Self {
        Graph::with_ids(root, Ids::own())
    }

    /// A graph holding only the root, its ids kept in `table` (shared with
    /// other graphs of the process).
    pub fn with_id_table(root: PeerId, table: IdTable) -> Self {
        Graph::with_ids(root, Ids::shared(table))
    }

    fn with_ids(root: PeerId, mut ids: Ids) -> Self {
        let mut node = Node::new(0);
        node.set(REACHABLE, true);
        ids.insert(ROOT, root);
        Graph {
            ids,
            nodes: {
                let mut nodes = Segments::default();
                nodes.push(node);
                nodes
            },
            spills: Spills::default(),
            free: Vec::new(),
            reachable_count: 1,
            needs_traversal: false,
            waiting: Waiting::default(),
            changed: false,
            #[cfg(test)]
            traversals: 0,
            clock: Clock::default(),
            created: 0,
            digest: None,
            lent: Vec::new(),
            on_settle: None,
            both_ends: false,
            forgotten: 0,
            reached: None,
        }
    }

    /// From now on an edge counts for reachability only by its target's
    /// [`Standing`] (the root's own edges always count): one node cannot
    /// make another reachable by naming it. Call before adding edges.
    pub fn require_both_ends(&mut self) {
        self.both_ends = true;
    }

    /// What the node in `slot` said of itself (see [`Standing`]).
    pub fn standing_at(&self, slot: Slot) -> Option<Standing> {
        self.node_at(slot).map(Node::standing)
    }

    /// The root's id.
    pub fn root(&self) -> PeerId {
        *self.ids.id(ROOT)
    }

    /// The node for `id`, if known.
    pub fn get(&self, id: &PeerId) -> Option<&Node<N>> {
        self.find(id).map(|s| self.node(s))
    }

    /// The slot `id` holds, if known (a forgotten node that a kept node
    /// still lists is known). Slots are small and dense, so the layer above
    /// can key per-node state by them. A slot names a node only while that
    /// node is known: once it is forgotten and nothing lists it, the slot
    /// may be given to another node.
    pub fn slot(&self, id: &PeerId) -> Option<Slot> {
        self.find(id)
    }

    /// [`Graph::slot`], but only if `wanted` says yes to the slot, asked
    /// before the node is read: a caller that keeps per-slot state of its
    /// own (a bit per slot) settles most ids without touching the view.
    pub fn slot_if(&self, id: &PeerId, wanted: impl FnOnce(Slot) -> bool) -> Option<Slot> {
        self.ids.find(id).filter(|&s| wanted(s))
    }

    /// The id in `slot`, or `None` for a free slot or one past the end. The
    /// same slot may name another node later: see [`Graph::slot`].
    pub fn id_at(&self, slot: Slot) -> Option<&PeerId> {
        let node = self.nodes.get(slot as usize)?;
        (!node.has(FREE)).then(|| self.ids.id(slot))
    }

    /// The node in `slot`, if the slot holds one.
    pub fn node_at(&self, slot: Slot) -> Option<&Node<N>> {
        let node = self.nodes.get(slot as usize)?;
        (!node.has(FREE)).then_some(node)
    }

    /// The slot of `id`, with a new unreachable node if unknown (a
    /// forgotten node is known again). The layer above looks an id up once
    /// and works by slot from then on: at ten thousand peers, hashing and
    /// comparing 32-byte ids was a fifth of a simulation's time.
    pub fn intern(&mut self, now: Duration, id: PeerId) -> Slot {
        let slot = self.slot_of(id, now);
        self.remember(slot);
        slot
    }

    /// Reads where the nodes of `ids` are kept, and a word of each, so that
    /// what comes next finds them in the cache: a hint, which changes
    /// nothing. A packet names a score of nodes; looked up one by one, each
    /// costs a wait on memory (the view has gone cold since its engine's
    /// last turn, in a simulation), one after another. Looked up here
    /// together, in a loop short enough that the processor runs ahead, the
    /// waits overlap. `payload` reads what the layer above will read of
    /// each node's payload first (a heap block, say), for the same reason.
    pub fn warm<'a>(&self, ids: impl Iterator<Item = &'a PeerId>, payload: impl Fn(&N)) {
        self.ids.find_each(ids, |slot| {
            if let Some(node) = self.nodes.get(slot as usize) {
                std::hint::black_box(node.state);
                payload(&node.payload);
            }
        });
    }

    /// The targets `id` lists, in id order (none if unknown).
    pub fn edges(&self, id: &PeerId) -> Vec<PeerId> {
        self.find(id)
            .map_or_else(Vec::new, |slot| self.edges_at(slot))
    }

    /// The targets the node in `slot` lists, in id order (none for a free
    /// slot).
    pub fn edges_at(&self, slot: Slot) -> Vec<PeerId> {
        let mut list = Vec::new();
        self.edges_into(slot, &mut list);
        list
    }

    /// [`Graph::edges_at`] into `out` (cleared first), so that a caller
    /// encoding many nodes reuses one buffer instead of allocating a list
    /// per node.
    pub fn edges_into(&self, slot: Slot, out: &mut Vec<PeerId>) {
        out.clear();
        if let Some(node) = self.node_at(slot) {
            let mut buf = [0; INLINE];
            let targets = self.spills.slice(&node.out, &mut buf);
            out.extend(targets.iter().map(|&t| *self.ids.id(t)));
            out.sort_unstable();
        }
    }

    /// The slots `node` (one of this graph's) lists, in slot order: for
    /// the view's budget, which asks who lists whom.
    pub fn targets<'a>(&'a self, node: &'a Node<N>) -> Iter<'a> {
        self.spills.iter(&node.out)
    }

    /// The payload for `id`, creating an unreachable node if unknown.
    pub fn payload_mut(&mut self, now: Duration, id: PeerId) -> &mut N {
        let slot = self.intern(now, id);
        self.lend(slot);
        &mut self.node_mut(slot).payload
    }

    /// The payload in `slot`, if the slot holds a node (which is then no
    /// longer forgotten).
    pub fn payload_at_mut(&mut self, slot: Slot) -> Option<&mut N> {
        if self.nodes.get(slot as usize)?.has(FREE) {
            return None;
        }
        self.remember(slot);
        self.lend(slot);
        self.nodes.get_mut(slot as usize).map(|n| &mut n.payload)
    }

    /// Sets the layer above's tag of the node in `slot` (see [`Node::tag`]),
    /// which is not part of its payload: nothing is lent, no digest moves.
    /// No-op for a free slot.
    pub fn set_tag(&mut self, slot: Slot, tag: u32) {
        if let Some(node) = self.nodes.get_mut(slot as usize) {
            if !node.has(FREE) {
                node.set_tag(tag);
            }
        }
    }

    /// Every live slot, in order.
    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.has(FREE))
            .filter_map(|(i, _)| Slot::try_from(i).ok())
    }

    /// Every node with its id.
    pub fn iter(&self) -> impl Iterator<Item = (&PeerId, &Node<N>)> {
        self.live().map(|(slot, n)| (self.ids.id(slot), n))
    }

    /// Number of nodes, reached or not.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Always false: the root is a node.
    pub fn is_empty(&self) -> bool {
        self.ids.len() == 0
    }

    /// Whether `id` is reached from the root. Exact only after [`Graph::settle`].
    pub fn is_reachable(&self, id: &PeerId) -> bool {
        self.get(id).is_some_and(Node::is_reachable)
    }

    /// How many nodes are reached, root included. Exact only after [`Graph::settle`].
    pub fn reachable_count(&self) -> usize {
        self.reachable_count
    }

    /// How many nodes are kept though no path reaches them.
    pub fn unreachable_count(&self) -> usize {
        self.len() - self.reachable_count
    }

    /// How many unreachable nodes are still remembered: those a sweep of
    /// [`Graph::collect_garbage`] may still forget. Nodes it already forgot
    /// but a kept node lists are not counted.
    pub fn forgettable_count(&self) -> usize {
        self.unreachable_count() - self.forgotten
    }

    /// The nodes reached nodes list but that have said nothing of
    /// themselves ([`Standing::Silent`]), in no particular order: holes in
    /// the view, which only news of those nodes fills. Exact only after
    /// [`Graph::settle`].
    pub fn silent_listed(&self) -> impl Iterator<Item = Slot> + '_ {
        self.waiting
            .iter()
            .map(|(slot, _)| slot)
            .filter(|&slot| self.node(slot).standing() == Standing::Silent)
    }

    /// The reached nodes' ids, in no particular order.
    pub fn reachable(&self) -> impl Iterator<Item = &PeerId> {
        self.live()
            .filter(|(_, n)| n.is_reachable())
            .map(|(slot, _)| self.ids.id(slot))
    }

    /// Brings reachability up to date and says whether the reached set
    /// changed since the previous call.
    pub fn settle(&mut self, now: Duration) -> bool {
        if self.needs_traversal {
            self.needs_traversal = false;
            self.traverse(now);
        }
        self.give_back_lent();
        std::mem::take(&mut self.changed)
    }

    /// From now on, keeps the slots of nodes that become reachable, for
    /// [`Graph::take_reached`]. Costs nothing until asked.
    pub fn watch_reached(&mut self) {
        self.reached.get_or_insert_with(Vec::new);
    }

    /// Whether [`Graph::watch_reached`] asked.
    pub fn watches_reached(&self) -> bool {
        self.reached.is_some()
    }

    /// The slots of the nodes that became reachable since the last call
    /// (a slot twice if it went and came back), when watching.
    pub fn take_reached(&mut self) -> Vec<Slot> {
        self.reached
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Starts keeping a [`Digest`] of the reached nodes, each payload
    /// weighing what `weigh` says, for [`Graph::digest`]. Costs two calls
    /// of `weigh` per payload handed out mutably and one per change of
    /// reachability; nothing until asked.
    pub fn track_digest(&mut self, weigh: fn(&PeerId, &N) -> u64) {
        // What is lent now goes through the hook first: the digest below
        // starts from every payload as it is.
        self.give_back_lent();
        let mut tracker = Tracker::new(weigh);
        for (slot, node) in self.nodes.iter_mut().enumerate() {
            if node.has(FREE) {
                continue;
            }
            node.set(LENT, false);
            if node.is_reachable() {
                tracker.reach(self.ids.id(slot as Slot), &node.payload, false, true);
            }
        }
        self.digest = Some(tracker);
    }

    /// Runs `hook` at every [`Graph::settle`] on each payload handed out
    /// mutably since the previous one (once per payload, however often it
    /// was lent): for a layer that tidies what it changed, such as sharing
    /// identical payload parts among many graphs in one process. The hook
    /// must not change what the digest weighs.
    pub fn on_settle(&mut self, hook: impl Fn(&mut N) + Send + Sync + 'static) {
        self.on_settle = Some(SettleHook(Box::new(hook)));
    }

    /// The digest of the reached nodes and their payloads, if tracked.
    /// Exact only after [`Graph::settle`], as reachability is.
    pub fn digest(&self) -> Option<Digest> {
        let tracker = self.digest.as_ref()?;
        let mut sum = tracker.sum;
        // Payloads lent since the last settle count as they are now.
        let mut open = self.lent.clone();
        open.sort_unstable();
        open.dedup();
        for slot in open {
            let node = &self.nodes[slot as usize];
            if node.has(LENT) && node.is_reachable() {
                sum.payloads = sum
                    .payloads
                    .wrapping_add((tracker.weigh)(self.ids.id(slot), &node.payload));
            }
        }
        Some(sum)
    }

    /// How many nodes were ever created in this graph, the root aside: each
    /// one a node newly known (again, after it was forgotten).
    pub fn created(&self) -> u64 {
        self.created
    }

    /// Takes the payload in `slot` out of the digest until the next settle,
    /// as the caller may change it.
    fn lend(&mut self, slot: Slot) {
        if self.digest.is_none() && self.on_settle.is_none() {
            return;
        }
        let node = &mut self.nodes[slot as usize];
        if !node.has(LENT) {
            node.set(LENT, true);
            self.lent.push(slot);
            if let Some(tracker) = &mut self.digest {
                tracker.lend(self.ids.id(slot), &node.payload, node.is_reachable());
            }
        }
    }

    /// Ends every loan since the last settle: the settle hook sees each
    /// payload lent, and the digest counts it again as it is now.
    fn give_back_lent(&mut self) {
        let lent = std::mem::take(&mut self.lent);
        for &slot in &lent {
            let node = &mut self.nodes[slot as usize];
            if node.has(LENT) {
                node.set(LENT, false);
                if let Some(hook) = &self.on_settle {
                    (hook.0)(&mut node.payload);
                }
                if let Some(tracker) = &mut self.digest {
                    tracker.give_back(self.ids.id(slot), &node.payload, node.is_reachable());
                }
            }
        }
        // Kept for its capacity: most inputs lend a few payloads.
        self.lent = lent;
        self.lent.clear();
    }

    /// The slot of `id` if known.
    fn find(&self, id: &PeerId) -> Option<Slot> {
        self.ids.find(id)
    }

    /// The slot of `id`, with a new unreachable node if unknown.
    fn slot_of(&mut self, id: PeerId, now: Duration) -> Slot {
        if let Some(slot) = self.find(&id) {
            return slot;
        }
        let node = Node::new(self.since(now));
        self.created += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.nodes[slot as usize] = node;
                slot
            }
            None => {
                self.nodes.push(node);
                // The view is bounded far below this by max_known_peers.
                Slot::try_from(self.nodes.len() - 1).expect("fewer than 2^32 nodes")
            }
        };
        self.ids.insert(slot, id);
        slot
    }

    fn node(&self, slot: Slot) -> &Node<N> {
        let node = &self.nodes[slot as usize];
        debug_assert!(!node.has(FREE), "a listed slot holds a node");
        node
    }

    fn node_mut(&mut self, slot: Slot) -> &mut Node<N> {
        let node = &mut self.nodes[slot as usize];
        debug_assert!(!node.has(FREE), "a listed slot holds a node");
        node
    }

    /// The nodes with their slots, free slots skipped, in slot order.
    fn live(&self) -> impl Iterator<Item = (Slot, &Node<N>)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.has(FREE))
            .map(|(slot, n)| (slot as Slot, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn id(n: u8) -> PeerId {
        PeerId::from_bytes([n; 32])
    }

    fn graph() -> Graph<()> {
        Graph::new(id(0))
    }

    fn reached(g: &Graph<()>) -> BTreeSet<PeerId> {
        g.reachable().copied().collect()
    }

    #[test]
    fn set_edges_with_reports_each_change_and_leaves_the_same_graph() {
        let (mut a, mut b) = (graph(), graph());
        let t = Duration::ZERO;
        for g in [&mut a, &mut b] {
            g.set_edges(t, id(0), vec![id(1)]);
            g.set_edges(t, id(1), vec![id(2), id(3)]);
            g.settle(t);
        }
        let diff = a.set_edges(t, id(1), vec![id(3), id(4), id(1), id(4)]);
        let slot = b.slot(&id(1)).unwrap();
        let mut seen = Vec::new();
        b.set_edges_with(
            t,
            slot,
            &[id(3), id(4), id(1), id(4)],
            Some(&mut |to, added| seen.push((to, added))),
        );
        seen.sort();
        assert_eq!(diff.added, vec![id(4)]);
        assert_eq!(diff.removed, vec![id(2)]);
        assert_eq!(seen, vec![(id(2), false), (id(4), true)]);
        assert_eq!((a.settle(t), b.settle(t)), (true, true));
        assert_eq!(reached(&a), reached(&b));
        assert_eq!(a.edges(&id(1)), b.edges(&id(1)));
        let mut into = vec![id(9)];
        b.edges_into(slot, &mut into);
        assert_eq!(into, vec![id(3), id(4)]);
    }

    #[test]
    fn the_settle_hook_sees_each_lent_payload_once_and_no_other() {
        let mut g: Graph<u32> = Graph::new(id(0));
        let t = Duration::ZERO;
        g.on_settle(|p: &mut u32| *p += 100);
        *g.payload_mut(t, id(1)) += 1;
        let slot = g.slot(&id(1)).unwrap();
        *g.payload_at_mut(slot).unwrap() += 1;
        *g.payload_mut(t, id(2)) += 1;
        g.set_edges(t, id(3), vec![id(1)]);
        g.settle(t);
        let payload = |g: &Graph<u32>, n| g.iter().find(|(i, _)| **i == id(n)).unwrap().1.payload;
        assert_eq!(
            [0, 1, 2, 3].map(|n| payload(&g, n)),
            [0, 102, 101, 0],
            "1 lent twice, seen once; 0 and 3 never lent"
        );
        g.settle(t);
        assert_eq!(payload(&g, 1), 102, "nothing lent since");
        // A digest tracked later starts from the payloads as the hook left
        // them, and stays right as they are lent again.
        *g.payload_mut(t, id(2)) += 1;
        g.track_digest(|_, p| u64::from(*p));
        assert_eq!(payload(&g, 2), 202);
        *g.payload_mut(t, id(0)) += 1;
        g.settle(t);
        assert_eq!(g.digest().unwrap().payloads, 101);
    }

    #[test]
    fn only_the_root_is_reached_at_first() {
        let g = graph();
        assert_eq!(reached(&g), BTreeSet::from([id(0)]));
        assert_eq!((g.reachable_count(), g.unreachable_count()), (1, 0));
    }

    #[test]
    fn an_edge_from_a_reached_node_reaches_everything_behind_it() {
        let mut g = graph();
        let t = Duration::ZERO;
        g.set_edges(t, id(2), vec![id(3)]);
        g.set_edges(t, id(3), vec![id(4)]);
        assert!(!g.settle(t), "nothing is reached through 2 yet");
        assert_eq!(g.unreachable_count(), 3);
        g.set_edges(t, id(0), vec![id(2)]);
        assert!(g.settle(t));
        assert_eq!(reached(&g), BTreeSet::from([id(0), id(2), id(3), id(4)]));
    }

    #[test]
    fn removing_an_edge_unreaches_what_only_it_led_to() {
        let mut g = graph();
        let t = Duration::from_secs(1);
        g.set_edges(t, id(0), vec![id(1), id(2)]);
        g.set_edges(t, id(1), vec![id(3)]);
        g.set_edges(t, id(2), vec![id(3)]);
        g.settle(t);
        let diff = g.set_edges(Duration::from_secs(2), id(1), vec![]);
        assert_eq!(diff.removed, vec![id(3)]);
        assert!(
            !g.settle(Duration::from_secs(2)),
            "3 is still reached through 2"
        );
        g.set_edges(Duration::from_secs(3), id(0), vec![id(1)]);
        assert!(g.settle(Duration::from_secs(3)));
        assert_eq!(reached(&g), BTreeSet::from([id(0), id(1)]));
    }

    #[test]
    fn self_loops_and_duplicates_are_dropped_and_diffs_are_exact() {
        let mut g = graph();
        let t = Duration::ZERO;
        let diff = g.set_edges(t, id(1), vec![id(3), id(1), id(2), id(3)]);
        assert_eq!(diff.added, vec![id(2), id(3)]);
        assert_eq!(g.edges(&id(1)), vec![id(2), id(3)]);
        let diff = g.set_edges(t, id(1), vec![id(4), id(2)]);
        assert_eq!(
            diff,
            EdgeDiff {
                added: vec![id(4)],
                removed: vec![id(3)]
            }
        );
        assert!(g.set_edges(t, id(1), vec![id(2), id(4)]).is_empty());
    }

    #[test]
    fn lists_naming_slots_past_two_bytes_spill_and_read_the_same() {
        let big = |n: u32| {
            let mut b = [0xAB; 32];
            b[..4].copy_from_slice(&n.to_le_bytes());
            PeerId::from_bytes(b)
        };
        let mut g = graph();
        let t = Duration::ZERO;
        // A chain from the root through 70,000 nodes: past slot 65,534
        // every list names a slot that does not fit inline.
        g.set_edges(t, id(0), vec![big(0)]);
        for n in 0..70_000 {
            g.set_edges(t, big(n), vec![big(n + 1)]);
        }
        g.settle(t);
        assert_eq!(g.reachable_count(), 70_002);
        let (narrow, wide) = (g.slot(&big(100)).unwrap(), g.slot(&big(69_000)).unwrap());
        assert!(!g.node_at(narrow).unwrap().out.spilled());
        assert!(g.node_at(wide).unwrap().out.spilled());
        assert_eq!(g.edges(&big(69_000)), vec![big(69_001)]);
        // Cutting the chain high up unreaches its tail, read through the
        // spilled lists.
        g.set_edges(t, big(69_000), vec![]);
        g.settle(t);
        assert_eq!(g.reachable_count(), 69_002);
        assert!(!g.is_reachable(&big(69_001)));
        let held = g.spills.held();
        g.collect_garbage(Duration::MAX);
        assert_eq!(g.spills.held(), held - 999, "the tail's lists went with it");
    }

    #[test]
    fn four_edges_are_kept_inline_even_when_the_message_listed_more() {
        let mut g = graph();
        let t = Duration::ZERO;
        let listed = [2, 3, 4, 5, 2, 3, 1, 5].map(id).to_vec();
        g.set_edges(t, id(1), listed);
        assert_eq!(g.edges(&id(1)), [2, 3, 4, 5].map(id).to_vec());
        assert!(!g.get(&id(1)).unwrap().out.spilled());
        g.set_edges(t, id(1), (2..=7).map(id).collect());
        assert!(g.get(&id(1)).unwrap().out.spilled());
        assert_eq!(g.edges(&id(1)), (2..=7).map(id).collect::<Vec<_>>());
        assert_eq!(g.spills.held(), 1);
        // Back to four: the spilled list goes, and its place is free.
        g.set_edges(t, id(1), (2..=5).map(id).collect());
        assert!(!g.get(&id(1)).unwrap().out.spilled());
        assert_eq!(g.spills.held(), 0);
        g.set_edges(t, id(1), (2..=8).map(id).collect());
        assert_eq!(g.spills.held(), 1);
        // Forgotten: its edges go with it.
        g.set_edges(t, id(0), vec![]);
        g.settle(t);
        g.collect_garbage(Duration::MAX);
        assert_eq!(g.spills.held(), 0);
    }

    #[test]
    fn nodes_cut_off_stay_unreached_through_every_later_traversal() {
        let mut g = graph();
        let t = Duration::ZERO;
        // 2 is reached by the first traversal and then cut off, 5 only
        // ever incrementally.
        g.set_edges(t, id(0), vec![id(1), id(5)]);
        g.set_edges(t, id(1), vec![id(2)]);
        g.set_edges(t, id(0), vec![id(1)]);
        g.settle(t);
        assert_eq!(g.traversals, 1);
        g.set_edges(t, id(1), vec![]);
        g.settle(t);
        let want = BTreeSet::from([id(0), id(1)]);
        assert_eq!(reached(&g), want);
        for _ in 0..3 {
            g.traverse(t);
            assert_eq!(reached(&g), want);
            assert_eq!(g.reachable_count(), 2);
        }
        assert_eq!(g.traversals, 5);
    }

    #[test]
    fn a_node_without_payload_takes_16_bytes() {
        // See Node: 8 + 4 + 4, no padding. It was 88 (a Duration, a u64
        // mark and two bools), with the edges in a heap block and the id
        // copied into the index, then 72 with the id in the node, then 40
        // with the id beside it and a `SmallVec` of edges, then 32 with
        // 16-byte edge lists and the time in nanoseconds, then 24 with the
        // time in the state word.
        assert_eq!(std::mem::size_of::<Node<()>>(), 16);
        assert_eq!(std::mem::size_of::<Node<u64>>(), 24);
        assert_eq!(std::mem::size_of::<Node<[u64; 2]>>(), 32);
    }

    #[test]
    fn times_saturate_at_the_end_of_u64_quanta() {
        let mut g = graph();
        let late = Duration::MAX;
        g.set_edges(late, id(1), vec![]);
        g.settle(late);
        assert_eq!(g.collect_garbage(Duration::from_secs(1)), 0);
        assert_eq!(g.collect_garbage(late), 1);
        g.set_time_quantum(Duration::ZERO);
        g.set_edges(late, id(2), vec![]);
        g.settle(late);
        assert_eq!(g.collect_garbage(late), 1, "a quantum of at least 1 ns");
    }

    #[test]
    fn a_node_is_forgotten_never_early_and_at_most_a_quantum_late() {
        let mut g = graph();
        g.set_time_quantum(Duration::from_millis(10));
        let ms = Duration::from_millis;
        g.set_edges(ms(0), id(0), vec![id(1)]);
        g.settle(ms(0));
        g.set_edges(ms(1005), id(0), vec![]);
        g.settle(ms(1005));
        assert_eq!(g.collect_garbage(ms(1004)), 0, "not yet unreachable then");
        assert_eq!(g.collect_garbage(ms(1005)), 0, "within the quantum");
        assert_eq!(g.collect_garbage(ms(1009)), 0);
        assert_eq!(g.collect_garbage(ms(1010)), 1);
    }

    #[test]
    fn times_far_apart_move_the_base_and_older_nodes_count_from_it() {
        let mut g = graph();
        let ms = Duration::from_millis;
        // 1 unreachable from 0 ms on; 2 from 10 s, 10,000 quanta later:
        // past what a node's bits hold, so the base moves to 256 quanta
        // before 10 s, and 1 counts as unreachable from there.
        g.set_edges(ms(0), id(1), vec![]);
        g.set_edges(ms(10_000), id(2), vec![]);
        g.settle(ms(10_000));
        assert_eq!(g.clock_base(), 10_000 - 256);
        assert_eq!(g.collect_garbage(ms(5_000)), 0, "late, never early");
        assert_eq!(g.collect_garbage(ms(9_744)), 1);
        assert_eq!(g.collect_garbage(ms(9_999)), 0);
        assert_eq!(g.collect_garbage(ms(10_000)), 1);
        // Earlier than the base: counted from the base.
        g.set_edges(ms(1), id(3), vec![]);
        assert_eq!(g.collect_garbage(ms(9_743)), 0);
        assert_eq!(g.collect_garbage(ms(9_744)), 1);
    }

    #[test]
    fn unreachable_nodes_are_collected_only_after_their_time() {
        let mut g = graph();
        g.set_edges(Duration::from_secs(1), id(0), vec![id(1)]);
        g.set_edges(Duration::from_secs(1), id(1), vec![id(2)]);
        g.settle(Duration::from_secs(1));
        g.set_edges(Duration::from_secs(10), id(0), vec![]);
        g.settle(Duration::from_secs(10));
        assert_eq!(g.collect_garbage(Duration::from_secs(9)), 0);
        assert_eq!(g.collect_garbage(Duration::from_secs(10)), 2);
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn a_tag_outlives_traversals_and_flags_and_goes_when_the_node_is_forgotten() {
        let mut g = graph();
        let t = Duration::ZERO;
        g.set_edges(t, id(0), vec![id(1)]);
        g.set_edges(t, id(1), vec![id(2)]);
        let (one, two) = (g.slot(&id(1)).unwrap(), g.slot(&id(2)).unwrap());
        let top = (1 << TAG_BITS) - 1;
        g.set_tag(one, top);
        g.set_tag(two, 5);
        // Cut-and-heal traversals, each setting the time bits beside the
        // tag.
        for _ in 0..20 {
            g.set_edges(t, id(0), vec![]);
            g.settle(t);
            g.set_edges(t, id(0), vec![id(1)]);
            g.settle(t);
            assert!(g.is_reachable(&id(2)));
        }
        g.set_standing(one, Standing::Mutual);
        let node = g.get(&id(1)).unwrap();
        assert_eq!((node.tag(), node.standing()), (top, Standing::Mutual));
        assert_eq!(g.get(&id(2)).unwrap().tag(), 5);
        g.set_edges(t, id(0), vec![]);
        g.settle(t);
        assert_eq!(g.collect_garbage(t), 2);
        g.set_edges(t, id(0), vec![id(1)]);
        assert_eq!(g.get(&id(1)).unwrap().tag(), 0, "known again, untagged");
    }

    #[test]
    fn a_forgotten_target_comes_back_when_its_lister_is_reached() {
        let mut g = graph();
        g.set_time_quantum(Duration::from_secs(1));
        g.set_edges(Duration::ZERO, id(1), vec![id(2)]);
        g.settle(Duration::ZERO);
        // Forget 2 but keep 1 (pretend 1 was refreshed later).
        let one = g.slot(&id(1)).unwrap();
        let later = g.since(Duration::from_secs(100));
        g.node_mut(one).set_since(later);
        assert_eq!(g.collect_garbage(Duration::from_secs(50)), 1);
        // 1 still lists 2: its slot stays, empty, and is not forgotten twice.
        assert_eq!(g.len(), 3);
        assert_eq!(g.collect_garbage(Duration::from_secs(50)), 0);
        g.set_edges(Duration::from_secs(101), id(0), vec![id(1)]);
        g.settle(Duration::from_secs(101));
        assert!(g.is_reachable(&id(2)));
    }

    #[test]
    fn slot_and_id_at_agree_until_the_slot_is_reused() {
        let mut g = graph();
        let t = Duration::ZERO;
        assert_eq!(g.slot(&id(0)), Some(ROOT));
        assert_eq!(g.id_at(ROOT), Some(&id(0)));
        g.set_edges(t, id(1), vec![id(2)]);
        let one = g.slot(&id(1)).unwrap();
        let two = g.slot(&id(2)).unwrap();
        assert_eq!((g.id_at(one), g.id_at(two)), (Some(&id(1)), Some(&id(2))));
        assert_eq!(g.slot(&id(9)), None);
        assert_eq!(g.slot_if(&id(1), |s| s == one), Some(one));
        assert_eq!(g.slot_if(&id(1), |s| s != one), None, "not wanted");
        assert_eq!(g.slot_if(&id(9), |_| true), None, "unknown");
        assert_eq!(g.id_at(two + 1), None, "past the end");
        g.settle(t);
        assert_eq!(g.collect_garbage(t), 2);
        assert_eq!((g.slot(&id(1)), g.id_at(one)), (None, None), "freed");
        g.set_edges(t, id(0), vec![id(3)]);
        let three = g.slot(&id(3)).unwrap();
        assert!(three == one || three == two, "a freed slot is reused");
        assert_eq!(g.id_at(three), Some(&id(3)));
    }

    #[test]
    fn slots_are_reused_only_once_nothing_lists_them() {
        let mut g = graph();
        g.set_time_quantum(Duration::from_secs(1));
        let t = Duration::ZERO;
        // An unreachable cycle 1 <-> 2, and 3 -> 1 kept longer.
        g.set_edges(t, id(1), vec![id(2)]);
        g.set_edges(t, id(2), vec![id(1)]);
        g.set_edges(t, id(3), vec![id(1)]);
        g.settle(t);
        let three = g.slot(&id(3)).unwrap();
        let later = g.since(Duration::from_secs(100));
        g.node_mut(three).set_since(later);
        assert_eq!(g.collect_garbage(Duration::from_secs(50)), 2);
        // 2 was listed only by 1, which is forgotten: gone. 1 is listed by 3.
        assert!(g.get(&id(2)).is_none());
        assert!(g.get(&id(1)).is_some());
        // A new node takes 2's slot; 3's edge still means 1.
        g.set_edges(t, id(0), vec![id(7)]);
        assert_eq!(g.edges(&id(3)), vec![id(1)]);
        assert_eq!(g.collect_garbage(Duration::from_secs(200)), 1);
        assert_eq!(g.len(), 2, "the root and 7 are left");
        g.settle(t);
        assert_eq!(reached(&g), BTreeSet::from([id(0), id(7)]));
    }

    /// Reference: breadth-first search from scratch over the same edges.
    fn reference(edges: &BTreeMap<u8, Vec<u8>>) -> BTreeSet<PeerId> {
        let mut seen = BTreeSet::from([0u8]);
        let mut stack = vec![0u8];
        while let Some(n) = stack.pop() {
            for t in edges.get(&n).into_iter().flatten() {
                if seen.insert(*t) {
                    stack.push(*t);
                }
            }
        }
        seen.into_iter().map(id).collect()
    }

    #[test]
    fn with_both_ends_only_vouched_edges_count() {
        let mut g = graph();
        g.require_both_ends();
        let t = Duration::ZERO;
        let slot = |g: &Graph<()>, n| g.slot(&id(n)).unwrap();
        // 1 is ours (the root lists it), signs and lists 2 and 3.
        g.set_edges(t, id(0), vec![id(1)]);
        g.set_edges(t, id(1), vec![id(2), id(3)]);
        g.set_standing(slot(&g, 1), Standing::Mutual);
        g.settle(t);
        assert_eq!(
            reached(&g),
            BTreeSet::from([id(0), id(1)]),
            "2 and 3 are silent"
        );
        // 2 signs and lists 1 back: reached. 3 signs but lists nobody.
        g.set_standing(slot(&g, 2), Standing::Mutual);
        g.set_edges(t, id(2), vec![id(1)]);
        g.set_standing(slot(&g, 3), Standing::Mutual);
        g.settle(t);
        assert_eq!(reached(&g), BTreeSet::from([id(0), id(1), id(2)]));
        // 3 is a JavaScript origin after all (open): 1's edge counts.
        g.set_standing(slot(&g, 3), Standing::Open);
        g.settle(t);
        assert!(g.is_reachable(&id(3)));
        // 2 drops 1 from its list: 1's claim alone no longer reaches it.
        g.set_edges(t, id(2), vec![]);
        g.settle(t);
        assert_eq!(reached(&g), BTreeSet::from([id(0), id(1), id(3)]));
        // The root's own edges always count.
        g.set_edges(t, id(0), vec![id(1), id(2)]);
        g.settle(t);
        assert!(g.is_reachable(&id(2)));
    }

    /// One step of a both-ends property test, on the graph and on its
    /// model: `from` takes a standing, or (without one) lists `to`. Also
    /// used by reach.rs's tests.
    pub(super) fn apply(
        g: &mut Graph<()>,
        edges: &mut BTreeMap<u8, Vec<u8>>,
        standings: &mut BTreeMap<u8, Standing>,
        t: Duration,
        (from, to, standing): (u8, Vec<u8>, Option<Standing>),
    ) {
        match standing {
            Some(s) => {
                let slot = g.intern(t, id(from));
                g.set_standing(slot, s);
                standings.insert(from, s);
            }
            None => {
                g.set_edges(t, id(from), to.iter().map(|n| id(*n)).collect());
                edges.insert(from, to.into_iter().filter(|n| *n != from).collect());
            }
        }
    }

    /// Reference for the both-ends rule: search from scratch, an edge
    /// counting by its target's standing (the root's always). Also used by
    /// reach.rs's tests.
    pub(super) fn reference_both_ends(
        edges: &BTreeMap<u8, Vec<u8>>,
        standing: &BTreeMap<u8, Standing>,
    ) -> BTreeSet<PeerId> {
        let counts = |from: u8, to: u8| {
            from == 0
                || match standing.get(&to).copied().unwrap_or(Standing::Silent) {
                    Standing::Silent => false,
                    Standing::Open => true,
                    Standing::Mutual => edges.get(&to).is_some_and(|l| l.contains(&from)),
                }
        };
        let mut seen = BTreeSet::from([0u8]);
        let mut stack = vec![0u8];
        while let Some(n) = stack.pop() {
            for t in edges.get(&n).into_iter().flatten() {
                if counts(n, *t) && seen.insert(*t) {
                    stack.push(*t);
                }
            }
        }
        seen.into_iter().map(id).collect()
    }

    pub(super) fn standing() -> impl Strategy<Value = Standing> {
        prop_oneof![
            Just(Standing::Silent),
            Just(Standing::Open),
            Just(Standing::Mutual)
        ]
    }

    #[test]
    fn watched_reach_names_each_node_as_it_becomes_reachable() {
        let mut g = graph();
        let t = Duration::ZERO;
        g.set_edges(t, id(0), vec![id(1)]);
        assert!(g.take_reached().is_empty(), "nothing is kept until asked");
        g.watch_reached();
        let names = |g: &mut Graph<()>| -> BTreeSet<PeerId> {
            let slots = g.take_reached();
            slots.iter().map(|s| *g.id_at(*s).unwrap()).collect()
        };
        g.set_edges(t, id(2), vec![id(3)]);
        g.settle(t);
        assert!(names(&mut g).is_empty(), "2 and 3 are not reached");
        g.set_edges(t, id(1), vec![id(2)]);
        g.settle(t);
        assert_eq!(names(&mut g), BTreeSet::from([id(2), id(3)]));
        // Cut off, then reached again: named again.
        g.set_edges(t, id(1), vec![]);
        g.settle(t);
        assert!(names(&mut g).is_empty());
        g.set_edges(t, id(0), vec![id(1), id(3)]);
        g.settle(t);
        assert_eq!(names(&mut g), BTreeSet::from([id(3)]));
    }

    proptest! {
        /// With both ends required, whatever sequence of edge lists and
        /// standings, the incremental set equals a search from scratch.
        /// Watched, the graph names every node that became reachable in a
        /// step (and of the nodes it names, only those are reachable after
        /// it: a node reached and cut off again in one step may be named).
        #[test]
        fn incremental_reachability_with_both_ends_matches_a_full_search(
            ops in prop::collection::vec(
                (0u8..10, prop::collection::vec(0u8..10, 0..7), prop::option::of(standing())),
                1..80,
            )
        ) {
            let mut g = graph();
            g.require_both_ends();
            g.watch_reached();
            let mut edges: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
            let mut standings: BTreeMap<u8, Standing> = BTreeMap::new();
            for (step, (from, to, standing)) in ops.into_iter().enumerate() {
                let t = Duration::from_millis(step as u64);
                let before = reached(&g);
                apply(&mut g, &mut edges, &mut standings, t, (from, to, standing));
                g.settle(t);
                let after = reached(&g);
                let named: BTreeSet<PeerId> = g
                    .take_reached()
                    .iter()
                    .filter_map(|s| g.id_at(*s).copied())
                    .filter(|i| after.contains(i))
                    .collect();
                let newly: BTreeSet<PeerId> = after.difference(&before).copied().collect();
                prop_assert_eq!(named, newly);
                if step % 7 == 6 {
                    // Forgetting must not disturb what the rest means; a
                    // forgotten node said nothing any more.
                    g.collect_garbage(t);
                    let kept = reference_both_ends(&edges, &standings);
                    edges.retain(|n, _| kept.contains(&id(*n)));
                    standings.retain(|n, _| kept.contains(&id(*n)));
                }
                prop_assert_eq!(&g.waiting, &g.waiting_from_scratch());
                prop_assert_eq!(g.forgotten, g.live().filter(|(_, n)| n.has(FORGOTTEN)).count());
                prop_assert_eq!(
                    g.forgettable_count(),
                    g.live().filter(|(_, n)| !n.is_reachable() && !n.has(FORGOTTEN)).count()
                );
                let want = reference_both_ends(&edges, &standings);
                prop_assert_eq!(reached(&g), want.clone());
                prop_assert_eq!(g.reachable_count(), want.len());
            }
        }

        /// Whatever sequence of edge-list replacements, the incrementally
        /// maintained set equals a search from scratch.
        #[test]
        fn incremental_reachability_matches_a_full_search(
            ops in prop::collection::vec((0u8..12, prop::collection::vec(0u8..12, 0..7)), 1..60)
        ) {
            let mut g = graph();
            let mut edges: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
            for (step, (from, to)) in ops.into_iter().enumerate() {
                let t = Duration::from_millis(step as u64);
                g.set_edges(t, id(from), to.iter().map(|n| id(*n)).collect());
                edges.insert(from, to.into_iter().filter(|n| *n != from).collect());
                g.settle(t);
                prop_assert_eq!(reached(&g), reference(&edges));
                prop_assert_eq!(g.reachable_count(), reference(&edges).len());
            }
        }

        /// Forgetting unreachable nodes between changes (and so reusing
        /// their slots, and giving memory back) never changes what the
        /// edges mean: the graph agrees with a model where forgetting drops
        /// the unreachable nodes' lists. The same with ids in a table shared
        /// with another graph (numbered in another order than this graph's
        /// slots), and with one too small that the graph leaves for an
        /// index of its own halfway.
        #[test]
        fn forgetting_and_slot_reuse_keep_every_edge_meaning_the_same(
            ops in prop::collection::vec(
                (0u8..12, prop::collection::vec(0u8..12, 0..7), any::<bool>()),
                1..60,
            ),
            table in prop::option::of(0usize..16),
        ) {
            let table = table.map(IdTable::new);
            let other = table.clone().map(|t| {
                let mut other = Graph::<()>::with_id_table(id(11), t);
                other.set_edges(Duration::ZERO, id(11), vec![id(7), id(5)]);
                other
            });
            let mut g = match &table {
                Some(t) => Graph::with_id_table(id(0), t.clone()),
                None => graph(),
            };
            let mut edges: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
            for (step, (from, to, forget)) in ops.into_iter().enumerate() {
                let t = Duration::from_millis(step as u64);
                g.set_edges(t, id(from), to.iter().map(|n| id(*n)).collect());
                let mut list: Vec<u8> = to.into_iter().filter(|n| *n != from).collect();
                list.sort_unstable();
                list.dedup();
                edges.insert(from, list);
                g.settle(t);
                if forget {
                    g.collect_garbage(t);
                    g.shrink_to_fit();
                    let reached = reference(&edges);
                    edges.retain(|n, _| reached.contains(&id(*n)));
                }
                prop_assert_eq!(reached(&g), reference(&edges));
                prop_assert_eq!(g.forgotten, g.live().filter(|(_, n)| n.has(FORGOTTEN)).count());
                // Every spilled list belongs to one live node: none is lost
                // when a list is replaced or its node forgotten.
                prop_assert_eq!(
                    g.spills.held(),
                    g.live().filter(|(_, n)| n.out.spilled()).count()
                );
                for (n, list) in &edges {
                    let want: Vec<PeerId> = list.iter().map(|m| id(*m)).collect();
                    prop_assert_eq!(g.edges(&id(*n)), want);
                }
                prop_assert!(g.len() <= 12);
                prop_assert_eq!(g.root(), id(0));
            }
            if let Some(other) = &other {
                prop_assert_eq!(other.edges(&id(11)), vec![id(5), id(7)]);
                prop_assert_eq!(other.len(), 3);
                prop_assert!(other.get(&id(3)).is_none(), "what the other graph learnt is not ours");
            }
        }
    }
}
