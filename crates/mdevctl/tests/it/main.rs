//! mdevctl's integration tests, one binary: each module is one area of behaviour.

mod autostart;
mod bad_input;
mod bad_sysfs;
mod callout_faults;
mod callouts;
mod cli;
mod common;
mod concurrency;
mod define;
mod io_errors;
mod libvirt;
mod life;
mod list;
mod list_callouts;
mod modify;
mod modify_live;
mod sim_e2e;
mod start_stop;
mod types;
mod undefine;
mod validation;
