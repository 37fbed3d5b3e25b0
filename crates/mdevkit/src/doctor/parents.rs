//! Per-parent checks: `parent.registered` (an asked-for parent missing from
//! `class/mdev_bus`, and what its bus says), `parent.driver`, `parent.types`
//! (`mdev_supported_types` published and not empty) and, per type, `type.available` with the
//! visible reason for 0: this type's devices, another type on a homogeneous GPU, or the
//! parent's shared capacity.

use super::nvidia::Gpus;
use super::{driver_of, list, names_in, Check, Facts, Scope};
use crate::host::Host;
use crate::names::{ParentName, TypeName};
use crate::sysfs::supported;

/// Buses whose devices can be mdev parents, with what to do when one is not registered.
const BUSES: [(&str, &str); 3] = [
    (
        "pci",
        "bind the vendor's vGPU host driver (e.g. nvidia, i915 with GVT-g enabled) to it",
    ),
    (
        "css",
        "bind the subchannel to vfio_ccw: driverctl -b css set-override {} vfio_ccw",
    ),
    (
        "ap",
        "the vfio_ap matrix device appears once vfio_ap is loaded: modprobe vfio_ap",
    ),
];

fn registered(host: &Host, parent: &ParentName) -> Check {
    const ID: &str = "parent.registered";
    let entry = host.parent_dir(parent);
    for (bus, todo) in BUSES {
        let dir = host
            .roots()
            .sysfs
            .join("bus")
            .join(bus)
            .join("devices")
            .join(parent);
        if !host.exists(&dir) {
            continue;
        }
        let bound =
            driver_of(host, &dir).map_or("no driver bound".to_owned(), |d| format!("bound to {d}"));
        return Check::fail(
            ID,
            parent.as_str(),
            format!("no {}; {} is {bound}", entry.display(), dir.display()),
            todo.replace("{}", parent.as_str()),
        );
    }
    Check::fail(
        ID,
        parent.as_str(),
        format!(
            "no {} and no such device on the pci, css or ap bus",
            entry.display()
        ),
        "check the name (mdevkit doctor without -p lists the parents), or load its driver",
    )
}

fn driver(host: &Host, parent: &ParentName) -> Check {
    const ID: &str = "parent.driver";
    let dir = host.parent_dir(parent);
    if let Some(d) = driver_of(host, &dir) {
        return Check::ok(
            ID,
            parent.as_str(),
            format!("{}/driver -> {d}", dir.display()),
        );
    }
    // Virtual parents (the kernel's samples) are registered by their module, with no bus
    // and no driver to bind.
    let canonical = host.canonicalize(&dir).unwrap_or_default();
    if canonical.components().any(|c| c.as_os_str() == "virtual") {
        return Check::ok(
            ID,
            parent.as_str(),
            format!(
                "{} is a virtual device (no driver to bind)",
                canonical.display()
            ),
        );
    }
    Check::warn(
        ID,
        parent.as_str(),
        format!("{}/driver does not exist", dir.display()),
        "a registered parent normally has its driver bound; check dmesg for the driver's errors",
    )
}

/// Why `ty` has no instances left, from what sysfs shows.
pub(crate) fn why_none_left(
    host: &Host,
    facts: &Facts,
    parent: &ParentName,
    ty: &TypeName,
) -> String {
    let own: Vec<String> = names_in(host, &host.type_dir(parent, ty).join("devices"));
    let others: Vec<String> = facts
        .active_on(parent, None)
        .filter(|d| d.mdev_type != *ty)
        .map(|d| format!("{} ({})", d.uuid, d.mdev_type))
        .collect();
    let mut why = Vec::new();
    if !own.is_empty() {
        why.push(format!(
            "{} device(s) of this type exist: {}",
            own.len(),
            list(&own)
        ));
    }
    if !others.is_empty() {
        let pci_gpu = host.exists(&host.roots().sysfs.join("bus/pci/devices").join(parent));
        if pci_gpu && own.is_empty() {
            why.push(format!(
                "the GPU already holds another type: {} (a homogeneous GPU offers one type at a time, NVIDIA's vGPUs one size)",
                list(&others)
            ));
        } else {
            why.push(format!(
                "the parent's shared capacity is used by devices of other types: {}",
                list(&others)
            ));
        }
    }
    if why.is_empty() {
        why.push("no device exists on this parent: the driver offers none (mode, memory or licence), or devices are held outside the mdev bus".to_owned());
    }
    why.join("; ")
}

fn types(host: &Host, facts: &Facts, parent: &ParentName, scope: &Scope, out: &mut Vec<Check>) {
    let dir = host.types_dir(parent);
    let subject = parent.as_str();
    if !host.is_dir(&dir) {
        out.push(Check::fail(
            "parent.types",
            subject,
            format!("{} does not exist: the driver has not published its types", dir.display()),
            "wait for the vendor's driver or daemon (nvidia-vgpud) to finish; definitions with start auto start when it does, through the udev rule",
        ));
        return;
    }
    let names = names_in(host, &dir);
    if names.is_empty() {
        out.push(Check::fail(
            "parent.types",
            subject,
            format!("{} is empty", dir.display()),
            "the device is in a mode that offers no mdev types (e.g. a GPU in compute or MIG mode, ECC on); change the mode and reload the driver",
        ));
        return;
    }
    out.push(Check::ok(
        "parent.types",
        subject,
        format!("{}: {} type(s)", dir.display(), names.len()),
    ));
    for name in names {
        let Ok(ty) = name.parse::<TypeName>() else {
            continue;
        };
        if scope.mdev_type.as_ref().is_some_and(|t| *t != ty) {
            continue;
        }
        out.push(available(host, facts, parent, &ty));
    }
    // Without -p, a type only some parents offer is no failure of the others.
    if let (Some(t), Some(_)) = (&scope.mdev_type, &scope.parent) {
        if !host.is_dir(&host.type_dir(parent, t)) {
            out.push(Check::fail(
                "type.available",
                format!("{parent}/{t}"),
                format!("{} does not exist", host.type_dir(parent, t).display()),
                "choose one of the parent's types (mdevctl types -p PARENT); a type can be hidden while the device is in another mode",
            ));
        }
    }
}

fn available(host: &Host, facts: &Facts, parent: &ParentName, ty: &TypeName) -> Check {
    const ID: &str = "type.available";
    let subject = format!("{parent}/{ty}");
    let dir = host.type_dir(parent, ty);
    let path = dir.join("available_instances");
    let in_use = facts.active_on(parent, Some(ty)).count();
    match supported::available_instances(host, &dir) {
        Err(e) => Check::fail(
            ID,
            subject,
            crate::error::chain(&e),
            "the driver's type directory is broken; check dmesg",
        ),
        Ok(n) if n > 0 => Check::ok(
            ID,
            subject,
            format!("{}: {n} ({in_use} in use)", path.display()),
        ),
        Ok(n) => Check::warn(
            ID,
            subject,
            format!("{}: {n}; {}", path.display(), why_none_left(host, facts, parent, ty)),
            "remove a device that holds the capacity (mdevctl stop -u UUID), or choose another type",
        ),
    }
}

pub(super) fn check(host: &Host, facts: &Facts, gpus: &Gpus, scope: &Scope) -> Vec<Check> {
    let mut out = Vec::new();
    let parents: Vec<&ParentName> = match &scope.parent {
        Some(p) if facts.is_parent(p) => vec![p],
        // A vendor-VFIO GPU is no mdev parent: its checks are nvidia.*.
        Some(p) if gpus.is_vendor_vfio(p) => return out,
        Some(p) => {
            out.push(registered(host, p));
            return out;
        }
        None => facts.parents.iter().collect(),
    };
    for p in parents {
        out.push(driver(host, p));
        types(host, facts, p, scope, &mut out);
    }
    if let (Some(t), None) = (&scope.mdev_type, &scope.parent) {
        if !out.iter().any(|c| c.id == "type.available") {
            out.push(Check::fail(
                "type.available",
                t.as_str(),
                format!("no parent in {} offers {t}", host.mdev_bus_dir().display()),
                "check the type's name (mdevctl types), or whether its parent's types are published",
            ));
        }
    }
    out
}
