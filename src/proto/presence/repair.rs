//! Filling holes in the view by asking JavaScript neighbours for their
//! views again. A hole is a node that peers we reach list but that has said
//! nothing we hold: without its own word it cannot count as online.
//!
//! Between our own peers a hole fills by itself: whoever holds the node's
//! registers passes them on as news. Behind JavaScript peers it may not. The
//! original relays a restarted peer's first packets only if its duplicate
//! cache has forgotten the previous life's numbers, and it never passes a
//! view on. Our peers next to a relinked JavaScript peer pass its own entry
//! on in a tunnel (`pass_on_relinked`), but a tunnel reaches only who is
//! linked when it passes: a peer of ours that joins behind JavaScript peers
//! just after learns the relinked peer's links from others' edge lists but
//! never its own word. A JavaScript neighbour's view (which it sends when
//! anyone asks) is then the one place left that has it.
//!
//! Asking costs a JavaScript neighbour a whole view to each of its
//! neighbours, and some holes never fill (the original keeps edges to long
//! gone peers in views it merged), so asks are spaced: a hole must outlast
//! one period ([`Config::repair_after`]) before the first ask, the same
//! holes are asked about again at doubling intervals up to
//! [`MAX_BACKOFF`] periods, and new holes start that over.
//!
//! [`Config::repair_after`]: crate::proto::Config::repair_after

use std::time::Duration;

use super::Presence;
use crate::proto::data::DataCodec;

/// The longest wait between two asks about the same holes, in periods.
pub(super) const MAX_BACKOFF: u32 = 64;

/// When we look for holes next and what we did about the last ones.
#[derive(Debug, Default)]
pub(super) struct Repair {
    /// A JavaScript neighbour was up at the last look: holes are watched for.
    active: bool,
    /// When the holes seen are looked at again; `None` while there are
    /// none (or nobody to ask).
    pub(super) due: Option<Duration>,
    /// The holes last asked about (their fingerprint), when we may ask
    /// about them again, and the wait after that ask, in periods.
    asked: Option<(u64, Duration, u32)>,
}

impl<C: DataCodec> Presence<C> {
    /// A JavaScript neighbour is up: from now on holes are watched for.
    pub(super) fn start_repair(&mut self) {
        self.repair.active = !self.repair_after.is_zero();
    }

    /// At the end of an input, with reachability settled: a hole starts
    /// the countdown to asking, unless one runs already.
    pub(super) fn watch_holes(&mut self) {
        if self.repair.active
            && self.repair.due.is_none()
            && self.graph.silent_listed().next().is_some()
        {
            self.repair.due = Some(self.now + self.repair_after);
        }
    }

    /// When the countdown ends and there are still holes, asks every
    /// JavaScript neighbour for its view, unless we asked about the same
    /// holes less than the current wait ago. Called with reachability
    /// settled.
    pub(super) fn repair_holes(&mut self) {
        if self.repair.due.is_none_or(|due| due > self.now) {
            return;
        }
        self.repair.due = None;
        let peers = self.javascript_peers(None);
        if peers.is_empty() {
            self.repair = Repair::default();
            return;
        }
        let Some(holes) = self.holes_fingerprint() else {
            self.repair.asked = None;
            return;
        };
        let (next_ask, backoff) = match self.repair.asked {
            Some((asked, next_ask, backoff)) if asked == holes => (next_ask, backoff),
            _ => (self.now, 1),
        };
        if next_ask > self.now {
            self.repair.due = Some(next_ask);
            return;
        }
        for peer in peers {
            self.request_view(peer);
        }
        let next_ask = self.now + self.repair_after.saturating_mul(backoff);
        self.repair.asked = Some((holes, next_ask, (backoff * 2).min(MAX_BACKOFF)));
        // Looked at again after a period: these holes, if they stay, are
        // asked about again when the wait is over; new ones at once.
        self.repair.due = Some(self.now + self.repair_after);
    }

    /// Which nodes are holes, as one number; `None` for none.
    fn holes_fingerprint(&self) -> Option<u64> {
        let mut holes = self.graph.silent_listed().peekable();
        holes.peek()?;
        // Order-independent: the graph keeps them in no particular order.
        Some(holes.fold(0u64, |sum, slot| {
            sum.wrapping_add(u64::from(slot).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
        }))
    }
}
