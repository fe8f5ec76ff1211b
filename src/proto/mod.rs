//! The protocol core, sans-IO: wire codec, flood layer, graph and presence
//! state machine. Nothing here reads a clock, opens a socket or spawns a task;
//! drivers (the network node, the simulator) feed inputs and carry out outputs.

mod id;
pub mod wire;

pub use id::{PeerId, PeerIdError};
