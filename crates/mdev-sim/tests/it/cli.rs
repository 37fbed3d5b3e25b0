//! The `mdev-sim` command: profiles, plain trees, detached mounts, signals, stale mounts, ctl.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mdev-sim");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn is_mounted(path: &Path) -> bool {
    mdev_sim::mounted_fs(path).is_some()
}

/// The pid printed by `mount --detach`.
fn detached_pid(out: &Output) -> i32 {
    let s = String::from_utf8_lossy(&out.stdout);
    let at = s.find("(pid ").unwrap() + 5;
    s[at..].split(')').next().unwrap().parse().unwrap()
}

fn kill(pid: i32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

/// Polls for up to 120 s, only a guard against a hang (CI machines can be slow); a timeout
/// says what the mounts looked like.
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !f() {
        if Instant::now() >= deadline {
            let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            let ours: Vec<&str> = mounts.lines().filter(|l| l.contains("mdev-sim")).collect();
            panic!("timed out waiting for {what}; mdev-sim mounts now: {ours:#?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn profiles_are_listed() {
    let out = run(&["profiles"]);
    assert!(out.status.success());
    let t = text(&out);
    for name in [
        "demo", "mtty", "mdpy", "mbochs", "i915", "nvidia", "vfio-ap", "vfio-ccw", "l40s", "h100",
    ] {
        assert!(
            t.lines().any(|l| l.starts_with(name)),
            "{name} missing in {t}"
        );
    }
    let out = run(&["mount", "--profile", "no-such", "/tmp/x"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("unknown built-in profile 'no-such'"));
}

#[test]
fn plain_writes_an_ordinary_tree() {
    let dir = temp_dir("plain");
    let out = run(&["plain", "--profile", "samples", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let t = dir.join("class/mdev_bus/mtty/mdev_supported_types/mtty-2");
    assert_eq!(
        std::fs::read_to_string(t.join("available_instances")).unwrap(),
        "12\n"
    );
    assert_eq!(
        std::fs::read_to_string(t.join("name")).unwrap(),
        "Dual port serial\n"
    );
    assert_eq!(
        std::fs::canonicalize(dir.join("class/mdev_bus/mtty")).unwrap(),
        std::fs::canonicalize(dir.join("devices/virtual/mtty/mtty")).unwrap()
    );
    assert!(!dir.join("mdev-sim").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn errors_print_their_causes_on_one_line() {
    let dir = temp_dir("errors");
    let file = dir.join("broken.json");
    std::fs::write(&file, "{").unwrap();
    let out = run(&[
        "plain",
        "--profile",
        file.to_str().unwrap(),
        dir.join("tree").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let top = format!(
        "mdev-sim: profile {} is not valid JSON for mdev-sim: ",
        file.display()
    );
    // The message, then its cause once, all on one line.
    assert!(err.starts_with(&top), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(err.matches("EOF while parsing").count(), 1, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A child that fails before it mounts closes its ready pipe, and `--detach` reports why.
#[test]
fn detach_reports_a_simulator_that_could_not_mount() {
    if !fuse_or_skip("detach_failure") {
        return;
    }
    let dir = temp_dir("detach-fail");
    let file = dir.join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let out = run(&[
        "mount",
        "--profile",
        "mtty",
        "--detach",
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("mdev-sim: the simulator exited"), "{err}");
    assert!(
        err.contains(&format!(
            "mount point {} is not usable: File exists",
            file.display()
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn detached_mount_ctl_sigterm_and_stale_mounts() {
    if !fuse_or_skip("detached_mount") {
        return;
    }
    let dir = temp_dir("detach");
    let sys = dir.join("sys");
    let sys_s = sys.to_str().unwrap();
    let out = run(&["mount", "--profile", "mtty", "--detach", sys_s]);
    assert!(out.status.success(), "{}", text(&out));
    let pid = detached_pid(&out);
    assert!(sys.join("class/mdev_bus/mtty").exists());

    // A second simulator on the same live mount point is refused.
    let out = run(&["mount", "--profile", "mtty", sys_s]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("already served by a running mdev-sim"),
        "{}",
        text(&out)
    );

    // ctl: good and bad commands.
    let out = run(&["ctl", sys_s, "remove-parent", "mtty"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!sys.join("class/mdev_bus/mtty").exists());
    let out = run(&["ctl", sys_s, "remove-parent", "mtty"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("parent 'mtty' is not present"),
        "{}",
        text(&out)
    );

    // kill -9: fusermount3's auto-unmount watchdog usually takes the mount down; when it
    // loses the race with the kernel aborting the connection, a dead mount stays instead.
    kill(pid, "-9");
    wait_until("the killed simulator's mount to go away or go dead", || {
        !is_mounted(&sys)
            || std::fs::metadata(&sys).err().and_then(|e| e.raw_os_error()) == Some(libc::ENOTCONN)
    });

    // Without fusermount3 in PATH (root mounts directly, with no watchdog), kill -9 always
    // leaves a dead mount behind; the next start clears it (and any the watchdog left).
    if is_root() {
        let out = Command::new(BIN)
            .args(["mount", "--profile", "mtty", "--detach", sys_s])
            .env("PATH", "/nonexistent")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        kill(detached_pid(&out), "-9");
        wait_until("the killed simulator's mount to go dead", || {
            std::fs::metadata(&sys).err().and_then(|e| e.raw_os_error()) == Some(libc::ENOTCONN)
        });
    }
    let out = run(&["mount", "--profile", "mtty", "--detach", sys_s]);
    assert!(out.status.success(), "{}", text(&out));
    let pid = detached_pid(&out);
    assert!(sys.join("class/mdev_bus/mtty").exists());

    // SIGTERM unmounts cleanly and the process ends.
    kill(pid, "-TERM");
    wait_until("SIGTERM to unmount", || !is_mounted(&sys));
    wait_until("the simulator to exit", || {
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn umount_stops_a_foreground_simulator() {
    if !fuse_or_skip("umount") {
        return;
    }
    let dir = temp_dir("umount");
    let sys = dir.join("sys");
    let mut child = Command::new(BIN)
        .args(["mount", "--profile", "vfio-ap"])
        .arg(&sys)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the mount", || sys.join("mdev-sim/control").exists());
    let out = run(&["umount", sys.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    // The simulator notices the unmount by itself; the test only guards against a hang.
    let mut status = None;
    wait_until("the simulator to exit after umount", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(!is_mounted(&sys));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's first command, against the workspace's mdevctl (built next to mdev-sim by
/// `cargo test --workspace`).
#[test]
fn demo_runs_a_whole_mdevctl_session() {
    if !fuse_or_skip("demo") {
        return;
    }
    let mdevctl = Path::new(BIN).with_file_name("mdevctl");
    if !mdevctl.is_file() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("no mdevctl binary at {}", mdevctl.display());
        }
        eprintln!("skipping demo: build mdevctl first (cargo test --workspace does)");
        return;
    }
    let out = run(&["demo", "--mdevctl", mdevctl.to_str().unwrap()]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("$ mdevctl types\n"), "{t}");
    assert!(t.contains("05.0047\n"), "{t}");
    assert!(t.contains("every step behaved as expected"), "{t}");
    // The temporary root is gone and nothing stays mounted.
    let root = t
        .lines()
        .find_map(|l| l.strip_prefix("# mdev-sim demo: profile 'demo' mounted at "))
        .unwrap();
    assert!(!Path::new(root).exists(), "{root} left behind");
}
