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
    /// How long one callout script may run before it is stopped.
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

/// A setting from the environment that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{var}='{}' is not a number of seconds (a decimal, 0 or more)", value.escape_debug())]
    NotSeconds { var: &'static str, value: String },
    #[error("{var}='{}' is more seconds than a duration can hold", value.escape_debug())]
    TooLarge { var: &'static str, value: String },
}

/// The variable holding [`Settings::callout_timeout`], in seconds.
pub const CALLOUT_TIMEOUT_VAR: &str = "MDEVCTL_CALLOUT_TIMEOUT";
/// The variable holding [`Settings::lock_timeout`], in seconds.
pub const LOCK_TIMEOUT_VAR: &str = "MDEVCTL_LOCK_TIMEOUT";

/// A number of seconds as the variable `var` spells it (`None`: unset).
fn seconds(
    var: &'static str,
    raw: Option<std::ffi::OsString>,
    default: Duration,
) -> Result<Duration, SettingsError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    let value = raw.to_string_lossy().into_owned();
    let secs = raw
        .to_str()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0);
    let Some(secs) = secs else {
        return Err(SettingsError::NotSeconds { var, value });
    };
    Duration::try_from_secs_f64(secs).map_err(|_| SettingsError::TooLarge { var, value })
}

impl Settings {
    /// The settings from environment variables read through `get`; unset ones take the
    /// defaults.
    pub fn from_env(
        get: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Settings, SettingsError> {
        let d = Settings::default();
        Ok(Settings {
            callout_timeout: seconds(
                CALLOUT_TIMEOUT_VAR,
                get(CALLOUT_TIMEOUT_VAR),
                d.callout_timeout,
            )?,
            lock_timeout: seconds(LOCK_TIMEOUT_VAR, get(LOCK_TIMEOUT_VAR), d.lock_timeout)?,
        })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::ffi::OsString;

    use proptest::prelude::*;

    use super::*;

    fn with(var: &str, value: &str) -> Result<Settings, SettingsError> {
        Settings::from_env(|k| (k == var).then(|| OsString::from(value)))
    }

    #[test]
    fn unset_variables_take_the_defaults() {
        let s = Settings::from_env(|_| None).unwrap();
        assert_eq!(s.callout_timeout, Duration::from_secs(300));
        assert_eq!(s.lock_timeout, Duration::from_secs(60));
    }

    #[test]
    fn seconds_may_be_fractional_and_padded() {
        let s = with(CALLOUT_TIMEOUT_VAR, " 0.5\n").unwrap();
        assert_eq!(s.callout_timeout, Duration::from_millis(500));
        let s = with(LOCK_TIMEOUT_VAR, "7").unwrap();
        assert_eq!(s.lock_timeout, Duration::from_secs(7));
        // Large but representable: accepted (the runner treats it as "no deadline").
        let s = with(CALLOUT_TIMEOUT_VAR, "1e18").unwrap();
        assert_eq!(
            s.callout_timeout,
            Duration::from_secs(1_000_000_000_000_000_000)
        );
    }

    #[test]
    fn too_large_seconds_are_an_error_naming_the_variable() {
        for var in [CALLOUT_TIMEOUT_VAR, LOCK_TIMEOUT_VAR] {
            for value in ["1e99", "18446744073709551616", "1.8446744073709552e19"] {
                let e = with(var, value).unwrap_err();
                assert!(matches!(e, SettingsError::TooLarge { .. }), "{value}: {e}");
                assert_eq!(
                    e.to_string(),
                    format!("{var}='{value}' is more seconds than a duration can hold")
                );
            }
        }
    }

    #[test]
    fn negative_nan_infinite_and_words_are_not_seconds() {
        for var in [CALLOUT_TIMEOUT_VAR, LOCK_TIMEOUT_VAR] {
            for value in [
                "-1", "-0.5", "NaN", "nan", "inf", "-inf", "infinity", "soon", "",
            ] {
                let e = with(var, value).unwrap_err();
                assert!(
                    matches!(e, SettingsError::NotSeconds { .. }),
                    "{value}: {e}"
                );
                assert_eq!(
                    e.to_string(),
                    format!("{var}='{value}' is not a number of seconds (a decimal, 0 or more)")
                );
            }
        }
    }

    #[test]
    fn non_utf8_value_is_not_seconds() {
        use std::os::unix::ffi::OsStringExt;
        let e = Settings::from_env(|k| {
            (k == LOCK_TIMEOUT_VAR).then(|| OsString::from_vec(vec![b'1', 0xff]))
        })
        .unwrap_err();
        assert!(
            matches!(
                e,
                SettingsError::NotSeconds {
                    var: LOCK_TIMEOUT_VAR,
                    ..
                }
            ),
            "{e}"
        );
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config(512))]

        /// Whatever the environment holds: no panic; an error is one line naming the
        /// variable; an accepted value is the finite, non-negative number it spells.
        #[test]
        fn any_timeout_value_is_a_duration_or_a_one_line_error(
            value in prop_oneof![
                any::<String>(),
                "[-+]?[0-9]{0,25}(\\.[0-9]{0,5})?([eE][-+]?[0-9]{1,3})?",
                any::<f64>().prop_map(|f| f.to_string()),
            ],
            lock in any::<bool>(),
        ) {
            let var = if lock { LOCK_TIMEOUT_VAR } else { CALLOUT_TIMEOUT_VAR };
            match with(var, &value) {
                Ok(s) => {
                    let d = if lock { s.lock_timeout } else { s.callout_timeout };
                    let f: f64 = value.trim().parse().unwrap();
                    prop_assert!(f >= 0.0 && f.is_finite());
                    prop_assert_eq!(d, Duration::from_secs_f64(f));
                }
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(!text.contains('\n') && !text.contains('\r'), "{}", text);
                    prop_assert!(text.starts_with(var), "{}", text);
                }
            }
        }
    }
}
