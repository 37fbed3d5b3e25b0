//! mdev-sim: a simulated mdev host.
