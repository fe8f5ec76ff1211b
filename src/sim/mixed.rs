//! One simulated network whose peers are partly the JavaScript original and
//! partly our engines, exchanging the real flood packets.
//!
//! JavaScript peers are unmodified `HypercorePresence` instances of
//! `hyper-presence` 1.1.3 hosted by `interop/js/mixed-host.js` (one `node`
//! process per run, see [`JsHost`]); Rust peers are [`Presence`](crate::proto::Presence) engines.
//! This module owns the rest: links, packets in flight (each delivered with
//! the engine's `receive` or the host's `deliver`), engine timers, and the
//! host's fake clock, which it moves in step with simulated time. Same
//! scenario, same run: the only randomness is the seeded latency.
//!
//! [`MixedScenario::compare`] runs a scenario twice, mixed and with every
//! peer JavaScript (the control), and [`check`] says whose view is wrong:
//! a Rust view must be exactly right; a JavaScript view must be no more
//! wrong than the same peer's in the control run.

pub mod check;
mod host;
mod network;
pub mod trace;

use std::time::Duration;

use serde_json::Value;

pub use check::{MixedReport, PeerReport, WrongCount};
pub use host::{HostError, JsHost, Reply, Sent};

use network::MixedNetwork;

use super::interop::{Outcome, Truth};
use super::Latency;

/// Which implementation a peer of a mixed network runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The JavaScript original, in the host process.
    Js,
    /// Our engine.
    Rust,
}

/// One thing that happens in a mixed scenario; peers are indices.
#[derive(Debug, Clone, PartialEq)]
pub enum MixedStep {
    /// Open a link between two live peers (a no-op if open).
    Connect(usize, usize),
    /// Close a link; packets on it are lost.
    Disconnect(usize, usize),
    /// A peer sets new data (a JSON object: the original needs one).
    SetData(usize, Value),
    /// A peer leaves cleanly: its Rust neighbours hear a goodbye (our
    /// `bye`), its JavaScript neighbours a closed link (they know no other).
    /// A JavaScript peer says no goodbye: everyone sees closed links.
    Leave(usize),
    /// A peer stops without warning: its links close.
    Crash(usize),
    /// A peer starts a new life (crashing first if it is running) with the
    /// data it set last, and reopens the links it had when it stopped. A
    /// Rust peer gets a new engine one incarnation up; a JavaScript peer a
    /// new instance with the same id.
    Restart(usize),
    /// Cut every link between these peers and the others (kept for
    /// [`MixedStep::Heal`]).
    Partition(Vec<usize>),
    /// Reopen the links cut by partitions whose ends are both running.
    Heal,
    /// Deliver and fire timers until nothing is in flight and no timer is
    /// due within [`MixedScenario::quiet_after`].
    Settle,
}

/// Peers (each with its side and first data) and what happens to them.
#[derive(Debug, Clone, PartialEq)]
pub struct MixedScenario {
    /// Which implementation each peer runs; peer `i`'s id is [`sim_id`](crate::sim::sim_id)`(i)`.
    pub sides: Vec<Side>,
    /// Each peer's first data (JSON objects).
    pub data: Vec<Value>,
    /// The steps, in order.
    pub steps: Vec<MixedStep>,
    /// Each packet's latency; fixed 1 ms (first in, first out, as the
    /// conformance harness) unless changed.
    pub latency: Latency,
    /// Seed of the latency draws.
    pub seed: u64,
    /// A settle ends when nothing is in flight and no timer is due within
    /// this (the engines' far-off housekeeping is not waited for). 5 s.
    pub quiet_after: Duration,
    /// Most events (deliveries and timers) one settle may take; past it the
    /// run stops and is reported not quiet. 1,000,000.
    pub max_events: u64,
    /// Keep a line per delivered packet and per link change in
    /// [`MixedRun::trace`]. Off.
    pub trace: bool,
}

/// What a run ended in.
#[derive(Debug, Clone)]
pub struct MixedRun {
    /// Each running peer's view, by id (hex).
    pub views: Outcome,
    /// What each running peer should see.
    pub truth: Truth,
    /// Every settle ended quiet.
    pub quiet: bool,
    /// Packets delivered.
    pub delivered: u64,
    /// Exceptions the JavaScript package threw.
    pub js_errors: Vec<String>,
    /// With [`MixedScenario::trace`]: what happened, a line each (time in
    /// ms, then the event; packets as [`trace::describe`] puts them).
    pub trace: Vec<String>,
}

impl MixedScenario {
    /// `n` peers, peer `i` running `side(i)` with `data(i)`, and no steps.
    pub fn new(
        n: usize,
        side: impl FnMut(usize) -> Side,
        data: impl FnMut(usize) -> Value,
    ) -> Self {
        MixedScenario {
            sides: (0..n).map(side).collect(),
            data: (0..n).map(data).collect(),
            steps: Vec::new(),
            latency: Latency::fixed(Duration::from_millis(1)),
            seed: 0,
            quiet_after: Duration::from_secs(5),
            max_events: 1_000_000,
            trace: false,
        }
    }

    /// Adds one `Connect` per link, then a `Settle`: everyone joins at once.
    pub fn join_at_once(&mut self, links: impl IntoIterator<Item = (usize, usize)>) -> &mut Self {
        self.steps
            .extend(links.into_iter().map(|(a, b)| MixedStep::Connect(a, b)));
        self.steps.push(MixedStep::Settle);
        self
    }

    /// Adds steps.
    pub fn then(&mut self, steps: impl IntoIterator<Item = MixedStep>) -> &mut Self {
        self.steps.extend(steps);
        self
    }

    /// How many peers.
    pub fn n(&self) -> usize {
        self.sides.len()
    }

    /// The same scenario with every peer on `side` (the control run).
    pub fn all(&self, side: Side) -> Self {
        MixedScenario {
            sides: vec![side; self.n()],
            ..self.clone()
        }
    }

    /// Runs the scenario (starting the JavaScript host if any peer needs it).
    pub fn run(&self) -> Result<MixedRun, HostError> {
        let host = if self.sides.contains(&Side::Js) {
            Some(JsHost::start()?)
        } else {
            None
        };
        let mut net = MixedNetwork::new(self, host);
        for i in 0..self.n() {
            net.start(i)?;
        }
        let mut quiet = true;
        for step in &self.steps {
            match step {
                MixedStep::Connect(a, b) => net.connect(*a, *b)?,
                MixedStep::Disconnect(a, b) => net.disconnect(*a, *b)?,
                MixedStep::SetData(i, data) => net.set_data(*i, data.clone())?,
                MixedStep::Leave(i) => net.stop(*i, true)?,
                MixedStep::Crash(i) => net.stop(*i, false)?,
                MixedStep::Restart(i) => net.restart(*i)?,
                MixedStep::Partition(group) => net.partition(group)?,
                MixedStep::Heal => net.heal()?,
                MixedStep::Settle => {
                    if !net.settle()? {
                        quiet = false;
                        break;
                    }
                }
            }
        }
        Ok(MixedRun {
            views: net.views()?,
            truth: net.truth(),
            quiet,
            delivered: net.delivered,
            js_errors: net.js_errors,
            trace: net.trace.unwrap_or_default(),
        })
    }

    /// Runs the scenario mixed and as the all-JavaScript control, and
    /// compares every peer's view with the truth (see [`check`]).
    pub fn compare(&self) -> Result<MixedReport, HostError> {
        let mixed = self.run()?;
        let control = self.all(Side::Js).run()?;
        Ok(MixedReport::new(self, mixed, control))
    }
}
