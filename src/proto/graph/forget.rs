//! Forgetting: nodes unreachable long enough go, their slots are freed
//! once nothing lists them and reused, and memory goes back after a sweep.
//! Apart from the graph's structure because it is the one path that
//! destroys what others may still name by slot.

use std::time::Duration;

use super::*;

impl<N: Default> Graph<N> {
    /// Forgets nodes that have been unreachable since `before` or earlier
    /// (their edges and payload go) and returns how many went. A forgotten
    /// node that a kept node still lists keeps its slot, empty, until that
    /// edge goes. Call after [`Graph::settle`].
    pub fn collect_garbage(&mut self, before: Duration) -> usize {
        let before = nanos(before);
        let due: Vec<Slot> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                n.state & (FREE | REACHABLE | FORGOTTEN) == 0 && n.unreachable_since <= before
            })
            .map(|(slot, _)| slot as Slot)
            .collect();
        for &slot in &due {
            self.forgotten += 1;
            let node = self.node_mut(slot);
            node.set(FORGOTTEN, true);
            node.set(OPEN | MUTUAL, false);
            node.set_tag(0);
            node.payload = N::default();
            for t in &std::mem::take(&mut node.out) {
                self.release(t);
            }
        }
        for &slot in &due {
            self.free_if_unlisted(slot);
        }
        due.len()
    }

    /// Gives back memory a larger view left: free slots at the end of the
    /// node array go (free slots below a live one stay, for reuse), and the
    /// index and free list shrink to what they hold. For after a sweep that
    /// forgot many nodes (a flood of invented ones that left).
    pub fn shrink_to_fit(&mut self) {
        let before = self.nodes.len();
        while self.nodes.len() > 1
            && self
                .nodes
                .get(self.nodes.len() - 1)
                .is_some_and(|n| n.has(FREE))
        {
            self.nodes.pop();
        }
        if self.nodes.len() < before {
            let len = self.nodes.len();
            self.free.retain(|&s| (s as usize) < len);
        }
        self.free.shrink_to_fit();
        self.ids.shrink_to(self.nodes.len());
    }

    /// One edge to `slot` fewer; a forgotten node nothing lists goes.
    pub(super) fn release(&mut self, slot: Slot) {
        let node = self.node_mut(slot);
        node.in_degree -= 1;
        if node.has(FORGOTTEN) {
            self.free_if_unlisted(slot);
        }
    }

    pub(super) fn free_if_unlisted(&mut self, slot: Slot) {
        let node = &self.nodes[slot as usize];
        // Already free when another due node's release freed it first.
        if node.has(FREE) {
            return;
        }
        if node.in_degree == 0 && node.has(FORGOTTEN) && slot != ROOT {
            self.ids.remove(slot);
            // Forgotten, so the payload and edges are already dropped.
            debug_assert!(!node.has_edges());
            self.forgotten -= 1;
            self.nodes[slot as usize].state = FREE;
            self.free.push(slot);
        }
    }

    /// The node in `slot` is no longer forgotten.
    pub(super) fn remember(&mut self, slot: Slot) {
        let node = self.node_mut(slot);
        if node.has(FORGOTTEN) {
            node.set(FORGOTTEN, false);
            self.forgotten -= 1;
        }
    }
}
