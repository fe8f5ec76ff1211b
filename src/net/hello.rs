//! The signed hello that proves, on each connection, which presence id is on
//! the other end.
//!
//! The Noise initiator of `hypercore_handshake` always uses a fresh random
//! static key (it has no constructor taking ours), so the remote Noise key
//! cannot be the id. Instead each side signs both Noise keys of *this*
//! connection with its identity key. The initiator's key is new on every
//! connection, so a hello copied from another connection names the wrong
//! keys and is refused.

use super::identity::{verify, Identity};
use crate::proto::PeerId;

/// Domain separation for hello signatures.
const CONTEXT: &[u8] = b"hyper-presence hello v1";

/// Encoded hello: id (32) then signature (64).
pub const HELLO_LEN: usize = 32 + 64;

fn signed_bytes(sender_noise: &[u8; 32], receiver_noise: &[u8; 32]) -> Vec<u8> {
    [CONTEXT, sender_noise, receiver_noise].concat()
}

/// Our hello for a connection where our Noise key is `local_noise` and the
/// peer's is `remote_noise`.
pub fn make(identity: &Identity, local_noise: &[u8; 32], remote_noise: &[u8; 32]) -> Vec<u8> {
    let signature = identity.sign(&signed_bytes(local_noise, remote_noise));
    [identity.id().as_bytes().as_slice(), &signature].concat()
}

/// Why a hello was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// Not 96 bytes.
    #[error("hello of {0} bytes, expected 96")]
    Length(usize),
    /// The signature does not cover this connection's keys with that id.
    #[error("hello signature does not verify for this connection")]
    Signature,
}

/// Checks a peer's hello on a connection where its Noise key is
/// `remote_noise` and ours `local_noise`; returns the proven id.
pub fn check(
    hello: &[u8],
    local_noise: &[u8; 32],
    remote_noise: &[u8; 32],
) -> Result<PeerId, HelloError> {
    if hello.len() != HELLO_LEN {
        return Err(HelloError::Length(hello.len()));
    }
    let id = PeerId::from_slice(&hello[..32]).map_err(|_| HelloError::Length(hello.len()))?;
    let mut signature = [0u8; 64];
    signature.copy_from_slice(&hello[32..]);
    if verify(&id, &signed_bytes(remote_noise, local_noise), &signature) {
        Ok(id)
    } else {
        Err(HelloError::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_proves_its_id_on_its_own_connection_only() {
        let alice = Identity::from_seed([1; 32]);
        let (a_noise, b_noise, other) = ([10u8; 32], [20u8; 32], [30u8; 32]);
        let hello = make(&alice, &a_noise, &b_noise);
        assert_eq!(check(&hello, &b_noise, &a_noise), Ok(alice.id()));
        // Replayed on a connection with another initiator key.
        assert_eq!(check(&hello, &b_noise, &other), Err(HelloError::Signature));
        // Reflected back at its sender.
        assert_eq!(
            check(&hello, &a_noise, &b_noise),
            Err(HelloError::Signature)
        );
    }

    #[test]
    fn forged_and_truncated_hellos_are_refused() {
        let alice = Identity::from_seed([1; 32]);
        let mallory = Identity::from_seed([2; 32]);
        let (a, b) = ([10u8; 32], [20u8; 32]);
        let mut forged = make(&mallory, &a, &b);
        forged[..32].copy_from_slice(alice.id().as_bytes());
        assert_eq!(check(&forged, &b, &a), Err(HelloError::Signature));
        assert_eq!(check(&forged[..50], &b, &a), Err(HelloError::Length(50)));
    }
}
