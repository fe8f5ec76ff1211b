//! The BLAKE2b derivations of the transport: namespaces, stream ids,
//! capabilities and discovery keys all hash with a 32-byte digest (libsodium's
//! `crypto_generichash`, the digest length in the parameter block), keyed or
//! not.

use blake2::digest::consts::U32;
use blake2::digest::{Mac, Update, VariableOutput};
use blake2::{Blake2bMac, Blake2bVar};

/// BLAKE2b with a 32-byte digest over the concatenation of `parts`.
pub fn b256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Blake2bVar::new(32).expect("32 is a valid BLAKE2b digest length");
    for part in parts {
        hasher.update(part);
    }
    let mut out = [0u8; 32];
    hasher
        .finalize_variable(&mut out)
        .expect("the buffer has the digest length");
    out
}

/// Keyed BLAKE2b with a 32-byte digest over the concatenation of `parts`.
/// Keys are 1 to 64 bytes; every key used here is 32 or 64.
pub fn b256_keyed(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Blake2bMac<U32> as Mac>::new_from_slice(key)
        .expect("transport keys are 32 or 64 bytes, within BLAKE2b's limit");
    for part in parts {
        Mac::update(&mut mac, part);
    }
    mac.finalize().into_bytes().into()
}

/// `hypercore-crypto`'s namespace: `B256(B256(name) || index)`.
pub fn namespace(name: &str, index: u8) -> [u8; 32] {
    b256(&[&b256(&[name.as_bytes()]), &[index]])
}

/// The discovery key of a hypercore: what peers announce and open channels
/// under, without revealing the core key itself.
pub fn discovery_key(core_key: &[u8; 32]) -> [u8; 32] {
    b256_keyed(core_key, &[b"hypercore"])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).unwrap();
        out
    }

    /// Values from `docs/TRANSPORT.md` 8.1, captured from JavaScript.
    #[test]
    fn namespaces_and_discovery_keys_match_javascript() {
        assert_eq!(
            namespace("hyperswarm/secret-stream", 0),
            hex32("a931a0155b5c09e6d28628236af83c4b8a6af9af60986edeede9dc5d63192bf7")
        );
        assert_eq!(
            namespace("hyperswarm/secret-stream", 1),
            hex32("742c9d833d430af4c48a8705e91631eecf295442bbca18996e597097723b1061")
        );
        assert_eq!(
            namespace("hypercore", 1),
            hex32("51812a2a359b50369536775df89e18e47740f3db72ac0ae70b29594c194dc316")
        );
        assert_eq!(
            namespace("hypercore", 2),
            hex32("0438492d02970cc13528ac0262bca0074e0926260256865accc0bf15bd79127d")
        );
        let v10 = hex32("f381626e41e7027ea431bfe3009e94bdd25a746beec468948d6c3c7c5dc9a54b");
        assert_eq!(
            discovery_key(&v10),
            hex32("a67fe48738df92be11239fb469cdb4c7b766f1982ca52ed63ad169ecde0c998b")
        );
        let v11 = hex32("5fd88e1cb153419b18ff30fb53aaa0e99dee56fd2f0c47d3ecd7f157e9edb16b");
        assert_eq!(
            discovery_key(&v11),
            hex32("5f741f941298c4afb10b427e001c21e2dff55b46525d07703d52522830ff0b53")
        );
    }
}
