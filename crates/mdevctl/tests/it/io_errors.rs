//! An I/O error is not absence: a store directory or definition that exists but cannot be
//! read (no file descriptor left, no permission) is reported with its path. Commands that
//! target a device fail with it instead of saying "not defined"; listings warn and go on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::*;
use crate::life::*;

/// `mdevctl <args>` with at most 4 open files: stdin, stdout, stderr and one more, which
/// the inter-process lock of a state-changing command takes, so that opening the store
/// fails with EMFILE.
fn mdevctl_four_files(root: &FakeRoot, args: &[&str]) -> Transcript {
    mdevctl_max_files(root, "--nofile=4", args)
}

/// `mdevctl <args>` under `prlimit <limit>` (util-linux).
fn mdevctl_max_files(root: &FakeRoot, limit: &str, args: &[&str]) -> Transcript {
    let bin = bin();
    let mut argv: Vec<&OsStr> = vec![OsStr::new(limit), OsStr::new("--"), bin.as_os_str()];
    argv.extend(args.iter().map(OsStr::new));
    let out = clean_command(root, Path::new("prlimit"), &argv)
        .output()
        .unwrap();
    Transcript {
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        code: out.status.code().unwrap(),
    }
}

fn defined_host() -> FakeRoot {
    let root = FakeRoot::new();
    root.parent("mtty")
        .mdev_type("mtty", "mtty-1", TypeSpec::new(4, "vfio-pci"))
        .define("mtty", U1, "mtty-1", "manual");
    root
}

const STORE_EMFILE: &str =
    "Error: cannot read directory <ROOT>/etc/mdevctl.d: Too many open files (os error 24)\n";

#[test]
fn modify_out_of_file_descriptors_names_the_store_instead_of_not_defined() {
    let root = defined_host();
    let before = snapshot(&root);
    let t = mdevctl_four_files(&root, &["modify", "-u", U1, "--auto"]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert_eq!(t.stderr_masked(&root), STORE_EMFILE);
    assert_eq!(snapshot(&root), before);
}

#[test]
fn undefine_out_of_file_descriptors_names_the_store_and_removes_nothing() {
    let root = defined_host();
    let before = snapshot(&root);
    let t = mdevctl_four_files(&root, &["undefine", "-u", U1]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert_eq!(t.stderr_masked(&root), STORE_EMFILE);
    assert_eq!(snapshot(&root), before);
}

#[test]
fn undefine_of_a_definition_that_cannot_be_opened_names_it_and_removes_nothing() {
    // Five files: the lock and the parent's directory leave none for the definition.
    let root = defined_host();
    let before = snapshot(&root);
    let t = mdevctl_max_files(&root, "--nofile=5", &["undefine", "-u", U1]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert_eq!(
        t.stderr_masked(&root),
        format!(
            "Error: cannot read definition <ROOT>/etc/mdevctl.d/mtty/{U1}: \
             Too many open files (os error 24)\n"
        )
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn start_out_of_file_descriptors_names_the_store_instead_of_insufficient() {
    let root = defined_host();
    let before = snapshot(&root);
    let t = mdevctl_four_files(&root, &["start", "-u", U1]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert_eq!(t.stderr_masked(&root), STORE_EMFILE);
    assert_eq!(snapshot(&root), before);
}

#[test]
fn list_defined_warns_about_an_unreadable_parent_directory_and_lists_the_rest() {
    // As root, mode 000 does not stop reads: the binary runs as uid 65534 then.
    let root = defined_host();
    root.define("matrix", U2, "vfio_ap-passthrough", "auto");
    let dir = root.join("etc/mdevctl.d/matrix");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o000)).unwrap();
    let t = mdevctl_unprivileged(&root, &["list", "-d"]);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert_eq!(t.stdout, format!("{U1} mtty mtty-1 manual\n"));
    let lines = t.warnings(&root);
    assert_eq!(lines.len(), 1, "want one warning line, got {lines:#?}");
    assert!(lines[0].starts_with("[TS WARN  "), "{}", lines[0]);
    assert!(
        lines[0].ends_with(
            "] cannot read directory <ROOT>/etc/mdevctl.d/matrix: Permission denied (os error 13)"
        ),
        "{}",
        lines[0]
    );
}

#[test]
fn list_warns_about_an_unreadable_mdev_bus() {
    let root = standard_host();
    let dir = root.join("sys/bus/mdev/devices");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o000)).unwrap();
    let t = mdevctl_unprivileged(&root, &["list"]);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert_eq!(t.stdout, "");
    let lines = t.warnings(&root);
    assert_eq!(lines.len(), 1, "want one warning line, got {lines:#?}");
    assert!(
        lines[0].ends_with(
            "] cannot read directory <ROOT>/sys/bus/mdev/devices: Permission denied (os error 13)"
        ),
        "{}",
        lines[0]
    );
}
