//! The presence state machine: the whole protocol as one value that takes
//! inputs and queues outputs, without sockets, clocks or tasks.
//!
//! Drivers call [`Presence::peer_connected`], [`Presence::peer_disconnected`],
//! [`Presence::receive`], [`Presence::set_data`] and [`Presence::tick`] (at
//! [`Presence::poll_timeout`]), each with the current time, then take
//! [`Output`]s with [`Presence::poll_output`]: packets to send and events
//! for the application. The same engine runs under the network node and
//! under the simulator, so what the simulator shows is what the network does.
//!
//! See `PROTOCOL.md` in the repository for the algorithm and its invariants.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;

use super::config::Config;
use super::data::{DataCodec, DataError, Json};
use super::flood::Flood;
use super::graph::{EdgeDiff, Graph, Slot, ROOT};
use super::outbox::Outbox;
use super::wire::{DecodeError, FloodPacket, Kind, Limits, Message, Stamp, StateEntry};
use super::PeerId;

mod record;
use record::Record;

/// Bytes a flood packet adds around its message at most (origin id, number,
/// ttl, tags and the data length prefix), kept free when splitting.
const PACKET_OVERHEAD: usize = 64;

/// Where a packet goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// To this directly connected peer only.
    Peer(PeerId),
    /// To every directly connected peer, but `except` (the peer a relayed
    /// packet came from: sending it back would be wasted).
    Broadcast {
        /// The one direct peer to leave out, if any.
        except: Option<PeerId>,
    },
}

/// What the engine asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output<V> {
    /// Send an encoded flood packet as an extension message.
    Send {
        /// To whom.
        to: Destination,
        /// The encoded [`FloodPacket`].
        packet: Bytes,
    },
    /// Tell the application something happened.
    Event(Event<V>),
}

/// What the application hears about the network (the original's events).
#[derive(Debug, Clone, PartialEq)]
pub enum Event<V> {
    /// We merged a first view of the network from a neighbour (once).
    Bootstrapped,
    /// Who is online changed; the list holds every online peer, us
    /// included, sorted.
    Online(Vec<PeerId>),
    /// A peer advertised new data.
    PeerData {
        /// Whose data.
        id: PeerId,
        /// The decoded value.
        data: V,
    },
    /// We connected to a peer directly (a reconnection within the
    /// disconnect grace is not reported).
    PeerAdd(PeerId),
    /// We lost our last connection to a peer and the grace period passed.
    PeerRemove(PeerId),
    /// We learned that `from` connected to `to`.
    PeerAddSeen {
        /// The peer that connected.
        from: PeerId,
        /// The peer it connected to.
        to: PeerId,
    },
    /// We learned that `from` disconnected from `to`.
    PeerRemoveSeen {
        /// The peer that disconnected.
        from: PeerId,
        /// The peer it disconnected from.
        to: PeerId,
    },
    /// A direct peer sent bytes that are not a valid packet; they were
    /// dropped and nothing else happened. Drivers may log it, or cut a peer
    /// that does it often.
    Malformed {
        /// The direct peer the bytes came from.
        from: PeerId,
        /// What was wrong.
        error: DecodeError,
    },
    /// A direct peer sent news of more nodes than
    /// [`Config::max_known_peers`] leaves room for, even after forgetting
    /// every unreachable node: the message was dropped.
    ViewFull {
        /// The direct peer the message came from.
        from: PeerId,
        /// How many nodes the message would have added.
        new_nodes: usize,
    },
    /// A peer advertised data our codec cannot decode; we treat that peer as
    /// having no data until it advertises something valid.
    BadPeerData {
        /// Whose data.
        id: PeerId,
        /// The codec's complaint.
        error: DataError,
    },
}

/// One input to the engine, for drivers that prefer a single door
/// ([`Presence::handle`]) to the individual methods.
#[derive(Debug, Clone, PartialEq)]
pub enum Input<V> {
    /// A connection to a peer opened.
    Connected(PeerId),
    /// A connection to a peer closed.
    Disconnected(PeerId),
    /// A connection to a peer closed after it said goodbye.
    Left(PeerId),
    /// A direct peer sent us a packet.
    Received {
        /// The direct peer.
        from: PeerId,
        /// The extension message's payload.
        packet: Bytes,
    },
    /// The application changes the data we advertise.
    SetData(V),
    /// Time passed; timers due by now fire.
    Tick,
}

/// Why our own data cannot be advertised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetDataError {
    /// The codec could not encode the value.
    #[error("cannot encode peer data: {0}")]
    Encode(#[from] DataError),
    /// The encoded value is larger than peers accept.
    #[error("peer data is {len} bytes, over the limit of {limit}")]
    TooLarge {
        /// Encoded size.
        len: usize,
        /// [`Limits::max_data_bytes`].
        limit: usize,
    },
}

/// Our side of a direct peer: how many live connections we have to it, when
/// we give up on it if none, and how it takes news of others.
#[derive(Debug, Default)]
struct Link {
    connections: u32,
    lost_at: Option<Duration>,
    /// It takes batches ([`Message::BATCHES`]): news goes through its
    /// outbox instead of as relayed flood packets. Assumed on every new
    /// connection until the peer's request says otherwise (every peer asks
    /// first thing): in a network of our peers forming at once, flooding
    /// to every link until its request arrived cost a third of the bytes.
    batches: bool,
    /// Nodes whose state it should hear of: for a peer that takes batches,
    /// all news; for a JavaScript peer, what we learned from views (flood
    /// news reaches it as relayed packets), and our whole view when it asks.
    outbox: Outbox,
}

impl Link {
    fn is_up(&self) -> bool {
        self.connections > 0
    }
}

/// The presence engine of one peer: its view of the network, its own state
/// and the protocol rules, driven by inputs and answering with [`Output`]s.
#[derive(Debug)]
pub struct Presence<C: DataCodec = Json> {
    id: PeerId,
    codec: C,
    extension: String,
    limits: Limits,
    disconnect_grace: Duration,
    forget_after: Duration,
    online_debounce: Duration,
    announce_window: Duration,
    gossip_window: Duration,
    max_known_peers: usize,
    max_send_bytes: usize,

    incarnation: u64,
    version: u64,
    value: C::Value,
    graph: Graph<Record>,
    links: BTreeMap<PeerId, Link>,
    flood: Flood,
    bootstrapped: bool,
    /// Whether the network has been told our current data; false while we
    /// have no connection to tell it through.
    data_announced: bool,
    /// Our edge list changed and its flood waits for the end of the
    /// announce window: the kind and peer of the last change, and when.
    pending_edges: Option<(Kind, PeerId, Duration)>,
    /// When the outboxes go out next; `None` while they are empty.
    flush_due: Option<Duration>,
    online_dirty: bool,
    last_online_event: Option<Duration>,
    next_sweep: Option<Duration>,
    now: Duration,
    outputs: VecDeque<Output<C::Value>>,
}

impl<C: DataCodec> Presence<C> {
    /// An engine for `config`, alone in its network at time `now`. Fails only
    /// when the starting data cannot be advertised.
    pub fn new(config: Config<C>, now: Duration) -> Result<Self, SetDataError> {
        let bytes = encode_data(&config.codec, &config.data, &config.limits)?;
        let mut graph: Graph<Record> = Graph::new(config.id, now);
        let incarnation = config.incarnation;
        let own = graph.payload_mut(now, config.id);
        own.set_edges_stamp(Stamp {
            incarnation,
            version: 0,
        });
        own.set_data_stamp(Stamp {
            incarnation,
            version: 1,
        });
        own.set_data(Some(&bytes));
        Ok(Presence {
            id: config.id,
            flood: Flood::new(config.id, incarnation, config.ttl, config.dedupe_capacity),
            codec: config.codec,
            extension: config.extension,
            limits: config.limits,
            disconnect_grace: config.disconnect_grace,
            forget_after: config.forget_after,
            online_debounce: config.online_debounce,
            announce_window: config.announce_window,
            gossip_window: config.gossip_window,
            max_known_peers: config.max_known_peers.max(1),
            max_send_bytes: config.max_send_bytes,
            incarnation,
            version: 1,
            value: config.data,
            graph,
            links: BTreeMap::new(),
            bootstrapped: false,
            data_announced: false,
            pending_edges: None,
            flush_due: None,
            online_dirty: false,
            last_online_event: None,
            next_sweep: None,
            now,
            outputs: VecDeque::new(),
        })
    }

    // ----- queries -------------------------------------------------------

    /// Our id.
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// The extension name peers exchange presence packets under.
    pub fn extension(&self) -> &str {
        &self.extension
    }

    /// Every online peer, us included, sorted: those a chain of announced
    /// connections leads to from us.
    pub fn online(&self) -> Vec<PeerId> {
        let mut list: Vec<PeerId> = self.graph.reachable().copied().collect();
        list.sort_unstable();
        list
    }

    /// Whether `id` is online.
    pub fn is_online(&self, id: &PeerId) -> bool {
        self.graph.is_reachable(id)
    }

    /// How many peers are online, us included.
    pub fn online_count(&self) -> usize {
        self.graph.reachable_count()
    }

    /// The data we advertise.
    pub fn data(&self) -> &C::Value {
        &self.value
    }

    /// The data `id` advertises, if we know valid data for it (ours for our
    /// id). Decoded on each call: views keep data encoded.
    pub fn peer_data(&self, id: &PeerId) -> Option<C::Value> {
        if *id == self.id {
            return Some(self.value.clone());
        }
        let bytes = self.graph.get(id)?.payload.data()?;
        self.codec.decode(bytes).ok()
    }

    /// The data `id` advertises as it came over the wire (ours encoded for
    /// our id), if valid: for comparing or forwarding without decoding.
    pub fn peer_data_encoded(&self, id: &PeerId) -> Option<&[u8]> {
        self.graph.get(id)?.payload.data()
    }

    /// The peers `id` says it is connected to, in id order (for us: our
    /// direct peers); `None` if we know nothing of `id`.
    pub fn peer_edges(&self, id: &PeerId) -> Option<Vec<PeerId>> {
        self.graph.get(id)?;
        Some(self.graph.edges(id))
    }

    /// Peers we hold a connection to, or lost less than the grace ago.
    pub fn direct_peers(&self) -> impl Iterator<Item = &PeerId> {
        self.links.keys()
    }

    /// Whether a neighbour has sent us its view of the network.
    pub fn is_bootstrapped(&self) -> bool {
        self.bootstrapped
    }

    /// How many nodes the view holds, online or kept while unreachable.
    pub fn known_count(&self) -> usize {
        self.graph.len()
    }

    /// Our current life number (see [`Config::incarnation`]).
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// When the driver must call [`Presence::tick`] next, if ever.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let lost = self.links.values().filter_map(|l| l.lost_at).min();
        let online = self.online_dirty.then(|| self.online_due());
        let announce = self.pending_edges.map(|(_, _, due)| due);
        [lost, self.next_sweep, online, announce, self.flush_due]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next queued output, if any.
    pub fn poll_output(&mut self) -> Option<Output<C::Value>> {
        self.outputs.pop_front()
    }

    /// All queued outputs.
    pub fn drain_outputs(&mut self) -> impl Iterator<Item = Output<C::Value>> + '_ {
        self.outputs.drain(..)
    }

    // ----- inputs --------------------------------------------------------

    /// Feeds one [`Input`]; the same as calling the matching method.
    pub fn handle(&mut self, now: Duration, input: Input<C::Value>) -> Result<(), SetDataError> {
        match input {
            Input::Connected(peer) => self.peer_connected(now, peer),
            Input::Disconnected(peer) => self.peer_disconnected(now, peer),
            Input::Left(peer) => self.peer_left(now, peer),
            Input::Received { from, packet } => self.receive(now, from, packet),
            Input::SetData(value) => return self.set_data(now, value),
            Input::Tick => self.tick(now),
        }
        Ok(())
    }

    /// A connection to `peer` opened. Several connections to one peer count
    /// as one link; only the first announces anything.
    pub fn peer_connected(&mut self, now: Duration, peer: PeerId) {
        self.advance_to(now);
        if peer == self.id {
            return;
        }
        let is_new = !self.links.contains_key(&peer);
        let link = self.links.entry(peer).or_default();
        link.connections += 1;
        if link.connections == 1 {
            link.lost_at = None;
            // Whatever is at the other end says again what it takes; until
            // its request comes, news waits in its outbox (a JavaScript
            // peer, whose request comes first thing, then takes it as a view).
            link.batches = true;
            link.outbox.clear();
            if is_new {
                self.event(Event::PeerAdd(peer));
                self.own_edges_changed(Kind::Connected, peer);
                if !self.data_announced {
                    self.announce_data();
                }
            }
            // On every new link, even one back within the grace: packets may
            // have been lost while it was down, and the other side may come
            // from a network we have never been part of.
            let mut request = Message::new(Kind::BootstrapRequest);
            request.features = Message::BATCHES;
            self.send(Destination::Peer(peer), request.encode(), true);
        }
        self.finish();
    }

    /// A connection to `peer` closed. When it was the last one, the peer is
    /// announced lost after the disconnect grace unless it comes back.
    pub fn peer_disconnected(&mut self, now: Duration, peer: PeerId) {
        self.advance_to(now);
        self.connection_closed(peer, self.disconnect_grace);
    }

    /// A connection to `peer` closed because the peer said it is leaving.
    /// When it was the last one, the loss is announced at once, without the
    /// grace a silent loss gets.
    pub fn peer_left(&mut self, now: Duration, peer: PeerId) {
        self.advance_to(now);
        self.connection_closed(peer, Duration::ZERO);
    }

    /// One connection to `peer` fewer; the last one starts the countdown to
    /// announcing the loss.
    fn connection_closed(&mut self, peer: PeerId, grace: Duration) {
        if let Some(link) = self.links.get_mut(&peer) {
            if link.connections > 0 {
                link.connections -= 1;
                if link.connections == 0 {
                    link.lost_at = Some(self.now + grace);
                    // A new connection starts with a whole-view exchange.
                    link.batches = false;
                    link.outbox.clear();
                }
            }
        }
        self.expire_links();
        self.finish();
    }

    /// A packet from direct peer `from`. Invalid bytes produce an
    /// [`Event::Malformed`] and nothing else.
    pub fn receive(&mut self, now: Duration, from: PeerId, packet: Bytes) {
        self.advance_to(now);
        if let Err(error) = self.accept(from, &packet) {
            self.event(Event::Malformed { from, error });
        }
        self.finish();
    }

    /// Changes the data we advertise and tells the network.
    pub fn set_data(&mut self, now: Duration, value: C::Value) -> Result<(), SetDataError> {
        self.advance_to(now);
        let bytes = encode_data(&self.codec, &value, &self.limits)?;
        self.value = value.clone();
        let own = self.graph.payload_mut(self.now, self.id);
        if own.data() == Some(&bytes[..]) {
            return Ok(());
        }
        own.set_data(Some(&bytes));
        self.announce_data();
        self.finish();
        Ok(())
    }

    /// Fires the timers due by `now`: lost links, our batched edge
    /// announcement, forgetting unreachable nodes, a debounced `Online` event.
    pub fn tick(&mut self, now: Duration) {
        self.advance_to(now);
        self.expire_links();
        if let Some((kind, peer, due)) = self.pending_edges {
            if due <= self.now {
                self.pending_edges = None;
                self.flood_edges(kind, peer);
            }
        }
        let now = self.now;
        if self.next_sweep.is_some_and(|t| t <= now) {
            self.next_sweep = None;
            self.graph.settle(now);
            if let Some(before) = now.checked_sub(self.forget_after) {
                self.graph.collect_garbage(before);
            }
        }
        self.finish();
    }

    // ----- receiving -----------------------------------------------------

    fn accept(&mut self, from: PeerId, bytes: &Bytes) -> Result<(), DecodeError> {
        let packet = FloodPacket::decode(bytes, &self.limits)?;
        let message = Message::decode(&packet.data, &self.limits)?;
        if !self.room_for(from, &packet.origin, &message) {
            return Ok(());
        }
        if packet.origin == self.id {
            // Our own packet coming back: normally an echo of this life, but
            // a copy from a previous life is how we learn we restarted.
            if let Some(stamp) = message.stamp {
                match message.kind {
                    Kind::State => self.hear_of_self(None, Some((stamp, message.data))),
                    Kind::Connected | Kind::Disconnected => {
                        self.hear_of_self(Some((stamp, message.edges)), None)
                    }
                    _ => {}
                }
            }
            return Ok(());
        }
        match message.kind {
            Kind::BootstrapRequest => {
                let batches = message.features & Message::BATCHES != 0;
                if let Some(link) = self.links.get_mut(&from) {
                    let was = std::mem::replace(&mut link.batches, batches);
                    if was && !batches {
                        self.announce_to_javascript_peer(from);
                    }
                }
                self.answer_bootstrap(from);
            }
            Kind::BootstrapResponse => self.merge_bootstrap(from, message.bootstrap),
            Kind::Connected | Kind::Disconnected | Kind::State => match message.stamp {
                Some(stamp) => self.on_stamped(from, &packet, message, stamp),
                None => self.on_unstamped(from, &packet, message)?,
            },
            Kind::Other(_) => {
                // Not ours to understand, but a future peer's: pass it on as
                // the original does.
                if self.flood.first_sighting(packet.origin, packet.number) {
                    self.relay(from, &packet, false);
                }
            }
        }
        Ok(())
    }

    /// Whether the view can take every node `message` (from `origin`) would
    /// add. Exact counting costs a lookup per id, so it is only done near
    /// the bound; at the bound, unreachable nodes are forgotten early first.
    fn room_for(&mut self, from: PeerId, origin: &PeerId, message: &Message) -> bool {
        let mentioned = || {
            std::iter::once(origin)
                .chain(&message.id)
                .chain(&message.edges)
                .chain(
                    message
                        .bootstrap
                        .iter()
                        .flat_map(|(id, entry)| std::iter::once(id).chain(&entry.connected_to)),
                )
        };
        if self.graph.len() + mentioned().count() <= self.max_known_peers {
            return true;
        }
        let mut unknown: Vec<&PeerId> = mentioned()
            .filter(|id| self.graph.get(id).is_none())
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        let new_nodes = unknown.len();
        if self.graph.len() + new_nodes <= self.max_known_peers {
            return true;
        }
        self.graph.settle(self.now);
        self.graph.collect_garbage(self.now);
        if self.graph.len() + new_nodes <= self.max_known_peers {
            return true;
        }
        self.event(Event::ViewFull { from, new_nodes });
        false
    }

    /// A message from one of our peers: it carries the origin's whole edge
    /// list or data and a stamp, so applying it is "newer wins" and the
    /// order of arrival does not matter. Only news is relayed: whatever
    /// made a register what it is (a flood copy, or a view whose news we
    /// pushed on) has already gone to every neighbour.
    fn on_stamped(&mut self, from: PeerId, packet: &FloodPacket, message: Message, stamp: Stamp) {
        let origin = packet.origin;
        let is_state = message.kind == Kind::State;
        let slot = self.graph.intern(self.now, origin);
        let Some(record) = self.graph.payload_at_mut(slot) else {
            return;
        };
        let current = if is_state {
            record.data_stamp()
        } else {
            record.edges_stamp()
        };
        if Some(stamp) > current {
            if !is_state {
                record.set_edges_stamp(stamp);
            }
            self.relay_to_legacy(from, packet);
            self.queue_news_at(slot, Some(from), true);
            if is_state {
                // Without data the message still supersedes older data:
                // the origin has none we could use.
                self.apply_data(slot, Some(stamp), message.data);
            } else {
                self.replace_edges(slot, message.edges);
            }
        }
    }

    /// A JavaScript peer's message: no order can be known, so it is applied
    /// as a patch the way the original does, deduplicated by (origin, number).
    /// It never overrides what a stamped message set.
    fn on_unstamped(
        &mut self,
        from: PeerId,
        packet: &FloodPacket,
        message: Message,
    ) -> Result<(), DecodeError> {
        let origin = packet.origin;
        let id = match message.kind {
            Kind::State => None,
            _ => Some(message.id.ok_or(DecodeError::Missing("id"))?),
        };
        if message.kind == Kind::State && message.data.is_none() {
            return Err(DecodeError::Missing("data"));
        }
        if !self.flood.first_sighting(origin, packet.number) {
            return Ok(());
        }
        self.relay(from, packet, false);
        let slot = self.graph.intern(self.now, origin);
        let Some(record) = self.graph.payload_at_mut(slot) else {
            return Ok(());
        };
        match (message.kind, id) {
            (Kind::State, _) if record.data_stamp().is_none() => {
                self.apply_data(slot, None, message.data);
            }
            (Kind::Connected, Some(id)) if record.edges_stamp().is_none() => {
                let mut edges = self.graph.edges_at(slot);
                edges.push(id);
                self.replace_edges(slot, edges);
            }
            (Kind::Disconnected, Some(id)) if record.edges_stamp().is_none() => {
                let mut edges = self.graph.edges_at(slot);
                edges.retain(|e| *e != id);
                self.replace_edges(slot, edges);
            }
            _ => {}
        }
        Ok(())
    }

    /// Someone asked for our view: it goes to them alone (the original sent
    /// it to every neighbour), through their outbox, so a large view is paced
    /// like any news.
    fn answer_bootstrap(&mut self, to: PeerId) {
        // A request that arrives after its connection closed has nowhere to
        // go: queueing the view would only spin the flush timer.
        let Some(link) = self.links.get_mut(&to).filter(|l| l.is_up()) else {
            return;
        };
        for slot in self.graph.slots() {
            link.outbox.push(slot);
        }
        self.schedule_flush();
    }

    /// A neighbour's view: each register is taken if newer. What was news to
    /// us is passed on to our other neighbours, who do the same, so that two
    /// networks that were apart learn everything of each other.
    fn merge_bootstrap(&mut self, from: PeerId, entries: Vec<(PeerId, StateEntry)>) {
        if !self.bootstrapped {
            self.bootstrapped = true;
            self.event(Event::Bootstrapped);
        }
        for (id, entry) in entries {
            let theirs = (entry.edges_stamp, entry.data_stamp);
            let slot = if id == self.id {
                let edges = entry.edges_stamp.map(|s| (s, entry.connected_to));
                let data = entry.data_stamp.map(|s| (s, entry.data));
                self.hear_of_self(edges, data);
                ROOT
            } else {
                let slot = self.graph.intern(self.now, id);
                if self.merge_entry(slot, entry) {
                    // Passed on as a relay of its flood would be; when the
                    // flood copies come they are no longer news and go no
                    // further, so each neighbour hears of each register
                    // once, by one route or the other.
                    self.queue_news_at(slot, Some(from), false);
                }
                slot
            };
            if id != from {
                self.strike_off_known(from, slot, theirs);
            }
        }
    }

    /// `from` told us of the node in `slot` with these stamps: if that is
    /// all we know, it need not hear of that node from us. Never called for
    /// `from` itself: a peer that restarted without a larger incarnation
    /// shows stamps equal to its previous life's over other contents, and
    /// hearing what we know of it is how it finds out and moves past them.
    fn strike_off_known(
        &mut self,
        from: PeerId,
        slot: Slot,
        theirs: (Option<Stamp>, Option<Stamp>),
    ) {
        let (Some(edges), Some(data)) = theirs else {
            return;
        };
        let Some(node) = self.graph.node_at(slot) else {
            return;
        };
        let ours = &node.payload;
        if Some(edges) >= ours.edges_stamp() && Some(data) >= ours.data_stamp() {
            if let Some(link) = self.links.get_mut(&from) {
                link.outbox.remove(slot);
            }
        }
    }

    /// Merges one node of a view into the node in `slot`; true when
    /// anything was news.
    fn merge_entry(&mut self, slot: Slot, entry: StateEntry) -> bool {
        let Some(record) = self.graph.payload_at_mut(slot) else {
            return false;
        };
        let (edges_stamp, data_stamp) = (record.edges_stamp(), record.data_stamp());
        let has_data = record.data().is_some();
        let mut news = false;
        match entry.edges_stamp {
            Some(stamp) if Some(stamp) > edges_stamp => {
                record.set_edges_stamp(stamp);
                self.replace_edges(slot, entry.connected_to);
                news = true;
            }
            None if edges_stamp.is_none() => {
                // A JavaScript peer's view: no order, so only add, as the original.
                let mut edges = self.graph.edges_at(slot);
                let before = edges.len();
                edges.extend(entry.connected_to);
                edges.sort_unstable();
                edges.dedup();
                if edges.len() != before {
                    self.replace_edges(slot, edges);
                    news = true;
                }
            }
            _ => {}
        }
        match entry.data_stamp {
            Some(stamp) if Some(stamp) > data_stamp => {
                self.apply_data(slot, Some(stamp), entry.data);
                news = true;
            }
            None if data_stamp.is_none() && !has_data && entry.data.is_some() => {
                self.apply_data(slot, None, entry.data);
                news = true;
            }
            _ => {}
        }
        news
    }

    /// What the network says about us. A stamp above ours, or equal to ours
    /// with other contents, can only come from a previous life of ours (we
    /// restarted without a larger incarnation): move past it and tell
    /// everyone our current state again, so that it wins everywhere.
    fn hear_of_self(
        &mut self,
        edges: Option<(Stamp, Vec<PeerId>)>,
        data: Option<(Stamp, Option<Bytes>)>,
    ) {
        let Some(node) = self.graph.get(&self.id) else {
            return;
        };
        let own = &node.payload;
        let stale = |theirs: Stamp, ours: Option<Stamp>, same: bool| {
            Some(theirs) > ours || (Some(theirs) == ours && !same)
        };
        let mut highest = None;
        if let Some((stamp, mut list)) = edges {
            list.sort_unstable();
            list.dedup();
            if stale(stamp, own.edges_stamp(), list == self.graph.edges(&self.id)) {
                highest = highest.max(Some(stamp.incarnation));
            }
        }
        if let Some((stamp, bytes)) = data {
            if stale(stamp, own.data_stamp(), bytes.as_deref() == own.data()) {
                highest = highest.max(Some(stamp.incarnation));
            }
        }
        let Some(highest) = highest else {
            return;
        };
        self.incarnation = self.incarnation.max(highest).saturating_add(1);
        self.version = 0;
        self.stamp_own_edges();
        if let Some(peer) = self.links.keys().next().copied() {
            self.pending_edges = None;
            self.flood_edges(Kind::Connected, peer);
        }
        self.announce_data();
    }

    // ----- applying ------------------------------------------------------

    fn apply_data(&mut self, slot: Slot, stamp: Option<Stamp>, data: Option<Bytes>) {
        let Some(&id) = self.graph.id_at(slot) else {
            return;
        };
        let Some(record) = self.graph.payload_at_mut(slot) else {
            return;
        };
        if let Some(stamp) = stamp {
            record.set_data_stamp(stamp);
        }
        if record.data() == data.as_deref() {
            return;
        }
        let Some(bytes) = data else {
            record.set_data(None);
            return;
        };
        match self.codec.decode(&bytes) {
            Ok(value) => {
                // Copied: a slice would keep the whole packet (a view of
                // thousands of entries) alive while this data is current.
                record.set_data(Some(&bytes));
                self.event(Event::PeerData { id, data: value });
            }
            Err(error) => {
                record.set_data(None);
                self.event(Event::BadPeerData { id, error });
            }
        }
    }

    fn replace_edges(&mut self, slot: Slot, edges: Vec<PeerId>) {
        let Some(&origin) = self.graph.id_at(slot) else {
            return;
        };
        let EdgeDiff { added, removed } = self.graph.set_edges_at(self.now, slot, edges);
        for to in added {
            self.event(Event::PeerAddSeen { from: origin, to });
        }
        for to in removed {
            self.event(Event::PeerRemoveSeen { from: origin, to });
        }
    }

    /// What a view says of the node in `slot`; nothing for nodes we only
    /// know as the target of someone's edge.
    fn entry_at(graph: &Graph<Record>, slot: Slot) -> Option<(PeerId, StateEntry)> {
        let node = graph.node_at(slot)?;
        let id = *graph.id_at(slot)?;
        let r = &node.payload;
        if !node.has_edges()
            && r.data().is_none()
            && r.edges_stamp().is_none()
            && r.data_stamp().is_none()
        {
            return None;
        }
        Some((
            id,
            StateEntry {
                connected_to: graph.edges_at(slot),
                data: r.data().map(Bytes::copy_from_slice),
                edges_stamp: r.edges_stamp(),
                data_stamp: r.data_stamp(),
            },
        ))
    }

    // ----- our own state -------------------------------------------------

    /// Our links changed by `kind` of `peer`: our register changes now, with
    /// a new stamp (a whole-view answer must never show other edges under an
    /// old stamp), and the flood goes now or at the end of the window.
    fn own_edges_changed(&mut self, kind: Kind, peer: PeerId) {
        let edges = self.links.keys().copied().collect();
        self.graph.set_edges(self.now, self.id, edges);
        self.stamp_own_edges();
        self.queue_news_at(ROOT, None, true);
        if self.announce_window.is_zero() {
            self.flood_edges(kind, peer);
        } else {
            let due = self
                .pending_edges
                .map_or(self.now + self.announce_window, |(_, _, due)| due);
            self.pending_edges = Some((kind, peer, due));
        }
    }

    fn stamp_own_edges(&mut self) {
        let stamp = self.next_stamp();
        self.graph
            .payload_mut(self.now, self.id)
            .set_edges_stamp(stamp);
    }

    fn next_stamp(&mut self) -> Stamp {
        self.version += 1;
        Stamp {
            incarnation: self.incarnation,
            version: self.version,
        }
    }

    /// Floods CONNECTED/DISCONNECTED(`peer`) with our whole edge list and
    /// its current stamp.
    fn flood_edges(&mut self, kind: Kind, peer: PeerId) {
        let Some(stamp) = self
            .graph
            .get(&self.id)
            .and_then(|n| n.payload.edges_stamp())
        else {
            return;
        };
        let mut message = Message::new(kind);
        message.id = Some(peer);
        message.stamp = Some(stamp);
        message.edges = self.graph.edges(&self.id);
        self.originate_to_legacy(message.encode());
    }

    /// A peer we took for one of ours asked in the original's words: it is
    /// a JavaScript peer. Our own news since the link opened waited in its
    /// outbox, and it will get that as a view, which it does not relay; so
    /// our links and data go to it as the original's flood packets too (one
    /// CONNECTED per link, which it applies as one edge each), for it to
    /// carry into the JavaScript part of the network. Their stamps are not
    /// new, so our own peers drop them where they meet them.
    fn announce_to_javascript_peer(&mut self, peer: PeerId) {
        let Some(own) = self.graph.get(&self.id) else {
            return;
        };
        let (edges_stamp, data_stamp) = (own.payload.edges_stamp(), own.payload.data_stamp());
        let data = own.payload.data().map(Bytes::copy_from_slice);
        let edges = self.graph.edges(&self.id);
        let mut messages = Vec::with_capacity(edges.len() + 1);
        for to in &edges {
            let mut message = Message::new(Kind::Connected);
            message.id = Some(*to);
            message.stamp = edges_stamp;
            message.edges = edges.clone();
            messages.push(message);
        }
        if self.data_announced {
            let mut message = Message::new(Kind::State);
            message.data = data;
            message.stamp = data_stamp;
            messages.push(message);
        }
        for message in messages {
            self.send(Destination::Peer(peer), message.encode(), false);
        }
    }

    /// Floods STATE with our data, or remembers to once we have a link.
    fn announce_data(&mut self) {
        let stamp = self.next_stamp();
        let own = self.graph.payload_mut(self.now, self.id);
        own.set_data_stamp(stamp);
        let data = own.data().map(Bytes::copy_from_slice);
        self.data_announced = self.links.values().any(Link::is_up);
        if self.data_announced {
            self.queue_news_at(ROOT, None, true);
            let mut message = Message::new(Kind::State);
            message.data = data;
            message.stamp = Some(stamp);
            self.originate_to_legacy(message.encode());
        }
    }

    /// Links whose grace ran out are lost: announce it.
    fn expire_links(&mut self) {
        let now = self.now;
        let lost: Vec<PeerId> = self
            .links
            .iter()
            .filter(|(_, l)| l.lost_at.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for peer in lost {
            self.links.remove(&peer);
            self.event(Event::PeerRemove(peer));
            self.own_edges_changed(Kind::Disconnected, peer);
        }
    }

    // ----- output --------------------------------------------------------

    fn event(&mut self, event: Event<C::Value>) {
        self.outputs.push_back(Output::Event(event));
    }

    fn send(&mut self, to: Destination, message: Bytes, direct: bool) {
        let packet = self.flood.originate(message, direct);
        self.outputs.push_back(Output::Send { to, packet });
    }

    /// Direct peers that take flood packets (not batches), but `except`;
    /// `None` when that is every direct peer but `except`, so one broadcast
    /// will do.
    fn legacy_peers(&self, except: Option<PeerId>) -> Option<Vec<PeerId>> {
        let mut all = true;
        let mut legacy = Vec::new();
        for (peer, link) in &self.links {
            if !link.is_up() || Some(*peer) == except {
                continue;
            }
            if link.batches {
                all = false;
            } else {
                legacy.push(*peer);
            }
        }
        (!all).then_some(legacy)
    }

    /// Floods a message of ours to the peers that take flood packets.
    fn originate_to_legacy(&mut self, message: Bytes) {
        match self.legacy_peers(None) {
            None => {
                if self.links.values().any(Link::is_up) {
                    self.send(Destination::Broadcast { except: None }, message, false);
                }
            }
            Some(peers) if peers.is_empty() => {}
            Some(peers) => {
                let packet = self.flood.originate(message, false);
                for peer in peers {
                    self.outputs.push_back(Output::Send {
                        to: Destination::Peer(peer),
                        packet: packet.clone(),
                    });
                }
            }
        }
    }

    /// Relays a stamped packet (past its TTL) to the peers that take flood
    /// packets; the others hear of it through their outboxes.
    fn relay_to_legacy(&mut self, from: PeerId, packet: &FloodPacket) {
        let Some(peers) = self.legacy_peers(Some(from)) else {
            self.relay(from, packet, true);
            return;
        };
        if peers.is_empty() {
            return;
        }
        if let Some(bytes) = Flood::relay(packet, true) {
            for peer in peers {
                self.outputs.push_back(Output::Send {
                    to: Destination::Peer(peer),
                    packet: bytes.clone(),
                });
            }
        }
    }

    /// Queues news of the node in `slot` for every direct peer but `except`
    /// (only those that take batches when `batches_only`: the others got a
    /// flood packet).
    fn queue_news_at(&mut self, slot: Slot, except: Option<PeerId>, batches_only: bool) {
        let mut queued = false;
        for (peer, link) in &mut self.links {
            if link.is_up() && Some(*peer) != except && (link.batches || !batches_only) {
                link.outbox.push(slot);
                queued = true;
            }
        }
        if queued {
            self.schedule_flush();
        }
    }

    fn schedule_flush(&mut self) {
        if self.flush_due.is_none() {
            self.flush_due = Some(self.now + self.gossip_window);
        }
    }

    /// Sends every direct peer what waits in its outbox: with a window, one
    /// packet each (the rest waits for the next window); without, all of it.
    fn flush(&mut self) {
        self.flush_due = None;
        let budget = if self.gossip_window.is_zero() {
            usize::MAX
        } else {
            self.max_send_bytes.saturating_sub(PACKET_OVERHEAD)
        };
        let base = Message::new(Kind::BootstrapResponse).encoded_len();
        let peers: Vec<PeerId> = self
            .links
            .iter()
            .filter(|(_, l)| !l.outbox.is_empty())
            .map(|(p, _)| *p)
            .collect();
        let mut left = false;
        for peer in peers {
            let Some(link) = self.links.get_mut(&peer) else {
                continue;
            };
            let mut entries = Vec::new();
            let mut size = base;
            while let Some(slot) = link.outbox.peek() {
                let entry = Self::entry_at(&self.graph, slot);
                let Some((id, entry)) = entry else {
                    link.outbox.pop();
                    continue;
                };
                let len = Message::bootstrap_entry_len(&id, &entry);
                if !entries.is_empty() && size + len > budget {
                    break;
                }
                link.outbox.pop();
                size += len;
                entries.push((id, entry));
            }
            left |= !link.outbox.is_empty();
            self.send_entries(Destination::Peer(peer), entries);
        }
        if left {
            self.schedule_flush();
        }
    }

    fn relay(&mut self, from: PeerId, packet: &FloodPacket, ignore_ttl: bool) {
        if let Some(bytes) = Flood::relay(packet, ignore_ttl) {
            self.outputs.push_back(Output::Send {
                to: Destination::Broadcast { except: Some(from) },
                packet: bytes,
            });
        }
    }

    /// Sends view entries as BOOTSTRAP_RESPONSE packets of at most
    /// `max_send_bytes` (an entry larger than that alone still goes, alone).
    fn send_entries(&mut self, to: Destination, entries: Vec<(PeerId, StateEntry)>) {
        let budget = self.max_send_bytes.saturating_sub(PACKET_OVERHEAD);
        let empty = Message::new(Kind::BootstrapResponse);
        let base = empty.encoded_len();
        let mut chunk = empty.clone();
        let mut size = base;
        for (id, entry) in entries {
            let len = Message::bootstrap_entry_len(&id, &entry);
            if !chunk.bootstrap.is_empty() && size + len > budget {
                let full = std::mem::replace(&mut chunk, empty.clone());
                self.send(to.clone(), full.encode(), true);
                size = base;
            }
            chunk.bootstrap.push((id, entry));
            size += len;
        }
        if !chunk.bootstrap.is_empty() {
            self.send(to, chunk.encode(), true);
        }
    }

    /// End of every input: settle who is online, report it (debounced), and
    /// schedule forgetting unreachable nodes.
    fn finish(&mut self) {
        if self.flush_due.is_some_and(|t| t <= self.now) {
            self.flush();
        }
        if self.graph.settle(self.now) {
            self.online_dirty = true;
        }
        if self.online_dirty && self.online_due() <= self.now {
            self.online_dirty = false;
            self.last_online_event = Some(self.now);
            let list = self.online();
            self.event(Event::Online(list));
        }
        if self.next_sweep.is_none() && self.graph.unreachable_count() > 0 {
            // A quarter of the period: nodes go between 1 and 1.25 periods
            // after they became unreachable, with few sweeps.
            self.next_sweep = Some(self.now + self.forget_after / 4);
        }
    }

    /// Time never runs backwards for the engine, whatever the driver says.
    fn advance_to(&mut self, now: Duration) {
        self.now = self.now.max(now);
    }

    fn online_due(&self) -> Duration {
        self.last_online_event
            .map_or(Duration::ZERO, |t| t + self.online_debounce)
    }
}

fn encode_data<C: DataCodec>(
    codec: &C,
    value: &C::Value,
    limits: &Limits,
) -> Result<Bytes, SetDataError> {
    let bytes = codec.encode(value)?;
    if bytes.len() > limits.max_data_bytes {
        return Err(SetDataError::TooLarge {
            len: bytes.len(),
            limit: limits.max_data_bytes,
        });
    }
    Ok(Bytes::from(bytes))
}

#[cfg(test)]
mod tests;
