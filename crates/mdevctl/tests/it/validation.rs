//! Names that would build paths outside where they belong: parent, type and attribute names
//! from options (usage errors, exit 2) and from JSON files (runtime errors, exit 1), and a
//! symlinked attribute leading out of the device. Each is refused and nothing is written
//! anywhere (DIVERGENCES §9).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use crate::common::*;
use crate::life::*;

/// A host with a defined device.
fn host() -> FakeRoot {
    let root = mtty_host();
    root.define_attrs("mtty", U1, "mtty-1", "manual", &[("a", "1")]);
    root
}

/// Where an escaping name could land: beside the root, or at the top of the real file
/// system (the tests may run as root).
fn escape_targets(root: &FakeRoot) -> Vec<std::path::PathBuf> {
    let beside = root.path().parent().unwrap();
    let mut v = Vec::new();
    for base in [beside, std::path::Path::new("/")] {
        for rel in ["x", "b", "t", "etc/x", "abs", "etc/passwd.mdevkit"] {
            v.push(base.join(rel));
        }
    }
    v
}

fn assert_refused(root: &FakeRoot, args: &[&str], code: i32, needle: &str) {
    let before = snapshot(root);
    let outside: Vec<bool> = escape_targets(root).iter().map(|p| p.exists()).collect();
    let passwd = fs::read("/etc/passwd").ok();
    let t = mdevctl(root, args);
    assert_eq!(t.code, code, "{args:?}: {}", t.stderr);
    assert!(t.stderr.contains(needle), "{args:?}: {}", t.stderr);
    assert_eq!(t.stdout, "", "{args:?}");
    assert_eq!(snapshot(root), before, "{args:?} wrote into the root");
    let after: Vec<bool> = escape_targets(root).iter().map(|p| p.exists()).collect();
    assert_eq!(after, outside, "{args:?} wrote outside the root");
    assert_eq!(fs::read("/etc/passwd").ok(), passwd);
}

#[test]
fn parent_names_with_path_tricks_are_usage_errors() {
    let root = host();
    for p in ["../x", "../../../../x", "a/b", "/abs", ".", "..", ""] {
        for cmd in [
            vec!["define", "-u", U2, "-t", "mtty-1", "-p", p],
            vec!["start", "-u", U2, "-t", "mtty-1", "-p", p],
            vec!["undefine", "-u", U1, "-p", p],
            vec!["modify", "-u", U1, "--auto", "-p", p],
            vec!["start-parent-mdevs", p],
        ] {
            assert_refused(&root, &cmd, 2, "invalid");
        }
    }
}

#[test]
fn type_names_with_path_tricks_are_usage_errors() {
    let root = host();
    for ty in ["../../../../x", "a/b", "..", ""] {
        assert_refused(
            &root,
            &["define", "-u", U2, "-p", "mtty", "-t", ty],
            2,
            "invalid",
        );
        assert_refused(
            &root,
            &["start", "-u", U2, "-p", "mtty", "-t", ty],
            2,
            "invalid",
        );
        assert_refused(
            &root,
            &["modify", "-u", U1, "-t", ty, "--auto"],
            2,
            "invalid",
        );
    }
}

#[test]
fn attribute_names_with_path_tricks_are_usage_errors() {
    let root = host();
    for name in [
        "../../etc/x",
        "/etc/passwd",
        "a/../../b",
        "..",
        "a//b/..",
        "",
    ] {
        assert_refused(
            &root,
            &["modify", "-u", U1, "--addattr", name, "--value", "1"],
            2,
            "invalid",
        );
    }
}

#[test]
fn vendor_subdirectory_attribute_names_are_accepted() {
    let root = host();
    mdevctl(
        &root,
        &[
            "modify",
            "-u",
            U1,
            "--addattr",
            "nvidia/vgpu_params",
            "--value",
            "x",
        ],
    )
    .assert_clean();
    assert!(config(&root, "mtty", U1)
        .unwrap()
        .contains("nvidia/vgpu_params"));
}

#[test]
fn jsonfile_names_with_path_tricks_or_nul_are_runtime_errors() {
    let root = host();
    let cases = [
        (
            r#"{"mdev_type":"t","start":"auto","attrs":[{"a\u0000b":"1"}]}"#,
            "NUL",
        ),
        (
            r#"{"mdev_type":"t","start":"auto","attrs":[{"../../x":"1"}]}"#,
            "..",
        ),
        (
            r#"{"mdev_type":"t","start":"auto","attrs":[{"/etc/x":"1"}]}"#,
            "absolute",
        ),
        (r#"{"mdev_type":"../t","start":"auto"}"#, "'/'"),
        (r#"{"mdev_type":"a\u0000","start":"auto"}"#, "NUL"),
        (r#"{"mdev_type":"","start":"auto"}"#, "type"),
    ];
    for (i, (json, needle)) in cases.iter().enumerate() {
        // The JSON file lives outside the root so snapshots stay comparable.
        let dir = TempDir::new();
        let j = dir.path().join(format!("c{i}.json"));
        fs::write(&j, json).unwrap();
        let j = j.to_str().unwrap();
        for cmd in [
            vec!["define", "-u", U2, "-p", "mtty", "--jsonfile", j],
            vec!["modify", "-u", U1, "-p", "mtty", "--jsonfile", j],
            vec!["start", "-u", U2, "-p", "mtty", "--jsonfile", j],
        ] {
            assert_refused(&root, &cmd, 1, needle);
        }
    }
}

#[test]
fn attribute_symlink_leading_out_of_the_device_is_not_followed() {
    let root = mtty_host();
    let target = root.write("victim", "precious");
    root.define_attrs("mtty", U1, "mtty-1", "manual", &[("evil", "overwritten")]);
    let dev = format!("sys/bus/mdev/devices/{U1}");
    root.write(format!("{dev}/remove"), "");
    root.symlink(&target, format!("{dev}/evil"));
    let t = mdevctl(&root, &["start", "-u", U1]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(t.stderr.contains("outside"), "{}", t.stderr);
    assert_eq!(fs::read_to_string(&target).unwrap(), "precious");
    assert_eq!(
        fs::read_to_string(root.join(format!("{dev}/remove"))).unwrap(),
        "1",
        "rolled back"
    );
}

#[test]
fn nul_in_argv_cannot_happen_but_non_utf8_names_are_refused() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let root = host();
    let before = snapshot(&root);
    let bad = OsStr::from_bytes(b"mt\xfftty");
    for args in [
        vec![
            OsStr::new("define"),
            OsStr::new("-u"),
            OsStr::new(U2),
            OsStr::new("-t"),
            OsStr::new("x"),
            OsStr::new("-p"),
            bad,
        ],
        vec![
            OsStr::new("modify"),
            OsStr::new("-u"),
            OsStr::new(U1),
            OsStr::new("--addattr"),
            bad,
            OsStr::new("--value"),
            OsStr::new("1"),
        ],
    ] {
        let t = run_os(&root, "mdevctl", &args);
        assert_eq!(t.code, 2, "{}", t.stderr);
    }
    assert_eq!(snapshot(&root), before);
}
