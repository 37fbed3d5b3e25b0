//! Check `ccw.binding`: a subchannel that definitions (or `-p`) name must be bound to
//! `vfio_ccw` (`bus/css/devices/<subchannel>/driver`) to be an mdev parent.

use std::collections::BTreeSet;

use super::{driver_of, Check, Facts, Scope};
use crate::host::Host;
use crate::names::ParentName;

const ID: &str = "ccw.binding";

pub(super) fn check(host: &Host, facts: &Facts, scope: &Scope) -> Vec<Check> {
    let css = host.roots().sysfs.join("bus/css/devices");
    let mut wanted: BTreeSet<&ParentName> = facts
        .defs
        .iter()
        .filter(|d| scope.uuid.is_none_or(|u| d.uuid == u))
        .map(|d| &d.parent)
        .collect();
    wanted.extend(scope.parent.as_ref());
    let mut out = Vec::new();
    for p in wanted {
        if scope.parent.as_ref().is_some_and(|s| s != p) {
            continue;
        }
        let dir = css.join(p);
        if !host.exists(&dir) {
            continue;
        }
        let subject = p.as_str();
        match driver_of(host, &dir) {
            Some(d) if d == "vfio_ccw" => out.push(Check::ok(
                ID,
                subject,
                format!("{}/driver -> vfio_ccw", dir.display()),
            )),
            // Only vfio_ccw registers subchannels as mdev parents.
            None if facts.is_parent(p) => out.push(Check::ok(
                ID,
                subject,
                format!(
                    "{} is registered in {} (only vfio_ccw registers subchannels)",
                    dir.display(),
                    host.mdev_bus_dir().display()
                ),
            )),
            other => out.push(Check::fail(
                ID,
                subject,
                format!(
                    "{}/driver: {}",
                    dir.display(),
                    other.map_or("no driver bound".to_owned(), |d| format!("bound to {d}"))
                ),
                format!("driverctl -b css set-override {p} vfio_ccw (modprobe vfio_ccw first)"),
            )),
        }
    }
    out
}
