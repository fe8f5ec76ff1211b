//! Forgetting: nodes unreachable long enough go, their slots are freed
//! once nothing lists them and reused, and memory goes back after a sweep;
//! and the coarse clock that says how long a node has been unreachable.
//! Apart from the graph's structure because it is the one path that
//! destroys what others may still name by slot.

use std::time::Duration;

use smallvec::SmallVec;

use super::node::SINCE;
use super::*;

/// The default [`Graph::set_time_quantum`]: a millisecond.
const DEFAULT_QUANTUM: Duration = Duration::from_millis(1);

/// The graph's coarse time, in which each node keeps when it fell
/// unreachable (in the [`SINCE`] bits of its state word).
///
/// Forgetting asks only whether a node has been unreachable longer than a
/// period (a minute by default), not to the nanosecond, and 8 bytes of
/// time were a fifth of every node of every view. A node keeps its time
/// as quanta after a base, up to [`SINCE`] of them. When time runs past
/// that, the base moves up by half the range and every node's time with
/// it (one pass over the nodes per 256 quanta), and a node unreachable
/// since before the new base counts as unreachable since the base. Times
/// round so that a node is never forgotten early: late by at most a
/// quantum, or more only when asked about times over 256 quanta back.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    /// Nanoseconds per quantum, at least 1.
    quantum: u128,
    /// The quantum a node's time 0 stands for.
    base: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            quantum: DEFAULT_QUANTUM.as_nanos(),
            base: 0,
        }
    }
}

impl Clock {
    /// The quantum `at` falls in, rounded up or down; saturating at the
    /// end of u64.
    fn quanta(&self, at: Duration, up: bool) -> u64 {
        let nanos = at.as_nanos();
        let q = if up {
            nanos.div_ceil(self.quantum)
        } else {
            nanos / self.quantum
        };
        u64::try_from(q).unwrap_or(u64::MAX)
    }

    /// Whether a node unreachable since `since` was so at `before` already.
    fn due(&self, since: u32, before: Duration) -> bool {
        self.base.saturating_add(u64::from(since)) <= self.quanta(before, false)
    }
}

impl<N: Default> Graph<N> {
    /// Sets how coarsely the graph keeps when nodes fell unreachable:
    /// [`Graph::collect_garbage`] forgets a node up to this much later than
    /// asked. The presence layer sets a sixty-fourth of its forgetting
    /// period; default a millisecond. Times kept before are kept as they
    /// were: set it first.
    pub fn set_time_quantum(&mut self, quantum: Duration) {
        self.clock.quantum = quantum.as_nanos().max(1);
        self.clock.base = 0;
    }

    /// Where the coarse time starts, in quanta.
    #[cfg(test)]
    pub(super) fn clock_base(&self) -> u64 {
        self.clock.base
    }

    /// `now` in the graph's coarse time, for a node that falls unreachable
    /// now; moves the base (and every node's time) up first when `now` is
    /// past what a node's bits hold.
    pub(super) fn since(&mut self, now: Duration) -> u32 {
        let at = self.clock.quanta(now, true);
        // Earlier than the base: kept as the base, later than it was, so
        // never forgotten early.
        let Some(ahead) = at.checked_sub(self.clock.base) else {
            return 0;
        };
        if ahead <= u64::from(SINCE) {
            return ahead as u32;
        }
        let base = at - u64::from(SINCE / 2 + 1);
        let shift = u32::try_from(base - self.clock.base).unwrap_or(u32::MAX);
        for node in self.nodes.iter_mut() {
            node.set_since(node.since().saturating_sub(shift));
        }
        self.clock.base = base;
        SINCE / 2 + 1
    }

    /// Forgets nodes that have been unreachable since `before` or earlier
    /// (their edges and payload go) and returns how many went; to the
    /// graph's time quantum ([`Graph::set_time_quantum`]), so a node that
    /// fell unreachable within one quantum of `before` may wait for the
    /// next sweep, and `Duration::MAX` forgets every unreachable node. A
    /// forgotten node that a kept node still lists keeps its slot, empty,
    /// until that edge goes. Call after [`Graph::settle`].
    pub fn collect_garbage(&mut self, before: Duration) -> usize {
        let clock = self.clock;
        let due: Vec<Slot> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                n.state & (FREE | REACHABLE | FORGOTTEN) == 0 && clock.due(n.since(), before)
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
            let out = std::mem::take(&mut node.out);
            let targets: SmallVec<[Slot; 8]> = self.spills.iter(&out).collect();
            self.spills.free(out);
            for t in targets {
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
        self.spills.shrink_to_fit();
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
