//! Noise XX as `@hyperswarm/secret-stream` runs it:
//! `Noise_XX_Ed25519_ChaChaPoly_BLAKE2b`, empty prologue, empty payloads,
//! and a Diffie-Hellman on Ed25519 points (`noise-curve-ed`), not X25519.
//!
//! snow runs the state machine; we plug our Diffie-Hellman into its resolver
//! and rename the protocol, since snow cannot parse "Ed25519" and the name
//! is what seeds the handshake hash (docs/TRANSPORT.md sections 2 and 9.2).

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::traits::IsIdentity;
use sha2::{Digest, Sha512};
use snow::params::{CipherChoice, DHChoice, HashChoice, NoiseParams};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

/// The protocol name JavaScript hashes into `h`.
const PROTOCOL_NAME: &str = "Noise_XX_Ed25519_ChaChaPoly_BLAKE2b";
/// The same pattern, cipher and hash in words snow can parse; only the DH
/// differs, and our resolver supplies that.
const SNOW_PATTERN: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2b";

/// Length of F1: `e`.
const F1_LEN: usize = 32;
/// Length of F2: `e`, encrypted `s` with its tag, the empty payload's tag.
const F2_LEN: usize = 32 + 48 + 16;
/// Length of F3: encrypted `s` with its tag, the empty payload's tag.
const F3_LEN: usize = 48 + 16;

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
    initiator: bool,
    /// snow's state until the handshake completes; dropped then, so the
    /// ephemeral secret does not outlive it.
    state: Option<snow::HandshakeState>,
    /// Messages written plus messages read so far (XX has three).
    step: u8,
    keys: Option<Keys>,
    /// The first failure; every later call returns it again.
    failed: Option<NoiseError>,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("initiator", &self.initiator)
            .field("step", &self.step)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// Starts a handshake whose static key pair is the Ed25519 key pair of
    /// `static_seed`, with a fresh random ephemeral.
    pub fn new(initiator: bool, static_seed: &[u8; 32]) -> Result<Self, NoiseError> {
        Self::build(initiator, static_seed, None)
    }

    /// Like [`new`](Self::new) with the ephemeral key pair fixed to the one
    /// of `ephemeral_seed`, to reproduce captured vectors.
    #[cfg(test)]
    pub(crate) fn with_ephemeral(
        initiator: bool,
        static_seed: &[u8; 32],
        ephemeral_seed: &[u8; 32],
    ) -> Result<Self, NoiseError> {
        Self::build(initiator, static_seed, Some(ephemeral_seed))
    }

    fn build(
        initiator: bool,
        static_seed: &[u8; 32],
        ephemeral_seed: Option<&[u8; 32]>,
    ) -> Result<Self, NoiseError> {
        let mut params: NoiseParams = SNOW_PATTERN.parse().map_err(snow_failure)?;
        // snow hashes `params.name` into `h` (HandshakeState::new calls
        // SymmetricState::initialize with it): JavaScript's name goes there.
        params.name = PROTOCOL_NAME.to_owned();
        let mut builder = snow::Builder::with_resolver(params, Box::new(EdResolver))
            .local_private_key(static_seed)
            .map_err(snow_failure)?;
        if let Some(seed) = ephemeral_seed {
            builder = builder.fixed_ephemeral_key_for_testing_only(seed);
        }
        let state = if initiator {
            builder.build_initiator()
        } else {
            builder.build_responder()
        }
        .map_err(snow_failure)?;
        Ok(Self {
            initiator,
            state: Some(state),
            step: 0,
            keys: None,
            failed: None,
        })
    }

    /// Takes the next message from the peer; returns the reply to send, if
    /// any.
    pub fn receive(&mut self, message: &[u8]) -> Result<Option<Vec<u8>>, NoiseError> {
        self.check_failed()?;
        let result = self.receive_inner(message);
        self.record(result)
    }

    /// The initiator's first message (`None` for a responder, or once sent).
    pub fn start(&mut self) -> Result<Option<Vec<u8>>, NoiseError> {
        self.check_failed()?;
        if !self.initiator || self.step != 0 {
            return Ok(None);
        }
        let result = self.write(F1_LEN).map(Some);
        self.record(result)
    }

    /// The keys, once the handshake is complete (after our last message was
    /// written or the peer's last one read).
    pub fn keys(&self) -> Option<&Keys> {
        self.keys.as_ref()
    }

    /// The length of the message we wait for from the peer, or `None` when it
    /// is not the peer's turn (before [`start`](Self::start), once done, or
    /// after a failure).
    pub fn expected_len(&self) -> Option<usize> {
        if self.failed.is_some() {
            return None;
        }
        match (self.initiator, self.step) {
            (false, 0) => Some(F1_LEN),
            (true, 1) => Some(F2_LEN),
            (false, 2) => Some(F3_LEN),
            _ => None,
        }
    }

    fn receive_inner(&mut self, message: &[u8]) -> Result<Option<Vec<u8>>, NoiseError> {
        let expected = self.expected_len().ok_or(NoiseError::OutOfTurn)?;
        if message.len() != expected {
            return Err(NoiseError::Length {
                got: message.len(),
                expected,
            });
        }
        let state = self.state.as_mut().ok_or(NoiseError::OutOfTurn)?;
        // The payloads are empty; JavaScript ignores received ones, and with
        // the exact lengths above none can be there anyway.
        let mut payload = [0u8; F2_LEN];
        state
            .read_message(message, &mut payload)
            .map_err(snow_failure)?;
        self.step += 1;
        let reply = match (self.initiator, self.step) {
            (false, 1) => Some(self.write(F2_LEN)?),
            (true, 2) => Some(self.write(F3_LEN)?),
            _ => None,
        };
        self.finish_if_done();
        Ok(reply)
    }

    /// Writes our next message, which has exactly `len` bytes.
    fn write(&mut self, len: usize) -> Result<Vec<u8>, NoiseError> {
        let state = self.state.as_mut().ok_or(NoiseError::OutOfTurn)?;
        // snow wants room for a payload tag even before there is a key.
        let mut message = vec![0u8; len + 16];
        let written = state
            .write_message(&[], &mut message)
            .map_err(snow_failure)?;
        message.truncate(written);
        if written != len {
            return Err(NoiseError::Failed(format!(
                "wrote a {written}-byte message where {len} were due"
            )));
        }
        self.step += 1;
        Ok(message)
    }

    fn finish_if_done(&mut self) {
        if !self
            .state
            .as_ref()
            .is_some_and(snow::HandshakeState::is_handshake_finished)
        {
            return;
        }
        let Some(mut state) = self.state.take() else {
            return;
        };
        let mut remote_static = [0u8; 32];
        if let Some(rs) = state.get_remote_static() {
            remote_static.copy_from_slice(rs);
        }
        let mut handshake_hash = [0u8; 64];
        handshake_hash.copy_from_slice(state.get_handshake_hash());
        // (T1, T2) of the final HKDF: the initiator sends with T1.
        let (t1, t2) = state.dangerously_get_raw_split();
        let (tx, rx) = if self.initiator { (t1, t2) } else { (t2, t1) };
        self.keys = Some(Keys {
            remote_static,
            handshake_hash,
            tx,
            rx,
        });
    }

    fn check_failed(&self) -> Result<(), NoiseError> {
        match &self.failed {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// Remembers a failure: snow's state may be half-updated after one.
    fn record<T>(&mut self, result: Result<T, NoiseError>) -> Result<T, NoiseError> {
        if let Err(error) = &result {
            self.failed = Some(error.clone());
            self.state = None;
        }
        result
    }
}

fn snow_failure(error: snow::Error) -> NoiseError {
    NoiseError::Failed(error.to_string())
}

/// Our Diffie-Hellman for the DH slot, snow's own primitives for the rest.
struct EdResolver;

impl CryptoResolver for EdResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        DefaultResolver.resolve_rng()
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::<EdDh>::default()),
            _ => None,
        }
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// An Ed25519 key pair used for Diffie-Hellman the way `noise-curve-ed`
/// does: the private key is the 32-byte seed, the public key the Ed25519
/// public key of that seed.
#[derive(Default)]
struct EdDh {
    seed: [u8; 32],
    /// Clamped first half of SHA-512(seed): the signing scalar.
    scalar: [u8; 32],
    public: [u8; 32],
}

impl EdDh {
    fn set_seed(&mut self, seed: [u8; 32]) {
        self.seed = seed;
        self.scalar = seed_scalar(&seed);
        self.public = EdwardsPoint::mul_base_clamped(self.scalar)
            .compress()
            .to_bytes();
    }
}

impl Drop for EdDh {
    fn drop(&mut self) {
        // Best effort: the ephemeral secret should not linger in freed memory.
        self.seed = [0; 32];
        self.scalar = [0; 32];
    }
}

impl Dh for EdDh {
    fn name(&self) -> &'static str {
        "Ed25519"
    }

    fn pub_len(&self) -> usize {
        32
    }

    fn priv_len(&self) -> usize {
        32
    }

    fn set(&mut self, privkey: &[u8]) {
        // snow hands back what we gave it: always a 32-byte seed.
        let mut seed = [0u8; 32];
        let n = privkey.len().min(32);
        seed[..n].copy_from_slice(&privkey[..n]);
        self.set_seed(seed);
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut seed = [0u8; 32];
        rng.try_fill_bytes(&mut seed)?;
        self.set_seed(seed);
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.public
    }

    fn privkey(&self) -> &[u8] {
        &self.seed
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        // snow passes its whole key buffer (MAXDHLEN bytes); ours is the start.
        let remote = pubkey.get(..32).ok_or(snow::Error::Dh)?;
        let shared = ed25519_dh(&self.scalar, remote).ok_or(snow::Error::Dh)?;
        out.get_mut(..32)
            .ok_or(snow::Error::Dh)?
            .copy_from_slice(&shared);
        Ok(())
    }
}

/// The Ed25519 signing scalar of a seed: `SHA-512(seed)[0..32]`, clamped.
fn seed_scalar(seed: &[u8; 32]) -> [u8; 32] {
    let digest = Sha512::digest(seed);
    let mut scalar = [0u8; 32];
    scalar.copy_from_slice(&digest[..32]);
    scalar[0] &= 248;
    scalar[31] &= 127;
    scalar[31] |= 64;
    scalar
}

/// libsodium's `crypto_scalarmult_ed25519_noclamp` for a clamped scalar:
/// `None` for a point that is not canonical, not on the curve, of small
/// order or outside the prime-order subgroup, and for an identity result.
fn ed25519_dh(scalar: &[u8; 32], remote: &[u8]) -> Option<[u8; 32]> {
    let compressed = CompressedEdwardsY::from_slice(remote).ok()?;
    let point = compressed.decompress()?;
    // decompress reduces y modulo p and tolerates a sign bit on x = 0:
    // only an encoding that round-trips is canonical.
    if point.compress() != compressed || point.is_small_order() || !point.is_torsion_free() {
        return None;
    }
    // The scalar is already clamped, so clamping again changes nothing, and
    // like libsodium it is used as is, not reduced modulo the group order.
    let shared = point.mul_clamped(*scalar);
    if shared.is_identity() {
        return None;
    }
    Some(shared.compress().to_bytes())
}

#[cfg(test)]
mod tests;
