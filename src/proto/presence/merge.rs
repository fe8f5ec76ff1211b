//! Merging a neighbour's view into ours: entry by entry, register by
//! register, signatures of what is news checked as one batch, what was
//! news passed on; and a neighbour's `Have` notices, which strike nodes off
//! what we owe it. Apart from `receive` because a view is most of what a
//! join moves, and its rules (news, copies, placeholders, notices) read
//! best together.

use super::javascript::PLACEHOLDER;
use super::receive::is_news;
use super::record::Record;
use super::{Event, Presence};
use crate::proto::data::DataCodec;
use crate::proto::graph::{Slot, ROOT};
use crate::proto::sign::{self, Claim};
use crate::proto::wire::{Have, Stamp, StateEntry};
use crate::proto::PeerId;

/// Which of an incoming entry's registers are news to `record` (`None`: we
/// know nothing of the node).
fn news_in(record: Option<&Record>, entry: &StateEntry) -> (bool, bool) {
    let (edges_held, data_held, edges_signed, data_signed, signs) =
        record.map_or((None, None, false, false, false), |r| {
            (
                r.edges_stamp(),
                r.data_stamp(),
                r.edges_signature().is_some(),
                r.data_signature().is_some(),
                r.is_signed(),
            )
        });
    let edges = entry.edges_stamp.is_some_and(|s| {
        is_news(
            edges_held,
            edges_signed,
            signs,
            s,
            entry.edges_signature.is_some(),
        )
    });
    let data = entry.data_stamp.is_some_and(|s| {
        is_news(
            data_held,
            data_signed,
            signs,
            s,
            entry.data_signature.is_some(),
        )
    });
    (edges, data)
}

/// The claim an entry's signed edge list makes.
fn edges_claim(origin: PeerId, entry: &StateEntry) -> Option<Claim> {
    Some(Claim {
        origin,
        message: sign::edges_message(&origin, entry.edges_stamp?, &entry.connected_to),
        signature: entry.edges_signature?,
    })
}

/// The claim an entry's signed data makes.
fn data_claim(origin: PeerId, entry: &StateEntry) -> Option<Claim> {
    Some(Claim {
        origin,
        message: sign::data_message(&origin, entry.data_stamp?, entry.data.as_deref()),
        signature: entry.data_signature?,
    })
}

impl<C: DataCodec> Presence<C> {
    /// A neighbour's view: each register is taken if newer. What was news to
    /// us is passed on to our other neighbours, who do the same, so that two
    /// networks that were apart learn everything of each other. The
    /// signatures of what is news are checked first, all at once (a batch
    /// is cheaper per signature than one check each). `tunnelled`: one of
    /// our peers' entries, carried by a JavaScript peer `from` in a tunnel.
    pub(super) fn merge_bootstrap(
        &mut self,
        from: PeerId,
        mut entries: Vec<(PeerId, StateEntry)>,
        tunnelled: bool,
    ) {
        if !self.bootstrapped {
            self.bootstrapped = true;
            self.event(Event::Bootstrapped);
        }
        // A tunnel's entries are our peer's, whoever carried them.
        let from_javascript = !tunnelled && self.links.get(&from).is_some_and(|l| !l.batches);
        self.graph
            .warm(entries.iter().map(|(id, _)| id), Record::warm);
        let checks = self.check_signatures(&entries);
        // Struck off `from`'s outbox once the packet is merged, with one
        // lookup of its link instead of one per entry.
        let mut known = Vec::with_capacity(entries.len());
        // Entries are taken in place (a few hundred bytes each, moved out they
        // were copied twice more), their parts moved out where kept.
        for ((id, entry), (edges_ok, data_ok)) in entries.iter_mut().zip(checks) {
            let id = *id;
            let theirs = (entry.edges_stamp, entry.data_stamp);
            let placeholder = entry.data.as_deref() == Some(PLACEHOLDER);
            let unsigned = entry.edges_signature.is_none() && entry.data_signature.is_none();
            let slot = if id == self.id {
                let edges = entry
                    .edges_stamp
                    .map(|s| (s, entry.connected_to.to_vec(), entry.edges_signature));
                let data = entry
                    .data_stamp
                    .map(|s| (s, entry.data.take(), entry.data_signature));
                self.hear_of_self(from, edges, data);
                ROOT
            } else {
                if !(edges_ok && data_ok) {
                    self.bad_signature(from, id);
                }
                let slot = self.graph.intern(self.now, id);
                let own = from_javascript && id == from;
                let news = self.merge_entry(from, slot, entry, own, (edges_ok, data_ok));
                if news {
                    self.entries_news += 1;
                    // Passed on as a relay of its flood would be; when the
                    // flood copies come they are no longer news and go no
                    // further, so each neighbour hears of each register
                    // once, by one route or the other.
                    self.queue_news_at(slot, Some(from), false);
                }
                if own {
                    self.pass_on_relinked(from, slot, news);
                }
                slot
            };
            if id != from {
                if self.all_we_know(slot, theirs) {
                    known.push(slot);
                }
                if from_javascript && placeholder {
                    self.correct_placeholder(from, slot);
                }
                if from_javascript && unsigned {
                    self.correct_unsigned(slot);
                }
            }
        }
        if let Some(link) = self.links.get_mut(&from) {
            for slot in known {
                link.outbox.remove(slot);
            }
        }
    }

    /// `from`'s notices of nodes it holds: each one it holds at least as
    /// new as we do is struck off its outbox, as if it had sent us the
    /// entry. Notices of nodes we do not know change nothing (a notice
    /// never adds a node), nor do notices of `from` itself or of us (see
    /// [`Presence::all_we_know`] and `have_at`).
    pub(super) fn take_notices(&mut self, from: PeerId, notices: &[Have]) {
        if notices.is_empty() {
            return;
        }
        let Some(link) = self.links.get(&from) else {
            return;
        };
        if link.outbox.owes_nothing() {
            // Nothing to strike off.
            return;
        }
        let mut known = Vec::new();
        for have in notices {
            if have.id == from || have.id == self.id {
                continue;
            }
            // Most notices name nodes we owe `from` nothing of: those are
            // settled by the outbox's bit, without reading the node.
            let Some(slot) = self.graph.slot_if(&have.id, |s| link.outbox.owes(s)) else {
                continue;
            };
            if self.all_we_know(slot, (Some(have.edges), Some(have.data))) {
                known.push(slot);
            }
        }
        if let Some(link) = self.links.get_mut(&from) {
            for slot in known {
                link.outbox.remove(slot);
            }
        }
    }

    /// For each entry, whether its edge list's and its data's signatures
    /// hold (true when there is nothing to check: not news, not signed,
    /// verification off, or our own entry, which `hear_of_self` checks).
    fn check_signatures(&self, entries: &[(PeerId, StateEntry)]) -> Vec<(bool, bool)> {
        let mut results = vec![(true, true); entries.len()];
        if !self.verify_signatures {
            return results;
        }
        let mut claims = Vec::new();
        let mut whose = Vec::new();
        for (i, (id, entry)) in entries.iter().enumerate() {
            if *id == self.id {
                continue;
            }
            let (edges, data) = news_in(self.graph.get(id).map(|n| &n.payload), entry);
            if let Some(claim) = edges.then(|| edges_claim(*id, entry)).flatten() {
                claims.push(claim);
                whose.push((i, false));
            }
            if let Some(claim) = data.then(|| data_claim(*id, entry)).flatten() {
                claims.push(claim);
                whose.push((i, true));
            }
        }
        for ((i, is_data), ok) in whose.into_iter().zip(sign::verify_all(&claims)) {
            if is_data {
                results[i].1 = ok;
            } else {
                results[i].0 = ok;
            }
        }
        results
    }

    /// Whether stamps `theirs`, which a peer told us the node in `slot`
    /// has, are all we know of it: then that peer need not hear of the node
    /// from us. Never asked for the peer itself: a peer that restarted
    /// without a larger incarnation shows stamps equal to its previous
    /// life's over other contents, and hearing what we know of it is how it
    /// finds out and moves past them.
    fn all_we_know(&self, slot: Slot, theirs: (Option<Stamp>, Option<Stamp>)) -> bool {
        let (Some(edges), Some(data)) = theirs else {
            return false;
        };
        let Some(node) = self.graph.node_at(slot) else {
            return false;
        };
        let ours = &node.payload;
        Some(edges) >= ours.edges_stamp() && Some(data) >= ours.data_stamp()
    }

    /// Merges one node of a view from `from` into the node in `slot`; true
    /// when anything was news. `own`: a JavaScript peer's entry of itself,
    /// whose data is its own word. A register whose signature failed
    /// (`edges_ok`, `data_ok` false) is left out.
    fn merge_entry(
        &mut self,
        from: PeerId,
        slot: Slot,
        entry: &mut StateEntry,
        own: bool,
        (edges_ok, data_ok): (bool, bool),
    ) -> bool {
        let Some(node) = self.graph.node_at(slot) else {
            return false;
        };
        let record = &node.payload;
        let (edges_news, data_news) = news_in(Some(record), entry);
        let (edges_stamp, data_stamp) = (record.edges_stamp(), record.data_stamp());
        let signs = record.is_signed();
        let ours = record.wire_data();
        let (has_data, same_data) = (ours.is_some(), ours == entry.data.as_deref());
        let ours_placeholder = ours == Some(PLACEHOLDER);
        let mut news = false;
        let edges_taken = entry
            .edges_stamp
            .filter(|_| edges_news && edges_ok)
            .map(|stamp| (stamp, entry.edges_signature));
        let data_taken = entry.data_stamp.filter(|_| data_news && data_ok);
        let before = edges_taken.and_then(|_| self.edges_before(slot));
        let mut data = entry.data.take();
        // The registers that are news go into the record at once: a signed
        // origin's entry is usually news in both, one new block for both.
        let judged = if edges_taken.is_some() || data_taken.is_some() {
            let data_register = data_taken.map(|s| (Some(s), entry.data_signature, data.take()));
            self.take_registers(slot, edges_taken, data_register)
        } else {
            None
        };
        match entry.edges_stamp {
            Some(_) if edges_taken.is_some() => {
                self.replace_edges(slot, &entry.connected_to);
                if let Some(before) = before {
                    self.edges_to_javascript(Some(from), slot, before);
                }
                news = true;
            }
            None if edges_stamp.is_none() && !signs => {
                // A JavaScript peer's view: no order, so only add, as the original.
                let mut edges = self.graph.edges_at(slot);
                let before = edges.len();
                edges.extend(entry.connected_to.iter().copied());
                edges.sort_unstable();
                edges.dedup();
                if edges.len() != before {
                    self.replace_edges(slot, &edges);
                    self.tunnel_news(slot);
                    news = true;
                }
            }
            _ => {}
        }
        match entry.data_stamp {
            Some(_) if data_taken.is_some() => {
                self.tell_data(slot, judged);
                self.data_to_javascript(None, Some(from), slot);
                news = true;
            }
            // Unordered data (never of an origin that signs): taken over
            // none, over the original's placeholder, and from its origin
            // itself; the placeholder never replaces data (the original
            // merges it as "no keys").
            None if data_stamp.is_none()
                && !signs
                && data.is_some()
                && !same_data
                && (!has_data || ours_placeholder || own) =>
            {
                self.apply_data(slot, None, None, data);
                self.tunnel_news(slot);
                news = true;
            }
            _ => {}
        }
        // Nothing changed, nothing to settle.
        if news {
            self.settle_origin(slot);
        }
        news
    }
}
