//! Helpers for the lifecycle tests (define, undefine, modify, start, stop, autostart):
//! runs with extra environment and stdin, logging callout scripts, log parsing, and whole
//! tree snapshots. Built on the shared harness in `common`; kept apart from it so the two
//! test branches merge cleanly.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{bin, FakeRoot, Transcript};

/// Environment and stdin for one run.
#[derive(Debug, Default, Clone)]
pub struct Opts<'a> {
    pub env: Vec<(&'a str, String)>,
    pub stdin: Option<Vec<u8>>,
}

impl<'a> Opts<'a> {
    pub fn env(mut self, k: &'a str, v: impl Into<String>) -> Self {
        self.env.push((k, v.into()));
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }
}

/// A command for the binary with the same clean environment as `common::mdevctl`.
pub fn command(root: &FakeRoot, args: &[&str], o: &Opts<'_>) -> Command {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    let mut cmd = crate::common::clean_command(root, &bin(), &args);
    for (k, v) in &o.env {
        cmd.env(k, v);
    }
    cmd.stdin(if o.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

/// Runs `mdevctl <args>` with options; returns the transcript and the process id (the
/// parent PID every callout must report).
pub fn run_with(root: &FakeRoot, args: &[&str], o: &Opts<'_>) -> (Transcript, u32) {
    let mut child = command(root, args, o).spawn().unwrap();
    let pid = child.id();
    if let Some(data) = &o.stdin {
        let mut pipe = child.stdin.take().unwrap();
        let data = data.clone();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let out = child.wait_with_output().unwrap();
    let code = out.status.code().unwrap_or_else(|| {
        panic!(
            "mdevctl killed by a signal: {:?}; stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        Transcript {
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
            code,
        },
        pid,
    )
}

/// `mdevctl <args>` with options, transcript only.
pub fn mdev(root: &FakeRoot, args: &[&str], o: &Opts<'_>) -> Transcript {
    run_with(root, args, o).0
}

/// Asserts a runtime failure (exit 1) whose stderr is exactly `Error: <msg>\n`.
pub fn assert_error(t: &Transcript, msg: &str) {
    assert_eq!(t.code, 1, "exit code; stderr: {}", t.stderr);
    assert_eq!(t.stderr, format!("Error: {msg}\n"), "stderr");
    assert_eq!(t.stdout, "", "stdout");
}

/// Asserts a usage error (exit 2) mentioning `needle`.
pub fn assert_usage(t: &Transcript, needle: &str) {
    assert_eq!(t.code, 2, "exit code; stderr: {}", t.stderr);
    assert!(
        t.stderr.contains(needle),
        "stderr lacks {needle:?}: {}",
        t.stderr
    );
    assert_eq!(t.stdout, "", "stdout");
}

/// The bytes of `etc/mdevctl.d/<parent>/<uuid>`, or `None` when it does not exist.
pub fn config(root: &FakeRoot, parent: &str, uuid: &str) -> Option<String> {
    fs::read_to_string(root.join(format!("etc/mdevctl.d/{parent}/{uuid}"))).ok()
}

/// The config path relative to the root.
pub fn config_rel(parent: &str, uuid: &str) -> String {
    format!("etc/mdevctl.d/{parent}/{uuid}")
}

/// Writes an executable file at `rel` with `text`.
pub fn executable(root: &FakeRoot, rel: &str, text: &str) -> PathBuf {
    let p = root.write(rel, text);
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// The log every logging script appends to.
pub fn log_path(root: &FakeRoot) -> PathBuf {
    root.join("callout.log")
}

/// A shell script at `rel` that first appends one line to the log —
/// `<script name>|<PPID>|<argv joined by spaces>|<stdin>` — and then runs `body`. In `body`,
/// `$ev`, `$act`, `$st` hold the event, action and state.
pub fn logging_script(root: &FakeRoot, rel: &str, body: &str) -> PathBuf {
    let log = log_path(root);
    let text = format!(
        "#!/bin/sh\nin=$(cat)\nprintf '%s|%s|%s|%s\\n' \"${{0##*/}}\" \"$PPID\" \"$*\" \"$in\" >> '{}'\n\
         ev=$4; act=$6; st=$8\n{body}\n",
        log.display()
    );
    executable(root, rel, &text)
}

/// A logging script in the primary callouts directory.
pub fn callout(root: &FakeRoot, name: &str, body: &str) -> PathBuf {
    logging_script(
        root,
        &format!("usr/lib/mdevctl/scripts.d/callouts/{name}"),
        body,
    )
}

/// A logging script in the primary notifiers directory.
pub fn notifier(root: &FakeRoot, name: &str, body: &str) -> PathBuf {
    logging_script(
        root,
        &format!("usr/lib/mdevctl/scripts.d/notifiers/{name}"),
        body,
    )
}

/// The `supports` answer of a versioned script declaring these actions and events.
pub fn supports(actions: &[&str], events: &[&str]) -> String {
    let q = |v: &[&str]| {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "{{\"supports\":{{\"version\":2,\"actions\":[{}],\"events\":[{}]}}}}",
        q(actions),
        q(events)
    )
}

/// All actions and events of protocol version 2.
pub fn supports_all() -> String {
    supports(
        &[
            "start",
            "stop",
            "define",
            "undefine",
            "modify",
            "attributes",
            "capabilities",
        ],
        &["pre", "post", "notify", "get", "live"],
    )
}

/// Body of a versioned script that answers capabilities with `caps` and then runs `rest`.
pub fn versioned_body(caps: &str, rest: &str) -> String {
    format!(
        "if [ \"$ev $act\" = 'get capabilities' ]; then printf '%s' '{caps}'; exit 0; fi\n{rest}"
    )
}

/// One logged callout invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub script: String,
    pub ppid: u32,
    pub args: String,
    pub stdin: String,
}

impl Call {
    /// `event/action/state`.
    pub fn eas(&self) -> String {
        let a: Vec<&str> = self.args.split(' ').collect();
        format!("{}/{}/{}", a[3], a[5], a[7])
    }
}

/// The logged calls, oldest first (empty when no script ran).
pub fn calls(root: &FakeRoot) -> Vec<Call> {
    let Ok(text) = fs::read_to_string(log_path(root)) else {
        return Vec::new();
    };
    text.lines()
        .map(|l| {
            let mut it = l.splitn(4, '|');
            Call {
                script: it.next().unwrap().to_owned(),
                ppid: it.next().unwrap().parse().unwrap(),
                args: it.next().unwrap().to_owned(),
                stdin: it.next().unwrap_or("").to_owned(),
            }
        })
        .collect()
}

/// `script:event/action/state` of every logged call.
pub fn sequence(root: &FakeRoot) -> Vec<String> {
    calls(root)
        .iter()
        .map(|c| format!("{}:{}", c.script, c.eas()))
        .collect()
}

/// Clears the callout log.
pub fn clear_log(root: &FakeRoot) {
    let _ = fs::remove_file(log_path(root));
}

/// What one path in a tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(Vec<u8>),
    Link(PathBuf),
}

/// Every path under the root (relative) with its kind and contents; the lock file and the
/// callout log are left out (they are bookkeeping, not results).
pub fn snapshot(root: &FakeRoot) -> BTreeMap<PathBuf, Node> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Node>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_owned();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                out.insert(rel, Node::Link(fs::read_link(&p).unwrap()));
            } else if ft.is_dir() {
                out.insert(rel, Node::Dir);
                walk(base, &p, out);
            } else {
                out.insert(rel, Node::File(fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root.path(), root.path(), &mut out);
    out.retain(|p, _| !p.starts_with("run") && p != Path::new("callout.log"));
    out
}

/// A host with one registered parent `mtty` offering `mtty-1` (2 instances) and `mtty-2`
/// (0 instances), nothing active or defined.
pub fn mtty_host() -> FakeRoot {
    let r = FakeRoot::new();
    r.parent("mtty")
        .mdev_type(
            "mtty",
            "mtty-1",
            crate::common::TypeSpec::new(2, "vfio-pci"),
        )
        .mdev_type(
            "mtty",
            "mtty-2",
            crate::common::TypeSpec::new(0, "vfio-pci"),
        );
    r
}

/// `sys/devices/virtual/mtty/mtty/<rel>` style path of a parent's device directory.
pub fn dev_dir(parent: &str, uuid: &str) -> String {
    format!("{}/{uuid}", FakeRoot::parent_dir(parent))
}

/// The `create` file of a type, relative to the root.
pub fn create_file(parent: &str, ty: &str) -> String {
    format!(
        "{}/mdev_supported_types/{ty}/create",
        FakeRoot::parent_dir(parent)
    )
}

/// Pretty config bytes as mdevctl writes them.
pub fn pretty(ty: &str, start: &str, attrs: &[(&str, &str)]) -> String {
    crate::common::config_json(ty, start, attrs)
}

/// A run whose output need not be UTF-8, with its wall-clock time.
#[derive(Debug)]
pub struct RawRun {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    pub elapsed: std::time::Duration,
}

/// Runs `mdevctl <args>` and keeps the raw bytes.
pub fn run_raw(root: &FakeRoot, args: &[&str], o: &Opts<'_>) -> RawRun {
    let start = std::time::Instant::now();
    let mut child = command(root, args, o).spawn().unwrap();
    if let Some(data) = &o.stdin {
        let mut pipe = child.stdin.take().unwrap();
        let data = data.clone();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let out = child.wait_with_output().unwrap();
    RawRun {
        stdout: out.stdout,
        stderr: out.stderr,
        code: out.status.code(),
        elapsed: start.elapsed(),
    }
}
