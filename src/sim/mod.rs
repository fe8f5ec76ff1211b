//! A deterministic in-memory network of presence engines: the same
//! [`Presence`](crate::proto::Presence) the network node runs, driven by a
//! seeded random generator instead of sockets and a clock. Packets in flight
//! take a latency drawn from a distribution (so they overtake each other),
//! may be duplicated, and may be lost (a loss kills the link, as a lost TCP
//! segment would, and the link is redialled). Peers join, leave cleanly,
//! crash and restart; the network splits and heals. [`scenario`] runs all
//! of that from a file, event by event. Same seed, same run. [`interop`]
//! runs a scenario through the JavaScript original beside ours; [`mixed`]
//! runs JavaScript peers and ours in one network.

pub mod interop;
pub mod mixed;
mod network;
pub mod scenario;
pub mod topology;

pub use network::{
    sim_id, sim_index, sim_seed, sim_signer, Faults, Latency, Network, Stats, Truth,
};
