//! The same scenario through the JavaScript original and through ours.
//!
//! The original is the unmodified npm package `hyper-presence` 1.1.3, driven
//! by the harness `interop/js/run-scenario.js` over an in-memory flood that
//! delivers packets first in, first out (see `interop/js/README.md`). Ours is
//! [`Network`] with every packet taking the same 1 ms, which gives the same
//! order. This module holds what the conformance test and the side-by-side
//! example share: the scenario as the harness reads it, running it through
//! either implementation, the harness' answer, and the truth check that says
//! which peers ended up wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::{sim_id, Faults, Latency, Network};

/// One thing that happens in a scenario; peers are indices into
/// [`Scenario::data`]. Serializes as the harness reads a step
/// (`{"connect": [i, j]}`, …, `{"settle": true}`).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Open a link between two peers (a no-op if it is open, or if they are
    /// the same peer).
    Connect(usize, usize),
    /// Close the link between two peers; packets still on it are lost.
    Disconnect(usize, usize),
    /// A peer sets new data (a JSON object: the original needs one).
    SetData(usize, Value),
    /// Deliver everything in flight and fire pending timers, until nothing
    /// is left.
    Settle,
}

// By hand rather than derived: serde would write `Settle` as the string
// "settle", and the harness wants the object `{"settle": true}`.
impl Serialize for Step {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            Step::Connect(a, b) => map.serialize_entry("connect", &(a, b))?,
            Step::Disconnect(a, b) => map.serialize_entry("disconnect", &(a, b))?,
            Step::SetData(i, data) => map.serialize_entry("setData", &(i, data))?,
            Step::Settle => map.serialize_entry("settle", &true)?,
        }
        map.end()
    }
}

/// Peers, each with its initial data, and what happens to them, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Peer `i`'s initial data (a JSON object: the original needs one); its
    /// id is [`sim_id`]`(i)`.
    pub data: Vec<Value>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// A scenario as `run-scenario.js` reads it on stdin.
#[derive(Debug, Clone, Serialize)]
pub struct HarnessInput<'a> {
    /// Every peer, created before the first step.
    pub peers: Vec<HarnessPeer<'a>>,
    /// The steps, in order.
    pub steps: &'a [Step],
    /// Bound on packets one settle delivers; past it the harness stops and
    /// answers `"settled": false`. Left out, the harness uses 2,000,000.
    #[serde(rename = "maxDeliveries", skip_serializing_if = "Option::is_none")]
    pub max_deliveries: Option<u64>,
}

/// One peer of a [`HarnessInput`].
#[derive(Debug, Clone, Serialize)]
pub struct HarnessPeer<'a> {
    /// Its id, 64 lowercase hex digits.
    pub id: String,
    /// Its initial data.
    pub data: &'a Value,
}

/// What `run-scenario.js` prints on stdout.
#[derive(Debug, Clone, Deserialize)]
pub struct HarnessOutput {
    /// Each peer's view, by id (hex).
    pub peers: Outcome,
    /// False if a settle hit the delivery bound.
    pub settled: bool,
    /// Packets handed to the package's handlers.
    pub delivered: u64,
    /// Timers fired on the harness' fake clock.
    #[serde(rename = "timersFired")]
    pub timers_fired: u64,
    /// Exceptions the package threw, one line each.
    pub errors: Vec<String>,
}

/// What one peer believes at the end: its sorted online list and the data
/// it holds for every online peer, all ids in hex.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct View {
    /// Who it sees online, itself included, sorted.
    pub online: Vec<String>,
    /// The data it holds for each online peer (`null` for none).
    pub data: BTreeMap<String, Value>,
}

impl View {
    /// What `engine` believes now: its online list and, for each online
    /// peer, its data read as JSON (`null` when none or not JSON).
    pub fn of<C: crate::proto::DataCodec>(engine: &crate::proto::Presence<C>) -> View {
        let online = engine.online();
        let data = online
            .iter()
            .map(|p| {
                let value = engine
                    .peer_data_encoded(p)
                    .and_then(|bytes| serde_json::from_slice(bytes).ok())
                    .unwrap_or(Value::Null);
                (p.to_hex(), value)
            })
            .collect();
        let mut online: Vec<String> = online.iter().map(|p| p.to_hex()).collect();
        online.sort();
        View { online, data }
    }
}

/// Peer id (hex) -> its view at the end.
pub type Outcome = BTreeMap<String, View>;

/// What a scenario must end in: each peer's connected component over the
/// links still open, and the data each peer set last (ids in hex).
#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    /// Peer -> every peer it can reach, itself included.
    pub components: BTreeMap<String, BTreeSet<String>>,
    /// Peer -> the data it set last.
    pub latest: BTreeMap<String, Value>,
}

/// Our side of a run: the network as the scenario left it.
#[derive(Debug)]
pub struct OursRun {
    /// The network after the last step (or the first settle that did not go
    /// quiet).
    pub network: Network,
    /// Every settle went quiet within the bound.
    pub quiet: bool,
    /// Wall time of building the network and running the steps; encoding
    /// the data before and reading the views after are left out, so that
    /// only the engine is timed.
    pub elapsed: Duration,
}

fn hex(i: usize) -> String {
    sim_id(i).to_hex()
}

impl Scenario {
    /// `n` peers, peer `i` with `data(i)`, and no steps yet.
    pub fn new(n: usize, data: impl FnMut(usize) -> Value) -> Self {
        Scenario {
            data: (0..n).map(data).collect(),
            steps: Vec::new(),
        }
    }

    /// `n` peers with `data(i)`, every one of `links` opened at once, then
    /// one settle: the case the original gets wrong on graphs with cycles.
    pub fn all_at_once(
        n: usize,
        links: impl IntoIterator<Item = (usize, usize)>,
        data: impl FnMut(usize) -> Value,
    ) -> Self {
        let mut scenario = Scenario::new(n, data);
        scenario
            .steps
            .extend(links.into_iter().map(|(a, b)| Step::Connect(a, b)));
        scenario.steps.push(Step::Settle);
        scenario
    }

    /// How many peers.
    pub fn n(&self) -> usize {
        self.data.len()
    }

    /// The harness' input for this scenario; `max_deliveries` bounds each
    /// settle (the harness' default when `None`).
    pub fn harness_input(&self, max_deliveries: Option<u64>) -> HarnessInput<'_> {
        HarnessInput {
            peers: self
                .data
                .iter()
                .enumerate()
                .map(|(i, data)| HarnessPeer { id: hex(i), data })
                .collect(),
            steps: &self.steps,
            max_deliveries,
        }
    }

    /// Connected components of the links open at the end, and each peer's
    /// last data.
    pub fn truth(&self) -> Truth {
        let n = self.n();
        let mut links = BTreeSet::new();
        let mut latest = self.data.clone();
        for step in &self.steps {
            match step {
                Step::Connect(a, b) if a != b => {
                    links.insert((*a.min(b), *a.max(b)));
                }
                Step::Disconnect(a, b) => {
                    links.remove(&(*a.min(b), *a.max(b)));
                }
                Step::SetData(i, data) => latest[*i] = data.clone(),
                _ => {}
            }
        }
        let mut adjacency = vec![Vec::new(); n];
        for &(a, b) in &links {
            adjacency[a].push(b);
            adjacency[b].push(a);
        }
        let mut components = BTreeMap::new();
        for start in 0..n {
            let mut seen = BTreeSet::from([start]);
            let mut stack = vec![start];
            while let Some(p) = stack.pop() {
                for &q in &adjacency[p] {
                    if seen.insert(q) {
                        stack.push(q);
                    }
                }
            }
            components.insert(hex(start), seen.into_iter().map(hex).collect());
        }
        Truth {
            components,
            latest: latest
                .into_iter()
                .enumerate()
                .map(|(i, data)| (hex(i), data))
                .collect(),
        }
    }

    /// Runs the scenario through our simulator, every packet taking 1 ms so
    /// that packets arrive in the order they were sent, as in the harness.
    /// Each settle runs until quiet or `max_steps` events; like the harness,
    /// the run stops at the first settle that does not go quiet.
    pub fn run_ours(&self, max_steps: u64) -> OursRun {
        let same_time = Faults {
            latency: Latency::fixed(Duration::from_millis(1)),
            ..Faults::default()
        };
        let encode = |data: &Value| Bytes::from(serde_json::to_vec(data).expect("JSON encodes"));
        let initial: Vec<Bytes> = self.data.iter().map(encode).collect();
        let set_data: Vec<Option<Bytes>> = self
            .steps
            .iter()
            .map(|step| match step {
                Step::SetData(_, data) => Some(encode(data)),
                _ => None,
            })
            .collect();

        let started = Instant::now();
        let mut network = Network::new(0, same_time).without_event_log();
        for (i, data) in initial.into_iter().enumerate() {
            network.start(sim_id(i), data, false);
        }
        let mut quiet = true;
        for (step, encoded) in self.steps.iter().zip(set_data) {
            match step {
                Step::Connect(a, b) => network.connect(sim_id(*a), sim_id(*b)),
                Step::Disconnect(a, b) => network.disconnect(sim_id(*a), sim_id(*b)),
                Step::SetData(i, _) => {
                    network.set_data(sim_id(*i), encoded.expect("encoded above"));
                }
                Step::Settle => {
                    if !network.run_until_quiet(max_steps) {
                        quiet = false;
                        break;
                    }
                }
            }
        }
        OursRun {
            elapsed: started.elapsed(),
            network,
            quiet,
        }
    }
}

impl OursRun {
    /// Each live peer's view, in the harness' terms: data that is not JSON
    /// reads as `null` (and so is wrong), a peer that is not running has no
    /// view (and so is wrong too).
    pub fn views(&self, n: usize) -> Outcome {
        let mut outcome = Outcome::new();
        for i in 0..n {
            let Some(engine) = self.network.node(&sim_id(i)) else {
                continue;
            };
            outcome.insert(hex(i), View::of(engine));
        }
        outcome
    }
}

/// The peers whose view is wrong, one line each (the peer's id shortened to
/// 16 hex digits, then why): online list not exactly its component, data
/// of an online peer not the data that peer set last, or no view at all.
pub fn wrong_peers(outcome: &Outcome, truth: &Truth) -> Vec<String> {
    let mut wrong = Vec::new();
    for (id, component) in &truth.components {
        let short = &id[..16.min(id.len())];
        let Some(view) = outcome.get(id) else {
            wrong.push(format!("{short}: no view"));
            continue;
        };
        let online: BTreeSet<String> = view.online.iter().cloned().collect();
        if &online != component {
            let missing = component.difference(&online).count();
            let extra = online.difference(component).count();
            wrong.push(format!(
                "{short}: online {} of {} (missing {missing}, extra {extra})",
                online.len(),
                component.len()
            ));
            continue;
        }
        let stale: Vec<String> = view
            .online
            .iter()
            .filter(|p| view.data.get(*p) != truth.latest.get(*p))
            .map(|p| {
                let seen = view.data.get(p).map_or("none".into(), Value::to_string);
                let latest = truth.latest.get(p).map_or("none".into(), Value::to_string);
                format!("{} = {seen} (latest {latest})", &p[..16.min(p.len())])
            })
            .collect();
        if !stale.is_empty() {
            wrong.push(format!("{short}: wrong data for {}", stale.join(", ")));
        }
    }
    wrong
}

/// Why the harness could not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// `npm ci` has not been run in the harness' folder.
    #[error(
        "the JavaScript harness in {0} is not installed: run `npm ci --prefix interop/js` from the repository and try again"
    )]
    NotInstalled(PathBuf),
    /// `node` could not be started.
    #[error("cannot run `node` (Node.js 20 is needed): {0}")]
    Spawn(std::io::Error),
    /// Waiting for `node` failed.
    #[error("waiting for node: {0}")]
    Wait(std::io::Error),
    /// The harness exited with an error.
    #[error("run-scenario.js failed ({status}): {stderr}")]
    Failed {
        /// Its exit status.
        status: ExitStatus,
        /// What it wrote on stderr.
        stderr: String,
    },
    /// The harness printed something that is not its answer.
    #[error("run-scenario.js printed no answer ({error}): {stdout}")]
    BadAnswer {
        /// Why it does not parse.
        error: serde_json::Error,
        /// What it printed.
        stdout: String,
    },
}

/// A finished run of the harness.
#[derive(Debug, Clone)]
pub struct HarnessRun {
    /// Wall time of the whole `node` process, start-up included.
    pub elapsed: Duration,
    /// What it answered.
    pub output: HarnessOutput,
}

/// The harness `run-scenario.js` in its folder, with its `node_modules`.
#[derive(Debug, Clone)]
pub struct Harness {
    dir: PathBuf,
}

impl Harness {
    /// The harness in `dir` (the folder of `run-scenario.js`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Harness { dir: dir.into() }
    }

    /// `interop/js` of the source tree this crate was built from: where the
    /// conformance test and the example find it.
    pub fn in_source_tree() -> Self {
        Harness::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/js"))
    }

    /// Whether `npm ci` has installed the original package, so that a
    /// caller can say so before anything runs.
    pub fn check_installed(&self) -> Result<(), HarnessError> {
        if self
            .dir
            .join("node_modules/hyper-presence/package.json")
            .is_file()
        {
            Ok(())
        } else {
            Err(HarnessError::NotInstalled(self.dir.clone()))
        }
    }

    /// Runs `input` through `node run-scenario.js`. With a `timeout`, a run
    /// that takes longer is killed and answers `Ok(None)`.
    pub fn run(
        &self,
        input: &HarnessInput<'_>,
        timeout: Option<Duration>,
    ) -> Result<Option<HarnessRun>, HarnessError> {
        self.check_installed()?;
        let input = serde_json::to_vec(input).expect("a scenario encodes");
        let started = Instant::now();
        let mut child = Command::new("node")
            .arg(self.dir.join("run-scenario.js"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(HarnessError::Spawn)?;
        // Feed stdin and drain both outputs on threads, so that a large
        // scenario or answer never blocks on a full pipe.
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let writer = thread::spawn(move || {
            // An error here (node died early) shows up as its exit status.
            let _ = stdin.write_all(&input);
        });
        let out_reader = drain(child.stdout.take().expect("stdout is piped"));
        let err_reader = drain(child.stderr.take().expect("stderr is piped"));

        let status = match timeout {
            None => child.wait().map_err(HarnessError::Wait)?,
            Some(timeout) => loop {
                match child.try_wait().map_err(HarnessError::Wait)? {
                    Some(status) => break status,
                    None if started.elapsed() >= timeout => {
                        let _ = child.kill();
                        let _ = child.wait();
                        let _ = writer.join();
                        let _ = out_reader.join();
                        let _ = err_reader.join();
                        return Ok(None);
                    }
                    // Polling keeps this free of a signal or async runtime;
                    // 1 ms is far below any time it measures.
                    None => thread::sleep(Duration::from_millis(1)),
                }
            },
        };
        let elapsed = started.elapsed();
        let _ = writer.join();
        let stdout = out_reader.join().unwrap_or_default();
        let stderr = err_reader.join().unwrap_or_default();
        if !status.success() {
            return Err(HarnessError::Failed {
                status,
                stderr: String::from_utf8_lossy(&stderr).trim().to_owned(),
            });
        }
        let output = serde_json::from_slice(&stdout).map_err(|error| HarnessError::BadAnswer {
            error,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
        })?;
        Ok(Some(HarnessRun { elapsed, output }))
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The exact bytes the harness has always been sent: key order and
    /// spelling are its format (`interop/js/README.md`).
    #[test]
    fn the_harness_input_keeps_its_format() {
        let mut s = Scenario::all_at_once(2, [(0, 1)], |i| json!({ "peer": i }));
        s.steps.push(Step::SetData(1, json!({ "name": "bob" })));
        s.steps.push(Step::Disconnect(0, 1));
        let (a, b) = (hex(0), hex(1));
        assert_eq!(
            serde_json::to_string(&s.harness_input(Some(7))).unwrap(),
            format!(
                r#"{{"peers":[{{"id":"{a}","data":{{"peer":0}}}},{{"id":"{b}","data":{{"peer":1}}}}],"steps":[{{"connect":[0,1]}},{{"settle":true}},{{"setData":[1,{{"name":"bob"}}]}},{{"disconnect":[0,1]}}],"maxDeliveries":7}}"#
            )
        );
        assert!(!serde_json::to_string(&s.harness_input(None))
            .unwrap()
            .contains("maxDeliveries"));
    }

    #[test]
    fn the_truth_follows_closed_links_and_the_last_data() {
        let mut s = Scenario::all_at_once(3, [(0, 1), (1, 2)], |i| json!({ "peer": i }));
        s.steps.push(Step::Disconnect(2, 1));
        s.steps
            .push(Step::SetData(0, json!({ "peer": 0, "round": 1 })));
        let truth = s.truth();
        assert_eq!(truth.components[&hex(0)], BTreeSet::from([hex(0), hex(1)]));
        assert_eq!(truth.components[&hex(2)], BTreeSet::from([hex(2)]));
        assert_eq!(truth.latest[&hex(0)], json!({ "peer": 0, "round": 1 }));
    }

    #[test]
    fn ours_is_right_and_wrong_views_are_listed() {
        let s = Scenario::all_at_once(4, [(0, 1), (1, 2), (2, 3), (3, 0)], |i| json!({ "i": i }));
        let truth = s.truth();
        let run = s.run_ours(1_000_000);
        assert!(run.quiet);
        let mut views = run.views(s.n());
        assert_eq!(wrong_peers(&views, &truth), Vec::<String>::new());

        views.get_mut(&hex(1)).unwrap().online.pop();
        views
            .get_mut(&hex(2))
            .unwrap()
            .data
            .insert(hex(0), json!({}));
        views.remove(&hex(3));
        let wrong = wrong_peers(&views, &truth);
        assert_eq!(wrong.len(), 3, "{wrong:?}");
        // Listed in id order, which is not index order.
        for (i, why) in [(1, "missing 1"), (2, "wrong data"), (3, "no view")] {
            let line = format!("{}: ", &hex(i)[..16]);
            assert!(
                wrong
                    .iter()
                    .any(|w| w.starts_with(&line) && w.contains(why)),
                "peer {i}, {why}: {wrong:?}"
            );
        }
    }
}
