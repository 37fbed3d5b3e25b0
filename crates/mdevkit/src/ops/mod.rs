//! One module per `mdevctl` command; each takes checked options and a [`Context`].

pub mod autostart;
pub mod define;
pub mod error;
pub mod list;
pub mod modify;
pub mod start;
pub mod stop;
pub mod types;
pub mod undefine;

use std::path::Path;
use std::time::Duration;

pub use error::OpError;

use crate::callouts::{Callouts, Subject};
use crate::config::{DeviceConfig, JsonStyle};
use crate::host::lock::{self, LockGuard};
use crate::host::Host;
use crate::names::{ParentName, Uuid};

/// Output format of the listing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Tunables that are not part of the command line.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long one callout script may run before it is killed.
    pub callout_timeout: Duration,
    /// How long a state-changing command waits for the inter-process lock.
    pub lock_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            callout_timeout: crate::callouts::DEFAULT_TIMEOUT,
            lock_timeout: Duration::from_secs(60),
        }
    }
}

/// Everything a command needs from its environment.
#[derive(Debug)]
pub struct Context {
    pub host: Host,
    pub callouts: Callouts,
    pub settings: Settings,
    /// Set while a [`HeldLock`] holds the lock for a series of operations.
    lock_held: std::cell::Cell<bool>,
}

/// The inter-process lock held across several operations (`mdevkit apply`); each
/// operation's own locking is then a no-op instead of a wait on itself.
#[derive(Debug)]
pub struct HeldLock<'a> {
    ctx: &'a Context,
    _guard: LockGuard,
}

impl Drop for HeldLock<'_> {
    fn drop(&mut self) {
        self.ctx.lock_held.set(false);
    }
}

impl Context {
    pub fn new(host: Host, settings: Settings) -> Self {
        Context {
            callouts: Callouts::new(host.clone(), settings.callout_timeout),
            host,
            settings,
            lock_held: std::cell::Cell::new(false),
        }
    }

    /// Takes the lock that serialises state changes; held until the guard drops. Nothing
    /// to take while a [`HeldLock`] of this context holds it already.
    pub(crate) fn lock(&self) -> Result<Option<LockGuard>, OpError> {
        if self.lock_held.get() {
            return Ok(None);
        }
        Ok(Some(lock::acquire(
            &self.host.roots().lock_file,
            self.settings.lock_timeout,
        )?))
    }

    /// Takes the lock for a series of operations, until the returned value drops.
    pub fn hold_lock(&self) -> Result<HeldLock<'_>, OpError> {
        let guard = lock::acquire(&self.host.roots().lock_file, self.settings.lock_timeout)?;
        self.lock_held.set(true);
        Ok(HeldLock {
            ctx: self,
            _guard: guard,
        })
    }

    /// Commands that write definitions refuse to run without the definition directory:
    /// its absence means a wrong root or a broken installation, not "create it".
    pub(crate) fn require_config_dir(&self) -> Result<(), OpError> {
        let path = &self.host.roots().config;
        if self.host.is_dir(path) {
            Ok(())
        } else {
            Err(OpError::MissingConfigDir { path: path.clone() })
        }
    }
}

/// The device as callouts see it.
pub(crate) fn subject<'a>(
    uuid: &'a Uuid,
    parent: &'a ParentName,
    c: &'a DeviceConfig,
) -> Subject<'a> {
    Subject {
        uuid,
        parent,
        mdev_type: &c.mdev_type,
    }
}

pub(crate) fn compact(c: &DeviceConfig) -> String {
    c.to_json(JsonStyle::Compact)
}

/// Reads and parses a `--jsonfile` (which may be `/dev/stdin`).
pub(crate) fn read_jsonfile(host: &Host, path: &Path) -> Result<DeviceConfig, OpError> {
    parse_jsonfile(path, &read_jsonfile_bytes(host, path)?)
}

/// The most a `--jsonfile` may hold: a definition is a few hundred bytes.
const MAX_JSONFILE: u64 = 1 << 20;

/// Reads a `--jsonfile` without parsing it (define checks other things in between).
pub(crate) fn read_jsonfile_bytes(host: &Host, path: &Path) -> Result<Vec<u8>, OpError> {
    host.read_bounded(path, MAX_JSONFILE)
        .map_err(|source| OpError::ReadJson {
            path: path.to_owned(),
            source,
        })
}

pub(crate) fn parse_jsonfile(path: &Path, bytes: &[u8]) -> Result<DeviceConfig, OpError> {
    DeviceConfig::from_slice(bytes).map_err(|source| OpError::BadJson {
        path: path.to_owned(),
        source,
    })
}

/// Logs each skipped sysfs entry as one warning line.
pub(crate) fn warn_skipped(skipped: &[crate::sysfs::Skipped]) {
    for s in skipped {
        log::warn!("Skipping {}: {}", s.path.display(), s.reason);
    }
}

/// The definitions of one UUID (optionally on one parent). A malformed definition of that
/// UUID is an error naming the file, since the command targets exactly that device.
pub(crate) fn definitions_of(
    ctx: &Context,
    uuid: &Uuid,
    parent: Option<&ParentName>,
) -> Result<Vec<crate::store::Definition>, OpError> {
    let scan = crate::store::scan(
        &ctx.host,
        &crate::store::Selection {
            uuid: Some(uuid),
            parent,
        },
    );
    let crate::store::Scan { defs, broken } = scan;
    if let Some(b) = broken.into_iter().next() {
        return Err(b.error.into());
    }
    Ok(defs
        .into_values()
        .flat_map(std::collections::BTreeMap::into_values)
        .collect())
}
