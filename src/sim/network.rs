//! The simulated network itself.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use foldhash::fast::FixedState;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::proto::graph::{data_weight, IdTable};
use crate::proto::{Config, EngineStats, Event, Interner, PeerId, Presence, Raw};
use in_flight::{FieldTable, StoredPacket};

mod check;
mod delivery;
mod faults;
mod ids;
mod in_flight;
pub use check::Truth;
pub use faults::{Faults, Latency};
pub use ids::{sim_id, sim_index, sim_seed, sim_signer};

/// Counters of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets handed to a receiving engine.
    pub delivered: u64,
    /// Bytes in those packets.
    pub delivered_bytes: u64,
    /// Packets lost by a fault or because their link went away.
    pub lost: u64,
    /// Links killed and redialled by the drop fault.
    pub redials: u64,
    /// Simulated time of the last delivery: when the network last changed
    /// anyone's mind (timers that fire later send nothing).
    pub last_delivery: Duration,
}

/// Something that happens at a simulated time.
#[derive(Debug)]
enum Scheduled {
    /// A packet arrives.
    Deliver(InFlight),
    /// A peer's timer is due.
    Timer(Slot),
}

/// A peer's place in the network's tables: ids are interned so that the
/// millions of packets in flight in a big run carry 4-byte ends, and the
/// per-packet lookups are array indexing instead of 32-byte compares.
type Slot = u32;

#[derive(Debug)]
struct InFlight {
    from: Slot,
    to: Slot,
    /// The link's generation when sent: a packet never crosses into a later
    /// connection of the same pair.
    generation: u64,
    packet: StoredPacket,
}

/// Everything the network keeps about one id, live or not.
#[derive(Debug)]
struct Peer {
    id: PeerId,
    engine: Option<Presence<Raw>>,
    /// Live links, sorted by slot (so by order of first appearance).
    neighbours: Vec<Slot>,
    /// The timer deadline already queued.
    timer: Option<Duration>,
    /// The data the peer set last: what everyone must end up seeing.
    latest_data: Option<Bytes>,
    /// `data_weight` of the peer's id and `latest_data`: its term in the
    /// digest of a right view.
    weight: u64,
    incarnation: u64,
    events: Vec<Event<Bytes>>,
}

/// Peers, links between them and packets in flight, under one seeded clock.
#[derive(Debug)]
pub struct Network {
    rng: ChaCha8Rng,
    now: Duration,
    faults: Faults,
    peers: Vec<Peer>,
    /// Fixed hasher: the map is only looked up, but a fixed seed keeps even
    /// accidental iteration deterministic.
    slots: HashMap<PeerId, Slot, FixedState>,
    /// Live peers' ids in order, for iteration.
    live: BTreeSet<PeerId>,
    /// Live links as (smaller slot, larger slot) -> generation.
    links: HashMap<(Slot, Slot), u64, FixedState>,
    next_generation: u64,
    /// Events by time, first in first out within one time: a calendar of
    /// buckets instead of one heap of millions of entries, whose pops were
    /// a quarter of a big run's time in cache misses.
    queue: BTreeMap<Duration, VecDeque<Scheduled>>,
    in_flight: usize,
    /// The long fields of the packets in flight, each kept once.
    fields: FieldTable,
    record_events: bool,
    announce_window: Duration,
    /// `None` leaves [`Config::gossip_window`] at its default.
    gossip_window: Option<Duration>,
    /// `None` leaves [`Config::max_send_bytes`] at its default.
    max_send_bytes: Option<usize>,
    /// [`Config::have_notices`] for every engine started from now on.
    have_notices: bool,
    /// [`Config::verify_signatures`] for every engine started from now on.
    verify_signatures: bool,
    /// [`Config::interner`] for every engine started from now on: one
    /// copy of each register block for all of them.
    interner: Option<Interner>,
    /// [`Config::shared_ids`] for every engine started from now on: each
    /// id stored once for all of them.
    ids: Option<IdTable>,
    stats: Stats,
    /// Each pair's base latency under `Faults::link_latency`, drawn once.
    link_base: HashMap<(Slot, Slot), Duration, FixedState>,
    /// Links cut by [`Network::partition`], for [`Network::heal`], in the
    /// order they were cut.
    severed: Vec<(Slot, Slot)>,
    /// Counters of the engines stopped or replaced so far.
    retired: EngineStats,
}

impl Network {
    /// An empty network whose randomness all comes from `seed`.
    pub fn new(seed: u64, faults: Faults) -> Self {
        Network {
            rng: ChaCha8Rng::seed_from_u64(seed),
            now: Duration::ZERO,
            faults,
            peers: Vec::new(),
            slots: HashMap::default(),
            live: BTreeSet::new(),
            links: HashMap::default(),
            next_generation: 0,
            queue: BTreeMap::new(),
            in_flight: 0,
            fields: FieldTable::default(),
            record_events: true,
            announce_window: Duration::ZERO,
            gossip_window: None,
            max_send_bytes: None,
            have_notices: true,
            verify_signatures: true,
            interner: Some(Interner::default()),
            ids: Some(IdTable::default()),
            stats: Stats::default(),
            link_base: HashMap::default(),
            severed: Vec::new(),
            retired: EngineStats::default(),
        }
    }

    /// Stops keeping every engine's events (they cost memory in big runs);
    /// engines started from now on do not build the per-peer ones at all
    /// ([`Presence::without_peer_events`]).
    pub fn without_event_log(mut self) -> Self {
        self.record_events = false;
        self
    }

    /// Gives every engine started from now on this
    /// [`Config::announce_window`]: links opened together are announced
    /// together.
    pub fn with_announce_window(mut self, window: Duration) -> Self {
        self.announce_window = window;
        self
    }

    /// Gives every engine started from now on this
    /// [`Config::gossip_window`]: news of others is passed on in batches.
    pub fn with_gossip_window(mut self, window: Duration) -> Self {
        self.gossip_window = Some(window);
        self
    }

    /// Gives every engine started from now on this
    /// [`Config::max_send_bytes`]: with a gossip window, what one link
    /// carries per window, so what a burst of news can put in flight.
    pub fn with_max_send_bytes(mut self, bytes: usize) -> Self {
        self.max_send_bytes = Some(bytes);
        self
    }

    /// Gives every engine started from now on this
    /// [`Config::have_notices`].
    pub fn with_have_notices(mut self, on: bool) -> Self {
        self.have_notices = on;
        self
    }

    /// Engines started from now on do not check signatures
    /// ([`Config::verify_signatures`]): for big runs of honest peers, where
    /// checking would cost most of the CPU and find nothing. They still
    /// sign. Never what a real node does.
    pub fn without_verification(mut self) -> Self {
        self.verify_signatures = false;
        self
    }

    /// Engines started from now on keep their own copy of every register
    /// block and their own index of ids ([`Config::interner`] and
    /// [`Config::shared_ids`] unset), as separate processes would: what
    /// they do and send is the same, only memory and CPU differ.
    pub fn without_sharing(mut self) -> Self {
        self.interner = None;
        self.ids = None;
        self
    }

    /// The id of simulated peer `i` (see [`sim_id`]).
    pub fn id(i: usize) -> PeerId {
        sim_id(i)
    }

    /// Simulated time now.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Live peers' ids, in order.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.live.iter()
    }

    /// The engine of a live peer.
    pub fn node(&self, id: &PeerId) -> Option<&Presence<Raw>> {
        self.peer(id)?.engine.as_ref()
    }

    /// Events a peer's engine has emitted since it (re)started.
    pub fn events(&self, id: &PeerId) -> &[Event<Bytes>] {
        self.peer(id).map_or(&[], |p| p.events.as_slice())
    }

    /// Starts peer `id` with `data`, as a new life: its incarnation is one
    /// more than its previous life's, unless `same_incarnation` (a peer that
    /// restarts without remembering anything, which the protocol must still
    /// handle).
    pub fn start(&mut self, id: PeerId, data: Bytes, same_incarnation: bool) {
        self.start_with(id, data, same_incarnation, |_| {});
    }

    /// [`Network::start`] with a chance to adjust the engine's configuration.
    pub fn start_with(
        &mut self,
        id: PeerId,
        data: Bytes,
        same_incarnation: bool,
        adjust: impl FnOnce(&mut Config<Raw>),
    ) {
        let slot = self.slot_of(id);
        let record_events = self.record_events;
        let now = self.now;
        let peer = &mut self.peers[slot as usize];
        if !same_incarnation {
            peer.incarnation += 1;
        }
        let mut config = Config::with_codec(id, Raw, data.clone());
        config.signer = sim_signer(&id);
        config.verify_signatures = self.verify_signatures;
        config.incarnation = peer.incarnation;
        config.announce_window = self.announce_window;
        if let Some(window) = self.gossip_window {
            config.gossip_window = window;
        }
        if let Some(bytes) = self.max_send_bytes {
            config.max_send_bytes = bytes;
        }
        config.have_notices = self.have_notices;
        config.interner = self.interner.clone();
        config.shared_ids = self.ids.clone();
        if !record_events {
            // Nobody reads the events: spare every engine building an
            // N-long online list on each change.
            config.online_debounce = Duration::from_secs(1);
        }
        adjust(&mut config);
        let mut engine = Presence::new(config, now).expect("simulated data fits the limits");
        if !record_events {
            engine.without_peer_events();
        }
        // What makes checking every view O(1) per view.
        engine.track_digest();
        if let Some(old) = peer.engine.replace(engine) {
            add_stats(&mut self.retired, old.stats());
        }
        peer.events.clear();
        peer.weight = data_weight(&id, Some(&data));
        peer.latest_data = Some(data);
        self.live.insert(id);
    }

    /// The counters of every engine that ran so far, summed (those stopped
    /// included): what the network's engines have done.
    pub fn engine_stats(&self) -> EngineStats {
        let mut sum = self.retired;
        for engine in self.peers.iter().filter_map(|p| p.engine.as_ref()) {
            add_stats(&mut sum, engine.stats());
        }
        sum
    }

    /// Opens a link between two live peers (a no-op if one exists).
    pub fn connect(&mut self, a: PeerId, b: PeerId) {
        let (Some(x), Some(y)) = (self.live_slot(&a), self.live_slot(&b)) else {
            return;
        };
        let key = (x.min(y), x.max(y));
        if x == y || self.links.contains_key(&key) {
            return;
        }
        if let Some(spread) = self.faults.link_latency {
            if !self.link_base.contains_key(&key) {
                let base = spread.sample(&mut self.rng);
                self.link_base.insert(key, base);
            }
        }
        self.next_generation += 1;
        self.links.insert(key, self.next_generation);
        for (p, q) in [(x, y), (y, x)] {
            let list = &mut self.peers[p as usize].neighbours;
            if let Err(at) = list.binary_search(&q) {
                list.insert(at, q);
            }
        }
        let now = self.now;
        self.with_node(x, |n| n.peer_connected(now, b));
        self.with_node(y, |n| n.peer_connected(now, a));
    }

    /// Closes the link between two peers, if any; packets on it are lost.
    pub fn disconnect(&mut self, a: PeerId, b: PeerId) {
        let (Some(&x), Some(&y)) = (self.slots.get(&a), self.slots.get(&b)) else {
            return;
        };
        self.unlink(x, y);
    }

    /// Stops a peer without warning: its links close, its neighbours notice.
    pub fn crash(&mut self, id: PeerId) {
        let Some(&slot) = self.slots.get(&id) else {
            return;
        };
        for other in self.peers[slot as usize].neighbours.clone() {
            self.unlink(slot, other);
        }
        self.stop(slot);
    }

    fn stop(&mut self, slot: Slot) {
        let peer = &mut self.peers[slot as usize];
        if let Some(old) = peer.engine.take() {
            add_stats(&mut self.retired, old.stats());
        }
        peer.latest_data = None;
        peer.timer = None;
        let id = peer.id;
        self.live.remove(&id);
    }

    /// Stops a peer cleanly: it says goodbye on each link before closing it,
    /// so its neighbours announce its departure at once, without the grace
    /// a silent loss gets.
    pub fn leave(&mut self, id: PeerId) {
        let Some(slot) = self.live_slot(&id) else {
            return;
        };
        let now = self.now;
        for other in std::mem::take(&mut self.peers[slot as usize].neighbours) {
            self.links.remove(&(slot.min(other), slot.max(other)));
            self.peers[other as usize].neighbours.retain(|n| *n != slot);
            self.with_node(other, |n| n.peer_left(now, id));
        }
        self.stop(slot);
    }

    /// Cuts every live link between peers that `group` puts in different
    /// groups (as a network split would), remembering them for
    /// [`Network::heal`]. Returns how many links were cut.
    pub fn partition(&mut self, group: impl Fn(&PeerId) -> usize) -> usize {
        let mut cut: Vec<(Slot, Slot)> = self
            .links
            .keys()
            .copied()
            .filter(|&(a, b)| {
                group(&self.peers[a as usize].id) != group(&self.peers[b as usize].id)
            })
            .collect();
        // The map's order is its hasher's; cutting in slot order keeps runs
        // replayable.
        cut.sort_unstable();
        for &(a, b) in &cut {
            self.unlink(a, b);
        }
        self.severed.extend(cut.iter().copied());
        cut.len()
    }

    /// Reopens the links cut by [`Network::partition`] whose two ends are
    /// still live. Returns how many were reopened.
    pub fn heal(&mut self) -> usize {
        let mut reopened = 0;
        for (a, b) in std::mem::take(&mut self.severed) {
            let (a, b) = (self.peers[a as usize].id, self.peers[b as usize].id);
            if self.is_live(&a) && self.is_live(&b) {
                self.connect(a, b);
                reopened += 1;
            }
        }
        reopened
    }

    /// Whether `id` is running.
    pub fn is_live(&self, id: &PeerId) -> bool {
        self.live_slot(id).is_some()
    }

    /// How many peers are running.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// How many links are open.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Whether nothing is left to happen: no packet in flight, no timer due.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// Packets sent and not yet delivered or lost.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The data `id` set last, which every peer in its component must end
    /// up seeing; `None` once it stopped.
    pub fn latest_data(&self, id: &PeerId) -> Option<&Bytes> {
        self.peer(id)?.latest_data.as_ref()
    }

    /// A live peer changes its data.
    pub fn set_data(&mut self, id: PeerId, data: Bytes) {
        let now = self.now;
        if let Some(slot) = self.live_slot(&id) {
            self.peers[slot as usize].weight = data_weight(&id, Some(&data));
            self.peers[slot as usize].latest_data = Some(data.clone());
            self.with_node(slot, |n| {
                n.set_data(now, data).expect("simulated data fits")
            });
        }
    }

    /// The live peers linked to `id`, in order.
    pub fn neighbours(&self, id: &PeerId) -> Vec<PeerId> {
        let mut list: Vec<PeerId> = self
            .peer(id)
            .map(|p| {
                p.neighbours
                    .iter()
                    .map(|s| self.peers[*s as usize].id)
                    .collect()
            })
            .unwrap_or_default();
        list.sort_unstable();
        list
    }

    /// Advances the clock without delivering anything (timers fire on the
    /// next run).
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Live peers that a chain of live links joins to `id`, `id` included.
    pub fn component(&self, id: PeerId) -> BTreeSet<PeerId> {
        let Some(&start) = self.slots.get(&id) else {
            return BTreeSet::from([id]);
        };
        let mut seen = vec![false; self.peers.len()];
        seen[start as usize] = true;
        let mut queue = VecDeque::from([start]);
        let mut out = BTreeSet::from([id]);
        while let Some(p) = queue.pop_front() {
            for &q in &self.peers[p as usize].neighbours {
                if !std::mem::replace(&mut seen[q as usize], true) {
                    out.insert(self.peers[q as usize].id);
                    queue.push_back(q);
                }
            }
        }
        out
    }

    fn peer(&self, id: &PeerId) -> Option<&Peer> {
        self.slots.get(id).map(|s| &self.peers[*s as usize])
    }

    fn live_slot(&self, id: &PeerId) -> Option<Slot> {
        let slot = *self.slots.get(id)?;
        self.peers[slot as usize].engine.is_some().then_some(slot)
    }

    /// The slot of `id`, made on first sight; slots are never reused, so a
    /// packet addressed to a slot always means the same id.
    fn slot_of(&mut self, id: PeerId) -> Slot {
        if let Some(&slot) = self.slots.get(&id) {
            return slot;
        }
        let slot = Slot::try_from(self.peers.len()).expect("fewer than 2^32 simulated peers");
        self.peers.push(Peer {
            id,
            engine: None,
            neighbours: Vec::new(),
            timer: None,
            latest_data: None,
            weight: 0,
            incarnation: 0,
            events: Vec::new(),
        });
        self.slots.insert(id, slot);
        slot
    }

    fn unlink(&mut self, x: Slot, y: Slot) {
        if self.links.remove(&(x.min(y), x.max(y))).is_none() {
            return;
        }
        for (p, q) in [(x, y), (y, x)] {
            self.peers[p as usize].neighbours.retain(|n| *n != q);
        }
        let (a, b) = (self.peers[x as usize].id, self.peers[y as usize].id);
        let now = self.now;
        self.with_node(x, |n| n.peer_disconnected(now, b));
        self.with_node(y, |n| n.peer_disconnected(now, a));
    }
}

fn add_stats(sum: &mut EngineStats, more: EngineStats) {
    sum.learned += more.learned;
    sum.entries_received += more.entries_received;
    sum.entries_news += more.entries_news;
    sum.notices_received += more.notices_received;
}
