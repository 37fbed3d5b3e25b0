//! The `mdevctl` binary (and `lsmdev`, chosen by `argv[0]`): parse, turn arguments into
//! checked option structs, call the library, print, and map errors to exit codes.

mod commands;
mod logger;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use mdevctl::cli::{Command, Lsmdev, Mdevctl};
use mdevkit::ops::Context;
use mdevkit::{Host, Roots};

/// Prints command output; a closed stdout is an error (exit 1), as upstream.
fn emit(out: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| anyhow::anyhow!("Failed to write data: {e}"))
}

fn run(args: Vec<OsString>) -> anyhow::Result<()> {
    let Some(argv0) = args.first() else {
        anyhow::bail!("empty argument vector: cannot tell mdevctl from lsmdev");
    };
    // Arguments first: `--help`, `--version` and usage errors never depend on the
    // environment's settings.
    let is_lsmdev = argv0.to_str().is_some_and(|s| s.ends_with("lsmdev"));
    let command = if is_lsmdev {
        Command::List(Lsmdev::parse_from(args).list)
    } else {
        let cli = Mdevctl::parse_from(args);
        commands::check_relations(&cli.command);
        cli.command
    };
    let host = Host::new(Roots::from_env(|k| std::env::var_os(k)));
    let ctx = Context::new(host, commands::settings()?);
    match command {
        Command::List(a) => emit(&commands::list(&ctx, a)),
        Command::Types(a) => emit(&commands::types(&ctx, a)),
        other => commands::change(&ctx, other).and_then(|out| emit(&out)),
    }
}

fn main() -> ExitCode {
    logger::init();
    match run(std::env::args_os().collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let text = mdevkit::error::chain(e.as_ref());
            let _ = writeln!(std::io::stderr().lock(), "Error: {text}");
            ExitCode::FAILURE
        }
    }
}
