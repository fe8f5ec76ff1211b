//! Setting a node up: the topic, identity, addresses, discovery and every
//! bound, and starting it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch, Notify, Semaphore};
use tokio::time::Instant;

use super::{accept_loop, found, timer_loop, Inner, Node, State};
use crate::net::connection::{Settings, Stop};
#[cfg(feature = "dht")]
use crate::net::discovery::dht::{DhtOptions, Host};
use crate::net::discovery::mdns::Mdns;
use crate::net::identity::Identity;
use crate::proto::{Config, Presence, SetDataError, Signer};

/// The default [`NodeBuilder::event_buffer`]: events kept for a slow
/// `events()` reader before the oldest are dropped.
const EVENT_BUFFER: usize = 4096;

/// Derives a topic key from a human name: BLAKE2b-256 of
/// `"hyper-presence topic:" + name`. Everyone who uses the same name gets
/// the same key, so treat the name like a password. The key is used as a
/// hypercore's public key would be: peers open the channel of its discovery
/// key and prove they know it.
pub fn topic_key(name: &str) -> [u8; 32] {
    use blake2::digest::consts::U32;
    use blake2::{Blake2b, Digest};
    let mut hasher = Blake2b::<U32>::new();
    hasher.update(b"hyper-presence topic:");
    hasher.update(name.as_bytes());
    hasher.finalize().into()
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No topic key was given.
    #[error("a node needs a topic key (`topic` or `key`)")]
    NoTopic,
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The starting data cannot be advertised.
    #[error(transparent)]
    Data(#[from] SetDataError),
    /// The identity could not be made.
    #[error(transparent)]
    Identity(#[from] crate::net::identity::IdentityError),
}

/// Sets up a [`Node`]; see [`Node::builder`].
#[derive(Debug)]
pub struct NodeBuilder {
    key: Option<[u8; 32]>,
    identity: Option<Identity>,
    listen: Vec<SocketAddr>,
    connect: Vec<SocketAddr>,
    data: Value,
    extension: String,
    disconnect_grace: Duration,
    online_debounce: Duration,
    silence_timeout: Duration,
    keep_alive: Duration,
    handshake_timeout: Duration,
    max_frame: usize,
    max_queued_bytes: usize,
    max_handshakes: usize,
    redial_max: Duration,
    max_known_peers: usize,
    max_view_bytes: usize,
    event_buffer: usize,
    outbox_packets: usize,
    #[cfg(feature = "dht")]
    dht: Option<DhtOptions>,
    mdns: bool,
}

impl NodeBuilder {
    /// Every field at its default.
    pub(super) fn new() -> Self {
        NodeBuilder {
            key: None,
            identity: None,
            listen: Vec::new(),
            connect: Vec::new(),
            data: Value::Object(Default::default()),
            extension: crate::proto::DEFAULT_EXTENSION.to_owned(),
            disconnect_grace: Duration::from_millis(500),
            online_debounce: Duration::ZERO,
            silence_timeout: Duration::from_secs(12),
            keep_alive: Duration::from_secs(4),
            handshake_timeout: Duration::from_secs(5),
            max_frame: crate::net::transport::secret_stream::DEFAULT_MAX_FRAME,
            max_queued_bytes: 4 << 20,
            max_handshakes: 64,
            redial_max: Duration::from_secs(5),
            max_known_peers: 100_000,
            max_view_bytes: crate::proto::DEFAULT_MAX_VIEW_BYTES,
            event_buffer: EVENT_BUFFER,
            outbox_packets: super::connection::OUTBOX,
            #[cfg(feature = "dht")]
            dht: None,
            mdns: false,
        }
    }

    /// The topic by name (see [`topic_key`]).
    pub fn topic(mut self, name: &str) -> Self {
        self.key = Some(topic_key(name));
        self
    }

    /// The topic key itself: a hypercore's public key (`core.key` in
    /// JavaScript), to join the presence network of that core's peers.
    pub fn key(mut self, key: [u8; 32]) -> Self {
        self.key = Some(key);
        self
    }

    /// Our identity; a fresh random one if not given.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Listens on `addr` (port 0 picks a free port; see [`Node::listen_addrs`]).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen.push(addr);
        self
    }

    /// Dials `addr`, and redials it with backoff whenever the link is lost.
    pub fn connect(mut self, addr: SocketAddr) -> Self {
        self.connect.push(addr);
        self
    }

    /// The data to advertise from the start (default `{}`).
    pub fn data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// The extension name (default `hyper-presence`).
    pub fn extension(mut self, name: &str) -> Self {
        self.extension = name.to_owned();
        self
    }

    /// How long a peer may be without a connection before its loss is
    /// announced (default 500 ms).
    pub fn disconnect_grace(mut self, grace: Duration) -> Self {
        self.disconnect_grace = grace;
        self
    }

    /// The least time between two [`Event::Online`] events (default 0:
    /// one for every change, as the original). Each lists every online
    /// peer, sorted: without a debounce, a node joining a network of
    /// thousands builds such a list for every packet that brings peers
    /// online. What [`Node::online`] returns is current either way.
    ///
    /// [`Event::Online`]: crate::proto::Event::Online
    /// [`Node::online`]: crate::net::Node::online
    pub fn online_debounce(mut self, debounce: Duration) -> Self {
        self.online_debounce = debounce;
        self
    }

    /// How long a connection may stay silent (not a byte, not even a
    /// keep-alive) before it is closed (default 12 s). JavaScript peers send
    /// a keep-alive after 5 s without writing, so keep this well above 5 s
    /// when they are about.
    pub fn silence_timeout(mut self, timeout: Duration) -> Self {
        self.silence_timeout = timeout;
        self
    }

    /// How long we may go without writing before we send a keep-alive
    /// (default 4 s). Rust peers close a link that is silent for their
    /// `silence_timeout`; JavaScript peers never time a link out.
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = interval;
        self
    }

    /// How long a new connection may take to finish its handshake and open
    /// the topic's channel (default 5 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Largest frame accepted from a peer (default 2 MiB). A peer that
    /// announces a larger one is disconnected before we buffer it.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Bytes we may hold queued for a peer that does not read them (default
    /// 4 MiB); past that the connection is closed.
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// Accepted connections that may be in their handshake at once (default
    /// 64); more wait in the listen backlog. Handshake frames have exact
    /// lengths (at most 96 bytes), and until a peer has proven it knows the
    /// topic key its frames are at most 64 KiB, so strangers cost little
    /// memory each: at most 64 × 64 KiB of buffers in all.
    pub fn max_handshakes(mut self, count: usize) -> Self {
        self.max_handshakes = count;
        self
    }

    /// Most nodes our view may hold (default 100,000; see
    /// [`Config::max_known_peers`]).
    pub fn max_known_peers(mut self, count: usize) -> Self {
        self.max_known_peers = count;
        self
    }

    /// Most bytes our view may hold (default 64 MiB; see
    /// [`Config::max_view_bytes`]): what one hostile peer's invented nodes
    /// and large data can cost us at most, shared among our direct peers.
    pub fn max_view_bytes(mut self, bytes: usize) -> Self {
        self.max_view_bytes = bytes;
        self
    }

    /// Events held for a subscriber that lags (default 4,096); past that it
    /// is told how many it missed (`join --json` then prints a snapshot).
    pub fn event_buffer(mut self, events: usize) -> Self {
        self.event_buffer = events;
        self
    }

    /// Packets waiting for one connection's writer (default 1,024); a peer
    /// that lets more pile up is cut off (as one past
    /// [`NodeBuilder::max_queued_bytes`]).
    pub fn outbox_packets(mut self, packets: usize) -> Self {
        self.outbox_packets = packets;
        self
    }

    /// Longest wait between redials of a lost address (default 5 s).
    pub fn redial_max(mut self, max: Duration) -> Self {
        self.redial_max = max;
        self
    }

    /// Finds peers on the HyperDHT by the topic's discovery key, as
    /// JavaScript `swarm.join(core.discoveryKey)` does (default off in the
    /// library, so a node talks to nobody it was not given; `join` turns it
    /// on). Without [`bootstrap`](Self::bootstrap) nodes it uses the public
    /// HyperDHT bootstrap nodes. Only with the `dht` feature (default on).
    #[cfg(feature = "dht")]
    pub fn dht(mut self, on: bool) -> Self {
        self.dht = on.then(|| self.dht.take().unwrap_or_default());
        self
    }

    /// Adds a DHT bootstrap node (repeatable) and turns the DHT on.
    #[cfg(feature = "dht")]
    pub fn bootstrap(mut self, addr: SocketAddr) -> Self {
        self.dht
            .get_or_insert_with(DhtOptions::default)
            .bootstrap
            .push(addr);
        self
    }

    /// All DHT settings at once, turning the DHT on.
    #[cfg(feature = "dht")]
    pub fn dht_options(mut self, options: DhtOptions) -> Self {
        self.dht = Some(options);
        self
    }

    /// Finds peers of the topic on the local network by mDNS, and is found
    /// there (default off; `join` turns it on). We register one
    /// `_hyper-presence._tcp` service carrying our id and a hash of the
    /// topic's discovery key (never the topic or its key) and dial the
    /// peers of our topic that we find. Only a node that listens can be
    /// found: listen on `0.0.0.0:0` for that.
    pub fn mdns(mut self, on: bool) -> Self {
        self.mdns = on;
        self
    }

    /// Binds the listeners and starts the node on the current tokio runtime.
    pub async fn spawn(self) -> Result<Node, NodeError> {
        let key = self.key.ok_or(NodeError::NoTopic)?;
        let identity = match self.identity {
            Some(i) => i,
            None => Identity::generate()?,
        };
        let mut config = Config::new(identity.id());
        // Our registers are signed, so nobody else can set our edges or data.
        config.signer = Some(Signer::from_seed(identity.seed()));
        config.data = self.data;
        config.extension = self.extension.clone();
        config.disconnect_grace = self.disconnect_grace;
        config.online_debounce = self.online_debounce;
        config.max_known_peers = self.max_known_peers;
        config.max_view_bytes = self.max_view_bytes;
        config.incarnation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let start = Instant::now();
        let engine = Presence::new(config, Duration::ZERO)?;
        let (shutdown, _) = watch::channel(Stop::No);
        let (events, _) = broadcast::channel(self.event_buffer.max(1));
        let inner = Arc::new(Inner {
            start,
            state: Mutex::new(State {
                engine,
                conns: HashMap::new(),
            }),
            events,
            timer: Notify::new(),
            next_conn: AtomicU64::new(1),
            active: AtomicUsize::new(0),
            idle: Notify::new(),
            links_changed: Notify::new(),
            shutdown,
            handshakes: Arc::new(Semaphore::new(self.max_handshakes.max(1))),
            settings: Arc::new(Settings {
                identity,
                key,
                extension: self.extension,
                silence_timeout: self.silence_timeout,
                keep_alive: self.keep_alive,
                handshake_timeout: self.handshake_timeout,
                max_frame: self.max_frame,
                max_queued_bytes: self.max_queued_bytes,
                outbox_packets: self.outbox_packets,
            }),
            redial_max: self.redial_max,
            mdns: Mutex::new(None),
        });
        let mut listen_addrs = Vec::new();
        for addr in self.listen {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| NodeError::Listen { addr, source })?;
            listen_addrs.push(
                listener
                    .local_addr()
                    .map_err(|source| NodeError::Listen { addr, source })?,
            );
            tokio::spawn(accept_loop(inner.clone(), listener));
        }
        tokio::spawn(timer_loop(inner.clone()));
        #[cfg(feature = "dht")]
        if let Some(options) = self.dht {
            let host: Arc<dyn Host> = inner.clone();
            tokio::spawn(crate::net::discovery::dht::supervise(host, options));
        }
        if self.mdns {
            let (tx, rx) = mpsc::channel(64);
            let port = listen_addrs
                .iter()
                .find(|a| !a.ip().is_loopback())
                .map(|a| a.port());
            if port.is_none() {
                tracing::warn!(
                    "mDNS without a listener on a network: we find others, they cannot find us"
                );
            }
            match Mdns::start(inner.settings.identity.id(), &key, port, tx) {
                Ok(mdns) => {
                    *inner.mdns.lock().unwrap_or_else(|p| p.into_inner()) = Some(mdns);
                    tokio::spawn(found::found_loop(inner.clone(), rx));
                }
                // No multicast here (no interface, no permission): the node
                // still works with the addresses it is given.
                Err(e) => tracing::warn!("mDNS unavailable: {e}"),
            }
        }
        let node = Node {
            inner,
            listen_addrs: Arc::new(listen_addrs),
        };
        for addr in self.connect {
            node.connect(addr);
        }
        Ok(node)
    }
}
