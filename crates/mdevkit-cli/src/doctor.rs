//! `mdevkit doctor`: its arguments, and running the library's checks and printing them. Exit
//! 1 when any check fails.

use clap::{Args, ValueEnum};
use mdevkit::doctor::{self, report, Scope, Status};
use mdevkit::{Host, ParentName, Roots, TypeName, Uuid};

use crate::commands::Outcome;

fn name<T: std::str::FromStr<Err = mdevkit::names::NameError>>(s: &str) -> Result<T, String> {
    s.parse()
        .map_err(|e: mdevkit::names::NameError| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DoctorOutput {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Only this parent (an mdev parent, a subchannel, or a vendor-VFIO GPU's PF address)
    #[arg(short = 'p', long = "parent", value_name = "PARENT", value_parser = name::<ParentName>)]
    pub parent: Option<ParentName>,
    /// Only this type
    #[arg(short = 't', long = "type", value_name = "TYPE", value_parser = name::<TypeName>)]
    pub mdev_type: Option<TypeName>,
    /// Only what concerns this device, and a dry run of starting it
    #[arg(short = 'u', long = "uuid", value_name = "UUID", value_parser = name::<Uuid>)]
    pub uuid: Option<Uuid>,
    #[arg(long, value_enum, default_value_t = DoctorOutput::Text)]
    pub output: DoctorOutput,
}

pub fn run(args: DoctorArgs) -> anyhow::Result<Outcome> {
    let host = Host::new(Roots::from_env(|k| std::env::var_os(k)));
    let scope = Scope {
        parent: args.parent,
        mdev_type: args.mdev_type,
        uuid: args.uuid,
    };
    let r = doctor::run(&host, &scope);
    crate::commands::emit(&match args.output {
        DoctorOutput::Text => report::text(&r),
        DoctorOutput::Json => report::json(&r),
    })?;
    Ok(if r.worst() == Status::Fail {
        Outcome::Differs
    } else {
        Outcome::Done
    })
}
