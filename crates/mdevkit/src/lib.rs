//! mdevkit: the library behind the `mdevctl`, `lsmdev`, `mdevkit` and `mdevkit-agent` commands.
//!
//! Layout: [`names`] holds validated names; [`host`] is the only module that touches the
//! OS; [`config`] and [`store`] own the definition files; [`sysfs`] reads and writes the
//! kernel's mdev interface; [`render`] keeps output byte-exact; [`ops`] has one module per
//! command. [`desired`] is `mdevkit`'s desired state, over the [`observed`] model that the
//! [`backend`]s fill (mdev, and NVIDIA's vendor-specific VFIO in [`nvidia_vf`]);
//! [`inventory`] lists both; [`doctor`] checks a host's readiness; [`events`] watches it.

pub mod backend;
pub mod callouts;
pub mod config;
pub mod desired;
pub mod doctor;
pub mod error;
pub mod events;
pub mod host;
pub mod inventory;
pub mod names;
pub mod nvidia_vf;
pub mod observed;
pub mod ops;
pub mod render;
pub mod store;
pub mod sysfs;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;

pub use config::DeviceConfig;
pub use host::{Host, Roots};
pub use names::{Attr, AttrName, ParentName, StartMode, TypeName, Uuid};
pub use store::Definition;
pub use sysfs::supported::MdevType;
pub use sysfs::ActiveDevice;
