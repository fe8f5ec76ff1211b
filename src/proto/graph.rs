//! The network as one peer sees it: a directed graph of who says they are
//! connected to whom, and which nodes a path from us reaches (who is online).
//!
//! Two choices fix the original's defects here. Nodes that no path reaches
//! are *kept* (and only collected after a grace period), because over a
//! gossip network the edge that will reach a node often arrives after the
//! node's own news; the original dropped such nodes at once and so lost
//! peers for good when messages crossed. And reachability is maintained
//! incrementally: adding an edge from a reached node walks only what it newly
//! reaches, and only removing an edge that leaves a reached node costs one
//! full traversal, O(N + E), instead of one path search per node.

use std::collections::HashMap;
use std::time::Duration;

use foldhash::fast::RandomState;

use super::PeerId;

/// One node: its outgoing edges, whether we reach it, and what the layer above
/// keeps about it.
#[derive(Debug)]
pub struct Node<N> {
    out: Vec<PeerId>,
    reachable: bool,
    /// When the node was last found unreachable (or created unreachable).
    unreachable_since: Duration,
    /// Full-traversal generation that last reached this node.
    mark: u64,
    /// What the presence layer stores per node (stamps, data).
    pub payload: N,
}

impl<N> Node<N> {
    /// The node's outgoing edges, sorted, without duplicates or self loops.
    pub fn out(&self) -> &[PeerId] {
        &self.out
    }

    /// Whether a path from the root reaches this node.
    pub fn is_reachable(&self) -> bool {
        self.reachable
    }
}

/// What a change of one node's edge list added and removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EdgeDiff {
    /// Targets newly listed.
    pub added: Vec<PeerId>,
    /// Targets no longer listed.
    pub removed: Vec<PeerId>,
}

impl EdgeDiff {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// A directed graph rooted at our own id, with the set of nodes reachable from
/// the root kept up to date.
#[derive(Debug)]
pub struct Graph<N> {
    root: PeerId,
    /// foldhash with a random seed per graph: several times faster than
    /// SipHash on 32-byte keys, and still seeded, so a peer cannot choose ids
    /// that collide in every node's table.
    nodes: HashMap<PeerId, Node<N>, RandomState>,
    reachable_count: usize,
    /// An edge out of a reached node was removed: only a full traversal can
    /// tell what is still reached.
    needs_traversal: bool,
    /// The reachable set changed since the last [`Graph::settle`].
    changed: bool,
    generation: u64,
}

impl<N: Default> Graph<N> {
    /// A graph holding only the root.
    pub fn new(root: PeerId, now: Duration) -> Self {
        let mut nodes = HashMap::with_hasher(RandomState::default());
        let mut node = Node::new(now);
        node.reachable = true;
        nodes.insert(root, node);
        Graph {
            root,
            nodes,
            reachable_count: 1,
            needs_traversal: false,
            changed: false,
            generation: 0,
        }
    }

    /// The root's id.
    pub fn root(&self) -> PeerId {
        self.root
    }

    /// The node for `id`, if known.
    pub fn get(&self, id: &PeerId) -> Option<&Node<N>> {
        self.nodes.get(id)
    }

    /// The payload for `id`, creating an unreachable node if unknown.
    pub fn payload_mut(&mut self, now: Duration, id: PeerId) -> &mut N {
        &mut self
            .nodes
            .entry(id)
            .or_insert_with(|| Node::new(now))
            .payload
    }

    /// The payload for `id` if the node exists.
    pub fn existing_payload_mut(&mut self, id: &PeerId) -> Option<&mut N> {
        self.nodes.get_mut(id).map(|n| &mut n.payload)
    }

    /// Every node with its id.
    pub fn iter(&self) -> impl Iterator<Item = (&PeerId, &Node<N>)> {
        self.nodes.iter()
    }

    /// Number of nodes, reached or not.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: the root is a node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether `id` is reached from the root. Exact only after [`Graph::settle`].
    pub fn is_reachable(&self, id: &PeerId) -> bool {
        self.nodes.get(id).is_some_and(|n| n.reachable)
    }

    /// How many nodes are reached, root included. Exact only after [`Graph::settle`].
    pub fn reachable_count(&self) -> usize {
        self.reachable_count
    }

    /// How many nodes are kept though no path reaches them.
    pub fn unreachable_count(&self) -> usize {
        self.nodes.len() - self.reachable_count
    }

    /// The reached nodes' ids, in no particular order.
    pub fn reachable(&self) -> impl Iterator<Item = &PeerId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.reachable)
            .map(|(id, _)| id)
    }

    /// Replaces `from`'s outgoing edges (creating nodes as needed) and says
    /// what changed. Self loops and duplicates in `edges` are dropped.
    pub fn set_edges(&mut self, now: Duration, from: PeerId, mut edges: Vec<PeerId>) -> EdgeDiff {
        edges.retain(|e| *e != from);
        edges.sort_unstable();
        edges.dedup();
        let node = self.nodes.entry(from).or_insert_with(|| Node::new(now));
        let diff = diff_sorted(&node.out, &edges);
        if diff.is_empty() {
            return diff;
        }
        node.out = edges;
        let from_reached = node.reachable;
        for target in &diff.added {
            self.nodes.entry(*target).or_insert_with(|| Node::new(now));
        }
        if from_reached {
            if diff.removed.iter().any(|t| self.is_reachable(t)) {
                self.needs_traversal = true;
            }
            if !self.needs_traversal {
                for target in &diff.added {
                    self.reach_from(*target);
                }
            }
        }
        diff
    }

    /// Brings reachability up to date and says whether the reached set
    /// changed since the previous call.
    pub fn settle(&mut self, now: Duration) -> bool {
        if self.needs_traversal {
            self.needs_traversal = false;
            self.traverse(now);
        }
        std::mem::take(&mut self.changed)
    }

    /// Removes nodes that have been unreachable since `before` or earlier and
    /// returns how many went. Call after [`Graph::settle`].
    pub fn collect_garbage(&mut self, before: Duration) -> usize {
        let start = self.nodes.len();
        self.nodes
            .retain(|_, n| n.reachable || n.unreachable_since > before);
        start - self.nodes.len()
    }

    /// Marks everything newly reachable through `start` (incremental case).
    fn reach_from(&mut self, start: PeerId) {
        let mut stack = vec![start];
        while let Some(id) = stack.pop() {
            // A target can be missing after garbage collection removed it
            // while its lister was unreachable too; reached now, it exists again.
            let node = self
                .nodes
                .entry(id)
                .or_insert_with(|| Node::new(Duration::ZERO));
            if node.reachable {
                continue;
            }
            node.reachable = true;
            self.reachable_count += 1;
            self.changed = true;
            stack.extend(node.out.iter().copied());
        }
    }

    /// One full traversal from the root, O(N + E).
    fn traverse(&mut self, now: Duration) {
        self.generation += 1;
        let generation = self.generation;
        let mut stack = vec![self.root];
        if let Some(root) = self.nodes.get_mut(&self.root) {
            root.mark = generation;
        }
        while let Some(id) = stack.pop() {
            // Taken out and put back so that targets can be marked while the
            // list is read, without cloning it.
            let out = match self.nodes.get_mut(&id) {
                Some(node) => std::mem::take(&mut node.out),
                None => continue,
            };
            for target in &out {
                // Missing only after garbage collection; see `reach_from`.
                let t = self.nodes.entry(*target).or_insert_with(|| Node::new(now));
                if t.mark != generation {
                    t.mark = generation;
                    stack.push(*target);
                }
            }
            if let Some(node) = self.nodes.get_mut(&id) {
                node.out = out;
            }
        }
        let mut count = 0;
        for node in self.nodes.values_mut() {
            let reached = node.mark == generation;
            if reached != node.reachable {
                self.changed = true;
                node.reachable = reached;
                if !reached {
                    node.unreachable_since = now;
                }
            }
            count += usize::from(reached);
        }
        self.reachable_count = count;
    }
}

impl<N: Default> Node<N> {
    fn new(now: Duration) -> Self {
        Node {
            out: Vec::new(),
            reachable: false,
            unreachable_since: now,
            mark: 0,
            payload: N::default(),
        }
    }
}

/// Added and removed elements between two sorted, deduplicated lists.
fn diff_sorted(old: &[PeerId], new: &[PeerId]) -> EdgeDiff {
    let mut diff = EdgeDiff::default();
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                diff.removed.push(*a);
                i += 1;
            }
            (Some(_), Some(b)) => {
                diff.added.push(*b);
                j += 1;
            }
            (Some(a), None) => {
                diff.removed.push(*a);
                i += 1;
            }
            (None, Some(b)) => {
                diff.added.push(*b);
                j += 1;
            }
            (None, None) => break,
        }
    }
    diff
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
        Graph::new(id(0), Duration::ZERO)
    }

    fn reached(g: &Graph<()>) -> BTreeSet<PeerId> {
        g.reachable().copied().collect()
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
        assert_eq!(g.get(&id(1)).unwrap().out(), &[id(2), id(3)]);
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
    fn a_collected_target_comes_back_when_its_lister_is_reached() {
        let mut g = graph();
        g.set_edges(Duration::ZERO, id(1), vec![id(2)]);
        g.settle(Duration::ZERO);
        // Forget 2 but keep 1 (pretend 1 was refreshed later).
        g.nodes.get_mut(&id(1)).unwrap().unreachable_since = Duration::from_secs(100);
        assert_eq!(g.collect_garbage(Duration::from_secs(50)), 1);
        g.set_edges(Duration::from_secs(101), id(0), vec![id(1)]);
        g.settle(Duration::from_secs(101));
        assert!(g.is_reachable(&id(2)));
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

    proptest! {
        /// Whatever sequence of edge-list replacements, the incrementally
        /// maintained set equals a search from scratch.
        #[test]
        fn incremental_reachability_matches_a_full_search(
            ops in prop::collection::vec((0u8..12, prop::collection::vec(0u8..12, 0..4)), 1..60)
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
    }
}
