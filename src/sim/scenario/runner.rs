//! Running a scenario: the simulated network driven through the events, one
//! at a time, each left to settle while agreement is sampled. Apart from the
//! format and the report, which describe what goes in and what comes out.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::format::{Action, LatencySpec, Sampling, Scenario, Shape};
use super::parse::ScenarioError;
use super::report::{EventReport, Report, Sample};
use crate::proto::PeerId;
use crate::sim::{sim_id, topology, Faults, Network};

/// Where a run is, for progress displays.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// An event is settling.
    Running {
        /// Its position, from 1.
        event: usize,
        /// How many events there are.
        events: usize,
        /// Simulated time now.
        now: Duration,
    },
    /// An event is done.
    Done(&'a EventReport),
}

/// Runs a scenario to its end.
pub fn run(scenario: &Scenario) -> Result<Report, ScenarioError> {
    run_with(scenario, |_| {})
}

/// Runs a scenario, telling `progress` how it goes (after each sample and
/// each event).
pub fn run_with(
    scenario: &Scenario,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<Report, ScenarioError> {
    scenario.validate()?;
    let mut runner = Runner::new(scenario);
    let events = scenario.events.len();
    let mut rows = Vec::with_capacity(events);
    for (i, step) in scenario.events.iter().enumerate() {
        if let Some(at) = step.at_ms {
            let at = Duration::from_millis(at);
            if at > runner.net.now() {
                runner.net.run_for(at - runner.net.now());
            }
        }
        let wall = Instant::now();
        let start = runner.net.now();
        let before = runner.net.stats();
        let engines_before = runner.net.engine_stats();
        runner.checking = Duration::ZERO;
        let detail = runner
            .apply(&step.action)
            .map_err(|message| ScenarioError::Event {
                index: i + 1,
                action: step.action.name(),
                message,
            })?;
        let deadline = scenario
            .events
            .get(i + 1)
            .and_then(|next| next.at_ms)
            .map(|at| Duration::from_millis(at).max(start));
        let mut agreement = Vec::new();
        let outcome = runner.settle(start, deadline, &mut agreement, &mut |now| {
            progress(Progress::Running {
                event: i + 1,
                events,
                now,
            })
        });
        let agreed_after_ms = match outcome {
            Outcome::Settled { last_delivery } => Some(ms(last_delivery.saturating_sub(start))),
            _ => None,
        };
        // Whatever still happens before the next event belongs to this one.
        if let Some(deadline) = deadline {
            if deadline > runner.net.now() {
                runner.net.run_for(deadline - runner.net.now());
            }
        }
        let after = runner.net.stats();
        let engines_after = runner.net.engine_stats();
        let peers = runner.net.live_count();
        let packets = after.delivered - before.delivered;
        let (correct, problems) = match outcome {
            Outcome::Settled { .. } => (Some(true), Vec::new()),
            Outcome::Interrupted => (None, Vec::new()),
            Outcome::Failed(problems) => (
                Some(false),
                problems.lines().take(10).map(str::to_owned).collect(),
            ),
        };
        rows.push(EventReport {
            index: i + 1,
            event: step
                .label
                .clone()
                .unwrap_or_else(|| step.action.name().to_owned()),
            detail,
            at_ms: ms(start),
            peers,
            links: runner.net.link_count(),
            agreed_after_ms,
            packets,
            bytes: after.delivered_bytes - before.delivered_bytes,
            lost: after.lost - before.lost,
            amplification: packets as f64 / peers.saturating_sub(1).max(1) as f64,
            correct,
            problems,
            agreement,
            learned: engines_after.learned - engines_before.learned,
            entries_received: engines_after.entries_received - engines_before.entries_received,
            entries_news: engines_after.entries_news - engines_before.entries_news,
            notices_received: engines_after.notices_received - engines_before.notices_received,
            wall_s: wall.elapsed().as_secs_f64(),
            check_s: runner.checking.as_secs_f64(),
        });
        if let Some(row) = rows.last() {
            progress(Progress::Done(row));
        }
    }
    Ok(Report {
        rows,
        end_ms: ms(runner.net.now()),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// How an event's settling ended.
enum Outcome {
    /// Everyone agreed, nothing in flight.
    Settled { last_delivery: Duration },
    /// The next event came first.
    Interrupted,
    /// The network went quiet, or the time ran out, with views wrong.
    Failed(String),
}

/// Where a peer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NotStarted,
    Live,
    Down,
}

/// The network and what the scenario knows about its peers.
struct Runner {
    net: Network,
    /// Every random choice the scenario makes (not the network's own).
    rng: ChaCha8Rng,
    sampling: Sampling,
    degree: usize,
    ids: Vec<PeerId>,
    index: HashMap<PeerId, usize>,
    state: Vec<State>,
    /// Starts so far, per peer: the "life" in its data.
    lives: Vec<u32>,
    /// Data changes so far, per peer.
    versions: Vec<u32>,
    /// The links that are open when every peer is live and nothing is cut,
    /// in the order they are first opened.
    layout: Vec<(usize, usize)>,
    layout_neighbours: BTreeMap<usize, BTreeSet<usize>>,
    /// Stopped peers, longest stopped first.
    down: VecDeque<usize>,
    /// The group of each peer while the network is partitioned.
    groups: Option<Vec<usize>>,
    /// Wall time spent checking views during the current event.
    checking: Duration,
}

impl Runner {
    fn new(scenario: &Scenario) -> Self {
        let n = scenario.peers;
        let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed);
        let degree = scenario.topology.degree;
        let layout = match scenario.topology.shape {
            Shape::Random => topology::random_connected(n, n / 2, &mut rng),
            Shape::Line => topology::line(n),
            Shape::Ring => topology::ring(n),
            Shape::Star => topology::star(n),
            Shape::Regular => topology::random_regular(n, degree, &mut rng),
            Shape::SmallWorld => topology::small_world(n, degree, 0.1, &mut rng),
            Shape::ScaleFree => topology::scale_free(n, degree, &mut rng),
        };
        let faults = Faults {
            latency: scenario.faults.latency.to_latency(),
            link_latency: scenario.faults.link_latency.map(LatencySpec::to_latency),
            duplicate: scenario.faults.duplicate,
            drop: scenario.faults.drop,
        };
        // Scenarios measure honest networks at scale: every engine
        // checking every other's signatures would be most of the CPU
        // (N^2 checks) and find nothing. Engines still sign.
        let mut net = Network::new(scenario.seed, faults)
            .without_event_log()
            .without_verification()
            .with_announce_window(Duration::from_millis(scenario.announce_window_ms))
            .with_gossip_window(Duration::from_millis(scenario.gossip_window_ms))
            .with_max_send_bytes(scenario.max_send_bytes)
            .with_have_notices(scenario.have_notices);
        if !scenario.share_between_engines {
            net = net.without_sharing();
        }
        let mut runner = Runner {
            net,
            rng,
            sampling: scenario.sampling,
            degree,
            ids: Vec::new(),
            index: HashMap::new(),
            state: Vec::new(),
            lives: Vec::new(),
            versions: Vec::new(),
            layout: Vec::new(),
            layout_neighbours: BTreeMap::new(),
            down: VecDeque::new(),
            groups: None,
            checking: Duration::ZERO,
        };
        for _ in 0..n {
            runner.add_peer();
        }
        for (a, b) in layout {
            runner.add_link(a, b);
        }
        runner
    }

    fn add_peer(&mut self) -> usize {
        let i = self.ids.len();
        let id = sim_id(i);
        self.ids.push(id);
        self.index.insert(id, i);
        self.state.push(State::NotStarted);
        self.lives.push(0);
        self.versions.push(0);
        if let Some(groups) = &mut self.groups {
            // Newcomers during a partition land in the first part.
            groups.push(0);
        }
        i
    }

    fn add_link(&mut self, a: usize, b: usize) {
        if a != b && self.layout_neighbours.entry(a).or_default().insert(b) {
            self.layout_neighbours.entry(b).or_default().insert(a);
            self.layout.push((a, b));
        }
    }

    fn data(&self, i: usize, life: u32) -> Bytes {
        let version = self.versions[i];
        Bytes::from(if version == 0 {
            format!("{{\"peer\":{i},\"life\":{life}}}")
        } else {
            format!("{{\"peer\":{i},\"life\":{life},\"version\":{version}}}")
        })
    }

    fn start(&mut self, i: usize, same_incarnation: bool) {
        let data = self.data(i, self.lives[i]);
        self.net.start(self.ids[i], data, same_incarnation);
        self.lives[i] += 1;
        self.state[i] = State::Live;
    }

    fn same_side(&self, a: usize, b: usize) -> bool {
        self.groups.as_ref().is_none_or(|g| g[a] == g[b])
    }

    /// Opens `i`'s layout links to live peers on its side of any partition.
    fn connect_layout(&mut self, i: usize) {
        let others: Vec<usize> = self
            .layout_neighbours
            .get(&i)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default();
        for j in others {
            if self.state[j] == State::Live && self.same_side(i, j) {
                self.net.connect(self.ids[i], self.ids[j]);
            }
        }
    }

    fn live(&self) -> Vec<usize> {
        (0..self.ids.len())
            .filter(|&i| self.state[i] == State::Live)
            .collect()
    }

    /// `count` distinct random picks from `pool` (all of it if smaller).
    fn pick(&mut self, mut pool: Vec<usize>, count: usize) -> Vec<usize> {
        let mut chosen = Vec::with_capacity(count.min(pool.len()));
        while chosen.len() < count && !pool.is_empty() {
            let k = self.rng.random_range(0..pool.len());
            chosen.push(pool.swap_remove(k));
        }
        chosen
    }

    /// The live peers an action applies to: the one named, or random ones.
    fn targets(&mut self, peer: Option<usize>, count: usize) -> Result<Vec<usize>, String> {
        match peer {
            Some(p) if self.state.get(p) == Some(&State::Live) => Ok(vec![p]),
            Some(p) => Err(format!("peer {p} is not running")),
            None => {
                let live = self.live();
                if live.is_empty() {
                    return Err("no peer is running".into());
                }
                Ok(self.pick(live, count))
            }
        }
    }

    /// Carries out an action; returns what it did, in words.
    fn apply(&mut self, action: &Action) -> Result<String, String> {
        match action {
            Action::JoinAll => {
                let new: Vec<usize> = (0..self.ids.len())
                    .filter(|&i| self.state[i] == State::NotStarted)
                    .collect();
                for &i in &new {
                    self.start(i, false);
                }
                for k in 0..self.layout.len() {
                    let (a, b) = self.layout[k];
                    if self.state[a] == State::Live
                        && self.state[b] == State::Live
                        && self.same_side(a, b)
                    {
                        self.net.connect(self.ids[a], self.ids[b]);
                    }
                }
                Ok(format!("{} peers start", new.len()))
            }
            Action::Join { count, links } => {
                let per_peer = links.unwrap_or(self.degree);
                let first = self.ids.len();
                for _ in 0..*count {
                    let live = self.live();
                    let i = self.add_peer();
                    self.start(i, false);
                    for j in self.pick(live, per_peer) {
                        self.add_link(i, j);
                    }
                    self.connect_layout(i);
                }
                Ok(format!("peers {first} to {} join", self.ids.len() - 1))
            }
            Action::Leave { peer, count } | Action::Crash { peer, count } => {
                let leave = matches!(action, Action::Leave { .. });
                let chosen = self.targets(*peer, *count)?;
                for &i in &chosen {
                    if leave {
                        self.net.leave(self.ids[i]);
                    } else {
                        self.net.crash(self.ids[i]);
                    }
                    self.state[i] = State::Down;
                    self.down.push_back(i);
                }
                Ok(format!("{} {}", action.name(), peers_list(&chosen)))
            }
            Action::Restart {
                peer,
                count,
                same_incarnation,
            } => {
                let chosen = match peer {
                    Some(p) if self.state.get(*p) == Some(&State::Down) => {
                        self.down.retain(|d| d != p);
                        vec![*p]
                    }
                    Some(p) => return Err(format!("peer {p} is not stopped")),
                    None if self.down.is_empty() => return Err("no peer is stopped".into()),
                    None => {
                        let n = (*count).min(self.down.len());
                        self.down.drain(..n).collect()
                    }
                };
                for &i in &chosen {
                    self.start(i, *same_incarnation);
                    self.connect_layout(i);
                }
                Ok(format!(
                    "restart {}{}",
                    peers_list(&chosen),
                    if *same_incarnation {
                        ", same incarnation"
                    } else {
                        ""
                    }
                ))
            }
            Action::SetData { peer, count } => {
                let chosen = self.targets(*peer, *count)?;
                for &i in &chosen {
                    self.versions[i] += 1;
                    // The life in force is one less than the starts so far.
                    let data = self.data(i, self.lives[i].saturating_sub(1));
                    self.net.set_data(self.ids[i], data);
                }
                Ok(format!("set data of {}", peers_list(&chosen)))
            }
            Action::Partition { fraction, groups } => {
                if self.groups.is_some() {
                    return Err("the network is already partitioned (heal it first)".into());
                }
                let mut live = self.live();
                let mut group = vec![0; self.ids.len()];
                let parts = match (fraction, groups) {
                    (Some(f), _) => {
                        live.shuffle(&mut self.rng);
                        let cut = ((live.len() as f64 * f).round() as usize)
                            .clamp(1, live.len().saturating_sub(1).max(1));
                        for &i in &live[..cut.min(live.len())] {
                            group[i] = 1;
                        }
                        2
                    }
                    (None, Some(k)) => {
                        for &i in &live {
                            group[i] = self.rng.random_range(0..*k);
                        }
                        *k
                    }
                    (None, None) => return Err("give either fraction or groups".into()),
                };
                let index = &self.index;
                let cut = self
                    .net
                    .partition(|id| index.get(id).map_or(0, |&i| group[i]));
                let mut sizes = vec![0; parts];
                for &i in &live {
                    sizes[group[i]] += 1;
                }
                self.groups = Some(group);
                let sizes: Vec<String> = sizes.iter().map(usize::to_string).collect();
                Ok(format!(
                    "partition into {} ({} links cut)",
                    sizes.join(" | "),
                    cut
                ))
            }
            Action::Heal => {
                self.groups = None;
                let before = self.net.link_count();
                self.net.heal();
                for k in 0..self.layout.len() {
                    let (a, b) = self.layout[k];
                    if self.state[a] == State::Live && self.state[b] == State::Live {
                        self.net.connect(self.ids[a], self.ids[b]);
                    }
                }
                Ok(format!(
                    "heal ({} links reopened)",
                    self.net.link_count() - before
                ))
            }
        }
    }

    /// Runs the network, sampling agreement, until everyone agrees with
    /// nothing in flight, the next event is due, or it is hopeless.
    fn settle(
        &mut self,
        start: Duration,
        deadline: Option<Duration>,
        samples: &mut Vec<Sample>,
        tick: &mut dyn FnMut(Duration),
    ) -> Outcome {
        let interval = Duration::from_secs_f64(self.sampling.interval_ms / 1000.0);
        let give_up = start + Duration::from_millis(self.sampling.give_up_ms);
        // After a full check fails, the next few samples that look right
        // are not checked in full. The check is O(N + E) now (by digest),
        // but the backoff from when it read every view stays, so that a
        // scenario still reports the rows it always did.
        let (mut skip, mut backoff) = (0u32, 1u32);
        loop {
            let now = self.net.now();
            let checking = Instant::now();
            let (agree, of) = self.agreement();
            self.checking += checking.elapsed();
            if samples.len() < self.sampling.max_samples {
                samples.push(Sample {
                    t_ms: ms(now - start),
                    agreement: if of == 0 {
                        1.0
                    } else {
                        agree as f64 / of as f64
                    },
                });
            }
            let idle = self.net.is_idle();
            if agree == of && (skip == 0 || idle) {
                // Once every view is right, packets still in flight carry
                // only news that is already known (newer always wins), so
                // agreement holds.
                let checking = Instant::now();
                let converged = self.net.converged();
                self.checking += checking.elapsed();
                if converged {
                    let last = self.net.stats().last_delivery.max(start);
                    return Outcome::Settled {
                        last_delivery: last,
                    };
                } else if idle {
                    // Only a final verdict needs to say what is wrong.
                    return Outcome::Failed(self.explain());
                }
                skip = backoff;
                backoff = (backoff * 2).min(32);
            } else if agree == of {
                skip -= 1;
            }
            if idle {
                return Outcome::Failed(self.explain());
            }
            let mut step = interval;
            if let Some(deadline) = deadline {
                if now >= deadline {
                    return Outcome::Interrupted;
                }
                step = step.min(deadline - now);
            }
            if now >= give_up {
                return Outcome::Failed(format!(
                    "not settled {} s after the event",
                    self.sampling.give_up_ms / 1000
                ));
            }
            self.net.run_for(step);
            tick(self.net.now());
        }
    }

    /// What is wrong with the views, entry by entry, for a failed event.
    fn explain(&mut self) -> String {
        let checking = Instant::now();
        let verdict = self.net.check_converged();
        self.checking += checking.elapsed();
        match verdict {
            Err(problems) => problems,
            Ok(()) => "the sampled peers disagree".into(),
        }
    }

    /// How many of the sampled live peers have an online list that is
    /// exactly their component, and how many were sampled.
    fn agreement(&self) -> (usize, usize) {
        let live: Vec<PeerId> = self.net.peers().copied().collect();
        let stride = live.len().div_ceil(self.sampling.peers).max(1);
        let truth = self.net.truth();
        let (mut agree, mut of) = (0, 0);
        for id in live.iter().step_by(stride) {
            of += 1;
            if self.net.matches(&truth, id, false) {
                agree += 1;
            }
        }
        (agree, of)
    }
}

fn peers_list(peers: &[usize]) -> String {
    let mut sorted = peers.to_vec();
    sorted.sort_unstable();
    let shown: Vec<String> = sorted.iter().take(8).map(usize::to_string).collect();
    let more = if sorted.len() > 8 {
        format!(" and {} more", sorted.len() - 8)
    } else {
        String::new()
    };
    format!(
        "peer{} {}{more}",
        if sorted.len() == 1 { "" } else { "s" },
        shown.join(", ")
    )
}
