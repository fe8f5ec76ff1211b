//! How a presence engine is set up: identity, data, codec and the knobs of
//! its timers and bounds.

use std::num::NonZeroUsize;
use std::time::Duration;

use super::data::{DataCodec, Json};
use super::graph::IdTable;
use super::interner::Interner;
use super::sign::Signer;
use super::wire::Limits;
use super::PeerId;

/// Everything a [`Presence`](super::Presence) engine is configured with. Build
/// one with [`Config::new`] (JSON data, `{}` to start) or
/// [`Config::with_codec`], then adjust fields.
#[derive(Debug, Clone)]
pub struct Config<C: DataCodec = Json> {
    /// Our id: the static public key the replication stream shows peers.
    pub id: PeerId,
    /// The data we advertise from the start (the original's `data`; `{}` for JSON).
    pub data: C::Value,
    /// How data is encoded (the original's `encoding`; JSON by default).
    pub codec: C,
    /// The extension message name on the replication channel. Default
    /// `hyper-presence`; peers only hear each other under the same name. The
    /// engine does not use it; the network driver does.
    pub extension: String,
    /// Which life of this peer this is; must grow across restarts of the same
    /// id so that our new state supersedes the old everywhere at once. The
    /// network node uses the wall clock in milliseconds. Default 0: still
    /// correct, because a peer that hears of a newer life of itself moves
    /// past it (a restart is then noticed one exchange later).
    pub incarnation: u64,
    /// Hop budget written on packets we originate. Default 255, as the
    /// original. Our own peers relay our stamped messages past 0 (their
    /// dedupe bounds the flood), so this only limits JavaScript relays.
    pub ttl: u32,
    /// How long a peer may be without any connection before we announce that
    /// we lost it (the original's fixed 500 ms). A reconnection within the
    /// grace is no event at all. Zero announces at once. Default 500 ms.
    pub disconnect_grace: Duration,
    /// How long a node that no path reaches is kept before it is forgotten.
    /// Kept nodes let news that arrives before the path to it be used; too
    /// short and crossing messages are lost again (the original's defect),
    /// too long and departed peers' state lingers in memory. A node goes
    /// at the first sweep after this (sweeps run every quarter of it, and
    /// the view keeps times to a sixty-fourth of it), so between this and
    /// about 1.3 times this after it fell unreachable. Default 60 s.
    pub forget_after: Duration,
    /// Least time between two `Online` events; changes in between are
    /// reported together at the end of it. Zero reports every change at
    /// once. Raise it for very large networks, where each event carries a
    /// list of every online peer. Default 0.
    pub online_debounce: Duration,
    /// How long our own connection changes wait before they are flooded, so
    /// that links opened (or lost) together go out as one announcement of the
    /// whole edge list instead of one each. Our own view and whole-view
    /// answers change at once; only the flood waits. JavaScript peers apply
    /// an announcement as "add (or remove) this one peer", so with a window
    /// they learn the other changes of a batch only from a whole-view
    /// exchange. Zero floods every change at once. Default 0.
    pub announce_window: Duration,
    /// How long news of other peers waits before it is passed on to a
    /// neighbour that takes batches (one of ours; JavaScript peers get each
    /// flood packet relayed at once). Within the window, every node whose
    /// state changed is queued once per neighbour, and at its end the
    /// neighbour gets one packet with their current state: many changes
    /// cost one entry, and what the neighbour told us itself is not sent
    /// back. Each neighbour gets at most one packet of
    /// [`Config::max_send_bytes`] per window; the rest waits for the next,
    /// which bounds what a burst of news puts on a link. Zero passes
    /// everything on at the end of each input, without that bound. Default
    /// 10 ms: news crosses a hop at most that much later.
    pub gossip_window: Duration,
    /// Whether we ask our peers for `Have` notices: a neighbour that newly
    /// holds a node tells us in its next batch, ahead of its paced
    /// entries, and we strike the node off what we owe it. On a 1,000-peer
    /// join this cuts the entries each peer receives by an eighth and the
    /// time to agree by a tenth (a restart's by a third at 3,000 peers),
    /// for about as many bytes, half again as many packets and up to a
    /// fifth more engine CPU (docs/PERFORMANCE.md). Default true.
    pub have_notices: bool,
    /// How long a hole in the view may last while we have JavaScript
    /// neighbours before we ask them for their views again: a node that
    /// peers we reach list but that has said nothing we hold (so it cannot
    /// count as online). The original drops a restarted peer's first
    /// packets as duplicates of its previous life and never passes views
    /// on, so the peer's own word can miss us for good; the view of a
    /// JavaScript neighbour that has it fills the hole. The same holes are
    /// asked about again at doubling intervals up to 64 times this; new
    /// ones after this long. Zero never asks. Default 2 s.
    pub repair_after: Duration,
    /// Most nodes the view may hold, online or kept while unreachable. A
    /// message that would take the view past it makes room as for
    /// [`Config::max_view_bytes`] (each direct peer's share is this count
    /// divided among them); if there is still none it is dropped with
    /// [`Event::ViewFull`](super::Event::ViewFull). Without a bound a peer
    /// could make us remember any number of invented ids. Default 100,000.
    pub max_known_peers: usize,
    /// Most bytes the view may hold, by the measure of
    /// [`Presence::view_bytes`](super::Presence::view_bytes): 160 bytes a
    /// node, plus its data and signatures, plus 4 bytes an edge past the
    /// first four. Each node is charged to the direct peer whose news
    /// brought it; when a message needs room that is not there, unreachable
    /// nodes are forgotten early, then nodes are evicted from the direct
    /// peers over their share (this budget divided among them; a peer that
    /// left keeps what it brought until another brings news of it), what
    /// only one neighbour vouches for first. A direct peer and its view therefore always get in, and
    /// one neighbour's invented nodes or large data cannot take more than
    /// its share. Default 64 MiB: 10,000 peers with typical data (a
    /// hundred bytes, signed) take about 4 MB, so they fit with up to 6 KiB
    /// of data each, and so do 100,000 peers with typical data.
    pub max_view_bytes: usize,
    /// Capacity of the (origin, number) duplicate cache used for messages
    /// without our stamps (JavaScript peers'). Default 4,096; the original's
    /// 255, shared by every origin, is what made busy meshes re-flood.
    pub dedupe_capacity: NonZeroUsize,
    /// Bounds on what is accepted from the wire (and on our own data size).
    pub limits: Limits,
    /// Largest packet we send, in bytes (an entry larger than that goes
    /// alone, up to the 64 KiB a hypercore frame carries); whole-view
    /// exchanges are split to fit, and with a gossip window it is also what
    /// one neighbour gets per window. Default 8,000: smaller batches leave
    /// more time for a neighbour's news to strike entries off before they
    /// go back to it (a 2,100-peer join moved 2.5 GB of packets, against
    /// 6.1 GB with 60,000), and a view of ten thousand peers still crosses
    /// a link in three seconds.
    pub max_send_bytes: usize,
    /// The key our registers are signed with; its public key must be
    /// [`Config::id`]. A real node always sets it (from its identity), so
    /// that nobody else can set our edge list or data anywhere. `None`
    /// leaves our registers unsigned, as a JavaScript origin's (tests,
    /// fuzzing). Default `None`.
    pub signer: Option<Signer>,
    /// Whether signatures on others' registers are checked. Default true.
    /// **Never false for a real node**: unchecked, a forged signature is as
    /// good as a real one. Only the simulator turns it off, to spare the
    /// CPU of thousands of honest engines checking each other; the rules
    /// (a signed register beats an unsigned one, an origin that signs is
    /// only moved by signed registers) and signing stay the same.
    pub verify_signatures: bool,
    /// A table the engine shares its nodes' signature and data blocks
    /// through, for simulators running many engines in one process: every
    /// engine given the same [`Interner`] keeps one copy of each distinct
    /// block between them instead of one each. What the engine does and
    /// sends is the same with or without it; a real node, one engine per
    /// process, never needs it. Default `None`.
    pub interner: Option<Interner>,
    /// A table the engine keeps its view's ids in, for simulators running
    /// many engines in one process: every engine given the same
    /// [`IdTable`] stores each id once between them and finds it through
    /// one index that stays in the cache, instead of one index each. What
    /// the engine does and sends is the same with or without it (a view's
    /// slots stay in the order it learnt the ids, which is the order its
    /// outboxes are taken in). Should the table fill up, the engine goes on
    /// with an index of its own. Default `None`.
    pub shared_ids: Option<IdTable>,
}

/// The default [`Config::max_send_bytes`].
pub const DEFAULT_MAX_SEND_BYTES: usize = 8_000;

/// The default [`Config::max_view_bytes`].
pub const DEFAULT_MAX_VIEW_BYTES: usize = 64 << 20;

/// The default extension name, as in the original.
pub const DEFAULT_EXTENSION: &str = "hyper-presence";

impl Config<Json> {
    /// JSON data, starting as `{}`, every other setting at its default, and
    /// our registers signed by `signer` (whose public key is our id).
    pub fn signed(signer: Signer) -> Self {
        let mut config = Config::new(signer.id());
        config.signer = Some(signer);
        config
    }

    /// JSON data, starting as `{}`, and every other setting at its default.
    pub fn new(id: PeerId) -> Self {
        Config::with_codec(
            id,
            Json::new(),
            serde_json::Value::Object(Default::default()),
        )
    }
}

impl<C: DataCodec> Config<C> {
    /// A configuration with the given codec and starting data.
    pub fn with_codec(id: PeerId, codec: C, data: C::Value) -> Self {
        Config {
            id,
            data,
            codec,
            extension: DEFAULT_EXTENSION.to_owned(),
            incarnation: 0,
            ttl: 255,
            disconnect_grace: Duration::from_millis(500),
            forget_after: Duration::from_secs(60),
            online_debounce: Duration::ZERO,
            announce_window: Duration::ZERO,
            gossip_window: Duration::from_millis(10),
            have_notices: true,
            repair_after: Duration::from_secs(2),
            max_known_peers: 100_000,
            max_view_bytes: DEFAULT_MAX_VIEW_BYTES,
            dedupe_capacity: NonZeroUsize::MIN.saturating_add(4095),
            limits: Limits::default(),
            max_send_bytes: DEFAULT_MAX_SEND_BYTES,
            signer: None,
            verify_signatures: true,
            interner: None,
            shared_ids: None,
        }
    }
}
