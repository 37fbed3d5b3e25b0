//! `cargo xtask bench`: times the read-only commands on generated hosts of growing size and
//! reports ratios (per-device cost at large vs small scale, syscalls per device), because
//! shared machines are too noisy for absolute times to mean much.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::genhost::{self, HostSpec};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOpts {
    /// Timed repetitions per command and host (the median is reported).
    pub reps: usize,
    /// CI smoke scale (200 / 2,000 definitions) instead of 1,000 / 10,000.
    pub small: bool,
    /// Binary to measure; built in release mode when absent.
    pub binary: Option<PathBuf>,
    /// An upstream mdevctl to compare against, run on the same hosts.
    pub upstream: Option<PathBuf>,
    /// Skip the syscall count even when strace is installed.
    pub no_strace: bool,
    /// Keep the generated hosts (their paths are printed).
    pub keep: bool,
}

/// A read-only command and what it scales with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Case {
    pub(crate) args: &'static [&'static str],
    /// Devices the command walks: definitions, active devices, or neither (types).
    pub(crate) per: Per,
    /// Syscalls allowed per device walked (marginal, between the empty and the large host).
    /// Today a definition costs 5.3 (open, statx, 2 reads, close, plus the link reads of
    /// the active tenth) and an active device 8; upstream needs 11.5 and 34 (its
    /// canonicalize walks every path component). The budgets leave room for a
    /// deliberate extra call or two and fail on a per-component walk or a stat per entry.
    budget: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Per {
    Definition,
    Active,
    Parent,
}

pub(crate) const CASES: [Case; 4] = [
    Case {
        args: &["list", "-d"],
        per: Per::Definition,
        budget: 8.0,
    },
    Case {
        args: &["list", "-d", "--dumpjson"],
        per: Per::Definition,
        budget: 8.0,
    },
    Case {
        args: &["list"],
        per: Per::Active,
        budget: 12.0,
    },
    Case {
        args: &["types"],
        per: Per::Parent,
        budget: 0.0,
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

pub(crate) fn run(bin: &Path, root: &Path, args: &[&str]) -> Result<Output> {
    let mut cmd = Command::new(bin);
    cmd.args(args).env("MDEVCTL_ENV_ROOT", root);
    // Only the root override: the per-directory ones would point elsewhere.
    for var in [
        "MDEVCTL_SYSFS_ROOT",
        "MDEVCTL_CONFIG_DIR",
        "MDEVCTL_SCRIPTS_DIR",
        "MDEVCTL_LOCK_FILE",
        "MDEVCTL_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.output()
        .with_context(|| format!("running {}", bin.display()))
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
    let json = case.args.contains(&"--dumpjson");
    let want = host.count(case.per);
    // Text: one unindented line per device (per parent for types); blank lines (upstream
    // 1.2 ends `list` with one) do not count. JSON: one `"mdev_type"` per device.
    let got = if json {
        text.matches("\"mdev_type\"").count()
    } else {
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with(' '))
            .count()
    };
    if got != want {
        anyhow::bail!(
            "{who} {args} on {} listed {got} entries, expected {want}",
            host.root.display()
        );
    }
    Ok(())
}

pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Syscall counts of one run under `strace -f -c`: name -> calls, plus `total`.
fn syscalls(
    bin: &Path,
    root: &Path,
    args: &[&str],
    scratch: &Path,
) -> Result<BTreeMap<String, u64>> {
    syscalls_via(&[], Some(root), bin, args, scratch)
}

/// Like [`syscalls`], with strace started through `launcher` (a command that execs its
/// remaining arguments, e.g. a mount namespace); `root` sets `MDEVCTL_ENV_ROOT`.
pub(crate) fn syscalls_via(
    launcher: &[OsString],
    root: Option<&Path>,
    bin: &Path,
    args: &[&str],
    scratch: &Path,
) -> Result<BTreeMap<String, u64>> {
    let out_file = scratch.join("strace.out");
    let mut argv: Vec<OsString> = launcher.to_vec();
    argv.extend(["strace", "-f", "-c", "-o"].map(OsString::from));
    argv.push(out_file.clone().into());
    argv.push("--".into());
    argv.push(bin.into());
    argv.extend(args.iter().map(OsString::from));
    let (program, rest) = argv.split_first().context("empty strace command")?;
    let mut cmd = Command::new(program);
    cmd.args(rest).stdout(std::process::Stdio::null());
    match root {
        Some(r) => cmd.env("MDEVCTL_ENV_ROOT", r),
        None => cmd.env_remove("MDEVCTL_ENV_ROOT"),
    };
    let status = cmd.status().context("running strace")?;
    if !status.success() {
        anyhow::bail!(
            "strace {} {} failed ({status})",
            bin.display(),
            args.join(" ")
        );
    }
    let text = std::fs::read_to_string(&out_file).context("reading strace's summary")?;
    // Rows are `% time  seconds  usecs/call  calls  [errors]  name`: calls is the 4th
    // column and the name the last; header and separator rows do not parse.
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if let (Some(calls), Some(name)) = (cols.get(3).and_then(|c| c.parse().ok()), cols.last()) {
            counts.insert((*name).to_owned(), calls);
        }
    }
    if !counts.contains_key("total") {
        anyhow::bail!("no total line in strace output:\n{text}");
    }
    Ok(counts)
}

pub(crate) fn strace_available() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn machine_facts() -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    // Other work on the machine skews times; the load average says how much there was.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!(
        "nproc {nproc}; CPU {cpu}; kernel {}; load average {}",
        kernel.trim(),
        load.join(" ")
    )
}

/// Marginal µs per device on the small and large host (start-up, i.e. the empty host's
/// time, subtracted), from per-host times `t` in ms.
fn per_device_us(t: [f64; 3], n_small: usize, n_large: usize) -> (f64, f64) {
    let [t0, ts, tl] = t;
    let us_s = (ts - t0).max(1e-6) * 1e3 / n_small.max(1) as f64;
    let us_l = (tl - t0).max(1e-6) * 1e3 / n_large.max(1) as f64;
    (us_s, us_l)
}

/// Medians per command and host, and the per-device cost at both sizes. A large/small
/// ratio near 1.0 means linear scaling. The ratio is also given from the fastest runs,
/// which a busy machine disturbs less than the median.
fn timing_table(hosts: &[BenchHost], times: &[Vec<Vec<Duration>>]) -> String {
    let [Some(hs), Some(hl)] = [hosts.get(1), hosts.get(2)] else {
        return String::new();
    };
    let (small, large) = (hs.spec.definitions, hl.spec.definitions);
    let mut r = format!(
        "| command | empty ms | {small} ms | {large} ms | large/small time | \
         µs/device at {small} | µs/device at {large} | per-device cost large/small | \
         same, fastest runs |\n"
    );
    r.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for (case, t) in CASES.iter().zip(times) {
        let pick = |f: fn(Vec<Duration>) -> Duration| -> Option<[f64; 3]> {
            let v: Vec<f64> = t.iter().map(|v| ms(f(v.clone()))).collect();
            Some([*v.first()?, *v.get(1)?, *v.get(2)?])
        };
        let (Some(med), Some(min)) = (
            pick(median),
            pick(|v| v.into_iter().min().unwrap_or_default()),
        ) else {
            continue;
        };
        let [t0, ts, tl] = med;
        let per_dev = if case.per == Per::Parent {
            "n/a | n/a | n/a (walks parents only) | n/a".to_owned()
        } else {
            let (ns, nl) = (hs.count(case.per), hl.count(case.per));
            let (us_s, us_l) = per_device_us(med, ns, nl);
            let (min_s, min_l) = per_device_us(min, ns, nl);
            format!(
                "{us_s:.2} | {us_l:.2} | {:.2} | {:.2}",
                us_l / us_s,
                min_l / min_s
            )
        };
        let _ = writeln!(
            r,
            "| `mdevctl {}` | {t0:.2} | {ts:.2} | {tl:.2} | {:.2} | {per_dev} |",
            case.args.join(" "),
            tl / ts.max(1e-6)
        );
    }
    r
}

/// Runs the benchmark; returns the report (markdown) or an error when a check or a
/// syscall budget fails.
pub fn bench(opts: &BenchOpts) -> Result<String> {
    let bin = match &opts.binary {
        Some(b) => b.clone(),
        None => crate::cargo::build_mdevctl(true)?,
    };
    // Absolute, so that runs through strace or a mount namespace find the same file.
    let bin = std::fs::canonicalize(&bin).with_context(|| format!("{}", bin.display()))?;
    let mut opts = opts.clone();
    if let Some(up) = &opts.upstream {
        opts.upstream =
            Some(std::fs::canonicalize(up).with_context(|| format!("{}", up.display()))?);
    }
    let opts = &opts;
    let scratch = std::env::temp_dir().join(format!("mdevkit-bench-{}", std::process::id()));
    crate::fsutil::mkdir(&scratch)?;
    let result = bench_in(opts, &bin, &scratch);
    if !opts.keep {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    result
}

fn bench_in(opts: &BenchOpts, bin: &Path, scratch: &Path) -> Result<String> {
    let (small, large) = if opts.small {
        (200, 2000)
    } else {
        (1000, 10000)
    };
    let mut hosts = Vec::new();
    for (name, defs) in [("empty", 0), ("small", small), ("large", large)] {
        let spec = HostSpec {
            definitions: defs,
            parents: 8,
            active: defs / 10,
            seed: 42,
        };
        let root = scratch.join(name);
        genhost::generate(&root, &spec)?;
        hosts.push(BenchHost { root, spec });
    }
    let mut r = String::new();
    let _ = writeln!(r, "machine: {}", machine_facts());
    let _ = writeln!(r, "binary: {}", bin.display());
    let _ = writeln!(
        r,
        "hosts: {} parents; empty, {small} and {large} definitions with 10% of them active; {} repetitions, median\n",
        8, opts.reps
    );

    // Warm the page cache and check every output once before timing anything.
    for case in &CASES {
        for host in &hosts {
            check(&run(bin, &host.root, case.args)?, host, case, "mdevkit")?;
        }
    }
    // Repetitions interleave hosts and commands, so drift hits every cell alike.
    let mut times = vec![vec![Vec::new(); hosts.len()]; CASES.len()];
    for _ in 0..opts.reps.max(1) {
        for (c, case) in CASES.iter().enumerate() {
            for (h, host) in hosts.iter().enumerate() {
                let t = Instant::now();
                let out = run(bin, &host.root, case.args)?;
                let elapsed = t.elapsed();
                check(&out, host, case, "mdevkit")?;
                times[c][h].push(elapsed);
            }
        }
    }

    r.push_str(&timing_table(&hosts, &times));

    let mut failures = Vec::new();
    if opts.no_strace || !strace_available() {
        r.push_str("\nsyscall counts: skipped (strace not installed or --no-strace)\n");
    } else {
        r.push_str(&syscall_report(bin, &hosts, scratch, &mut failures)?);
    }

    if let Some(up) = &opts.upstream {
        r.push_str(&crate::upstream::compare(
            bin, up, &hosts, scratch, opts.reps,
        )?);
    }
    if opts.keep {
        let _ = writeln!(r, "\nhosts kept under {}", scratch.display());
    }
    if !failures.is_empty() {
        anyhow::bail!("{r}\nsyscall budget exceeded:\n  {}", failures.join("\n  "));
    }
    Ok(r)
}

/// Syscalls of each command on the empty and the large host, per device walked, and which
/// calls make up the per-device cost; over-budget commands are added to `failures`.
fn syscall_report(
    bin: &Path,
    hosts: &[BenchHost],
    scratch: &Path,
    failures: &mut Vec<String>,
) -> Result<String> {
    let (Some(empty), Some(large)) = (hosts.first(), hosts.get(2)) else {
        return Ok(String::new());
    };
    let mut r = format!(
        "\n| command | syscalls empty | syscalls {} | per device | budget | per device, by call |\n",
        large.spec.definitions
    );
    r.push_str("|---|---|---|---|---|---|\n");
    for case in &CASES {
        let s0 = syscalls(bin, &empty.root, case.args, scratch)?;
        let sl = syscalls(bin, &large.root, case.args, scratch)?;
        let n = large.count(case.per).max(1) as f64;
        let extra = |name: &str| {
            let a = s0.get(name).copied().unwrap_or(0);
            let b = sl.get(name).copied().unwrap_or(0);
            b.saturating_sub(a) as f64 / n
        };
        let per = extra("total");
        // The calls the per-device cost is made of (those above 0.1 per device).
        let mut by_call: Vec<(&String, f64)> = sl
            .keys()
            .filter(|k| k.as_str() != "total")
            .map(|k| (k, extra(k)))
            .filter(|(_, v)| *v >= 0.1)
            .collect();
        by_call.sort_by(|a, b| b.1.total_cmp(&a.1));
        let by_call: Vec<String> = by_call.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
        let checked = case.per != Per::Parent;
        let budget = if checked {
            format!("{}", case.budget)
        } else {
            "-".into()
        };
        let _ = writeln!(
            r,
            "| `mdevctl {}` | {} | {} | {per:.2} | {budget} | {} |",
            case.args.join(" "),
            s0.get("total").copied().unwrap_or(0),
            sl.get("total").copied().unwrap_or(0),
            by_call.join(", ")
        );
        if checked && per > case.budget {
            failures.push(format!(
                "mdevctl {}: {per:.2} syscalls per device, budget {}",
                case.args.join(" "),
                case.budget
            ));
        }
    }
    Ok(r)
}
