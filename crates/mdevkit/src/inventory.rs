//! `mdevkit types` and `mdevkit list`: both worlds the backends observe, for people (text)
//! and programs (JSON, schema in docs/vendor-vfio.md). mdev parents, types and devices as
//! the mdev backend reads them; vendor-VFIO GPUs with the PF as parent, their types by id
//! and full name with an upper bound of how many more, and their vGPUs by VF.

use serde_json::{json, Value};

use crate::config::JsonStyle;
use crate::names::{ParentName, StartMode};
use crate::observed::{Observed, ObservedParent, PciIds, VfParent};

fn pci_id(p: Option<PciIds>) -> Option<String> {
    p.map(|i| format!("{:04x}:{:04x}", i.vendor, i.device))
}

fn mdev_parents(o: &Observed) -> impl Iterator<Item = (&ParentName, &ObservedParent)> {
    o.parents.iter().filter(|(_, p)| p.vf.is_none())
}

fn vf_parents(o: &Observed) -> impl Iterator<Item = (&ParentName, &VfParent)> {
    o.parents
        .iter()
        .filter_map(|(n, p)| p.vf.as_ref().map(|v| (n, v)))
}

fn pretty(v: Value) -> String {
    let mut s = crate::config::to_json_string(&v, JsonStyle::Pretty);
    s.push('\n');
    s
}

/// `0000:3d:00.0  10de:26b9  SR-IOV 32/32 VFs`, or how to enable SR-IOV.
fn gpu_header(name: &ParentName, p: &ObservedParent, g: &VfParent) -> String {
    let id = pci_id(p.pci).unwrap_or_else(|| "????:????".to_owned());
    if g.enabled_vfs == 0 {
        return format!(
            "  {name}  {id}  SR-IOV disabled (0/{} VFs): enable with `/usr/lib/nvidia/sriov-manage -e {name}`\n",
            g.total_vfs
        );
    }
    format!(
        "  {name}  {id}  SR-IOV {}/{} VFs\n",
        g.enabled_vfs, g.total_vfs
    )
}

/// The types of every parent, as text.
pub fn types_text(o: &Observed) -> String {
    let mut out = String::new();
    let mdev: Vec<_> = mdev_parents(o).collect();
    out.push_str(if mdev.is_empty() {
        "mdev parents: none\n"
    } else {
        "mdev parents:\n"
    });
    for (name, p) in mdev {
        let id = pci_id(p.pci).map(|i| format!("  {i}")).unwrap_or_default();
        let driver = p
            .driver
            .as_deref()
            .map(|d| format!("  driver {d}"))
            .unwrap_or_default();
        out.push_str(&format!("  {name}{id}{driver}\n"));
        let Some(types) = &p.types else {
            out.push_str("    types not published yet\n");
            continue;
        };
        let id_width = types.iter().map(|t| t.id.as_str().len()).max().unwrap_or(0);
        let width = types.iter().map(|t| t.name.len()).max().unwrap_or(0);
        for t in types {
            out.push_str(&format!(
                "    {:<id_width$}  {:<width$}  {} available\n",
                t.id.as_str(),
                t.name,
                t.available
            ));
        }
    }
    let gpus: Vec<_> = o
        .parents
        .iter()
        .filter_map(|(n, p)| p.vf.as_ref().map(|g| (n, p, g)))
        .collect();
    out.push_str(if gpus.is_empty() {
        "vendor-VFIO GPUs: none\n"
    } else {
        "vendor-VFIO GPUs:\n"
    });
    for (name, p, g) in gpus {
        out.push_str(&gpu_header(name, p, g));
        if g.enabled_vfs == 0 {
            continue;
        }
        let Some(types) = &g.types else {
            out.push_str("    no types published yet (is nvidia-vgpud running?)\n");
            continue;
        };
        let creatable: Vec<_> = types.iter().filter(|t| t.available_at_most > 0).collect();
        if creatable.is_empty() {
            out.push_str("    none creatable now (every VF has a vGPU or the GPU is full)\n");
        }
        let width = creatable
            .iter()
            .map(|t| t.vgpu_type.name.len())
            .max()
            .unwrap_or(0);
        for t in creatable {
            out.push_str(&format!(
                "    {:<5}  {:<width$}  up to {} more\n",
                t.vgpu_type.id, t.vgpu_type.name, t.available_at_most
            ));
        }
    }
    out
}

/// The types of every parent, as JSON.
pub fn types_json(o: &Observed) -> String {
    let mdev: Vec<Value> = mdev_parents(o)
        .map(|(name, p)| {
            json!({
                "parent": name.as_str(),
                "pci_id": pci_id(p.pci),
                "driver": p.driver,
                "types": p.types.as_ref().map(|ts| ts.iter().map(|t| json!({
                    "id": t.id.as_str(),
                    "name": t.name,
                    "available": t.available,
                })).collect::<Vec<_>>()),
            })
        })
        .collect();
    let vfio: Vec<Value> = o
        .parents
        .iter()
        .filter_map(|(n, p)| p.vf.as_ref().map(|g| (n, p, g)))
        .map(|(name, p, g)| {
            json!({
                "pf": name.as_str(),
                "pci_id": pci_id(p.pci),
                "total_vfs": g.total_vfs,
                "enabled_vfs": g.enabled_vfs,
                "types": g.types.as_ref().map(|ts| ts.iter()
                    .filter(|t| t.available_at_most > 0)
                    .map(|t| json!({
                        "id": t.vgpu_type.id.get(),
                        "name": t.vgpu_type.name,
                        "available_at_most": t.available_at_most,
                    })).collect::<Vec<_>>()),
            })
        })
        .collect();
    pretty(json!({"mdev": mdev, "vendor_vfio": vfio}))
}

/// One row per mdev device and parent: `(uuid, parent, type, start if defined, active)`.
fn mdev_rows(o: &Observed) -> Vec<(String, ParentName, String, Option<StartMode>, bool)> {
    let mut rows = Vec::new();
    for (uuid, d) in &o.devices {
        for (parent, c) in &d.defined {
            let active = d.active.as_ref().is_some_and(|r| r.parent == *parent);
            rows.push((
                uuid.to_string(),
                parent.clone(),
                c.mdev_type.to_string(),
                Some(c.start),
                active,
            ));
        }
        if let Some(r) = &d.active {
            if !d.defined.contains_key(&r.parent) {
                rows.push((
                    uuid.to_string(),
                    r.parent.clone(),
                    r.mdev_type.to_string(),
                    None,
                    true,
                ));
            }
        }
    }
    rows
}

fn type_name<'a>(o: &'a Observed, parent: &ParentName, ty: &str) -> &'a str {
    o.parents
        .get(parent)
        .and_then(|p| p.types.as_ref())
        .and_then(|ts| ts.iter().find(|t| t.id.as_str() == ty))
        .map_or("", |t| t.name.as_str())
}

/// Every device of both worlds, as text.
pub fn list_text(o: &Observed) -> String {
    let mut out = String::new();
    let rows = mdev_rows(o);
    out.push_str(if rows.is_empty() {
        "mdev devices: none\n"
    } else {
        "mdev devices:\n"
    });
    for (uuid, parent, ty, start, active) in &rows {
        let name = type_name(o, parent, ty);
        let name = if name.is_empty() {
            String::new()
        } else {
            format!(" ({name})")
        };
        let state = match (start, active) {
            (Some(s), true) => format!("defined ({}), active", s.as_str()),
            (Some(s), false) => format!("defined ({})", s.as_str()),
            (None, _) => "active, not defined".to_owned(),
        };
        out.push_str(&format!("  {uuid}  {parent}  {ty}{name}  {state}\n"));
    }
    let vgpus: Vec<_> = vf_parents(o)
        .flat_map(|(n, g)| g.vfs.iter().map(move |v| (n, v)))
        .filter_map(|(n, v)| v.vgpu.as_ref().map(|t| (n, v, t)))
        .collect();
    out.push_str(if vgpus.is_empty() {
        "vendor-VFIO vGPUs: none\n"
    } else {
        "vendor-VFIO vGPUs (VF, GPU, type):\n"
    });
    for (pf, v, t) in vgpus {
        let name = if t.name.is_empty() {
            "(name unknown)"
        } else {
            t.name.as_str()
        };
        let vm = if v.held_by_vm { "  in use by a VM" } else { "" };
        out.push_str(&format!("  {}  {pf}  {:<5}  {name}{vm}\n", v.address, t.id));
    }
    out
}

/// Every device of both worlds, as JSON.
pub fn list_json(o: &Observed) -> String {
    let mdev: Vec<Value> = mdev_rows(o)
        .into_iter()
        .map(|(uuid, parent, ty, start, active)| {
            json!({
                "uuid": uuid,
                "parent": parent.as_str(),
                "type": ty,
                "type_name": type_name(o, &parent, &ty),
                "defined": start.is_some(),
                "start": start.map(StartMode::as_str),
                "active": active,
            })
        })
        .collect();
    let vfio: Vec<Value> = vf_parents(o)
        .flat_map(|(n, g)| g.vfs.iter().map(move |v| (n, v)))
        .filter_map(|(n, v)| {
            let t = v.vgpu.as_ref()?;
            Some(json!({
                "vf": v.address.to_string(),
                "pf": n.as_str(),
                "type": t.id.get(),
                "name": (!t.name.is_empty()).then(|| t.name.clone()),
                "held_by_vm": v.held_by_vm,
            }))
        })
        .collect();
    pretty(json!({"mdev": mdev, "vendor_vfio": vfio}))
}
