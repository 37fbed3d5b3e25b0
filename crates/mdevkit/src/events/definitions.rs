//! Definition events from inotify: a watch on the config directory and on each parent
//! directory in it, or, while the config directory does not exist, on its nearest existing
//! ancestor. A model of the definitions turns file events into defined, modified and
//! undefined, and an overflow into a re-read.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;

use super::{Event, EventKind, Lost, MonitorError};
use crate::config::DeviceConfig;
use crate::host::Host;
use crate::names::{ParentName, Uuid};
use crate::store::{self, Selection};

/// What a watch descriptor stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Watched {
    /// An existing ancestor of the missing config directory.
    Ancestor,
    /// The config directory.
    Root,
    Parent(ParentName),
}

#[derive(Debug)]
pub(super) struct DefinitionWatch {
    fd: OwnedFd,
    host: Host,
    watches: HashMap<i32, Watched>,
    defs: BTreeMap<(ParentName, Uuid), DeviceConfig>,
}

const DIR_EVENTS: WatchFlags = WatchFlags::CREATE
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::DELETE)
    .union(WatchFlags::DELETE_SELF)
    .union(WatchFlags::MOVE_SELF)
    .union(WatchFlags::ONLYDIR);

/// Parent directories also report finished writes (a file written in place).
const PARENT_EVENTS: WatchFlags = DIR_EVENTS.union(WatchFlags::CLOSE_WRITE);

impl DefinitionWatch {
    pub(super) fn open(host: Host) -> Result<DefinitionWatch, MonitorError> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .map_err(|e| MonitorError::Inotify { source: e.into() })?;
        let mut w = DefinitionWatch {
            fd,
            host,
            watches: HashMap::new(),
            defs: BTreeMap::new(),
        };
        w.watch_tree()?;
        Ok(w)
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn root(&self) -> PathBuf {
        self.host.roots().config.clone()
    }

    fn add(&mut self, path: &Path, flags: WatchFlags, what: Watched) -> io::Result<()> {
        let wd = inotify::add_watch(&self.fd, path, flags)?;
        self.watches.insert(wd, what);
        Ok(())
    }

    /// Watches the config directory and its parent directories, or the nearest existing
    /// ancestor when it does not exist. Called again whenever the tree's shape changes.
    fn watch_tree(&mut self) -> Result<(), MonitorError> {
        for (wd, what) in std::mem::take(&mut self.watches) {
            if what == Watched::Ancestor {
                let _ = inotify::remove_watch(&self.fd, wd);
            } else {
                self.watches.insert(wd, what);
            }
        }
        let root = self.root();
        match self.add(&root, DIR_EVENTS, Watched::Root) {
            Ok(()) => {}
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(Errno::NOTDIR.raw_os_error()) =>
            {
                return self.watch_ancestor(&root);
            }
            Err(source) => return Err(MonitorError::Watch { path: root, source }),
        }
        let Ok(entries) = self.host.read_dir(&root) else {
            return Ok(());
        };
        for e in entries {
            if e.kind != crate::host::EntryKind::Dir {
                continue;
            }
            if let Some(parent) = e.name.to_str().and_then(|n| n.parse::<ParentName>().ok()) {
                // A directory that vanished meanwhile is no error: its events say so.
                let _ = self.add(&root.join(&e.name), PARENT_EVENTS, Watched::Parent(parent));
            }
        }
        Ok(())
    }

    fn watch_ancestor(&mut self, root: &Path) -> Result<(), MonitorError> {
        let mut dir = root.parent();
        while let Some(d) = dir {
            match self.add(d, DIR_EVENTS, Watched::Ancestor) {
                Ok(()) => return Ok(()),
                Err(_) if d.parent().is_some() => dir = d.parent(),
                Err(source) => {
                    return Err(MonitorError::Watch {
                        path: d.to_path_buf(),
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// Reads the store and reports how it differs from the model (everything, the first
    /// time): after start-up, an overflow, or a directory that appeared with files in it.
    pub(super) fn resync(&mut self, out: &mut Vec<Event>) {
        let scan = store::scan(&self.host, &Selection::default());
        let mut now = BTreeMap::new();
        for def in scan.into_defs() {
            now.insert((def.parent, def.uuid), def.config);
        }
        let old = std::mem::take(&mut self.defs);
        for ((parent, uuid), config) in &old {
            if !now.contains_key(&(parent.clone(), *uuid)) {
                out.push(def_event(EventKind::Undefined, parent, *uuid, Some(config)));
            }
        }
        for ((parent, uuid), config) in &now {
            match old.get(&(parent.clone(), *uuid)) {
                None => out.push(def_event(EventKind::Defined, parent, *uuid, Some(config))),
                Some(was) if was != config => {
                    out.push(def_event(EventKind::Modified, parent, *uuid, Some(config)));
                }
                Some(_) => {}
            }
        }
        self.defs = now;
    }

    /// Handles everything inotify has queued.
    pub(super) fn read(&mut self, out: &mut Vec<Event>) -> Result<(), MonitorError> {
        let mut buf = vec![MaybeUninit::<u8>::uninit(); 64 * 1024];
        let mut raw = Vec::new();
        {
            let mut reader = inotify::Reader::new(&self.fd, &mut buf);
            loop {
                match reader.next() {
                    Ok(ev) => raw.push((
                        ev.wd(),
                        ev.events(),
                        ev.file_name()
                            .map(|n| OsStr::from_bytes(n.to_bytes()).to_owned()),
                    )),
                    Err(Errno::AGAIN | Errno::INTR) => break,
                    Err(e) => return Err(MonitorError::ReadInotify { source: e.into() }),
                }
                if reader.is_buffer_empty() {
                    break;
                }
            }
        }
        for (wd, flags, name) in raw {
            self.handle(wd, flags, name.as_deref(), out)?;
        }
        Ok(())
    }

    fn handle(
        &mut self,
        wd: i32,
        flags: ReadFlags,
        name: Option<&OsStr>,
        out: &mut Vec<Event>,
    ) -> Result<(), MonitorError> {
        if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
            out.push(Event::overflow(Lost::Inotify));
            self.watch_tree()?;
            self.resync(out);
            return Ok(());
        }
        let Some(what) = self.watches.get(&wd).cloned() else {
            return Ok(());
        };
        if flags.contains(ReadFlags::IGNORED) {
            self.watches.remove(&wd);
        }
        let gone_self = flags.intersects(ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF);
        match what {
            Watched::Ancestor => {
                // The config directory or one of its missing ancestors may exist now.
                if flags.intersects(ReadFlags::CREATE | ReadFlags::MOVED_TO) || gone_self {
                    self.watch_tree()?;
                    if self.watches.values().any(|w| *w == Watched::Root) {
                        self.resync(out);
                    }
                }
            }
            Watched::Root => {
                if gone_self {
                    // The whole store went (or moved away): start over from an ancestor.
                    let _ = inotify::remove_watch(&self.fd, wd);
                    self.watches.clear();
                    self.watch_tree()?;
                    self.resync(out);
                    return Ok(());
                }
                let Some(parent) = name.and_then(|n| n.to_str()?.parse::<ParentName>().ok()) else {
                    return Ok(());
                };
                if flags.intersects(ReadFlags::CREATE | ReadFlags::MOVED_TO)
                    && flags.contains(ReadFlags::ISDIR)
                {
                    let dir = self.root().join(parent.as_str());
                    let _ = self.add(&dir, PARENT_EVENTS, Watched::Parent(parent.clone()));
                    // Files may have been written before the watch was in place.
                    self.resync_parent(&parent, out);
                } else if flags.intersects(ReadFlags::DELETE | ReadFlags::MOVED_FROM) {
                    self.resync_parent(&parent, out);
                }
            }
            Watched::Parent(parent) => {
                let Some(name) = name else {
                    return Ok(());
                };
                // Temporary files of an atomic write: the rename that ends it counts.
                if self.host.temp_target(name).is_some() {
                    return Ok(());
                }
                let Some(uuid) = name.to_str().and_then(|n| n.parse::<Uuid>().ok()) else {
                    return Ok(());
                };
                let path = self.root().join(parent.as_str()).join(name);
                self.file_changed(&parent, uuid, path, out);
            }
        }
        Ok(())
    }

    /// Compares one file with the model.
    fn file_changed(
        &mut self,
        parent: &ParentName,
        uuid: Uuid,
        path: PathBuf,
        out: &mut Vec<Event>,
    ) {
        let key = (parent.clone(), uuid);
        let now = if self.host.is_file(&path) {
            match store::load(&self.host, &path) {
                Ok(config) => Some(config),
                Err(e) => {
                    // Half a hand-written file, or garbage: not a definition (yet).
                    log::warn!("{}", crate::error::chain(&e));
                    None
                }
            }
        } else {
            None
        };
        match (self.defs.get(&key), now) {
            (None, Some(config)) => {
                out.push(def_event(EventKind::Defined, parent, uuid, Some(&config)));
                self.defs.insert(key, config);
            }
            (Some(was), Some(config)) if *was != config => {
                out.push(def_event(EventKind::Modified, parent, uuid, Some(&config)));
                self.defs.insert(key, config);
            }
            (Some(was), None) => {
                out.push(def_event(EventKind::Undefined, parent, uuid, Some(was)));
                self.defs.remove(&key);
            }
            _ => {}
        }
    }

    /// Re-reads one parent directory (it appeared, or went).
    fn resync_parent(&mut self, parent: &ParentName, out: &mut Vec<Event>) {
        let scan = store::scan(
            &self.host,
            &Selection {
                uuid: None,
                parent: Some(parent),
            },
        );
        let now: BTreeMap<Uuid, DeviceConfig> = scan
            .into_defs()
            .into_iter()
            .map(|d| (d.uuid, d.config))
            .collect();
        let known: Vec<Uuid> = self
            .defs
            .keys()
            .filter(|(p, _)| p == parent)
            .map(|(_, u)| *u)
            .collect();
        for uuid in known {
            if !now.contains_key(&uuid) {
                if let Some(was) = self.defs.remove(&(parent.clone(), uuid)) {
                    out.push(def_event(EventKind::Undefined, parent, uuid, Some(&was)));
                }
            }
        }
        for (uuid, config) in now {
            let key = (parent.clone(), uuid);
            match self.defs.get(&key) {
                None => out.push(def_event(EventKind::Defined, parent, uuid, Some(&config))),
                Some(was) if *was != config => {
                    out.push(def_event(EventKind::Modified, parent, uuid, Some(&config)));
                }
                Some(_) => continue,
            }
            self.defs.insert(key, config);
        }
    }
}

fn def_event(
    kind: EventKind,
    parent: &ParentName,
    uuid: Uuid,
    config: Option<&DeviceConfig>,
) -> Event {
    Event {
        start: config.map(|c| c.start),
        ..Event::device(
            kind,
            uuid,
            parent.clone(),
            config.map(|c| c.mdev_type.clone()),
        )
    }
}
