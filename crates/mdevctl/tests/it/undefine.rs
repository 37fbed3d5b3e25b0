//! `mdevctl undefine`: removing one or every definition of a UUID, callouts per
//! definition, a failure on one parent not stopping the others (§4.4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use crate::life::*;

fn two_parents() -> FakeRoot {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "manual")
        .define("matrix", U1, "vfio_ap-passthrough", "auto")
        .define("matrix", U2, "vfio_ap-passthrough", "auto");
    root
}

#[test]
fn undefine_without_parent_removes_every_definition_of_the_uuid() {
    let root = two_parents();
    mdevctl(&root, &["undefine", "-u", U1]).assert_clean();
    assert!(config(&root, "mtty", U1).is_none());
    assert!(config(&root, "matrix", U1).is_none());
    assert!(config(&root, "matrix", U2).is_some(), "other UUIDs stay");
}

#[test]
fn undefine_with_parent_removes_only_that_definition() {
    let root = two_parents();
    let t = mdevctl(&root, &["undefine", "-u", U1, "-p", "matrix"]);
    t.assert_clean();
    assert_eq!(t.stdout, "");
    assert!(config(&root, "matrix", U1).is_none());
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "manual", &[])
    );
}

#[test]
fn undefine_unknown_uuid_says_no_match() {
    let root = two_parents();
    let before = snapshot(&root);
    assert_error(
        &mdevctl(&root, &["undefine", "-u", U3]),
        "No devices match the specified uuid",
    );
    assert_error(
        &mdevctl(&root, &["undefine", "-u", U2, "-p", "mtty"]),
        "No devices match the specified uuid",
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn undefine_requires_uuid() {
    let root = two_parents();
    assert_usage(&mdevctl(&root, &["undefine", "-p", "mtty"]), "--uuid");
}

#[test]
fn undefine_does_not_touch_sysfs() {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-1")
        .define("mtty", U1, "mtty-1", "auto");
    let sys_before: Vec<_> = snapshot(&root)
        .into_iter()
        .filter(|(p, _)| p.starts_with("sys"))
        .collect();
    mdevctl(&root, &["undefine", "-u", U1]).assert_clean();
    let sys_after: Vec<_> = snapshot(&root)
        .into_iter()
        .filter(|(p, _)| p.starts_with("sys"))
        .collect();
    assert_eq!(sys_before, sys_after);
    assert!(config(&root, "mtty", U1).is_none());
}

#[test]
fn undefine_runs_callouts_per_definition_in_parent_order() {
    let root = two_parents();
    callout(&root, "log", &versioned_body(&supports_all(), "exit 0"));
    notifier(&root, "n", "exit 0");
    mdevctl(&root, &["undefine", "-u", U1]).assert_clean();
    let seq: Vec<String> = calls(&root)
        .iter()
        .map(|c| {
            let parent = c.args.rsplit(' ').next().unwrap().to_owned();
            format!("{}:{}:{parent}", c.script, c.eas())
        })
        .collect();
    assert_eq!(
        seq,
        [
            "log:get/capabilities/none:matrix",
            "log:pre/undefine/none:matrix",
            "log:post/undefine/success:matrix",
            "n:notify/undefine/success:matrix",
            "log:get/capabilities/none:mtty",
            "log:pre/undefine/none:mtty",
            "log:post/undefine/success:mtty",
            "n:notify/undefine/success:mtty",
        ]
    );
}

#[test]
fn undefine_failing_pre_on_one_parent_does_not_stop_the_others() {
    let root = two_parents();
    callout(
        &root,
        "guard",
        "if [ \"$ev\" = pre ] && [ \"${12}\" = matrix ]; then echo 'matrix is busy' >&2; exit 1; fi\nexit 0",
    );
    let t = mdevctl(&root, &["undefine", "-u", U1]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(config(&root, "mtty", U1).is_none(), "mtty removed");
    assert_eq!(
        config(&root, "matrix", U1).unwrap(),
        pretty("vfio_ap-passthrough", "auto", &[]),
        "matrix kept, untouched"
    );
    let err = t.warnings(&root);
    assert_eq!(err.first().unwrap(), "guard: matrix is busy");
    assert!(err[1].starts_with("[TS WARN  "), "{err:?}");
    assert!(
        err[1].contains(&format!(
            "] Undefine of {U1} on parent matrix failed with error: "
        )),
        "{err:?}"
    );
    assert_eq!(err.len(), 3, "{err:?}");
    assert!(err[1].contains("exit status 1"), "{err:?}");
    assert_eq!(err.last().unwrap(), "Error: Undefine failed");
}

#[test]
fn undefine_force_goes_past_a_failing_pre() {
    let root = two_parents();
    callout(
        &root,
        "guard",
        "if [ \"$ev\" = pre ]; then exit 1; fi\nexit 0",
    );
    let t = mdevctl(&root, &["undefine", "-u", U1, "--force"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(t
        .stderr
        .contains("Forcing operation 'undefine' despite callout failure"));
    assert!(config(&root, "mtty", U1).is_none());
    assert!(config(&root, "matrix", U1).is_none());
}

#[test]
fn undefine_removes_a_malformed_definition() {
    let root = FakeRoot::new();
    root.define_raw("mtty", U1, "{ torn");
    let t = mdevctl(&root, &["undefine", "-u", U1]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(config(&root, "mtty", U1).is_none());
    assert!(
        t.stderr.contains("mtty"),
        "the warning names the file: {}",
        t.stderr
    );
}

#[test]
fn undefine_leaves_other_files_in_the_parent_directory() {
    let root = two_parents();
    mdevctl(&root, &["undefine", "-u", U1, "-p", "matrix"]).assert_clean();
    assert!(root.join("etc/mdevctl.d/matrix").is_dir());
    mdevctl(&root, &["undefine", "-u", U2, "-p", "matrix"]).assert_clean();
    // An emptied parent directory may go (DIVERGENCES §7); the store stays.
    assert!(root.join("etc/mdevctl.d").is_dir());
    assert!(root.join("etc/mdevctl.d/mtty").is_dir());
}

#[test]
fn undefine_clears_a_temporary_file_left_by_a_killed_writer() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "manual");
    // What a `modify` killed between writing its temporary file and the rename leaves.
    root.define_raw("mtty", &format!(".{U1}.tmp"), "{\"mdev_ty");
    mdevctl(&root, &["undefine", "-u", U1]).assert_clean();
    assert!(!root.join(format!("etc/mdevctl.d/mtty/.{U1}.tmp")).exists());
    assert!(
        !root.join("etc/mdevctl.d/mtty").exists(),
        "emptied parent dir goes"
    );
}
