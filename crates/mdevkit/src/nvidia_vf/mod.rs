//! NVIDIA vGPUs on the vendor-specific VFIO path (kernel >= 6.8): no mdev and no UUID; each
//! SR-IOV VF of the GPU is itself a vGPU once a type id is written to its
//! `nvidia/current_vgpu_type`. See `docs/vendor-vfio.md`.
//!
//! [`discover`](fn@discover) finds the GPUs (per GPU, never per node), [`create`] and [`remove`] change a
//! VF, [`listing`] renders what exists. Every path comes from [`crate::Host`].

mod catalogue;
mod discover;
mod error;
pub mod listing;
mod manage;
mod names;

pub use catalogue::{parse_creatable, VgpuType};
pub use discover::{discover, gpu, owner_of, Availability, Gpu, Vf};
pub use error::{Holder, VgpuError};
pub use manage::{create, held_by_vm, remove, Created, Removed};
pub use names::{PciAddress, TypeSelector, VgpuTypeId};
