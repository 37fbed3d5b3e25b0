//! mdev-sim: a kernel-faithful simulated mdev host (a sysfs root) served over FUSE.
//!
//! [`Sim::mount`] mounts a [`Profile`] at a directory that stands for `/sys`; the returned
//! [`MountedSim`] controls it (parents coming and going, busy devices, injected failures) and
//! unmounts on drop. See `docs/mdev-sim.md` for the layout, the profile format and the control
//! commands.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod ap;
mod control;
mod fs;
mod hooks;
mod io;
mod kernel;
mod mount;
mod nvidia_vf;
mod nvidia_vgpu_rfc;
mod parse;
mod plain;
mod profile;
mod sriov;
mod tree;
mod uevent;

pub use control::HELP as CONTROL_HELP;
pub use kernel::{ControlError, HookRun};
pub use mount::{
    fuse_available, fuse_for_test, lazy_unmount, mounted_fs, prepare_env_root, MountError,
    MountedSim, Reason, Sim, ENV_ROOT_DIRS,
};
pub use parse::Errno;
pub use plain::{write_plain_tree, PlainError};
pub use profile::{Profile, ProfileError};
pub use sriov::{DriverVariant, GpuSpec, VgpuTypeSpec};
pub use uevent::{murmur2, private_netns, Uevents, UDEV_HEADER_SIZE, UDEV_MAGIC};
