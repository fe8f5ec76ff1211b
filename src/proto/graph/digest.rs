//! An order-independent digest of the reached nodes and their payloads,
//! kept up to date as they change, so that a driver holding many views (the
//! simulator) can tell whether one is right in O(1) instead of reading it
//! node by node.
//!
//! A digest is a pair of wrapping sums of 64-bit hashes, one term per
//! reached node: sums do not depend on order and can be taken back, so a
//! node that stops being reached, or whose payload changes, costs two hashes.
//! Two different sets agree only by a hash collision (about 2⁻⁶⁴ for sets
//! that are not chosen to collide): good enough to skip a full comparison,
//! not to decide anything a peer could attack.

use std::fmt;
use std::hash::BuildHasher;

use foldhash::quality::FixedState;

use super::PeerId;

/// Seeds of the two hashes: fixed, so that every view and the driver's own
/// truth weigh a node the same.
const ID_SEED: u64 = 0x6879_7065_722d_7072;
const DATA_SEED: u64 = 0x6573_656e_6365_2d31;

/// What a graph's reached nodes add up to (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Digest {
    /// Sum of [`id_weight`] over the reached nodes: who is online.
    pub online: u64,
    /// Sum of the payload weights over the reached nodes: what each says.
    pub payloads: u64,
}

impl Digest {
    /// Counts one more node, `id` with a payload weighing `payload`: how a
    /// driver builds the digest a right view must have.
    pub fn add(&mut self, id: &PeerId, payload: u64) {
        self.online = self.online.wrapping_add(id_weight(id));
        self.payloads = self.payloads.wrapping_add(payload);
    }

    fn remove(&mut self, id: &PeerId, payload: u64) {
        self.online = self.online.wrapping_sub(id_weight(id));
        self.payloads = self.payloads.wrapping_sub(payload);
    }
}

/// A node's term in [`Digest::online`].
pub fn id_weight(id: &PeerId) -> u64 {
    FixedState::with_seed(ID_SEED).hash_one(id)
}

/// A payload weight made of a node's id and its data (`None`: none known),
/// for layers whose payload is data.
pub fn data_weight(id: &PeerId, data: Option<&[u8]>) -> u64 {
    FixedState::with_seed(DATA_SEED).hash_one((id, data))
}

/// The digest of one graph, with what it needs to keep it up to date.
pub(super) struct Tracker<N> {
    /// A payload's weight; the same function for every view compared.
    pub weigh: fn(&PeerId, &N) -> u64,
    /// Every reached node's id, and the payloads of those not lent (the
    /// graph's `lent` list: their old weight was taken out when lent, if
    /// reached, and their new one goes in when the graph settles).
    pub sum: Digest,
}

impl<N> Tracker<N> {
    pub fn new(weigh: fn(&PeerId, &N) -> u64) -> Self {
        Tracker {
            weigh,
            sum: Digest::default(),
        }
    }

    /// A node became reached (`true`) or stopped being reached; its payload
    /// counts unless it is open.
    pub fn reach(&mut self, id: &PeerId, payload: &N, open: bool, reached: bool) {
        let weight = if open { 0 } else { (self.weigh)(id, payload) };
        if reached {
            self.sum.add(id, weight);
        } else {
            self.sum.remove(id, weight);
        }
    }

    /// Takes a reached node's payload out of the sum while it is lent.
    pub fn lend(&mut self, id: &PeerId, payload: &N, reached: bool) {
        if reached {
            let weight = (self.weigh)(id, payload);
            self.sum.payloads = self.sum.payloads.wrapping_sub(weight);
        }
    }

    /// Puts a lent payload back in the sum if its node is reached.
    pub fn give_back(&mut self, id: &PeerId, payload: &N, reached: bool) {
        if reached {
            let weight = (self.weigh)(id, payload);
            self.sum.payloads = self.sum.payloads.wrapping_add(weight);
        }
    }
}

// By hand: a function pointer's `Debug` would print an address.
impl<N> fmt::Debug for Tracker<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracker").field("sum", &self.sum).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::super::Graph;
    use super::*;

    fn id(n: u8) -> PeerId {
        PeerId::from_bytes([n; 32])
    }

    fn weigh(id: &PeerId, payload: &u8) -> u64 {
        data_weight(id, Some(&[*payload]))
    }

    /// The digest as a full walk over the reached nodes finds it.
    fn recomputed(g: &Graph<u8>) -> Digest {
        let mut d = Digest::default();
        for (id, node) in g.iter().filter(|(_, n)| n.is_reachable()) {
            d.add(id, weigh(id, &node.payload));
        }
        d
    }

    #[test]
    fn nothing_is_tracked_until_asked_and_then_the_root_counts() {
        let mut g: Graph<u8> = Graph::new(id(0));
        assert_eq!(g.digest(), None);
        *g.payload_mut(Duration::ZERO, id(0)) = 7;
        g.track_digest(weigh);
        let mut want = Digest::default();
        want.add(&id(0), weigh(&id(0), &7));
        assert_eq!(g.digest(), Some(want));
        assert_ne!(want.online, 0);
    }

    #[test]
    fn sets_that_differ_by_one_member_or_one_payload_differ() {
        let (mut a, mut b, mut c) = (Digest::default(), Digest::default(), Digest::default());
        for n in 0..3 {
            a.add(&id(n), data_weight(&id(n), Some(b"x")));
            b.add(
                &id(n),
                data_weight(&id(n), Some(if n == 2 { b"y" } else { b"x" })),
            );
        }
        for n in [0, 1, 3] {
            c.add(&id(n), data_weight(&id(n), Some(b"x")));
        }
        assert_eq!(a.online, b.online);
        assert_ne!(a.payloads, b.payloads);
        assert_ne!(a.online, c.online);
        assert_ne!(data_weight(&id(1), None), data_weight(&id(1), Some(b"")));
    }

    proptest! {
        /// Whatever mix of edge changes, payload changes (settled or not),
        /// forgetting and slot reuse, the digest kept as things change is
        /// the one a full walk finds; and every node created counts once.
        #[test]
        fn the_kept_digest_is_the_walked_one(
            ops in prop::collection::vec(
                (0u8..10, prop::collection::vec(0u8..10, 0..4), any::<u8>(), 0u8..4),
                1..80,
            )
        ) {
            let mut g: Graph<u8> = Graph::new(id(0));
            g.track_digest(weigh);
            for (step, (node, edges, payload, what)) in ops.into_iter().enumerate() {
                let t = Duration::from_millis(step as u64);
                match what {
                    0 => {
                        g.set_edges(t, id(node), edges.iter().map(|n| id(*n)).collect());
                    }
                    1 => *g.payload_mut(t, id(node)) = payload,
                    2 => {
                        if let Some(slot) = g.slot(&id(node)) {
                            if let Some(p) = g.payload_at_mut(slot) {
                                *p = payload;
                            }
                        }
                    }
                    _ => {
                        g.settle(t);
                        g.collect_garbage(t);
                    }
                }
                if payload % 3 == 0 {
                    // Asked between changes, before the graph settles: the
                    // lent payloads count as they are now.
                    if !g.needs_traversal {
                        prop_assert_eq!(g.digest(), Some(recomputed(&g)));
                    }
                } else {
                    g.settle(t);
                    prop_assert_eq!(g.digest(), Some(recomputed(&g)));
                }
            }
            g.settle(Duration::from_secs(1));
            prop_assert_eq!(g.digest(), Some(recomputed(&g)));
            prop_assert!(g.created() >= (g.len() - 1) as u64);
        }
    }
}
