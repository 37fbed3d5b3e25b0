//! One module per `mdevctl` command; each takes checked options and a [`Context`].

pub mod list;
pub mod types;

use crate::host::Host;

/// Output format of the listing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Everything a command needs from its environment.
#[derive(Debug)]
pub struct Context {
    pub host: Host,
}

impl Context {
    pub fn new(host: Host) -> Self {
        Context { host }
    }
}

/// Logs each skipped sysfs entry as one warning line.
pub(crate) fn warn_skipped(skipped: &[crate::sysfs::Skipped]) {
    for s in skipped {
        log::warn!("Skipping {}: {}", s.path.display(), s.reason);
    }
}
