//! Notices changes of the desired-state file with inotify on its directory: a ConfigMap
//! volume replaces its files by renaming a new `..data` symlink into place, which is a
//! `moved_to` in the directory, never a write to the file itself; an edited file is a
//! `close_write`, an editor's atomic save a `moved_to`.

use std::path::{Path, PathBuf};

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use tokio::sync::mpsc;

/// The directory to watch could not be watched.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {} for changes of the desired-state file", dir.display())]
pub struct WatchError {
    dir: PathBuf,
    #[source]
    source: std::io::Error,
}

/// Starts a thread that sends `()` after each batch of changes in the directory holding
/// `file`, until the receiver is dropped. The receiver decides from the file's bytes
/// whether it changed.
pub fn watch(file: &Path) -> Result<mpsc::Receiver<()>, WatchError> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let error = |source: rustix::io::Errno| WatchError {
        dir: dir.clone(),
        source: source.into(),
    };
    let fd = inotify::init(CreateFlags::CLOEXEC).map_err(error)?;
    inotify::add_watch(
        &fd,
        &dir,
        WatchFlags::CLOSE_WRITE
            | WatchFlags::MOVED_TO
            | WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM,
    )
    .map_err(error)?;
    let (tx, rx) = mpsc::channel(1);
    std::thread::Builder::new()
        .name("config-watch".into())
        .spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                // Blocks until the directory changes; the events' names do not matter.
                match rustix::io::read(&fd, &mut buf) {
                    Ok(_) => {}
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => {
                        log::error!("reading inotify events stopped: {e}");
                        return;
                    }
                }
                // A full channel already carries a wake-up; only a closed one ends this.
                if let Err(mpsc::error::TrySendError::Closed(())) = tx.try_send(()) {
                    return;
                }
            }
        })
        .map_err(|source| WatchError {
            dir: dir.clone(),
            source,
        })?;
    Ok(rx)
}
