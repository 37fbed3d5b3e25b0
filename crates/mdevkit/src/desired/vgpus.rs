//! The vendor-VFIO half of the planner (pure, like [`super::plan`]): per GPU, how many vGPUs
//! of each type the profile wants, against the VFs that have them now and the state file's
//! record of which VF holds which managed vGPU. No UUIDs on this path: a vGPU is its VF.
//!
//! Rules: a vGPU of a wanted type counts toward its count (and is taken over); one a VM
//! holds is never removed or given another type; extra or unwanted vGPUs are removed only
//! when managed (or with `--prune`); new vGPUs go first to the free VFs the state file
//! recorded for that type (so a re-apply after a reboot puts each type back on the same
//! VFs, which VM definitions name), then to unrecorded free VFs, then to any free VF.

use std::collections::{BTreeMap, BTreeSet};

use super::file::{Entry, Identity};
use super::plan::{PlanInput, Problem};
use crate::names::ParentName;
use crate::nvidia_vf::{PciAddress, TypeSelector, VgpuType, VgpuTypeId};
use crate::observed::{ObservedVf, VfParent};

/// What a vGPU step does; removals run before creations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VgpuAction {
    Remove,
    Create,
}

impl VgpuAction {
    pub fn marker(self) -> char {
        match self {
            VgpuAction::Remove => '-',
            VgpuAction::Create => '+',
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VgpuAction::Remove => "remove",
            VgpuAction::Create => "create",
        }
    }
}

/// One change to one VF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgpuStep {
    pub action: VgpuAction,
    /// The GPU (its PF).
    pub pf: PciAddress,
    pub vf: PciAddress,
    /// The type created, or the one removed; its id is resolved now, from the name.
    pub vgpu_type: VgpuType,
}

/// A vGPU the file does not manage: shown, left alone (unless pruning and not held).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmanagedVgpu {
    pub pf: PciAddress,
    pub vf: PciAddress,
    pub vgpu_type: VgpuType,
    pub held_by_vm: bool,
}

/// The state file's record of a managed vGPU: which VF of which GPU has which type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VgpuRecord {
    pub vf: PciAddress,
    pub pf: PciAddress,
    /// The type's name when it was created (ids change between driver branches).
    pub type_name: String,
    pub type_id: VgpuTypeId,
}

impl VgpuRecord {
    pub fn new(pf: PciAddress, vf: PciAddress, t: &VgpuType) -> VgpuRecord {
        VgpuRecord {
            vf,
            pf,
            type_name: t.name.clone(),
            type_id: t.id,
        }
    }

    /// Whether the record describes the vGPU `vf` has now (same id, or same name after a
    /// driver update renumbered the types).
    fn describes(&self, pf: PciAddress, vf: &ObservedVf) -> bool {
        self.vf == vf.address
            && self.pf == pf
            && vf.vgpu.as_ref().is_some_and(|t| {
                t.id == self.type_id || (!t.name.is_empty() && t.name == self.type_name)
            })
    }
}

/// The vendor-VFIO part of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VgpuPlan {
    pub steps: Vec<VgpuStep>,
    pub unmanaged: Vec<UnmanagedVgpu>,
    /// Every vGPU the profile wants (kept or created): recorded as managed from now on.
    pub wanted: Vec<VgpuRecord>,
}

/// One wanted (type, count) on one GPU.
struct Want {
    at: String,
    vgpu_type: VgpuType,
    count: u32,
}

fn type_list(vf: &VfParent) -> String {
    let listed: Vec<String> = vf
        .types
        .iter()
        .flatten()
        .filter(|t| t.available_at_most > 0)
        .map(|t| format!("{} ({})", t.vgpu_type.id, t.vgpu_type.name))
        .collect();
    if listed.is_empty() {
        "none creatable now".to_owned()
    } else {
        listed.join(", ")
    }
}

fn holders(vf: &VfParent) -> String {
    let list: Vec<String> = vf
        .vfs
        .iter()
        .filter_map(|v| {
            let t = v.vgpu.as_ref()?;
            let vm = if v.held_by_vm { ", in use by a VM" } else { "" };
            Some(format!("{} ({} {}{vm})", v.address, t.id, t.name))
        })
        .collect();
    if list.is_empty() {
        "no vGPU".to_owned()
    } else {
        list.join(", ")
    }
}

/// What the profile's entries want on each vendor-VFIO GPU, with every problem found.
fn wants(input: &PlanInput<'_>, problems: &mut Vec<Problem>) -> BTreeMap<ParentName, Vec<Want>> {
    let mut out: BTreeMap<ParentName, Vec<Want>> = BTreeMap::new();
    for (ei, entry) in input.entries.iter().enumerate() {
        for (pname, parent) in &input.observed.parents {
            let Some(vf) = &parent.vf else { continue };
            if !entry.parents.iter().any(|s| s.matches(pname, parent)) {
                continue;
            }
            let list = out.entry(pname.clone()).or_default();
            for w in want_on(input, (ei, entry), (pname, vf), problems) {
                if let Some(prev) = list.iter().find(|p| p.vgpu_type.id == w.vgpu_type.id) {
                    problems.push(Problem::TypeTwice {
                        at: w.at,
                        parent: pname.clone(),
                        type_name: w.vgpu_type.name,
                        other: prev.at.clone(),
                    });
                } else {
                    list.push(w);
                }
            }
        }
    }
    out
}

fn push_once(problems: &mut Vec<Problem>, p: Problem) {
    if !problems.contains(&p) {
        problems.push(p);
    }
}

/// What one entry wants on one GPU.
fn want_on(
    input: &PlanInput<'_>,
    (ei, entry): (usize, &Entry),
    (pname, vf): (&ParentName, &VfParent),
    problems: &mut Vec<Problem>,
) -> Vec<Want> {
    let mut out = Vec::new();
    for (di, spec) in entry.devices.iter().enumerate() {
        let at = format!("profile '{}', entry {ei}, device {di}", input.profile);
        let count = match spec.identity {
            Identity::Counted(n) => n,
            Identity::Explicit(_) => {
                problems.push(Problem::NotForVgpus {
                    at,
                    parent: pname.clone(),
                    what: "a uuid (vGPUs on VFs have none: give a count)",
                });
                continue;
            }
        };
        if !spec.attrs.is_empty() {
            problems.push(Problem::NotForVgpus {
                at,
                parent: pname.clone(),
                what: "attrs",
            });
            continue;
        }
        if vf.enabled_vfs == 0 {
            if !entry.optional {
                push_once(
                    problems,
                    Problem::SriovDisabled {
                        parent: pname.clone(),
                        total: vf.total_vfs,
                    },
                );
            }
            continue;
        }
        if vf.types.is_none() {
            if !entry.optional {
                push_once(
                    problems,
                    Problem::TypesNotPublished {
                        parent: pname.clone(),
                    },
                );
            }
            continue;
        }
        let found = spec
            .mdev_type
            .parse::<TypeSelector>()
            .ok()
            .and_then(|sel| vf.find_type(&sel));
        let Some(t) = found else {
            let hosted = vf.vfs.iter().any(|v| v.vgpu.is_some());
            problems.push(Problem::VgpuTypeNotCreatable {
                at,
                parent: pname.clone(),
                wanted: spec.mdev_type.clone(),
                offered: type_list(vf),
                hosted: if hosted { holders(vf) } else { String::new() },
            });
            continue;
        };
        out.push(Want {
            at,
            vgpu_type: t.vgpu_type.clone(),
            count,
        });
    }
    out
}

/// Plans every vendor-VFIO GPU present: the profile's counts, and the removal of managed
/// vGPUs it no longer wants.
pub fn plan_vgpus(input: &PlanInput<'_>, problems: &mut Vec<Problem>) -> VgpuPlan {
    let wants = wants(input, problems);
    let mut plan = VgpuPlan::default();
    for (pname, parent) in &input.observed.parents {
        let Some(vf) = &parent.vf else { continue };
        let none = Vec::new();
        let wanted = wants.get(pname).unwrap_or(&none);
        plan_gpu(input, (pname, vf), wanted, problems, &mut plan);
    }
    plan.steps.sort_by_key(|s| (s.action, s.pf, s.vf));
    plan.wanted.sort();
    plan
}

/// One GPU: keep, remove and create to reach the wanted counts.
fn plan_gpu(
    input: &PlanInput<'_>,
    (pname, gpu): (&ParentName, &VfParent),
    wanted: &[Want],
    problems: &mut Vec<Problem>,
    plan: &mut VgpuPlan,
) {
    let owned = |v: &ObservedVf| input.owned_vgpus.iter().any(|r| r.describes(gpu.pf, v));
    let mut removed: Vec<PciAddress> = Vec::new();
    let mut remove = |plan: &mut VgpuPlan, v: &ObservedVf, t: &VgpuType| {
        removed.push(v.address);
        plan.steps.push(VgpuStep {
            action: VgpuAction::Remove,
            pf: gpu.pf,
            vf: v.address,
            vgpu_type: t.clone(),
        });
    };
    // What stays beyond the counts: held VFs are never touched; managed ones go; others
    // are the administrator's (or another tool's), unless pruning.
    let mut surplus =
        |plan: &mut VgpuPlan, v: &ObservedVf, t: &VgpuType, problems: &mut Vec<Problem>| {
            let mine = owned(v);
            if v.held_by_vm {
                if mine {
                    problems.push(Problem::VgpuInUse {
                        parent: pname.clone(),
                        vf: v.address,
                        type_name: t.name.clone(),
                    });
                } else {
                    plan.unmanaged.push(UnmanagedVgpu {
                        pf: gpu.pf,
                        vf: v.address,
                        vgpu_type: t.clone(),
                        held_by_vm: true,
                    });
                }
            } else if mine || input.options.prune {
                remove(plan, v, t);
            } else {
                plan.unmanaged.push(UnmanagedVgpu {
                    pf: gpu.pf,
                    vf: v.address,
                    vgpu_type: t.clone(),
                    held_by_vm: false,
                });
            }
        };
    let mut missing: Vec<(&Want, u32)> = Vec::new();
    for v in &gpu.vfs {
        let Some(t) = &v.vgpu else { continue };
        if !wanted.iter().any(|w| w.vgpu_type.id == t.id) {
            surplus(plan, v, t, problems);
        }
    }
    for w in wanted {
        // Held first (they must stay), then managed, then others (taken over), each in
        // virtfn order.
        let mut have: Vec<&ObservedVf> = gpu
            .vfs
            .iter()
            .filter(|v| v.vgpu.as_ref().is_some_and(|t| t.id == w.vgpu_type.id))
            .collect();
        have.sort_by_key(|v| (!v.held_by_vm, !owned(v)));
        let keep = usize::try_from(w.count)
            .unwrap_or(usize::MAX)
            .min(have.len());
        for v in &have[..keep] {
            plan.wanted
                .push(VgpuRecord::new(gpu.pf, v.address, &w.vgpu_type));
        }
        for v in &have[keep..] {
            surplus(plan, v, &w.vgpu_type, problems);
        }
        let short = w
            .count
            .saturating_sub(u32::try_from(keep).unwrap_or(u32::MAX));
        if short > 0 {
            missing.push((w, short));
        }
    }
    if missing.is_empty() {
        return;
    }
    let records_of = |vf: PciAddress| {
        input
            .owned_vgpus
            .iter()
            .filter(move |r| r.vf == vf && r.pf == gpu.pf)
    };
    // VFs that will be free: free now, or emptied by this plan.
    let mut free: Vec<PciAddress> = gpu
        .vfs
        .iter()
        .filter(|v| (v.vgpu.is_none() && !v.held_by_vm) || removed.contains(&v.address))
        .map(|v| v.address)
        .collect();
    let any_removal = !removed.is_empty();
    let mut taken: BTreeSet<PciAddress> = BTreeSet::new();
    for (w, short) in missing {
        let creatable = gpu
            .types
            .iter()
            .flatten()
            .find(|t| t.vgpu_type.id == w.vgpu_type.id)
            .map_or(0, |t| t.available_at_most);
        // Removals of other types free room the driver alone can measure (equal-size mode
        // switches size once the GPU is empty): the driver has the last word then.
        if !any_removal && short > creatable {
            problems.push(Problem::GpuFull {
                parent: pname.clone(),
                vgpu_type: w.vgpu_type.clone(),
                wanted: short,
                free: creatable,
                users: holders(gpu),
            });
            continue;
        }
        free.retain(|a| !taken.contains(a));
        let rank = |a: &PciAddress| {
            let mut recs = records_of(*a).peekable();
            if recs.peek().is_none() {
                1
            } else if records_of(*a).any(|r| r.type_name == w.vgpu_type.name) {
                0
            } else {
                2
            }
        };
        let mut order = free.clone();
        order.sort_by_key(|a| rank(a));
        let n = usize::try_from(short).unwrap_or(usize::MAX);
        if order.len() < n {
            problems.push(Problem::GpuFull {
                parent: pname.clone(),
                vgpu_type: w.vgpu_type.clone(),
                wanted: short,
                free: u32::try_from(order.len()).unwrap_or(u32::MAX),
                users: holders(gpu),
            });
            continue;
        }
        for a in order.into_iter().take(n) {
            taken.insert(a);
            plan.wanted.push(VgpuRecord::new(gpu.pf, a, &w.vgpu_type));
            plan.steps.push(VgpuStep {
                action: VgpuAction::Create,
                pf: gpu.pf,
                vf: a,
                vgpu_type: w.vgpu_type.clone(),
            });
        }
    }
}
