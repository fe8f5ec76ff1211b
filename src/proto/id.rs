//! The peer id: who a peer is, on the wire and in every map.

use std::fmt;
use std::str::FromStr;

/// A peer's identity in the presence network: the 32-byte static public key
/// of its replication stream, printed as lowercase hex everywhere.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PeerId([u8; 32]);

/// Two 128-bit words, where the derive hashes a length and then 32 bytes
/// through the hasher's general path for byte strings: every view look-up
/// hashes an id, and that path was about a twentieth of a simulation's
/// instructions. Equal ids give equal words, so this agrees with `Eq`.
impl std::hash::Hash for PeerId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for half in self.0.chunks_exact(16) {
            state.write_u128(u128::from_le_bytes(half.try_into().expect("16 bytes")));
        }
    }
}

/// Byte order, as the bytes' derive would give, but as big-endian words,
/// the next read only while the words so far are equal: a call to
/// `memcmp` per comparison was a few per cent of a simulation, which sorts
/// and merges edge lists for every entry it learns, and ids (keys) almost
/// always differ in their first word. Inline, so that the crates that sort
/// ids (an `Online` event sorts every online peer) need not call it.
impl Ord for PeerId {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        for (a, b) in self.0.chunks_exact(8).zip(other.0.chunks_exact(8)) {
            let a = u64::from_be_bytes(a.try_into().expect("8 bytes"));
            let b = u64::from_be_bytes(b.try_into().expect("8 bytes"));
            if a != b {
                return a.cmp(&b);
            }
        }
        std::cmp::Ordering::Equal
    }
}

/// `ids` in their order ([`PeerId`]'s `Ord`), sorted by each id's first
/// eight bytes (beside its place in `ids`) instead of by the ids
/// themselves: 16-byte pairs compared by one number move and compare
/// faster than 32-byte ids, and an `Online` event sorts every online peer
/// (at 10,000 peers, most of what a node joining the network spent). Ids
/// sharing their first eight bytes (only chosen ones do) are ordered by
/// the whole id afterwards, so even a list of such ids costs no more than
/// sorting it whole.
pub(crate) fn sorted(ids: Vec<PeerId>) -> Vec<PeerId> {
    let mut keyed: Vec<(u64, usize)> = ids.iter().map(PeerId::prefix).zip(0..).collect();
    keyed.sort_unstable_by_key(|&(key, _)| key);
    let mut out: Vec<PeerId> = keyed.iter().map(|&(_, i)| ids[i]).collect();
    let mut start = 0;
    while start < keyed.len() {
        let run = keyed[start..]
            .iter()
            .take_while(|(key, _)| *key == keyed[start].0)
            .count();
        out[start..start + run].sort_unstable();
        start += run;
    }
    out
}

impl PartialOrd for PeerId {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Why a string or byte slice is not a [`PeerId`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PeerIdError {
    /// The id had the wrong number of bytes (ids are exactly 32).
    #[error("a peer id is 32 bytes, got {0}")]
    Length(usize),
    /// The text was not 64 hexadecimal digits.
    #[error("a peer id is 64 hex digits: {0}")]
    Hex(#[from] hex::FromHexError),
}

impl PeerId {
    /// The first eight bytes as a big-endian number: ids in this order
    /// are in their order, up to ties.
    #[inline]
    fn prefix(&self) -> u64 {
        u64::from_be_bytes(self.0[..8].try_into().expect("8 bytes"))
    }

    /// Byte length of every id.
    pub const LEN: usize = 32;

    /// Wraps 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        PeerId(bytes)
    }

    /// Takes an id from a byte slice, refusing any length but 32.
    #[inline]
    pub fn from_slice(bytes: &[u8]) -> Result<Self, PeerIdError> {
        <[u8; 32]>::try_from(bytes)
            .map(PeerId)
            .map_err(|_| PeerIdError::Length(bytes.len()))
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, the form the original uses as a map key.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The 64 lowercase hex digits as ASCII bytes, without allocating (for
    /// encoders that write many ids).
    pub fn hex_bytes(&self) -> [u8; 64] {
        let mut buf = [0u8; 64];
        // Cannot fail: the buffer is exactly twice the input.
        let _ = hex::encode_to_slice(self.0, &mut buf);
        buf
    }

    /// The id from 64 hex digits (either case) given as bytes; `None` if
    /// they are not.
    pub fn from_hex_bytes(hex: &[u8]) -> Option<PeerId> {
        // The decoder also takes a `0x` prefix; an id never has one.
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex, &mut out).ok()?;
        Some(PeerId(out))
    }

    /// The first 8 hex digits, for humans.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl FromStr for PeerId {
    type Err = PeerIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 {
            // Counted in bytes of the would-be id so the message matches `Length`.
            return Err(PeerIdError::Length(s.len() / 2));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(PeerId(out))
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        // Cannot fail: the buffer is exactly twice the input.
        hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.short())
    }
}

impl serde::Serialize for PeerId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PeerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_is_lowercase() {
        let id = PeerId::from_bytes([0xab; 32]);
        let text = id.to_string();
        assert_eq!(text, "ab".repeat(32));
        assert_eq!(text.parse::<PeerId>().unwrap(), id);
        assert_eq!("AB".repeat(32).parse::<PeerId>().unwrap(), id);
    }

    #[test]
    fn wrong_lengths_and_bad_digits_are_refused() {
        assert_eq!("ab".parse::<PeerId>(), Err(PeerIdError::Length(1)));
        assert!(matches!(
            "zz".repeat(32).parse::<PeerId>(),
            Err(PeerIdError::Hex(_))
        ));
        assert_eq!(PeerId::from_slice(&[0; 31]), Err(PeerIdError::Length(31)));
        assert!(PeerId::from_slice(&[7; 32]).is_ok());
    }

    proptest::proptest! {
        /// Ids sort as their bytes do: the order edge lists are kept and
        /// compared in, and that every peer must agree on.
        #[test]
        fn ids_order_as_their_bytes(
            a in proptest::array::uniform32(proptest::num::u8::ANY),
            b in proptest::array::uniform32(proptest::num::u8::ANY),
            at in 0usize..32,
        ) {
            // Often equal up to some byte, as ids that share a prefix are.
            let mut b = b;
            b[..at].copy_from_slice(&a[..at]);
            let (x, y) = (PeerId::from_bytes(a), PeerId::from_bytes(b));
            proptest::prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            proptest::prop_assert_eq!(x.partial_cmp(&y), Some(a.cmp(&b)));
            proptest::prop_assert_eq!(x == y, a == b);
        }
    }

    proptest::proptest! {
        /// Sorting by prefix first gives the ids' own order, also when many
        /// share their first eight bytes.
        #[test]
        fn sorted_is_the_ids_order(
            ids in proptest::collection::vec(
                (proptest::array::uniform32(proptest::num::u8::ANY), 0usize..3),
                0..200,
            ),
        ) {
            let ids: Vec<PeerId> = ids
                .into_iter()
                .map(|(mut bytes, shared)| {
                    // A third of them share one of two prefixes.
                    if shared > 0 {
                        bytes[..8].copy_from_slice(&[shared as u8; 8]);
                    }
                    PeerId::from_bytes(bytes)
                })
                .collect();
            let mut expected = ids.clone();
            expected.sort_unstable();
            proptest::prop_assert_eq!(super::sorted(ids), expected);
        }
    }

    #[test]
    fn serde_uses_the_hex_form() {
        let id = PeerId::from_bytes([0x11; 32]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", "11".repeat(32)));
        assert_eq!(serde_json::from_str::<PeerId>(&json).unwrap(), id);
    }
}
