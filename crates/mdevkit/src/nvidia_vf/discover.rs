//! Finding vendor-VFIO GPUs and their VFs in sysfs, per GPU (never per node), with the
//! detection rules of the spec's §1: an NVIDIA PF with SR-IOV bound to `nvidia`, whose VFs
//! have an `nvidia/` directory; a PF with `mdev_supported_types` is on the mdev path instead.

use std::cell::OnceCell;
use std::collections::HashSet;
use std::io;
use std::path::Path;

use super::catalogue::{parse_creatable, VgpuType};
use super::error::{Holder, VgpuError};
use super::names::{PciAddress, VgpuTypeId};
use crate::host::{EntryKind, Host};

/// sysfs attributes are at most a page.
const ATTR_LIMIT: u64 = 4096;

/// One SR-IOV GPU on the vendor-specific VFIO path.
#[derive(Debug, Clone)]
pub struct Gpu {
    pub pf: PciAddress,
    /// `10de:26b9`.
    pub pci_id: String,
    /// `sriov_totalvfs`.
    pub total_vfs: u16,
    /// `sriov_numvfs` (0 before `sriov-manage -e`).
    pub enabled_vfs: u16,
    /// The VFs with an `nvidia/` directory, in `virtfnN` order.
    pub vfs: Vec<Vf>,
}

/// One VF: itself the vGPU once it has a type.
#[derive(Debug, Clone)]
pub struct Vf {
    pub address: PciAddress,
    /// `current_vgpu_type`; `None` for `0`.
    pub current: Option<VgpuTypeId>,
    /// `creatable_vgpu_types`, read on free VFs only (a configured VF's list is not the catalogue).
    pub creatable: Vec<VgpuType>,
    /// The name of `current`, when some list on the GPU names it.
    pub current_name: Option<String>,
    /// Some process (a VM) has the VF's VFIO group or cdev open.
    pub held_by_vm: bool,
}

impl Vf {
    pub fn is_free(&self) -> bool {
        self.current.is_none() && !self.held_by_vm
    }
}

/// A type a GPU can be given now, and on how many of its free VFs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    pub vgpu_type: VgpuType,
    /// Free VFs whose list has the type: an upper bound on how many more can be created
    /// (the driver publishes no instance counts on this path; NVML has them).
    pub free_vfs: u32,
}

impl Gpu {
    /// The types creatable now, in the driver's order (first free VF's list, then any others).
    pub fn creatable(&self) -> Vec<Availability> {
        let mut out: Vec<Availability> = Vec::new();
        for vf in self.vfs.iter().filter(|v| v.is_free()) {
            for t in &vf.creatable {
                match out.iter_mut().find(|a| a.vgpu_type.id == t.id) {
                    Some(a) => a.free_vfs = a.free_vfs.saturating_add(1),
                    None => out.push(Availability {
                        vgpu_type: t.clone(),
                        free_vfs: 1,
                    }),
                }
            }
        }
        out
    }

    /// The vGPUs that exist, as errors and listings name them.
    pub fn holders(&self) -> Vec<Holder> {
        self.vfs
            .iter()
            .filter_map(|v| {
                v.current.map(|type_id| Holder {
                    vf: v.address,
                    type_id,
                    name: v.current_name.clone(),
                    held_by_vm: v.held_by_vm,
                })
            })
            .collect()
    }
}

fn read_text(host: &Host, path: &Path) -> Result<String, VgpuError> {
    host.read_bounded(path, ATTR_LIMIT)
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .map_err(|source| VgpuError::Read {
            path: path.to_owned(),
            source,
        })
}

/// Reads a VF's `current_vgpu_type`: `None` for `0`; anything but a number is an error,
/// never taken for a free VF.
pub(crate) fn current_type(host: &Host, vf: PciAddress) -> Result<Option<VgpuTypeId>, VgpuError> {
    let path = host.pci_device_dir(&vf).join("nvidia/current_vgpu_type");
    let text = read_text(host, &path)?;
    if text == "0" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| VgpuError::Read {
        path,
        source: io::Error::new(
            io::ErrorKind::InvalidData,
            format!("'{text}' is not a type id"),
        ),
    })
}

/// The PCI address a link such as `virtfn0 -> ../0000:3d:00.4` points at.
fn link_address(host: &Host, link: &Path) -> Option<PciAddress> {
    let target = host.read_link(link).ok()?;
    target.file_name()?.to_str()?.parse().ok()
}

/// Every vendor-VFIO GPU of the host, by PF address.
pub fn discover(host: &Host) -> Result<Vec<Gpu>, VgpuError> {
    let dir = host.pci_devices_dir();
    let entries = match host.read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(VgpuError::Read { path: dir, source }),
    };
    let mut addrs: Vec<PciAddress> = entries
        .iter()
        .filter_map(|e| e.name.to_str()?.parse().ok())
        .collect();
    addrs.sort();
    let holders = VfioHolders::new();
    let mut gpus = Vec::new();
    for pf in addrs {
        match load(host, pf, &holders) {
            Ok(gpu) => gpus.push(gpu),
            Err(VgpuError::NotVendorVfio { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(gpus)
}

/// One GPU by its PF address; refused with the reason when it is not a vendor-VFIO GPU.
pub fn gpu(host: &Host, pf: PciAddress) -> Result<Gpu, VgpuError> {
    load(host, pf, &VfioHolders::new())
}

/// Why `pf` is not a vendor-VFIO PF (rule 1 of the spec's detection), or `None` when it is.
fn pf_refusal(host: &Host, pf: PciAddress) -> Result<Option<String>, VgpuError> {
    let dir = host.pci_device_dir(&pf);
    if !host.is_dir(&dir) {
        return Ok(Some("no such PCI device".to_owned()));
    }
    let attr = |name: &str| match host.read_if_exists(&dir.join(name)) {
        Ok(bytes) => Ok(bytes.map(|b| String::from_utf8_lossy(&b).trim().to_owned())),
        Err(source) => Err(VgpuError::Read {
            path: dir.join(name),
            source,
        }),
    };
    if attr("vendor")?.as_deref() != Some("0x10de") {
        return Ok(Some("not an NVIDIA device".to_owned()));
    }
    let class = attr("class")?.unwrap_or_default();
    if !(class.starts_with("0x0300") || class.starts_with("0x0302")) {
        return Ok(Some(format!("class {class} is not a GPU")));
    }
    if host.exists(&dir.join("physfn")) {
        return Ok(Some("it is a VF; give its PF".to_owned()));
    }
    if !host.is_file(&dir.join("sriov_totalvfs")) {
        return Ok(Some(
            "it has no SR-IOV (mdev or plain passthrough)".to_owned(),
        ));
    }
    let driver = host
        .read_link(&dir.join("driver"))
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()));
    if driver.as_deref() != Some("nvidia") {
        let bound = driver.unwrap_or_else(|| "no driver".to_owned());
        return Ok(Some(format!("it is bound to {bound}, not nvidia")));
    }
    if host.is_dir(&dir.join("mdev_supported_types")) {
        return Ok(Some("it is an mdev parent (use mdevctl)".to_owned()));
    }
    Ok(None)
}

fn load(host: &Host, pf: PciAddress, holders: &VfioHolders) -> Result<Gpu, VgpuError> {
    if let Some(reason) = pf_refusal(host, pf)? {
        return Err(VgpuError::NotVendorVfio { pf, reason });
    }
    let dir = host.pci_device_dir(&pf);
    let number = |name: &str| -> Result<u16, VgpuError> {
        let text = read_text(host, &dir.join(name))?;
        text.parse().map_err(|_| VgpuError::Read {
            path: dir.join(name),
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                format!("'{text}' is not a count"),
            ),
        })
    };
    let total_vfs = number("sriov_totalvfs")?;
    let enabled_vfs = number("sriov_numvfs")?;
    let device = read_text(host, &dir.join("device"))?;
    let mut vfs = Vec::new();
    for index in 0..enabled_vfs {
        let Some(address) = link_address(host, &dir.join(format!("virtfn{index}"))) else {
            continue;
        };
        let vdir = host.pci_device_dir(&address);
        if !host.is_file(&vdir.join("nvidia/current_vgpu_type")) {
            continue;
        }
        let current = current_type(host, address)?;
        let creatable = match current {
            None => {
                let text = read_text(host, &vdir.join("nvidia/creatable_vgpu_types"))?;
                parse_creatable(&text)
            }
            Some(_) => Vec::new(),
        };
        vfs.push(Vf {
            address,
            current,
            creatable,
            current_name: None,
            held_by_vm: current.is_some() && holders.holds(host, &vdir),
        });
    }
    if enabled_vfs > 0 && vfs.is_empty() {
        return Err(VgpuError::NotVendorVfio {
            pf,
            reason: "its VFs have no nvidia/ directory (mdev on VFs, or nvidia_vgpu_vfio not loaded yet)"
                .to_owned(),
        });
    }
    name_current_types(host, &mut vfs);
    Ok(Gpu {
        pf,
        pci_id: format!("10de:{}", device.trim_start_matches("0x")),
        total_vfs,
        enabled_vfs,
        vfs,
    })
}

/// Names each configured VF's type: from a free sibling's list, else from the VF's own list
/// when that has a line with the same id (used for the name only, never as a catalogue).
fn name_current_types(host: &Host, vfs: &mut [Vf]) {
    let known: Vec<VgpuType> = vfs.iter().flat_map(|v| v.creatable.clone()).collect();
    for vf in vfs.iter_mut() {
        let Some(id) = vf.current else { continue };
        vf.current_name = known
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.name.clone())
            .or_else(|| {
                let path = host
                    .pci_device_dir(&vf.address)
                    .join("nvidia/creatable_vgpu_types");
                let text = read_text(host, &path).ok()?;
                parse_creatable(&text)
                    .into_iter()
                    .find(|t| t.id == id)
                    .map(|t| t.name)
            });
    }
}

/// The address of the PF a VF belongs to, from its `physfn` link.
pub fn owner_of(host: &Host, vf: PciAddress) -> Option<PciAddress> {
    link_address(host, &host.pci_device_dir(&vf).join("physfn"))
}

/// Which VFIO device files some process has open: "in use" per the spec's §7. Read from
/// `/proc/*/fd` at most once per request, and only once a VF with a vGPU asks (processes
/// whose fds cannot be read are skipped).
#[derive(Debug, Default)]
pub(crate) struct VfioHolders {
    open: OnceCell<HashSet<String>>,
}

impl VfioHolders {
    pub(crate) fn new() -> VfioHolders {
        VfioHolders::default()
    }

    fn open_files(&self, host: &Host) -> &HashSet<String> {
        self.open.get_or_init(|| Self::scan(host))
    }

    fn scan(host: &Host) -> HashSet<String> {
        let proc = &host.roots().proc;
        let mut open = HashSet::new();
        let Ok(pids) = host.read_dir(proc) else {
            return open;
        };
        for pid in pids {
            let is_pid = pid.kind == EntryKind::Dir
                && pid
                    .name
                    .to_str()
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
            if !is_pid {
                continue;
            }
            let fd_dir = proc.join(&pid.name).join("fd");
            let Ok(fds) = host.read_dir(&fd_dir) else {
                continue;
            };
            for fd in fds {
                if let Ok(target) = host.read_link(&fd_dir.join(&fd.name)) {
                    let target = target.to_string_lossy().into_owned();
                    if target.starts_with("/dev/vfio/") {
                        open.insert(target);
                    }
                }
            }
        }
        open
    }

    /// Whether the VF's group (`/dev/vfio/<group>`) or cdev (`/dev/vfio/devices/vfioN`) is open.
    pub(crate) fn holds(&self, host: &Host, vf_dir: &Path) -> bool {
        let open = self.open_files(host);
        if open.is_empty() {
            return false;
        }
        let group = host
            .read_link(&vf_dir.join("iommu_group"))
            .ok()
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()));
        if group.is_some_and(|g| open.contains(&format!("/dev/vfio/{g}"))) {
            return true;
        }
        host.read_dir(&vf_dir.join("vfio-dev"))
            .unwrap_or_default()
            .iter()
            .any(|e| {
                let name = e.name.to_string_lossy();
                open.contains(&format!("/dev/vfio/devices/{name}"))
            })
    }
}
