//! "Have" notices: a peer telling a neighbour which node it now holds, and
//! at which stamps, without the node's edges, data or signatures.
//!
//! During a join every node's entry reaches each peer from several
//! neighbours, because each of them queued it before hearing that the peer
//! already had it: the entry that would tell them waits behind the paced
//! backlog. A notice is a fifth of an entry and goes unpaced, so a
//! neighbour strikes the node off what it owes the peer long before it
//! would send it. Only peers that ask for notices ([`Message::HAVE`]) get
//! them; nothing else changes meaning, so a notice lost or ignored costs a
//! duplicate entry, never a missing one.
//!
//! Wire form: `Message` field 12, repeated bytes, one notice each: the
//! 32-byte id, then the edge list's stamp and the data's stamp as four
//! varints (incarnation, version, incarnation, version).
//!
//! [`Message::HAVE`]: super::Message::HAVE

use super::protobuf::{self as pb, Reader};
use super::{DecodeError, Stamp};
use crate::proto::PeerId;

/// One notice: the sender holds node `id` with both registers at least as
/// new as these stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Have {
    /// The node.
    pub id: PeerId,
    /// The stamp of the sender's copy of its edge list.
    pub edges: Stamp,
    /// The stamp of the sender's copy of its data.
    pub data: Stamp,
}

impl Have {
    /// Length of the notice's bytes (without tag or length prefix).
    pub fn body_len(&self) -> usize {
        PeerId::LEN
            + pb::varint_len(self.edges.incarnation)
            + pb::varint_len(self.edges.version)
            + pb::varint_len(self.data.incarnation)
            + pb::varint_len(self.data.version)
    }

    /// Bytes the notice adds to a message as field `number`.
    pub fn field_len(&self, number: u64) -> usize {
        pb::len_delimited_len(number, self.body_len())
    }

    /// Appends the notice as field `number`.
    pub fn encode_field(&self, out: &mut Vec<u8>, number: u64) {
        pb::put_tag(out, number, pb::LEN);
        pb::put_varint(out, self.body_len() as u64);
        out.extend_from_slice(self.id.as_bytes());
        for value in [
            self.edges.incarnation,
            self.edges.version,
            self.data.incarnation,
            self.data.version,
        ] {
            pb::put_varint(out, value);
        }
    }

    /// Reads a notice's bytes; anything but an id and exactly four varints
    /// is an error.
    pub fn decode(mut r: Reader<'_>) -> Result<Self, DecodeError> {
        let id = r.read_bytes(PeerId::LEN)?;
        let id = PeerId::from_slice(id).map_err(|_| DecodeError::BadId(id.len()))?;
        let mut stamp = || -> Result<Stamp, DecodeError> {
            Ok(Stamp {
                incarnation: r.read_varint()?,
                version: r.read_varint()?,
            })
        };
        let (edges, data) = (stamp()?, stamp()?);
        if !r.is_empty() {
            return Err(DecodeError::Trailing("have notice"));
        }
        Ok(Have { id, edges, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    const FIELD: u64 = 12;

    fn body(bytes: &[u8]) -> Result<Have, DecodeError> {
        let bytes = Bytes::copy_from_slice(bytes);
        Have::decode(Reader::new(&bytes))
    }

    /// The exact bytes of one notice, as PROTOCOL.md gives them.
    #[test]
    fn encodes_id_then_four_varints() {
        let have = Have {
            id: PeerId::from_bytes([7; 32]),
            edges: Stamp {
                incarnation: 300,
                version: 2,
            },
            data: Stamp {
                incarnation: 1,
                version: 0,
            },
        };
        let mut out = Vec::new();
        have.encode_field(&mut out, FIELD);
        let mut expected = vec![0x62, 37];
        expected.extend_from_slice(&[7; 32]);
        expected.extend_from_slice(&[0xac, 0x02, 0x02, 0x01, 0x00]);
        assert_eq!(out, expected);
        assert_eq!(out.len(), have.field_len(FIELD));
        assert_eq!(body(&out[2..]), Ok(have));
    }

    #[test]
    fn refuses_short_ids_missing_stamps_and_trailing_bytes() {
        assert!(body(&[1; 31]).is_err());
        let mut bytes = vec![1; 32];
        bytes.extend_from_slice(&[1, 2, 3]);
        assert!(body(&bytes).is_err(), "three varints");
        bytes.extend_from_slice(&[4, 5]);
        assert_eq!(body(&bytes), Err(DecodeError::Trailing("have notice")));
        bytes.pop();
        assert!(body(&bytes).is_ok());
        bytes.push(0x80);
        assert!(body(&bytes).is_err(), "an unfinished varint");
    }

    proptest! {
        #[test]
        fn round_trips(id in any::<[u8; 32]>(), stamps in any::<[u64; 4]>()) {
            let have = Have {
                id: PeerId::from_bytes(id),
                edges: Stamp { incarnation: stamps[0], version: stamps[1] },
                data: Stamp { incarnation: stamps[2], version: stamps[3] },
            };
            let mut out = Vec::new();
            have.encode_field(&mut out, FIELD);
            prop_assert_eq!(out.len(), have.field_len(FIELD));
            prop_assert_eq!(body(&out[2..]), Ok(have));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = body(&bytes);
        }
    }
}
