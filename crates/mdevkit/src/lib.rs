//! mdevkit: the library behind the `mdevctl` and `lsmdev` commands.
//!
//! Layout: [`types`] holds validated names; [`host`] is the only module that touches the
//! OS; [`config`] and [`store`] own the definition files; [`sysfs`] reads and writes the
//! kernel's mdev interface; [`render`] keeps output byte-exact; [`ops`] has one module per
//! command.

pub mod callouts;
pub mod config;
pub mod error;
pub mod host;
pub mod ops;
pub mod render;
pub mod store;
pub mod sysfs;
pub mod types;

pub use config::DeviceConfig;
pub use host::{Host, Roots};
pub use store::Definition;
pub use sysfs::types::MdevType;
pub use sysfs::ActiveDevice;
pub use types::{Attr, AttrName, ParentName, StartMode, TypeName, Uuid};
