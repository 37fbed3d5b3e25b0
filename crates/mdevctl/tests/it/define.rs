//! `mdevctl define`: from options, from an active device, from `--jsonfile`; the order of
//! its checks, its stdout (only a generated UUID), and the config bytes it writes (§4.3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use crate::life::*;

fn is_canonical_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        })
}

#[test]
fn define_from_options_prints_generated_uuid_and_writes_pretty_config() {
    let root = FakeRoot::new();
    let t = mdevctl(&root, &["define", "-p", "mtty", "-t", "mtty-1"]);
    t.assert_clean();
    let uuid = t.stdout.strip_suffix('\n').expect("UUID + newline");
    assert!(is_canonical_uuid(uuid), "{uuid:?}");
    let bytes = config(&root, "mtty", uuid).expect("config written");
    assert_eq!(
        bytes,
        "{\n  \"mdev_type\": \"mtty-1\",\n  \"start\": \"manual\",\n  \"attrs\": []\n}"
    );
}

#[test]
fn define_with_uuid_prints_nothing_and_auto_sets_start() {
    let root = FakeRoot::new();
    let t = mdevctl(
        &root,
        &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1", "-a"],
    );
    t.assert_clean();
    assert_eq!(t.stdout, "");
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "auto", &[])
    );
}

#[test]
fn define_normalises_uuid_spelling_in_file_name() {
    let root = FakeRoot::new();
    let upper = UA.to_uppercase();
    let t = mdevctl(&root, &["define", "-u", &upper, "-p", "mtty", "-t", "x"]);
    t.assert_clean();
    assert!(config(&root, "mtty", UA).is_some());
    assert!(config(&root, "mtty", &upper).is_none());
}

#[test]
fn define_uuid_without_parent_of_inactive_device_says_no_parent() {
    let root = FakeRoot::new();
    let before = snapshot(&root);
    assert_error(
        &mdevctl(&root, &["define", "-u", U1, "-t", "mtty-1"]),
        "No parent specified",
    );
    assert_error(
        &mdevctl(&root, &["define", "-u", U1]),
        "No parent specified",
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn define_without_type_says_no_type() {
    let root = FakeRoot::new();
    assert_error(
        &mdevctl(&root, &["define", "-u", U1, "-p", "mtty"]),
        "No type specified",
    );
    assert_error(
        &mdevctl(&root, &["define", "-p", "mtty"]),
        "No type specified",
    );
    assert!(config(&root, "mtty", U1).is_none());
}

#[test]
fn define_needs_uuid_or_parent() {
    let root = FakeRoot::new();
    assert_usage(&mdevctl(&root, &["define", "-t", "x"]), "required");
}

#[test]
fn define_jsonfile_conflicts_with_type_and_auto() {
    let root = FakeRoot::new();
    let j = root.write("j.json", r#"{"mdev_type":"a","start":"manual"}"#);
    let j = j.to_str().unwrap();
    for extra in [["-t", "x"].as_slice(), ["--auto"].as_slice()] {
        let mut args = vec!["define", "-p", "mtty", "--jsonfile", j];
        args.extend_from_slice(extra);
        assert_usage(&mdevctl(&root, &args), "cannot be used with");
    }
    assert!(!root.join("etc/mdevctl.d/mtty").exists());
}

#[test]
fn define_existing_definition_is_refused_and_left_alone() {
    let root = FakeRoot::new();
    root.define_attrs("mtty", U1, "mtty-2", "auto", &[("a", "1")]);
    let before = config(&root, "mtty", U1).unwrap();
    let t = mdevctl(&root, &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"]);
    assert_error(&t, &format!("Device {U1} on mtty already defined"));
    assert_eq!(config(&root, "mtty", U1).unwrap(), before);
}

#[test]
fn define_same_uuid_on_another_parent_is_allowed() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "manual");
    let t = mdevctl(
        &root,
        &[
            "define",
            "-u",
            U1,
            "-p",
            "matrix",
            "-t",
            "vfio_ap-passthrough",
        ],
    );
    t.assert_clean();
    assert!(config(&root, "mtty", U1).is_some());
    assert_eq!(
        config(&root, "matrix", U1).unwrap(),
        pretty("vfio_ap-passthrough", "manual", &[])
    );
}

#[test]
fn define_active_device_takes_parent_and_type_from_sysfs() {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-2");
    let t = mdevctl(&root, &["define", "-u", U1]);
    t.assert_clean();
    assert_eq!(t.stdout, "");
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-2", "manual", &[])
    );
}

#[test]
fn define_active_device_options_override_probed_values() {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-2");
    let t = mdevctl(
        &root,
        &["define", "-u", U1, "-p", "other", "-t", "t9", "--auto"],
    );
    t.assert_clean();
    assert_eq!(
        config(&root, "other", U1).unwrap(),
        pretty("t9", "auto", &[])
    );
    assert!(config(&root, "mtty", U1).is_none());
}

#[test]
fn define_active_device_with_type_but_no_parent_says_no_parent() {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-2");
    assert_error(
        &mdevctl(&root, &["define", "-u", U1, "-t", "mtty-1"]),
        "No parent specified",
    );
    assert!(config(&root, "mtty", U1).is_none());
}

#[test]
fn define_active_device_stores_attributes_from_get_attributes_callout() {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-2");
    callout(
        &root,
        "attrs",
        r#"if [ "$ev $act" = 'get attributes' ]; then echo '[{"x":"1"},{"nvidia/p":"a b"}]'; fi
exit 0"#,
    );
    let t = mdevctl(&root, &["define", "-u", U1]);
    t.assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-2", "manual", &[("x", "1"), ("nvidia/p", "a b")])
    );
    // The post callout sees the JSON computed before the attributes were fetched.
    let post = calls(&root)
        .into_iter()
        .find(|c| c.eas() == "post/define/success")
        .unwrap();
    assert_eq!(
        post.stdin,
        r#"{"mdev_type":"mtty-2","start":"manual","attrs":[]}"#
    );
}

#[test]
fn define_active_device_with_bad_attribute_json_fails_without_writing() {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-2");
    callout(
        &root,
        "attrs",
        r#"if [ "$ev $act" = 'get attributes' ]; then echo 'not json'; fi
exit 0"#,
    );
    let t = mdevctl(&root, &["define", "-u", U1]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(t.stderr.starts_with("Error: "), "{}", t.stderr);
    assert!(t.stderr.contains("invalid JSON"), "{}", t.stderr);
    assert!(t.stderr.contains("attrs"), "names the script: {}", t.stderr);
    assert!(config(&root, "mtty", U1).is_none());
}

#[test]
fn define_active_device_with_failing_get_attributes_fails_without_writing() {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-2");
    callout(
        &root,
        "attrs",
        r#"if [ "$ev $act" = 'get attributes' ]; then exit 5; fi
exit 0"#,
    );
    let t = mdevctl(&root, &["define", "-u", U1]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(t.stderr.contains("exit status 5"), "{}", t.stderr);
    assert!(config(&root, "mtty", U1).is_none());
    // post and notify still ran, with state failure.
    assert!(sequence(&root).contains(&"attrs:post/define/failure".to_owned()));
}

#[test]
fn define_jsonfile_writes_file_content_normalised() {
    let root = FakeRoot::new();
    let j = root.write(
        "in.json",
        r#"{"extra": 1, "attrs": [{"b":"2"},{"a":"ä/\n"}], "start": "AUTO", "mdev_type": "mtty-1"}"#,
    );
    let t = mdevctl(
        &root,
        &[
            "define",
            "-u",
            U1,
            "-p",
            "mtty",
            "--jsonfile",
            j.to_str().unwrap(),
        ],
    );
    t.assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "manual", &[("b", "2"), ("a", "ä/\n")])
    );
}

#[test]
fn define_jsonfile_without_uuid_prints_generated_uuid() {
    let root = FakeRoot::new();
    let j = root.write("in.json", r#"{"mdev_type":"mtty-1","start":"auto"}"#);
    let t = mdevctl(
        &root,
        &["define", "-p", "mtty", "--jsonfile", j.to_str().unwrap()],
    );
    t.assert_clean();
    let uuid = t.stdout.strip_suffix('\n').unwrap();
    assert!(is_canonical_uuid(uuid));
    assert_eq!(
        config(&root, "mtty", uuid).unwrap(),
        pretty("mtty-1", "auto", &[])
    );
}

#[test]
fn define_jsonfile_unreadable_is_reported_before_missing_parent() {
    let root = FakeRoot::new();
    let t = mdevctl(
        &root,
        &["define", "-u", U1, "--jsonfile", "/nonexistent/x.json"],
    );
    assert_eq!(t.code, 1);
    let err = t.stderr_masked(&root);
    assert!(err.starts_with("Error: "), "{err}");
    assert!(err.to_lowercase().contains("unable to read file"), "{err}");
    assert!(err.contains("/nonexistent/x.json"), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
}

#[test]
fn define_jsonfile_unreadable_is_reported_before_existing_definition() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "manual");
    let t = mdevctl(
        &root,
        &[
            "define",
            "-u",
            U1,
            "-p",
            "mtty",
            "--jsonfile",
            "/nonexistent/x.json",
        ],
    );
    assert_eq!(t.code, 1);
    assert!(
        t.stderr.to_lowercase().contains("unable to read file"),
        "{}",
        t.stderr
    );
}

#[test]
fn define_jsonfile_missing_parent_is_reported_before_parse_errors() {
    let root = FakeRoot::new();
    let j = root.write("bad.json", "not json");
    let t = mdevctl(
        &root,
        &["define", "-u", U1, "--jsonfile", j.to_str().unwrap()],
    );
    assert_eq!(t.code, 1);
    let err = t.stderr_masked(&root);
    assert_eq!(
        err,
        "Error: parent device required to define device via <ROOT>/bad.json\n"
    );
}

#[test]
fn define_jsonfile_existing_definition_is_reported_before_parse_errors() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "manual");
    let j = root.write("bad.json", "not json");
    let t = mdevctl(
        &root,
        &[
            "define",
            "-u",
            U1,
            "-p",
            "mtty",
            "--jsonfile",
            j.to_str().unwrap(),
        ],
    );
    assert_error(&t, &format!("Device {U1} on mtty already defined"));
}

#[test]
fn define_jsonfile_malformed_names_file_and_problem() {
    let root = FakeRoot::new();
    let cases = [
        ("a.json", "not json", "not valid JSON"),
        ("b.json", r#"{"start":"auto"}"#, "'mdev_type' is missing"),
        (
            "c.json",
            r#"{"mdev_type":7,"start":"auto"}"#,
            "'mdev_type' must be a string",
        ),
        (
            "d.json",
            r#"{"mdev_type":"t","start":"auto","attrs":[{"a":1}]}"#,
            "value must be a string",
        ),
        ("e.json", "", "empty"),
    ];
    for (name, body, needle) in cases {
        let j = root.write(name, body);
        let t = mdevctl(
            &root,
            &[
                "define",
                "-u",
                U1,
                "-p",
                "mtty",
                "--jsonfile",
                j.to_str().unwrap(),
            ],
        );
        assert_eq!(t.code, 1, "{name}: {}", t.stderr);
        assert!(t.stderr.contains(name), "{name}: {}", t.stderr);
        assert!(t.stderr.contains(needle), "{name}: {}", t.stderr);
        assert!(config(&root, "mtty", U1).is_none());
    }
}

#[test]
fn define_callout_sequence_for_inactive_device() {
    let root = FakeRoot::new();
    callout(&root, "log", &versioned_body(&supports_all(), "exit 0"));
    notifier(&root, "n", "exit 0");
    mdevctl(&root, &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"]).assert_clean();
    assert_eq!(
        sequence(&root),
        [
            "log:get/capabilities/none",
            "log:pre/define/none",
            "log:post/define/success",
            "n:notify/define/success",
        ]
    );
}

#[test]
fn define_callout_sequence_for_active_device_includes_get_attributes() {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-1");
    callout(&root, "log", &versioned_body(&supports_all(), "exit 0"));
    mdevctl(&root, &["define", "-u", U1]).assert_clean();
    assert_eq!(
        sequence(&root),
        [
            "log:get/capabilities/none",
            "log:pre/define/none",
            "log:get/attributes/none",
            "log:post/define/success",
        ]
    );
}

#[test]
fn define_refusals_before_callouts_run_no_scripts() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "manual");
    callout(&root, "log", "exit 0");
    notifier(&root, "n", "exit 0");
    mdevctl(&root, &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"]);
    mdevctl(&root, &["define", "-u", U2, "-t", "mtty-1"]);
    assert_eq!(sequence(&root), Vec::<String>::new());
}

#[test]
fn define_without_config_dir_fails_and_creates_nothing() {
    let root = FakeRoot::new();
    root.remove("etc/mdevctl.d");
    let t = mdevctl(&root, &["define", "-u", U1, "-p", "mtty", "-t", "x"]);
    assert_eq!(t.code, 1);
    assert!(t.stderr.contains("etc/mdevctl.d"), "{}", t.stderr);
    assert!(!root.join("etc/mdevctl.d").exists());
}

#[test]
fn define_jsonfile_endless_stream_is_refused_without_reading_it_all() {
    let root = FakeRoot::new();
    let t = mdevctl(&root, &["define", "-p", "mtty", "--jsonfile", "/dev/zero"]);
    assert_error(
        &t,
        "unable to read file /dev/zero: larger than 1048576 bytes",
    );
    assert!(t.stdout.is_empty());
    assert!(!root.path().join("etc/mdevctl.d/mtty").exists());
}
