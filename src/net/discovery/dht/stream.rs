//! One DHT stream's task: a `hyperdht` [`Connection`] (encrypted messages
//! over UDX) driven through the identity [`Gate`] into the node, with the
//! same clocks and bounds as a TCP connection ([`crate::net::connection`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hypercore_handshake::CipherEvent;
use hyperdht::Connection;
use tokio::sync::{mpsc, watch};
use tokio::time::{interval, Instant, MissedTickBehavior};

use super::gate::{Gate, GateError, GateEvent};
use crate::net::connection::{Hub, Settings, Stop, OUTBOX};

/// Packets taken from the outbox into one batch at most.
const BATCH: usize = 64;

/// How a DHT stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnding {
    /// The stream ended or failed below us.
    Io(String),
    /// The stream is not usable: no handshake hash or remote key.
    Unusable,
    /// The gate closed it (foreign peer, bad proof, channel error).
    Gate(GateError),
    /// The remote said goodbye.
    Goodbye,
    /// We are stopping.
    Shutdown,
    /// Nothing arrived for the silence timeout.
    Silent,
    /// Presence did not open in time.
    Unproven,
    /// The node dropped the link (its outbox overflowed).
    Dropped,
}

/// Runs one DHT stream to its end. `dialled` is the key we dialled, `None`
/// for a stream we accepted. Returns how it ended and whether presence was
/// up on it.
pub async fn run(
    mut stream: Connection,
    dialled: Option<[u8; 32]>,
    conn: u64,
    settings: Arc<Settings>,
    hub: Arc<dyn Hub>,
    mut stop: watch::Receiver<Stop>,
) -> (StreamEnding, bool) {
    // A stream taken as the node stops would otherwise miss the stop (see
    // `connection::run`).
    if *stop.borrow_and_update() != Stop::No {
        return (StreamEnding::Shutdown, false);
    }
    // An accepted stream of hyperdht 0.1.1 polls the DHT's RPC socket
    // whenever it is polled, to flush its handshake reply, and drops every
    // event it drains: requests to our DHT node (relayed handshakes of
    // other peers among them) would be lost while the stream lives. The
    // reply is flushed before the stream is handed over, so take that away.
    if let Ok(mut inner) = stream.inner.write() {
        inner.rpc = None;
    }
    let Some(handshake_hash) = stream
        .handshake_hash()
        .and_then(|h| <[u8; 64]>::try_from(h).ok())
    else {
        return (StreamEnding::Unusable, false);
    };
    let Some(remote_key) = dialled.or_else(|| stream.get_remote_static()) else {
        return (StreamEnding::Unusable, false);
    };
    let mut gate = Gate::new(
        &settings.identity,
        dialled.is_some(),
        remote_key,
        handshake_hash,
        settings.key,
        &settings.extension,
    );
    let (outbox_tx, mut outbox) = mpsc::channel::<Bytes>(OUTBOX);
    let mut outbox_tx = Some(outbox_tx);
    let mut up = false;
    let mut down = Down {
        hub: &hub,
        conn,
        up: false,
        goodbye: false,
    };
    let started = Instant::now();
    let mut last_heard = started;
    let mut last_sent = started;
    let mut clock = interval(Duration::from_millis(250));
    clock.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut batch: Vec<Bytes> = Vec::with_capacity(BATCH);

    let ending = loop {
        // A write waits while the peer's window is full, and a peer that
        // died without a word (UDP has no reset) never opens it again: a
        // write that takes the silence timeout ends the stream, or the
        // silence check below would never run.
        let write = async {
            while let Some(frame) = gate.poll_frame() {
                stream.feed(frame).await?;
                last_sent = Instant::now();
            }
            stream.flush().await
        };
        match tokio::time::timeout(settings.silence_timeout, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => break StreamEnding::Io(e.to_string()),
            Err(_) => break StreamEnding::Silent,
        }
        tokio::select! {
            event = stream.next() => match event {
                Some(CipherEvent::Message(message)) => {
                    last_heard = Instant::now();
                    if let Err(e) = gate.receive(Bytes::from(message)) {
                        break StreamEnding::Gate(e);
                    }
                    let mut goodbye = false;
                    while let Some(event) = gate.poll_event() {
                        match event {
                            GateEvent::Ready(peer) => {
                                if let Some(tx) = outbox_tx.take() {
                                    up = true;
                                    down.up = true;
                                    hub.up(conn, peer, dialled.is_some(), tx);
                                }
                            }
                            GateEvent::Packet(p) => {
                                if up {
                                    hub.packet(conn, p);
                                }
                            }
                            GateEvent::Goodbye => goodbye = true,
                        }
                    }
                    if goodbye {
                        break StreamEnding::Goodbye;
                    }
                }
                Some(CipherEvent::HandshakePayload(_)) => last_heard = Instant::now(),
                Some(CipherEvent::ErrStuff(e)) => break StreamEnding::Io(e.to_string()),
                None => break StreamEnding::Io("stream ended".into()),
            },
            first = outbox.recv(), if up => {
                let Some(first) = first else { break StreamEnding::Dropped };
                batch.push(first);
                while batch.len() < BATCH {
                    match outbox.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                let sent = gate.send_packets(batch.iter().map(|p| &p[..]));
                batch.clear();
                if let Err(e) = sent {
                    break StreamEnding::Gate(e);
                }
            }
            _ = clock.tick() => {
                if !up && started.elapsed() > settings.handshake_timeout {
                    break StreamEnding::Unproven;
                }
                if last_heard.elapsed() > settings.silence_timeout {
                    break StreamEnding::Silent;
                }
                if last_sent.elapsed() >= settings.keep_alive {
                    // An empty message is a keep-alive to secret-stream.
                    let sent = tokio::time::timeout(settings.silence_timeout, stream.send(Vec::new()));
                    match sent.await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break StreamEnding::Io("keep-alive failed".into()),
                        Err(_) => break StreamEnding::Silent,
                    }
                    last_sent = Instant::now();
                }
            }
            _ = stop.changed() => break StreamEnding::Shutdown,
        }
    };
    if ending == StreamEnding::Shutdown && *stop.borrow() == Stop::Leave && gate.is_ready() {
        gate.goodbye();
        while let Some(frame) = gate.poll_frame() {
            let _ = stream.feed(frame).await;
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), stream.flush()).await;
    }
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.close()).await;
    down.goodbye = ending == StreamEnding::Goodbye;
    drop(down);
    (ending, up)
}

/// Tells the node a link that was up is down when dropped: at the end of
/// [`run`], and also when the crates below panic in the middle of it
/// (`hypercore_handshake` 0.6.0 hits a `todo!()` when UDX times out a
/// stream whose peer died), so a dead peer never stays linked.
struct Down<'a> {
    hub: &'a Arc<dyn Hub>,
    conn: u64,
    up: bool,
    goodbye: bool,
}

impl Drop for Down<'_> {
    fn drop(&mut self) {
        if self.up {
            self.hub.down(self.conn, self.goodbye);
        }
    }
}
