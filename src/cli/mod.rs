//! The command-line front end: argument parsing and the commands, each a thin
//! shell over the library.

mod decode;
mod demo;
mod huge_pages;
mod join;
mod sim;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Who is online in a hypercore swarm, and what each peer advertises.
#[derive(Debug, Parser)]
#[command(name = "hyper-presence", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Join a topic as a peer and show who is online, live (or as JSON
    /// lines with --json). Each JSON line on stdin replaces our data.
    Join(join::JoinArgs),
    /// Start peers in this process over real loopback TCP (Noise,
    /// hypercore channels), wait until all agree, kill one, restart it, and
    /// report how long each took. Exits 0 only if every check held.
    Demo(demo::DemoArgs),
    /// Run peers in the deterministic in-memory network, through a scenario
    /// file or the default (all join at once, one crashes, it restarts, one
    /// leaves); report how fast everyone agrees after each event, and at
    /// what cost; optionally chart agreement over time.
    Sim(sim::SimArgs),
    /// Decode a flood packet (hex) as a peer receives it, and print it as JSON.
    Decode(decode::DecodeArgs),
}

/// Runs the parsed command; an `Err` is a usage or input problem (exit 2).
pub fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Join(args) => join::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Decode(args) => decode::run(args),
    }
}

/// Prints a line on stdout; if nobody reads it any more (a closed pipe, as
/// in `hyper-presence decode … | head -3`), stops quietly instead of
/// panicking as `println!` would.
fn out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}").is_err() {
        std::process::exit(1);
    }
}
