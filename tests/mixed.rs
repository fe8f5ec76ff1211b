//! JavaScript peers (the unmodified `hyper-presence` 1.1.3) and our engines
//! in one simulated network, exchanging the real flood packets
//! (`hyper_presence::sim::mixed`, `interop/js/mixed-host.js`).
//!
//! Each scenario runs twice: mixed, and with every peer JavaScript (the
//! control, same steps, same packet timing). After the network goes quiet,
//! every Rust view must be exactly right, and every JavaScript view must
//! have no more wrong entries (missing peers, ghosts, wrong data) than the
//! same peer's view in the control. Both counts are printed for every peer.
//!
//! The `finding_*` tests are scenarios where that did not hold until the
//! engine learned what JavaScript neighbours need (`src/proto/presence/
//! javascript.rs`, "Compatibility notes" in `PROTOCOL.md`); each says what
//! went wrong, read off the run's packet trace (`MixedScenario::trace`),
//! and what fixed it.
//!
//! Needs Node.js and `npm ci --prefix interop/js`; without `node_modules`
//! the tests that need it say so and pass.

use std::io::Write;
use std::path::Path;

use hyper_presence::sim::interop::{self, wrong_peers, Harness};
use hyper_presence::sim::mixed::{MixedReport, MixedScenario, MixedStep, Side};
use hyper_presence::sim::topology;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use MixedStep::{Connect, Crash, Disconnect, Heal, Leave, Partition, Restart, SetData, Settle};

/// Visible in `cargo test` output even for a passing test (libtest captures
/// only the print macros).
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Whether the JavaScript harness is installed; says why not when it is not.
fn installed() -> bool {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/js/node_modules");
    if dir.is_dir() {
        return true;
    }
    report(&format!(
        "skipped: {} is missing; run `npm ci --prefix interop/js` to run the mixed-network tests",
        dir.display()
    ));
    false
}

fn data(i: usize, round: u32) -> Value {
    json!({ "peer": i, "round": round })
}

/// Even peers JavaScript, odd peers ours.
fn alternating(i: usize) -> Side {
    if i.is_multiple_of(2) {
        Side::Js
    } else {
        Side::Rust
    }
}

/// `n` peers on `side`, joining over `links` one at a time (the network
/// settles after each link: the original converges on trees built so).
fn one_at_a_time(
    n: usize,
    links: Vec<(usize, usize)>,
    side: impl FnMut(usize) -> Side,
) -> MixedScenario {
    let mut s = MixedScenario::new(n, side, |i| data(i, 0));
    for (a, b) in links {
        s.then([Connect(a, b), Settle]);
    }
    s
}

/// `n` peers on `side`, all `links` opened at once, then one settle.
fn at_once(n: usize, links: Vec<(usize, usize)>, side: impl FnMut(usize) -> Side) -> MixedScenario {
    let mut s = MixedScenario::new(n, side, |i| data(i, 0));
    s.join_at_once(links);
    s
}

/// Runs a scenario mixed and as the control and prints both counts per peer.
fn run(name: &str, scenario: &MixedScenario) -> MixedReport {
    let r = scenario.compare().unwrap_or_else(|e| panic!("{name}: {e}"));
    report(&format!("mixed {name}:\n{r}"));
    r
}

/// The promise: quiet, every Rust view right, no JavaScript view worse than
/// in the control, the package throwing no more than in the control.
fn assert_holds(name: &str, scenario: &MixedScenario) {
    let r = run(name, scenario);
    assert!(r.mixed.quiet && r.control.quiet, "{name}: did not go quiet");
    assert!(
        r.rust_wrong().is_empty(),
        "{name}: a Rust view is wrong:\n{r}"
    );
    assert!(
        r.js_worse().is_empty(),
        "{name}: a JavaScript view is worse than in the control:\n{r}"
    );
    assert!(
        r.holds(),
        "{name}: the package threw more than in the control:\n{r}"
    );
}

/// [`assert_holds`], and more: every JavaScript view exactly right too,
/// where the control's are not.
fn assert_exact(name: &str, scenario: &MixedScenario) {
    let r = run(name, scenario);
    assert!(r.holds(), "{name}: the promise does not hold:\n{r}");
    assert!(
        r.peers.iter().all(|p| p.mixed.total() == 0),
        "{name}: a JavaScript view is not exactly right:\n{r}"
    );
}

// ----- the harness itself --------------------------------------------------

/// With every peer ours, the mixed network is just a simulator: every view
/// must be exactly right, whatever happened. Needs no Node.js.
#[test]
fn all_rust_runs_are_exactly_right() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut cases = vec![
        at_once(10, topology::line(10), |_| Side::Rust),
        at_once(10, topology::ring(10), |_| Side::Rust),
        at_once(12, topology::random_regular(12, 3, &mut rng), |_| {
            Side::Rust
        }),
    ];
    let mut churn = one_at_a_time(8, topology::ring(8), |_| Side::Rust);
    churn.then([
        Disconnect(0, 1),
        Connect(0, 1),
        Settle,
        Leave(2),
        Settle,
        Restart(2),
        Crash(5),
        Settle,
        Restart(5),
        Partition(vec![0, 1, 2, 3]),
        SetData(1, data(1, 1)),
        SetData(6, data(6, 1)),
        Settle,
        Heal,
        Settle,
    ]);
    cases.push(churn);
    for (i, s) in cases.iter().enumerate() {
        let run = s.run().expect("no JavaScript peer, no host");
        assert!(run.quiet, "case {i}: not quiet");
        assert_eq!(run.views.len(), s.n(), "case {i}: every peer runs");
        let wrong = wrong_peers(&run.views, &run.truth);
        assert!(wrong.is_empty(), "case {i}: {wrong:?}");
    }
}

/// The control run (every peer JavaScript, through `mixed-host.js` and this
/// network's clock) ends exactly where `run-scenario.js` does: both deliver
/// first in, first out, so the host adds nothing of its own.
#[test]
fn the_all_javascript_control_agrees_with_run_scenario_js() {
    if !installed() {
        return;
    }
    let ring = at_once(10, topology::ring(10), |_| Side::Js);
    let mut tree = one_at_a_time(8, vec![(0, 1), (1, 2), (1, 3), (3, 4), (2, 5)], |_| {
        Side::Js
    });
    tree.then([
        SetData(4, data(4, 1)),
        Disconnect(1, 2),
        Settle,
        SetData(0, data(0, 2)),
        Settle,
    ]);
    for (name, s) in [
        ("ring of 10 at once", ring),
        ("tree, data, a link down", tree),
    ] {
        let steps = s
            .steps
            .iter()
            .map(|step| match step {
                Connect(a, b) => interop::Step::Connect(*a, *b),
                Disconnect(a, b) => interop::Step::Disconnect(*a, *b),
                SetData(i, v) => interop::Step::SetData(*i, v.clone()),
                Settle => interop::Step::Settle,
                other => panic!("no such step in run-scenario.js: {other:?}"),
            })
            .collect();
        let scenario = interop::Scenario {
            data: s.data.clone(),
            steps,
        };
        let original = Harness::in_source_tree()
            .run(&scenario.harness_input(None), None)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .expect("no timeout")
            .output;
        let control = s.run().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(control.quiet && original.settled, "{name}");
        assert_eq!(control.views, original.peers, "{name}");
        assert_eq!(control.delivered, original.delivered, "{name}");
    }
}

// ----- what holds ------------------------------------------------------------

/// A ring built one link at a time, JavaScript and Rust peers alternating,
/// then: links flapping (back at once, within the 500 ms grace, and after
/// it), a JavaScript and a Rust peer leaving and coming back, both
/// crashing and restarting at once, and data changes on both sides.
#[test]
fn alternating_ring_built_one_at_a_time_with_churn() {
    if !installed() {
        return;
    }
    let base = one_at_a_time(8, topology::ring(8), alternating);
    let cases: Vec<(&str, Vec<MixedStep>)> = vec![
        ("as built", vec![]),
        (
            "a JS-Rust link flaps, back at once",
            vec![Disconnect(0, 1), Connect(0, 1), Settle],
        ),
        (
            "links flap, back after the grace",
            vec![
                Disconnect(0, 1),
                Settle,
                Connect(0, 1),
                Settle,
                Disconnect(1, 2),
                Settle,
                Connect(1, 2),
                Settle,
            ],
        ),
        (
            "a JS peer leaves and restarts",
            vec![Leave(2), Settle, Restart(2), Settle],
        ),
        (
            "a Rust peer leaves and restarts",
            vec![Leave(5), Settle, Restart(5), Settle],
        ),
        (
            "a JS peer and a Rust peer crash and restart at once",
            vec![Restart(2), Settle, Restart(5), Settle],
        ),
        (
            "data changes on both sides",
            vec![
                SetData(0, data(0, 1)),
                SetData(3, data(3, 1)),
                Settle,
                SetData(4, data(4, 2)),
                SetData(5, data(5, 2)),
                Settle,
            ],
        ),
    ];
    for (name, steps) in cases {
        let mut s = base.clone();
        s.then(steps);
        assert_holds(&format!("ring of 8, alternating, {name}"), &s);
    }
}

/// Half the ring JavaScript, half Rust, split along the seam and healed.
#[test]
fn a_ring_half_javascript_half_rust_partitions_and_heals() {
    if !installed() {
        return;
    }
    let mut s = one_at_a_time(8, topology::ring(8), |i| {
        if i < 4 {
            Side::Js
        } else {
            Side::Rust
        }
    });
    s.then([Partition(vec![0, 1, 2, 3]), Settle, Heal, Settle]);
    assert_holds("ring of 8, JS 0-3, Rust 4-7, partition and heal", &s);
}

// ----- findings: where our engines left a view wrong -------------------------
//
// Each of these failed before the fixes named. The causes, read off the
// packet traces (`MixedScenario { trace: true, .. }`, one line per
// delivered packet):
//
// (A) News that our engines pass to each other in batches reached a
//     JavaScript neighbour as a BOOTSTRAP_RESPONSE (ttl 0). The original
//     merges a response but never relays it, so that news crossed one
//     JavaScript peer and stopped. Fixed: JavaScript neighbours get every
//     register change as the flood packet of that change (CONNECTED /
//     DISCONNECTED per edge added or removed, STATE), numbered from the
//     news so that all copies are one packet to their duplicate cache.
// (B) Our engines relayed a JavaScript origin's flood packets at once but
//     passed their own link changes on in batches (one 10 ms gossip window
//     per Rust hop). A JavaScript peer then got a new peer's STATE before
//     the edge that makes that peer reachable, pruned it with its data
//     (the original's defect), and re-created it from the edge later with
//     data `{}`. Fixed: a JavaScript origin's packet is relayed only after
//     every outbox is flushed, and what goes to a JavaScript peer goes at
//     the end of the input, edges before data.
// (C) On a JavaScript peer's request, our engine floods one CONNECTED per
//     link, all with the same stamp. Our relays took the first and dropped
//     the others as "not news" (same stamp), but the original reads only
//     `id` from each. Fixed: toward JavaScript peers we relay by (origin,
//     number), as the original does, unless our register contradicts it.
// (D) A JavaScript view's `{}` (the original's placeholder for a node it
//     re-created from an edge) was taken by our engine as that peer's data;
//     the right data later reached the JavaScript neighbours only as views,
//     which they do not pass on. Fixed: the placeholder never replaces data
//     and anything replaces it; a JavaScript view showing it for a node we
//     know better gets our entry back, and our peers behind that JavaScript
//     peer get it in a tunnel (a flood packet of a type the original
//     relays without reading). Tunnels also carry a JavaScript origin's
//     news that only views hold (its edges from before a link existed) to
//     our peers behind JavaScript peers.

/// (A) and (B), in the simplest case: a tree built one link at a time,
/// JavaScript and Rust alternating; the control is all right. Before the
/// fixes:
///
/// The last link is JS #4 - Rust #7. #7's STATE (a stamped flood packet)
/// reaches Rust #3 through JS #4 and goes on to Rust #1 in a batch
/// (BOOTSTRAP_RESPONSE at 125 ms); Rust #1 passes it to JS #0 and JS #2 as
/// a ttl-0 BOOTSTRAP_RESPONSE (136 ms), which they merge but do not relay,
/// so Rust #5 (data of #7: none) and JS #6 (data of #7: `{}`, from #4's
/// CONNECTED #7) never hear it. What they needed: #7's STATE as a flood
/// packet relayed by JS #2. And Rust #7 holds `{}` for JS #6 (B): JS #4
/// answered #7's request from a graph in which #6 was re-created with `{}`,
/// because Rust #5's CONNECTED #6 reached JS #4 only as Rust #3's batch at
/// 113 ms, after #6's own CONNECTED #5 and STATE floods (94 ms), which the
/// original applied and pruned; Rust #3's correct entry for #6 (125 ms) went
/// to JS #4, which does not pass it on to #7.
#[test]
fn finding_a_tree_built_one_at_a_time() {
    if !installed() {
        return;
    }
    let tree = vec![(0, 1), (1, 2), (1, 3), (3, 4), (2, 5), (5, 6), (4, 7)];
    assert_holds(
        "tree of 8 built one at a time, alternating",
        &one_at_a_time(8, tree, alternating),
    );
}

/// (B): a ring of four Rust peers, each with one JavaScript leaf, built one
/// link at a time; the control is all right. Before the fixes JS #0, #2 and
/// #4 showed the other leaves' data as `{}`:
///
/// When JS #2 links to Rust #3, #2's CONNECTED #3 and STATE flood packets
/// are relayed by #3 and #1 at once and reach JS #0 at 133 ms; Rust #3's
/// own new edge #3 -> #2 goes to Rust #1 in a batch (141 ms) and reaches
/// JS #0 as a BOOTSTRAP_RESPONSE at 152 ms. At 133 ms JS #0 cannot reach
/// #2, so it drops #2 with its data; at 152 ms the edge re-creates #2 with
/// `{}`, and #2's STATE never comes again. JS #0 needed Rust #3's CONNECTED
/// #2 before JS #2's STATE, as a flood packet.
#[test]
fn finding_b_rust_core_with_javascript_leaves() {
    if !installed() {
        return;
    }
    let links = vec![
        (1, 3),
        (3, 5),
        (5, 7),
        (7, 1),
        (0, 1),
        (2, 3),
        (4, 5),
        (6, 7),
    ];
    assert_holds(
        "Rust ring 1-3-5-7 with JS leaves, built one at a time",
        &one_at_a_time(8, links, alternating),
    );
}

/// (C), with (A) behind it: a line of 10, alternating, all links at once.
/// The control gets JS #0 and #2 right; before the fixes, JS #0 missed #5
/// to #9.
///
/// Rust #3 answers JS #2's request with CONNECTED #2 and CONNECTED #4, both
/// stamped @1.4 (packets #3/2298633411 and #3/2298633412). JS #2 relays
/// both to Rust #1, which relays the first to JS #0 and drops the second
/// (same stamp: not news). JS #0 never learns the edge #3 -> #4 from a
/// flood, so when JS #4's CONNECTED #5 arrives (4 ms) #4 is unreachable and
/// the news is pruned; the same happens to Rust #5's second CONNECTED
/// (#6), and so on down the line. The edges come later only inside Rust
/// #1's BOOTSTRAP_RESPONSE (11 ms), too late for what was already pruned.
/// Rust #5, #7 and #9 are wrong too: their only source for the far end is
/// their JavaScript neighbours, which never relay the views (A); JS #2's
/// edge to #1 exists only in views (its CONNECTED went out before its link
/// to #3 did), and reaches Rust #5 and beyond now in tunnels.
///
/// After that, JS #6 and #8 still showed `{}` for JS #0: its STATE reached
/// them before any path to it, so they dropped it, and took the node back
/// with `{}` with the edges. A node that becomes reachable in one of our
/// views while we already hold its data now goes to our JavaScript
/// neighbours in a view (`pass_on_reached`): every view is exact.
#[test]
fn finding_c_a_line_joining_at_once() {
    if !installed() {
        return;
    }
    assert_exact(
        "line of 10, alternating, join at once",
        &at_once(10, topology::line(10), alternating),
    );
}

/// (A) to (C) on graphs with cycles joining at once (where the original
/// alone already goes wrong): ring of 10 alternating (JS #0, #2 and #4
/// worse than in the control); random 3-regular of 12 with every third peer
/// JavaScript (Rust #4 and #8, whose neighbours outside each other are all
/// JavaScript, never got the data of Rust #1 and #5: it travelled only in
/// batches between our peers and as views to JavaScript ones (A)). Here a
/// tunnel that let a JavaScript peer's view stand for its own data once
/// made two of our peers trade `{}` and the real data forever; a tunnel's
/// entries are now always taken as our peer's, never as the carrier's word
/// about itself.
#[test]
fn finding_graphs_with_cycles_joining_at_once() {
    if !installed() {
        return;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let regular = topology::random_regular(12, 3, &mut rng);
    let every_third = |i: usize| {
        if i.is_multiple_of(3) {
            Side::Js
        } else {
            Side::Rust
        }
    };
    assert_holds(
        "ring of 10, alternating, join at once",
        &at_once(10, topology::ring(10), alternating),
    );
    assert_holds(
        "random 3-regular of 12, every third JS, join at once",
        &at_once(12, regular, every_third),
    );
}

/// (D): in the alternating ring of 8, JS #2 leaves and restarts, then Rust
/// #5 does. Rust #5's neighbours are JS #4 and JS #6; at 1118 ms both
/// answer its requests with views in which JS #2 has data `{}`, and our
/// engine takes that. At 1128 ms Rust #3 and #7 push views with #2's right
/// data to JS #4 and #6, which fix their own views and pass nothing on; JS
/// #2 never floods its STATE again. Rust #5 ends with `{}` for #2 (the
/// control's JS #5 is worse, but a Rust view must be right).
#[test]
fn finding_d_both_sides_leave_and_restart() {
    if !installed() {
        return;
    }
    let mut s = one_at_a_time(8, topology::ring(8), alternating);
    s.then([
        Leave(2),
        Settle,
        Restart(2),
        Settle,
        Leave(5),
        Settle,
        Restart(5),
        Settle,
    ]);
    assert_holds(
        "ring of 8, alternating, JS #2 then Rust #5 leave and restart",
        &s,
    );
}

/// The alternating ring of 8 split in halves and healed: JS #2 ended
/// missing #5 and #6 (as in the control) and with `{}` for Rust #7 (not in
/// the control). With (A) fixed but our links and data announced to a new
/// JavaScript neighbour under the numbers of the news, this and the
/// half-and-half ring above went wrong the same way: the JavaScript peers
/// had pruned our nodes with their data during the partition, and took the
/// announcements after the heal for duplicates (still in their 255-entry
/// cache). On a new JavaScript link we now announce ourselves under new
/// numbers, as the original does on every new link. JS #2 and #6 still
/// showed `{}` for the peers across the cut (the control misses them): the
/// original never floods a peer's data again unless that peer links anew.
/// Now a node that becomes reachable again in one of our views, its data
/// held, goes to our JavaScript neighbours in a view: every view is exact.
#[test]
fn finding_alternating_ring_partition_and_heal() {
    if !installed() {
        return;
    }
    let mut s = one_at_a_time(8, topology::ring(8), alternating);
    s.then([Partition(vec![0, 1, 2, 3]), Settle, Heal, Settle]);
    assert_exact("ring of 8, alternating, partition and heal", &s);
}
