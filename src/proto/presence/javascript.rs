//! What JavaScript neighbours get from us: every register change as the
//! flood packet the original would have relayed, because a JavaScript peer
//! merges a view (our batches) but never passes one on, so news that
//! reached it only as a view would stop there. Apart from `relay` because
//! these rules exist only for the original's sake and cost nothing between
//! our own peers: nothing here runs without a JavaScript link.
//!
//! A packet made here for an origin's register change carries the number
//! [`register_number`] derives from the news itself, the one the origin
//! gave its own flood of that change, so every copy, by whatever path,
//! is one packet to a JavaScript peer's duplicate cache; and ours remembers
//! each such (origin, number) we passed on, so a packet goes to our
//! JavaScript neighbours once whether it came as a flood or in a batch.
//!
//! [`register_number`]: crate::proto::flood::register_number

use bytes::Bytes;

use super::{Destination, Output, Presence};
use crate::proto::data::DataCodec;
use crate::proto::flood::{register_number, Flood};
use crate::proto::graph::{Slot, ROOT};
use crate::proto::wire::{FloodPacket, Kind, Message, Stamp};
use crate::proto::PeerId;

/// The message type of a **tunnel**: view entries from one of our peers to
/// the others behind a JavaScript peer. The original relays a flood packet
/// of a type it does not know untouched and otherwise ignores it, so news
/// that only a view carries (a JavaScript origin's edges from before a
/// link existed, a correction of its data) still reaches our peers behind
/// it, which merge the entries as any view's.
pub(super) const TUNNEL: u64 = 6;

/// What the original puts in a view for a node it knows only as the end of
/// an edge: `{}` (its JSON default's encoding of an empty object). Merged
/// into an object it adds nothing, so the original never lets it replace
/// data; neither do we, and we take better data over it.
pub(super) const PLACEHOLDER: &[u8] = b"{}";

/// A node's edge list before a change, for what JavaScript peers get of
/// the change.
pub(super) struct EdgesBefore {
    edges: Vec<PeerId>,
    /// It was a list without a stamp, taken from a JavaScript view.
    from_view: bool,
}

/// A flood packet waiting for the end of the input, so that what one input
/// made goes out in the order a JavaScript peer needs (see
/// [`Presence::send_to_javascript`]).
#[derive(Debug)]
pub(super) struct ForJavascript {
    /// 0 CONNECTED, 1 DISCONNECTED, 2 STATE.
    rank: u8,
    /// Only this peer, or every JavaScript peer but this one.
    only: Option<PeerId>,
    except: Option<PeerId>,
    packet: Bytes,
}

fn rank(kind: Kind) -> u8 {
    match kind {
        Kind::Connected => 0,
        Kind::Disconnected => 1,
        _ => 2,
    }
}

impl<C: DataCodec> Presence<C> {
    /// Direct peers whose request said they are JavaScript peers, but
    /// `except`.
    pub(super) fn javascript_peers(&self, except: Option<PeerId>) -> Vec<PeerId> {
        self.links
            .iter()
            .filter(|(p, l)| l.is_up() && !l.batches && Some(**p) != except)
            .map(|(p, _)| *p)
            .collect()
    }

    pub(super) fn has_javascript_peers(&self) -> bool {
        self.links.values().any(|l| l.is_up() && !l.batches)
    }

    /// Queues the flood packet (`origin`, `number`) for our JavaScript
    /// peers (`only` one, or all but `except`), unless it went to them
    /// before.
    fn queue_for_javascript(
        &mut self,
        kind: Kind,
        only: Option<PeerId>,
        except: Option<PeerId>,
        (origin, number): (PeerId, u32),
        packet: Bytes,
    ) {
        // A packet for one peer goes whatever others had: that peer is new.
        if !self.flood.first_sighting(origin, number) && only.is_none() {
            return;
        }
        self.for_javascript.push(ForJavascript {
            rank: rank(kind),
            only,
            except,
            packet,
        });
    }

    /// Queues `packet`, of `kind`, for each of `peers`, whatever went to
    /// them before.
    pub(super) fn queue_for_each(&mut self, kind: Kind, peers: Vec<PeerId>, packet: Bytes) {
        for peer in peers {
            self.for_javascript.push(ForJavascript {
                rank: rank(kind),
                only: Some(peer),
                except: None,
                packet: packet.clone(),
            });
        }
    }

    /// Sends what the input queued for JavaScript peers: every CONNECTED
    /// first, then DISCONNECTED, then STATE. The original drops a node the
    /// moment no path reaches it, data and all, and re-creates it with `{}`
    /// when an edge to it comes later: a node's data must not arrive before
    /// the edge that makes it reachable, nor an edge's removal before the
    /// edge that replaces it.
    pub(super) fn send_to_javascript(&mut self) {
        if self.for_javascript.is_empty() {
            return;
        }
        let mut queued = std::mem::take(&mut self.for_javascript);
        queued.sort_by_key(|q| q.rank);
        for q in queued {
            let peers = match q.only {
                Some(peer) => vec![peer],
                None => self.javascript_peers(q.except),
            };
            for peer in peers {
                self.outputs.push_back(Output::Send {
                    to: Destination::Peer(peer),
                    packet: q.packet.clone(),
                });
            }
        }
    }

    /// Floods a register change of ours to our JavaScript peers, numbered
    /// by the news (our peers hear of it in their batches).
    pub(super) fn originate_to_javascript(&mut self, message: &Message) {
        let Some(stamp) = message.stamp else {
            return;
        };
        let peers = self.javascript_peers(None);
        if peers.is_empty() {
            return;
        }
        let number = register_number(message.kind, stamp, message.id.as_ref());
        self.flood.first_sighting(self.id, number);
        let packet = self.flood.wrap(self.id, number, message.encode());
        for peer in peers {
            self.outputs.push_back(Output::Send {
                to: Destination::Peer(peer),
                packet: packet.clone(),
            });
        }
    }

    /// A stamped flood packet, news or not, goes on to our JavaScript peers
    /// as the original relays: once per (origin, number), not once per
    /// stamp (one request of theirs makes a peer of ours send a CONNECTED
    /// per link, all under one stamp, and the original reads only each
    /// one's `id`). Unlike the original, not when our register already
    /// says otherwise: a stale copy would undo newer news there. Of an
    /// origin that signs, only the very register we hold, under its
    /// signature: anything else is a copy we did not check (or a forgery).
    pub(super) fn relay_stamped_to_javascript(
        &mut self,
        from: PeerId,
        packet: &FloodPacket,
        message: &Message,
    ) {
        if !self.has_javascript_peers() {
            return;
        }
        let Some(node) = self.graph.get(&packet.origin) else {
            return;
        };
        let agrees = match (message.kind, message.id) {
            (Kind::State, _) => node.payload.data_stamp() == message.stamp,
            (Kind::Connected | Kind::Disconnected, Some(id)) => {
                let listed = self.graph.edges(&packet.origin).contains(&id);
                node.payload.edges_stamp() >= message.stamp
                    && listed == (message.kind == Kind::Connected)
            }
            _ => false,
        };
        let checked = !node.payload.is_signed()
            || match message.kind {
                Kind::State => {
                    message.signature.is_some()
                        && message.signature == node.payload.data_signature()
                        && message.data.as_deref() == node.payload.wire_data()
                }
                _ => {
                    message.signature.is_some()
                        && message.signature == node.payload.edges_signature()
                        && node.payload.edges_stamp() == message.stamp
                        && same_list(
                            &packet.origin,
                            &message.edges,
                            &self.graph.edges(&packet.origin),
                        )
                }
            };
        if !agrees || !checked {
            return;
        }
        if let Some(bytes) = Flood::relay(packet, true) {
            let identity = (packet.origin, packet.number);
            self.queue_for_javascript(message.kind, None, Some(from), identity, bytes);
        }
    }

    /// The edge list of the node in `slot` before a change, when
    /// JavaScript peers will need the difference; `None` without any.
    pub(super) fn edges_before(&self, slot: Slot) -> Option<EdgesBefore> {
        self.has_javascript_peers().then(|| {
            let edges = self.graph.edges_at(slot);
            let stamped = self
                .graph
                .node_at(slot)
                .is_some_and(|n| n.payload.edges_stamp().is_some());
            EdgesBefore {
                from_view: !stamped && !edges.is_empty(),
                edges,
            }
        })
    }

    /// The edge register of the node in `slot` went from `before` to what
    /// it is now: our JavaScript peers (but `except`) get a CONNECTED for
    /// each edge added and a DISCONNECTED for each removed, under the new
    /// stamp, as its origin's own flood of one change would be, whether we
    /// heard of it by flood or in a batch (which may carry several changes
    /// at once). A new register with the same list as one a JavaScript
    /// view gave us goes in a tunnel.
    pub(super) fn edges_to_javascript(
        &mut self,
        except: Option<PeerId>,
        slot: Slot,
        before: EdgesBefore,
    ) {
        let EdgesBefore {
            edges: before,
            from_view,
        } = before;
        let Some(stamp) = self
            .graph
            .node_at(slot)
            .and_then(|n| n.payload.edges_stamp())
        else {
            return;
        };
        let after = self.graph.edges_at(slot);
        let added = after.iter().filter(|x| !before.contains(x));
        let removed = before.iter().filter(|x| !after.contains(x));
        let changes: Vec<(Kind, PeerId)> = added
            .map(|x| (Kind::Connected, *x))
            .chain(removed.map(|x| (Kind::Disconnected, *x)))
            .collect();
        if changes.is_empty() && from_view {
            // News to us in its stamp or signature alone: we held the same
            // list from a JavaScript view, which carries neither. Our peers
            // behind JavaScript peers may hold an older signed list, which
            // no view can replace: they get the register in a tunnel.
            self.tunnel_news(slot);
        }
        for (kind, id) in changes {
            self.edge_to_javascript(None, except, slot, stamp, kind, id, &after);
        }
    }

    /// CONNECTED/DISCONNECTED(`id`) of the node in `slot` at `stamp`, with
    /// its whole list `edges`, for our JavaScript peers.
    #[allow(clippy::too_many_arguments)]
    fn edge_to_javascript(
        &mut self,
        only: Option<PeerId>,
        except: Option<PeerId>,
        slot: Slot,
        stamp: Stamp,
        kind: Kind,
        id: PeerId,
        edges: &[PeerId],
    ) {
        let Some(&origin) = self.graph.id_at(slot) else {
            return;
        };
        let mut message = Message::new(kind);
        message.id = Some(id);
        message.stamp = Some(stamp);
        // The origin's signature covers the stamp and the whole list, not
        // the one edge named: it holds for every packet of this change,
        // and without it our peers behind a JavaScript one would drop
        // this as unsigned news of an origin that signs.
        message.signature = self
            .graph
            .node_at(slot)
            .and_then(|n| n.payload.edges_signature());
        message.edges = edges.to_vec();
        let number = register_number(kind, stamp, Some(&id));
        let encoded = message.encode();
        let packet = self.flood.wrap(origin, number, encoded.clone());
        self.queue_for_javascript(kind, only, except, (origin, number), packet);
        if kind == Kind::Disconnected {
            self.correct_recent_views(only, origin, number, encoded);
        }
    }

    /// The data register of the node in `slot` changed: our JavaScript
    /// peers (but `except`) get its STATE.
    pub(super) fn data_to_javascript(
        &mut self,
        only: Option<PeerId>,
        except: Option<PeerId>,
        slot: Slot,
    ) {
        if only.is_none() && !self.has_javascript_peers() {
            return;
        }
        let Some(node) = self.graph.node_at(slot) else {
            return;
        };
        let Some(stamp) = node.payload.data_stamp() else {
            return;
        };
        let Some(&origin) = self.graph.id_at(slot) else {
            return;
        };
        let mut message = Message::new(Kind::State);
        message.stamp = Some(stamp);
        // As it came, decodable or not: the origin's signature covers it.
        message.data = node.payload.wire_data().map(Bytes::copy_from_slice);
        message.signature = node.payload.data_signature();
        let number = register_number(Kind::State, stamp, None);
        let packet = self.flood.wrap(origin, number, message.encode());
        self.queue_for_javascript(Kind::State, only, except, (origin, number), packet);
    }

    /// A peer we took for one of ours asked in the original's words: it is
    /// a JavaScript peer. Our own links and data go to it as flood packets
    /// (one CONNECTED per link, which it applies as one edge each, then
    /// our data) under new numbers, as the original floods its own on every
    /// new link: the JavaScript peers behind it may have heard them before
    /// and since dropped our node with its data (the original forgets a
    /// node the moment no path reaches it), and would take the old numbers
    /// for duplicates. Whatever news of others waited in its outbox since
    /// the link opened goes as the packets of that news, for it to carry
    /// into the JavaScript part of the network; the view it asked for
    /// follows.
    pub(super) fn announce_to_javascript_peer(&mut self, peer: PeerId) {
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        let mut slots = Vec::new();
        while let Some(slot) = link.outbox.pop() {
            if slot != ROOT {
                slots.push(slot);
            }
        }
        self.announce_self_to(peer);
        for &slot in &slots {
            let Some(stamp) = self
                .graph
                .node_at(slot)
                .and_then(|n| n.payload.edges_stamp())
            else {
                continue;
            };
            let edges = self.graph.edges_at(slot);
            for &to in &edges {
                self.edge_to_javascript(Some(peer), None, slot, stamp, Kind::Connected, to, &edges);
            }
        }
        for slot in slots {
            self.data_to_javascript(Some(peer), None, slot);
        }
    }

    /// We answered a JavaScript peer's first request on a new link: once
    /// our view is on its way, we ask for its view again. Its answer to
    /// our first request left before it merged ours, and it sends its
    /// answers to every neighbour: this one shows our part of the network
    /// to its other neighbours, and theirs to us. Those of our peers that
    /// hold a node signed answer its unsigned copy with their signed entry
    /// in a tunnel (see `correct_unsigned`), which is how registers that
    /// changed on one side while the two were apart reach our peers on the
    /// other: a view through the original carries no stamps, and our peers
    /// that hold an older signed register ignore it.
    pub(super) fn ask_again(&mut self, peer: PeerId) {
        // What this input made for JavaScript peers, in `finish`'s order.
        self.send_to_javascript();
        self.flush_javascript();
        self.request_view(peer);
    }

    /// Our links and data to `peer`, in new flood packets.
    fn announce_self_to(&mut self, peer: PeerId) {
        let Some(own) = self.graph.get(&self.id) else {
            return;
        };
        let (edges_stamp, data_stamp) = (own.payload.edges_stamp(), own.payload.data_stamp());
        let (edges_signature, data_signature) =
            (own.payload.edges_signature(), own.payload.data_signature());
        let data = own.payload.data().map(Bytes::copy_from_slice);
        let edges = self.graph.edges(&self.id);
        let mut messages = Vec::with_capacity(edges.len() + 1);
        for to in &edges {
            let mut message = Message::new(Kind::Connected);
            message.id = Some(*to);
            message.stamp = edges_stamp;
            message.signature = edges_signature;
            message.edges = edges.clone();
            messages.push(message);
        }
        if self.data_announced {
            let mut message = Message::new(Kind::State);
            message.data = data;
            message.stamp = data_stamp;
            message.signature = data_signature;
            messages.push(message);
        }
        for message in messages {
            self.send(Destination::Peer(peer), message.encode(), false);
        }
    }
}

impl<C: DataCodec> Presence<C> {
    /// News of the node in `slot` that only a view can carry past a
    /// JavaScript peer: it goes to our peers behind them in a tunnel.
    pub(super) fn tunnel_news(&mut self, slot: Slot) {
        if self.has_javascript_peers() {
            self.tunnel.push(slot);
        }
    }

    /// JavaScript peer `from`, on a new link, showed its own entry (in the
    /// node in `slot`) for the first time since: unless that was news to
    /// us (and so went on already), it goes to our other JavaScript
    /// neighbours as a view and to our peers behind them in a tunnel. A
    /// new link is often a restart, and the original drops a restarted
    /// peer's first packets as duplicates of its previous life: the
    /// JavaScript peers that dropped its node while it was away would keep
    /// `{}` for it, and our peers that joined meanwhile would never hear
    /// its own word, while to us, who kept it, its word is no news.
    pub(super) fn pass_on_relinked(&mut self, from: PeerId, slot: Slot, news: bool) {
        let Some(link) = self.links.get_mut(&from) else {
            return;
        };
        if !std::mem::take(&mut link.own_entry_due) || news {
            return;
        }
        self.view_to_javascript(slot, Some(from));
        self.tunnel_news(slot);
    }

    /// Queues the node in `slot` for every JavaScript peer but `except`,
    /// to go in its next view; true when some peer takes it.
    pub(super) fn view_to_javascript(&mut self, slot: Slot, except: Option<PeerId>) -> bool {
        let mut queued = false;
        for (peer, link) in &mut self.links {
            if Some(*peer) != except && link.is_up() && !link.batches {
                link.outbox.push(slot);
                queued = true;
            }
        }
        queued
    }

    /// Sends what the input queued for tunnels, as our own flood packets to
    /// every JavaScript peer.
    pub(super) fn send_tunnel(&mut self) {
        if self.tunnel.is_empty() {
            return;
        }
        let mut entries = Vec::new();
        while let Some(slot) = self.tunnel.pop() {
            entries.extend(Self::entry_at(&self.graph, slot));
        }
        for peer in self.javascript_peers(None) {
            let message = Kind::Other(TUNNEL);
            self.send_entries_as(message, Destination::Peer(peer), entries.clone(), false);
        }
    }
}

/// Whether `edges`, as `origin` listed them, is the list `held` (in the
/// canonical form a signature covers: no duplicates, not the origin).
fn same_list(origin: &PeerId, edges: &[PeerId], held: &[PeerId]) -> bool {
    let mut listed: Vec<&PeerId> = edges.iter().filter(|e| *e != origin).collect();
    listed.sort_unstable();
    listed.dedup();
    let mut ours: Vec<&PeerId> = held.iter().collect();
    ours.sort_unstable();
    listed == ours
}
