//! One run of `mdevkit plan/apply/assert/export`: reads the file, the machine id and the
//! state file, asks the backends what the host has, plans, and executes the plan.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::file::{self, DesiredFile, FileError, ProfileError};
use super::identity::{MachineId, MachineIdError};
use super::plan::{self, Plan, PlanError, PlanInput, PlanOptions};
use super::state::{self, Owned, Paths, StateError};
use super::vgpus::VgpuRecord;
use crate::backend::mdev::MdevBackend;
use crate::backend::nvidia_vf::NvidiaVfBackend;
use crate::backend::{Backend, BackendError, PlanStep};
use crate::host::uevent::UeventWatcher;
use crate::observed::Observed;
use crate::ops::{Context, OpError};

/// Why a desired-state command could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum DesiredError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("cannot read the machine id {}", path.display())]
    MachineIdRead {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("bad machine id in {}", path.display())]
    MachineId {
        path: PathBuf,
        #[source]
        source: MachineIdError,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("still missing after waiting {}:\n{source}", crate::error::seconds(*waited))]
    StillMissing { waited: Duration, source: PlanError },
    #[error("cannot listen for kernel uevents to wait on")]
    Uevents(#[source] io::Error),
    #[error("cannot take the lock to write the state file")]
    Lock(#[source] OpError),
}

/// The most a desired-state file may hold.
const MAX_FILE: u64 = 4 << 20;

/// Where the desired state comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    Path(PathBuf),
}

/// Reads and checks a desired-state file.
pub fn load(ctx: &Context, source: &Source) -> Result<DesiredFile, DesiredError> {
    let (path, origin) = match source {
        Source::Stdin => (Path::new("/dev/stdin").to_owned(), "<stdin>".to_owned()),
        Source::Path(p) => (p.clone(), p.display().to_string()),
    };
    let bytes = ctx
        .host
        .read_bounded(&path, MAX_FILE)
        .map_err(|source| DesiredError::Read {
            path: path.clone(),
            source,
        })?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(file::parse(&origin, &text)?)
}

/// What apply did: the steps that succeeded, and the one that failed (apply stops there).
#[derive(Debug)]
pub struct Applied {
    pub done: Vec<PlanStep>,
    pub failed: Option<(PlanStep, BackendError)>,
}

/// A plan and the host it was made against.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    pub observed: Observed,
}

/// The host, its backends and mdevkit's own files.
#[derive(Debug)]
pub struct Session<'a> {
    ctx: &'a Context,
    paths: &'a Paths,
    backends: Vec<Box<dyn Backend + 'a>>,
}

impl<'a> Session<'a> {
    pub fn new(ctx: &'a Context, paths: &'a Paths) -> Self {
        let staging = paths
            .state_file
            .parent()
            .unwrap_or(Path::new("."))
            .to_owned();
        Session {
            ctx,
            paths,
            backends: vec![
                Box::new(MdevBackend::new(ctx, &staging)),
                Box::new(NvidiaVfBackend::new(&ctx.host)),
            ],
        }
    }

    pub fn observe(&self) -> Observed {
        let mut o = Observed::default();
        for b in &self.backends {
            b.observe(&mut o);
        }
        o
    }

    pub fn machine_id(&self) -> Result<MachineId, DesiredError> {
        let path = &self.paths.machine_id;
        let bytes = self.ctx.host.read_bounded(path, 256).map_err(|source| {
            DesiredError::MachineIdRead {
                path: path.clone(),
                source,
            }
        })?;
        String::from_utf8_lossy(&bytes)
            .parse()
            .map_err(|source| DesiredError::MachineId {
                path: path.clone(),
                source,
            })
    }

    pub fn owned(&self) -> Result<Owned, DesiredError> {
        Ok(state::load_owned(&self.ctx.host, &self.paths.state_file)?)
    }

    /// Plans `profile` against the host as it is now.
    pub fn plan(
        &self,
        file: &DesiredFile,
        profile: Option<&str>,
        options: PlanOptions,
    ) -> Result<Planned, DesiredError> {
        let (name, entries) = file.profile(profile)?;
        let machine = self.machine_id()?;
        let owned = self.owned()?;
        let observed = self.observe();
        let plan = plan::plan(&PlanInput {
            profile: name,
            entries,
            observed: &observed,
            owned: &owned.devices,
            owned_vgpus: &owned.vgpus,
            machine: &machine,
            options,
        })?;
        Ok(Planned { plan, observed })
    }

    /// Plans, and while only parents or types are missing, waits for a uevent (or the
    /// backoff interval) and plans again, until `wait` has passed.
    pub fn plan_waiting(
        &self,
        file: &DesiredFile,
        profile: Option<&str>,
        options: PlanOptions,
        wait: Duration,
    ) -> Result<Planned, DesiredError> {
        let start = Instant::now();
        // Subscribed before the first look, so that nothing announced meanwhile is missed.
        let watcher = UeventWatcher::open().map_err(DesiredError::Uevents)?;
        let mut pause = Duration::from_millis(100);
        loop {
            match self.plan(file, profile, options) {
                Err(DesiredError::Plan(e)) if e.only_missing() => {
                    let left = wait.saturating_sub(start.elapsed());
                    if left.is_zero() {
                        return Err(DesiredError::StillMissing {
                            waited: wait,
                            source: e,
                        });
                    }
                    log::info!(
                        "waiting up to {} for: {}",
                        crate::error::seconds(left),
                        e.problems
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    );
                    watcher
                        .wait(pause.min(left))
                        .map_err(DesiredError::Uevents)?;
                    pause = pause.saturating_mul(2).min(Duration::from_secs(5));
                }
                other => return other,
            }
        }
    }

    fn save_state(&self, owned: &Owned) -> Result<(), DesiredError> {
        let _lock = self.ctx.lock().map_err(DesiredError::Lock)?;
        Ok(state::save(&self.ctx.host, &self.paths.state_file, owned)?)
    }

    /// For a plan without steps: records the vGPUs it takes over (made by hand, or by an
    /// apply whose state file was lost), so that lowering a count later removes them and a
    /// reboot brings them back on their VFs. Writes nothing when the records are complete.
    pub fn record_takeovers(&self, plan: &Plan) -> Result<(), DesiredError> {
        let mut owned = self.owned()?;
        let missing: Vec<VgpuRecord> = plan
            .vgpus
            .wanted
            .iter()
            .filter(|r| !owned.vgpus.contains(r))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        owned.vgpus.extend(missing);
        self.save_state(&owned)
    }

    /// Runs the plan's steps in order, stopping at the first failure. The state file first
    /// records every device about to be created (so a crash leaves none orphaned), then
    /// keeps only the owned devices that still exist. The caller should hold the lock
    /// ([`Context::hold_lock`]) from planning to here, so that nothing changes in between.
    ///
    /// Vendor-VFIO vGPUs are recorded by VF: before the steps, the old records and every
    /// vGPU the plan wants; after them, the wanted ones (a failed creation keeps its VF
    /// reserved for the next apply), old ones whose VF still has the recorded type, and
    /// those of GPUs not visible now.
    pub fn apply(&self, plan: &Plan) -> Result<Applied, DesiredError> {
        self.apply_with_progress(plan, &mut |_, _, _| {})
    }

    /// [`Session::apply`], telling `progress` before each change: its number (from 1),
    /// the number of changes and the change, so a terminal can show how far it got.
    pub fn apply_with_progress(
        &self,
        plan: &Plan,
        progress: &mut dyn FnMut(usize, usize, &PlanStep),
    ) -> Result<Applied, DesiredError> {
        let mut owned = self.owned()?;
        let before = owned.vgpus.clone();
        owned.devices.extend(plan.wanted.iter().copied());
        owned.vgpus.extend(plan.vgpus.wanted.iter().cloned());
        self.save_state(&owned)?;
        let mut done = Vec::new();
        let mut failed = None;
        let total = plan.len();
        for (n, change) in plan.changes().enumerate() {
            progress(n.saturating_add(1), total, &change);
            let kind = change.backend();
            let result = match self.backends.iter().find(|b| b.kind() == kind) {
                Some(b) => b.execute(&change),
                None => Err(BackendError::NoBackend { kind }),
            };
            match result {
                Ok(()) => done.push(change),
                Err(e) => {
                    failed = Some((change, e));
                    break;
                }
            }
        }
        let now = self.observe();
        owned.devices.retain(|u| now.devices.contains_key(u));
        // A GPU that cannot be seen now (gone, or SR-IOV disabled) keeps its records, as
        // definitions on an absent mdev parent stay: its vGPUs come back on the same VFs.
        let still = |r: &&VgpuRecord| {
            let gpu = now
                .parents
                .values()
                .filter_map(|p| p.vf.as_ref())
                .find(|g| g.pf == r.pf && g.enabled_vfs > 0);
            gpu.is_none_or(|g| {
                g.vfs.iter().any(|v| {
                    v.address == r.vf && v.vgpu.as_ref().is_some_and(|t| t.id == r.type_id)
                })
            })
        };
        owned.vgpus = plan.vgpus.wanted.clone();
        owned.vgpus.extend(before.iter().filter(still).cloned());
        self.save_state(&owned)?;
        Ok(Applied { done, failed })
    }
}
