use super::super::vectors::*;
use super::*;
use curve25519_dalek::constants::EIGHT_TORSION;

fn public(n: u8) -> [u8; 32] {
    let mut dh = EdDh::default();
    dh.set_seed(seed(n));
    dh.public
}

/// The frame bodies of vector 8.2 (the captured bytes without their u24).
fn vector_frames() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let f1 = unhex(
        "200000fd50b8e3b144ea244fbf7737f550bc8dd0c2650bbc1aada833ca17ff8d
         bf329b",
    );
    let f2 = unhex(
        "600000fde4fba030ad002f7c2f7d4c331f49d13fb0ec747eceebec634f1ff4cb
         ca9defaf3b42c3350c038850c1d3d45fabf51ba4e08a5ce48e7b980b0f659daa
         8fe1d63a9ecbfdd7e6d72a029b1bd0ece695e5ce015c649071e51fd4d63eae7e
         29504e",
    );
    let f3 = unhex(
        "400000a443a3a20f0367a6ec4b3eb9381ead3557d7c1e1a72b76b65892776675
         159b6068490ef7b491d9492b85f32e472b98a93d36dea7c097947f76687e5887
         1e5ed6",
    );
    (f1[3..].to_vec(), f2[3..].to_vec(), f3[3..].to_vec())
}

/// Runs a whole handshake in memory and returns both sides, finished.
fn handshake_pair(initiator_seed: &[u8; 32], responder_seed: &[u8; 32]) -> (Handshake, Handshake) {
    let mut initiator = Handshake::new(true, initiator_seed).unwrap();
    let mut responder = Handshake::new(false, responder_seed).unwrap();
    let f1 = initiator.start().unwrap().unwrap();
    let f2 = responder.receive(&f1).unwrap().unwrap();
    let f3 = initiator.receive(&f2).unwrap().unwrap();
    assert_eq!(responder.receive(&f3).unwrap(), None);
    (initiator, responder)
}

/// Our public keys are libsodium's Ed25519 public keys (8.1), which are
/// what JavaScript takes as peer ids.
#[test]
fn static_keys_are_the_ed25519_public_keys_of_the_seeds() {
    assert_eq!(
        hex::encode(public(1)),
        "4cb5abf6ad79fbf5abbccafcc269d85cd2651ed4b885b5869f241aedf0a5ba29"
    );
    assert_eq!(
        hex::encode(public(2)),
        "7422b9887598068e32c4448a949adb290d0f4e35b9e01b0ee5f1a1e600fe2674"
    );
    for n in 1..6 {
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed(n));
        assert_eq!(signing.verifying_key().to_bytes(), public(n));
    }
}

/// The three Diffie-Hellman results of 8.2, computed from both ends.
#[test]
fn ed25519_dh_matches_the_captured_values() {
    let dh = |ours: u8, theirs: u8| {
        hex::encode(ed25519_dh(&seed_scalar(&seed(ours)), &public(theirs)).unwrap())
    };
    let ee = "017d6defdbe353173fa31af71fdafcb0a6d37e2dfbc44c8180cb0bbebca06d39";
    let es = "1f1b494bcb877f30346bb034f8169991e471b253dabae810be74bb31857702a9";
    let se = "05e7e476fb71b5e16929e833646fc200a6c78f7f89a0c073739ae9b34b73d46c";
    assert_eq!(dh(4, 5), ee);
    assert_eq!(dh(5, 4), ee);
    assert_eq!(dh(4, 2), es);
    assert_eq!(dh(2, 4), es);
    assert_eq!(dh(1, 5), se);
    assert_eq!(dh(5, 1), se);
}

/// Vector 8.2 byte for byte: with the ephemerals fixed, both sides write
/// exactly what JavaScript wrote and end with its hash and keys.
#[test]
fn handshake_reproduces_the_javascript_capture() {
    let (f1, f2, f3) = vector_frames();
    let mut initiator = Handshake::with_ephemeral(true, &seed(1), &seed(4)).unwrap();
    let mut responder = Handshake::with_ephemeral(false, &seed(2), &seed(5)).unwrap();

    assert_eq!(initiator.start().unwrap().unwrap(), f1);
    assert_eq!(initiator.start().unwrap(), None, "F1 is written once");
    assert!(initiator.keys().is_none());
    assert_eq!(responder.receive(&f1).unwrap().unwrap(), f2);
    assert!(responder.keys().is_none());
    assert_eq!(initiator.receive(&f2).unwrap().unwrap(), f3);
    assert_eq!(responder.receive(&f3).unwrap(), None);

    let hash = unhex(HANDSHAKE_HASH);
    let t1 = "b0f2a9f46ba6db6bdc4900f1b9718e3031c423ff650ee9272245f289cab76ba9";
    let t2 = "a043b75bb037ed41c83fb52b96e23b7613b3c5199c71ede17f0296a17328dab3";
    let ik = initiator.keys().unwrap();
    let rk = responder.keys().unwrap();
    assert_eq!(ik.handshake_hash.to_vec(), hash);
    assert_eq!(rk.handshake_hash.to_vec(), hash);
    assert_eq!(hex::encode(ik.tx), t1);
    assert_eq!(hex::encode(ik.rx), t2);
    assert_eq!(hex::encode(rk.tx), t2);
    assert_eq!(hex::encode(rk.rx), t1);
    assert_eq!(ik.remote_static, public(2));
    assert_eq!(rk.remote_static, public(1));
}

/// Random ephemerals: both ends agree, each learns the other's static key,
/// and keys differ between runs.
#[test]
fn both_sides_agree_on_random_ephemerals() {
    let (a, b) = handshake_pair(&seed(1), &seed(2));
    let (ak, bk) = (a.keys().unwrap(), b.keys().unwrap());
    assert_eq!(ak.handshake_hash, bk.handshake_hash);
    assert_eq!(ak.tx, bk.rx);
    assert_eq!(ak.rx, bk.tx);
    assert_ne!(ak.tx, ak.rx);
    assert_eq!(ak.remote_static, public(2));
    assert_eq!(bk.remote_static, public(1));
    let (c, _) = handshake_pair(&seed(1), &seed(2));
    assert_ne!(c.keys().unwrap().handshake_hash, ak.handshake_hash);
}

/// One key pair serves both roles: a node's id is its static key whether
/// it dialled or was dialled.
#[test]
fn the_same_seed_gives_the_same_identity_in_both_roles() {
    let (a, b) = handshake_pair(&seed(7), &seed(8));
    let (c, d) = handshake_pair(&seed(8), &seed(7));
    assert_eq!(b.keys().unwrap().remote_static, public(7));
    assert_eq!(c.keys().unwrap().remote_static, public(7));
    assert_eq!(a.keys().unwrap().remote_static, public(8));
    assert_eq!(d.keys().unwrap().remote_static, public(8));
}

#[test]
fn keys_debug_hides_the_secrets() {
    let (a, _) = handshake_pair(&seed(1), &seed(2));
    let keys = a.keys().unwrap();
    let shown = format!("{keys:?}");
    assert!(shown.contains(&hex::encode(public(2))));
    assert!(!shown.contains(&hex::encode(keys.tx)));
    assert!(!shown.contains(&hex::encode(keys.rx)));
}

#[test]
fn messages_of_the_wrong_length_are_refused() {
    let (f1, f2, f3) = vector_frames();
    let mut responder = Handshake::new(false, &seed(2)).unwrap();
    assert_eq!(
        responder.receive(&f1[..31]),
        Err(NoiseError::Length {
            got: 31,
            expected: 32
        })
    );
    // The failure sticks, even for a good message afterwards.
    assert!(responder.receive(&f1).is_err());
    assert_eq!(responder.expected_len(), None);

    let mut initiator = Handshake::new(true, &seed(1)).unwrap();
    initiator.start().unwrap();
    let mut long = f2.clone();
    long.push(0);
    assert_eq!(
        initiator.receive(&long),
        Err(NoiseError::Length {
            got: 97,
            expected: 96
        })
    );

    let mut responder = Handshake::new(false, &seed(2)).unwrap();
    responder.receive(&f1).unwrap();
    assert_eq!(
        responder.receive(&f3[..63]),
        Err(NoiseError::Length {
            got: 63,
            expected: 64
        })
    );
}

#[test]
fn messages_out_of_turn_are_refused() {
    let (f1, ..) = vector_frames();
    // An initiator that has not written F1 expects nothing.
    let mut initiator = Handshake::new(true, &seed(1)).unwrap();
    assert_eq!(initiator.receive(&f1), Err(NoiseError::OutOfTurn));
    // A responder never starts.
    let mut responder = Handshake::new(false, &seed(2)).unwrap();
    assert_eq!(responder.start(), Ok(None));
    // After the handshake, nothing more is expected.
    let (mut a, mut b) = handshake_pair(&seed(1), &seed(2));
    assert_eq!(a.receive(&[0; 64]), Err(NoiseError::OutOfTurn));
    assert_eq!(b.receive(&[0; 64]), Err(NoiseError::OutOfTurn));
    // Two initiators (pitfall 14): one's F1 is not the other's F2.
    let mut x = Handshake::new(true, &seed(1)).unwrap();
    let mut y = Handshake::new(true, &seed(2)).unwrap();
    let fx = x.start().unwrap().unwrap();
    y.start().unwrap();
    assert!(matches!(y.receive(&fx), Err(NoiseError::Length { .. })));
}

/// Every single-bit flip in F2 or F3 makes the receiver fail (a bad point
/// or a failed decryption), never panic, never finish.
#[test]
fn tampered_messages_fail() {
    let (f1, f2, f3) = vector_frames();
    for bit in 0..f2.len() * 8 {
        let mut bad = f2.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let mut initiator = Handshake::with_ephemeral(true, &seed(1), &seed(4)).unwrap();
        initiator.start().unwrap();
        assert!(
            matches!(initiator.receive(&bad), Err(NoiseError::Failed(_))),
            "bit {bit} of F2"
        );
        assert!(initiator.keys().is_none());
    }
    for bit in 0..f3.len() * 8 {
        let mut bad = f3.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let mut responder = Handshake::with_ephemeral(false, &seed(2), &seed(5)).unwrap();
        responder.receive(&f1).unwrap();
        assert!(
            matches!(responder.receive(&bad), Err(NoiseError::Failed(_))),
            "bit {bit} of F3"
        );
        assert!(responder.keys().is_none());
    }
}

#[test]
fn garbage_messages_fail() {
    let mut initiator = Handshake::new(true, &seed(1)).unwrap();
    initiator.start().unwrap();
    assert!(matches!(
        initiator.receive(&[0x5a; 96]),
        Err(NoiseError::Failed(_))
    ));
    let mut responder = Handshake::new(false, &seed(2)).unwrap();
    responder.receive(&public(9)).unwrap();
    assert!(matches!(
        responder.receive(&[0x5a; 64]),
        Err(NoiseError::Failed(_))
    ));
}

/// Encodings that must be refused as a remote key: small-order points, the
/// identity, points with a torsion component, non-canonical encodings and
/// strings that are not points at all.
fn bad_points() -> Vec<[u8; 32]> {
    let mut points: Vec<[u8; 32]> = EIGHT_TORSION
        .iter()
        .map(|t| t.compress().to_bytes())
        .collect();
    // A valid key plus each non-trivial torsion point.
    let valid = CompressedEdwardsY(public(3)).decompress().unwrap();
    points.extend(
        EIGHT_TORSION[1..]
            .iter()
            .map(|t| (valid + t).compress().to_bytes()),
    );
    // y = p and y = p + 1: non-canonical encodings of small-order points.
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    points.push(p);
    p[0] = 0xee;
    points.push(p);
    // The identity with the sign bit set.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    identity[31] = 0x80;
    points.push(identity);
    // y = 2 has no x on the curve.
    let mut two = [0u8; 32];
    two[0] = 2;
    assert!(CompressedEdwardsY(two).decompress().is_none());
    points.push(two);
    points
}

#[test]
fn bad_points_are_refused_by_the_dh() {
    let scalar = seed_scalar(&seed(1));
    for point in bad_points() {
        assert_eq!(ed25519_dh(&scalar, &point), None, "{}", hex::encode(point));
    }
    assert_eq!(ed25519_dh(&scalar, &[1; 31]), None);
    assert!(ed25519_dh(&scalar, &public(2)).is_some());
}

/// Every non-canonical encoding (y + p for y < 19, either sign) is refused,
/// including those that decode to a point on the curve. (All of those points
/// turn out to carry torsion too, so the canonical check backs up the
/// subgroup check rather than standing alone.)
#[test]
fn non_canonical_encodings_are_refused() {
    let scalar = seed_scalar(&seed(1));
    let mut on_curve = 0;
    for y in 0u8..19 {
        for sign in [0u8, 0x80] {
            // y + p, little-endian: p = 2^255 - 19.
            let mut alias = [0xffu8; 32];
            alias[0] = 0xed + y;
            alias[31] = 0x7f | sign;
            if CompressedEdwardsY(alias).decompress().is_some() {
                on_curve += 1;
            }
            assert_eq!(ed25519_dh(&scalar, &alias), None, "{}", hex::encode(alias));
        }
    }
    assert!(
        on_curve > 0,
        "some aliases must decode for this to test anything"
    );
}

/// A bad ephemeral in F1 fails the responder when it computes `ee`; a bad
/// ephemeral in F2 fails the initiator.
#[test]
fn bad_ephemerals_fail_the_handshake() {
    for point in bad_points() {
        let mut responder = Handshake::new(false, &seed(2)).unwrap();
        assert!(
            matches!(responder.receive(&point), Err(NoiseError::Failed(_))),
            "{}",
            hex::encode(point)
        );

        let mut initiator = Handshake::new(true, &seed(1)).unwrap();
        initiator.start().unwrap();
        let mut f2 = vec![0u8; 96];
        f2[..32].copy_from_slice(&point);
        assert!(matches!(initiator.receive(&f2), Err(NoiseError::Failed(_))));
    }
}
