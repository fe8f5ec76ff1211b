//! The hyper-flood packet: who originated a message, its number, its hop budget.

use bytes::Bytes;

use super::{DecodeError, Limits};
use crate::proto::PeerId;

/// One flood packet, the payload of every extension message (hyper-flood's
/// `Message`: originId = 1, messageNumber = 2, ttl = 3, data = 4, all required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloodPacket {
    /// The peer that first sent the message.
    pub origin: PeerId,
    /// Per-origin message counter.
    pub number: u32,
    /// Hops left; 0 means "do not relay" to a JavaScript peer.
    pub ttl: u32,
    /// The encoded presence [`Message`](super::Message), opaque at this layer.
    pub data: Bytes,
}

impl FloodPacket {
    /// Encodes the packet exactly as hyper-flood does (fields in number order).
    pub fn encode(&self) -> Bytes {
        todo!()
    }

    /// Length of [`FloodPacket::encode`]'s output, without encoding.
    pub fn encoded_len(&self) -> usize {
        todo!()
    }

    /// Decodes a packet; `data` is a zero-copy slice of `bytes`.
    pub fn decode(bytes: &Bytes, limits: &Limits) -> Result<Self, DecodeError> {
        let _ = (bytes, limits);
        todo!()
    }
}
