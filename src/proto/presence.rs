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
//!
//! This file holds the engine's type, its queries and timers; the paths
//! through it are in child modules: `receive` (a peer's packets taken in),
//! `merge` (a neighbour's view merged into ours), `announce` (our own news)
//! and `relay` (passing news on).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;

use super::config::Config;
use super::data::{DataCodec, Json};
use super::flood::Flood;
use super::graph::{data_weight, Digest, Graph};
use super::outbox::Outbox;
use super::sign::Signer;
use super::wire::{Kind, Limits, Stamp, StateEntry};
use super::PeerId;

mod announce;
mod budget;
mod corrections;
mod interface;
mod javascript;
mod merge;
mod receive;
mod record;
mod relay;
mod repair;
use budget::{Budget, Share};
use record::{DataRegister, Record};

pub use interface::{Destination, EngineStats, Event, Input, Output, SetDataError};

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
    ///
    /// [`Message::BATCHES`]: super::wire::Message::BATCHES
    batches: bool,
    /// It takes [`Have`] notices ([`Message::HAVE`]): when we newly hold a
    /// node, it hears so in our next batch, ahead of the paced entries.
    /// Off until its request says so.
    ///
    /// [`Have`]: super::wire::Have
    /// [`Message::HAVE`]: super::wire::Message::HAVE
    notices: bool,
    /// It reads entries keyed by the raw id ([`Message::RAW_IDS`]), 32
    /// bytes shorter than the original's hex keys. Off until its request
    /// says so.
    ///
    /// [`Message::RAW_IDS`]: super::wire::Message::RAW_IDS
    raw_ids: bool,
    /// Nodes whose state it should hear of: for a peer that takes batches,
    /// all news; for a JavaScript peer, what we learned from views (flood
    /// news reaches it as relayed packets), and our whole view when it asks.
    outbox: Outbox,
    /// Its share of the view's budget and of our pacing.
    share: Share,
    /// A JavaScript peer on a new link whose own entry we have not yet
    /// seen in a view of its: that entry goes on even when it is no news
    /// to us (see `Presence::pass_on_relinked`).
    own_entry_due: bool,
    /// When a JavaScript peer last asked for our view. What we gave it may
    /// hold registers we kept without knowing they were out of date, and
    /// for a while after, the removals we learn go to it a second time
    /// (see `Presence::correct_recent_views`).
    asked_at: Option<Duration>,
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
    have_notices: bool,
    max_known_peers: usize,
    max_send_bytes: usize,
    signer: Option<Signer>,
    verify_signatures: bool,
    /// Registers dropped because their signature was not their origin's.
    bad_signatures: u64,

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
    /// Whether [`Event::PeerAddSeen`], [`Event::PeerRemoveSeen`] and
    /// [`Event::PeerData`] are built (see [`Presence::without_peer_events`]).
    peer_events: bool,
    /// Flood packets for our JavaScript peers, sent at the end of the input.
    for_javascript: Vec<javascript::ForJavascript>,
    /// Nodes whose data register was set in this input, kept once we have
    /// had a JavaScript peer (see `Presence::pass_on_reached`).
    data_set: Vec<crate::proto::graph::Slot>,
    /// Nodes whose entries go in a tunnel at the end of the input.
    tunnel: Outbox,
    /// See [`Config::repair_after`].
    repair_after: Duration,
    /// Looking for holes in the view and asking JavaScript peers to fill them.
    repair: repair::Repair,
    online_dirty: bool,
    last_online_event: Option<Duration>,
    next_sweep: Option<Duration>,
    now: Duration,
    outputs: VecDeque<Output<C::Value>>,
    /// See [`EngineStats::entries_received`].
    entries_received: u64,
    /// See [`EngineStats::entries_news`].
    entries_news: u64,
    /// See [`EngineStats::notices_received`].
    notices_received: u64,
    /// The view's byte budget and who is charged for what.
    budget: Budget,
}

impl<C: DataCodec> Presence<C> {
    /// An engine for `config`, alone in its network at time `now`. Fails
    /// when the starting data cannot be advertised, or the signer's key is
    /// not our id's.
    pub fn new(config: Config<C>, now: Duration) -> Result<Self, SetDataError> {
        let bytes = encode_data(&config.codec, &config.data, &config.limits)?;
        if config.signer.as_ref().is_some_and(|s| s.id() != config.id) {
            return Err(SetDataError::ForeignKey);
        }
        let mut graph: Graph<Record> = match config.shared_ids.clone() {
            Some(table) => Graph::with_id_table(config.id, table),
            None => Graph::new(config.id),
        };
        graph.require_both_ends();
        // Nodes are forgotten at quarter-period sweeps anyway: a quantum
        // of a sixty-fourth of the period delays none by more than that.
        graph.set_time_quantum(config.forget_after / 64);
        if let Some(interner) = config.interner.clone() {
            graph.on_settle(move |record: &mut Record| record.share(&interner));
        }
        let incarnation = config.incarnation;
        let (edges_stamp, data_stamp) = (
            Stamp {
                incarnation,
                version: 0,
            },
            Stamp {
                incarnation,
                version: 1,
            },
        );
        let signatures = config.signer.as_ref().map(|signer| {
            (
                signer.sign_edges(edges_stamp, &[]),
                signer.sign_data(data_stamp, Some(&bytes)),
            )
        });
        // Both registers in one block, as any change of them is laid out.
        graph.payload_mut(now, config.id).set_registers(
            Some((edges_stamp, signatures.map(|s| s.0))),
            Some(DataRegister {
                stamp: Some(data_stamp),
                signature: signatures.map(|s| s.1),
                data: Some(&bytes),
                valid: true,
            }),
        );
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
            have_notices: config.have_notices,
            max_known_peers: config.max_known_peers.max(1),
            max_send_bytes: config.max_send_bytes,
            signer: config.signer,
            verify_signatures: config.verify_signatures,
            bad_signatures: 0,
            incarnation,
            version: 1,
            value: config.data,
            graph,
            links: BTreeMap::new(),
            bootstrapped: false,
            data_announced: false,
            pending_edges: None,
            flush_due: None,
            peer_events: true,
            for_javascript: Vec::new(),
            data_set: Vec::new(),
            tunnel: Outbox::default(),
            repair_after: config.repair_after,
            repair: repair::Repair::default(),
            online_dirty: false,
            last_online_event: None,
            next_sweep: None,
            now,
            outputs: VecDeque::new(),
            entries_received: 0,
            entries_news: 0,
            notices_received: 0,
            budget: Budget::new(config.max_view_bytes),
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
        super::id::sorted(self.graph.reachable().copied().collect())
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

    /// What our view says of `id` as a view entry carries it (edge list and
    /// data with their stamps and signatures); `None` if it said nothing we
    /// hold. For inspection and tests.
    pub fn entry(&self, id: &PeerId) -> Option<StateEntry> {
        let slot = self.graph.slot(id)?;
        Self::entry_at(&self.graph, slot).map(|(_, entry)| entry)
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

    /// How many registers were dropped because their signature was not
    /// their origin's (each also reported as [`Event::BadSignature`]).
    pub fn bad_signatures(&self) -> u64 {
        self.bad_signatures
    }

    /// Whether `id` signs its registers: we hold a register it signed, so
    /// only its signed registers move it from now on.
    pub fn signs(&self, id: &PeerId) -> bool {
        if *id == self.id {
            return self.signer.is_some();
        }
        self.graph.get(id).is_some_and(|n| n.payload.is_signed())
    }

    /// Our current life number (see [`Config::incarnation`]).
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// What this engine has done so far.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            learned: self.graph.created(),
            entries_received: self.entries_received,
            entries_news: self.entries_news,
            notices_received: self.notices_received,
        }
    }

    /// Stops building [`Event::PeerAddSeen`], [`Event::PeerRemoveSeen`] and
    /// [`Event::PeerData`], for a driver that ignores them: a node newly
    /// learned costs four of the first and one of the last (with its data
    /// decoded into a value), which is a large share of a learning when
    /// nobody listens. Data is still checked with the codec (invalid data
    /// still gives [`Event::BadPeerData`]); every other event is unchanged.
    pub fn without_peer_events(&mut self) {
        self.peer_events = false;
    }

    /// Starts keeping a [`Digest`] of who is online and their data, for
    /// [`Presence::digest`]: a driver that holds many engines (the
    /// simulator) compares it with the digest the truth has instead of
    /// reading every view node by node. Costs a few hashes per change.
    pub fn track_digest(&mut self) {
        self.graph
            .track_digest(|id, record| data_weight(id, record.data()));
    }

    /// The digest of who is online and their encoded data (see
    /// [`data_weight`]), once [`Presence::track_digest`] was called: equal
    /// to the sum of `Digest::add(id, data_weight(id, data))` over the right
    /// online set and data.
    pub fn digest(&self) -> Option<Digest> {
        self.graph.digest()
    }

    /// When the driver must call [`Presence::tick`] next, if ever.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let lost = self.links.values().filter_map(|l| l.lost_at).min();
        let online = self.online_dirty.then(|| self.online_due());
        let announce = self.pending_edges.map(|(_, _, due)| due);
        [
            lost,
            self.next_sweep,
            online,
            announce,
            self.flush_due,
            self.repair.due,
        ]
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

    /// Fires the timers due by `now`: lost links, our batched edge
    /// announcement, forgetting unreachable nodes, looking for holes in the
    /// view, a debounced `Online` event.
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
                if self.graph.collect_garbage(before) > 0 {
                    self.shrink();
                }
            }
        }
        self.finish();
        // After the settle in `finish`: holes are exact only then.
        self.repair_holes();
    }

    // ----- output --------------------------------------------------------

    fn event(&mut self, event: Event<C::Value>) {
        self.outputs.push_back(Output::Event(event));
    }

    /// A register that claimed `origin`'s signature without it: dropped,
    /// counted and reported.
    fn bad_signature(&mut self, from: PeerId, origin: PeerId) {
        self.bad_signatures += 1;
        self.event(Event::BadSignature { from, origin });
    }

    fn send(&mut self, to: Destination, message: Bytes, direct: bool) {
        let packet = self.flood.originate(message, direct);
        self.outputs.push_back(Output::Send { to, packet });
    }

    /// End of every input: settle who is online, report it (debounced), and
    /// schedule forgetting unreachable nodes.
    fn finish(&mut self) {
        self.send_to_javascript();
        self.flush_javascript();
        self.send_tunnel();
        if self.flush_due.is_some_and(|t| t <= self.now) {
            self.flush();
        }
        if self.graph.settle(self.now) {
            self.online_dirty = true;
        }
        if self.pass_on_reached() {
            self.flush_javascript();
        }
        self.watch_holes();
        if self.online_dirty && self.online_due() <= self.now {
            self.online_dirty = false;
            self.last_online_event = Some(self.now);
            let list = self.online();
            self.event(Event::Online(list));
        }
        if self.next_sweep.is_none() && self.graph.forgettable_count() > 0 {
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
