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

use std::io::Write;

use hyper_presence::sim::interop::{wrong_peers, Harness, Outcome, Scenario, Step};
use hyper_presence::sim::topology;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

const MAX_STEPS: u64 = 5_000_000;

/// A named scenario: the name is only for messages.
#[derive(Debug, Clone)]
struct Case {
    name: String,
    scenario: Scenario,
}

fn data(i: usize, round: u32) -> Value {
    json!({ "peer": i, "round": round })
}

impl Case {
    /// `n` peers with round-0 data and no steps yet.
    fn new(name: impl Into<String>, n: usize) -> Self {
        Case {
            name: name.into(),
            scenario: Scenario::new(n, |i| data(i, 0)),
        }
    }

    /// `n` peers joining one at a time: each link opens, then the network
    /// settles before the next.
    fn one_at_a_time(
        name: impl Into<String>,
        n: usize,
        links: impl IntoIterator<Item = (usize, usize)>,
    ) -> Self {
        let mut case = Case::new(name, n);
        for (a, b) in links {
            case.scenario.steps.push(Step::Connect(a, b));
            case.scenario.steps.push(Step::Settle);
        }
        case
    }

    fn push(&mut self, step: Step) {
        self.scenario.steps.push(step);
    }
}

/// Runs a scenario through our simulator (see
/// [`Scenario::run_ours`]): every peer must be running at the end.
fn run_ours(case: &Case) -> Outcome {
    let run = case.scenario.run_ours(MAX_STEPS);
    assert!(run.quiet, "{}: our network did not go quiet", case.name);
    let outcome = run.views(case.scenario.n());
    assert_eq!(
        outcome.len(),
        case.scenario.n(),
        "{}: every peer is alive",
        case.name
    );
    outcome
}

/// Runs a scenario through the JavaScript original. Fails loudly when the
/// harness is not installed: this test is never skipped.
fn run_original(case: &Case) -> Outcome {
    let output = Harness::in_source_tree()
        .run(&case.scenario.harness_input(None), None)
        .unwrap_or_else(|e| panic!("{}: {e}", case.name))
        .expect("no timeout, so the harness finished")
        .output;
    assert!(
        output.settled,
        "{}: the original did not settle within the harness' bound",
        case.name
    );
    assert_eq!(
        output.errors,
        Vec::<String>::new(),
        "{}: the original threw",
        case.name
    );
    output.peers
}

/// Visible in `cargo test` output even for a passing test (libtest captures
/// only the print macros).
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Runs a case through both implementations and reports how many peers
/// each got wrong (and where the original did); ours must be right.
/// Returns both outcomes and how many peers the original got wrong.
fn run_both_ours_right(case: &Case) -> (Outcome, Outcome, usize) {
    let truth = case.scenario.truth();
    let ours = run_ours(case);
    let original = run_original(case);
    let ours_wrong = wrong_peers(&ours, &truth);
    let original_wrong = wrong_peers(&original, &truth);
    let n = case.scenario.n();
    let mut text = format!(
        "conformance {}: original {}/{n} peers wrong; ours {}/{n}",
        case.name,
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
        case.name,
        ours_wrong.join("\n")
    );
    (ours, original, original_wrong.len())
}

/// Both implementations must end in the same, correct, state.
fn assert_agree(case: &Case) {
    let (ours, original, _) = run_both_ours_right(case);
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
        case.name,
        differing.len(),
        differing.join("\n")
    );
}

/// Ours must be right; the original's wrong peers are reported beside ours.
/// Returns how many peers the original got wrong.
fn assert_ours_right_report_original(case: &Case) -> usize {
    run_both_ours_right(case).2
}

/// Peers join one at a time into a random tree: each new peer links to one
/// earlier peer, and the network settles before the next one comes.
fn tree_joins(n: usize, seed: u64, name: &str) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let links: Vec<(usize, usize)> = (1..n).map(|i| (rng.random_range(0..i), i)).collect();
    Case::one_at_a_time(format!("tree of {n}, {name}"), n, links)
}

#[test]
fn joining_one_at_a_time_into_a_tree_agrees_with_the_original() {
    for (n, seed) in [(5, 1), (10, 2), (20, 3)] {
        assert_agree(&tree_joins(n, seed, "one join at a time"));
    }
}

#[test]
fn a_line_and_a_star_built_one_at_a_time_agree_with_the_original() {
    for (name, links) in [("line", topology::line(12)), ("star", topology::star(12))] {
        assert_agree(&Case::one_at_a_time(
            format!("{name} of 12, one join at a time"),
            12,
            links,
        ));
    }
}

#[test]
fn data_changes_after_joining_agree_with_the_original() {
    let mut case = tree_joins(10, 4, "then data changes");
    let mut rng = ChaCha8Rng::seed_from_u64(40);
    for round in 1..=3 {
        for _ in 0..3 {
            let i = rng.random_range(0..10);
            case.push(Step::SetData(i, data(i, round)));
        }
        case.push(Step::Settle);
    }
    assert_agree(&case);
}

#[test]
fn a_link_closing_in_a_tree_agrees_with_the_original() {
    let mut case = tree_joins(10, 5, "then one link closes");
    let (a, b) = case
        .scenario
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Connect(a, b) => Some((*a, *b)),
            _ => None,
        })
        .nth(4)
        .expect("the tree has links");
    for step in [
        Step::Disconnect(a, b),
        Step::Settle,
        Step::SetData(a, data(a, 1)),
        Step::SetData(b, data(b, 1)),
        Step::Settle,
    ] {
        case.push(step);
    }
    assert_agree(&case);
}

/// Everybody joins at once on a graph with cycles: all links open, then one
/// settle. The original does not converge here; ours must.
#[test]
fn simultaneous_joins_with_cycles_ours_is_right() {
    let at_once = |name: &str, n: usize, links| Case {
        name: name.into(),
        scenario: Scenario::all_at_once(n, links, |i| data(i, 0)),
    };
    let ring = at_once("ring of 10, all join at once", 10, topology::ring(10));
    let mut rng = ChaCha8Rng::seed_from_u64(20);
    let random = at_once(
        "random graph of 20, all join at once",
        20,
        topology::random_connected(20, 10, &mut rng),
    );

    let mut total = 0;
    for case in [&ring, &random] {
        total += assert_ours_right_report_original(case);
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
    let mut case = tree_joins(n, 6, "then one peer drops a key from its data");
    case.scenario.data = (0..n)
        .map(|i| json!({ "peer": i, "status": "away" }))
        .collect();
    case.push(Step::SetData(2, json!({ "peer": 2 })));
    case.push(Step::Settle);
    assert_ours_right_report_original(&case);
}
