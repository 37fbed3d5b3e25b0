//! The `mdevkit` command line, defined once with clap's derive; values become validated
//! types here, at the edge.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use mdevkit::ParentName;

fn parent(s: &str) -> Result<ParentName, String> {
    s.parse()
        .map_err(|e: mdevkit::names::NameError| e.to_string())
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (try 120s or 2m)"))
}

const ENV_HELP: &str = "\
Environment:
  MDEVCTL_ENV_ROOT  move every path under this root (default /): the file
                    /etc/mdevkit/config.yaml, the state /var/lib/mdevkit/state.json,
                    /etc/machine-id, and mdevctl's own paths
  MDEVKIT_PROFILE   the profile when -c is not given
  MDEVCTL_CALLOUT_TIMEOUT, MDEVCTL_LOCK_TIMEOUT  as for mdevctl (seconds, default 60)
  MDEVCTL_LOG       log filter: error, warn (default), info, debug, trace

Exit status: 0 success (plan, assert: the host matches), 1 error (assert: the host
differs), 2 (plan only) changes are pending.";

/// Desired state for mediated devices: say which devices each parent should have, and
/// mdevkit plans and applies the difference through mdevctl's own operations.
#[derive(Debug, Parser)]
#[command(name = "mdevkit", version, after_long_help = ENV_HELP, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a desired-state file without looking at the host's devices
    Validate(FileArg),
    /// Show what apply would change (exit 0: nothing, 2: changes pending)
    Plan(PlanArgs),
    /// Change the host to match the desired state
    Apply(ApplyArgs),
    /// Exit 0 when the host matches the desired state, else 1 with the differences
    Assert(Target),
    /// Write the host's current devices as a desired-state file
    Export(ExportArgs),
    /// Show the types of mdev parents and of vendor-VFIO GPUs (NVIDIA vGPUs on VFs)
    Types(InventoryArgs),
    /// Show mdev devices and vendor-VFIO vGPUs
    List(InventoryArgs),
    /// Create or remove one vendor-VFIO vGPU (NVIDIA, kernel >= 6.8: the VF is the vGPU)
    #[command(subcommand)]
    Vgpu(VgpuCommand),
    /// Check whether the host is ready for mediated devices, and why not (exit 1: a check failed)
    Doctor(crate::doctor::DoctorArgs),
    /// Print a line per change as it happens: definitions (defined, modified, undefined),
    /// devices (started, stopped) and parents (parent-added, parent-removed, types-changed)
    Monitor(MonitorArgs),
}

fn pci_address(s: &str) -> Result<mdevkit::nvidia_vf::PciAddress, String> {
    s.parse()
        .map_err(|e: mdevkit::names::NameError| e.to_string())
}

fn vgpu_type(s: &str) -> Result<mdevkit::nvidia_vf::TypeSelector, String> {
    s.parse()
        .map_err(|e: mdevkit::names::NameError| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InventoryOutput {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    #[arg(long, value_enum, default_value_t = InventoryOutput::Text)]
    pub output: InventoryOutput,
}

#[derive(Debug, Subcommand)]
pub enum VgpuCommand {
    /// Give a free VF of the GPU a vGPU type; prints the VF, the type id and its name
    Create {
        /// The GPU's PF address (`mdevkit types` lists them)
        #[arg(short = 'p', long = "parent", value_name = "PF", value_parser = pci_address)]
        pf: mdevkit::nvidia_vf::PciAddress,
        /// The type id (1150) or name (`NVIDIA L40S-4Q`, `L40S-4Q`)
        #[arg(short = 't', long = "type", value_name = "TYPE", value_parser = vgpu_type)]
        vgpu_type: mdevkit::nvidia_vf::TypeSelector,
        /// This VF of the GPU [default: the first free one]
        #[arg(long = "vf", value_name = "VF", value_parser = pci_address)]
        vf: Option<mdevkit::nvidia_vf::PciAddress>,
    },
    /// Remove the vGPU of a VF (refused while a VM holds it)
    Remove {
        #[arg(long = "vf", value_name = "VF", value_parser = pci_address)]
        vf: mdevkit::nvidia_vf::PciAddress,
    },
}

#[derive(Debug, Args)]
pub struct FileArg {
    /// The desired-state file (YAML or JSON); `-` reads stdin [default: /etc/mdevkit/config.yaml]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct Target {
    #[command(flatten)]
    pub file: FileArg,
    /// The profile to apply [default: $MDEVKIT_PROFILE, else the file's default-profile]
    #[arg(
        short = 'c',
        long = "profile",
        value_name = "PROFILE",
        env = "MDEVKIT_PROFILE"
    )]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub target: Target,
    #[arg(long, value_enum, default_value_t = PlanOutput::Text)]
    pub output: PlanOutput,
    /// Plan as `apply --prune` would
    #[arg(long)]
    pub prune: bool,
    /// Plan as `apply --no-start` would
    #[arg(long)]
    pub no_start: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub target: Target,
    /// Define new devices but do not start them
    #[arg(long)]
    pub no_start: bool,
    /// Also remove devices the file does not manage (defined by hand or by other tools)
    #[arg(long)]
    pub prune: bool,
    /// Wait this long for parents and types that are not there yet (e.g. 120s)
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub wait: Option<Duration>,
    /// Print the plan instead of applying it
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportOutput {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only devices of this parent (repeatable)
    #[arg(short = 'p', long = "parent", value_name = "PARENT", value_parser = parent)]
    pub parents: Vec<ParentName>,
    /// Only running devices
    #[arg(long)]
    pub active: bool,
    #[arg(long, value_enum, default_value_t = ExportOutput::Yaml)]
    pub output: ExportOutput,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// One JSON object per line (schema in docs/events.md)
    #[arg(long)]
    pub json: bool,
    /// First print the current state (definitions, parents, running devices) as events
    /// marked snapshot, then the changes
    #[arg(long, conflicts_with = "since_now")]
    pub snapshot: bool,
    /// Only changes from now on (the default)
    #[arg(long)]
    pub since_now: bool,
    /// The uevent socket's receive buffer in bytes [default: 8 MiB, within net.core.rmem_max
    /// unless run as root]
    #[arg(long, value_name = "BYTES")]
    pub receive_buffer: Option<usize>,
}
