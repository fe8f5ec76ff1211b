//! The presence session of one DHT stream, gated on identity, sans-IO.
//!
//! The `hyperdht` crate dials with a fresh random Noise key, so on a stream
//! we dialled the remote sees a key that is nobody's presence id; on a
//! stream we accepted our key is our identity and the remote's is either
//! its identity (JavaScript hyperswarm) or random (one of ours that
//! dialled). Each side of ours therefore opens a protomux channel
//! [`PROTOCOL`] first, its open carrying `identity || signature`, the
//! signature by the identity key over the stream's handshake hash and the
//! signer's role. Then:
//!
//! - we dialled: nothing of presence is opened until the remote's proof
//!   arrives; its first frame must be that proof (ours send it before
//!   anything else), else the remote is not one of ours (JavaScript) and
//!   the stream is closed without our `hypercore/alpha` ever being opened,
//!   so no JavaScript view can list our random key. The JavaScript peer
//!   dials our announcement itself, as hyperswarm clients do.
//! - we accepted: `hypercore/alpha` is opened at once (our key is our
//!   identity); the remote's id is the identity it proved, or its Noise
//!   key when it opened presence without a proof (JavaScript rejects the
//!   unknown proof channel, harmlessly).

use std::collections::VecDeque;

use bytes::Bytes;
use thiserror::Error;

use crate::net::identity::{verify, Identity};
use crate::net::session::{Session, SessionEvent};
use crate::net::transport::channel::ChannelError;
use crate::net::transport::protomux::MuxEvent;
use crate::proto::PeerId;

/// The protomux protocol of the identity proof.
pub const PROTOCOL: &str = "hyper-presence/identity";

/// What the proof signs before the handshake hash and the role.
const CONTEXT: &[u8] = b"hyper-presence identity proof v1";

/// Bytes of a proof: identity key and Ed25519 signature.
const PROOF_LEN: usize = 32 + 64;

/// What the gate hands up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateEvent {
    /// Presence is open with the holder of this identity.
    Ready(PeerId),
    /// A presence packet.
    Packet(Bytes),
    /// The remote closed presence: it is leaving.
    Goodbye,
}

/// Why a DHT stream is closed by the gate.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GateError {
    /// The presence channel or the mux failed.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The remote's proof does not decode or its signature is wrong.
    #[error("the remote's identity proof is invalid")]
    BadProof,
    /// The remote we dialled proved another identity than the key we
    /// dialled.
    #[error("the remote proved another identity than the one dialled")]
    WrongIdentity,
    /// The remote we dialled is not one of ours (no proof first): it will
    /// dial us.
    #[error("the remote is not a hyper-presence peer of ours")]
    Foreign,
    /// The remote is us.
    #[error("connected to ourselves")]
    Ourselves,
}

/// The signed message: context, handshake hash, role of the signer.
fn signed(handshake_hash: &[u8; 64], signer_initiator: bool) -> Vec<u8> {
    let mut message = Vec::with_capacity(CONTEXT.len() + 65);
    message.extend_from_slice(CONTEXT);
    message.extend_from_slice(handshake_hash);
    message.push(if signer_initiator { 1 } else { 2 });
    message
}

/// Our proof for this stream.
pub fn proof(identity: &Identity, handshake_hash: &[u8; 64], initiator: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(PROOF_LEN);
    out.extend_from_slice(identity.id().as_bytes());
    out.extend_from_slice(&identity.sign(&signed(handshake_hash, initiator)));
    out
}

/// The identity a remote's proof shows, if it checks out. Bytes after the
/// proof are ignored (room for later versions).
pub fn check(bytes: &[u8], handshake_hash: &[u8; 64], remote_initiator: bool) -> Option<PeerId> {
    let id = PeerId::from_slice(bytes.get(..32)?).ok()?;
    let signature: [u8; 64] = bytes.get(32..PROOF_LEN)?.try_into().ok()?;
    verify(&id, &signed(handshake_hash, remote_initiator), &signature).then_some(id)
}

/// One DHT stream's presence, behind the identity gate.
#[derive(Debug)]
pub struct Gate {
    session: Session,
    initiator: bool,
    us: PeerId,
    remote_key: PeerId,
    core_key: [u8; 32],
    handshake_hash: [u8; 64],
    proof_channel: u64,
    proved: Option<PeerId>,
    ready: bool,
    events: VecDeque<GateEvent>,
}

impl Gate {
    /// Starts the gate of a stream: `initiator` when we dialled,
    /// `remote_key` the remote's Noise key (the key we dialled, or the one
    /// that dialled us).
    pub fn new(
        identity: &Identity,
        initiator: bool,
        remote_key: [u8; 32],
        handshake_hash: [u8; 64],
        core_key: [u8; 32],
        extension: &str,
    ) -> Self {
        let mut session = Session::unopened(extension);
        // Its own frame, before anything else: a dialler of ours reads it
        // before our presence open arrives.
        let proof_channel =
            session
                .mux()
                .open(PROTOCOL, None, &proof(identity, &handshake_hash, initiator));
        if !initiator {
            session.open(&core_key, &handshake_hash, false);
        }
        Gate {
            session,
            initiator,
            us: identity.id(),
            remote_key: PeerId::from_bytes(remote_key),
            core_key,
            handshake_hash,
            proof_channel,
            proved: None,
            ready: false,
            events: VecDeque::new(),
        }
    }

    /// Takes one plaintext message of the stream. After an error the
    /// caller closes the stream.
    pub fn receive(&mut self, frame: Bytes) -> Result<(), GateError> {
        if frame.is_empty() {
            return Ok(());
        }
        self.session.receive(frame)?;
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::Other(MuxEvent::Opened { local, handshake })
                    if local == self.proof_channel && !self.ready =>
                {
                    self.on_proof(&handshake)?;
                }
                SessionEvent::Other(_) => {}
                SessionEvent::Open => {
                    let peer = match self.proved {
                        Some(id) => id,
                        // Only an accepted stream opens presence unproven.
                        None => self.remote_key,
                    };
                    if peer == self.us {
                        return Err(GateError::Ourselves);
                    }
                    self.ready = true;
                    self.events.push_back(GateEvent::Ready(peer));
                }
                SessionEvent::Packet(p) => self.events.push_back(GateEvent::Packet(p)),
                SessionEvent::Closed => self.events.push_back(GateEvent::Goodbye),
            }
        }
        if self.initiator && self.proved.is_none() {
            return Err(GateError::Foreign);
        }
        Ok(())
    }

    fn on_proof(&mut self, bytes: &[u8]) -> Result<(), GateError> {
        let id = check(bytes, &self.handshake_hash, !self.initiator).ok_or(GateError::BadProof)?;
        if id == self.us {
            return Err(GateError::Ourselves);
        }
        if self.initiator && id != self.remote_key {
            return Err(GateError::WrongIdentity);
        }
        self.proved = Some(id);
        if self.initiator {
            self.session
                .open(&self.core_key, &self.handshake_hash, true);
        }
        Ok(())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<GateEvent> {
        self.events.pop_front()
    }

    /// The next message to write to the stream, if any.
    pub fn poll_frame(&mut self) -> Option<Vec<u8>> {
        self.session.poll_frame()
    }

    /// Whether packets can be sent.
    pub fn is_ready(&self) -> bool {
        self.ready && self.session.is_open()
    }

    /// Sends presence packets in one batch.
    pub fn send_packets<'a>(
        &mut self,
        packets: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), GateError> {
        Ok(self.session.send_packets(packets)?)
    }

    /// Closes presence: our goodbye.
    pub fn goodbye(&mut self) {
        self.session.close();
    }
}

#[cfg(test)]
mod tests;
