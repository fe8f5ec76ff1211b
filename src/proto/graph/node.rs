//! One node of the graph: its edges, how many nodes list it, its flags,
//! the layer above's tag and when it fell unreachable packed in one word,
//! and the payload the layer above keeps; and what a node says of itself
//! ([`Standing`]).

use std::fmt;

use super::edge_list::Edges;
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
/// The rest of the word: when the node fell unreachable, in the graph's
/// coarse time ([`Clock`](super::forget::Clock)).
pub(super) const SINCE: u32 = (1 << TAG_SHIFT) - 1;

/// One node: its outgoing edges, whether we reach it, and what the layer above
/// keeps about it.
///
/// A graph holds one per known peer in every engine, so its size decides how
/// many engines fit in memory: 16 bytes with no payload, none of it padding
/// (edges 8, `in_degree` 4, `state` 4), 24 with the presence layer's
/// one-word record. The id is kept beside it, in the graph's id index.
pub struct Node<N> {
    /// Slots of the targets, sorted by slot, without duplicates or self
    /// loops; a long list is in the graph's [`Spills`](super::edge_list::Spills).
    pub(super) out: Edges,
    /// How many nodes list this one: a slot is only reused once nothing
    /// points at it.
    pub(super) in_degree: u32,
    /// The flags [`REACHABLE`], [`FORGOTTEN`], [`FREE`] and the rest, the
    /// layer above's tag, and when the node was last found unreachable (or
    /// created unreachable) in the graph's coarse time ([`SINCE`]). One
    /// word for all: a time of its own (8 bytes as nanoseconds) made a node
    /// with its payload 32 bytes instead of 24, and the tag in a field of
    /// its own would pad it further.
    pub(super) state: u32,
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

    /// When the node fell unreachable, in the graph's coarse time.
    pub(super) fn since(&self) -> u32 {
        self.state & SINCE
    }

    pub(super) fn set_since(&mut self, since: u32) {
        debug_assert!(since <= SINCE, "a time never spills into the tag");
        self.state = (self.state & !SINCE) | (since & SINCE);
    }
}

// By hand, so that the flags and the time show by name, not as one number.
impl<N: fmt::Debug> fmt::Debug for Node<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("out", &self.out)
            .field("in_degree", &self.in_degree)
            .field("reachable", &self.has(REACHABLE))
            .field("forgotten", &self.has(FORGOTTEN))
            .field("free", &self.has(FREE))
            .field("tag", &self.tag())
            .field("unreachable_since", &self.since())
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
    /// A node unreachable since `since` (the graph's coarse time).
    pub(super) fn new(since: u32) -> Self {
        let mut node = Node {
            out: Edges::default(),
            in_degree: 0,
            state: 0,
            payload: N::default(),
        };
        node.set_since(since);
        node
    }
}
