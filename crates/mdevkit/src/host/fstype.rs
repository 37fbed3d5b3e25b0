//! Which file system stands for `/sys`, decided once per [`Host`] from statfs(2)'s `f_type`:
//! the kernel's sysfs (or a FUSE file system such as mdev-sim, which behaves like it), or a
//! plain directory tree (fixtures under `MDEVCTL_ENV_ROOT`), where upstream's `fs::write`
//! creates a missing trigger file and tools tested against mdevctl rely on that.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use rustix::fs::FsWord;

use super::Host;

/// `SYSFS_MAGIC` from `<linux/magic.h>`.
const SYSFS_MAGIC: FsWord = 0x6265_6572;
/// `FUSE_SUPER_MAGIC` from `<linux/magic.h>`: mdev-sim serves a kernel-like tree over FUSE.
const FUSE_SUPER_MAGIC: FsWord = 0x6573_5546;

/// What kind of tree the sysfs root is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysfsKind {
    /// sysfs or FUSE: the kernel's files exist or the write fails; nothing is created.
    Kernel,
    /// Any other file system: a missing `create` or `remove` is created, as upstream does.
    Plain,
}

impl SysfsKind {
    /// The kind for a file system type.
    pub fn from_f_type(f_type: FsWord) -> Self {
        match f_type {
            SYSFS_MAGIC | FUSE_SUPER_MAGIC => SysfsKind::Kernel,
            _ => SysfsKind::Plain,
        }
    }

    /// The kind of the file system holding `root`. When it cannot be told (the root is
    /// missing or unreadable), the tree is taken as the kernel's, so nothing is created.
    pub fn of(root: &Path) -> Self {
        rustix::fs::statfs(root).map_or(SysfsKind::Kernel, |s| Self::from_f_type(s.f_type))
    }
}

impl Host {
    /// The kind of the sysfs root, decided on first use and kept for this host.
    pub fn sysfs_kind(&self) -> SysfsKind {
        *self
            .sysfs_kind
            .get_or_init(|| SysfsKind::of(&self.roots.sysfs))
    }

    /// Writes a trigger file (`create`, `remove`). On the kernel's tree this is
    /// [`Host::write_sysfs`], which never creates the file; in a plain tree a missing file
    /// is created (but not its directory), as upstream's `fs::write` does.
    pub fn write_trigger(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        match self.sysfs_kind() {
            SysfsKind::Kernel => self.write_sysfs(path, data),
            SysfsKind::Plain => fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)?
                .write_all(data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_and_fuse_are_kernel_trees_anything_else_is_plain() {
        assert_eq!(SysfsKind::from_f_type(0x6265_6572), SysfsKind::Kernel);
        assert_eq!(SysfsKind::from_f_type(0x6573_5546), SysfsKind::Kernel);
        // tmpfs, ext4, overlayfs
        for plain in [0x0102_1994, 0xef53, 0x794c_7630] {
            assert_eq!(SysfsKind::from_f_type(plain), SysfsKind::Plain);
        }
    }

    #[test]
    fn a_missing_root_is_taken_as_the_kernels() {
        assert_eq!(
            SysfsKind::of(Path::new("/nonexistent/mdevkit/sys")),
            SysfsKind::Kernel
        );
    }

    #[test]
    fn a_temporary_directory_is_plain() {
        assert_eq!(SysfsKind::of(&std::env::temp_dir()), SysfsKind::Plain);
    }
}
