//! View entries encoded once per round of sending, for every neighbour that
//! is owed them.

use foldhash::fast::FixedState;
use hashbrown::HashMap;

/// Encoded bootstrap entries by the sender's key for the node (its graph
/// slot, with how the entry names it), each kept as bytes ready to be
/// appended to a packet.
///
/// A round of sending gives each neighbour a packet of what waits for it,
/// and the same node is usually owed to several of them: encoding it once
/// per round instead of once per neighbour saves reading the node's edges
/// and data, sorting the edges and hex-encoding the key again. Valid only
/// while the view does not change: [`EncodedEntries::clear`] between
/// rounds. The buffers are kept, so a round allocates nothing once they
/// have grown to a round's size.
#[derive(Debug, Default)]
pub struct EncodedEntries {
    bytes: Vec<u8>,
    /// Key to (start, length) in `bytes`; length 0: the node has no entry
    /// (an encoded entry is never empty).
    at: HashMap<u64, (usize, usize), FixedState>,
}

impl EncodedEntries {
    /// An empty set with room for `bytes` of entries, so that a round that
    /// encodes about that much never grows (and copies) its buffer.
    pub fn with_capacity(bytes: usize) -> Self {
        EncodedEntries {
            bytes: Vec::with_capacity(bytes),
            at: HashMap::default(),
        }
    }

    /// Forgets every entry, keeping the memory.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.at.clear();
    }

    /// The encoded entry for `key`, encoding it with `encode` (which
    /// appends it and returns false when the node has no entry) the first
    /// time it is asked for this round.
    pub fn get_or_encode(
        &mut self,
        key: u64,
        encode: impl FnOnce(&mut Vec<u8>) -> bool,
    ) -> Option<&[u8]> {
        let (start, len) = *self.at.entry(key).or_insert_with(|| {
            let start = self.bytes.len();
            if encode(&mut self.bytes) {
                (start, self.bytes.len() - start)
            } else {
                self.bytes.truncate(start);
                (start, 0)
            }
        });
        (len > 0).then(|| &self.bytes[start..start + len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_within_the_room_asked_for_never_grows_the_buffer() {
        let mut cache = EncodedEntries::with_capacity(1000);
        let room = cache.bytes.capacity();
        assert!(room >= 1000);
        for key in 0..10 {
            cache.get_or_encode(key, |out| {
                out.extend_from_slice(&[key as u8; 100]);
                true
            });
        }
        assert_eq!(cache.bytes.len(), 1000);
        assert_eq!(cache.bytes.capacity(), room);
    }

    #[test]
    fn each_key_is_encoded_once_per_round_and_again_after_a_clear() {
        let mut cache = EncodedEntries::default();
        let mut calls = 0;
        for _ in 0..3 {
            let got = cache.get_or_encode(7, |out| {
                calls += 1;
                out.extend_from_slice(b"seven");
                true
            });
            assert_eq!(got, Some(&b"seven"[..]));
        }
        assert_eq!(calls, 1);
        let none = cache.get_or_encode(8, |out| {
            out.extend_from_slice(b"partial");
            false
        });
        assert_eq!(none, None);
        // A node without an entry leaves no bytes behind.
        assert_eq!(
            cache.get_or_encode(9, |out| {
                out.push(9);
                true
            }),
            Some(&[9u8][..])
        );
        assert_eq!(
            cache.get_or_encode(7, |_| unreachable!()),
            Some(&b"seven"[..])
        );
        cache.clear();
        let again = cache.get_or_encode(7, |out| {
            out.extend_from_slice(b"changed");
            true
        });
        assert_eq!(again, Some(&b"changed"[..]));
    }
}
