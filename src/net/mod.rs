//! The network shell: presence over hypercore-protocol on real TCP.
//!
//! Each connection is TCP, uint24 framing, a Noise handshake and a
//! hypercore-protocol channel for the topic key; presence packets travel as
//! extension messages. The sans-IO engine in [`crate::proto`] does all the
//! protocol work; this layer only carries bytes, keeps time and notices
//! connections ending (which the underlying crates do not report: see
//! [`framing`]).

pub mod connection;
pub mod framing;
pub mod hello;
pub mod identity;
mod node;
pub mod transport;

pub use identity::Identity;
pub use node::{topic_key, Node, NodeBuilder, NodeError};
