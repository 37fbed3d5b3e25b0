//! Files planted where mdevctl writes: the lock file and the definitions' temporary files
//! as links, hard links, devices, directories and endless files; that every state-changing
//! command takes the lock; and that a definition write syncs before and after its rename.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::{self, File};
use std::path::Path;
use std::process::Command;

use crate::common::*;
use crate::life::*;

const LOCK: &str = "run/lock/mdevctl.lock";
const VICTIM: &str = "victim";
const VICTIM_TEXT: &str = "precious data that is not a lock\n";

/// A root with U1 defined on mtty and a file that must survive everything.
fn root_with_victim() -> FakeRoot {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "manual");
    root.mkdir("run/lock");
    root.write(VICTIM, VICTIM_TEXT);
    root
}

fn victim(root: &FakeRoot) -> String {
    fs::read_to_string(root.join(VICTIM)).unwrap()
}

/// The dot-files (temporary files) in a parent's definition directory.
fn dot_files(root: &FakeRoot, parent: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(root.join(format!("etc/mdevctl.d/{parent}")))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    v.sort();
    v
}

/// Asserts that `modify -u U1 --auto` is refused for `reason` and changed nothing.
fn assert_modify_refused(root: &FakeRoot, lock: &str, reason: &str, opts: &Opts<'_>) {
    let before = snapshot(root);
    let t = mdev(root, &["modify", "-u", U1, "--auto"], opts);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert_eq!(
        t.stderr_masked(root),
        format!("Error: refusing lock file {lock}: {reason}\n")
    );
    assert_eq!(snapshot(root), before);
    assert_eq!(
        config(root, "mtty", U1).unwrap(),
        pretty("mtty-1", "manual", &[])
    );
}

// ---- the lock file ------------------------------------------------------------------

#[test]
fn lock_file_symlink_is_refused_and_its_target_untouched() {
    let root = root_with_victim();
    root.symlink(root.join(VICTIM), LOCK);
    assert_modify_refused(
        &root,
        "<ROOT>/run/lock/mdevctl.lock",
        "it is a symbolic link",
        &Opts::default(),
    );
    assert_eq!(victim(&root), VICTIM_TEXT);
}

#[test]
fn lock_file_dangling_symlink_is_refused_and_creates_nothing() {
    let root = root_with_victim();
    root.symlink(root.join("created-through-link"), LOCK);
    assert_modify_refused(
        &root,
        "<ROOT>/run/lock/mdevctl.lock",
        "it is a symbolic link",
        &Opts::default(),
    );
    assert!(root
        .join("created-through-link")
        .symlink_metadata()
        .is_err());
}

#[test]
fn lock_file_hard_link_is_refused_and_its_inode_untouched() {
    let root = root_with_victim();
    fs::hard_link(root.join(VICTIM), root.join(LOCK)).unwrap();
    assert_modify_refused(
        &root,
        "<ROOT>/run/lock/mdevctl.lock",
        "it has 2 hard links",
        &Opts::default(),
    );
    assert_eq!(victim(&root), VICTIM_TEXT);
}

#[test]
fn lock_file_that_is_a_device_is_refused() {
    let root = root_with_victim();
    assert_modify_refused(
        &root,
        "/dev/zero",
        "it is a character device",
        &Opts::default().env("MDEVCTL_LOCK_FILE", "/dev/zero"),
    );
}

#[test]
fn lock_file_that_is_a_fifo_is_refused_without_hanging() {
    let root = root_with_victim();
    // Outside the root: the tree snapshot would block reading it.
    let elsewhere = TempDir::new();
    let fifo = elsewhere.path().join("mdevctl.lock");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    assert_modify_refused(
        &root,
        &fifo.display().to_string(),
        "it is a FIFO",
        &Opts::default().env("MDEVCTL_LOCK_FILE", fifo.to_str().unwrap()),
    );
}

#[test]
fn lock_file_that_is_a_directory_is_refused() {
    let root = root_with_victim();
    root.mkdir(LOCK);
    assert_modify_refused(
        &root,
        "<ROOT>/run/lock/mdevctl.lock",
        "it is a directory",
        &Opts::default(),
    );
}

#[test]
fn lock_file_we_did_not_create_is_used_but_never_truncated_or_written() {
    let root = root_with_victim();
    let lock = root.join(VICTIM);
    let t = mdev(
        &root,
        &["modify", "-u", U1, "--auto"],
        &Opts::default().env("MDEVCTL_LOCK_FILE", lock.to_str().unwrap()),
    );
    t.assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "auto", &[])
    );
    assert_eq!(victim(&root), VICTIM_TEXT);
}

#[test]
fn lock_file_created_by_mdevctl_holds_a_blank_pid_record_after_release() {
    let root = root_with_victim();
    mdevctl(&root, &["modify", "-u", U1, "--auto"]).assert_clean();
    // Ten columns and a newline, blanked on release; never a stale PID.
    assert_eq!(fs::read(root.join(LOCK)).unwrap(), b"          \n");
}

#[test]
fn lock_timeout_reads_only_a_few_bytes_of_a_long_lock_file() {
    let root = root_with_victim();
    // 64 MiB of zeros without using any disk (sparse), held by this test. A waiter that
    // read the whole file to name the holder would do so here; with /dev/zero (refused
    // now) it never stopped.
    let lock = root.join("long.lock");
    let f = File::create(&lock).unwrap();
    f.set_len(64 << 20).unwrap();
    f.lock().unwrap();
    let Some((t, lines)) = traced(
        &root,
        "open,openat,read,pread64",
        &["modify", "-u", U1, "--auto"],
        &[
            ("MDEVCTL_LOCK_FILE", lock.to_str().unwrap()),
            ("MDEVCTL_LOCK_TIMEOUT", "0.2"),
        ],
    ) else {
        return;
    };
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert_eq!(
        t.stderr_masked(&root),
        "Error: timed out after 0.2s waiting for lock <ROOT>/long.lock\n"
    );
    let opened = format!("\"{}\"", lock.display());
    let (at, fd) = lines
        .iter()
        .enumerate()
        .find(|(_, l)| l.starts_with("open") && l.contains(&opened))
        .and_then(|(i, l)| Some((i, l.rsplit("= ").next()?.to_owned())))
        .unwrap_or_else(|| panic!("lock never opened:\n{}", lines.join("\n")));
    // The byte count each read of the lock file asked for.
    // It stays open to the end; earlier lines with that number are other files.
    let asked: Vec<u64> = lines[at..]
        .iter()
        .filter_map(|l| {
            let call = l.split_once(") = ")?.0;
            if let Some(rest) = call.strip_prefix(&format!("read({fd}, ")) {
                rest.rsplit(", ").next()?.parse().ok()
            } else if let Some(rest) = call.strip_prefix(&format!("pread64({fd}, ")) {
                rest.rsplit(", ").nth(1)?.parse().ok()
            } else {
                None
            }
        })
        .collect();
    assert!(
        !asked.is_empty(),
        "the holder was never read:\n{}",
        lines.join("\n")
    );
    assert!(
        asked.iter().all(|n| *n <= 64),
        "reads asked for {asked:?} bytes"
    );
    assert_eq!(
        fs::metadata(&lock).unwrap().len(),
        64 << 20,
        "not truncated"
    );
}

/// Holds the default lock from this process and runs `args`: the command must give up
/// after its timeout, having changed nothing; once released, it goes through.
fn assert_command_waits_for_the_lock(root: &FakeRoot, args: &[&str]) {
    let lock = File::create(root.join(LOCK)).unwrap();
    lock.lock().unwrap();
    let before = snapshot(root);
    let t = mdev(
        root,
        args,
        &Opts::default().env("MDEVCTL_LOCK_TIMEOUT", "0.3"),
    );
    assert_eq!(t.code, 1, "{args:?}: {}", t.stderr);
    assert_eq!(
        t.stderr_masked(root),
        "Error: timed out after 0.3s waiting for lock <ROOT>/run/lock/mdevctl.lock\n",
        "{args:?}"
    );
    assert_eq!(snapshot(root), before, "{args:?} changed something");
    drop(lock);
    let t = mdevctl(root, args);
    assert_eq!(t.code, 0, "{args:?}: {}", t.stderr);
}

/// mtty with U1 defined (manual), U3 defined (auto) and U4 active.
fn lock_host() -> FakeRoot {
    let root = mtty_host();
    root.mkdir("run/lock");
    root.define("mtty", U1, "mtty-1", "manual")
        .define("mtty", U3, "mtty-1", "auto")
        .active(U4, "mtty", "mtty-1");
    root
}

#[test]
fn define_waits_for_the_lock() {
    assert_command_waits_for_the_lock(
        &lock_host(),
        &["define", "-u", U2, "-p", "mtty", "-t", "mtty-1"],
    );
}

#[test]
fn undefine_waits_for_the_lock() {
    assert_command_waits_for_the_lock(&lock_host(), &["undefine", "-u", U1]);
}

#[test]
fn modify_waits_for_the_lock() {
    assert_command_waits_for_the_lock(&lock_host(), &["modify", "-u", U1, "--auto"]);
}

#[test]
fn start_waits_for_the_lock() {
    assert_command_waits_for_the_lock(&lock_host(), &["start", "-u", U1]);
}

#[test]
fn stop_waits_for_the_lock() {
    assert_command_waits_for_the_lock(&lock_host(), &["stop", "-u", U4]);
}

#[test]
fn start_parent_mdevs_waits_for_the_lock() {
    assert_command_waits_for_the_lock(&lock_host(), &["start-parent-mdevs", "mtty"]);
}

// ---- temporary files of definition writes ---------------------------------------------

#[test]
fn planted_temp_symlink_is_not_written_through() {
    let root = root_with_victim();
    root.symlink(root.join(VICTIM), format!("etc/mdevctl.d/mtty/.{U1}.tmp"));
    mdevctl(&root, &["modify", "-u", U1, "--auto"]).assert_clean();
    assert_eq!(victim(&root), VICTIM_TEXT);
    let def = root.join(config_rel("mtty", U1));
    assert!(def.symlink_metadata().unwrap().is_file(), "still a file");
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "auto", &[])
    );
    assert_eq!(
        mdevctl(&root, &["list", "-d"]).stdout,
        format!("{U1} mtty mtty-1 auto\n")
    );
    assert_eq!(dot_files(&root, "mtty"), Vec::<String>::new());
}

#[test]
fn planted_temp_hard_link_is_not_written_through() {
    let root = root_with_victim();
    fs::hard_link(
        root.join(VICTIM),
        root.join(format!("etc/mdevctl.d/mtty/.{U1}.tmp")),
    )
    .unwrap();
    mdevctl(&root, &["modify", "-u", U1, "--auto"]).assert_clean();
    assert_eq!(victim(&root), VICTIM_TEXT);
    assert_eq!(
        fs::metadata(root.join(VICTIM)).unwrap().len(),
        VICTIM_TEXT.len() as u64
    );
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "auto", &[])
    );
    assert_eq!(dot_files(&root, "mtty"), Vec::<String>::new());
}

#[test]
fn planted_temp_directory_does_not_stop_define_or_modify() {
    let root = FakeRoot::new();
    root.mkdir(format!("etc/mdevctl.d/mtty/.{U1}.tmp"));
    mdevctl(&root, &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"]).assert_clean();
    mdevctl(&root, &["modify", "-u", U1, "--auto"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "auto", &[])
    );
    // Not ours to remove: it is in nobody's way.
    assert_eq!(dot_files(&root, "mtty"), [format!(".{U1}.tmp")]);
}

#[test]
fn stale_temp_files_of_killed_writers_are_removed_not_reused() {
    let root = root_with_victim();
    // Longer than the new definition: reusing it without truncating would leave junk.
    root.define_raw("mtty", &format!(".{U1}.tmp"), "x".repeat(8192));
    let nonce = "0123456789abcdef0123456789abcdef";
    root.symlink(
        root.join(VICTIM),
        format!("etc/mdevctl.d/mtty/.{U1}.{nonce}.tmp"),
    );
    // Any definition's: under the lock, no live writer owns one.
    root.define_raw("mtty", &format!(".{U2}.{nonce}.tmp"), "{");
    // Not a definition's temporary file: left alone.
    root.define_raw("mtty", ".notes.tmp", "mine");
    mdevctl(&root, &["modify", "-u", U1, "--auto"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "auto", &[])
    );
    assert_eq!(victim(&root), VICTIM_TEXT);
    assert_eq!(dot_files(&root, "mtty"), [".notes.tmp"]);
}

#[test]
fn failed_definition_write_names_the_error_and_leaves_no_temp_file() {
    let root = FakeRoot::new();
    // A directory where the definition goes: the rename over it fails.
    root.mkdir(format!("etc/mdevctl.d/mtty/{U1}/x"));
    let t = mdevctl(&root, &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"]);
    assert_error(
        &Transcript {
            stderr: t.stderr_masked(&root),
            ..t
        },
        &format!(
            "cannot write definition <ROOT>/etc/mdevctl.d/mtty/{U1}: Is a directory (os error 21)"
        ),
    );
    assert_eq!(dot_files(&root, "mtty"), Vec::<String>::new());
}

/// Runs `mdevctl <args>` under strace, tracing `syscalls`: the transcript and the trace
/// lines without their PID column. `None` (after saying so) where strace is missing or
/// ptrace is not allowed.
fn traced(
    root: &FakeRoot,
    syscalls: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Option<(Transcript, Vec<String>)> {
    let usable = Command::new("strace")
        .args(["-qq", "-o", "/dev/null", "true"])
        .output();
    if !usable.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("strace unusable here; skipping: {usable:?}");
        return None;
    }
    let trace = root.join("mdevctl.trace");
    let program = bin();
    let filter = format!("trace={syscalls}");
    let mut argv = vec![
        "-f",
        "-qq",
        "-o",
        trace.to_str().unwrap(),
        "-e",
        &filter,
        program.to_str().unwrap(),
    ];
    argv.extend_from_slice(args);
    let argv: Vec<&std::ffi::OsStr> = argv.iter().map(std::ffi::OsStr::new).collect();
    let mut cmd = clean_command(root, Path::new("strace"), &argv);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let t = Transcript {
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        code: out.status.code().unwrap(),
    };
    let lines = fs::read_to_string(trace)
        .unwrap()
        .lines()
        .map(|l| {
            l.split_once(' ')
                .map_or(l, |(_pid, rest)| rest)
                .trim()
                .to_owned()
        })
        .collect();
    fs::remove_file(root.join("mdevctl.trace")).unwrap();
    Some((t, lines))
}

#[test]
fn definition_write_syncs_the_file_before_the_rename_and_the_directory_after() {
    let root = FakeRoot::new();
    let Some((t, lines)) = traced(
        &root,
        "open,openat,write,fsync,fdatasync,rename,renameat,renameat2",
        &["define", "-u", U1, "-p", "mtty", "-t", "mtty-1"],
        &[],
    ) else {
        return;
    };
    t.assert_clean();
    let dir = root.join("etc/mdevctl.d/mtty").display().to_string();
    let def = format!("{dir}/{U1}");
    // The fd an open of `path` returned, and where.
    let opened = |pred: &dyn Fn(&str) -> bool, from: usize| -> (usize, String) {
        let (i, l) = lines
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, l)| l.starts_with("open") && pred(l))
            .unwrap_or_else(|| panic!("no such open after line {from}:\n{}", lines.join("\n")));
        (i, l.rsplit("= ").next().unwrap().to_owned())
    };
    let at = |prefix: &str, from: usize| -> usize {
        lines
            .iter()
            .skip(from)
            .position(|l| l.starts_with(prefix))
            .map(|p| p + from)
            .unwrap_or_else(|| panic!("no {prefix} after line {from}:\n{}", lines.join("\n")))
    };
    let (o, fd) = opened(
        &|l| l.contains(&format!("\"{dir}/.{U1}.")) && l.contains("O_EXCL"),
        0,
    );
    let w = at(&format!("write({fd}, \"{{"), o);
    let s = at(&format!("fsync({fd})"), w);
    let r = at("rename", s);
    assert!(
        lines[r].contains(&format!("\"{def}\"")),
        "rename onto the definition: {}",
        lines[r]
    );
    let (d, dfd) = opened(
        &|l| l.contains(&format!("\"{dir}\"")) && !l.contains("O_DIRECTORY"),
        r,
    );
    at(&format!("fsync({dfd})"), d);
}
