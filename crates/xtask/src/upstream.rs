//! `cargo xtask bench --upstream <mdevctl>`: the same commands, on the same generated host,
//! run by an upstream mdevctl binary, reported as mdevkit/upstream time ratios.
//!
//! Upstream reads `MDEVCTL_ENV_ROOT` only from 1.3.0 on; Debian ships 1.2.0. When the root
//! override is ignored, both binaries are run in a private mount namespace instead, where
//! the host's `sys` is bind-mounted over `/sys` and its `etc` and `usr/lib` are overlaid
//! (read-only) on the real ones. The mounts exist only inside that namespace, and both
//! binaries pay the same overlay costs, so the ratio stays fair.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::bench::{check, median, ms, run, strace_available, syscalls_via, BenchHost, CASES};
use crate::fsutil;
use crate::workload::{Family, Hosts, Syscalls};

/// How the binaries see the generated host.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Method {
    EnvRoot,
    Namespace,
}

/// Runs each of `bins` with `args`, alternating, `reps` times; returns per binary the median
/// and the first run's output. Alternating makes drift on a busy machine hit both alike.
/// `root` sets `MDEVCTL_ENV_ROOT`; without it the process's own view of `/` is used (inside
/// the namespace).
pub fn time_alternating(
    bins: &[PathBuf],
    args: &[String],
    reps: usize,
    root: Option<&Path>,
) -> Result<Vec<(Duration, Output)>> {
    let once = |bin: &Path| {
        let mut cmd = Command::new(bin);
        cmd.args(args);
        match root {
            Some(r) => cmd.env("MDEVCTL_ENV_ROOT", r),
            None => cmd.env_remove("MDEVCTL_ENV_ROOT"),
        };
        cmd.output()
            .with_context(|| format!("running {}", bin.display()))
    };
    let mut firsts = Vec::new();
    for bin in bins {
        firsts.push(once(bin)?);
    }
    let mut times = vec![Vec::new(); bins.len()];
    for _ in 0..reps.max(1) {
        for (bin, t) in bins.iter().zip(times.iter_mut()) {
            let start = Instant::now();
            once(bin)?;
            t.push(start.elapsed());
        }
    }
    Ok(times.into_iter().map(median).zip(firsts).collect())
}

/// What the hidden `time-runs` task leaves in `out`: per binary `<i>.stdout` and `<i>.code`,
/// and `medians` (nanoseconds, one per line).
pub fn save_time_runs(out: &Path, results: &[(Duration, Output)]) -> Result<()> {
    let mut medians = String::new();
    for (i, (median, first)) in results.iter().enumerate() {
        let code = first.status.code().unwrap_or(-1);
        fsutil::write_file(&out.join(format!("{i}.stdout")), &first.stdout, 0o644)?;
        fsutil::write_file(
            &out.join(format!("{i}.code")),
            code.to_string().as_bytes(),
            0o644,
        )?;
        let _ = writeln!(medians, "{}", median.as_nanos());
    }
    fsutil::write_file(&out.join("medians"), medians.as_bytes(), 0o644)
}

fn load_time_runs(out: &Path, n: usize) -> Result<Vec<(Duration, Output)>> {
    let read = |name: &str| {
        std::fs::read_to_string(out.join(name)).with_context(|| format!("reading {name}"))
    };
    let medians: Vec<u64> = read("medians")?
        .lines()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("parsing medians")?;
    let mut results = Vec::new();
    for (i, ns) in medians.into_iter().enumerate().take(n) {
        let code: i32 = read(&format!("{i}.code"))?
            .trim()
            .parse()
            .context("parsing exit code")?;
        let stdout = std::fs::read(out.join(format!("{i}.stdout"))).context("reading stdout")?;
        let output = Output {
            status: exit_status(code),
            stdout,
            stderr: Vec::new(),
        };
        results.push((Duration::from_nanos(ns), output));
    }
    if results.len() != n {
        anyhow::bail!("time-runs left {} results, expected {n}", results.len());
    }
    Ok(results)
}

/// The mounts of the namespace: `$1` is the host root, `$2` a compat layer, the rest the
/// command to exec.
const NAMESPACE_SCRIPT: &str = r#"set -e
mount --bind "$1/sys" /sys
mount -t overlay overlay -o "lowerdir=$2/etc:$1/etc:/etc" /etc
mount -t overlay overlay -o "lowerdir=$1/usr/lib:/usr/lib" /usr/lib
shift 2
exec "$@""#;

/// The command line that execs its remaining arguments in a namespace showing `host` at `/`.
fn namespace_launcher(host: &BenchHost, compat: &Path) -> Vec<OsString> {
    let mut argv: Vec<OsString> = ["unshare", "--mount", "--propagation", "private", "--"]
        .map(OsString::from)
        .to_vec();
    argv.extend(["sh", "-c", NAMESPACE_SCRIPT, "sh"].map(OsString::from));
    argv.push(host.root.clone().into());
    argv.push(compat.into());
    argv
}

/// [`time_alternating`] in a namespace showing `host` at `/`, through this very
/// executable's hidden `time-runs` task.
fn time_in_namespace(
    bins: &[PathBuf],
    host: &BenchHost,
    compat: &Path,
    args: &[&str],
    reps: usize,
    scratch: &Path,
) -> Result<Vec<(Duration, Output)>> {
    let me = std::env::current_exe().context("locating the xtask executable")?;
    let out_dir = scratch.join("time-runs");
    let _ = std::fs::remove_dir_all(&out_dir);
    let launcher = namespace_launcher(host, compat);
    let (program, rest) = launcher.split_first().context("empty launcher")?;
    let out = Command::new(program)
        .args(rest)
        .arg(me)
        .args(["time-runs", "--reps", &reps.to_string(), "--out"])
        .arg(&out_dir)
        .args(bins)
        .arg("--")
        .args(args)
        .env_remove("MDEVCTL_ENV_ROOT")
        .output()
        .context("running unshare")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        anyhow::bail!("namespace run failed ({}): {}", out.status, err.trim());
    }
    load_time_runs(&out_dir, bins.len())
}

fn exit_status(code: i32) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatusExt::from_raw((code & 0xff) << 8)
}

fn time(
    method: Method,
    bins: &[PathBuf],
    host: &BenchHost,
    compat: &Path,
    args: &[&str],
    reps: usize,
    scratch: &Path,
) -> Result<Vec<(Duration, Output)>> {
    match method {
        Method::Namespace => time_in_namespace(bins, host, compat, args, reps, scratch),
        Method::EnvRoot => {
            let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
            time_alternating(bins, &args, reps, Some(&host.root))
        }
    }
}

/// Compares on the large hosts; says why when it cannot.
pub(crate) fn compare(
    ours: &Path,
    up: &Path,
    hosts: &Hosts,
    scratch: &Path,
    reps: usize,
) -> Result<String> {
    let mut r = String::from("\nUpstream comparison (large hosts):\n\n");
    let [.., host] = hosts.of(Family::Store)?;
    // mdevctl before 1.3 also insists on the deprecated /etc/mdevctl.d/scripts.d dirs.
    let compat = scratch.join("compat");
    for d in ["callouts", "notifiers"] {
        crate::fsutil::mkdir(&compat.join("etc/mdevctl.d/scripts.d").join(d))?;
    }
    let probe = &CASES[0];
    let method = match check(&run(up, &host.root, probe.args)?, host, probe, "upstream") {
        Ok(()) => Method::EnvRoot,
        Err(e) => {
            let _ = writeln!(r, "- with MDEVCTL_ENV_ROOT: {e:#}");
            let ns = time_in_namespace(&[up.to_path_buf()], host, &compat, probe.args, 1, scratch)
                .and_then(|res| match res.first() {
                    Some((_, out)) => check(out, host, probe, "upstream"),
                    None => anyhow::bail!("no result"),
                });
            if let Err(e) = ns {
                let _ = writeln!(r, "- in a private mount namespace: {e:#}\n\nskipped.");
                return Ok(r);
            }
            let _ = writeln!(
                r,
                "- so both binaries ran in a private mount namespace with the host mounted at /\n"
            );
            Method::Namespace
        }
    };
    r.push_str(
        "| command | upstream ms | mdevkit ms | **mdevkit/upstream** | upstream peak RSS MiB | mdevkit peak RSS MiB |\n\
         |---|---|---|---|---|---|\n",
    );
    let bins = [up.to_path_buf(), ours.to_path_buf()];
    for case in &CASES {
        let [.., host] = hosts.of(case.family)?;
        let res = time(method, &bins, host, &compat, case.args, reps, scratch)?;
        let [(tu, out_u), (to, out_o)] = res.as_slice() else {
            anyhow::bail!("expected two timings, got {}", res.len());
        };
        check(out_u, host, case, "upstream")?;
        check(out_o, host, case, "mdevkit")?;
        let (u, o) = (ms(*tu), ms(*to));
        // Peak RSS only where both see the host through MDEVCTL_ENV_ROOT.
        let rss = |bin: &Path| -> Result<String> {
            Ok(match method {
                Method::EnvRoot => {
                    let kib = crate::bench::peak_rss_kib(bin, &host.root, case.args)?;
                    format!("{:.1}", kib as f64 / 1024.0)
                }
                Method::Namespace => "-".into(),
            })
        };
        let _ = writeln!(
            r,
            "| {} | {u:.2} | {o:.2} | **{:.2}** | {} | {} |",
            case.label(),
            o / u.max(1e-6),
            rss(up)?,
            rss(ours)?
        );
    }
    if strace_available() {
        r.push_str(&compare_syscalls(
            method, ours, up, hosts, &compat, scratch,
        )?);
    }
    Ok(r)
}

/// Total syscalls of `bin args` on `host`, seen the way `method` shows the host.
fn total_syscalls(
    method: Method,
    bin: &Path,
    host: &BenchHost,
    compat: &Path,
    args: &[&str],
    scratch: &Path,
) -> Result<u64> {
    let counts: BTreeMap<String, u64> = match method {
        Method::EnvRoot => syscalls_via(&[], Some(&host.root), bin, args, scratch)?,
        Method::Namespace => {
            syscalls_via(&namespace_launcher(host, compat), None, bin, args, scratch)?
        }
    };
    Ok(counts.get("total").copied().unwrap_or(0))
}

/// Syscalls per item walked (large host minus empty host), upstream next to ours.
fn compare_syscalls(
    method: Method,
    ours: &Path,
    up: &Path,
    hosts: &Hosts,
    compat: &Path,
    scratch: &Path,
) -> Result<String> {
    let mut r = String::from(
        "\n| command | upstream syscalls/item | mdevkit syscalls/item |\n|---|---|---|\n",
    );
    for case in CASES.iter().filter(|c| c.syscalls != Syscalls::Skip) {
        let [empty, _, large] = hosts.of(case.family)?;
        let n = large.count(case.per).max(1) as f64;
        let mut per = Vec::new();
        for bin in [up, ours] {
            let c0 = total_syscalls(method, bin, empty, compat, case.args, scratch)?;
            let cl = total_syscalls(method, bin, large, compat, case.args, scratch)?;
            per.push(cl.saturating_sub(c0) as f64 / n);
        }
        let _ = writeln!(
            r,
            "| {} | {:.2} | {:.2} |",
            case.label(),
            per.first().copied().unwrap_or_default(),
            per.get(1).copied().unwrap_or_default()
        );
    }
    Ok(r)
}
