//! The `mdevctl` binary (and `lsmdev` by argv[0]).
fn main() {}
