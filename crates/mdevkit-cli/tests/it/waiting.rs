//! `apply --wait`: parents and types that appear after apply started (mdevctl issue #82).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};

use crate::common::{Env, GPU1};

const LATE: &str = "version: 1\nprofiles:\n  p:\n    - parents: \"0000:84:00.0\"\n      devices: [{type: \"GRID M60-0Q\", count: 2}]\n";

/// Starts `apply --wait` and returns once it has said what it waits for.
fn waiting_apply(env: &Env, wait: &str) -> (Child, String) {
    let f = env.file("late.yaml", LATE);
    let mut child = env
        .command(&["apply", "-f", &f, "-c", "p", "--wait", wait])
        .env("MDEVCTL_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("waiting up to"), "{first}");
    // Keep draining stderr so that the child never blocks on it.
    std::thread::spawn(move || lines.for_each(drop));
    (child, first)
}

fn finish(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    let mut stdout = String::new();
    out.stdout.as_slice().read_to_string(&mut stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    stdout
}

#[test]
fn apply_waits_for_a_parent_that_appears_late() {
    let Some(env) = Env::new("lateparent") else {
        return;
    };
    let (child, first) = waiting_apply(&env, "60s");
    assert!(first.contains("no parent matches 0000:84:00.0"), "{first}");
    env.sim.add_parent(GPU1).unwrap();
    let out = finish(child);
    assert!(
        out.ends_with("Applied 4 change(s) to match profile 'p'.\n"),
        "{out}"
    );
    assert_eq!(env.active().len(), 2);
}

#[test]
fn apply_waits_for_types_published_after_the_parent() {
    let Some(env) = Env::new("latetypes") else {
        return;
    };
    env.sim.add_parent_unpublished(GPU1).unwrap();
    let (child, first) = waiting_apply(&env, "60s");
    assert!(
        first.contains("parent 0000:84:00.0 has not published its types yet"),
        "{first}"
    );
    env.sim.publish_types(GPU1).unwrap();
    finish(child);
    assert_eq!(env.active().len(), 2);
}

#[test]
fn waiting_gives_up_and_says_what_is_still_missing() {
    let Some(env) = Env::new("waitgivesup") else {
        return;
    };
    let f = env.file("late.yaml", LATE);
    let err = env.fails(&["apply", "-f", &f, "-c", "p", "--wait", "300ms"]);
    assert_eq!(
        err,
        "Error: still missing after waiting 0.3s:\nprofile 'p', entry 0: no parent matches 0000:84:00.0\n"
    );
}
