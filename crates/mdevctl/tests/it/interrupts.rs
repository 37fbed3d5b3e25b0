//! mdevctl interrupted (SIGINT, SIGTERM, SIGHUP) while a callout runs: the signal is
//! forwarded to the callout's process group, which is gone when mdevctl ends, and mdevctl
//! ends by the same signal, as it would have without callouts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::common::*;
use crate::life::*;

/// Generous: only catches a hang.
const HANG: Duration = Duration::from_secs(30);

/// A callout body that, for `ev_act`, records its process id in `dir/<uuid>` and waits
/// until a signal's trap records the signal in `dir/<uuid>.sig`. It waits in `wait`, not
/// in a foreground `sleep`: a signal that reaches the shell's freshly forked child before
/// it execs `sleep` is lost to that child, and the shell would run its trap only once the
/// foreground `sleep` ends (here: when the grace period's SIGKILL ends everything).
fn hold(ev_act: &str, dir: &Path) -> String {
    let d = dir.display();
    format!(
        "if [ \"$ev $act\" = '{ev_act}' ]; then\n  u=${{10}}\n  \
         for s in INT TERM HUP; do trap \"echo $s > '{d}/'$u.sig; exit 1\" $s; done\n  \
         echo $$ > '{d}/'$u.tmp; mv '{d}/'$u.tmp '{d}/'$u\n  sleep 300 & wait\nfi\nexit 0"
    )
}

/// Waits until `path` holds a process id; fails if `child` ends first.
fn wait_for_pid(path: &Path, child: &mut Child) -> Pid {
    let until = Instant::now() + HANG;
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        {
            return Pid::from_raw(pid).unwrap();
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("mdevctl ended before its callout started: {status:?}");
        }
        assert!(Instant::now() < until, "the callout never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for `child`, killing it (and failing) if it hangs.
fn wait_bounded(child: &mut Child) -> ExitStatus {
    let until = Instant::now() + HANG;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("mdevctl did not end after the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn send(child: &Child, sig: Signal) {
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

/// No live process is left in `group`, at once or soon: mdevctl SIGKILLs what is left of
/// each group before it ends, and a killed process may take a moment to die on a loaded
/// machine (so this waits, bounded by [`HANG`]). A member that died is a zombie until init
/// reaps it: it runs nothing, so it does not count (`kill(-group, 0)` would still find it).
fn group_is_gone(group: Pid) -> bool {
    let until = Instant::now() + HANG;
    while group_has_live_member(group) {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn group_has_live_member(group: Pid) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return rustix::process::test_kill_process_group(group) != Err(rustix::io::Errno::SRCH);
    };
    entries.flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|f| f.parse::<i32>().ok());
        pgrp == Some(group.as_raw_nonzero().get()) && state != Some("Z")
    })
}

fn interrupted_during_pre(sig: Signal, name: &str) {
    let root = FakeRoot::new();
    let dir = root.mkdir("held");
    callout(
        &root,
        "hold",
        &versioned_body(&supports_all(), &hold("pre define", &dir)),
    );
    let mut child = command(
        &root,
        &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"],
        &Opts::default(),
    )
    .spawn()
    .unwrap();
    let group = wait_for_pid(&dir.join(U1), &mut child);
    send(&child, sig);
    let status = wait_bounded(&mut child);
    assert_eq!(status.signal(), Some(sig.as_raw()), "{status:?}");
    assert!(
        group_is_gone(group),
        "the callout's group {group:?} outlived mdevctl"
    );
    let got = std::fs::read_to_string(dir.join(format!("{U1}.sig"))).unwrap();
    assert_eq!(got.trim(), name, "the callout got the same signal");
    assert!(
        config(&root, "mtty", U1).is_none(),
        "the define did not happen"
    );
}

#[test]
fn sigint_during_a_pre_callout_ends_both() {
    interrupted_during_pre(Signal::INT, "INT");
}

#[test]
fn sigterm_during_a_pre_callout_ends_both() {
    interrupted_during_pre(Signal::TERM, "TERM");
}

#[test]
fn sighup_during_a_pre_callout_ends_both() {
    interrupted_during_pre(Signal::HUP, "HUP");
}

fn interrupted_during_list(sig: Signal) {
    let root = mtty_host();
    let uuids = [U1, U2, U3, U4, U5];
    for u in uuids {
        root.active(u, "mtty", "mtty-1");
    }
    let dir = root.mkdir("held");
    callout(
        &root,
        "hold",
        &versioned_body(&supports_all(), &hold("get attributes", &dir)),
    );
    let mut child = command(&root, &["list"], &Opts::default()).spawn().unwrap();
    wait_for_pid(&dir.join(U1), &mut child);
    send(&child, sig);
    let status = wait_bounded(&mut child);
    assert_eq!(status.signal(), Some(sig.as_raw()), "{status:?}");
    let mut started = 0;
    for u in uuids {
        if let Ok(text) = std::fs::read_to_string(dir.join(u)) {
            started += 1;
            let group = Pid::from_raw(text.trim().parse().unwrap()).unwrap();
            assert!(group_is_gone(group), "the callout for {u} outlived mdevctl");
        }
    }
    assert!(started >= 1);
}

#[test]
fn sigint_during_list_get_attributes_ends_every_callout() {
    interrupted_during_list(Signal::INT);
}

#[test]
fn sigterm_during_list_get_attributes_ends_every_callout() {
    interrupted_during_list(Signal::TERM);
}

#[test]
fn sighup_during_list_get_attributes_ends_every_callout() {
    interrupted_during_list(Signal::HUP);
}

/// A signal mdevctl was started with ignored (SIGHUP under `nohup`) stays ignored: no
/// handler is installed for it, and the callout and the command carry on.
#[test]
fn sighup_ignored_under_nohup_stays_ignored() {
    let root = FakeRoot::new();
    let dir = root.mkdir("held");
    let go = root.join("go");
    let body = format!(
        "if [ \"$ev\" = pre ]; then\n  echo $$ > '{d}/{U1}'\n  \
         while [ ! -e '{go}' ]; do sleep 0.05; done\nfi\nexit 0",
        d = dir.display(),
        go = go.display()
    );
    callout(&root, "hold", &versioned_body(&supports_all(), &body));
    let args = [
        bin().into_os_string(),
        "define".into(),
        "-u".into(),
        U1.into(),
        "-p".into(),
        "mtty".into(),
        "-t".into(),
        "mtty-1".into(),
    ];
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let mut child = clean_command(&root, Path::new("nohup"), &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_pid(&dir.join(U1), &mut child);
    // nohup ran mdevctl in its own place: same process id.
    send(&child, Signal::HUP);
    std::fs::write(&go, "").unwrap();
    let status = wait_bounded(&mut child);
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(config(&root, "mtty", U1).is_some());
}
