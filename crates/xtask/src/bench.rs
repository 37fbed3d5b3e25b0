//! `cargo xtask bench`: times the listings, `types` and `start-parent-mdevs` on generated
//! hosts of growing size and reports ratios (per-item cost at large vs small scale, time
//! over the floor program's, syscalls per item) and peak RSS, because shared machines are
//! too noisy for absolute times to mean much.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub(crate) use crate::workload::{check, run, BenchHost, CASES};
use crate::workload::{check_floor, env_command, Hosts, Syscalls};

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

/// Times of one case: per host (empty, small, large) the runs of mdevctl and of the floor.
#[derive(Debug, Default, Clone)]
struct CaseTimes {
    ours: [Vec<Duration>; 3],
    floor: [Vec<Duration>; 3],
}

fn pick(t: &[Vec<Duration>; 3], f: fn(Vec<Duration>) -> Duration) -> [f64; 3] {
    t.clone().map(|v| ms(f(v)))
}

/// Medians per command and host, and the per-device cost at both sizes. A large/small
/// ratio near 1.0 means linear scaling. The ratio is also given from the fastest runs,
/// which a busy machine disturbs less than the median.
fn timing_table(hosts: &Hosts, times: &[CaseTimes]) -> Result<String> {
    let mut r = String::from(
        "| command | items small / large | empty ms | small ms | large ms | \
         µs/item small | µs/item large | per-item cost large/small | same, fastest runs |\n",
    );
    r.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for (case, t) in CASES.iter().zip(times) {
        let [_, hs, hl] = hosts.of(case.family)?;
        let (ns, nl) = (hs.count(case.per), hl.count(case.per));
        let med = pick(&t.ours, median);
        let min = pick(&t.ours, |v| v.into_iter().min().unwrap_or_default());
        let [t0, ts, tl] = med;
        let (us_s, us_l) = per_device_us(med, ns, nl);
        let (min_s, min_l) = per_device_us(min, ns, nl);
        // A small host timed no slower than the empty one leaves no per-item cost to
        // compare with: the machine's noise was larger than the work.
        let ratio = |small: [f64; 3], s: f64, l: f64| {
            if small[1] > small[0] {
                format!("{:.2}", l / s)
            } else {
                "n/a (noise)".to_owned()
            }
        };
        let _ = writeln!(
            r,
            "| {} | {ns} / {nl} | {t0:.2} | {ts:.2} | {tl:.2} | {us_s:.2} | {us_l:.2} | {} | {} |",
            case.label(),
            ratio(med, us_s, us_l),
            ratio(min, min_s, min_l)
        );
    }
    Ok(r)
}

/// mdevctl against the floor (`mdev-floor`, the unavoidable I/O only) on the large host,
/// timed alternately in the same repetitions.
fn floor_table(times: &[CaseTimes]) -> String {
    let mut r = String::from(
        "\n| command (large host) | mdevkit ms | floor ms | **mdevkit / floor** |\n|---|---|---|---|\n",
    );
    for (case, t) in CASES.iter().zip(times) {
        let Some(mode) = case.floor else { continue };
        let [.., ours] = pick(&t.ours, median);
        let [.., floor] = pick(&t.floor, median);
        let _ = writeln!(
            r,
            "| {} (floor: `mdev-floor {mode}`) | {ours:.2} | {floor:.2} | **{:.2}** |",
            case.label(),
            ours / floor.max(1e-6)
        );
    }
    r
}

/// Peak resident set size, in KiB, of `bin args` on `root`: run through this executable's
/// hidden `peak-rss` task, whose only child it is (`getrusage(RUSAGE_CHILDREN)`).
pub(crate) fn peak_rss_kib(bin: &Path, root: &Path, args: &[&str]) -> Result<u64> {
    let me = std::env::current_exe().context("locating the xtask executable")?;
    let out = Command::new(me)
        .arg("peak-rss")
        .arg("--root")
        .arg(root)
        .arg(bin)
        .arg("--")
        .args(args)
        .output()
        .context("running peak-rss")?;
    if !out.status.success() {
        anyhow::bail!(
            "peak-rss {} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("parsing peak-rss output")
}

/// The hidden `peak-rss` task: runs `bin args` on `root` and returns its peak RSS in KiB
/// (the largest of it and anything it ran, e.g. callout scripts).
pub fn peak_rss_of_child(bin: &Path, root: &Path, args: &[String]) -> Result<u64> {
    let status = env_command(bin, root)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .with_context(|| format!("running {}", bin.display()))?;
    if !status.success() {
        anyhow::bail!("{} exited with {status}", bin.display());
    }
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .context("getrusage")?;
    u64::try_from(usage.max_rss()).context("negative max_rss")
}

/// Runs the benchmark; returns the report (markdown) or an error when a check or a
/// syscall budget fails.
pub fn bench(opts: &BenchOpts) -> Result<String> {
    let bin = match &opts.binary {
        Some(b) => b.clone(),
        None => crate::cargo::build_mdevctl(true)?,
    };
    // The CI smoke run does not look at times: a dev build of the floor is enough there.
    let floor = crate::cargo::build_floor(!opts.small)?;
    // Absolute, so that runs through strace or a mount namespace find the same file.
    let bin = std::fs::canonicalize(&bin).with_context(|| format!("{}", bin.display()))?;
    let mut opts = opts.clone();
    if let Some(up) = &opts.upstream {
        opts.upstream =
            Some(std::fs::canonicalize(up).with_context(|| format!("{}", up.display()))?);
    }
    let opts = &opts;
    let scratch = tempfile::Builder::new()
        .prefix("mdevkit-bench-")
        .tempdir()
        .context("creating the scratch directory")?;
    let result = bench_in(opts, &bin, &floor, scratch.path());
    if opts.keep {
        // The report names the directory; it outlives this run.
        let _ = scratch.keep();
    }
    result
}

/// Runs `floor mode root`.
fn run_floor(floor: &Path, mode: &str, root: &Path) -> Result<std::process::Output> {
    Command::new(floor)
        .arg(mode)
        .arg(root)
        .output()
        .with_context(|| format!("running {}", floor.display()))
}

fn bench_in(opts: &BenchOpts, bin: &Path, floor: &Path, scratch: &Path) -> Result<String> {
    let (small, large) = if opts.small {
        (200, 2000)
    } else {
        (1000, 10000)
    };
    let hosts = Hosts::generate(scratch, small, large)?;
    let mut r = String::new();
    let _ = writeln!(r, "machine: {}", machine_facts());
    let _ = writeln!(r, "binary: {}", bin.display());
    let _ = writeln!(
        r,
        "hosts: store (8 parents; 0, {small} and {large} definitions, a tenth of them active), \
         callout (8 parents; 0, {} and {} active devices, all defined, one versioned callout), \
         autostart (1 parent; 0, {} and {} auto definitions), ccw (0, {} and {} vfio-ccw \
         parents); {} repetitions, median\n",
        small / 10,
        large / 10,
        small / 10,
        large / 10,
        hosts.of(crate::workload::Family::Ccw)?[1].spec.parents,
        hosts.of(crate::workload::Family::Ccw)?[2].spec.parents,
        opts.reps
    );

    // Warm the page cache and check every output once before timing anything.
    for case in &CASES {
        for host in hosts.of(case.family)? {
            check(&run(bin, &host.root, case.args)?, host, case, "mdevkit")?;
            if let Some(mode) = case.floor {
                check_floor(&run_floor(floor, mode, &host.root)?, host, case)?;
            }
        }
    }
    // Repetitions interleave hosts, commands and the floor, so drift hits every cell alike.
    let mut times = vec![CaseTimes::default(); CASES.len()];
    for _ in 0..opts.reps.max(1) {
        for (case, t) in CASES.iter().zip(times.iter_mut()) {
            for (h, host) in hosts.of(case.family)?.iter().enumerate() {
                let start = Instant::now();
                let out = run(bin, &host.root, case.args)?;
                let elapsed = start.elapsed();
                check(&out, host, case, "mdevkit")?;
                if let Some(v) = t.ours.get_mut(h) {
                    v.push(elapsed);
                }
                if let Some(mode) = case.floor {
                    let start = Instant::now();
                    let out = run_floor(floor, mode, &host.root)?;
                    let elapsed = start.elapsed();
                    check_floor(&out, host, case)?;
                    if let Some(v) = t.floor.get_mut(h) {
                        v.push(elapsed);
                    }
                }
            }
        }
    }

    r.push_str(&timing_table(&hosts, &times)?);
    r.push_str(&floor_table(&times));

    r.push_str("\n| command (large host) | peak RSS (MiB) |\n|---|---|\n");
    for case in &CASES {
        let [.., large_host] = hosts.of(case.family)?;
        let kib = peak_rss_kib(bin, &large_host.root, case.args)?;
        let _ = writeln!(r, "| {} | {:.1} |", case.label(), kib as f64 / 1024.0);
    }

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
        anyhow::bail!("{r}\nsyscall check failed:\n  {}", failures.join("\n  "));
    }
    Ok(r)
}

/// Syscalls of each command on the empty and the large host, per item walked, and which
/// calls make up the per-item cost. Over-budget listings are added to `failures`, and so is
/// any listing that sleeps (`clock_nanosleep`): a listing without callouts never waits.
fn syscall_report(
    bin: &Path,
    hosts: &Hosts,
    scratch: &Path,
    failures: &mut Vec<String>,
) -> Result<String> {
    let mut r = String::from(
        "\n| command | syscalls empty | syscalls large | per item | budget | per item, by call |\n",
    );
    r.push_str("|---|---|---|---|---|---|\n");
    for case in &CASES {
        if case.syscalls == Syscalls::Skip {
            continue;
        }
        let [empty, _, large] = hosts.of(case.family)?;
        let s0 = syscalls(bin, &empty.root, case.args, scratch)?;
        let sl = syscalls(bin, &large.root, case.args, scratch)?;
        let n = large.count(case.per).max(1) as f64;
        let extra = |name: &str| {
            let a = s0.get(name).copied().unwrap_or(0);
            let b = sl.get(name).copied().unwrap_or(0);
            b.saturating_sub(a) as f64 / n
        };
        let per = extra("total");
        // The calls the per-item cost is made of (those above 0.1 per item).
        let mut by_call: Vec<(&String, f64)> = sl
            .keys()
            .filter(|k| k.as_str() != "total")
            .map(|k| (k, extra(k)))
            .filter(|(_, v)| *v >= 0.1)
            .collect();
        by_call.sort_by(|a, b| b.1.total_cmp(&a.1));
        let by_call: Vec<String> = by_call.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
        let budget = match case.syscalls {
            Syscalls::Budget(b) => format!("{b}"),
            Syscalls::Report | Syscalls::Skip => "-".into(),
        };
        let _ = writeln!(
            r,
            "| {} | {} | {} | {per:.2} | {budget} | {} |",
            case.label(),
            s0.get("total").copied().unwrap_or(0),
            sl.get("total").copied().unwrap_or(0),
            by_call.join(", ")
        );
        if let Syscalls::Budget(b) = case.syscalls {
            if per > b {
                failures.push(format!(
                    "mdevctl {}: {per:.2} syscalls per item, budget {b}",
                    case.args.join(" ")
                ));
            }
            for sleep in ["clock_nanosleep", "nanosleep"] {
                if let Some(calls) = sl.get(sleep).or(s0.get(sleep)) {
                    failures.push(format!(
                        "mdevctl {}: {calls} {sleep} calls; a listing never sleeps",
                        case.args.join(" ")
                    ));
                }
            }
        }
    }
    Ok(r)
}
