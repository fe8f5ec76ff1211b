//! A presence session over one authenticated, encrypted message stream: the
//! protomux session, our `hypercore/alpha` channel for the topic, and
//! presence packets as extension messages on it. Sans-IO: frames in, frames
//! out. It runs over our own secret stream ([`super::link`]) or over any
//! other stream that hands over whole plaintext messages and the handshake
//! hash (a DHT connection arrives that way).

use std::collections::VecDeque;

use bytes::Bytes;

use super::transport::channel::{ChannelError, ChannelEvent, CoreChannel};
use super::transport::protomux::Mux;

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
}

/// Our end of the presence channel of one connection.
#[derive(Debug)]
pub struct Session {
    mux: Mux,
    channel: CoreChannel,
    extension: String,
    events: VecDeque<SessionEvent>,
    closed: bool,
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
        let mut mux = Mux::new();
        let channel = CoreChannel::open(&mut mux, core_key, handshake_hash, initiator);
        Session {
            mux,
            channel,
            extension: extension.to_owned(),
            events: VecDeque::new(),
            closed: false,
        }
    }

    /// Takes one plaintext message from the stream.
    pub fn receive(&mut self, frame: Bytes) -> Result<(), ChannelError> {
        self.mux.receive(frame)?;
        while let Some(event) = self.mux.poll_event() {
            match self.channel.handle(event)? {
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
        self.channel.is_open() && !self.closed
    }

    /// Sends presence packets, several in one batch frame.
    pub fn send_packets<'a>(
        &mut self,
        packets: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), ChannelError> {
        self.mux.cork();
        let mut result = Ok(());
        for packet in packets {
            result = self
                .channel
                .send_extension(&mut self.mux, &self.extension, packet);
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
            self.channel.close(&mut self.mux);
        }
    }

    /// The next frame to hand to the stream, if any.
    pub fn poll_frame(&mut self) -> Option<Vec<u8>> {
        self.mux.poll_frame()
    }
}
