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
    /// Links per peer for `regular` and `small-world` (nearest neighbours),
    /// new links per peer for `scale-free`.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    degree: u32,
    /// Print one JSON object per phase instead of the table.
    #[arg(long)]
    json: bool,
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
    /// Random, every peer with exactly --degree links.
    Regular,
    /// Watts–Strogatz: a ring lattice of --degree nearest neighbours, 10% rewired.
    SmallWorld,
    /// Barabási–Albert: each peer links to --degree earlier peers, preferring hubs.
    ScaleFree,
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
        Shape::Regular => topology::random_regular(n, args.degree as usize, &mut rng),
        Shape::SmallWorld => topology::small_world(n, args.degree as usize, 0.1, &mut rng),
        Shape::ScaleFree => topology::scale_free(n, args.degree as usize, &mut rng),
    };
    let faults = Faults::lossy(args.duplicate, args.drop);
    let mut net = Network::new(args.seed, faults)
        .without_event_log()
        .with_announce_window(std::time::Duration::from_millis(5));
    let data = |i: usize, life: u32| Bytes::from(format!("{{\"peer\":{i},\"life\":{life}}}"));
    let json = args.json;
    if !json {
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
    }
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
        let packets = after.delivered - before.delivered;
        if json {
            let line = serde_json::json!({
                "phase": name,
                "peers": n,
                "links": links.len(),
                "agreed_after_s": agreed.as_secs_f64(),
                "packets": packets,
                "bytes": after.delivered_bytes - before.delivered_bytes,
                "amplification": packets as f64 / (n.saturating_sub(1).max(1)) as f64,
                "wall_s": wall.elapsed().as_secs_f64(),
                "correct": ok,
            });
            println!("{line}");
        } else {
            println!(
                "{:<28} {:>12} {:>10} {:>12} {:>10} {:>9}",
                name,
                format!("{:.3} s", agreed.as_secs_f64()),
                packets,
                after.delivered_bytes - before.delivered_bytes,
                format!("{:.2} s", wall.elapsed().as_secs_f64()),
                if ok { "yes" } else { "NO" }
            );
        }
        if let Err(problems) = verdict {
            for line in problems.lines().take(10) {
                eprintln!("    {line}");
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
