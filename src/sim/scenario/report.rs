//! What a run reports: one row per event, with agreement over time. Apart
//! from the runner because the CLI prints and charts these rows without
//! caring how they were made.

use serde::Serialize;

/// Agreement at one moment while an event settled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Simulated time since the event, ms.
    pub t_ms: f64,
    /// Share of the sampled live peers whose online list is exactly their
    /// connected component (0 to 1).
    pub agreement: f64,
}

/// What one event cost and how the network recovered from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventReport {
    /// The event's position, from 1.
    pub index: usize,
    /// Its label, or its action.
    pub event: String,
    /// What happened, with the peers it picked ("crash peer 17").
    pub detail: String,
    /// Simulated time of the event, ms from the start.
    pub at_ms: f64,
    /// Live peers after the event.
    pub peers: usize,
    /// Open links after the event.
    pub links: usize,
    /// Simulated time from the event to the last delivery before every view
    /// was found right again, ms (views are checked at each sample, so this
    /// may count harmless deliveries up to one sampling interval late);
    /// `None` when the next event came first or the views never came right.
    pub agreed_after_ms: Option<f64>,
    /// Packets delivered from this event to the next.
    pub packets: u64,
    /// Bytes in them.
    pub bytes: u64,
    /// Packets lost meanwhile (faults, closed links).
    pub lost: u64,
    /// Packets per live peer other than one: `packets / (peers - 1)`.
    pub amplification: f64,
    /// Whether every live peer's online list was exactly its component, with
    /// everyone's latest data (`None` when the next event came first).
    pub correct: Option<bool>,
    /// What was wrong, when `correct` is false (the first few problems).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Agreement over simulated time while the event settled.
    pub agreement: Vec<Sample>,
    /// Nodes newly known by an engine, summed over the engines, from this
    /// event to the next: a join of all N peers at once is N(N−1).
    pub learned: u64,
    /// Entries about a node that the engines decoded meanwhile, news or not
    /// (see [`EngineStats`]): divided by `learned`, how many times each
    /// thing learned was heard.
    ///
    /// [`EngineStats`]: crate::proto::EngineStats
    pub entries_received: u64,
    /// Of `entries_received`, those that were news to the engine: divided
    /// by `learned`, how many versions of each node went round, the floor
    /// of entries received per learning.
    pub entries_news: u64,
    /// `Have` notices the engines decoded meanwhile (a node's id and
    /// stamps, telling its receiver not to send the node back).
    pub notices_received: u64,
    /// Wall-clock time the simulator took for this event, s (this and
    /// `check_s` are the only fields that differ between two runs of the
    /// same seed).
    pub wall_s: f64,
    /// Of `wall_s`, the time spent checking views: sampling agreement and
    /// the full check that every view is right.
    pub check_s: f64,
}

/// The rows of one run, one per event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// One row per event, in order.
    pub rows: Vec<EventReport>,
    /// Simulated time at the end of the run, ms.
    pub end_ms: f64,
}

impl Report {
    /// True when no event ended with wrong views and the last one settled
    /// with everyone right.
    pub fn all_correct(&self) -> bool {
        self.rows.iter().all(|r| r.correct != Some(false))
            && self.rows.last().is_some_and(|r| r.correct == Some(true))
    }
}
