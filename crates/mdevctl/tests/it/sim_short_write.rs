//! End to end: a sysfs store that takes fewer bytes than offered (mdev-sim's `short` rule).
//!
//! A truncated attribute write must not count as success: `mdevctl start` fails, names the
//! short write and the file, and removes the device it had just created.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use mdev_sim::{Profile, Sim};

use crate::common::{TempDir, U1};

const MDEVCTL: &str = env!("CARGO_BIN_EXE_mdevctl");

fn mdevctl(root: &TempDir, args: &[&str]) -> Output {
    Command::new(MDEVCTL)
        .args(args)
        .env("MDEVCTL_ENV_ROOT", root.path())
        .output()
        .unwrap()
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_short_attribute_write_fails_start_and_rolls_the_device_back() {
    if !mdev_sim::fuse_for_test("short_write").unwrap() {
        return;
    }
    let root = TempDir::new();
    mdev_sim::prepare_env_root(root.path()).unwrap();
    let sim = Sim::mount(
        &root.path().join("sys"),
        Profile::builtin("vfio-ap").unwrap(),
    )
    .unwrap();
    for args in [
        &[
            "define",
            "-u",
            U1,
            "-p",
            "matrix",
            "-t",
            "vfio_ap-passthrough",
        ][..],
        &[
            "modify",
            "-u",
            U1,
            "--addattr",
            "assign_adapter",
            "--value",
            "16",
        ],
    ] {
        let out = mdevctl(&root, args);
        assert!(out.status.success(), "{}", show(&out));
    }
    let attr = format!("bus/mdev/devices/{U1}/assign_adapter");
    // The store takes "1" of "16": adapter 1 instead of 16, unless mdevctl notices.
    sim.short_write(&attr, 1);
    let out = mdevctl(&root, &["start", "-u", U1]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("short write"), "{}", show(&out));
    assert!(err.contains("assign_adapter"), "{}", show(&out));
    assert!(
        sim.active_devices().is_empty(),
        "not rolled back: {:?}",
        sim.active_devices()
    );
    // Positive control: the rule was used up, and the same start now works whole.
    let out = mdevctl(&root, &["start", "-u", U1]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(sim.active_devices(), [U1]);
    let matrix = sim
        .mountpoint()
        .join(format!("bus/mdev/devices/{U1}/matrix"));
    assert_eq!(std::fs::read_to_string(matrix).unwrap(), "10.\n");
}
