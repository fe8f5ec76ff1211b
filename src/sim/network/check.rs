//! Checking every view against the truth: the property the protocol
//! promises once the network is quiet. Apart from the network because the
//! check is the simulator's own cost, not the protocol's: each view is
//! compared by digest, in O(1), and only a wrong one is read entry by entry.

use std::collections::{BTreeSet, HashMap, VecDeque};

use foldhash::fast::FixedState;

use super::{Network, Slot};
use crate::proto::graph::Digest;
use crate::proto::{PeerId, Presence, Raw};

/// Live peers by connected component, with what a right view in each
/// holds: taken once per check, so that each view is then compared with it
/// in O(1) (see [`Network::matches`]).
#[derive(Debug, Clone)]
pub struct Truth {
    /// Index in `parts` by slot; `u32::MAX` for a peer not running.
    part: Vec<u32>,
    parts: Vec<Part>,
}

/// One connected component: its size and the digest of its members with
/// their latest data.
#[derive(Debug, Clone, Copy)]
struct Part {
    size: usize,
    digest: Digest,
}

impl Network {
    /// Checks the property the protocol promises once the network is quiet:
    /// every live peer's online list is exactly its connected component, and
    /// it knows the latest data of every peer in it. Returns what is wrong.
    ///
    /// Each view is compared by digest (O(1) per view, O(N + E) in all);
    /// only a view whose digest differs is read entry by entry, to say
    /// which peers are missing or extra and which data is stale.
    pub fn check_converged(&self) -> Result<(), String> {
        let truth = self.truth();
        let mut problems = Vec::new();
        // Members of the components a wrong view was found in, by part.
        let mut members: HashMap<u32, BTreeSet<PeerId>, FixedState> = HashMap::default();
        for id in &self.live {
            let Some(engine) = self.node(id) else {
                continue;
            };
            if self.matches(&truth, id, true) {
                if cfg!(debug_assertions) {
                    // Tests run this way: a view the digest passes must
                    // pass entry by entry too, or the digest is kept wrong.
                    let mut missed = Vec::new();
                    self.explain(id, engine, &self.component(*id), &mut missed);
                    assert!(missed.is_empty(), "digest passed a wrong view: {missed:?}");
                }
                continue;
            }
            let Some(&slot) = self.slots.get(id) else {
                continue;
            };
            let part = truth.part[slot as usize];
            let component = members.entry(part).or_insert_with(|| self.component(*id));
            let before = problems.len();
            self.explain(id, engine, component, &mut problems);
            if problems.len() == before {
                // Only a digest kept wrong can get here: say so rather
                // than pass a view the digest calls wrong.
                debug_assert!(false, "digest failed a right view");
                problems.push(format!(
                    "{}: view digest {:?} differs from the truth's {:?}, though no entry does",
                    id.short(),
                    engine.digest(),
                    truth.parts.get(part as usize).map(|p| p.digest)
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Whether [`Network::check_converged`] would pass, by digest alone:
    /// O(N + E), without saying what is wrong.
    pub fn converged(&self) -> bool {
        let truth = self.truth();
        let converged = self.live.iter().all(|id| self.matches(&truth, id, true));
        if cfg!(debug_assertions) {
            // Tests run this way: the full check reads every view again,
            // and fails loudly if the digests told it wrong either way.
            assert_eq!(converged, self.check_converged().is_ok());
        }
        converged
    }

    /// Says what is wrong with `id`'s view against its `component`, entry
    /// by entry: the online list first, then, if that is right, the data.
    fn explain(
        &self,
        id: &PeerId,
        engine: &Presence<Raw>,
        component: &BTreeSet<PeerId>,
        problems: &mut Vec<String>,
    ) {
        if engine.online_count() != component.len()
            || !component.iter().all(|p| engine.is_online(p))
        {
            let online: BTreeSet<PeerId> = engine.online().into_iter().collect();
            let missing: Vec<String> = component.difference(&online).map(|p| p.short()).collect();
            let extra: Vec<String> = online.difference(component).map(|p| p.short()).collect();
            problems.push(format!(
                "{}: online list wrong, missing {missing:?}, extra {extra:?}",
                id.short()
            ));
            return;
        }
        for peer in component {
            let seen = engine.peer_data_encoded(peer);
            let latest = self
                .peer(peer)
                .and_then(|p| p.latest_data.as_ref())
                .map(|b| &b[..]);
            if seen != latest {
                problems.push(format!(
                    "{} sees data {:?} for {}, latest is {:?}",
                    id.short(),
                    seen,
                    peer.short(),
                    latest
                ));
            }
        }
    }

    /// The live peers' connected components, each with the size and the
    /// digest a right view in it has, in O(N + E).
    pub fn truth(&self) -> Truth {
        let mut part = vec![u32::MAX; self.peers.len()];
        let mut parts = Vec::new();
        let mut queue = VecDeque::new();
        for start in 0..self.peers.len() {
            if part[start] != u32::MAX || self.peers[start].engine.is_none() {
                continue;
            }
            let index = u32::try_from(parts.len()).expect("fewer than 2^32 components");
            let mut here = Part {
                size: 0,
                digest: Digest::default(),
            };
            part[start] = index;
            queue.push_back(start as Slot);
            while let Some(p) = queue.pop_front() {
                let peer = &self.peers[p as usize];
                here.size += 1;
                here.digest.add(&peer.id, peer.weight);
                for &q in &peer.neighbours {
                    if part[q as usize] == u32::MAX {
                        part[q as usize] = index;
                        queue.push_back(q);
                    }
                }
            }
            parts.push(here);
        }
        Truth { part, parts }
    }

    /// Whether live peer `id`'s online list is exactly its component in
    /// `truth` and, with `data`, it holds every member's latest data; by
    /// digest, so O(1). False for a peer not running.
    pub fn matches(&self, truth: &Truth, id: &PeerId, data: bool) -> bool {
        let Some(slot) = self.live_slot(id) else {
            return false;
        };
        let (Some(engine), Some(part)) = (
            self.peers[slot as usize].engine.as_ref(),
            truth
                .part
                .get(slot as usize)
                .and_then(|&i| truth.parts.get(i as usize)),
        ) else {
            return false;
        };
        let Some(digest) = engine.digest() else {
            return false;
        };
        engine.online_count() == part.size
            && digest.online == part.digest.online
            && (!data || digest.payloads == part.digest.payloads)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::proto::graph::IdTable;
    use crate::sim::{sim_id, Faults, Network};

    /// Thirty peers in a ring, all joined and quiet.
    fn ring() -> Network {
        ring_of(Network::new(7, Faults::default()).without_event_log())
    }

    fn ring_of(mut net: Network) -> Network {
        for i in 0..30 {
            net.start(sim_id(i), Bytes::from(format!("{{\"peer\":{i}}}")), false);
        }
        for i in 0..30 {
            net.connect(sim_id(i), sim_id((i + 1) % 30));
        }
        assert!(net.run_until_quiet(10_000_000));
        net
    }

    #[test]
    fn a_quiet_network_passes_and_each_engine_learned_every_other_once() {
        let net = ring();
        assert_eq!(net.check_converged(), Ok(()));
        assert!(net.converged());
        let truth = net.truth();
        assert!(net.peers().all(|id| net.matches(&truth, id, true)));
        let stats = net.engine_stats();
        assert_eq!(stats.learned, 30 * 29);
        assert!(stats.entries_received >= stats.learned);
    }

    #[test]
    fn sharing_changes_nothing_but_keeps_blocks_and_ids_once_per_node() {
        let shared = ring();
        let apart = ring_of(
            Network::new(7, Faults::default())
                .without_event_log()
                .without_sharing(),
        );
        assert_eq!(shared.stats(), apart.stats());
        assert_eq!(shared.engine_stats(), apart.engine_stats());
        for id in shared.peers() {
            let (a, b) = (shared.node(id).unwrap(), apart.node(id).unwrap());
            assert_eq!(a.view_bytes(), b.view_bytes(), "charged alike");
            assert_eq!(a.digest(), b.digest());
        }
        assert_eq!(shared.check_converged(), Ok(()));
        // Every engine holds the same signed registers of each node: once
        // the blocks of earlier versions are swept, one block per node.
        let interner = shared.interner.as_ref().unwrap();
        interner.sweep();
        assert_eq!(interner.len(), 30);
        assert!(apart.interner.is_none());
        // And each id once: the thirty peers' own, no other.
        assert_eq!(shared.ids.as_ref().map(IdTable::len), Some(30));
        assert!(apart.ids.is_none());
    }

    /// Where outboxes hold more than a packet takes, the order they are
    /// taken in shows in what is sent: a view's slots, in the order it
    /// learnt the ids, are that order whether its ids are shared or not.
    #[test]
    fn sharing_keeps_the_order_news_goes_out_in() {
        let chorded = |net: Network| {
            let mut net = net.without_event_log().with_max_send_bytes(1_500);
            // Started out of order: the table numbers ids as engines start.
            for i in (0..40).rev() {
                net.start(sim_id(i), Bytes::from(format!("{{\"peer\":{i}}}")), false);
            }
            for i in 0..40 {
                net.connect(sim_id(i), sim_id((i + 1) % 40));
                net.connect(sim_id(i), sim_id((i + 7) % 40));
            }
            assert!(net.run_until_quiet(10_000_000));
            net
        };
        let shared = chorded(Network::new(3, Faults::default()));
        let apart = chorded(Network::new(3, Faults::default()).without_sharing());
        assert_eq!(shared.check_converged(), Ok(()));
        assert_eq!(shared.stats(), apart.stats());
        assert_eq!(shared.engine_stats(), apart.engine_stats());
        assert!(
            shared.engine_stats().entries_received > 40 * 39,
            "some copies"
        );
    }

    #[test]
    fn stale_data_is_caught_by_digest_and_explained_entry_by_entry() {
        let mut net = ring();
        // Peer 3's new data reaches nobody: the clock does not move.
        net.set_data(sim_id(3), Bytes::from_static(b"new"));
        let truth = net.truth();
        let wrong: Vec<_> = net
            .peers()
            .filter(|id| !net.matches(&truth, id, true))
            .collect();
        assert_eq!(wrong.len(), 29, "everyone but peer 3 itself");
        assert!(net.peers().all(|id| net.matches(&truth, id, false)));
        assert!(!net.converged());
        let problems = net.check_converged().unwrap_err();
        assert_eq!(problems.lines().count(), 29);
        assert!(problems
            .lines()
            .all(|l| l.contains("sees data") && l.contains(&sim_id(3).short())));
    }

    #[test]
    fn a_crash_nobody_heard_of_makes_every_online_list_wrong() {
        let mut net = ring();
        net.crash(sim_id(10));
        // The ring is now a line: same members but one, everyone's list
        // still shows peer 10 until the grace has passed.
        let truth = net.truth();
        assert!(net.peers().all(|id| !net.matches(&truth, id, false)));
        let problems = net.check_converged().unwrap_err();
        assert_eq!(problems.lines().count(), 29);
        assert!(problems.lines().all(|l| l.contains("online list wrong")));
        assert!(net.run_until_quiet(10_000_000));
        assert_eq!(net.check_converged(), Ok(()));
    }
}
