//! hyper-presence: who is online in a hypercore swarm, and what each peer
//! advertises, by gossip over hypercore replication streams, in one network
//! with JavaScript peers on hypercore 10 and 11.

// Denied everywhere; one module borrows a socket by its descriptor number
// (net::discovery::dht::probe_filter) and says why it is sound.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod net;
pub mod proto;
pub mod sim;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
