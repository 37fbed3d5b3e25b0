//! Reading the kernel's mdev state: active devices under `/sys/bus/mdev/devices` and the
//! parents' supported types under `/sys/class/mdev_bus`.

pub mod supported;
pub mod write;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use crate::host::dir::{Dir, Last};
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
    #[error("cannot read directory {}", path.display())]
    ReadDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
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

/// How a probe reaches `bus/mdev/devices`: by full paths (one device) or relative to the
/// directory a listing opened once (every device).
#[derive(Clone, Copy)]
enum Bus<'a> {
    Paths(&'a Host),
    Open(&'a Host, &'a Dir),
}

impl Bus<'_> {
    fn host(&self) -> &Host {
        match self {
            Bus::Paths(h) | Bus::Open(h, _) => h,
        }
    }

    fn full(&self, rel: &Path) -> PathBuf {
        match self {
            Bus::Paths(h) => h.mdev_devices_dir().join(rel),
            Bus::Open(_, d) => d.path().join(rel),
        }
    }

    fn read_link(&self, rel: &Path) -> io::Result<PathBuf> {
        match self {
            Bus::Paths(h) => h.read_link(&self.full(rel)),
            Bus::Open(_, d) => d.read_link(rel),
        }
    }

    fn is_dir(&self, rel: &Path) -> bool {
        match self {
            Bus::Paths(h) => h.is_dir(&self.full(rel)),
            Bus::Open(_, d) => d.is_dir(rel),
        }
    }
}

/// Resolves a device's parent and type from its two links.
///
/// `bus/mdev/devices/<uuid>` links to `<parent dir>/<uuid>`, so the parent name is the
/// directory above; `<uuid>/mdev_type` links to `.../mdev_supported_types/<type>`. A
/// `readlink` each is enough on the kernel's layout; anything unusual falls back to a full
/// canonicalisation, as upstream always does.
pub fn probe(host: &Host, uuid: &Uuid) -> Result<Option<ActiveDevice>, ProbeError> {
    probe_on(Bus::Paths(host), uuid)
}

fn probe_on(bus: Bus<'_>, uuid: &Uuid) -> Result<Option<ActiveDevice>, ProbeError> {
    let host = bus.host();
    let name = uuid.hyphenated();
    let rel = Path::new(&name);
    let entry = bus.full(rel);
    let target = match bus.read_link(rel) {
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
    // On the kernel's layout the device's directory is reached again through the link's
    // own text (relative to the bus directory, as the kernel resolves it) rather than
    // through the link: its target is too long to be stored in the inode, so following it
    // costs a block lookup each time.
    let (parent_path, dev_rel) = if target.file_name() == Some(OsStr::new(&name))
        && target.parent().and_then(Path::file_name).is_some()
        && target != entry
    {
        (target.clone(), target)
    } else {
        let real = host.canonicalize(&entry).map_err(link_err(&entry))?;
        (real, rel.to_owned())
    };
    let parent = parent_path
        .parent()
        .and_then(last_name::<ParentName>)
        .ok_or_else(|| ProbeError::Shape {
            path: entry.clone(),
            what: "parent",
        })?;
    let type_rel = dev_rel.join("mdev_type");
    let type_link = entry.join("mdev_type");
    let type_target = bus.read_link(&type_rel).map_err(link_err(&type_link))?;
    // The link text names the type, but only a link that leads to a directory is one: a
    // dangling or looping link is a broken device (upstream's canonicalisation fails too).
    if !bus.is_dir(&type_rel) {
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

/// Every active device, keyed by UUID: `bus/mdev/devices` is opened and listed once, and
/// each device costs two `readlinkat`s and a `stat` relative to it. Unreadable or odd
/// entries are returned as [`Skipped`]; a bus directory that exists but cannot be read is
/// a warning (no bus at all means nothing is active).
pub fn active_devices(
    host: &Host,
    only: Option<&Uuid>,
) -> (BTreeMap<Uuid, ActiveDevice>, Vec<Skipped>) {
    let mut found = BTreeMap::new();
    let mut skipped = Vec::new();
    let path = host.mdev_devices_dir();
    let listed = host
        .open_dir(&path, Last::Follow)
        .and_then(|dir| dir.entries().map(|entries| (dir, entries)));
    let (dir, entries) = match listed {
        Ok(found) => found,
        // No mdev bus (module not loaded, or a fake root without one): nothing is active.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (found, skipped),
        Err(source) => {
            let e = ProbeError::ReadDir { path, source };
            log::warn!("{}", crate::error::chain(&e));
            return (found, skipped);
        }
    };
    for entry in entries {
        let Some(uuid) = entry.name.to_str().and_then(|n| n.parse::<Uuid>().ok()) else {
            skipped.push(Skipped {
                path: path.join(&entry.name),
                reason: "name is not a UUID".into(),
            });
            continue;
        };
        if only.is_some_and(|u| *u != uuid) {
            continue;
        }
        match probe_on(Bus::Open(host, &dir), &uuid) {
            Ok(Some(dev)) => {
                found.insert(uuid, dev);
            }
            Ok(None) => {}
            Err(e) => skipped.push(Skipped {
                path: path.join(&entry.name),
                reason: crate::error::chain(&e),
            }),
        }
    }
    (found, skipped)
}
