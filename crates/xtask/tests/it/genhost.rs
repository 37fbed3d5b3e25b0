//! The generated host has the kernel's sysfs shape and mdevctl's store format, and the real
//! `mdevctl` reads it back: every definition, every active device, the cross-markers.

// A test fails by panicking.
#![allow(clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::genhost::{self, HostSpec};

/// A fresh, empty directory, removed when dropped.
fn tmp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("xtask-test-{name}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("creating a temp dir: {e}"))
}

fn canon(p: &Path) -> PathBuf {
    fs::canonicalize(p).unwrap_or_else(|e| panic!("canonicalize {}: {e}", p.display()))
}

fn mdevctl(root: &Path, args: &[&str]) -> String {
    let bin = xtask::cargo::build_mdevctl(false).unwrap_or_else(|e| panic!("build: {e:#}"));
    let out = Command::new(bin)
        .args(args)
        .env("MDEVCTL_ENV_ROOT", root)
        .output()
        .unwrap_or_else(|e| panic!("running mdevctl: {e}"));
    assert!(out.status.success(), "mdevctl {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn generated_host_has_the_kernel_shape_and_mdevctl_reads_it() {
    let dir = tmp("genhost");
    let root = dir.path();
    let spec = HostSpec {
        definitions: 30,
        parents: 3,
        active: 5,
        seed: 7,
        ..Default::default()
    };
    let sum = genhost::generate(root, &spec).unwrap_or_else(|e| panic!("generate: {e:#}"));
    assert_eq!(
        (sum.parents.len(), sum.defined.len(), sum.active.len()),
        (3, 30, 5)
    );
    // Refuses to write over an existing host.
    assert!(genhost::generate(root, &spec).is_err());

    for p in &sum.parents {
        let class = root.join("sys/class/mdev_bus").join(p);
        let target = fs::read_link(&class).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert!(target.is_relative(), "{}", target.display());
        let dir = canon(&class);
        assert!(
            dir.starts_with(canon(&root.join("sys/devices"))),
            "{}",
            dir.display()
        );
        for t in genhost::TYPES.map(|t| t.0) {
            let tdir = dir.join("mdev_supported_types").join(t);
            for f in ["available_instances", "device_api", "name", "create"] {
                assert!(tdir.join(f).is_file(), "{}/{f}", tdir.display());
            }
        }
    }
    for (p, u) in &sum.active {
        let dev = canon(&root.join("sys/bus/mdev/devices").join(u));
        // spec §3.4: parent = the canonical path's parent dir; type = mdev_type's target.
        assert_eq!(dev.parent().and_then(|d| d.file_name()), Some(p.as_ref()));
        let ty = canon(&dev.join("mdev_type"));
        assert_eq!(
            ty.parent().and_then(|d| d.file_name()),
            Some("mdev_supported_types".as_ref())
        );
    }
    for (p, u) in &sum.defined {
        let text = fs::read_to_string(root.join("etc/mdevctl.d").join(p).join(u))
            .unwrap_or_else(|e| panic!("{p}/{u}: {e}"));
        assert!(text.starts_with("{\n  \"mdev_type\": \"mtty-"), "{text}");
        assert!(
            text.ends_with('}'),
            "no trailing newline expected: {text:?}"
        );
    }
    for d in ["callouts", "notifiers"] {
        assert!(root.join("usr/lib/mdevctl/scripts.d").join(d).is_dir());
    }

    let defined = mdevctl(root, &["list", "-d"]);
    assert_eq!(defined.lines().count(), 30, "{defined}");
    assert_eq!(defined.matches("(active)").count(), 5, "{defined}");
    let active = mdevctl(root, &["list"]);
    assert_eq!(active.lines().count(), 5, "{active}");
    assert_eq!(active.matches("(defined)").count(), 5, "{active}");
    let types = mdevctl(root, &["types"]);
    assert_eq!(
        types.lines().filter(|l| !l.starts_with(' ')).count(),
        3,
        "{types}"
    );
}

fn floor(mode: &str, root: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mdev-floor"))
        .arg(mode)
        .arg(root)
        .output()
        .unwrap_or_else(|e| panic!("running mdev-floor: {e}"));
    assert!(out.status.success(), "mdev-floor {mode}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_floor_reads_every_definition_and_active_device() {
    let dir = tmp("floor");
    let root = dir.path();
    let spec = HostSpec {
        definitions: 30,
        parents: 3,
        active: 5,
        seed: 7,
        ..Default::default()
    };
    genhost::generate(root, &spec).unwrap_or_else(|e| panic!("generate: {e:#}"));
    assert_eq!(floor("defined", root), "30\n");
    assert_eq!(floor("active", root), "5\n");
}

#[test]
fn host_kinds_give_ccw_parents_a_callout_and_startable_auto_definitions() {
    let dir = tmp("kinds");
    let root = dir.path();
    let spec = HostSpec {
        definitions: 4,
        parents: 3,
        active: 2,
        seed: 7,
        parent_kind: genhost::ParentKind::VfioCcw,
        mix: genhost::Mix::AutoPlain,
        callout: true,
    };
    let sum = genhost::generate(root, &spec).unwrap_or_else(|e| panic!("generate: {e:#}"));
    let types = mdevctl(root, &["types"]);
    assert!(types.starts_with("0.0.0010\n  vfio_ccw-io\n"), "{types}");
    // The callout answers get attributes for every active device.
    let active = mdevctl(root, &["list", "-v"]);
    assert_eq!(
        active.matches(r#"{"example_attr":"1"}"#).count(),
        2,
        "{active}"
    );
    let defined = mdevctl(root, &["list", "-d"]);
    assert_eq!(defined.matches(" auto").count(), 4, "{defined}");
    // Every auto definition not yet active starts (the plain `create` file takes the write).
    let out = Command::new(xtask::cargo::build_mdevctl(false).unwrap_or_else(|e| panic!("{e:#}")))
        .args(["start-parent-mdevs", "0.0.0012"])
        .env("MDEVCTL_ENV_ROOT", root)
        .output()
        .unwrap_or_else(|e| panic!("running mdevctl: {e}"));
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    let created = fs::read_to_string(
        root.join("sys/class/mdev_bus/0.0.0012/mdev_supported_types/vfio_ccw-io/create"),
    )
    .unwrap_or_else(|e| panic!("create: {e}"));
    let want: Vec<&String> = sum
        .defined
        .iter()
        .filter(|(p, _)| p == "0.0.0012")
        .map(|(_, u)| u)
        .collect();
    assert_eq!(
        want,
        [&created],
        "the one auto definition of 0.0.0012 was created"
    );
}

/// `--parents` beyond what the kind's names can spell (PCI buses 0x10-0xff, subchannels up
/// to 0.0.ffff) is refused with a message, not a panic or ill-formed names.
#[test]
fn more_parents_than_names_are_refused() {
    for (kind, max) in [
        (genhost::ParentKind::Mtty, 7680),
        (genhost::ParentKind::VfioCcw, 0xfff0),
    ] {
        for parents in [usize::MAX, max + 1] {
            let dir = tmp("names");
            let spec = HostSpec {
                parents,
                parent_kind: kind,
                ..Default::default()
            };
            let err = match genhost::generate(dir.path(), &spec) {
                Ok(_) => panic!("{parents} {kind:?} parents were generated"),
                Err(e) => format!("{e:#}"),
            };
            assert_eq!(
                err,
                format!("at most {max} {kind:?} parents have names; {parents} asked for")
            );
            assert!(is_empty(dir.path()), "nothing written");
        }
    }
    // The last name of each kind is still well-formed.
    assert_eq!(genhost::ParentKind::Mtty.parent_name(7679), "0000:ff:1f.0");
    assert_eq!(genhost::ParentKind::VfioCcw.parent_name(0xffef), "0.0.ffff");
}

fn is_empty(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}
