//! Receiving: decoding a packet from a direct peer, and taking in what it
//! says (stamped registers, a JavaScript peer's patches; a whole view goes
//! to `merge`), and applying a register to the view. Apart because this is
//! where a peer's bytes enter the engine, so what a peer can make us do is
//! read in one place.

use std::time::Duration;

use bytes::Bytes;

use super::javascript::TUNNEL;
use super::record::DataRegister;
use super::{Event, Presence};
use crate::proto::data::{DataCodec, DataError};
use crate::proto::graph::{EdgeDiff, Slot, Standing, ROOT};
use crate::proto::sign::{self, Claim};
use crate::proto::wire::{DecodeError, FloodPacket, Kind, Message, Signature, Stamp};
use crate::proto::PeerId;

/// What our codec made of a node's new data, to tell listeners: the value
/// (when someone listens) or why it does not decode; `None` for nothing to
/// tell.
pub(super) type Judged<V> = Option<Result<V, DataError>>;

/// Whether a stamped register that came in is news next to the one we
/// hold: a signed register beats an unsigned one whatever their stamps;
/// otherwise the newer stamp wins, and an origin that signs is moved by
/// signed registers only.
pub(super) fn is_news(
    held: Option<Stamp>,
    held_signed: bool,
    origin_signs: bool,
    stamp: Stamp,
    signed: bool,
) -> bool {
    if signed {
        !held_signed || Some(stamp) > held
    } else {
        !origin_signs && Some(stamp) > held
    }
}

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
        self.notices_received += message.have.len() as u64;
        if !self.room_for(from, &packet.origin, &message, bytes.len()) {
            return Ok(());
        }
        // Whether this packet's news goes ahead of the rest: only while its
        // sender is within its share of our pacing.
        self.budget.express = self.take_credit(from, bytes.len());
        let result = self.take_in(from, packet, message);
        self.budget.express = true;
        result
    }

    fn take_in(
        &mut self,
        from: PeerId,
        packet: FloodPacket,
        message: Message,
    ) -> Result<(), DecodeError> {
        if packet.origin == self.id {
            // Our own packet coming back: normally an echo of this life, but
            // a copy from a previous life is how we learn we restarted.
            if let Some(stamp) = message.stamp {
                let signature = message.signature;
                match message.kind {
                    Kind::State => {
                        self.hear_of_self(from, None, Some((stamp, message.data, signature)))
                    }
                    Kind::Connected | Kind::Disconnected => {
                        self.hear_of_self(from, Some((stamp, message.edges, signature)), None)
                    }
                    _ => {}
                }
            }
            return Ok(());
        }
        match message.kind {
            Kind::BootstrapRequest => {
                let batches = message.features & Message::BATCHES != 0;
                // Every link starts out taking batches: the first request
                // in the original's words is a JavaScript peer's first.
                let mut first_from_javascript = false;
                if let Some(link) = self.links.get_mut(&from) {
                    let was = std::mem::replace(&mut link.batches, batches);
                    link.notices = batches && message.features & Message::HAVE != 0;
                    link.raw_ids = batches && message.features & Message::RAW_IDS != 0;
                    first_from_javascript = was && !batches;
                    link.own_entry_due |= first_from_javascript;
                    link.asked_at = (!batches).then_some(self.now);
                }
                if first_from_javascript {
                    self.graph.watch_reached();
                    self.announce_to_javascript_peer(from);
                    self.start_repair();
                }
                self.answer_bootstrap(from);
                if first_from_javascript {
                    self.ask_again(from);
                }
            }
            Kind::BootstrapResponse => {
                // A batch of nothing but notices is not a view.
                if !message.bootstrap.is_empty() || message.have.is_empty() {
                    self.merge_bootstrap(from, message.bootstrap, false);
                }
                self.take_notices(from, &message.have);
            }
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

    /// Whether the view can take every node `message` (from `origin`, in a
    /// packet of `len` bytes) would add, and its bytes (see
    /// [`Config::max_view_bytes`]); room is made when it must be. Exact
    /// counting costs a lookup per id, so it is only done near the bounds.
    ///
    /// [`Config::max_view_bytes`]: crate::proto::Config::max_view_bytes
    fn room_for(&mut self, from: PeerId, origin: &PeerId, message: &Message, len: usize) -> bool {
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
        if self.admit(from, mentioned().count(), len, false) {
            return true;
        }
        let mut unknown: Vec<&PeerId> = mentioned()
            .filter(|id| self.graph.get(id).is_none())
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        let new_nodes = unknown.len();
        if self.admit(from, new_nodes, len, true) {
            return true;
        }
        self.event(Event::ViewFull { from, new_nodes });
        false
    }

    /// A message from one of our peers: it carries the origin's whole edge
    /// list or data and a stamp, so applying it is "newer wins" and the
    /// order of arrival does not matter. Only news is relayed to our peers
    /// (JavaScript peers also get copies of what we hold): whatever
    /// made a register what it is (a flood copy, or a view whose news we
    /// pushed on) has already gone to every neighbour. News is checked
    /// against its signature (after the stamps, so copies we have cost no
    /// verification), and a forgery goes no further.
    fn on_stamped(&mut self, from: PeerId, packet: &FloodPacket, message: Message, stamp: Stamp) {
        let origin = packet.origin;
        let is_state = message.kind == Kind::State;
        let record = self.graph.get(&origin).map(|n| &n.payload);
        let (held, held_signed, signs) = record.map_or((None, false, false), |r| {
            if is_state {
                (r.data_stamp(), r.data_signature().is_some(), r.is_signed())
            } else {
                (
                    r.edges_stamp(),
                    r.edges_signature().is_some(),
                    r.is_signed(),
                )
            }
        });
        if !is_news(held, held_signed, signs, stamp, message.signature.is_some()) {
            // No news to us, but maybe to our JavaScript peers, if it is
            // what we hold (signature and all).
            self.relay_stamped_to_javascript(from, packet, &message);
            return;
        }
        if let (Some(signature), true) = (message.signature, self.verify_signatures) {
            let signed = if is_state {
                sign::data_message(&origin, stamp, message.data.as_deref())
            } else {
                sign::edges_message(&origin, stamp, &message.edges)
            };
            let claim = Claim {
                origin,
                message: signed,
                signature,
            };
            if !sign::verify(&claim) {
                self.bad_signature(from, origin);
                return;
            }
        }
        // Interned only now: a forgery leaves no node behind.
        self.entries_news += 1;
        let slot = self.graph.intern(self.now, origin);
        let before = if is_state {
            None
        } else {
            self.edges_before(slot)
        };
        self.queue_news_at(slot, Some(from), true);
        if is_state {
            // Without data the message still supersedes older data:
            // the origin has none we could use.
            self.apply_data(slot, Some(stamp), message.signature, message.data.clone());
        } else {
            self.take_edges(slot, stamp, message.signature, &message.edges);
        }
        self.settle_origin(slot);
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
        if self
            .graph
            .get(&origin)
            .is_some_and(|n| n.payload.is_signed())
        {
            // An origin that signs sends no such thing (our peers stamp
            // and sign all they originate, and JavaScript relays pass
            // packets on untouched): a forgery, which goes no further.
            return Ok(());
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
        self.vouch(slot, from);
        let Some(record) = self.graph.payload_at_mut(slot) else {
            return Ok(());
        };
        match (message.kind, id) {
            (Kind::State, _) if record.data_stamp().is_none() => {
                self.apply_data(slot, None, None, message.data);
            }
            (Kind::Connected, Some(id)) if record.edges_stamp().is_none() => {
                let mut edges = self.graph.edges_at(slot);
                edges.push(id);
                self.replace_edges(slot, &edges);
            }
            (Kind::Disconnected, Some(id)) if record.edges_stamp().is_none() => {
                let mut edges = self.graph.edges_at(slot);
                edges.retain(|e| *e != id);
                self.replace_edges(slot, &edges);
            }
            _ => {}
        }
        self.settle_origin(slot);
        Ok(())
    }

    // ----- applying ------------------------------------------------------

    /// Takes a data register (stamp, signature, data) for the node in
    /// `slot` and tells whoever listens.
    pub(super) fn apply_data(
        &mut self,
        slot: Slot,
        stamp: Option<Stamp>,
        signature: Option<Signature>,
        data: Option<Bytes>,
    ) {
        let judged = self.take_registers(slot, None, Some((stamp, signature, data)));
        self.tell_data(slot, judged);
    }

    /// Takes a stamped edge list (signed or not) for the node in `slot`.
    pub(super) fn take_edges(
        &mut self,
        slot: Slot,
        stamp: Stamp,
        signature: Option<Signature>,
        edges: &[PeerId],
    ) {
        self.take_registers(slot, Some((stamp, signature)), None);
        self.replace_edges(slot, edges);
    }

    /// Lays the registers given out in the record of the node in `slot`,
    /// both in one new block (the edge list itself is the caller's to
    /// replace), and says what our codec made of new data: the value when
    /// someone listens, the error when it does not decode, `None` when
    /// there is nothing to tell (for [`Presence::tell_data`]).
    pub(super) fn take_registers(
        &mut self,
        slot: Slot,
        edges: Option<(Stamp, Option<Signature>)>,
        data: Option<(Option<Stamp>, Option<Signature>, Option<Bytes>)>,
    ) -> Judged<C::Value> {
        let node = self.graph.node_at(slot)?;
        let record = &node.payload;
        // Decoded only when it changed. Kept even when our codec cannot
        // read it: it goes on as it came, under its signature.
        let (valid, judged) = match data.as_ref().and_then(|(_, _, d)| d.as_ref()) {
            Some(bytes) if record.wire_data() != Some(&bytes[..]) => {
                // The value only for whoever listens; an error for all.
                let decoded = if self.peer_events {
                    self.codec.decode(bytes).map(Some)
                } else {
                    self.codec.check(bytes).map(|()| None)
                };
                match decoded {
                    Ok(value) => (true, value.map(Ok)),
                    Err(error) => (false, Some(Err(error))),
                }
            }
            Some(_) => (record.data().is_some(), None),
            None => (true, None),
        };
        if data.is_some() && self.graph.watches_reached() {
            self.data_set.push(slot);
        }
        let record = self.graph.payload_at_mut(slot)?;
        // Copied: a slice would keep the whole packet (a view of thousands
        // of entries) alive while this data is current.
        let data = data.as_ref().map(|(stamp, signature, data)| DataRegister {
            stamp: *stamp,
            signature: *signature,
            data: data.as_deref(),
            valid,
        });
        record.set_registers(edges, data);
        judged
    }

    /// Tells listeners what [`Presence::take_registers`] found of the node
    /// in `slot`'s new data.
    pub(super) fn tell_data(&mut self, slot: Slot, judged: Judged<C::Value>) {
        // The id only once there is something to tell: in a simulation,
        // reading it is a miss in a view gone cold.
        let Some(judged) = judged else {
            return;
        };
        let Some(&id) = self.graph.id_at(slot) else {
            return;
        };
        match judged {
            Ok(data) => self.event(Event::PeerData { id, data }),
            Err(error) => self.event(Event::BadPeerData { id, error }),
        }
    }

    /// After a register of the node in `slot` changed: once it signs, what
    /// we hold of it unsigned cannot be its own (a forgery, or a JavaScript
    /// peer's copy) and goes; and its standing tells the graph whether
    /// edges into it count (see [`Standing`]).
    pub(super) fn settle_origin(&mut self, slot: Slot) {
        if slot == ROOT {
            return;
        }
        let Some(node) = self.graph.node_at(slot) else {
            return;
        };
        let r = &node.payload;
        if r.is_signed() {
            let stale_edges =
                r.edges_signature().is_none() && (r.edges_stamp().is_some() || node.has_edges());
            let stale_data = r.data_signature().is_none()
                && (r.data_stamp().is_some() || r.wire_data().is_some());
            if stale_edges {
                if let Some(record) = self.graph.payload_at_mut(slot) {
                    record.clear_edges_register();
                }
                self.replace_edges(slot, &[]);
            }
            if stale_data {
                if let Some(record) = self.graph.payload_at_mut(slot) {
                    record.clear_data_register();
                }
            }
        }
        let Some(node) = self.graph.node_at(slot) else {
            return;
        };
        let r = &node.payload;
        let standing = if r.is_signed() {
            Standing::Mutual
        } else if r.edges_stamp().is_some()
            || r.data_stamp().is_some()
            || r.wire_data().is_some()
            || node.has_edges()
        {
            Standing::Open
        } else {
            Standing::Silent
        };
        self.graph.set_standing(slot, standing);
    }

    pub(super) fn replace_edges(&mut self, slot: Slot, edges: &[PeerId]) {
        if !self.peer_events {
            // Nobody listens: no ids read or collected, no events built.
            if self.graph.node_at(slot).is_some() {
                self.graph.set_edges_with(self.now, slot, edges, None);
            }
            return;
        }
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
