//! `mdevctl start` and `stop` on a fake tree: device selection and its errors, the
//! pre-flight checks against sysfs, what is written to `create`, attributes and `remove`
//! (the test plays the kernel by pre-creating the device directory), rollback (§4.6, §4.7).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use crate::common::*;
use crate::life::*;

/// Plays the kernel for `uuid`: a device directory at `sys/bus/mdev/devices/<uuid>` (without
/// an `mdev_type` link, so the device does not count as active yet) with an empty `remove`
/// and the given attribute files.
fn fake_device_dir(root: &FakeRoot, uuid: &str, attrs: &[&str]) -> String {
    let dir = format!("sys/bus/mdev/devices/{uuid}");
    root.write(format!("{dir}/remove"), "");
    for a in attrs {
        root.write(format!("{dir}/{a}"), "");
    }
    dir
}

fn read(root: &FakeRoot, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap()
}

#[test]
fn start_transient_prints_generated_uuid_and_writes_it_to_create() {
    let root = mtty_host();
    let t = mdevctl(&root, &["start", "-p", "mtty", "-t", "mtty-1"]);
    t.assert_clean();
    let uuid = t.stdout.strip_suffix('\n').unwrap();
    assert_eq!(uuid.len(), 36);
    assert_eq!(
        read(&root, &create_file("mtty", "mtty-1")),
        uuid,
        "no newline"
    );
    assert!(!root.join("etc/mdevctl.d/mtty").exists(), "no definition");
}

#[test]
fn start_transient_with_uuid_prints_nothing() {
    let root = mtty_host();
    let t = mdevctl(
        &root,
        &[
            "start",
            "-u",
            &UA.to_uppercase(),
            "-p",
            "mtty",
            "-t",
            "mtty-1",
        ],
    );
    t.assert_clean();
    assert_eq!(t.stdout, "");
    assert_eq!(read(&root, &create_file("mtty", "mtty-1")), UA);
}

#[test]
fn start_defined_device_uses_definition_and_writes_attributes_in_order() {
    let root = mtty_host();
    root.define_attrs(
        "mtty",
        U1,
        "mtty-1",
        "manual",
        &[("a", "1"), ("sub/b", "x y"), ("a", "2")],
    );
    root.mkdir(format!("sys/bus/mdev/devices/{U1}/sub"));
    let dir = fake_device_dir(&root, U1, &["a", "sub/b"]);
    let t = mdevctl(&root, &["start", "-u", U1]);
    t.assert_clean();
    assert_eq!(t.stdout, "");
    assert_eq!(read(&root, &create_file("mtty", "mtty-1")), U1);
    assert_eq!(
        read(&root, &format!("{dir}/a")),
        "2",
        "last write wins, no newline"
    );
    assert_eq!(read(&root, &format!("{dir}/sub/b")), "x y");
    assert_eq!(read(&root, &format!("{dir}/remove")), "", "no rollback");
}

#[test]
fn start_defined_with_matching_type_option_is_fine() {
    let root = mtty_host();
    root.define("mtty", U1, "mtty-1", "auto");
    mdevctl(&root, &["start", "-u", U1, "-t", "mtty-1"]).assert_clean();
    assert_eq!(read(&root, &create_file("mtty", "mtty-1")), U1);
}

#[test]
fn start_defined_with_other_type_is_refused() {
    let root = mtty_host();
    root.define("mtty", U1, "mtty-1", "auto");
    let before = snapshot(&root);
    assert_error(
        &mdevctl(&root, &["start", "-u", U1, "-t", "mtty-2"]),
        &format!("Device {U1} already exists on parent mtty with type mtty-1"),
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn start_uuid_defined_on_two_parents_needs_a_parent() {
    let root = mtty_host();
    root.define("mtty", U1, "mtty-1", "auto")
        .define("matrix", U1, "vfio_ap-passthrough", "auto");
    let before = snapshot(&root);
    let want = format!("Multiple definitions found for device {U1}. Please specify a parent.");
    assert_error(&mdevctl(&root, &["start", "-u", U1]), &want);
    assert_error(&mdevctl(&root, &["start", "-u", U1, "-t", "mtty-1"]), &want);
    assert_eq!(snapshot(&root), before);
    mdevctl(&root, &["start", "-u", U1, "-p", "mtty"]).assert_clean();
    assert_eq!(read(&root, &create_file("mtty", "mtty-1")), U1);
}

#[test]
fn start_uuid_defined_elsewhere_with_parent_and_type_is_transient() {
    let root = mtty_host();
    root.define_attrs("matrix", U1, "vfio_ap-passthrough", "auto", &[("a", "1")]);
    mdevctl(&root, &["start", "-u", U1, "-p", "mtty", "-t", "mtty-1"]).assert_clean();
    assert_eq!(read(&root, &create_file("mtty", "mtty-1")), U1);
}

#[test]
fn start_insufficiently_specified() {
    let root = mtty_host();
    let before = snapshot(&root);
    assert_error(
        &mdevctl(&root, &["start", "-u", U1]),
        "Device is insufficiently specified",
    );
    assert_error(
        &mdevctl(&root, &["start", "-p", "mtty"]),
        "Device is insufficiently specified",
    );
    assert_error(
        &mdevctl(&root, &["start", "-u", U1, "-t", "mtty-1"]),
        "can't provide type without parent",
    );
    assert_usage(&mdevctl(&root, &["start", "-t", "mtty-1"]), "required");
    assert_eq!(snapshot(&root), before);
}

#[test]
fn start_unknown_parent_suggests_case_insensitive_match() {
    let root = mtty_host();
    let before = snapshot(&root);
    assert_error(
        &mdevctl(&root, &["start", "-p", "MTTY", "-t", "mtty-1"]),
        "Unable to find parent device 'MTTY'. Did you mean 'mtty'?",
    );
    assert_error(
        &mdevctl(&root, &["start", "-p", "nope", "-t", "mtty-1"]),
        "Unable to find parent device 'nope'",
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn start_parent_not_registered() {
    let root = FakeRoot::new();
    root.parent_without_types("0000:00:02.0");
    assert_error(
        &mdevctl(&root, &["start", "-p", "0000:00:02.0", "-t", "x"]),
        "Parent 0000:00:02.0 is not currently registered for mdev support",
    );
}

#[test]
fn start_unsupported_type() {
    let root = mtty_host();
    assert_error(
        &mdevctl(&root, &["start", "-p", "mtty", "-t", "mtty-9"]),
        "Parent mtty does not support mdev type mtty-9",
    );
}

#[test]
fn start_no_available_instances() {
    let root = mtty_host();
    let before = snapshot(&root);
    assert_error(
        &mdevctl(&root, &["start", "-p", "mtty", "-t", "mtty-2"]),
        "No available instances of mtty-2 on mtty",
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn start_already_active_device_is_refused() {
    let root = mtty_host();
    root.parent("other")
        .mdev_type("other", "mtty-1", TypeSpec::new(1, "vfio-pci"))
        .active(U1, "mtty", "mtty-1");
    let before = snapshot(&root);
    assert_error(
        &mdevctl(&root, &["start", "-u", U1, "-p", "mtty", "-t", "mtty-1"]),
        &format!("Device {U1} already exists"),
    );
    let t = mdevctl(&root, &["start", "-u", U1, "-p", "other", "-t", "mtty-1"]);
    assert_eq!(t.code, 1);
    assert!(
        t.stderr.contains("exists under different parent"),
        "{}",
        t.stderr
    );
    let t = mdevctl(&root, &["start", "-u", U1, "-p", "mtty", "-t", "mtty-2"]);
    assert_eq!(t.code, 1);
    assert!(
        t.stderr.contains("exists with different type"),
        "{}",
        t.stderr
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn start_jsonfile_takes_type_and_attributes_from_file() {
    let root = mtty_host();
    let dir = fake_device_dir(&root, U2, &["k"]);
    let j = root.write(
        "d.json",
        r#"{"mdev_type":"mtty-1","start":"auto","attrs":[{"k":"v"}]}"#,
    );
    let t = mdevctl(
        &root,
        &[
            "start",
            "-u",
            U2,
            "-p",
            "mtty",
            "--jsonfile",
            j.to_str().unwrap(),
        ],
    );
    t.assert_clean();
    assert_eq!(read(&root, &create_file("mtty", "mtty-1")), U2);
    assert_eq!(read(&root, &format!("{dir}/k")), "v");
    assert!(!root.join("etc/mdevctl.d/mtty").exists());
}

#[test]
fn start_jsonfile_needs_parent_and_conflicts_with_type() {
    let root = mtty_host();
    let j = root.write("d.json", r#"{"mdev_type":"mtty-1","start":"auto"}"#);
    let j = j.to_str().unwrap();
    let t = mdevctl(&root, &["start", "-u", U2, "--jsonfile", j]);
    assert_eq!(t.code, 1);
    assert_eq!(
        t.stderr_masked(&root),
        "Error: parent device required to start device via <ROOT>/d.json\n"
    );
    assert_usage(
        &mdevctl(&root, &["start", "-p", "mtty", "-t", "x", "--jsonfile", j]),
        "cannot be used with",
    );
}

#[test]
fn start_attribute_write_error_names_errno_and_file_and_rolls_back() {
    let root = mtty_host();
    root.define_attrs("mtty", U1, "mtty-1", "manual", &[("ok", "1"), ("bad", "2")]);
    let dir = fake_device_dir(&root, U1, &["ok"]);
    // A directory where the attribute file should be: the write fails with EISDIR.
    root.mkdir(format!("{dir}/bad"));
    let t = mdevctl(&root, &["start", "-u", U1]);
    assert_eq!(t.code, 1);
    let err = t.stderr_masked(&root);
    assert!(err.starts_with("Error: "), "{err}");
    assert!(err.contains("EISDIR"), "{err}");
    assert!(
        err.contains(&format!("<ROOT>/sys/bus/mdev/devices/{U1}/bad")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_eq!(read(&root, &format!("{dir}/ok")), "1");
    assert_eq!(read(&root, &format!("{dir}/remove")), "1", "rolled back");
}

#[test]
fn start_missing_attribute_rolls_back_and_names_the_attribute() {
    let root = mtty_host();
    root.define_attrs("mtty", U1, "mtty-1", "manual", &[("nope", "1")]);
    let dir = fake_device_dir(&root, U1, &[]);
    let t = mdevctl(&root, &["start", "-u", U1]);
    assert_eq!(t.code, 1);
    assert_eq!(
        t.stderr_masked(&root),
        format!(
            "Error: device {U1} has no attribute 'nope' \
             (<ROOT>/sys/bus/mdev/devices/{U1}/nope does not exist)\n"
        )
    );
    assert_eq!(read(&root, &format!("{dir}/remove")), "1");
}

#[test]
fn start_failed_rollback_names_both_failures() {
    let root = mtty_host();
    root.define_attrs("mtty", U1, "mtty-1", "manual", &[("a", "1")]);
    // No device directory appears in a fake tree: the attribute is missing and so is
    // the `remove` file.
    let t = mdevctl(&root, &["start", "-u", U1]);
    assert_eq!(t.code, 1);
    let err = t.stderr_masked(&root);
    assert!(err.contains("'a'"), "attribute failure first: {err}");
    assert!(
        err.contains(&format!("<ROOT>/sys/bus/mdev/devices/{U1}/remove")),
        "rollback failure second: {err}"
    );
    let a = err.find("'a'").unwrap();
    let r = err.find("/remove").unwrap();
    assert!(a < r, "{err}");
}

#[test]
fn start_create_write_error_names_errno_and_file() {
    let root = mtty_host();
    let create = create_file("mtty", "mtty-1");
    root.remove(&create);
    root.mkdir(&create);
    let t = mdevctl(&root, &["start", "-u", U1, "-p", "mtty", "-t", "mtty-1"]);
    assert_eq!(t.code, 1);
    let err = t.stderr_masked(&root);
    assert!(
        err.starts_with(&format!(
            "Error: Failed to create mdev {U1}, type mtty-1 on mtty"
        )),
        "{err}"
    );
    assert!(err.contains("EISDIR"), "{err}");
    assert!(
        err.contains("<ROOT>/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-1/create"),
        "{err}"
    );
}

#[test]
fn start_callout_sequence_and_failure_states() {
    let root = mtty_host();
    root.define("mtty", U1, "mtty-1", "manual");
    callout(&root, "v", &versioned_body(&supports_all(), "exit 0"));
    notifier(&root, "n", "exit 0");
    mdevctl(&root, &["start", "-u", U1]).assert_clean();
    assert_eq!(
        sequence(&root),
        [
            "v:get/capabilities/none",
            "v:pre/start/none",
            "v:post/start/success",
            "n:notify/start/success",
        ]
    );
    clear_log(&root);
    // A failure inside the primary step: pre ran, post and notify see failure.
    let t = mdevctl(&root, &["start", "-u", U2, "-p", "gone", "-t", "mtty-1"]);
    assert_eq!(t.code, 1);
    assert_eq!(
        sequence(&root),
        [
            "v:get/capabilities/none",
            "v:pre/start/none",
            "v:post/start/failure",
            "n:notify/start/failure",
        ]
    );
}

#[test]
fn stop_writes_one_to_remove_with_callouts() {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-1")
        .define_attrs("mtty", U1, "mtty-1", "auto", &[("a", "1")]);
    callout(&root, "v", &versioned_body(&supports_all(), "exit 0"));
    notifier(&root, "n", "exit 0");
    let t = mdevctl(&root, &["stop", "-u", U1]);
    t.assert_clean();
    assert_eq!(t.stdout, "");
    assert_eq!(read(&root, &format!("{}/remove", dev_dir("mtty", U1))), "1");
    assert_eq!(
        sequence(&root),
        [
            "v:get/capabilities/none",
            "v:pre/stop/none",
            "v:post/stop/success",
            "n:notify/stop/success",
        ]
    );
    // Callouts see the probed type, manual, no attributes: stop ignores the definition.
    let pre = &calls(&root)[1];
    assert_eq!(
        pre.stdin,
        r#"{"mdev_type":"mtty-1","start":"manual","attrs":[]}"#
    );
    assert_eq!(
        pre.args,
        format!("-t mtty-1 -e pre -a stop -s none -u {U1} -p mtty")
    );
}

#[test]
fn stop_of_inactive_device_fails_without_callouts() {
    let root = mtty_host();
    root.define("mtty", U1, "mtty-1", "auto");
    callout(&root, "v", "exit 0");
    let before = snapshot(&root);
    let t = mdevctl(&root, &["stop", "-u", U1]);
    assert_eq!(t.code, 1);
    assert!(t.stderr.contains(U1), "{}", t.stderr);
    assert!(t.stderr.contains("not active"), "{}", t.stderr);
    assert_eq!(snapshot(&root), before);
    assert_eq!(sequence(&root), Vec::<String>::new());
}

#[test]
fn stop_requires_uuid() {
    let root = mtty_host();
    assert_usage(&mdevctl(&root, &["stop"]), "--uuid");
}

#[test]
fn stop_remove_write_error_names_errno() {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-1");
    let remove = format!("{}/remove", dev_dir("mtty", U1));
    root.remove(&remove);
    root.mkdir(&remove);
    let t = mdevctl(&root, &["stop", "-u", U1]);
    assert_eq!(t.code, 1);
    let err = t.stderr_masked(&root);
    assert!(
        err.starts_with(&format!("Error: failed to remove device {U1}")),
        "{err}"
    );
    assert!(err.contains("EISDIR"), "{err}");
}

#[test]
fn start_jsonfile_is_read_and_parsed_before_the_parent_check() {
    let root = mtty_host();
    let t = mdevctl(
        &root,
        &["start", "-u", U1, "--jsonfile", "/nonexistent/d.json"],
    );
    assert_eq!(t.code, 1);
    assert!(
        t.stderr
            .to_lowercase()
            .contains("unable to read file /nonexistent/d.json"),
        "{}",
        t.stderr
    );
    let bad = root.write("bad.json", "{\"mdev_type\":");
    let t = mdevctl(
        &root,
        &["start", "-u", U1, "--jsonfile", bad.to_str().unwrap()],
    );
    assert_eq!(t.code, 1);
    assert!(t.stderr.contains("bad.json"), "{}", t.stderr);
    assert!(!t.stderr.contains("parent device required"), "{}", t.stderr);
}

#[test]
fn start_of_malformed_definition_names_the_file() {
    let root = mtty_host();
    root.define_raw("mtty", U1, "{");
    let before = snapshot(&root);
    let t = mdevctl(&root, &["start", "-u", U1]);
    assert_eq!(t.code, 1);
    let err = t.stderr_masked(&root);
    assert!(
        err.starts_with(&format!(
            "Error: malformed definition <ROOT>/etc/mdevctl.d/mtty/{U1}: "
        )),
        "{err}"
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn stop_force_goes_past_a_failing_pre() {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-1");
    callout(
        &root,
        "guard",
        "if [ \"$ev\" = pre ]; then exit 1; fi\nexit 0",
    );
    let remove = format!("{}/remove", dev_dir("mtty", U1));
    let t = mdevctl(&root, &["stop", "-u", U1]);
    assert_eq!(t.code, 1);
    assert_eq!(read(&root, &remove), "", "not removed without --force");
    let t = mdevctl(&root, &["stop", "-u", U1, "-f"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(
        t.stderr.contains("Forcing operation 'stop'"),
        "{}",
        t.stderr
    );
    assert_eq!(read(&root, &remove), "1");
}

#[test]
fn start_with_unreadable_or_garbled_available_instances_is_a_clear_error() {
    let root = mtty_host();
    let file = format!(
        "{}/mdev_supported_types/mtty-1/available_instances",
        FakeRoot::parent_dir("mtty")
    );
    root.write(&file, "abc\n");
    let t = mdevctl(&root, &["start", "-p", "mtty", "-t", "mtty-1"]);
    assert_eq!(t.code, 1);
    assert!(t.stderr.contains("available_instances"), "{}", t.stderr);
    assert!(t.stderr.contains("abc"), "{}", t.stderr);
    root.remove(&file);
    let t = mdevctl(&root, &["start", "-p", "mtty", "-t", "mtty-1"]);
    assert_eq!(t.code, 1);
    assert!(t.stderr.contains("available_instances"), "{}", t.stderr);
    assert_eq!(
        read(&root, &create_file("mtty", "mtty-1")),
        "",
        "nothing created"
    );
}

#[test]
fn start_uuid_with_parent_of_no_definition_and_no_type_is_insufficient() {
    let root = mtty_host();
    root.define("matrix", U1, "vfio_ap-passthrough", "auto");
    assert_error(
        &mdevctl(&root, &["start", "-u", U1, "-p", "mtty"]),
        "Device is insufficiently specified",
    );
    assert_eq!(read(&root, &create_file("mtty", "mtty-1")), "");
}
