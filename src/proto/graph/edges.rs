//! Changing what a node says of itself: its edge list and its standing,
//! and what each change does to who is reached. Apart from the graph's
//! queries because these are the graph's only writers besides forgetting,
//! and each keeps reachability's invariants (see `reach`) as it goes.

use std::time::Duration;

use smallvec::SmallVec;

use super::*;

impl<N: Default> Graph<N> {
    /// Sets what the node in `slot` said of itself, and what that changes
    /// in who is reached. No-op for a free slot.
    pub fn set_standing(&mut self, slot: Slot, standing: Standing) {
        let Some(node) = self.node_at(slot) else {
            return;
        };
        let old = node.standing();
        if old == standing {
            return;
        }
        let (reached, listed) = (node.is_reachable(), node.in_degree > 0);
        let node = self.node_mut(slot);
        node.set(OPEN, standing == Standing::Open);
        node.set(MUTUAL, standing == Standing::Mutual);
        if !self.both_ends || slot == ROOT {
            return;
        }
        let loses = matches!(
            (old, standing),
            (Standing::Open, _) | (Standing::Mutual, Standing::Silent)
        );
        if reached {
            // Edges into it that counted may not any more.
            self.needs_traversal |= loses;
            return;
        }
        match standing {
            // Every edge into it counts now: reached if a reached node
            // lists it. A pending traversal will find that out anyway.
            Standing::Open => {
                if listed && !self.needs_traversal && self.waiting.contains(slot) {
                    self.reach_from(slot);
                }
            }
            Standing::Mutual => self.reach_if_vouched(slot),
            Standing::Silent => {}
        }
    }

    /// Replaces `from`'s outgoing edges (creating nodes as needed) and says
    /// what changed. Self loops and duplicates in `edges` are dropped.
    pub fn set_edges(&mut self, now: Duration, from: PeerId, edges: Vec<PeerId>) -> EdgeDiff {
        let source = self.slot_of(from, now);
        self.set_edges_at(now, source, &edges)
    }

    /// [`Graph::set_edges`] for the node in `source`, a live slot.
    pub fn set_edges_at(&mut self, now: Duration, source: Slot, edges: &[PeerId]) -> EdgeDiff {
        let mut diff = EdgeDiff::default();
        let mut seen = |to, added| {
            if added {
                diff.added.push(to);
            } else {
                diff.removed.push(to);
            }
        };
        self.set_edges_with(now, source, edges, Some(&mut seen));
        diff.added.sort_unstable();
        diff.removed.sort_unstable();
        diff
    }

    /// [`Graph::set_edges_at`] that tells `seen` each target added (`true`)
    /// or removed (`false`), in no particular order, instead of collecting
    /// them. A caller that does not need the targets' ids (nobody listens
    /// for them) passes `None`: the change then allocates nothing for four
    /// edges or fewer, and reads no id (in a simulation each read is a
    /// miss in a view gone cold since its engine's last turn).
    pub fn set_edges_with(
        &mut self,
        now: Duration,
        source: Slot,
        edges: &[PeerId],
        mut seen: Option<&mut dyn FnMut(PeerId, bool)>,
    ) {
        let mut out: SmallVec<[Slot; 8]> = SmallVec::new();
        for e in edges {
            let target = self.slot_of(*e, now);
            if target != source {
                out.push(target);
            }
        }
        out.sort_unstable();
        out.dedup();
        self.remember(source);
        // The field, not `node_mut`: the spilled lists are read beside it.
        let node = &mut self.nodes[source as usize];
        let mut buf = [0; INLINE];
        let (added, removed) = diff_sorted(self.spills.slice(&node.out, &mut buf), &out);
        if added.is_empty() && removed.is_empty() {
            return;
        }
        let old = std::mem::replace(&mut node.out, self.spills.make(&out));
        self.spills.free(old);
        let from_reached = node.is_reachable();
        for &t in &added {
            self.node_mut(t).in_degree += 1;
        }
        if let Some(seen) = seen.as_mut() {
            for &t in &added {
                seen(*self.ids.id(t), true);
            }
            for &t in &removed {
                seen(*self.ids.id(t), false);
            }
        }
        if from_reached {
            if removed.iter().any(|&t| self.node(t).is_reachable()) {
                self.needs_traversal = true;
            }
            if !self.needs_traversal {
                for &t in &added {
                    if self.counts(source, t) {
                        self.reach_from(t);
                    }
                }
                for &t in &added {
                    if !self.node(t).is_reachable() {
                        self.wait(t);
                    }
                }
                // None of them was reached (a traversal would be due), but
                // one may be now, through an added edge: reaching it took
                // it out of `waiting` already.
                for &t in &removed {
                    if !self.node(t).is_reachable() {
                        self.unwait(t);
                    }
                }
            }
        }
        if self.both_ends && source != ROOT && self.node(source).has(MUTUAL) {
            // Its list also says which edges into it count.
            if from_reached {
                let lost = removed.iter().any(|&r| {
                    let n = self.node(r);
                    r != ROOT && n.is_reachable() && self.spills.contains(&n.out, source)
                });
                self.needs_traversal |= lost;
            } else {
                self.reach_if_vouched(source);
            }
        }
        for &t in &removed {
            self.release(t);
        }
    }
}

/// Added and removed elements between two sorted, deduplicated lists
/// (inline for a usual list's few changes).
fn diff_sorted(old: &[Slot], new: &[Slot]) -> (Changed, Changed) {
    let (mut added, mut removed) = (Changed::new(), Changed::new());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                removed.push(*a);
                i += 1;
            }
            (Some(_), Some(b)) => {
                added.push(*b);
                j += 1;
            }
            (Some(a), None) => {
                removed.push(*a);
                i += 1;
            }
            (None, Some(b)) => {
                added.push(*b);
                j += 1;
            }
            (None, None) => break,
        }
    }
    (added, removed)
}

/// Targets one change added or removed.
type Changed = SmallVec<[Slot; 4]>;
