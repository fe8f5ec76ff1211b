//! The same scenarios through the JavaScript original and through ours, in
//! one run, timed side by side.
//!
//! For each size N: N peers in a random connected graph (a random spanning
//! tree plus N/2 extra links, so it has cycles), each with a JSON object as
//! its data, all links opened at once, then the network settles. It runs
//!
//! 1. through ours: `hyper_presence::sim::interop`, which plays the scenario
//!    (the format the JavaScript harness reads too) on the simulated network
//!    `hyper_presence::sim::Network`, every packet taking the same 1 ms (so
//!    delivery is first in, first out, as in the JavaScript harness), until
//!    nothing is in flight and no timer is pending;
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

use std::process::ExitCode;
use std::time::Duration;

use hyper_presence::sim::interop::{wrong_peers, Harness, HarnessRun, Scenario, Step};
use hyper_presence::sim::topology;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

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

/// N peers in a random connected graph (a random spanning tree plus N/2
/// extra links), each with a JSON object as its data, all links opened at
/// once, then one settle.
fn random_graph(n: usize, seed: u64) -> Scenario {
    let links = topology::random_connected(n, n / 2, &mut ChaCha8Rng::seed_from_u64(seed));
    Scenario::all_at_once(
        n,
        links,
        |i| json!({ "name": format!("peer {i}"), "peer": i, "status": "here" }),
    )
}

/// The links a scenario opens: its `Connect` steps (counted, so this stays
/// right for scenarios that are not all at once).
fn links(scenario: &Scenario) -> usize {
    scenario
        .steps
        .iter()
        .filter(|s| matches!(s, Step::Connect(..)))
        .count()
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

/// The original: the scenario through `run-scenario.js`.
fn run_original(scenario: &Scenario, timeout: Duration, max_deliveries: u64) -> OriginalRun {
    let input = scenario.harness_input(Some(max_deliveries));
    match Harness::in_source_tree().run(&input, Some(timeout)) {
        Ok(Some(HarnessRun { elapsed, output })) => OriginalRun::Finished {
            elapsed,
            settled: output.settled,
            errors: output.errors.len(),
            wrong: wrong_peers(&output.peers, &scenario.truth()).len(),
            delivered: output.delivered,
        },
        Ok(None) => OriginalRun::TimedOut,
        Err(e) => OriginalRun::Failed(e.to_string()),
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
    if let Err(e) = Harness::in_source_tree().check_installed() {
        eprintln!("{e}");
        return ExitCode::from(2);
    }

    // What `node` costs before the original does anything: one peer, no
    // steps (start-up, loading the package, printing the result).
    let empty = Scenario::new(1, |_| json!({}));
    let baseline = match Harness::in_source_tree().run(
        &empty.harness_input(Some(JS_MAX_DELIVERIES)),
        Some(args.timeout),
    ) {
        Ok(Some(run)) => Some(run.elapsed),
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
        let scenario = random_graph(n, args.seed);
        let links = links(&scenario);
        eprintln!("{n} peers, {links} links: ours ...");
        let ours = scenario.run_ours(OUR_MAX_STEPS);
        let converged = ours.network.check_converged();
        let ours_wrong = wrong_peers(&ours.views(n), &scenario.truth()).len();
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
        if let Err(problems) = &converged {
            let first: Vec<&str> = problems.lines().take(5).collect();
            notes.push(format!(
                "{n} peers: ours did not converge:\n  {}",
                first.join("\n  ")
            ));
        }
        let ours_ok = ours.quiet && converged.is_ok() && ours_wrong == 0;
        ours_failed |= !ours_ok;

        let original = run_original(&scenario, args.timeout, args.max_deliveries);
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
            ours_wrong,
            if ours_ok { "" } else { " (FAILED)" },
            ours.network.stats().delivered,
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
