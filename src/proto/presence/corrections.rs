//! What JavaScript peers get again: the original loses or keeps out of
//! date what our peers never would (it drops a node the moment no path
//! reaches it, adds every edge a view lists, drops a packet number it has
//! seen, and floods a peer's data only when that peer links anew), and
//! our peers next to it mend its view from ours. Each mend is triggered by
//! something we can see: a node reached late, an edge removal learned soon
//! after it asked for our view, a placeholder or an unsigned copy in a view
//! of its. Apart from `javascript` (how the original is spoken to) because
//! these are repairs, and each answers one finding of `tests/mixed.rs` or
//! `tests/js_interop.rs`.

use bytes::Bytes;

use super::javascript::PLACEHOLDER;
use super::Presence;
use crate::proto::data::DataCodec;
use crate::proto::graph::{Slot, ROOT};
use crate::proto::wire::Kind;
use crate::proto::PeerId;

impl<C: DataCodec> Presence<C> {
    /// Nodes that became reachable in this input while we already held
    /// their data (it came while no path to them was known, or they were
    /// cut off for a while): a JavaScript neighbour that could not reach
    /// them either has dropped them, data and all (the original keeps no
    /// unreachable node), and re-creates them with `{}` when an edge to
    /// them comes; their origins do not send their data again unless they
    /// link anew. Their entries go to our JavaScript peers as a view, after
    /// this input's flood packets (the edges that make them reachable
    /// there). Data set in this input goes as its own STATE already. True
    /// when some were queued.
    pub(super) fn pass_on_reached(&mut self) -> bool {
        let reached = self.graph.take_reached();
        let mut fresh = std::mem::take(&mut self.data_set);
        if reached.is_empty() || !self.has_javascript_peers() {
            return false;
        }
        fresh.sort_unstable();
        let mut queued = false;
        for slot in reached {
            let held = self
                .graph
                .node_at(slot)
                .and_then(|n| n.payload.wire_data())
                .is_some_and(|d| d != PLACEHOLDER);
            if slot == ROOT || !held || fresh.binary_search(&slot).is_ok() {
                continue;
            }
            queued |= self.view_to_javascript(slot, None);
        }
        queued
    }

    /// JavaScript peer `from` showed `{}` for the node in `slot`, of which
    /// we hold other data. It sends each view it makes to every neighbour,
    /// so ours behind it may have taken the placeholder (they take
    /// anything over nothing); the original never floods a peer's data
    /// again unless that peer links anew. Our entry goes to it as a view
    /// (which it merges) and to everyone behind it in a tunnel.
    pub(super) fn correct_placeholder(&mut self, from: PeerId, slot: Slot) {
        let Some(data) = self.graph.node_at(slot).and_then(|n| n.payload.wire_data()) else {
            return;
        };
        if data == PLACEHOLDER {
            return;
        }
        if let Some(link) = self.links.get_mut(&from).filter(|l| l.is_up()) {
            link.outbox.push(slot);
        }
        self.tunnel_news(slot);
    }

    /// A JavaScript neighbour's view showed the node in `slot` without
    /// signatures (the original re-encodes views without our fields) while
    /// we hold it signed. It sends each view it makes to every neighbour,
    /// so ours behind it may now hold that node unsigned, and when its
    /// first signed register reaches them they drop the rest (an origin
    /// that signs is moved by signed registers only) and with its edge
    /// list lose every node reached through it. Our signed entry goes to
    /// them in a tunnel.
    pub(super) fn correct_unsigned(&mut self, slot: Slot) {
        if self
            .graph
            .node_at(slot)
            .is_some_and(|n| n.payload.is_signed())
        {
            self.tunnel_news(slot);
        }
    }

    /// A view we gave a JavaScript peer may have put back an edge whose
    /// removal it had already seen: when parts of a network meet again, we
    /// (and peers of ours whose views reached us) still hold registers
    /// kept from before, and the original adds every edge a view lists,
    /// then drops the removal's packet as one it has seen. So the removal
    /// goes once more, under a number no JavaScript peer has seen, to every
    /// JavaScript peer that asked for our view within `forget_after` (how
    /// long we keep a register we cannot check): also the one the news came
    /// through, which may have carried it unread (a tunnel) or read it
    /// before the view. Peers that asked nothing lately get no more than
    /// the original would send.
    pub(super) fn correct_recent_views(
        &mut self,
        only: Option<PeerId>,
        origin: PeerId,
        change: u32,
        message: Bytes,
    ) {
        let since = self.now.saturating_sub(self.forget_after);
        let asked: Vec<PeerId> = self
            .links
            .iter()
            .filter(|(p, l)| {
                l.is_up()
                    && !l.batches
                    && l.asked_at.is_some_and(|t| t >= since)
                    && only.is_none_or(|o| o == **p)
            })
            .map(|(p, _)| *p)
            .collect();
        if asked.is_empty() {
            return;
        }
        let number = self.flood.correction_number(change);
        let packet = self.flood.wrap(origin, number, message);
        self.flood.first_sighting(origin, number);
        self.queue_for_each(Kind::Disconnected, asked, packet);
    }
}
