//! Signed registers: what an origin signs when it sets its edge list or its
//! data, and checking such signatures, one by one or as a batch.
//!
//! A peer's id is its Ed25519 public key, so a register signed by the key
//! of its origin's id can only have been set by that origin: relays, and a
//! hostile neighbour, can pass it on or drop it, never change it or make up
//! a newer one. No IO here: the engine gets a [`Signer`] through its
//! configuration.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};

use super::wire::{Signature, Stamp};
use super::PeerId;

/// Domain separation: these bytes start everything signed as a register, so
/// a register signature can never pass for a signature of anything else the
/// key signs (or the other way round).
const DOMAIN: &[u8] = b"hyper-presence register v1";

/// Which of an origin's two registers a signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Register {
    /// Its whole outgoing edge list.
    Edges,
    /// Its data.
    Data,
}

impl Register {
    fn tag(self) -> u8 {
        match self {
            Register::Edges => 1,
            Register::Data => 2,
        }
    }
}

/// Our identity's signing key, for signing our own registers. Debug output
/// shows the id only.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "Signer({})", self.id().short())
    }
}

impl Signer {
    /// The signer whose Ed25519 secret seed is `seed` (the 32 bytes an
    /// identity file keeps).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Signer {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The id this key signs for: its public key.
    pub fn id(&self) -> PeerId {
        PeerId::from_bytes(self.key.verifying_key().to_bytes())
    }

    /// Our signature of our edge list `edges` (in any order) under `stamp`.
    pub fn sign_edges(&self, stamp: Stamp, edges: &[PeerId]) -> Signature {
        self.sign(&edges_message(&self.id(), stamp, edges))
    }

    /// Our signature of our data (`None`: none) under `stamp`.
    pub fn sign_data(&self, stamp: Stamp, data: Option<&[u8]>) -> Signature {
        self.sign(&data_message(&self.id(), stamp, data))
    }

    fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message).to_bytes()
    }
}

/// The bytes an origin signs for its edge list: the domain, the origin, the
/// register, the stamp (big-endian), then the list's length and its ids in
/// id order without duplicates or the origin itself. That canonical form is
/// what every relay keeps and sends on, whatever order the origin listed.
pub fn edges_message(origin: &PeerId, stamp: Stamp, edges: &[PeerId]) -> Vec<u8> {
    let mut list: Vec<&PeerId> = edges.iter().filter(|e| *e != origin).collect();
    list.sort_unstable();
    list.dedup();
    let mut out = header(origin, Register::Edges, stamp, 4 + 32 * list.len());
    out.extend_from_slice(&(list.len() as u32).to_be_bytes());
    for id in list {
        out.extend_from_slice(id.as_bytes());
    }
    out
}

/// The bytes an origin signs for its data: the domain, the origin, the
/// register, the stamp, then 0 for no data or 1, the length and the bytes.
pub fn data_message(origin: &PeerId, stamp: Stamp, data: Option<&[u8]>) -> Vec<u8> {
    let len = data.map_or(0, <[u8]>::len);
    let mut out = header(origin, Register::Data, stamp, 5 + len);
    match data {
        None => out.push(0),
        Some(bytes) => {
            out.push(1);
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
    out
}

fn header(origin: &PeerId, register: Register, stamp: Stamp, extra: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(DOMAIN.len() + 32 + 1 + 16 + extra);
    out.extend_from_slice(DOMAIN);
    out.extend_from_slice(origin.as_bytes());
    out.push(register.tag());
    out.extend_from_slice(&stamp.incarnation.to_be_bytes());
    out.extend_from_slice(&stamp.version.to_be_bytes());
    out
}

/// One signature to check: `origin`'s signature of `message`.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Whose key must have signed.
    pub origin: PeerId,
    /// The canonical bytes ([`edges_message`] or [`data_message`]).
    pub message: Vec<u8>,
    /// The signature that came with it.
    pub signature: Signature,
}

/// Whether `claim` holds: the origin's id is a valid Ed25519 key and it
/// signed the message.
pub fn verify(claim: &Claim) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(claim.origin.as_bytes()) else {
        return false;
    };
    let signature = ed25519_dalek::Signature::from_bytes(&claim.signature);
    key.verify(&claim.message, &signature).is_ok()
}

/// Below this many claims, checking one by one is as fast as a batch.
const MIN_BATCH: usize = 4;

/// Which of `claims` hold, in order. Many at once are checked as one batch
/// (cheaper per signature); if the batch fails, one by one, to find the bad
/// ones, so a forger costs us at most a batch more than its own claims.
pub fn verify_all(claims: &[Claim]) -> Vec<bool> {
    if claims.len() >= MIN_BATCH {
        let keys: Option<Vec<VerifyingKey>> = claims
            .iter()
            .map(|c| VerifyingKey::from_bytes(c.origin.as_bytes()).ok())
            .collect();
        if let Some(keys) = keys {
            let messages: Vec<&[u8]> = claims.iter().map(|c| &c.message[..]).collect();
            let signatures: Vec<ed25519_dalek::Signature> = claims
                .iter()
                .map(|c| ed25519_dalek::Signature::from_bytes(&c.signature))
                .collect();
            if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
                return vec![true; claims.len()];
            }
        }
    }
    claims.iter().map(verify).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(n: u8) -> Signer {
        Signer::from_seed([n; 32])
    }

    fn stamp(incarnation: u64, version: u64) -> Stamp {
        Stamp {
            incarnation,
            version,
        }
    }

    #[test]
    fn a_signature_holds_for_its_register_and_nothing_else() {
        let s = signer(1);
        let me = s.id();
        let (a, b) = (PeerId::from_bytes([2; 32]), PeerId::from_bytes([3; 32]));
        let sig = s.sign_edges(stamp(5, 6), &[b, a, a, me]);
        let claim = |message| Claim {
            origin: me,
            message,
            signature: sig,
        };
        // Any order, duplicates and a self loop: the same canonical list.
        assert!(verify(&claim(edges_message(&me, stamp(5, 6), &[a, b]))));
        assert!(!verify(&claim(edges_message(&me, stamp(5, 7), &[a, b]))));
        assert!(!verify(&claim(edges_message(&me, stamp(5, 6), &[a]))));
        let other = signer(9).id();
        assert!(!verify(&Claim {
            origin: other,
            ..claim(edges_message(&other, stamp(5, 6), &[a, b]))
        }));
        // The same stamp as data is another register.
        let data_sig = s.sign_data(stamp(5, 6), None);
        assert_ne!(data_sig, sig);
        assert!(verify(&Claim {
            signature: data_sig,
            ..claim(data_message(&me, stamp(5, 6), None))
        }));
        assert!(!verify(&Claim {
            signature: data_sig,
            ..claim(data_message(&me, stamp(5, 6), Some(b"")))
        }));
    }

    #[test]
    fn an_id_that_is_no_key_never_verifies() {
        // About half of all 32-byte strings are no curve point.
        let origin = (0..=255u8)
            .map(|n| PeerId::from_bytes([n; 32]))
            .find(|id| VerifyingKey::from_bytes(id.as_bytes()).is_err())
            .expect("some byte string is no point");
        let claim = Claim {
            origin,
            message: data_message(&origin, stamp(0, 0), None),
            signature: [0; 64],
        };
        assert!(!verify(&claim));
        assert_eq!(verify_all(&vec![claim; 5]), vec![false; 5]);
    }

    #[test]
    fn a_batch_with_one_forgery_finds_exactly_that_one() {
        let claims: Vec<Claim> = (1..=8u8)
            .map(|n| {
                let s = signer(n);
                let message = data_message(&s.id(), stamp(1, u64::from(n)), Some(&[n]));
                Claim {
                    origin: s.id(),
                    signature: s.sign_data(stamp(1, u64::from(n)), Some(&[n])),
                    message,
                }
            })
            .collect();
        assert_eq!(verify_all(&claims), vec![true; 8]);
        let mut forged = claims.clone();
        forged[5].signature[0] ^= 1;
        let mut want = vec![true; 8];
        want[5] = false;
        assert_eq!(verify_all(&forged), want);
        assert_eq!(verify_all(&claims[..2]), vec![true; 2]);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let text = format!("{:?}", signer(0xab));
        assert!(!text.contains("abab"), "{text}");
        assert!(text.starts_with("Signer("));
    }
}
