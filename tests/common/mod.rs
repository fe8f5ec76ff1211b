//! What the network test files share: waiting on a node's events, sorting
//! ids, and a client `Link` for hand-driven connections.

use std::net::SocketAddr;
use std::time::Duration;

use hyper_presence::net::link::{Link, LinkSettings};
use hyper_presence::net::Identity;
use hyper_presence::proto::{Event, PeerId};
use serde_json::Value;
use tokio::sync::broadcast;

/// How long any one wait may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Any free port on loopback.
pub fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Waits, event by event, until `done` holds; fails after `PATIENCE`.
pub async fn until(
    events: &mut broadcast::Receiver<Event<Value>>,
    what: &str,
    mut done: impl FnMut() -> bool,
) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => panic!("{what}: events closed"),
            Err(_) => panic!("{what}: not within {PATIENCE:?}"),
        }
    }
}

/// `ids`, sorted, as `Node::online` lists them.
pub fn sorted(mut ids: Vec<PeerId>) -> Vec<PeerId> {
    ids.sort();
    ids
}

/// A dialling client link for the core key `key`.
pub fn client_link(key: [u8; 32], identity: &Identity) -> Link {
    let settings = LinkSettings {
        core_key: key,
        extension: "hyper-presence".into(),
        max_frame: 1 << 20,
    };
    Link::new(true, identity, settings).unwrap()
}
