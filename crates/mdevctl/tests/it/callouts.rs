//! The callout protocol as scripts see it: argv order, stdin, discovery of versioned and
//! legacy scripts, enforcement of declared capabilities, `--force`, notifiers, stderr
//! echo, directory order, process parentage (§6, DIVERGENCES §10).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use crate::life::*;

const PROVIDES: &str = r#"{"provides":{"version":2,"actions":["start","stop","define","undefine","modify","attributes","capabilities"],"events":["pre","post","notify","get","live"]}}"#;

fn define_u1(root: &FakeRoot, extra: &[&str]) -> Transcript {
    let mut args = vec!["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"];
    args.extend_from_slice(extra);
    mdevctl(root, &args)
}

#[test]
fn callout_argv_order_and_compact_json_on_stdin() {
    let root = FakeRoot::new();
    callout(&root, "log", &versioned_body(&supports_all(), "exit 0"));
    let j = root.write(
        "d.json",
        "{\n  \"mdev_type\": \"mtty-1\",\n  \"start\": \"auto\",\n  \"attrs\": [{\"a\": \"x y\"}, {\"b/c\": \"\\u00e4\"}]\n}\n",
    );
    mdevctl(
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
    )
    .assert_clean();
    let c = calls(&root);
    assert_eq!(
        c[0].args,
        format!("-t mtty-1 -e get -a capabilities -s none -u {U1} -p mtty")
    );
    assert_eq!(c[0].stdin, PROVIDES);
    assert_eq!(
        c[1].args,
        format!("-t mtty-1 -e pre -a define -s none -u {U1} -p mtty")
    );
    let json = r#"{"mdev_type":"mtty-1","start":"auto","attrs":[{"a":"x y"},{"b/c":"ä"}]}"#;
    assert_eq!(c[1].stdin, json);
    assert_eq!(
        c[2].args,
        format!("-t mtty-1 -e post -a define -s success -u {U1} -p mtty")
    );
    assert_eq!(c[2].stdin, json);
}

#[test]
fn callout_each_argument_is_separate_even_with_spaces_in_values() {
    let root = FakeRoot::new();
    executable(
        &root,
        "usr/lib/mdevctl/scripts.d/callouts/argc",
        &format!(
            "#!/bin/sh\ncat >/dev/null\necho \"$#:$2\" >> '{}'\nexit 0\n",
            log_path(&root).display()
        ),
    );
    define_u1(&root, &[]).assert_clean();
    let log = std::fs::read_to_string(log_path(&root)).unwrap();
    assert!(log.lines().all(|l| l == "12:mtty-1"), "{log}");
}

#[test]
fn callout_versioned_script_is_preferred_over_an_earlier_legacy_one() {
    let root = FakeRoot::new();
    callout(&root, "a-legacy", "exit 0");
    callout(
        &root,
        "b-versioned",
        &versioned_body(&supports_all(), "exit 0"),
    );
    define_u1(&root, &[]).assert_clean();
    assert_eq!(
        sequence(&root),
        [
            "a-legacy:get/capabilities/none",
            "b-versioned:get/capabilities/none",
            "b-versioned:pre/define/none",
            "b-versioned:post/define/success",
        ]
    );
}

#[test]
fn callout_capabilities_reply_is_accepted_with_exit_1_and_trailing_nuls() {
    let root = FakeRoot::new();
    callout(
        &root,
        "v",
        &format!(
            "if [ \"$ev $act\" = 'get capabilities' ]; then printf '%s\\0\\0' '{}'; exit 1; fi\nexit 0",
            supports_all()
        ),
    );
    callout(&root, "w-legacy", "exit 0");
    define_u1(&root, &[]).assert_clean();
    assert_eq!(
        sequence(&root),
        [
            "v:get/capabilities/none",
            "v:pre/define/none",
            "v:post/define/success"
        ]
    );
}

#[test]
fn callout_versioned_script_missing_action_blocks_command_unless_forced() {
    let root = FakeRoot::new();
    let path = callout(
        &root,
        "v",
        &versioned_body(
            &supports(&["start", "stop", "define"], &["pre", "post", "get"]),
            "exit 0",
        ),
    );
    root.define("mtty", U1, "mtty-1", "manual");
    let t = mdevctl(&root, &["modify", "-u", U1, "--auto"]);
    assert_error(
        &t,
        &format!(
            "callout script {} does not support action 'Modify'",
            path.display()
        ),
    );
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "manual", &[])
    );
    assert_eq!(sequence(&root), ["v:get/capabilities/none"]);

    let t = mdevctl(&root, &["modify", "-u", U1, "--auto", "--force"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(
        t.stderr.contains("Forcing operation 'modify'"),
        "{}",
        t.stderr
    );
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "auto", &[])
    );
}

#[test]
fn callout_versioned_script_missing_event_is_refused_by_name() {
    let root = FakeRoot::new();
    let path = callout(
        &root,
        "v",
        &versioned_body(&supports(&["define"], &["post", "get"]), "exit 0"),
    );
    assert_error(
        &define_u1(&root, &[]),
        &format!(
            "callout script {} does not support event 'Pre'",
            path.display()
        ),
    );
    assert!(config(&root, "mtty", U1).is_none());
}

#[test]
fn callout_legacy_selection_skips_scripts_answering_2() {
    let root = FakeRoot::new();
    callout(&root, "a-other-type", "exit 2");
    callout(&root, "b-mine", "exit 0");
    callout(&root, "c-later", "exit 0");
    define_u1(&root, &[]).assert_clean();
    assert_eq!(
        sequence(&root),
        [
            "a-other-type:get/capabilities/none",
            "b-mine:get/capabilities/none",
            "c-later:get/capabilities/none",
            "a-other-type:pre/define/none",
            "b-mine:pre/define/none",
            // b handled this device: it is used directly from now on.
            "b-mine:post/define/success",
        ]
    );
}

#[test]
fn callout_no_script_handling_the_device_is_a_noop() {
    let root = FakeRoot::new();
    callout(&root, "a", "exit 2");
    define_u1(&root, &[]).assert_clean();
    assert!(config(&root, "mtty", U1).is_some());
    assert_eq!(
        sequence(&root),
        [
            "a:get/capabilities/none",
            "a:pre/define/none",
            "a:post/define/success"
        ]
    );
}

#[test]
fn callout_failing_pre_stops_command_and_reports_status() {
    let root = FakeRoot::new();
    let path = callout(
        &root,
        "guard",
        "if [ \"$ev\" = pre ]; then exit 255; fi\nexit 0",
    );
    notifier(&root, "n", "exit 0");
    let t = define_u1(&root, &[]);
    assert_error(
        &t,
        &format!(
            "callout script {} failed with exit status 255",
            path.display()
        ),
    );
    assert!(config(&root, "mtty", U1).is_none());
    assert_eq!(
        sequence(&root),
        [
            "guard:get/capabilities/none",
            "guard:pre/define/none",
            "n:notify/define/none",
        ]
    );
}

#[test]
fn callout_force_continues_past_failing_pre() {
    let root = FakeRoot::new();
    callout(
        &root,
        "guard",
        "if [ \"$ev\" = pre ]; then exit 1; fi\nexit 0",
    );
    let t = define_u1(&root, &["--force"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    let w = t.warnings(&root);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("Forcing operation 'define' despite callout failure. Error was: "),
        "{w:?}"
    );
    assert!(config(&root, "mtty", U1).is_some());
    assert_eq!(
        sequence(&root),
        [
            "guard:get/capabilities/none",
            "guard:pre/define/none",
            "guard:post/define/success",
        ]
    );
}

#[test]
fn callout_post_failure_is_ignored() {
    let root = FakeRoot::new();
    callout(
        &root,
        "v",
        &versioned_body(
            &supports_all(),
            "if [ \"$ev\" = post ]; then exit 9; fi\nexit 0",
        ),
    );
    let t = define_u1(&root, &[]);
    t.assert_clean();
    assert!(config(&root, "mtty", U1).is_some());
}

#[test]
fn callout_stderr_is_echoed_verbatim_with_script_name() {
    let root = FakeRoot::new();
    callout(
        &root,
        "talk",
        &versioned_body(
            &supports_all(),
            "printf 'line one\\nline two' >&2\nif [ \"$ev\" = post ]; then printf 'done\\n' >&2; fi\nexit 0",
        ),
    );
    let t = define_u1(&root, &[]);
    assert_eq!(t.code, 0);
    assert_eq!(
        t.stderr, "talk: line one\nline twotalk: line one\nline twodone\n",
        "no newline added, name prefixed once per call"
    );
}

#[test]
fn callout_stderr_of_scripts_rejected_in_discovery_is_not_echoed() {
    let root = FakeRoot::new();
    callout(&root, "a", "echo 'not me' >&2\nexit 2");
    define_u1(&root, &[]).assert_clean();
}

#[test]
fn notifiers_all_run_with_notify_and_no_data_and_cannot_fail_the_command() {
    let root = FakeRoot::new();
    notifier(&root, "n1", "exit 1");
    notifier(&root, "n2", "echo noise; echo noise >&2; exit 0");
    logging_script(&root, "etc/mdevctl.d/scripts.d/notifiers/old", "exit 0");
    define_u1(&root, &[]).assert_clean();
    let mut c = calls(&root);
    c.sort_by(|a, b| a.script.cmp(&b.script));
    let names: Vec<&str> = c.iter().map(|c| c.script.as_str()).collect();
    assert_eq!(names, ["n1", "n2", "old"]);
    for call in &c {
        assert_eq!(
            call.args,
            format!("-t mtty-1 -e notify -a define -s success -u {U1} -p mtty")
        );
        assert_eq!(call.stdin, "");
    }
}

#[test]
fn callout_primary_directory_comes_before_deprecated_one() {
    let root = FakeRoot::new();
    callout(&root, "new", &versioned_body(&supports_all(), "exit 0"));
    logging_script(
        &root,
        "etc/mdevctl.d/scripts.d/callouts/aaa-old",
        &versioned_body(&supports_all(), "exit 0"),
    );
    define_u1(&root, &[]).assert_clean();
    assert_eq!(
        sequence(&root),
        [
            "new:get/capabilities/none",
            "new:pre/define/none",
            "new:post/define/success"
        ]
    );
}

#[test]
fn callout_deprecated_directory_is_used_when_primary_has_no_taker() {
    let root = FakeRoot::new();
    callout(&root, "new", "exit 2");
    logging_script(
        &root,
        "etc/mdevctl.d/scripts.d/callouts/old",
        &versioned_body(&supports_all(), "exit 0"),
    );
    define_u1(&root, &[]).assert_clean();
    assert_eq!(
        sequence(&root),
        [
            "new:get/capabilities/none",
            "old:get/capabilities/none",
            "old:pre/define/none",
            "old:post/define/success"
        ]
    );
}

#[test]
fn callout_non_executable_entries_are_skipped() {
    let root = FakeRoot::new();
    root.write(
        "usr/lib/mdevctl/scripts.d/callouts/0-readme",
        "not a program",
    );
    root.mkdir("usr/lib/mdevctl/scripts.d/callouts/1-dir");
    callout(&root, "v", &versioned_body(&supports_all(), "exit 0"));
    define_u1(&root, &[]).assert_clean();
    assert_eq!(sequence(&root).len(), 3);
}

#[test]
fn callouts_are_direct_children_of_mdevctl() {
    let root = mtty_host();
    root.define("mtty", U1, "mtty-1", "manual");
    callout(&root, "v", &versioned_body(&supports_all(), "exit 0"));
    notifier(&root, "n", "exit 0");
    for args in [
        vec!["modify", "-u", U1, "--auto"],
        vec!["start", "-u", U1],
        vec!["undefine", "-u", U1],
    ] {
        clear_log(&root);
        let (t, pid) = run_with(&root, &args, &Opts::default());
        assert_eq!(t.code, 0, "{args:?}: {}", t.stderr);
        let c = calls(&root);
        assert!(c.len() >= 4, "{args:?}: {c:?}");
        for call in c {
            assert_eq!(call.ppid, pid, "{args:?}: {call:?}");
        }
    }
}

#[test]
fn callout_versioned_discovery_is_cached_per_parent_and_type() {
    let root = mtty_host();
    root.define("mtty", U1, "mtty-1", "auto")
        .define("mtty", U2, "mtty-1", "auto")
        .define("mtty", U3, "mtty-1", "auto");
    callout(&root, "v", &versioned_body(&supports_all(), "exit 0"));
    mdevctl(&root, &["start-parent-mdevs", "mtty"]).assert_clean();
    let probes = sequence(&root)
        .iter()
        .filter(|s| s.ends_with("get/capabilities/none"))
        .count();
    assert_eq!(probes, 1);
    assert_eq!(
        sequence(&root)
            .iter()
            .filter(|s| *s == "v:pre/start/none")
            .count(),
        3
    );
}

#[test]
fn callout_stderr_of_the_accepted_capability_probe_is_echoed() {
    let root = FakeRoot::new();
    callout(
        &root,
        "v",
        &format!(
            "if [ \"$ev $act\" = 'get capabilities' ]; then printf 'probing\\n' >&2; printf '%s' '{}'; fi\nexit 0",
            supports_all()
        ),
    );
    let t = define_u1(&root, &[]);
    assert_eq!(t.code, 0);
    assert_eq!(t.stderr, "v: probing\n");
}

#[test]
fn callout_capability_replies_lacking_required_members_mean_legacy() {
    for reply in [
        r#"{"supports":{"version":"2","actions":["define"],"events":["pre","post"]}}"#,
        r#"{"supports":{"version":2,"actions":["define"]}}"#,
        r#"{"supports":null}"#,
        r#"{"provides":{"version":2,"actions":[],"events":[]}}"#,
        "[]",
    ] {
        let root = FakeRoot::new();
        // Were it taken as versioned, its lists would forbid `pre`.
        callout(&root, "v", &versioned_body(reply, "exit 0"));
        define_u1(&root, &[]).assert_clean();
        assert_eq!(
            sequence(&root),
            [
                "v:get/capabilities/none",
                "v:pre/define/none",
                "v:post/define/success"
            ],
            "{reply}"
        );
    }
}

#[test]
fn callout_unknown_names_in_capabilities_are_accepted() {
    let root = FakeRoot::new();
    callout(
        &root,
        "v",
        &versioned_body(
            r#"{"supports":{"version":3,"actions":["define","frobnicate"],"events":["pre","post","teleport"]},"extra":1}"#,
            "exit 0",
        ),
    );
    let t = define_u1(&root, &[]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(config(&root, "mtty", U1).is_some());
    // Each kind of unknown name is said once, as upstream does.
    let warned: Vec<&str> = t.stderr.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warned.len(), 2, "{}", t.stderr);
    assert!(
        warned[0].ends_with("/v provides unknown Action type"),
        "{}",
        t.stderr
    );
    assert!(
        warned[1].ends_with("/v provides unknown Event type"),
        "{}",
        t.stderr
    );
}

#[test]
fn callout_exit_2_from_the_chosen_versioned_script_is_a_failure() {
    let root = FakeRoot::new();
    let path = callout(
        &root,
        "v",
        &versioned_body(
            &supports_all(),
            "if [ \"$ev\" = pre ]; then exit 2; fi\nexit 0",
        ),
    );
    callout(&root, "w", "exit 0");
    assert_error(
        &define_u1(&root, &[]),
        &format!(
            "callout script {} failed with exit status 2",
            path.display()
        ),
    );
    assert!(!sequence(&root).iter().any(|s| s.starts_with("w:pre")));
    assert!(config(&root, "mtty", U1).is_none());
}

#[test]
fn callouts_inherit_environment_and_working_directory() {
    let root = FakeRoot::new();
    let out = root.join("env.txt");
    callout(
        &root,
        "env",
        &format!(
            "echo \"$MDEVCTL_ENV_ROOT|$MDEVKIT_TEST_MARK|$(pwd)\" >> '{}'\nexit 0",
            out.display()
        ),
    );
    let cwd = TempDir::new();
    let mut cmd = command(
        &root,
        &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"],
        &Opts::default().env("MDEVKIT_TEST_MARK", "kept"),
    );
    cmd.current_dir(cwd.path());
    let status = cmd.status().unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&out).unwrap();
    let want = format!(
        "{}|kept|{}",
        root.path().display(),
        cwd.path().canonicalize().unwrap().display()
    );
    assert!(!text.is_empty());
    for line in text.lines() {
        assert_eq!(line, want);
    }
}
