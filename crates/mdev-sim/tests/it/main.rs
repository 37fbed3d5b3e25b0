//! mdev-sim's integration tests, one binary: each module is one area of behaviour.

mod cli;
mod common;
mod control;
mod core;
mod kernel_record;
mod nvidia_vf;
mod profiles;
mod uevents;
mod vendors;
