//! Bad definition files and odd entries in `/etc/mdevctl.d`: each is skipped with exactly
//! one warning line naming the file and the problem, the rest is still listed, exit 0
//! (DIVERGENCES §1, §2, §5; spec §3.1, §3.3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use crate::common::*;

/// U1 good and U3 good on mtty; U2 on mtty holds `contents`.
fn host_with_bad_definition(contents: &[u8]) -> FakeRoot {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "auto");
    root.define("mtty", U3, "mtty-2", "manual");
    root.define_raw("mtty", U2, contents);
    root
}

fn good_lines() -> String {
    format!("{U1} mtty mtty-1 auto\n{U3} mtty mtty-2 manual\n")
}

/// Exactly one stderr line: a WARN log line whose message is `message`.
fn assert_one_warning(t: &Transcript, root: &FakeRoot, message: &str) {
    let lines = t.warnings(root);
    assert_eq!(lines.len(), 1, "want one warning line, got {lines:#?}");
    let line = &lines[0];
    assert!(line.starts_with("[TS WARN  "), "{line}");
    let (_, msg) = line.split_once("] ").unwrap();
    assert_eq!(msg, message);
}

/// `list -d` (text and JSON) goes on without the bad file and names it in one line.
fn assert_skipped_with(contents: &[u8], problem: &str) {
    let root = host_with_bad_definition(contents);
    let message = format!("malformed definition <ROOT>/etc/mdevctl.d/mtty/{U2}: {problem}");
    let t = mdevctl(&root, &["list", "-d"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert_eq!(t.stdout, good_lines());
    assert_one_warning(&t, &root, &message);
    let j = mdevctl(&root, &["list", "-d", "--dumpjson"]);
    assert_eq!(j.code, 0);
    assert!(j.stdout.contains(U1) && j.stdout.contains(U3) && !j.stdout.contains(U2));
    assert_one_warning(&j, &root, &message);
}

#[test]
fn config_malformed_json_is_skipped_with_warning() {
    assert_skipped_with(
        br#"{"mdev_type": "t" "start"}"#,
        "not valid JSON: expected `,` or `}` at line 1 column 19",
    );
}

#[test]
fn config_truncated_json_is_skipped_with_warning() {
    assert_skipped_with(
        br#"{"mdev_type":"t","#,
        "not valid JSON: EOF while parsing a value at line 1 column 17",
    );
}

#[test]
fn config_empty_file_is_skipped_with_warning() {
    assert_skipped_with(b"", "the file is empty");
}

#[test]
fn config_whitespace_only_file_is_skipped_with_warning() {
    assert_skipped_with(b" \n\t\n", "the file is empty");
}

#[test]
fn config_non_utf8_is_skipped_with_warning() {
    assert_skipped_with(
        b"{\"mdev_type\":\"\xff\",\"start\":\"auto\"}",
        "not valid UTF-8",
    );
}

#[test]
fn config_top_level_array_is_skipped_with_warning() {
    assert_skipped_with(b"[]", "not a JSON object");
}

#[test]
fn config_missing_type_is_skipped_with_warning() {
    assert_skipped_with(br#"{"start":"auto"}"#, "'mdev_type' is missing or null");
    assert_skipped_with(
        br#"{"mdev_type":null,"start":"auto"}"#,
        "'mdev_type' is missing or null",
    );
}

#[test]
fn config_missing_start_is_skipped_with_warning() {
    assert_skipped_with(br#"{"mdev_type":"t"}"#, "'start' is missing or null");
}

#[test]
fn config_type_number_is_skipped_with_warning_not_a_panic() {
    assert_skipped_with(
        br#"{"mdev_type":5,"start":"auto"}"#,
        "'mdev_type' must be a string, found the number 5",
    );
}

#[test]
fn config_type_with_slash_is_skipped_with_warning() {
    assert_skipped_with(
        br#"{"mdev_type":"../t","start":"auto"}"#,
        "'mdev_type': invalid type name '../t': it contains '/'",
    );
}

#[test]
fn config_attrs_not_an_array_is_skipped_with_warning() {
    assert_skipped_with(
        br#"{"mdev_type":"t","start":"auto","attrs":{"a":"1"}}"#,
        "'attrs' is not an array",
    );
}

#[test]
fn config_attr_not_an_object_is_skipped_with_warning() {
    assert_skipped_with(
        br#"{"mdev_type":"t","start":"auto","attrs":[{"a":"1"},"b"]}"#,
        "attribute 1 is not an object",
    );
}

#[test]
fn config_attr_with_two_keys_is_skipped_with_warning() {
    assert_skipped_with(
        br#"{"mdev_type":"t","start":"auto","attrs":[{"a":"1","b":"2"}]}"#,
        "attribute 0 must have exactly one field, found 2",
    );
}

#[test]
fn config_attr_empty_object_is_skipped_with_warning() {
    assert_skipped_with(
        br#"{"mdev_type":"t","start":"auto","attrs":[{}]}"#,
        "attribute 0 must have exactly one field, found 0",
    );
}

#[test]
fn config_attr_non_string_value_is_skipped_with_warning() {
    assert_skipped_with(
        br#"{"mdev_type":"t","start":"auto","attrs":[{"a":1}]}"#,
        "attribute 0 ('a'): value must be a string, found the number 1",
    );
    assert_skipped_with(
        br#"{"mdev_type":"t","start":"auto","attrs":[{"a":null}]}"#,
        "attribute 0 ('a'): value must be a string, found null",
    );
}

#[test]
fn config_attr_name_escaping_device_dir_is_skipped_with_warning() {
    assert_skipped_with(
        br#"{"mdev_type":"t","start":"auto","attrs":[{"../x":"1"}]}"#,
        "attribute 0: invalid attribute name '../x': it has a '.' or '..' component",
    );
}

#[test]
fn config_bad_file_with_other_uuid_is_not_read_under_uuid_filter() {
    let root = host_with_bad_definition(b"{");
    let t = mdevctl(&root, &["list", "-d", "-u", U1]);
    t.assert_clean();
    assert_eq!(t.stdout, format!("{U1} mtty mtty-1 auto\n"));
}

#[test]
fn config_bad_file_selected_by_uuid_prints_empty_and_warns() {
    let root = host_with_bad_definition(b"{");
    let t = mdevctl(&root, &["list", "-d", "-u", U2, "--dumpjson"]);
    assert_eq!(t.code, 0);
    assert_eq!(t.stdout, "[]");
    assert_eq!(t.warnings(&root).len(), 1);
    assert!(t.stderr.contains(U2));
}

#[test]
fn config_unreadable_file_is_skipped_with_warning() {
    // As root, mode 000 does not stop reads: the binary runs as uid 65534 then.
    let root = host_with_bad_definition(br#"{"mdev_type":"t","start":"auto"}"#);
    let path = root.join(format!("etc/mdevctl.d/mtty/{U2}"));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    let t = mdevctl_unprivileged(&root, &["list", "-d"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert_eq!(t.stdout, good_lines());
    assert_one_warning(
        &t,
        &root,
        &format!(
            "cannot read definition <ROOT>/etc/mdevctl.d/mtty/{U2}: \
             Permission denied (os error 13)"
        ),
    );
}

#[test]
fn config_uuid_named_directory_is_ignored() {
    let root = host_with_bad_definition(b"{}");
    root.remove(format!("etc/mdevctl.d/mtty/{U2}"));
    root.mkdir(format!("etc/mdevctl.d/mtty/{U2}"));
    let t = mdevctl(&root, &["list", "-d"]);
    t.assert_clean();
    assert_eq!(t.stdout, good_lines());
}

#[test]
fn config_uuid_named_fifo_is_ignored_without_blocking() {
    let root = host_with_bad_definition(b"{}");
    root.remove(format!("etc/mdevctl.d/mtty/{U2}"));
    let fifo = root.join(format!("etc/mdevctl.d/mtty/{U2}"));
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success(), "mkfifo");
    // Reading a FIFO with no writer would block forever; it is not a regular file.
    let t = mdevctl(&root, &["list", "-d"]);
    t.assert_clean();
    assert_eq!(t.stdout, good_lines());
}

#[test]
fn config_symlinked_file_is_ignored() {
    let root = host_with_bad_definition(b"{}");
    root.remove(format!("etc/mdevctl.d/mtty/{U2}"));
    root.symlink(U1, format!("etc/mdevctl.d/mtty/{U2}"));
    let t = mdevctl(&root, &["list", "-d"]);
    t.assert_clean();
    assert_eq!(t.stdout, good_lines());
}

#[test]
fn config_symlinked_parent_directory_is_ignored_with_and_without_filter() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "auto");
    root.symlink("mtty", "etc/mdevctl.d/alias");
    for args in [&["list", "-d"][..], &["list", "-d", "-p", "alias"]] {
        let t = mdevctl(&root, args);
        t.assert_clean();
        let want = if args.len() == 2 {
            format!("{U1} mtty mtty-1 auto\n")
        } else {
            String::new()
        };
        assert_eq!(t.stdout, want, "{args:?}");
    }
}

#[test]
fn config_plain_file_at_top_level_is_ignored() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "auto");
    root.write(format!("etc/mdevctl.d/{U2}"), "{}");
    let t = mdevctl(&root, &["list", "-d"]);
    t.assert_clean();
    assert_eq!(t.stdout, format!("{U1} mtty mtty-1 auto\n"));
}

#[test]
fn config_non_uuid_file_name_is_skipped_with_warning() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "auto");
    root.define_raw("mtty", "not-a-uuid", config_json("mtty-1", "auto", &[]));
    let t = mdevctl(&root, &["list", "-d"]);
    assert_eq!(t.code, 0);
    assert_eq!(t.stdout, format!("{U1} mtty mtty-1 auto\n"));
    assert_one_warning(
        &t,
        &root,
        "Can't determine uuid for file '<ROOT>/etc/mdevctl.d/mtty/not-a-uuid'",
    );
}

#[test]
fn config_hidden_temporary_file_is_ignored_silently() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "auto");
    root.define_raw("mtty", &format!(".{U1}.tmp-123"), "{");
    let t = mdevctl(&root, &["list", "-d"]);
    t.assert_clean();
    assert_eq!(t.stdout, format!("{U1} mtty mtty-1 auto\n"));
}

#[test]
fn config_non_utf8_file_name_is_skipped_with_warning_not_a_panic() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "auto");
    let mut name = root.join("etc/mdevctl.d/mtty");
    name.push(OsStr::from_bytes(b"bad\xffname"));
    fs::write(&name, config_json("t", "auto", &[])).unwrap();
    let t = mdevctl(&root, &["list", "-d"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert_eq!(t.stdout, format!("{U1} mtty mtty-1 auto\n"));
    assert_one_warning(
        &t,
        &root,
        "Can't determine uuid for file '<ROOT>/etc/mdevctl.d/mtty/bad\u{fffd}name'",
    );
}

#[test]
fn config_non_utf8_parent_directory_is_skipped_with_warning_not_a_panic() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "auto");
    let mut dir = root.join("etc/mdevctl.d");
    dir.push(OsStr::from_bytes(b"par\xffent"));
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join(U2), config_json("t", "auto", &[])).unwrap();
    let t = mdevctl(&root, &["list", "-d"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert_eq!(t.stdout, format!("{U1} mtty mtty-1 auto\n"));
    assert_one_warning(
        &t,
        &root,
        "Skipping <ROOT>/etc/mdevctl.d/par\u{fffd}ent: not a valid parent name",
    );
}

#[test]
fn config_same_uuid_in_two_spellings_under_one_parent_prefers_canonical_name() {
    let root = FakeRoot::new();
    root.define_raw(
        "mtty",
        &U1.to_uppercase(),
        config_json("upper", "manual", &[]),
    );
    root.define("mtty", U1, "canonical", "auto");
    root.define_raw(
        "mtty",
        &U1.replace('-', ""),
        config_json("simple", "manual", &[]),
    );
    let t = mdevctl(&root, &["list", "-d"]);
    assert_eq!(t.code, 0);
    assert_eq!(t.stdout, format!("{U1} mtty canonical auto\n"));
    let mut lines = t.warnings(&root);
    lines.sort();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for (line, name) in lines.iter().zip([U1.to_uppercase(), U1.replace('-', "")]) {
        assert!(
            line.ends_with(&format!(
                "duplicate definition <ROOT>/etc/mdevctl.d/mtty/{name}: \
                 <ROOT>/etc/mdevctl.d/mtty/{U1} defines the same UUID"
            )),
            "{line}"
        );
    }
}

#[test]
fn config_same_uuid_in_two_non_canonical_spellings_is_deterministic() {
    let root = FakeRoot::new();
    root.define_raw(
        "mtty",
        &U1.to_uppercase(),
        config_json("upper", "manual", &[]),
    );
    root.define_raw(
        "mtty",
        &format!("{{{U1}}}"),
        config_json("braced", "manual", &[]),
    );
    let t = mdevctl(&root, &["list", "-d"]);
    assert_eq!(t.code, 0);
    // Byte order of the file names: '1' (0x31) sorts before '{' (0x7b).
    assert_eq!(t.stdout, format!("{U1} mtty upper manual\n"));
    assert_eq!(t.warnings(&root).len(), 1);
}

#[test]
fn active_listing_with_malformed_definition_marks_defined_and_warns() {
    let root = standard_host();
    root.define_raw("mtty", U4, "{");
    let t = mdevctl(&root, &["list", "-u", U4]);
    assert_eq!(t.code, 0);
    assert_eq!(t.stdout, format!("{U4} mtty mtty-1 manual (defined)\n"));
    assert_one_warning(
        &t,
        &root,
        &format!(
            "malformed definition <ROOT>/etc/mdevctl.d/mtty/{U4}: not valid JSON: \
             EOF while parsing an object at line 1 column 1"
        ),
    );
}

#[test]
fn active_listing_with_unreadable_definition_marks_defined_and_warns() {
    let root = standard_host();
    root.define("mtty", U4, "mtty-1", "auto");
    let path = root.join(format!("etc/mdevctl.d/mtty/{U4}"));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    let t = mdevctl_unprivileged(&root, &["list", "-u", U4]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert_eq!(t.stdout, format!("{U4} mtty mtty-1 manual (defined)\n"));
    assert_one_warning(
        &t,
        &root,
        &format!(
            "cannot read definition <ROOT>/etc/mdevctl.d/mtty/{U4}: \
             Permission denied (os error 13)"
        ),
    );
}
