//! The peers a DHT lookup found, and when to dial each: bounded, with
//! backoff, sans-IO (the caller passes the time). A flood of lookup results
//! costs at most [`MAX_FOUND`] entries of a few dozen bytes each.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Peers remembered at most. Beyond that a new peer replaces the one heard
/// of longest ago that is neither being dialled nor linked; if every entry
/// is busy the new one is dropped (a later lookup offers it again).
pub const MAX_FOUND: usize = 1024;

/// Dials under way at once, at most.
pub const MAX_DIALS: usize = 8;

/// Relay addresses kept per peer (JavaScript announces up to 3).
pub const MAX_RELAYS: usize = 3;

/// First redial delay after a failure; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Longest redial delay.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How long a peer that turned out not to be one of ours (a JavaScript
/// hyperswarm peer, which dials us itself) is left alone.
const FOREIGN_PAUSE: Duration = Duration::from_secs(600);

/// A link that lived this long starts the backoff over when it ends.
const LIVED: Duration = Duration::from_secs(10);

/// How a dial or a link ended, as the table takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The DHT connection failed (no route, no answer).
    Failed,
    /// Connected, and the remote proved it is one of ours: the link is up.
    Linked,
    /// Connected, and the remote is not one of ours: we do not open
    /// presence toward it and leave the dial to it.
    Foreign,
    /// A link of ours ended; the peer may be redialled.
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Dialling,
    Linked,
}

#[derive(Debug, Clone)]
struct Entry {
    relays: Vec<SocketAddr>,
    state: State,
    next: Instant,
    backoff: Duration,
    seen: Instant,
    linked_at: Option<Instant>,
}

/// The table of found peers, keyed by their DHT public key (their identity).
#[derive(Debug)]
pub struct Found {
    cap: usize,
    entries: HashMap<[u8; 32], Entry>,
    /// Offers dropped because every entry was busy.
    dropped: u64,
}

impl Found {
    /// An empty table holding at most `cap` peers.
    pub fn new(cap: usize) -> Self {
        Found {
            cap: cap.max(1),
            entries: HashMap::new(),
            dropped: 0,
        }
    }

    /// A lookup found `key` (reachable through `relays`); `delay` puts off
    /// the first dial of a new peer (to let the other side dial first).
    pub fn offer(&mut self, key: [u8; 32], relays: &[SocketAddr], now: Instant, delay: Duration) {
        let relays: Vec<SocketAddr> = relays.iter().take(MAX_RELAYS).copied().collect();
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.seen = now;
            if !relays.is_empty() {
                entry.relays = relays;
            }
            return;
        }
        if self.entries.len() >= self.cap && !self.evict() {
            self.dropped += 1;
            return;
        }
        self.entries.insert(
            key,
            Entry {
                relays,
                state: State::Idle,
                next: now + delay,
                backoff: FIRST_BACKOFF,
                seen: now,
                linked_at: None,
            },
        );
    }

    /// Drops the idle entry heard of longest ago; false if none is idle.
    fn evict(&mut self) -> bool {
        let oldest = self
            .entries
            .iter()
            .filter(|(_, e)| e.state == State::Idle)
            .min_by_key(|(_, e)| e.seen)
            .map(|(k, _)| *k);
        match oldest {
            Some(key) => {
                self.entries.remove(&key);
                true
            }
            None => false,
        }
    }

    /// Up to `limit` peers due for a dial, marked as being dialled. Peers
    /// `skip` says are linked already (found the other way) are put off.
    pub fn due(
        &mut self,
        now: Instant,
        limit: usize,
        skip: impl Fn(&[u8; 32]) -> bool,
    ) -> Vec<([u8; 32], Vec<SocketAddr>)> {
        let mut out = Vec::new();
        for (key, entry) in &mut self.entries {
            if out.len() >= limit {
                break;
            }
            if entry.state != State::Idle || entry.next > now {
                continue;
            }
            if skip(key) {
                entry.next = now + FIRST_BACKOFF * 5;
                continue;
            }
            entry.state = State::Dialling;
            out.push((*key, entry.relays.clone()));
        }
        out
    }

    /// Records how a dial or link of `key` ended.
    pub fn outcome(&mut self, key: &[u8; 32], outcome: Outcome, now: Instant) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        match outcome {
            Outcome::Linked => {
                entry.state = State::Linked;
                entry.linked_at = Some(now);
            }
            Outcome::Foreign => {
                entry.state = State::Idle;
                entry.next = now + FOREIGN_PAUSE;
            }
            Outcome::Failed | Outcome::Ended => {
                let lived = entry
                    .linked_at
                    .take()
                    .is_some_and(|at| now.duration_since(at) >= LIVED);
                if lived {
                    entry.backoff = FIRST_BACKOFF;
                }
                entry.state = State::Idle;
                entry.next = now + entry.backoff;
                entry.backoff = (entry.backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    /// How many peers are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no peer is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Offers dropped so far because the table was full of busy entries.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&i.to_le_bytes());
        k
    }

    #[test]
    fn a_flood_of_offers_stays_within_the_cap() {
        let now = Instant::now();
        let mut found = Found::new(16);
        let relays: Vec<SocketAddr> = (0..50)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect();
        for i in 0..10_000 {
            found.offer(key(i), &relays, now, Duration::ZERO);
        }
        assert_eq!(found.len(), 16);
        let due = found.due(now, usize::MAX, |_| false);
        assert_eq!(due.len(), 16);
        assert!(due.iter().all(|(_, r)| r.len() == MAX_RELAYS));
        // Every entry is being dialled now: new offers are dropped, not kept.
        found.offer(key(20_000), &[], now, Duration::ZERO);
        assert_eq!(found.len(), 16);
        assert_eq!(found.dropped(), 1);
    }

    #[test]
    fn failures_back_off_and_foreign_peers_are_left_alone() {
        let t0 = Instant::now();
        let mut found = Found::new(8);
        found.offer(key(1), &[], t0, Duration::ZERO);
        assert_eq!(found.due(t0, 8, |_| false).len(), 1);
        assert!(
            found.due(t0, 8, |_| false).is_empty(),
            "dialling once at a time"
        );
        found.outcome(&key(1), Outcome::Failed, t0);
        assert!(found
            .due(t0 + Duration::from_millis(500), 8, |_| false)
            .is_empty());
        assert_eq!(found.due(t0 + FIRST_BACKOFF, 8, |_| false).len(), 1);
        found.outcome(&key(1), Outcome::Failed, t0 + FIRST_BACKOFF);
        assert!(found.due(t0 + FIRST_BACKOFF * 2, 8, |_| false).is_empty());
        assert_eq!(found.due(t0 + FIRST_BACKOFF * 3, 8, |_| false).len(), 1);
        found.outcome(&key(1), Outcome::Foreign, t0);
        assert!(found
            .due(t0 + Duration::from_secs(300), 8, |_| false)
            .is_empty());
    }

    #[test]
    fn linked_peers_are_not_dialled_and_the_limit_holds() {
        let now = Instant::now();
        let mut found = Found::new(64);
        for i in 0..20 {
            found.offer(key(i), &[], now, Duration::ZERO);
        }
        let due = found.due(now, 5, |k| *k == key(3));
        assert_eq!(due.len(), 5);
        assert!(due.iter().all(|(k, _)| *k != key(3)));
        let first = due[0].0;
        found.outcome(&first, Outcome::Linked, now);
        let later = now + Duration::from_secs(3600);
        let again = found.due(later, usize::MAX, |_| false);
        assert!(
            again.iter().all(|(k, _)| *k != first),
            "a linked peer is not dialled"
        );
    }
}
