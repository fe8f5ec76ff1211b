//! The network shell: presence over the hypercore replication transport on
//! real TCP.
//!
//! Each connection is TCP, then the layers of [`transport`] (Noise XX with
//! our identity key, secret-stream encryption, protomux, the
//! `hypercore/alpha` channel for the topic key), with presence packets as
//! extension messages, exactly as JavaScript hypercore 10/11 peers speak it.
//! [`link`] stacks the layers into one sans-IO value per connection;
//! [`connection`] is the tokio task that drives one; [`node`](Node) runs the
//! engine of [`crate::proto`] over all of them.

pub mod connection;
pub mod discovery;
pub mod identity;
pub mod link;
mod node;
pub mod session;
pub mod transport;

pub use identity::Identity;
pub use node::{topic_key, Node, NodeBuilder, NodeError};
