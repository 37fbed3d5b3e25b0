//! Bad input: one clear line, exit 1, and the host untouched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::Env;

const HAND: &str = "11111111-2222-4333-8444-555555555555";

/// Runs `apply` on `text` and checks the refusal: exit 1, `want` in the one error line,
/// nothing defined or started.
fn refused(env: &Env, text: &str, extra: &[&str], want: &str) {
    let f = env.file("bad.yaml", text);
    let before = (env.defined(), env.active());
    let mut args = vec!["apply", "-f", f.as_str()];
    args.extend_from_slice(extra);
    let err = env.fails(&args);
    assert!(err.contains(want), "want {want:?} in:\n{err}");
    assert!(err.starts_with("Error: "), "{err}");
    assert_eq!((env.defined(), env.active()), before, "{want}");
}

#[test]
fn a_vfio_ap_conflict_in_the_file_is_refused_before_any_change() {
    let Some(env) = Env::new("apconflict") else {
        return;
    };
    let text = r#"version: 1
profiles:
  p:
    - parents: "0000:83:00.0"
      devices: [{type: nvidia-18, count: 2}]
    - parents: matrix
      devices:
        - {uuid: 6c8ef8c3-9d8c-4c43-8d4f-5d1e0b6a9f10, type: vfio_ap-passthrough, attrs: [{assign_adapter: "5"}, {assign_domain: "0x47"}]}
        - {uuid: 7c8ef8c3-9d8c-4c43-8d4f-5d1e0b6a9f10, type: vfio_ap-passthrough, attrs: [{assign_domain: "71"}, {assign_adapter: "0x5"}]}
"#;
    refused(
        &env,
        text,
        &["-c", "p"],
        "profile 'p', entry 1, device 1: vfio-ap conflict: APQN 05.0047 is also assigned by profile 'p', entry 1, device 0",
    );
    // `validate` sees it too, without the host.
    let f = env.file("bad.yaml", text);
    assert!(env
        .fails(&["validate", "-f", &f])
        .contains("vfio-ap conflict"));
    // And a conflict with a device defined by hand.
    env.define_by_hand(
        "matrix",
        HAND,
        r#"{"mdev_type": "vfio_ap-passthrough", "start": "manual", "attrs": [{"assign_adapter": "5"}, {"assign_domain": "0x47"}]}"#,
    );
    let one = text.lines().take(8).collect::<Vec<_>>().join("\n");
    refused(
        &env,
        &one,
        &["-c", "p"],
        &format!("vfio-ap conflict: device 6c8ef8c3-9d8c-4c43-8d4f-5d1e0b6a9f10 (profile 'p', entry 1, device 0) would assign APQN 05.0047, which {HAND} (existing) has"),
    );
}

const GOOD_HEAD: &str = "version: 1\ndefault-profile: p\nprofiles:\n  p:\n";

#[test]
fn bad_input_gets_one_clear_line_and_changes_nothing() {
    let Some(env) = Env::new("badinput") else {
        return;
    };
    let gpu = |devices: &str| {
        format!("{GOOD_HEAD}    - parents: \"0000:83:00.0\"\n      devices: [{devices}]\n")
    };
    refused(
        &env,
        &gpu("{type: nvidia-99}"),
        &[],
        "parent 0000:83:00.0 has no type 'nvidia-99'; it has: nvidia-11 (GRID M60-0B), nvidia-18 (GRID M60-0Q), nvidia-19 (GRID M60-1Q), nvidia-22 (GRID M60-8Q)",
    );
    refused(
        &env,
        &gpu("{type: nvidia-19, count: 9}"),
        &[],
        "parent 0000:83:00.0, type nvidia-19 (GRID M60-1Q): 9 to start but 8 free; in use: no active devices on this parent",
    );
    refused(
        &env,
        &gpu("{type: nvidia-18}"),
        &["-c", "q"],
        "unknown profile 'q'; profiles: p",
    );
    refused(
        &env,
        &format!("{GOOD_HEAD}    - parents: {{driver: nouveau}}\n      devices: [{{type: x}}]\n"),
        &[],
        "profile 'p', entry 0: no parent matches {driver: nouveau}",
    );
    refused(
        &env,
        &gpu("{uuid: 6c8ef8c3-9d8c-4c43-8d4f-5d1e0b6a9f10, type: nvidia-18}, {uuid: 6c8ef8c3-9d8c-4c43-8d4f-5d1e0b6a9f10, type: nvidia-18}"),
        &[],
        "UUID 6c8ef8c3-9d8c-4c43-8d4f-5d1e0b6a9f10 is already claimed by profile 'p', entry 0, device 0",
    );
    refused(
        &env,
        &gpu("{type: nvidia-18, attrs: [{/abs: '1'}]}"),
        &[],
        "bad.yaml:6:43: profiles.p[0].devices[0].attrs[0]: invalid attribute name '/abs': it is an absolute path",
    );
    refused(
        &env,
        &format!("{GOOD_HEAD}    - parents: all\n      devics: []\n"),
        &[],
        "bad.yaml:6:7: profiles.p[0]: unknown field `devics`, expected one of `parents`, `optional`, `devices`",
    );
    refused(&env, "profiles: {}\n", &[], "missing field `version`");
    // A missing file, and the default file when -f is not given.
    let err = env.fails(&["apply", "-f", "/nonexistent/desired.yaml"]);
    assert_eq!(
        err,
        "Error: cannot read /nonexistent/desired.yaml: No such file or directory (os error 2)\n"
    );
    let err = env.fails(&["plan"]);
    assert!(
        err.contains("etc/mdevkit/config.yaml: No such file"),
        "{err}"
    );
    // Every refusal above is a single line.
    let f = env.file("bad.yaml", &gpu("{type: nvidia-99}"));
    assert_eq!(env.fails(&["plan", "-f", &f]).lines().count(), 1);
}

#[test]
fn apply_takes_mdevctls_lock_before_looking_at_the_host() {
    let Some(env) = Env::new("locked") else {
        return;
    };
    let lock_path = env.path("run/lock/mdevctl.lock");
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let lock = std::fs::File::create(&lock_path).unwrap();
    lock.lock().unwrap();
    let f = env.file(
        "f.yaml",
        &format!("{GOOD_HEAD}    - parents: mtty\n      devices: [{{type: mtty-1}}]\n"),
    );
    let out = env
        .command(&["apply", "-f", &f])
        .env("MDEVCTL_LOCK_TIMEOUT", "0.2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    // Refused at the start, not at the first change or state write.
    assert!(
        err.starts_with("Error: timed out after 0.2s waiting for lock "),
        "{err}"
    );
    assert!(env.defined().is_empty() && env.active().is_empty());
    // Plans only read: they do not wait for the lock.
    env.expect(2, &["plan", "-f", &f]);
    drop(lock);
    env.ok(&["apply", "-f", &f]);
    assert_eq!(env.active().len(), 1);
}
