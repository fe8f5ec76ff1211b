//! `@hyperswarm/secret-stream` over a byte stream: uint24-LE frames, the
//! Noise handshake, the stream-id/header exchange, then libsodium
//! secretstream (XChaCha20-Poly1305) frames, one plaintext each. An empty
//! plaintext is a keep-alive.
//!
//! SKELETON: to be implemented (docs/TRANSPORT.md sections 1-3, vectors 8.3).

use super::noise::NoiseError;

/// Largest frame we accept from a peer by default. JavaScript allows any
/// uint24 length (16 MiB); our peers never send more than about 1 MiB.
pub const DEFAULT_MAX_FRAME: usize = 2 << 20;

/// What the stream hands up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The handshake is done and the peer's header checked: the peer is the
    /// holder of `remote_key`.
    Established {
        /// The peer's static key (its identity).
        remote_key: [u8; 32],
        /// The handshake hash, for capabilities of channels above.
        handshake_hash: [u8; 64],
    },
    /// One non-empty plaintext message.
    Message(bytes::Bytes),
    /// An empty plaintext: the peer is alive and idle.
    KeepAlive,
}

/// Why a stream ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The handshake failed.
    #[error(transparent)]
    Noise(#[from] NoiseError),
    /// A frame announced more than the limit.
    #[error("frame of {0} bytes is over the limit")]
    FrameTooLarge(usize),
    /// The first frame after the handshake is not the peer's header.
    #[error("bad stream header")]
    BadHeader,
    /// A frame failed to decrypt or is too short to be one.
    #[error("frame does not decrypt")]
    Decrypt,
    /// Sending before the handshake is done.
    #[error("stream not established")]
    NotEstablished,
}

/// One end of a secret stream.
pub struct SecretStream {
    _todo: (),
}

impl std::fmt::Debug for SecretStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStream").finish_non_exhaustive()
    }
}

impl SecretStream {
    /// Starts a stream with the Ed25519 key pair of `static_seed` as our
    /// static key. An initiator's first handshake message is ready to
    /// [`transmit`](Self::transmit) at once.
    pub fn new(
        initiator: bool,
        static_seed: &[u8; 32],
        max_frame: usize,
    ) -> Result<Self, StreamError> {
        let _ = (initiator, static_seed, max_frame);
        unimplemented!()
    }

    /// Feeds bytes read from the socket, in chunks of any size.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        let _ = bytes;
        unimplemented!()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<StreamEvent> {
        unimplemented!()
    }

    /// Encrypts one message (empty is a keep-alive) for sending.
    pub fn send(&mut self, plaintext: &[u8]) -> Result<(), StreamError> {
        let _ = plaintext;
        unimplemented!()
    }

    /// Everything to write to the socket so far, if anything.
    pub fn transmit(&mut self) -> Option<Vec<u8>> {
        unimplemented!()
    }

    /// Bytes waiting in [`transmit`](Self::transmit).
    pub fn pending(&self) -> usize {
        unimplemented!()
    }

    /// Bytes received but not yet making a whole frame.
    pub fn buffered(&self) -> usize {
        unimplemented!()
    }

    /// Whether [`StreamEvent::Established`] has been reported.
    pub fn is_established(&self) -> bool {
        unimplemented!()
    }
}
