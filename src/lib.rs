//! hyper-presence: who is online in a hypercore swarm, and what each peer
//! advertises, by gossip over hypercore-protocol.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod proto;
pub mod sim;
