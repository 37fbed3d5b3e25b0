//! Backends fill the [`Observed`] model and carry out plan steps for the parents and
//! devices they own: [`mdev::MdevBackend`] for mediated devices, and
//! [`nvidia_vf::NvidiaVfBackend`] for NVIDIA's vendor-specific VFIO (its own
//! [`BackendKind`]: the PF is the parent, each VF with a type a vGPU, no UUIDs).

pub mod mdev;
pub mod nvidia_vf;

use crate::desired::plan::{Action, Step};
use crate::desired::vgpus::VgpuStep;
use crate::names::{ParentName, Uuid};
use crate::nvidia_vf::{PciAddress, VgpuError};
use crate::observed::{BackendKind, Observed};
use crate::ops::OpError;

/// One change of a plan: to an mdev device (by UUID) or to a vendor-VFIO VF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanStep {
    Device(Step),
    Vgpu(VgpuStep),
}

impl PlanStep {
    pub fn backend(&self) -> BackendKind {
        match self {
            PlanStep::Device(s) => s.backend,
            PlanStep::Vgpu(_) => BackendKind::NvidiaVf,
        }
    }
}

/// A step a backend could not carry out, or a host it could not read.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{} of {uuid} on {parent}", action.as_str())]
    Step {
        action: Action,
        uuid: Uuid,
        parent: ParentName,
        #[source]
        source: Box<OpError>,
    },
    #[error("cannot stage the definition of {uuid} in {}", path.display())]
    Stage {
        uuid: Uuid,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} of a vGPU on {vf}", action.as_str())]
    Vgpu {
        action: crate::desired::vgpus::VgpuAction,
        vf: PciAddress,
        #[source]
        source: VgpuError,
    },
    #[error("no backend handles {} devices", kind.as_str())]
    NoBackend { kind: BackendKind },
}

/// One kind of device the desired state can manage.
pub trait Backend: std::fmt::Debug {
    fn kind(&self) -> BackendKind;
    /// Adds this backend's parents and devices to `into`.
    fn observe(&self, into: &mut Observed);
    /// Carries out one change of its kind, through the same code paths as the equivalent
    /// mdevctl or `mdevkit vgpu` command.
    fn execute(&self, change: &PlanStep) -> Result<(), BackendError>;
}
