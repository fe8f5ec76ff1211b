//! The `hypercore/alpha` channel, as much of it as presence needs: the open
//! (discovery key as id, the capability that proves knowledge of the core
//! key) and the extension message (type 9), with hypercore 10/11's name
//! rule. Sync, requests, data and the rest of replication are never sent,
//! and are ignored when received.
//!
//! SKELETON: to be implemented (docs/TRANSPORT.md sections 5-6, vectors 8.4).

use bytes::Bytes;

use super::compact::DecodeError;
use super::protomux::{Mux, MuxError, MuxEvent};

/// The protocol name of the channel.
pub const PROTOCOL: &str = "hypercore/alpha";

/// The capability a side sends in its open: proof that it knows `core_key`,
/// bound to this connection's handshake and to the sender's role.
pub fn capability(handshake_hash: &[u8; 64], initiator: bool, core_key: &[u8; 32]) -> [u8; 32] {
    let _ = (handshake_hash, initiator, core_key);
    unimplemented!()
}

/// What the channel hands up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// The remote opened the channel and its capability checked out.
    Opened,
    /// An extension message (name already resolved from the cache).
    Extension {
        /// The extension's name.
        name: String,
        /// The raw payload.
        payload: Bytes,
    },
    /// The remote closed the channel.
    Closed,
}

/// Why the channel ended the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The remote's capability does not match: it does not know the key.
    #[error("the remote's capability is wrong (it does not know the core key)")]
    BadCapability,
    /// The remote rejected our channel (another key, or no such core).
    #[error("the remote rejected the channel")]
    Rejected,
    /// A message of ours that does not decode.
    #[error("channel message: {0}")]
    Decode(#[from] DecodeError),
    /// From the mux.
    #[error(transparent)]
    Mux(#[from] MuxError),
}

/// Our end of one `hypercore/alpha` channel.
#[derive(Debug)]
pub struct CoreChannel {
    _todo: (),
}

impl CoreChannel {
    /// Opens the channel for `core_key` on `mux`.
    pub fn open(
        mux: &mut Mux,
        core_key: &[u8; 32],
        handshake_hash: &[u8; 64],
        initiator: bool,
    ) -> Self {
        let _ = (mux, core_key, handshake_hash, initiator);
        unimplemented!()
    }

    /// Takes a mux event; events for other channels are `Ok(None)`.
    pub fn handle(&mut self, event: MuxEvent) -> Result<Option<ChannelEvent>, ChannelError> {
        let _ = event;
        unimplemented!()
    }

    /// Sends an extension message.
    pub fn send_extension(
        &mut self,
        mux: &mut Mux,
        name: &str,
        payload: &[u8],
    ) -> Result<(), ChannelError> {
        let _ = (mux, name, payload);
        unimplemented!()
    }

    /// Closes the channel.
    pub fn close(&mut self, mux: &mut Mux) {
        let _ = mux;
        unimplemented!()
    }

    /// Whether the remote's open has arrived and checked out.
    pub fn is_open(&self) -> bool {
        unimplemented!()
    }
}
