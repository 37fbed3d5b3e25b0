//! mdevkit's project tooling, behind `cargo xtask`: man pages and completions from the CLI
//! structs, the install layout, a fake-host generator and a scale benchmark.

pub mod bench;
pub mod cargo;
pub mod docs;
pub mod fsutil;
pub mod genhost;
pub mod install;
pub mod upstream;
pub mod workload;
