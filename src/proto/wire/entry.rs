//! One node of a view on the wire: the State entry of a bootstrap response,
//! the stamps that say how new each part is, and the field readers the
//! presence message shares with it.

use bytes::Bytes;
use smallvec::SmallVec;

use super::message::field;
use super::protobuf::{self as pb, Reader, LEN, VARINT};
use super::{DecodeError, Limits};
use crate::proto::PeerId;

/// The position of a piece of an origin's state in that origin's history:
/// compared lexicographically, a larger stamp is newer. `incarnation` grows
/// across restarts, `version` with every change within one life.
///
/// Wire form (our extension): an embedded message, incarnation = 1,
/// version = 2, both varints, both always written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Stamp {
    /// Which life of the origin (grows on every restart).
    pub incarnation: u64,
    /// Which change within that life.
    pub version: u64,
}

/// An Ed25519 signature by an origin of one of its registers (see
/// `crate::proto::sign` for what exactly is signed).
pub type Signature = [u8; 64];

/// An entry's edge list. Most peers keep about four links, so a list
/// decoded from the wire fits inline: no heap block per entry of a view
/// (two of them, taken and freed, per node learnt in a join).
pub type EdgeIds = SmallVec<[PeerId; 4]>;

/// One node of a bootstrap response (the original's `State`): a peer's
/// outgoing edges and data, plus our stamps saying how new each part is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateEntry {
    /// Field 0 (repeated bytes): peers this node is connected to.
    pub connected_to: EdgeIds,
    /// Field 1 (bytes): this node's encoded data, if known.
    pub data: Option<Bytes>,
    /// Field 8 (extension, embedded [`Stamp`]): how new `connected_to` is.
    /// Absent when the sender is a JavaScript peer.
    pub edges_stamp: Option<Stamp>,
    /// Field 9 (extension, embedded [`Stamp`]): how new `data` is.
    pub data_stamp: Option<Stamp>,
    /// Field 10 (extension, 64 bytes): the node's own signature of
    /// `connected_to` under `edges_stamp`. Absent from JavaScript origins,
    /// and from entries a JavaScript peer re-encoded.
    pub edges_signature: Option<Signature>,
    /// Field 11 (extension, 64 bytes): the node's own signature of `data`
    /// under `data_stamp`.
    pub data_signature: Option<Signature>,
}

/// A [`StateEntry`] whose parts are borrowed from wherever they are kept:
/// a sender encodes it straight from its view, without first copying the
/// edge list and the data into an owned entry. Encodes exactly as the
/// owned entry with the same contents.
#[derive(Debug, Clone, Copy, Default)]
pub struct StateEntryRef<'a> {
    /// As [`StateEntry::connected_to`].
    pub connected_to: &'a [PeerId],
    /// As [`StateEntry::data`].
    pub data: Option<&'a [u8]>,
    /// As [`StateEntry::edges_stamp`].
    pub edges_stamp: Option<Stamp>,
    /// As [`StateEntry::data_stamp`].
    pub data_stamp: Option<Stamp>,
    /// As [`StateEntry::edges_signature`].
    pub edges_signature: Option<Signature>,
    /// As [`StateEntry::data_signature`].
    pub data_signature: Option<Signature>,
}

impl Stamp {
    pub(super) fn encoded_len(&self) -> usize {
        pb::varint_field_len(field::STAMP_INCARNATION, self.incarnation)
            + pb::varint_field_len(field::STAMP_VERSION, self.version)
    }

    pub(super) fn encode_field(&self, out: &mut Vec<u8>, number: u64) {
        pb::put_tag(out, number, LEN);
        pb::put_varint(out, self.encoded_len() as u64);
        pb::put_varint_field(out, field::STAMP_INCARNATION, self.incarnation);
        pb::put_varint_field(out, field::STAMP_VERSION, self.version);
    }

    #[inline]
    pub(super) fn decode(mut r: Reader<'_>) -> Result<Self, DecodeError> {
        let mut stamp = Stamp::default();
        while !r.is_empty() {
            let (number, wire_type) = r.read_tag()?;
            match number {
                field::STAMP_INCARNATION => {
                    pb::expect_wire_type(number, wire_type, VARINT)?;
                    stamp.incarnation = r.read_varint()?;
                }
                field::STAMP_VERSION => {
                    pb::expect_wire_type(number, wire_type, VARINT)?;
                    stamp.version = r.read_varint()?;
                }
                _ => r.skip(wire_type)?,
            }
        }
        Ok(stamp)
    }
}

impl StateEntryRef<'_> {
    /// Length of the encoded State message (without tag or length prefix).
    pub(super) fn encoded_len(&self) -> usize {
        self.connected_to.len() * pb::len_delimited_len(field::STATE_CONNECTED_TO, PeerId::LEN)
            + self
                .data
                .map_or(0, |d| pb::len_delimited_len(field::STATE_DATA, d.len()))
            + self.edges_stamp.map_or(0, |s| {
                pb::len_delimited_len(field::STATE_EDGES_STAMP, s.encoded_len())
            })
            + self.data_stamp.map_or(0, |s| {
                pb::len_delimited_len(field::STATE_DATA_STAMP, s.encoded_len())
            })
            + signature_len(field::STATE_EDGES_SIGNATURE, &self.edges_signature)
            + signature_len(field::STATE_DATA_SIGNATURE, &self.data_signature)
    }

    pub(super) fn encode_to(&self, out: &mut Vec<u8>) {
        for id in self.connected_to {
            pb::put_len_delimited(out, field::STATE_CONNECTED_TO, id.as_bytes());
        }
        if let Some(data) = self.data {
            pb::put_len_delimited(out, field::STATE_DATA, data);
        }
        if let Some(stamp) = &self.edges_stamp {
            stamp.encode_field(out, field::STATE_EDGES_STAMP);
        }
        if let Some(stamp) = &self.data_stamp {
            stamp.encode_field(out, field::STATE_DATA_STAMP);
        }
        if let Some(signature) = &self.edges_signature {
            pb::put_len_delimited(out, field::STATE_EDGES_SIGNATURE, signature);
        }
        if let Some(signature) = &self.data_signature {
            pb::put_len_delimited(out, field::STATE_DATA_SIGNATURE, signature);
        }
    }
}

impl StateEntry {
    /// The entry as borrowed parts, for
    /// [`Message::encode_bootstrap_entry`](super::Message::encode_bootstrap_entry).
    pub fn as_ref(&self) -> StateEntryRef<'_> {
        StateEntryRef {
            connected_to: &self.connected_to,
            data: self.data.as_deref(),
            edges_stamp: self.edges_stamp,
            data_stamp: self.data_stamp,
            edges_signature: self.edges_signature,
            data_signature: self.data_signature,
        }
    }

    #[cfg(test)]
    pub(super) fn decode(r: Reader<'_>, limits: &Limits) -> Result<Self, DecodeError> {
        let mut entry = StateEntry::default();
        entry.decode_into(r, limits)?;
        Ok(entry)
    }

    /// Decodes into `self` (a default entry), in place.
    pub(super) fn decode_into(
        &mut self,
        mut r: Reader<'_>,
        limits: &Limits,
    ) -> Result<(), DecodeError> {
        let entry = self;
        loop {
            // An edge list as every encoder lays it out, one field per id
            // (tag, length 32, id), four or so to an entry: read without
            // the general loop below, which takes anything else.
            let tag = (field::STATE_CONNECTED_TO << 3) as u8 | LEN;
            while let Some(raw) = r.read_fixed_field(tag, PeerId::LEN as u8) {
                let id = PeerId::from_slice(raw).expect("a 32-byte field");
                room_for_id(entry.connected_to.len(), limits)?;
                entry.connected_to.push(id);
            }
            if r.is_empty() {
                break;
            }
            let (number, wire_type) = r.read_tag()?;
            match number {
                field::STATE_CONNECTED_TO => {
                    pb::expect_wire_type(number, wire_type, LEN)?;
                    let id = read_id(&mut r)?;
                    room_for_id(entry.connected_to.len(), limits)?;
                    entry.connected_to.push(id);
                }
                field::STATE_DATA => {
                    pb::expect_wire_type(number, wire_type, LEN)?;
                    entry.data = Some(read_data(&mut r, limits)?);
                }
                field::STATE_EDGES_STAMP => {
                    pb::expect_wire_type(number, wire_type, LEN)?;
                    entry.edges_stamp = Some(Stamp::decode(r.read_nested()?)?);
                }
                field::STATE_DATA_STAMP => {
                    pb::expect_wire_type(number, wire_type, LEN)?;
                    entry.data_stamp = Some(Stamp::decode(r.read_nested()?)?);
                }
                field::STATE_EDGES_SIGNATURE => {
                    pb::expect_wire_type(number, wire_type, LEN)?;
                    entry.edges_signature = Some(read_signature(&mut r)?);
                }
                field::STATE_DATA_SIGNATURE => {
                    pb::expect_wire_type(number, wire_type, LEN)?;
                    entry.data_signature = Some(read_signature(&mut r)?);
                }
                _ => r.skip(wire_type)?,
            }
        }
        Ok(())
    }
}

/// Bytes an optional signature field adds to a message.
pub(super) fn signature_len(number: u64, signature: &Option<Signature>) -> usize {
    signature.map_or(0, |s| pb::len_delimited_len(number, s.len()))
}

#[inline]
pub(super) fn read_signature(r: &mut Reader<'_>) -> Result<Signature, DecodeError> {
    let raw = r.read_slice()?;
    Signature::try_from(raw).map_err(|_| DecodeError::BadSignature(raw.len()))
}

#[inline]
pub(super) fn read_id(r: &mut Reader<'_>) -> Result<PeerId, DecodeError> {
    let raw = r.read_slice()?;
    PeerId::from_slice(raw).map_err(|_| DecodeError::BadId(raw.len()))
}

#[inline]
pub(super) fn read_data(r: &mut Reader<'_>, limits: &Limits) -> Result<Bytes, DecodeError> {
    let data = r.read_len_delimited()?;
    if data.len() > limits.max_data_bytes {
        return Err(DecodeError::TooLarge {
            what: "data",
            limit: limits.max_data_bytes,
        });
    }
    Ok(data)
}

/// Refuses an id past `limits.max_ids_per_entry` in a list of `len`.
#[inline]
pub(super) fn room_for_id(len: usize, limits: &Limits) -> Result<(), DecodeError> {
    if len >= limits.max_ids_per_entry {
        return Err(DecodeError::TooLarge {
            what: "ids per entry",
            limit: limits.max_ids_per_entry,
        });
    }
    Ok(())
}
