//! Passing news on: flood packets relayed to the peers that take them, news
//! queued in per-link outboxes and sent in batches, and a view sent in
//! answer to a request. Apart from receiving because what goes out is paced
//! and split by its own rules.

use bytes::Bytes;

use super::record::Record;
use super::{Destination, Link, Output, Presence};
use crate::proto::data::DataCodec;
use crate::proto::flood::Flood;
use crate::proto::graph::{Graph, Slot, ROOT};
use crate::proto::outbox::Lane;
use crate::proto::wire::{
    EncodedEntries, EntryKey, FloodPacket, Have, Kind, Message, StateEntry, StateEntryRef,
};
use crate::proto::PeerId;

/// Bytes a flood packet adds around its message at most (origin id, number,
/// ttl, tags and the data length prefix), kept free when splitting.
const PACKET_OVERHEAD: usize = 64;

impl<C: DataCodec> Presence<C> {
    /// Someone asked for our view: it goes to them alone (the original sent
    /// it to every neighbour), through their outbox, so a large view is paced
    /// like any news.
    pub(super) fn answer_bootstrap(&mut self, to: PeerId) {
        // A request that arrives after its connection closed has nowhere to
        // go: queueing the view would only spin the flush timer.
        let Some(link) = self.links.get_mut(&to).filter(|l| l.is_up()) else {
            return;
        };
        for slot in self.graph.slots() {
            link.outbox.push(slot);
        }
        // A JavaScript peer's goes at the end of this input (see
        // `flush_javascript`).
        if link.batches {
            self.schedule_flush();
        }
    }

    /// What a view says of the node in `slot`; nothing for nodes we only
    /// know as the target of someone's edge.
    pub(super) fn entry_at(graph: &Graph<Record>, slot: Slot) -> Option<(PeerId, StateEntry)> {
        let node = graph.node_at(slot)?;
        let id = *graph.id_at(slot)?;
        let r = &node.payload;
        if !node.has_edges()
            && r.wire_data().is_none()
            && r.edges_stamp().is_none()
            && r.data_stamp().is_none()
        {
            return None;
        }
        Some((
            id,
            StateEntry {
                connected_to: graph.edges_at(slot).into(),
                // As it came, decodable or not: the signature covers it.
                data: r.wire_data().map(Bytes::copy_from_slice),
                edges_stamp: r.edges_stamp(),
                data_stamp: r.data_stamp(),
                edges_signature: r.edges_signature(),
                data_signature: r.data_signature(),
            },
        ))
    }

    /// Appends the bootstrap entry [`Presence::entry_at`] would give for
    /// `slot` to `out`, encoded with `key`, straight from the view; false
    /// (and nothing appended) when there is none. `edges` is scratch space
    /// for the sorted edge list.
    fn encode_entry_at(
        graph: &Graph<Record>,
        slot: Slot,
        key: EntryKey,
        edges: &mut Vec<PeerId>,
        out: &mut Vec<u8>,
    ) -> bool {
        let (Some(node), Some(id)) = (graph.node_at(slot), graph.id_at(slot)) else {
            return false;
        };
        let r = &node.payload;
        if !node.has_edges()
            && r.wire_data().is_none()
            && r.edges_stamp().is_none()
            && r.data_stamp().is_none()
        {
            return false;
        }
        graph.edges_into(slot, edges);
        let entry = StateEntryRef {
            connected_to: edges,
            data: r.wire_data(),
            edges_stamp: r.edges_stamp(),
            data_stamp: r.data_stamp(),
            edges_signature: r.edges_signature(),
            data_signature: r.data_signature(),
        };
        Message::encode_bootstrap_entry(out, id, entry, key);
        true
    }

    /// The notice that we hold the node in `slot`, for neighbour `to`: none
    /// for `to` itself (it never strikes its own entry off), for us (a
    /// node's own entry is how it hears of a previous life), or for a node
    /// without both stamps (only stamps can say a copy is as new as ours).
    fn have_at(graph: &Graph<Record>, slot: Slot, to: PeerId) -> Option<Have> {
        if slot == ROOT {
            return None;
        }
        let (node, id) = (graph.node_at(slot)?, *graph.id_at(slot)?);
        let r = &node.payload;
        (id != to).then_some(Have {
            id,
            edges: r.edges_stamp()?,
            data: r.data_stamp()?,
        })
    }

    /// Queues news of the node in `slot` for every direct peer but `except`
    /// (only those that take batches when `batches_only`: the others got a
    /// flood packet).
    pub(super) fn queue_news_at(&mut self, slot: Slot, except: Option<PeerId>, batches_only: bool) {
        if let Some(from) = except {
            self.vouch(slot, from);
        }
        let lane = self.lane_for(slot, except);
        let mut queued = false;
        for (peer, link) in &mut self.links {
            if link.is_up() && Some(*peer) != except && (link.batches || !batches_only) {
                link.outbox.push_to(lane, slot);
                if link.notices {
                    link.outbox.notify(slot);
                }
                queued |= link.batches;
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

    /// Sends every peer that takes batches what waits in its outbox: with
    /// a window, one packet each (the rest waits for the next window);
    /// without, all of it.
    pub(super) fn flush(&mut self) {
        self.flush_due = None;
        let budget = if self.gossip_window.is_zero() {
            usize::MAX
        } else {
            self.max_send_bytes.saturating_sub(PACKET_OVERHEAD)
        };
        if self.flush_links(|l| l.batches, budget) {
            self.schedule_flush();
        }
    }

    /// Sends JavaScript peers what waits in their outboxes (views), all of
    /// it and at once: they take news as relayed flood packets, sent as
    /// it comes, and a view held back behind them would arrive out of
    /// order with them.
    pub(super) fn flush_javascript(&mut self) {
        self.flush_links(|l| !l.batches, usize::MAX);
    }

    /// Sends every outbox, all of it, now: what our peers are owed must be
    /// on its way before a JavaScript origin's flood packet that we relay
    /// to them (see `on_unstamped`).
    pub(super) fn flush_now(&mut self) {
        self.flush_due = None;
        self.flush_links(|_| true, usize::MAX);
    }

    /// Sends the outboxes of the links `which` picks, at most `budget`
    /// bytes of entries per link (but always one entry); true when some
    /// are left. Express news goes first, but while bulk news waits it
    /// takes at most three quarters of the budget, and at least one bulk
    /// entry goes: one neighbour's flood waits, and is never starved.
    ///
    /// Each node's entry is encoded once for all the links it goes to
    /// ([`EncodedEntries`]), and packets are built by copying those bytes,
    /// split at `max_send_bytes` as [`Presence::send_entries_as`] splits.
    fn flush_links(&mut self, which: impl Fn(&Link) -> bool, budget: usize) -> bool {
        let mut start = Vec::new();
        Message::encode_entries_start(Kind::BootstrapResponse, &mut start);
        let base = start.len();
        let split = self.max_send_bytes.saturating_sub(PACKET_OVERHEAD);
        let peers: Vec<PeerId> = self
            .links
            .iter()
            .filter(|(_, l)| !l.outbox.is_empty() && which(l))
            .map(|(p, _)| *p)
            .collect();
        // Each link takes about a budget's worth; an unpaced flush starts
        // from a packet's worth and grows.
        let room = peers
            .len()
            .saturating_mul(budget.min(split))
            .saturating_add(split);
        let mut encoded = EncodedEntries::with_capacity(room.min(1 << 20));
        let mut edges = Vec::new();
        let mut packets = Vec::new();
        // Sized for a full packet at once instead of growing to it by
        // doubling: the packet is copied into its flood packet and dropped.
        let fresh = || {
            let mut packet = Vec::with_capacity(split.min(1 << 16));
            packet.extend_from_slice(&start);
            packet
        };
        let mut left = false;
        for peer in peers {
            let Some(link) = self.links.get_mut(&peer) else {
                continue;
            };
            let mut packet = fresh();
            let mut size = base;
            let key = if link.raw_ids {
                EntryKey::Raw
            } else {
                EntryKey::Hex
            };
            let express_part = if link.outbox.lane_is_empty(Lane::Bulk) {
                budget
            } else {
                budget - budget / 4
            };
            for (lane, limit) in [
                (Lane::Express, express_part),
                (Lane::Bulk, budget),
                (Lane::Express, budget),
            ] {
                let mut first = true;
                while let Some(slot) = link.outbox.peek_in(lane) {
                    let graph = &self.graph;
                    // One encoding per node and form a round: neighbours
                    // of ours all read raw keys, older ones only hex.
                    let form = u64::from(slot) << 1 | u64::from(key == EntryKey::Raw);
                    let entry = encoded.get_or_encode(form, |out| {
                        Self::encode_entry_at(graph, slot, key, &mut edges, out)
                    });
                    let Some(entry) = entry else {
                        link.outbox.pop_in(lane);
                        continue;
                    };
                    let first_bulk = first && lane == Lane::Bulk;
                    if size > base && !first_bulk && size + entry.len() > limit {
                        break;
                    }
                    link.outbox.pop_in(lane);
                    link.outbox.unnotify(slot);
                    size += entry.len();
                    if packet.len() > base && packet.len() + entry.len() > split {
                        packets.push(std::mem::replace(&mut packet, fresh()));
                    }
                    packet.extend_from_slice(entry);
                    first = false;
                }
            }
            // Notices, unpaced by the entries' budget: what they save is the
            // entries the neighbour would send us while ours wait.
            let mut notices = 0;
            while let Some(slot) = link.outbox.peek_notice() {
                let Some(have) = Self::have_at(&self.graph, slot, peer) else {
                    link.outbox.pop_notice();
                    continue;
                };
                let len = Message::have_len(&have);
                if notices > 0 && notices + len > budget {
                    break;
                }
                link.outbox.pop_notice();
                notices += len;
                if packet.len() > base && packet.len() + len > split {
                    packets.push(std::mem::replace(&mut packet, fresh()));
                }
                Message::encode_have(&mut packet, &have);
            }
            left |= !link.outbox.is_empty();
            if packet.len() > base {
                packets.push(packet);
            }
            for packet in packets.drain(..) {
                self.send(Destination::Peer(peer), Bytes::from(packet), true);
            }
        }
        left
    }

    pub(super) fn relay(&mut self, from: PeerId, packet: &FloodPacket, ignore_ttl: bool) {
        if let Some(bytes) = Flood::relay(packet, ignore_ttl) {
            self.outputs.push_back(Output::Send {
                to: Destination::Broadcast { except: Some(from) },
                packet: bytes,
            });
        }
    }

    /// Sends view entries in messages of `kind`, in packets of at most
    /// `max_send_bytes` (an entry larger than that still goes, alone);
    /// `direct` ones with ttl 0.
    pub(super) fn send_entries_as(
        &mut self,
        kind: Kind,
        to: Destination,
        entries: Vec<(PeerId, StateEntry)>,
        direct: bool,
    ) {
        let budget = self.max_send_bytes.saturating_sub(PACKET_OVERHEAD);
        let empty = Message::new(kind);
        let base = empty.encoded_len();
        let mut chunk = empty.clone();
        let mut size = base;
        for (id, entry) in entries {
            let len = Message::bootstrap_entry_len(&id, &entry);
            if !chunk.bootstrap.is_empty() && size + len > budget {
                let full = std::mem::replace(&mut chunk, empty.clone());
                self.send(to.clone(), full.encode(), direct);
                size = base;
            }
            chunk.bootstrap.push((id, entry));
            size += len;
        }
        if !chunk.bootstrap.is_empty() {
            self.send(to, chunk.encode(), direct);
        }
    }
}
