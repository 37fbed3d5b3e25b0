//! `mdevkit monitor`: definition, device and parent events through mdev-sim, in order.
//! Each test moves its thread into a network namespace of its own before mounting, so the
//! simulator's uevents reach only the monitor it spawns (and other tests' do not).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use serde_json::Value;

use crate::common::{Env, GPU0, GPU1};

const U1: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001";
const U2: &str = "1b801999-4448-490b-bcbd-de74b7d38a8e";
/// Generous: only catches a hang.
const HANG: Duration = Duration::from_secs(60);

/// The demo host in a private network namespace, or None (skip) without FUSE.
fn env(test: &str) -> Option<Env> {
    if !mdev_sim::fuse_for_test(test).unwrap() {
        return None;
    }
    mdev_sim::private_netns().expect("a network namespace of our own (run as root)");
    Env::new(test)
}

/// A running `mdevkit monitor --json`, its lines arriving on a channel.
struct Watch {
    child: Child,
    lines: Receiver<String>,
}

impl Watch {
    /// Starts the monitor and returns once it is ready, with the events before `ready`.
    fn start(env: &Env, extra: &[&str]) -> (Watch, Vec<String>) {
        let mut args = vec!["monitor", "--json"];
        args.extend_from_slice(extra);
        let mut child = env
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in out.lines() {
                if tx.send(l.unwrap()).is_err() {
                    break;
                }
            }
        });
        let mut w = Watch { child, lines };
        let mut before = Vec::new();
        loop {
            let l = w.next();
            if l.contains(r#""event":"ready""#) {
                return (w, before);
            }
            before.push(l);
        }
    }

    fn next(&mut self) -> String {
        self.lines
            .recv_timeout(HANG)
            .unwrap_or_else(|e| panic!("no event within {HANG:?}: {e}"))
    }

    /// The next `n` events in the short text form of [`short`].
    fn take(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| short(&self.next())).collect()
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `event uuid parent type start` of a JSON line, absent fields left out, checking that
/// every key of the schema is there.
fn short(line: &str) -> String {
    let v: Value = serde_json::from_str(line).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["event", "uuid", "parent", "type", "start", "snapshot", "lost"],
        "{line}"
    );
    let mut words = vec![v["event"].as_str().unwrap().to_string()];
    for k in ["uuid", "parent", "type", "start", "lost"] {
        if let Some(s) = v[k].as_str() {
            words.push(s.to_string());
        }
    }
    if v["snapshot"] == Value::Bool(true) {
        words.push("snapshot".into());
    }
    words.join(" ")
}

fn definition(ty: &str, start: &str) -> String {
    format!(r#"{{"mdev_type": "{ty}", "start": "{start}", "attrs": []}}"#)
}

fn signal(pid: &str, sig: &str) {
    let st = Command::new("kill").args([sig, pid]).status().unwrap();
    assert!(st.success());
}

#[test]
fn monitor_reports_each_kind_in_order() {
    let Some(env) = env("monitor_kinds") else {
        return;
    };
    let (mut w, before) = Watch::start(&env, &[]);
    assert_eq!(before, Vec::<String>::new(), "since-now prints no snapshot");
    env.define_by_hand("mtty", U1, &definition("mtty-1", "manual"));
    assert_eq!(w.take(1), [format!("defined {U1} mtty mtty-1 manual")]);
    env.define_by_hand("mtty", U1, &definition("mtty-1", "auto"));
    assert_eq!(w.take(1), [format!("modified {U1} mtty mtty-1 auto")]);
    std::fs::write(
        env.path("sys/class/mdev_bus/mtty/mdev_supported_types/mtty-1/create"),
        U1,
    )
    .unwrap();
    assert_eq!(w.take(1), [format!("started {U1} mtty mtty-1")]);
    env.remove_behind_the_back(U1);
    assert_eq!(w.take(1), [format!("stopped {U1} mtty mtty-1")]);
    std::fs::remove_file(env.path(&format!("etc/mdevctl.d/mtty/{U1}"))).unwrap();
    assert_eq!(w.take(1), [format!("undefined {U1} mtty mtty-1 auto")]);
    // A parent leaving takes its running device with it: stopped first, as the kernel says.
    std::fs::write(
        env.path("sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2/create"),
        U2,
    )
    .unwrap();
    // (Waited for: the type is read from sysfs, where a device gone meanwhile has none.)
    assert_eq!(w.take(1), [format!("started {U2} mtty mtty-2")]);
    env.sim.remove_parent("mtty").unwrap();
    assert_eq!(
        w.take(2),
        [
            format!("stopped {U2} mtty mtty-2"),
            "parent-removed mtty".to_string(),
        ]
    );
    env.sim.add_parent("mtty").unwrap();
    assert_eq!(w.take(1), ["parent-added mtty"]);
    // A parent whose types come later counts when it registers them.
    env.sim.add_parent_unpublished(GPU1).unwrap();
    env.sim.publish_types(GPU1).unwrap();
    assert_eq!(w.take(1), [format!("parent-added {GPU1}")]);
}

#[test]
fn monitor_snapshot_shows_the_state_then_changes() {
    let Some(env) = env("monitor_snapshot") else {
        return;
    };
    env.define_by_hand("mtty", U1, &definition("mtty-2", "auto"));
    std::fs::write(
        env.path("sys/class/mdev_bus/mtty/mdev_supported_types/mtty-1/create"),
        U2,
    )
    .unwrap();
    // Registered (in class/mdev_bus) but without its types yet.
    env.sim.add_parent_unpublished(GPU1).unwrap();
    let (mut w, before) = Watch::start(&env, &["--snapshot"]);
    let before: Vec<String> = before.iter().map(|l| short(l)).collect();
    assert_eq!(
        before,
        [
            format!("defined {U1} mtty mtty-2 auto snapshot"),
            format!("parent-added {GPU0} snapshot"),
            format!("parent-added {GPU1} snapshot"),
            "parent-added matrix snapshot".to_string(),
            "parent-added mtty snapshot".to_string(),
            format!("started {U2} mtty mtty-1 snapshot"),
        ]
    );
    env.remove_behind_the_back(U2);
    assert_eq!(w.take(1), [format!("stopped {U2} mtty mtty-1")]);
    // A parent the snapshot showed announces its types.
    env.sim.publish_types(GPU1).unwrap();
    assert_eq!(w.take(1), [format!("types-changed {GPU1}")]);
}

#[test]
fn monitor_follows_config_directories_created_later() {
    let Some(env) = env("monitor_late_dirs") else {
        return;
    };
    // No /etc/mdevctl.d at all: the monitor waits on /etc.
    std::fs::remove_dir_all(env.path("etc/mdevctl.d")).unwrap();
    let (mut w, _) = Watch::start(&env, &[]);
    env.define_by_hand("mtty", U1, &definition("mtty-1", "manual"));
    assert_eq!(w.take(1), [format!("defined {U1} mtty mtty-1 manual")]);
    // A second parent directory, made after the first.
    env.define_by_hand(GPU0, U2, &definition("nvidia-18", "auto"));
    assert_eq!(w.take(1), [format!("defined {U2} {GPU0} nvidia-18 auto")]);
    // The whole store goes, and comes back.
    std::fs::remove_dir_all(env.path("etc/mdevctl.d")).unwrap();
    let mut gone = w.take(2);
    gone.sort();
    assert_eq!(
        gone,
        [
            format!("undefined {U2} {GPU0} nvidia-18 auto"),
            format!("undefined {U1} mtty mtty-1 manual"),
        ]
    );
    env.define_by_hand("mtty", U1, &definition("mtty-2", "auto"));
    assert_eq!(w.take(1), [format!("defined {U1} mtty mtty-2 auto")]);
}

#[test]
fn monitor_reports_a_burst_of_1000_definitions_in_order() {
    let Some(env) = env("monitor_burst") else {
        return;
    };
    let (mut w, _) = Watch::start(&env, &[]);
    let f = env.file(
        "burst.yaml",
        "version: 1\nprofiles:\n  p:\n    - parents: mtty\n      devices: [{type: mtty-1, count: 1000, start: manual}]\n",
    );
    let out = env.ok(&["apply", "-f", &f, "-c", "p", "--no-start"]);
    let written: Vec<String> = out
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("define"))
        .map(|l| l.split_whitespace().last().unwrap().to_string())
        .collect();
    assert_eq!(written.len(), 1000, "{out}");
    let seen: Vec<String> = w
        .take(1000)
        .into_iter()
        .map(|l| {
            let words: Vec<&str> = l.split(' ').collect();
            assert_eq!(words[0], "defined", "{l}");
            words[1].to_string()
        })
        .collect();
    assert_eq!(seen, written);
}

#[test]
fn monitor_ends_quietly_when_the_reader_goes() {
    let Some(env) = env("monitor_pipe") else {
        return;
    };
    let mut child = env
        .command(&["monitor"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first, "ready\n");
    // Nothing happens after the reader closes: the monitor still notices and ends.
    drop(out);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output().unwrap());
    });
    let done = rx.recv_timeout(HANG).expect("monitor did not end");
    assert_eq!(done.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&done.stderr), "");
}

#[test]
fn monitor_reports_a_uevent_overrun_and_rereads() {
    let Some(env) = env("monitor_enobufs") else {
        return;
    };
    // The smallest receive buffer the kernel allows holds a few messages.
    let (mut w, _) = Watch::start(&env, &["--receive-buffer", "1"]);
    signal(&w.pid(), "-STOP");
    let uuids: Vec<String> = (0..20)
        .map(|n| format!("00000000-0000-4000-8000-{n:012x}"))
        .collect();
    for u in &uuids {
        std::fs::write(
            env.path("sys/class/mdev_bus/mtty/mdev_supported_types/mtty-1/create"),
            u,
        )
        .unwrap();
    }
    signal(&w.pid(), "-CONT");
    let mut started = Vec::new();
    let mut overflowed = false;
    while started.len() < uuids.len() {
        let l = w.next();
        let s = short(&l);
        if s == "overflow uevent" {
            overflowed = true;
            continue;
        }
        let words: Vec<&str> = s.split(' ').collect();
        assert_eq!(words[0], "started", "{s}");
        started.push(words[1].to_string());
    }
    assert!(overflowed, "20 devices fit in the smallest buffer?");
    // Each device reported once: from a message or from the re-read after the overrun.
    started.sort();
    assert_eq!(started, uuids);
}

#[test]
fn monitor_reports_an_inotify_overflow_and_rereads() {
    let Some(env) = env("monitor_inotify_overflow") else {
        return;
    };
    let limit: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let dir = env.path("etc/mdevctl.d/mtty");
    std::fs::create_dir_all(&dir).unwrap();
    let (mut w, _) = Watch::start(&env, &[]);
    signal(&w.pid(), "-STOP");
    // Files that are no definitions: create, close-after-write and delete, 3 events each.
    for n in 0..limit / 3 + 100 {
        let p = dir.join(format!("junk{n}"));
        std::fs::write(&p, "x").unwrap();
        std::fs::remove_file(&p).unwrap();
    }
    env.define_by_hand("mtty", U1, &definition("mtty-1", "manual"));
    signal(&w.pid(), "-CONT");
    assert_eq!(
        w.take(2),
        [
            "overflow inotify",
            &format!("defined {U1} mtty mtty-1 manual")
        ]
    );
    env.define_by_hand("mtty", U2, &definition("mtty-1", "manual"));
    assert_eq!(w.take(1), [format!("defined {U2} mtty mtty-1 manual")]);
}
