//! `mdevkit doctor`: why a host is not ready for mediated devices. Each check reads sysfs,
//! `/proc` or the definition store under [`crate::Roots`] and never changes anything; it
//! ends ok, warn or fail with one line of evidence (what it read, what it found) and, when
//! not ok, what to do.
//!
//! One module per thing checked: `iommu`, `modules`, `parents` (drivers, types,
//! instances), `nvidia`, `vfio_ap`, `vfio_ccw`, `definitions`, `device` (the dry
//! `start` of `-u`); [`report`] renders. Check ids are listed in `docs/doctor.md`.

mod definitions;
mod device;
mod iommu;
mod modules;
mod nvidia;
mod parents;
pub mod report;
mod vfio_ap;
mod vfio_ccw;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::host::{EntryKind, Host};
use crate::names::{ParentName, TypeName, Uuid};
use crate::store::{self, Scan, Selection};
use crate::sysfs::{self, ActiveDevice};

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable id (`docs/doctor.md`), e.g. `type.available`.
    pub id: &'static str,
    /// What it is about: a parent, `parent/type`, a UUID, a PCI address; empty for the host.
    pub subject: String,
    pub status: Status,
    /// One line: the file read and what it held.
    pub evidence: String,
    /// What to do (warn and fail only).
    pub remedy: Option<String>,
}

impl Check {
    pub fn ok(id: &'static str, subject: impl Into<String>, evidence: impl Into<String>) -> Check {
        Check {
            id,
            subject: subject.into(),
            status: Status::Ok,
            evidence: evidence.into(),
            remedy: None,
        }
    }

    pub fn warn(
        id: &'static str,
        subject: impl Into<String>,
        evidence: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Check {
        Check {
            status: Status::Warn,
            remedy: Some(remedy.into()),
            ..Check::ok(id, subject, evidence)
        }
    }

    pub fn fail(
        id: &'static str,
        subject: impl Into<String>,
        evidence: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Check {
        Check {
            status: Status::Fail,
            ..Check::warn(id, subject, evidence, remedy)
        }
    }
}

/// What to look at: everything, or one parent, type or device.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub parent: Option<ParentName>,
    pub mdev_type: Option<TypeName>,
    pub uuid: Option<Uuid>,
}

/// Every finding, in the order the checks ran.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// The worst status; `Ok` for an empty report.
    pub fn worst(&self) -> Status {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Ok)
    }

    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    pub fn find(&self, id: &str, subject: &str) -> Option<&Check> {
        self.checks
            .iter()
            .find(|c| c.id == id && c.subject == subject)
    }
}

/// What the checks share, read once: registered parents, their types, active devices and
/// the definitions.
pub(crate) struct Facts {
    /// `class/mdev_bus` entries with valid names, sorted.
    pub parents: Vec<ParentName>,
    pub active: BTreeMap<Uuid, ActiveDevice>,
    pub defs: Scan,
}

impl Facts {
    fn read(host: &Host) -> Facts {
        let bus = host.mdev_bus_dir();
        let mut parents: Vec<ParentName> = host
            .read_dir(&bus)
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.name.to_str()?.parse().ok())
            .collect();
        parents.sort();
        let (active, _) = sysfs::active_devices(host, None);
        let defs = store::scan(host, &Selection::default());
        Facts {
            parents,
            active,
            defs,
        }
    }

    pub fn is_parent(&self, p: &ParentName) -> bool {
        self.parents.contains(p)
    }

    /// Active devices on `parent`, optionally of one type.
    pub fn active_on<'a>(
        &'a self,
        parent: &'a ParentName,
        mdev_type: Option<&'a TypeName>,
    ) -> impl Iterator<Item = &'a ActiveDevice> + 'a {
        self.active
            .values()
            .filter(move |d| d.parent == *parent && mdev_type.is_none_or(|t| d.mdev_type == *t))
    }
}

/// The name of the driver a device's `driver` link points at.
pub(crate) fn driver_of(host: &Host, dev_dir: &Path) -> Option<String> {
    let target = host.read_link(&dev_dir.join("driver")).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// Large enough for `/proc/cpuinfo` of a big machine; sysfs attributes are a page.
const READ_LIMIT: u64 = 1 << 22;

/// A file's text, trimmed; `None` when it cannot be read.
pub(crate) fn read_trimmed(host: &Host, path: &Path) -> Option<String> {
    host.read_bounded(path, READ_LIMIT)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
}

/// Names of a directory's entries that are directories or links, sorted.
pub(crate) fn names_in(host: &Host, dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = host
        .read_dir(dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.kind != EntryKind::File)
        .map(|e| e.name.to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `a, b, c` of the first few, then `and N more`.
pub(crate) fn list(items: &[String]) -> String {
    const SHOWN: usize = 4;
    let mut out = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        out.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    out
}

/// Runs every check that concerns `scope`.
pub fn run(host: &Host, scope: &Scope) -> Report {
    let facts = Facts::read(host);
    let mut scope = scope.clone();
    let mut checks = Vec::new();
    if let Some(uuid) = scope.uuid {
        let (found, parent, mdev_type) = device::locate(host, &facts, &uuid, scope.parent.as_ref());
        checks.push(found);
        scope.parent = scope.parent.or(parent);
        scope.mdev_type = scope.mdev_type.or(mdev_type);
    }
    let gpus = nvidia::Gpus::read(host);
    checks.push(iommu::check(host, gpus.any_vendor_vfio()));
    checks.extend(modules::check(host, &facts));
    checks.extend(nvidia::check(host, &facts, &gpus, &scope));
    checks.extend(parents::check(host, &facts, &gpus, &scope));
    checks.extend(vfio_ap::check(host, &facts, &scope));
    checks.extend(vfio_ccw::check(host, &facts, &scope));
    checks.extend(definitions::check(host, &facts, &scope));
    if let Some(uuid) = scope.uuid {
        checks.extend(device::dry_start(host, &facts, &uuid, &scope));
    }
    Report { checks }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_are_cut_with_a_count() {
        let items: Vec<String> = (1..=6).map(|i| i.to_string()).collect();
        assert_eq!(list(&items), "1, 2, 3, 4 and 2 more");
        assert_eq!(list(&items[..2]), "1, 2");
    }

    #[test]
    fn the_worst_status_decides_the_result() {
        let mut r = Report::default();
        assert_eq!(r.worst(), Status::Ok);
        r.checks.push(Check::warn("a", "", "e", "r"));
        r.checks.push(Check::ok("b", "", "e"));
        assert_eq!(r.worst(), Status::Warn);
        r.checks.push(Check::fail("c", "x", "e", "r"));
        assert_eq!(r.worst(), Status::Fail);
        assert_eq!(r.find("c", "x").map(|c| c.status), Some(Status::Fail));
        assert_eq!(r.count(Status::Ok), 1);
    }
}
