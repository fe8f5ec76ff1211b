//! Noise XX as `@hyperswarm/secret-stream` runs it:
//! `Noise_XX_Ed25519_ChaChaPoly_BLAKE2b`, empty prologue, empty payloads,
//! and a Diffie-Hellman on Ed25519 points (`noise-curve-ed`), not X25519.
//!
//! SKELETON: to be implemented (see docs/TRANSPORT.md section 2 and the
//! vectors in 8.2).

/// What a finished handshake leaves behind.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    /// The peer's static key: an Ed25519 public key, its identity.
    pub remote_static: [u8; 32],
    /// The final handshake hash (64 bytes, the same on both sides).
    pub handshake_hash: [u8; 64],
    /// Our sending key.
    pub tx: [u8; 32],
    /// Our receiving key.
    pub rx: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secrets.
        f.debug_struct("Keys")
            .field("remote_static", &hex::encode(self.remote_static))
            .finish_non_exhaustive()
    }
}

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoiseError {
    /// A handshake message of the wrong length for its place.
    #[error("noise handshake message of {got} bytes, expected {expected}")]
    Length {
        /// Received length.
        got: usize,
        /// Expected length.
        expected: usize,
    },
    /// Decryption, a bad point or a degenerate Diffie-Hellman result.
    #[error("noise handshake failed: {0}")]
    Failed(String),
    /// A message arrived when none was expected.
    #[error("noise handshake message out of turn")]
    OutOfTurn,
}

/// One side of a Noise XX handshake, fed with whole handshake messages (the
/// frame bodies, without the uint24 length).
pub struct Handshake {
    _todo: (),
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake").finish_non_exhaustive()
    }
}

impl Handshake {
    /// Starts a handshake whose static key pair is the Ed25519 key pair of
    /// `static_seed`, with a fresh random ephemeral.
    pub fn new(initiator: bool, static_seed: &[u8; 32]) -> Result<Self, NoiseError> {
        let _ = (initiator, static_seed);
        unimplemented!()
    }

    /// Takes the next message from the peer; returns the reply to send, if
    /// any.
    pub fn receive(&mut self, message: &[u8]) -> Result<Option<Vec<u8>>, NoiseError> {
        let _ = message;
        unimplemented!()
    }

    /// The initiator's first message (`None` for a responder, or once sent).
    pub fn start(&mut self) -> Result<Option<Vec<u8>>, NoiseError> {
        unimplemented!()
    }

    /// The keys, once the handshake is complete (after our last message was
    /// written or the peer's last one read).
    pub fn keys(&self) -> Option<&Keys> {
        unimplemented!()
    }
}
