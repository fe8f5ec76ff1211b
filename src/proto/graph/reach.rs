//! Reachability: which nodes a path from us reaches, kept up to date as
//! edges change. Adding an edge from a reached node, or an unreached node
//! that reached nodes list starting to speak, walks only what it newly
//! reaches; removing an edge or a standing that counted triggers a whole
//! traversal. Apart from the rest of the graph because this is where its
//! invariants (a node is marked reached exactly when a counting path leads
//! to it; `waiting` counts the reached nodes listing each unreached one) are
//! kept.

use std::time::Duration;

use smallvec::SmallVec;

use super::*;

impl<N: Default> Graph<N> {
    /// Whether the edge `from -> to` (which `from` lists) counts for
    /// reachability.
    pub(super) fn counts(&self, from: Slot, to: Slot) -> bool {
        if !self.both_ends || from == ROOT {
            return true;
        }
        let target = self.node(to);
        if target.has(MUTUAL) {
            self.spills.contains(&target.out, from)
        } else {
            target.has(OPEN)
        }
    }

    /// A [`Standing::Mutual`] node not yet reached: reach it if a reached
    /// node it lists lists it too.
    pub(super) fn reach_if_vouched(&mut self, slot: Slot) {
        if self.needs_traversal || self.node(slot).is_reachable() {
            return;
        }
        let node = self.node(slot);
        let vouched = self.spills.iter(&node.out).any(|s| {
            let source = self.node(s);
            source.is_reachable() && self.spills.contains(&source.out, slot)
        });
        if vouched {
            self.reach_from(slot);
        }
    }

    /// One more reached node lists the unreached node in `slot`.
    pub(super) fn wait(&mut self, slot: Slot) {
        self.waiting.add(slot);
    }

    /// One reached node fewer lists the unreached node in `slot`.
    pub(super) fn unwait(&mut self, slot: Slot) {
        let counted = self.waiting.sub(slot);
        debug_assert!(counted, "a reached node listed {slot}, so it was counted");
    }

    /// Marks everything newly reachable through `start` (incremental case).
    pub(super) fn reach_from(&mut self, start: Slot) {
        // Most walks reach one node or a few (a join reaches each node once,
        // as its edge arrives): no heap block for those.
        let mut stack: SmallVec<[Slot; 16]> = SmallVec::new();
        stack.push(start);
        while let Some(slot) = stack.pop() {
            if self.node(slot).is_reachable() {
                continue;
            }
            self.remember(slot);
            self.waiting.remove(slot);
            // The field, not `node_mut`: the digest is borrowed beside it.
            let node = &mut self.nodes[slot as usize];
            debug_assert!(!node.has(FREE), "a listed slot holds a node");
            node.set(REACHABLE, true);
            if let Some(tracker) = &mut self.digest {
                tracker.reach(self.ids.id(slot), &node.payload, node.has(LENT), true);
            }
            if let Some(reached) = &mut self.reached {
                reached.push(slot);
            }
            self.reachable_count += 1;
            self.changed = true;
            // The list is read in place: only `waiting` changes below, a
            // field apart from the nodes and the spilled lists.
            let mut buf = [0; INLINE];
            for &t in self.spills.slice(&self.nodes[slot as usize].out, &mut buf) {
                if self.counts(slot, t) {
                    stack.push(t);
                } else if !self.node(t).is_reachable() {
                    // Reached later in this walk, it leaves `waiting` again.
                    self.waiting.add(t);
                }
            }
        }
    }

    /// One full traversal from the root, O(N + E).
    pub(super) fn traverse(&mut self, now: Duration) {
        // Before the walk: taking the time may move every node's.
        let since = self.since(now);
        #[cfg(test)]
        {
            self.traversals += 1;
        }
        // The walk's marks, a bit per slot, apart from the nodes: in them
        // they took bits of every node of every view, for a walk that runs
        // only when an edge out of a reached node goes.
        let mut marks = vec![0u64; self.nodes.len().div_ceil(64)];
        let marked =
            |marks: &[u64], slot: Slot| marks[slot as usize / 64] & (1 << (slot % 64)) != 0;
        marks[0] |= 1 << ROOT;
        let mut stack = vec![ROOT];
        while let Some(slot) = stack.pop() {
            // Targets go on the stack, then those already marked come off
            // again: each node is pushed once, and no list is cloned.
            let start = stack.len();
            let mut buf = [0; INLINE];
            stack.extend_from_slice(self.spills.slice(&self.node(slot).out, &mut buf));
            let mut keep = start;
            for i in start..stack.len() {
                let t = stack[i];
                if !marked(&marks, t) && self.counts(slot, t) {
                    marks[t as usize / 64] |= 1 << (t % 64);
                    stack[keep] = t;
                    keep += 1;
                }
            }
            stack.truncate(keep);
        }
        let mut count = 0;
        let mut changed = false;
        let mut remembered = 0;
        self.waiting.clear();
        for (slot, node) in self.nodes.iter_mut().enumerate() {
            if node.has(FREE) {
                continue;
            }
            let reached = marked(&marks, slot as Slot);
            if reached {
                // Who waits is read from the marks, not from the targets'
                // nodes: a bit per slot stays in cache, a view's nodes do
                // not, and this is every edge of the view.
                for t in self.spills.iter(&node.out) {
                    if !marked(&marks, t) {
                        self.waiting.add(t);
                    }
                }
            }
            if reached != node.is_reachable() {
                changed = true;
                node.set(REACHABLE, reached);
                if let Some(tracker) = &mut self.digest {
                    tracker.reach(
                        self.ids.id(slot as Slot),
                        &node.payload,
                        node.has(LENT),
                        reached,
                    );
                }
                if reached {
                    remembered += usize::from(node.has(FORGOTTEN));
                    node.set(FORGOTTEN, false);
                    if let Some(list) = &mut self.reached {
                        list.push(slot as Slot);
                    }
                } else {
                    node.set_since(since);
                }
            }
            count += usize::from(reached);
        }
        self.changed |= changed;
        self.forgotten -= remembered;
        self.reachable_count = count;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::super::tests::{apply, reference_both_ends as reference, standing};
    use super::*;

    fn id(n: u8) -> PeerId {
        PeerId::from_bytes([n; 32])
    }

    fn reached(g: &Graph<()>) -> BTreeSet<PeerId> {
        g.reachable().copied().collect()
    }

    impl<N: Default> Graph<N> {
        /// `waiting` counted again from the reached marks.
        pub(in crate::proto::graph) fn waiting_from_scratch(&self) -> Waiting {
            let mut want = Waiting::default();
            for (slot, node) in self.nodes.iter().enumerate() {
                if node.has(FREE) || !node.is_reachable() {
                    continue;
                }
                for t in self.spills.iter(&node.out) {
                    debug_assert_ne!(t as usize, slot);
                    if !self.node(t).is_reachable() {
                        want.add(t);
                    }
                }
            }
            want
        }
    }

    #[test]
    fn a_listed_node_that_starts_speaking_openly_is_reached_without_a_traversal() {
        let mut g = Graph::<()>::new(id(0));
        g.require_both_ends();
        let t = Duration::ZERO;
        // 1 is ours and open; it lists 2, silent so far, which lists 3 (open).
        g.set_edges(t, id(0), vec![id(1)]);
        g.set_edges(t, id(1), vec![id(2)]);
        g.set_edges(t, id(2), vec![id(3)]);
        let open = |g: &mut Graph<()>, n| {
            let slot = g.intern(t, id(n));
            g.set_standing(slot, Standing::Open);
        };
        open(&mut g, 1);
        open(&mut g, 3);
        g.settle(t);
        assert_eq!(reached(&g), BTreeSet::from([id(0), id(1)]));
        open(&mut g, 2);
        assert!(!g.needs_traversal);
        assert!(g.settle(t));
        assert_eq!(reached(&g), BTreeSet::from([id(0), id(1), id(2), id(3)]));
        assert_eq!(g.traversals, 0, "no full traversal ran");
        assert!(g.waiting.is_empty());
        // Nobody reached lists 4: it speaking reaches nothing.
        g.set_edges(t, id(5), vec![id(4)]);
        open(&mut g, 4);
        assert!(!g.settle(t));
        assert!(!g.is_reachable(&id(4)));
        assert_eq!(g.traversals, 0);
    }

    #[test]
    fn invented_nodes_speaking_batch_by_batch_cost_no_traversal() {
        let mut g = Graph::<()>::new(id(0));
        g.require_both_ends();
        let t = Duration::ZERO;
        let fake = |n: u32| {
            let mut bytes = [0xee; 32];
            bytes[..4].copy_from_slice(&n.to_le_bytes());
            PeerId::from_bytes(bytes)
        };
        // The hostile peer 1 is reached and lists 1,000 ids it made up.
        g.set_edges(t, id(0), vec![id(1)]);
        g.set_edges(t, id(1), (0..1000).map(fake).collect());
        g.settle(t);
        assert_eq!(g.waiting.len(), 1000);
        for batch in 0..10 {
            for n in batch * 100..(batch + 1) * 100 {
                let slot = g.slot(&fake(n)).unwrap();
                g.set_standing(slot, Standing::Open);
            }
            assert!(g.settle(t));
            assert_eq!(g.reachable_count(), 2 + 100 * (batch as usize + 1));
        }
        assert_eq!(g.traversals, 0, "no full traversal ran");
        assert!(g.waiting.is_empty());
    }

    proptest! {
        /// Several changes between settles, in any order: after each settle
        /// the reached set equals a search from scratch, and `waiting`
        /// equals a count from scratch.
        #[test]
        fn reachability_settled_after_several_changes_matches_a_full_search(
            ops in prop::collection::vec(
                (
                    0u8..10,
                    prop::collection::vec(0u8..10, 0..7),
                    prop::option::of(standing()),
                    any::<bool>(),
                ),
                1..80,
            )
        ) {
            let mut g = Graph::<()>::new(id(0));
            g.require_both_ends();
            let mut edges: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
            let mut standings: BTreeMap<u8, Standing> = BTreeMap::new();
            for (step, (from, to, standing, settle)) in ops.into_iter().enumerate() {
                let t = Duration::from_millis(step as u64);
                apply(&mut g, &mut edges, &mut standings, t, (from, to, standing));
                if !g.needs_traversal {
                    prop_assert_eq!(&g.waiting, &g.waiting_from_scratch());
                }
                if settle {
                    g.settle(t);
                    let want = reference(&edges, &standings);
                    prop_assert_eq!(reached(&g), want.clone());
                    prop_assert_eq!(g.reachable_count(), want.len());
                    prop_assert_eq!(&g.waiting, &g.waiting_from_scratch());
                }
            }
        }
    }
}
