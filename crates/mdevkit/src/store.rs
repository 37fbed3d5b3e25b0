//! The definition store: `/etc/mdevctl.d/<parent>/<uuid>` files, read once each, written
//! atomically, and never built from an unchecked name.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::{ConfigError, DeviceConfig, JsonStyle};
use crate::host::{Entry, EntryKind, Host};
use crate::names::{ParentName, Uuid};

/// A stored definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub uuid: Uuid,
    pub parent: ParentName,
    pub config: DeviceConfig,
    /// The file it came from (its name may be a non-canonical UUID form).
    pub file: PathBuf,
}

/// A definition file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read definition {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("malformed definition {}", path.display())]
    Malformed {
        path: PathBuf,
        #[source]
        source: ConfigError,
    },
    #[error("duplicate definition {}: {} defines the same UUID", path.display(), kept.display())]
    Duplicate { path: PathBuf, kept: PathBuf },
    #[error("cannot write definition {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot remove definition {}", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Which definitions to load.
#[derive(Debug, Clone, Default)]
pub struct Selection<'a> {
    pub uuid: Option<&'a Uuid>,
    pub parent: Option<&'a ParentName>,
}

/// What a scan of the store found: good definitions, sorted by parent then UUID, and the
/// files that were skipped (unreadable, malformed, odd names) for the caller to report.
#[derive(Debug, Default)]
pub struct Scan {
    pub defs: BTreeMap<ParentName, BTreeMap<Uuid, Definition>>,
    pub broken: Vec<Broken>,
}

/// A file in the store that could not be loaded.
#[derive(Debug)]
pub struct Broken {
    pub uuid: Option<Uuid>,
    pub parent: Option<ParentName>,
    pub error: StoreError,
}

impl Scan {
    pub fn iter(&self) -> impl Iterator<Item = &Definition> {
        self.defs.values().flat_map(|m| m.values())
    }

    pub fn len(&self) -> usize {
        self.defs.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn into_defs(self) -> Vec<Definition> {
        self.defs
            .into_values()
            .flat_map(BTreeMap::into_values)
            .collect()
    }
}

/// Reads one definition file.
pub fn load_file(
    host: &Host,
    path: PathBuf,
    parent: ParentName,
    uuid: Uuid,
) -> Result<Definition, StoreError> {
    let bytes = host.read(&path).map_err(|source| StoreError::Read {
        path: path.clone(),
        source,
    })?;
    let config = DeviceConfig::from_slice(&bytes).map_err(|source| StoreError::Malformed {
        path: path.clone(),
        source,
    })?;
    Ok(Definition {
        uuid,
        parent,
        config,
        file: path,
    })
}

/// Loads the selected definitions. A missing store means "no definitions".
///
/// Parent directories and definition files are taken only if they are what they claim
/// (per `lstat`: a directory, a regular file), as upstream does; each file is read once.
pub fn scan(host: &Host, sel: &Selection<'_>) -> Scan {
    let mut out = Scan::default();
    let root = &host.roots().config;
    let parents = match sel.parent {
        // A parent filter means one directory listing, not a scan of all of them; the
        // directory must pass the same `lstat` test as in a full scan.
        Some(p) => {
            let dir = host.config_parent_dir(p);
            if !host.is_real_dir(&dir) {
                return out;
            }
            vec![(p.clone(), dir)]
        }
        None => {
            let Ok(entries) = host.read_dir(root) else {
                return out;
            };
            let mut v = Vec::new();
            for e in entries {
                if e.kind != EntryKind::Dir {
                    continue;
                }
                match e.name.to_str().and_then(|n| n.parse::<ParentName>().ok()) {
                    Some(p) => v.push((p, root.join(&e.name))),
                    None => log::warn!(
                        "Skipping {}: not a valid parent name",
                        root.join(&e.name).display()
                    ),
                }
            }
            v
        }
    };
    for (parent, dir) in parents {
        let Ok(entries) = host.read_dir(&dir) else {
            continue;
        };
        // (uuid, spelled non-canonically, file name, path): sorted, so that the canonical
        // file wins when one UUID is spelled several ways, and the rest in byte order.
        let mut files = Vec::new();
        for e in entries {
            if e.kind != EntryKind::File {
                continue;
            }
            let path = dir.join(&e.name);
            let name = e.name.to_string_lossy();
            // Temporary files of an atomic write in progress.
            if name.starts_with('.') {
                continue;
            }
            let Ok(uuid) = name.parse::<Uuid>() else {
                log::warn!("Can't determine uuid for file '{}'", path.display());
                continue;
            };
            if sel.uuid.is_some_and(|u| *u != uuid) {
                continue;
            }
            let non_canonical = *name != uuid.hyphenated();
            files.push((uuid, non_canonical, e.name, path));
        }
        files.sort();
        let mut kept: Option<(Uuid, PathBuf)> = None;
        for (uuid, _, _, path) in files {
            if let Some((_, kept_path)) = kept.as_ref().filter(|(u, _)| *u == uuid) {
                out.broken.push(Broken {
                    uuid: Some(uuid),
                    parent: Some(parent.clone()),
                    error: StoreError::Duplicate {
                        path,
                        kept: kept_path.clone(),
                    },
                });
                continue;
            }
            kept = Some((uuid, path.clone()));
            match load_file(host, path, parent.clone(), uuid) {
                Ok(def) => {
                    out.defs
                        .entry(parent.clone())
                        .or_default()
                        .insert(uuid, def);
                }
                Err(error) => out.broken.push(Broken {
                    uuid: Some(uuid),
                    parent: Some(parent.clone()),
                    error,
                }),
            }
        }
    }
    out
}

/// Does a definition file exist for this parent and UUID (canonical name)?
pub fn exists(host: &Host, parent: &ParentName, uuid: &Uuid) -> bool {
    host.is_file(&host.config_file(parent, uuid))
}

/// Writes a definition atomically under its canonical name.
///
/// The caller holds the inter-process lock that every writer of the store takes, so any
/// temporary file of a definition in this parent's directory was left by a writer that
/// was killed: they are removed first. The same UUID spelled another way in that
/// directory (`ABCD...`, braced, simple) is the same definition, now superseded: it is
/// removed after the write, so the store never keeps two. One listing serves both.
pub fn write(
    host: &Host,
    parent: &ParentName,
    uuid: &Uuid,
    config: &DeviceConfig,
) -> Result<PathBuf, StoreError> {
    let path = host.config_file(parent, uuid);
    let dir = host.config_parent_dir(parent);
    let entries = host.read_dir(&dir).unwrap_or_default();
    remove_stale_temp_files(host, &dir, &entries);
    host.write_atomic(&path, config.to_json(JsonStyle::Pretty).as_bytes())
        .map_err(|source| StoreError::Write {
            path: path.clone(),
            source,
        })?;
    let canonical = uuid.hyphenated();
    for e in entries {
        let Some(name) = e.name.to_str() else {
            continue;
        };
        if e.kind == EntryKind::File
            && name != canonical
            && name.parse::<Uuid>().is_ok_and(|u| u == *uuid)
        {
            let old = dir.join(name);
            host.remove_file(&old)
                .map_err(|source| StoreError::Remove {
                    path: old.clone(),
                    source,
                })?;
            log::info!("Replaced {} by {}", old.display(), path.display());
        }
    }
    Ok(path)
}

/// Removes a definition file, then its parent directory if that is now empty. The caller
/// holds the inter-process lock (see [`write`]).
pub fn remove(host: &Host, file: &Path) -> Result<(), StoreError> {
    host.remove_file(file)
        .map_err(|source| StoreError::Remove {
            path: file.to_owned(),
            source,
        })?;
    if let Some(dir) = file.parent() {
        // A temporary file left by a killed writer would keep the directory alive forever.
        remove_stale_temp_files(host, dir, &host.read_dir(dir).unwrap_or_default());
        host.remove_dir_if_empty(dir);
    }
    Ok(())
}

/// Removes the temporary files of any definition (a target that parses as a UUID) among
/// `entries` of `dir`. Callers hold the lock, so no live writer owns one. Entries are
/// unlinked, never followed; a directory of such a name is left alone (it is in nobody's
/// way, see [`Host::write_atomic`]).
fn remove_stale_temp_files(host: &Host, dir: &Path, entries: &[Entry]) {
    for e in entries {
        if e.kind != EntryKind::Dir
            && host
                .temp_target(&e.name)
                .is_some_and(|t| t.parse::<Uuid>().is_ok())
        {
            let path = dir.join(&e.name);
            match host.remove_file(&path) {
                Ok(()) => log::info!("Removed stale temporary file {}", path.display()),
                Err(err) => log::debug!("Cannot remove {}: {err}", path.display()),
            }
        }
    }
}
