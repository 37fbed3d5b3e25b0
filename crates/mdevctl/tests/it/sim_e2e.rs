//! End to end: the mdevctl binary against mdev-sim's FUSE-mounted, kernel-faithful sysfs root.
//!
//! Each test mounts a profile at `<tmp>/sys` and runs mdevctl with `MDEVCTL_ENV_ROOT=<tmp>`.
//! Without FUSE the tests print one line and pass, except under `CI=true`, where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mdev_sim::{MountedSim, Profile, Sim};

const MDEVCTL: &str = env!("CARGO_BIN_EXE_mdevctl");
const U1: &str = "11111111-2222-4333-8444-555555555555";
const U2: &str = "22222222-3333-4444-8555-666666666666";
const U3: &str = "33333333-4444-4555-8666-777777777777";
const EIO: i32 = 5;

struct Env {
    root: PathBuf,
    sim: Option<MountedSim>,
    /// Removed after the simulator is unmounted (`Drop` below, then field drop).
    _dir: tempfile::TempDir,
}

impl Env {
    /// A root with the mdevctl directories and the profile mounted at `root/sys`, or None
    /// (skip) when FUSE is unavailable outside CI.
    fn new(test: &str, profile: &str) -> Option<Env> {
        if !mdev_sim::fuse_for_test(test).unwrap() {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("mdevctl-sim-e2e-{test}-"))
            .tempdir()
            .unwrap();
        let root = dir.path().to_path_buf();
        mdev_sim::prepare_env_root(&root).unwrap();
        let sim = Sim::mount(&root.join("sys"), Profile::builtin(profile).unwrap()).unwrap();
        Some(Env {
            root,
            sim: Some(sim),
            _dir: dir,
        })
    }

    fn sim(&self) -> &MountedSim {
        self.sim.as_ref().unwrap()
    }

    fn mdevctl(&self, args: &[&str]) -> Output {
        Command::new(MDEVCTL)
            .args(args)
            .env("MDEVCTL_ENV_ROOT", &self.root)
            .output()
            .unwrap()
    }

    /// Runs mdevctl and insists on success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.mdevctl(args);
        assert!(
            out.status.success(),
            "mdevctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs mdevctl and insists on exit status 1; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.mdevctl(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "mdevctl {args:?} should fail: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn active(&self) -> Vec<String> {
        self.sim().active_devices()
    }

    fn define_with_attrs(&self, uuid: &str, parent: &str, ty: &str, attrs: &[(&str, &str)]) {
        self.ok(&["define", "-u", uuid, "-p", parent, "-t", ty]);
        for (name, value) in attrs {
            self.ok(&["modify", "-u", uuid, "--addattr", name, "--value", value]);
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        drop(self.sim.take());
    }
}

#[test]
fn types_come_from_the_simulated_kernel() {
    let Some(env) = Env::new("types", "mtty") else {
        return;
    };
    let out = env.ok(&["types"]);
    assert!(
        out.starts_with("mtty\n  mtty-1\n    Available instances: 24\n"),
        "{out}"
    );
    assert!(out.contains("    Name: Dual port serial\n"), "{out}");
}

#[test]
fn a_started_device_appears_and_is_listed_as_active() {
    let Some(env) = Env::new("start", "mtty") else {
        return;
    };
    env.ok(&["start", "-u", U1, "-p", "mtty", "-t", "mtty-2"]);
    assert_eq!(env.active(), [U1]);
    let list = env.ok(&["list"]);
    assert!(
        list.starts_with(&format!("{U1} mtty mtty-2 manual")),
        "{list}"
    );
    let types = env.ok(&["types", "-p", "mtty"]);
    assert!(types.contains("Available instances: 11"), "{types}");
    // Starting it again is refused.
    env.fails(&["start", "-u", U1, "-p", "mtty", "-t", "mtty-2"]);
    env.ok(&["stop", "-u", U1]);
    assert!(env.active().is_empty());
    assert_eq!(env.ok(&["list"]), "");
}

#[test]
fn a_failing_attribute_write_rolls_the_device_back() {
    let Some(env) = Env::new("rollback", "nvidia") else {
        return;
    };
    let gpu = "0000:83:00.0";
    // The NVIDIA driver wants vgpu_params to end with a newline: EINVAL, and mdevctl removes
    // the device it had just created.
    env.define_with_attrs(U1, gpu, "nvidia-18", &[("nvidia/vgpu_params", "x=1")]);
    let err = env.fails(&["start", "-u", U1]);
    assert!(err.contains("nvidia/vgpu_params"), "{err}");
    assert!(
        env.active().is_empty(),
        "not rolled back: {:?}",
        env.active()
    );
    let types = env.ok(&["types", "-p", gpu]);
    assert!(types.contains("Available instances: 16"), "{types}");
    // The same with an injected I/O error on a value the driver would take.
    env.ok(&["modify", "-u", U1, "--delattr", "--index", "0"]);
    env.ok(&[
        "modify",
        "-u",
        U1,
        "--addattr",
        "nvidia/vgpu_params",
        "--value",
        "x=1\n",
    ]);
    env.sim()
        .fail_next(&format!("bus/mdev/devices/{U1}/nvidia/vgpu_params"), EIO);
    let err = env.fails(&["start", "-u", U1]);
    assert!(err.contains("vgpu_params"), "{err}");
    assert!(env.active().is_empty());
    env.ok(&["start", "-u", U1]);
    assert_eq!(env.active(), [U1]);
}

#[test]
fn vfio_ap_assignments_in_a_conflicting_order_fail_where_the_kernel_would() {
    let Some(env) = Env::new("vfio-ap", "vfio-ap") else {
        return;
    };
    let ap = "vfio_ap-passthrough";
    env.define_with_attrs(
        U1,
        "matrix",
        ap,
        &[("assign_adapter", "5"), ("assign_domain", "0x47")],
    );
    env.ok(&["start", "-u", U1]);
    // Domain first: the adapter write completes the shared queue 05.0047 and is refused.
    env.define_with_attrs(
        U2,
        "matrix",
        ap,
        &[("assign_domain", "0x47"), ("assign_adapter", "5")],
    );
    let err = env.fails(&["start", "-u", U2]);
    assert!(err.contains("assign_adapter"), "{err}");
    assert!(!err.contains("assign_domain"), "{err}");
    assert!(
        err.contains("EADDRINUSE") && err.contains("already assigned to another mdev"),
        "{err}"
    );
    // Adapter first: now the domain write is the one refused.
    env.define_with_attrs(
        U3,
        "matrix",
        ap,
        &[("assign_adapter", "5"), ("assign_domain", "0x47")],
    );
    let err = env.fails(&["start", "-u", U3]);
    assert!(err.contains("assign_domain"), "{err}");
    assert_eq!(env.active(), [U1]);
    // A queue the host keeps (adapters 0-3 x domains 0-7): EADDRNOTAVAIL on the domain.
    env.ok(&["undefine", "-u", U3]);
    env.define_with_attrs(
        U3,
        "matrix",
        ap,
        &[("assign_adapter", "2"), ("assign_domain", "3")],
    );
    let err = env.fails(&["start", "-u", U3]);
    assert!(
        err.contains("assign_domain") && err.contains("EADDRNOTAVAIL"),
        "{err}"
    );
    // Out of range: ENODEV.
    env.ok(&["undefine", "-u", U3]);
    env.define_with_attrs(U3, "matrix", ap, &[("assign_adapter", "300")]);
    let err = env.fails(&["start", "-u", U3]);
    assert!(err.contains("ENODEV"), "{err}");
    assert_eq!(env.active(), [U1]);
}

#[test]
fn stop_of_a_busy_device_fails_with_a_clear_error() {
    let Some(env) = Env::new("busy", "mtty") else {
        return;
    };
    env.ok(&["start", "-u", U1, "-p", "mtty", "-t", "mtty-1"]);
    env.sim().set_busy(U1, true).unwrap();
    let err = env.fails(&["stop", "-u", U1]);
    assert!(err.contains(U1) && err.contains("EBUSY"), "{err}");
    assert_eq!(env.active(), [U1]);
    env.sim().set_busy(U1, false).unwrap();
    env.ok(&["stop", "-u", U1]);
    assert!(env.active().is_empty());
}

#[test]
fn autostart_runs_when_a_parent_appears_late() {
    let Some(env) = Env::new("autostart", "demo") else {
        return;
    };
    let gpu = "0000:84:00.0";
    env.ok(&["define", "-u", U1, "-p", gpu, "-t", "nvidia-18", "--auto"]);
    env.ok(&["define", "-u", U2, "-p", gpu, "-t", "nvidia-18"]);
    env.sim().set_hook(&[
        "env".to_string(),
        format!("MDEVCTL_ENV_ROOT={}", env.root.display()),
        MDEVCTL.to_string(),
        "start-parent-mdevs".to_string(),
    ]);
    // Registered without types yet: nothing can start, and udev has not been told.
    env.sim().add_parent_unpublished(gpu).unwrap();
    assert!(env.sim().wait_hooks(Duration::from_secs(5)).is_empty());
    assert!(env.active().is_empty());
    env.sim().publish_types(gpu).unwrap();
    let runs = env.sim().wait_hooks(Duration::from_secs(30));
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].status, Some(0), "{runs:?}");
    // Only the auto device started.
    assert_eq!(env.active(), [U1]);
    let list = env.ok(&["list", "-p", gpu]);
    assert!(
        list.starts_with(&format!("{U1} {gpu} nvidia-18 auto (defined)")),
        "{list}"
    );
    // The driver goes away and comes back: the device follows.
    env.sim().remove_parent(gpu).unwrap();
    assert!(env.active().is_empty());
    env.sim().add_parent(gpu).unwrap();
    assert_eq!(env.sim().wait_hooks(Duration::from_secs(30)).len(), 2);
    assert_eq!(env.active(), [U1]);
}

/// udev's `add` can come before the parent has published its types (a vendor daemon still
/// starting, mdevctl issue #82): `start-parent-mdevs` waits a bounded time for them instead
/// of failing at once.
#[test]
fn autostart_waits_for_types_a_parent_publishes_late() {
    let Some(env) = Env::new("autostart-late-types", "demo") else {
        return;
    };
    let gpu = "0000:84:00.0";
    env.ok(&["define", "-u", U1, "-p", gpu, "-t", "nvidia-18", "--auto"]);
    env.sim().add_parent_unpublished(gpu).unwrap();
    let mut child = Command::new(MDEVCTL)
        .args(["start-parent-mdevs", gpu])
        .env("MDEVCTL_ENV_ROOT", &env.root)
        .env("MDEVCTL_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    // Each read blocks until mdevctl writes: the types are published only once it waits.
    loop {
        line.clear();
        let n = stderr.read_line(&mut line).unwrap();
        assert!(
            n > 0,
            "start-parent-mdevs ended without waiting for the types"
        );
        if line.contains("Waiting up to") {
            break;
        }
    }
    assert!(line.contains(gpu), "{line}");
    assert!(env.active().is_empty());
    env.sim().publish_types(gpu).unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest}");
    assert!(!rest.contains("Failed to start"), "{rest}");
    assert_eq!(env.active(), [U1], "{rest}");
}

#[test]
fn a_half_registered_parent_is_skipped_by_types_and_refused_by_start() {
    let Some(env) = Env::new("half-registered", "demo") else {
        return;
    };
    let gpu = "0000:84:00.0";
    env.sim().add_parent_unpublished(gpu).unwrap();
    let out = env.mdevctl(&["types"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains(gpu), "{stderr}");
    assert!(!stdout.contains(gpu), "{stdout}");
    assert!(stdout.contains("mtty\n"), "{stdout}");
    let err = env.fails(&["start", "-u", U1, "-p", gpu, "-t", "nvidia-18"]);
    assert!(
        err.contains(&format!(
            "Parent {gpu} is not currently registered for mdev support"
        )),
        "{err}"
    );
    let err = env.fails(&["start", "-u", U1, "-p", "MTTY", "-t", "mtty-1"]);
    assert!(err.contains("Did you mean 'mtty'?"), "{err}");
    assert!(env.active().is_empty());
}

#[test]
fn kernel_errors_on_create_and_remove_name_the_errno_the_file_and_the_cause() {
    let Some(env) = Env::new("errno", "mtty") else {
        return;
    };
    let create = "class/mdev_bus/mtty/mdev_supported_types/mtty-1/create";
    // (errno, its name, a word of the hint mdevctl adds for `create`)
    for (errno, name, hint) in [
        (22, "EINVAL", "refused"),
        (17, "EEXIST", "already exists"),
        (28, "ENOSPC", "no instances"),
        (19, "ENODEV", "not ready"),
    ] {
        env.sim().fail_next(create, errno);
        let err = env.fails(&["start", "-u", U1, "-p", "mtty", "-t", "mtty-1"]);
        assert!(
            err.starts_with(&format!(
                "Error: Failed to create mdev {U1}, type mtty-1 on mtty: writing '{U1}' to "
            )),
            "{err}"
        );
        assert!(err.contains("mtty-1/create failed with "), "{err}");
        assert!(err.contains(name), "{name}: {err}");
        assert!(err.contains(hint), "{name}: {err}");
        assert!(env.active().is_empty(), "{name}: nothing was created");
    }
    env.ok(&["start", "-u", U1, "-p", "mtty", "-t", "mtty-1"]);
    env.sim()
        .fail_next(&format!("bus/mdev/devices/{U1}/remove"), 19);
    let err = env.fails(&["stop", "-u", U1]);
    assert!(
        err.starts_with(&format!(
            "Error: failed to remove device {U1}: writing '1' to "
        )),
        "{err}"
    );
    assert!(err.contains("/remove failed with ENODEV"), "{err}");
    env.ok(&["stop", "-u", U1]);
    assert!(env.active().is_empty());
}

#[test]
fn a_kernel_like_tree_never_gets_a_missing_trigger_file() {
    let Some(env) = Env::new("fstype", "mtty") else {
        return;
    };
    env.ok(&["start", "-u", U1, "-p", "mtty", "-t", "mtty-1"]);
    let host = mdevkit::Host::new(mdevkit::Roots::under(&env.root));
    assert_eq!(host.sysfs_kind(), mdevkit::host::fstype::SysfsKind::Kernel);
    // An existing device directory without such a file: the write must not create it.
    let missing = env
        .root
        .join(format!("sys/bus/mdev/devices/{U1}/no_such_trigger"));
    let err = host.write_trigger(&missing, b"1").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    assert!(!missing.exists());
    env.ok(&["stop", "-u", U1]);
}
