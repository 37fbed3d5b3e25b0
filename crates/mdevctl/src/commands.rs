//! Turns parsed arguments into the library's checked option structs and runs them.

use mdevctl::cli::{Command, ListArgs, TypesArgs};
use mdevkit::ops::list::{ListOptions, Source};
use mdevkit::ops::types::TypesOptions;
use mdevkit::ops::{Context, Format};
use mdevkit::render::Verbosity;

fn format(json: bool) -> Format {
    if json {
        Format::Json
    } else {
        Format::Text
    }
}

pub fn list(ctx: &Context, a: ListArgs) -> String {
    let opts = ListOptions {
        source: if a.defined {
            Source::Defined
        } else {
            Source::Active
        },
        uuid: a.uuid,
        parent: a.parent,
        verbosity: if a.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Brief
        },
        format: format(a.dumpjson),
    };
    mdevkit::ops::list::list(ctx, &opts)
}

pub fn types(ctx: &Context, a: TypesArgs) -> String {
    let opts = TypesOptions {
        parent: a.parent,
        format: Some(format(a.dumpjson)),
    };
    mdevkit::ops::types::types(ctx, &opts)
}

/// The state-changing commands; returns what to print on stdout.
pub fn change(_ctx: &Context, cmd: Command) -> anyhow::Result<String> {
    anyhow::bail!("{cmd:?}: not yet implemented in this build")
}
