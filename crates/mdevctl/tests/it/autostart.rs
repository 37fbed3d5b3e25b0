//! The hidden `mdevctl start-parent-mdevs PARENT` run by the udev rule: auto definitions
//! only, already-running devices skipped, broken or failing devices not stopping the rest,
//! exit 0 (§2.8, §4.8, DIVERGENCES §2).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use crate::common::*;
use crate::life::*;

/// Which UUIDs reached `create` (logged by a pre-start callout, since a fake `create` file
/// only keeps the last one written).
fn started(root: &FakeRoot) -> Vec<String> {
    calls(root)
        .into_iter()
        .filter(|c| c.eas() == "post/start/success")
        .map(|c| c.args.split(' ').nth(9).unwrap().to_owned())
        .collect()
}

#[test]
fn autostart_starts_only_auto_definitions_of_that_parent() {
    let root = mtty_host();
    root.define("mtty", U1, "mtty-1", "auto")
        .define("mtty", U2, "mtty-1", "manual")
        .define("mtty", U3, "mtty-1", "auto")
        .define("matrix", U4, "vfio_ap-passthrough", "auto");
    callout(&root, "log", "exit 0");
    let t = mdevctl(&root, &["start-parent-mdevs", "mtty"]);
    t.assert_clean();
    assert_eq!(t.stdout, "");
    let mut s = started(&root);
    s.sort();
    assert_eq!(s, [U1, U3]);
}

#[test]
fn autostart_skips_devices_already_active_with_same_type() {
    let root = mtty_host();
    root.define("mtty", U1, "mtty-1", "auto")
        .define("mtty", U2, "mtty-1", "auto")
        .active(U1, "mtty", "mtty-1");
    callout(&root, "log", "exit 0");
    mdevctl(&root, &["start-parent-mdevs", "mtty"]).assert_clean();
    assert_eq!(started(&root), [U2]);
    assert!(!calls(&root).iter().any(|c| c.args.contains(U1)));
}

#[test]
fn autostart_skips_malformed_definition_with_a_warning() {
    let root = mtty_host();
    root.define("mtty", U2, "mtty-1", "auto");
    root.define_raw("mtty", U1, "{\"mdev_type\":");
    callout(&root, "log", "exit 0");
    let t = mdevctl(&root, &["start-parent-mdevs", "mtty"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert_eq!(started(&root), [U2]);
    let w = t.warnings(&root);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("[TS WARN  "), "{w:?}");
    assert!(
        w[0].contains(&format!("<ROOT>/etc/mdevctl.d/mtty/{U1}")),
        "{w:?}"
    );
}

#[test]
fn autostart_goes_on_past_a_failing_device() {
    let root = mtty_host();
    // U1 asks for a type the parent does not offer; U2 is fine.
    root.define("mtty", U1, "mtty-9", "auto")
        .define("mtty", U2, "mtty-1", "auto");
    callout(&root, "log", "exit 0");
    let t = mdevctl(&root, &["start-parent-mdevs", "mtty"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert_eq!(started(&root), [U2]);
    let w = t.warnings(&root);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains(U1) && w[0].contains("mtty-9"), "{w:?}");
    assert_eq!(
        fs::read_to_string(root.join(create_file("mtty", "mtty-1"))).unwrap(),
        U2
    );
}

#[test]
fn autostart_goes_on_past_a_failing_pre_callout_and_never_forces() {
    let root = mtty_host();
    root.define("mtty", U1, "mtty-1", "auto")
        .define("mtty", U2, "mtty-1", "auto");
    callout(
        &root,
        "log",
        &format!("if [ \"$ev\" = pre ] && [ \"${{10}}\" = {U1} ]; then exit 1; fi\nexit 0"),
    );
    let t = mdevctl(&root, &["start-parent-mdevs", "mtty"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert_eq!(started(&root), [U2]);
    assert!(!t.stderr.contains("Forcing"), "{}", t.stderr);
}

#[test]
fn autostart_of_unknown_parent_does_nothing() {
    let root = mtty_host();
    root.define("mtty", U1, "mtty-1", "auto");
    callout(&root, "log", "exit 0");
    let before = snapshot(&root);
    mdevctl(&root, &["start-parent-mdevs", "nothere"]).assert_clean();
    assert_eq!(snapshot(&root), before);
    assert_eq!(calls(&root), Vec::new());
}

#[test]
fn autostart_needs_a_valid_parent_argument() {
    let root = mtty_host();
    assert_usage(&mdevctl(&root, &["start-parent-mdevs"]), "PARENT");
    assert_usage(&mdevctl(&root, &["start-parent-mdevs", "../x"]), "../x");
}

#[test]
fn autostart_is_hidden_from_help() {
    let root = mtty_host();
    let t = mdevctl(&root, &["--help"]);
    assert_eq!(t.code, 0);
    assert!(!t.stdout.contains("start-parent-mdevs"));
}

#[test]
fn autostart_from_add_and_change_events_at_once_starts_each_device_once() {
    let root = mtty_host();
    for u in [U1, U2, U3, U4, U5] {
        root.define("mtty", u, "mtty-1", "auto");
    }
    // Play the kernel: on a successful start the device appears in sysfs.
    let parent_dir = root.join(FakeRoot::parent_dir("mtty"));
    let bus = root.join("sys/bus/mdev/devices");
    callout(
        &root,
        "kernel",
        &format!(
            "if [ \"$ev/$act/$st\" = post/start/success ]; then u=${{10}}\n\
             mkdir '{p}'/$u && ln -s ../mdev_supported_types/$2 '{p}'/$u/mdev_type && \
             ln -s '{p}'/$u '{b}'/$u; fi\nexit 0",
            p = parent_dir.display(),
            b = bus.display()
        ),
    );
    let children: Vec<_> = (0..2)
        .map(|_| {
            command(&root, &["start-parent-mdevs", "mtty"], &Opts::default())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stderr, b"", "{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut s = started(&root);
    s.sort();
    assert_eq!(s, [U1, U2, U3, U4, U5], "each exactly once");
    let t = mdevctl(&root, &["list"]);
    t.assert_clean();
    assert_eq!(t.stdout.lines().count(), 5);
}

#[test]
fn autostart_tries_a_device_active_with_another_type_and_warns() {
    let root = mtty_host();
    root.define("mtty", U1, "mtty-1", "auto")
        .active(U1, "mtty", "mtty-2");
    callout(&root, "log", "exit 0");
    let t = mdevctl(&root, &["start-parent-mdevs", "mtty"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(started(&root).is_empty());
    let w = t.warnings(&root);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("exists with different type"), "{w:?}");
}
