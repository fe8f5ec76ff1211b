//! Dialling the peers discovery finds: one task per found peer, which dials
//! its addresses with backoff while we have no link to it, and ends when the
//! record goes away.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::{serve, Inner};
use crate::net::connection::Ending;
use crate::net::discovery::Discovery;
use crate::proto::PeerId;

/// Found peers we dial at once; more records wait until one goes away (a
/// LAN that floods us with invented peers costs a bounded table).
pub(super) const MAX_FOUND: usize = 256;

/// How long the peer with the larger id waits for the other to dial before
/// it dials itself: when both find each other at once, one link is made
/// instead of two that the one-link rule must settle.
const DEFER: Duration = Duration::from_secs(2);

/// A TCP connect that takes longer than this is given up (a record may
/// carry addresses from networks we cannot reach).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Takes discovery messages until shutdown, keeping one dialler per found
/// peer.
pub(super) async fn found_loop(inner: Arc<Inner>, mut found: mpsc::Receiver<Discovery>) {
    let mut stop = inner.shutdown.subscribe();
    let mut peers: HashMap<PeerId, watch::Sender<Vec<SocketAddr>>> = HashMap::new();
    loop {
        let message = tokio::select! {
            m = found.recv() => match m {
                Some(m) => m,
                None => return,
            },
            _ = stop.changed() => return,
        };
        // Diallers that ended (shutdown, or someone else answered) leave.
        peers.retain(|_, addrs| !addrs.is_closed());
        match message {
            Discovery::Found(peer) => {
                if let Some(addrs) = peers.get(&peer.id) {
                    addrs.send_if_modified(|old| {
                        let changed = *old != peer.addrs;
                        *old = peer.addrs.clone();
                        changed
                    });
                } else if peers.len() < MAX_FOUND {
                    let (tx, rx) = watch::channel(peer.addrs);
                    peers.insert(peer.id, tx);
                    tokio::spawn(dial_found(inner.clone(), peer.id, rx));
                } else {
                    tracing::debug!(peer = %peer.id.short(), "too many found peers, one ignored");
                }
            }
            // Dropping the sender ends its dialler.
            Discovery::Lost(id) => {
                peers.remove(&id);
            }
        }
    }
}

/// Dials `peer` at its latest addresses while we have no link to it.
async fn dial_found(inner: Arc<Inner>, peer: PeerId, mut addrs: watch::Receiver<Vec<SocketAddr>>) {
    let mut stop = inner.shutdown.subscribe();
    let us = inner.settings.identity.id();
    let mut backoff = Duration::from_millis(100);
    loop {
        tokio::select! {
            _ = inner.until_unlinked(&peer) => {}
            _ = stop.changed() => return,
            gone = addrs.changed() => if gone.is_err() { return },
        }
        if inner.linked(&peer) {
            continue;
        }
        if us > peer {
            tokio::select! {
                _ = tokio::time::sleep(DEFER) => {}
                _ = stop.changed() => return,
                gone = addrs.changed() => if gone.is_err() { return },
            }
            if inner.linked(&peer) {
                continue;
            }
        }
        let targets = addrs.borrow_and_update().clone();
        for addr in targets {
            let stream = tokio::select! {
                s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)) => s,
                _ = stop.changed() => return,
            };
            let Ok(Ok(stream)) = stream else { continue };
            let (ending, answered) = serve(inner.clone(), stream, true, None).await;
            if ending == Ending::Shutdown {
                return;
            }
            match answered {
                Some(id) if id == peer => {
                    backoff = Duration::from_millis(100);
                    break;
                }
                // The record lied, or the address now belongs to someone
                // else: whoever it is, we have met them; stop dialling.
                Some(other) => {
                    tracing::debug!(claimed = %peer.short(), answered = %other.short(), "found peer answered as another");
                    return;
                }
                None => {}
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
            gone = addrs.changed() => if gone.is_err() { return },
        }
        backoff = (backoff * 2).min(inner.redial_max);
    }
}
