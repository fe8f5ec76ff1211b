//! Finding peers without being given their addresses: on the HyperDHT
//! ([`dht`], which dials and accepts streams of its own) and on the local
//! network by mDNS ([`mdns`]). What mDNS finds is handed to the node as a
//! [`Found`] and dialled there, under the node's one-link-per-peer rule.

#[cfg(feature = "dht")]
pub mod dht;
pub mod mdns;

use std::net::SocketAddr;

use crate::proto::PeerId;

/// A peer a discovery mechanism found: who it says it is and where it
/// listens. Nothing here is trusted: the handshake proves the id, and a
/// record that lies about it only costs a dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The id the record claims.
    pub id: PeerId,
    /// Where to dial it, best first.
    pub addrs: Vec<SocketAddr>,
}

/// What a discovery mechanism tells the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// A peer was found, or its addresses changed.
    Found(Found),
    /// A peer's record went away: stop dialling it (a link that is up stays).
    Lost(PeerId),
}
