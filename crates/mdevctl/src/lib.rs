//! The `mdevctl` command line as a library, so that man pages and shell completions are
//! generated from the very definition the binary parses with.

pub mod cli;
