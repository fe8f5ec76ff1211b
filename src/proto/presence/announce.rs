//! Our own announcements: links opening and closing, our data changing,
//! and moving past a previous life of ours that the network still shows.
//! Apart from receiving and relaying because this is where the engine makes
//! news of its own, under new stamps, rather than passing on others'.

use std::time::Duration;

use bytes::Bytes;

use super::{encode_data, Destination, Event, Link, Presence, SetDataError};
use crate::proto::data::DataCodec;
use crate::proto::graph::ROOT;
use crate::proto::sign;
use crate::proto::wire::{Kind, Message, Signature, Stamp};
use crate::proto::PeerId;

impl<C: DataCodec> Presence<C> {
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
            link.notices = false;
            link.raw_ids = false;
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
            self.request_view(peer);
        }
        self.finish();
    }

    /// Asks `peer` for its whole view, saying what we take instead of the
    /// original's packets.
    pub(super) fn request_view(&mut self, peer: PeerId) {
        let mut request = Message::new(Kind::BootstrapRequest);
        request.features = Message::BATCHES | Message::RAW_IDS;
        if self.have_notices {
            request.features |= Message::HAVE;
        }
        self.send(Destination::Peer(peer), request.encode(), true);
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
                    link.notices = false;
                    link.raw_ids = false;
                    link.outbox.clear();
                }
            }
        }
        self.expire_links();
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
        own.set_data(Some(&bytes), true);
        self.announce_data();
        self.finish();
        Ok(())
    }

    /// What the network says about us, from direct peer `from`. A stamp
    /// above ours, or equal to ours with other contents, can only come from
    /// a previous life of ours (we restarted without a larger incarnation):
    /// move past it and tell everyone our current state again, so that it
    /// wins everywhere. When we sign, only what carries our own valid
    /// signature can be a previous life: anything else is a forgery and is
    /// dropped (so nobody can push our stamps to the top of their range).
    pub(super) fn hear_of_self(
        &mut self,
        from: PeerId,
        edges: Option<(Stamp, Vec<PeerId>, Option<Signature>)>,
        data: Option<(Stamp, Option<Bytes>, Option<Signature>)>,
    ) {
        let Some(node) = self.graph.get(&self.id) else {
            return;
        };
        let own = &node.payload;
        let stale = |theirs: Stamp, ours: Option<Stamp>, same: bool| {
            Some(theirs) > ours || (Some(theirs) == ours && !same)
        };
        let mut claims = Vec::new();
        if let Some((stamp, mut list, signature)) = edges {
            list.sort_unstable();
            list.dedup();
            if stale(stamp, own.edges_stamp(), list == self.graph.edges(&self.id)) {
                let message = sign::edges_message(&self.id, stamp, &list);
                claims.push((stamp, message, signature));
            }
        }
        if let Some((stamp, bytes, signature)) = data {
            if stale(stamp, own.data_stamp(), bytes.as_deref() == own.wire_data()) {
                let message = sign::data_message(&self.id, stamp, bytes.as_deref());
                claims.push((stamp, message, signature));
            }
        }
        let mut highest: Option<Stamp> = None;
        for (stamp, message, signature) in claims {
            if self.signer.is_some() {
                let Some(signature) = signature else {
                    continue;
                };
                let claim = sign::Claim {
                    origin: self.id,
                    message,
                    signature,
                };
                if self.verify_signatures && !sign::verify(&claim) {
                    self.bad_signature(from, self.id);
                    continue;
                }
            }
            highest = highest.max(Some(stamp));
        }
        let Some(highest) = highest else {
            return;
        };
        // Above both that life and ours. Only our own key makes stamps for
        // us, so neither end of the range is in a forger's reach; an
        // unsigned engine that was pushed there stays put rather than wrap.
        let base = highest.max(Stamp {
            incarnation: self.incarnation,
            version: self.version,
        });
        if let Some(incarnation) = base.incarnation.checked_add(1) {
            self.incarnation = incarnation;
            self.version = 0;
        } else if base.version <= u64::MAX - 2 {
            self.incarnation = base.incarnation;
            self.version = base.version;
        } else {
            return;
        }
        self.stamp_own_edges();
        if let Some(peer) = self.links.keys().next().copied() {
            self.pending_edges = None;
            self.flood_edges(Kind::Connected, peer);
        }
        self.announce_data();
    }

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
        let signature = self
            .signer
            .as_ref()
            .map(|s| s.sign_edges(stamp, &self.graph.edges(&self.id)));
        let own = self.graph.payload_mut(self.now, self.id);
        own.set_edges_register(stamp, signature);
    }

    fn next_stamp(&mut self) -> Stamp {
        // Our versions only ever come from our own changes and refutations
        // (which stop short of the top), so this never runs out.
        self.version = self.version.saturating_add(1);
        Stamp {
            incarnation: self.incarnation,
            version: self.version,
        }
    }

    /// Floods CONNECTED/DISCONNECTED(`peer`) with our whole edge list and
    /// its current stamp.
    pub(super) fn flood_edges(&mut self, kind: Kind, peer: PeerId) {
        let Some(own) = self.graph.get(&self.id) else {
            return;
        };
        let Some(stamp) = own.payload.edges_stamp() else {
            return;
        };
        let mut message = Message::new(kind);
        message.id = Some(peer);
        message.stamp = Some(stamp);
        message.signature = own.payload.edges_signature();
        message.edges = self.graph.edges(&self.id);
        self.originate_to_javascript(&message);
    }

    /// Floods STATE with our data, or remembers to once we have a link.
    fn announce_data(&mut self) {
        let stamp = self.next_stamp();
        let own = self.graph.payload_mut(self.now, self.id);
        let data = own.data().map(Bytes::copy_from_slice);
        let signature = self
            .signer
            .as_ref()
            .map(|s| s.sign_data(stamp, data.as_deref()));
        own.set_data_register(Some(stamp), signature, data.as_deref(), true);
        self.data_announced = self.links.values().any(Link::is_up);
        if self.data_announced {
            self.queue_news_at(ROOT, None, true);
            let mut message = Message::new(Kind::State);
            message.data = data;
            message.stamp = Some(stamp);
            message.signature = signature;
            self.originate_to_javascript(&message);
        }
    }

    /// Links whose grace ran out are lost: announce it.
    pub(super) fn expire_links(&mut self) {
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
}
