//! An apply killed with SIGKILL in the middle leaves a host the next apply converges from.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use crate::common::Env;

const FILE: &str = "version: 1\nprofiles:\n  p:\n    - parents: \"0000:83:00.0\"\n      devices: [{type: nvidia-18, count: 3}]\n";

#[test]
fn an_apply_killed_midway_converges_on_the_next_apply() {
    let Some(env) = Env::new("killed") else {
        return;
    };
    let ready = env.path("ready");
    let block = env.path("block");
    for fifo in [&ready, &block] {
        assert!(Command::new("mkfifo").arg(fifo).status().unwrap().success());
    }
    // A callout that holds the first start: it says so, then waits for the test.
    let script = env.path("usr/lib/mdevctl/scripts.d/callouts/hold");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$4\" = pre ] && [ \"$6\" = start ] || exit 0\necho held > {}\ncat {} >/dev/null\n",
            ready.display(),
            block.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let f = env.file("f.yaml", FILE);
    let mut apply = env
        .command(&["apply", "-f", &f, "-c", "p"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Opening the FIFO returns once the callout has opened it: apply is mid-way.
    let mut held = String::new();
    std::fs::File::open(&ready)
        .unwrap()
        .read_to_string(&mut held)
        .unwrap();
    assert_eq!(held, "held\n");
    apply.kill().unwrap();
    apply.wait().unwrap();
    // Release the orphaned callout, and take it away.
    drop(
        std::fs::OpenOptions::new()
            .write(true)
            .open(&block)
            .unwrap(),
    );
    std::fs::remove_file(&script).unwrap();
    assert_eq!(env.defined().len(), 3, "all defines come before the starts");
    assert!(env.active().is_empty());
    let out = env.ok(&["apply", "-f", &f, "-c", "p"]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with('>')).count(),
        3,
        "{out}"
    );
    assert_eq!(env.active().len(), 3);
    assert_eq!(
        env.ok(&["plan", "-f", &f, "-c", "p"]),
        "No changes: the host matches profile 'p'.\n"
    );
}
