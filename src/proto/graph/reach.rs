//! Reachability: which nodes a path from us reaches, kept up to date as
//! edges change. Adding an edge from a reached node walks only what it newly
//! reaches; removing one triggers a whole traversal. Apart from the rest of
//! the graph because this is where its one invariant (a node is marked
//! reached exactly when a counting path leads to it) is kept.

use std::time::Duration;

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
            target.out.binary_search(&from).is_ok()
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
        let vouched = node.out.iter().any(|&s| {
            let source = self.node(s);
            source.is_reachable() && source.out.binary_search(&slot).is_ok()
        });
        if vouched {
            self.reach_from(slot);
        }
    }

    /// Marks everything newly reachable through `start` (incremental case).
    pub(super) fn reach_from(&mut self, start: Slot) {
        let mut stack = vec![start];
        while let Some(slot) = stack.pop() {
            if self.node(slot).is_reachable() {
                continue;
            }
            self.remember(slot);
            // The field, not `node_mut`: the digest is borrowed beside it.
            let node = &mut self.nodes[slot as usize];
            debug_assert!(!node.has(FREE), "a listed slot holds a node");
            node.set(REACHABLE, true);
            if let Some(tracker) = &mut self.digest {
                tracker.reach(&node.id, &node.payload, node.has(LENT), true);
            }
            self.reachable_count += 1;
            self.changed = true;
            for i in 0..self.node(slot).out.len() {
                let t = self.node(slot).out[i];
                if self.counts(slot, t) {
                    stack.push(t);
                }
            }
        }
    }

    /// One full traversal from the root, O(N + E).
    pub(super) fn traverse(&mut self, now: Duration) {
        let now = nanos(now);
        if self.generation == MAX_GENERATION {
            // A node that no traversal reached since then still holds its
            // old mark, and would pass for reached when that number came
            // round again: clear them all.
            for node in self.nodes.iter_mut() {
                node.set_mark(0);
            }
            self.generation = 0;
        }
        self.generation += 1;
        let generation = self.generation;
        self.node_mut(ROOT).set_mark(generation);
        let mut stack = vec![ROOT];
        while let Some(slot) = stack.pop() {
            // Targets go on the stack, then those already marked come off
            // again: each node is pushed once, and no list is cloned.
            let start = stack.len();
            stack.extend_from_slice(&self.node(slot).out);
            let mut keep = start;
            for i in start..stack.len() {
                let t = stack[i];
                let counts = self.counts(slot, t);
                let target = self.node_mut(t);
                if counts && target.mark() != generation {
                    target.set_mark(generation);
                    stack[keep] = t;
                    keep += 1;
                }
            }
            stack.truncate(keep);
        }
        let mut count = 0;
        let mut changed = false;
        let mut remembered = 0;
        for node in self.nodes.iter_mut().filter(|n| !n.has(FREE)) {
            let reached = node.mark() == generation;
            if reached != node.is_reachable() {
                changed = true;
                node.set(REACHABLE, reached);
                if let Some(tracker) = &mut self.digest {
                    tracker.reach(&node.id, &node.payload, node.has(LENT), reached);
                }
                if reached {
                    remembered += usize::from(node.has(FORGOTTEN));
                    node.set(FORGOTTEN, false);
                } else {
                    node.unreachable_since = now;
                }
            }
            count += usize::from(reached);
        }
        self.changed |= changed;
        self.forgotten -= remembered;
        self.reachable_count = count;
    }
}
