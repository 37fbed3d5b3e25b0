//! The `mdevkit` binary: parse, turn arguments into the library's option structs, call
//! it, print, and map the outcome to the exit status (0, 1, or 2 for a pending plan).

mod cli;
mod commands;
mod doctor;
mod inventory;
mod logger;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use cli::Cli;

fn main() -> ExitCode {
    logger::init();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // Usage errors exit 1, not clap's 2, which `plan` uses for "changes pending".
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match commands::run(cli.command) {
        Ok(outcome) => outcome.code(),
        Err(e) => {
            let text = mdevkit::error::chain(e.as_ref());
            let _ = writeln!(std::io::stderr().lock(), "Error: {text}");
            ExitCode::FAILURE
        }
    }
}
