//! Scenarios: a network, its faults, and what happens to it over time
//! (joins, leaves, crashes, restarts, data changes, partitions and heals),
//! read from TOML or JSON and run in the simulated [`Network`], with one
//! report row per event: how long until everyone agreed again, at what cost
//! in packets, and how agreement grew meanwhile.
//!
//! ```
//! use hyper_presence::sim::scenario::{self, Scenario};
//!
//! let scenario = Scenario::from_toml(r#"
//!     peers = 20
//!     seed = 3
//!     topology = { shape = "regular", degree = 4 }
//!
//!     [[events]]
//!     action = "join-all"
//!
//!     [[events]]
//!     action = "crash"
//!
//!     [[events]]
//!     at_ms = 5000
//!     action = "restart"
//! "#)?;
//! let report = scenario::run(&scenario)?;
//! assert_eq!(report.rows.len(), 3);
//! assert!(report.all_correct());
//! # Ok::<(), scenario::ScenarioError>(())
//! ```
//!
//! The file format is in `format` (read and checked by `parse`), the run in
//! `runner`, and its rows in `report`; all are re-exported here.
//!
//! [`Network`]: super::Network

mod format;
mod parse;
mod report;
mod runner;
#[cfg(test)]
mod tests;

pub use format::{
    Action, FaultSpec, LatencySpec, Sampling, Scenario, Shape, Step, Topology, MAX_PEERS,
};
pub use parse::ScenarioError;
pub use report::{EventReport, Report, Sample};
pub use runner::{run, run_with, Progress};
