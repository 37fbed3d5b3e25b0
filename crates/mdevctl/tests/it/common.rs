//! Shared test harness: a fake root laid out like the kernel's sysfs and mdevctl's
//! directories, a runner for the built binary (as `mdevctl` or `lsmdev`), and golden files.
//!
//! Fixtures are built in code. Golden files live in `tests/golden/`, are compared byte for
//! byte with snapbox and are rewritten by running the tests with `MDEVKIT_BLESS=1`, never
//! by hand.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Well-known UUIDs used across the tests, in canonical form; each has letters, so that
/// its upper-case spelling differs.
pub const U1: &str = "11111111-1111-4111-8111-1111111111ab";
pub const U2: &str = "22222222-2222-4222-8222-2222222222cd";
pub const U3: &str = "33333333-3333-4333-8333-3333333333ef";
pub const U4: &str = "44444444-4444-4444-8444-4444444444ab";
pub const U5: &str = "55555555-5555-4555-8555-5555555555cd";
pub const UA: &str = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";

/// A private directory under the system temp dir, removed (best effort) when dropped.
#[derive(Debug)]
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mdevkit-test-")
            .tempdir()
            .unwrap();
        // Readable by an unprivileged user too (see `run_unprivileged`).
        fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// What a supported type directory holds; `None` leaves the file out. Values are written
/// with the trailing newline the kernel adds.
#[derive(Debug, Clone)]
pub struct TypeSpec {
    pub available_instances: Option<String>,
    pub device_api: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
}

impl TypeSpec {
    pub fn new(available: i64, api: &str) -> Self {
        TypeSpec {
            available_instances: Some(available.to_string()),
            device_api: Some(api.to_owned()),
            name: None,
            description: None,
        }
    }

    pub fn name(mut self, n: &str) -> Self {
        self.name = Some(n.to_owned());
        self
    }

    pub fn description(mut self, d: &str) -> Self {
        self.description = Some(d.to_owned());
        self
    }
}

/// A fake `/`: `sys/`, `etc/mdevctl.d/` and `usr/lib/mdevctl/scripts.d/{callouts,notifiers}`.
#[derive(Debug)]
pub struct FakeRoot {
    dir: TempDir,
}

impl FakeRoot {
    /// An empty host: every directory exists, nothing is registered or defined.
    pub fn new() -> Self {
        let root = FakeRoot::bare();
        for d in [
            "sys/class/mdev_bus",
            "sys/bus/mdev/devices",
            "sys/devices",
            "etc/mdevctl.d",
            "usr/lib/mdevctl/scripts.d/callouts",
            "usr/lib/mdevctl/scripts.d/notifiers",
        ] {
            root.mkdir(d);
        }
        root
    }

    /// A root with no directories at all.
    pub fn bare() -> Self {
        FakeRoot {
            dir: TempDir::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `<root>/<rel>`.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path().join(rel)
    }

    pub fn mkdir(&self, rel: impl AsRef<Path>) -> PathBuf {
        let p = self.join(rel);
        fs::create_dir_all(&p).unwrap();
        p
    }

    pub fn write(&self, rel: impl AsRef<Path>, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        p
    }

    /// A symlink at `rel` pointing at `target` (taken literally, usually relative).
    pub fn symlink(&self, target: impl AsRef<Path>, rel: impl AsRef<Path>) -> PathBuf {
        let p = self.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(target, &p).unwrap();
        p
    }

    pub fn remove(&self, rel: impl AsRef<Path>) {
        let p = self.join(rel);
        if p.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            fs::remove_dir_all(p).unwrap();
        } else {
            fs::remove_file(p).unwrap();
        }
    }

    /// Where the kernel puts a parent's device directory, relative to `sys/devices`.
    fn device_path(parent: &str) -> String {
        if parent.starts_with("0000:") {
            format!("pci0000:00/{parent}")
        } else if parent == "matrix" {
            "vfio_ap/matrix".to_owned()
        } else {
            format!("virtual/{parent}/{parent}")
        }
    }

    /// `sys/devices/...<parent>` relative to the root.
    pub fn parent_dir(parent: &str) -> String {
        format!("sys/devices/{}", Self::device_path(parent))
    }

    /// Registers a parent: its device directory with an (empty) `mdev_supported_types`,
    /// and `sys/class/mdev_bus/<parent>` as a relative symlink to it.
    pub fn parent(&self, parent: &str) -> &Self {
        let dir = Self::parent_dir(parent);
        self.mkdir(format!("{dir}/mdev_supported_types"));
        self.symlink(
            format!("../../devices/{}", Self::device_path(parent)),
            format!("sys/class/mdev_bus/{parent}"),
        );
        self
    }

    /// Registers a parent that has no `mdev_supported_types` directory.
    pub fn parent_without_types(&self, parent: &str) -> &Self {
        self.mkdir(Self::parent_dir(parent));
        self.symlink(
            format!("../../devices/{}", Self::device_path(parent)),
            format!("sys/class/mdev_bus/{parent}"),
        );
        self
    }

    /// Adds a supported type to a registered parent.
    pub fn mdev_type(&self, parent: &str, ty: &str, spec: TypeSpec) -> &Self {
        let dir = format!("{}/mdev_supported_types/{ty}", Self::parent_dir(parent));
        self.mkdir(&dir);
        let files = [
            ("available_instances", &spec.available_instances),
            ("device_api", &spec.device_api),
            ("name", &spec.name),
            ("description", &spec.description),
        ];
        for (file, value) in files {
            if let Some(v) = value {
                self.write(format!("{dir}/{file}"), format!("{v}\n"));
            }
        }
        // The kernel's write-only trigger.
        self.write(format!("{dir}/create"), "");
        self.mkdir(format!("{dir}/devices"));
        self
    }

    /// An active device as the kernel shows it: `<parent dir>/<uuid>/` with `mdev_type`
    /// linking to the type, and `sys/bus/mdev/devices/<uuid>` linking to the device.
    pub fn active(&self, uuid: &str, parent: &str, ty: &str) -> &Self {
        let dev = format!("{}/{uuid}", Self::parent_dir(parent));
        self.mkdir(&dev);
        self.symlink(
            format!("../mdev_supported_types/{ty}"),
            format!("{dev}/mdev_type"),
        );
        self.write(format!("{dev}/remove"), "");
        self.symlink(
            format!("../../../devices/{}/{uuid}", Self::device_path(parent)),
            format!("sys/bus/mdev/devices/{uuid}"),
        );
        self
    }

    /// `etc/mdevctl.d/<parent>/<file name>` with raw contents.
    pub fn define_raw(&self, parent: &str, file: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        self.write(format!("etc/mdevctl.d/{parent}/{file}"), contents)
    }

    /// A well-formed definition as mdevctl writes it (pretty, no trailing newline).
    pub fn define(&self, parent: &str, uuid: &str, ty: &str, start: &str) -> &Self {
        self.define_attrs(parent, uuid, ty, start, &[])
    }

    /// A definition with attributes, given as (name, value) pairs in order.
    pub fn define_attrs(
        &self,
        parent: &str,
        uuid: &str,
        ty: &str,
        start: &str,
        attrs: &[(&str, &str)],
    ) -> &Self {
        self.define_raw(parent, uuid, config_json(ty, start, attrs));
        self
    }
}

impl FakeRoot {
    /// An executable `/bin/sh` script in `usr/lib/mdevctl/scripts.d/<kind>/<name>`
    /// (`kind` is `callouts` or `notifiers`).
    pub fn script(&self, kind: &str, name: &str, body: &str) -> PathBuf {
        let p = self.write(
            format!("usr/lib/mdevctl/scripts.d/{kind}/{name}"),
            format!("#!/bin/sh\n{body}"),
        );
        fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        p
    }
}

/// A config file body in mdevctl's written form.
pub fn config_json(ty: &str, start: &str, attrs: &[(&str, &str)]) -> String {
    let attrs: Vec<serde_json::Value> = attrs
        .iter()
        .map(|(k, v)| serde_json::json!({ *k: *v }))
        .collect();
    let mut m = serde_json::Map::new();
    m.insert("mdev_type".into(), ty.into());
    m.insert("start".into(), start.into());
    m.insert("attrs".into(), attrs.into());
    serde_json::to_string_pretty(&serde_json::Value::Object(m)).unwrap()
}

/// The host most listing tests use: three parents, active and defined devices that
/// overlap in every way the markers care about.
///
/// * `0000:00:02.0` types `i915-GVTg_V5_4`, `i915-GVTg_V5_8`; `matrix` type
///   `vfio_ap-passthrough`; `mtty` types `mtty-1`, `mtty-2`.
/// * U1 active on 0000:00:02.0/V5_4, defined there (auto, two attrs) → both markers.
/// * U2 active on mtty/mtty-2, defined on mtty as mtty-1 (type mismatch) and on matrix.
/// * U3 defined on matrix only (manual, attrs), not active.
/// * U4 active on mtty/mtty-1 with no definition.
/// * UA defined on 0000:00:02.0 only.
pub fn standard_host() -> FakeRoot {
    let r = FakeRoot::new();
    r.parent("0000:00:02.0")
        .mdev_type(
            "0000:00:02.0",
            "i915-GVTg_V5_4",
            TypeSpec::new(2, "vfio-pci")
                .name("GVTg_V5_4")
                .description("low_gm_size: 128MB\nhigh_gm_size: 512MB"),
        )
        .mdev_type(
            "0000:00:02.0",
            "i915-GVTg_V5_8",
            TypeSpec::new(4, "vfio-pci").name("GVTg_V5_8"),
        )
        .parent("matrix")
        .mdev_type(
            "matrix",
            "vfio_ap-passthrough",
            TypeSpec::new(65535, "vfio-ap").name("VFIO AP Passthrough Device"),
        )
        .parent("mtty")
        .mdev_type(
            "mtty",
            "mtty-1",
            TypeSpec::new(24, "vfio-pci")
                .name("Single port serial")
                .description("1 serial port"),
        )
        .mdev_type("mtty", "mtty-2", TypeSpec::new(12, "vfio-pci"))
        .active(U1, "0000:00:02.0", "i915-GVTg_V5_4")
        .active(U2, "mtty", "mtty-2")
        .active(U4, "mtty", "mtty-1")
        .define_attrs(
            "0000:00:02.0",
            U1,
            "i915-GVTg_V5_4",
            "auto",
            &[("enable_display", "1"), ("x", "y")],
        )
        .define("mtty", U2, "mtty-1", "manual")
        .define("matrix", U2, "vfio_ap-passthrough", "auto")
        .define_attrs(
            "matrix",
            U3,
            "vfio_ap-passthrough",
            "manual",
            &[
                ("assign_adapter", "5"),
                ("assign_domain", "0x47"),
                ("assign_control_domain", "0x47"),
            ],
        )
        .define("0000:00:02.0", UA, "i915-GVTg_V5_8", "manual");
    r
}

/// What one run printed and how it ended.
#[derive(Debug, Clone)]
pub struct Transcript {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Transcript {
    /// stderr with timestamps and the fake root's path masked.
    pub fn stderr_masked(&self, root: &FakeRoot) -> String {
        mask(&self.stderr, root)
    }

    /// The masked stderr lines.
    pub fn warnings(&self, root: &FakeRoot) -> Vec<String> {
        self.stderr_masked(root)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Asserts exit 0 and an empty stderr.
    pub fn assert_clean(&self) -> &Self {
        assert_eq!(self.code, 0, "exit code; stderr: {}", self.stderr);
        assert_eq!(self.stderr, "", "stderr");
        self
    }
}

/// Replaces `[<RFC 3339 timestamp> ` at the start of log lines by `[TS ` and the fake root's
/// path by `<ROOT>`.
pub fn mask(text: &str, root: &FakeRoot) -> String {
    let root_str = root.path().to_string_lossy().into_owned();
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let line = line.replace(&root_str, "<ROOT>");
        match line.strip_prefix('[').and_then(|rest| rest.split_once(' ')) {
            Some((ts, rest)) if is_rfc3339_seconds(ts) => {
                out.push_str("[TS ");
                out.push_str(rest);
            }
            _ => out.push_str(&line),
        }
    }
    out
}

fn is_rfc3339_seconds(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// The built `mdevctl` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mdevctl"))
}

/// A command for `program` rooted at the fake root, with every variable that could change
/// mdevctl's behaviour or output removed from the inherited environment.
pub fn clean_command(root: &FakeRoot, program: &Path, args: &[&OsStr]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("MDEVCTL_ENV_ROOT", root.path())
        .env_remove("MDEVCTL_LOG")
        .env_remove("MDEVCTL_LOG_STYLE")
        .env_remove("MDEVCTL_SYSFS_ROOT")
        .env_remove("MDEVCTL_CONFIG_DIR")
        .env_remove("MDEVCTL_SCRIPTS_DIR")
        .env_remove("MDEVCTL_LOCK_FILE")
        .env_remove("MDEVCTL_CALLOUT_TIMEOUT")
        .env_remove("MDEVCTL_LOCK_TIMEOUT")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env_remove("COLUMNS")
        .stdin(Stdio::null());
    cmd
}

fn finish(mut cmd: Command) -> Transcript {
    let out = cmd.output().unwrap();
    Transcript {
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
        code: out.status.code().expect("exited, not killed by a signal"),
    }
}

/// Runs the binary under the name `argv0`. `mdevctl` runs it directly; any other name
/// runs it through a symlink of that name (a relative name like `/x/mylsmdev` is placed
/// inside a scratch directory of the fake root), as the `lsmdev` install link does.
pub fn run(root: &FakeRoot, argv0: &str, args: &[&str]) -> Transcript {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    run_os(root, argv0, &args)
}

/// [`run`] with arguments that need not be UTF-8.
pub fn run_os(root: &FakeRoot, argv0: &str, args: &[&OsStr]) -> Transcript {
    let program = if argv0 == "mdevctl" {
        bin()
    } else {
        let link = root.join(format!("bin/{}", argv0.trim_start_matches('/')));
        if !link.exists() {
            fs::create_dir_all(link.parent().unwrap()).unwrap();
            symlink(bin(), &link).unwrap();
        }
        link
    };
    finish(clean_command(root, &program, args))
}

/// `mdevctl <args>`.
pub fn mdevctl(root: &FakeRoot, args: &[&str]) -> Transcript {
    run(root, "mdevctl", args)
}

/// `mdevctl <args>` with extra environment variables set on top of the usual ones.
pub fn mdevctl_env(root: &FakeRoot, args: &[&str], env: &[(&str, &OsStr)]) -> Transcript {
    let mut cmd = clean_command(
        root,
        &bin(),
        &args.iter().map(OsStr::new).collect::<Vec<_>>(),
    );
    for (k, v) in env {
        cmd.env(k, v);
    }
    finish(cmd)
}

/// Runs the binary with an arbitrary (possibly non-UTF-8) argv[0].
pub fn run_with_arg0(root: &FakeRoot, arg0: &OsStr, args: &[&str]) -> Transcript {
    let mut cmd = clean_command(
        root,
        &bin(),
        &args.iter().map(OsStr::new).collect::<Vec<_>>(),
    );
    cmd.arg0(arg0);
    finish(cmd)
}

/// Are the tests running as root (where file modes do not stop reads)?
pub fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Runs `mdevctl <args>` as an unprivileged user (uid/gid 65534) when the tests run as
/// root, so that a file with mode 000 is really unreadable; otherwise as ourselves.
pub fn mdevctl_unprivileged(root: &FakeRoot, args: &[&str]) -> Transcript {
    let mut cmd = clean_command(
        root,
        &bin(),
        &args.iter().map(OsStr::new).collect::<Vec<_>>(),
    );
    if running_as_root() {
        cmd.uid(65534).gid(65534);
    }
    finish(cmd)
}

/// Compares `actual` with `tests/golden/<name>` byte for byte; with `MDEVKIT_BLESS=1`
/// writes the file instead.
///
/// The expected side is read as raw text: no redactions, no path or JSON normalisation, so
/// a trailing newline (or its absence, as in JSON output) counts.
pub fn golden(name: &str, actual: &str) {
    use snapbox::data::DataFormat;
    use snapbox::{Assert, Data};

    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let bless = std::env::var_os("MDEVKIT_BLESS").is_some_and(|v| v == "1");
    let action = if bless {
        snapbox::assert::Action::Overwrite
    } else {
        snapbox::assert::Action::Verify
    };
    let expected = Data::read_from(&path, Some(DataFormat::Text)).raw();
    let result = Assert::new().action(action).normalize_paths(false).try_eq(
        Some(&name),
        Data::text(actual),
        expected,
    );
    if let Err(e) = result {
        panic!("{e}\n(if the change is intended, rerun with MDEVKIT_BLESS=1 and review the diff)");
    }
}

/// The proptest configuration of every property test here: the one mdevkit's unit tests
/// use (fixed cases and seed, `MDEVKIT_SOAK` soaks; docs/reliability.md).
pub use mdevkit::testing::proptest_config;
