//! Why a plan cannot be applied: one [`Problem`] per line, and which of them `apply --wait`
//! waits out (parents, types and VFs that may still appear).

use crate::names::{ParentName, TypeName, Uuid};

/// Why a plan cannot be applied; each is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("{at}: no parent matches {selectors}")]
    NoParent { at: String, selectors: String },
    #[error("parent {parent} has not published its types yet")]
    TypesNotPublished { parent: ParentName },
    #[error("{at}: parent {parent} has no type '{wanted}'; it has: {offered}")]
    UnknownType {
        at: String,
        parent: ParentName,
        wanted: String,
        offered: String,
    },
    #[error("{at}: device {uuid} must be on one parent, but the selector matches {parents}")]
    AmbiguousParent {
        at: String,
        uuid: Uuid,
        parents: String,
    },
    #[error("{at}: device {uuid} on {parent} is already claimed by {other}")]
    ClaimedTwice {
        at: String,
        uuid: Uuid,
        parent: ParentName,
        other: String,
    },
    #[error(
        "parent {parent}, type {mdev_type}{}: {wanted} to start but {free} free; in use: {users}",
        name_suffix(type_name)
    )]
    NoCapacity {
        parent: ParentName,
        mdev_type: TypeName,
        type_name: String,
        wanted: u64,
        free: i64,
        users: String,
    },
    #[error("parent {parent} has SR-IOV disabled (0 of {total} VFs): mdevkit never enables it; run `/usr/lib/nvidia/sriov-manage -e {parent}` (after nvidia-vgpud and nvidia-vgpu-mgr are running)")]
    SriovDisabled { parent: ParentName, total: u16 },
    #[error("{at}: parent {parent} is a vendor-VFIO GPU, which takes no {what}")]
    NotForVgpus {
        at: String,
        parent: ParentName,
        what: &'static str,
    },
    #[error("{at}: GPU {parent} cannot create type '{wanted}' now; creatable now: {offered}{}",
        if hosted.is_empty() { String::new() } else {
            format!("; it hosts {hosted}, and lists only types that fit beside them (equal-size mode): lower those counts to 0 first, or enable mixed-size mode")
        })]
    VgpuTypeNotCreatable {
        at: String,
        parent: ParentName,
        wanted: String,
        offered: String,
        hosted: String,
    },
    #[error("{at}: type {type_name} on {parent} is already counted by {other}: merge them into one count")]
    TypeTwice {
        at: String,
        parent: ParentName,
        type_name: String,
        other: String,
    },
    #[error(
        "parent {parent}, type {} ({}): {wanted} more wanted but at most {free} can be created now; it holds: {users}",
        vgpu_type.id, vgpu_type.name
    )]
    GpuFull {
        parent: ParentName,
        vgpu_type: crate::nvidia_vf::VgpuType,
        wanted: u32,
        free: u32,
        users: String,
    },
    #[error("parent {parent}: the managed vGPU on {vf} ({type_name}) is no longer wanted, but a VM holds it: stop the VM first (mdevkit never clears a VF in use)")]
    VgpuInUse {
        parent: ParentName,
        vf: crate::nvidia_vf::PciAddress,
        type_name: String,
    },
    #[error("vfio-ap conflict: device {second} would assign APQN {apqn}, which {first} has")]
    ApConflict {
        first: String,
        second: String,
        apqn: String,
    },
}

pub(crate) fn name_suffix(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!(" ({name})")
    }
}

impl Problem {
    /// A parent or type that may still appear (what `apply --wait` waits for).
    pub fn is_missing(&self) -> bool {
        matches!(
            self,
            Problem::NoParent { .. }
                | Problem::TypesNotPublished { .. }
                | Problem::UnknownType { .. }
                | Problem::SriovDisabled { .. }
        )
    }
}

/// A plan that cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct PlanError {
    pub problems: Vec<Problem>,
}

impl PlanError {
    pub fn only_missing(&self) -> bool {
        self.problems.iter().all(Problem::is_missing)
    }
}
