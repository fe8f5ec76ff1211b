//! The network of one mixed run: links, packets in flight, engine timers,
//! and the JavaScript host kept in step with simulated time.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use super::host::{HostError, JsHost, Reply};
use super::{trace, MixedScenario, Side};
use crate::proto::{Config, Destination, Output, PeerId, Presence, Raw};
use crate::sim::interop::{Outcome, Truth, View};
use crate::sim::{sim_id, sim_signer, Latency};

/// Something due at a simulated time.
#[derive(Debug)]
enum Scheduled {
    /// A packet arrives, if its link is still the one it was sent on.
    Deliver {
        from: usize,
        to: usize,
        generation: u64,
        packet: Bytes,
    },
    /// A Rust peer's engine timer.
    Timer(usize),
}

#[derive(Debug)]
struct Node {
    id: PeerId,
    side: Side,
    live: bool,
    engine: Option<Presence<Raw>>,
    /// The engine deadline already queued.
    timer: Option<Duration>,
    latest: Value,
    incarnation: u64,
    /// The peers it was linked to when it last stopped, for a restart.
    links_when_stopped: Vec<usize>,
}

/// The network of one run.
pub(super) struct MixedNetwork {
    nodes: Vec<Node>,
    by_id: BTreeMap<PeerId, usize>,
    host: Option<JsHost>,
    rng: ChaCha8Rng,
    latency: Latency,
    quiet_after: Duration,
    max_events: u64,
    now: Duration,
    /// Where the host's fake clock stands.
    js_clock: Duration,
    js_next_timer: Option<Duration>,
    pub(super) js_errors: Vec<String>,
    /// Open links, (smaller, larger) -> generation.
    links: BTreeMap<(usize, usize), u64>,
    next_generation: u64,
    severed: Vec<(usize, usize)>,
    queue: BTreeMap<Duration, VecDeque<Scheduled>>,
    in_flight: usize,
    pub(super) delivered: u64,
    pub(super) trace: Option<Vec<String>>,
}

fn key(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

fn json_bytes(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("JSON encodes"))
}

impl MixedNetwork {
    pub(super) fn new(scenario: &MixedScenario, host: Option<JsHost>) -> Self {
        let nodes = (0..scenario.n())
            .map(|i| Node {
                id: sim_id(i),
                side: scenario.sides[i],
                live: false,
                engine: None,
                timer: None,
                latest: scenario.data[i].clone(),
                incarnation: 0,
                links_when_stopped: Vec::new(),
            })
            .collect::<Vec<_>>();
        MixedNetwork {
            by_id: nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect(),
            nodes,
            host,
            rng: ChaCha8Rng::seed_from_u64(scenario.seed),
            latency: scenario.latency,
            quiet_after: scenario.quiet_after,
            max_events: scenario.max_events,
            now: Duration::ZERO,
            js_clock: Duration::ZERO,
            js_next_timer: None,
            js_errors: Vec::new(),
            links: BTreeMap::new(),
            next_generation: 0,
            severed: Vec::new(),
            queue: BTreeMap::new(),
            in_flight: 0,
            delivered: 0,
            trace: scenario.trace.then(Vec::new),
        }
    }

    fn log(&mut self, what: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            trace.push(format!(
                "{:>9.3} {}",
                self.now.as_secs_f64() * 1000.0,
                what()
            ));
        }
    }

    fn host(&mut self) -> &mut JsHost {
        self.host
            .as_mut()
            .expect("the host runs whenever a peer is JavaScript")
    }

    /// Brings the host's clock to now (firing its timers due by then), then
    /// sends it one command and carries out its answer.
    fn js(
        &mut self,
        command: impl FnOnce(&mut JsHost) -> Result<Reply, HostError>,
    ) -> Result<Reply, HostError> {
        self.sync_js_clock()?;
        let reply = command(self.host())?;
        self.absorb(&reply);
        Ok(reply)
    }

    /// Moves the host's clock to now, firing its timers due by then.
    fn sync_js_clock(&mut self) -> Result<(), HostError> {
        if self.js_clock < self.now {
            let by = self.now - self.js_clock;
            self.js_clock = self.now;
            let reply = self.host().advance(by)?;
            self.absorb(&reply);
        }
        Ok(())
    }

    fn absorb(&mut self, reply: &Reply) {
        self.js_next_timer = reply.next_timer;
        self.js_errors.extend(reply.errors.iter().cloned());
        for sent in &reply.sent {
            if let Some(&to) = self.by_id.get(&sent.to) {
                self.transmit_one(sent.index, to, sent.packet.clone());
            }
        }
    }

    /// Runs `f` on a live Rust peer's engine, then carries out its outputs.
    fn with_engine(&mut self, i: usize, f: impl FnOnce(&mut Presence<Raw>, Duration)) {
        let now = self.now;
        let node = &mut self.nodes[i];
        let Some(engine) = node.engine.as_mut() else {
            return;
        };
        f(engine, now);
        let deadline = engine.poll_timeout();
        let outputs: Vec<Output<Bytes>> = engine.drain_outputs().collect();
        if let Some(at) = deadline {
            if node.timer.is_none_or(|queued| at < queued) {
                node.timer = Some(at);
                self.schedule(at.max(now), Scheduled::Timer(i));
            }
        }
        for output in outputs {
            if let Output::Send { to, packet } = output {
                let (only, except) = match to {
                    Destination::Peer(p) => (Some(p), None),
                    Destination::Broadcast { except } => (None, except),
                };
                for j in self.neighbours(i) {
                    let id = self.nodes[j].id;
                    if only.is_none_or(|p| p == id) && except != Some(id) {
                        self.transmit_one(i, j, packet.clone());
                    }
                }
            }
        }
    }

    fn neighbours(&self, i: usize) -> Vec<usize> {
        self.links
            .keys()
            .filter_map(|&(a, b)| match (a == i, b == i) {
                (true, _) => Some(b),
                (_, true) => Some(a),
                _ => None,
            })
            .collect()
    }

    fn transmit_one(&mut self, from: usize, to: usize, packet: Bytes) {
        let Some(&generation) = self.links.get(&key(from, to)) else {
            return;
        };
        // Whole microseconds: the host's clock counts in them, and a
        // deadline it cannot reach exactly would never fire.
        let latency = Duration::from_micros(self.latency.sample(&mut self.rng).as_micros() as u64);
        let packet = Scheduled::Deliver {
            from,
            to,
            generation,
            packet,
        };
        self.schedule(self.now + latency, packet);
    }

    fn schedule(&mut self, at: Duration, what: Scheduled) {
        if matches!(what, Scheduled::Deliver { .. }) {
            self.in_flight += 1;
        }
        self.queue.entry(at).or_default().push_back(what);
    }

    pub(super) fn start(&mut self, i: usize) -> Result<(), HostError> {
        let node = &mut self.nodes[i];
        node.live = true;
        node.incarnation += 1;
        node.timer = None;
        let (id, data) = (node.id, node.latest.clone());
        self.log(|| format!("#{i} starts with {data}"));
        let node = &mut self.nodes[i];
        match node.side {
            Side::Rust => {
                let mut config = Config::with_codec(id, Raw, json_bytes(&data));
                config.incarnation = node.incarnation;
                // Our peers sign, as real nodes do; JavaScript ones cannot.
                config.signer = sim_signer(&id);
                let engine = Presence::new(config, self.now).expect("scenario data fits");
                node.engine = Some(engine);
                self.with_engine(i, |_, _| {});
            }
            Side::Js => {
                self.js(|h| h.create(i, id, &data))?;
            }
        }
        Ok(())
    }

    pub(super) fn connect(&mut self, a: usize, b: usize) -> Result<(), HostError> {
        if a == b || !self.nodes[a].live || !self.nodes[b].live {
            return Ok(());
        }
        if self.links.contains_key(&key(a, b)) {
            return Ok(());
        }
        self.next_generation += 1;
        self.links.insert(key(a, b), self.next_generation);
        self.notify(a, b, Link::Up)?;
        self.notify(b, a, Link::Up)
    }

    pub(super) fn disconnect(&mut self, a: usize, b: usize) -> Result<(), HostError> {
        if self.links.remove(&key(a, b)).is_none() {
            return Ok(());
        }
        self.notify(a, b, Link::Down)?;
        self.notify(b, a, Link::Down)
    }

    /// Tells peer `i` what happened to its link to `other`.
    fn notify(&mut self, i: usize, other: usize, what: Link) -> Result<(), HostError> {
        let other_id = self.nodes[other].id;
        self.log(|| format!("#{i} link to #{other} {what:?}"));
        match self.nodes[i].side {
            Side::Rust => self.with_engine(i, |e, now| match what {
                Link::Up => e.peer_connected(now, other_id),
                Link::Down => e.peer_disconnected(now, other_id),
                Link::Bye => e.peer_left(now, other_id),
            }),
            Side::Js => {
                if self.nodes[i].live {
                    match what {
                        Link::Up => self.js(|h| h.connect(i, other_id))?,
                        Link::Down | Link::Bye => self.js(|h| h.disconnect(i, other_id))?,
                    };
                }
            }
        }
        Ok(())
    }

    /// Peer `i` stops: cleanly (`leave`) or not.
    pub(super) fn stop(&mut self, i: usize, leave: bool) -> Result<(), HostError> {
        if !self.nodes[i].live {
            return Ok(());
        }
        let neighbours = self.neighbours(i);
        let bye = leave && self.nodes[i].side == Side::Rust;
        self.log(|| format!("#{i} stops ({})", if leave { "leaves" } else { "crashes" }));
        for &j in &neighbours {
            self.links.remove(&key(i, j));
            self.notify(j, i, if bye { Link::Bye } else { Link::Down })?;
        }
        let node = &mut self.nodes[i];
        node.links_when_stopped = neighbours;
        node.live = false;
        node.engine = None;
        node.timer = None;
        if node.side == Side::Js {
            self.js(|h| h.destroy(i))?;
        }
        Ok(())
    }

    pub(super) fn restart(&mut self, i: usize) -> Result<(), HostError> {
        self.stop(i, false)?;
        self.start(i)?;
        for j in self.nodes[i].links_when_stopped.clone() {
            self.connect(i, j)?;
        }
        Ok(())
    }

    pub(super) fn set_data(&mut self, i: usize, data: Value) -> Result<(), HostError> {
        if !self.nodes[i].live {
            return Ok(());
        }
        self.nodes[i].latest = data.clone();
        self.log(|| format!("#{i} sets data {data}"));
        match self.nodes[i].side {
            Side::Rust => self.with_engine(i, |e, now| {
                e.set_data(now, json_bytes(&data))
                    .expect("scenario data fits");
            }),
            Side::Js => {
                self.js(|h| h.set_data(i, &data))?;
            }
        }
        Ok(())
    }

    pub(super) fn partition(&mut self, group: &[usize]) -> Result<(), HostError> {
        let inside: BTreeSet<usize> = group.iter().copied().collect();
        let cut: Vec<(usize, usize)> = self
            .links
            .keys()
            .copied()
            .filter(|(a, b)| inside.contains(a) != inside.contains(b))
            .collect();
        for &(a, b) in &cut {
            self.disconnect(a, b)?;
        }
        self.severed.extend(cut);
        Ok(())
    }

    pub(super) fn heal(&mut self) -> Result<(), HostError> {
        for (a, b) in std::mem::take(&mut self.severed) {
            self.connect(a, b)?;
        }
        Ok(())
    }

    /// Runs until nothing is in flight and no timer (ours or the host's) is
    /// due within `quiet_after`; false if `max_events` ran out first.
    pub(super) fn settle(&mut self) -> Result<bool, HostError> {
        for _ in 0..self.max_events {
            let next_queued = self.queue.first_key_value().map(|(at, _)| *at);
            let js_first = match (self.js_next_timer, next_queued) {
                (Some(js), Some(queued)) => js <= queued,
                (js, _) => js.is_some(),
            };
            let Some(at) = (if js_first {
                self.js_next_timer
            } else {
                next_queued
            }) else {
                return Ok(true);
            };
            if self.in_flight == 0 && at > self.now + self.quiet_after {
                return Ok(true);
            }
            self.now = self.now.max(at);
            if js_first {
                // Bringing the host's clock to its timer fires it.
                self.sync_js_clock()?;
                continue;
            }
            let mut bucket = self.queue.first_entry().expect("peeked above");
            let what = bucket
                .get_mut()
                .pop_front()
                .expect("buckets are never empty");
            if bucket.get().is_empty() {
                bucket.remove();
            }
            match what {
                Scheduled::Deliver {
                    from,
                    to,
                    generation,
                    packet,
                } => {
                    self.in_flight -= 1;
                    self.deliver(from, to, generation, packet)?;
                }
                Scheduled::Timer(i) => {
                    if self.nodes[i].timer == Some(at) {
                        self.nodes[i].timer = None;
                        self.with_engine(i, |e, now| e.tick(now));
                    }
                }
            }
        }
        Ok(false)
    }

    fn deliver(
        &mut self,
        from: usize,
        to: usize,
        generation: u64,
        packet: Bytes,
    ) -> Result<(), HostError> {
        if self.links.get(&key(from, to)) != Some(&generation) {
            return Ok(());
        }
        self.delivered += 1;
        self.log(|| format!("#{from} -> #{to}: {}", trace::describe(&packet)));
        let from_id = self.nodes[from].id;
        match self.nodes[to].side {
            Side::Rust => self.with_engine(to, |e, now| e.receive(now, from_id, packet)),
            Side::Js => {
                self.js(|h| h.deliver(to, from_id, &packet))?;
            }
        }
        Ok(())
    }

    /// Every running peer's view.
    pub(super) fn views(&mut self) -> Result<Outcome, HostError> {
        let mut outcome = Outcome::new();
        if self.host.is_some() {
            for (index, view) in self.js(|h| h.snapshot())?.views {
                if let Some(node) = self.nodes.get(index).filter(|n| n.live) {
                    outcome.insert(node.id.to_hex(), view);
                }
            }
        }
        for node in &self.nodes {
            let Some(engine) = &node.engine else {
                continue;
            };
            outcome.insert(node.id.to_hex(), View::of(engine));
        }
        Ok(outcome)
    }

    /// Each running peer's component over the open links, and the data
    /// each running peer set last.
    pub(super) fn truth(&self) -> Truth {
        let mut components = BTreeMap::new();
        for (start, node) in self.nodes.iter().enumerate().filter(|(_, n)| n.live) {
            let mut seen = BTreeSet::from([start]);
            let mut stack = vec![start];
            while let Some(p) = stack.pop() {
                for q in self.neighbours(p) {
                    if seen.insert(q) {
                        stack.push(q);
                    }
                }
            }
            let ids = seen
                .into_iter()
                .map(|j| self.nodes[j].id.to_hex())
                .collect();
            components.insert(node.id.to_hex(), ids);
        }
        let latest = self
            .nodes
            .iter()
            .filter(|n| n.live)
            .map(|n| (n.id.to_hex(), n.latest.clone()))
            .collect();
        Truth { components, latest }
    }
}

/// What happened to a link, as one end hears it.
#[derive(Debug, Clone, Copy)]
enum Link {
    Up,
    Down,
    Bye,
}
