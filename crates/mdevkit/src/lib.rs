//! mdevkit: the library behind the `mdevctl` and `lsmdev` commands.
