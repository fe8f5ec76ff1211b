//! Receiving: decoding a packet from a direct peer, and merging what it
//! says (stamped registers, a JavaScript peer's patches, a whole view) into
//! ours. Apart because this is where a peer's bytes enter the engine, so
//! what a peer can make us do is read in one place.

use std::time::Duration;

use bytes::Bytes;

use super::javascript::{PLACEHOLDER, TUNNEL};
use super::{Event, Presence};
use crate::proto::data::DataCodec;
use crate::proto::graph::{EdgeDiff, Slot, ROOT};
use crate::proto::wire::{DecodeError, FloodPacket, Kind, Message, Stamp, StateEntry};
use crate::proto::PeerId;

impl<C: DataCodec> Presence<C> {
    /// A packet from direct peer `from`. Invalid bytes produce an
    /// [`Event::Malformed`] and nothing else.
    pub fn receive(&mut self, now: Duration, from: PeerId, packet: Bytes) {
        self.advance_to(now);
        if let Err(error) = self.accept(from, &packet) {
            self.event(Event::Malformed { from, error });
        }
        self.finish();
    }

    fn accept(&mut self, from: PeerId, bytes: &Bytes) -> Result<(), DecodeError> {
        let packet = FloodPacket::decode(bytes, &self.limits)?;
        let message = Message::decode(&packet.data, &self.limits)?;
        self.entries_received += match message.kind {
            Kind::BootstrapResponse => message.bootstrap.len() as u64,
            Kind::BootstrapRequest | Kind::Other(_) => 0,
            Kind::Connected | Kind::Disconnected | Kind::State => 1,
        };
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
            Kind::BootstrapResponse => self.merge_bootstrap(from, message.bootstrap, false),
            Kind::Connected | Kind::Disconnected | Kind::State => match message.stamp {
                Some(stamp) => self.on_stamped(from, &packet, message, stamp),
                None => self.on_unstamped(from, &packet, message)?,
            },
            Kind::Other(TUNNEL) => {
                // Our peer's view entries, carried to us by a JavaScript
                // peer; what is news goes on as any view's news.
                if self.flood.first_sighting(packet.origin, packet.number) {
                    self.merge_bootstrap(from, message.bootstrap, true);
                }
            }
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
        let mut before = None;
        if Some(stamp) > current {
            if !is_state {
                record.set_edges_stamp(stamp);
                before = self.edges_before(slot);
            }
            self.queue_news_at(slot, Some(from), true);
            if is_state {
                // Without data the message still supersedes older data:
                // the origin has none we could use.
                self.apply_data(slot, Some(stamp), message.data.clone());
            } else {
                self.replace_edges(slot, message.edges.clone());
            }
        }
        self.relay_stamped_to_javascript(from, packet, &message);
        if let Some(before) = before {
            self.edges_to_javascript(Some(from), slot, before);
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
        // What our peers are owed goes first: the edge that makes this
        // origin reachable may wait in an outbox, and a JavaScript peer
        // further on that gets the origin's data before it drops the node.
        self.flush_now();
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

    /// A neighbour's view: each register is taken if newer. What was news to
    /// us is passed on to our other neighbours, who do the same, so that two
    /// networks that were apart learn everything of each other.
    /// `tunnelled`: one of our peers' entries, carried by a JavaScript
    /// peer `from` in a tunnel.
    fn merge_bootstrap(
        &mut self,
        from: PeerId,
        entries: Vec<(PeerId, StateEntry)>,
        tunnelled: bool,
    ) {
        if !self.bootstrapped {
            self.bootstrapped = true;
            self.event(Event::Bootstrapped);
        }
        // A tunnel's entries are our peer's, whoever carried them.
        let from_javascript = !tunnelled && self.links.get(&from).is_some_and(|l| !l.batches);
        for (id, entry) in entries {
            let theirs = (entry.edges_stamp, entry.data_stamp);
            let placeholder = entry.data.as_deref() == Some(PLACEHOLDER);
            let slot = if id == self.id {
                let edges = entry.edges_stamp.map(|s| (s, entry.connected_to));
                let data = entry.data_stamp.map(|s| (s, entry.data));
                self.hear_of_self(edges, data);
                ROOT
            } else {
                let slot = self.graph.intern(self.now, id);
                let own = from_javascript && id == from;
                if self.merge_entry(from, slot, entry, own) {
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
                if from_javascript && placeholder {
                    self.correct_placeholder(from, slot);
                }
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

    /// Merges one node of a view from `from` into the node in `slot`; true
    /// when anything was news. `own`: a JavaScript peer's entry of itself,
    /// whose data is its own word.
    fn merge_entry(&mut self, from: PeerId, slot: Slot, entry: StateEntry, own: bool) -> bool {
        let Some(record) = self.graph.payload_at_mut(slot) else {
            return false;
        };
        let (edges_stamp, data_stamp) = (record.edges_stamp(), record.data_stamp());
        let ours = record.data();
        let (has_data, same_data) = (ours.is_some(), ours == entry.data.as_deref());
        let ours_placeholder = ours == Some(PLACEHOLDER);
        let mut news = false;
        match entry.edges_stamp {
            Some(stamp) if Some(stamp) > edges_stamp => {
                record.set_edges_stamp(stamp);
                let before = self.edges_before(slot);
                self.replace_edges(slot, entry.connected_to);
                if let Some(before) = before {
                    self.edges_to_javascript(Some(from), slot, before);
                }
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
                    self.tunnel_news(slot);
                    news = true;
                }
            }
            _ => {}
        }
        match entry.data_stamp {
            Some(stamp) if Some(stamp) > data_stamp => {
                self.apply_data(slot, Some(stamp), entry.data);
                self.data_to_javascript(None, Some(from), slot);
                news = true;
            }
            // Unordered data: taken over none, over the original's
            // placeholder, and from its origin itself; the placeholder
            // never replaces data (the original merges it as "no keys").
            None if data_stamp.is_none()
                && entry.data.is_some()
                && !same_data
                && (!has_data || ours_placeholder || own) =>
            {
                self.apply_data(slot, None, entry.data);
                self.tunnel_news(slot);
                news = true;
            }
            _ => {}
        }
        news
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
}
