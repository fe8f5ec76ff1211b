//! One presence link over a byte stream, sans-IO: the secret stream below
//! (handshake, encryption, keep-alives) and the presence session above it.
//! The connection task feeds it the bytes it reads and writes the bytes it
//! hands back; everything else is decided here.

use std::collections::VecDeque;

use thiserror::Error;

use super::identity::Identity;
use super::session::{Session, SessionEvent};
use super::transport::channel::ChannelError;
use super::transport::secret_stream::{SecretStream, StreamError, StreamEvent};
use crate::proto::PeerId;

/// Largest frame accepted before the peer has shown it knows the topic key.
/// Until then a peer sends its channel open and little else (JavaScript
/// sends its open as a frame of its own), so strangers that completed a
/// Noise handshake cannot make us buffer megabytes each.
pub const MAX_FRAME_UNPROVEN: usize = 64 * 1024;

/// What the link hands up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The peer is the holder of this identity key (Noise XX authenticates
    /// both static keys), and knows the topic key: packets may flow.
    Ready(PeerId),
    /// A presence packet from the peer.
    Packet(bytes::Bytes),
    /// The peer closed the presence channel: it is leaving.
    Goodbye,
}

/// Why a link ended on its own account (the socket's end is the caller's).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LinkError {
    /// The handshake, a frame or the encryption failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The channel failed: wrong capability, rejected, bad message.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The remote static key is our own.
    #[error("connected to ourselves")]
    Ourselves,
}

/// Settings of a link.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// The topic's core key (a hypercore's public key).
    pub core_key: [u8; 32],
    /// The extension name presence packets travel under.
    pub extension: String,
    /// Largest frame accepted from the peer.
    pub max_frame: usize,
}

/// One end of a presence link.
#[derive(Debug)]
pub struct Link {
    initiator: bool,
    us: PeerId,
    settings: LinkSettings,
    stream: SecretStream,
    session: Option<Session>,
    peer: Option<PeerId>,
    events: VecDeque<LinkEvent>,
    failed: Option<LinkError>,
}

impl Link {
    /// Starts a link; the initiator (the side that dialled) has its first
    /// handshake message ready to [`transmit`](Self::transmit) at once.
    pub fn new(
        initiator: bool,
        identity: &Identity,
        settings: LinkSettings,
    ) -> Result<Self, LinkError> {
        let max_frame = settings.max_frame.min(MAX_FRAME_UNPROVEN);
        let stream = SecretStream::new(initiator, &identity.seed(), max_frame)?;
        Ok(Link {
            initiator,
            us: identity.id(),
            settings,
            stream,
            session: None,
            peer: None,
            events: VecDeque::new(),
            failed: None,
        })
    }

    /// Feeds bytes read from the socket. After an error the link is dead:
    /// every later call returns the same error.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.receive_inner(bytes);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn receive_inner(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        self.stream.receive(bytes)?;
        while let Some(event) = self.stream.poll_event() {
            match event {
                StreamEvent::Established {
                    remote_key,
                    handshake_hash,
                } => {
                    let remote = PeerId::from_bytes(remote_key);
                    if remote == self.us {
                        return Err(LinkError::Ourselves);
                    }
                    self.peer = Some(remote);
                    self.session = Some(Session::new(
                        &self.settings.core_key,
                        &handshake_hash,
                        self.initiator,
                        &self.settings.extension,
                    ));
                }
                StreamEvent::Message(frame) => {
                    if let Some(session) = &mut self.session {
                        session.receive(frame)?;
                    }
                }
                StreamEvent::KeepAlive => {}
            }
        }
        self.pump_session()
    }

    /// Moves the session's events up and its frames down into the stream.
    fn pump_session(&mut self) -> Result<(), LinkError> {
        let Some(session) = &mut self.session else {
            return Ok(());
        };
        while let Some(event) = session.poll_event() {
            self.events.push_back(match event {
                // Only unopened sessions hand these up; ours is not one.
                SessionEvent::Other(_) => continue,
                SessionEvent::Open => {
                    self.stream.set_max_frame(self.settings.max_frame);
                    LinkEvent::Ready(self.peer.expect("a session exists only once authenticated"))
                }
                SessionEvent::Packet(p) => LinkEvent::Packet(p),
                SessionEvent::Closed => LinkEvent::Goodbye,
            });
        }
        while let Some(frame) = session.poll_frame() {
            self.stream.send(&frame)?;
        }
        Ok(())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// The peer's id, once the handshake has authenticated it.
    pub fn peer(&self) -> Option<PeerId> {
        self.peer
    }

    /// Whether packets can be sent.
    pub fn is_ready(&self) -> bool {
        self.failed.is_none() && self.session.as_ref().is_some_and(Session::is_open)
    }

    /// Sends presence packets, together in one frame.
    pub fn send_packets<'a>(
        &mut self,
        packets: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), LinkError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if let Some(session) = &mut self.session {
            session.send_packets(packets)?;
        }
        self.pump_session()
    }

    /// Sends an empty frame: the peer learns we are alive and idle.
    pub fn keep_alive(&mut self) {
        if self.stream.is_established() {
            // Only fails on a dead stream, which the next read reports.
            let _ = self.stream.send(&[]);
        }
    }

    /// Closes the presence channel (our goodbye); the caller then flushes
    /// and closes the socket.
    pub fn goodbye(&mut self) {
        if let Some(session) = &mut self.session {
            session.close();
        }
        let _ = self.pump_session();
    }

    /// Everything to write to the socket so far, if anything.
    pub fn transmit(&mut self) -> Option<Vec<u8>> {
        self.stream.transmit()
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> usize {
        self.stream.pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(key: u8) -> LinkSettings {
        LinkSettings {
            core_key: [key; 32],
            extension: "hyper-presence".into(),
            max_frame: 1 << 20,
        }
    }

    /// Moves bytes both ways until neither side has anything to send.
    fn exchange(a: &mut Link, b: &mut Link) -> Result<(), LinkError> {
        loop {
            let mut moved = false;
            if let Some(bytes) = a.transmit() {
                b.receive(&bytes)?;
                moved = true;
            }
            if let Some(bytes) = b.transmit() {
                a.receive(&bytes)?;
                moved = true;
            }
            if !moved {
                return Ok(());
            }
        }
    }

    fn events(link: &mut Link) -> Vec<LinkEvent> {
        std::iter::from_fn(|| link.poll_event()).collect()
    }

    #[test]
    fn two_links_authenticate_each_other_and_carry_packets_both_ways() {
        let (alice, bob) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
        let mut a = Link::new(true, &alice, settings(7)).unwrap();
        let mut b = Link::new(false, &bob, settings(7)).unwrap();
        exchange(&mut a, &mut b).unwrap();
        assert_eq!(events(&mut a), vec![LinkEvent::Ready(bob.id())]);
        assert_eq!(events(&mut b), vec![LinkEvent::Ready(alice.id())]);
        a.send_packets([&b"one"[..], b"two"]).unwrap();
        b.send_packets([&b"three"[..]]).unwrap();
        exchange(&mut a, &mut b).unwrap();
        let got: Vec<LinkEvent> = events(&mut b);
        assert_eq!(
            got,
            vec![
                LinkEvent::Packet(bytes::Bytes::from_static(b"one")),
                LinkEvent::Packet(bytes::Bytes::from_static(b"two"))
            ]
        );
        assert_eq!(
            events(&mut a),
            vec![LinkEvent::Packet(bytes::Bytes::from_static(b"three"))]
        );
        a.goodbye();
        exchange(&mut a, &mut b).unwrap();
        assert_eq!(events(&mut b), vec![LinkEvent::Goodbye]);
        assert!(!a.is_ready());
    }

    /// The framing crate we used before froze on frames over 64 KiB.
    #[test]
    fn packets_larger_than_64_kib_pass_once_ready() {
        let (alice, bob) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
        let mut a = Link::new(true, &alice, settings(7)).unwrap();
        let mut b = Link::new(false, &bob, settings(7)).unwrap();
        exchange(&mut a, &mut b).unwrap();
        events(&mut a);
        events(&mut b);
        let big = vec![7u8; 200 * 1024];
        a.send_packets([&big[..]]).unwrap();
        // In small reads, as a socket delivers them.
        let bytes = a.transmit().unwrap();
        for chunk in bytes.chunks(1500) {
            b.receive(chunk).unwrap();
        }
        assert_eq!(events(&mut b), vec![LinkEvent::Packet(big.into())]);
    }

    #[test]
    fn a_peer_with_another_key_never_becomes_ready() {
        let (alice, bob) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
        let mut a = Link::new(true, &alice, settings(7)).unwrap();
        let mut b = Link::new(false, &bob, settings(8)).unwrap();
        let result = exchange(&mut a, &mut b);
        assert!(
            matches!(result, Err(LinkError::Channel(_))),
            "the channel open is refused: {result:?}"
        );
        assert!(!events(&mut a)
            .iter()
            .any(|e| matches!(e, LinkEvent::Ready(_))));
        assert!(!events(&mut b)
            .iter()
            .any(|e| matches!(e, LinkEvent::Ready(_))));
    }

    #[test]
    fn a_link_to_ourselves_is_refused() {
        let alice = Identity::from_seed([1; 32]);
        let mut a = Link::new(true, &alice, settings(7)).unwrap();
        let mut b = Link::new(false, &alice, settings(7)).unwrap();
        assert!(matches!(
            exchange(&mut a, &mut b),
            Err(LinkError::Ourselves)
        ));
    }

    #[test]
    fn before_the_channel_opens_a_large_frame_ends_the_link() {
        let (alice, bob) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
        let mut a = Link::new(true, &alice, settings(7)).unwrap();
        let mut b = Link::new(false, &bob, settings(7)).unwrap();
        // Complete the Noise handshake only: F1, F2, F3 and the headers.
        b.receive(&a.transmit().unwrap()).unwrap();
        a.receive(&b.transmit().unwrap()).unwrap();
        // a has queued F3 and its header (its open waits for b's header);
        // b reads them, authenticates a, and has not seen a's open.
        b.receive(&a.transmit().unwrap()).unwrap();
        assert_eq!(b.peer(), Some(alice.id()));
        assert!(!events(&mut b)
            .iter()
            .any(|e| matches!(e, LinkEvent::Ready(_))));
        // A frame announcing more than the unproven bound is refused at
        // its length prefix, before any of it is buffered.
        let len = (MAX_FRAME_UNPROVEN + 1) as u32;
        let prefix = [len as u8, (len >> 8) as u8, (len >> 16) as u8];
        assert!(matches!(
            b.receive(&prefix),
            Err(LinkError::Stream(StreamError::FrameTooLarge(_)))
        ));
    }
}
