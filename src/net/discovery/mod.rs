//! Finding peers without addresses.

pub mod dht;
