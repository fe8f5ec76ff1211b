//! A running presence peer on the network: listeners, diallers,
//! connections, timers, and the engine they all feed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::connection::{self, Ending, Hub, Settings, Stop};
#[cfg(feature = "dht")]
use super::discovery::dht::Host;
use super::discovery::mdns::Mdns;
use crate::proto::{Destination, Event, Json, Output, PeerId, Presence, SetDataError};

mod builder;
mod found;

pub use builder::{topic_key, NodeBuilder, NodeError};

/// A running presence peer. Cheap to clone; every clone is the same node.
#[derive(Debug, Clone)]
pub struct Node {
    inner: Arc<Inner>,
    listen_addrs: Arc<Vec<SocketAddr>>,
}

impl Node {
    /// Starts setting up a node.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::new()
    }

    /// Our id.
    pub fn id(&self) -> PeerId {
        self.inner.settings.identity.id()
    }

    /// The addresses we listen on, with the ports actually bound.
    pub fn listen_addrs(&self) -> &[SocketAddr] {
        &self.listen_addrs
    }

    /// Every online peer, us included, sorted.
    pub fn online(&self) -> Vec<PeerId> {
        self.inner.lock().engine.online()
    }

    /// How many peers are online, us included.
    pub fn online_count(&self) -> usize {
        self.inner.lock().engine.online_count()
    }

    /// Connections that are up (authenticated, on the topic): one per
    /// linked peer once duplicates are settled (see the one-link rule in
    /// docs/NETWORK.md).
    pub fn connection_count(&self) -> usize {
        self.inner.lock().conns.len()
    }

    /// The data `id` advertises, if known.
    pub fn peer_data(&self, id: &PeerId) -> Option<Value> {
        self.inner.lock().engine.peer_data(id)
    }

    /// Every online peer (us included, sorted) with the data it advertises,
    /// read at one instant.
    pub fn snapshot(&self) -> Vec<(PeerId, Option<Value>)> {
        let state = self.inner.lock();
        let online = state.engine.online();
        online
            .into_iter()
            .map(|id| {
                let data = state.engine.peer_data(&id);
                (id, data)
            })
            .collect()
    }

    /// The data we advertise.
    pub fn data(&self) -> Value {
        self.inner.lock().engine.data().clone()
    }

    /// Changes the data we advertise.
    pub fn set_data(&self, data: Value) -> Result<(), SetDataError> {
        let now = self.inner.now();
        let mut state = self.inner.lock();
        state.engine.set_data(now, data)?;
        self.inner.dispatch(&mut state);
        Ok(())
    }

    /// Dials `addr` now and redials it with backoff whenever the link is lost,
    /// until shutdown.
    pub fn connect(&self, addr: SocketAddr) {
        tokio::spawn(dial_loop(self.inner.clone(), addr));
    }

    /// Every event from now on, as a stream. A reader that falls more than
    /// 4,096 events behind skips the oldest; use [`Node::subscribe`] to be
    /// told when that happens.
    pub fn events(&self) -> impl Stream<Item = Event<Value>> + Send + Unpin + 'static {
        let rx = self.inner.events.subscribe();
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }))
    }

    /// Every event from now on, as a broadcast receiver that reports how many
    /// events a slow reader missed.
    pub fn subscribe(&self) -> broadcast::Receiver<Event<Value>> {
        self.inner.events.subscribe()
    }

    /// Says goodbye on every connection and stops: neighbours announce our
    /// departure at once instead of after a timeout.
    pub async fn shutdown(&self) {
        self.stop(Stop::Leave).await;
    }

    /// Stops without a goodbye, as if the process had been killed: what
    /// neighbours see is their connections closing.
    pub async fn vanish(&self) {
        self.stop(Stop::Vanish).await;
    }

    /// Tells every task to stop, then waits (at most a second) until every
    /// connection has ended, goodbyes sent.
    async fn stop(&self, how: Stop) {
        let _ = self.inner.shutdown.send(how);
        let mdns = self
            .inner
            .mdns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(mdns) = mdns {
            mdns.stop(how == Stop::Leave);
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let idle = self.inner.idle.notified();
            if self.inner.active.load(Ordering::Acquire) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return;
            }
        }
    }
}

#[derive(Debug)]
struct Conn {
    peer: PeerId,
    /// Whether we dialled it.
    initiator: bool,
    outbox: mpsc::Sender<Bytes>,
}

/// Which of two connections to one peer to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Older,
    Newer,
    Both,
}

/// One link per peer, whichever way it was found: of two connections to
/// `peer`, keep the one dialled by the smaller id. Both ends reach the same
/// answer whatever order the connections came up in, so they close the same
/// one. When one side dialled both, it closes the newer and the other side
/// keeps both until then (it cannot tell which is newer).
fn keep(us: PeerId, peer: PeerId, older_initiator: bool, newer_initiator: bool) -> Keep {
    let dialler = |initiator: bool| if initiator { us } else { peer };
    let (older, newer) = (dialler(older_initiator), dialler(newer_initiator));
    if older != newer {
        return if older < newer {
            Keep::Older
        } else {
            Keep::Newer
        };
    }
    if older == us {
        Keep::Older
    } else {
        Keep::Both
    }
}

#[derive(Debug)]
struct State {
    engine: Presence<Json>,
    conns: HashMap<u64, Conn>,
}

#[derive(Debug)]
struct Inner {
    start: Instant,
    state: Mutex<State>,
    events: broadcast::Sender<Event<Value>>,
    timer: Notify,
    next_conn: AtomicU64,
    /// Connection tasks running, and a wake-up when one ends.
    active: AtomicUsize,
    idle: Notify,
    /// Woken when a connection goes down.
    links_changed: Notify,
    shutdown: watch::Sender<Stop>,
    /// Permits for accepted connections still in their handshake.
    handshakes: Arc<Semaphore>,
    settings: Arc<Settings>,
    redial_max: Duration,
    /// Our mDNS registration, dropped (a goodbye record) when we stop.
    mdns: Mutex<Option<Mdns>>,
}

impl Inner {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves the engine as it
        // was between two inputs, which is consistent: keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Carries out everything the engine queued, then wakes the timer task
    /// (the next deadline may have moved).
    fn dispatch(&self, state: &mut State) {
        loop {
            let outputs: Vec<Output<Value>> = state.engine.drain_outputs().collect();
            if outputs.is_empty() {
                break;
            }
            for output in outputs {
                match output {
                    Output::Send { to, packet } => {
                        for peer in send(state, &to, &packet) {
                            // Its connection is gone as far as we are concerned.
                            state.engine.peer_disconnected(self.now(), peer);
                        }
                    }
                    Output::Event(event) => {
                        let _ = self.events.send(event);
                    }
                }
            }
        }
        self.timer.notify_one();
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow() != Stop::No
    }

    /// Whether some connection to `peer` is up.
    fn linked(&self, peer: &PeerId) -> bool {
        self.lock().conns.values().any(|c| c.peer == *peer)
    }

    /// Waits until no connection to `peer` is up.
    async fn until_unlinked(&self, peer: &PeerId) {
        loop {
            let changed = self.links_changed.notified();
            if !self.linked(peer) {
                return;
            }
            changed.await;
        }
    }
}

/// Sends over one connection per peer. A connection whose outbox is full is
/// taken out of the table, which ends its task (the peer resyncs when it
/// reconnects); its peer is returned so the engine can count it closed.
fn send(state: &mut State, to: &Destination, packet: &Bytes) -> Vec<PeerId> {
    let mut chosen: HashMap<PeerId, u64> = HashMap::new();
    for (id, conn) in &state.conns {
        let wanted = match to {
            Destination::Peer(p) => conn.peer == *p,
            Destination::Broadcast { except } => Some(conn.peer) != *except,
        };
        if wanted {
            let slot = chosen.entry(conn.peer).or_insert(*id);
            *slot = (*slot).min(*id);
        }
    }
    let mut dropped = Vec::new();
    for id in chosen.into_values() {
        if let Some(conn) = state.conns.get(&id) {
            if conn.outbox.try_send(packet.clone()).is_err() {
                tracing::warn!(peer = %conn.peer.short(), "outbox full, dropping the connection");
                dropped.push(conn.peer);
                state.conns.remove(&id);
            }
        }
    }
    dropped
}

impl Hub for Inner {
    fn up(&self, conn: u64, peer: PeerId, initiator: bool, outbox: mpsc::Sender<Bytes>) {
        let now = self.now();
        let us = self.settings.identity.id();
        let mut state = self.lock();
        let rivals: Vec<(u64, bool)> = state
            .conns
            .iter()
            .filter(|(_, c)| c.peer == peer)
            .map(|(id, c)| (*id, c.initiator))
            .collect();
        for (rival, rival_initiator) in rivals {
            match keep(us, peer, rival_initiator, initiator) {
                // Dropping its outbox ends the new connection's task.
                Keep::Older => {
                    tracing::debug!(peer = %peer.short(), conn, "second link to a peer, closed");
                    return;
                }
                Keep::Newer => {
                    tracing::debug!(peer = %peer.short(), conn = rival, "second link to a peer, closed");
                    state.conns.remove(&rival);
                    // Within the grace, so nobody hears of it: the new
                    // connection then starts with a view exchange, which
                    // mends whatever the old one lost in flight.
                    state.engine.peer_disconnected(now, peer);
                }
                Keep::Both => {}
            }
        }
        state.conns.insert(
            conn,
            Conn {
                peer,
                initiator,
                outbox,
            },
        );
        state.engine.peer_connected(now, peer);
        self.dispatch(&mut state);
    }

    fn packet(&self, conn: u64, packet: Bytes) {
        let now = self.now();
        let mut state = self.lock();
        let Some(peer) = state.conns.get(&conn).map(|c| c.peer) else {
            return;
        };
        state.engine.receive(now, peer, packet);
        self.dispatch(&mut state);
    }

    fn down(&self, conn: u64, goodbye: bool) {
        let now = self.now();
        let mut state = self.lock();
        // Not in the table when `send` dropped it; the engine was told then.
        let peer = match state.conns.remove(&conn) {
            Some(c) => c.peer,
            None => return,
        };
        if goodbye {
            state.engine.peer_left(now, peer);
        } else {
            state.engine.peer_disconnected(now, peer);
        }
        self.dispatch(&mut state);
        drop(state);
        self.links_changed.notify_waiters();
    }
}

#[cfg(feature = "dht")]
impl Host for Inner {
    fn settings(&self) -> Arc<Settings> {
        self.settings.clone()
    }

    fn linked(&self, peer: &PeerId) -> bool {
        self.lock().conns.values().any(|c| c.peer == *peer)
    }

    fn begin(&self) -> u64 {
        self.active.fetch_add(1, Ordering::AcqRel);
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    fn end(&self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
        self.idle.notify_waiters();
    }

    fn stopping(&self) -> watch::Receiver<Stop> {
        self.shutdown.subscribe()
    }
}

async fn timer_loop(inner: Arc<Inner>) {
    let mut stop = inner.shutdown.subscribe();
    loop {
        let deadline = inner.lock().engine.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(inner.start + at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {
                let now = inner.now();
                let mut state = inner.lock();
                state.engine.tick(now);
                inner.dispatch(&mut state);
            }
            _ = inner.timer.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    let mut stop = inner.shutdown.subscribe();
    loop {
        // A connection holds a permit until its peer is authenticated and
        // knows the topic, so strangers cannot pile up handshakes.
        let permit = tokio::select! {
            permit = inner.handshakes.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = stop.changed() => return,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve(inner.clone(), stream, false, Some(permit)));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, don't spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

async fn serve(
    inner: Arc<Inner>,
    stream: TcpStream,
    initiator: bool,
    permit: Option<OwnedSemaphorePermit>,
) -> (Ending, Option<PeerId>) {
    /// Counts the connection as running until dropped, even by a panic.
    struct Running<'a>(&'a Inner);
    impl Drop for Running<'_> {
        fn drop(&mut self) {
            self.0.active.fetch_sub(1, Ordering::AcqRel);
            self.0.idle.notify_waiters();
        }
    }
    inner.active.fetch_add(1, Ordering::AcqRel);
    let _running = Running(&inner);
    let conn = inner.next_conn.fetch_add(1, Ordering::Relaxed);
    let hub: Arc<dyn Hub> = inner.clone();
    let (ending, peer) = connection::run(
        stream,
        initiator,
        conn,
        inner.settings.clone(),
        hub,
        inner.shutdown.subscribe(),
        permit,
    )
    .await;
    tracing::debug!(conn, ?ending, "connection ended");
    (ending, peer)
}

async fn dial_loop(inner: Arc<Inner>, addr: SocketAddr) {
    let mut backoff = Duration::from_millis(100);
    let mut stop = inner.shutdown.subscribe();
    // Who answered at `addr` last time: while we are linked to it some other
    // way, dialling again would only make a second link to close.
    let mut answered: Option<PeerId> = None;
    while !inner.stopping() {
        if let Some(peer) = answered {
            tokio::select! {
                _ = inner.until_unlinked(&peer) => {}
                _ = stop.changed() => return,
            }
        }
        let began = Instant::now();
        let connected = tokio::select! {
            s = TcpStream::connect(addr) => s.ok(),
            _ = stop.changed() => return,
        };
        if let Some(stream) = connected {
            let (ending, peer) = serve(inner.clone(), stream, true, None).await;
            if ending == Ending::Shutdown {
                return;
            }
            answered = peer.or(answered);
            // A link that lived a while starts the backoff over.
            if began.elapsed() > Duration::from_secs(10) {
                backoff = Duration::from_millis(100);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(inner.redial_max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: u8) -> PeerId {
        PeerId::from_bytes([byte; 32])
    }

    #[test]
    fn both_ends_keep_the_same_one_of_two_links_in_either_order() {
        let (a, b) = (id(1), id(2));
        // Link 1 dialled by a, link 2 dialled by b. Each end may see them
        // come up in either order; all must keep the link a dialled.
        for (us, peer) in [(a, b), (b, a)] {
            let by_us_1 = us == a; // link 1: we dialled it iff we are a
            let by_us_2 = us == b;
            let first_then_second = keep(us, peer, by_us_1, by_us_2);
            let second_then_first = keep(us, peer, by_us_2, by_us_1);
            assert_eq!(first_then_second, Keep::Older, "us {us:?}");
            assert_eq!(second_then_first, Keep::Newer, "us {us:?}");
        }
    }

    #[test]
    fn the_side_that_dialled_twice_closes_the_newer_and_the_other_waits() {
        let (a, b) = (id(1), id(2));
        assert_eq!(keep(a, b, true, true), Keep::Older);
        assert_eq!(keep(b, a, false, false), Keep::Both);
        assert_eq!(keep(b, a, true, true), Keep::Older);
        assert_eq!(keep(a, b, false, false), Keep::Both);
    }
}
