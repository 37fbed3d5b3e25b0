//! xtask's integration tests, one binary: each module is one area of behaviour.

mod genhost;
mod install;
