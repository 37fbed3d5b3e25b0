//! The planner: a pure function from (desired profile, observed host, owned devices) to the
//! minimal list of steps, or to every problem that forbids applying it. Nothing here reads
//! or writes the host, so it is tested exhaustively without one.

use std::collections::{BTreeMap, BTreeSet};

use super::ap;
use super::file::{Entry, Identity};
use super::identity::{counted_uuid, MachineId};
use super::problem::name_suffix;
pub use super::problem::{PlanError, Problem};
use super::vgpus::{plan_vgpus, VgpuPlan, VgpuRecord};
use crate::config::DeviceConfig;
use crate::names::{ParentName, StartMode, TypeName, Uuid};
use crate::observed::{BackendKind, Observed, ObservedParent};

/// What a step does; the order is the order of execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Stop,
    Undefine,
    Modify,
    Define,
    Start,
}

impl Action {
    /// The one-character marker of the text plan.
    pub fn marker(self) -> char {
        match self {
            Action::Define => '+',
            Action::Undefine => '-',
            Action::Modify => '~',
            Action::Start => '>',
            Action::Stop => '<',
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Define => "define",
            Action::Undefine => "undefine",
            Action::Modify => "modify",
            Action::Start => "start",
            Action::Stop => "stop",
        }
    }
}

/// One change to one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    pub uuid: Uuid,
    pub parent: ParentName,
    pub mdev_type: TypeName,
    /// The type's `name` (empty when unknown).
    pub type_name: String,
    /// The definition written by define and modify.
    pub config: Option<DeviceConfig>,
    pub backend: BackendKind,
}

/// A device the file does not manage: shown, left alone (unless pruning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmanaged {
    pub uuid: Uuid,
    pub parent: ParentName,
    pub mdev_type: TypeName,
    pub defined: bool,
    pub active: bool,
}

/// What apply would do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub unmanaged: Vec<Unmanaged>,
    /// Every device the profile wants: owned from now on.
    pub wanted: BTreeSet<Uuid>,
    /// Vendor-VFIO GPUs: their steps (run after `steps`), unmanaged vGPUs, wanted vGPUs.
    pub vgpus: VgpuPlan,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.vgpus.steps.is_empty()
    }

    /// How many changes, of both kinds.
    pub fn len(&self) -> usize {
        self.steps.len().saturating_add(self.vgpus.steps.len())
    }

    /// Every change, in the order apply runs them: the mdev steps, then the vGPU steps.
    pub fn changes(&self) -> impl Iterator<Item = crate::backend::PlanStep> + '_ {
        use crate::backend::PlanStep;
        let devices = self.steps.iter().cloned().map(PlanStep::Device);
        devices.chain(self.vgpus.steps.iter().cloned().map(PlanStep::Vgpu))
    }
}

/// Tunables of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanOptions {
    /// Also remove devices the file does not manage.
    pub prune: bool,
    /// Define new devices without starting them.
    pub no_start: bool,
}

/// Everything the planner looks at.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub profile: &'a str,
    pub entries: &'a [Entry],
    pub observed: &'a Observed,
    /// Devices earlier applies created or took over (the state file).
    pub owned: &'a BTreeSet<Uuid>,
    /// The vendor-VFIO vGPUs earlier applies created or took over, by VF (the state file).
    pub owned_vgpus: &'a [VgpuRecord],
    pub machine: &'a MachineId,
    pub options: PlanOptions,
}

/// A device the profile wants, resolved against the host.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    parent: ParentName,
    config: DeviceConfig,
    backend: BackendKind,
    at: String,
}

/// Resolves the profile's entries to concrete devices on the parents present now.
fn resolve(input: &PlanInput<'_>, problems: &mut Vec<Problem>) -> BTreeMap<Uuid, Wanted> {
    let mut wanted: BTreeMap<Uuid, Wanted> = BTreeMap::new();
    for (ei, entry) in input.entries.iter().enumerate() {
        let at_entry = format!("profile '{}', entry {ei}", input.profile);
        let parents: Vec<(&ParentName, &ObservedParent)> = input
            .observed
            .parents
            .iter()
            .filter(|(n, p)| entry.parents.iter().any(|s| s.matches(n, p)))
            .collect();
        if parents.is_empty() {
            if !entry.optional {
                problems.push(Problem::NoParent {
                    at: at_entry,
                    selectors: entry
                        .parents
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" or "),
                });
            }
            continue;
        }
        // Vendor-VFIO GPUs are planned by `vgpus`.
        let parents: Vec<(&ParentName, &ObservedParent)> = parents
            .into_iter()
            .filter(|(_, p)| p.vf.is_none())
            .collect();
        for (di, spec) in entry.devices.iter().enumerate() {
            let at = format!("{at_entry}, device {di}");
            if let Identity::Explicit(uuid) = spec.identity {
                if parents.len() > 1 {
                    problems.push(Problem::AmbiguousParent {
                        at,
                        uuid,
                        parents: parents
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                    continue;
                }
            }
            for (pname, parent) in &parents {
                if parent.types.is_none() {
                    let p = Problem::TypesNotPublished {
                        parent: (*pname).clone(),
                    };
                    if !entry.optional && !problems.contains(&p) {
                        problems.push(p);
                    }
                    continue;
                }
                let Some(ty) = parent.find_type(&spec.mdev_type) else {
                    problems.push(Problem::UnknownType {
                        at: at.clone(),
                        parent: (*pname).clone(),
                        wanted: spec.mdev_type.clone(),
                        offered: parent
                            .types
                            .iter()
                            .flatten()
                            .map(|t| format!("{}{}", t.id, name_suffix(&t.name)))
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                    continue;
                };
                let config = DeviceConfig {
                    mdev_type: ty.id.clone(),
                    start: spec.start,
                    attrs: spec.attrs.clone(),
                };
                let uuids: Vec<Uuid> = match spec.identity {
                    Identity::Explicit(u) => vec![u],
                    Identity::Counted(n) => (0..n)
                        .map(|i| counted_uuid(input.machine, pname, &ty.id, i))
                        .collect(),
                };
                for uuid in uuids {
                    let w = Wanted {
                        parent: (*pname).clone(),
                        config: config.clone(),
                        backend: parent.backend,
                        at: at.clone(),
                    };
                    if let Some(prev) = wanted.get(&uuid) {
                        problems.push(Problem::ClaimedTwice {
                            at: at.clone(),
                            uuid,
                            parent: (*pname).clone(),
                            other: prev.at.clone(),
                        });
                        continue;
                    }
                    wanted.insert(uuid, w);
                }
            }
        }
    }
    wanted
}

fn step(
    observed: &Observed,
    action: Action,
    uuid: Uuid,
    parent: &ParentName,
    mdev_type: &TypeName,
    config: Option<DeviceConfig>,
    backend: BackendKind,
) -> Step {
    Step {
        action,
        uuid,
        parent: parent.clone(),
        mdev_type: mdev_type.clone(),
        type_name: observed
            .parents
            .get(parent)
            .map(|p| p.type_name(mdev_type).to_owned())
            .unwrap_or_default(),
        config,
        backend,
    }
}

/// Makes the plan, or says why it cannot be applied.
pub fn plan(input: &PlanInput<'_>) -> Result<Plan, PlanError> {
    let mut problems = Vec::new();
    let wanted = resolve(input, &mut problems);
    let obs = input.observed;
    let mut steps = Vec::new();
    for (uuid, w) in &wanted {
        let seen = obs.devices.get(uuid);
        let mut running_ok = false;
        if let Some(r) = seen.and_then(|d| d.active.as_ref()) {
            if r.parent == w.parent && r.mdev_type == w.config.mdev_type {
                running_ok = true;
            } else {
                steps.push(step(
                    obs,
                    Action::Stop,
                    *uuid,
                    &r.parent,
                    &r.mdev_type,
                    None,
                    w.backend,
                ));
            }
        }
        let defined = seen.map(|d| &d.defined);
        for (p, c) in defined.into_iter().flatten() {
            if *p != w.parent {
                steps.push(step(
                    obs,
                    Action::Undefine,
                    *uuid,
                    p,
                    &c.mdev_type,
                    None,
                    w.backend,
                ));
            }
        }
        match defined.and_then(|d| d.get(&w.parent)) {
            None => steps.push(step(
                obs,
                Action::Define,
                *uuid,
                &w.parent,
                &w.config.mdev_type,
                Some(w.config.clone()),
                w.backend,
            )),
            Some(c) if *c != w.config => steps.push(step(
                obs,
                Action::Modify,
                *uuid,
                &w.parent,
                &w.config.mdev_type,
                Some(w.config.clone()),
                w.backend,
            )),
            Some(_) => {}
        }
        if w.config.start == StartMode::Auto && !input.options.no_start && !running_ok {
            steps.push(step(
                obs,
                Action::Start,
                *uuid,
                &w.parent,
                &w.config.mdev_type,
                None,
                w.backend,
            ));
        }
    }
    let mut unmanaged = Vec::new();
    for (uuid, d) in &obs.devices {
        if wanted.contains_key(uuid) {
            continue;
        }
        let managed = input.owned.contains(uuid);
        // Only what sits on a parent that is here now: a definition for a parent that is
        // away (a GPU not yet bound) stays until the parent can be seen.
        let present = |p: &ParentName| obs.parents.contains_key(p);
        if managed || input.options.prune {
            if let Some(r) = &d.active {
                steps.push(step(
                    obs,
                    Action::Stop,
                    *uuid,
                    &r.parent,
                    &r.mdev_type,
                    None,
                    d.backend,
                ));
            }
            for (p, c) in d.defined.iter().filter(|(p, _)| present(p)) {
                steps.push(step(
                    obs,
                    Action::Undefine,
                    *uuid,
                    p,
                    &c.mdev_type,
                    None,
                    d.backend,
                ));
            }
        } else {
            let (parent, mdev_type) = match (&d.active, d.defined.iter().next()) {
                (Some(r), _) => (r.parent.clone(), r.mdev_type.clone()),
                (None, Some((p, c))) => (p.clone(), c.mdev_type.clone()),
                (None, None) => continue,
            };
            unmanaged.push(Unmanaged {
                uuid: *uuid,
                parent,
                mdev_type,
                defined: !d.defined.is_empty(),
                active: d.active.is_some(),
            });
        }
    }
    steps.sort_by(|a, b| (a.action, &a.parent, a.uuid).cmp(&(b.action, &b.parent, b.uuid)));
    let vgpus = plan_vgpus(input, &mut problems);
    check_capacity(input, &steps, &mut problems);
    check_ap(input, &wanted, &steps, &mut problems);
    if !problems.is_empty() {
        return Err(PlanError { problems });
    }
    Ok(Plan {
        steps,
        unmanaged,
        wanted: wanted.into_keys().collect(),
        vgpus,
    })
}

/// Enough `available_instances` for the devices to start, once the planned stops are done.
///
/// Stops of the same type give their instance back. When a parent also stops devices of
/// another type, what is freed depends on the driver's pool (shared ports, one type at a
/// time on a GPU), so the kernel gets the last word there.
fn check_capacity(input: &PlanInput<'_>, steps: &[Step], problems: &mut Vec<Problem>) {
    let mut starts: BTreeMap<(&ParentName, &TypeName), u64> = BTreeMap::new();
    for s in steps.iter().filter(|s| s.action == Action::Start) {
        *starts.entry((&s.parent, &s.mdev_type)).or_default() += 1;
    }
    for ((parent, ty), n) in starts {
        let stops = |same: bool| {
            steps
                .iter()
                .filter(|s| s.action == Action::Stop && s.parent == *parent)
                .filter(|s| (s.mdev_type == *ty) == same)
                .count()
        };
        if stops(false) > 0 {
            continue;
        }
        let Some(t) = input
            .observed
            .parents
            .get(parent)
            .and_then(|p| p.types.as_ref())
            .and_then(|ts| ts.iter().find(|t| t.id == *ty))
        else {
            continue;
        };
        let free = t
            .available
            .saturating_add(i64::try_from(stops(true)).unwrap_or(i64::MAX));
        if i64::try_from(n).unwrap_or(i64::MAX) <= free {
            continue;
        }
        let users: Vec<String> = input
            .observed
            .devices
            .iter()
            .filter_map(|(u, d)| d.active.as_ref().map(|r| (u, r)))
            .filter(|(_, r)| r.parent == *parent)
            .map(|(u, r)| {
                let whose = if input.owned.contains(u) {
                    "managed"
                } else {
                    "unmanaged"
                };
                format!("{u} ({}, {whose})", r.mdev_type)
            })
            .collect();
        problems.push(Problem::NoCapacity {
            parent: parent.clone(),
            mdev_type: ty.clone(),
            type_name: t.name.clone(),
            wanted: n,
            free: t.available,
            users: if users.is_empty() {
                "no active devices on this parent".into()
            } else {
                users.join(", ")
            },
        });
    }
}

/// No APQN twice among the wanted devices and the devices that stay.
fn check_ap(
    input: &PlanInput<'_>,
    wanted: &BTreeMap<Uuid, Wanted>,
    steps: &[Step],
    problems: &mut Vec<Problem>,
) {
    let removed: BTreeSet<Uuid> = steps
        .iter()
        .filter(|s| s.action == Action::Undefine && !wanted.contains_key(&s.uuid))
        .map(|s| s.uuid)
        .collect();
    let mut labels = Vec::new();
    let mut sets = Vec::new();
    for (uuid, w) in wanted {
        let set = ap::apqns(&w.config.attrs);
        if !set.is_empty() {
            labels.push(format!("{uuid} ({})", w.at));
            sets.push(set);
        }
    }
    let from_file = labels.len();
    for (uuid, d) in &input.observed.devices {
        if wanted.contains_key(uuid) || removed.contains(uuid) {
            continue;
        }
        let set: BTreeSet<ap::Apqn> = d
            .defined
            .values()
            .flat_map(|c| ap::apqns(&c.attrs))
            .collect();
        if !set.is_empty() {
            labels.push(format!("{uuid} (existing)"));
            sets.push(set);
        }
    }
    // The file's devices come first (i < j): name the existing device as the one that has it.
    if let Some((i, j, q)) = ap::first_conflict(&sets) {
        let (first, second) = if i < from_file && j >= from_file {
            (j, i)
        } else {
            (i, j)
        };
        problems.push(Problem::ApConflict {
            first: labels[first].clone(),
            second: labels[second].clone(),
            apqn: ap::show(q),
        });
    }
}
