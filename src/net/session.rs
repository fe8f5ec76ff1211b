//! A presence session over one authenticated, encrypted message stream: the
//! protomux session, our `hypercore/alpha` channel for the topic, and
//! presence packets as extension messages on it. Sans-IO: frames in, frames
//! out. It runs over our own secret stream ([`super::link`]) or over any
//! other stream that hands over whole plaintext messages and the handshake
//! hash (a DHT connection arrives that way).

use std::collections::VecDeque;

use bytes::Bytes;

use super::transport::channel::{ChannelError, ChannelEvent, CoreChannel};
use super::transport::protomux::{Mux, MuxEvent};

/// What the session hands up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The remote opened the channel and proved it knows the topic key:
    /// packets may flow from now on.
    Open,
    /// A presence packet (one flood packet, as the engine takes it).
    Packet(Bytes),
    /// The remote closed the channel: it is leaving the topic.
    Closed,
    /// An event of another channel on the same mux, handed up in order
    /// only by a session made with [`Session::unopened`] (a DHT stream runs
    /// its identity proof beside presence this way).
    Other(MuxEvent),
}

/// Our end of the presence channel of one connection.
#[derive(Debug)]
pub struct Session {
    mux: Mux,
    /// `None` until [`open`](Self::open) on an unopened session.
    channel: Option<CoreChannel>,
    extension: String,
    events: VecDeque<SessionEvent>,
    closed: bool,
    /// Whether events of other channels are handed up.
    others: bool,
}

impl Session {
    /// Opens the channel for `core_key` at once (JavaScript does not wait
    /// for the remote's open either). `handshake_hash` and `initiator` are
    /// the stream's; `extension` is the name presence packets travel under.
    pub fn new(
        core_key: &[u8; 32],
        handshake_hash: &[u8; 64],
        initiator: bool,
        extension: &str,
    ) -> Self {
        let mut session = Session::unopened(extension);
        session.others = false;
        session.open(core_key, handshake_hash, initiator);
        session
    }

    /// A session whose presence channel is not open yet: other channels
    /// may run on [`mux`](Self::mux) first, their events handed up as
    /// [`SessionEvent::Other`]. A remote `hypercore/alpha` open that
    /// arrives before [`open`](Self::open) is rejected by the mux.
    pub fn unopened(extension: &str) -> Self {
        Session {
            mux: Mux::new(),
            channel: None,
            extension: extension.to_owned(),
            events: VecDeque::new(),
            closed: false,
            others: true,
        }
    }

    /// Opens the presence channel for `core_key`; does nothing if it is
    /// open already.
    pub fn open(&mut self, core_key: &[u8; 32], handshake_hash: &[u8; 64], initiator: bool) {
        if self.channel.is_none() {
            self.channel = Some(CoreChannel::open(
                &mut self.mux,
                core_key,
                handshake_hash,
                initiator,
            ));
        }
    }

    /// The mux below, for channels of our own beside presence.
    pub fn mux(&mut self) -> &mut Mux {
        &mut self.mux
    }

    /// Takes one plaintext message from the stream.
    pub fn receive(&mut self, frame: Bytes) -> Result<(), ChannelError> {
        self.mux.receive(frame)?;
        while let Some(event) = self.mux.poll_event() {
            let ours = self.channel.as_ref().map(CoreChannel::local);
            let local = match &event {
                MuxEvent::Opened { local, .. }
                | MuxEvent::Message { local, .. }
                | MuxEvent::Closed { local }
                | MuxEvent::Rejected { local } => *local,
            };
            let Some(channel) = self.channel.as_mut().filter(|_| ours == Some(local)) else {
                if self.others {
                    self.events.push_back(SessionEvent::Other(event));
                }
                continue;
            };
            match channel.handle(event)? {
                Some(ChannelEvent::Opened) => self.events.push_back(SessionEvent::Open),
                // Other extensions of the same core (an app's own) are none
                // of our business.
                Some(ChannelEvent::Extension { name, payload }) if name == self.extension => {
                    self.events.push_back(SessionEvent::Packet(payload));
                }
                Some(ChannelEvent::Closed) => {
                    self.closed = true;
                    self.events.push_back(SessionEvent::Closed);
                }
                Some(ChannelEvent::Extension { .. }) | None => {}
            }
        }
        Ok(())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Whether packets can be sent: the remote's open has arrived and
    /// checked out, and the channel is not closed.
    pub fn is_open(&self) -> bool {
        self.channel.as_ref().is_some_and(CoreChannel::is_open) && !self.closed
    }

    /// Sends presence packets, several in one batch frame.
    pub fn send_packets<'a>(
        &mut self,
        packets: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), ChannelError> {
        let Some(channel) = self.channel.as_mut() else {
            return Ok(());
        };
        self.mux.cork();
        let mut result = Ok(());
        for packet in packets {
            result = channel.send_extension(&mut self.mux, &self.extension, packet);
            if result.is_err() {
                break;
            }
        }
        self.mux.uncork();
        result
    }

    /// Closes the channel: the remote takes it as our leaving.
    pub fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            if let Some(channel) = &mut self.channel {
                channel.close(&mut self.mux);
            }
        }
    }

    /// The next frame to hand to the stream, if any.
    pub fn poll_frame(&mut self) -> Option<Vec<u8>> {
        self.mux.poll_frame()
    }
}
