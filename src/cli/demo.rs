//! `hyper-presence demo`: real peers over loopback TCP in one process.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use hyper_presence::net::{Identity, Node};
use hyper_presence::sim::topology;

use super::out;

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many peers.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(2..=1000))]
    peers: u32,
    /// Seed of the topology and of which peer is stopped.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// How often agreement is checked while waiting for it.
const POLL: Duration = Duration::from_millis(20);

pub fn run(args: DemoArgs) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let ok = runtime.block_on(demo(args))?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn data(i: usize, life: u32) -> Value {
    json!({"peer": i, "life": life})
}

async fn start(
    i: usize,
    identity: Identity,
    listen: SocketAddr,
    life: u32,
) -> Result<Node, String> {
    Node::builder()
        .topic("hyper-presence demo")
        .identity(identity)
        .listen(listen)
        .data(data(i, life))
        .silence_timeout(Duration::from_secs(3))
        .keep_alive(Duration::from_secs(1))
        .redial_max(Duration::from_millis(500))
        .spawn()
        .await
        .map_err(|e| format!("peer {i}: {e}"))
}

async fn demo(args: DemoArgs) -> Result<bool, String> {
    let n = args.peers as usize;
    let limit = Duration::from_secs(args.timeout);
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let links = topology::random_connected(n, n / 2, &mut rng);
    let identities: Vec<Identity> = (0..n)
        .map(|_| Identity::generate().map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let any_port: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    let mut nodes = Vec::with_capacity(n);
    for (i, identity) in identities.iter().enumerate() {
        nodes.push(start(i, identity.clone(), any_port, 0).await?);
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.listen_addrs()[0]).collect();
    out(&format!(
        "{n} peers over loopback TCP (Noise, secret-stream, hypercore channel), {} links, seed {}",
        links.len(),
        args.seed
    ));

    let began = Instant::now();
    for &(a, b) in &links {
        nodes[a].connect(addrs[b]);
    }
    let mut expected: Vec<Option<Value>> = (0..n).map(|i| Some(data(i, 0))).collect();
    let mut all_ok = report(
        "all online, everyone's data known",
        began,
        wait(&nodes, &links, &expected, limit).await,
    );

    let victim = rng.random_range(0..n);
    let began = Instant::now();
    nodes[victim].vanish().await;
    expected[victim] = None;
    all_ok &= report(
        &format!(
            "peer {} killed; all others noticed",
            nodes[victim].id().short()
        ),
        began,
        wait(&nodes, &links, &expected, limit).await,
    );

    let began = Instant::now();
    let restarted = start(victim, identities[victim].clone(), addrs[victim], 1).await?;
    for &(a, b) in &links {
        if a == victim {
            restarted.connect(addrs[b]);
        }
    }
    nodes[victim] = restarted;
    expected[victim] = Some(data(victim, 1));
    all_ok &= report(
        "it restarted; everyone agreed again",
        began,
        wait(&nodes, &links, &expected, limit).await,
    );

    futures::future::join_all(nodes.iter().map(|node| node.shutdown())).await;
    out(if all_ok {
        "every check held"
    } else {
        "SOME CHECK FAILED"
    });
    Ok(all_ok)
}

fn report(what: &str, began: Instant, ok: bool) -> bool {
    let took = began.elapsed().as_secs_f64();
    if ok {
        out(&format!("{what:<48} {took:>8.3} s"));
    } else {
        out(&format!("{what:<48} NOT within {took:.1} s"));
    }
    ok
}

/// Waits until every live peer (those with `Some` expected data) sees
/// exactly the live peers of its connected component online (killing a peer
/// can split the network), each with its expected data.
async fn wait(
    nodes: &[Node],
    links: &[(usize, usize)],
    expected: &[Option<Value>],
    limit: Duration,
) -> bool {
    let deadline = Instant::now() + limit;
    let live: Vec<usize> = (0..nodes.len())
        .filter(|i| expected[*i].is_some())
        .collect();
    let components = components(nodes.len(), links, expected);
    loop {
        let agreed = live.iter().all(|&i| {
            let node = &nodes[i];
            let members = &components[i];
            let mut want: Vec<_> = members.iter().map(|j| nodes[*j].id()).collect();
            want.sort();
            node.online_count() == want.len()
                && node.online() == want
                && members
                    .iter()
                    .all(|&j| node.peer_data(&nodes[j].id()).as_ref() == expected[j].as_ref())
        });
        if agreed {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// For each live peer, the live peers its links reach (itself included).
fn components(n: usize, links: &[(usize, usize)], expected: &[Option<Value>]) -> Vec<Vec<usize>> {
    let alive = |i: usize| expected[i].is_some();
    let mut adjacency = vec![Vec::new(); n];
    for &(a, b) in links {
        if alive(a) && alive(b) {
            adjacency[a].push(b);
            adjacency[b].push(a);
        }
    }
    (0..n)
        .map(|start| {
            if !alive(start) {
                return Vec::new();
            }
            let mut seen = vec![false; n];
            seen[start] = true;
            let mut stack = vec![start];
            let mut members = Vec::new();
            while let Some(i) = stack.pop() {
                members.push(i);
                for &j in &adjacency[i] {
                    if !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
            members
        })
        .collect()
}
