//! Runs each subcommand against the library's desired-state session.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use mdevkit::desired::file::DesiredFile;
use mdevkit::desired::plan::PlanOptions;
use mdevkit::desired::render::{self, ExportFormat, ExportOptions};
use mdevkit::desired::session::{self, Planned, Session, Source};
use mdevkit::desired::state::Paths;
use mdevkit::ops::{Context, Settings};
use mdevkit::{Host, Roots};

use crate::cli::{
    ApplyArgs, Command, ExportOutput, FileArg, MonitorArgs, PlanArgs, PlanOutput, Target,
};

/// How a successful run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// `plan`: there are changes to apply.
    Pending,
    /// `assert`: the host differs (the differences are printed).
    Differs,
}

impl Outcome {
    pub fn code(self) -> ExitCode {
        match self {
            Outcome::Done => ExitCode::SUCCESS,
            Outcome::Differs => ExitCode::FAILURE,
            Outcome::Pending => ExitCode::from(2),
        }
    }
}

pub(crate) fn emit(out: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// A number of seconds from the environment (mdevctl's tunables, honoured alike).
fn seconds(var: &str, default: Duration) -> anyhow::Result<Duration> {
    let Ok(v) = std::env::var(var) else {
        return Ok(default);
    };
    v.trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .with_context(|| format!("{var}='{v}' is not a number of seconds"))
}

fn settings() -> anyhow::Result<Settings> {
    let d = Settings::default();
    Ok(Settings {
        callout_timeout: seconds("MDEVCTL_CALLOUT_TIMEOUT", d.callout_timeout)?,
        lock_timeout: seconds("MDEVCTL_LOCK_TIMEOUT", d.lock_timeout)?,
    })
}

pub(crate) struct Env {
    pub(crate) ctx: Context,
    pub(crate) paths: Paths,
}

impl Env {
    pub(crate) fn new() -> anyhow::Result<Env> {
        let env = |k: &str| std::env::var_os(k);
        Ok(Env {
            ctx: Context::new(Host::new(Roots::from_env(env)), settings()?),
            paths: Paths::from_env(env),
        })
    }

    fn load(&self, f: &FileArg) -> anyhow::Result<(String, DesiredFile)> {
        let source = match &f.file {
            Some(p) if p.as_os_str() == "-" => Source::Stdin,
            Some(p) => Source::Path(p.clone()),
            None => Source::Path(self.paths.config_file.clone()),
        };
        let origin = match &source {
            Source::Stdin => "<stdin>".to_owned(),
            Source::Path(p) => p.display().to_string(),
        };
        Ok((origin, session::load(&self.ctx, &source)?))
    }
}

pub fn run(command: Command) -> anyhow::Result<Outcome> {
    let env = Env::new()?;
    match command {
        Command::Validate(f) => validate(&env, &f),
        Command::Plan(a) => plan(&env, &a),
        Command::Apply(a) => apply(&env, &a),
        Command::Assert(t) => assert(&env, &t),
        Command::Export(a) => {
            let session = Session::new(&env.ctx, &env.paths);
            let observed = session.observe();
            let options = ExportOptions {
                parents: a.parents,
                active_only: a.active,
                profile: "exported".into(),
            };
            let format = match a.output {
                ExportOutput::Yaml => ExportFormat::Yaml,
                ExportOutput::Json => ExportFormat::Json,
            };
            emit(&render::export(&observed, &options, format))?;
            Ok(Outcome::Done)
        }
        Command::Types(a) => crate::inventory::types(&env, &a),
        Command::List(a) => crate::inventory::list(&env, &a),
        Command::Vgpu(c) => crate::inventory::vgpu(&env, c),
        Command::Doctor(a) => crate::doctor::run(a),
        Command::Monitor(a) => monitor(&env, &a),
    }
}

/// Prints events until the consumer goes away (a closed pipe ends it quietly, exit 0).
fn monitor(env: &Env, a: &MonitorArgs) -> anyhow::Result<Outcome> {
    use std::io::ErrorKind;
    use std::os::fd::AsFd;

    use mdevkit::events::{Monitor, MonitorOptions, Start};

    let options = MonitorOptions {
        start: if a.snapshot {
            Start::Snapshot
        } else {
            Start::SinceNow
        },
        receive_buffer: a.receive_buffer,
    };
    let mut monitor = Monitor::open(env.ctx.host.clone(), options)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    loop {
        let Some(ev) = monitor.next(Some(stdout.as_fd()))? else {
            // The consumer closed its end while nothing happened.
            return Ok(Outcome::Done);
        };
        let line = if a.json { ev.to_json() } else { ev.to_text() };
        // A burst goes out in large writes; the last event of it is never held back.
        let written = writeln!(out, "{line}").and_then(|()| {
            if monitor.has_pending() {
                Ok(())
            } else {
                out.flush()
            }
        });
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(Outcome::Done),
            Err(e) => return Err(e.into()),
        }
    }
}

fn validate(env: &Env, f: &FileArg) -> anyhow::Result<Outcome> {
    let (origin, file) = env.load(f)?;
    let names: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
    let default = file
        .default_profile
        .as_deref()
        .map(|d| format!(" (default {d})"))
        .unwrap_or_default();
    emit(&format!(
        "{origin}: valid; profiles: {}{default}\n",
        names.join(", ")
    ))?;
    Ok(Outcome::Done)
}

fn profile_name<'a>(file: &'a DesiredFile, t: &'a Target) -> anyhow::Result<&'a str> {
    Ok(file.profile(t.profile.as_deref())?.0)
}

fn plan(env: &Env, a: &PlanArgs) -> anyhow::Result<Outcome> {
    let (_, file) = env.load(&a.target.file)?;
    let name = profile_name(&file, &a.target)?;
    let session = Session::new(&env.ctx, &env.paths);
    let options = PlanOptions {
        prune: a.prune,
        no_start: a.no_start,
    };
    let Planned { plan: p, observed } = session.plan(&file, Some(name), options)?;
    emit(&match a.output {
        PlanOutput::Text => render::plan_text(name, &p, &observed),
        PlanOutput::Json => render::plan_json(name, &p),
    })?;
    Ok(if p.is_empty() {
        Outcome::Done
    } else {
        Outcome::Pending
    })
}

fn assert(env: &Env, t: &Target) -> anyhow::Result<Outcome> {
    let (_, file) = env.load(&t.file)?;
    let name = profile_name(&file, t)?;
    let session = Session::new(&env.ctx, &env.paths);
    let p = session
        .plan(&file, Some(name), PlanOptions::default())?
        .plan;
    if p.is_empty() {
        emit(&format!("The host matches profile '{name}'.\n"))?;
        return Ok(Outcome::Done);
    }
    emit(&render::changes_text(&p))?;
    let _ = writeln!(
        std::io::stderr().lock(),
        "Error: the host differs from profile '{name}' by {} change(s)",
        p.len()
    );
    Ok(Outcome::Differs)
}

/// The line `apply` keeps rewriting on a terminal's stderr while it works (`[3/120] +
/// define ...`), cleared when it is done; nothing at all when stderr is not a terminal or
/// the plan has a single change, so scripts and logs see only the result.
struct Progress {
    terminal: bool,
    shown: bool,
}

impl Progress {
    fn on_terminal() -> Self {
        use std::io::IsTerminal;
        Progress {
            terminal: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    fn show(&mut self, n: usize, total: usize, change: &mdevkit::backend::PlanStep) {
        if !self.terminal || total < 2 {
            return;
        }
        let line = render::change_line(change);
        // Kept to one terminal line: `\r` and erase-line redraw it in place.
        let line: String = line.chars().take(100).collect();
        let _ = write!(std::io::stderr().lock(), "\r\x1b[K[{n}/{total}] {line}");
        self.shown = true;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }
}

fn apply(env: &Env, a: &ApplyArgs) -> anyhow::Result<Outcome> {
    let (_, file) = env.load(&a.target.file)?;
    let name = profile_name(&file, &a.target)?;
    let session = Session::new(&env.ctx, &env.paths);
    let options = PlanOptions {
        prune: a.prune,
        no_start: a.no_start,
    };
    if let Some(w) = a.wait {
        // Waits without the lock; the plan is made again under it below.
        session.plan_waiting(&file, Some(name), options, w)?;
    }
    // Held from observing the host to the last state write: no mdevctl command or other
    // apply changes anything in between. The operations' own locking is then a no-op.
    let _held = env.ctx.hold_lock()?;
    let Planned { plan: p, observed } = session.plan(&file, Some(name), options)?;
    if a.dry_run {
        emit(&render::plan_text(name, &p, &observed))?;
        return Ok(Outcome::Done);
    }
    if p.is_empty() {
        session.record_takeovers(&p)?;
        emit(&format!("No changes: the host matches profile '{name}'.\n"))?;
        return Ok(Outcome::Done);
    }
    let applied = {
        let mut bar = Progress::on_terminal();
        session.apply_with_progress(&p, &mut |n, total, change| bar.show(n, total, change))?
    };
    let mut out = String::new();
    for s in &applied.done {
        out.push_str(&render::change_line(s));
        out.push('\n');
    }
    emit(&out)?;
    if let Some((step, e)) = applied.failed {
        bail!(
            "{} of {} changes applied; failed: {}: {}\nThe state file and definitions are consistent: fix the cause and run apply again.",
            applied.done.len(),
            p.len(),
            render::change_line(&step),
            mdevkit::error::chain(&e)
        );
    }
    emit(&format!(
        "Applied {} change(s) to match profile '{name}'.\n",
        applied.done.len()
    ))?;
    Ok(Outcome::Done)
}
