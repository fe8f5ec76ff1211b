//! The simulated network itself.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use foldhash::fast::RandomState;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::proto::{Config, Destination, Event, Output, PeerId, Presence, Raw};

/// How long a packet takes on a link: a distribution each packet's one-way
/// latency is drawn from, so packets overtake each other, on one link as
/// across links. Every draw is clamped to between 0 and [`Latency::CAP`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    /// Uniform between `min` and `max` (drawn in whole microseconds).
    Uniform {
        /// Least latency.
        min: Duration,
        /// Greatest latency.
        max: Duration,
    },
    /// Normal around `mean`; draws below zero become zero.
    Normal {
        /// Mean latency.
        mean: Duration,
        /// Standard deviation.
        std_dev: Duration,
    },
    /// Log-normal: mostly near `median`, with a long tail of slow packets
    /// (`sigma` 1 makes one packet in twenty over five times the median).
    LogNormal {
        /// Median latency.
        median: Duration,
        /// Standard deviation of the latency's logarithm.
        sigma: f64,
    },
}

impl Latency {
    /// Longest latency any draw can give, so a long tail stays finite.
    pub const CAP: Duration = Duration::from_secs(60);

    /// Every packet takes exactly `latency`.
    pub fn fixed(latency: Duration) -> Self {
        Latency::Uniform {
            min: latency,
            max: latency,
        }
    }

    /// One draw from the distribution.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> Duration {
        match *self {
            // Drawn as before distributions existed, so seeded runs replay.
            Latency::Uniform { min, max } => {
                let (lo, hi) = (min, max.max(min));
                let span = (hi - lo).as_micros() as u64;
                (lo + Duration::from_micros(rng.random_range(0..=span))).min(Self::CAP)
            }
            Latency::Normal { mean, std_dev } => {
                Self::seconds(mean.as_secs_f64() + std_dev.as_secs_f64() * standard_normal(rng))
            }
            Latency::LogNormal { median, sigma } => {
                Self::seconds(median.as_secs_f64() * (sigma * standard_normal(rng)).exp())
            }
        }
    }

    fn seconds(s: f64) -> Duration {
        if s.is_nan() || s <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(s.min(Self::CAP.as_secs_f64()))
        }
    }
}

/// A standard normal draw (Box–Muller), from two uniform draws.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    // 1 - u lies in (0, 1], so its logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// How packets travel: their latency, and what can go wrong with them
/// (probabilities per packet).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Each packet's one-way latency.
    pub latency: Latency,
    /// When set, each pair of peers draws a base latency from this the first
    /// time they connect and keeps it for every later connection (a slow
    /// path stays slow, across redials and restarts); every packet between
    /// them takes that plus its own draw from `latency`.
    pub link_latency: Option<Latency>,
    /// Chance that a delivered packet stays in flight to be delivered again.
    pub duplicate: f64,
    /// Chance that a packet is lost; the link it was on then dies (both sides
    /// see a disconnect, packets still on it are lost too) and is redialled
    /// at once, as a TCP connection that lost data would be.
    pub drop: f64,
}

impl Default for Faults {
    /// 1 to 50 ms of latency, uniform, the same for every link; no
    /// duplication, no loss.
    fn default() -> Self {
        Faults {
            latency: Latency::Uniform {
                min: Duration::from_millis(1),
                max: Duration::from_millis(50),
            },
            link_latency: None,
            duplicate: 0.0,
            drop: 0.0,
        }
    }
}

impl Faults {
    /// Default latency with the given duplication and loss.
    pub fn lossy(duplicate: f64, drop: f64) -> Self {
        Faults {
            duplicate,
            drop,
            ..Faults::default()
        }
    }
}

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
    Timer(PeerId),
}

#[derive(Debug)]
struct InFlight {
    from: PeerId,
    to: PeerId,
    /// The link's generation when sent: a packet never crosses into a later
    /// connection of the same pair.
    generation: u64,
    packet: Bytes,
}

/// Peers, links between them and packets in flight, under one seeded clock.
#[derive(Debug)]
pub struct Network {
    rng: ChaCha8Rng,
    now: Duration,
    faults: Faults,
    nodes: BTreeMap<PeerId, Presence<Raw>>,
    /// Live links as (smaller id, larger id) -> generation. Only looked up,
    /// never iterated, so a hash map keeps runs deterministic.
    links: HashMap<(PeerId, PeerId), u64, RandomState>,
    adjacency: BTreeMap<PeerId, BTreeSet<PeerId>>,
    next_generation: u64,
    /// Event times by (time, sequence number): the sequence keeps runs
    /// deterministic when times tie. The events themselves wait in
    /// `pending`, so the heap moves 24-byte entries only.
    queue: BinaryHeap<Reverse<(Duration, u64)>>,
    pending: HashMap<u64, Scheduled, RandomState>,
    sequence: u64,
    in_flight: usize,
    /// The timer deadline already queued for each peer.
    timers: BTreeMap<PeerId, Duration>,
    /// The data each peer set last: what everyone must end up seeing.
    latest_data: BTreeMap<PeerId, Bytes>,
    incarnations: BTreeMap<PeerId, u64>,
    events: BTreeMap<PeerId, Vec<Event<Bytes>>>,
    record_events: bool,
    stats: Stats,
    /// Each pair's base latency under `Faults::link_latency`, drawn once.
    link_base: HashMap<(PeerId, PeerId), Duration, RandomState>,
    /// Links cut by [`Network::partition`], for [`Network::heal`], in the
    /// order they were cut.
    severed: Vec<(PeerId, PeerId)>,
}

/// The id of simulated peer `i`.
pub fn sim_id(i: usize) -> PeerId {
    let mut bytes = [0x5a; 32];
    bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
    PeerId::from_bytes(bytes)
}

impl Network {
    /// An empty network whose randomness all comes from `seed`.
    pub fn new(seed: u64, faults: Faults) -> Self {
        Network {
            rng: ChaCha8Rng::seed_from_u64(seed),
            now: Duration::ZERO,
            faults,
            nodes: BTreeMap::new(),
            links: HashMap::default(),
            adjacency: BTreeMap::new(),
            next_generation: 0,
            queue: BinaryHeap::new(),
            pending: HashMap::default(),
            sequence: 0,
            in_flight: 0,
            timers: BTreeMap::new(),
            latest_data: BTreeMap::new(),
            incarnations: BTreeMap::new(),
            events: BTreeMap::new(),
            record_events: true,
            stats: Stats::default(),
            link_base: HashMap::default(),
            severed: Vec::new(),
        }
    }

    /// Stops keeping every engine's events (they cost memory in big runs).
    pub fn without_event_log(mut self) -> Self {
        self.record_events = false;
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

    /// Live peers' ids.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.nodes.keys()
    }

    /// The engine of a live peer.
    pub fn node(&self, id: &PeerId) -> Option<&Presence<Raw>> {
        self.nodes.get(id)
    }

    /// Events a peer's engine has emitted since it (re)started.
    pub fn events(&self, id: &PeerId) -> &[Event<Bytes>] {
        self.events.get(id).map_or(&[], Vec::as_slice)
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
        let incarnation = self.incarnations.entry(id).or_insert(0);
        if !same_incarnation {
            *incarnation += 1;
        }
        let mut config = Config::with_codec(id, Raw, data.clone());
        config.incarnation = *incarnation;
        if !self.record_events {
            // Nobody reads the events: spare every engine building an
            // N-long online list on each change.
            config.online_debounce = Duration::from_secs(1);
        }
        adjust(&mut config);
        let engine = Presence::new(config, self.now).expect("simulated data fits the limits");
        self.nodes.insert(id, engine);
        self.events.insert(id, Vec::new());
        self.latest_data.insert(id, data);
    }

    /// Opens a link between two live peers (a no-op if one exists).
    pub fn connect(&mut self, a: PeerId, b: PeerId) {
        let key = (a.min(b), a.max(b));
        if a == b
            || self.links.contains_key(&key)
            || !self.nodes.contains_key(&a)
            || !self.nodes.contains_key(&b)
        {
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
        self.adjacency.entry(a).or_default().insert(b);
        self.adjacency.entry(b).or_default().insert(a);
        let now = self.now;
        self.with_node(a, |n| n.peer_connected(now, b));
        self.with_node(b, |n| n.peer_connected(now, a));
    }

    /// Closes the link between two peers, if any; packets on it are lost.
    pub fn disconnect(&mut self, a: PeerId, b: PeerId) {
        if self.links.remove(&(a.min(b), a.max(b))).is_none() {
            return;
        }
        for (x, y) in [(a, b), (b, a)] {
            if let Some(set) = self.adjacency.get_mut(&x) {
                set.remove(&y);
            }
        }
        let now = self.now;
        self.with_node(a, |n| n.peer_disconnected(now, b));
        self.with_node(b, |n| n.peer_disconnected(now, a));
    }

    /// Stops a peer without warning: its links close, its neighbours notice.
    pub fn crash(&mut self, id: PeerId) {
        for other in self.neighbours(&id) {
            self.disconnect(id, other);
        }
        self.nodes.remove(&id);
        self.latest_data.remove(&id);
    }

    /// Stops a peer cleanly: it says goodbye on each link before closing it,
    /// so its neighbours announce its departure at once, without the grace
    /// a silent loss gets.
    pub fn leave(&mut self, id: PeerId) {
        let now = self.now;
        for other in self.neighbours(&id) {
            self.links.remove(&(id.min(other), id.max(other)));
            for (x, y) in [(id, other), (other, id)] {
                if let Some(set) = self.adjacency.get_mut(&x) {
                    set.remove(&y);
                }
            }
            self.with_node(other, |n| n.peer_left(now, id));
        }
        self.nodes.remove(&id);
        self.latest_data.remove(&id);
    }

    /// Cuts every live link between peers that `group` puts in different
    /// groups (as a network split would), remembering them for
    /// [`Network::heal`]. Returns how many links were cut.
    pub fn partition(&mut self, group: impl Fn(&PeerId) -> usize) -> usize {
        let cut: Vec<(PeerId, PeerId)> = self
            .adjacency
            .iter()
            .flat_map(|(a, set)| set.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a < b && group(a) != group(b))
            .collect();
        for &(a, b) in &cut {
            self.disconnect(a, b);
        }
        self.severed.extend(cut.iter().copied());
        cut.len()
    }

    /// Reopens the links cut by [`Network::partition`] whose two ends are
    /// still live. Returns how many were reopened.
    pub fn heal(&mut self) -> usize {
        let mut reopened = 0;
        for (a, b) in std::mem::take(&mut self.severed) {
            if self.nodes.contains_key(&a) && self.nodes.contains_key(&b) {
                self.connect(a, b);
                reopened += 1;
            }
        }
        reopened
    }

    /// Whether `id` is running.
    pub fn is_live(&self, id: &PeerId) -> bool {
        self.nodes.contains_key(id)
    }

    /// How many peers are running.
    pub fn live_count(&self) -> usize {
        self.nodes.len()
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
        self.latest_data.get(id)
    }

    /// A live peer changes its data.
    pub fn set_data(&mut self, id: PeerId, data: Bytes) {
        let now = self.now;
        if self.nodes.contains_key(&id) {
            self.latest_data.insert(id, data.clone());
            self.with_node(id, |n| n.set_data(now, data).expect("simulated data fits"));
        }
    }

    /// The live peers linked to `id`.
    pub fn neighbours(&self, id: &PeerId) -> Vec<PeerId> {
        self.adjacency
            .get(id)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Delivers packets and fires timers in time order until nothing is in
    /// flight and no timer is pending, or `max_steps` events have happened.
    /// Returns true when the network went quiet.
    pub fn run_until_quiet(&mut self, max_steps: u64) -> bool {
        for _ in 0..max_steps {
            let Some(Reverse((at, seq))) = self.queue.pop() else {
                return true;
            };
            self.now = self.now.max(at);
            match self.pending.remove(&seq) {
                Some(Scheduled::Deliver(packet)) => {
                    self.in_flight -= 1;
                    self.deliver(packet);
                }
                // A timer queued for a deadline that has since moved is stale.
                Some(Scheduled::Timer(id)) if self.timers.get(&id) == Some(&at) => {
                    self.timers.remove(&id);
                    let now = self.now;
                    self.with_node(id, |n| n.tick(now));
                }
                Some(Scheduled::Timer(_)) | None => {}
            }
        }
        self.queue.is_empty()
    }

    /// Runs every event due within `span` from now, then sets the clock to
    /// the end of it. Returns true when no packet is left in flight.
    pub fn run_for(&mut self, span: Duration) -> bool {
        let end = self.now + span;
        while self.queue.peek().is_some_and(|Reverse((at, _))| *at <= end) {
            self.run_until_quiet(1);
        }
        self.now = end;
        self.in_flight == 0
    }

    /// Advances the clock without delivering anything (timers fire on the
    /// next run).
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Checks the property the protocol promises once the network is quiet:
    /// every live peer's online list is exactly its connected component, and
    /// it knows the latest data of every peer in it. Returns what is wrong.
    pub fn check_converged(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        // Each component is walked once, not once per member.
        let mut component_of: BTreeMap<PeerId, usize> = BTreeMap::new();
        let mut components: Vec<BTreeSet<PeerId>> = Vec::new();
        for (id, engine) in &self.nodes {
            let index = match component_of.get(id) {
                Some(&index) => index,
                None => {
                    let members = self.component(*id);
                    for m in &members {
                        component_of.insert(*m, components.len());
                    }
                    components.push(members);
                    components.len() - 1
                }
            };
            let component = &components[index];
            if engine.online_count() != component.len()
                || !component.iter().all(|p| engine.is_online(p))
            {
                let online: BTreeSet<PeerId> = engine.online().into_iter().collect();
                let missing: Vec<String> =
                    component.difference(&online).map(|p| p.short()).collect();
                let extra: Vec<String> = online.difference(component).map(|p| p.short()).collect();
                problems.push(format!(
                    "{}: online list wrong, missing {missing:?}, extra {extra:?}",
                    id.short()
                ));
                continue;
            }
            for peer in component {
                let seen = engine.peer_data(peer);
                if seen != self.latest_data.get(peer) {
                    problems.push(format!(
                        "{} sees data {:?} for {}, latest is {:?}",
                        id.short(),
                        seen,
                        peer.short(),
                        self.latest_data.get(peer)
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Live peers that a chain of live links joins to `id`, `id` included.
    pub fn component(&self, id: PeerId) -> BTreeSet<PeerId> {
        let mut seen = BTreeSet::from([id]);
        let mut queue = VecDeque::from([id]);
        while let Some(p) = queue.pop_front() {
            for q in self.neighbours(&p) {
                if seen.insert(q) {
                    queue.push_back(q);
                }
            }
        }
        seen
    }

    fn schedule(&mut self, at: Duration, what: Scheduled) {
        self.sequence += 1;
        if matches!(what, Scheduled::Deliver(_)) {
            self.in_flight += 1;
        }
        self.pending.insert(self.sequence, what);
        self.queue.push(Reverse((at, self.sequence)));
    }

    fn latency(&mut self, link: &(PeerId, PeerId)) -> Duration {
        let own = self.faults.latency.sample(&mut self.rng);
        match self.link_base.get(link) {
            Some(base) => own + *base,
            None => own,
        }
    }

    fn deliver(&mut self, packet: InFlight) {
        let link = (packet.from.min(packet.to), packet.from.max(packet.to));
        if self.links.get(&link) != Some(&packet.generation) {
            self.stats.lost += 1;
            return;
        }
        if self.faults.drop > 0.0 && self.rng.random_bool(self.faults.drop) {
            self.stats.lost += 1;
            self.stats.redials += 1;
            self.disconnect(packet.from, packet.to);
            self.connect(packet.from, packet.to);
            return;
        }
        self.stats.delivered += 1;
        self.stats.delivered_bytes += packet.packet.len() as u64;
        self.stats.last_delivery = self.now;
        let now = self.now;
        self.with_node(packet.to, |n| n.receive(now, packet.from, packet.packet));
    }

    /// Runs `f` on a live engine, then carries out everything it queued.
    fn with_node(&mut self, id: PeerId, f: impl FnOnce(&mut Presence<Raw>)) {
        let Some(engine) = self.nodes.get_mut(&id) else {
            return;
        };
        f(engine);
        let deadline = engine.poll_timeout();
        let outputs: Vec<Output<Bytes>> = engine.drain_outputs().collect();
        if let Some(at) = deadline {
            if self.timers.get(&id).is_none_or(|queued| at < *queued) {
                self.timers.insert(id, at);
                self.schedule(at, Scheduled::Timer(id));
            }
        }
        for output in outputs {
            match output {
                Output::Send { to, packet } => self.transmit(id, to, packet),
                Output::Event(event) => {
                    if self.record_events {
                        self.events.entry(id).or_default().push(event);
                    }
                }
            }
        }
    }

    fn transmit(&mut self, from: PeerId, to: Destination, packet: Bytes) {
        let targets = match to {
            Destination::Peer(p) => vec![p],
            Destination::Broadcast { except } => self
                .neighbours(&from)
                .into_iter()
                .filter(|p| Some(*p) != except)
                .collect(),
        };
        for target in targets {
            let link = (from.min(target), from.max(target));
            let Some(&generation) = self.links.get(&link) else {
                continue;
            };
            let copies =
                if self.faults.duplicate > 0.0 && self.rng.random_bool(self.faults.duplicate) {
                    2
                } else {
                    1
                };
            for _ in 0..copies {
                let at = self.now + self.latency(&link);
                let packet = InFlight {
                    from,
                    to: target,
                    generation,
                    packet: packet.clone(),
                };
                self.schedule(at, Scheduled::Deliver(packet));
            }
        }
    }
}
