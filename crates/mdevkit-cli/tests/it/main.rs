//! mdevkit's integration tests, one binary: the `mdevkit` command against mdev-sim's
//! FUSE-mounted sysfs. Without FUSE each test prints one line and passes, except under
//! `CI=true`, where it fails.

mod common;
mod crash;
mod doctor;
mod events;
mod lifecycle;
mod refusals;
mod vendor_vfio;
mod waiting;
