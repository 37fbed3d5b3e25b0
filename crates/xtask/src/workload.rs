//! The benchmark's workloads: the commands timed, the families of generated hosts they run
//! on (each in three sizes), and the check that a run did the work it is timed for.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result};

use crate::genhost::{self, HostSpec, Mix, ParentKind};

/// A family of generated hosts; each comes as empty, small and large.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Family {
    /// 8 parents; `n` definitions, the first tenth of them active.
    Store,
    /// 8 parents; `n / 10` active devices, all defined; one versioned callout script.
    Callout,
    /// 1 parent with `n / 10` auto definitions (no attributes); nothing active.
    Autostart,
    /// `n * 2048 / 10,000` vfio-ccw parents; nothing defined or active.
    Ccw,
}

impl Family {
    /// The host of this family at scale `n` (0 for the empty host).
    pub(crate) fn spec(self, n: usize) -> HostSpec {
        let base = HostSpec {
            seed: 42,
            ..HostSpec::default()
        };
        match self {
            Family::Store => HostSpec {
                definitions: n,
                parents: 8,
                active: n / 10,
                ..base
            },
            Family::Callout => HostSpec {
                definitions: n / 10,
                parents: 8,
                active: n / 10,
                callout: true,
                ..base
            },
            Family::Autostart => HostSpec {
                definitions: n / 10,
                parents: 1,
                mix: Mix::AutoPlain,
                ..base
            },
            Family::Ccw => HostSpec {
                parents: n.saturating_mul(2048) / 10_000,
                parent_kind: ParentKind::VfioCcw,
                ..base
            },
        }
    }

    fn name(self) -> &'static str {
        match self {
            Family::Store => "store",
            Family::Callout => "callout",
            Family::Autostart => "autostart",
            Family::Ccw => "ccw",
        }
    }
}

/// What a command walks, so its cost can be given per item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Per {
    Definition,
    Active,
    Parent,
}

/// What a successful run prints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Shown {
    /// One unindented line per item (attribute and type lines are indented).
    Lines,
    /// JSON with one `"mdev_type"` per item.
    Json,
    /// Nothing on stdout (a command that changes state).
    Nothing,
}

/// What the syscall count of a command is used for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Syscalls {
    /// Counted, and the bench fails when a walked item costs more than this.
    Budget(f64),
    /// Counted and reported only.
    Report,
    /// Not counted (the count would be the callout scripts', not mdevctl's).
    Skip,
}

/// A command and what it scales with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Case {
    pub(crate) args: &'static [&'static str],
    /// Shown in reports next to the command.
    pub(crate) note: &'static str,
    pub(crate) family: Family,
    pub(crate) per: Per,
    pub(crate) shown: Shown,
    /// The `mdev-floor` mode doing this command's unavoidable I/O, if it has one.
    pub(crate) floor: Option<&'static str>,
    pub(crate) syscalls: Syscalls,
}

impl Case {
    pub(crate) fn label(&self) -> String {
        let mut s = format!("`mdevctl {}`", self.args.join(" "));
        if !self.note.is_empty() {
            s.push_str(&format!(" ({})", self.note));
        }
        s
    }
}

/// Syscall budgets: a definition needs an `openat`, a `read` and a `close` (3), plus the
/// link reads of the active tenth (3 each, 0.3); an active device two `readlinkat`s, a
/// `stat` and its definition's open, read and close (6). The budgets leave half a call of
/// room and fail on a second read or a `stat` per file.
pub(crate) const CASES: [Case; 6] = [
    Case {
        args: &["list", "-d"],
        note: "",
        family: Family::Store,
        per: Per::Definition,
        shown: Shown::Lines,
        floor: Some("defined"),
        syscalls: Syscalls::Budget(3.5),
    },
    Case {
        args: &["list", "-d", "--dumpjson"],
        note: "",
        family: Family::Store,
        per: Per::Definition,
        shown: Shown::Json,
        floor: Some("defined"),
        syscalls: Syscalls::Budget(3.5),
    },
    Case {
        args: &["list"],
        note: "",
        family: Family::Store,
        per: Per::Active,
        shown: Shown::Lines,
        floor: Some("active"),
        syscalls: Syscalls::Budget(6.5),
    },
    Case {
        args: &["list"],
        note: "one versioned callout",
        family: Family::Callout,
        per: Per::Active,
        shown: Shown::Lines,
        floor: None,
        syscalls: Syscalls::Skip,
    },
    Case {
        args: &["start-parent-mdevs", "0000:10:00.0"],
        note: "auto definitions",
        family: Family::Autostart,
        per: Per::Definition,
        shown: Shown::Nothing,
        floor: None,
        syscalls: Syscalls::Report,
    },
    Case {
        args: &["types"],
        note: "vfio-ccw parents",
        family: Family::Ccw,
        per: Per::Parent,
        shown: Shown::Lines,
        floor: None,
        syscalls: Syscalls::Report,
    },
];

/// One generated host and its size.
#[derive(Debug)]
pub(crate) struct BenchHost {
    pub(crate) root: PathBuf,
    pub(crate) spec: HostSpec,
}

impl BenchHost {
    pub(crate) fn count(&self, per: Per) -> usize {
        match per {
            Per::Definition => self.spec.definitions,
            Per::Active => self.spec.active,
            Per::Parent => self.spec.parents,
        }
    }
}

/// The hosts of every family the cases use: `[empty, small, large]` each.
#[derive(Debug)]
pub(crate) struct Hosts {
    families: Vec<(Family, [BenchHost; 3])>,
}

impl Hosts {
    /// Generates them under `scratch` at scales `small` and `large`.
    pub(crate) fn generate(scratch: &Path, small: usize, large: usize) -> Result<Hosts> {
        let mut families: Vec<(Family, [BenchHost; 3])> = Vec::new();
        for case in &CASES {
            if families.iter().any(|(f, _)| *f == case.family) {
                continue;
            }
            let f = case.family;
            let make = |size: &str, n: usize| -> Result<BenchHost> {
                let spec = f.spec(n);
                let root = scratch.join(format!("{}-{size}", f.name()));
                genhost::generate(&root, &spec)?;
                Ok(BenchHost { root, spec })
            };
            families.push((
                f,
                [
                    make("empty", 0)?,
                    make("small", small)?,
                    make("large", large)?,
                ],
            ));
        }
        Ok(Hosts { families })
    }

    /// `[empty, small, large]` of a family.
    pub(crate) fn of(&self, family: Family) -> Result<&[BenchHost; 3]> {
        self.families
            .iter()
            .find(|(f, _)| *f == family)
            .map(|(_, h)| h)
            .context("no hosts generated for this family")
    }
}

pub(crate) fn run(bin: &Path, root: &Path, args: &[&str]) -> Result<Output> {
    env_command(bin, root)
        .args(args)
        .output()
        .with_context(|| format!("running {}", bin.display()))
}

/// `bin` with `MDEVCTL_ENV_ROOT=root` and none of the per-directory overrides (they would
/// point elsewhere) or log settings.
pub(crate) fn env_command(bin: &Path, root: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("MDEVCTL_ENV_ROOT", root);
    for var in [
        "MDEVCTL_SYSFS_ROOT",
        "MDEVCTL_CONFIG_DIR",
        "MDEVCTL_SCRIPTS_DIR",
        "MDEVCTL_LOCK_FILE",
        "MDEVCTL_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Checks that a run did the work it is timed for (so a fast failure never looks fast).
pub(crate) fn check(out: &Output, host: &BenchHost, case: &Case, who: &str) -> Result<()> {
    let args = case.args.join(" ");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        anyhow::bail!(
            "{who} {args} failed ({}): {}",
            out.status,
            err.lines().next().unwrap_or("")
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let want = match case.shown {
        Shown::Nothing => 0,
        Shown::Lines | Shown::Json => host.count(case.per),
    };
    // Text: blank lines (upstream 1.2 ends `list` with one) do not count.
    let got = match case.shown {
        Shown::Json => text.matches("\"mdev_type\"").count(),
        Shown::Lines | Shown::Nothing => text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with(' '))
            .count(),
    };
    if got != want {
        anyhow::bail!(
            "{who} {args} on {} listed {got} entries, expected {want}",
            host.root.display()
        );
    }
    // A state-changing command that fails per device still exits 0: its warnings tell.
    if case.shown == Shown::Nothing && !out.stderr.is_empty() {
        let err = String::from_utf8_lossy(&out.stderr);
        anyhow::bail!(
            "{who} {args} on {} warned: {}",
            host.root.display(),
            err.lines().next().unwrap_or("")
        );
    }
    Ok(())
}

/// Checks the floor's output: the number of definitions (or active devices) it read.
pub(crate) fn check_floor(out: &Output, host: &BenchHost, case: &Case) -> Result<()> {
    let text = String::from_utf8_lossy(&out.stdout);
    let want = host.count(case.per);
    if !out.status.success() || text.trim() != want.to_string() {
        anyhow::bail!(
            "mdev-floor on {} read {:?} items ({}), expected {want}: {}",
            host.root.display(),
            text.trim(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
