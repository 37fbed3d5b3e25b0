//! Plans for people (one line per change, with a `+ - ~ > <` marker) and for machines
//! (JSON, schema in docs/desired-state.md), and the host exported as a desired-state file.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::file::{
    Checked, RawAttr, RawDevice, RawEntry, RawFile, RawSelector, RawSelectors, RawStart,
};
use super::plan::{Plan, Step, Unmanaged};
use super::vgpus::{UnmanagedVgpu, VgpuStep};
use crate::backend::PlanStep;
use crate::config::JsonStyle;
use crate::names::{ParentName, StartMode, TypeName};
use crate::observed::{BackendKind, Observed};

fn type_text(id: &TypeName, name: &str) -> String {
    if name.is_empty() {
        id.to_string()
    } else {
        format!("{id} ({name})")
    }
}

/// `+ define   0000:83:00.0 nvidia-18 (GRID M60-0Q) <uuid>`.
pub fn step_line(s: &Step) -> String {
    format!(
        "{} {:<8} {} {} {}",
        s.action.marker(),
        s.action.as_str(),
        s.parent,
        type_text(&s.mdev_type, &s.type_name),
        s.uuid
    )
}

/// `+ create   0000:3d:00.0 1150 (NVIDIA L40S-4Q) 0000:3d:00.4`: the GPU, the type, the VF.
pub fn vgpu_step_line(s: &VgpuStep) -> String {
    format!(
        "{} {:<8} {} {} ({}) {}",
        s.action.marker(),
        s.action.as_str(),
        s.pf,
        s.vgpu_type.id,
        s.vgpu_type.name,
        s.vf
    )
}

/// One line for a change of either kind.
pub fn change_line(c: &PlanStep) -> String {
    match c {
        PlanStep::Device(s) => step_line(s),
        PlanStep::Vgpu(s) => vgpu_step_line(s),
    }
}

fn unmanaged_vgpu_line(u: &UnmanagedVgpu) -> String {
    let held = if u.held_by_vm { ", in use by a VM" } else { "" };
    format!(
        "  unmanaged {} {} ({}) {} (vGPU{held})",
        u.pf, u.vgpu_type.id, u.vgpu_type.name, u.vf
    )
}

fn unmanaged_line(u: &Unmanaged, observed: &Observed) -> String {
    let name = observed
        .parents
        .get(&u.parent)
        .map(|p| p.type_name(&u.mdev_type))
        .unwrap_or_default();
    let what = match (u.defined, u.active) {
        (true, true) => "defined, active",
        (true, false) => "defined",
        _ => "active",
    };
    format!(
        "  unmanaged {} {} {} ({what})",
        u.parent,
        type_text(&u.mdev_type, name),
        u.uuid
    )
}

/// One line per change of `plan`, in the order apply runs them.
pub fn changes_text(plan: &Plan) -> String {
    let mut out = String::new();
    for c in plan.changes() {
        out.push_str(&change_line(&c));
        out.push('\n');
    }
    out
}

/// The plan as text; the last line says whether anything would change.
pub fn plan_text(profile: &str, plan: &Plan, observed: &Observed) -> String {
    let mut out = changes_text(plan);
    for u in &plan.unmanaged {
        out.push_str(&unmanaged_line(u, observed));
        out.push('\n');
    }
    for u in &plan.vgpus.unmanaged {
        out.push_str(&unmanaged_vgpu_line(u));
        out.push('\n');
    }
    let n = plan.len();
    out.push_str(&match n {
        0 => format!("No changes: the host matches profile '{profile}'.\n"),
        1 => format!("1 change to match profile '{profile}'.\n"),
        _ => format!("{n} changes to match profile '{profile}'.\n"),
    });
    out
}

/// The plan as JSON (pretty, with a trailing newline).
pub fn plan_json(profile: &str, plan: &Plan) -> String {
    let mut changes: Vec<Value> = plan
        .steps
        .iter()
        .map(|s| {
            json!({
                "action": s.action.as_str(),
                "uuid": s.uuid.to_string(),
                "parent": s.parent.as_str(),
                "type": s.mdev_type.as_str(),
                "type_name": s.type_name,
                "backend": s.backend.as_str(),
                "config": s.config.as_ref().map(|c| serde_json::to_value(c).unwrap_or(Value::Null)),
            })
        })
        .collect();
    changes.extend(plan.vgpus.steps.iter().map(|s| {
        json!({
            "action": s.action.as_str(),
            "vf": s.vf.to_string(),
            "parent": s.pf.to_string(),
            "type": s.vgpu_type.id.to_string(),
            "type_name": s.vgpu_type.name,
            "backend": BackendKind::NvidiaVf.as_str(),
        })
    }));
    let mut unmanaged: Vec<Value> = plan
        .unmanaged
        .iter()
        .map(|u| {
            json!({
                "uuid": u.uuid.to_string(),
                "parent": u.parent.as_str(),
                "type": u.mdev_type.as_str(),
                "defined": u.defined,
                "active": u.active,
            })
        })
        .collect();
    unmanaged.extend(plan.vgpus.unmanaged.iter().map(|u| {
        json!({
            "vf": u.vf.to_string(),
            "parent": u.pf.to_string(),
            "type": u.vgpu_type.id.to_string(),
            "type_name": u.vgpu_type.name,
            "held_by_vm": u.held_by_vm,
        })
    }));
    let v = json!({
        "profile": profile,
        "changes": changes,
        "unmanaged": unmanaged,
    });
    let mut s = crate::config::to_json_string(&v, JsonStyle::Pretty);
    s.push('\n');
    s
}

/// Which devices `export` writes.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Only these parents (all when empty).
    pub parents: Vec<ParentName>,
    /// Only running devices (a running device without a definition is exported with
    /// `start: manual`, which apply will then define).
    pub active_only: bool,
    /// Name of the one profile written, also the file's default-profile.
    pub profile: String,
}

/// Output format of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Yaml,
    Json,
}

/// The host as a desired-state file naming every device by UUID, so that applying it on
/// this host plans no changes (for devices that are defined, and running when auto).
pub fn export(observed: &Observed, o: &ExportOptions, format: ExportFormat) -> String {
    let mut by_parent: BTreeMap<&ParentName, Vec<RawDevice>> = BTreeMap::new();
    for (uuid, d) in &observed.devices {
        if o.active_only && d.active.is_none() {
            continue;
        }
        // A UUID defined on several parents: the running one's, else the first.
        let def = d
            .active
            .as_ref()
            .and_then(|r| d.defined.get_key_value(&r.parent))
            .or_else(|| d.defined.iter().next());
        let (parent, mdev_type, start, attrs) = match (def, &d.active) {
            (Some((p, c)), _) => (p, &c.mdev_type, c.start, c.attrs.clone()),
            (None, Some(r)) => (&r.parent, &r.mdev_type, StartMode::Manual, Vec::new()),
            (None, None) => continue,
        };
        if !o.parents.is_empty() && !o.parents.contains(parent) {
            continue;
        }
        by_parent.entry(parent).or_default().push(RawDevice {
            uuid: Some(Checked(*uuid)),
            mdev_type: mdev_type.to_string(),
            count: None,
            start: Some(match start {
                StartMode::Auto => RawStart::Auto,
                StartMode::Manual => RawStart::Manual,
            }),
            attrs: attrs.into_iter().map(RawAttr).collect(),
        });
    }
    // Vendor-VFIO GPUs: a count per type, by name (ids change between driver branches).
    for (parent, p) in &observed.parents {
        let Some(gpu) = &p.vf else { continue };
        if !o.parents.is_empty() && !o.parents.contains(parent) {
            continue;
        }
        let mut counts: Vec<(String, u32)> = Vec::new();
        for t in gpu.vfs.iter().filter_map(|v| v.vgpu.as_ref()) {
            let label = if t.name.is_empty() {
                t.id.to_string()
            } else {
                t.name.clone()
            };
            match counts.iter_mut().find(|(l, _)| *l == label) {
                Some((_, n)) => *n = n.saturating_add(1),
                None => counts.push((label, 1)),
            }
        }
        if counts.is_empty() {
            continue;
        }
        by_parent
            .entry(parent)
            .or_default()
            .extend(counts.into_iter().map(|(label, n)| RawDevice {
                uuid: None,
                mdev_type: label,
                count: Some(n),
                start: None,
                attrs: Vec::new(),
            }));
    }
    let entries = by_parent
        .into_iter()
        .map(|(p, devices)| RawEntry {
            parents: RawSelectors::One(RawSelector::Name(p.to_string())),
            optional: false,
            devices,
        })
        .collect();
    let file = RawFile {
        version: super::file::VERSION,
        default_profile: Some(o.profile.clone()),
        profiles: BTreeMap::from([(o.profile.clone(), entries)]),
    };
    match format {
        ExportFormat::Yaml => serde_yaml_ng::to_string(&file).unwrap_or_default(),
        ExportFormat::Json => {
            let mut s = crate::config::to_json_string(&file, JsonStyle::Pretty);
            s.push('\n');
            s
        }
    }
}
