//! One node of the graph: its id, edges, flags and traversal mark packed
//! in one word, and the payload the layer above keeps; and what a node says
//! of itself ([`Standing`]).

use std::fmt;
use std::time::Duration;

use super::edge_list::{Edges, Iter};
use crate::proto::PeerId;

/// [`Node::state`] bits: a path from the root reaches the node.
pub(super) const REACHABLE: u32 = 1 << 31;
/// The node was forgotten (edges and payload dropped) but a node we keep
/// still lists it, so its slot stays until that edge goes.
pub(super) const FORGOTTEN: u32 = 1 << 30;
/// The slot holds no node and waits in [`Graph::free`] for reuse.
pub(super) const FREE: u32 = 1 << 29;
/// The payload was handed out mutably since the last settle, and its weight
/// is out of the digest until then (only while a digest is tracked).
pub(super) const LENT: u32 = 1 << 28;
/// [`Standing::Mutual`]: edges into the node count only when it lists
/// their source back.
pub(super) const MUTUAL: u32 = 1 << 27;
/// [`Standing::Open`]: edges into the node count.
pub(super) const OPEN: u32 = 1 << 26;
/// Where the layer above's tag ([`Node::tag`]) starts, below the flags.
const TAG_SHIFT: u32 = 9;
/// Bits of the layer above's tag.
pub const TAG_BITS: u32 = 17;
const TAG: u32 = ((1 << TAG_BITS) - 1) << TAG_SHIFT;
/// The rest of the word: the traversal mark.
pub(super) const MARK: u32 = (1 << TAG_SHIFT) - 1;

/// The last traversal number before they start again from 1. Marks share
/// a word with the flags and the tag, so they wrap every few hundred full
/// traversals (each of which is O(N) already; clearing the marks then is
/// one more).
pub(super) const MAX_GENERATION: u32 = MARK;

/// One node: its outgoing edges, whether we reach it, and what the layer above
/// keeps about it.
///
/// A graph holds one per known peer in every engine, so its size decides how
/// many engines fit in memory: 32 bytes with no payload, none of it padding
/// (edges 16, `unreachable_since` 8, `in_degree` 4, `state` 4). The id is
/// kept beside it, in the graph's [`Ids`](super::ids::Ids).
pub struct Node<N> {
    /// Slots of the targets, sorted by slot, without duplicates or self loops.
    pub(super) out: Edges,
    /// How many nodes list this one: a slot is only reused once nothing
    /// points at it.
    pub(super) in_degree: u32,
    /// The flags [`REACHABLE`], [`FORGOTTEN`], [`FREE`] and the rest, the
    /// layer above's tag, and the generation of the last full traversal
    /// that reached the node ([`MARK`], 0 for none). One word for all: the
    /// tag in a field of its own would pad a node with its payload from 40
    /// bytes to 48.
    pub(super) state: u32,
    /// When the node was last found unreachable (or created unreachable), in
    /// `nanos`: half the size of a `Duration`.
    pub(super) unreachable_since: u64,
    /// What the presence layer stores per node (stamps, data).
    pub payload: N,
}

impl<N> Node<N> {
    /// Whether a path from the root reaches this node.
    pub fn is_reachable(&self) -> bool {
        self.has(REACHABLE)
    }

    /// Whether the node lists any edge.
    pub fn has_edges(&self) -> bool {
        !self.out.is_empty()
    }

    /// The slots the node lists, in slot order (for the view's budget: who
    /// lists whom).
    pub fn targets(&self) -> Iter<'_> {
        self.out.iter()
    }

    /// The [`TAG_BITS`] bits the layer above keeps per node beside its
    /// payload ([`Graph::set_tag`](super::Graph::set_tag)); 0 for a new or
    /// forgotten node.
    pub fn tag(&self) -> u32 {
        (self.state & TAG) >> TAG_SHIFT
    }

    pub(super) fn set_tag(&mut self, tag: u32) {
        debug_assert!(tag < 1 << TAG_BITS, "a tag fits its bits");
        self.state = (self.state & !TAG) | ((tag << TAG_SHIFT) & TAG);
    }

    /// What the node said of itself (see [`Standing`]).
    pub fn standing(&self) -> Standing {
        if self.has(MUTUAL) {
            Standing::Mutual
        } else if self.has(OPEN) {
            Standing::Open
        } else {
            Standing::Silent
        }
    }

    pub(super) fn has(&self, flag: u32) -> bool {
        self.state & flag != 0
    }

    pub(super) fn set(&mut self, flag: u32, on: bool) {
        if on {
            self.state |= flag;
        } else {
            self.state &= !flag;
        }
    }

    pub(super) fn mark(&self) -> u32 {
        self.state & MARK
    }

    pub(super) fn set_mark(&mut self, generation: u32) {
        debug_assert!(generation <= MARK, "a mark never spills into the flags");
        self.state = (self.state & !MARK) | generation;
    }
}

// By hand, so that the flags and the mark show by name, not as one number.
impl<N: fmt::Debug> fmt::Debug for Node<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("out", &self.out)
            .field("in_degree", &self.in_degree)
            .field("reachable", &self.has(REACHABLE))
            .field("forgotten", &self.has(FORGOTTEN))
            .field("free", &self.has(FREE))
            .field("tag", &self.tag())
            .field("mark", &self.mark())
            .field(
                "unreachable_since",
                &Duration::from_nanos(self.unreachable_since),
            )
            .field("payload", &self.payload)
            .finish()
    }
}

/// What a change of one node's edge list added and removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EdgeDiff {
    /// Targets newly listed, in id order.
    pub added: Vec<PeerId>,
    /// Targets no longer listed, in id order.
    pub removed: Vec<PeerId>,
}

impl EdgeDiff {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// What a node has said of itself, which decides whether edges into it
/// count when the graph requires both ends ([`Graph::require_both_ends`](super::Graph::require_both_ends));
/// without that, every edge counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Nothing: it is only the target of others' edges (perhaps an id
    /// somebody made up). Edges into it do not count.
    Silent,
    /// It spoke but does not sign (a JavaScript origin): edges into it
    /// count, as in the original.
    Open,
    /// It signs its edge list: an edge into it counts only when its list
    /// names the source too.
    Mutual,
}

impl<N: Default> Node<N> {
    pub(super) fn new(now: Duration) -> Self {
        Node {
            out: Edges::default(),
            in_degree: 0,
            state: 0,
            unreachable_since: nanos(now),
            payload: N::default(),
        }
    }
}

/// A time as nanoseconds since zero. u64 nanoseconds last 584 years, far
/// beyond any run, so saturating there changes nothing in practice.
pub(super) fn nanos(at: Duration) -> u64 {
    u64::try_from(at.as_nanos()).unwrap_or(u64::MAX)
}
