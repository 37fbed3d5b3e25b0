//! The command line, defined once: parsing, `--help`, man pages and shell completions all
//! come from these structs. Option names, short flags and relations are upstream's
//! (spec §2); values are parsed into validated types here, at the edge.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};
use mdevkit::{AttrName, ParentName, TypeName, Uuid};

fn uuid(s: &str) -> Result<Uuid, String> {
    s.parse::<Uuid>().map_err(|e| match e {
        mdevkit::names::NameError::Uuid { reason, .. } => reason,
        other => other.to_string(),
    })
}

fn parent(s: &str) -> Result<ParentName, String> {
    s.parse()
        .map_err(|e: mdevkit::names::NameError| e.to_string())
}

fn mdev_type(s: &str) -> Result<TypeName, String> {
    s.parse()
        .map_err(|e: mdevkit::names::NameError| e.to_string())
}

fn attr_name(s: &str) -> Result<AttrName, String> {
    s.parse()
        .map_err(|e: mdevkit::names::NameError| e.to_string())
}

const ENV_HELP: &str = "\
Environment:
  MDEVCTL_ENV_ROOT    move every path below under this root (default /)
  MDEVCTL_SYSFS_ROOT  the directory that stands for /sys
  MDEVCTL_CONFIG_DIR  the definition directory (default /etc/mdevctl.d)
  MDEVCTL_SCRIPTS_DIR the callout/notifier directory (default /usr/lib/mdevctl/scripts.d)
  MDEVCTL_LOCK_FILE   the lock serialising changes (default /run/lock/mdevctl.lock)
  MDEVCTL_CALLOUT_TIMEOUT  seconds a callout script may run (default 300); then it
                           gets SIGTERM, and SIGKILL 2 seconds later
  MDEVCTL_LOCK_TIMEOUT     seconds to wait for the lock (default 60)
  MDEVCTL_LOG         log filter: error, warn (default), info, debug, trace";

/// What `--version` prints after the command's name: the mdevctl interface this implements
/// first, so a script comparing versions for a feature sees upstream's number, then
/// mdevkit's own release, so a person sees what is installed.
pub const VERSION: &str = concat!("1.4.0 (mdevkit ", env!("CARGO_PKG_VERSION"), ")");

/// Manage mediated devices (mdevkit's drop-in mdevctl).
#[derive(Debug, Parser)]
#[command(
    name = "mdevctl",
    version = VERSION,
    about = "Manage persistent and transient mediated devices",
    long_about = "mdevctl is a utility for managing and persisting devices in the mediated \
                  device framework of the Linux kernel. Mediated devices are sub-devices of \
                  a parent device (e.g. a vGPU) which can be dynamically created and \
                  potentially used by drivers like vfio-mdev for assignment to virtual machines.",
    after_long_help = ENV_HELP,
    arg_required_else_help = true
)]
pub struct Mdevctl {
    #[command(subcommand)]
    pub command: Command,
}

/// `lsmdev`: the `list` command under its own name.
#[derive(Debug, Parser)]
#[command(
    name = "lsmdev",
    version = VERSION,
    about = "List mediated devices",
    after_long_help = ENV_HELP
)]
pub struct Lsmdev {
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Define a persistent mediated device
    Define(DefineArgs),
    /// Undefine, or remove the config for, a persistent mediated device
    Undefine(UndefineArgs),
    /// Modify the definition of a mediated device
    Modify(ModifyArgs),
    /// Start a mediated device
    Start(StartArgs),
    /// Stop a running mediated device
    Stop(StopArgs),
    /// List defined or active mediated devices
    #[command(version = VERSION)]
    List(ListArgs),
    /// List available mediated device types
    Types(TypesArgs),
    /// Start all auto-start devices of a parent (run by the udev rule)
    #[command(hide = true)]
    StartParentMdevs(StartParentArgs),
}

#[derive(Debug, Args)]
pub struct DefineArgs {
    /// Assign UUID to the device; if omitted, a UUID will be generated
    #[arg(short, long, value_parser = uuid, required_unless_present = "parent")]
    pub uuid: Option<Uuid>,
    /// Automatically start the device when its parent becomes available
    #[arg(short, long)]
    pub auto: bool,
    /// Parent of the device
    #[arg(short, long, value_parser = parent, required_unless_present = "uuid")]
    pub parent: Option<ParentName>,
    /// Type of the device
    #[arg(short = 't', long = "type", value_name = "TYPE", value_parser = mdev_type)]
    pub mdev_type: Option<TypeName>,
    /// Specify device details in JSON format
    #[arg(long, conflicts_with_all = ["mdev_type", "auto"])]
    pub jsonfile: Option<PathBuf>,
    /// Run even when callout scripts fail
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct UndefineArgs {
    /// UUID of the device
    #[arg(short, long, value_parser = uuid)]
    pub uuid: Uuid,
    /// Parent of the device; without it, every definition of the UUID is removed
    #[arg(short, long, value_parser = parent)]
    pub parent: Option<ParentName>,
    /// Run even when callout scripts fail
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("modify")
        .required(true)
        .multiple(false)
        .args(["auto", "manual", "addattr", "delattr", "jsonfile"])
))]
pub struct ModifyArgs {
    /// UUID of the device
    #[arg(short, long, value_parser = uuid)]
    pub uuid: Uuid,
    /// Parent of the device
    #[arg(short, long, value_parser = parent)]
    pub parent: Option<ParentName>,
    /// New type of the device
    #[arg(short = 't', long = "type", value_name = "TYPE", value_parser = mdev_type)]
    pub mdev_type: Option<TypeName>,
    /// Add an attribute
    #[arg(long, value_name = "NAME", value_parser = attr_name, requires = "value")]
    pub addattr: Option<AttrName>,
    /// Delete an attribute (the last one, or the one at --index)
    #[arg(long)]
    pub delattr: bool,
    /// Index of the attribute to add or delete
    #[arg(short, long)]
    pub index: Option<u32>,
    /// Value of the attribute to add
    #[arg(long, requires = "addattr", conflicts_with = "delattr")]
    pub value: Option<String>,
    /// Start the device automatically
    #[arg(short, long, conflicts_with_all = ["index", "value"])]
    pub auto: bool,
    /// Start the device manually
    #[arg(short, long, conflicts_with_all = ["index", "value"])]
    pub manual: bool,
    /// Apply the change to the running device (needs --jsonfile)
    #[arg(short, long, conflicts_with_all = ["mdev_type", "index", "value"])]
    pub live: bool,
    /// With --live, also change the stored definition
    #[arg(short, long)]
    pub defined: bool,
    /// Specify device details in JSON format
    #[arg(long, conflicts_with_all = ["mdev_type", "index", "value"])]
    pub jsonfile: Option<PathBuf>,
    /// Run even when callout scripts fail
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// UUID of the device; for a transient device, one is generated if omitted
    #[arg(short, long, value_parser = uuid, required_unless_present = "parent")]
    pub uuid: Option<Uuid>,
    /// Parent of the device
    #[arg(short, long, value_parser = parent, required_unless_present = "uuid")]
    pub parent: Option<ParentName>,
    /// Type of the device
    #[arg(short = 't', long = "type", value_name = "TYPE", value_parser = mdev_type)]
    pub mdev_type: Option<TypeName>,
    /// Specify device details in JSON format
    #[arg(long, conflicts_with = "mdev_type")]
    pub jsonfile: Option<PathBuf>,
    /// Run even when callout scripts fail
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// UUID of the device
    #[arg(short, long, value_parser = uuid)]
    pub uuid: Uuid,
    /// Run even when callout scripts fail
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// List defined devices instead of active ones
    #[arg(short, long)]
    pub defined: bool,
    /// Output in JSON format
    #[arg(long)]
    pub dumpjson: bool,
    /// Print attributes as well
    #[arg(short, long)]
    pub verbose: bool,
    /// Only the device with this UUID
    #[arg(short, long, value_parser = uuid)]
    pub uuid: Option<Uuid>,
    /// Only devices of this parent
    #[arg(short, long, value_parser = parent)]
    pub parent: Option<ParentName>,
}

#[derive(Debug, Args)]
pub struct TypesArgs {
    /// Only types of this parent
    #[arg(short, long, value_parser = parent)]
    pub parent: Option<ParentName>,
    /// Output in JSON format
    #[arg(long)]
    pub dumpjson: bool,
}

#[derive(Debug, Args)]
pub struct StartParentArgs {
    /// Parent whose auto-start definitions to start
    #[arg(value_parser = parent)]
    pub parent: ParentName,
}
