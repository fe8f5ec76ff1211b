use super::*;

const KEY: [u8; 32] = [7; 32];
const HH: [u8; 64] = [9; 64];

/// A JavaScript-like end: presence opened at once, no proof channel.
struct Plain(Session);

enum End {
    Gate(Box<Gate>),
    Plain(Box<Plain>),
}

impl End {
    fn frames(&mut self) -> Vec<Vec<u8>> {
        match self {
            End::Gate(g) => std::iter::from_fn(|| g.poll_frame()).collect(),
            End::Plain(p) => std::iter::from_fn(|| p.0.poll_frame()).collect(),
        }
    }

    fn receive(&mut self, frame: Vec<u8>) -> Result<(), String> {
        match self {
            End::Gate(g) => g.receive(frame.into()).map_err(|e| e.to_string()),
            End::Plain(p) => p.0.receive(frame.into()).map_err(|e| e.to_string()),
        }
    }
}

/// Moves frames both ways, one at a time as a stream delivers them, until
/// quiet or an error; returns every frame `a` sent.
fn run(a: &mut End, b: &mut End) -> (Result<(), String>, Vec<Vec<u8>>) {
    let mut sent_by_a = Vec::new();
    loop {
        let from_a = a.frames();
        let from_b = b.frames();
        if from_a.is_empty() && from_b.is_empty() {
            return (Ok(()), sent_by_a);
        }
        for f in from_a {
            sent_by_a.push(f.clone());
            if let Err(e) = b.receive(f) {
                return (Err(format!("b: {e}")), sent_by_a);
            }
        }
        for f in from_b {
            if let Err(e) = a.receive(f) {
                return (Err(format!("a: {e}")), sent_by_a);
            }
        }
    }
}

fn gate_events(end: &mut End) -> Vec<GateEvent> {
    match end {
        End::Gate(g) => std::iter::from_fn(|| g.poll_event()).collect(),
        End::Plain(_) => Vec::new(),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn two_of_ours_learn_each_others_identity_though_the_dialler_key_is_random() {
    let (alice, bob) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
    let random = Identity::from_seed([3; 32]);
    // Alice dialled Bob: Bob sees a random key, Alice sees Bob's identity.
    let mut a = End::Gate(Box::new(Gate::new(
        &alice,
        true,
        *bob.id().as_bytes(),
        HH,
        KEY,
        "ext",
    )));
    let mut b = End::Gate(Box::new(Gate::new(
        &bob,
        false,
        *random.id().as_bytes(),
        HH,
        KEY,
        "ext",
    )));
    let (result, _) = run(&mut a, &mut b);
    result.unwrap();
    assert_eq!(gate_events(&mut a), vec![GateEvent::Ready(bob.id())]);
    assert_eq!(gate_events(&mut b), vec![GateEvent::Ready(alice.id())]);
    let (End::Gate(ga), End::Gate(gb)) = (&mut a, &mut b) else {
        unreachable!()
    };
    ga.send_packets([&b"hello"[..]]).unwrap();
    assert!(ga.is_ready() && gb.is_ready());
    run(&mut a, &mut b).0.unwrap();
    assert_eq!(
        gate_events(&mut b),
        vec![GateEvent::Packet(Bytes::from_static(b"hello"))]
    );
}

#[test]
fn a_dialled_javascript_peer_never_sees_our_presence_open() {
    let alice = Identity::from_seed([1; 32]);
    let js = Identity::from_seed([4; 32]);
    let mut a = End::Gate(Box::new(Gate::new(
        &alice,
        true,
        *js.id().as_bytes(),
        HH,
        KEY,
        "ext",
    )));
    let mut j = End::Plain(Box::new(Plain(Session::new(&KEY, &HH, false, "ext"))));
    let (result, sent) = run(&mut a, &mut j);
    assert_eq!(result, Err(format!("a: {}", GateError::Foreign)));
    assert!(
        !sent.iter().any(|f| contains(f, b"hypercore/alpha")),
        "no presence open may leave a dialler that has no proof"
    );
    assert!(gate_events(&mut a).is_empty());
}

#[test]
fn a_javascript_dialler_is_known_by_its_noise_key() {
    let bob = Identity::from_seed([2; 32]);
    let js = Identity::from_seed([4; 32]);
    let mut b = End::Gate(Box::new(Gate::new(
        &bob,
        false,
        *js.id().as_bytes(),
        HH,
        KEY,
        "ext",
    )));
    let mut j = End::Plain(Box::new(Plain(Session::new(&KEY, &HH, true, "ext"))));
    run(&mut j, &mut b).0.unwrap();
    assert_eq!(gate_events(&mut b), vec![GateEvent::Ready(js.id())]);
}

#[test]
fn a_proof_for_another_stream_or_another_identity_is_refused() {
    let (alice, bob) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
    let random = Identity::from_seed([3; 32]);
    // Alice's proof was made for another handshake hash (replayed).
    let mut a = End::Gate(Box::new(Gate::new(
        &alice,
        true,
        *bob.id().as_bytes(),
        [8; 64],
        KEY,
        "ext",
    )));
    let mut b = End::Gate(Box::new(Gate::new(
        &bob,
        false,
        *random.id().as_bytes(),
        HH,
        KEY,
        "ext",
    )));
    let (result, _) = run(&mut a, &mut b);
    assert!(result.is_err());
    assert!(gate_events(&mut b).is_empty());
    // Alice dialled Carol's key but the server proves Bob.
    let carol = Identity::from_seed([5; 32]);
    let mut a = End::Gate(Box::new(Gate::new(
        &alice,
        true,
        *carol.id().as_bytes(),
        HH,
        KEY,
        "ext",
    )));
    let mut b = End::Gate(Box::new(Gate::new(
        &bob,
        false,
        *random.id().as_bytes(),
        HH,
        KEY,
        "ext",
    )));
    let (result, _) = run(&mut a, &mut b);
    assert_eq!(result, Err(format!("a: {}", GateError::WrongIdentity)));
    assert!(gate_events(&mut a).is_empty());
}

#[test]
fn proofs_check_only_for_their_stream_and_role() {
    let alice = Identity::from_seed([1; 32]);
    let p = proof(&alice, &HH, true);
    assert_eq!(check(&p, &HH, true), Some(alice.id()));
    assert_eq!(check(&p, &HH, false), None, "reflected to the other role");
    assert_eq!(check(&p, &[0; 64], true), None, "another stream");
    assert_eq!(check(&p[..50], &HH, true), None, "truncated");
    let mut bad = p.clone();
    bad[40] ^= 1;
    assert_eq!(check(&bad, &HH, true), None);
}
