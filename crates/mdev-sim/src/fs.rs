//! The FUSE glue: answers the kernel's VFS requests from the host's tree, with sysfs's errnos.

use std::ffi::OsStr;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    consts::FOPEN_DIRECT_IO, FileAttr, FileType, Filesystem, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow,
};

use crate::kernel::Kernel;
use crate::tree::{Ino, Node};

pub type Shared = Arc<Mutex<Kernel>>;

/// Nothing is cached by the kernel: mdevs appear and vanish between two syscalls, as in sysfs.
const TTL: Duration = Duration::ZERO;

/// Locks the host; a panic elsewhere while holding the lock must not take the mount down.
pub fn lock(shared: &Shared) -> MutexGuard<'_, Kernel> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs a write through the host and answers it, then starts any hooks it triggered.
fn store(shared: &Shared, ino: Ino, data: &[u8], reply: ReplyWrite) {
    let result = lock(shared).write_file(ino, data);
    match result {
        Ok(taken) => reply.written(u32::try_from(taken).unwrap_or(u32::MAX)),
        Err(errno) => reply.error(errno.0),
    }
    crate::hooks::run_pending(shared);
}

#[derive(Debug)]
pub struct SimFs {
    shared: Shared,
    started: SystemTime,
    /// Never sent on: it is dropped with the file system when the session thread ends, which
    /// disconnects the receiver that [`crate::MountedSim::unmount_watch`] hands out.
    _alive: mpsc::Sender<()>,
}

impl SimFs {
    pub fn new(shared: Shared, alive: mpsc::Sender<()>) -> SimFs {
        SimFs {
            shared,
            started: SystemTime::now(),
            _alive: alive,
        }
    }

    fn attr(&self, host: &Kernel, ino: Ino) -> Option<FileAttr> {
        let entry = host.tree.get(ino)?;
        let (kind, perm, size, nlink) = match &entry.node {
            Node::Dir(_) => (FileType::Directory, 0o755, 0, 2),
            // sysfs reports every attribute as one page long.
            Node::File { mode, .. } => (FileType::RegularFile, *mode, 4096, 1),
            Node::Link(target) => (FileType::Symlink, 0o777, target.len() as u64, 1),
        };
        Some(FileAttr {
            ino,
            size,
            blocks: 0,
            atime: self.started,
            mtime: self.started,
            ctime: self.started,
            crtime: self.started,
            kind,
            perm,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }
}

impl Filesystem for SimFs {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let host = lock(&self.shared);
        let found = name
            .to_str()
            .and_then(|name| host.tree.lookup(parent, name))
            .and_then(|ino| self.attr(&host, ino));
        match found {
            Some(attr) => reply.entry(&TTL, &attr, 0),
            None => reply.error(libc::ENOENT),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        let host = lock(&self.shared);
        match self.attr(&host, ino) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(libc::ENOENT),
        }
    }

    /// Truncation comes with `open(O_TRUNC)`, as mdevctl's writes do; sysfs ignores it.
    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        let host = lock(&self.shared);
        if mode.is_some() || uid.is_some() || gid.is_some() {
            return reply.error(libc::EPERM);
        }
        match self.attr(&host, ino) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(libc::ENOENT),
        }
    }

    fn readlink(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyData) {
        let host = lock(&self.shared);
        match host.tree.get(ino).map(|e| &e.node) {
            Some(Node::Link(target)) => reply.data(target.as_bytes()),
            Some(_) => reply.error(libc::EINVAL),
            None => reply.error(libc::ENOENT),
        }
    }

    /// kernfs refuses to open for reading a file without a show function, and for writing one
    /// without a store function, with EACCES even for root.
    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        let host = lock(&self.shared);
        let mode = match host.tree.get(ino).map(|e| &e.node) {
            Some(Node::File { mode, .. }) => *mode,
            Some(Node::Dir(_)) => return reply.error(libc::EISDIR),
            Some(Node::Link(_)) => return reply.error(libc::ELOOP),
            None => return reply.error(libc::ENOENT),
        };
        let access = flags & libc::O_ACCMODE;
        let reads = access == libc::O_RDONLY || access == libc::O_RDWR;
        let writes = access == libc::O_WRONLY || access == libc::O_RDWR;
        if (reads && mode & 0o444 == 0) || (writes && mode & 0o222 == 0) {
            return reply.error(libc::EACCES);
        }
        // Direct I/O: every read and write reaches the show/store logic, nothing is cached.
        reply.opened(0, FOPEN_DIRECT_IO);
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let mut host = lock(&self.shared);
        match host.read_file(ino) {
            Ok(content) => {
                let start = usize::try_from(offset).unwrap_or(0).min(content.len());
                let end = start.saturating_add(size as usize).min(content.len());
                reply.data(content.get(start..end).unwrap_or_default());
            }
            Err(errno) => reply.error(errno.0),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        _offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        // The guard must be gone before `store` locks again.
        let delay = lock(&self.shared).write_delay(ino);
        match delay {
            None => store(&self.shared, ino, data, reply),
            Some(delay) => {
                // A slow store holds up only its own writer: the request is finished on a
                // thread of its own while this loop goes on serving everyone else, as sysfs
                // does for other files.
                let shared = self.shared.clone();
                let data = data.to_vec();
                std::thread::spawn(move || {
                    // The one deliberate sleep: it models a device whose store function takes
                    // this long (the `slow` control rule), not a wait for an event.
                    std::thread::sleep(delay);
                    store(&shared, ino, &data, reply);
                });
            }
        }
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let host = lock(&self.shared);
        let Some(entry) = host.tree.get(ino) else {
            return reply.error(libc::ENOENT);
        };
        if !matches!(entry.node, Node::Dir(_)) {
            return reply.error(libc::ENOTDIR);
        }
        let mut list: Vec<(Ino, FileType, String)> = vec![
            (ino, FileType::Directory, ".".into()),
            (entry.parent, FileType::Directory, "..".into()),
        ];
        for (name, child) in host.tree.children(ino) {
            let kind = match host.tree.get(child).map(|e| &e.node) {
                Some(Node::Dir(_)) => FileType::Directory,
                Some(Node::Link(_)) => FileType::Symlink,
                _ => FileType::RegularFile,
            };
            list.push((child, kind, name));
        }
        let skip = usize::try_from(offset).unwrap_or(0);
        for (i, (child, kind, name)) in list.into_iter().enumerate().skip(skip) {
            let next = i64::try_from(i + 1).unwrap_or(i64::MAX);
            if reply.add(child, next, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn mkdir(
        &mut self,
        _req: &Request<'_>,
        _parent: u64,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(libc::EPERM);
    }

    fn mknod(
        &mut self,
        _req: &Request<'_>,
        _parent: u64,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(libc::EACCES);
    }

    /// sysfs directories have no create operation: `open(O_CREAT)` of a new name is EACCES.
    fn create(
        &mut self,
        _req: &Request<'_>,
        _parent: u64,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: fuser::ReplyCreate,
    ) {
        reply.error(libc::EACCES);
    }

    fn unlink(&mut self, _req: &Request<'_>, _parent: u64, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(libc::EPERM);
    }

    fn rmdir(&mut self, _req: &Request<'_>, _parent: u64, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(libc::EPERM);
    }

    fn symlink(
        &mut self,
        _req: &Request<'_>,
        _parent: u64,
        _link_name: &OsStr,
        _target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        reply.error(libc::EPERM);
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        _parent: u64,
        _name: &OsStr,
        _newparent: u64,
        _newname: &OsStr,
        _flags: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(libc::EPERM);
    }

    fn link(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        _newparent: u64,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(libc::EPERM);
    }
}
