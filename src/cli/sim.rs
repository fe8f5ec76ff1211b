//! `hyper-presence sim`: the protocol engine in the simulated network.

use std::process::ExitCode;
use std::time::Instant;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use hyper_presence::sim::{sim_id, topology, Faults, Network};

/// Arguments of `sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// How many peers.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=20_000))]
    peers: u32,
    /// Seed of every random choice: the same seed replays the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How peers are linked.
    #[arg(long, value_enum, default_value_t = Shape::Random)]
    shape: Shape,
    /// Chance that a packet is delivered twice.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    duplicate: f64,
    /// Chance that a packet is lost (its link dies and is redialled).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    drop: f64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Shape {
    /// A random connected graph with about 3 links per peer.
    Random,
    /// A line.
    Line,
    /// A ring.
    Ring,
    /// Everyone linked to one hub.
    Star,
}

fn probability(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=0.5).contains(&p) {
        Ok(p)
    } else {
        Err("a probability here is between 0 and 0.5".into())
    }
}

pub fn run(args: SimArgs) -> Result<ExitCode, String> {
    let n = args.peers as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let links = match args.shape {
        Shape::Random => topology::random_connected(n, n / 2, &mut rng),
        Shape::Line => topology::line(n),
        Shape::Ring => topology::ring(n),
        Shape::Star => topology::star(n),
    };
    let faults = Faults::lossy(args.duplicate, args.drop);
    let mut net = Network::new(args.seed, faults).without_event_log();
    let data = |i: usize, life: u32| Bytes::from(format!("{{\"peer\":{i},\"life\":{life}}}"));
    println!(
        "{n} peers, {} links ({:?}), seed {}, duplicate {}, drop {}",
        links.len(),
        args.shape,
        args.seed,
        args.duplicate,
        args.drop
    );
    println!(
        "{:<28} {:>12} {:>10} {:>12} {:>10} {:>9}",
        "phase", "agreed after", "packets", "bytes", "wall", "correct"
    );
    let mut all_ok = true;
    let mut phase = |net: &mut Network, name: &str, act: &mut dyn FnMut(&mut Network)| {
        let start = net.now();
        let before = net.stats();
        let wall = Instant::now();
        act(net);
        let quiet = net.run_until_quiet(u64::MAX);
        let after = net.stats();
        let agreed = after.last_delivery.saturating_sub(start);
        let verdict = net.check_converged();
        let ok = quiet && verdict.is_ok();
        all_ok &= ok;
        println!(
            "{:<28} {:>12} {:>10} {:>12} {:>10} {:>9}",
            name,
            format!("{:.3} s", agreed.as_secs_f64()),
            after.delivered - before.delivered,
            after.delivered_bytes - before.delivered_bytes,
            format!("{:.2} s", wall.elapsed().as_secs_f64()),
            if ok { "yes" } else { "NO" }
        );
        if let Err(problems) = verdict {
            for line in problems.lines().take(10) {
                println!("    {line}");
            }
        }
    };
    phase(&mut net, "all join at once", &mut |net| {
        for i in 0..n {
            net.start(sim_id(i), data(i, 0), false);
        }
        for &(a, b) in &links {
            net.connect(sim_id(a), sim_id(b));
        }
    });
    let victim_index = rng.random_range(0..n);
    let victim = sim_id(victim_index);
    let neighbours = net.neighbours(&victim);
    phase(&mut net, "one peer crashes", &mut |net| net.crash(victim));
    phase(&mut net, "it restarts", &mut |net| {
        net.start(victim, data(victim_index, 1), false);
        for other in &neighbours {
            net.connect(victim, *other);
        }
    });
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
