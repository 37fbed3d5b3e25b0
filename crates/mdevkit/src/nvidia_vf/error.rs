//! Why a vendor-VFIO request failed, in words that say what to do; each names the GPU or VF.

use std::io;
use std::path::PathBuf;

use super::catalogue::VgpuType;
use super::names::{PciAddress, TypeSelector, VgpuTypeId};

/// A vGPU on a VF, as errors name what holds a GPU's capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub vf: PciAddress,
    pub type_id: VgpuTypeId,
    pub name: Option<String>,
    pub held_by_vm: bool,
}

fn holder_list(list: &[Holder]) -> String {
    if list.is_empty() {
        return "no vGPU".to_owned();
    }
    list.iter()
        .map(|h| {
            let name = h
                .name
                .as_deref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default();
            let vm = if h.held_by_vm { ", in use by a VM" } else { "" };
            format!("{} ({}{name}{vm})", h.vf, h.type_id)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn types(list: &[VgpuType]) -> String {
    if list.is_empty() {
        return "none".to_owned();
    }
    list.iter()
        .map(|t| format!("{} ({})", t.id, t.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A failed vendor-VFIO operation.
#[derive(Debug, thiserror::Error)]
pub enum VgpuError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{pf} is not an NVIDIA GPU on the vendor-specific VFIO path: {reason}")]
    NotVendorVfio { pf: PciAddress, reason: String },
    #[error("{pf} has SR-IOV disabled (0 of {total} VFs): mdevkit never enables it; run `/usr/lib/nvidia/sriov-manage -e {pf}` (after nvidia-vgpud and nvidia-vgpu-mgr are running), then retry")]
    SriovDisabled { pf: PciAddress, total: u16 },
    #[error("{vf} is a VF of {owner}, not of {pf}")]
    VfOfOtherPf {
        vf: PciAddress,
        pf: PciAddress,
        owner: PciAddress,
    },
    #[error("{vf} is not an NVIDIA vendor-VFIO VF (no physfn, no nvidia driver, or no nvidia/current_vgpu_type)")]
    NotNvidiaVf { vf: PciAddress },
    #[error(
        "{vf} already has vGPU type {current}: remove it first (`mdevkit vgpu remove --vf {vf}`)"
    )]
    VfHasVgpu { vf: PciAddress, current: VgpuTypeId },
    #[error("{vf} is in use by a VM (its VFIO device is open): stop the VM first")]
    VfHeld { vf: PciAddress },
    #[error("{vf} is busy: its VM has just stopped and nvidia-vgpu-mgr's plugin has not exited yet, or a VM mdevkit cannot see has it open; retry in a few seconds")]
    Busy { vf: PciAddress },
    #[error("{pf} has no vGPU types yet (creatable_vgpu_types lists none on an idle GPU): is nvidia-vgpud running? Restarting it may help")]
    TypesNotPublished { pf: PciAddress },
    #[error("{pf} is full: every VF has a vGPU or the framebuffer is taken; it holds {}", holder_list(.holders))]
    GpuFull {
        pf: PciAddress,
        holders: Vec<Holder>,
    },
    #[error("type '{given}' is not creatable on {pf} now; creatable now: {}{}", types(.creatable),
        if .hosted.is_empty() { String::new() } else { format!("; the GPU hosts {}", holder_list(.hosted)) })]
    NotCreatable {
        pf: PciAddress,
        given: TypeSelector,
        creatable: Vec<VgpuType>,
        hosted: Vec<Holder>,
    },
    #[error("the driver refused type {type_id} on {vf} ({errno}; `dmesg | grep NVRM` has its reason); creatable there now: {}", types(.creatable))]
    DriverRefused {
        vf: PciAddress,
        type_id: VgpuTypeId,
        errno: &'static str,
        creatable: Vec<VgpuType>,
    },
    #[error("writing '{value}' to {} failed", path.display())]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("{vf}: wrote type {wrote} but current_vgpu_type reads '{read}'")]
    NotApplied {
        vf: PciAddress,
        wrote: String,
        read: String,
    },
}
