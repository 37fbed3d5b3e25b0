//! The inter-process lock that serialises every state-changing command (DIVERGENCES §8).
//!
//! An advisory `flock` on a file outside the definition directory. `/run/lock` is often
//! world-writable and `MDEVCTL_LOCK_FILE` may name anything, so the path is not trusted:
//!
//! * It is opened with `O_NOFOLLOW` and created only with `O_EXCL`, so nothing is ever
//!   created, written or read through a symbolic link. A path that is a symbolic link, not
//!   a regular file (a directory, a device such as `/dev/zero`, a FIFO) or a file with
//!   more than one hard link is refused with an error that says which, naming the path.
//! * The file is never truncated. The holder's PID is a fixed-size record at offset 0
//!   (ten columns, space padded, and a newline), written with `pwrite` only into a file
//!   that is ours: one this process created, or one that holds nothing but such a record
//!   (or is empty). Anything else is left byte for byte as it was; the lock still works,
//!   only the "held by" diagnostic is lost. On release the record is blanked, still under
//!   the lock, so that a later waiter blocked by another program is not told that this
//!   finished process holds it.
//! * A waiter that times out reads at most one record's worth of bytes to name the holder,
//!   and names it only if that process is alive (a killed holder's PID is stale).
//!
//! Waiting is event-driven, never a sleep loop: a helper thread blocks in `flock` on a
//! second descriptor of the same open file while the caller waits on a channel with a
//! timeout. The lock belongs to the open file, not the descriptor, so when the helper gets
//! it the caller holds it too. If the caller gave up first, the helper's send fails (or its
//! message is dropped with the channel) and its descriptor is closed with it; that was the
//! last descriptor of the open file, so the kernel releases the lock at once and a
//! long-running process never keeps a lock it stopped waiting for.

use std::fmt;
use std::fs::{self, File, TryLockError};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// The PID record: ten columns (any `u32` fits), space padded, then a newline.
const RECORD_LEN: usize = 11;

/// Why a lock path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Symlink,
    Directory,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    /// A regular file with this many names: writing it would change another file too.
    HardLinks(u64),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Symlink => f.write_str("it is a symbolic link"),
            Refusal::Directory => f.write_str("it is a directory"),
            Refusal::Fifo => f.write_str("it is a FIFO"),
            Refusal::Socket => f.write_str("it is a socket"),
            Refusal::CharDevice => f.write_str("it is a character device"),
            Refusal::BlockDevice => f.write_str("it is a block device"),
            Refusal::HardLinks(n) => write!(f, "it has {n} hard links"),
        }
    }
}

impl Refusal {
    /// What is wrong with a file of this type and link count, if anything.
    fn of(meta: &fs::Metadata) -> Option<Refusal> {
        let t = meta.file_type();
        if t.is_symlink() {
            Some(Refusal::Symlink)
        } else if t.is_dir() {
            Some(Refusal::Directory)
        } else if t.is_fifo() {
            Some(Refusal::Fifo)
        } else if t.is_socket() {
            Some(Refusal::Socket)
        } else if t.is_char_device() {
            Some(Refusal::CharDevice)
        } else if t.is_block_device() {
            Some(Refusal::BlockDevice)
        } else if meta.nlink() > 1 {
            Some(Refusal::HardLinks(meta.nlink()))
        } else {
            None
        }
    }
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot open lock file {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("refusing lock file {}: {reason}", path.display())]
    Refused { path: PathBuf, reason: Refusal },
    #[error("cannot wait for lock {}", path.display())]
    Wait {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("timed out after {} waiting for lock {}{}", crate::error::seconds(*waited), path.display(),
        holder.map(|h| format!(" (held by process {h})")).unwrap_or_default())]
    Timeout {
        path: PathBuf,
        waited: Duration,
        holder: Option<u32>,
    },
}

/// Held for as long as this value lives; the kernel releases the lock when the process
/// dies, so a crash never leaves it stuck.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
    /// Whether the PID record is ours to write (and so to blank on release).
    record: bool,
}

/// Takes the lock at `path`, waiting at most `timeout`.
pub fn acquire(path: &Path, timeout: Duration) -> Result<LockGuard, LockError> {
    let open_err = |source| LockError::Open {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(open_err)?;
    }
    let (file, created) = open(path)?;
    wait(&file, path, timeout)?;
    // Under the lock now: no other mdevkit writes the record while we look at it.
    let record = created || holds_only_a_record(&file);
    if record {
        // Best effort: the PID is only a diagnostic for waiters.
        let _ = file.write_all_at(&record_bytes(Some(std::process::id())), 0);
    }
    Ok(LockGuard { file, record })
}

impl Drop for LockGuard {
    /// Blanks the PID while still holding the lock (see the module documentation).
    fn drop(&mut self) {
        if self.record {
            let _ = self.file.write_all_at(&record_bytes(None), 0);
        }
    }
}

/// Opens the lock file without following a link; creates it (exclusively) when missing.
/// Returns the file and whether this call created it.
fn open(path: &Path) -> Result<(File, bool), LockError> {
    let open_err = |e: Errno| LockError::Open {
        path: path.to_owned(),
        source: e.into(),
    };
    // O_NONBLOCK: opening a FIFO planted at the path must not hang; it has no effect on
    // the regular file we accept, nor on `flock`.
    let existing = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let create = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    // Another process may create or remove the file between our two opens; a few rounds
    // settle it, and a path that keeps flipping is reported as it last failed.
    let mut last = Errno::NOENT;
    for _ in 0..4 {
        match rustix::fs::open(path, existing, Mode::empty()) {
            Ok(fd) => {
                let file = File::from(fd);
                let meta = file.metadata().map_err(|source| LockError::Open {
                    path: path.to_owned(),
                    source,
                })?;
                return match Refusal::of(&meta) {
                    Some(reason) => Err(LockError::Refused {
                        path: path.to_owned(),
                        reason,
                    }),
                    None => Ok((file, false)),
                };
            }
            Err(Errno::NOENT) => {}
            // ELOOP: the last component is a symbolic link (dangling or not); EISDIR: a
            // directory; ENXIO: a socket. Say which from `lstat`.
            Err(e @ (Errno::LOOP | Errno::ISDIR | Errno::NXIO)) => {
                return Err(
                    match fs::symlink_metadata(path)
                        .ok()
                        .as_ref()
                        .and_then(Refusal::of)
                    {
                        Some(reason) => LockError::Refused {
                            path: path.to_owned(),
                            reason,
                        },
                        None => open_err(e),
                    },
                );
            }
            Err(e) => return Err(open_err(e)),
        }
        match rustix::fs::open(path, create, Mode::from_raw_mode(0o644)) {
            Ok(fd) => return Ok((File::from(fd), true)),
            // Created by someone else meanwhile, or a dangling symlink: look again.
            Err(e @ Errno::EXIST) => last = e,
            Err(e) => return Err(open_err(e)),
        }
    }
    Err(open_err(last))
}

/// Takes the lock on `file`, waiting at most `timeout` without polling.
fn wait(file: &File, path: &Path, timeout: Duration) -> Result<(), LockError> {
    let open_err = |source| LockError::Open {
        path: path.to_owned(),
        source,
    };
    match file.try_lock() {
        Ok(()) => return Ok(()),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(e)) => return Err(open_err(e)),
    }
    let waiter = file.try_clone().map_err(open_err)?;
    let (tx, rx) = mpsc::sync_channel(1);
    thread::Builder::new()
        .name("mdevkit-lock".to_owned())
        .spawn(move || {
            // If the caller gave up, this send fails or its message is dropped with the
            // channel; either way `waiter` is closed and the lock released at once.
            let _ = tx.send(waiter.lock().map(|()| waiter));
        })
        .map_err(|source| LockError::Wait {
            path: path.to_owned(),
            source,
        })?;
    match rx.recv_timeout(timeout) {
        // Our copy may go: the lock belongs to the open file, which `file` keeps open.
        Ok(Ok(_waiter)) => Ok(()),
        Ok(Err(e)) => Err(open_err(e)),
        Err(RecvTimeoutError::Timeout) => Err(LockError::Timeout {
            path: path.to_owned(),
            waited: timeout,
            holder: live_holder(file),
        }),
        Err(RecvTimeoutError::Disconnected) => Err(LockError::Wait {
            path: path.to_owned(),
            source: io::Error::other("the waiting thread ended without an answer"),
        }),
    }
}

/// The PID in the record, if it names a live process. Reads one record's worth at most,
/// whatever the file holds.
fn live_holder(file: &File) -> Option<u32> {
    let mut buf = [0u8; RECORD_LEN];
    let n = file.read_at(&mut buf, 0).ok()?;
    let pid: u32 = std::str::from_utf8(buf.get(..n)?)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Path::new("/proc")
        .join(pid.to_string())
        .exists()
        .then_some(pid)
}

/// Does the file hold nothing but a PID record (or nothing at all)? Earlier versions
/// wrote a bare PID and truncated on release; those files count too.
fn holds_only_a_record(file: &File) -> bool {
    if !file.metadata().is_ok_and(|m| m.len() <= RECORD_LEN as u64) {
        return false;
    }
    let mut buf = [0u8; RECORD_LEN + 1];
    match file.read_at(&mut buf, 0) {
        Ok(n) if n <= RECORD_LEN => buf.get(..n).is_some_and(|b| {
            b.iter()
                .all(|c| c.is_ascii_digit() || *c == b' ' || *c == b'\n')
        }),
        _ => false,
    }
}

/// The record for `pid`, or a blank one.
fn record_bytes(pid: Option<u32>) -> Vec<u8> {
    let text = pid.map(|p| p.to_string()).unwrap_or_default();
    format!("{text:<width$}\n", width = RECORD_LEN - 1).into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn record_is_fixed_size_for_any_pid() {
        assert_eq!(record_bytes(Some(1)), b"1         \n");
        assert_eq!(record_bytes(Some(u32::MAX)), b"4294967295\n");
        assert_eq!(record_bytes(None), b"          \n");
    }

    #[test]
    fn abandoned_wait_releases_the_lock_as_soon_as_it_gets_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mdevctl.lock");
        let holder = File::create(&path).unwrap();
        holder.lock().unwrap();
        let err = acquire(&path, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, LockError::Timeout { .. }), "{err:?}");
        // The abandoned helper thread is still blocked in flock; once the holder lets go
        // it gets the lock and must drop it again, so a third party gets it too.
        holder.unlock().unwrap();
        let (tx, rx) = mpsc::channel();
        let third = path.clone();
        thread::spawn(move || {
            let f = File::open(&third).unwrap();
            f.lock().unwrap();
            tx.send(()).unwrap();
        });
        // Generous: only a hang (a leaked lock) fails this.
        rx.recv_timeout(Duration::from_secs(20))
            .expect("the abandoned waiter kept the lock");
    }
}
