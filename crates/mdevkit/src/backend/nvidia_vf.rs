//! The vendor-VFIO backend: NVIDIA GPUs whose VFs are the vGPUs (`crate::nvidia_vf`). Each
//! GPU is a parent named by its PF address; its types and VFs go to [`VfParent`]; steps
//! create or remove one VF's vGPU through `nvidia_vf::create/remove`, the code paths of
//! `mdevkit vgpu create/remove`.

use super::{Backend, BackendError, PlanStep};
use crate::desired::selector::parse_pci_id;
use crate::desired::vgpus::VgpuAction;
use crate::host::Host;
use crate::names::ParentName;
use crate::nvidia_vf::{self, Gpu, TypeSelector, VgpuType};
use crate::observed::{
    BackendKind, Observed, ObservedParent, ObservedVf, PciIds, VfParent, VfType,
};

/// NVIDIA's vendor-specific VFIO, on the host's PCI devices.
#[derive(Debug)]
pub struct NvidiaVfBackend<'a> {
    host: &'a Host,
}

impl<'a> NvidiaVfBackend<'a> {
    pub fn new(host: &'a Host) -> Self {
        NvidiaVfBackend { host }
    }
}

/// The GPU as the planner sees it.
pub fn observed_parent(gpu: &Gpu) -> ObservedParent {
    let device = gpu
        .pci_id
        .split_once(':')
        .and_then(|(_, d)| parse_pci_id(d));
    let mut types: Vec<VfType> = gpu
        .creatable()
        .into_iter()
        .map(|a| VfType {
            vgpu_type: a.vgpu_type,
            available_at_most: a.free_vfs,
        })
        .collect();
    let vfs: Vec<ObservedVf> = gpu
        .vfs
        .iter()
        .map(|v| ObservedVf {
            address: v.address,
            vgpu: v.current.map(|id| VgpuType {
                id,
                name: v.current_name.clone().unwrap_or_default(),
            }),
            held_by_vm: v.held_by_vm,
        })
        .collect();
    // The types its vGPUs have count as known even when none more can be created (a full
    // GPU lists nothing), so that a file naming them resolves.
    for t in vfs.iter().filter_map(|v| v.vgpu.as_ref()) {
        if !types.iter().any(|k| k.vgpu_type.id == t.id) {
            types.push(VfType {
                vgpu_type: t.clone(),
                available_at_most: 0,
            });
        }
    }
    let published = !types.is_empty();
    ObservedParent {
        backend: BackendKind::NvidiaVf,
        pci: device.map(|device| PciIds {
            vendor: 0x10de,
            device,
        }),
        driver: Some("nvidia".to_owned()),
        types: None,
        vf: Some(VfParent {
            pf: gpu.pf,
            total_vfs: gpu.total_vfs,
            enabled_vfs: gpu.enabled_vfs,
            types: published.then_some(types),
            vfs,
        }),
    }
}

impl Backend for NvidiaVfBackend<'_> {
    fn kind(&self) -> BackendKind {
        BackendKind::NvidiaVf
    }

    fn observe(&self, into: &mut Observed) {
        let gpus = match nvidia_vf::discover(self.host) {
            Ok(g) => g,
            Err(e) => {
                log::warn!("vendor-VFIO GPUs skipped: {}", crate::error::chain(&e));
                return;
            }
        };
        for gpu in &gpus {
            // A PCI address is always a valid parent name.
            let Ok(name) = gpu.pf.to_string().parse::<ParentName>() else {
                continue;
            };
            into.parents.insert(name, observed_parent(gpu));
        }
    }

    fn execute(&self, change: &PlanStep) -> Result<(), BackendError> {
        let PlanStep::Vgpu(step) = change else {
            return Err(BackendError::NoBackend {
                kind: change.backend(),
            });
        };
        let result = match step.action {
            VgpuAction::Create => nvidia_vf::create(
                self.host,
                step.pf,
                &TypeSelector::Id(step.vgpu_type.id),
                Some(step.vf),
            )
            .map(drop),
            VgpuAction::Remove => nvidia_vf::remove(self.host, step.vf).map(drop),
        };
        result.map_err(|source| BackendError::Vgpu {
            action: step.action,
            vf: step.vf,
            source,
        })
    }
}
