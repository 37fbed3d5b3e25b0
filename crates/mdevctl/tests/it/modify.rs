//! `mdevctl modify` of stored definitions: type, start mode, attributes with `--index`
//! edge cases, `--jsonfile` (also for a never-defined UUID), lookups and option relations
//! (§2.3, §4.5 non-live). The live variants are in `modify_live.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use crate::life::*;

fn with_attrs() -> FakeRoot {
    let root = FakeRoot::new();
    root.define_attrs("mtty", U1, "mtty-1", "manual", &[("a", "1"), ("b", "2")]);
    root
}

fn modify(root: &FakeRoot, extra: &[&str]) -> Transcript {
    let mut args = vec!["modify", "-u", U1];
    args.extend_from_slice(extra);
    mdevctl(root, &args)
}

#[test]
fn modify_auto_and_manual_set_start_mode() {
    let root = with_attrs();
    modify(&root, &["--auto"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "auto", &[("a", "1"), ("b", "2")])
    );
    modify(&root, &["-m"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "manual", &[("a", "1"), ("b", "2")])
    );
}

#[test]
fn modify_type_comes_along_with_a_group_member() {
    let root = with_attrs();
    modify(&root, &["-t", "mtty-2", "--auto"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-2", "auto", &[("a", "1"), ("b", "2")])
    );
}

#[test]
fn modify_type_alone_is_a_usage_error() {
    let root = with_attrs();
    let before = snapshot(&root);
    assert_usage(&modify(&root, &["-t", "mtty-2"]), "required");
    assert_eq!(snapshot(&root), before);
}

#[test]
fn modify_group_members_are_mutually_exclusive() {
    let root = with_attrs();
    let before = snapshot(&root);
    assert_usage(
        &modify(&root, &["--auto", "--manual"]),
        "error: the argument '--auto' cannot be used with '--manual'",
    );
    assert_usage(
        &modify(&root, &["--auto", "--delattr"]),
        "cannot be used with",
    );
    assert_usage(
        &modify(&root, &["--addattr", "x", "--value", "1", "--delattr"]),
        "cannot be used with",
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn modify_option_relations_are_usage_errors() {
    let root = with_attrs();
    let before = snapshot(&root);
    assert_usage(&modify(&root, &["--addattr", "x"]), "--value");
    assert_usage(&modify(&root, &["--delattr", "--value", "1"]), "--value");
    assert_usage(
        &modify(&root, &["--auto", "--index", "0"]),
        "cannot be used with",
    );
    assert_usage(&modify(&root, &["--manual", "--value", "1"]), "--value");
    assert_usage(
        &modify(&root, &["--jsonfile", "x", "--index", "0"]),
        "cannot be used with",
    );
    assert_usage(
        &modify(&root, &["--jsonfile", "x", "-t", "t"]),
        "cannot be used with",
    );
    assert_usage(
        &modify(&root, &["--addattr", "x", "--value", "1", "-i", "-1"]),
        "-1",
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn modify_addattr_appends_without_index() {
    let root = with_attrs();
    modify(&root, &["--addattr", "c", "--value", "3"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "manual", &[("a", "1"), ("b", "2"), ("c", "3")])
    );
}

#[test]
fn modify_addattr_inserts_at_index() {
    let root = with_attrs();
    modify(&root, &["--addattr", "c", "--value", "3", "--index", "0"]).assert_clean();
    modify(&root, &["--addattr", "d", "--value", "4", "-i", "2"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty(
            "mtty-1",
            "manual",
            &[("c", "3"), ("a", "1"), ("d", "4"), ("b", "2")]
        )
    );
}

#[test]
fn modify_addattr_index_equal_to_length_appends() {
    let root = with_attrs();
    modify(&root, &["--addattr", "c", "--value", "3", "--index", "2"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "manual", &[("a", "1"), ("b", "2"), ("c", "3")])
    );
}

#[test]
fn modify_addattr_index_past_length_is_an_error_with_the_attribute_block() {
    let root = with_attrs();
    let before = config(&root, "mtty", U1).unwrap();
    let t = modify(&root, &["--addattr", "c", "--value", "3", "--index", "3"]);
    assert_error(
        &t,
        "Attribute index 3 is invalid\n  Attrs:\n    @{0}: {\"a\":\"1\"}\n    @{1}: {\"b\":\"2\"}",
    );
    assert_eq!(config(&root, "mtty", U1).unwrap(), before);
}

#[test]
fn modify_addattr_index_on_empty_list_says_no_attributes() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "auto");
    let t = modify(&root, &["--addattr", "c", "--value", "3", "--index", "1"]);
    assert_error(
        &t,
        &format!("Attribute index 1 is invalid\nDevice {U1} has no attributes"),
    );
    // Index 0 on an empty list is an append.
    modify(&root, &["--addattr", "c", "--value", "3", "--index", "0"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "auto", &[("c", "3")])
    );
}

#[test]
fn modify_addattr_allows_duplicates_and_vendor_subdirectories() {
    let root = with_attrs();
    modify(&root, &["--addattr", "a", "--value", "9"]).assert_clean();
    modify(
        &root,
        &["--addattr", "nvidia/vgpu_params", "--value", "x=1 y=2"],
    )
    .assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty(
            "mtty-1",
            "manual",
            &[
                ("a", "1"),
                ("b", "2"),
                ("a", "9"),
                ("nvidia/vgpu_params", "x=1 y=2")
            ]
        )
    );
}

#[test]
fn modify_delattr_removes_last_or_indexed() {
    let root = with_attrs();
    modify(&root, &["--addattr", "c", "--value", "3"]).assert_clean();
    modify(&root, &["--delattr"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "manual", &[("a", "1"), ("b", "2")])
    );
    modify(&root, &["--delattr", "--index", "0"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "manual", &[("b", "2")])
    );
}

#[test]
fn modify_delattr_index_equal_to_length_is_an_error() {
    let root = with_attrs();
    let before = config(&root, "mtty", U1).unwrap();
    let t = modify(&root, &["--delattr", "--index", "2"]);
    assert_error(
        &t,
        "Attribute index 2 is invalid\n  Attrs:\n    @{0}: {\"a\":\"1\"}\n    @{1}: {\"b\":\"2\"}",
    );
    assert_eq!(config(&root, "mtty", U1).unwrap(), before);
}

#[test]
fn modify_delattr_on_empty_list_is_a_noop_but_index_is_an_error() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "auto");
    modify(&root, &["--delattr"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "auto", &[])
    );
    assert_error(
        &modify(&root, &["--delattr", "-i", "0"]),
        &format!("Attribute index 0 is invalid\nDevice {U1} has no attributes"),
    );
}

#[test]
fn modify_undefined_uuid_says_not_defined() {
    let root = with_attrs();
    let before = snapshot(&root);
    assert_error(
        &mdevctl(&root, &["modify", "-u", U2, "--auto"]),
        &format!("Mediated device {U2} is not defined"),
    );
    assert_error(
        &mdevctl(&root, &["modify", "-u", U1, "-p", "matrix", "--auto"]),
        &format!("Mediated device matrix/{U1} is not defined"),
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn modify_uuid_defined_on_two_parents_needs_a_parent() {
    let root = with_attrs();
    root.define("matrix", U1, "vfio_ap-passthrough", "manual");
    let before = snapshot(&root);
    assert_error(
        &modify(&root, &["--auto"]),
        &format!("Multiple definitions found for {U1}, specify a parent"),
    );
    assert_eq!(snapshot(&root), before);
    modify(&root, &["-p", "matrix", "--auto"]).assert_clean();
    assert_eq!(
        config(&root, "matrix", U1).unwrap(),
        pretty("vfio_ap-passthrough", "auto", &[])
    );
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "manual", &[("a", "1"), ("b", "2")])
    );
}

#[test]
fn modify_rewrites_a_loose_file_in_canonical_form() {
    let root = FakeRoot::new();
    root.define_raw(
        "mtty",
        U1,
        r#"{"start":"AUTO","extra":[1],"attrs":[{"k":"v"}],"mdev_type":"mtty-1"}"#,
    );
    modify(&root, &["--addattr", "z", "--value", "ä\t"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        "{\n  \"mdev_type\": \"mtty-1\",\n  \"start\": \"manual\",\n  \"attrs\": [\n    {\n      \
         \"k\": \"v\"\n    },\n    {\n      \"z\": \"ä\\t\"\n    }\n  ]\n}"
    );
}

#[test]
fn modify_malformed_definition_names_the_file() {
    let root = FakeRoot::new();
    root.define_raw("mtty", U1, "{\"mdev_type\": \"x\"");
    let before = snapshot(&root);
    let t = modify(&root, &["--auto"]);
    assert_eq!(t.code, 1);
    let err = t.stderr_masked(&root);
    assert!(
        err.contains(&format!("<ROOT>/etc/mdevctl.d/mtty/{U1}")),
        "{err}"
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn modify_jsonfile_replaces_the_definition() {
    let root = with_attrs();
    let j = root.write(
        "new.json",
        r#"{"mdev_type":"mtty-2","start":"auto","attrs":[{"q":"r"}]}"#,
    );
    modify(&root, &["-p", "mtty", "--jsonfile", j.to_str().unwrap()]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-2", "auto", &[("q", "r")])
    );
}

#[test]
fn modify_jsonfile_creates_a_never_defined_definition() {
    let root = FakeRoot::new();
    let j = root.write("new.json", r#"{"mdev_type":"mtty-2","start":"manual"}"#);
    let t = mdevctl(
        &root,
        &[
            "modify",
            "-u",
            U2,
            "-p",
            "mtty",
            "--jsonfile",
            j.to_str().unwrap(),
        ],
    );
    t.assert_clean();
    assert_eq!(t.stdout, "");
    assert_eq!(
        config(&root, "mtty", U2).unwrap(),
        pretty("mtty-2", "manual", &[])
    );
}

#[test]
fn modify_jsonfile_needs_a_parent() {
    let root = with_attrs();
    let j = root.write("new.json", r#"{"mdev_type":"mtty-2","start":"manual"}"#);
    let before = snapshot(&root);
    let t = modify(&root, &["--jsonfile", j.to_str().unwrap()]);
    assert_eq!(t.code, 1);
    assert_eq!(
        t.stderr_masked(&root),
        "Error: parent device required to modify device via <ROOT>/new.json\n"
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn modify_jsonfile_unreadable_or_malformed_changes_nothing() {
    let root = with_attrs();
    let bad = root.write("bad.json", r#"{"mdev_type":"x","start":"auto","attrs":{}}"#);
    let before = snapshot(&root);
    let t = modify(&root, &["-p", "mtty", "--jsonfile", bad.to_str().unwrap()]);
    assert_eq!(t.code, 1);
    assert!(t.stderr.contains("'attrs' is not an array"), "{}", t.stderr);
    let t = modify(&root, &["-p", "mtty", "--jsonfile", "/nonexistent.json"]);
    assert_eq!(t.code, 1);
    assert!(t.stderr.contains("/nonexistent.json"), "{}", t.stderr);
    assert_eq!(snapshot(&root), before);
}

#[test]
fn modify_callout_sequence_and_json_on_stdin() {
    let root = with_attrs();
    callout(&root, "log", &versioned_body(&supports_all(), "exit 0"));
    notifier(&root, "n", "exit 0");
    modify(&root, &["--addattr", "c", "--value", "3"]).assert_clean();
    assert_eq!(
        sequence(&root),
        [
            "log:get/capabilities/none",
            "log:pre/modify/none",
            "log:post/modify/success",
            "n:notify/modify/success",
        ]
    );
    let want = r#"{"mdev_type":"mtty-1","start":"manual","attrs":[{"a":"1"},{"b":"2"},{"c":"3"}]}"#;
    let c = calls(&root);
    assert_eq!(c[1].stdin, want, "pre sees the new definition");
    assert_eq!(c[2].stdin, want);
    assert_eq!(c[3].stdin, "", "notifiers get no data");
}

#[test]
fn modify_failing_pre_leaves_the_definition_unless_forced() {
    let root = with_attrs();
    callout(
        &root,
        "no",
        "if [ \"$ev\" = pre ]; then echo nope >&2; exit 3; fi\nexit 0",
    );
    let before = config(&root, "mtty", U1).unwrap();
    let t = modify(&root, &["--auto"]);
    assert_eq!(t.code, 1);
    let err = t.stderr_masked(&root);
    assert_eq!(
        err,
        "no: nope\nError: callout script <ROOT>/usr/lib/mdevctl/scripts.d/callouts/no failed with exit status 3\n"
    );
    assert_eq!(config(&root, "mtty", U1).unwrap(), before);
    assert_eq!(
        sequence(&root),
        ["no:get/capabilities/none", "no:pre/modify/none"]
    );

    let t = modify(&root, &["--auto", "--force"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(t
        .stderr
        .contains("Forcing operation 'modify' despite callout failure"));
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "auto", &[("a", "1"), ("b", "2")])
    );
}

#[test]
fn modify_removes_a_temporary_file_left_by_a_killed_writer() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "manual");
    root.define_raw("mtty", &format!(".{U1}.tmp"), "{\"mdev_ty");
    mdevctl(&root, &["modify", "-u", U1, "--auto"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "auto", &[])
    );
    assert!(!root.join(format!("etc/mdevctl.d/mtty/.{U1}.tmp")).exists());
}

#[test]
fn modify_of_a_non_canonically_named_definition_leaves_one_canonical_file() {
    let root = FakeRoot::new();
    let upper = U1.to_uppercase();
    root.define_raw("mtty", &upper, config_json("mtty-1", "manual", &[]));
    mdevctl(&root, &["modify", "-u", U1, "--auto"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "auto", &[])
    );
    assert!(
        !root.join(format!("etc/mdevctl.d/mtty/{upper}")).exists(),
        "the old spelling is superseded"
    );
    let t = mdevctl(&root, &["list", "-d"]);
    t.assert_clean();
    assert_eq!(t.stdout, format!("{U1} mtty mtty-1 auto\n"));
}
