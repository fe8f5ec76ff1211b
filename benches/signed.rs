//! What signed registers cost: signing, checking one signature, checking a
//! packet's worth as one batch, and one node's cold start into a view of
//! 10,000 signed peers with checking on and off (and, to compare, of
//! 10,000 peers that do not sign), and the heap that node's engine holds
//! then (by a counting allocator: bytes asked for, without
//! the allocator's own overhead). Timed loops (the numbers are large
//! enough not to need criterion's statistics):
//!
//! ```text
//! cargo bench --bench signed
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper_presence::proto::sign::{data_message, verify, verify_all, Claim};
use hyper_presence::proto::wire::{FloodPacket, Kind, Message, Stamp, StateEntry};
use hyper_presence::proto::{Config, PeerId, Presence, Raw, Signer, DEFAULT_MAX_SEND_BYTES};

/// The system allocator, counting the bytes live at any time.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; the counter
// is only arithmetic beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const T: Duration = Duration::ZERO;
const PACKET_OVERHEAD: usize = 64;
const PEERS: usize = 10_000;

fn signer(i: usize) -> Signer {
    let mut seed = [0x33; 32];
    seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
    Signer::from_seed(seed)
}

fn stamp(i: usize, version: u64) -> Stamp {
    Stamp {
        incarnation: 1_700_000_000_000 + i as u64,
        version,
    }
}

fn data(i: usize) -> Bytes {
    Bytes::from(format!(r#"{{"name":"peer-{i:05}","on":1}}"#))
}

/// `n` claims of data registers, as a view packet's entries carry them.
fn claims(signers: &[Signer]) -> Vec<Claim> {
    signers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let d = data(i);
            Claim {
                origin: s.id(),
                message: data_message(&s.id(), stamp(i, 4), Some(&d)),
                signature: s.sign_data(stamp(i, 4), Some(&d)),
            }
        })
        .collect()
}

fn per_item(what: &str, count: usize, f: impl FnOnce()) {
    let start = Instant::now();
    f();
    let us = start.elapsed().as_secs_f64() * 1e6 / count as f64;
    println!("{what}: {us:.1} µs each ({count})");
}

/// Everybody's entry, signed (or stamped only, as from peers that do not
/// sign), with mutual edges: peer i is linked to i ± 1 and i ± 97 (mod n),
/// and peer 0 also to the receiver.
fn view_packets(signers: &[Signer], receiver: PeerId, signed: bool) -> Vec<Bytes> {
    let n = signers.len();
    let ids: Vec<PeerId> = signers.iter().map(Signer::id).collect();
    let mut entries: Vec<(PeerId, StateEntry)> = (0..n)
        .map(|i| {
            let mut edges: Vec<PeerId> = [1, n - 1, 97, n - 97]
                .iter()
                .map(|d| ids[(i + d) % n])
                .collect();
            if i == 0 {
                edges.push(receiver);
            }
            let d = data(i);
            let entry = StateEntry {
                edges_signature: signed.then(|| signers[i].sign_edges(stamp(i, 3), &edges)),
                data_signature: signed.then(|| signers[i].sign_data(stamp(i, 4), Some(&d))),
                connected_to: edges.into(),
                data: Some(d),
                edges_stamp: Some(stamp(i, 3)),
                data_stamp: Some(stamp(i, 4)),
            };
            (ids[i], entry)
        })
        .collect();
    entries.sort_unstable_by_key(|(id, _)| *id);
    let budget = DEFAULT_MAX_SEND_BYTES - PACKET_OVERHEAD;
    let empty = Message::new(Kind::BootstrapResponse);
    let mut messages = vec![empty.clone()];
    let mut size = empty.encoded_len();
    for (id, entry) in entries {
        let len = Message::bootstrap_entry_len(&id, &entry);
        let last = messages.last_mut().expect("one at least");
        if !last.bootstrap.is_empty() && size + len > budget {
            messages.push(empty.clone());
            size = empty.encoded_len();
        }
        messages
            .last_mut()
            .expect("one at least")
            .bootstrap
            .push((id, entry));
        size += len;
    }
    messages
        .iter()
        .enumerate()
        .map(|(number, m)| {
            FloodPacket {
                origin: ids[0],
                number: 1 + number as u32,
                ttl: 0,
                data: m.encode(),
            }
            .encode()
        })
        .collect()
}

/// A fresh node taking `packets` from `sender`: how long it took, how many
/// peers are online then, and how many heap bytes the engine holds.
fn cold_start(
    packets: &[Bytes],
    sender: PeerId,
    me: &Signer,
    verify: bool,
) -> (Duration, usize, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    let mut config = Config::with_codec(me.id(), Raw, Bytes::from_static(b"{}"));
    config.signer = Some(me.clone());
    config.verify_signatures = verify;
    let mut engine = Presence::new(config, T).expect("valid data");
    engine.peer_connected(T, sender);
    engine.drain_outputs().for_each(drop);
    let start = Instant::now();
    for packet in packets {
        engine.receive(Duration::from_millis(1), sender, packet.clone());
        engine.drain_outputs().for_each(drop);
    }
    let took = start.elapsed();
    let held = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    (took, engine.online_count(), held)
}

fn main() {
    let signers: Vec<Signer> = (0..PEERS).map(signer).collect();
    let some = &signers[..2_000];
    per_item("sign (data register)", some.len(), || {
        for (i, s) in some.iter().enumerate() {
            black_box(s.sign_data(stamp(i, 4), Some(&data(i))));
        }
    });
    let all = claims(some);
    per_item("verify one by one", all.len(), || {
        for c in &all {
            assert!(black_box(verify(c)));
        }
    });
    for batch in [4, 16, 64, 256] {
        per_item(&format!("verify in batches of {batch}"), all.len(), || {
            for chunk in all.chunks(batch) {
                assert!(black_box(verify_all(chunk)).iter().all(|ok| *ok));
            }
        });
    }

    let me = signer(PEERS);
    let sender = signers[0].id();
    for signed in [true, false] {
        let packets = view_packets(&signers, me.id(), signed);
        let bytes: usize = packets.iter().map(Bytes::len).sum();
        let what = if signed { "signed" } else { "unsigned" };
        println!(
            "cold start view: {PEERS} {what} entries, {} packets, {bytes} bytes",
            packets.len()
        );
        // Nothing to check in unsigned entries.
        let runs: &[bool] = if signed {
            &[false, true, false, true]
        } else {
            &[false, false]
        };
        for &verify in runs {
            let (took, online, held) = cold_start(&packets, sender, &me, verify);
            assert_eq!(online, PEERS + 1, "every peer online");
            println!(
                "cold start into {PEERS} {what} peers, verification {}: {:.0} ms; the engine then holds {:.2} MB of heap ({:.0} bytes per peer)",
                if verify { "on" } else { "off" },
                took.as_secs_f64() * 1e3,
                held as f64 / 1e6,
                held as f64 / PEERS as f64
            );
        }
    }
}
