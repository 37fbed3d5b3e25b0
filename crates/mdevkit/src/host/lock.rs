//! The inter-process lock that serialises every state-changing command (DIVERGENCES §8).
//!
//! An advisory `flock` on a file outside the definition directory. The holder writes its PID
//! into the file so that a waiter that times out can say who holds it.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot open lock file {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("timed out after {}s waiting for lock {}{}", waited.as_secs(), path.display(),
        holder.as_ref().map(|h| format!(" (held by process {h})")).unwrap_or_default())]
    Timeout {
        path: PathBuf,
        waited: Duration,
        holder: Option<String>,
    },
}

/// Held for as long as this value lives; the kernel releases the lock when the process
/// dies, so a crash never leaves it stuck.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
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
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(open_err)?;
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(open_err(e)),
        }
        if start.elapsed() >= timeout {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim().to_owned();
            return Err(LockError::Timeout {
                path: path.to_owned(),
                waited: start.elapsed(),
                holder: (!holder.is_empty()).then_some(holder),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    // Best effort: the PID is only a diagnostic for waiters.
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    Ok(LockGuard { _file: file })
}
