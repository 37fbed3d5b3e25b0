//! Reading the kernel's mdev state: active devices under `/sys/bus/mdev/devices` and the
//! parents' supported types under `/sys/class/mdev_bus`.

pub mod supported;
pub mod write;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use crate::host::Host;
use crate::names::{ParentName, TypeName, Uuid};

/// A device the kernel has created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveDevice {
    pub uuid: Uuid,
    pub parent: ParentName,
    pub mdev_type: TypeName,
}

/// Why an active device's links could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot resolve {}", path.display())]
    Link {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} does not resolve to a named {what}", path.display())]
    Shape { path: PathBuf, what: &'static str },
}

/// The last component of a link target as a validated name.
fn last_name<T: std::str::FromStr>(target: &Path) -> Option<T> {
    target.file_name()?.to_str()?.parse().ok()
}

/// Resolves a device's parent and type from its two links.
///
/// `bus/mdev/devices/<uuid>` links to `<parent dir>/<uuid>`, so the parent name is the
/// directory above; `<uuid>/mdev_type` links to `.../mdev_supported_types/<type>`. A
/// `readlink` each is enough on the kernel's layout; anything unusual falls back to a full
/// canonicalisation, as upstream always does.
pub fn probe(host: &Host, uuid: &Uuid) -> Result<Option<ActiveDevice>, ProbeError> {
    let entry = host.device_dir(uuid);
    let target = match host.read_link(&entry) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // Not a symlink (a plain directory in a fake tree): canonicalise instead.
        Err(_) if host.exists(&entry) => entry.clone(),
        Err(_) => return Ok(None),
    };
    let link_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ProbeError::Link { path, source }
    };
    let parent_path = if target.file_name() == Some(OsStr::new(&uuid.hyphenated()))
        && target.parent().and_then(Path::file_name).is_some()
        && target != entry
    {
        target
    } else {
        host.canonicalize(&entry).map_err(link_err(&entry))?
    };
    let parent = parent_path
        .parent()
        .and_then(last_name::<ParentName>)
        .ok_or_else(|| ProbeError::Shape {
            path: entry.clone(),
            what: "parent",
        })?;
    let type_link = entry.join("mdev_type");
    let type_target = host.read_link(&type_link).map_err(link_err(&type_link))?;
    // The link text names the type, but only a link that leads to a directory is one: a
    // dangling or looping link is a broken device (upstream's canonicalisation fails too).
    if !host.is_dir(&type_link) {
        host.canonicalize(&type_link)
            .map_err(link_err(&type_link))?;
        return Err(ProbeError::Shape {
            path: type_link,
            what: "type",
        });
    }
    let mdev_type = last_name::<TypeName>(&type_target).ok_or(ProbeError::Shape {
        path: type_link,
        what: "type",
    })?;
    Ok(Some(ActiveDevice {
        uuid: *uuid,
        parent,
        mdev_type,
    }))
}

/// A non-fatal problem met while reading sysfs; the caller reports it as a warning.
#[derive(Debug)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// Every active device, keyed by UUID, read with one directory listing and two `readlink`s
/// per device. Unreadable or odd entries are returned as [`Skipped`].
pub fn active_devices(
    host: &Host,
    only: Option<&Uuid>,
) -> (BTreeMap<Uuid, ActiveDevice>, Vec<Skipped>) {
    let mut found = BTreeMap::new();
    let mut skipped = Vec::new();
    let dir = host.mdev_devices_dir();
    let entries = match host.read_dir(&dir) {
        Ok(e) => e,
        // No mdev bus (module not loaded, or a fake root without one): nothing is active.
        Err(_) => return (found, skipped),
    };
    for entry in entries {
        let path = dir.join(&entry.name);
        let Some(uuid) = entry.name.to_str().and_then(|n| n.parse::<Uuid>().ok()) else {
            skipped.push(Skipped {
                path,
                reason: "name is not a UUID".into(),
            });
            continue;
        };
        if only.is_some_and(|u| *u != uuid) {
            continue;
        }
        match probe(host, &uuid) {
            Ok(Some(dev)) => {
                found.insert(uuid, dev);
            }
            Ok(None) => {}
            Err(e) => skipped.push(Skipped {
                path,
                reason: crate::error::chain(&e),
            }),
        }
    }
    (found, skipped)
}
