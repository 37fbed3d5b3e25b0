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
use std::path::Path;
use std::process::{Command, ExitStatus, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::bench::{check, median, ms, run, strace_available, syscalls_via, Host, Per, CASES};

/// How the binaries see the generated host.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Method {
    EnvRoot,
    Namespace,
}

/// Runs `bin args` `reps` times in this process's view of the file system (no root
/// override); returns the median and the first run's output. Used inside the namespace.
pub fn time_local(bin: &Path, args: &[String], reps: usize) -> Result<(Duration, Output)> {
    let once = || {
        Command::new(bin)
            .args(args)
            .env_remove("MDEVCTL_ENV_ROOT")
            .output()
            .with_context(|| format!("running {}", bin.display()))
    };
    let first = once()?;
    let mut times = Vec::new();
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        once()?;
        times.push(t.elapsed());
    }
    Ok((median(times), first))
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
fn namespace_launcher(host: &Host, compat: &Path) -> Vec<OsString> {
    let mut argv: Vec<OsString> = ["unshare", "--mount", "--propagation", "private", "--"]
        .map(OsString::from)
        .to_vec();
    argv.extend(["sh", "-c", NAMESPACE_SCRIPT, "sh"].map(OsString::from));
    argv.push(host.root.clone().into());
    argv.push(compat.into());
    argv
}

/// Runs `bin args` `reps` times in a namespace showing `host` at `/`, through this very
/// executable's hidden `time-runs` task; parses its `median_ns <n>` line and the output.
fn time_in_namespace(
    bin: &Path,
    host: &Host,
    compat: &Path,
    args: &[&str],
    reps: usize,
) -> Result<(Duration, Output)> {
    let me = std::env::current_exe().context("locating the xtask executable")?;
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            NAMESPACE_SCRIPT,
            "sh",
        ])
        .arg(&host.root)
        .arg(compat)
        .arg(me)
        .args(["time-runs", "--reps", &reps.to_string()])
        .arg(bin)
        .arg("--")
        .args(args)
        .env_remove("MDEVCTL_ENV_ROOT")
        .output()
        .context("running unshare")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (head, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let ns: u64 = match head.strip_prefix("median_ns ").map(str::parse) {
        Some(Ok(n)) if out.status.success() => n,
        _ => {
            let err = String::from_utf8_lossy(&out.stderr);
            anyhow::bail!("namespace run failed ({}): {}", out.status, err.trim());
        }
    };
    let inner = Output {
        status: exit_status(rest.starts_with("status 0\n")),
        stdout: rest
            .split_once('\n')
            .map_or("", |(_, r)| r)
            .as_bytes()
            .to_vec(),
        stderr: out.stderr,
    };
    Ok((Duration::from_nanos(ns), inner))
}

/// What `time-runs` prints: the median, the first run's exit code, then its stdout.
pub fn format_time_runs(median: Duration, first: &Output) -> Vec<u8> {
    let code = first.status.code().unwrap_or(-1);
    let mut out = format!("median_ns {}\nstatus {code}\n", median.as_nanos()).into_bytes();
    out.extend_from_slice(&first.stdout);
    out
}

fn exit_status(success: bool) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatusExt::from_raw(if success { 0 } else { 1 << 8 })
}

fn time(
    method: Method,
    bin: &Path,
    host: &Host,
    compat: &Path,
    args: &[&str],
    reps: usize,
) -> Result<(Duration, Output)> {
    match method {
        Method::Namespace => time_in_namespace(bin, host, compat, args, reps),
        Method::EnvRoot => {
            let first = run(bin, &host.root, args)?;
            let mut times = Vec::new();
            for _ in 0..reps.max(1) {
                let t = Instant::now();
                run(bin, &host.root, args)?;
                times.push(t.elapsed());
            }
            Ok((median(times), first))
        }
    }
}

/// Compares on the large host; says why when it cannot.
pub(crate) fn compare(
    ours: &Path,
    up: &Path,
    hosts: &[Host],
    scratch: &Path,
    reps: usize,
) -> Result<String> {
    let mut r = String::from("\nUpstream comparison (large host):\n\n");
    let Some(host) = hosts.get(2) else {
        return Ok(r);
    };
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
            let ns = time_in_namespace(up, host, &compat, probe.args, 1)
                .and_then(|(_, out)| check(&out, host, probe, "upstream"));
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
    r.push_str("| command | upstream ms | mdevkit ms | mdevkit/upstream |\n|---|---|---|---|\n");
    for case in &CASES {
        let (tu, out_u) = time(method, up, host, &compat, case.args, reps)?;
        check(&out_u, host, case, "upstream")?;
        let (to, out_o) = time(method, ours, host, &compat, case.args, reps)?;
        check(&out_o, host, case, "mdevkit")?;
        let (u, o) = (ms(tu), ms(to));
        let _ = writeln!(
            r,
            "| `mdevctl {}` | {u:.2} | {o:.2} | {:.2} |",
            case.args.join(" "),
            o / u.max(1e-6)
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
    host: &Host,
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

/// Syscalls per device walked (large host minus empty host), upstream next to ours.
fn compare_syscalls(
    method: Method,
    ours: &Path,
    up: &Path,
    hosts: &[Host],
    compat: &Path,
    scratch: &Path,
) -> Result<String> {
    let (Some(empty), Some(large)) = (hosts.first(), hosts.get(2)) else {
        return Ok(String::new());
    };
    let mut r = String::from(
        "\n| command | upstream syscalls/device | mdevkit syscalls/device |\n|---|---|---|\n",
    );
    for case in CASES.iter().filter(|c| c.per != Per::Parent) {
        let n = large.count(case.per).max(1) as f64;
        let mut per = Vec::new();
        for bin in [up, ours] {
            let c0 = total_syscalls(method, bin, empty, compat, case.args, scratch)?;
            let cl = total_syscalls(method, bin, large, compat, case.args, scratch)?;
            per.push(cl.saturating_sub(c0) as f64 / n);
        }
        let _ = writeln!(
            r,
            "| `mdevctl {}` | {:.2} | {:.2} |",
            case.args.join(" "),
            per[0],
            per[1]
        );
    }
    Ok(r)
}
