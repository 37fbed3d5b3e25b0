//! Checks of `/etc/mdevctl.d`: `def.parse` (files that cannot be used), `def.name` (file
//! names that are not the canonical UUID), `def.autostart` (auto-start definitions whose
//! parent or type is missing: mdevctl #82) and `udev.rule` (the rule that starts them).

use super::{Check, Facts, Scope};
use crate::host::{EntryKind, Host};
use crate::names::{StartMode, Uuid};
use crate::sysfs::supported;

const RULE: &str = "60-mdevctl.rules";

fn parse(facts: &Facts, scope: &Scope, out: &mut Vec<Check>) {
    for b in &facts.defs.broken {
        if scope.uuid.is_some_and(|u| b.uuid != Some(u))
            || scope
                .parent
                .as_ref()
                .is_some_and(|p| b.parent.as_ref() != Some(p))
        {
            continue;
        }
        let subject = b.uuid.map(|u| u.hyphenated()).unwrap_or_default();
        out.push(Check::fail(
            "def.parse",
            subject,
            crate::error::chain(&b.error),
            "fix or remove the file: listings skip it and autostart cannot start it",
        ));
    }
}

fn names(host: &Host, scope: &Scope, out: &mut Vec<Check>) {
    let root = &host.roots().config;
    let mut dirs: Vec<_> = host
        .read_dir(root)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.kind == EntryKind::Dir && e.name != "scripts.d")
        .filter(|e| scope.parent.as_ref().is_none_or(|p| e.name == p.as_str()))
        .collect();
    dirs.sort_by(|a, b| a.name.cmp(&b.name));
    for d in dirs {
        let dir = root.join(&d.name);
        if d.name
            .to_str()
            .and_then(|n| n.parse::<crate::ParentName>().ok())
            .is_none()
        {
            out.push(Check::warn(
                "def.name",
                "",
                format!("{}: not a valid parent name, ignored", dir.display()),
                "rename or remove the directory",
            ));
            continue;
        }
        let mut files = host.read_dir(&dir).unwrap_or_default();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        for f in files {
            let name = f.name.to_string_lossy();
            if f.kind != EntryKind::File || name.starts_with('.') {
                continue;
            }
            let path = dir.join(&f.name);
            match name.parse::<Uuid>() {
                Err(_) => out.push(Check::warn(
                    "def.name",
                    "",
                    format!("{}: not a UUID, ignored", path.display()),
                    "remove the file or name it after the device's UUID",
                )),
                Ok(u) if scope.uuid.is_some_and(|s| s != u) => {}
                Ok(u) if name != u.hyphenated() => out.push(Check::warn(
                    "def.name",
                    u.hyphenated(),
                    format!(
                        "{}: not the canonical (lower-case, hyphenated) name",
                        path.display()
                    ),
                    format!("rename it to {}; mdevctl modify does this", u.hyphenated()),
                )),
                Ok(_) => {}
            }
        }
    }
}

/// Whether the udev rule that runs `start-parent-mdevs` is installed, and where.
fn rule(host: &Host) -> Option<std::path::PathBuf> {
    host.roots()
        .udev_rules
        .iter()
        .map(|d| d.join(RULE))
        .find(|p| host.is_file(p))
}

fn autostart(host: &Host, facts: &Facts, scope: &Scope, out: &mut Vec<Check>) {
    const ID: &str = "def.autostart";
    let installed = rule(host);
    let mut any = false;
    for d in facts.defs.iter() {
        if d.config.start != StartMode::Auto
            || scope.uuid.is_some_and(|u| d.uuid != u)
            || scope.parent.as_ref().is_some_and(|p| d.parent != *p)
        {
            continue;
        }
        any = true;
        let subject = d.uuid.hyphenated();
        let (p, t) = (&d.parent, &d.config.mdev_type);
        if facts.active.get(&d.uuid).is_some_and(|a| a.parent == *p) {
            out.push(Check::ok(ID, subject, format!("running on {p}")));
            continue;
        }
        let parent_dir = host.parent_dir(p);
        let types_dir = host.types_dir(p);
        let type_dir = host.type_dir(p, t);
        if !facts.is_parent(p) {
            let evidence = format!("no {}: the parent is not there", parent_dir.display());
            match &installed {
                Some(r) => out.push(Check::warn(
                    ID,
                    subject,
                    format!("{evidence}; {} will start it when it appears", r.display()),
                    "load the parent's driver; see the parent.registered check with -p",
                )),
                None => out.push(Check::fail(
                    ID,
                    subject,
                    format!("{evidence}, and no udev rule {RULE} is installed"),
                    "install mdevctl's udev rule (cargo xtask install) so that parents start their devices when they appear",
                )),
            }
        } else if !host.is_dir(&types_dir) {
            out.push(Check::warn(
                ID,
                subject,
                format!("{} does not exist yet: types not published", types_dir.display()),
                "the udev rule starts it once the driver publishes the types (change event); else mdevctl start-parent-mdevs PARENT",
            ));
        } else if !host.is_dir(&type_dir) {
            out.push(Check::fail(
                ID,
                subject,
                format!(
                    "{} does not exist: {p} does not offer {t}",
                    type_dir.display()
                ),
                "redefine it with a type the parent offers (mdevctl types -p PARENT)",
            ));
        } else {
            match supported::available_instances(host, &type_dir) {
                Ok(n) if n > 0 => out.push(Check::ok(
                    ID,
                    subject,
                    format!("not running; {p} offers {t} ({n} available): mdevctl start -u {} would start it", d.uuid),
                )),
                Ok(n) => out.push(Check::fail(
                    ID,
                    subject,
                    format!(
                        "not running and {}/available_instances is {n}: {}",
                        type_dir.display(),
                        super::parents::why_none_left(host, facts, p, t)
                    ),
                    "free capacity on the parent, or move the definition to another parent",
                )),
                Err(e) => out.push(Check::fail(
                    ID,
                    subject,
                    crate::error::chain(&e),
                    "the driver's type directory is broken; check dmesg",
                )),
            }
        }
    }
    let id = "udev.rule";
    let places = host
        .roots()
        .udev_rules
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    match (installed, any) {
        (Some(r), _) => out.push(Check::ok(id, "", format!("{} present", r.display()))),
        (None, true) => out.push(Check::fail(
            id,
            "",
            format!("no {RULE} in {places}"),
            "install it (cargo xtask install, or the mdevctl package): auto-start definitions start only through it",
        )),
        (None, false) if scope.uuid.is_none() => out.push(Check::warn(
            id,
            "",
            format!("no {RULE} in {places}"),
            "install it before defining devices with start auto",
        )),
        (None, false) => {}
    }
}

pub(super) fn check(host: &Host, facts: &Facts, scope: &Scope) -> Vec<Check> {
    let mut out = Vec::new();
    parse(facts, scope, &mut out);
    names(host, scope, &mut out);
    autostart(host, facts, scope, &mut out);
    out
}
