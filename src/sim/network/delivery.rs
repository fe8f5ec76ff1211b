//! Moving packets: running the calendar of what happens when, each link's
//! latency, delivering a packet to its engine (or a test's packet in an
//! engine's place) and sending an engine's outputs on.
//! Apart from the network's shape (who is linked, who is live) because
//! this is the loop every simulated packet goes through.

use std::time::Duration;

use bytes::Bytes;

use super::{InFlight, Network, Scheduled, Slot};
use rand::RngExt;

use crate::proto::{Destination, Output, PeerId, Presence, Raw};

impl Network {
    /// Delivers packets and fires timers in time order until nothing is in
    /// flight and no timer is pending, or `max_steps` events have happened.
    /// Returns true when the network went quiet.
    pub fn run_until_quiet(&mut self, max_steps: u64) -> bool {
        for _ in 0..max_steps {
            let Some((at, what)) = self.pop() else {
                return true;
            };
            self.now = self.now.max(at);
            match what {
                Scheduled::Deliver(packet) => {
                    self.in_flight -= 1;
                    self.deliver(packet);
                }
                // A timer queued for a deadline that has since moved is stale.
                Scheduled::Timer(slot) => {
                    let peer = &mut self.peers[slot as usize];
                    if peer.timer == Some(at) {
                        peer.timer = None;
                        let now = self.now;
                        self.with_node(slot, |n| n.tick(now));
                    }
                }
            }
        }
        self.queue.is_empty()
    }

    /// Runs every event due within `span` from now, then sets the clock to
    /// the end of it. Returns true when no packet is left in flight.
    pub fn run_for(&mut self, span: Duration) -> bool {
        let end = self.now + span;
        while self
            .queue
            .first_key_value()
            .is_some_and(|(at, _)| *at <= end)
        {
            self.run_until_quiet(1);
        }
        self.now = end;
        self.in_flight == 0
    }

    /// Sends `packet` from `from` to `to` over their live link, as if
    /// `from`'s engine had sent it: how a test plays a hostile peer that
    /// writes what it likes. Returns false (and sends nothing) without a
    /// live link.
    pub fn inject(&mut self, from: PeerId, to: PeerId, packet: Bytes) -> bool {
        let (Some(x), Some(y)) = (self.live_slot(&from), self.live_slot(&to)) else {
            return false;
        };
        let key = (x.min(y), x.max(y));
        let Some(&generation) = self.links.get(&key) else {
            return false;
        };
        let at = self.now + self.latency(&key);
        let packet = InFlight {
            from: x,
            to: y,
            generation,
            packet: self.fields.store(&packet),
        };
        self.schedule(at, Scheduled::Deliver(packet));
        true
    }

    pub(super) fn schedule(&mut self, at: Duration, what: Scheduled) {
        if matches!(what, Scheduled::Deliver(_)) {
            self.in_flight += 1;
        }
        self.queue.entry(at).or_default().push_back(what);
    }

    pub(super) fn pop(&mut self) -> Option<(Duration, Scheduled)> {
        let mut bucket = self.queue.first_entry()?;
        let at = *bucket.key();
        let what = bucket.get_mut().pop_front();
        if bucket.get().is_empty() {
            bucket.remove();
        }
        what.map(|w| (at, w))
    }

    pub(super) fn latency(&mut self, link: &(Slot, Slot)) -> Duration {
        let own = self.faults.latency.sample(&mut self.rng);
        match self.link_base.get(link) {
            Some(base) => own + *base,
            None => own,
        }
    }

    pub(super) fn deliver(&mut self, packet: InFlight) {
        let link = (packet.from.min(packet.to), packet.from.max(packet.to));
        if self.links.get(&link) != Some(&packet.generation) {
            self.fields.release(packet.packet);
            self.stats.lost += 1;
            return;
        }
        if self.faults.drop > 0.0 && self.rng.random_bool(self.faults.drop) {
            self.fields.release(packet.packet);
            self.stats.lost += 1;
            self.stats.redials += 1;
            let (a, b) = (
                self.peers[packet.from as usize].id,
                self.peers[packet.to as usize].id,
            );
            self.unlink(packet.from, packet.to);
            self.connect(a, b);
            return;
        }
        self.stats.delivered += 1;
        self.stats.delivered_bytes += packet.packet.len() as u64;
        self.stats.last_delivery = self.now;
        let now = self.now;
        let from = self.peers[packet.from as usize].id;
        let bytes = self.fields.restore(packet.packet);
        self.with_node(packet.to, |n| n.receive(now, from, bytes));
    }

    /// Runs `f` on a live engine, then carries out everything it queued.
    pub(super) fn with_node(&mut self, slot: Slot, f: impl FnOnce(&mut Presence<Raw>)) {
        let peer = &mut self.peers[slot as usize];
        let Some(engine) = peer.engine.as_mut() else {
            return;
        };
        f(engine);
        let deadline = engine.poll_timeout();
        let outputs: Vec<Output<Bytes>> = engine.drain_outputs().collect();
        if let Some(at) = deadline {
            if peer.timer.is_none_or(|queued| at < queued) {
                peer.timer = Some(at);
                self.schedule(at, Scheduled::Timer(slot));
            }
        }
        for output in outputs {
            match output {
                Output::Send { to, packet } => self.transmit(slot, to, packet),
                Output::Event(event) => {
                    if self.record_events {
                        self.peers[slot as usize].events.push(event);
                    }
                }
            }
        }
    }

    pub(super) fn transmit(&mut self, from: Slot, to: Destination, packet: Bytes) {
        let mut targets = std::mem::take(&mut self.peers[from as usize].neighbours);
        let except = match to {
            Destination::Peer(p) => Some(p),
            Destination::Broadcast { except } => except,
        };
        let only = matches!(to, Destination::Peer(_));
        // Each copy is scheduled once the next is made from it (or after
        // the loop), so that the packet is split into fields only once.
        let mut made: Option<(Duration, InFlight)> = None;
        for &target in &targets {
            let is_except = Some(self.peers[target as usize].id) == except;
            if is_except != only {
                continue;
            }
            let link = (from.min(target), from.max(target));
            let Some(&generation) = self.links.get(&link) else {
                continue;
            };
            let copies =
                if self.faults.duplicate > 0.0 && self.rng.random_bool(self.faults.duplicate) {
                    2
                } else {
                    1
                };
            for _ in 0..copies {
                let at = self.now + self.latency(&link);
                let stored = match made.take() {
                    Some((before, previous)) => {
                        let stored = self.fields.copy(&previous.packet);
                        self.schedule(before, Scheduled::Deliver(previous));
                        stored
                    }
                    None => self.fields.store(&packet),
                };
                let packet = InFlight {
                    from,
                    to: target,
                    generation,
                    packet: stored,
                };
                made = Some((at, packet));
            }
        }
        if let Some((at, packet)) = made {
            self.schedule(at, Scheduled::Deliver(packet));
        }
        // Borrowed out above so the RNG and the queue could be used meanwhile.
        std::mem::swap(&mut self.peers[from as usize].neighbours, &mut targets);
    }
}
