//! Differential conformance against the JavaScript original.
//!
//! Each scenario runs twice: through our simulator (`hyper_presence::sim`,
//! every packet taking the same time, so delivery is first in, first out)
//! and through `interop/js/run-scenario.js`, which drives the unmodified
//! `hyper-presence` 1.1.3 npm package over an in-memory flood with the same
//! FIFO order. Both report, per peer, the online list and the data seen for
//! every online peer.
//!
//! Where the original converges (peers joining one at a time, data changes
//! after that, a link closing in a tree) both must agree exactly. Where it
//! does not (simultaneous joins on a graph with cycles) ours must be right
//! and the original's wrong peers are reported, not asserted.
//!
//! Needs Node.js and `npm ci --prefix interop/js` (CI runs it).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use hyper_presence::sim::{sim_id, topology, Faults, Latency, Network};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

const MAX_STEPS: u64 = 5_000_000;

/// One thing that happens in a scenario (indices into the peer list).
#[derive(Debug, Clone)]
enum Step {
    Connect(usize, usize),
    Disconnect(usize, usize),
    SetData(usize, Value),
    /// Deliver everything in flight and fire pending timers.
    Settle,
}

#[derive(Debug, Clone)]
struct Scenario {
    name: String,
    /// Each peer's initial data (a JSON object: the original needs one).
    data: Vec<Value>,
    steps: Vec<Step>,
}

/// What one peer believes at the end: its sorted online list and the data it
/// holds for every online peer.
#[derive(Debug, Clone, PartialEq)]
struct View {
    online: Vec<String>,
    data: BTreeMap<String, Value>,
}

/// Peer id (hex) -> its view.
type Outcome = BTreeMap<String, View>;

/// The truth a scenario must end in: each peer's connected component and
/// the data each peer set last.
struct Truth {
    components: BTreeMap<String, BTreeSet<String>>,
    latest: BTreeMap<String, Value>,
}

fn hex(i: usize) -> String {
    sim_id(i).to_hex()
}

fn data(i: usize, round: u32) -> Value {
    json!({ "peer": i, "round": round })
}

fn to_bytes(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("JSON data encodes"))
}

impl Scenario {
    fn new(name: impl Into<String>, n: usize) -> Self {
        Scenario {
            name: name.into(),
            data: (0..n).map(|i| data(i, 0)).collect(),
            steps: Vec::new(),
        }
    }

    fn n(&self) -> usize {
        self.data.len()
    }

    fn to_json(&self) -> Value {
        let peers: Vec<Value> = self
            .data
            .iter()
            .enumerate()
            .map(|(i, d)| json!({ "id": hex(i), "data": d }))
            .collect();
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|step| match step {
                Step::Connect(a, b) => json!({ "connect": [a, b] }),
                Step::Disconnect(a, b) => json!({ "disconnect": [a, b] }),
                Step::SetData(i, d) => json!({ "setData": [i, d] }),
                Step::Settle => json!({ "settle": true }),
            })
            .collect();
        json!({ "peers": peers, "steps": steps })
    }

    /// Connected components of the links left open at the end, and each
    /// peer's last data.
    fn truth(&self) -> Truth {
        let n = self.n();
        let mut links = BTreeSet::new();
        let mut latest: Vec<Value> = self.data.clone();
        for step in &self.steps {
            match step {
                Step::Connect(a, b) if a != b => {
                    links.insert((*a.min(b), *a.max(b)));
                }
                Step::Disconnect(a, b) => {
                    links.remove(&(*a.min(b), *a.max(b)));
                }
                Step::SetData(i, d) => latest[*i] = d.clone(),
                _ => {}
            }
        }
        let mut components = BTreeMap::new();
        for start in 0..n {
            let mut seen = BTreeSet::from([start]);
            let mut stack = vec![start];
            while let Some(p) = stack.pop() {
                for &(a, b) in &links {
                    let other = if a == p {
                        b
                    } else if b == p {
                        a
                    } else {
                        continue;
                    };
                    if seen.insert(other) {
                        stack.push(other);
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
                .map(|(i, d)| (hex(i), d))
                .collect(),
        }
    }
}

/// Runs a scenario through our simulator, every packet taking 1 ms, so
/// packets arrive in the order they were sent, as in the JavaScript harness.
fn run_ours(scenario: &Scenario) -> Outcome {
    let same_time = Faults {
        latency: Latency::fixed(Duration::from_millis(1)),
        ..Faults::default()
    };
    let mut net = Network::new(0, same_time).without_event_log();
    for (i, d) in scenario.data.iter().enumerate() {
        net.start(sim_id(i), to_bytes(d), false);
    }
    for step in &scenario.steps {
        match step {
            Step::Connect(a, b) => net.connect(sim_id(*a), sim_id(*b)),
            Step::Disconnect(a, b) => net.disconnect(sim_id(*a), sim_id(*b)),
            Step::SetData(i, d) => net.set_data(sim_id(*i), to_bytes(d)),
            Step::Settle => assert!(
                net.run_until_quiet(MAX_STEPS),
                "{}: our network did not go quiet",
                scenario.name
            ),
        }
    }
    let mut outcome = Outcome::new();
    for i in 0..scenario.n() {
        let engine = net.node(&sim_id(i)).expect("every peer is alive");
        let online: Vec<String> = engine.online().iter().map(|p| p.to_hex()).collect();
        let data = engine
            .online()
            .iter()
            .map(|p| {
                let value = match engine.peer_data(p) {
                    Some(bytes) => serde_json::from_slice(bytes).expect("our data is JSON"),
                    None => Value::Null,
                };
                (p.to_hex(), value)
            })
            .collect();
        let mut online = online;
        online.sort();
        outcome.insert(hex(i), View { online, data });
    }
    outcome
}

fn harness_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/js")
}

/// Runs a scenario through the JavaScript original. Fails loudly when the
/// harness is not installed: this test is never skipped.
fn run_original(scenario: &Scenario) -> Outcome {
    let dir = harness_dir();
    assert!(
        dir.join("node_modules/hyper-presence/package.json")
            .is_file(),
        "the JavaScript harness is not installed: run `npm ci --prefix interop/js` \
         (from {}) and try again",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut child = Command::new("node")
        .arg(dir.join("run-scenario.js"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `node` (Node.js 20 is needed): {e}"));
    let input = serde_json::to_vec(&scenario.to_json()).expect("scenario encodes");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(&input)
        .expect("scenario written to node");
    let output = child.wait_with_output().expect("node finished");
    assert!(
        output.status.success(),
        "{}: run-scenario.js failed ({}):\n{}",
        scenario.name,
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: run-scenario.js printed no JSON ({e}):\n{}",
            scenario.name,
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert_eq!(
        result["settled"],
        Value::Bool(true),
        "{}: the original did not settle within the harness' bound",
        scenario.name
    );
    assert_eq!(
        result["errors"],
        json!([]),
        "{}: the original threw",
        scenario.name
    );
    let peers = result["peers"].as_object().expect("result has peers");
    peers
        .iter()
        .map(|(id, view)| {
            let online = view["online"]
                .as_array()
                .expect("online is a list")
                .iter()
                .map(|p| p.as_str().expect("ids are strings").to_owned())
                .collect();
            let data = view["data"]
                .as_object()
                .expect("data is an object")
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (id.clone(), View { online, data })
        })
        .collect()
}

/// Peers whose view is wrong: online list not exactly their component, or
/// data of an online peer not the data it set last. One line per peer.
fn wrong_peers(outcome: &Outcome, truth: &Truth) -> Vec<String> {
    let mut wrong = Vec::new();
    for (id, view) in outcome {
        let component = &truth.components[id];
        let online: BTreeSet<String> = view.online.iter().cloned().collect();
        if &online != component {
            let missing = component.difference(&online).count();
            let extra = online.difference(component).count();
            wrong.push(format!(
                "{}: online {} of {} (missing {missing}, extra {extra})",
                &id[..16],
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
                format!("{} = {seen} (latest {})", &p[..16], truth.latest[p])
            })
            .collect();
        if !stale.is_empty() {
            wrong.push(format!(
                "{}: wrong data for {}",
                &id[..16],
                stale.join(", ")
            ));
        }
    }
    wrong
}

/// Visible in `cargo test` output even for a passing test (libtest captures
/// only the print macros).
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Both implementations must end in the same, correct, state.
fn assert_agree(scenario: &Scenario) {
    let truth = scenario.truth();
    let ours = run_ours(scenario);
    let original = run_original(scenario);
    let ours_wrong = wrong_peers(&ours, &truth);
    let original_wrong = wrong_peers(&original, &truth);
    let n = scenario.n();
    report(&format!(
        "conformance {}: original {}/{n} peers wrong; ours {}/{n}",
        scenario.name,
        original_wrong.len(),
        ours_wrong.len()
    ));
    assert!(
        ours_wrong.is_empty(),
        "{}: ours is wrong:\n{}",
        scenario.name,
        ours_wrong.join("\n")
    );
    let differing: Vec<String> = ours
        .keys()
        .filter(|id| ours.get(*id) != original.get(*id))
        .map(|id| {
            format!(
                "{}:\n  ours     {:?}\n  original {:?}",
                &id[..16],
                ours.get(id),
                original.get(id)
            )
        })
        .collect();
    assert!(
        differing.is_empty() && ours.len() == original.len(),
        "{}: the original and ours disagree on {} peers:\n{}",
        scenario.name,
        differing.len(),
        differing.join("\n")
    );
}

/// Ours must be right; the original's wrong peers are reported beside ours.
/// Returns how many peers the original got wrong.
fn assert_ours_right_report_original(scenario: &Scenario) -> usize {
    let truth = scenario.truth();
    let ours = run_ours(scenario);
    let original = run_original(scenario);
    let ours_wrong = wrong_peers(&ours, &truth);
    let original_wrong = wrong_peers(&original, &truth);
    let n = scenario.n();
    let mut text = format!(
        "conformance {}: original {}/{n} peers wrong; ours {}/{n}",
        scenario.name,
        original_wrong.len(),
        ours_wrong.len()
    );
    for line in &original_wrong {
        text.push_str(&format!("\n  original wrong at {line}"));
    }
    report(&text);
    assert!(
        ours_wrong.is_empty(),
        "{}: ours is wrong:\n{}",
        scenario.name,
        ours_wrong.join("\n")
    );
    original_wrong.len()
}

/// Peers join one at a time into a random tree: each new peer links to one
/// earlier peer, and the network settles before the next one comes.
fn tree_joins(n: usize, seed: u64) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut s = Scenario::new(format!("tree of {n}, one join at a time"), n);
    for i in 1..n {
        s.steps.push(Step::Connect(rng.random_range(0..i), i));
        s.steps.push(Step::Settle);
    }
    s
}

#[test]
fn joining_one_at_a_time_into_a_tree_agrees_with_the_original() {
    for (n, seed) in [(5, 1), (10, 2), (20, 3)] {
        assert_agree(&tree_joins(n, seed));
    }
}

#[test]
fn a_line_and_a_star_built_one_at_a_time_agree_with_the_original() {
    for (name, links) in [("line", topology::line(12)), ("star", topology::star(12))] {
        let mut s = Scenario::new(format!("{name} of 12, one join at a time"), 12);
        for (a, b) in links {
            s.steps.push(Step::Connect(a, b));
            s.steps.push(Step::Settle);
        }
        assert_agree(&s);
    }
}

#[test]
fn data_changes_after_joining_agree_with_the_original() {
    let mut s = tree_joins(10, 4);
    s.name = "tree of 10, then data changes".into();
    let mut rng = ChaCha8Rng::seed_from_u64(40);
    for round in 1..=3 {
        for _ in 0..3 {
            let i = rng.random_range(0..10);
            s.steps.push(Step::SetData(i, data(i, round)));
        }
        s.steps.push(Step::Settle);
    }
    assert_agree(&s);
}

#[test]
fn a_link_closing_in_a_tree_agrees_with_the_original() {
    let mut s = tree_joins(10, 5);
    s.name = "tree of 10, then one link closes".into();
    let (a, b) = s
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Connect(a, b) => Some((*a, *b)),
            _ => None,
        })
        .nth(4)
        .expect("the tree has links");
    s.steps.push(Step::Disconnect(a, b));
    s.steps.push(Step::Settle);
    s.steps.push(Step::SetData(a, data(a, 1)));
    s.steps.push(Step::SetData(b, data(b, 1)));
    s.steps.push(Step::Settle);
    assert_agree(&s);
}

/// Everybody joins at once on a graph with cycles: all links open, then one
/// settle. The original does not converge here; ours must.
#[test]
fn simultaneous_joins_with_cycles_ours_is_right() {
    let mut ring = Scenario::new("ring of 10, all join at once", 10);
    for (a, b) in topology::ring(10) {
        ring.steps.push(Step::Connect(a, b));
    }
    ring.steps.push(Step::Settle);

    let mut rng = ChaCha8Rng::seed_from_u64(20);
    let mut random = Scenario::new("random graph of 20, all join at once", 20);
    for (a, b) in topology::random_connected(20, 10, &mut rng) {
        random.steps.push(Step::Connect(a, b));
    }
    random.steps.push(Step::Settle);

    let mut total = 0;
    for s in [&ring, &random] {
        total += assert_ours_right_report_original(s);
    }
    report(&format!(
        "conformance: simultaneous joins, the original got {total} of 30 peers wrong"
    ));
}

/// A peer drops a key from its data. The original merges received data key
/// by key into what it had (jsnetworkx `addNode` does `Object.assign`), so
/// the dropped key lives on everywhere, even in the peer's own
/// `getPeerData(self)`; ours replaces data whole.
#[test]
fn a_key_removed_from_data_ours_is_right() {
    let n = 6;
    let mut s = tree_joins(n, 6);
    s.name = "tree of 6, then one peer drops a key from its data".into();
    s.data = (0..n)
        .map(|i| json!({ "peer": i, "status": "away" }))
        .collect();
    s.steps.push(Step::SetData(2, json!({ "peer": 2 })));
    s.steps.push(Step::Settle);
    assert_ours_right_report_original(&s);
}
