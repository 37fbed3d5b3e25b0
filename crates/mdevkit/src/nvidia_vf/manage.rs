//! Creating and removing vGPUs: writing a type id, or `0`, to a VF's `current_vgpu_type`,
//! with the client rules of the spec's §4 (read before write, verify by reading back, never
//! touch a VF a VM holds) and the driver's errnos turned into explanations.

use std::io;

use rustix::io::Errno;

use super::catalogue::{parse_creatable, VgpuType};
use super::discover::{current_type, gpu, owner_of, Gpu, Vf, VfioHolders};
use super::error::VgpuError;
use super::names::{PciAddress, TypeSelector, VgpuTypeId};
use crate::host::Host;

/// A vGPU that now exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub vf: PciAddress,
    pub vgpu_type: VgpuType,
}

/// What `remove` found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// The VF had this type and now has none.
    Destroyed(VgpuTypeId),
    /// The VF had no vGPU: nothing was written.
    AlreadyFree,
}

fn errno_of(e: &io::Error) -> Option<Errno> {
    Errno::from_io_error(e)
}

fn creatable_on(host: &Host, vf: PciAddress) -> Result<Vec<VgpuType>, VgpuError> {
    let path = host.pci_device_dir(&vf).join("nvidia/creatable_vgpu_types");
    host.read_bounded(&path, 4096)
        .map(|b| parse_creatable(&String::from_utf8_lossy(&b)))
        .map_err(|source| VgpuError::Read { path, source })
}

/// The VF of `gpu` named `vf`, or why it is not one of its vendor-VFIO VFs.
fn own_vf(host: &Host, gpu: &Gpu, vf: PciAddress) -> Result<Vf, VgpuError> {
    if let Some(found) = gpu.vfs.iter().find(|v| v.address == vf) {
        return Ok(found.clone());
    }
    match owner_of(host, vf) {
        Some(owner) if owner != gpu.pf => Err(VgpuError::VfOfOtherPf {
            vf,
            pf: gpu.pf,
            owner,
        }),
        _ => Err(VgpuError::NotNvidiaVf { vf }),
    }
}

/// Creates a vGPU of `wanted` on `vf`, or on the first free VF of `pf` when `vf` is `None`.
///
/// Never enables SR-IOV and never writes to a VF that has a vGPU or that a VM holds.
pub fn create(
    host: &Host,
    pf: PciAddress,
    wanted: &TypeSelector,
    vf: Option<PciAddress>,
) -> Result<Created, VgpuError> {
    let gpu = gpu(host, pf)?;
    if gpu.enabled_vfs == 0 {
        return Err(VgpuError::SriovDisabled {
            pf,
            total: gpu.total_vfs,
        });
    }
    let target = match vf {
        Some(vf) => {
            let found = own_vf(host, &gpu, vf)?;
            if let Some(current) = found.current {
                return Err(if found.held_by_vm {
                    VgpuError::VfHeld { vf }
                } else {
                    VgpuError::VfHasVgpu { vf, current }
                });
            }
            found
        }
        None => gpu
            .vfs
            .iter()
            .find(|v| v.is_free())
            .cloned()
            .ok_or_else(|| VgpuError::GpuFull {
                pf,
                holders: gpu.holders(),
            })?,
    };
    // Siblings' vGPUs change what a VF accepts: the list read during discovery is current.
    let Some(chosen) = target
        .creatable
        .iter()
        .find(|t| wanted.matches(t.id, &t.name))
        .cloned()
    else {
        return Err(refusal(&gpu, wanted, &target.creatable));
    };
    let path = host
        .pci_device_dir(&target.address)
        .join("nvidia/current_vgpu_type");
    let value = chosen.id.to_string();
    if let Err(source) = host.write_sysfs(&path, value.as_bytes()) {
        let refused = |errno| VgpuError::DriverRefused {
            vf: target.address,
            type_id: chosen.id,
            errno,
            creatable: creatable_on(host, target.address).unwrap_or_default(),
        };
        // The proprietary driver answers EIO for every refusal; the upstream RFC driver
        // ENODEV (unknown type), EINVAL (not the GPU's type), ENOSPC (no room), EBUSY (open).
        return Err(match errno_of(&source) {
            Some(Errno::IO) => refused("EIO"),
            Some(Errno::NODEV) => refused("ENODEV"),
            Some(Errno::INVAL) => refused("EINVAL"),
            Some(Errno::NOSPC) => VgpuError::GpuFull {
                pf,
                holders: gpu_holders(host, pf),
            },
            Some(Errno::BUSY) => VgpuError::Busy { vf: target.address },
            Some(Errno::PERM) => match current_type(host, target.address)? {
                Some(current) => VgpuError::VfHasVgpu {
                    vf: target.address,
                    current,
                },
                None => VgpuError::Write {
                    path,
                    value,
                    source,
                },
            },
            _ => VgpuError::Write {
                path,
                value,
                source,
            },
        });
    }
    match current_type(host, target.address)? {
        Some(id) if id == chosen.id => Ok(Created {
            vf: target.address,
            vgpu_type: chosen,
        }),
        other => Err(VgpuError::NotApplied {
            vf: target.address,
            wrote: value,
            read: other.map_or_else(|| "0".to_owned(), |id| id.to_string()),
        }),
    }
}

/// The vGPUs of `pf` as they are now (after a refusal changed what we knew).
fn gpu_holders(host: &Host, pf: PciAddress) -> Vec<super::error::Holder> {
    gpu(host, pf).map(|g| g.holders()).unwrap_or_default()
}

/// Why `wanted` is not in a free VF's list: nothing published yet, the GPU full, or a type
/// that is not creatable now (which lists what is).
fn refusal(gpu: &Gpu, wanted: &TypeSelector, listed: &[VgpuType]) -> VgpuError {
    let hosted = gpu.holders();
    if listed.is_empty() && hosted.is_empty() {
        return VgpuError::TypesNotPublished { pf: gpu.pf };
    }
    if listed.is_empty() {
        return VgpuError::GpuFull {
            pf: gpu.pf,
            holders: hosted,
        };
    }
    VgpuError::NotCreatable {
        pf: gpu.pf,
        given: wanted.clone(),
        creatable: listed.to_vec(),
        hosted,
    }
}

/// Destroys the vGPU on `vf` by writing `0`; a VF a VM holds is refused without a write.
pub fn remove(host: &Host, vf: PciAddress) -> Result<Removed, VgpuError> {
    let pf = owner_of(host, vf).ok_or(VgpuError::NotNvidiaVf { vf })?;
    let gpu = match gpu(host, pf) {
        Ok(gpu) => gpu,
        Err(VgpuError::NotVendorVfio { .. }) => return Err(VgpuError::NotNvidiaVf { vf }),
        Err(e) => return Err(e),
    };
    let found = own_vf(host, &gpu, vf)?;
    let Some(current) = found.current else {
        return Ok(Removed::AlreadyFree);
    };
    if found.held_by_vm {
        return Err(VgpuError::VfHeld { vf });
    }
    let path = host.pci_device_dir(&vf).join("nvidia/current_vgpu_type");
    if let Err(source) = host.write_sysfs(&path, b"0") {
        return match errno_of(&source) {
            // EPERM also answers `0` on a VF another writer just emptied: re-read first.
            Some(Errno::PERM) => match current_type(host, vf)? {
                None => Ok(Removed::Destroyed(current)),
                Some(_) => Err(VgpuError::VfHeld { vf }),
            },
            Some(Errno::BUSY) => Err(VgpuError::Busy { vf }),
            _ => Err(VgpuError::Write {
                path,
                value: "0".to_owned(),
                source,
            }),
        };
    }
    match current_type(host, vf)? {
        None => Ok(Removed::Destroyed(current)),
        Some(id) => Err(VgpuError::NotApplied {
            vf,
            wrote: "0".to_owned(),
            read: id.to_string(),
        }),
    }
}

/// Whether some process holds `vf`'s VFIO device (one `/proc` scan).
pub fn held_by_vm(host: &Host, vf: PciAddress) -> bool {
    VfioHolders::new().holds(host, &host.pci_device_dir(&vf))
}
