//! Mounting: the library entry point, the mounted handle with its control methods, FUSE checks.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use fuser::{BackgroundSession, MountOption};

use crate::fs::{lock, Shared, SimFs};
use crate::kernel::{ControlError, HookRun, Kernel};
use crate::parse::Errno;
use crate::profile::Profile;
use crate::uevent::{Broadcaster, Uevents};

/// Why FUSE cannot be used here; its `Display` is the one line a skipped test prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    NoDevFuse,
    DevFuseNotUsable(String),
    NoFusermount,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoDevFuse => write!(f, "/dev/fuse does not exist (load the fuse module)"),
            Reason::DevFuseNotUsable(e) => write!(f, "/dev/fuse cannot be opened: {e}"),
            Reason::NoFusermount => write!(
                f,
                "not root and no fusermount3 in PATH (install the fuse3 package)"
            ),
        }
    }
}

/// Whether this process can mount the simulator.
pub fn fuse_available() -> Result<(), Reason> {
    let dev = Path::new("/dev/fuse");
    if !dev.exists() {
        return Err(Reason::NoDevFuse);
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .map_err(|e| Reason::DevFuseNotUsable(e.to_string()))?;
    // Root mounts with mount(2) directly; anyone else goes through the setuid helper.
    if !is_root() && find_in_path("fusermount3").is_none() && find_in_path("fusermount").is_none() {
        return Err(Reason::NoFusermount);
    }
    Ok(())
}

/// For test suites: `Ok(true)` to run, `Ok(false)` to skip (after printing one line that says
/// why), and `Err` under `CI=true`, where a machine without FUSE must fail rather than go green
/// by skipping.
pub fn fuse_for_test(test: &str) -> Result<bool, String> {
    match fuse_available() {
        Ok(()) => Ok(true),
        Err(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            Err(format!("{test}: FUSE is required under CI=true: {reason}"))
        }
        Err(reason) => {
            eprintln!("skipping {test}: FUSE unavailable: {reason}");
            Ok(false)
        }
    }
}

/// The directories mdevctl expects under `MDEVCTL_ENV_ROOT` besides `sys`: its definitions and
/// the callout and notifier script directories.
pub const ENV_ROOT_DIRS: [&str; 3] = [
    "etc/mdevctl.d",
    "usr/lib/mdevctl/scripts.d/callouts",
    "usr/lib/mdevctl/scripts.d/notifiers",
];

/// Creates `root` with [`ENV_ROOT_DIRS`], ready for `MDEVCTL_ENV_ROOT=root` once a simulator
/// is mounted at `root/sys`.
pub fn prepare_env_root(root: &Path) -> Result<(), MountError> {
    for dir in ENV_ROOT_DIRS {
        let path = root.join(dir);
        std::fs::create_dir_all(&path).map_err(|source| MountError::Mountpoint { path, source })?;
    }
    Ok(())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// Why mounting failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("FUSE is not available: {0}")]
    FuseUnavailable(Reason),
    #[error("mount point {path} is not usable")]
    Mountpoint {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is already served by a running mdev-sim; unmount it first")]
    Busy { path: PathBuf },
    #[error("cannot clear the stale mount at {path}: {reason}")]
    Stale { path: PathBuf, reason: String },
    #[error("cannot open a uevent socket")]
    Uevents { source: std::io::Error },
    #[error("cannot mount FUSE at {path}")]
    Mount {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Entry point of the library.
#[derive(Debug)]
pub struct Sim;

impl Sim {
    /// Mounts a fresh simulated sysfs root for `profile` at `mountpoint` (created if missing).
    /// A stale mount left there by a killed simulator is lazily unmounted first.
    /// It broadcasts the kernel's uevents ([`Uevents::Kernel`]).
    pub fn mount(mountpoint: &Path, profile: Profile) -> Result<MountedSim, MountError> {
        Sim::mount_with(mountpoint, profile, Uevents::default())
    }

    /// [`Sim::mount`] choosing which uevents are sent. The uevent socket belongs to the
    /// calling thread's network namespace (see [`crate::private_netns`]).
    pub fn mount_with(
        mountpoint: &Path,
        profile: Profile,
        uevents: Uevents,
    ) -> Result<MountedSim, MountError> {
        fuse_available().map_err(MountError::FuseUnavailable)?;
        clear_stale_mount(mountpoint)?;
        std::fs::create_dir_all(mountpoint).map_err(|source| MountError::Mountpoint {
            path: mountpoint.to_path_buf(),
            source,
        })?;
        let mountpoint =
            std::fs::canonicalize(mountpoint).map_err(|source| MountError::Mountpoint {
                path: mountpoint.to_path_buf(),
                source,
            })?;
        let mut kernel = Kernel::new(&profile);
        kernel.uevents =
            Broadcaster::open(uevents).map_err(|source| MountError::Uevents { source })?;
        let shared: Shared = Arc::new(Mutex::new(kernel));
        // Only the file system inside the session holds the sender (a failed first attempt
        // drops its own copy), so the receiver disconnects exactly when the session ends.
        let (alive, unmounted) = mpsc::channel();
        let options = vec![
            MountOption::FSName("mdev-sim".into()),
            MountOption::Subtype("mdev-sim".into()),
            MountOption::RW,
            MountOption::NoDev,
            MountOption::NoSuid,
        ];
        // With fusermount3 at hand, it stays behind as a watchdog that unmounts as soon as
        // this process dies, even by SIGKILL, so killed test runs leave no dead mounts.
        let mut watched = options.clone();
        watched.push(MountOption::AutoUnmount);
        let watched = find_in_path("fusermount3").and_then(|_| {
            fuser::spawn_mount2(
                SimFs::new(shared.clone(), alive.clone()),
                &mountpoint,
                &watched,
            )
            .ok()
        });
        let session = match watched {
            Some(session) => session,
            // Without the watchdog: no fusermount3, or it refused (auto_unmount implies
            // allow_other, which non-root users only get with user_allow_other in fuse.conf).
            None => fuser::spawn_mount2(SimFs::new(shared.clone(), alive), &mountpoint, &options)
                .map_err(|source| MountError::Mount {
                path: mountpoint.clone(),
                source,
            })?,
        };
        Ok(MountedSim {
            session: Some(session),
            unmounted: Mutex::new(Some(unmounted)),
            shared,
            mountpoint,
            profile: profile.name,
        })
    }
}

/// A mounted simulator. Dropping it unmounts.
#[derive(Debug)]
pub struct MountedSim {
    session: Option<BackgroundSession>,
    unmounted: Mutex<Option<mpsc::Receiver<()>>>,
    shared: Shared,
    mountpoint: PathBuf,
    profile: String,
}

impl MountedSim {
    /// The directory that stands for `/sys`.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    pub fn profile_name(&self) -> &str {
        &self.profile
    }

    /// Runs control commands exactly as a write to `mdev-sim/control` would.
    pub fn control(&self, commands: &str) -> Result<(), ControlError> {
        let result = crate::control::apply(&mut lock(&self.shared), commands);
        crate::hooks::run_pending(&self.shared);
        result
    }

    /// Registers a parent of the profile with its types (the hook runs, as udev would).
    pub fn add_parent(&self, name: &str) -> Result<(), ControlError> {
        self.with_hooks(|h| h.add_parent(name, true))
    }

    /// Registers a parent whose `mdev_supported_types` does not exist yet.
    pub fn add_parent_unpublished(&self, name: &str) -> Result<(), ControlError> {
        self.with_hooks(|h| h.add_parent(name, false))
    }

    pub fn publish_types(&self, name: &str) -> Result<(), ControlError> {
        self.with_hooks(|h| h.publish_types(name))
    }

    /// Unregisters a parent; its mdevs vanish with it.
    pub fn remove_parent(&self, name: &str) -> Result<(), ControlError> {
        self.with_hooks(|h| h.remove_parent(name))
    }

    /// A busy mdev refuses `remove` with EBUSY.
    pub fn set_busy(&self, uuid: &str, busy: bool) -> Result<(), ControlError> {
        self.with_hooks(|h| h.set_busy(uuid, busy))
    }

    /// The next read or write of `path` (relative to the mount) fails with `errno`, once.
    pub fn fail_next(&self, path: &str, errno: i32) {
        lock(&self.shared).inject_failure(path, Errno(errno));
    }

    /// The next write to `path` takes only its first `bytes` bytes: the store acts on those
    /// and write(2) returns their count, once.
    pub fn short_write(&self, path: &str, bytes: usize) {
        lock(&self.shared).short_write(path, bytes);
    }

    /// Each write to `path` takes at least `delay`; zero clears it.
    pub fn slow_writes(&self, path: &str, delay: Duration) {
        lock(&self.shared).slow_writes(path, delay);
    }

    /// The command run when a parent registers: `{parent}` is replaced, else the parent name
    /// is appended (as udev runs `mdevctl start-parent-mdevs %k`). Empty disables it.
    pub fn set_hook<S: AsRef<str>>(&self, argv: &[S]) {
        lock(&self.shared).hook = argv.iter().map(|s| s.as_ref().to_string()).collect();
    }

    /// Waits until no hook is running (at most `timeout`) and returns every finished run.
    pub fn wait_hooks(&self, timeout: Duration) -> Vec<HookRun> {
        let deadline = Instant::now().checked_add(timeout);
        let mut host = lock(&self.shared);
        while host.hooks_running > 0 {
            let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                break;
            }
            let finished = host.hook_finished.clone();
            host = finished
                .wait_timeout(host, left)
                .map_or_else(|e| e.into_inner().0, |(guard, _)| guard);
        }
        host.hook_runs.clone()
    }

    /// The first failure to broadcast a uevent (e.g. without `CAP_NET_ADMIN`): sending
    /// stopped there.
    pub fn uevent_error(&self) -> Option<String> {
        lock(&self.shared).uevent_error()
    }

    /// UUIDs of the mdevs that exist now.
    pub fn active_devices(&self) -> Vec<String> {
        lock(&self.shared)
            .active_devices()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Every parent the profile knows, present or not.
    pub fn known_parents(&self) -> Vec<String> {
        lock(&self.shared).known_parents()
    }

    pub fn present_parents(&self) -> Vec<String> {
        lock(&self.shared).present_parents()
    }

    /// Whether the FUSE session still serves (false once something unmounted it).
    pub fn is_serving(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| !s.guard.is_finished())
    }

    /// A receiver that disconnects when the FUSE session ends, whoever unmounted it (this
    /// handle, `mdev-sim umount`, `fusermount3 -u`): its `recv()` then returns `Err`. Nothing is
    /// ever sent on it. Handed out once; `None` afterwards.
    pub fn unmount_watch(&self) -> Option<mpsc::Receiver<()>> {
        self.unmounted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Unmounts now (also done on drop).
    pub fn unmount(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(session) = self.session.take() {
            // Dropping the session unmounts, or (with fusermount3's watchdog) only closes the
            // watchdog's socket, after which the watchdog takes its time. An unmount refused
            // because a file is still open also leaves the mount. Detach whatever is left now,
            // so that the mount point is free when the handle is gone.
            drop(session);
            if mounted_fs(&self.mountpoint).is_some_and(|fs| is_sim(&fs)) {
                let _ = lazy_unmount(&self.mountpoint);
            }
        }
    }

    fn with_hooks<T>(&self, f: impl FnOnce(&mut Kernel) -> T) -> T {
        let out = f(&mut lock(&self.shared));
        crate::hooks::run_pending(&self.shared);
        out
    }
}

impl Drop for MountedSim {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A FUSE mount at `path` whose server died answers ENOTCONN; it is lazily unmounted so that a
/// killed simulator never blocks the next start. A live simulator there is refused instead.
pub fn clear_stale_mount(path: &Path) -> Result<(), MountError> {
    let Some(fs) = mounted_fs(path) else {
        return Ok(());
    };
    match std::fs::metadata(path) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {}
        Ok(_) if is_sim(&fs) => {
            return Err(MountError::Busy {
                path: path.to_path_buf(),
            })
        }
        // Some other live file system: mounting over it would hide it, so leave it be.
        _ => return Ok(()),
    }
    lazy_unmount(path).map_err(|reason| MountError::Stale {
        path: path.to_path_buf(),
        reason,
    })
}

/// Detaches whatever is mounted at `path`, with fusermount3 or else umount.
pub fn lazy_unmount(path: &Path) -> Result<(), String> {
    let attempts: [(&str, &[&str]); 3] = [
        ("fusermount3", &["-u", "-z"]),
        ("fusermount", &["-u", "-z"]),
        ("umount", &["-l"]),
    ];
    let mut errors = Vec::new();
    for (name, args) in attempts {
        // PATH can be minimal (udev, systemd units, test harnesses): the usual places too.
        let program = find_in_path(name)
            .or_else(|| {
                ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
                    .iter()
                    .map(|dir| Path::new(dir).join(name))
                    .find(|p| p.is_file())
            })
            .unwrap_or_else(|| PathBuf::from(name));
        match Command::new(&program).args(args).arg(path).output() {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => errors.push(format!(
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    Err(errors.join("; "))
}

/// The file system type and source mounted exactly at `path`, from /proc/self/mountinfo
/// (`("fuse", "mdev-sim")` for a simulator).
pub fn mounted_fs(path: &Path) -> Option<(String, String)> {
    let wanted = std::path::absolute(path).ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut found = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(point), Some(dash)) = (fields.get(4), fields.iter().position(|f| *f == "-"))
        else {
            continue;
        };
        if Path::new(&unescape(point)) == wanted {
            // The last matching line is the top of the mount stack.
            let fstype = fields.get(dash + 1).map_or("", |s| *s);
            let source = fields.get(dash + 2).map_or("", |s| *s);
            found = Some((fstype.to_string(), unescape(source)));
        }
    }
    found
}

fn is_sim((fstype, source): &(String, String)) -> bool {
    fstype.starts_with("fuse") && source == "mdev-sim"
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}
