use super::super::vectors::*;
use super::*;
use proptest::prelude::*;

fn frames(mux: &mut Mux) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| mux.poll_frame()).collect()
}

fn events(mux: &mut Mux) -> Vec<MuxEvent> {
    std::iter::from_fn(|| mux.poll_event()).collect()
}

/// Delivers everything `from` has to send to `to`.
fn pump(from: &mut Mux, to: &mut Mux) {
    for frame in frames(from) {
        to.receive(Bytes::from(frame)).unwrap();
    }
}

/// Two muxes, each with channel `local` 1 open on `protocol`/`id`, paired.
fn paired(protocol: &str, id: &[u8]) -> (Mux, Mux) {
    let mut a = Mux::new();
    let mut b = Mux::new();
    assert_eq!(a.open(protocol, Some(id), b"hs-a"), 1);
    assert_eq!(b.open(protocol, Some(id), b"hs-b"), 1);
    pump(&mut a, &mut b);
    pump(&mut b, &mut a);
    assert_eq!(
        events(&mut a),
        [MuxEvent::Opened {
            local: 1,
            handshake: Bytes::from_static(b"hs-b")
        }]
    );
    assert_eq!(
        events(&mut b),
        [MuxEvent::Opened {
            local: 1,
            handshake: Bytes::from_static(b"hs-a")
        }]
    );
    (a, b)
}

const DISCOVERY_V10: &str = "a67fe48738df92be11239fb469cdb4c7b766f1982ca52ed63ad169ecde0c998b";
const CAPABILITY_I: &str = "d4d8d2f7318d02ad4fc71f1c16644e726bdaf3ac5ffddb63585f589f4e1e4952";

fn handshake_a() -> Vec<u8> {
    let mut handshake = vec![0x01];
    handshake.extend(unhex(CAPABILITY_I));
    handshake
}

#[test]
fn open_matches_javascript_byte_for_byte() {
    let mut mux = Mux::new();
    let local = mux.open(
        "hypercore/alpha",
        Some(&unhex(DISCOVERY_V10)),
        &handshake_a(),
    );
    assert_eq!(local, 1);
    assert_eq!(frames(&mut mux), [unhex(OPEN_A)]);
}

#[test]
fn javascript_batch_decodes_message_by_message() {
    let mut mux = Mux::new();
    mux.open("hypercore/alpha", Some(&unhex(DISCOVERY_V10)), &[]);
    mux.receive(Bytes::from(unhex(OPEN_A))).unwrap();
    assert_eq!(
        events(&mut mux),
        [MuxEvent::Opened {
            local: 1,
            handshake: Bytes::from(handshake_a())
        }]
    );
    let batch = unhex(BATCH_C);
    assert_eq!(batch.len(), 212);
    mux.receive(Bytes::from(batch.clone())).unwrap();
    let got = events(&mut mux);
    assert_eq!(got.len(), 4);
    assert_eq!(
        got[0],
        MuxEvent::Message {
            local: 1,
            kind: 0,
            body: Bytes::from_static(&[0x00, 0x07, 0x00, 0x00, 0x00][1..]),
        }
    );
    // Each extension body is exactly its entry: len - 1 (the type byte).
    let expected = [(4 + 5 + 1, 0x5d), (4 + 5 + 1 + 0x5d + 1, 0x3f)];
    for (event, (start, len)) in got[1..3].iter().zip(expected) {
        assert_eq!(
            *event,
            MuxEvent::Message {
                local: 1,
                kind: 9,
                body: Bytes::copy_from_slice(&batch[start + 1..start + len]),
            }
        );
    }
    let MuxEvent::Message { kind: 9, body, .. } = &got[3] else {
        panic!("{:?}", got[3]);
    };
    assert_eq!(body.len(), 0x2c - 1);
    assert_eq!(&body[..], &batch[batch.len() - body.len()..]);
    assert!(body.starts_with(&[0x00, 0x0a, 0x20, 0x4c]));
}

/// Captured from protomux 3.12.1: cork; open p/aa, open q (no id); a
/// 300-byte type 2 on 1; "hi" type 1 on 2; empty type 0 on 1; close 1;
/// uncork. Then a corked single message, and an uncorked one.
#[test]
fn batches_match_javascript_byte_for_byte() {
    let mut mux = Mux::new();
    mux.cork();
    let p = mux.open("p", Some(&[0xaa]), &[]);
    let q = mux.open("q", None, &[]);
    mux.send(p, 2, &[b'x'; 300]).unwrap();
    mux.send(q, 1, b"hi").unwrap();
    mux.send(p, 0, b"").unwrap();
    mux.close(p);
    mux.uncork();
    mux.cork();
    mux.send(q, 1, b"one").unwrap();
    mux.uncork();
    mux.send(q, 0, b"plain").unwrap();
    let mut first = unhex("000000060101017001aa0501020171000001fd2d0102");
    first.extend([b'x'; 300]);
    first.extend(unhex("000203016869000101000000020301"));
    assert_eq!(
        frames(&mut mux),
        [first, unhex("00000204016f6e65"), unhex("0200706c61696e")]
    );
}

#[test]
fn close_and_reject_bytes() {
    let (mut a, _) = paired("hypercore/alpha", &[1; 32]);
    a.close(1);
    assert_eq!(frames(&mut a), [unhex("000301")]);
    // Closing again, or a channel never opened, sends nothing.
    a.close(1);
    a.close(7);
    a.close(0);
    assert!(frames(&mut a).is_empty());

    let mut mux = Mux::new();
    mux.open("hypercore/alpha", Some(&[1; 32]), &[]);
    frames(&mut mux);
    let mut other = Mux::new();
    other.open("hypercore/alpha", Some(&[2; 32]), &[]);
    pump(&mut other, &mut mux);
    assert_eq!(frames(&mut mux), [unhex("000201")]);
    assert!(events(&mut mux).is_empty());
}

#[test]
fn empty_frames_are_ignored_and_truncated_ones_refused() {
    let mut mux = Mux::new();
    mux.receive(Bytes::new()).unwrap();
    assert_eq!(
        mux.receive(Bytes::from_static(&[0x01])),
        Err(MuxError::Decode(DecodeError::Truncated("uint")))
    );
    assert_eq!(
        mux.receive(Bytes::from_static(&[0x00, 0x01, 0x01, 0x05, b'a'])),
        Err(MuxError::Decode(DecodeError::Truncated("buffer")))
    );
    assert!(events(&mut mux).is_empty());
}

#[test]
fn messages_pass_both_ways_with_every_kind() {
    let (mut a, mut b) = paired("p", b"id");
    a.send(1, 9, b"ext").unwrap();
    a.send(1, 42, b"").unwrap();
    b.send(1, 0, b"sync").unwrap();
    pump(&mut a, &mut b);
    pump(&mut b, &mut a);
    assert_eq!(
        events(&mut b),
        [
            MuxEvent::Message {
                local: 1,
                kind: 9,
                body: Bytes::from_static(b"ext")
            },
            MuxEvent::Message {
                local: 1,
                kind: 42,
                body: Bytes::new()
            },
        ]
    );
    assert_eq!(
        events(&mut a),
        [MuxEvent::Message {
            local: 1,
            kind: 0,
            body: Bytes::from_static(b"sync")
        }]
    );
}

#[test]
fn send_needs_our_open() {
    let mut mux = Mux::new();
    assert_eq!(mux.send(1, 0, b""), Err(MuxError::NotOpen(1)));
    assert_eq!(mux.send(0, 0, b""), Err(MuxError::NotOpen(0)));
    let local = mux.open("p", None, &[]);
    // Before the remote's open, as JavaScript allows.
    mux.send(local, 3, b"early").unwrap();
    mux.close(local);
    assert_eq!(mux.send(local, 3, b""), Err(MuxError::NotOpen(local)));
    assert_eq!(
        frames(&mut mux),
        [
            unhex("0001010170 00"),
            unhex("0103").into_iter().chain(*b"early").collect(),
            unhex("000301")
        ]
    );
}

#[test]
fn remote_close_and_reject_are_reported_and_free_our_id() {
    let (mut a, mut b) = paired("p", b"");
    b.close(1);
    pump(&mut b, &mut a);
    assert_eq!(events(&mut a), [MuxEvent::Closed { local: 1 }]);
    // The paired id came back at once on both sides.
    assert_eq!(a.open("r", None, &[]), 1);
    assert_eq!(b.open("s", None, &[]), 1);
    // Each rejects the other's open of an unknown protocol.
    pump(&mut a, &mut b);
    pump(&mut b, &mut a);
    pump(&mut a, &mut b);
    assert_eq!(events(&mut a), [MuxEvent::Rejected { local: 1 }]);
    assert_eq!(events(&mut b), [MuxEvent::Rejected { local: 1 }]);
    assert_eq!(a.open("t", None, &[]), 1);
    // Messages for closed channels are ignored.
    a.receive(Bytes::from_static(&[0x01, 0x00, 0xaa])).unwrap();
    assert!(events(&mut a).is_empty());
}

#[test]
fn a_closed_unanswered_id_waits_for_the_answer() {
    let mut a = Mux::new();
    assert_eq!(a.open("p", None, &[]), 1);
    a.close(1);
    assert_eq!(a.open("q", None, &[]), 2);
    // The remote's reject of 1 frees it, without an event (we closed it).
    a.receive(Bytes::from_static(&[0x00, 0x02, 0x01])).unwrap();
    assert!(events(&mut a).is_empty());
    assert_eq!(a.open("r", None, &[]), 1);
    a.close(1);
    // So does the remote's open of the same protocol; its channel is
    // then ignored.
    let mut open = vec![0x00, 0x01, 0x01];
    put_string(&mut open, "r");
    open.push(0x00);
    a.receive(Bytes::from(open)).unwrap();
    assert!(events(&mut a).is_empty());
    assert_eq!(a.open("s", None, &[]), 1);
    a.receive(Bytes::from_static(&[0x01, 0x00])).unwrap();
    assert!(events(&mut a).is_empty());
}

#[test]
fn a_reject_for_no_open_of_ours_is_an_error() {
    let (mut a, _) = paired("p", b"");
    assert_eq!(
        a.receive(Bytes::from_static(&[0x00, 0x02, 0x01])),
        Err(MuxError::BadChannelId(1))
    );
    assert_eq!(
        Mux::new().receive(Bytes::from_static(&[0x00, 0x02, 0x05])),
        Err(MuxError::BadChannelId(5))
    );
}

fn remote_open(remote: u64, protocol: &str) -> Bytes {
    let mut frame = vec![0x00, 0x01];
    put_uint(&mut frame, remote);
    put_string(&mut frame, protocol);
    frame.push(0x00);
    Bytes::from(frame)
}

#[test]
fn remote_ids_must_be_free_and_in_order() {
    let mut a = Mux::new();
    a.open("p", None, &[]);
    assert_eq!(
        a.receive(remote_open(0, "x")),
        Err(MuxError::BadChannelId(0))
    );
    assert_eq!(
        a.receive(remote_open(2, "x")),
        Err(MuxError::BadChannelId(2))
    );
    a.receive(remote_open(1, "p")).unwrap();
    assert_eq!(
        a.receive(remote_open(1, "x")),
        Err(MuxError::BadChannelId(1))
    );
    // A rejected id is free again.
    a.receive(remote_open(2, "x")).unwrap();
    a.receive(remote_open(2, "x")).unwrap();
    assert_eq!(a.remote_slots(), 2);
    assert_eq!(
        a.receive(remote_open(u64::MAX, "x")),
        Err(MuxError::BadChannelId(u64::MAX))
    );
}

#[test]
fn remote_slots_are_bounded() {
    let mut a = Mux::new();
    for remote in 1..=MAX_REMOTE_CHANNELS {
        a.receive(remote_open(remote, "x")).unwrap();
    }
    assert_eq!(a.remote_slots(), MAX_REMOTE_CHANNELS as usize);
    assert_eq!(
        a.receive(remote_open(MAX_REMOTE_CHANNELS + 1, "x")),
        Err(MuxError::TooManyChannels)
    );
    // Reuse within the bound is fine.
    a.receive(remote_open(5, "x")).unwrap();
    assert_eq!(frames(&mut a).len(), MAX_REMOTE_CHANNELS as usize + 1);
}

#[test]
fn each_batch_message_is_bounded_by_its_len() {
    let (mut a, _) = paired("p", b"");
    // Channel 1: `09 00` then `09 00 41`; the first decoder must not read on.
    a.receive(Bytes::from_static(&[0, 0, 1, 2, 9, 0, 3, 9, 0, 0x41]))
        .unwrap();
    assert_eq!(
        events(&mut a),
        [
            MuxEvent::Message {
                local: 1,
                kind: 9,
                body: Bytes::from_static(&[0])
            },
            MuxEvent::Message {
                local: 1,
                kind: 9,
                body: Bytes::from_static(&[0, 0x41])
            },
        ]
    );
    // An open under channel 0 whose id length runs past its entry is
    // truncated, though the batch has bytes after it.
    let mut batch = vec![0, 0, 0, 5, 1, 2, 1, b'p', 9];
    batch.extend([0, 1, 1, 9]);
    assert_eq!(
        a.receive(Bytes::from(batch)),
        Err(MuxError::Decode(DecodeError::Truncated("optional buffer")))
    );
}

#[test]
fn batches_switch_channels_and_carry_control_messages() {
    let (mut a, mut b) = paired("p", b"");
    b.open("q", None, b"h");
    frames(&mut b);
    a.open("q", None, &[]);
    frames(&mut a);
    // A batch as JavaScript could write it: open q (remote id 2) on
    // channel 0, a message on 2, a message on 1, close of 1, an unknown
    // control type, a length past the end (cut at the end).
    let mut batch = vec![0, 0, 0];
    let mut open = vec![1, 2];
    put_string(&mut open, "q");
    open.extend([0, b'h']);
    batch.push(open.len() as u8);
    batch.extend(&open);
    batch.extend([0, 2, 2, 5, b'x', 0, 1, 1, 7]);
    batch.extend([0, 0, 2, 3, 1, 1, 9]);
    batch.extend([0, 1, 200, 6, b'e', b'n', b'd']);
    a.receive(Bytes::from(batch)).unwrap();
    assert_eq!(
        events(&mut a),
        [
            MuxEvent::Opened {
                local: 2,
                handshake: Bytes::from_static(b"h")
            },
            MuxEvent::Message {
                local: 2,
                kind: 5,
                body: Bytes::from_static(b"x")
            },
            MuxEvent::Message {
                local: 1,
                kind: 7,
                body: Bytes::new()
            },
            MuxEvent::Closed { local: 1 },
        ]
    );
    // Channel 1 is closed by then: its last message is ignored.
    assert!(frames(&mut a).is_empty());
}

#[test]
fn replies_to_a_batch_go_out_as_one_batch() {
    let mut a = Mux::new();
    let mut batch = vec![0, 0, 0];
    for remote in 1..=2 {
        let open = remote_open(remote, "x");
        batch.push((open.len() - 1) as u8);
        batch.extend(&open[1..]);
    }
    a.receive(Bytes::from(batch)).unwrap();
    assert_eq!(frames(&mut a), [unhex("000000 020201 020202")]);
    // A batch of one message is answered with a plain frame.
    let open = remote_open(1, "x");
    let mut batch = vec![0, 0, 0, (open.len() - 1) as u8];
    batch.extend(&open[1..]);
    a.receive(Bytes::from(batch)).unwrap();
    assert_eq!(frames(&mut a), [unhex("000201")]);
}

#[test]
fn nested_batches_are_followed_to_a_bounded_depth() {
    let (mut a, _) = paired("p", b"");
    let mut inner = vec![0, 0, 1, 2, 4, b'z'];
    for _ in 0..MAX_BATCH_DEPTH - 1 {
        let mut outer = vec![0, 0, 0];
        put_uint(&mut outer, (inner.len() - 1) as u64);
        outer.extend(&inner[1..]);
        inner = outer;
    }
    a.receive(Bytes::from(inner.clone())).unwrap();
    assert_eq!(
        events(&mut a),
        [MuxEvent::Message {
            local: 1,
            kind: 4,
            body: Bytes::from_static(b"z")
        }]
    );
    let mut outer = vec![0, 0, 0];
    put_uint(&mut outer, (inner.len() - 1) as u64);
    outer.extend(&inner[1..]);
    a.receive(Bytes::from(outer)).unwrap();
    assert!(events(&mut a).is_empty());
}

#[test]
fn a_full_batch_is_sent_and_another_begun() {
    let (mut a, mut b) = paired("p", b"");
    let body = vec![7u8; MAX_BATCH / 2];
    a.cork();
    for _ in 0..3 {
        a.send(1, 1, &body).unwrap();
    }
    a.uncork();
    let sent = frames(&mut a);
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|frame| frame.starts_with(&[0, 0, 1])));
    for frame in sent {
        b.receive(Bytes::from(frame)).unwrap();
    }
    assert_eq!(events(&mut b).len(), 3);
}

#[derive(Debug, Clone)]
enum Op {
    Send {
        channel: u64,
        kind: u64,
        body: Vec<u8>,
    },
    Cork,
    Uncork,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u64..=2, prop_oneof![0u64..12, any::<u64>()], proptest::collection::vec(any::<u8>(), 0..400))
            .prop_map(|(channel, kind, body)| Op::Send { channel, kind, body }),
        1 => Just(Op::Cork),
        1 => Just(Op::Uncork),
    ]
}

proptest! {
    #[test]
    fn any_sends_arrive_in_order(ops in proptest::collection::vec(op(), 0..40)) {
        let (mut a, mut b) = paired("p", b"");
        a.open("q", None, &[]);
        b.open("q", None, &[]);
        pump(&mut a, &mut b);
        pump(&mut b, &mut a);
        events(&mut a);
        events(&mut b);
        let mut expected = Vec::new();
        for op in ops {
            match op {
                Op::Send { channel, kind, body } => {
                    a.send(channel, kind, &body).unwrap();
                    expected.push(MuxEvent::Message { local: channel, kind, body: Bytes::from(body) });
                }
                Op::Cork => a.cork(),
                Op::Uncork => a.uncork(),
            }
            // Frames may be taken at any point; corked ones are not there yet.
            pump(&mut a, &mut b);
        }
        while a.corked > 0 {
            a.uncork();
        }
        pump(&mut a, &mut b);
        prop_assert_eq!(events(&mut b), expected);
    }

    #[test]
    fn arbitrary_frames_never_panic_and_stay_bounded(
        frames_in in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..64),
                proptest::collection::vec(any::<u8>(), 0..64)
                    .prop_map(|tail| [&[0u8, 0][..], &tail].concat()),
                (0u8..4, proptest::collection::vec(0u8..4, 0..32))
                    .prop_map(|(kind, tail)| [&[0u8, kind][..], &tail].concat()),
            ],
            0..40,
        )
    ) {
        let (mut a, _) = paired("p", b"");
        for frame in frames_in {
            let _ = a.receive(Bytes::from(frame));
            prop_assert!(a.remote_slots() <= MAX_REMOTE_CHANNELS as usize);
            // The remote cannot make us hold channels of our own.
            prop_assert_eq!(a.local.len(), 1);
            prop_assert!(a.outgoing.is_empty());
            prop_assert_eq!(a.corked, 0);
        }
    }
}
