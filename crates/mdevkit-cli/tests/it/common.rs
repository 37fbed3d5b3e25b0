//! The fixture: mdev-sim's `demo` profile mounted at `<root>/sys` of a private root with a
//! machine id, and helpers to run `mdevkit` there and look at the host.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mdev_sim::{MountedSim, Profile, Sim};

pub const MDEVKIT: &str = env!("CARGO_BIN_EXE_mdevkit");
pub const GPU0: &str = "0000:83:00.0";
/// Absent when the demo profile starts: `add_parent` brings it.
pub const GPU1: &str = "0000:84:00.0";
pub const MACHINE_ID: &str = "0123456789abcdef0123456789abcdef";

/// A mounted simulator in a temporary root (fields drop in order: unmount, then remove).
pub struct Env {
    pub sim: MountedSim,
    pub root: tempfile::TempDir,
}

impl Env {
    /// The demo host, or None (skip) when FUSE is unavailable outside CI.
    pub fn new(test: &str) -> Option<Env> {
        Env::with_profile(test, Profile::builtin("demo").unwrap())
    }

    /// A host of another profile; `<root>/proc` stands for the processes that may hold
    /// vendor-VFIO VFs open (empty: none).
    pub fn with_profile(test: &str, profile: Profile) -> Option<Env> {
        if !mdev_sim::fuse_for_test(test).unwrap() {
            return None;
        }
        let root = tempfile::Builder::new()
            .prefix(&format!("mdevkit-{test}-"))
            .tempdir()
            .unwrap();
        mdev_sim::prepare_env_root(root.path()).unwrap();
        std::fs::write(
            root.path().join("etc/machine-id"),
            format!("{MACHINE_ID}\n"),
        )
        .unwrap();
        std::fs::create_dir_all(root.path().join("proc")).unwrap();
        let sim = Sim::mount(&root.path().join("sys"), profile).unwrap();
        Some(Env { sim, root })
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// Writes a desired-state file into the root; returns its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(MDEVKIT);
        c.args(args)
            .env("MDEVCTL_ENV_ROOT", self.root.path())
            .env_remove("MDEVKIT_PROFILE")
            .env_remove("MDEVCTL_LOG");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn run_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs mdevkit, insists on `code`; returns stdout.
    pub fn expect(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "mdevkit {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.expect(0, args)
    }

    /// Runs mdevkit, insists on exit 1; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "mdevkit {args:?} should fail: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn active(&self) -> BTreeSet<String> {
        self.sim.active_devices().into_iter().collect()
    }

    /// `(parent, uuid)` of every definition file.
    pub fn defined(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        let dir = self.path("etc/mdevctl.d");
        for p in std::fs::read_dir(&dir).unwrap() {
            let p = p.unwrap();
            if !p.file_type().unwrap().is_dir() || p.file_name() == "scripts.d" {
                continue;
            }
            for f in std::fs::read_dir(p.path()).unwrap() {
                let f = f.unwrap().file_name().into_string().unwrap();
                if !f.starts_with('.') {
                    out.insert((p.file_name().into_string().unwrap(), f));
                }
            }
        }
        out
    }

    pub fn defined_uuids(&self) -> BTreeSet<String> {
        self.defined().into_iter().map(|(_, u)| u).collect()
    }

    /// Defines a device by hand, as an administrator or libvirt would.
    pub fn define_by_hand(&self, parent: &str, uuid: &str, json: &str) {
        let dir = self.path(&format!("etc/mdevctl.d/{parent}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(uuid), json).unwrap();
    }

    /// Removes a running device behind mdevkit's back.
    pub fn remove_behind_the_back(&self, uuid: &str) {
        std::fs::write(
            self.path(&format!("sys/bus/mdev/devices/{uuid}/remove")),
            "1",
        )
        .unwrap();
    }

    pub fn sys(&self) -> &Path {
        self.sim.mountpoint()
    }
}

/// Compares `actual` with `tests/golden/<name>`; `MDEVKIT_BLESS=1` rewrites the file.
pub fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("MDEVKIT_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden file {} unreadable ({e}); run with MDEVKIT_BLESS=1 to create it",
            path.display()
        )
    });
    assert!(
        want == actual,
        "output differs from golden file {}\n--- want ---\n{want}\n--- got ---\n{actual}\n---\n\
         (if the change is intended, rerun with MDEVKIT_BLESS=1 and review the diff)",
        path.display()
    );
}

/// The UUIDs named in lines of plan or apply output with this marker.
pub fn marked(out: &str, marker: char) -> BTreeSet<String> {
    out.lines()
        .filter(|l| l.starts_with(marker))
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .collect()
}
