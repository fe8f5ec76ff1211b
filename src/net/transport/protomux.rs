//! protomux: many channels over one stream of messages, each channel opened
//! by protocol name and id, messages typed per channel, and batches. Runs
//! over any stream of authenticated plaintext messages (one message = one
//! frame here).
//!
//! SKELETON: to be implemented (docs/TRANSPORT.md section 4).

use bytes::Bytes;

use super::compact::DecodeError;

/// What the remote side did on the mux.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MuxEvent {
    /// The remote opened the channel that pairs with our channel `local`;
    /// `handshake` is the rest of its open message (the channel's own
    /// handshake).
    Opened {
        /// Our id for the channel.
        local: u64,
        /// The remote's channel handshake bytes.
        handshake: Bytes,
    },
    /// A message on our channel `local`.
    Message {
        /// Our id for the channel.
        local: u64,
        /// The message type (its index in the channel's message list).
        kind: u64,
        /// The message body.
        body: Bytes,
    },
    /// The remote closed channel `local`.
    Closed {
        /// Our id for the channel.
        local: u64,
    },
    /// The remote rejected our open of channel `local`.
    Rejected {
        /// Our id for the channel.
        local: u64,
    },
}

/// Why a frame was refused; the stream ends on any of these, as it does in
/// JavaScript.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    /// The frame does not decode.
    #[error("protomux: {0}")]
    Decode(#[from] DecodeError),
    /// The remote used a channel id that is taken or out of order.
    #[error("protomux: remote channel id {0} is not valid here")]
    BadChannelId(u64),
    /// Sending on a channel that is not open.
    #[error("protomux: channel {0} is not open")]
    NotOpen(u64),
    /// The remote holds more channels than we allow.
    #[error("protomux: too many channels")]
    TooManyChannels,
}

/// One side of a protomux session.
#[derive(Debug, Default)]
pub struct Mux {
    _todo: (),
}

impl Mux {
    /// A mux with no channel.
    pub fn new() -> Self {
        unimplemented!()
    }

    /// Opens a channel for `protocol` and `id`, sending `handshake` in the
    /// open; returns our id for it.
    pub fn open(&mut self, protocol: &str, id: Option<&[u8]>, handshake: &[u8]) -> u64 {
        let _ = (protocol, id, handshake);
        unimplemented!()
    }

    /// Sends a message of type `kind` on our channel `local`.
    pub fn send(&mut self, local: u64, kind: u64, body: &[u8]) -> Result<(), MuxError> {
        let _ = (local, kind, body);
        unimplemented!()
    }

    /// Closes our channel `local`.
    pub fn close(&mut self, local: u64) {
        let _ = local;
        unimplemented!()
    }

    /// From now until [`uncork`](Self::uncork), messages sent are gathered
    /// into one batch frame.
    pub fn cork(&mut self) {
        unimplemented!()
    }

    /// Ends a batch: what was gathered becomes one frame.
    pub fn uncork(&mut self) {
        unimplemented!()
    }

    /// Takes one frame from the remote.
    pub fn receive(&mut self, frame: Bytes) -> Result<(), MuxError> {
        let _ = frame;
        unimplemented!()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<MuxEvent> {
        unimplemented!()
    }

    /// The next frame to send, if any.
    pub fn poll_frame(&mut self) -> Option<Vec<u8>> {
        unimplemented!()
    }
}
