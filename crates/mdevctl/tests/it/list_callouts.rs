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

/// ~1,000 active devices on two parents, attributes from a legacy script whose latency
/// varies by device: the concurrent calls give the same bytes, in the same order, as one
/// call after the other would (rows by parent then UUID; echoed stderr in UUID order).
#[test]
fn list_attributes_of_many_devices_keep_order_and_bytes() {
    let root = FakeRoot::new();
    root.parent("mdpy")
        .mdev_type("mdpy", "mdpy-1", TypeSpec::new(1000, "vfio-pci"))
        .parent("mtty")
        .mdev_type("mtty", "mtty-1", TypeSpec::new(1000, "vfio-pci"));
    let mut devices: Vec<(String, &str, &str)> = (0..1000u64)
        .map(|i| {
            let scrambled = i.wrapping_mul(2_654_435_761) % (1 << 32);
            let uuid = format!("{scrambled:08x}-1111-4111-8111-{i:012x}");
            let (parent, ty) = if i % 3 == 0 {
                ("mdpy", "mdpy-1")
            } else {
                ("mtty", "mtty-1")
            };
            (uuid, parent, ty)
        })
        .collect();
    for (u, p, t) in &devices {
        root.active(u, p, t);
    }
    root.script(
        "callouts",
        "50-attrs",
        "case \"$*\" in *'-e get -a capabilities'*) exit 2 ;; esac\n\
         u=${10}\ncase \"$u\" in *0) sleep 0.02 ;; *5) sleep 0.01 ;; esac\n\
         printf 'e%s\\n' \"$u\" >&2\nprintf '[{\"u\":\"%s\"},{\"p\":\"%s\"}]' \"$u\" \"${12}\"\n",
    );
    let t = mdevctl(&root, &["list", "-v"]);
    assert_eq!(t.code, 0, "{}", t.stderr);

    devices.sort_by(|a, b| a.0.cmp(&b.0));
    let echoed: String = devices
        .iter()
        .map(|(u, _, _)| format!("50-attrs: e{u}\n"))
        .collect();
    assert_eq!(t.stderr, echoed, "stderr echoed in UUID order");

    devices.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    let listed: String = devices
        .iter()
        .map(|(u, p, ty)| {
            format!(
                "{u} {p} {ty} manual\n  Attrs:\n    @{{0}}: {{\"u\":\"{u}\"}}\n    \
                 @{{1}}: {{\"p\":\"{p}\"}}\n"
            )
        })
        .collect();
    assert_eq!(t.stdout, listed);
}

/// Waiting for callouts is event-driven: a listing that runs a callout per device makes no
/// sleeping system call (its scripts here do not sleep either). Needs strace with ptrace
/// permission; where it cannot run, this says so on stderr and checks nothing else.
#[test]
fn list_with_callouts_never_sleeps_to_wait() {
    let probe = std::process::Command::new("strace")
        .args(["-o", "/dev/null", "true"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("strace cannot run here: not checked");
        return;
    }
    let root = host();
    for u in [U2, U3, U4, U5] {
        root.active(u, "mtty", "mtty-1");
    }
    attributes_script(&root, r#"[{"a":"1"}]"#, 0);
    let trace = root.join("strace.out");
    let mut cmd = clean_command(
        &root,
        std::path::Path::new("strace"),
        &[
            "-f",
            "-qq",
            "-e",
            "trace=nanosleep,clock_nanosleep",
            "-o",
            trace.to_str().unwrap(),
            bin().to_str().unwrap(),
            "list",
            "-v",
        ]
        .map(std::ffi::OsStr::new),
    );
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("Attrs:")
            .count(),
        5
    );
    let calls = std::fs::read_to_string(&trace).unwrap();
    assert!(!calls.contains("sleep("), "{calls}");
}
