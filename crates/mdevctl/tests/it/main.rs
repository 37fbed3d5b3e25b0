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
mod hostile_files;
mod interrupts;
mod libvirt;
mod life;
mod list;
mod list_callouts;
mod modify;
mod modify_live;
mod nvidia_vf;
mod sim_e2e;
mod sim_short_write;
mod start_stop;
mod types;
mod undefine;
mod upstream_transcripts;
mod validation;
