//! The definition store: `/etc/mdevctl.d/<parent>/<uuid>` files, read once each, written
//! atomically, and never built from an unchecked name.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::{ConfigError, DeviceConfig, JsonStyle};
use crate::host::dir::{Dir, Last};
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
    /// The store or a parent's directory exists but could not be listed (out of file
    /// descriptors, permissions, I/O): its definitions are unknown, not absent.
    #[error("cannot read directory {}", path.display())]
    ReadDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
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

/// Does this error mean "there is nothing there" rather than "it could not be read"?
/// Nothing at the path, a file where a directory was expected, or (opened without following
/// links) a symlink: each is an entry that does not count, as upstream's `lstat` test.
fn is_absence(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || e.kind() == io::ErrorKind::NotADirectory
        || e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
}

/// Would a short read of a definition have ended the file? A definition is one JSON
/// object, so the last byte that is not white space closes it.
fn ends_object(bytes: &[u8]) -> bool {
    bytes.trim_ascii_end().last() == Some(&b'}')
}

/// Loads the selected definitions. A missing store means "no definitions"; a store or
/// parent directory that exists but cannot be read is a [`StoreError::ReadDir`] in
/// `broken`, so that nobody takes unread definitions for absent ones.
///
/// Parent directories and definition files are taken only if they are what they claim
/// (per `lstat`: a directory, a regular file), as upstream does. Each parent directory is
/// opened once and its files are opened relative to it, so a definition costs an
/// `openat`, one `read` and a `close`.
pub fn scan(host: &Host, sel: &Selection<'_>) -> Scan {
    let mut out = Scan::default();
    let root = &host.roots().config;
    let unreadable = |path: &std::path::Path, parent: Option<&ParentName>, source| Broken {
        uuid: sel.uuid.copied(),
        parent: parent.cloned(),
        error: StoreError::ReadDir {
            path: path.to_owned(),
            source,
        },
    };
    let parents = match sel.parent {
        // A parent filter means one directory listing, not a scan of all of them.
        Some(p) => vec![(p.clone(), host.config_parent_dir(p))],
        None => {
            // Listed, then closed: a parent directory and a file are all that stay open.
            let entries = match host.read_dir(root) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return out,
                Err(source) => {
                    out.broken.push(unreadable(root, None, source));
                    return out;
                }
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
    for (parent, path) in parents {
        let listed = host
            .open_dir(&path, Last::NoSymlink)
            .and_then(|dir| dir.entries().map(|entries| (dir, entries)));
        let (dir, entries) = match listed {
            Ok(found) => found,
            Err(e) if is_absence(&e) => continue,
            Err(source) => {
                out.broken.push(unreadable(&path, Some(&parent), source));
                continue;
            }
        };
        // (uuid, spelled non-canonically, file name): sorted, so that the canonical file
        // wins when one UUID is spelled several ways, and the rest in byte order.
        let mut files = Vec::new();
        for e in entries {
            if e.kind != EntryKind::File {
                continue;
            }
            let name = e.name.to_string_lossy();
            // Temporary files of an atomic write in progress.
            if name.starts_with('.') {
                continue;
            }
            let Ok(uuid) = name.parse::<Uuid>() else {
                log::warn!(
                    "Can't determine uuid for file '{}'",
                    path.join(&e.name).display()
                );
                continue;
            };
            if sel.uuid.is_some_and(|u| *u != uuid) {
                continue;
            }
            // A name that parses as a UUID is the canonical spelling when it has the
            // hyphenated length and no capitals (compared without formatting the UUID).
            let non_canonical = name.len() != 36 || name.bytes().any(|b| b.is_ascii_uppercase());
            files.push((uuid, non_canonical, e.name));
        }
        files.sort();
        // The first file of a UUID (its canonical spelling when there is one) is loaded;
        // another spelling of it is reported as a duplicate of that one, in file order.
        let mut loads: Vec<(Uuid, std::ffi::OsString)> = Vec::with_capacity(files.len());
        let mut dups: Vec<(usize, Uuid, std::ffi::OsString)> = Vec::new();
        for (uuid, _, name) in files {
            match loads.last() {
                Some((kept, _)) if *kept == uuid => dups.push((loads.len(), uuid, name)),
                _ => loads.push((uuid, name)),
            }
        }
        let results = load_files(&dir, &loads);
        let mut dups = dups.into_iter().peekable();
        for (i, ((uuid, name), result)) in loads.iter().zip(results).enumerate() {
            match result {
                Ok(config) => {
                    let def = Definition {
                        uuid: *uuid,
                        parent: parent.clone(),
                        config,
                        file: path.join(name),
                    };
                    out.defs
                        .entry(parent.clone())
                        .or_default()
                        .insert(*uuid, def);
                }
                Err(error) => out.broken.push(Broken {
                    uuid: Some(*uuid),
                    parent: Some(parent.clone()),
                    error,
                }),
            }
            while let Some((_, dup, dup_name)) = dups.next_if(|(after, _, _)| *after == i + 1) {
                out.broken.push(Broken {
                    uuid: Some(dup),
                    parent: Some(parent.clone()),
                    error: StoreError::Duplicate {
                        path: path.join(dup_name),
                        kept: path.join(name),
                    },
                });
            }
        }
    }
    out
}

/// Reads and parses `loads` one after the other, with one buffer.
///
/// On one thread: reading on two was measured slower on a loaded two-CPU machine (the
/// kernel's open and read are most of the work, and a second thread only waits for a CPU).
fn load_files(
    dir: &Dir,
    loads: &[(Uuid, std::ffi::OsString)],
) -> Vec<Result<DeviceConfig, StoreError>> {
    let mut buf = Vec::new();
    loads
        .iter()
        .map(|(_, name)| load_in(dir, name, &mut buf))
        .collect()
}

/// Reads and parses the definition `name` in `dir`.
fn load_in(
    dir: &Dir,
    name: &std::ffi::OsStr,
    buf: &mut Vec<u8>,
) -> Result<DeviceConfig, StoreError> {
    let path = || dir.path().join(name);
    if let Err(source) = dir.read_file(std::path::Path::new(name), buf, ends_object) {
        return Err(StoreError::Read {
            path: path(),
            source,
        });
    }
    DeviceConfig::from_slice(buf).map_err(|source| StoreError::Malformed {
        path: path(),
        source,
    })
}

/// Reads and parses one definition file by its path (the listings read relative to their
/// directory's fd instead, see [`scan`]).
pub fn load(host: &Host, path: &Path) -> Result<DeviceConfig, StoreError> {
    let bytes = host.read(path).map_err(|source| StoreError::Read {
        path: path.to_owned(),
        source,
    })?;
    DeviceConfig::from_slice(&bytes).map_err(|source| StoreError::Malformed {
        path: path.to_owned(),
        source,
    })
}

/// The store opened once to read single definitions by parent and UUID, each relative to
/// it (the active listing reads one per active device for its `(defined)` marker).
#[derive(Debug)]
pub struct Lookup {
    /// `None` when there is no store: nothing is defined.
    dir: Option<Dir>,
    buf: Vec<u8>,
}

impl Lookup {
    /// Opens the store; one that exists but cannot be opened is an error naming it.
    pub fn open(host: &Host) -> Result<Lookup, StoreError> {
        let path = &host.roots().config;
        let dir = match host.open_dir(path, Last::Follow) {
            Ok(d) => Some(d),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(StoreError::ReadDir {
                    path: path.clone(),
                    source,
                })
            }
        };
        Ok(Lookup {
            dir,
            buf: Vec::new(),
        })
    }

    /// The bytes of `<parent>/<uuid>` (canonical name), or `None` when there is no such file.
    pub fn read(&mut self, parent: &ParentName, uuid: &Uuid) -> io::Result<Option<&[u8]>> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let rel = std::path::Path::new(parent.as_str()).join(uuid.hyphenated());
        match dir.read_file(&rel, &mut self.buf, ends_object) {
            Ok(()) => Ok(Some(&self.buf)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
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
/// holds the inter-process lock (see [`write`](fn@write)).
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
