//! Turns parsed arguments into the library's checked option structs and runs them.

use clap::CommandFactory;
use mdevctl::cli::{Command, ListArgs, Mdevctl, ModifyArgs, TypesArgs};
use mdevkit::callouts::Force;
use mdevkit::ops::define::DefineOptions;
use mdevkit::ops::list::{ListOptions, Source};
use mdevkit::ops::modify::{Change, ModifyOptions, Target};
use mdevkit::ops::start::StartOptions;
use mdevkit::ops::stop::StopOptions;
use mdevkit::ops::types::TypesOptions;
use mdevkit::ops::undefine::UndefineOptions;
use mdevkit::ops::{self, Context, Format, Settings};
use mdevkit::render::Verbosity;
use mdevkit::{Attr, StartMode};

/// Tunables from the environment.
pub fn settings() -> anyhow::Result<Settings> {
    Ok(Settings::from_env(|k| std::env::var_os(k))?)
}

/// Option relations clap cannot express correctly. Upstream lets `modify --live` through
/// with any member of the modify group (a clap bug); here it is a usage error (exit 2).
pub fn check_relations(cmd: &Command) {
    if let Command::Modify(m) = cmd {
        if m.live && m.jsonfile.is_none() {
            let mut c = Mdevctl::command();
            let modify = c.find_subcommand_mut("modify");
            let err_cmd = match modify {
                Some(sub) => sub.clone(),
                None => c,
            };
            let mut err_cmd = err_cmd.bin_name("mdevctl modify");
            err_cmd
                .error(
                    clap::error::ErrorKind::MissingRequiredArgument,
                    "the argument '--live' requires '--jsonfile <JSONFILE>'",
                )
                .exit();
        }
    }
}

fn force(flag: bool) -> Force {
    if flag {
        Force::Yes
    } else {
        Force::No
    }
}

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
    ops::list::list(ctx, &opts)
}

pub fn types(ctx: &Context, a: TypesArgs) -> String {
    let opts = TypesOptions {
        parent: a.parent,
        format: Some(format(a.dumpjson)),
    };
    ops::types::types(ctx, &opts)
}

fn modify_options(a: ModifyArgs) -> ModifyOptions {
    let uuid = a.uuid;
    let change = if a.auto {
        Change::Start(StartMode::Auto)
    } else if a.manual {
        Change::Start(StartMode::Manual)
    } else if let Some(name) = a.addattr {
        Change::AddAttr {
            attr: Attr {
                name,
                value: a.value.unwrap_or_default(),
            },
            index: a.index,
        }
    } else if a.delattr {
        Change::DelAttr { index: a.index }
    } else if let Some(path) = a.jsonfile {
        Change::JsonFile(path)
    } else {
        Change::TypeOnly
    };
    let target = match (a.live, a.defined) {
        (false, _) => Target::Defined,
        (true, false) => Target::Live,
        (true, true) => Target::LiveAndDefined,
    };
    ModifyOptions {
        uuid,
        parent: a.parent,
        mdev_type: a.mdev_type,
        change,
        target,
        force: force(a.force),
    }
}

/// The state-changing commands; returns what to print on stdout.
pub fn change(ctx: &Context, cmd: Command) -> anyhow::Result<String> {
    let out = match cmd {
        Command::Define(a) => ops::define::define(
            ctx,
            &DefineOptions {
                uuid: a.uuid,
                parent: a.parent,
                mdev_type: a.mdev_type,
                start: if a.auto {
                    StartMode::Auto
                } else {
                    StartMode::Manual
                },
                jsonfile: a.jsonfile,
                force: force(a.force),
            },
        )?,
        Command::Undefine(a) => ops::undefine::undefine(
            ctx,
            &UndefineOptions {
                uuid: a.uuid,
                parent: a.parent,
                force: force(a.force),
            },
        )?,
        Command::Modify(a) => ops::modify::modify(ctx, &modify_options(a))?,
        Command::Start(a) => ops::start::start(
            ctx,
            &StartOptions {
                uuid: a.uuid,
                parent: a.parent,
                mdev_type: a.mdev_type,
                jsonfile: a.jsonfile,
                force: force(a.force),
            },
        )?,
        Command::Stop(a) => ops::stop::stop(
            ctx,
            &StopOptions {
                uuid: a.uuid,
                force: force(a.force),
            },
        )?,
        Command::StartParentMdevs(a) => ops::autostart::start_parent_mdevs(ctx, &a.parent)?,
        Command::List(_) | Command::Types(_) => String::new(),
    };
    Ok(out)
}
