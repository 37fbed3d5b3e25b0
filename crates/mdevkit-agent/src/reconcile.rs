//! The host side of the agent: apply or check one profile of the desired-state file
//! through the library's desired-state session, exactly as `mdevkit apply` and `mdevkit
//! assert` do. Synchronous (it takes mdevctl's lock and may wait for late parents); the
//! agent runs it on a blocking thread.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use mdevkit::desired::file::{self, DesiredFile};
use mdevkit::desired::plan::PlanOptions;
use mdevkit::desired::render;
use mdevkit::desired::session::{DesiredError, Planned, Session};
use mdevkit::desired::state::Paths;
use mdevkit::ops::{Context, Settings};
use mdevkit::{Host, Roots};

/// The most a desired-state file may hold (as `mdevkit` reads it).
const MAX_FILE: u64 = 4 << 20;

/// Where the host is and how to treat it; cheap to clone into a blocking task.
#[derive(Debug, Clone)]
pub struct HostSetup {
    pub roots: Roots,
    pub paths: Paths,
    pub settings: Settings,
    /// `--wait`: how long apply waits for parents or types that are not there yet.
    pub wait: Duration,
}

/// The desired-state file as read once: its bytes decide whether it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSnapshot {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

impl FileSnapshot {
    /// Reads the file (a ConfigMap's mount follows its `..data` symlink).
    pub fn read(path: PathBuf) -> std::io::Result<FileSnapshot> {
        let mut bytes = Vec::new();
        std::fs::File::open(&path)?
            .take(MAX_FILE)
            .read_to_end(&mut bytes)?;
        Ok(FileSnapshot { path, bytes })
    }

    fn parse(&self) -> Result<DesiredFile, file::FileError> {
        file::parse(
            &self.path.display().to_string(),
            &String::from_utf8_lossy(&self.bytes),
        )
    }
}

/// How one apply ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The host matches the profile; `changes` lists what was done (may be empty).
    Applied { changes: Vec<String> },
    /// The file or the profile is invalid: nothing was changed, and retrying the same
    /// file cannot help.
    Invalid { reason: String },
    /// Planning or a step failed (a missing parent, a busy device, a callout's veto);
    /// retrying may help.
    Failed { reason: String },
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    mdevkit::error::chain(e)
}

impl HostSetup {
    fn context(&self) -> Context {
        Context::new(Host::new(self.roots.clone()), self.settings)
    }

    /// Validates the file and the profile, then plans (waiting for late parents) and
    /// applies under mdevctl's lock, like `mdevkit apply --wait`.
    pub fn apply(&self, file: &FileSnapshot, profile: &str) -> Outcome {
        let desired = match file.parse() {
            Ok(d) => d,
            Err(e) => return Outcome::Invalid { reason: chain(&e) },
        };
        if let Err(e) = desired.profile(Some(profile)) {
            return Outcome::Invalid { reason: chain(&e) };
        }
        let ctx = self.context();
        let session = Session::new(&ctx, &self.paths);
        match self.apply_valid(&ctx, &session, &desired, profile) {
            Ok(o) => o,
            Err(e) => Outcome::Failed {
                reason: chain(&e as &(dyn std::error::Error + 'static)),
            },
        }
    }

    fn apply_valid(
        &self,
        ctx: &Context,
        session: &Session<'_>,
        desired: &DesiredFile,
        profile: &str,
    ) -> Result<Outcome, ApplyError> {
        let options = PlanOptions::default();
        if !self.wait.is_zero() {
            // Waits without the lock; the plan is made again under it below.
            session.plan_waiting(desired, Some(profile), options, self.wait)?;
        }
        // Held from observing the host to the last state write, as `mdevkit apply` does:
        // this is what serialises two agents on one node during a rolling update.
        let _held = ctx.hold_lock().map_err(ApplyError::Lock)?;
        let Planned { plan, .. } = session.plan(desired, Some(profile), options)?;
        if plan.is_empty() {
            return Ok(Outcome::Applied {
                changes: Vec::new(),
            });
        }
        let applied = session.apply(&plan)?;
        let changes: Vec<String> = applied.done.iter().map(render::change_line).collect();
        if let Some((step, e)) = applied.failed {
            return Ok(Outcome::Failed {
                reason: format!(
                    "{} of {} changes applied; failed: {}: {}",
                    changes.len(),
                    plan.len(),
                    render::change_line(&step),
                    chain(&e)
                ),
            });
        }
        Ok(Outcome::Applied { changes })
    }

    /// The changes the host needs to match `profile` (empty: it matches), like `mdevkit
    /// assert`; errors are the planner's refusals, as text.
    pub fn drift(&self, file: &FileSnapshot, profile: &str) -> Result<Vec<String>, String> {
        let desired = file.parse().map_err(|e| chain(&e))?;
        let ctx = self.context();
        let session = Session::new(&ctx, &self.paths);
        let planned = session
            .plan(&desired, Some(profile), PlanOptions::default())
            .map_err(|e| chain(&e))?;
        Ok(planned
            .plan
            .changes()
            .map(|c| render::change_line(&c))
            .collect())
    }
}

/// Why an apply of a valid profile stopped before its steps.
#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error(transparent)]
    Desired(#[from] DesiredError),
    #[error("cannot take mdevctl's lock")]
    Lock(#[source] mdevkit::ops::OpError),
}
