//! The active listing's attributes, which come only from a callout's `get attributes`
//! reply (spec §3.4, §6.6, §6.9): shown with `-v` and in JSON, ignored when the script
//! fails; `list -d` and `types` run no scripts at all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;

/// A legacy (unversioned) callout: declines capability probes (exit 2) and answers
/// `get attributes` with `reply` and `status`.
fn attributes_script(root: &FakeRoot, reply: &str, status: i32) {
    root.script(
        "callouts",
        "50-attrs",
        &format!(
            "case \"$*\" in\n  *'-e get -a capabilities'*) exit 2 ;;\n  \
             *'-e get -a attributes'*) printf '%s' '{reply}'; exit {status} ;;\nesac\nexit 0\n"
        ),
    );
}

fn host() -> FakeRoot {
    let root = FakeRoot::new();
    root.parent("mtty")
        .mdev_type("mtty", "mtty-1", TypeSpec::new(2, "vfio-pci"))
        .active(U1, "mtty", "mtty-1");
    root
}

#[test]
fn list_active_verbose_shows_callout_attributes() {
    let root = host();
    attributes_script(&root, r#"[{"a":"1"},{"b":"x y"}]"#, 0);
    let t = mdevctl(&root, &["list", "-v"]);
    t.assert_clean();
    assert_eq!(
        t.stdout,
        format!(
            "{U1} mtty mtty-1 manual\n  Attrs:\n    @{{0}}: {{\"a\":\"1\"}}\n    \
             @{{1}}: {{\"b\":\"x y\"}}\n"
        )
    );
    let brief = mdevctl(&root, &["list"]);
    assert_eq!(brief.stdout, format!("{U1} mtty mtty-1 manual\n"));
}

#[test]
fn list_active_json_shows_callout_attributes() {
    let root = host();
    attributes_script(&root, r#"[{"a":"1"}]"#, 0);
    let t = mdevctl(&root, &["list", "--dumpjson", "-u", U1]);
    t.assert_clean();
    assert_eq!(
        t.stdout,
        "{\n  \"mdev_type\": \"mtty-1\",\n  \"start\": \"manual\",\n  \"attrs\": [\n    {\n      \
         \"a\": \"1\"\n    }\n  ]\n}"
    );
}

#[test]
fn list_active_empty_object_reply_means_no_attributes() {
    let root = host();
    attributes_script(&root, "[{}]", 0);
    let t = mdevctl(&root, &["list", "-v"]);
    t.assert_clean();
    assert_eq!(t.stdout, format!("{U1} mtty mtty-1 manual\n"));
}

#[test]
fn list_active_failing_callout_means_no_attributes() {
    let root = host();
    attributes_script(&root, r#"[{"a":"1"}]"#, 1);
    let t = mdevctl(&root, &["list", "-v"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert_eq!(t.stdout, format!("{U1} mtty mtty-1 manual\n"));
}

#[test]
fn list_active_invalid_json_from_callout_means_no_attributes() {
    let root = host();
    attributes_script(&root, "not json", 0);
    let t = mdevctl(&root, &["list", "-v", "--dumpjson"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(t.stdout.contains("\"attrs\": []"), "{}", t.stdout);
}

#[test]
fn list_defined_and_types_run_no_scripts() {
    let root = host();
    root.define("mtty", U1, "mtty-1", "auto");
    let marker = root.join("ran");
    root.script(
        "callouts",
        "10-log",
        &format!("echo \"$*\" >> '{}'\nexit 2\n", marker.display()),
    );
    for args in [
        &["list", "-d", "-v"][..],
        &["list", "-d", "--dumpjson"],
        &["types"],
    ] {
        let t = mdevctl(&root, args);
        t.assert_clean();
        assert!(!marker.exists(), "{args:?} ran a script");
    }
    // The active listing does ask (so the script above is really reachable).
    mdevctl(&root, &["list"]).assert_clean();
    let log = std::fs::read_to_string(&marker).unwrap();
    assert!(log.contains("-e get -a attributes"), "{log}");
}
