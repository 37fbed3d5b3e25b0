//! Callouts that misbehave: hang, leave children behind, crash, flood their output, print
//! non-UTF-8 or bad JSON, exit with odd codes. Each gives a clear error or a documented
//! outcome, never a panic (exit 101), never a hang past the limit, never a lost definition.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use crate::common::*;
use crate::life::*;

/// The hang guard on a run that should stop its script long before the script's own end:
/// hanging scripts sleep 120 s (300 s), so a run under this bound was not waiting for them,
/// yet a loaded machine cannot push a correct run past it.
const GUARD: Duration = Duration::from_secs(60);

fn timeout(secs: &str) -> Opts<'static> {
    Opts::default().env("MDEVCTL_CALLOUT_TIMEOUT", secs)
}

fn stderr_text(r: &RawRun) -> String {
    String::from_utf8_lossy(&r.stderr).into_owned()
}

#[test]
fn hanging_pre_callout_is_killed_after_the_timeout_and_named() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "manual");
    let path = callout(
        &root,
        "slow",
        &versioned_body(
            &supports_all(),
            "if [ \"$ev\" = pre ]; then exec sleep 120; fi\nexit 0",
        ),
    );
    let before = snapshot(&root);
    let r = run_raw(&root, &["modify", "-u", U1, "--auto"], &timeout("1"));
    assert!(r.elapsed < GUARD, "{:?}", r.elapsed);
    assert_eq!(r.code, Some(1), "{}", stderr_text(&r));
    assert_eq!(
        stderr_text(&r),
        format!(
            "Error: callout script {} did not finish within 1s and was killed\n",
            path.display()
        )
    );
    assert_eq!(snapshot(&root), before, "definition untouched");
}

/// Is `pid` still a running process (not gone, not a zombie waiting to be reaped)?
fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn hanging_callout_is_killed_with_the_processes_it_started() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "manual");
    let pidfile = root.path().join("helper.pid");
    callout(
        &root,
        "slow",
        &versioned_body(
            &supports_all(),
            &format!(
                "if [ \"$ev\" = pre ]; then sleep 120 </dev/null >/dev/null 2>&1 & echo $! > {}; wait; fi\nexit 0",
                pidfile.display()
            ),
        ),
    );
    let r = run_raw(&root, &["modify", "-u", U1, "--auto"], &timeout("1"));
    assert_eq!(r.code, Some(1), "{}", stderr_text(&r));
    assert!(
        stderr_text(&r).contains("was killed"),
        "{}",
        stderr_text(&r)
    );
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let pid = pid.trim();
    let deadline = std::time::Instant::now() + GUARD;
    while alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !alive(pid),
        "the script's helper {pid} outlived the timeout"
    );
}

#[test]
fn hanging_capability_probe_is_skipped_after_the_timeout() {
    let root = FakeRoot::new();
    callout(&root, "a-slow", "exec sleep 120");
    callout(&root, "b", &versioned_body(&supports_all(), "exit 0"));
    let r = run_raw(
        &root,
        &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"],
        &timeout("1"),
    );
    assert!(r.elapsed < GUARD, "{:?}", r.elapsed);
    assert_eq!(r.code, Some(0), "{}", stderr_text(&r));
    assert!(stderr_text(&r).contains("a-slow"), "a warning names it");
    assert!(config(&root, "mtty", U1).is_some());
}

#[test]
fn callout_leaving_a_background_child_does_not_hold_mdevctl() {
    let root = FakeRoot::new();
    callout(&root, "bg", "sleep 120 &\nexit 0");
    let r = run_raw(
        &root,
        &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"],
        &timeout("20"),
    );
    assert!(r.elapsed < GUARD, "{:?}", r.elapsed);
    assert_eq!(r.code, Some(0), "{}", stderr_text(&r));
    assert!(config(&root, "mtty", U1).is_some());
}

#[test]
fn callout_leaving_a_child_that_never_reads_big_stdin_does_not_hold_mdevctl() {
    let root = FakeRoot::new();
    let big = "v".repeat(300_000);
    root.define_attrs("mtty", U1, "mtty-1", "manual", &[("a", big.as_str())]);
    // The logging prefix reads stdin, so this script is not a logging one: its background
    // child inherits the stdin pipe and never reads it.
    executable(
        &root,
        "usr/lib/mdevctl/scripts.d/callouts/v",
        "#!/bin/sh\nexec 3<&0\nsleep 120 <&3 >/dev/null 2>&1 &\nexit 0\n",
    );
    let r = run_raw(&root, &["modify", "-u", U1, "--auto"], &timeout("20"));
    assert!(r.elapsed < GUARD, "{:?}", r.elapsed);
    assert_eq!(r.code, Some(0), "{}", stderr_text(&r));
    assert!(config(&root, "mtty", U1).unwrap().contains("\"auto\""));
}

#[test]
fn crashing_versioned_callout_is_a_clear_error() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "manual");
    let path = callout(
        &root,
        "crash",
        &versioned_body(
            &supports_all(),
            "if [ \"$ev\" = pre ]; then kill -SEGV $$; fi\nexit 0",
        ),
    );
    let before = snapshot(&root);
    let t = mdevctl(&root, &["modify", "-u", U1, "--auto"]);
    assert_error(
        &t,
        &format!("callout script {} was killed by signal 11", path.display()),
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn crashing_legacy_callout_is_skipped_like_a_non_taker() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "manual");
    callout(&root, "crash", "kill -KILL $$");
    let t = mdevctl(&root, &["modify", "-u", U1, "--auto"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "auto", &[])
    );
}

#[test]
fn flooding_callout_output_is_bounded_and_harmless() {
    let root = FakeRoot::new();
    callout(
        &root,
        "flood",
        &versioned_body(
            &supports_all(),
            "head -c 8000000 /dev/zero | tr '\\0' 'o'\nhead -c 8000000 /dev/zero | tr '\\0' 'e' >&2\nexit 0",
        ),
    );
    let r = run_raw(
        &root,
        &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"],
        &timeout("30"),
    );
    assert_eq!(r.code, Some(0), "{}", &stderr_text(&r)[..200]);
    assert_eq!(r.stdout, b"");
    // Two echoed calls (pre, post), each capped.
    assert!(r.stderr.len() < 4_000_000, "{}", r.stderr.len());
    assert!(r.stderr.starts_with(b"flood: eee"));
    assert!(config(&root, "mtty", U1).is_some());
}

#[test]
fn non_utf8_callout_output_is_not_a_panic() {
    let root = FakeRoot::new();
    callout(
        &root,
        "bin",
        "printf '\\377\\376{' \nprintf 'bad \\377 bytes' >&2\nexit 0",
    );
    let r = run_raw(
        &root,
        &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"],
        &Opts::default(),
    );
    assert_eq!(r.code, Some(0), "{}", stderr_text(&r));
    // Echoed verbatim (pre and post), bytes and all.
    assert_eq!(r.stderr, b"bin: bad \xff bytesbin: bad \xff bytes".to_vec());
    assert!(config(&root, "mtty", U1).is_some());
}

#[test]
fn non_utf8_get_attributes_reply_is_an_error_not_a_panic() {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-1");
    callout(
        &root,
        "bin",
        "if [ \"$ev $act\" = 'get attributes' ]; then printf '[{\"a\":\"\\377\"}]'; fi\nexit 0",
    );
    let r = run_raw(&root, &["define", "-u", U1], &Opts::default());
    assert_ne!(r.code, Some(101), "{}", stderr_text(&r));
    // Either a clear error or the lossy value: never a panic, never a torn file.
    match r.code {
        Some(0) => {
            let c = config(&root, "mtty", U1).unwrap();
            assert!(c.contains("\"a\""), "{c}");
        }
        Some(1) => assert!(config(&root, "mtty", U1).is_none()),
        other => panic!("unexpected exit {other:?}"),
    }
}

#[test]
fn get_attributes_special_replies() {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-1")
        .active(U2, "mtty", "mtty-1")
        .active(U3, "mtty", "mtty-1");
    callout(
        &root,
        "g",
        &format!(
            "if [ \"$ev $act\" = 'get attributes' ]; then case \"${{10}}\" in\n\
             {U1}) printf '[{{}}]';;\n{U2}) ;;\n{U3}) printf '  [{{\"k\": \"v\"}}]\\n\\0';;\nesac; fi\nexit 0"
        ),
    );
    for u in [U1, U2, U3] {
        mdevctl(&root, &["define", "-u", u]).assert_clean();
    }
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "manual", &[])
    );
    assert_eq!(
        config(&root, "mtty", U2).unwrap(),
        pretty("mtty-1", "manual", &[])
    );
    assert_eq!(
        config(&root, "mtty", U3).unwrap(),
        pretty("mtty-1", "manual", &[("k", "v")])
    );
}

#[test]
fn get_attributes_bad_shapes_are_errors_naming_the_problem() {
    let cases = [
        ("[{}]\n", "exactly one field"),
        ("{\"a\":\"b\"}", "not an array"),
        ("[{\"a\":1}]", "value must be a string"),
        ("[{\"../x\":\"1\"}]", "'..'"),
        ("[", "invalid JSON"),
    ];
    for (reply, needle) in cases {
        let root = mtty_host();
        root.active(U1, "mtty", "mtty-1");
        let body = format!(
            "if [ \"$ev $act\" = 'get attributes' ]; then printf '%s' '{reply}'; fi\nexit 0"
        );
        callout(&root, "g", &body);
        let t = mdevctl(&root, &["define", "-u", U1]);
        assert_eq!(t.code, 1, "{reply}: {}", t.stderr);
        assert!(t.stderr.contains(needle), "{reply}: {}", t.stderr);
        assert!(config(&root, "mtty", U1).is_none(), "{reply}");
    }
}

#[test]
fn odd_exit_codes_are_reported_as_such() {
    for code in ["1", "3", "126", "127", "255"] {
        let root = FakeRoot::new();
        let path = callout(
            &root,
            "x",
            &versioned_body(
                &supports_all(),
                &format!("if [ \"$ev\" = pre ]; then exit {code}; fi\nexit 0"),
            ),
        );
        let t = mdevctl(&root, &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"]);
        assert_error(
            &t,
            &format!(
                "callout script {} failed with exit status {code}",
                path.display()
            ),
        );
        assert!(config(&root, "mtty", U1).is_none());
    }
}

#[test]
fn bad_timeout_setting_is_a_clear_error() {
    let root = FakeRoot::new();
    let t = mdev(
        &root,
        &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"],
        &timeout("soon"),
    );
    assert_eq!(t.code, 1);
    assert!(t.stderr.contains("MDEVCTL_CALLOUT_TIMEOUT"), "{}", t.stderr);
    assert!(config(&root, "mtty", U1).is_none());
}

#[test]
fn fractional_callout_timeout_is_honoured_and_printed() {
    let root = FakeRoot::new();
    let path = callout(
        &root,
        "slow",
        &versioned_body(
            &supports_all(),
            "if [ \"$ev\" = pre ]; then exec sleep 120; fi\nexit 0",
        ),
    );
    let r = run_raw(
        &root,
        &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"],
        &timeout("0.3"),
    );
    assert!(r.elapsed < GUARD, "{:?}", r.elapsed);
    assert_eq!(
        stderr_text(&r),
        format!(
            "Error: callout script {} did not finish within 0.3s and was killed\n",
            path.display()
        )
    );
    assert!(config(&root, "mtty", U1).is_none());
}

#[test]
fn too_large_timeout_settings_are_a_clear_error_for_every_command() {
    for var in ["MDEVCTL_CALLOUT_TIMEOUT", "MDEVCTL_LOCK_TIMEOUT"] {
        for value in ["1e99", "18446744073709551616"] {
            for args in [
                &["list"][..],
                &["types"],
                &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"],
            ] {
                let root = FakeRoot::new();
                let t = mdev(&root, args, &Opts::default().env(var, value));
                assert_eq!(t.code, 1, "{var}={value} {args:?}: {}", t.stderr);
                assert_eq!(
                    t.stderr,
                    format!("Error: {var}='{value}' is more seconds than a duration can hold\n")
                );
                assert!(config(&root, "mtty", U1).is_none());
            }
        }
    }
}

#[test]
fn negative_nan_and_infinite_timeout_settings_are_clear_errors() {
    for var in ["MDEVCTL_CALLOUT_TIMEOUT", "MDEVCTL_LOCK_TIMEOUT"] {
        for value in ["-1", "NaN", "inf", "-inf"] {
            let root = FakeRoot::new();
            let t = mdev(&root, &["list"], &Opts::default().env(var, value));
            assert_eq!(t.code, 1, "{var}={value}: {}", t.stderr);
            assert_eq!(
                t.stderr,
                format!(
                    "Error: {var}='{value}' is not a number of seconds (a decimal, 0 or more)\n"
                )
            );
        }
    }
}

#[test]
fn huge_but_representable_callout_timeout_means_no_deadline() {
    let root = FakeRoot::new();
    callout(&root, "ok", &versioned_body(&supports_all(), "exit 0"));
    let t = mdev(
        &root,
        &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"],
        &timeout("1e18"),
    );
    t.assert_clean();
    assert!(config(&root, "mtty", U1).is_some());
}

#[test]
fn callout_past_its_limit_gets_sigterm_and_may_clean_up() {
    let root = FakeRoot::new();
    let marker = root.join("cleaned");
    let path = callout(
        &root,
        "slow",
        &versioned_body(
            &supports_all(),
            &format!(
                "if [ \"$ev\" = pre ]; then trap 'echo TERM > {}; exit 1' TERM; sleep 1200; fi\nexit 0",
                marker.display()
            ),
        ),
    );
    let r = run_raw(
        &root,
        &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"],
        &timeout("0.5"),
    );
    assert!(r.elapsed < GUARD, "{:?}", r.elapsed);
    // (Its shell's report of the terminated `sleep` is echoed first.)
    assert!(
        stderr_text(&r).ends_with(&format!(
            "Error: callout script {} did not finish within 0.5s and was killed\n",
            path.display()
        )),
        "{}",
        stderr_text(&r)
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "TERM\n");
    assert!(config(&root, "mtty", U1).is_none());
}
