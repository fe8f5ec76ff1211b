//! One connection: TCP, framing, Noise, a hypercore-protocol channel for the
//! topic, the signed hello, then presence packets both ways until the
//! connection ends, however it ends.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use hypercore_handshake::{Cipher, HandshakePattern};
use hypercore_protocol::schema::Extension;
use hypercore_protocol::{Channel, ChannelReceiver, Event, Message, Protocol};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{interval, Instant, MissedTickBehavior};

use super::framing::{CloseReason, Frames};
use super::hello;
use super::identity::Identity;
use crate::proto::PeerId;

/// Packets waiting for one connection. A peer that lets this many pile up
/// is too slow to keep: its connection is closed, and the view exchange on
/// reconnection makes up for what it missed.
pub const OUTBOX: usize = 1024;

/// What every connection of a node shares.
#[derive(Debug)]
pub struct Settings {
    /// Our identity.
    pub identity: Identity,
    /// The topic key: only peers that know it get a channel.
    pub key: [u8; 32],
    /// Extension name of presence packets; hello, heartbeat and goodbye use
    /// `NAME/hello`, `NAME/heartbeat`, `NAME/bye`.
    pub extension: String,
    /// A connection on which nothing arrives for this long is closed.
    pub silence_timeout: Duration,
    /// A connection that has not proven its peer's id by then is closed.
    pub hello_timeout: Duration,
}

/// What a connection tells the node.
pub trait Hub: Send + Sync + 'static {
    /// The peer proved it is `peer`; send its packets into `outbox`.
    fn up(&self, conn: u64, peer: PeerId, outbox: mpsc::Sender<Bytes>);
    /// A presence packet arrived on `conn`.
    fn packet(&self, conn: u64, packet: Bytes);
    /// `conn` ended; `goodbye` when the peer said it was leaving.
    fn down(&self, conn: u64, goodbye: bool);
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The byte stream ended (closed, reset, failed).
    Stream(CloseReason),
    /// The peer said goodbye.
    Goodbye,
    /// We were told to stop.
    Shutdown,
    /// Nothing arrived for the silence timeout.
    Silent,
    /// No valid hello in time, or a wrong one.
    Unproven(String),
    /// The Noise or protocol layer failed.
    Protocol(String),
}

/// What the protocol-driving task reports.
enum Driven {
    /// The channel for our topic opened; both Noise keys are known by then.
    Channel {
        channel: Channel,
        local: [u8; 32],
        remote: [u8; 32],
    },
    Ended(String),
}

struct Names {
    presence: String,
    hello: String,
    heartbeat: String,
    bye: String,
}

/// How a node stops, as its connections see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Running.
    No,
    /// Say goodbye, then close: peers announce our departure at once.
    Leave,
    /// Close without a word, as a crash would (for tests and the demo).
    Vanish,
}

/// Runs one connection to its end. A change of `stop` makes us close,
/// saying goodbye first if asked to.
pub async fn run(
    stream: TcpStream,
    initiator: bool,
    conn: u64,
    settings: Arc<Settings>,
    hub: Arc<dyn Hub>,
    mut stop: tokio::sync::watch::Receiver<Stop>,
) -> Ending {
    let _ = stream.set_nodelay(true);
    let (frames, mut closed) = Frames::new(stream);
    let io = Some(Box::new(frames) as Box<_>);
    let cipher = if initiator {
        Cipher::new_dht_init_with_pattern(io, HandshakePattern::XX, None, &[])
    } else {
        let keypair = settings.identity.noise_keypair();
        Cipher::resp_from_private_with_pattern(io, &keypair, HandshakePattern::XX, &[])
    };
    let cipher = match cipher {
        Ok(c) => c,
        Err(e) => return Ending::Protocol(e.to_string()),
    };
    let protocol = Protocol::new(Box::new(cipher));

    // The protocol is polled in a task of its own so that it keeps moving
    // bytes while this one waits to queue a send. A panic in the layers
    // below (the cipher has `todo!`s) ends that task, which ends this
    // connection and nothing else.
    let (driven_tx, mut driven) = mpsc::channel(16);
    let driver = tokio::spawn(drive(protocol, settings.key, driven_tx));
    let ending = talk(conn, &settings, &hub, &mut closed, &mut driven, &mut stop).await;
    driver.abort();
    ending
}

async fn drive(mut protocol: Protocol, key: [u8; 32], out: mpsc::Sender<Driven>) {
    while let Some(event) = protocol.next().await {
        let report = match event {
            // hypercore-protocol 0.7.2 computes the channel capability from
            // the handshake hash when the open command is processed, and
            // sends none (or panics on accepting) if the handshake is not
            // finished by then; so the channel is only opened once it is.
            Ok(Event::Handshake(_)) => {
                if let Err(e) = protocol.open(key).await {
                    Driven::Ended(e.to_string())
                } else {
                    continue;
                }
            }
            Ok(Event::Channel(channel)) => match protocol.remote_public_key() {
                Some(remote) => Driven::Channel {
                    channel,
                    local: protocol.public_key(),
                    remote,
                },
                None => Driven::Ended("channel without a remote key".into()),
            },
            Ok(Event::Close(_)) => Driven::Ended("channel closed".into()),
            Ok(_) => continue,
            Err(e) => Driven::Ended(e.to_string()),
        };
        let ended = matches!(report, Driven::Ended(_));
        if out.send(report).await.is_err() || ended {
            return;
        }
    }
    let _ = out
        .send(Driven::Ended("protocol stream ended".into()))
        .await;
}

async fn talk(
    conn: u64,
    settings: &Settings,
    hub: &Arc<dyn Hub>,
    closed: &mut super::framing::Closed,
    driven: &mut mpsc::Receiver<Driven>,
    stop: &mut tokio::sync::watch::Receiver<Stop>,
) -> Ending {
    let names = Names {
        presence: settings.extension.clone(),
        hello: format!("{}/hello", settings.extension),
        heartbeat: format!("{}/heartbeat", settings.extension),
        bye: format!("{}/bye", settings.extension),
    };
    let started = Instant::now();
    let mut keys: Option<([u8; 32], [u8; 32])> = None;
    let mut channel: Option<Channel> = None;
    let mut inbound: Option<ChannelReceiver<Message>> = None;
    let mut peer: Option<PeerId> = None;
    let (outbox_tx, mut outbox) = mpsc::channel::<Bytes>(OUTBOX);
    let mut outbox_tx = Some(outbox_tx);
    let mut last_heard = Instant::now();
    let mut beat = interval((settings.silence_timeout / 4).max(Duration::from_millis(10)));
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);

    let ending = loop {
        tokio::select! {
            reason = closed.wait() => break Ending::Stream(reason),
            _ = stop.changed() => {
                let leave = *stop.borrow() == Stop::Leave;
                if let (true, Some(ch)) = (leave, &channel) {
                    let _ = ch.send(extension(&names.bye, Vec::new())).await;
                    // Let the goodbye leave before the socket goes.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                break Ending::Shutdown;
            }
            report = driven.recv() => match report {
                Some(Driven::Channel { channel: mut ch, local, remote }) => {
                    keys = Some((local, remote));
                    inbound = ch.take_receiver();
                    let ours = hello::make(&settings.identity, &local, &remote);
                    if ch.send(extension(&names.hello, ours)).await.is_err() {
                        break Ending::Protocol("cannot send hello".into());
                    }
                    channel = Some(ch);
                }
                Some(Driven::Ended(why)) => break Ending::Protocol(why),
                None => break Ending::Protocol("protocol task ended".into()),
            },
            message = next_inbound(&mut inbound) => {
                let Some(message) = message else {
                    break Ending::Protocol("channel receiver closed".into());
                };
                last_heard = Instant::now();
                let Message::Extension(Extension { name, message }) = message else {
                    continue;
                };
                if name == names.presence {
                    if peer.is_some() {
                        hub.packet(conn, Bytes::from(message));
                    }
                } else if name == names.hello {
                    if peer.is_some() {
                        continue;
                    }
                    let Some((local, remote)) = keys else { continue };
                    match hello::check(&message, &local, &remote) {
                        Ok(id) if id == settings.identity.id() => {
                            break Ending::Unproven("connected to ourselves".into());
                        }
                        Ok(id) => {
                            peer = Some(id);
                            if let Some(tx) = outbox_tx.take() {
                                hub.up(conn, id, tx);
                            }
                        }
                        Err(e) => break Ending::Unproven(e.to_string()),
                    }
                } else if name == names.bye {
                    break Ending::Goodbye;
                }
            }
            packet = outbox.recv(), if peer.is_some() => {
                let (Some(packet), Some(ch)) = (packet, &channel) else {
                    break Ending::Protocol("node dropped the connection".into());
                };
                if ch.send(extension(&names.presence, packet.to_vec())).await.is_err() {
                    break Ending::Protocol("channel closed".into());
                }
            }
            _ = beat.tick() => {
                if peer.is_none() && started.elapsed() > settings.hello_timeout {
                    break Ending::Unproven("no hello in time".into());
                }
                if last_heard.elapsed() > settings.silence_timeout {
                    break Ending::Silent;
                }
                if let Some(ch) = &channel {
                    // Writing is also how a dead socket is found: the
                    // cipher only reports a lost peer on a write.
                    let _ = ch.send(extension(&names.heartbeat, Vec::new())).await;
                }
            }
        }
    };
    if peer.is_some() {
        hub.down(conn, ending == Ending::Goodbye);
    }
    ending
}

fn extension(name: &str, message: Vec<u8>) -> Message {
    Message::Extension(Extension {
        name: name.to_owned(),
        message,
    })
}

async fn next_inbound(inbound: &mut Option<ChannelReceiver<Message>>) -> Option<Message> {
    match inbound {
        Some(rx) => rx.recv().await.ok(),
        None => std::future::pending().await,
    }
}
