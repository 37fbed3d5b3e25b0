//! What a host has now, as backends report it: parents with their types, and devices with
//! their definitions and running state. The planner compares this with the desired file.

use std::collections::BTreeMap;

use crate::config::DeviceConfig;
use crate::names::{ParentName, TypeName, Uuid};

/// Which backend owns a parent or device (and so executes its steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum BackendKind {
    /// Mediated devices: `/sys/class/mdev_bus` and `/etc/mdevctl.d`.
    #[default]
    Mdev,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Mdev => "mdev",
        }
    }
}

/// A parent's PCI ids, from its `vendor` and `device` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciIds {
    pub vendor: u16,
    pub device: u16,
}

/// One type a parent offers now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedType {
    pub id: TypeName,
    /// The type's `name` file; empty when the driver has none.
    pub name: String,
    pub available: i64,
}

/// A parent device that can host devices.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedParent {
    pub backend: BackendKind,
    pub pci: Option<PciIds>,
    /// The driver bound to the parent itself.
    pub driver: Option<String>,
    /// `None` while the parent is there but has not published its types yet.
    pub types: Option<Vec<ObservedType>>,
}

impl ObservedParent {
    pub fn find_type(&self, wanted: &str) -> Option<&ObservedType> {
        let types = self.types.as_ref()?;
        types.iter().find(|t| t.id.as_str() == wanted).or_else(|| {
            types
                .iter()
                .find(|t| !t.name.is_empty() && t.name == wanted)
        })
    }

    /// The type's `name`, or "" when unknown.
    pub fn type_name(&self, id: &TypeName) -> &str {
        self.types
            .iter()
            .flatten()
            .find(|t| t.id == *id)
            .map_or("", |t| t.name.as_str())
    }
}

/// A running device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub parent: ParentName,
    pub mdev_type: TypeName,
}

/// Everything known about one device UUID.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedDevice {
    pub backend: BackendKind,
    /// Stored definitions, by parent (mdevctl allows one UUID on several parents).
    pub defined: BTreeMap<ParentName, DeviceConfig>,
    pub active: Option<Running>,
}

/// The host as the backends saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    pub parents: BTreeMap<ParentName, ObservedParent>,
    pub devices: BTreeMap<Uuid, ObservedDevice>,
}
