//! The protocol core, sans-IO: wire codec, flood layer, graph and presence
//! state machine. Nothing here reads a clock, opens a socket or spawns a task;
//! drivers (the network node, the simulator) feed inputs and carry out outputs.

mod config;
pub mod data;
pub mod flood;
pub mod graph;
mod id;
mod interner;
mod outbox;
mod presence;
pub mod sign;
pub mod wire;

pub use config::{Config, DEFAULT_EXTENSION, DEFAULT_MAX_SEND_BYTES, DEFAULT_MAX_VIEW_BYTES};
pub use data::{DataCodec, DataError, Json, Raw};
pub use id::{PeerId, PeerIdError};
pub use interner::{Interner, SharedBlock, DEFAULT_INTERNER_CAPACITY};
pub use presence::{Destination, EngineStats, Event, Input, Output, Presence, SetDataError};
pub use sign::Signer;
