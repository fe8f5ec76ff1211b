//! The presence message and the State entry of a bootstrap response.

use bytes::Bytes;

use super::{DecodeError, Limits};
use crate::proto::PeerId;

/// What a presence message says (the original's `type` enum, field 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// 1: "send me your whole view".
    BootstrapRequest,
    /// 2: a whole view, or part of one.
    BootstrapResponse,
    /// 3: the origin connected to `id`.
    Connected,
    /// 4: the origin disconnected from `id`.
    Disconnected,
    /// 5: the origin's data is `data`.
    State,
    /// Any other number: relayed by the flood layer, otherwise ignored.
    Other(u64),
}

impl Kind {
    /// The wire number of this kind.
    pub fn to_u64(self) -> u64 {
        match self {
            Kind::BootstrapRequest => 1,
            Kind::BootstrapResponse => 2,
            Kind::Connected => 3,
            Kind::Disconnected => 4,
            Kind::State => 5,
            Kind::Other(n) => n,
        }
    }

    /// The kind a wire number stands for.
    pub fn from_u64(n: u64) -> Self {
        match n {
            1 => Kind::BootstrapRequest,
            2 => Kind::BootstrapResponse,
            3 => Kind::Connected,
            4 => Kind::Disconnected,
            5 => Kind::State,
            n => Kind::Other(n),
        }
    }
}

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

/// One node of a bootstrap response (the original's `State`): a peer's
/// outgoing edges and data, plus our stamps saying how new each part is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateEntry {
    /// Field 0 (repeated bytes): peers this node is connected to.
    pub connected_to: Vec<PeerId>,
    /// Field 1 (bytes): this node's encoded data, if known.
    pub data: Option<Bytes>,
    /// Field 8 (extension, embedded [`Stamp`]): how new `connected_to` is.
    /// Absent when the sender is a JavaScript peer.
    pub edges_stamp: Option<Stamp>,
    /// Field 9 (extension, embedded [`Stamp`]): how new `data` is.
    pub data_stamp: Option<Stamp>,
}

/// A presence message (the original's `Message`), with our extension fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Field 0 (varint enum): what the message says.
    pub kind: Kind,
    /// Field 1 (map<string, State>, key = lowercase hex id): BOOTSTRAP_RESPONSE
    /// entries, in wire order.
    pub bootstrap: Vec<(PeerId, StateEntry)>,
    /// Field 2 (bytes): STATE's encoded data.
    pub data: Option<Bytes>,
    /// Field 3 (bytes): CONNECTED/DISCONNECTED's peer.
    pub id: Option<PeerId>,
    /// Field 8 (extension, embedded [`Stamp`]): how new the origin's state in
    /// this message is (its edge list for CONNECTED/DISCONNECTED, its data for
    /// STATE). Absent from JavaScript peers' messages.
    pub stamp: Option<Stamp>,
    /// Field 9 (extension, repeated bytes): with a stamp on CONNECTED or
    /// DISCONNECTED, the origin's *whole* outgoing edge list after the change,
    /// so that the message replaces rather than patches what a receiver knows.
    pub edges: Vec<PeerId>,
}

impl Message {
    /// A message of `kind` with every other field empty.
    pub fn new(kind: Kind) -> Self {
        Message {
            kind,
            bootstrap: Vec::new(),
            data: None,
            id: None,
            stamp: None,
            edges: Vec::new(),
        }
    }

    /// Encodes the message; without extension fields the bytes equal the
    /// JavaScript encoder's (fields in number order, map entries in order).
    pub fn encode(&self) -> Bytes {
        todo!()
    }

    /// Length of [`Message::encode`]'s output, without encoding.
    pub fn encoded_len(&self) -> usize {
        todo!()
    }

    /// How many bytes one bootstrap entry adds to an encoded message
    /// (tag, length prefix, key and value): what a sender splitting a large
    /// response into packets needs to know.
    pub fn bootstrap_entry_len(id: &PeerId, entry: &StateEntry) -> usize {
        let _ = (id, entry);
        todo!()
    }

    /// Decodes a message; `data` fields are zero-copy slices of `bytes`.
    pub fn decode(bytes: &Bytes, limits: &Limits) -> Result<Self, DecodeError> {
        let _ = (bytes, limits);
        todo!()
    }
}
