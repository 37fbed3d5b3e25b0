//! Errors of the state-changing commands. Messages keep upstream's wording where it is
//! plain (scripts and users know them) and name the uuid, parent, type or file involved.

use std::path::PathBuf;

use crate::callouts::{CalloutError, InvokeError};
use crate::config::ConfigError;
use crate::host::lock::LockError;
use crate::names::{ParentName, TypeName, Uuid};
use crate::store::StoreError;
use crate::sysfs::supported::TypeError;
use crate::sysfs::write::{AttrError, KernelWriteError};
use crate::sysfs::ProbeError;

/// `<parent>/<uuid>` when the parent is known, else `<uuid>`.
fn who(uuid: &Uuid, parent: &Option<ParentName>) -> String {
    match parent {
        Some(p) => format!("{p}/{uuid}"),
        None => uuid.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("required directory {} does not exist; this may indicate a packaging or installation error", path.display())]
    MissingConfigDir { path: PathBuf },
    #[error("unable to read file {}", path.display())]
    ReadJson {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid device JSON in {}", path.display())]
    BadJson {
        path: PathBuf,
        #[source]
        source: ConfigError,
    },
    #[error("parent device required to {what} via {}", path.display())]
    ParentRequired { what: &'static str, path: PathBuf },
    #[error("No parent specified")]
    NoParent,
    #[error("No type specified")]
    NoType,
    #[error("Device {uuid} on {parent} already defined")]
    AlreadyDefined { uuid: Uuid, parent: ParentName },
    #[error("Mediated device {} is not defined", who(uuid, parent))]
    NotDefined {
        uuid: Uuid,
        parent: Option<ParentName>,
    },
    #[error("Mediated device {} is not active", who(uuid, parent))]
    NotActive {
        uuid: Uuid,
        parent: Option<ParentName>,
    },
    #[error("Multiple definitions found for {uuid}, specify a parent")]
    MultipleDefinitions { uuid: Uuid },
    /// `start`'s wording of the same condition (upstream words it differently there).
    #[error("Multiple definitions found for device {uuid}. Please specify a parent.")]
    MultipleDefinitionsToStart { uuid: Uuid },
    #[error("No devices match the specified uuid")]
    NoMatch,
    #[error("Undefine failed")]
    UndefineFailed,
    #[error("Attribute index {index} is invalid\n{detail}")]
    BadIndex { index: u32, detail: String },
    #[error("'live' option must be used with 'jsonfile' option")]
    LiveNeedsJsonFile,
    #[error("'type' cannot be changed on active mdev")]
    LiveTypeChange,
    #[error("'type' of active and defined mdev does not match")]
    LiveDefinedTypeMismatch,
    #[error("Device {uuid} already exists on parent {parent} with type {mdev_type}")]
    DefinedWithOtherType {
        uuid: Uuid,
        parent: ParentName,
        mdev_type: TypeName,
    },
    #[error("can't provide type without parent")]
    TypeWithoutParent,
    #[error("Device is insufficiently specified")]
    Insufficient,
    #[error("Device {uuid} exists under different parent {parent}")]
    ActiveOnOtherParent { uuid: Uuid, parent: ParentName },
    #[error("Device {uuid} exists with different type {mdev_type}")]
    ActiveWithOtherType { uuid: Uuid, mdev_type: TypeName },
    #[error("Device {uuid} already exists")]
    AlreadyActive { uuid: Uuid },
    #[error("Unable to find parent device '{parent}'{}",
        suggestion.as_ref().map(|s| format!(". Did you mean '{s}'?")).unwrap_or_default())]
    NoSuchParent {
        parent: ParentName,
        suggestion: Option<String>,
    },
    #[error("Parent {parent} is not currently registered for mdev support")]
    NotRegistered { parent: ParentName },
    #[error("Parent {parent} does not support mdev type {mdev_type}")]
    UnsupportedType {
        parent: ParentName,
        mdev_type: TypeName,
    },
    #[error("No available instances of {mdev_type} on {parent}")]
    NoInstances {
        parent: ParentName,
        mdev_type: TypeName,
    },
    #[error("Failed to create mdev {uuid}, type {mdev_type} on {parent}")]
    Create {
        uuid: Uuid,
        parent: ParentName,
        mdev_type: TypeName,
        #[source]
        source: Box<KernelWriteError>,
    },
    #[error(transparent)]
    Attr(Box<AttrError>),
    #[error(
        "{attr}; removing the half-started device failed too: {}",
        crate::error::chain(rollback)
    )]
    AttrAndRollback {
        attr: Box<AttrError>,
        rollback: Box<KernelWriteError>,
    },
    #[error("failed to remove device {uuid}")]
    Remove {
        uuid: Uuid,
        #[source]
        source: Box<KernelWriteError>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Callout(#[from] CalloutError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(transparent)]
    Types(#[from] TypeError),
}

impl<E: Into<OpError>> From<InvokeError<E>> for OpError {
    fn from(e: InvokeError<E>) -> Self {
        match e {
            InvokeError::Callout(c) => OpError::Callout(c),
            InvokeError::Primary(p) => p.into(),
        }
    }
}
