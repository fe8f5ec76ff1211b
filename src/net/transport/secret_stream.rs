//! `@hyperswarm/secret-stream` over a byte stream: uint24-LE frames, the
//! Noise handshake, the stream-id/header exchange, then libsodium
//! secretstream (XChaCha20-Poly1305) frames, one plaintext each. An empty
//! plaintext is a keep-alive.
//!
//! The wire layout is in docs/TRANSPORT.md sections 1-3; the vectors of 8.3
//! pin it in the tests.

use std::collections::VecDeque;

use crypto_secretstream::{Header, Key, PullStream, PushStream, Tag};
use rand_core::{CryptoRng, OsRng, RngCore};

use super::hash::{b256_keyed, namespace};
use super::noise::{Handshake, Keys, NoiseError};

/// Bytes of the uint24 length in front of every frame.
const PREFIX_LEN: usize = 3;
/// The largest length a uint24 prefix can say.
const MAX_U24: usize = (1 << 24) - 1;
/// The header frame: stream id (32) and secretstream header (24).
const HEADER_FRAME_LEN: usize = 32 + Header::BYTES;
/// What secretstream adds to each plaintext: encrypted tag and MAC.
const ABYTES: usize = 17;

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

/// Where a stream is in its life.
enum Phase {
    /// Noise messages are flowing.
    Handshake(Box<Handshake>),
    /// Our handshake is done and our header sent; the peer's header is the
    /// next frame.
    AwaitHeader { keys: Box<Keys>, push: PushStream },
    /// Both headers exchanged: encrypted frames both ways.
    Open { push: PushStream, pull: PullStream },
    /// Ended by this error; every later call reports it again.
    Failed(StreamError),
}

/// One end of a secret stream.
pub struct SecretStream {
    initiator: bool,
    max_frame: usize,
    phase: Phase,
    /// The uint24 prefix read so far, when `frame_len` is `None`.
    prefix: [u8; PREFIX_LEN],
    prefix_len: usize,
    /// The length of the frame being read, once its prefix is complete.
    frame_len: Option<usize>,
    /// The part of that frame received so far; grows only with what arrives.
    frame: Vec<u8>,
    events: VecDeque<StreamEvent>,
    out: Vec<u8>,
    established: bool,
    /// Header randomness to use in place of the system's, for vectors.
    fixed_header: Option<[u8; Header::BYTES]>,
}

impl std::fmt::Debug for SecretStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStream")
            .field("initiator", &self.initiator)
            .field("established", &self.established)
            .field("buffered", &self.buffered())
            .field("pending", &self.pending())
            .finish_non_exhaustive()
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
        let noise = Handshake::new(initiator, static_seed)?;
        Self::with_handshake(initiator, noise, max_frame, None)
    }

    /// Like [`new`](Self::new) with the ephemeral key and the secretstream
    /// header fixed, to reproduce captured vectors.
    #[cfg(test)]
    pub(crate) fn with_fixed_randomness(
        initiator: bool,
        static_seed: &[u8; 32],
        ephemeral_seed: &[u8; 32],
        header: [u8; Header::BYTES],
        max_frame: usize,
    ) -> Result<Self, StreamError> {
        let noise = Handshake::with_ephemeral(initiator, static_seed, ephemeral_seed)?;
        Self::with_handshake(initiator, noise, max_frame, Some(header))
    }

    fn with_handshake(
        initiator: bool,
        mut noise: Handshake,
        max_frame: usize,
        fixed_header: Option<[u8; Header::BYTES]>,
    ) -> Result<Self, StreamError> {
        let first = noise.start()?;
        let mut stream = Self {
            initiator,
            max_frame,
            phase: Phase::Handshake(Box::new(noise)),
            prefix: [0; PREFIX_LEN],
            prefix_len: 0,
            frame_len: None,
            frame: Vec::new(),
            events: VecDeque::new(),
            out: Vec::new(),
            established: false,
            fixed_header,
        };
        if let Some(message) = first {
            stream.queue_frame(&message);
        }
        Ok(stream)
    }

    /// Feeds bytes read from the socket, in chunks of any size.
    ///
    /// On an error the stream is over; events decoded before it, from
    /// authenticated frames, stay queued for [`poll_event`](Self::poll_event).
    pub fn receive(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        self.check_failed()?;
        let result = self.receive_inner(bytes);
        if let Err(error) = &result {
            self.fail(error.clone());
        }
        result
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<StreamEvent> {
        self.events.pop_front()
    }

    /// Encrypts one message (empty is a keep-alive) for sending.
    ///
    /// A message too long for a uint24 frame is refused with
    /// [`StreamError::FrameTooLarge`] and leaves the stream usable.
    pub fn send(&mut self, plaintext: &[u8]) -> Result<(), StreamError> {
        self.check_failed()?;
        let Phase::Open { push, .. } = &mut self.phase else {
            return Err(StreamError::NotEstablished);
        };
        let len = plaintext.len() + ABYTES;
        if len > MAX_U24 {
            return Err(StreamError::FrameTooLarge(len));
        }
        let mut frame = Vec::with_capacity(len);
        frame.extend_from_slice(plaintext);
        // secretstream only fails past 2^32 messages of 256 GiB each.
        push.push(&mut frame, &[], Tag::Message)
            .expect("a uint24-sized secretstream push cannot fail");
        self.queue_frame(&frame);
        Ok(())
    }

    /// Everything to write to the socket so far, if anything.
    pub fn transmit(&mut self) -> Option<Vec<u8>> {
        if self.out.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.out))
        }
    }

    /// Bytes waiting in [`transmit`](Self::transmit).
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// Changes the largest frame accepted from now on (a frame whose length
    /// was already read keeps the old bound).
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame;
    }

    /// Bytes received but not yet making a whole frame.
    pub fn buffered(&self) -> usize {
        match self.frame_len {
            Some(_) => PREFIX_LEN + self.frame.len(),
            None => self.prefix_len,
        }
    }

    /// Whether [`StreamEvent::Established`] has been reported.
    pub fn is_established(&self) -> bool {
        self.established
    }

    /// The error that ended the stream, if one did.
    pub fn error(&self) -> Option<&StreamError> {
        match &self.phase {
            Phase::Failed(error) => Some(error),
            _ => None,
        }
    }

    fn receive_inner(&mut self, mut bytes: &[u8]) -> Result<(), StreamError> {
        while !bytes.is_empty() {
            let Some(len) = self.frame_len else {
                let take = (PREFIX_LEN - self.prefix_len).min(bytes.len());
                self.prefix[self.prefix_len..self.prefix_len + take]
                    .copy_from_slice(&bytes[..take]);
                self.prefix_len += take;
                bytes = &bytes[take..];
                if self.prefix_len == PREFIX_LEN {
                    self.prefix_len = 0;
                    let [a, b, c] = self.prefix;
                    let len = u32::from_le_bytes([a, b, c, 0]) as usize;
                    self.check_frame_len(len)?;
                    self.frame_len = Some(len);
                }
                continue;
            };
            if self.frame.is_empty() && bytes.len() >= len {
                // The whole frame is here: no reassembly.
                let (body, rest) = bytes.split_at(len);
                bytes = rest;
                self.frame_len = None;
                self.on_frame(body.to_vec())?;
                continue;
            }
            let take = (len - self.frame.len()).min(bytes.len());
            self.grow_frame(len, take);
            self.frame.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.frame.len() == len {
                self.frame_len = None;
                let body = std::mem::take(&mut self.frame);
                self.on_frame(body)?;
            }
        }
        Ok(())
    }

    /// Makes room for `take` more bytes of a frame of `len`: doubling as
    /// usual, but never past the announced length, so the buffer stays
    /// within twice what actually arrived.
    fn grow_frame(&mut self, len: usize, take: usize) {
        let want = self.frame.len() + take;
        if want > self.frame.capacity() {
            let target = want.max((self.frame.capacity() * 2).min(len));
            self.frame.reserve_exact(target - self.frame.len());
        }
    }

    /// Refuses a frame from its length alone, before buffering any of it.
    fn check_frame_len(&self, len: usize) -> Result<(), StreamError> {
        match &self.phase {
            Phase::Handshake(noise) => match noise.expected_len() {
                Some(expected) if expected == len => Ok(()),
                Some(expected) => Err(NoiseError::Length { got: len, expected }.into()),
                None => Err(NoiseError::OutOfTurn.into()),
            },
            Phase::AwaitHeader { .. } if len != HEADER_FRAME_LEN => Err(StreamError::BadHeader),
            Phase::AwaitHeader { .. } => Ok(()),
            Phase::Open { .. } if len > self.max_frame => Err(StreamError::FrameTooLarge(len)),
            Phase::Open { .. } if len < ABYTES => Err(StreamError::Decrypt),
            Phase::Open { .. } => Ok(()),
            Phase::Failed(error) => Err(error.clone()),
        }
    }

    fn on_frame(&mut self, body: Vec<u8>) -> Result<(), StreamError> {
        // The placeholder never survives: on error `receive` records the
        // real one.
        let phase = std::mem::replace(&mut self.phase, Phase::Failed(StreamError::BadHeader));
        self.phase = self.advance(phase, body)?;
        Ok(())
    }

    /// Handles one whole frame in `phase`; returns the phase after it.
    fn advance(&mut self, phase: Phase, mut body: Vec<u8>) -> Result<Phase, StreamError> {
        match phase {
            Phase::Handshake(mut noise) => {
                if let Some(reply) = noise.receive(&body)? {
                    self.queue_frame(&reply);
                }
                Ok(match noise.keys() {
                    Some(keys) => self.handshake_done(keys.clone()),
                    None => Phase::Handshake(noise),
                })
            }
            Phase::AwaitHeader { keys, push } => {
                if body.len() != HEADER_FRAME_LEN
                    || body[..32] != stream_id(!self.initiator, &keys.handshake_hash)
                {
                    return Err(StreamError::BadHeader);
                }
                let header = Header::try_from(&body[32..]).map_err(|_| StreamError::BadHeader)?;
                let pull = PullStream::init(header, &Key::from(keys.rx));
                self.established = true;
                self.events.push_back(StreamEvent::Established {
                    remote_key: keys.remote_static,
                    handshake_hash: keys.handshake_hash,
                });
                Ok(Phase::Open { push, pull })
            }
            Phase::Open { push, mut pull } => {
                // The tag is ignored, as JavaScript does.
                pull.pull(&mut body, &[])
                    .map_err(|_| StreamError::Decrypt)?;
                self.events.push_back(if body.is_empty() {
                    StreamEvent::KeepAlive
                } else {
                    StreamEvent::Message(bytes::Bytes::from(body))
                });
                Ok(Phase::Open { push, pull })
            }
            Phase::Failed(error) => Err(error),
        }
    }

    /// Our handshake is complete: send our header, then wait for theirs.
    fn handshake_done(&mut self, keys: Keys) -> Phase {
        let key = Key::from(keys.tx);
        let (header, push) = match self.fixed_header {
            Some(bytes) => PushStream::init(FixedBytes(bytes, 0), &key),
            None => PushStream::init(OsRng, &key),
        };
        let mut frame = [0u8; HEADER_FRAME_LEN];
        frame[..32].copy_from_slice(&stream_id(self.initiator, &keys.handshake_hash));
        frame[32..].copy_from_slice(header.as_ref());
        self.queue_frame(&frame);
        Phase::AwaitHeader {
            keys: Box::new(keys),
            push,
        }
    }

    fn queue_frame(&mut self, body: &[u8]) {
        let len = u32::try_from(body.len())
            .ok()
            .filter(|&len| len as usize <= MAX_U24)
            .expect("callers keep frames within a uint24");
        self.out.extend_from_slice(&len.to_le_bytes()[..PREFIX_LEN]);
        self.out.extend_from_slice(body);
    }

    fn check_failed(&self) -> Result<(), StreamError> {
        match &self.phase {
            Phase::Failed(error) => Err(error.clone()),
            _ => Ok(()),
        }
    }

    fn fail(&mut self, error: StreamError) {
        self.phase = Phase::Failed(error);
        self.frame_len = None;
        self.frame = Vec::new();
        self.prefix_len = 0;
    }
}

/// The stream id a side of `role` sends: the handshake hash keys a BLAKE2b
/// of the role's namespace (docs/TRANSPORT.md section 3, pitfall 1).
fn stream_id(initiator: bool, handshake_hash: &[u8; 64]) -> [u8; 32] {
    let role = namespace("hyperswarm/secret-stream", if initiator { 0 } else { 1 });
    b256_keyed(handshake_hash, &[&role])
}

/// An "RNG" that yields given bytes, then zeros: how the vectors' fixed
/// headers reach `PushStream::init`, which draws exactly the 24 header
/// bytes. Only ever built from `fixed_header`, which only tests set.
struct FixedBytes([u8; Header::BYTES], usize);

impl RngCore for FixedBytes {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0; 4];
        self.fill_bytes(&mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0; 8];
        self.fill_bytes(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            *byte = self.0.get(self.1).copied().unwrap_or(0);
            self.1 += 1;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for FixedBytes {}

#[cfg(test)]
mod tests;
