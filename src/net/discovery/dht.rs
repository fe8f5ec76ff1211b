//! Finding peers on the HyperDHT, as JavaScript `swarm.join(discoveryKey)`
//! does: we announce the topic's discovery key with our identity key pair,
//! look it up, dial who we find and take the streams of who finds us.
//!
//! The DHT (the `hyperdht` crate, unstable) runs in a task of its own under
//! a supervisor: a panic in it (the crate has `todo!()`s reachable by any
//! remote) is logged, and a fresh DHT is started after a pause; the node's
//! links, TCP or DHT, keep running meanwhile. Streams are driven by
//! [`stream`], behind the identity [`gate`]; found peers are kept in the
//! bounded table of [`found`].

pub mod found;
pub mod gate;
pub mod probe_filter;
pub mod stream;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dht_rpc::{DhtConfig, IdBytes, Peer};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use hyperdht::adht::Dht;
use hyperdht::{Connection, Keypair};
use tokio::sync::watch;
use tokio::time::Instant;

use self::found::{Found, Outcome, MAX_DIALS, MAX_FOUND};
use crate::net::connection::{Hub, Settings, Stop};
use crate::net::transport::hash::discovery_key;
use crate::proto::PeerId;

/// The public HyperDHT bootstrap nodes, the default of `join`.
pub const PUBLIC_BOOTSTRAP: [&str; 3] = hyperdht::DEFAULT_BOOTSTRAP;

/// Settings of DHT discovery.
#[derive(Debug, Clone)]
pub struct DhtOptions {
    /// Nodes to bootstrap from. Empty: the public HyperDHT nodes.
    pub bootstrap: Vec<SocketAddr>,
    /// The UDP address the DHT binds (IPv4 only).
    pub bind: SocketAddr,
    /// Longest time between two announcements and two lookups; the first
    /// ones come sooner (1 s, then doubling up to this).
    pub refresh: Duration,
    /// Found peers remembered at most.
    pub max_found: usize,
    /// Dials under way at once, at most.
    pub max_dials: usize,
}

impl Default for DhtOptions {
    fn default() -> Self {
        DhtOptions {
            bootstrap: Vec::new(),
            bind: SocketAddr::from(([0, 0, 0, 0], 0)),
            refresh: Duration::from_secs(30),
            max_found: MAX_FOUND,
            max_dials: MAX_DIALS,
        }
    }
}

/// What DHT discovery needs of the node it finds peers for.
pub trait Host: Hub {
    /// The settings every connection of the node shares.
    fn settings(&self) -> Arc<Settings>;
    /// Whether a link to `peer` is up.
    fn linked(&self, peer: &PeerId) -> bool;
    /// Numbers a new connection and counts it as running.
    fn begin(&self) -> u64;
    /// A connection counted by [`begin`](Self::begin) ended.
    fn end(&self);
    /// Tells how the node is stopping.
    fn stopping(&self) -> watch::Receiver<Stop>;
}

/// Runs DHT discovery until the node stops, restarting the DHT whenever
/// it panics or fails.
pub async fn supervise(host: Arc<dyn Host>, options: DhtOptions) {
    let mut options = options;
    if options.bootstrap.is_empty() {
        options.bootstrap = resolve_public().await;
    }
    let found = Arc::new(Mutex::new(Found::new(options.max_found)));
    let mut stop = host.stopping();
    let mut pause = Duration::from_millis(500);
    loop {
        let run = tokio::spawn(run(host.clone(), options.clone(), found.clone()));
        let began = Instant::now();
        match run.await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => tracing::warn!("dht: {e}; starting it again"),
            Err(e) if e.is_panic() => {
                let payload = e.into_panic();
                let message = payload
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| payload.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                tracing::error!("dht task panicked: {message}; starting it again");
            }
            Err(_) => return,
        }
        if *stop.borrow() != Stop::No {
            return;
        }
        if began.elapsed() > Duration::from_secs(60) {
            pause = Duration::from_millis(500);
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// The public bootstrap nodes' addresses (IPv4, as the crate needs).
async fn resolve_public() -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for name in PUBLIC_BOOTSTRAP {
        match tokio::net::lookup_host(name).await {
            Ok(addrs) => out.extend(addrs.filter(SocketAddr::is_ipv4)),
            Err(e) => tracing::warn!("dht: cannot resolve {name}: {e}"),
        }
    }
    out
}

/// Why one run of the DHT ended other than by stopping.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("cannot start: {0}")]
    Start(String),
    #[error("its event stream ended")]
    Ended,
}

type Dial = futures::future::BoxFuture<'static, ([u8; 32], hyperdht::Result<Connection>)>;

/// One life of the DHT: bootstrap, listen, then announce, look up, dial
/// and accept until the node stops.
async fn run(
    host: Arc<dyn Host>,
    options: DhtOptions,
    found: Arc<Mutex<Found>>,
) -> Result<(), RunError> {
    let settings = host.settings();
    let mut stop = host.stopping();
    // The streams of a previous life keep its socket open, so after a
    // restart a fixed port may still be taken: take any port then.
    let config = match DhtConfig::default().bind(options.bind) {
        Ok(config) => config,
        Err(e) if options.bind.port() != 0 => {
            let any = SocketAddr::new(options.bind.ip(), 0);
            tracing::warn!("dht: cannot bind {}: {e}; binding {any}", options.bind);
            DhtConfig::default()
                .bind(any)
                .map_err(|e| RunError::Start(e.to_string()))?
        }
        Err(e) => return Err(RunError::Start(e.to_string())),
    }
    .set_bootstrap_nodes(&options.bootstrap);
    let mut dht = Dht::with_config(config)
        .await
        .map_err(|e| RunError::Start(e.to_string()))?;
    let keypair = Keypair::from_seed(settings.identity.seed());
    let mut server = dht.listen(keypair.clone());
    let topic = IdBytes(discovery_key(&settings.key));
    let us = settings.identity.id();
    tracing::info!(
        addr = ?dht.local_addr().ok(),
        bootstrap = ?options.bootstrap,
        "dht started"
    );
    // JavaScript peers' MTU probes would corrupt the `udx` crate's streams
    // (see probe_filter); without the filter those streams die early.
    match dht
        .local_addr()
        .map(|a| probe_filter::drop_padded_probes(a.port()))
    {
        Ok(Ok(n)) if n > 0 => {}
        other => tracing::warn!(?other, "dht: no MTU probe filter on the socket"),
    }
    let mut duplicates = Duplicates::default();
    let mut bootstrap = Some(dht.bootstrap());
    let mut announce: Option<hyperdht::adht::Announce> = None;
    let mut lookup: Option<hyperdht::adht::Lookup> = None;
    let mut dials: FuturesUnordered<Dial> = FuturesUnordered::new();
    let mut period = Duration::from_secs(1).min(options.refresh);
    let mut next_refresh = Instant::now();
    let mut retry = tokio::time::interval(Duration::from_millis(200));
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            request = dht.next() => match request {
                Some(Ok(_)) => {}
                // A remote's bad request: its problem, a log line for us.
                Some(Err(e)) => tracing::debug!("dht request refused: {e}"),
                None => return Err(RunError::Ended),
            },
            accepted = server.next() => match accepted {
                Some(Ok(stream)) => {
                    if let Some(stream) = duplicates.admit(stream, Instant::now()) {
                        spawn_stream(&host, &found, stream, None);
                    }
                }
                Some(Err(e)) => tracing::debug!("dht: incoming stream failed: {e}"),
                None => return Err(RunError::Ended),
            },
            done = async { bootstrap.as_mut().expect("guarded").await }, if bootstrap.is_some() => {
                bootstrap = None;
                match done {
                    Ok(_) => tracing::debug!("dht bootstrapped"),
                    Err(e) => tracing::warn!("dht bootstrap failed: {e}"),
                }
            }
            _ = tokio::time::sleep_until(next_refresh) => {
                if announce.is_none() {
                    announce = Some(dht.announce(topic, keypair.clone(), server.relay_addresses()));
                }
                if lookup.is_none() {
                    lookup = Some(dht.lookup(topic, dht_rpc::Commit::No).map_err(|e| RunError::Start(e.to_string()))?);
                }
                next_refresh = Instant::now() + period;
                period = (period * 2).min(options.refresh);
            }
            done = async { announce.as_mut().expect("guarded").await }, if announce.is_some() => {
                announce = None;
                if let Err(e) = done {
                    tracing::debug!("dht announce: {e}");
                }
            }
            item = async { lookup.as_mut().expect("guarded").next().await }, if lookup.is_some() => match item {
                Some(Ok(Some(reply))) => {
                    let via = reply.response.peer.addr;
                    let now = Instant::now().into_std();
                    let mut table = found.lock().unwrap_or_else(|p| p.into_inner());
                    for peer in reply.peers {
                        let key: [u8; 32] = *peer.public_key;
                        if PeerId::from_bytes(key) == us {
                            continue;
                        }
                        let mut relays: Vec<SocketAddr> =
                            peer.relay_addresses.iter().map(|a| SocketAddr::V4(*a)).collect();
                        relays.push(via);
                        // The higher key waits a little: the lower one
                        // dials, so two of ours rarely cross dials.
                        let delay = if us.as_bytes() > &key { Duration::from_secs(2) } else { Duration::ZERO };
                        table.offer(key, &relays, now, delay);
                    }
                }
                Some(Ok(None)) => {}
                Some(Err(e)) => tracing::debug!("dht: malformed lookup reply ignored: {e}"),
                None => lookup = None,
            },
            _ = retry.tick() => {
                let room = options.max_dials.saturating_sub(dials.len());
                if room > 0 {
                    let due = found
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .due(Instant::now().into_std(), room, |k| host.linked(&PeerId::from_bytes(*k)));
                    for (key, relays) in due {
                        let hints: Vec<Peer> = relays.into_iter().map(Peer::new).collect();
                        let connect = dht.connect(key.into(), Some(hints));
                        dials.push(
                            tokio::time::timeout(Duration::from_secs(10), connect)
                                .map(move |r| (key, r.unwrap_or(Err(hyperdht::Error::ConnectionFailed))))
                                .boxed(),
                        );
                    }
                }
            }
            Some((key, result)) = dials.next(), if !dials.is_empty() => match result {
                Ok(stream) => spawn_stream(&host, &found, stream, Some(key)),
                Err(e) => {
                    tracing::debug!(peer = %PeerId::from_bytes(key).short(), "dht dial failed: {e}");
                    found.lock().unwrap_or_else(|p| p.into_inner()).outcome(&key, Outcome::Failed, Instant::now().into_std());
                }
            },
        }
    }
}

/// Accepted streams that are copies of one handshake. A client may send
/// its handshake through several relays; JavaScript servers answer copies
/// of one Noise message with one stream, hyperdht 0.1.1 makes a stream per
/// copy, all aimed at the client's one UDX stream, and whichever of ours
/// writes second breaks it ("Invalid header received"). The crate does not
/// show the Noise message, so copies are known by the client's key arriving
/// again within [`DUPLICATE_WINDOW`] (copies arrive together; a retry after
/// a failed stream comes seconds later and must be served): the first
/// stream is served, the copies are kept unpolled (so they never write)
/// until they age out.
#[derive(Default)]
struct Duplicates {
    recent: std::collections::HashMap<[u8; 32], Instant>,
    parked: std::collections::VecDeque<(Instant, Connection)>,
}

/// How close together two accepted streams of one client key count as
/// copies of one handshake.
const DUPLICATE_WINDOW: Duration = Duration::from_millis(300);

/// How long a copy is kept unpolled, and how many at most.
const PARKED_FOR: Duration = Duration::from_secs(30);
const MAX_PARKED: usize = 64;

impl Duplicates {
    /// The stream to serve, or `None` for a copy (parked).
    fn admit(&mut self, stream: Connection, now: Instant) -> Option<Connection> {
        self.recent
            .retain(|_, at| now.duration_since(*at) < DUPLICATE_WINDOW);
        while self
            .parked
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > PARKED_FOR)
            || self.parked.len() >= MAX_PARKED
        {
            self.parked.pop_front();
        }
        let Some(key) = stream.get_remote_static() else {
            return Some(stream);
        };
        if self.recent.len() >= MAX_FOUND {
            self.recent.clear();
        }
        if self.recent.insert(key, now).is_some() {
            tracing::debug!(peer = %PeerId::from_bytes(key).short(), "dht: copy of a handshake parked");
            self.parked.push_back((now, stream));
            return None;
        }
        Some(stream)
    }
}

/// Runs a DHT stream in a task of its own (it outlives a DHT restart) and
/// tells the found table how it went.
fn spawn_stream(
    host: &Arc<dyn Host>,
    found: &Arc<Mutex<Found>>,
    stream: Connection,
    dialled: Option<[u8; 32]>,
) {
    let host = host.clone();
    let found = found.clone();
    tokio::spawn(async move {
        let conn = host.begin();
        let hub: Arc<dyn Hub> = host.clone();
        let run = stream::run(stream, dialled, conn, host.settings(), hub, host.stopping());
        // The crates below can panic on a remote's or the network's doing;
        // the link is then reported down (see stream::Down) and the task
        // ends like any failed stream.
        let (ending, up) = match std::panic::AssertUnwindSafe(run).catch_unwind().await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(conn, "dht stream panicked in the crates below; link closed");
                (stream::StreamEnding::Io("panicked".into()), false)
            }
        };
        host.end();
        tracing::debug!(conn, ?ending, "dht stream ended");
        if let Some(key) = dialled {
            let outcome = match (&ending, up) {
                (stream::StreamEnding::Gate(gate::GateError::Foreign), _) => Outcome::Foreign,
                (_, true) => Outcome::Ended,
                (_, false) => Outcome::Failed,
            };
            let mut table = found.lock().unwrap_or_else(|p| p.into_inner());
            if up {
                table.outcome(&key, Outcome::Linked, Instant::now().into_std());
            }
            table.outcome(&key, outcome, Instant::now().into_std());
        }
    });
}
