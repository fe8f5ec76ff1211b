//! The scenario file format: the types a TOML or JSON scenario is read
//! into, with their defaults. Kept apart from the parsing and the runner so
//! that the format can be read on its own, as a reference for writing files.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sim::Latency;

/// Most peers a scenario may start with (joins may add more).
pub const MAX_PEERS: usize = 20_000;

/// Most peers a scenario may ever have, joins included.
pub(super) const MAX_TOTAL_PEERS: usize = 100_000;

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
    /// Every engine's [`crate::proto::Config::have_notices`]: whether peers
    /// tell each other which nodes they newly hold. Default true, as the
    /// engine's.
    #[serde(default = "default_have_notices")]
    pub have_notices: bool,
    /// Whether the engines share one copy of each id and register block
    /// (see [`crate::sim::Network::without_sharing`]): the same packets and
    /// views either way, less memory and CPU shared. Default true.
    #[serde(default = "default_share_between_engines")]
    pub share_between_engines: bool,
    /// What happens, in order.
    pub events: Vec<Step>,
}

fn default_seed() -> u64 {
    1
}

fn default_announce_window_ms() -> u64 {
    5
}

fn default_have_notices() -> bool {
    true
}

fn default_share_between_engines() -> bool {
    true
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
///
/// [`topology`]: crate::sim::topology
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
    ///
    /// [`Faults::default`]: crate::sim::Faults::default
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
    pub(super) fn check(&self, what: &str) -> Result<(), String> {
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
    pub(super) fn to_latency(self) -> Latency {
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
    pub(super) fn name(&self) -> &'static str {
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
