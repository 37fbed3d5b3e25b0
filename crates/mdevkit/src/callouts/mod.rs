//! Running callout and notifier scripts around every state change (spec §6).
//!
//! Scripts are found in the callout directories (primary, then the deprecated one), in
//! sorted order. A *versioned* script that answers `get capabilities` is preferred and
//! cached per (parent, type) for the life of the process; otherwise each event searches
//! for the first script that does not answer exit code 2. Every script runs directly, as
//! a child of this process, so s390-tools' parent-PID lock holds across pre, action, post.

pub mod protocol;
pub mod reply;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use crate::config::ConfigError;
use crate::host::process::{Exit, Output, Stdin};
use crate::host::Host;
use crate::names::{Attr, ParentName, TypeName};
pub use protocol::{Action, Event, State, Subject};
use protocol::{Supports, PROVIDES};

/// Default limit on one script's run time: s390-tools' `ap-check` alone may wait up to
/// 99 s for its own configuration lock.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

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
    scripts: OnceLock<Vec<PathBuf>>,
    /// Notifier programs in run order, listed once per process.
    notifiers: OnceLock<Vec<PathBuf>>,
    /// Versioned-script discovery results, including "none", per (parent, type).
    versioned: Mutex<HashMap<(ParentName, TypeName), Option<Chosen>>>,
    /// A legacy script that succeeded for a (parent, type) in this command, reused for
    /// that device's later events (another type may be handled by another script).
    legacy: Mutex<HashMap<(ParentName, TypeName), Chosen>>,
}

/// Where scripts' stderr goes: straight to ours, or kept to be echoed later in a fixed
/// order (when scripts for several devices run at once).
#[derive(Debug)]
enum Echo {
    Now,
    Later(Vec<(PathBuf, Vec<u8>)>),
}

impl Echo {
    fn echo(&mut self, host: &Host, script: &Path, stderr: Vec<u8>) {
        match self {
            Echo::Now => host.echo_stderr(script, &stderr),
            Echo::Later(kept) if !stderr.is_empty() => kept.push((script.to_owned(), stderr)),
            Echo::Later(_) => {}
        }
    }

    fn flush(self, host: &Host) {
        if let Echo::Later(kept) = self {
            for (script, stderr) in kept {
                host.echo_stderr(&script, &stderr);
            }
        }
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
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
            scripts: OnceLock::new(),
            notifiers: OnceLock::new(),
            versioned: Mutex::new(HashMap::new()),
            legacy: Mutex::new(HashMap::new()),
        }
    }

    /// The entries of `<kind>/` in the primary, then the deprecated script directory,
    /// listed on first use and kept in `cache`.
    fn listed<'a>(&self, cache: &'a OnceLock<Vec<PathBuf>>, kind: &str) -> &'a [PathBuf] {
        cache.get_or_init(|| {
            let roots = self.host.roots();
            let mut v = sorted_entries(&self.host, &roots.scripts.join(kind));
            v.extend(sorted_entries(&self.host, &roots.legacy_scripts.join(kind)));
            v
        })
    }

    fn scripts(&self) -> &[PathBuf] {
        self.listed(&self.scripts, "callouts")
    }

    fn exec(&self, script: &Path, args: &[String], stdin: Stdin<'_>) -> std::io::Result<Output> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.host.run_program(script, &args, stdin, self.timeout)
    }

    /// The versioned script for this device's (parent, type), discovered once.
    fn versioned(&self, s: &Subject<'_>, echo: &mut Echo) -> Option<Chosen> {
        let key = (s.parent.clone(), s.mdev_type.clone());
        if let Some(hit) = locked(&self.versioned).get(&key) {
            return hit.clone();
        }
        let mut found = None;
        for script in self.scripts() {
            let args = protocol::argv(s, Event::Get, Action::Capabilities, State::None);
            let out = match self.exec(script, &args, Stdin::Data(PROVIDES.as_bytes())) {
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
            let Some(supports) = reply::capabilities(&out.stdout) else {
                continue;
            };
            echo.echo(&self.host, script, out.stderr);
            warn_unknown(script, &supports);
            found = Some(Chosen {
                script: script.clone(),
                supports,
            });
            break;
        }
        locked(&self.versioned).insert(key, found.clone());
        found
    }

    /// The script already chosen for this device's (parent, type), discovering a
    /// versioned one if that was not tried yet.
    fn chosen(&self, s: &Subject<'_>, echo: &mut Echo) -> Option<Chosen> {
        self.versioned(s, echo).or_else(|| {
            locked(&self.legacy)
                .get(&(s.parent.clone(), s.mdev_type.clone()))
                .cloned()
        })
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

    /// Runs one event with the script chosen for it; returns its stdout.
    fn event_with(
        &self,
        c: &Chosen,
        args: &[String],
        (event, action): (Event, Action),
        stdin: Stdin<'_>,
        echo: &mut Echo,
    ) -> Result<Vec<u8>, CalloutError> {
        Self::check(c, event, action)?;
        let mut out = self
            .exec(&c.script, args, stdin)
            .map_err(|source| CalloutError::Spawn {
                script: c.script.clone(),
                source,
            })?;
        echo.echo(&self.host, &c.script, std::mem::take(&mut out.stderr));
        self.outcome(&c.script, &out)?;
        Ok(out.stdout)
    }

    /// Runs one event; returns the script that handled it and its stdout.
    fn event(
        &self,
        s: &Subject<'_>,
        (event, action, state): (Event, Action, State),
        stdin: Stdin<'_>,
        echo: &mut Echo,
    ) -> Result<Option<(PathBuf, Vec<u8>)>, CalloutError> {
        let args = protocol::argv(s, event, action, state);
        if let Some(c) = self.chosen(s, echo) {
            let out = self.event_with(&c, &args, (event, action), stdin, echo)?;
            return Ok(Some((c.script, out)));
        }
        let key = (s.parent.clone(), s.mdev_type.clone());
        for script in self.scripts() {
            let mut out = match self.exec(script, &args, stdin) {
                Ok(o) => o,
                Err(e) => {
                    log::debug!("Skipping callout {}: {e}", script.display());
                    continue;
                }
            };
            if matches!(out.exit, Exit::Code(2) | Exit::Signal(_)) {
                continue;
            }
            echo.echo(&self.host, script, std::mem::take(&mut out.stderr));
            self.outcome(script, &out)?;
            locked(&self.legacy).insert(
                key,
                Chosen {
                    script: script.clone(),
                    supports: Supports::legacy(),
                },
            );
            return Ok(Some((script.clone(), out.stdout)));
        }
        Ok(None)
    }

    /// Runs every notifier with `-e notify`; their outcome is ignored by design.
    pub fn notify(&self, s: &Subject<'_>, action: Action, state: State) {
        let args = protocol::argv(s, Event::Notify, action, state);
        for n in self.listed(&self.notifiers, "notifiers") {
            if let Err(e) = self.exec(n, &args, Stdin::Closed) {
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
        if let Err(e) = self.event(s, (Event::Pre, action, State::None), stdin, &mut Echo::Now) {
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
        if let Err(e) = self.event(s, (Event::Post, action, state), stdin, &mut Echo::Now) {
            log::debug!("post callout failed: {}", crate::error::chain(&e));
        }
        self.notify(s, action, state);
        result.map_err(InvokeError::Primary)
    }

    /// `get attributes`: what a script reports as the active device's attributes.
    pub fn get_attributes(&self, s: &Subject<'_>) -> Result<Vec<Attr>, CalloutError> {
        self.attributes_echoing(s, &mut Echo::Now)
    }

    fn attributes_echoing(
        &self,
        s: &Subject<'_>,
        echo: &mut Echo,
    ) -> Result<Vec<Attr>, CalloutError> {
        let stdin = Stdin::Closed;
        match self.event(s, GET_ATTRIBUTES, stdin, echo)? {
            Some((script, out)) => reply::attributes(&script, &out),
            None => Ok(Vec::new()),
        }
    }

    /// [`Self::get_attributes`] of many devices, results in their order: the same calls,
    /// answers and echoed stderr as one by one, but the calls to an already chosen script
    /// run concurrently, at most one per CPU.
    ///
    /// What could change the outcome of a later device is done one by one first, in
    /// order: discovering each (parent, type)'s versioned script, and, where there is
    /// none, the search through legacy scripts until one answers (which then serves the
    /// rest of that (parent, type)).
    pub fn get_attributes_all(
        &self,
        subjects: &[Subject<'_>],
    ) -> Vec<Result<Vec<Attr>, CalloutError>> {
        type Done = (Result<Vec<Attr>, CalloutError>, Echo);
        let mut done: Vec<Option<Done>> = Vec::with_capacity(subjects.len());
        // Devices left for concurrent calls: (index, subject, chosen script, echo so far).
        let mut later: Vec<(usize, Chosen, Echo)> = Vec::new();
        for (i, s) in subjects.iter().enumerate() {
            let mut echo = Echo::Later(Vec::new());
            match self.chosen(s, &mut echo) {
                Some(c) => {
                    later.push((i, c, echo));
                    done.push(None);
                }
                None => {
                    let r = self.attributes_echoing(s, &mut echo);
                    done.push(Some((r, echo)));
                }
            }
        }
        let next = AtomicUsize::new(0);
        let slots: Vec<Mutex<Option<(usize, Chosen, Echo)>>> =
            later.into_iter().map(|t| Mutex::new(Some(t))).collect();
        let results: Mutex<Vec<(usize, Done)>> = Mutex::new(Vec::with_capacity(slots.len()));
        let work = || {
            while let Some(slot) = slots.get(next.fetch_add(1, Ordering::Relaxed)) {
                let Some((i, c, mut echo)) = locked(slot).take() else {
                    continue;
                };
                let Some(s) = subjects.get(i) else { continue };
                let args = protocol::argv(s, GET_ATTRIBUTES.0, GET_ATTRIBUTES.1, GET_ATTRIBUTES.2);
                let r = self
                    .event_with(
                        &c,
                        &args,
                        (GET_ATTRIBUTES.0, GET_ATTRIBUTES.1),
                        Stdin::Closed,
                        &mut echo,
                    )
                    .and_then(|out| reply::attributes(&c.script, &out));
                locked(&results).push((i, (r, echo)));
            }
        };
        let workers = std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .min(slots.len());
        std::thread::scope(|scope| {
            // This thread is one of the workers; one that cannot be started is not needed.
            for _ in 1..workers {
                let _ = std::thread::Builder::new().spawn_scoped(scope, work);
            }
            work();
        });
        for (i, r) in results.into_inner().unwrap_or_else(PoisonError::into_inner) {
            if let Some(d) = done.get_mut(i) {
                *d = Some(r);
            }
        }
        done.into_iter()
            .map(|d| {
                let (r, echo) = d.unwrap_or_else(|| (Ok(Vec::new()), Echo::Now));
                echo.flush(&self.host);
                r
            })
            .collect()
    }

    /// The `live` event of `modify --live` (spec §6.7): versioned scripts only; exit 2 is
    /// a failure here. Notifies `modify`/`none` whatever the outcome.
    pub fn live(&self, s: &Subject<'_>, json: &str) -> Result<(), CalloutError> {
        let Some(c) = self.versioned(s, &mut Echo::Now) else {
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

/// The `get attributes` event.
const GET_ATTRIBUTES: (Event, Action, State) = (Event::Get, Action::Attributes, State::None);

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
