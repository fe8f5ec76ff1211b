//! What drivers and applications exchange with the engine: its inputs,
//! its outputs (packets and where they go, events), why setting our data
//! can fail, and its counters. Apart from the engine's state so that the
//! engine's contract reads on one page.

use bytes::Bytes;

use super::PeerId;
use crate::proto::data::DataError;
use crate::proto::wire::DecodeError;

/// Where a packet goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// To this directly connected peer only.
    Peer(PeerId),
    /// To every directly connected peer, but `except` (the peer a relayed
    /// packet came from: sending it back would be wasted).
    Broadcast {
        /// The one direct peer to leave out, if any.
        except: Option<PeerId>,
    },
}

/// What the engine asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output<V> {
    /// Send an encoded flood packet as an extension message.
    Send {
        /// To whom.
        to: Destination,
        /// The encoded [`FloodPacket`].
        ///
        /// [`FloodPacket`]: crate::proto::wire::FloodPacket
        packet: Bytes,
    },
    /// Tell the application something happened.
    Event(Event<V>),
}

/// What the application hears about the network (the original's events).
#[derive(Debug, Clone, PartialEq)]
pub enum Event<V> {
    /// We merged a first view of the network from a neighbour (once).
    Bootstrapped,
    /// Who is online changed; the list holds every online peer, us
    /// included, sorted.
    Online(Vec<PeerId>),
    /// A peer advertised new data.
    PeerData {
        /// Whose data.
        id: PeerId,
        /// The decoded value.
        data: V,
    },
    /// We connected to a peer directly (a reconnection within the
    /// disconnect grace is not reported).
    PeerAdd(PeerId),
    /// We lost our last connection to a peer and the grace period passed.
    PeerRemove(PeerId),
    /// We learned that `from` connected to `to`.
    PeerAddSeen {
        /// The peer that connected.
        from: PeerId,
        /// The peer it connected to.
        to: PeerId,
    },
    /// We learned that `from` disconnected from `to`.
    PeerRemoveSeen {
        /// The peer that disconnected.
        from: PeerId,
        /// The peer it disconnected from.
        to: PeerId,
    },
    /// A direct peer sent bytes that are not a valid packet; they were
    /// dropped and nothing else happened. Drivers may log it, or cut a peer
    /// that does it often.
    Malformed {
        /// The direct peer the bytes came from.
        from: PeerId,
        /// What was wrong.
        error: DecodeError,
    },
    /// A direct peer sent news that [`Config::max_known_peers`](crate::proto::Config::max_known_peers) or
    /// [`Config::max_view_bytes`](crate::proto::Config::max_view_bytes) leaves no room for, even after forgetting
    /// every unreachable node and evicting what peers over their share
    /// brought: the message was dropped.
    ViewFull {
        /// The direct peer the message came from.
        from: PeerId,
        /// How many nodes the message would have added.
        new_nodes: usize,
    },
    /// A register (an edge list or data) came with a signature that is not
    /// its origin's: it was dropped and not passed on. `from` sent it, or
    /// relayed it from someone who did; a peer that does this often forges.
    BadSignature {
        /// The direct peer the register came from.
        from: PeerId,
        /// Whose register it claimed to be.
        origin: PeerId,
    },
    /// A peer advertised data our codec cannot decode; we treat that peer as
    /// having no data until it advertises something valid.
    BadPeerData {
        /// Whose data.
        id: PeerId,
        /// The codec's complaint.
        error: DataError,
    },
}

/// One input to the engine, for drivers that prefer a single door
/// ([`Presence::handle`](crate::proto::Presence::handle)) to the individual methods.
#[derive(Debug, Clone, PartialEq)]
pub enum Input<V> {
    /// A connection to a peer opened.
    Connected(PeerId),
    /// A connection to a peer closed.
    Disconnected(PeerId),
    /// A connection to a peer closed after it said goodbye.
    Left(PeerId),
    /// A direct peer sent us a packet.
    Received {
        /// The direct peer.
        from: PeerId,
        /// The extension message's payload.
        packet: Bytes,
    },
    /// The application changes the data we advertise.
    SetData(V),
    /// Time passed; timers due by now fire.
    Tick,
}

/// Why our own data cannot be advertised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetDataError {
    /// The codec could not encode the value.
    #[error("cannot encode peer data: {0}")]
    Encode(#[from] DataError),
    /// [`Config::signer`](crate::proto::Config::signer) holds the key of another id than [`Config::id`](crate::proto::Config::id).
    #[error("the signing key is not the key of our id")]
    ForeignKey,
    /// The encoded value is larger than peers accept.
    #[error("peer data is {len} bytes, over the limit of {limit}")]
    TooLarge {
        /// Encoded size.
        len: usize,
        /// [`Limits::max_data_bytes`](crate::proto::wire::Limits::max_data_bytes).
        limit: usize,
    },
}

/// What an engine has done so far, as plain counters: cheap to keep, and
/// what a driver sums to compare one version of the engine with the next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Nodes newly known: each node that entered the view (again, if it
    /// had been forgotten), ourselves aside.
    pub learned: u64,
    /// Entries about a node decoded from packets, news or not: one per
    /// entry of a view, one per flood message about its origin.
    pub entries_received: u64,
    /// Of [`EngineStats::entries_received`], those that changed our view
    /// (a register newer than ours): divided by `learned`, how many
    /// versions of each node reached us, the floor of entries received
    /// per learning.
    pub entries_news: u64,
    /// [`Have`](crate::proto::wire::Have) notices decoded from packets: a node's
    /// id and stamps, without its edges, data or signatures.
    pub notices_received: u64,
}
