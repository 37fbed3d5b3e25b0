//! NVIDIA vendor-specific VFIO (kernel >= 6.8): SR-IOV GPUs whose VFs are the vGPUs, each with
//! an `nvidia/` directory (`creatable_vgpu_types`, `current_vgpu_type`, ...); no mdev at all.
//!
//! Behaviour follows `/work/shared/spec/nvidia-vendor-vfio.md` (the proprietary driver's
//! table in its §4); what the spec marks inferred is modelled and listed in `docs/mdev-sim.md`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::kernel::{ControlError, Kernel};
use crate::parse::{kstrtoul, Errno};
use crate::sriov::{bare_hex, vf_address, vf_device, DriverVariant, GpuSpec, VgpuTypeSpec};
use crate::tree::Role;

/// The header line `creatable_vgpu_types` always starts with.
pub const CREATABLE_HEADER: &str = "ID    : vGPU Name\n";
/// `vgpu_params` longer than this is refused with E2BIG (the real limit is not known).
const PARAMS_LIMIT: usize = 1024;

/// A file of the vendor-VFIO tree whose content depends on state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VfFile {
    /// The PF's `sriov_numvfs`.
    NumVfs { pf: String },
    /// A file in VF `index`'s `nvidia/` directory.
    Nvidia {
        pf: String,
        index: u16,
        attr: VfAttr,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VfAttr {
    CreatableTypes,
    CurrentType,
    GpuInstanceId,
    PlacementId,
    VgpuParams,
    WarmUpdate,
}

impl VfAttr {
    const ALL: [VfAttr; 6] = [
        VfAttr::CreatableTypes,
        VfAttr::CurrentType,
        VfAttr::GpuInstanceId,
        VfAttr::PlacementId,
        VfAttr::VgpuParams,
        VfAttr::WarmUpdate,
    ];

    fn file_name(self) -> &'static str {
        match self {
            VfAttr::CreatableTypes => "creatable_vgpu_types",
            VfAttr::CurrentType => "current_vgpu_type",
            VfAttr::GpuInstanceId => "gpu_instance_id",
            VfAttr::PlacementId => "placement_id",
            VfAttr::VgpuParams => "vgpu_params",
            VfAttr::WarmUpdate => "warm_update",
        }
    }

    fn mode(self) -> u16 {
        match self {
            VfAttr::CreatableTypes => 0o444,
            _ => 0o644,
        }
    }
}

/// Whether a VM holds a VF's VFIO device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Hold {
    #[default]
    Free,
    /// The VFIO device is open (a VM runs on it).
    Open,
    /// Just closed, but the `nvidia-vgpu-mgr` plugin has not exited yet.
    Lingering,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct VfState {
    pub(crate) vgpu: Option<u32>,
    pub(crate) hold: Hold,
    pub(crate) placement: u32,
    pub(crate) gpu_instance: u32,
    pub(crate) params: String,
    pub(crate) warm_update: u64,
}

/// One GPU's runtime state.
#[derive(Debug)]
pub struct GpuState {
    pub(crate) spec: Arc<GpuSpec>,
    pub(crate) published: bool,
    mixed: bool,
    pub(crate) vfs: Vec<VfState>,
}

/// `kstrtol(buf, 10)`: decimal with an optional sign and one trailing newline.
pub(crate) fn kstrtol10(data: &[u8]) -> Result<i64, Errno> {
    let text = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Errno::EINVAL);
    }
    text.parse::<i64>().map_err(|_| Errno::ERANGE)
}

impl GpuState {
    pub(crate) fn max_instances(&self, ty: &VgpuTypeSpec) -> u32 {
        ty.max_instances
            .unwrap_or(self.spec.framebuffer_mib / ty.framebuffer_mib)
            .min(u32::from(self.spec.total_vfs))
    }

    pub(crate) fn type_of(&self, id: u32) -> Option<&VgpuTypeSpec> {
        self.spec.types.iter().find(|t| t.id == id)
    }

    pub(crate) fn vgpus(&self) -> impl Iterator<Item = &VgpuTypeSpec> + '_ {
        self.vfs
            .iter()
            .filter_map(|v| v.vgpu.and_then(|id| self.type_of(id)))
    }

    /// What a free VF can be given now: the capacity model of the spec's §6.
    fn creatable(&self) -> Vec<&VgpuTypeSpec> {
        if !self.published {
            return Vec::new();
        }
        let existing: Vec<&VgpuTypeSpec> = self.vgpus().collect();
        let count = |id: u32| existing.iter().filter(|t| t.id == id).count();
        // Saturating: a profile's type sizes can add up past u32 (equal-size mode with
        // `max_instances` does not bound them by the GPU's framebuffer).
        let used_mib = existing
            .iter()
            .fold(0u32, |sum, t| sum.saturating_add(t.framebuffer_mib));
        self.spec
            .types
            .iter()
            .filter(|t| {
                let below_max = (count(t.id) as u64) < u64::from(self.max_instances(t));
                if self.mixed {
                    return below_max
                        && used_mib.saturating_add(t.framebuffer_mib) <= self.spec.framebuffer_mib;
                }
                let Some(first) = existing.first() else {
                    return below_max;
                };
                let same_size = t.framebuffer_mib == first.framebuffer_mib;
                let series_ok = self.spec.mix_series || t.series() == first.series();
                same_size && series_ok && (existing.len() as u64) < u64::from(self.max_instances(t))
            })
            .collect()
    }

    pub(crate) fn lowest_free_placement(&self) -> u32 {
        (0..)
            .find(|p| {
                !self
                    .vfs
                    .iter()
                    .any(|v| v.vgpu.is_some() && v.placement == *p)
            })
            .unwrap_or(0)
    }
}

impl Kernel {
    /// Builds the PCI side of every GPU of the profile.
    pub(crate) fn add_gpus(&mut self, gpus: &[GpuSpec]) {
        self.tree.mkdir_p("bus/pci/devices");
        self.tree.mkdir_p("bus/pci/drivers/nvidia");
        for spec in gpus {
            let spec = Arc::new(spec.clone());
            let pf = spec.address.clone();
            let dir = format!("{}/{pf}", spec.dir);
            let statics = [
                ("vendor", "0x10de".to_string()),
                ("device", spec.device_id.clone()),
                ("class", spec.class.clone()),
                ("sriov_totalvfs", spec.total_vfs.to_string()),
                ("sriov_offset", spec.vf_offset.to_string()),
                ("sriov_stride", spec.vf_stride.to_string()),
                ("sriov_vf_device", bare_hex(vf_device(&spec))),
            ];
            for (name, value) in statics {
                self.tree.put_file(
                    &format!("{dir}/{name}"),
                    0o444,
                    Role::Static(format!("{value}\n")),
                );
            }
            self.tree.put_file(
                &format!("{dir}/sriov_numvfs"),
                0o644,
                Role::NvidiaVf(VfFile::NumVfs { pf: pf.clone() }),
            );
            self.pci_links(&pf, &dir, spec.iommu_group);
            let state = GpuState {
                published: spec.types_published,
                mixed: spec.mixed_size,
                vfs: Vec::new(),
                spec: spec.clone(),
            };
            self.gpus.insert(pf.clone(), state);
            if spec.enabled_vfs > 0 {
                self.enable_vfs(&pf, spec.enabled_vfs);
            }
        }
    }

    /// `bus/pci/devices/<addr>`, the `nvidia` driver binding and an IOMMU group.
    fn pci_links(&mut self, addr: &str, dir: &str, group: u32) {
        self.tree.put_link(&format!("bus/pci/devices/{addr}"), dir);
        self.tree
            .put_link(&format!("{dir}/driver"), "bus/pci/drivers/nvidia");
        self.tree
            .put_link(&format!("bus/pci/drivers/nvidia/{addr}"), dir);
        let gdir = format!("kernel/iommu_groups/{group}");
        self.tree.put_link(&format!("{dir}/iommu_group"), &gdir);
        self.tree.put_link(&format!("{gdir}/devices/{addr}"), dir);
    }

    fn enable_vfs(&mut self, pf: &str, count: u16) {
        let Some(gpu) = self.gpus.get_mut(pf) else {
            return;
        };
        let spec = gpu.spec.clone();
        gpu.vfs = vec![VfState::default(); usize::from(count)];
        // sriov-manage rebinds the PF: mixed-size mode is lost [D:S9].
        gpu.mixed = false;
        let pf_dir = format!("{}/{pf}", spec.dir);
        for index in 0..count {
            let vf = vf_address(&spec, index);
            let dir = format!("{}/{vf}", spec.dir);
            self.tree.put_link(&format!("{pf_dir}/virtfn{index}"), &dir);
            self.tree.put_link(&format!("{dir}/physfn"), &pf_dir);
            for (name, value) in [
                ("vendor", "0x10de".to_string()),
                ("device", vf_device(&spec).to_string()),
                ("class", spec.class.clone()),
            ] {
                self.tree.put_file(
                    &format!("{dir}/{name}"),
                    0o444,
                    Role::Static(format!("{value}\n")),
                );
            }
            let group = spec
                .iommu_group
                .saturating_add(1)
                .saturating_add(u32::from(index));
            self.pci_links(&vf, &dir, group);
            if spec.vfio_cdev {
                self.tree.mkdir_p(&format!("{dir}/vfio-dev/vfio{group}"));
            }
            for attr in VfAttr::ALL {
                self.tree.put_file(
                    &format!("{dir}/nvidia/{}", attr.file_name()),
                    attr.mode(),
                    Role::NvidiaVf(VfFile::Nvidia {
                        pf: pf.to_string(),
                        index,
                        attr,
                    }),
                );
            }
        }
    }

    fn disable_vfs(&mut self, pf: &str) {
        let Some(gpu) = self.gpus.get_mut(pf) else {
            return;
        };
        let spec = gpu.spec.clone();
        let count = u16::try_from(gpu.vfs.len()).unwrap_or(u16::MAX);
        gpu.vfs.clear();
        gpu.mixed = false;
        for index in 0..count {
            let vf = vf_address(&spec, index);
            let group = spec
                .iommu_group
                .saturating_add(1)
                .saturating_add(u32::from(index));
            self.tree.remove_path(&format!("{}/{vf}", spec.dir));
            self.tree
                .remove_path(&format!("{}/{pf}/virtfn{index}", spec.dir));
            self.tree.remove_path(&format!("bus/pci/devices/{vf}"));
            self.tree
                .remove_path(&format!("bus/pci/drivers/nvidia/{vf}"));
            self.tree
                .remove_path(&format!("kernel/iommu_groups/{group}"));
        }
    }

    pub(crate) fn vf_show(&self, file: &VfFile) -> Result<String, Errno> {
        let (pf, index, attr) = match file {
            VfFile::NumVfs { pf } => {
                let gpu = self.gpus.get(pf).ok_or(Errno::ENODEV)?;
                return Ok(format!("{}\n", gpu.vfs.len()));
            }
            VfFile::Nvidia { pf, index, attr } => (pf, index, attr),
        };
        let gpu = self.gpus.get(pf).ok_or(Errno::ENODEV)?;
        let vf = gpu.vfs.get(usize::from(*index)).ok_or(Errno::ENODEV)?;
        let needs_vgpu = |value: String| vf.vgpu.map(|_| value).ok_or(Errno::ENXIO);
        match attr {
            VfAttr::CreatableTypes if gpu.spec.driver == DriverVariant::Rfc => {
                Ok(crate::nvidia_vgpu_rfc::creatable_text(gpu, vf))
            }
            VfAttr::CreatableTypes => {
                let listed: Vec<&VgpuTypeSpec> = match vf.vgpu {
                    // A configured VF shows only its own type (one of the observed variants).
                    Some(id) => gpu.type_of(id).into_iter().collect(),
                    None => gpu.creatable(),
                };
                let mut text = CREATABLE_HEADER.to_string();
                for t in listed {
                    text.push_str(&format!("{:<5} : {}\n", t.id, t.name));
                }
                Ok(text)
            }
            VfAttr::CurrentType => Ok(format!("{}\n", vf.vgpu.unwrap_or(0))),
            VfAttr::GpuInstanceId => needs_vgpu(format!("{}\n", vf.gpu_instance)),
            VfAttr::PlacementId => needs_vgpu(format!("{}\n", vf.placement)),
            VfAttr::VgpuParams => Ok(format!("{}\n", vf.params)),
            VfAttr::WarmUpdate => Ok(format!("{}\n", vf.warm_update)),
        }
    }

    pub(crate) fn vf_store(&mut self, file: &VfFile, data: &[u8]) -> Result<(), Errno> {
        let (pf, index, attr) = match file {
            VfFile::NumVfs { pf } => return self.numvfs_store(pf, data),
            VfFile::Nvidia { pf, index, attr } => (pf, usize::from(*index), *attr),
        };
        let gpu = self.gpus.get_mut(pf).ok_or(Errno::ENODEV)?;
        if attr == VfAttr::CurrentType {
            return match gpu.spec.driver {
                DriverVariant::Proprietary => current_type_store(gpu, index, data),
                DriverVariant::Rfc => crate::nvidia_vgpu_rfc::current_type_store(gpu, index, data),
            };
        }
        let vf = gpu.vfs.get_mut(index).ok_or(Errno::ENODEV)?;
        match attr {
            VfAttr::GpuInstanceId | VfAttr::PlacementId => {
                if vf.vgpu.is_none() {
                    return Err(Errno::ENXIO);
                }
                if vf.hold != Hold::Free {
                    return Err(Errno::EPERM);
                }
                let value = u32::try_from(kstrtoul(data)?).map_err(|_| Errno::ERANGE)?;
                if attr == VfAttr::PlacementId {
                    vf.placement = value;
                } else {
                    vf.gpu_instance = value;
                }
            }
            VfAttr::VgpuParams => {
                if vf.vgpu.is_none() {
                    return Err(Errno::ENXIO);
                }
                if vf.hold != Hold::Free {
                    return Err(Errno::EPERM);
                }
                if data.len() > PARAMS_LIMIT {
                    return Err(Errno::E2BIG);
                }
                let text = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
                // NVIDIA's documented way to clear it is writing a single space.
                vf.params = text.trim().to_string();
            }
            VfAttr::WarmUpdate => vf.warm_update = kstrtoul(data)?,
            VfAttr::CreatableTypes | VfAttr::CurrentType => return Err(Errno::EACCES),
        }
        Ok(())
    }

    /// The kernel's `sriov_numvfs_store`; the write stands for `sriov-manage -e/-d`.
    fn numvfs_store(&mut self, pf: &str, data: &[u8]) -> Result<(), Errno> {
        let wanted = u16::try_from(kstrtoul(data)?).map_err(|_| Errno::ERANGE)?;
        let gpu = self.gpus.get(pf).ok_or(Errno::ENODEV)?;
        if wanted > gpu.spec.total_vfs {
            return Err(Errno::ERANGE);
        }
        let current = gpu.vfs.len();
        if usize::from(wanted) == current {
            return Ok(());
        }
        if wanted == 0 {
            // Unbinding waits for open VFIO devices; a refusal stands for that here.
            if gpu.vfs.iter().any(|v| v.hold != Hold::Free) {
                return Err(Errno::EBUSY);
            }
            self.disable_vfs(pf);
            return Ok(());
        }
        if current != 0 {
            return Err(Errno::EBUSY);
        }
        self.enable_vfs(pf, wanted);
        Ok(())
    }

    /// `vf-open VF on|off|linger`: a VM opens or closes the VF's VFIO device.
    pub fn set_vf_hold(&mut self, vf: &str, hold: Hold) -> Result<(), ControlError> {
        let (pf, index) = self
            .find_vf(vf)
            .ok_or_else(|| ControlError::Usage(format!("no VF '{vf}' in this profile")))?;
        let state = self
            .gpus
            .get_mut(&pf)
            .and_then(|g| g.vfs.get_mut(index))
            .ok_or_else(|| ControlError::Usage(format!("VF '{vf}' is not enabled")))?;
        if hold == Hold::Open && state.vgpu.is_none() {
            // The driver refuses the open: "current_vgpu_type of VF not configured".
            return Err(ControlError::Usage(format!(
                "VF '{vf}' has no vGPU: opening its VFIO device fails with ENODEV"
            )));
        }
        state.hold = hold;
        Ok(())
    }

    /// `vgpud PF`: `nvidia-vgpud` publishes the GPU's types.
    pub fn publish_vgpu_types(&mut self, pf: &str) -> Result<(), ControlError> {
        let gpu = self.gpu_mut(pf)?;
        if gpu.published {
            return Err(ControlError::AlreadyPublished(pf.to_string()));
        }
        gpu.published = true;
        Ok(())
    }

    /// `mixed-size PF on|off`: `nvidia-smi vgpu -shm`, refused while any vGPU exists.
    pub fn set_mixed_size(&mut self, pf: &str, on: bool) -> Result<(), ControlError> {
        let gpu = self.gpu_mut(pf)?;
        if gpu.vgpus().next().is_some() {
            return Err(ControlError::Usage(format!(
                "GPU '{pf}' hosts vGPUs: In use by another client"
            )));
        }
        gpu.mixed = on;
        Ok(())
    }

    fn gpu_mut(&mut self, pf: &str) -> Result<&mut GpuState, ControlError> {
        self.gpus
            .get_mut(pf)
            .ok_or_else(|| ControlError::UnknownParent(pf.to_string()))
    }

    fn find_vf(&self, vf: &str) -> Option<(String, usize)> {
        self.gpus.iter().find_map(|(pf, gpu)| {
            (0..gpu.spec.total_vfs)
                .find(|&i| vf_address(&gpu.spec, i) == vf)
                .map(|i| (pf.clone(), usize::from(i)))
        })
    }
}

/// `current_vgpu_type`'s store function, the proprietary driver's table (spec §4).
fn current_type_store(gpu: &mut GpuState, index: usize, data: &[u8]) -> Result<(), Errno> {
    let wanted = kstrtol10(data)?;
    let creatable: Vec<u32> = gpu.creatable().iter().map(|t| t.id).collect();
    let placement = gpu.lowest_free_placement();
    let vf = gpu.vfs.get_mut(index).ok_or(Errno::ENODEV)?;
    if wanted == 0 {
        if vf.vgpu.is_none() {
            return Err(Errno::EPERM);
        }
        return match vf.hold {
            Hold::Open => Err(Errno::EPERM),
            Hold::Lingering => Err(Errno::EBUSY),
            Hold::Free => {
                *vf = VfState {
                    warm_update: vf.warm_update,
                    ..VfState::default()
                };
                Ok(())
            }
        };
    }
    if vf.vgpu.is_some() {
        return Err(Errno::EPERM);
    }
    // Unknown, not creatable now, full, wrong size, daemon not ready: RM refuses with EIO.
    let id = u32::try_from(wanted).map_err(|_| Errno::EIO)?;
    if !creatable.contains(&id) {
        return Err(Errno::EIO);
    }
    vf.vgpu = Some(id);
    vf.placement = placement;
    Ok(())
}

pub(crate) type Gpus = BTreeMap<String, GpuState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kstrtol10_is_decimal_only() {
        assert_eq!(kstrtol10(b"1150\n"), Ok(1150));
        assert_eq!(kstrtol10(b"0"), Ok(0));
        assert_eq!(kstrtol10(b"0x10"), Err(Errno::EINVAL));
        assert_eq!(kstrtol10(b" 1"), Err(Errno::EINVAL));
        assert_eq!(kstrtol10(b""), Err(Errno::EINVAL));
        assert_eq!(kstrtol10(b"99999999999999999999"), Err(Errno::ERANGE));
    }

    /// A profile may give types more framebuffer than fits a u32 in total (`max_instances`
    /// is not checked against it); listing what is creatable must not overflow the sum.
    #[test]
    fn huge_type_framebuffers_do_not_overflow_the_used_total() {
        let spec: GpuSpec = serde_json::from_str(
            r#"{"address":"0000:3d:00.0","dir":"devices/pci0000:3d","device_id":"0x26b9",
                "class":"0x030200","total_vfs":4,"framebuffer_mib":4096,"iommu_group":40,
                "types":[{"id":1,"name":"Big-Q","framebuffer_mib":4294967295,"max_instances":4}]}"#,
        )
        .unwrap();
        let vfs = (0..3)
            .map(|_| VfState {
                vgpu: Some(1),
                ..VfState::default()
            })
            .collect();
        let gpu = GpuState {
            spec: Arc::new(spec),
            published: true,
            mixed: false,
            vfs,
        };
        let ids: Vec<u32> = gpu.creatable().iter().map(|t| t.id).collect();
        assert_eq!(
            ids,
            [1],
            "a fourth of the same size still fits max_instances"
        );
        let gpu = GpuState { mixed: true, ..gpu };
        assert!(
            gpu.creatable().is_empty(),
            "no framebuffer left in mixed mode"
        );
    }
}
