//! Wire codec throughput: encoding and decoding the messages a peer sends
//! most (a data change, an edge change) and the largest (a whole view).
//!
//! `cargo bench --bench codec`. Every case is built deterministically from a
//! seeded generator; throughput is the size of the encoded bytes.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hyper_presence::proto::wire::{FloodPacket, Kind, Limits, Message, Stamp, StateEntry};
use hyper_presence::proto::PeerId;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// 30 bytes of JSON, a typical small presence record.
const DATA: &[u8] = br#"{"name":"ada","status":"away"}"#;

/// An incarnation as the network node writes it (wall clock in milliseconds).
const INCARNATION: u64 = 1_700_000_000_000;

fn random_id(rng: &mut ChaCha8Rng) -> PeerId {
    PeerId::from_bytes(rng.random::<[u8; 32]>())
}

/// (a) A data change as it travels: a stamped STATE inside a flood packet.
fn state_packet(rng: &mut ChaCha8Rng) -> (FloodPacket, Message) {
    let mut message = Message::new(Kind::State);
    message.data = Some(Bytes::from_static(DATA));
    message.stamp = Some(Stamp {
        incarnation: INCARNATION,
        version: 7,
    });
    let packet = FloodPacket {
        origin: random_id(rng),
        number: 1_234_567,
        ttl: 255,
        data: message.encode(),
    };
    (packet, message)
}

/// (b) An edge change: a stamped CONNECTED carrying the origin's whole edge
/// list of 8 ids.
fn connected_message(rng: &mut ChaCha8Rng) -> Message {
    let mut message = Message::new(Kind::Connected);
    let edges: Vec<PeerId> = (0..8).map(|_| random_id(rng)).collect();
    message.id = Some(edges[3]);
    message.stamp = Some(Stamp {
        incarnation: INCARNATION,
        version: 12,
    });
    message.edges = edges;
    message
}

/// (c) A view: a BOOTSTRAP_RESPONSE of `entries` nodes, each with 4 edges,
/// 30 bytes of data and both stamps.
fn bootstrap_response(rng: &mut ChaCha8Rng, entries: usize) -> Message {
    let mut message = Message::new(Kind::BootstrapResponse);
    message.bootstrap = (0..entries)
        .map(|i| {
            let entry = StateEntry {
                connected_to: (0..4).map(|_| random_id(rng)).collect(),
                data: Some(Bytes::from_static(DATA)),
                edges_stamp: Some(Stamp {
                    incarnation: INCARNATION + i as u64,
                    version: 3,
                }),
                edges_signature: None,
                data_signature: None,
                data_stamp: Some(Stamp {
                    incarnation: INCARNATION + i as u64,
                    version: 4,
                }),
            };
            (random_id(rng), entry)
        })
        .collect();
    message
}

fn codec(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let limits = Limits::default();

    let mut group = c.benchmark_group("codec");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    // (a) Both layers, as the engine does: the message, then the packet.
    let (packet, message) = state_packet(&mut rng);
    let bytes = packet.encode();
    assert_eq!(
        Message::decode(&FloodPacket::decode(&bytes, &limits).unwrap().data, &limits),
        Ok(message.clone())
    );
    eprintln!("state_packet: {} bytes", bytes.len());
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode/state_packet", |b| {
        b.iter(|| {
            let message = black_box(&message);
            FloodPacket {
                origin: packet.origin,
                number: packet.number,
                ttl: packet.ttl,
                data: message.encode(),
            }
            .encode()
        })
    });
    group.bench_function("decode/state_packet", |b| {
        b.iter(|| {
            let packet = FloodPacket::decode(black_box(&bytes), &limits).expect("valid packet");
            Message::decode(&packet.data, &limits).expect("valid message")
        })
    });

    // (b) and (c): the presence message alone.
    let mut cases = vec![("connected_8_edges".to_owned(), connected_message(&mut rng))];
    for entries in [100, 1_000] {
        cases.push((
            format!("bootstrap_{entries}"),
            bootstrap_response(&mut rng, entries),
        ));
    }
    for (name, message) in &cases {
        let bytes = message.encode();
        assert_eq!(Message::decode(&bytes, &limits).as_ref(), Ok(message));
        eprintln!("{name}: {} bytes", bytes.len());
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        if bytes.len() > 100_000 {
            // About 1 ms per decode: room for 100 samples.
            group.measurement_time(Duration::from_secs(8));
        }
        group.bench_with_input(BenchmarkId::new("encode", name), message, |b, m| {
            b.iter(|| black_box(m).encode())
        });
        group.bench_with_input(BenchmarkId::new("decode", name), &bytes, |b, bytes| {
            b.iter(|| Message::decode(black_box(bytes), &limits).expect("valid message"))
        });
    }
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
