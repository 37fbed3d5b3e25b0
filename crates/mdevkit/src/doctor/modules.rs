//! Checks `module.vfio`, `module.vfio_iommu` and `module.mdev`: the kernel modules mediated
//! devices need, loaded or built in (`/sys/module/<name>`, else `/proc/modules`).

use super::{read_trimmed, Check, Facts};
use crate::host::Host;

/// Where the module state was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    /// `/sys/module/<name>` (a loaded module, or a built-in one with parameters).
    SysModule(String),
    /// A line of `/proc/modules`.
    ProcModules(String),
    /// Looked in both and it is not there.
    Absent(String),
    /// Neither `/sys/module` nor `/proc/modules` can be read: nothing to conclude.
    Unknown(String),
}

impl Seen {
    pub(crate) fn loaded(&self) -> bool {
        matches!(self, Seen::SysModule(_) | Seen::ProcModules(_))
    }

    pub(crate) fn evidence(&self) -> &str {
        match self {
            Seen::SysModule(e) | Seen::ProcModules(e) | Seen::Absent(e) | Seen::Unknown(e) => e,
        }
    }
}

/// Module state, read once per doctor run.
pub(crate) struct Modules {
    sys: std::path::PathBuf,
    sys_readable: bool,
    proc_path: std::path::PathBuf,
    proc: Option<String>,
}

impl Modules {
    pub(crate) fn read(host: &Host) -> Modules {
        let sys = host.roots().sysfs.join("module");
        let proc_path = host.roots().proc.join("modules");
        Modules {
            sys_readable: host.read_dir(&sys).is_ok(),
            sys,
            proc: read_trimmed(host, &proc_path),
            proc_path,
        }
    }

    pub(crate) fn find(&self, host: &Host, name: &str) -> Seen {
        let dir = self.sys.join(name);
        if host.is_dir(&dir) {
            return Seen::SysModule(format!("{} present", dir.display()));
        }
        if let Some(text) = &self.proc {
            if text
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name))
            {
                return Seen::ProcModules(format!("{} lists {name}", self.proc_path.display()));
            }
        }
        if !self.sys_readable && self.proc.is_none() {
            return Seen::Unknown(format!(
                "neither {} nor {} is readable",
                self.sys.display(),
                self.proc_path.display()
            ));
        }
        Seen::Absent(format!(
            "no {} and {} {}",
            dir.display(),
            self.proc_path.display(),
            if self.proc.is_some() {
                format!("does not list {name}")
            } else {
                "is unreadable".to_owned()
            }
        ))
    }
}

/// One module check: ok when loaded, `missing` (warn or fail) when absent, warn when unknown.
fn one(host: &Host, m: &Modules, id: &'static str, names: &[&str], needed: bool) -> Check {
    let seen: Vec<Seen> = names.iter().map(|n| m.find(host, n)).collect();
    if let Some(s) = seen.iter().find(|s| s.loaded()) {
        return Check::ok(id, "", s.evidence());
    }
    let mut evidence: Vec<&str> = seen.iter().map(Seen::evidence).collect();
    evidence.dedup();
    let evidence = evidence.join("; ");
    let load = format!("modprobe {}", names.first().copied().unwrap_or_default());
    if seen.iter().any(|s| matches!(s, Seen::Unknown(_))) {
        return Check::warn(
            id,
            "",
            evidence,
            format!("cannot tell; check with lsmod, else {load}"),
        );
    }
    if needed {
        Check::fail(id, "", evidence, load)
    } else {
        Check::warn(
            id,
            "",
            evidence,
            format!("{load} (needed once mdev devices are used)"),
        )
    }
}

/// The mdev core has no parameters, so when built in it has no `/sys/module/mdev`; its bus
/// directory shows it as well.
fn mdev_core(host: &Host, m: &Modules, used: bool) -> Check {
    let bus = host.roots().sysfs.join("bus/mdev");
    if host.is_dir(&bus) {
        return Check::ok(
            "module.mdev",
            "",
            format!("{} present (the mdev core is loaded)", bus.display()),
        );
    }
    one(host, m, "module.mdev", &["mdev"], used)
}

pub(super) fn check(host: &Host, facts: &Facts) -> Vec<Check> {
    let m = Modules::read(host);
    // The mdev core is only needed where mdev devices are: registered parents or definitions.
    let mdev_used = !facts.parents.is_empty() || !facts.defs.is_empty();
    vec![
        one(host, &m, "module.vfio", &["vfio"], true),
        one(
            host,
            &m,
            "module.vfio_iommu",
            &["vfio_iommu_type1", "iommufd"],
            true,
        ),
        mdev_core(host, &m, mdev_used),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Roots;

    #[test]
    fn a_module_is_found_by_its_whole_name_only() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(Roots::under(dir.path()));
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(
            dir.path().join("proc/modules"),
            "vfio_pci 16384 0 - Live 0x0\nmdev 20480 1 vfio_pci, Live 0x0\n",
        )
        .unwrap();
        let m = Modules::read(&host);
        assert!(m.find(&host, "mdev").loaded());
        assert!(
            matches!(m.find(&host, "vfio"), Seen::Absent(_)),
            "vfio_pci is not vfio"
        );
        std::fs::create_dir_all(dir.path().join("sys/module/vfio")).unwrap();
        assert!(matches!(m.find(&host, "vfio"), Seen::SysModule(_)));
    }

    #[test]
    fn nothing_readable_is_unknown_not_absent() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(Roots::under(dir.path()));
        let m = Modules::read(&host);
        assert!(matches!(m.find(&host, "vfio"), Seen::Unknown(_)));
    }
}
