//! The same scenarios through the JavaScript original and through ours, in
//! one run, timed side by side.
//!
//! For each size N: N peers in a random connected graph (a random spanning
//! tree plus N/2 extra links, so it has cycles), each with a JSON object as
//! its data, all links opened at once, then the network settles. It runs
//!
//! 1. through ours: `hyper_presence::sim::Network`, every packet taking the
//!    same 1 ms (so delivery is first in, first out, as in the JavaScript
//!    harness), until nothing is in flight and no timer is pending;
//! 2. through the original: `node interop/js/run-scenario.js`, the
//!    unmodified `hyper-presence` 1.1.3 npm package over an in-memory flood,
//!    with the scenario on stdin, killed if it takes longer than the timeout.
//!
//! Both are timed by the wall clock (ours: building the network and running
//! it; the original: the whole `node` process, start-up included), and both
//! results are checked: a peer is wrong when its online list is not exactly
//! its connected component or it holds data other than what a peer set.
//!
//! Run with
//!
//! ```text
//! npm ci --prefix interop/js      # once
//! cargo run --release --example side_by_side -- [--sizes 25,50,100,200] [--timeout-secs 300] [--seed 1]
//! ```
//!
//! It prints a markdown table and exits non-zero if ours got any peer wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper_presence::sim::{sim_id, topology, Faults, Latency, Network};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// Bound on the events our simulator may process in one run.
const OUR_MAX_STEPS: u64 = 100_000_000;

/// Default `maxDeliveries` passed to the harness (JavaScript's largest safe
/// integer): the timeout, not the harness' packet bound, ends a long run.
const JS_MAX_DELIVERIES: u64 = 9_007_199_254_740_991;

const USAGE: &str = "usage: cargo run --release --example side_by_side -- \
                     [--sizes 25,50,100,200] [--timeout-secs 300] [--seed 1] \
                     [--max-deliveries N]";

struct Args {
    sizes: Vec<usize>,
    timeout: Duration,
    seed: u64,
    max_deliveries: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        sizes: vec![25, 50, 100, 200],
        timeout: Duration::from_secs(300),
        seed: 1,
        max_deliveries: JS_MAX_DELIVERIES,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--sizes" => {
                args.sizes = value
                    .split(',')
                    .map(|s| s.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("--sizes {value}: {e}"))?;
                if args.sizes.iter().any(|&n| n < 2) {
                    return Err(format!("--sizes {value}: every size must be at least 2"));
                }
            }
            "--timeout-secs" => {
                let secs: f64 = value
                    .parse()
                    .map_err(|e| format!("--timeout-secs {value}: {e}"))?;
                if !(secs > 0.0 && secs.is_finite()) {
                    return Err(format!("--timeout-secs {value}: must be positive"));
                }
                args.timeout = Duration::from_secs_f64(secs);
            }
            "--seed" => {
                args.seed = value.parse().map_err(|e| format!("--seed {value}: {e}"))?;
            }
            "--max-deliveries" => {
                args.max_deliveries = value
                    .parse()
                    .ok()
                    .filter(|&m| m > 0 && m <= JS_MAX_DELIVERIES)
                    .ok_or_else(|| {
                        format!("--max-deliveries {value}: must be 1 to {JS_MAX_DELIVERIES}")
                    })?;
            }
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// N peers, their data, and the links all opened at once before one settle.
struct Scenario {
    data: Vec<Value>,
    links: Vec<(usize, usize)>,
}

impl Scenario {
    fn random_graph(n: usize, seed: u64) -> Self {
        let links = topology::random_connected(n, n / 2, &mut ChaCha8Rng::seed_from_u64(seed));
        let data = (0..n)
            .map(|i| json!({ "name": format!("peer {i}"), "peer": i, "status": "here" }))
            .collect();
        Scenario { data, links }
    }

    fn n(&self) -> usize {
        self.data.len()
    }

    /// The input of `run-scenario.js`; a settle stops (reporting "settled":
    /// false) after `max_deliveries` packets.
    fn to_json(&self, max_deliveries: u64) -> Value {
        let peers: Vec<Value> = self
            .data
            .iter()
            .enumerate()
            .map(|(i, d)| json!({ "id": hex(i), "data": d }))
            .collect();
        let mut steps: Vec<Value> = self
            .links
            .iter()
            .map(|(a, b)| json!({ "connect": [a, b] }))
            .collect();
        steps.push(json!({ "settle": true }));
        json!({ "peers": peers, "steps": steps, "maxDeliveries": max_deliveries })
    }

    /// Every peer's connected component (ids in hex) and its data.
    fn truth(&self) -> Truth {
        let n = self.n();
        let mut adjacency = vec![Vec::new(); n];
        for &(a, b) in &self.links {
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
            latest: self
                .data
                .iter()
                .enumerate()
                .map(|(i, d)| (hex(i), d.clone()))
                .collect(),
        }
    }
}

struct Truth {
    components: BTreeMap<String, BTreeSet<String>>,
    latest: BTreeMap<String, Value>,
}

/// What one peer believes at the end: its online list and the data it holds
/// for every online peer.
struct View {
    online: Vec<String>,
    data: BTreeMap<String, Value>,
}

/// Peer id (hex) -> its view.
type Outcome = BTreeMap<String, View>;

fn hex(i: usize) -> String {
    sim_id(i).to_hex()
}

/// How many peers are wrong: online list not exactly their component, or
/// the data of an online peer not the data it set. Peers missing from the
/// outcome count as wrong.
fn wrong_peers(outcome: &Outcome, truth: &Truth) -> usize {
    truth
        .components
        .iter()
        .filter(|(id, component)| {
            let Some(view) = outcome.get(*id) else {
                return true;
            };
            let online: BTreeSet<String> = view.online.iter().cloned().collect();
            &online != *component
                || view
                    .online
                    .iter()
                    .any(|p| view.data.get(p) != truth.latest.get(p))
        })
        .count()
}

struct OursRun {
    elapsed: Duration,
    quiet: bool,
    converged: Result<(), String>,
    wrong: usize,
    delivered: u64,
}

/// Ours: build the simulated network, open every link, run until quiet.
fn run_ours(scenario: &Scenario, truth: &Truth) -> OursRun {
    let same_time = Faults {
        latency: Latency::fixed(Duration::from_millis(1)),
        ..Faults::default()
    };
    let encoded: Vec<Bytes> = scenario
        .data
        .iter()
        .map(|d| Bytes::from(serde_json::to_vec(d).expect("JSON data encodes")))
        .collect();

    let started = Instant::now();
    let mut net = Network::new(0, same_time).without_event_log();
    for (i, d) in encoded.into_iter().enumerate() {
        net.start(sim_id(i), d, false);
    }
    for &(a, b) in &scenario.links {
        net.connect(sim_id(a), sim_id(b));
    }
    let quiet = net.run_until_quiet(OUR_MAX_STEPS);
    let elapsed = started.elapsed();

    let mut outcome = Outcome::new();
    for i in 0..scenario.n() {
        let Some(engine) = net.node(&sim_id(i)) else {
            continue;
        };
        let mut online: Vec<String> = engine.online().iter().map(|p| p.to_hex()).collect();
        online.sort();
        let data = engine
            .online()
            .iter()
            .map(|p| {
                let value = engine
                    .peer_data(p)
                    .and_then(|bytes| serde_json::from_slice(bytes).ok())
                    .unwrap_or(Value::Null);
                (p.to_hex(), value)
            })
            .collect();
        outcome.insert(hex(i), View { online, data });
    }
    OursRun {
        elapsed,
        quiet,
        converged: net.check_converged(),
        wrong: wrong_peers(&outcome, truth),
        delivered: net.stats().delivered,
    }
}

enum OriginalRun {
    /// The process ended and printed a result.
    Finished {
        elapsed: Duration,
        settled: bool,
        errors: usize,
        wrong: usize,
        delivered: u64,
    },
    /// Killed at the timeout.
    TimedOut,
    /// It could not be run, or failed.
    Failed(String),
}

fn harness_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/js")
}

/// Runs `node run-scenario.js` with `input` on stdin. Returns the wall time
/// and stdout, `Ok(None)` if it was killed at the timeout.
fn run_node(input: Vec<u8>, timeout: Duration) -> Result<Option<(Duration, Vec<u8>)>, String> {
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(harness_dir().join("run-scenario.js"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `node` (Node.js 20 is needed): {e}"))?;
    // Feed stdin and drain both outputs on threads, so a large scenario or
    // result never blocks on a full pipe.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let writer = thread::spawn(move || {
        // An error here (node died early) shows up as its exit status.
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });

    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = writer.join();
                let _ = out_reader.join();
                let _ = err_reader.join();
                return Ok(None);
            }
            Ok(None) => thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(format!("waiting for node: {e}")),
        }
    };
    let elapsed = started.elapsed();
    let _ = writer.join();
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!(
            "run-scenario.js failed ({status}): {}",
            String::from_utf8_lossy(&stderr).trim()
        ));
    }
    Ok(Some((elapsed, stdout)))
}

/// The original: the scenario through `run-scenario.js`.
fn run_original(
    scenario: &Scenario,
    truth: &Truth,
    timeout: Duration,
    max_deliveries: u64,
) -> OriginalRun {
    let input = serde_json::to_vec(&scenario.to_json(max_deliveries)).expect("scenario encodes");
    let (elapsed, stdout) = match run_node(input, timeout) {
        Ok(Some(done)) => done,
        Ok(None) => return OriginalRun::TimedOut,
        Err(e) => return OriginalRun::Failed(e),
    };
    let result: Value = match serde_json::from_slice(&stdout) {
        Ok(v) => v,
        Err(e) => return OriginalRun::Failed(format!("run-scenario.js printed no JSON: {e}")),
    };
    let Some(peers) = result["peers"].as_object() else {
        return OriginalRun::Failed("run-scenario.js printed no peers".into());
    };
    let outcome: Outcome = peers
        .iter()
        .map(|(id, view)| {
            let online = view["online"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|p| p.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let data = view["data"]
                .as_object()
                .map(|map| map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            (id.clone(), View { online, data })
        })
        .collect();
    OriginalRun::Finished {
        elapsed,
        settled: result["settled"] == Value::Bool(true),
        errors: result["errors"].as_array().map_or(0, Vec::len),
        wrong: wrong_peers(&outcome, truth),
        delivered: result["delivered"].as_u64().unwrap_or(0),
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 0.01 {
        format!("{s:.4}")
    } else if s < 10.0 {
        format!("{s:.3}")
    } else {
        format!("{s:.1}")
    }
}

fn ratio(original: f64, ours: f64) -> String {
    let r = original / ours.max(1e-9);
    if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    if !harness_dir()
        .join("node_modules/hyper-presence/package.json")
        .is_file()
    {
        eprintln!(
            "the JavaScript harness is not installed: run `npm ci --prefix interop/js` (from {})",
            env!("CARGO_MANIFEST_DIR")
        );
        return ExitCode::from(2);
    }

    // What `node` costs before the original does anything: one peer, no
    // steps (start-up, loading the package, printing the result).
    let empty = Scenario {
        data: vec![json!({})],
        links: Vec::new(),
    };
    let baseline = match run_node(
        serde_json::to_vec(&empty.to_json(JS_MAX_DELIVERIES)).expect("scenario encodes"),
        args.timeout,
    ) {
        Ok(Some((elapsed, _))) => Some(elapsed),
        Ok(None) => None,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut ours_failed = false;
    for &n in &args.sizes {
        let scenario = Scenario::random_graph(n, args.seed);
        let truth = scenario.truth();
        let links = scenario.links.len();
        eprintln!("{n} peers, {links} links: ours ...");
        let ours = run_ours(&scenario, &truth);
        eprintln!(
            "{n} peers: ours {} s; the original (timeout {} s) ...",
            secs(ours.elapsed),
            secs(args.timeout)
        );
        if !ours.quiet {
            notes.push(format!(
                "{n} peers: ours did not go quiet within {OUR_MAX_STEPS} events"
            ));
        }
        if let Err(problems) = &ours.converged {
            let first: Vec<&str> = problems.lines().take(5).collect();
            notes.push(format!(
                "{n} peers: ours did not converge:\n  {}",
                first.join("\n  ")
            ));
        }
        let ours_ok = ours.quiet && ours.converged.is_ok() && ours.wrong == 0;
        ours_failed |= !ours_ok;

        let original = run_original(&scenario, &truth, args.timeout, args.max_deliveries);
        let ours_s = ours.elapsed.as_secs_f64();
        let (original_cell, ratio_cell, wrong_cell, packets_cell) = match &original {
            OriginalRun::Finished {
                elapsed,
                settled,
                errors,
                wrong,
                delivered,
            } => {
                if !settled {
                    notes.push(format!(
                        "{n} peers: the original had not settled when the harness stopped it \
                         after {delivered} packets (--max-deliveries)"
                    ));
                }
                if *errors > 0 {
                    notes.push(format!("{n} peers: the original threw {errors} times"));
                }
                let unsettled = if *settled {
                    ""
                } else {
                    " (stopped, not settled)"
                };
                (
                    format!("{}{unsettled}", secs(*elapsed)),
                    ratio(elapsed.as_secs_f64(), ours_s),
                    format!("{wrong}/{n}"),
                    delivered.to_string(),
                )
            }
            OriginalRun::TimedOut => {
                notes.push(format!(
                    "{n} peers: the original did not finish in {} s (killed)",
                    secs(args.timeout)
                ));
                (
                    format!("> {}", secs(args.timeout)),
                    format!("> {}", ratio(args.timeout.as_secs_f64(), ours_s)),
                    "n/a".to_owned(),
                    "n/a".to_owned(),
                )
            }
            OriginalRun::Failed(e) => {
                notes.push(format!("{n} peers: the original failed: {e}"));
                (
                    "failed".to_owned(),
                    "n/a".to_owned(),
                    "n/a".to_owned(),
                    "n/a".to_owned(),
                )
            }
        };
        eprintln!("{n} peers: the original {original_cell} s");
        rows.push(format!(
            "| {n} | {links} | {} | {original_cell} | {ratio_cell} | {wrong_cell} | {}/{n}{} | {} | {packets_cell} |",
            secs(ours.elapsed),
            ours.wrong,
            if ours_ok { "" } else { " (FAILED)" },
            ours.delivered,
        ));
    }

    println!(
        "Random connected graph (spanning tree + N/2 extra links, seed {}), \
         all links opened at once, then settle; every packet takes the same time.",
        args.seed
    );
    println!();
    println!("| N | links | ours (s) | original (s) | ratio (original/ours) | original wrong peers | ours wrong peers | packets ours | packets original |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!("{row}");
    }
    println!();
    match baseline {
        Some(b) => println!(
            "The original's times are the whole `node` process: {} s of it is start-up and loading the package (one peer, no steps).",
            secs(b)
        ),
        None => println!("The original's start-up alone took longer than the timeout."),
    }
    for note in &notes {
        println!("{note}");
    }
    if ours_failed {
        println!("OURS WAS WRONG: see above.");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
