//! Scenarios: a network, its faults, and what happens to it over time
//! (joins, leaves, crashes, restarts, data changes, partitions and heals),
//! read from TOML or JSON and run in the simulated [`Network`], with one
//! report row per event: how long until everyone agreed again, at what cost
//! in packets, and how agreement grew meanwhile.
//!
//! ```
//! use hyper_presence::sim::scenario::{self, Scenario};
//!
//! let scenario = Scenario::from_toml(r#"
//!     peers = 20
//!     seed = 3
//!     topology = { shape = "regular", degree = 4 }
//!
//!     [[events]]
//!     action = "join-all"
//!
//!     [[events]]
//!     action = "crash"
//!
//!     [[events]]
//!     at_ms = 5000
//!     action = "restart"
//! "#)?;
//! let report = scenario::run(&scenario)?;
//! assert_eq!(report.rows.len(), 3);
//! assert!(report.all_correct());
//! # Ok::<(), scenario::ScenarioError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{sim_id, topology, Faults, Latency, Network};
use crate::proto::PeerId;

/// Most peers a scenario may start with (joins may add more).
pub const MAX_PEERS: usize = 20_000;

/// Most peers a scenario may ever have, joins included.
const MAX_TOTAL_PEERS: usize = 100_000;

/// A whole scenario: the starting network, its faults, how agreement is
/// watched, and the events, in the order they happen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Peers in the starting layout, numbered from 0 (`join` adds more,
    /// numbered on from there). None runs until an event starts them.
    pub peers: usize,
    /// Seed of every random choice: the same seed replays the same run.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// How the starting peers are linked.
    #[serde(default)]
    pub topology: Topology,
    /// Latency, duplication and loss of packets.
    #[serde(default)]
    pub faults: FaultSpec,
    /// How agreement is measured while an event settles.
    #[serde(default)]
    pub sampling: Sampling,
    /// Every engine's [`crate::proto::Config::announce_window`], in
    /// milliseconds: links a peer opens together are flooded as one
    /// announcement. Default 5.
    #[serde(default = "default_announce_window_ms")]
    pub announce_window_ms: u64,
    /// Every engine's [`crate::proto::Config::gossip_window`], in
    /// milliseconds: news of others is passed on in one batch per
    /// neighbour per window. Default 10, as the engine's.
    #[serde(default = "default_gossip_window_ms")]
    pub gossip_window_ms: u64,
    /// Every engine's [`crate::proto::Config::max_send_bytes`]: the largest
    /// packet, so what one link carries per gossip window. Default 8,000,
    /// as the engine's.
    #[serde(default = "default_max_send_bytes")]
    pub max_send_bytes: usize,
    /// What happens, in order.
    pub events: Vec<Step>,
}

fn default_seed() -> u64 {
    1
}

fn default_announce_window_ms() -> u64 {
    5
}

fn default_gossip_window_ms() -> u64 {
    10
}

fn default_max_send_bytes() -> usize {
    crate::proto::DEFAULT_MAX_SEND_BYTES
}

/// The layout of the starting peers' links.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// The kind of graph.
    #[serde(default)]
    pub shape: Shape,
    /// Links per peer for `regular` and `small-world`, new links per peer for
    /// `scale-free`; also how many links a peer that joins later opens.
    #[serde(default = "default_degree")]
    pub degree: usize,
}

fn default_degree() -> usize {
    4
}

impl Default for Topology {
    fn default() -> Self {
        Topology {
            shape: Shape::default(),
            degree: default_degree(),
        }
    }
}

/// Kinds of graph the starting peers can be linked in (see [`topology`]).
///
/// Also the values of `hyper-presence sim --shape`: clap's names for the
/// variants are the same kebab-case ones serde uses in scenario files, and
/// a `help` gives the line `--help` shows where it is worded for the
/// command line (flags rather than fields); elsewhere the doc line serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// A random spanning tree plus about N/2 more random links.
    #[default]
    #[value(help = "A random connected graph with about 3 links per peer")]
    Random,
    /// A line.
    Line,
    /// A ring.
    Ring,
    /// Everyone linked to peer 0.
    #[value(help = "Everyone linked to one hub")]
    Star,
    /// Random, every peer with exactly `degree` links.
    #[value(help = "Random, every peer with exactly --degree links")]
    Regular,
    /// Watts–Strogatz: a ring lattice of `degree` nearest neighbours, 10 % rewired.
    #[value(help = "Watts–Strogatz: a ring lattice of --degree nearest neighbours, 10% rewired")]
    SmallWorld,
    /// Barabási–Albert: each peer links to `degree` earlier peers, preferring hubs.
    #[value(help = "Barabási–Albert: each peer links to --degree earlier peers, preferring hubs")]
    ScaleFree,
}

/// Packet faults, as written in a scenario (times in milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Each packet's one-way latency.
    #[serde(default = "default_latency")]
    pub latency: LatencySpec,
    /// A base latency each pair of peers draws once and keeps (some paths
    /// are slow), added to every packet's own; none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_latency: Option<LatencySpec>,
    /// Chance that a packet is delivered twice (at most 0.5).
    #[serde(default)]
    pub duplicate: f64,
    /// Chance that a packet is lost, killing its link, which is redialled
    /// (at most 0.5).
    #[serde(default)]
    pub drop: f64,
}

fn default_latency() -> LatencySpec {
    LatencySpec::Uniform {
        min_ms: 1.0,
        max_ms: 50.0,
    }
}

impl Default for FaultSpec {
    /// As [`Faults::default`]: 1 to 50 ms, uniform, no duplication or loss.
    fn default() -> Self {
        FaultSpec {
            latency: default_latency(),
            link_latency: None,
            duplicate: 0.0,
            drop: 0.0,
        }
    }
}

/// A latency distribution, as written in a scenario (see [`Latency`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LatencySpec {
    /// Uniform between two bounds.
    Uniform {
        /// Least latency, ms.
        min_ms: f64,
        /// Greatest latency, ms.
        max_ms: f64,
    },
    /// Normal, negative draws taken as zero.
    Normal {
        /// Mean, ms.
        mean_ms: f64,
        /// Standard deviation, ms.
        std_dev_ms: f64,
    },
    /// Log-normal: a long tail of slow packets.
    LogNormal {
        /// Median, ms.
        median_ms: f64,
        /// Standard deviation of the logarithm (0 to 4).
        sigma: f64,
    },
}

impl LatencySpec {
    fn check(&self, what: &str) -> Result<(), String> {
        let cap = Latency::CAP.as_secs_f64() * 1000.0;
        let in_range = |name: &str, v: f64| {
            if v.is_finite() && (0.0..=cap).contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "{what}: {name} must be between 0 and {cap} ms, not {v}"
                ))
            }
        };
        match *self {
            LatencySpec::Uniform { min_ms, max_ms } => {
                in_range("min_ms", min_ms)?;
                in_range("max_ms", max_ms)?;
                if min_ms > max_ms {
                    return Err(format!("{what}: min_ms {min_ms} is above max_ms {max_ms}"));
                }
            }
            LatencySpec::Normal {
                mean_ms,
                std_dev_ms,
            } => {
                in_range("mean_ms", mean_ms)?;
                in_range("std_dev_ms", std_dev_ms)?;
            }
            LatencySpec::LogNormal { median_ms, sigma } => {
                in_range("median_ms", median_ms)?;
                if !(sigma.is_finite() && (0.0..=4.0).contains(&sigma)) {
                    return Err(format!(
                        "{what}: sigma must be between 0 and 4, not {sigma}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The simulator's distribution (call on a checked spec only).
    fn to_latency(self) -> Latency {
        let ms = |v: f64| Duration::from_secs_f64(v / 1000.0);
        match self {
            LatencySpec::Uniform { min_ms, max_ms } => Latency::Uniform {
                min: ms(min_ms),
                max: ms(max_ms),
            },
            LatencySpec::Normal {
                mean_ms,
                std_dev_ms,
            } => Latency::Normal {
                mean: ms(mean_ms),
                std_dev: ms(std_dev_ms),
            },
            LatencySpec::LogNormal { median_ms, sigma } => Latency::LogNormal {
                median: ms(median_ms),
                sigma,
            },
        }
    }
}

/// How agreement is watched while an event settles. Each sample costs a
/// walk of the sampled peers' components, so both the number of peers
/// looked at and the number of samples are bounded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    /// Simulated time between two samples, ms.
    #[serde(default = "default_interval")]
    pub interval_ms: f64,
    /// How many peers (spread evenly over the live ones) are looked at.
    #[serde(default = "default_sample_peers")]
    pub peers: usize,
    /// Most samples kept per event; later ones are not recorded.
    #[serde(default = "default_max_samples")]
    pub max_samples: usize,
    /// Simulated time after which an event that has not settled counts as
    /// failed, ms.
    #[serde(default = "default_give_up")]
    pub give_up_ms: u64,
}

fn default_interval() -> f64 {
    10.0
}
fn default_sample_peers() -> usize {
    100
}
fn default_max_samples() -> usize {
    2_000
}
fn default_give_up() -> u64 {
    600_000
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            interval_ms: default_interval(),
            peers: default_sample_peers(),
            max_samples: default_max_samples(),
            give_up_ms: default_give_up(),
        }
    }
}

/// One event: what happens, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Simulated time of the event, ms from the start. Without it, the event
    /// happens as soon as the previous one has settled (everyone agrees
    /// and nothing is in flight). Times must not go backwards; one that is
    /// already past happens at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    /// A name for reports; the default describes the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// What happens.
    #[serde(flatten)]
    pub action: Action,
}

impl Step {
    /// An event with no time of its own (after the previous one settles).
    pub fn new(action: Action) -> Self {
        Step {
            at_ms: None,
            label: None,
            action,
        }
    }

    /// The same event with a name for reports.
    pub fn labelled(mut self, label: &str) -> Self {
        self.label = Some(label.to_owned());
        self
    }
}

/// What can happen to the network. Peers are named by number; where a peer
/// may be left out, one is picked at random among those it can apply to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    /// Every starting peer not yet started starts, and every link of the
    /// layout between live peers opens, all at once.
    JoinAll,
    /// `count` new peers start, each linking to `links` random live peers
    /// (default: the topology's degree).
    Join {
        /// How many peers join.
        #[serde(default = "one")]
        count: usize,
        /// Links each new peer opens.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        links: Option<usize>,
    },
    /// Live peers stop cleanly, saying goodbye: neighbours announce it at once.
    Leave {
        /// Which peer (default: random).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<usize>,
        /// How many random peers, when `peer` is not given.
        #[serde(default = "one")]
        count: usize,
    },
    /// Live peers stop without warning: neighbours notice after the grace.
    Crash {
        /// Which peer (default: random).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<usize>,
        /// How many random peers, when `peer` is not given.
        #[serde(default = "one")]
        count: usize,
    },
    /// Stopped peers start again and reopen their links to live neighbours.
    Restart {
        /// Which peer (default: the ones stopped longest ago).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<usize>,
        /// How many, when `peer` is not given.
        #[serde(default = "one")]
        count: usize,
        /// Restart without a new incarnation (a peer that lost its state).
        #[serde(default)]
        same_incarnation: bool,
    },
    /// Live peers change their data.
    SetData {
        /// Which peer (default: random).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<usize>,
        /// How many random peers, when `peer` is not given.
        #[serde(default = "one")]
        count: usize,
    },
    /// The network splits: every link between the parts closes. Give either
    /// `fraction` (that share of live peers, picked at random, on one side)
    /// or `groups` (each live peer in one of that many random groups).
    Partition {
        /// Share of the live peers cut off from the rest (0 to 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fraction: Option<f64>,
        /// Number of random groups (2 or more).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        groups: Option<usize>,
    },
    /// The partition ends: every link of the layout between live peers opens.
    Heal,
}

fn one() -> usize {
    1
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::JoinAll => "join-all",
            Action::Join { .. } => "join",
            Action::Leave { .. } => "leave",
            Action::Crash { .. } => "crash",
            Action::Restart { .. } => "restart",
            Action::SetData { .. } => "set-data",
            Action::Partition { .. } => "partition",
            Action::Heal => "heal",
        }
    }
}

/// Why a scenario could not be read or run; each is one line.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not a scenario.
    #[error("{0}")]
    Parse(String),
    /// The scenario is well formed but makes no sense.
    #[error("invalid scenario: {0}")]
    Invalid(String),
    /// An event could not happen (a peer that is not running, …).
    #[error("event {index} ({action}): {message}")]
    Event {
        /// The event's position, from 1.
        index: usize,
        /// Its action.
        action: &'static str,
        /// What was wrong.
        message: String,
    },
}

impl Scenario {
    /// Reads a scenario file: TOML if its name ends in `.toml`, JSON if in
    /// `.json`.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: shown.clone(),
            source,
        })?;
        let parsed = match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("toml") => Self::from_toml(&text),
            Some(e) if e.eq_ignore_ascii_case("json") => Self::from_json(&text),
            _ => {
                return Err(ScenarioError::Parse(format!(
                    "{shown}: a scenario file's name ends in .toml or .json"
                )))
            }
        };
        parsed.map_err(|e| match e {
            ScenarioError::Parse(m) => ScenarioError::Parse(format!("{shown}: {m}")),
            ScenarioError::Invalid(m) => ScenarioError::Invalid(format!("{shown}: {m}")),
            other => other,
        })
    }

    /// Parses and checks a scenario written in TOML.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let place = e
                .span()
                .map(|span| {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!("line {line}, column {column}: ")
                })
                .unwrap_or_default();
            ScenarioError::Parse(format!("{place}{}", one_line(e.message())))
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Parses and checks a scenario written in JSON.
    pub fn from_json(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario = serde_json::from_str(text)
            .map_err(|e| ScenarioError::Parse(one_line(&e.to_string())))?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks what can be checked before running: sizes, probabilities,
    /// latencies, times in order, each action's arguments.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |m: String| Err(ScenarioError::Invalid(m));
        if self.peers > MAX_PEERS {
            return bad(format!(
                "peers is {}, at most {MAX_PEERS} are allowed",
                self.peers
            ));
        }
        if !(1..=64).contains(&self.topology.degree) {
            return bad(format!(
                "topology degree is {}, it must be between 1 and 64",
                self.topology.degree
            ));
        }
        for (name, p) in [
            ("duplicate", self.faults.duplicate),
            ("drop", self.faults.drop),
        ] {
            if !(p.is_finite() && (0.0..=0.5).contains(&p)) {
                return bad(format!(
                    "faults {name} is {p}, it must be between 0 and 0.5"
                ));
            }
        }
        self.faults.latency.check("faults latency").or_else(bad)?;
        if let Some(link) = &self.faults.link_latency {
            link.check("faults link_latency").or_else(bad)?;
        }
        let s = &self.sampling;
        if !(s.interval_ms.is_finite() && (0.1..=60_000.0).contains(&s.interval_ms)) {
            return bad(format!(
                "sampling interval_ms is {}, it must be between 0.1 and 60000",
                s.interval_ms
            ));
        }
        if s.peers == 0 || s.max_samples == 0 || s.give_up_ms == 0 {
            return bad("sampling peers, max_samples and give_up_ms must be above 0".into());
        }
        if self.events.is_empty() {
            return bad("no events".into());
        }
        let mut last_at = 0;
        let mut total = self.peers;
        for (i, step) in self.events.iter().enumerate() {
            let at_fault = |m: String| {
                Err(ScenarioError::Invalid(format!(
                    "event {} ({}): {m}",
                    i + 1,
                    step.action.name()
                )))
            };
            if let Some(at) = step.at_ms {
                if at < last_at {
                    return at_fault(format!(
                        "at_ms {at} is before the previous event's {last_at}"
                    ));
                }
                if at > 1_000_000_000 {
                    return at_fault(format!("at_ms {at} is over 11 days"));
                }
                last_at = at;
            }
            match &step.action {
                Action::Join { count, links } => {
                    if *count == 0 {
                        return at_fault("count must be at least 1".into());
                    }
                    total = total.saturating_add(*count);
                    if total > MAX_TOTAL_PEERS {
                        return at_fault(format!("more than {MAX_TOTAL_PEERS} peers in all"));
                    }
                    if links.is_some_and(|l| !(1..=64).contains(&l)) {
                        return at_fault("links must be between 1 and 64".into());
                    }
                }
                Action::Leave { peer, count }
                | Action::Crash { peer, count }
                | Action::Restart { peer, count, .. }
                | Action::SetData { peer, count } => {
                    if *count == 0 {
                        return at_fault("count must be at least 1".into());
                    }
                    if peer.is_some() && *count != 1 {
                        return at_fault("give either peer or count, not both".into());
                    }
                    if peer.is_some_and(|p| p >= total) {
                        return at_fault(format!(
                            "peer {} does not exist (peers are numbered 0 to {})",
                            peer.unwrap_or_default(),
                            total.saturating_sub(1)
                        ));
                    }
                }
                Action::Partition { fraction, groups } => match (fraction, groups) {
                    (Some(f), None) if f.is_finite() && *f > 0.0 && *f < 1.0 => {}
                    (Some(f), None) => {
                        return at_fault(format!("fraction is {f}, it must be between 0 and 1"))
                    }
                    (None, Some(g)) if (2..=1_000).contains(g) => {}
                    (None, Some(g)) => {
                        return at_fault(format!("groups is {g}, it must be between 2 and 1000"))
                    }
                    _ => return at_fault("give either fraction or groups".into()),
                },
                Action::JoinAll | Action::Heal => {}
            }
        }
        Ok(())
    }
}

/// Error messages of the parsers can span lines; ours are one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Agreement at one moment while an event settled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Simulated time since the event, ms.
    pub t_ms: f64,
    /// Share of the sampled live peers whose online list is exactly their
    /// connected component (0 to 1).
    pub agreement: f64,
}

/// What one event cost and how the network recovered from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventReport {
    /// The event's position, from 1.
    pub index: usize,
    /// Its label, or its action.
    pub event: String,
    /// What happened, with the peers it picked ("crash peer 17").
    pub detail: String,
    /// Simulated time of the event, ms from the start.
    pub at_ms: f64,
    /// Live peers after the event.
    pub peers: usize,
    /// Open links after the event.
    pub links: usize,
    /// Simulated time from the event to the last delivery before every view
    /// was found right again, ms (views are checked at each sample, so this
    /// may count harmless deliveries up to one sampling interval late);
    /// `None` when the next event came first or the views never came right.
    pub agreed_after_ms: Option<f64>,
    /// Packets delivered from this event to the next.
    pub packets: u64,
    /// Bytes in them.
    pub bytes: u64,
    /// Packets lost meanwhile (faults, closed links).
    pub lost: u64,
    /// Packets per live peer other than one: `packets / (peers - 1)`.
    pub amplification: f64,
    /// Whether every live peer's online list was exactly its component, with
    /// everyone's latest data (`None` when the next event came first).
    pub correct: Option<bool>,
    /// What was wrong, when `correct` is false (the first few problems).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Agreement over simulated time while the event settled.
    pub agreement: Vec<Sample>,
    /// Wall-clock time the simulator took for this event, s (the only
    /// field that differs between two runs of the same seed).
    pub wall_s: f64,
}

/// The rows of one run, one per event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// One row per event, in order.
    pub rows: Vec<EventReport>,
    /// Simulated time at the end of the run, ms.
    pub end_ms: f64,
}

impl Report {
    /// True when no event ended with wrong views and the last one settled
    /// with everyone right.
    pub fn all_correct(&self) -> bool {
        self.rows.iter().all(|r| r.correct != Some(false))
            && self.rows.last().is_some_and(|r| r.correct == Some(true))
    }
}

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
            wall_s: wall.elapsed().as_secs_f64(),
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
        let mut runner = Runner {
            net: Network::new(scenario.seed, faults)
                .without_event_log()
                .with_announce_window(Duration::from_millis(scenario.announce_window_ms))
                .with_gossip_window(Duration::from_millis(scenario.gossip_window_ms))
                .with_max_send_bytes(scenario.max_send_bytes),
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
        // A full check walks every peer's view; after one fails, the next
        // few samples that look right are not checked in full.
        let (mut skip, mut backoff) = (0u32, 1u32);
        loop {
            let now = self.net.now();
            let (agree, of) = self.agreement();
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
                match self.net.check_converged() {
                    Ok(()) => {
                        let last = self.net.stats().last_delivery.max(start);
                        return Outcome::Settled {
                            last_delivery: last,
                        };
                    }
                    Err(problems) if idle => return Outcome::Failed(problems),
                    Err(_) => {
                        skip = backoff;
                        backoff = (backoff * 2).min(32);
                    }
                }
            } else if agree == of {
                skip -= 1;
            }
            if idle {
                return Outcome::Failed(match self.net.check_converged() {
                    Err(problems) => problems,
                    Ok(()) => "the sampled peers disagree".into(),
                });
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

    /// How many of the sampled live peers have an online list that is
    /// exactly their component, and how many were sampled.
    fn agreement(&self) -> (usize, usize) {
        let live: Vec<PeerId> = self.net.peers().copied().collect();
        let stride = live.len().div_ceil(self.sampling.peers).max(1);
        let mut component_of: HashMap<PeerId, usize> = HashMap::new();
        let mut components: Vec<Vec<PeerId>> = Vec::new();
        let (mut agree, mut of) = (0, 0);
        for id in live.iter().step_by(stride) {
            let c = match component_of.get(id) {
                Some(&c) => c,
                None => {
                    let members: Vec<PeerId> = self.net.component(*id).into_iter().collect();
                    for m in &members {
                        component_of.insert(*m, components.len());
                    }
                    components.push(members);
                    components.len() - 1
                }
            };
            of += 1;
            let members = &components[c];
            if let Some(engine) = self.net.node(id) {
                if engine.online_count() == members.len()
                    && members.iter().all(|m| engine.is_online(m))
                {
                    agree += 1;
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    const CHURN: &str = r#"
        peers = 40
        seed = 5
        topology = { shape = "small-world", degree = 4 }

        [faults]
        latency = { kind = "log-normal", median_ms = 20, sigma = 0.8 }
        link_latency = { kind = "uniform", min_ms = 0, max_ms = 30 }
        duplicate = 0.05
        drop = 0.002

        [[events]]
        action = "join-all"

        [[events]]
        at_ms = 3000
        action = "join"
        count = 3

        [[events]]
        at_ms = 3100
        action = "crash"
        count = 2

        [[events]]
        at_ms = 3200
        action = "leave"

        [[events]]
        at_ms = 3300
        action = "set-data"
        count = 5

        [[events]]
        action = "restart"
        count = 2

        [[events]]
        action = "partition"
        fraction = 0.3

        [[events]]
        action = "restart"
        same_incarnation = true

        [[events]]
        label = "heal"
        action = "heal"
    "#;

    fn without_wall(mut report: Report) -> Report {
        for row in &mut report.rows {
            row.wall_s = 0.0;
        }
        report
    }

    #[test]
    fn toml_and_json_give_the_same_scenario() {
        let from_toml = Scenario::from_toml(CHURN).unwrap();
        let json = serde_json::to_string(&from_toml).unwrap();
        assert_eq!(Scenario::from_json(&json).unwrap(), from_toml);
        assert_eq!(from_toml.events.len(), 9);
        assert_eq!(
            from_toml.events[1],
            Step {
                at_ms: Some(3000),
                label: None,
                action: Action::Join {
                    count: 3,
                    links: None
                }
            }
        );
        assert_eq!(
            from_toml.faults.latency,
            LatencySpec::LogNormal {
                median_ms: 20.0,
                sigma: 0.8
            }
        );
    }

    #[test]
    fn json_with_defaults() {
        let s = Scenario::from_json(r#"{"peers": 5, "events": [{"action": "join-all"}]}"#).unwrap();
        assert_eq!(s.seed, 1);
        assert_eq!(s.faults, FaultSpec::default());
        assert_eq!(s.topology, Topology::default());
        assert_eq!(s.events, vec![Step::new(Action::JoinAll)]);
    }

    #[test]
    fn mistakes_are_one_line_errors() {
        for (text, expected) in [
            ("peers = 5\nevents = [{ action = \"explode\" }]", "explode"),
            ("peers = 5\nevents = [{ action = \"crash\", peer = 1, typo = 2 }]", "typo"),
            ("peers = 5\nevents = []", "no events"),
            ("peers = -5\nevents = [{ action = \"heal\" }]", "line 1"),
            ("peers = 50000\nevents = [{ action = \"heal\" }]", "at most"),
            ("peers = 5\n[faults]\ndrop = 0.9\n[[events]]\naction = \"heal\"", "drop"),
            (
                "peers = 5\n[faults]\nlatency = { kind = \"uniform\", min_ms = 9, max_ms = 1 }\n[[events]]\naction = \"heal\"",
                "min_ms",
            ),
            (
                "peers = 5\n[faults]\nlatency = { kind = \"normal\", mean_ms = -1, std_dev_ms = 1 }\n[[events]]\naction = \"heal\"",
                "mean_ms",
            ),
            ("peers = 5\nevents = [{ action = \"crash\", peer = 9 }]", "does not exist"),
            ("peers = 5\nevents = [{ action = \"partition\" }]", "either"),
            (
                "peers = 5\nevents = [{ action = \"heal\", at_ms = 9 }, { action = \"heal\", at_ms = 3 }]",
                "before",
            ),
            ("peers = 5\nevents = [{ action = \"join\", count = 0 }]", "at least 1"),
            ("peers = 5\nevents = [", "line 2"),
        ] {
            let error = Scenario::from_toml(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
            assert_eq!(error.lines().count(), 1, "{error}");
        }
        let error = Scenario::from_json("{\"peers\": 5,\n\"events\": 3}")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn events_on_peers_in_the_wrong_state_are_errors_not_panics() {
        for events in [
            r#"[{"action": "join-all"}, {"action": "restart"}]"#,
            r#"[{"action": "join-all"}, {"action": "restart", "peer": 2}]"#,
            r#"[{"action": "crash", "peer": 2}]"#,
            r#"[{"action": "join-all"}, {"action": "partition", "groups": 2}, {"action": "partition", "groups": 3}]"#,
        ] {
            let s = Scenario::from_json(&format!(r#"{{"peers": 6, "events": {events}}}"#)).unwrap();
            let error = run(&s).unwrap_err();
            assert!(matches!(error, ScenarioError::Event { .. }), "{error}");
        }
        // Leaving until nobody is left is allowed; one more is not.
        let s = Scenario::from_json(
            r#"{"peers": 2, "events": [{"action": "join-all"}, {"action": "leave", "count": 2}, {"action": "crash"}]}"#,
        )
        .unwrap();
        assert!(run(&s).is_err());
    }

    #[test]
    fn same_seed_same_report() {
        let s = Scenario::from_toml(CHURN).unwrap();
        let a = without_wall(run(&s).unwrap());
        let b = without_wall(run(&s).unwrap());
        assert_eq!(a, b);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        let mut other = s.clone();
        other.seed = 6;
        assert_ne!(without_wall(run(&other).unwrap()), a);
    }

    #[test]
    fn churn_under_faults_converges() {
        let s = Scenario::from_toml(CHURN).unwrap();
        let report = run(&s).unwrap();
        assert!(report.all_correct(), "{report:#?}");
        let last = report.rows.last().unwrap();
        assert_eq!(last.correct, Some(true));
        assert_eq!(last.peers, 40 + 3 - 2 - 1 + 2 + 1);
        // The first event had 3 s to settle; events 2 to 4 overlapped.
        assert_eq!(report.rows[0].correct, Some(true));
        assert_eq!(report.rows[1].correct, None);
        assert!(report.rows.iter().all(|r| !r.agreement.is_empty()));
        assert!(report.rows[0].agreement[0].agreement < 1.0);
        assert_eq!(report.rows[0].agreement.last().unwrap().agreement, 1.0);
        assert!(
            report.rows[6].detail.contains("links cut"),
            "{:?}",
            report.rows[6]
        );
    }

    #[test]
    fn a_partition_splits_views_and_a_heal_merges_them() {
        let s = Scenario::from_json(
            r#"{"peers": 30, "seed": 2, "topology": {"shape": "regular", "degree": 3},
                "events": [{"action": "join-all"}, {"action": "partition", "groups": 3},
                           {"action": "crash"}, {"action": "heal"}, {"action": "restart"}]}"#,
        )
        .unwrap();
        let report = run(&s).unwrap();
        assert!(report.all_correct(), "{report:#?}");
        assert!(report.rows[1].links < report.rows[0].links);
        assert_eq!(report.rows[4].links, report.rows[0].links);
    }

    #[test]
    fn a_clean_leave_is_announced_without_the_grace() {
        let s = Scenario::from_json(
            r#"{"peers": 30, "seed": 3, "faults": {"latency": {"kind": "uniform", "min_ms": 1, "max_ms": 1}},
                "events": [{"action": "join-all"}, {"action": "leave"}, {"action": "crash"}]}"#,
        )
        .unwrap();
        let report = run(&s).unwrap();
        assert!(report.all_correct(), "{report:#?}");
        let leave = report.rows[1].agreed_after_ms.unwrap();
        let crash = report.rows[2].agreed_after_ms.unwrap();
        assert!(leave < 100.0 && crash >= 500.0, "{leave} {crash}");
    }

    #[test]
    fn every_scenario_shipped_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!scenario.events.is_empty());
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
        names.sort();
        assert!(names.len() >= 4, "{names:?}");
        assert!(names.contains(&"quick.json".to_owned()), "{names:?}");
    }

    #[test]
    fn latency_draws_stay_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let normal = Latency::Normal {
            mean: Duration::from_millis(5),
            std_dev: Duration::from_millis(10),
        };
        let tail = Latency::LogNormal {
            median: Duration::from_millis(10),
            sigma: 4.0,
        };
        let mut zeros = 0;
        let mut slow = 0;
        for _ in 0..10_000 {
            let d = normal.sample(&mut rng);
            zeros += usize::from(d.is_zero());
            let t = tail.sample(&mut rng);
            assert!(t <= Latency::CAP);
            slow += usize::from(t > Duration::from_millis(100));
        }
        // P(N(5, 10) < 0) is about 31 %; P(lognormal(σ 4) > 10 × median) about 28 %.
        assert!((2_500..3_700).contains(&zeros), "{zeros}");
        assert!((2_200..3_400).contains(&slow), "{slow}");
    }
}
