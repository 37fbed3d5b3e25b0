//! For `-u UUID`: `device.found` (where the device is defined or running) and a dry run of
//! `start`: `device.start` (type present, an instance left, `create` writable) and
//! `device.attrs` (each attribute the definition writes exists and is writable). Nothing is
//! created: attribute files are looked for on another device of the same type.

use super::{Check, Facts, Scope};
use crate::host::Host;
use crate::names::{ParentName, TypeName, Uuid};
use crate::store::Definition;
use crate::sysfs::supported;

/// The definition `start -u` would use: the one on the given parent, or the only one.
fn definition<'a>(
    facts: &'a Facts,
    uuid: &Uuid,
    parent: Option<&ParentName>,
) -> Vec<&'a Definition> {
    facts
        .defs
        .iter()
        .filter(|d| d.uuid == *uuid && parent.is_none_or(|p| d.parent == *p))
        .collect()
}

pub(super) fn locate(
    host: &Host,
    facts: &Facts,
    uuid: &Uuid,
    parent: Option<&ParentName>,
) -> (Check, Option<ParentName>, Option<TypeName>) {
    const ID: &str = "device.found";
    let subject = uuid.hyphenated();
    if let Some(a) = facts.active.get(uuid) {
        return (
            Check::ok(
                ID,
                subject,
                format!(
                    "{} is active on {} as {}",
                    host.device_dir(uuid).display(),
                    a.parent,
                    a.mdev_type
                ),
            ),
            Some(a.parent.clone()),
            Some(a.mdev_type.clone()),
        );
    }
    let defs = definition(facts, uuid, parent);
    match defs.as_slice() {
        [d] => (
            Check::ok(
                ID,
                subject,
                format!(
                    "defined in {} (type {}, start {}), not active",
                    d.file.display(),
                    d.config.mdev_type,
                    d.config.start.as_str()
                ),
            ),
            Some(d.parent.clone()),
            Some(d.config.mdev_type.clone()),
        ),
        [] => {
            let broken = facts.defs.broken.iter().any(|b| b.uuid == Some(*uuid));
            let evidence = if broken {
                format!(
                    "its definition in {} cannot be used (see def.parse)",
                    host.roots().config.display()
                )
            } else {
                format!(
                    "no definition in {} and not in {}",
                    host.roots().config.display(),
                    host.mdev_devices_dir().display()
                )
            };
            (
                Check::fail(
                    ID,
                    subject,
                    evidence,
                    "define it (mdevctl define) or check the UUID",
                ),
                None,
                None,
            )
        }
        many => (
            Check::warn(
                ID,
                subject,
                format!(
                    "defined on {} parents: {}",
                    many.len(),
                    many.iter()
                        .map(|d| d.parent.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "give -p PARENT, as mdevctl start needs it",
            ),
            None,
            None,
        ),
    }
}

/// Whether sysfs would accept a write: the file exists and has a write bit (sysfs shows a
/// store function that way; root's access(2) would say yes regardless).
fn writable(host: &Host, path: &std::path::Path) -> Result<(), String> {
    match host.mode(path) {
        Ok(m) if m & 0o222 != 0 => Ok(()),
        Ok(m) => Err(format!("{} is read-only (mode {m:o})", path.display())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

pub(super) fn dry_start(host: &Host, facts: &Facts, uuid: &Uuid, scope: &Scope) -> Vec<Check> {
    let subject = uuid.hyphenated();
    if let Some(a) = facts.active.get(uuid) {
        return vec![Check::warn(
            "device.start",
            subject,
            format!(
                "already active on {} as {}: start would refuse it",
                a.parent, a.mdev_type
            ),
            format!("nothing to start; mdevctl stop -u {uuid} first to restart it"),
        )];
    }
    let [def] = definition(facts, uuid, scope.parent.as_ref()).as_slice()[..] else {
        return Vec::new();
    };
    let (p, t) = (&def.parent, &def.config.mdev_type);
    let type_dir = host.type_dir(p, t);
    let mut out = Vec::new();
    let start = if !facts.is_parent(p) {
        Check::fail(
            "device.start",
            &subject,
            format!("no {}: start would fail", host.parent_dir(p).display()),
            "the parent must be registered first (see parent.registered)",
        )
    } else if !host.is_dir(&type_dir) {
        Check::fail(
            "device.start",
            &subject,
            format!("no {}: start would fail", type_dir.display()),
            "the parent does not offer this type now (types not published, or another mode)",
        )
    } else {
        match supported::available_instances(host, &type_dir) {
            Err(e) => Check::fail(
                "device.start",
                &subject,
                crate::error::chain(&e),
                "check dmesg",
            ),
            Ok(n) if n < 1 => Check::fail(
                "device.start",
                &subject,
                format!(
                    "{}/available_instances is {n}: {}",
                    type_dir.display(),
                    super::parents::why_none_left(host, facts, p, t)
                ),
                "free capacity on the parent first",
            ),
            Ok(n) => match writable(host, &type_dir.join("create")) {
                Err(e) => Check::fail(
                    "device.start",
                    &subject,
                    e,
                    "the driver cannot create devices of this type",
                ),
                Ok(()) => Check::ok(
                    "device.start",
                    &subject,
                    format!(
                        "{p} offers {t} ({n} available) and {}/create is writable",
                        type_dir.display()
                    ),
                ),
            },
        }
    };
    out.push(start);
    if def.config.attrs.is_empty() {
        return out;
    }
    // Attribute files exist only once the device does: look at a sibling of the same type.
    let sibling = facts.active_on(p, Some(t)).next();
    let Some(sib) = sibling else {
        out.push(Check::warn(
            "device.attrs",
            &subject,
            format!(
                "{} attribute(s) to write; no device of {t} exists on {p} to check the files on",
                def.config.attrs.len()
            ),
            "nothing to fix: start rolls the device back if a write fails",
        ));
        return out;
    };
    let dir = host.device_dir(&sib.uuid);
    let problems: Vec<String> = def
        .config
        .attrs
        .iter()
        .filter_map(|a| writable(host, &dir.join(a.name.as_str())).err())
        .collect();
    if problems.is_empty() {
        out.push(Check::ok(
            "device.attrs",
            &subject,
            format!(
                "all {} attribute file(s) exist and are writable on {}",
                def.config.attrs.len(),
                dir.display()
            ),
        ));
    } else {
        out.push(Check::fail(
            "device.attrs",
            &subject,
            super::list(&problems),
            "fix the attribute names (mdevctl modify --delattr --index N) to what the driver offers",
        ));
    }
    out
}
