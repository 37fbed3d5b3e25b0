//! The text and JSON listings of vendor-VFIO GPUs: per PF the types creatable now (id, full
//! name, how many more at most) and the vGPUs (VF, type, whether a VM holds it).

use serde::Serialize;

use super::discover::Gpu;
use super::names::{PciAddress, VgpuTypeId};

/// For a person: one block per GPU.
pub fn text(gpus: &[Gpu]) -> String {
    let mut out = String::new();
    for gpu in gpus {
        if gpu.enabled_vfs == 0 {
            out.push_str(&format!(
                "{} {} SR-IOV disabled (0/{} VFs): enable with `/usr/lib/nvidia/sriov-manage -e {}`\n",
                gpu.pf, gpu.pci_id, gpu.total_vfs, gpu.pf
            ));
            continue;
        }
        out.push_str(&format!(
            "{} {} SR-IOV {}/{} VFs\n",
            gpu.pf, gpu.pci_id, gpu.enabled_vfs, gpu.total_vfs
        ));
        let types = gpu.creatable();
        if types.is_empty() {
            out.push_str("  types creatable now: none\n");
        } else {
            out.push_str("  types creatable now:\n");
        }
        for a in &types {
            out.push_str(&format!(
                "    {:<5}  {}  (up to {} more)\n",
                a.vgpu_type.id, a.vgpu_type.name, a.free_vfs
            ));
        }
        let vgpus = gpu.holders();
        if vgpus.is_empty() {
            out.push_str("  vGPUs: none\n");
        } else {
            out.push_str("  vGPUs:\n");
        }
        for h in &vgpus {
            let name = h.name.as_deref().unwrap_or("(name unknown)");
            let vm = if h.held_by_vm { "  in use by a VM" } else { "" };
            out.push_str(&format!("    {}  {:<5}  {name}{vm}\n", h.vf, h.type_id));
        }
    }
    out
}

#[derive(Serialize)]
struct JsonGpu<'a> {
    pf: PciAddress,
    pci_id: &'a str,
    total_vfs: u16,
    enabled_vfs: u16,
    types: Vec<JsonType>,
    vgpus: Vec<JsonVgpu>,
}

#[derive(Serialize)]
struct JsonType {
    id: VgpuTypeId,
    name: String,
    /// Free VFs that list the type: an upper bound on how many more can be created (sysfs
    /// has no instance counts on this path; NVML's max instances would give the exact number).
    available_at_most: u32,
}

#[derive(Serialize)]
struct JsonVgpu {
    vf: PciAddress,
    #[serde(rename = "type")]
    type_id: VgpuTypeId,
    name: Option<String>,
    held_by_vm: bool,
}

/// For programs: an array of GPUs, pretty-printed, with a final newline.
pub fn json(gpus: &[Gpu]) -> String {
    let doc: Vec<JsonGpu<'_>> = gpus
        .iter()
        .map(|gpu| JsonGpu {
            pf: gpu.pf,
            pci_id: &gpu.pci_id,
            total_vfs: gpu.total_vfs,
            enabled_vfs: gpu.enabled_vfs,
            types: gpu
                .creatable()
                .into_iter()
                .map(|a| JsonType {
                    id: a.vgpu_type.id,
                    name: a.vgpu_type.name,
                    available_at_most: a.free_vfs,
                })
                .collect(),
            vgpus: gpu
                .holders()
                .into_iter()
                .map(|h| JsonVgpu {
                    vf: h.vf,
                    type_id: h.type_id,
                    name: h.name,
                    held_by_vm: h.held_by_vm,
                })
                .collect(),
        })
        .collect();
    // Serialising plain strings and numbers cannot fail; an empty array is the fallback.
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "[]".to_owned());
    text.push('\n');
    text
}
