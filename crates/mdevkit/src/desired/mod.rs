//! Desired state (`mdevkit validate/plan/apply/assert/export`): a file says which devices
//! each parent should have; the planner compares it with what the backends observe and
//! the session executes the difference through the mdevctl operations.
//!
//! [`file`](mod@file) parses and checks the format, [`selector`] picks parents,
//! [`identity`] derives stable UUIDs, [`ap`] finds vfio-ap conflicts, [`plan`] is the pure
//! planner ([`vgpus`] its vendor-VFIO half), [`session`]
//! runs it on a host, [`state`] records which devices apply owns, [`render`] prints.

pub mod ap;
pub mod file;
pub mod identity;
pub mod plan;
pub mod problem;
pub mod render;
pub mod selector;
pub mod session;
pub mod state;
pub mod vgpus;

#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod vgpus_tests;
