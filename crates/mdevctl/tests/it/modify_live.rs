//! `mdevctl modify --live [--defined]`: the live callout of a versioned script, the checks
//! before it, and the definition written only after it succeeded (§4.5 live, §6.7).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use crate::life::*;

const NEW: &str = r#"{"mdev_type":"mtty-1","start":"auto","attrs":[{"x":"9"}]}"#;

/// U1 active on mtty as mtty-1 and defined there; `new.json` holds [`NEW`].
fn host() -> FakeRoot {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-1")
        .define_attrs("mtty", U1, "mtty-1", "manual", &[("a", "1")]);
    root.write("new.json", NEW);
    root
}

fn live(root: &FakeRoot, extra: &[&str]) -> Transcript {
    let j = root.join("new.json");
    let mut args = vec![
        "modify",
        "-u",
        U1,
        "--jsonfile",
        j.to_str().unwrap(),
        "--live",
    ];
    args.extend_from_slice(extra);
    mdevctl(root, &args)
}

/// The calls without the `get attributes` of the active lookup (which upstream makes as a
/// side effect of loading the active device; the live protocol does not depend on it).
fn protocol_calls(root: &FakeRoot) -> Vec<String> {
    sequence(root)
        .into_iter()
        .filter(|s| !s.ends_with("get/attributes/none"))
        .collect()
}

#[test]
fn modify_live_runs_live_callout_and_leaves_definition() {
    let root = host();
    callout(&root, "v", &versioned_body(&supports_all(), "exit 0"));
    notifier(&root, "n", "exit 0");
    let before = snapshot(&root);
    live(&root, &[]).assert_clean();
    assert_eq!(snapshot(&root), before, "nothing written");
    assert_eq!(
        protocol_calls(&root),
        [
            "v:get/capabilities/none",
            "v:live/modify/none",
            "n:notify/modify/none"
        ]
    );
    let c = calls(&root);
    let l = c.iter().find(|c| c.eas() == "live/modify/none").unwrap();
    assert_eq!(l.stdin, NEW);
    assert_eq!(
        l.args,
        format!("-t mtty-1 -e live -a modify -s none -u {U1} -p mtty")
    );
}

#[test]
fn modify_live_defined_writes_definition_after_live_succeeds() {
    let root = host();
    callout(&root, "v", &versioned_body(&supports_all(), "exit 0"));
    notifier(&root, "n", "exit 0");
    live(&root, &["--defined"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "auto", &[("x", "9")])
    );
    assert_eq!(
        protocol_calls(&root),
        [
            "v:get/capabilities/none",
            "v:live/modify/none",
            "n:notify/modify/none",
            "v:pre/modify/none",
            "v:post/modify/success",
            "n:notify/modify/success",
        ]
    );
}

#[test]
fn modify_live_defined_failing_live_callout_keeps_definition() {
    let root = host();
    callout(
        &root,
        "v",
        &versioned_body(
            &supports_all(),
            "if [ \"$ev\" = live ]; then exit 2; fi\nexit 0",
        ),
    );
    let before = snapshot(&root);
    let t = live(&root, &["--defined"]);
    assert_eq!(t.code, 1, "exit 2 is a failure for live: {}", t.stderr);
    assert!(t.stderr.contains("exit status 2"), "{}", t.stderr);
    assert_eq!(snapshot(&root), before);
    assert!(!protocol_calls(&root)
        .iter()
        .any(|s| s.contains("pre/modify")));
}

#[test]
fn modify_live_without_versioned_script_is_refused() {
    let root = host();
    callout(&root, "legacy", "exit 0");
    let before = snapshot(&root);
    assert_error(
        &live(&root, &[]),
        "no callout script with version support found that supports live modify",
    );
    assert_error(
        &live(&root, &["--defined"]),
        "no callout script with version support found that supports live modify",
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn modify_live_script_without_live_event_is_refused_by_name() {
    let root = host();
    let path = callout(
        &root,
        "v",
        &versioned_body(
            &supports(&["start", "stop", "modify"], &["pre", "post", "get"]),
            "exit 0",
        ),
    );
    let t = live(&root, &[]);
    assert_error(
        &t,
        &format!(
            "callout script {} does not support event 'Live'",
            path.display()
        ),
    );
    assert_eq!(protocol_calls(&root), ["v:get/capabilities/none"]);
}

#[test]
fn modify_live_of_inactive_device_says_not_active() {
    let root = host();
    callout(&root, "v", &versioned_body(&supports_all(), "exit 0"));
    let j = root.join("new.json");
    let t = mdevctl(
        &root,
        &[
            "modify",
            "-u",
            U2,
            "--jsonfile",
            j.to_str().unwrap(),
            "--live",
        ],
    );
    assert_error(&t, &format!("Mediated device {U2} is not active"));
    let t = mdevctl(
        &root,
        &[
            "modify",
            "-u",
            U1,
            "-p",
            "matrix",
            "--jsonfile",
            j.to_str().unwrap(),
            "--live",
        ],
    );
    assert_error(&t, &format!("Mediated device matrix/{U1} is not active"));
    assert!(!sequence(&root).iter().any(|s| s.contains("live/")));
}

#[test]
fn modify_live_type_change_is_refused() {
    let root = host();
    callout(&root, "v", &versioned_body(&supports_all(), "exit 0"));
    root.write("new.json", r#"{"mdev_type":"mtty-2","start":"manual"}"#);
    assert_error(&live(&root, &[]), "'type' cannot be changed on active mdev");
    assert!(!sequence(&root).iter().any(|s| s.contains("live/")));
}

#[test]
fn modify_live_defined_needs_a_matching_definition() {
    let root = host();
    callout(&root, "v", &versioned_body(&supports_all(), "exit 0"));
    root.define("mtty", U1, "mtty-2", "manual");
    let before = snapshot(&root);
    assert_error(
        &live(&root, &["--defined"]),
        "'type' of active and defined mdev does not match",
    );
    assert_eq!(snapshot(&root), before);
    root.remove(config_rel("mtty", U1));
    assert_error(
        &live(&root, &["--defined"]),
        &format!("Mediated device mtty/{U1} is not defined"),
    );
    assert!(!sequence(&root).iter().any(|s| s.contains("live/")));
}

#[test]
fn modify_live_with_non_jsonfile_change_is_a_usage_error() {
    let root = host();
    let before = snapshot(&root);
    for extra in [["--auto"], ["--manual"], ["--delattr"]] {
        let mut args = vec!["modify", "-u", U1, "--live"];
        args.extend_from_slice(&extra);
        let t = mdevctl(&root, &args);
        assert_usage(&t, "--jsonfile");
    }
    assert_usage(
        &mdevctl(
            &root,
            &[
                "modify",
                "-u",
                U1,
                "--live",
                "--addattr",
                "a",
                "--value",
                "1",
            ],
        ),
        "",
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn modify_live_conflicts_with_type_and_index() {
    let root = host();
    let j = root.join("new.json");
    let j = j.to_str().unwrap();
    assert_usage(
        &mdevctl(
            &root,
            &["modify", "-u", U1, "--jsonfile", j, "--live", "-t", "x"],
        ),
        "cannot be used with",
    );
    assert_usage(
        &mdevctl(
            &root,
            &["modify", "-u", U1, "--jsonfile", j, "--live", "-i", "0"],
        ),
        "cannot be used with",
    );
}

#[test]
fn modify_live_help_probe_of_libvirt_exits_zero() {
    let root = host();
    let t = mdevctl(
        &root,
        &["modify", "--defined", "--live", "--jsonfile", "b", "--help"],
    );
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(t.stdout.contains("--live"));
    assert!(t.stdout.contains("--defined"));
}
