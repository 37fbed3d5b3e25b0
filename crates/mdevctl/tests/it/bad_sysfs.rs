//! Odd sysfs trees: bad names, dangling and looping links, half-registered parents and
//! unreadable type attributes. Each is skipped with one warning naming the path; the rest
//! is still printed, exit 0, never a panic (DIVERGENCES §1, §4; spec §3.4, §3.5).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;

use crate::common::*;

/// The one stderr line, masked, with the log prefix checked and removed.
fn one_warning(t: &Transcript, root: &FakeRoot) -> String {
    let lines = t.warnings(root);
    assert_eq!(lines.len(), 1, "want one warning line, got {lines:#?}");
    assert!(lines[0].starts_with("[TS WARN  "), "{}", lines[0]);
    lines[0].split_once("] ").unwrap().1.to_owned()
}

fn active_host() -> FakeRoot {
    let root = FakeRoot::new();
    root.parent("mtty")
        .mdev_type("mtty", "mtty-1", TypeSpec::new(2, "vfio-pci"))
        .active(U1, "mtty", "mtty-1");
    root
}

fn u1_line() -> String {
    format!("{U1} mtty mtty-1 manual\n")
}

#[test]
fn sysfs_non_uuid_device_name_is_skipped_with_warning() {
    let root = active_host();
    root.symlink(
        format!("../../../devices/virtual/mtty/mtty/{U1}"),
        "sys/bus/mdev/devices/not-a-uuid",
    );
    let t = mdevctl(&root, &["list"]);
    assert_eq!(t.code, 0);
    assert_eq!(t.stdout, u1_line());
    assert_eq!(
        one_warning(&t, &root),
        "Skipping <ROOT>/sys/bus/mdev/devices/not-a-uuid: name is not a UUID"
    );
}

#[test]
fn sysfs_non_utf8_device_name_is_skipped_with_warning_not_a_panic() {
    let root = active_host();
    let mut link = root.join("sys/bus/mdev/devices");
    link.push(OsStr::from_bytes(b"\xff\xfe"));
    symlink("nowhere", &link).unwrap();
    let t = mdevctl(&root, &["list"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert_eq!(t.stdout, u1_line());
    assert_eq!(
        one_warning(&t, &root),
        "Skipping <ROOT>/sys/bus/mdev/devices/\u{fffd}\u{fffd}: name is not a UUID"
    );
}

#[test]
fn sysfs_dangling_device_link_is_skipped_with_warning() {
    let root = active_host();
    root.symlink(
        format!("../../../devices/virtual/mtty/mtty/{U2}"),
        format!("sys/bus/mdev/devices/{U2}"),
    );
    let t = mdevctl(&root, &["list"]);
    assert_eq!(t.code, 0);
    assert_eq!(t.stdout, u1_line());
    let w = one_warning(&t, &root);
    assert!(
        w.starts_with(&format!("Skipping <ROOT>/sys/bus/mdev/devices/{U2}: ")),
        "{w}"
    );
    assert!(w.contains("No such file or directory"), "{w}");
}

#[test]
fn sysfs_looping_device_link_is_skipped_with_warning() {
    let root = active_host();
    root.symlink(U2, format!("sys/bus/mdev/devices/{U2}"));
    let t = mdevctl(&root, &["list"]);
    assert_eq!(t.code, 0);
    assert_eq!(t.stdout, u1_line());
    let w = one_warning(&t, &root);
    assert!(
        w.starts_with(&format!("Skipping <ROOT>/sys/bus/mdev/devices/{U2}: ")),
        "{w}"
    );
    assert!(w.contains("symbolic links"), "{w}");
}

#[test]
fn sysfs_device_without_mdev_type_link_is_skipped_with_warning() {
    let root = active_host();
    root.active(U2, "mtty", "mtty-1");
    root.remove(format!("{}/{U2}/mdev_type", FakeRoot::parent_dir("mtty")));
    let t = mdevctl(&root, &["list"]);
    assert_eq!(t.code, 0);
    assert_eq!(t.stdout, u1_line());
    let w = one_warning(&t, &root);
    assert!(
        w.starts_with(&format!(
            "Skipping <ROOT>/sys/bus/mdev/devices/{U2}: cannot resolve \
             <ROOT>/sys/bus/mdev/devices/{U2}/mdev_type: "
        )),
        "{w}"
    );
}

#[test]
fn sysfs_broken_device_does_not_hide_defined_listing() {
    let root = active_host();
    root.define("mtty", U1, "mtty-1", "auto");
    root.symlink(U2, format!("sys/bus/mdev/devices/{U2}"));
    let t = mdevctl(&root, &["list", "-d"]);
    assert_eq!(t.code, 0);
    assert_eq!(t.stdout, format!("{U1} mtty mtty-1 auto (active)\n"));
    assert_eq!(t.warnings(&root).len(), 1);
}

#[test]
fn sysfs_missing_bus_directories_mean_nothing_active() {
    let root = FakeRoot::new();
    root.remove("sys/bus");
    root.remove("sys/class");
    root.define("mtty", U1, "mtty-1", "auto");
    for (args, want) in [
        (&["list"][..], String::new()),
        (&["list", "--dumpjson"], "[]".to_owned()),
        (&["list", "-d"], format!("{U1} mtty mtty-1 auto\n")),
        (&["types"], String::new()),
        (&["types", "--dumpjson"], "[]".to_owned()),
    ] {
        let t = mdevctl(&root, args);
        t.assert_clean();
        assert_eq!(t.stdout, want, "{args:?}");
    }
}

#[test]
fn types_parent_without_supported_types_is_skipped_with_warning() {
    let root = standard_host();
    root.parent_without_types("0.0.0313");
    let want = mdevctl(&root, &["types"]).stdout;
    assert!(!want.contains("0.0.0313"));
    let t = mdevctl(&root, &["types"]);
    assert_eq!(t.code, 0);
    assert!(t.stdout.starts_with("0000:00:02.0\n"), "{}", t.stdout);
    assert_eq!(
        one_warning(&t, &root),
        "Skipping <ROOT>/sys/class/mdev_bus/0.0.0313/mdev_supported_types: parent skipped: \
         No such file or directory (os error 2)"
    );
    let j = mdevctl(&root, &["types", "--dumpjson"]);
    assert_eq!(j.code, 0);
    assert!(j.stdout.contains("\"mtty\"") && !j.stdout.contains("0.0.0313"));
    let only = mdevctl(&root, &["types", "-p", "0.0.0313", "--dumpjson"]);
    assert_eq!(only.code, 0);
    assert_eq!(only.stdout, "[]");
}

#[test]
fn types_dangling_parent_link_is_skipped_with_warning() {
    let root = FakeRoot::new();
    root.parent("mtty")
        .mdev_type("mtty", "mtty-1", TypeSpec::new(1, "vfio-pci"));
    root.symlink("../../devices/gone", "sys/class/mdev_bus/gone");
    let t = mdevctl(&root, &["types"]);
    assert_eq!(t.code, 0);
    assert_eq!(
        t.stdout,
        "mtty\n  mtty-1\n    Available instances: 1\n    Device API: vfio-pci\n"
    );
    assert_eq!(
        one_warning(&t, &root),
        "Skipping <ROOT>/sys/class/mdev_bus/gone/mdev_supported_types: parent skipped: \
         No such file or directory (os error 2)"
    );
}

#[test]
fn types_looping_parent_link_is_skipped_with_warning() {
    let root = FakeRoot::new();
    root.symlink("loop", "sys/class/mdev_bus/loop");
    let t = mdevctl(&root, &["types"]);
    assert_eq!(t.code, 0);
    assert_eq!(t.stdout, "");
    let w = one_warning(&t, &root);
    assert!(
        w.starts_with("Skipping <ROOT>/sys/class/mdev_bus/loop/mdev_supported_types: "),
        "{w}"
    );
}

/// A host with parent `p`: type `good`, and type `bad` built by `spec`.
fn types_host_with_bad_type(spec: TypeSpec) -> FakeRoot {
    let root = FakeRoot::new();
    root.parent("p")
        .mdev_type("p", "good", TypeSpec::new(3, "vfio-pci"))
        .mdev_type("p", "bad", spec);
    root
}

fn assert_bad_type_skipped(spec: TypeSpec, reason: &str) {
    let root = types_host_with_bad_type(spec);
    let t = mdevctl(&root, &["types"]);
    assert_eq!(t.code, 0);
    assert_eq!(
        t.stdout,
        "p\n  good\n    Available instances: 3\n    Device API: vfio-pci\n"
    );
    let dir = format!(
        "<ROOT>/{}/mdev_supported_types/bad",
        FakeRoot::parent_dir("p")
    );
    let dir = dir.replace("sys/devices/virtual/p/p", "sys/class/mdev_bus/p");
    assert_eq!(
        one_warning(&t, &root),
        format!(
            "Skipping {dir}: type skipped: {}",
            reason.replace("{dir}", &dir)
        )
    );
    let j = mdevctl(&root, &["types", "--dumpjson"]);
    assert_eq!(j.code, 0);
    assert!(j.stdout.contains("\"good\"") && !j.stdout.contains("\"bad\""));
}

#[test]
fn types_missing_available_instances_skips_type_with_warning() {
    let mut spec = TypeSpec::new(0, "vfio-pci");
    spec.available_instances = None;
    assert_bad_type_skipped(
        spec,
        "cannot read {dir}/available_instances: No such file or directory (os error 2)",
    );
}

#[test]
fn types_garbage_available_instances_skips_type_with_warning() {
    let mut spec = TypeSpec::new(0, "vfio-pci");
    spec.available_instances = Some("lots".into());
    assert_bad_type_skipped(
        spec,
        "{dir}/available_instances does not hold a number: 'lots'",
    );
}

#[test]
fn types_empty_available_instances_skips_type_with_warning() {
    let mut spec = TypeSpec::new(0, "vfio-pci");
    spec.available_instances = Some(String::new());
    assert_bad_type_skipped(spec, "{dir}/available_instances does not hold a number: ''");
}

#[test]
fn types_missing_device_api_skips_type_with_warning() {
    let mut spec = TypeSpec::new(1, "");
    spec.device_api = None;
    assert_bad_type_skipped(
        spec,
        "cannot read {dir}/device_api: No such file or directory (os error 2)",
    );
}

#[test]
fn types_available_instances_as_directory_skips_type_with_warning() {
    let mut spec = TypeSpec::new(0, "vfio-pci");
    spec.available_instances = None;
    let root = types_host_with_bad_type(spec);
    root.mkdir(format!(
        "{}/mdev_supported_types/bad/available_instances",
        FakeRoot::parent_dir("p")
    ));
    let t = mdevctl(&root, &["types"]);
    assert_eq!(t.code, 0);
    assert!(!t.stdout.contains("bad"));
    assert!(one_warning(&t, &root).contains("Is a directory"));
}

#[test]
fn types_non_utf8_parent_name_is_skipped_with_warning_not_a_panic() {
    let root = FakeRoot::new();
    root.parent("mtty");
    let mut link = root.join("sys/class/mdev_bus");
    link.push(OsStr::from_bytes(b"p\xff"));
    symlink("../../devices/virtual/mtty/mtty", &link).unwrap();
    let t = mdevctl(&root, &["types"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert_eq!(t.stdout, "mtty\n");
    assert_eq!(
        one_warning(&t, &root),
        "Skipping <ROOT>/sys/class/mdev_bus/p\u{fffd}: name is not a valid parent name"
    );
}

#[test]
fn types_non_utf8_type_name_is_skipped_with_warning_not_a_panic() {
    let root = FakeRoot::new();
    root.parent("mtty");
    let mut dir = root.join(format!(
        "{}/mdev_supported_types",
        FakeRoot::parent_dir("mtty")
    ));
    dir.push(OsStr::from_bytes(b"t\xff"));
    fs::create_dir(&dir).unwrap();
    let t = mdevctl(&root, &["types"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert_eq!(t.stdout, "mtty\n");
    assert_eq!(
        one_warning(&t, &root),
        "Skipping <ROOT>/sys/class/mdev_bus/mtty/mdev_supported_types/t\u{fffd}: \
         name is not a valid type name"
    );
}

#[test]
fn types_non_utf8_attribute_contents_are_printed_lossily() {
    let root = FakeRoot::new();
    root.parent("p")
        .mdev_type("p", "t", TypeSpec::new(1, "vfio-pci"));
    let dir = format!("{}/mdev_supported_types/t", FakeRoot::parent_dir("p"));
    root.write(format!("{dir}/name"), b"N\xff\n");
    let t = mdevctl(&root, &["types"]);
    t.assert_clean();
    assert!(t.stdout.contains("    Name: N\u{fffd}\n"), "{}", t.stdout);
}

#[test]
fn sysfs_dangling_mdev_type_link_is_skipped_with_warning() {
    let root = active_host();
    root.active(U2, "mtty", "gone");
    let t = mdevctl(&root, &["list"]);
    assert_eq!(t.code, 0);
    assert_eq!(t.stdout, u1_line());
    let w = one_warning(&t, &root);
    assert!(
        w.starts_with(&format!(
            "Skipping <ROOT>/sys/bus/mdev/devices/{U2}: cannot resolve \
             <ROOT>/sys/bus/mdev/devices/{U2}/mdev_type: No such file or directory"
        )),
        "{w}"
    );
}

#[test]
fn sysfs_looping_mdev_type_link_is_skipped_with_warning() {
    let root = active_host();
    root.active(U2, "mtty", "mtty-1");
    let link = format!("{}/{U2}/mdev_type", FakeRoot::parent_dir("mtty"));
    root.remove(&link);
    root.symlink("mdev_type", &link);
    let t = mdevctl(&root, &["list"]);
    assert_eq!(t.code, 0);
    assert_eq!(
        t.stdout,
        u1_line(),
        "a looping link is not a type named 'mdev_type'"
    );
    let w = one_warning(&t, &root);
    assert!(
        w.starts_with(&format!(
            "Skipping <ROOT>/sys/bus/mdev/devices/{U2}: cannot resolve \
             <ROOT>/sys/bus/mdev/devices/{U2}/mdev_type: "
        )),
        "{w}"
    );
}
