//! The only module that touches the operating system: every path mdevkit uses hangs off
//! [`Roots`], and every file, directory, lock and process operation goes through here.

pub mod dir;
pub mod fstype;
pub mod lock;
pub mod process;
mod signal;
pub mod uevent;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::names::{ParentName, TypeName, Uuid};

/// Environment variable that moves every path under another root (upstream's, kept).
pub const ENV_ROOT: &str = "MDEVCTL_ENV_ROOT";
/// Overrides the directory that stands for `/sys` (packagers, simulators).
pub const ENV_SYSFS_ROOT: &str = "MDEVCTL_SYSFS_ROOT";
/// Overrides the definition directory that stands for `/etc/mdevctl.d`.
pub const ENV_CONFIG_DIR: &str = "MDEVCTL_CONFIG_DIR";
/// Overrides the script directory that stands for `/usr/lib/mdevctl/scripts.d`.
pub const ENV_SCRIPTS_DIR: &str = "MDEVCTL_SCRIPTS_DIR";
/// Overrides the lock file (default `/run/lock/mdevctl.lock`).
pub const ENV_LOCK_FILE: &str = "MDEVCTL_LOCK_FILE";

/// Where everything lives. Built once per process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// Stands for `/sys`.
    pub sysfs: PathBuf,
    /// Stands for `/etc/mdevctl.d`: one directory per parent, one file per definition.
    pub config: PathBuf,
    /// Stands for `/usr/lib/mdevctl/scripts.d` (holds `callouts/` and `notifiers/`).
    pub scripts: PathBuf,
    /// The deprecated `/etc/mdevctl.d/scripts.d`, consulted after `scripts`.
    pub legacy_scripts: PathBuf,
    /// The inter-process lock file; outside `config` because clients watch that with inotify.
    pub lock_file: PathBuf,
    /// Stands for `/proc` (which processes hold VFIO devices open).
    pub proc: PathBuf,
    /// Where udev rules may be installed, in udev's order of precedence (`/etc/udev/rules.d`,
    /// `/run/udev/rules.d`, `/usr/lib/udev/rules.d`, `/lib/udev/rules.d`).
    pub udev_rules: Vec<PathBuf>,
}

impl Roots {
    /// The standard layout under `root` (`/` on a real system).
    pub fn under(root: &Path) -> Self {
        let config = root.join("etc/mdevctl.d");
        Roots {
            sysfs: root.join("sys"),
            legacy_scripts: config.join("scripts.d"),
            config,
            scripts: root.join("usr/lib/mdevctl/scripts.d"),
            lock_file: root.join("run/lock/mdevctl.lock"),
            proc: root.join("proc"),
            udev_rules: ["etc", "run", "usr/lib", "lib"]
                .iter()
                .map(|d| root.join(d).join("udev/rules.d"))
                .collect(),
        }
    }

    /// Reads `MDEVCTL_ENV_ROOT` and the per-directory overrides from `env`.
    ///
    /// `MDEVCTL_ENV_ROOT` may be empty or relative (then paths are relative to the working
    /// directory), as upstream allows. The specific overrides win over the root.
    pub fn from_env(env: impl Fn(&str) -> Option<OsString>) -> Self {
        let root = env(ENV_ROOT).map_or_else(|| PathBuf::from("/"), PathBuf::from);
        let mut roots = Roots::under(&root);
        if let Some(p) = env(ENV_SYSFS_ROOT) {
            roots.sysfs = p.into();
        }
        if let Some(p) = env(ENV_CONFIG_DIR) {
            roots.config = p.into();
            roots.legacy_scripts = roots.config.join("scripts.d");
        }
        if let Some(p) = env(ENV_SCRIPTS_DIR) {
            roots.scripts = p.into();
        }
        if let Some(p) = env(ENV_LOCK_FILE) {
            roots.lock_file = p.into();
        }
        roots
    }
}

/// What kind of thing a directory entry is, without following symlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
    Other,
}

/// One directory entry: its raw name and its `lstat` kind.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: OsString,
    pub kind: EntryKind,
}

/// Hex digits of the random part of a temporary file's name (128 bits).
const NONCE_LEN: usize = 32;

/// Access to the host, rooted at [`Roots`].
#[derive(Debug, Clone)]
pub struct Host {
    roots: Roots,
    /// Decided on first use (see [`fstype`]).
    sysfs_kind: std::sync::OnceLock<fstype::SysfsKind>,
}

impl Host {
    pub fn new(roots: Roots) -> Self {
        Host {
            roots,
            sysfs_kind: std::sync::OnceLock::new(),
        }
    }

    pub fn roots(&self) -> &Roots {
        &self.roots
    }

    // ---- sysfs paths -------------------------------------------------------------------

    /// `/sys/class/mdev_bus`: one entry (a symlink) per registered parent.
    pub fn mdev_bus_dir(&self) -> PathBuf {
        self.roots.sysfs.join("class/mdev_bus")
    }

    /// `/sys/bus/mdev/devices`: one entry (a symlink) per active mdev.
    pub fn mdev_devices_dir(&self) -> PathBuf {
        self.roots.sysfs.join("bus/mdev/devices")
    }

    pub fn parent_dir(&self, parent: &ParentName) -> PathBuf {
        self.mdev_bus_dir().join(parent)
    }

    pub fn types_dir(&self, parent: &ParentName) -> PathBuf {
        self.parent_dir(parent).join("mdev_supported_types")
    }

    pub fn type_dir(&self, parent: &ParentName, mdev_type: &TypeName) -> PathBuf {
        self.types_dir(parent).join(mdev_type)
    }

    pub fn device_dir(&self, uuid: &Uuid) -> PathBuf {
        self.mdev_devices_dir().join(uuid.hyphenated())
    }

    /// `/sys/bus/pci/devices`: one symlink per PCI function.
    pub fn pci_devices_dir(&self) -> PathBuf {
        self.roots.sysfs.join("bus/pci/devices")
    }

    pub fn pci_device_dir(&self, addr: &crate::nvidia_vf::PciAddress) -> PathBuf {
        self.pci_devices_dir().join(addr.to_string())
    }

    // ---- definition paths --------------------------------------------------------------

    pub fn config_parent_dir(&self, parent: &ParentName) -> PathBuf {
        self.roots.config.join(parent)
    }

    pub fn config_file(&self, parent: &ParentName, uuid: &Uuid) -> PathBuf {
        self.config_parent_dir(parent).join(uuid.hyphenated())
    }

    // ---- file system operations --------------------------------------------------------

    /// Lists a directory with each entry's `lstat` kind (from readdir's d_type where the
    /// file system provides it, so this is one getdents per directory, not a stat per entry).
    pub fn read_dir(&self, dir: &Path) -> io::Result<Vec<Entry>> {
        dir::Dir::open(dir, dir::Last::Follow)?.entries()
    }

    /// Opens a directory to list it and read what is in it relative to it ([`dir::Dir`]).
    pub fn open_dir(&self, dir: &Path, last: dir::Last) -> io::Result<dir::Dir> {
        dir::Dir::open(dir, last)
    }

    /// Reads at most `limit` bytes; a longer file (or endless stream such as `/dev/zero`)
    /// is an error instead of unbounded memory.
    pub fn read_bounded(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let mut data = Vec::new();
        fs::File::open(path)?
            .take(limit + 1)
            .read_to_end(&mut data)?;
        if data.len() as u64 > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {limit} bytes"),
            ));
        }
        Ok(data)
    }

    /// Reads a whole file: open, reads until one returns nothing, close (no `stat`).
    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            path,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        let mut buf = Vec::new();
        dir::read_fd(&fd, &mut buf, |_| false)?;
        Ok(buf)
    }

    /// Reads a whole file when it exists; `Ok(None)` when it does not.
    pub fn read_if_exists(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match self.read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        fs::read_link(path)
    }

    pub fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        fs::canonicalize(path)
    }

    /// Does `path` exist (following symlinks)?
    pub fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    /// Is `path` a regular file (following symlinks)?
    pub fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    /// Is `path` a directory (following symlinks)?
    pub fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    /// The permission bits of `path` (following symlinks): sysfs shows whether an attribute
    /// has a store function by its write bits, which root's `access(2)` would not.
    pub fn mode(&self, path: &Path) -> io::Result<u32> {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).map(|m| m.permissions().mode() & 0o7777)
    }

    /// Writes `data` to an existing sysfs file in one `write` call, without creating it.
    ///
    /// sysfs attributes act on a single write; a trailing newline is never added here.
    pub fn write_sysfs(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)?;
        let n = f.write(data)?;
        if n != data.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {n} of {} bytes", data.len()),
            ));
        }
        Ok(())
    }

    /// The file name a temporary file of [`Host::write_atomic`] stands in for, if `name` is
    /// one: `.<target>.<nonce>.tmp`, or `.<target>.tmp` (the fixed name earlier versions
    /// used).
    pub fn temp_target<'a>(&self, name: &'a OsStr) -> Option<&'a str> {
        let inner = name.to_str()?.strip_prefix('.')?.strip_suffix(".tmp")?;
        let target = match inner.rsplit_once('.') {
            Some((target, nonce))
                if nonce.len() == NONCE_LEN && nonce.bytes().all(|c| c.is_ascii_hexdigit()) =>
            {
                target
            }
            _ => inner,
        };
        (!target.is_empty()).then_some(target)
    }

    /// Writes `data` to `path` atomically: a new temporary file beside it, fsync, rename
    /// over the target, fsync the directory. Readers see the old or the new file, never a
    /// torn one, and inotify watchers see one `moved_to` event.
    ///
    /// The temporary file has an unpredictable name and is created with `O_EXCL` (which
    /// never follows a symbolic link) and `O_NOFOLLOW`, so whatever is planted beside the
    /// target (a link to another file, a hard link, a directory) is neither written
    /// through nor in the way. On failure it is removed.
    pub fn write_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let (tmp, mut f) = self.create_temp(path)?;
        let result = (|| {
            f.write_all(data)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, path)?;
            fs::File::open(dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Creates a fresh temporary file for `path` (see [`Host::write_atomic`]).
    fn create_temp(&self, path: &Path) -> io::Result<(PathBuf, fs::File)> {
        use std::os::unix::fs::OpenOptionsExt;
        let target = path.file_name().unwrap_or_default().to_string_lossy();
        // A name taken by chance (2^-122 per try) or by a planted file: try another.
        let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
        for _ in 0..4 {
            let nonce = uuid::Uuid::new_v4().simple();
            let tmp = path.with_file_name(format!(".{target}.{nonce}.tmp"));
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&tmp)
            {
                Ok(f) => return Ok((tmp, f)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    pub fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    /// Runs a callout or notifier program (see [`process::run`]).
    pub fn run_program(
        &self,
        program: &Path,
        args: &[&str],
        stdin: process::Stdin<'_>,
        limit: std::time::Duration,
    ) -> io::Result<process::Output> {
        process::run(program, args, stdin, limit)
    }

    /// Echoes a script's stderr as `<script name>: <text>`, verbatim, as upstream does.
    pub fn echo_stderr(&self, script: &Path, stderr: &[u8]) {
        if stderr.is_empty() {
            return;
        }
        let name = script.file_name().unwrap_or_default().to_string_lossy();
        let mut err = io::stderr().lock();
        let _ = err.write_all(name.as_bytes());
        let _ = err.write_all(b": ");
        let _ = err.write_all(stderr);
    }

    /// Removes `dir` only if it is empty; anything else leaves it alone.
    pub fn remove_dir_if_empty(&self, dir: &Path) {
        let _ = fs::remove_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn roots(vars: &[(&str, &str)]) -> Roots {
        Roots::from_env(|k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn default_root_is_slash() {
        let r = roots(&[]);
        assert_eq!(r.sysfs, Path::new("/sys"));
        assert_eq!(r.config, Path::new("/etc/mdevctl.d"));
        assert_eq!(r.scripts, Path::new("/usr/lib/mdevctl/scripts.d"));
        assert_eq!(r.legacy_scripts, Path::new("/etc/mdevctl.d/scripts.d"));
    }

    #[test]
    fn env_root_moves_every_path_and_may_be_relative_or_empty() {
        let r = roots(&[(ENV_ROOT, "/tmp/x")]);
        assert_eq!(r, Roots::under(Path::new("/tmp/x")));
        assert_eq!(r.sysfs, Path::new("/tmp/x/sys"));
        assert_eq!(r.lock_file, Path::new("/tmp/x/run/lock/mdevctl.lock"));
        assert_eq!(
            roots(&[(ENV_ROOT, "rel")]).config,
            Path::new("rel/etc/mdevctl.d")
        );
        assert_eq!(roots(&[(ENV_ROOT, "")]).sysfs, Path::new("sys"));
    }

    #[test]
    fn specific_overrides_win_over_env_root() {
        let r = roots(&[
            (ENV_ROOT, "/r"),
            (ENV_SYSFS_ROOT, "/s"),
            (ENV_CONFIG_DIR, "/c"),
            (ENV_SCRIPTS_DIR, "/d"),
            (ENV_LOCK_FILE, "/l"),
        ]);
        assert_eq!(r.sysfs, Path::new("/s"));
        assert_eq!(r.config, Path::new("/c"));
        assert_eq!(r.legacy_scripts, Path::new("/c/scripts.d"));
        assert_eq!(r.scripts, Path::new("/d"));
        assert_eq!(r.lock_file, Path::new("/l"));
    }

    #[test]
    fn temp_target_names_the_file_a_temporary_file_stands_in_for() {
        let host = Host::new(Roots::under(Path::new("/")));
        let t = |n: &str| host.temp_target(OsStr::new(n)).map(str::to_owned);
        let nonce = "0123456789abcdef0123456789ABCDEF";
        assert_eq!(t(&format!(".u.{nonce}.tmp")).as_deref(), Some("u"));
        assert_eq!(t(".u.tmp").as_deref(), Some("u"), "the earlier fixed name");
        assert_eq!(t(&format!("..{nonce}.tmp")), None, "no target");
        assert_eq!(
            t(".a.b.tmp").as_deref(),
            Some("a.b"),
            "not a nonce: part of the name"
        );
        for not_temp in ["u", ".u", "u.tmp", ".tmp", "..tmp", ""] {
            assert_eq!(t(not_temp), None, "{not_temp}");
        }
    }

    #[test]
    fn write_atomic_replaces_the_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(Roots::under(dir.path()));
        let path = dir.path().join("d/target");
        host.write_atomic(&path, &[b'x'; 8192]).unwrap();
        host.write_atomic(&path, b"short").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"short");
        let names: Vec<_> = fs::read_dir(dir.path().join("d"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [OsStr::new("target")]);
    }
}
