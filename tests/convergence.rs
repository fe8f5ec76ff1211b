//! Convergence of the presence engine over the simulated network: once the
//! network is quiet, every peer's online list is exactly its connected
//! component and it knows every online peer's latest data, whatever the
//! delivery order, duplicates, losses (with redial), restarts and partitions.
//!
//! Every simulated engine signs its registers as a real node does. Most
//! properties here are about ordering, loss and restarts, not signatures,
//! so their engines skip checking others' signatures
//! ([`Network::without_verification`]): checking was about four fifths of
//! this file's CPU. The properties named `..._signatures_checked` and the
//! 200-peer random mesh keep checking on.

use std::time::Duration;

use bytes::Bytes;
use hyper_presence::sim::{sim_id, topology, Faults, Network};
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const MAX_STEPS: u64 = 20_000_000;

fn data(i: usize, round: u32) -> Bytes {
    Bytes::from(format!("{{\"peer\":{i},\"round\":{round}}}"))
}

/// Whether the engines check each other's signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    On,
    Off,
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Line,
    Ring,
    Star,
    Random,
}

fn links(shape: Shape, n: usize, rng: &mut ChaCha8Rng) -> Vec<(usize, usize)> {
    match shape {
        Shape::Line => topology::line(n),
        Shape::Ring => topology::ring(n),
        Shape::Star => topology::star(n),
        Shape::Random => topology::random_connected(n, n / 2, rng),
    }
}

/// Starts `n` peers and opens every link before any packet is delivered:
/// everybody joins at once, the case the original gets wrong most.
fn join_at_once(
    seed: u64,
    faults: Faults,
    (window, gossip): (Duration, Duration),
    verify: Verify,
    n: usize,
    links: &[(usize, usize)],
) -> Network {
    let mut net = Network::new(seed, faults)
        .without_event_log()
        .with_announce_window(window)
        .with_gossip_window(gossip);
    if verify == Verify::Off {
        net = net.without_verification();
    }
    for i in 0..n {
        net.start(sim_id(i), data(i, 0), false);
    }
    for &(a, b) in links {
        net.connect(sim_id(a), sim_id(b));
    }
    net
}

fn settle(net: &mut Network, what: &str) {
    assert!(
        net.run_until_quiet(MAX_STEPS),
        "{what}: network did not go quiet"
    );
    check(net, what);
}

fn check(net: &Network, what: &str) {
    if let Err(problems) = net.check_converged() {
        panic!("{what}: not converged at {:?}:\n{problems}", net.now());
    }
}

/// A scripted life of a network: join at once, data changes racing each
/// other, a crash, a restart (sometimes remembering nothing of its previous
/// life), a partition and its heal. Checked after each phase.
fn scenario(seed: u64, shape: Shape, n: usize, faults: Faults, verify: Verify) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let links = links(shape, n, &mut rng);
    // Half the runs batch own announcements, up to the latency's scale.
    let window = Duration::from_millis(rng.random_range(0..2) * rng.random_range(1..60));
    // A third pass news on at once, the others batch it, up to the
    // latency's scale.
    let gossip = Duration::from_millis(rng.random_range(0..3).min(1) * rng.random_range(1..60));
    let mut net = join_at_once(seed, faults, (window, gossip), verify, n, &links);
    settle(&mut net, "join at once");

    // Several peers change data twice without waiting: the second value must win.
    for round in 1..=2 {
        for _ in 0..3 {
            let i = rng.random_range(0..n);
            net.set_data(sim_id(i), data(i, round));
        }
    }
    settle(&mut net, "data changes");

    let victim = rng.random_range(0..n);
    let old_links = net.neighbours(&sim_id(victim));
    net.crash(sim_id(victim));
    // Long enough for everyone to notice, too short for them to forget the
    // victim: its restart must then beat the state of its previous life.
    assert!(
        net.run_for(Duration::from_secs(10)),
        "crash: packets still in flight"
    );
    check(&net, "crash");

    let same_incarnation = rng.random_bool(0.5);
    net.start(sim_id(victim), data(victim, 9), same_incarnation);
    for other in old_links {
        net.connect(sim_id(victim), other);
    }
    settle(&mut net, "restart");

    let side: Vec<bool> = (0..n).map(|_| rng.random_bool(0.5)).collect();
    let cut: Vec<(usize, usize)> = links
        .iter()
        .copied()
        .filter(|&(a, b)| side[a] != side[b])
        .collect();
    for &(a, b) in &cut {
        net.disconnect(sim_id(a), sim_id(b));
    }
    settle(&mut net, "partition");
    // Each side moves on while apart.
    for i in 0..n.min(4) {
        net.set_data(sim_id(i), data(i, 5));
    }
    settle(&mut net, "changes while apart");
    for &(a, b) in &cut {
        net.connect(sim_id(a), sim_id(b));
    }
    settle(&mut net, "heal");
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Line),
        Just(Shape::Ring),
        Just(Shape::Star),
        Just(Shape::Random)
    ]
}

proptest! {
    // 1,000 + 1,000 scripted lives of six phases each in CI (about 20 s);
    // PROPTEST_CASES=5000 for a longer hunt.
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Reordering alone (every packet delivered once, in random order).
    #[test]
    fn converges_under_any_delivery_order(seed in any::<u64>(), shape in shape(), n in 2usize..40) {
        scenario(seed, shape, n, Faults::default(), Verify::Off);
    }

    /// Reordering, duplicated packets and lost packets (each loss kills the
    /// link, which is redialled at once).
    #[test]
    fn converges_under_duplication_and_loss(
        seed in any::<u64>(),
        shape in shape(),
        n in 2usize..30,
        duplicate in 0.0f64..0.3,
        drop in 0.0f64..0.03,
    ) {
        scenario(seed, shape, n, Faults::lossy(duplicate, drop), Verify::Off);
    }
}

proptest! {
    // A tenth as many lives with every signature checked: signed registers
    // must converge exactly as unchecked ones do.
    #![proptest_config(ProptestConfig::with_cases(cases().div_ceil(10)))]

    /// Reordering, duplicates and losses, every engine checking every
    /// signature it receives, as a real node does.
    #[test]
    fn converges_with_signatures_checked(
        seed in any::<u64>(),
        shape in shape(),
        n in 2usize..30,
        duplicate in 0.0f64..0.3,
        drop in 0.0f64..0.03,
    ) {
        scenario(seed, shape, n, Faults::lossy(duplicate, drop), Verify::On);
    }
}

#[test]
fn a_200_peer_random_mesh_converges() {
    scenario(
        200,
        Shape::Random,
        200,
        Faults::lossy(0.05, 0.001),
        Verify::On,
    );
}

#[test]
fn a_200_peer_line_converges() {
    scenario(201, Shape::Line, 200, Faults::default(), Verify::Off);
}

#[test]
fn a_200_peer_ring_and_star_converge() {
    scenario(202, Shape::Ring, 200, Faults::default(), Verify::Off);
    scenario(203, Shape::Star, 200, Faults::default(), Verify::Off);
}

/// The original leaves 47 of 50 peers of a line wrong when all join at once;
/// here every one is right.
#[test]
fn a_50_peer_line_joining_at_once_is_right_everywhere() {
    for seed in 0..10 {
        let mut net = join_at_once(
            seed,
            Faults::default(),
            (Duration::ZERO, Duration::from_millis(10)),
            Verify::Off,
            50,
            &topology::line(50),
        );
        settle(&mut net, "line of 50");
    }
}

/// Peers join one at a time, each after the previous one settled (the case
/// where the original is right too).
#[test]
fn joining_one_at_a_time_converges_at_every_step() {
    let mut net = Network::new(7, Faults::default()).without_verification();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    net.start(sim_id(0), data(0, 0), false);
    for i in 1..30 {
        net.start(sim_id(i), data(i, 0), false);
        net.connect(sim_id(i), sim_id(rng.random_range(0..i)));
        settle(&mut net, "one at a time");
    }
}

/// Simultaneous leaves: a third of the peers crash at once.
#[test]
fn many_peers_leaving_at_once_converges() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let links = topology::random_connected(60, 40, &mut rng);
    let mut net = join_at_once(
        11,
        Faults::default(),
        (Duration::from_millis(5), Duration::from_millis(10)),
        Verify::Off,
        60,
        &links,
    );
    settle(&mut net, "join");
    for i in (0..60).step_by(3) {
        net.crash(sim_id(i));
    }
    settle(&mut net, "a third crashed");
}
