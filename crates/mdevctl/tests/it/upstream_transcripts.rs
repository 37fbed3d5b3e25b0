//! Differential transcripts: scenarios where mdevkit once behaved differently from upstream
//! mdevctl 1.4, run on our binary and compared byte for byte with what upstream's binary did
//! on the same fake root, recorded in `tests/upstream/<scenario>.json`: exit code, stdout,
//! stderr, every file the run created, changed or removed, and the callout invocations.
//!
//! The recordings are made by hand, never by CI, with upstream's binary:
//! `crates/mdevctl/tests/upstream/record.sh /opt/upstream-mdevctl/bin/mdevctl`. That sets
//! `MDEVKIT_RECORD_UPSTREAM` to the binary, and these tests then run each scenario with it
//! first and rewrite the scenario's file before comparing our run with it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{json, Value};

use crate::common::*;
use crate::life::*;

/// Names upstream's binary; set only by `tests/upstream/record.sh`.
const RECORD_ENV: &str = "MDEVKIT_RECORD_UPSTREAM";

/// A JSON definition as libvirt pipes it in (`echo` adds the newline).
const JSON_A_B: &str =
    "{\"mdev_type\":\"mtty-1\",\"start\":\"manual\",\"attrs\":[{\"a\":\"b\"}]}\n";

/// Whether stderr is part of the comparison.
#[derive(Debug, Clone, Copy)]
enum Stderr {
    Compared,
    /// Our wording differs on purpose; the reason names the README item.
    DiffersByDesign(&'static str),
}

/// One scenario: a fresh fake root (built anew for each binary), the arguments and stdin.
struct Scenario {
    name: &'static str,
    build: fn() -> FakeRoot,
    args: Vec<String>,
    stdin: Option<&'static str>,
    stderr: Stderr,
}

/// A versioned callout that logs every call and answers `get attributes` with one attribute.
fn logging_callout(root: &FakeRoot) {
    callout(
        root,
        "v",
        &versioned_body(
            &supports_all(),
            "if [ \"$ev $act\" = 'get attributes' ]; then echo '[{\"x\":\"1\"}]'; fi\nexit 0",
        ),
    );
}

/// Runs `program` (ours or upstream's) on the root the scenario builds and renders what it
/// did as pretty JSON, with the root's path and log timestamps masked.
fn transcript(program: &Path, s: &Scenario) -> Value {
    let root = (s.build)();
    let before = snapshot(&root);
    let args: Vec<&OsStr> = s.args.iter().map(OsStr::new).collect();
    let mut cmd = clean_command(&root, program, &args);
    cmd.stdin(if s.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(data) = s.stdin {
        // A binary that exits without reading breaks the pipe; its transcript says so.
        let _ = child.stdin.take().unwrap().write_all(data.as_bytes());
    }
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| mask(&String::from_utf8_lossy(b), &root);
    let node = |n: Option<&Node>| match n {
        None => Value::Null,
        Some(Node::Dir) => json!("dir"),
        Some(Node::File(b)) => json!(format!("file: {}", text(b))),
        Some(Node::Link(t)) => json!(format!("link: {}", t.display())),
    };
    let after = snapshot(&root);
    let mut changes = serde_json::Map::new();
    let paths: BTreeSet<&PathBuf> = before.keys().chain(after.keys()).collect();
    for p in paths {
        let (b, a) = (before.get(p), after.get(p));
        if b != a {
            changes.insert(
                p.display().to_string(),
                json!({ "before": node(b), "after": node(a) }),
            );
        }
    }
    let callouts: Vec<String> = calls(&root)
        .iter()
        .map(|c| text(format!("{} {} <<< {}", c.script, c.args, c.stdin).as_bytes()))
        .collect();
    json!({
        "argv": s.args,
        "stdin": s.stdin,
        "exit": out.status.code(),
        "stdout": text(&out.stdout),
        "stderr": text(&out.stderr),
        "changes": changes,
        "callouts": callouts,
    })
}

/// The transcript as compared: pretty JSON with a final newline, stderr replaced by the
/// reason when it differs on purpose.
fn rendered(mut t: Value, stderr: Stderr) -> String {
    if let Stderr::DiffersByDesign(why) = stderr {
        t["stderr"] = json!(format!("<not compared: {why}>"));
    }
    format!("{}\n", serde_json::to_string_pretty(&t).unwrap())
}

/// Records (with `MDEVKIT_RECORD_UPSTREAM`) and compares one scenario.
fn check(s: Scenario) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/upstream")
        .join(format!("{}.json", s.name));
    if let Some(upstream) = std::env::var_os(RECORD_ENV) {
        let t = transcript(Path::new(&upstream), &s);
        fs::write(
            &path,
            format!("{}\n", serde_json::to_string_pretty(&t).unwrap()),
        )
        .unwrap();
    }
    let recorded: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} unreadable ({e}); record it with tests/upstream/record.sh",
            path.display()
        )
    }))
    .unwrap();
    let want = rendered(recorded, s.stderr);
    let got = rendered(transcript(&bin(), &s), s.stderr);
    assert!(
        want == got,
        "{} differs from upstream's recording\n--- upstream ---\n{want}--- mdevkit ---\n{got}",
        s.name
    );
}

/// A running device U1 on mtty/mtty-1 in a plain tree, with the logging callout.
fn running_u1() -> FakeRoot {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-1");
    logging_callout(&root);
    root
}

#[test]
fn define_jsonfile_of_a_running_device_stores_only_the_files_attributes() {
    check(Scenario {
        name: "define-jsonfile-running",
        build: running_u1,
        args: vec![
            "define".into(),
            "--parent=mtty".into(),
            "--jsonfile=/dev/stdin".into(),
            format!("--uuid={U1}"),
        ],
        stdin: Some(JSON_A_B),
        stderr: Stderr::Compared,
    });
}

#[test]
fn define_jsonfile_ignores_a_running_device_with_a_dangling_type_link() {
    check(Scenario {
        name: "define-jsonfile-dangling-type-link",
        build: || {
            let root = running_u1();
            let link = format!("{}/mdev_type", dev_dir("mtty", U1));
            root.remove(&link);
            root.symlink("../mdev_supported_types/gone", &link);
            root
        },
        args: vec![
            "define".into(),
            "--parent=mtty".into(),
            "--jsonfile=/dev/stdin".into(),
            format!("--uuid={U1}"),
        ],
        stdin: Some(JSON_A_B),
        stderr: Stderr::Compared,
    });
}

#[test]
fn stop_in_a_plain_tree_creates_the_missing_remove_file() {
    check(Scenario {
        name: "stop-plain-tree-no-remove",
        build: || {
            let root = running_u1();
            root.remove(format!("{}/remove", dev_dir("mtty", U1)));
            root
        },
        args: vec!["stop".into(), "-u".into(), U1.into()],
        stdin: None,
        stderr: Stderr::Compared,
    });
}

#[test]
fn start_in_a_plain_tree_never_creates_a_missing_attribute() {
    check(Scenario {
        name: "start-plain-tree-missing-attribute",
        build: || {
            let root = mtty_host();
            // A device directory without `mdev_type` is not active, and holds no `a`.
            root.mkdir(format!("sys/bus/mdev/devices/{U1}"));
            logging_callout(&root);
            root
        },
        args: vec![
            "start".into(),
            "--parent=mtty".into(),
            "--jsonfile=/dev/stdin".into(),
            format!("--uuid={U1}"),
        ],
        stdin: Some(JSON_A_B),
        stderr: Stderr::DiffersByDesign(
            "README 'Differences' item 11: the error names the attribute's file",
        ),
    });
}
