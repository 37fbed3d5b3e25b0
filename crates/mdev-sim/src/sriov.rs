//! SR-IOV GPUs of a profile: their spec (PF, VF count and layout, vGPU types), its checks,
//! and VF addressing (routing id + offset + stride × n, as PCIe SR-IOV numbers VFs).

use serde::{Deserialize, Serialize};

/// One SR-IOV GPU of a profile, bound to `nvidia` with `nvidia_vgpu_vfio` loaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// The PF's PCI address, `0000:3d:00.0`.
    pub address: String,
    /// Directory (relative to the sysfs root) that holds the PF and its VFs, e.g. `devices/pci0000:3d`.
    pub dir: String,
    /// PCI device id of the PF, `0x26b9`.
    pub device_id: String,
    /// PCI device id of the VFs (default: the PF's, as on A10).
    #[serde(default)]
    pub vf_device_id: Option<String>,
    /// PCI class, `0x030200` (3D controller).
    pub class: String,
    /// `sriov_totalvfs`.
    pub total_vfs: u16,
    /// `sriov_numvfs` when the simulator starts (0 = before `sriov-manage -e`).
    #[serde(default)]
    pub enabled_vfs: u16,
    #[serde(default = "four")]
    pub vf_offset: u16,
    #[serde(default = "one")]
    pub vf_stride: u16,
    /// Framebuffer the vGPUs share, in MiB.
    pub framebuffer_mib: u32,
    /// IOMMU group of the PF; VF n gets this + 1 + n.
    pub iommu_group: u32,
    /// Mixed-size (heterogeneous) mode when the simulator starts.
    #[serde(default)]
    pub mixed_size: bool,
    /// In equal-size mode, whether types of another series (Q/B/A) with the same framebuffer
    /// size stay creatable next to the existing vGPUs (the board's heterogeneous series capability).
    #[serde(default)]
    pub mix_series: bool,
    /// Whether `nvidia-vgpud` has published the types when the simulator starts.
    #[serde(default = "yes")]
    pub types_published: bool,
    /// Whether VFs get `vfio-dev/vfioN/` (`CONFIG_VFIO_DEVICE_CDEV`).
    #[serde(default = "yes")]
    pub vfio_cdev: bool,
    /// Which driver's behaviour the VFs' `nvidia/` files follow.
    #[serde(default)]
    pub driver: DriverVariant,
    /// Supported vGPU types in the driver's order (the order `creatable_vgpu_types` lists them).
    pub types: Vec<VgpuTypeSpec>,
}

fn four() -> u16 {
    4
}
fn one() -> u16 {
    1
}
fn yes() -> bool {
    true
}

/// NVIDIA's proprietary host driver (default), or the upstream RFC variant driver, which
/// keeps the file names but lists and refuses differently (spec §3 and §4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriverVariant {
    #[default]
    Proprietary,
    Rfc,
}

/// One supported vGPU type.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VgpuTypeSpec {
    pub id: u32,
    /// Full name, `NVIDIA L40S-4Q`.
    pub name: String,
    pub framebuffer_mib: u32,
    /// Default: the GPU's framebuffer divided by this type's.
    #[serde(default)]
    pub max_instances: Option<u32>,
}

impl VgpuTypeSpec {
    /// The series letter at the end of the name (`Q`, `B`, `A`, `C`).
    pub(crate) fn series(&self) -> Option<char> {
        self.name.chars().last()
    }
}

/// Checks the GPU part of a profile.
pub fn validate(gpus: &[GpuSpec]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for gpu in gpus {
        let rid = routing_id(&gpu.address)
            .filter(|_| gpu.address == gpu.address.to_ascii_lowercase())
            .ok_or_else(|| {
                format!(
                    "'{}' is not a lower-case PCI address like 0000:3d:00.0",
                    gpu.address
                )
            })?;
        if !seen.insert(gpu.address.clone()) {
            return Err(format!("GPU '{}' is listed twice", gpu.address));
        }
        if gpu.enabled_vfs != 0 && gpu.enabled_vfs != gpu.total_vfs {
            return Err(format!(
                "GPU '{}': enabled_vfs must be 0 or total_vfs (sriov-manage enables all)",
                gpu.address
            ));
        }
        let last = u32::from(gpu.vf_stride)
            .checked_mul(u32::from(gpu.total_vfs.saturating_sub(1)))
            .and_then(|n| n.checked_add(u32::from(gpu.vf_offset)))
            .and_then(|n| n.checked_add(rid.1));
        if last.is_none_or(|last| last > 0xffff) || gpu.vf_stride == 0 {
            return Err(format!("GPU '{}': VF addresses overflow", gpu.address));
        }
        crate::profile::check_dir(&gpu.dir)?;
        if gpu.framebuffer_mib == 0 {
            return Err(format!("GPU '{}' needs a framebuffer", gpu.address));
        }
        let mut ids = std::collections::HashSet::new();
        for ty in &gpu.types {
            if ty.id == 0 || !ids.insert(ty.id) || ty.framebuffer_mib == 0 {
                return Err(format!(
                    "GPU '{}': type {} is 0, repeated or has no framebuffer",
                    gpu.address, ty.id
                ));
            }
        }
    }
    Ok(())
}

/// (domain, bus/device/function as the 16-bit routing id) of `dddd:bb:dd.f`.
pub(crate) fn routing_id(addr: &str) -> Option<(u32, u32)> {
    let (domain, rest) = addr.split_once(':')?;
    let (bus, rest) = rest.split_once(':')?;
    let (dev, func) = rest.split_once('.')?;
    if domain.len() != 4 || bus.len() != 2 || dev.len() != 2 || func.len() != 1 {
        return None;
    }
    let domain = u32::from_str_radix(domain, 16).ok()?;
    let bus = u32::from_str_radix(bus, 16).ok()?;
    let dev = u32::from_str_radix(dev, 16).ok()?;
    let func = u32::from_str_radix(func, 16).ok()?;
    (dev < 32 && func < 8).then_some((domain, (bus << 8) | (dev << 3) | func))
}

/// VF `index`'s address: the PF's routing id plus offset + stride × index (PCIe SR-IOV).
pub(crate) fn vf_address(spec: &GpuSpec, index: u16) -> String {
    let (domain, rid) = routing_id(&spec.address).unwrap_or_default();
    let rid = rid + u32::from(spec.vf_offset) + u32::from(spec.vf_stride) * u32::from(index);
    format!(
        "{domain:04x}:{:02x}:{:02x}.{:x}",
        (rid >> 8) & 0xff,
        (rid >> 3) & 0x1f,
        rid & 7
    )
}

pub(crate) fn vf_device(spec: &GpuSpec) -> &str {
    spec.vf_device_id.as_deref().unwrap_or(&spec.device_id)
}

/// `sriov_vf_device` prints the id as bare hex (`%x`), without `0x`.
pub(crate) fn bare_hex(id: &str) -> String {
    id.trim_start_matches("0x").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vf_addresses_follow_offset_and_stride() {
        let spec: GpuSpec = serde_json::from_str(
            r#"{"address":"0000:3d:00.0","dir":"devices/pci0000:3d","device_id":"0x26b9",
                "class":"0x030200","total_vfs":32,"framebuffer_mib":49152,"iommu_group":40,"types":[]}"#,
        )
        .unwrap();
        assert_eq!(vf_address(&spec, 0), "0000:3d:00.4");
        assert_eq!(vf_address(&spec, 4), "0000:3d:01.0");
        assert_eq!(vf_address(&spec, 31), "0000:3d:04.3");
    }

    #[test]
    fn bad_gpu_specs_are_refused() {
        let base = r#"{"address":"0000:3d:00.0","dir":"devices/pci0000:3d","device_id":"0x26b9",
            "class":"0x030200","total_vfs":32,"framebuffer_mib":49152,"iommu_group":40,
            "types":[{"id":1150,"name":"NVIDIA L40S-4Q","framebuffer_mib":4096}]}"#;
        let spec: GpuSpec = serde_json::from_str(base).unwrap();
        assert_eq!(validate(std::slice::from_ref(&spec)), Ok(()));
        let bad = |edit: &dyn Fn(&mut GpuSpec)| {
            let mut s = spec.clone();
            edit(&mut s);
            validate(&[s]).unwrap_err()
        };
        assert!(bad(&|s| s.address = "0000:3D:00.0".into()).contains("lower-case"));
        assert!(bad(&|s| s.enabled_vfs = 3).contains("enabled_vfs"));
        assert!(bad(&|s| s.dir = "../x".into()).contains("dir"));
        assert!(bad(&|s| s.address = "0000:ff:1f.7".into()).contains("overflow"));
        assert!(bad(&|s| s.types.push(s.types[0].clone())).contains("repeated"));
        assert!(validate(&[spec.clone(), spec])
            .unwrap_err()
            .contains("twice"));
    }
}
