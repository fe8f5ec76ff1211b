//! The `hyper-presence` command.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("hyper-presence: {error}");
            ExitCode::from(2)
        }
    }
}
