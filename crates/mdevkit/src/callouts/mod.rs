//! Running callout and notifier scripts around every state change (spec §6).
//!
//! Scripts are found in the callout directories (primary, then the deprecated one), in
//! sorted order. A *versioned* script that answers `get capabilities` is preferred and
//! cached per (parent, type) for the life of the process; otherwise each event searches
//! for the first script that does not answer exit code 2. Every script runs directly, as
//! a child of this process, so s390-tools' parent-PID lock holds across pre, action, post.

pub mod protocol;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{attrs_from_value, ConfigError};
use crate::host::process::{Exit, Output, Stdin};
use crate::host::Host;
use crate::names::{Attr, ParentName, TypeName};
pub use protocol::{Action, Event, State, Subject};
use protocol::{CapabilitiesReply, Supports, PROVIDES};

/// Default limit on one script's run time.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a callout step failed.
#[derive(Debug, thiserror::Error)]
pub enum CalloutError {
    #[error("callout script {} failed with exit status {code}", script.display())]
    Failed { script: PathBuf, code: i32 },
    #[error("callout script {} was killed by signal {signal}", script.display())]
    Signalled { script: PathBuf, signal: i32 },
    #[error("callout script {} did not finish within {} and was killed", script.display(), crate::error::seconds(*limit))]
    TimedOut { script: PathBuf, limit: Duration },
    #[error("cannot run callout script {}", script.display())]
    Spawn {
        script: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("callout script {} does not support action '{}'", script.display(), action.title())]
    UnsupportedAction { script: PathBuf, action: Action },
    #[error("callout script {} does not support event '{}'", script.display(), event.title())]
    UnsupportedEvent { script: PathBuf, event: Event },
    #[error("invalid JSON received from callout script {}", script.display())]
    BadJson {
        script: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid attributes received from callout script {}", script.display())]
    BadAttributes {
        script: PathBuf,
        #[source]
        source: ConfigError,
    },
    #[error("no callout script with version support found that supports live modify")]
    NoLiveScript,
}

/// A script chosen for a device, and what it declared it handles.
#[derive(Debug, Clone)]
struct Chosen {
    script: PathBuf,
    supports: Supports,
}

/// The callout machinery for one command invocation.
#[derive(Debug)]
pub struct Callouts {
    host: Host,
    timeout: Duration,
    /// Callout scripts in search order, listed once per process.
    scripts: RefCell<Option<Vec<PathBuf>>>,
    /// Notifier programs in run order, listed once per process.
    notifiers: RefCell<Option<Vec<PathBuf>>>,
    /// Versioned-script discovery results, including "none", per (parent, type).
    versioned: RefCell<HashMap<(ParentName, TypeName), Option<Chosen>>>,
    /// A legacy script that succeeded for a (parent, type) in this command, reused for
    /// that device's later events (another type may be handled by another script).
    legacy: RefCell<HashMap<(ParentName, TypeName), Chosen>>,
}

fn sorted_entries(host: &Host, dir: &Path) -> Vec<PathBuf> {
    if !host.is_dir(dir) {
        return Vec::new();
    }
    let mut v: Vec<PathBuf> = host
        .read_dir(dir)
        .map(|es| es.into_iter().map(|e| dir.join(e.name)).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Unknown names are accepted (a newer script may know more), but said once per kind.
fn warn_unknown(script: &Path, supports: &Supports) {
    if supports.actions.iter().any(|a| Action::parse(a).is_none()) {
        log::warn!(
            "Callout script {} provides unknown Action type",
            script.display()
        );
    }
    if supports.events.iter().any(|e| Event::parse(e).is_none()) {
        log::warn!(
            "Callout script {} provides unknown Event type",
            script.display()
        );
    }
}

impl Callouts {
    pub fn new(host: Host, timeout: Duration) -> Self {
        Callouts {
            host,
            timeout,
            scripts: RefCell::new(None),
            notifiers: RefCell::new(None),
            versioned: RefCell::new(HashMap::new()),
            legacy: RefCell::new(HashMap::new()),
        }
    }

    /// The entries of `<kind>/` in the primary, then the deprecated script directory,
    /// listed on first use and kept in `cache`.
    fn listed(&self, cache: &RefCell<Option<Vec<PathBuf>>>, kind: &str) -> Vec<PathBuf> {
        cache
            .borrow_mut()
            .get_or_insert_with(|| {
                let roots = self.host.roots();
                let mut v = sorted_entries(&self.host, &roots.scripts.join(kind));
                v.extend(sorted_entries(&self.host, &roots.legacy_scripts.join(kind)));
                v
            })
            .clone()
    }

    fn scripts(&self) -> Vec<PathBuf> {
        self.listed(&self.scripts, "callouts")
    }

    fn exec(&self, script: &Path, args: &[String], stdin: Stdin<'_>) -> std::io::Result<Output> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.host.run_program(script, &args, stdin, self.timeout)
    }

    /// The versioned script for this device's (parent, type), discovered once.
    fn versioned(&self, s: &Subject<'_>) -> Option<Chosen> {
        let key = (s.parent.clone(), s.mdev_type.clone());
        if let Some(hit) = self.versioned.borrow().get(&key) {
            return hit.clone();
        }
        let mut found = None;
        for script in self.scripts() {
            let args = protocol::argv(s, Event::Get, Action::Capabilities, State::None);
            let out = match self.exec(&script, &args, Stdin::Data(PROVIDES.as_bytes())) {
                Ok(o) => o,
                Err(e) => {
                    log::debug!("Skipping callout {}: {e}", script.display());
                    continue;
                }
            };
            match out.exit {
                Exit::Code(2) => continue,
                Exit::Signal(_) | Exit::TimedOut => {
                    log::warn!(
                        "callout script {} was terminated while probing capabilities",
                        script.display()
                    );
                    continue;
                }
                Exit::Code(_) => {}
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let Ok(reply) = serde_json::from_str::<CapabilitiesReply>(text.trim_end_matches('\0'))
            else {
                continue;
            };
            self.host.echo_stderr(&script, &out.stderr);
            warn_unknown(&script, &reply.supports);
            found = Some(Chosen {
                script,
                supports: reply.supports,
            });
            break;
        }
        self.versioned.borrow_mut().insert(key, found.clone());
        found
    }

    fn check(c: &Chosen, event: Event, action: Action) -> Result<(), CalloutError> {
        if !c.supports.has_action(action) {
            return Err(CalloutError::UnsupportedAction {
                script: c.script.clone(),
                action,
            });
        }
        if !c.supports.has_event(event) {
            return Err(CalloutError::UnsupportedEvent {
                script: c.script.clone(),
                event,
            });
        }
        Ok(())
    }

    fn outcome(&self, script: &Path, out: &Output) -> Result<(), CalloutError> {
        match out.exit {
            Exit::Code(0) => Ok(()),
            Exit::Code(code) => Err(CalloutError::Failed {
                script: script.to_owned(),
                code,
            }),
            Exit::Signal(signal) => Err(CalloutError::Signalled {
                script: script.to_owned(),
                signal,
            }),
            Exit::TimedOut => Err(CalloutError::TimedOut {
                script: script.to_owned(),
                limit: self.timeout,
            }),
        }
    }

    /// Runs one event; returns the script that handled it and its stdout.
    fn event(
        &self,
        s: &Subject<'_>,
        event: Event,
        action: Action,
        state: State,
        stdin: Stdin<'_>,
    ) -> Result<Option<(PathBuf, Vec<u8>)>, CalloutError> {
        let args = protocol::argv(s, event, action, state);
        let key = (s.parent.clone(), s.mdev_type.clone());
        let chosen = self
            .versioned(s)
            .or_else(|| self.legacy.borrow().get(&key).cloned());
        if let Some(c) = chosen {
            Self::check(&c, event, action)?;
            let out = self
                .exec(&c.script, &args, stdin)
                .map_err(|source| CalloutError::Spawn {
                    script: c.script.clone(),
                    source,
                })?;
            self.host.echo_stderr(&c.script, &out.stderr);
            self.outcome(&c.script, &out)?;
            return Ok(Some((c.script, out.stdout)));
        }
        for script in self.scripts() {
            let out = match self.exec(&script, &args, stdin) {
                Ok(o) => o,
                Err(e) => {
                    log::debug!("Skipping callout {}: {e}", script.display());
                    continue;
                }
            };
            if matches!(out.exit, Exit::Code(2) | Exit::Signal(_)) {
                continue;
            }
            self.host.echo_stderr(&script, &out.stderr);
            self.outcome(&script, &out)?;
            self.legacy.borrow_mut().insert(
                key,
                Chosen {
                    script: script.clone(),
                    supports: Supports::legacy(),
                },
            );
            return Ok(Some((script, out.stdout)));
        }
        Ok(None)
    }

    /// Runs every notifier with `-e notify`; their outcome is ignored by design.
    pub fn notify(&self, s: &Subject<'_>, action: Action, state: State) {
        let args = protocol::argv(s, Event::Notify, action, state);
        for n in self.listed(&self.notifiers, "notifiers") {
            if let Err(e) = self.exec(&n, &args, Stdin::Closed) {
                log::debug!("Skipping notifier {}: {e}", n.display());
            }
        }
    }

    /// The pre → primary → post → notify sequence of one action (spec §6.5).
    ///
    /// `json` is the device as callouts see it, computed before the primary step.
    pub fn invoke<T, E>(
        &self,
        s: &Subject<'_>,
        json: &str,
        action: Action,
        force: Force,
        primary: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, InvokeError<E>> {
        let stdin = Stdin::Data(json.as_bytes());
        if let Err(e) = self.event(s, Event::Pre, action, State::None, stdin) {
            match force {
                Force::No => {
                    self.notify(s, action, State::None);
                    return Err(InvokeError::Callout(e));
                }
                Force::Yes => log::warn!(
                    "Forcing operation '{action}' despite callout failure. Error was: {}",
                    crate::error::chain(&e)
                ),
            }
        }
        let result = primary();
        let state = if result.is_ok() {
            State::Success
        } else {
            State::Failure
        };
        if let Err(e) = self.event(s, Event::Post, action, state, stdin) {
            log::debug!("post callout failed: {}", crate::error::chain(&e));
        }
        self.notify(s, action, state);
        result.map_err(InvokeError::Primary)
    }

    /// `get attributes`: what a script reports as the active device's attributes.
    pub fn get_attributes(&self, s: &Subject<'_>) -> Result<Vec<Attr>, CalloutError> {
        let Some((script, out)) = self.event(
            s,
            Event::Get,
            Action::Attributes,
            State::None,
            Stdin::Closed,
        )?
        else {
            return Ok(Vec::new());
        };
        let text = String::from_utf8_lossy(&out);
        if text.is_empty() || text == "[{}]" {
            return Ok(Vec::new());
        }
        let value: serde_json::Value =
            serde_json::from_str(text.trim_end_matches('\0')).map_err(|source| {
                CalloutError::BadJson {
                    script: script.clone(),
                    source,
                }
            })?;
        attrs_from_value(&value).map_err(|source| CalloutError::BadAttributes { script, source })
    }

    /// The `live` event of `modify --live` (spec §6.7): versioned scripts only; exit 2 is
    /// a failure here. Notifies `modify`/`none` whatever the outcome.
    pub fn live(&self, s: &Subject<'_>, json: &str) -> Result<(), CalloutError> {
        let Some(c) = self.versioned(s) else {
            return Err(CalloutError::NoLiveScript);
        };
        Self::check(&c, Event::Live, Action::Modify)?;
        let args = protocol::argv(s, Event::Live, Action::Modify, State::None);
        let result = self
            .exec(&c.script, &args, Stdin::Data(json.as_bytes()))
            .map_err(|source| CalloutError::Spawn {
                script: c.script.clone(),
                source,
            })
            .and_then(|out| {
                self.host.echo_stderr(&c.script, &out.stderr);
                self.outcome(&c.script, &out)
            });
        self.notify(s, Action::Modify, State::None);
        result
    }
}

/// Whether a failing `pre` callout stops the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Force {
    #[default]
    No,
    Yes,
}

/// The failure of an [`Callouts::invoke`] sequence.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError<E> {
    #[error(transparent)]
    Callout(CalloutError),
    #[error(transparent)]
    Primary(E),
}
