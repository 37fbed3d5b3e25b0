//! mdevkit's project tooling, behind `cargo xtask`: man pages and completions from the CLI
//! structs, the install list and the Debian and RPM packages built from it, a fake-host
//! generator and a scale benchmark.

pub mod bench;
pub mod cargo;
pub mod deb;
pub mod docs;
pub mod fsutil;
pub mod genhost;
pub mod install;
pub mod rpm;
pub mod tools;
pub mod upstream;
pub mod workload;
