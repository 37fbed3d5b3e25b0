//! What a host has now, as backends report it: parents with their types, and devices with
//! their definitions and running state. The planner compares this with the desired file.

use std::collections::BTreeMap;

use crate::config::DeviceConfig;
use crate::names::{ParentName, TypeName, Uuid};
use crate::nvidia_vf::{PciAddress, VgpuType};

/// Which backend owns a parent or device (and so executes its steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum BackendKind {
    /// Mediated devices: `/sys/class/mdev_bus` and `/etc/mdevctl.d`.
    #[default]
    Mdev,
    /// NVIDIA's vendor-specific VFIO: the PF is the parent, each VF with a type a vGPU.
    NvidiaVf,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Mdev => "mdev",
            BackendKind::NvidiaVf => "nvidia-vf",
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
    /// `None` while the parent is there but has not published its types yet (always
    /// `None` for a vendor-VFIO GPU, whose types are in `vf`).
    pub types: Option<Vec<ObservedType>>,
    /// A vendor-VFIO GPU's SR-IOV state, types and VFs; `None` for mdev parents.
    pub vf: Option<VfParent>,
}

/// A vendor-VFIO type a GPU knows: creatable now, or hosted by one of its VFs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfType {
    pub vgpu_type: VgpuType,
    /// Free VFs whose list has the type: an upper bound on how many more can be created.
    pub available_at_most: u32,
}

/// One VF of a vendor-VFIO GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedVf {
    pub address: PciAddress,
    /// The vGPU the VF is: its type id and name ("" when no list on the GPU names it).
    pub vgpu: Option<VgpuType>,
    /// A VM has the VF's VFIO device open: never touched.
    pub held_by_vm: bool,
}

/// A vendor-VFIO GPU (the parent is its PF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfParent {
    /// The PF's address (the parent's name, as a PCI address).
    pub pf: PciAddress,
    pub total_vfs: u16,
    /// 0 before `sriov-manage -e`.
    pub enabled_vfs: u16,
    /// The types creatable now and those its vGPUs have; `None` while `nvidia-vgpud` has
    /// not published any (an idle GPU whose free VFs list nothing).
    pub types: Option<Vec<VfType>>,
    /// In `virtfnN` order.
    pub vfs: Vec<ObservedVf>,
}

impl VfParent {
    /// The type a file's `type` names (an id, or a name as `TypeSelector` compares them).
    pub fn find_type(&self, wanted: &crate::nvidia_vf::TypeSelector) -> Option<&VfType> {
        self.types
            .iter()
            .flatten()
            .find(|t| wanted.matches(t.vgpu_type.id, &t.vgpu_type.name))
    }
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
