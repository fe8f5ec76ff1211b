//! Recomputing who is online, at 1,000 and 10,000 peers.
//!
//! `cargo bench --bench online`. The network is a ring plus one random chord
//! per peer (every peer lists about 4 neighbours, every link both ways),
//! built from a fixed seed.
//!
//! * `full_traversal`: one edge out of a reached node is removed, then
//!   `settle`: the only case that costs a whole traversal, O(N + E).
//! * `incremental_add`: an edge from a reached node to the head of an
//!   unreachable chain of 100 nodes, then `settle`: only the chain is walked.
//! * `engine_bootstrap`: a fresh `Presence<Raw>`, connected to one peer,
//!   receives that peer's whole view of the network as the peer sends it
//!   (BOOTSTRAP_RESPONSE flood packets of at most the default 8,000 bytes)
//!   and drains its outputs.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, BenchmarkId, Criterion,
    SamplingMode, Throughput,
};
use hyper_presence::proto::graph::Graph;
use hyper_presence::proto::wire::{FloodPacket, Kind, Message, Stamp, StateEntry};
use hyper_presence::proto::{Config, PeerId, Presence, Raw, DEFAULT_MAX_SEND_BYTES};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SIZES: [usize; 2] = [1_000, 10_000];
const CHAIN: usize = 100;
/// Chains made reachable one after another before a single traversal makes
/// them all unreachable again (untimed), so that the reset's O(N) cost is
/// shared by this many timed additions.
const CHAINS: usize = 10;
/// Largest packet a peer sends (`Config::max_send_bytes`' default) and the
/// room it keeps for the flood packet around the message.
const MAX_SEND_BYTES: usize = DEFAULT_MAX_SEND_BYTES;
const PACKET_OVERHEAD: usize = 64;
const T: Duration = Duration::ZERO;

fn random_id(rng: &mut ChaCha8Rng) -> PeerId {
    PeerId::from_bytes(rng.random::<[u8; 32]>())
}

/// `n` random ids and an undirected, connected adjacency over their indices:
/// a ring plus one random chord per node (so about 4 neighbours each).
fn network(n: usize, seed: u64) -> (Vec<PeerId>, Vec<BTreeSet<usize>>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ids: Vec<PeerId> = (0..n).map(|_| random_id(&mut rng)).collect();
    let mut adjacency = vec![BTreeSet::new(); n];
    let mut link = |a: usize, b: usize| adjacency[a].insert(b) && adjacency[b].insert(a);
    for i in 0..n {
        link(i, (i + 1) % n);
    }
    for i in 0..n {
        loop {
            let j = rng.random_range(0..n);
            if j != i && link(i, j) {
                break;
            }
        }
    }
    (ids, adjacency)
}

fn edges_of(ids: &[PeerId], adjacency: &[BTreeSet<usize>], i: usize) -> Vec<PeerId> {
    adjacency[i].iter().map(|&j| ids[j]).collect()
}

/// The network as a `Graph<()>` rooted at peer 0, everything reached.
fn graph(ids: &[PeerId], adjacency: &[BTreeSet<usize>]) -> Graph<()> {
    let mut graph = Graph::new(ids[0]);
    for i in 0..ids.len() {
        graph.set_edges(T, ids[i], edges_of(ids, adjacency, i));
    }
    graph.settle(T);
    assert_eq!(graph.reachable_count(), ids.len());
    graph
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, n: usize) {
    if n >= 10_000 {
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(4));
    } else {
        group
            .sample_size(30)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
    }
}

/// Remove one edge out of a reached node (its target stays reached through
/// other paths) and settle: a full traversal. The edge is put back, untimed,
/// after each iteration (adding an edge to a reached node costs nothing).
fn full_traversal(c: &mut Criterion) {
    let mut group = c.benchmark_group("full_traversal");
    for n in SIZES {
        let (ids, adjacency) = network(n, n as u64);
        let mut graph = graph(&ids, &adjacency);
        let from = n / 2;
        let all = edges_of(&ids, &adjacency, from);
        let fewer: Vec<PeerId> = all.iter().copied().skip(1).collect();
        // Check once: the removal leaves every node reached.
        assert_eq!(
            graph.set_edges(T, ids[from], fewer.clone()).removed.len(),
            1
        );
        assert!(!graph.settle(T));
        assert_eq!(graph.reachable_count(), n);
        graph.set_edges(T, ids[from], all.clone());
        graph.settle(T);

        configure(&mut group, n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let edges = fewer.clone();
                    let start = Instant::now();
                    black_box(graph.set_edges(T, ids[from], edges));
                    black_box(graph.settle(T));
                    timed += start.elapsed();
                    graph.set_edges(T, ids[from], all.clone());
                    graph.settle(T);
                }
                timed
            })
        });
        assert_eq!(graph.reachable_count(), n);
    }
    group.finish();
}

/// Add an edge from a reached node to the head of an unreachable chain of
/// 100 nodes and settle. `CHAINS` chains hang off `CHAINS` different reached
/// nodes; after they have all been reached, the edges are removed and one
/// (untimed) traversal makes the chains unreachable again.
fn incremental_add(c: &mut Criterion) {
    let mut group = c.benchmark_group("incremental_add");
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    for n in SIZES {
        let (ids, adjacency) = network(n, n as u64);
        let mut graph = graph(&ids, &adjacency);
        // (reached node, its edges, its edges plus the chain's head)
        let mut hooks = Vec::new();
        for k in 0..CHAINS {
            let chain: Vec<PeerId> = (0..CHAIN).map(|_| random_id(&mut rng)).collect();
            for pair in chain.windows(2) {
                graph.set_edges(T, pair[0], vec![pair[1]]);
            }
            let from = 1 + k * (n - 1) / CHAINS;
            let without = edges_of(&ids, &adjacency, from);
            let mut with = without.clone();
            with.push(chain[0]);
            hooks.push((ids[from], without, with));
        }
        assert!(!graph.settle(T));
        assert_eq!(graph.reachable_count(), n);
        assert_eq!(graph.unreachable_count(), CHAINS * CHAIN);
        let reset = |graph: &mut Graph<()>, used: usize| {
            for (from, without, _) in &hooks[..used] {
                graph.set_edges(T, *from, without.clone());
            }
            graph.settle(T);
        };
        // Check once: each addition reaches exactly its chain.
        for (k, (from, _, with)) in hooks.iter().enumerate() {
            graph.set_edges(T, *from, with.clone());
            assert!(graph.settle(T));
            assert_eq!(graph.reachable_count(), n + (k + 1) * CHAIN);
        }
        reset(&mut graph, CHAINS);
        assert_eq!(graph.reachable_count(), n);

        configure(&mut group, n);
        group.throughput(Throughput::Elements(CHAIN as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let used = (iters - done).min(CHAINS as u64) as usize;
                    for (from, _, with) in &hooks[..used] {
                        let edges = with.clone();
                        let start = Instant::now();
                        black_box(graph.set_edges(T, *from, edges));
                        black_box(graph.settle(T));
                        timed += start.elapsed();
                    }
                    reset(&mut graph, used);
                    done += used as u64;
                }
                timed
            })
        });
        assert_eq!(graph.reachable_count(), n);
    }
    group.finish();
}

/// The sender's whole view as it sends it to a new neighbour: entries sorted
/// by id, split into BOOTSTRAP_RESPONSE messages that fit a packet, each in a
/// flood packet. The sender is peer 0 and lists the receiver among its edges.
fn view_packets(ids: &[PeerId], adjacency: &[BTreeSet<usize>], receiver: PeerId) -> Vec<Bytes> {
    let mut entries: Vec<(PeerId, StateEntry)> = (0..ids.len())
        .map(|i| {
            let mut connected_to = edges_of(ids, adjacency, i);
            if i == 0 {
                connected_to.push(receiver);
            }
            let incarnation = 1_700_000_000_000 + i as u64;
            let entry = StateEntry {
                connected_to: connected_to.into(),
                data: Some(Bytes::from(format!(r#"{{"name":"peer-{i:05}","on":1}}"#))),
                edges_stamp: Some(Stamp {
                    incarnation,
                    version: 3,
                }),
                edges_signature: None,
                data_signature: None,
                data_stamp: Some(Stamp {
                    incarnation,
                    version: 4,
                }),
            };
            (ids[i], entry)
        })
        .collect();
    entries.sort_unstable_by_key(|(id, _)| *id);

    let budget = MAX_SEND_BYTES - PACKET_OVERHEAD;
    let empty = Message::new(Kind::BootstrapResponse);
    let mut messages = Vec::new();
    let mut chunk = empty.clone();
    let mut size = empty.encoded_len();
    for (id, entry) in entries {
        let len = Message::bootstrap_entry_len(&id, &entry);
        if !chunk.bootstrap.is_empty() && size + len > budget {
            messages.push(std::mem::replace(&mut chunk, empty.clone()));
            size = empty.encoded_len();
        }
        chunk.bootstrap.push((id, entry));
        size += len;
    }
    messages.push(chunk);
    messages
        .iter()
        .enumerate()
        .map(|(number, message)| {
            let packet = FloodPacket {
                origin: ids[0],
                number: 1_000 + number as u32,
                ttl: 0,
                data: message.encode(),
            }
            .encode();
            assert!(packet.len() < MAX_SEND_BYTES);
            packet
        })
        .collect()
}

/// A fresh engine with one link, to `sender`, and nothing pending.
fn fresh_engine(id: PeerId, sender: PeerId) -> Presence<Raw> {
    let config = Config::with_codec(id, Raw, Bytes::from_static(b"{}"));
    let mut engine = Presence::new(config, T).expect("valid data");
    engine.peer_connected(T, sender);
    engine.drain_outputs().for_each(drop);
    engine
}

/// Feeds every packet and drains the outputs after each, as a driver does.
fn receive_all(engine: &mut Presence<Raw>, sender: PeerId, packets: &[Bytes]) -> usize {
    let now = Duration::from_millis(1);
    let mut outputs = 0;
    for packet in packets {
        engine.receive(now, sender, packet.clone());
        outputs += engine.drain_outputs().count();
    }
    outputs
}

fn engine_bootstrap(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_bootstrap");
    for n in SIZES {
        let (ids, adjacency) = network(n, n as u64);
        let receiver = PeerId::from_bytes([0xee; 32]);
        let sender = ids[0];
        let packets = view_packets(&ids, &adjacency, receiver);
        let bytes: usize = packets.iter().map(Bytes::len).sum();
        eprintln!(
            "engine_bootstrap/{n}: {} packets, {bytes} bytes",
            packets.len()
        );
        // Check once: every peer of the view, and we, are online.
        let mut engine = fresh_engine(receiver, sender);
        receive_all(&mut engine, sender, &packets);
        assert_eq!(engine.online_count(), n + 1);
        assert!(engine.is_bootstrapped());

        configure(&mut group, n);
        // Milliseconds per iteration: the same count in every sample.
        group.sampling_mode(SamplingMode::Flat);
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_batched(
                || fresh_engine(receiver, sender),
                |mut engine| {
                    black_box(receive_all(&mut engine, sender, &packets));
                    engine
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, full_traversal, incremental_add, engine_bootstrap);
criterion_main!(benches);
