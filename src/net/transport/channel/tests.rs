use super::super::vectors::*;
use super::*;
use proptest::prelude::*;

fn array<const N: usize>(s: &str) -> [u8; N] {
    unhex(s).try_into().unwrap()
}

const CORE_V10: &str = "f381626e41e7027ea431bfe3009e94bdd25a746beec468948d6c3c7c5dc9a54b";
const CORE_V11: &str = "5fd88e1cb153419b18ff30fb53aaa0e99dee56fd2f0c47d3ecd7f157e9edb16b";

/// 8.4 d: STATE {"name":"alice"}, message 6, name cached.
const EXT_D: &str = "0109000a204cb5abf6ad79fbf5abbccafcc269d85cd2651ed4b885b5869f241a
    edf0a5ba29100618ff012214000512107b226e616d65223a22616c696365227d";

fn frames(mux: &mut Mux) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| mux.poll_frame()).collect()
}

fn pump(from: &mut Mux, to: &mut Mux) {
    for frame in frames(from) {
        to.receive(Bytes::from(frame)).unwrap();
    }
}

/// Hands every mux event to `channel`, collecting what it reports.
fn drain(mux: &mut Mux, channel: &mut CoreChannel) -> Result<Vec<ChannelEvent>, ChannelError> {
    let mut out = Vec::new();
    while let Some(event) = mux.poll_event() {
        out.extend(channel.handle(event)?);
    }
    Ok(out)
}

fn hh() -> [u8; 64] {
    array(HANDSHAKE_HASH)
}

/// Our channel and the remote's, both open, over two muxes.
fn pair(initiator: bool) -> (Mux, CoreChannel, Mux, CoreChannel) {
    let key = array(CORE_V10);
    let mut ours = Mux::new();
    let mut theirs = Mux::new();
    let mut a = CoreChannel::open(&mut ours, &key, &hh(), initiator);
    let mut b = CoreChannel::open(&mut theirs, &key, &hh(), !initiator);
    assert!(!a.is_open());
    pump(&mut ours, &mut theirs);
    pump(&mut theirs, &mut ours);
    assert_eq!(drain(&mut ours, &mut a), Ok(vec![ChannelEvent::Opened]));
    assert_eq!(drain(&mut theirs, &mut b), Ok(vec![ChannelEvent::Opened]));
    assert!(a.is_open() && b.is_open());
    (ours, a, theirs, b)
}

#[test]
fn capabilities_match_javascript() {
    let v10 = array(CORE_V10);
    assert_eq!(
        capability(&hh(), true, &v10),
        array("d4d8d2f7318d02ad4fc71f1c16644e726bdaf3ac5ffddb63585f589f4e1e4952")
    );
    assert_eq!(
        capability(&hh(), false, &v10),
        array("612bad76c2b92bca50c83f39c600f199472e1d93a5225e80824ffa2b8b47664d")
    );
    assert_eq!(
        capability(&hh(), true, &array(CORE_V11)),
        array("c14e556cfe9778520edacbc65b1ed3cb6aa9e9886724a422ef5a388951d76aa4")
    );
    // 8.5, a random run.
    let random = array(
        "0e3d2fb4ad4f21451c2532cd00d5200ed111cce3cfaa9b1c1b96dfa2a824a7db
         65a14802afa04153bf45150b66616e72bd05d085ce137a7bb9b67afa1fc4c9a7",
    );
    assert_eq!(
        capability(&random, true, &v10),
        array("3dcb89f4787b4d6ac61db4d8eee8ea00bc06861aaa384a48377044e5b4ae6f56")
    );
    assert_eq!(
        capability(&random, false, &v10),
        array("8fd8a28c369461bcd51daff565bde483098956e65b767b349e695acc567875e4")
    );
}

#[test]
fn open_matches_javascript_byte_for_byte() {
    let mut mux = Mux::new();
    let channel = CoreChannel::open(&mut mux, &array(CORE_V10), &hh(), true);
    assert_eq!(channel.local(), 1);
    assert_eq!(frames(&mut mux), [unhex(OPEN_A)]);
}

#[test]
fn javascript_open_and_batch_are_understood() {
    let mut mux = Mux::new();
    let mut channel = CoreChannel::open(&mut mux, &array(CORE_V10), &hh(), false);
    mux.receive(Bytes::from(unhex(OPEN_A))).unwrap();
    assert_eq!(
        drain(&mut mux, &mut channel),
        Ok(vec![ChannelEvent::Opened])
    );
    let batch = unhex(BATCH_C);
    mux.receive(Bytes::from(batch.clone())).unwrap();
    let events = drain(&mut mux, &mut channel).unwrap();
    // The sync is ignored; the two cached names resolve to the first.
    let names: Vec<_> = events
        .iter()
        .map(|event| match event {
            ChannelEvent::Extension { name, .. } => name.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["hyper-presence"; 3]);
    let ChannelEvent::Extension { payload, .. } = &events[0] else {
        unreachable!()
    };
    // `00 00 01`, the sync entry (`05` and 5 bytes), then `5d`: the
    // extension entry is 0x5d bytes from offset 10, its payload after
    // `09 0e "hyper-presence"`.
    assert_eq!(&payload[..], &batch[10 + 2 + 14..10 + 0x5d]);
    let ChannelEvent::Extension { payload, .. } = &events[2] else {
        unreachable!()
    };
    assert_eq!(&payload[..], &batch[batch.len() - (0x2c - 2)..]);
}

#[test]
fn extensions_follow_the_name_rule_byte_for_byte() {
    let (mut ours, mut channel, _, _) = pair(true);
    let d = unhex(EXT_D);
    let payload6 = &d[3..];
    let mut payload7 = payload6.to_vec();
    let at = payload7.windows(2).position(|w| w == [0x10, 0x06]).unwrap();
    payload7[at + 1] = 0x07;

    channel
        .send_extension(&mut ours, "hyper-presence", b"first")
        .unwrap();
    let mut first = unhex("01090e");
    first.extend(b"hyper-presence");
    first.extend(b"first");
    assert_eq!(frames(&mut ours), [first]);

    // d: the same name again is written as "".
    channel
        .send_extension(&mut ours, "hyper-presence", payload6)
        .unwrap();
    assert_eq!(frames(&mut ours), std::slice::from_ref(&d));

    // e: another name, written in full.
    channel
        .send_extension(&mut ours, "example", &unhex("0568656c6c6f"))
        .unwrap();
    assert_eq!(
        frames(&mut ours),
        [unhex("0109076578616d706c650568656c6c6f")]
    );

    // f: back to the first name, which is written in full again.
    channel
        .send_extension(&mut ours, "hyper-presence", &payload7)
        .unwrap();
    let mut f = unhex("01090e");
    f.extend(b"hyper-presence");
    f.extend(&payload7);
    assert_eq!(frames(&mut ours), [f]);
}

#[test]
fn names_resolve_per_direction_on_receipt() {
    let (mut ours, mut a, mut theirs, mut b) = pair(true);
    let sends = [
        ("x", &b"1"[..]),
        ("x", b"2"),
        ("y", b""),
        ("", b"3"),
        ("x", b"4"),
    ];
    for (name, payload) in sends {
        a.send_extension(&mut ours, name, payload).unwrap();
    }
    // The other direction's cache is separate.
    b.send_extension(&mut theirs, "z", b"back").unwrap();
    pump(&mut ours, &mut theirs);
    pump(&mut theirs, &mut ours);
    let got = drain(&mut theirs, &mut b).unwrap();
    // Sending "" after "y" writes the empty name, which the receiver reads
    // as "y": the rule cannot say "" once another name was sent.
    let expected: Vec<_> = [("x", "1"), ("x", "2"), ("y", ""), ("y", "3"), ("x", "4")]
        .iter()
        .map(|(name, payload)| ChannelEvent::Extension {
            name: name.to_string(),
            payload: Bytes::copy_from_slice(payload.as_bytes()),
        })
        .collect();
    assert_eq!(got, expected);
    assert_eq!(
        drain(&mut ours, &mut a),
        Ok(vec![ChannelEvent::Extension {
            name: "z".into(),
            payload: Bytes::from_static(b"back")
        }])
    );
}

#[test]
fn a_wrong_capability_ends_the_channel() {
    let key = array(CORE_V10);
    // Another handshake hash: the remote is not on this connection.
    let mut ours = Mux::new();
    let mut channel = CoreChannel::open(&mut ours, &key, &hh(), false);
    let mut theirs = Mux::new();
    CoreChannel::open(&mut theirs, &key, &[7; 64], true);
    pump(&mut theirs, &mut ours);
    assert_eq!(
        drain(&mut ours, &mut channel),
        Err(ChannelError::BadCapability)
    );
    assert!(!channel.is_open());

    // Two initiators: each capability is for the wrong role.
    let mut ours = Mux::new();
    let mut channel = CoreChannel::open(&mut ours, &key, &hh(), true);
    let mut theirs = Mux::new();
    CoreChannel::open(&mut theirs, &key, &hh(), true);
    pump(&mut theirs, &mut ours);
    assert_eq!(
        drain(&mut ours, &mut channel),
        Err(ChannelError::BadCapability)
    );

    // A handshake too short to hold a capability.
    let mut ours = Mux::new();
    let mut channel = CoreChannel::open(&mut ours, &key, &hh(), true);
    let mut open = unhex(OPEN_A);
    open.truncate(open.len() - 1);
    ours.receive(Bytes::from(open)).unwrap();
    assert_eq!(
        drain(&mut ours, &mut channel),
        Err(ChannelError::Decode(DecodeError::Truncated("fixed32")))
    );
}

#[test]
fn extensions_wait_for_the_remote_open() {
    let mut mux = Mux::new();
    let mut channel = CoreChannel::open(&mut mux, &array(CORE_V10), &hh(), true);
    assert_eq!(
        channel.send_extension(&mut mux, "x", b""),
        Err(ChannelError::Mux(MuxError::NotOpen(1)))
    );
    // Nothing was recorded: the name is written in full once open.
    let mut theirs = Mux::new();
    let mut b = CoreChannel::open(&mut theirs, &array(CORE_V10), &hh(), false);
    pump(&mut mux, &mut theirs);
    pump(&mut theirs, &mut mux);
    drain(&mut mux, &mut channel).unwrap();
    drain(&mut theirs, &mut b).unwrap();
    channel.send_extension(&mut mux, "x", b"p").unwrap();
    assert_eq!(frames(&mut mux), [unhex("0109017870")]);
}

#[test]
fn other_message_kinds_are_ignored_and_bad_extensions_refused() {
    let (mut ours, mut channel, _, _) = pair(true);
    for kind in [0u64, 1, 3, 8, 10, 1000] {
        ours.receive(Bytes::from(vec![0x01, kind.min(0xfc) as u8, 0xff]))
            .unwrap();
    }
    assert_eq!(drain(&mut ours, &mut channel), Ok(vec![]));
    // Truncated name.
    ours.receive(Bytes::from_static(&[0x01, 0x09, 0x05, b'a']))
        .unwrap();
    assert_eq!(
        drain(&mut ours, &mut channel),
        Err(ChannelError::Decode(DecodeError::Truncated("string")))
    );
    // No name at all.
    let (mut ours, mut channel, _, _) = pair(false);
    ours.receive(Bytes::from_static(&[0x01, 0x09])).unwrap();
    assert_eq!(
        drain(&mut ours, &mut channel),
        Err(ChannelError::Decode(DecodeError::Truncated("uint")))
    );
}

#[test]
fn close_reject_and_other_channels() {
    let (mut ours, mut a, mut theirs, mut b) = pair(true);
    // Events for another channel id are not ours.
    assert_eq!(a.handle(MuxEvent::Closed { local: 2 }), Ok(None));
    b.close(&mut theirs);
    assert!(!b.is_open());
    assert_eq!(
        b.send_extension(&mut theirs, "x", b""),
        Err(ChannelError::Mux(MuxError::NotOpen(1)))
    );
    pump(&mut theirs, &mut ours);
    assert_eq!(drain(&mut ours, &mut a), Ok(vec![ChannelEvent::Closed]));
    assert!(!a.is_open());
    // Once done, even events naming our old id are not taken.
    assert_eq!(
        a.handle(MuxEvent::Opened {
            local: 1,
            handshake: Bytes::new()
        }),
        Ok(None)
    );

    let mut ours = Mux::new();
    let mut channel = CoreChannel::open(&mut ours, &array(CORE_V10), &hh(), true);
    let mut theirs = Mux::new();
    CoreChannel::open(&mut theirs, &array(CORE_V11), &hh(), false);
    pump(&mut ours, &mut theirs);
    pump(&mut theirs, &mut ours);
    assert_eq!(drain(&mut ours, &mut channel), Err(ChannelError::Rejected));
}

proptest! {
    #[test]
    fn arbitrary_messages_and_handshakes_never_panic(
        handshake in proptest::collection::vec(any::<u8>(), 0..40),
        bodies in proptest::collection::vec(
            (0u64..12, proptest::collection::vec(any::<u8>(), 0..24)), 0..12),
    ) {
        let mut channel = {
            let mut mux = Mux::new();
            CoreChannel::open(&mut mux, &array(CORE_V10), &hh(), true)
        };
        let _ = channel.handle(MuxEvent::Opened { local: 1, handshake: Bytes::from(handshake) });
        // Whatever the handshake did, take messages as an open channel would.
        channel.state = State::Open;
        let mut longest = 0;
        for (kind, body) in bodies {
            longest = longest.max(body.len());
            let result = channel.handle(MuxEvent::Message { local: 1, kind, body: Bytes::from(body.clone()) });
            if let Ok(Some(ChannelEvent::Extension { payload, .. })) = result {
                prop_assert!(body.ends_with(&payload));
                prop_assert_eq!(kind, EXTENSION);
            }
            // The cached name comes from one body; U+FFFD is 3 bytes.
            prop_assert!(channel.last_received.len() <= 3 * longest);
        }
    }

    #[test]
    fn any_extension_round_trips(
        sends in proptest::collection::vec(
            (prop_oneof![Just(String::new()), "[a-c]{1,3}"], proptest::collection::vec(any::<u8>(), 0..40)),
            0..20),
    ) {
        let (mut ours, mut a, mut theirs, mut b) = pair(true);
        let mut last = String::new();
        let mut expected = Vec::new();
        for (name, payload) in &sends {
            a.send_extension(&mut ours, name, payload).unwrap();
            if !name.is_empty() {
                last = name.clone();
            }
            expected.push(ChannelEvent::Extension { name: last.clone(), payload: Bytes::from(payload.clone()) });
        }
        pump(&mut ours, &mut theirs);
        prop_assert_eq!(drain(&mut theirs, &mut b).unwrap(), expected);
    }
}
