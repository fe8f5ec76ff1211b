//! The `hypercore/alpha` channel, as much of it as presence needs: the open
//! (discovery key as id, the capability that proves knowledge of the core
//! key) and the extension message (type 9), with hypercore 10/11's name
//! rule. Sync, requests, data and the rest of replication are never sent,
//! and are ignored when received.
//!
//! Layout: `docs/TRANSPORT.md` sections 5-6, vectors 8.2 and 8.4.

use bytes::Bytes;

use super::compact::{put_string, put_uint, DecodeError, Reader};
use super::hash::{b256_keyed, discovery_key, namespace};
use super::protomux::{Mux, MuxError, MuxEvent};

/// The protocol name of the channel.
pub const PROTOCOL: &str = "hypercore/alpha";

/// The message type of hypercore's extension message.
pub const EXTENSION: u64 = 9;

/// The flags of our open: bit 0, "seeks", as JavaScript sends it.
const OPEN_FLAGS: u64 = 1;

/// The capability a side sends in its open: proof that it knows `core_key`,
/// bound to this connection's handshake and to the sender's role.
pub fn capability(handshake_hash: &[u8; 64], initiator: bool, core_key: &[u8; 32]) -> [u8; 32] {
    let role = namespace("hypercore", if initiator { 1 } else { 2 });
    b256_keyed(handshake_hash, &[&role, core_key])
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

/// Where the channel is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Our open is sent; the remote's has not arrived.
    Opening,
    /// Both opens are in and the remote's capability checked out.
    Open,
    /// Closed by either side or rejected: our mux id may already belong to
    /// another channel, so nothing more is taken for it.
    Done,
}

/// Our end of one `hypercore/alpha` channel.
#[derive(Debug)]
pub struct CoreChannel {
    local: u64,
    /// The capability the remote must send: ours computed for its role.
    expected: [u8; 32],
    state: State,
    /// The extension name last written, for the name rule (initially "").
    last_sent: String,
    /// The extension name last received, for the name rule (initially "").
    last_received: String,
}

impl CoreChannel {
    /// Opens the channel for `core_key` on `mux`.
    pub fn open(
        mux: &mut Mux,
        core_key: &[u8; 32],
        handshake_hash: &[u8; 64],
        initiator: bool,
    ) -> Self {
        let mut handshake = Vec::with_capacity(33);
        put_uint(&mut handshake, OPEN_FLAGS);
        handshake.extend_from_slice(&capability(handshake_hash, initiator, core_key));
        let local = mux.open(PROTOCOL, Some(&discovery_key(core_key)), &handshake);
        CoreChannel {
            local,
            expected: capability(handshake_hash, !initiator, core_key),
            state: State::Opening,
            last_sent: String::new(),
            last_received: String::new(),
        }
    }

    /// Our mux id for the channel (what its [`MuxEvent`]s carry).
    pub fn local(&self) -> u64 {
        self.local
    }

    /// Takes a mux event; events for other channels are `Ok(None)`.
    pub fn handle(&mut self, event: MuxEvent) -> Result<Option<ChannelEvent>, ChannelError> {
        if self.state == State::Done {
            return Ok(None);
        }
        match event {
            MuxEvent::Opened { local, handshake } if local == self.local => {
                self.on_open(&handshake)?;
                Ok(Some(ChannelEvent::Opened))
            }
            MuxEvent::Message { local, kind, body } if local == self.local => {
                if kind != EXTENSION || self.state != State::Open {
                    return Ok(None);
                }
                self.on_extension(body).map(Some)
            }
            MuxEvent::Closed { local } if local == self.local => {
                self.state = State::Done;
                Ok(Some(ChannelEvent::Closed))
            }
            MuxEvent::Rejected { local } if local == self.local => {
                self.state = State::Done;
                Err(ChannelError::Rejected)
            }
            _ => Ok(None),
        }
    }

    /// `uint flags || fixed32 capability`; the flags and anything after the
    /// capability are not ours to check (JavaScript ignores them too).
    fn on_open(&mut self, handshake: &[u8]) -> Result<(), ChannelError> {
        let mut reader = Reader::new(handshake);
        let _flags = reader.uint()?;
        let remote = reader.fixed32()?;
        // Constant time: the comparison should not say how much matched.
        let diff = remote
            .iter()
            .zip(&self.expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(ChannelError::BadCapability);
        }
        self.state = State::Open;
        Ok(())
    }

    /// `string name || raw payload`, the name resolved by the rule.
    fn on_extension(&mut self, body: Bytes) -> Result<ChannelEvent, ChannelError> {
        let mut reader = Reader::new(&body);
        // Invalid UTF-8 reads as U+FFFD, as in JavaScript: an unknown name
        // for the caller to drop, not a reason to end the connection.
        let name = reader.string_lossy()?;
        if !name.is_empty() {
            self.last_received = name.into_owned();
        }
        let payload = body.slice(body.len() - reader.remaining()..);
        Ok(ChannelEvent::Extension {
            name: self.last_received.clone(),
            payload,
        })
    }

    /// Sends an extension message.
    pub fn send_extension(
        &mut self,
        mux: &mut Mux,
        name: &str,
        payload: &[u8],
    ) -> Result<(), ChannelError> {
        if self.state != State::Open {
            return Err(MuxError::NotOpen(self.local).into());
        }
        let repeat = name == self.last_sent;
        let mut body = Vec::with_capacity(name.len() + payload.len() + 9);
        put_string(&mut body, if repeat { "" } else { name });
        body.extend_from_slice(payload);
        mux.send(self.local, EXTENSION, &body)?;
        if !repeat {
            self.last_sent = name.to_owned();
        }
        Ok(())
    }

    /// Closes the channel.
    pub fn close(&mut self, mux: &mut Mux) {
        if self.state != State::Done {
            mux.close(self.local);
            self.state = State::Done;
        }
    }

    /// Whether the remote's open has arrived and checked out.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }
}

#[cfg(test)]
mod tests;
