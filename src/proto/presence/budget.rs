//! Budgets: how many bytes the view may hold, which direct peer each node
//! is charged to, who makes room when the view is full, and how much of our
//! pacing each direct peer's news may take ahead of everyone else's.
//!
//! Any peer that knows the topic can invent nodes (with keys of their own,
//! or unsigned as a JavaScript origin's) and give them large data. Without
//! a byte budget one such peer grew a victim to 939 MB; with a node count
//! alone, a full view refused every message, a new honest peer's included.
//! Here every node is charged to the direct peer whose news first brought
//! it, each direct peer's share is the budget divided among them, and when
//! room is needed it is made by evicting from what nobody is charged for
//! and from the peers over their share, what only one neighbour vouches for
//! first: a new direct peer and its view always get in, and what an
//! attacker brought is what goes.

use std::collections::BTreeMap;
use std::time::Duration;

use super::record::Record;
use super::Presence;
use crate::proto::data::DataCodec;
use crate::proto::graph::{Graph, Node, Slot, Standing, ROOT, TAG_BITS};
use crate::proto::outbox::Lane;
use crate::proto::PeerId;

/// What one node costs besides its heap blocks, by the budget's measure:
/// the graph's node and record (24 bytes), its id and place in the index
/// (about 38) and its bits in the outboxes, rounded up (kept at what it was
/// when node and record were 72 bytes each, so budgets did not move; the
/// margin also covers a list of four or fewer that spills because a slot
/// past 65,534 does not fit inline, about 40 bytes).
pub const NODE_BYTES: usize = 160;

/// Bytes per listed edge once a node lists more than fit inline.
const EDGE_BYTES: usize = 4;

/// Edges a node keeps without a heap block.
const INLINE_EDGES: usize = 4;

/// Room is made for this fraction of the budget more than asked, so that a
/// full view does not count and evict on every message.
const SLACK: usize = 16;

/// Rounds of eviction before a message is refused: evicted nodes that a
/// kept node lists stay (empty) until their listers go.
const EVICTION_ROUNDS: usize = 4;

/// The budget's measure of one node: [`NODE_BYTES`], its data and
/// signatures on the heap, and its edges past the inline ones.
fn node_bytes(graph: &Graph<Record>, node: &Node<Record>) -> usize {
    let edges = graph.targets(node).len();
    let edge_heap = if edges > INLINE_EDGES {
        edges * EDGE_BYTES
    } else {
        0
    };
    NODE_BYTES + node.payload.heap_bytes() + edge_heap
}

/// An eviction candidate, in the order candidates go: class (0 for nobody,
/// 1 for over its share), reached, vouched for twice, signed, its
/// bytes (more first), its slot.
type Candidate = (u8, bool, bool, bool, std::cmp::Reverse<usize>, Slot);

/// Our side of one direct peer's share: its number (what the nodes it
/// brought are charged to) and its credit of express news.
#[derive(Debug, Default)]
pub(super) struct Share {
    /// 0 until it first brings news.
    number: u16,
    /// Bytes of packets whose news may still go express.
    credit: u64,
    /// When the credit was last topped up; `None`: never (it starts full).
    credit_at: Option<Duration>,
}

/// What the view holds, as counted, per direct peer charged.
#[derive(Debug, Clone, Copy, Default)]
struct Charge {
    bytes: usize,
    nodes: usize,
}

/// Who a node is charged to: the number of the direct peer whose news first
/// brought it (0: none), and whether a second one brought news of it too.
/// Kept in the graph's tag of the node ([`Node::tag`]), not in its record:
/// it is this view's alone, and there it costs no byte of the node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct ChargedTo(u32);

/// [`ChargedTo`]'s bit beside the peer's number.
const VOUCHED_TWICE: u32 = 1 << 16;
const _: () = assert!(VOUCHED_TWICE < 1 << TAG_BITS, "a charge fits the tag");

impl ChargedTo {
    /// What `node`'s tag says.
    pub fn of<N>(node: &Node<N>) -> Self {
        ChargedTo(node.tag())
    }

    /// The number of the direct peer the node is charged to (0: none).
    pub fn via(self) -> u16 {
        (self.0 & 0xffff) as u16
    }

    /// Whether news of the node came from more than one direct peer.
    pub fn vouched_twice(self) -> bool {
        self.0 & VOUCHED_TWICE != 0
    }

    /// News of the node came from direct peer `number`: the first one (or
    /// the first after the one it was charged to left, `live` false) is
    /// charged for it; another one vouches for it too.
    pub fn vouch(self, number: u16, live: impl Fn(u16) -> bool) -> Self {
        let via = self.via();
        if via == number {
            self
        } else if via == 0 || !live(via) {
            ChargedTo((self.0 & VOUCHED_TWICE) | u32::from(number))
        } else {
            ChargedTo(self.0 | VOUCHED_TWICE)
        }
    }
}

/// The view's accounting: the nodes' heap bytes as last counted plus the
/// size of every packet admitted since (more than what it can add), so the
/// estimate never falls below the truth; the nodes themselves are counted
/// exactly by the graph.
#[derive(Debug)]
pub(super) struct Budget {
    max_bytes: usize,
    /// Heap bytes at the last count plus every admitted packet's size since.
    heap: usize,
    /// Per direct peer's number (0: nobody), as of the last count.
    charges: BTreeMap<u16, Charge>,
    /// The last number handed to a direct peer.
    last_number: u16,
    /// Whether the news in the packet being taken in goes express: its
    /// sender was within its share of our pacing.
    pub express: bool,
    /// Nodes evicted so far.
    evicted: u64,
}

impl Budget {
    /// A budget of `max_bytes` for a view holding only our own node.
    pub fn new(max_bytes: usize) -> Self {
        Budget {
            max_bytes,
            heap: 0,
            charges: BTreeMap::new(),
            last_number: 0,
            express: true,
            evicted: 0,
        }
    }
}

impl<C: DataCodec> Presence<C> {
    /// The bytes the view holds by the budget's measure (see
    /// [`Config::max_view_bytes`](crate::proto::Config::max_view_bytes)),
    /// counted now: one pass over the view.
    pub fn view_bytes(&self) -> usize {
        self.graph
            .iter()
            .map(|(_, n)| node_bytes(&self.graph, n))
            .sum()
    }

    /// How many nodes were evicted to make room in a full view.
    pub fn evicted(&self) -> u64 {
        self.budget.evicted
    }

    /// Whether adding `new_nodes` nodes and `bytes` bytes keeps the view
    /// within both bounds, by the estimate.
    fn fits(&self, new_nodes: usize, bytes: usize) -> bool {
        let nodes = self.graph.len() + new_nodes;
        nodes <= self.max_known_peers
            && self.budget.heap + bytes + nodes * NODE_BYTES <= self.budget.max_bytes
    }

    /// Whether the view can take a packet of `bytes` from direct peer
    /// `from` that adds at most `new_nodes` nodes (`exact`: exactly that
    /// many, and room is made when it must be).
    pub(super) fn admit(
        &mut self,
        from: PeerId,
        new_nodes: usize,
        bytes: usize,
        exact: bool,
    ) -> bool {
        if !self.fits(new_nodes, bytes) && (!exact || !self.make_room(from, new_nodes, bytes)) {
            return false;
        }
        self.budget.heap += bytes;
        true
    }

    /// Makes room for `new_nodes` and `bytes` from `from`: unreachable
    /// nodes are forgotten early, then nodes are evicted (see
    /// [`Presence::victims`]). False when there is still no room.
    fn make_room(&mut self, from: PeerId, new_nodes: usize, bytes: usize) -> bool {
        self.sweep_now();
        for _ in 0..EVICTION_ROUNDS {
            if self.fits(new_nodes, bytes) {
                return true;
            }
            let want_bytes = (self.budget.heap
                + bytes
                + (self.graph.len() + new_nodes) * NODE_BYTES
                + self.budget.max_bytes / SLACK)
                .saturating_sub(self.budget.max_bytes);
            let want_nodes = (self.graph.len() + new_nodes + self.max_known_peers / SLACK)
                .saturating_sub(self.max_known_peers);
            let victims = self.victims(from, want_bytes, want_nodes);
            if victims.is_empty() {
                break;
            }
            self.evict(&victims);
            self.sweep_now();
        }
        self.fits(new_nodes, bytes)
    }

    /// Brings reachability up to date, forgets every unreachable node at
    /// once and counts the view again.
    fn sweep_now(&mut self) {
        self.graph.settle(self.now);
        // Those that fell unreachable this very moment too.
        self.graph.collect_garbage(Duration::MAX);
        self.recount();
    }

    /// Counts the view: the estimate becomes exact, per direct peer too.
    pub(super) fn recount(&mut self) {
        let mut charges: BTreeMap<u16, Charge> = BTreeMap::new();
        let mut heap = 0;
        for (_, node) in self.graph.iter() {
            let bytes = node_bytes(&self.graph, node);
            heap += bytes - NODE_BYTES;
            let charge = charges.entry(ChargedTo::of(node).via()).or_default();
            charge.bytes += bytes;
            charge.nodes += 1;
        }
        self.budget.heap = heap;
        self.budget.charges = charges;
    }

    /// The nodes to evict so that about `want_bytes` and `want_nodes` are
    /// freed. Candidates are the nodes charged to nobody and those of
    /// direct peers over their share (`from`'s too: a peer over its share
    /// makes room from its own), never ourselves or a direct peer. Those
    /// of nobody go first; then unreachable before reachable, vouched for
    /// by one neighbour before two, unsigned before signed (a JavaScript
    /// origin's entry costs an attacker nothing), larger before smaller,
    /// then by slot (nodes that arrived together tend to be neighbours, so
    /// their listers go with them). A chosen node that a kept one lists
    /// stays, empty, until that lister goes: more are taken, doubling,
    /// until what would really be freed is enough, or nothing is evicted.
    fn victims(&self, from: PeerId, want_bytes: usize, want_nodes: usize) -> Vec<Slot> {
        let peers = self.links.len().max(1);
        let (share_bytes, share_nodes) =
            (self.budget.max_bytes / peers, self.max_known_peers / peers);
        let load = |number: u16| {
            let charge = self
                .budget
                .charges
                .get(&number)
                .copied()
                .unwrap_or_default();
            (charge.bytes as f64 / share_bytes.max(1) as f64)
                .max(charge.nodes as f64 / share_nodes.max(1) as f64)
        };
        // Those over their share (a peer that left included: what it
        // brought and still reaches us through others is charged to it
        // until someone else brings news of it); if nobody is over (the
        // budget then is full of what a lone peer, or a few, brought), the
        // most loaded one.
        let numbers: Vec<u16> = self
            .budget
            .charges
            .keys()
            .copied()
            .filter(|&n| n != 0)
            .collect();
        let mut over: Vec<u16> = numbers.iter().copied().filter(|&n| load(n) > 1.0).collect();
        if over.is_empty() {
            let from_number = self.links.get(&from).map_or(0, |l| l.share.number);
            let heaviest = numbers
                .iter()
                .copied()
                .chain((from_number != 0).then_some(from_number))
                .max_by(|&a, &b| load(a).total_cmp(&load(b)));
            over.extend(heaviest);
        }
        // 0: charged to nobody; 1: over its share; otherwise kept.
        let class = |number: u16| -> Option<u8> {
            if number == 0 {
                Some(0)
            } else {
                over.contains(&number).then_some(1)
            }
        };
        let direct: Vec<Slot> = self
            .links
            .keys()
            .filter_map(|p| self.graph.slot(p))
            .collect();
        let mut candidates: Vec<Candidate> = Vec::new();
        for slot in self.graph.slots() {
            if slot == ROOT || direct.contains(&slot) {
                continue;
            }
            let Some(node) = self.graph.node_at(slot) else {
                continue;
            };
            let charged = ChargedTo::of(node);
            let Some(c) = class(charged.via()) else {
                continue;
            };
            candidates.push((
                c,
                node.is_reachable(),
                charged.vouched_twice(),
                node.payload.is_signed(),
                std::cmp::Reverse(node_bytes(&self.graph, node)),
                slot,
            ));
        }
        candidates.sort_unstable();
        // Take more by rank until what would really be freed is enough:
        // a chosen node that a kept one lists keeps its slot.
        let mut take = 0;
        let (mut bytes, mut nodes) = (0, 0);
        for &(.., std::cmp::Reverse(cost), _) in &candidates {
            if bytes >= want_bytes && nodes >= want_nodes {
                break;
            }
            take += 1;
            bytes += cost;
            nodes += 1;
        }
        loop {
            let (chosen, list) = self.choose(&candidates, take);
            let (bytes, nodes) = self.freed(&chosen);
            if bytes >= want_bytes && nodes >= want_nodes {
                return list;
            }
            if take >= candidates.len() {
                // Not even all of them would do: evict nothing.
                return Vec::new();
            }
            take = (take * 2).clamp(1, candidates.len());
        }
    }

    /// The first `take` candidates, as a slot map and a list.
    fn choose(&self, candidates: &[Candidate], take: usize) -> (Vec<bool>, Vec<Slot>) {
        let end = self.graph.slots().last().map_or(0, |s| s as usize + 1);
        let mut chosen = vec![false; end];
        let list: Vec<Slot> = candidates[..take].iter().map(|c| c.5).collect();
        for &slot in &list {
            chosen[slot as usize] = true;
        }
        (chosen, list)
    }

    /// Bytes and nodes evicting the `chosen` would free: all of a node
    /// nothing kept lists, only its heap blocks otherwise.
    fn freed(&self, chosen: &[bool]) -> (usize, usize) {
        let mut listed = vec![false; chosen.len()];
        for slot in self.graph.slots() {
            if chosen[slot as usize] {
                continue;
            }
            if let Some(node) = self.graph.node_at(slot) {
                for t in self.graph.targets(node) {
                    listed[t as usize] = true;
                }
            }
        }
        let (mut bytes, mut nodes) = (0, 0);
        for slot in self.graph.slots() {
            if !chosen[slot as usize] {
                continue;
            }
            let Some(node) = self.graph.node_at(slot) else {
                continue;
            };
            if listed[slot as usize] {
                bytes += node_bytes(&self.graph, node) - NODE_BYTES;
            } else {
                bytes += node_bytes(&self.graph, node);
                nodes += 1;
            }
        }
        (bytes, nodes)
    }

    /// Empties the nodes in `slots` (registers, edges, standing) so that
    /// they fall unreachable and the next sweep forgets them. No events
    /// for their edges: they did not change, we stopped holding them.
    fn evict(&mut self, slots: &[Slot]) {
        for &slot in slots {
            if let Some(record) = self.graph.payload_at_mut(slot) {
                *record = Record::default();
            }
            self.graph.set_edges_at(self.now, slot, &[]);
            self.graph.set_standing(slot, Standing::Silent);
            for link in self.links.values_mut() {
                link.outbox.remove(slot);
            }
        }
        self.budget.evicted += slots.len() as u64;
    }

    /// The number `peer`'s share is charged under, handed out on first use
    /// (0 for a peer we have no link to).
    fn number_of(&mut self, peer: PeerId) -> u16 {
        let Some(number) = self.links.get(&peer).map(|l| l.share.number) else {
            return 0;
        };
        if number != 0 {
            return number;
        }
        let mut next = self.budget.last_number;
        loop {
            next = next.wrapping_add(1).max(1);
            if !self.links.values().any(|l| l.share.number == next) {
                break;
            }
        }
        self.budget.last_number = next;
        if let Some(link) = self.links.get_mut(&peer) {
            link.share.number = next;
        }
        next
    }

    /// News of the node in `slot` came from direct peer `from`: charge it
    /// there if nobody live is charged for it yet, or count the vouch.
    pub(super) fn vouch(&mut self, slot: Slot, from: PeerId) {
        let number = self.number_of(from);
        if number == 0 || slot == ROOT {
            return;
        }
        let links = &self.links;
        let live = |n: u16| links.values().any(|l| l.share.number == n);
        if let Some(node) = self.graph.node_at(slot) {
            let charged = ChargedTo::of(node).vouch(number, live);
            self.graph.set_tag(slot, charged.0);
        }
    }

    /// Takes `bytes` of express credit from direct peer `from`'s share of
    /// our pacing: half a batch per gossip window, up to four batches
    /// saved. Says whether the packet's news goes express.
    pub(super) fn take_credit(&mut self, from: PeerId, bytes: usize) -> bool {
        let window = self.gossip_window.as_nanos();
        let Some(link) = self.links.get_mut(&from) else {
            return true;
        };
        if window == 0 {
            return true;
        }
        let per_window = (self.max_send_bytes / 2).max(1) as u128;
        let most = 4 * self.max_send_bytes as u64;
        let share = &mut link.share;
        share.credit = match share.credit_at {
            None => most,
            Some(at) => {
                let earned = self.now.saturating_sub(at).as_nanos() * per_window / window;
                (u128::from(share.credit) + earned).min(u128::from(most)) as u64
            }
        };
        share.credit_at = Some(self.now);
        let bytes = bytes as u64;
        if share.credit >= bytes {
            share.credit -= bytes;
            true
        } else {
            share.credit = 0;
            false
        }
    }

    /// The lane news of `slot` from `from` waits in: express for our own
    /// news, a direct peer's news of itself, and a packet within its
    /// sender's credit; bulk otherwise.
    pub(super) fn lane_for(&self, slot: Slot, from: Option<PeerId>) -> Lane {
        match from {
            Some(peer) if !self.budget.express && self.graph.id_at(slot) != Some(&peer) => {
                Lane::Bulk
            }
            _ => Lane::Express,
        }
    }

    /// After a sweep: memory a larger view left goes back.
    pub(super) fn shrink(&mut self) {
        self.graph.shrink_to_fit();
        self.recount();
        if self.outputs.is_empty() {
            self.outputs.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::proto::presence::Event;
    use crate::proto::wire::{FloodPacket, Kind, Message, Stamp, StateEntry};
    use crate::proto::{Config, Json};

    #[test]
    fn the_first_live_voucher_is_charged_and_a_second_one_counted() {
        let c = ChargedTo::default().vouch(3, |_| true);
        assert_eq!((c.via(), c.vouched_twice()), (3, false));
        assert!(!c.vouch(3, |_| true).vouched_twice());
        let c = c.vouch(5, |_| true);
        assert_eq!((c.via(), c.vouched_twice()), (3, true));
        // Once peer 3 is gone, the next one to bring news is charged; the
        // second vouch still counts.
        let c = c.vouch(u16::MAX, |n| n != 3);
        assert_eq!((c.via(), c.vouched_twice()), (u16::MAX, true));
    }

    fn id(n: u16) -> PeerId {
        let mut bytes = [0x5a; 32];
        bytes[..2].copy_from_slice(&n.to_le_bytes());
        PeerId::from_bytes(bytes)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A view from `from` of its own list (all of `listed` and us) and of
    /// nodes `ids`, each stamped, unsigned, listing `from` and with `size`
    /// bytes of data.
    fn view(from: PeerId, number: u32, listed: &[PeerId], ids: &[PeerId], size: usize) -> Bytes {
        let stamp = Stamp {
            incarnation: 1,
            version: 1,
        };
        let mut m = Message::new(Kind::BootstrapResponse);
        let mut own = listed.to_vec();
        own.push(id(1));
        m.bootstrap.push((
            from,
            StateEntry {
                connected_to: own.into(),
                edges_stamp: Some(stamp),
                ..StateEntry::default()
            },
        ));
        m.bootstrap.extend(ids.iter().map(|n| {
            let entry = StateEntry {
                connected_to: vec![from].into(),
                data: Some(Bytes::from(format!("\"{}\"", "x".repeat(size)))),
                edges_stamp: Some(stamp),
                data_stamp: Some(stamp),
                edges_signature: None,
                data_signature: None,
            };
            (*n, entry)
        }));
        FloodPacket {
            origin: from,
            number,
            ttl: 0,
            data: m.encode(),
        }
        .encode()
    }

    fn refused(p: &mut Presence<Json>) -> usize {
        p.drain_outputs()
            .filter(|o| matches!(o, super::super::Output::Event(Event::ViewFull { .. })))
            .count()
    }

    /// A peer that filled the view pays for a newcomer's room; the
    /// newcomer's nodes and the other peer's stay.
    #[test]
    fn room_comes_from_the_peer_over_its_share() {
        let mut config = Config::new(id(1));
        config.max_view_bytes = 128 << 10;
        let mut p = Presence::new(config, Duration::ZERO).unwrap();
        for peer in [2, 3, 4] {
            p.peer_connected(ms(0), id(peer));
        }
        let honest: Vec<PeerId> = (100..110).map(id).collect();
        p.receive(ms(1), id(2), view(id(2), 1, &honest, &honest, 10));
        let junk: Vec<PeerId> = (1000..1400).map(id).collect();
        for (k, part) in junk.chunks(20).enumerate() {
            p.receive(ms(2), id(3), view(id(3), 10 + k as u32, &junk, part, 200));
        }
        assert!(p.view_bytes() <= 128 << 10);
        assert!(p.evicted() > 0, "the flooder made room from its own");
        refused(&mut p);
        let newcomer: Vec<PeerId> = (200..220).map(id).collect();
        p.receive(ms(3), id(4), view(id(4), 1, &newcomer, &newcomer, 10));
        assert_eq!(refused(&mut p), 0);
        assert!(newcomer.iter().all(|n| p.is_online(n)));
        assert!(honest.iter().all(|n| p.is_online(n)));
        assert!(p.view_bytes() <= 128 << 10);
        assert!(
            junk.iter().any(|n| p.is_online(n)),
            "the flooder keeps a share"
        );
    }

    /// Half a batch per window, four batches saved: a packet past the
    /// credit goes bulk, and the credit comes back with time.
    #[test]
    fn express_credit_refills_with_time_and_is_capped() {
        let mut p = Presence::new(Config::new(id(1)), Duration::ZERO).unwrap();
        p.peer_connected(ms(0), id(2));
        let batch = p.max_send_bytes;
        assert!(p.take_credit(id(2), 4 * batch));
        assert!(!p.take_credit(id(2), 1));
        p.advance_to(ms(10));
        assert!(p.take_credit(id(2), batch / 2));
        assert!(!p.take_credit(id(2), 1));
        p.advance_to(ms(10_000));
        assert!(
            !p.take_credit(id(2), 4 * batch + 1),
            "saved up to four batches"
        );
        // A stranger, and a zero window, take no credit.
        assert!(p.take_credit(id(9), usize::MAX));
        p.gossip_window = Duration::ZERO;
        assert!(p.take_credit(id(2), usize::MAX));
    }
}
