//! Backends fill the [`Observed`] model and carry out plan steps for the parents and
//! devices they own. Today there is one, [`mdev::MdevBackend`]; a vendor backend (NVIDIA's
//! vendor-specific VFIO) adds its parents and devices with its own [`BackendKind`].

pub mod mdev;

use crate::desired::plan::{Action, Step};
use crate::names::{ParentName, Uuid};
use crate::observed::{BackendKind, Observed};
use crate::ops::OpError;

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
    #[error("no backend handles {} devices", kind.as_str())]
    NoBackend { kind: BackendKind },
}

/// One kind of device the desired state can manage.
pub trait Backend: std::fmt::Debug {
    fn kind(&self) -> BackendKind;
    /// Adds this backend's parents and devices to `into`.
    fn observe(&self, into: &mut Observed);
    /// Carries out one step, through the same code paths as the equivalent mdevctl command.
    fn execute(&self, step: &Step) -> Result<(), BackendError>;
}
