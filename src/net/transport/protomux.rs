//! protomux: many channels over one stream of messages, each channel opened
//! by protocol name and id, messages typed per channel, and batches. Runs
//! over any stream of authenticated plaintext messages (one message = one
//! frame here).
//!
//! Layout and behaviour follow protomux 3.12.1 (`docs/TRANSPORT.md`
//! section 4), with two deliberate differences:
//!
//! - Each message of a batch is bounded by its own length, whatever its
//!   decoder reads (a length beyond the batch is cut at the batch's end, as
//!   JavaScript does).
//! - An open we have no channel for is rejected at once: JavaScript can
//!   hold it while a `pair` handler decides whether to open a matching
//!   channel; we have no such handler, so open our channels before feeding
//!   the remote's frames (a remote open that arrives first is rejected).
//!
//! Memory: what a peer can make this value hold is at most
//! [`MAX_REMOTE_CHANNELS`] remote slots and a batch-nesting depth of
//! [`MAX_BATCH_DEPTH`]; the event and frame queues hold what one
//! [`Mux::receive`] produced (events share the frame's bytes, each rejected
//! open adds a reject of at most 11 bytes) until the caller polls them.

use bytes::Bytes;
use std::collections::VecDeque;

use super::compact::{put_optional_buffer, put_string, put_uint, uint_len, DecodeError, Reader};

/// How many channel ids the remote may have in use at once; a remote open
/// beyond that ends the stream with [`MuxError::TooManyChannels`].
/// JavaScript peers number their channels from 1 and reuse freed ids, and a
/// hypercore connection for presence holds one.
pub const MAX_REMOTE_CHANNELS: u64 = 128;

/// A batch being gathered is sent and a new one begun once it reaches this
/// many bytes (protomux's `MAX_BATCH`).
pub const MAX_BATCH: usize = 8 * 1024 * 1024;

/// Batches nested inside batches deeper than this are skipped unread.
/// JavaScript never nests them; it would follow them as deep as they go.
pub const MAX_BATCH_DEPTH: usize = 4;

/// Control message types (channel 0).
const CONTROL_BATCH: u64 = 0;
const CONTROL_OPEN: u64 = 1;
const CONTROL_REJECT: u64 = 2;
const CONTROL_CLOSE: u64 = 3;

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

/// What pairs two opens: protocol name and id (an empty id is no id, as
/// on the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    protocol: Vec<u8>,
    id: Vec<u8>,
}

/// One of our channels that we have not closed.
#[derive(Debug, Clone, Copy)]
struct LocalChannel {
    /// The remote's id once its open has paired with ours.
    remote: Option<u64>,
}

/// One side of a protomux session.
#[derive(Debug, Default)]
pub struct Mux {
    /// Our channels by id - 1; `None` once closed (or never reused yet).
    local: Vec<Option<LocalChannel>>,
    /// Our ids free for reuse, most recently freed last.
    free: Vec<u64>,
    /// Our opens the remote has neither answered (open or reject) nor
    /// rejected, oldest first. A closed channel stays here until the
    /// answer comes, so that its id is not reused before then.
    outgoing: Vec<(Key, u64)>,
    /// The remote's channels by its id - 1: our paired id, or `None` for a
    /// slot the remote may reuse.
    remote: Vec<Option<u64>>,
    /// Nesting of [`cork`](Self::cork).
    corked: u32,
    /// The batch frame being gathered, empty if none.
    batch: Vec<u8>,
    /// The channel the last entry of `batch` was for.
    batch_channel: u64,
    events: VecDeque<MuxEvent>,
    frames: VecDeque<Vec<u8>>,
}

impl Mux {
    /// A mux with no channel.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens a channel for `protocol` and `id`, sending `handshake` in the
    /// open; returns our id for it.
    pub fn open(&mut self, protocol: &str, id: Option<&[u8]>, handshake: &[u8]) -> u64 {
        let local = match self.free.pop() {
            Some(local) => local,
            None => {
                self.local.push(None);
                self.local.len() as u64
            }
        };
        self.local[slot(local)] = Some(LocalChannel { remote: None });
        self.outgoing.push((
            Key {
                protocol: protocol.as_bytes().to_vec(),
                id: id.unwrap_or_default().to_vec(),
            },
            local,
        ));
        let mut body = Vec::with_capacity(protocol.len() + handshake.len() + 48);
        put_uint(&mut body, local);
        put_string(&mut body, protocol);
        put_optional_buffer(&mut body, id);
        body.extend_from_slice(handshake);
        self.emit(0, CONTROL_OPEN, &body);
        local
    }

    /// Sends a message of type `kind` on our channel `local`. As in
    /// JavaScript this needs only our open, not the remote's: a message sent
    /// before the remote opens its side is dropped by it unless it pairs.
    pub fn send(&mut self, local: u64, kind: u64, body: &[u8]) -> Result<(), MuxError> {
        if self.channel(local).is_none() {
            return Err(MuxError::NotOpen(local));
        }
        self.emit(local, kind, body);
        Ok(())
    }

    /// Closes our channel `local`.
    pub fn close(&mut self, local: u64) {
        let Some(channel) = self.channel(local) else {
            return;
        };
        self.local[slot(local)] = None;
        if let Some(remote) = channel.remote {
            self.remote[slot(remote)] = None;
            self.free.push(local);
        }
        let mut body = Vec::with_capacity(9);
        put_uint(&mut body, local);
        self.emit(0, CONTROL_CLOSE, &body);
    }

    /// From now until [`uncork`](Self::uncork), messages sent are gathered
    /// into one batch frame. Corks nest; the outermost uncork sends.
    pub fn cork(&mut self) {
        self.corked = self.corked.saturating_add(1);
    }

    /// Ends a batch: what was gathered becomes one frame.
    pub fn uncork(&mut self) {
        if self.corked == 0 {
            return;
        }
        self.corked -= 1;
        if self.corked == 0 {
            self.flush_batch();
        }
    }

    /// Takes one frame from the remote. Empty frames (keep-alives) are
    /// ignored; so are messages for channels we do not hold and types we do
    /// not know. An error ends the stream.
    pub fn receive(&mut self, frame: Bytes) -> Result<(), MuxError> {
        if frame.is_empty() {
            return Ok(());
        }
        let mut reader = Reader::new(&frame);
        let channel = reader.uint()?;
        let message = frame.slice(frame.len() - reader.remaining()..);
        self.dispatch(channel, message, 0)
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<MuxEvent> {
        self.events.pop_front()
    }

    /// The next frame to send, if any.
    pub fn poll_frame(&mut self) -> Option<Vec<u8>> {
        self.frames.pop_front()
    }

    /// How many of the remote's channel slots we track (in use or free for
    /// its reuse); at most [`MAX_REMOTE_CHANNELS`].
    pub fn remote_slots(&self) -> usize {
        self.remote.len()
    }

    /// Our channel `local` if we have it open.
    fn channel(&self, local: u64) -> Option<LocalChannel> {
        if local == 0 {
            return None;
        }
        *self.local.get(usize::try_from(local - 1).ok()?)?
    }

    /// Writes `uint kind || body` on `channel`: into the batch when corked,
    /// else as a frame of its own.
    fn emit(&mut self, channel: u64, kind: u64, body: &[u8]) {
        if self.corked == 0 {
            let mut frame = Vec::with_capacity(uint_len(channel) + uint_len(kind) + body.len());
            put_uint(&mut frame, channel);
            put_uint(&mut frame, kind);
            frame.extend_from_slice(body);
            self.frames.push_back(frame);
            return;
        }
        if self.batch.len() >= MAX_BATCH {
            self.flush_batch();
        }
        if self.batch.is_empty() {
            self.batch.extend_from_slice(&[0, CONTROL_BATCH as u8]);
            put_uint(&mut self.batch, channel);
            self.batch_channel = channel;
        } else if self.batch_channel != channel {
            self.batch.push(0);
            put_uint(&mut self.batch, channel);
            self.batch_channel = channel;
        }
        put_uint(&mut self.batch, (uint_len(kind) + body.len()) as u64);
        put_uint(&mut self.batch, kind);
        self.batch.extend_from_slice(body);
    }

    fn flush_batch(&mut self) {
        if !self.batch.is_empty() {
            self.frames.push_back(std::mem::take(&mut self.batch));
        }
    }

    /// Handles `uint kind || body` on the remote's `channel`.
    fn dispatch(&mut self, channel: u64, message: Bytes, depth: usize) -> Result<(), MuxError> {
        let mut reader = Reader::new(&message);
        let kind = reader.uint()?;
        let body = message.slice(message.len() - reader.remaining()..);
        if channel != 0 {
            if let Some(local) = self.paired(channel) {
                self.events
                    .push_back(MuxEvent::Message { local, kind, body });
            }
            return Ok(());
        }
        match kind {
            CONTROL_BATCH => self.on_batch(body, depth),
            CONTROL_OPEN => self.on_open(body),
            CONTROL_REJECT => self.on_reject(&body),
            CONTROL_CLOSE => self.on_close(&body),
            _ => Ok(()),
        }
    }

    /// Our id for the remote's channel `remote`, if paired.
    fn paired(&self, remote: u64) -> Option<u64> {
        let index = usize::try_from(remote.checked_sub(1)?).ok()?;
        *self.remote.get(index)?
    }

    /// `uint channel { uint len || message | 00 uint channel }*`.
    fn on_batch(&mut self, body: Bytes, depth: usize) -> Result<(), MuxError> {
        if depth >= MAX_BATCH_DEPTH {
            return Ok(());
        }
        let mut reader = Reader::new(&body);
        let mut channel = reader.uint()?;
        let mut corked_here = false;
        let mut result = Ok(());
        while reader.remaining() > 0 {
            let len = match reader.uint() {
                Ok(len) => len,
                Err(err) => {
                    result = Err(err.into());
                    break;
                }
            };
            if len == 0 {
                match reader.uint() {
                    Ok(next) => channel = next,
                    Err(err) => {
                        result = Err(err.into());
                        break;
                    }
                }
                continue;
            }
            let start = body.len() - reader.remaining();
            let len =
                usize::try_from(len).map_or(reader.remaining(), |len| len.min(reader.remaining()));
            let end = start + len;
            // Replies to a batch of several messages go out as one batch,
            // as JavaScript's do.
            if end != body.len() && !corked_here {
                self.cork();
                corked_here = true;
            }
            if let Err(err) = self.dispatch(channel, body.slice(start..end), depth + 1) {
                result = Err(err);
                break;
            }
            reader = Reader::new(&body[end..]);
        }
        if corked_here {
            self.uncork();
        }
        result
    }

    /// `uint remoteId || string protocol || optionalBuffer id || handshake`.
    fn on_open(&mut self, body: Bytes) -> Result<(), MuxError> {
        let mut reader = Reader::new(&body);
        let remote = reader.uint()?;
        // Matched as bytes: a protocol name that is not UTF-8 pairs with
        // nothing and is rejected, as in JavaScript.
        let protocol = reader.buffer()?;
        let id = reader.optional_buffer()?.unwrap_or_default();
        let handshake = body.slice(body.len() - reader.remaining()..);

        let slots = self.remote.len() as u64;
        if remote == 0 || remote > slots + 1 {
            return Err(MuxError::BadChannelId(remote));
        }
        if remote == slots + 1 {
            if slots >= MAX_REMOTE_CHANNELS {
                return Err(MuxError::TooManyChannels);
            }
            self.remote.push(None);
        }
        if self.remote[slot(remote)].is_some() {
            return Err(MuxError::BadChannelId(remote));
        }

        let found = self
            .outgoing
            .iter()
            .position(|(key, _)| key.protocol == protocol && key.id == id);
        let Some(index) = found else {
            let mut reject = Vec::with_capacity(9);
            put_uint(&mut reject, remote);
            self.emit(0, CONTROL_REJECT, &reject);
            return Ok(());
        };
        let (_, local) = self.outgoing.remove(index);
        match &mut self.local[slot(local)] {
            Some(channel) => {
                channel.remote = Some(remote);
                self.remote[slot(remote)] = Some(local);
                self.events.push_back(MuxEvent::Opened { local, handshake });
            }
            // We closed it before the remote answered: its open is the
            // answer that frees our id; the remote's channel is ignored.
            None => self.free.push(local),
        }
        Ok(())
    }

    /// `uint openerLocalId`: the remote refuses an open of ours.
    fn on_reject(&mut self, body: &[u8]) -> Result<(), MuxError> {
        let local = Reader::new(body).uint()?;
        let Some(index) = self.outgoing.iter().position(|(_, id)| *id == local) else {
            return Err(MuxError::BadChannelId(local));
        };
        self.outgoing.remove(index);
        self.free.push(local);
        if self.local[slot(local)].take().is_some() {
            self.events.push_back(MuxEvent::Rejected { local });
        }
        Ok(())
    }

    /// `uint senderLocalId`: the remote closes its channel.
    fn on_close(&mut self, body: &[u8]) -> Result<(), MuxError> {
        let remote = Reader::new(body).uint()?;
        let Some(local) = self.paired(remote) else {
            return Ok(());
        };
        self.remote[slot(remote)] = None;
        self.local[slot(local)] = None;
        self.free.push(local);
        self.events.push_back(MuxEvent::Closed { local });
        Ok(())
    }
}

/// The index of channel id `id` (1-based) in a table that holds it.
fn slot(id: u64) -> usize {
    (id - 1) as usize
}

#[cfg(test)]
mod tests;
