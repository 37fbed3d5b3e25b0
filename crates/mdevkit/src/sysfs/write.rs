//! Writing to the kernel: `create`, `remove` and device attributes, with errors that name
//! the errno, the file written and the usual causes (upstream issue #115).

use std::io;
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use crate::host::Host;
use crate::names::{Attr, ParentName, TypeName, Uuid};

/// A failed sysfs write, with the kernel's errno explained.
#[derive(Debug, thiserror::Error)]
#[error("writing '{value}' to {} failed with {errno}{}", path.display(),
    if hint.is_empty() { String::new() } else { format!(" ({hint})") })]
pub struct KernelWriteError {
    pub path: PathBuf,
    pub value: String,
    pub errno: String,
    pub hint: &'static str,
    /// The kernel's error; its text is already in the message (errno), so not a source.
    pub io: io::Error,
}

/// What was being written, which decides the hint for an errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Create,
    Remove,
    Attribute,
}

/// The C name of an errno, from rustix's constants (so the numbers are the target's).
fn errno_c_name(errno: Errno) -> Option<&'static str> {
    Some(match errno {
        Errno::PERM => "EPERM",
        Errno::NOENT => "ENOENT",
        Errno::INTR => "EINTR",
        Errno::IO => "EIO",
        Errno::NXIO => "ENXIO",
        Errno::AGAIN => "EAGAIN",
        Errno::NOMEM => "ENOMEM",
        Errno::ACCESS => "EACCES",
        Errno::FAULT => "EFAULT",
        Errno::BUSY => "EBUSY",
        Errno::EXIST => "EEXIST",
        Errno::NODEV => "ENODEV",
        Errno::NOTDIR => "ENOTDIR",
        Errno::ISDIR => "EISDIR",
        Errno::INVAL => "EINVAL",
        Errno::NOSPC => "ENOSPC",
        Errno::ROFS => "EROFS",
        Errno::RANGE => "ERANGE",
        Errno::NOSYS => "ENOSYS",
        Errno::USERS => "EUSERS",
        Errno::OPNOTSUPP => "EOPNOTSUPP",
        Errno::ADDRINUSE => "EADDRINUSE",
        Errno::ADDRNOTAVAIL => "EADDRNOTAVAIL",
        Errno::TIMEDOUT => "ETIMEDOUT",
        _ => return None,
    })
}

fn errno_name(e: &io::Error) -> String {
    let Some(errno) = Errno::from_io_error(e) else {
        return e.to_string();
    };
    match errno_c_name(errno) {
        Some(name) => format!("{name} ({})", e.kind()),
        None => format!("errno {} ({e})", errno.raw_os_error()),
    }
}

fn hint(kind: WriteKind, e: &io::Error) -> &'static str {
    let Some(errno) = Errno::from_io_error(e) else {
        return "";
    };
    match (kind, errno) {
        (WriteKind::Create, Errno::INVAL) => "the driver refused the request: the type may not be creatable in the parent's current mode (vGPU drivers allow one type or one size per GPU at a time), or the vendor daemon is not ready; check dmesg",
        (WriteKind::Create, Errno::EXIST) => "a device with this UUID already exists",
        (WriteKind::Create, Errno::NOSPC | Errno::USERS) => "no instances of this type are left on the parent",
        (WriteKind::Create, Errno::NODEV | Errno::NOENT) => "the parent is going away or is not ready",
        (WriteKind::Remove, Errno::BUSY) => "the device is in use, probably by a running VM",
        (WriteKind::Remove, Errno::NODEV | Errno::NOENT) => "the device is already gone",
        (WriteKind::Attribute, Errno::BUSY) => "the resource is in use by another mdev or is being reconfigured",
        (WriteKind::Attribute, Errno::ADDRINUSE) => "vfio-ap: the adapter/domain queue is already assigned to another mdev",
        (WriteKind::Attribute, Errno::ADDRNOTAVAIL) => "the resource is reserved for the host (vfio-ap: see /sys/bus/ap/apmask and aqmask)",
        (WriteKind::Attribute, Errno::NODEV) => "the value is out of range for this device",
        (WriteKind::Attribute, Errno::INVAL) => "the driver rejected the value; some attributes need a trailing newline or a specific format",
        (_, Errno::ACCESS | Errno::PERM) => "the file is not writable; run as root",
        _ => "",
    }
}

/// How a file is written: attributes only when they exist (as upstream checks first, in
/// every tree), trigger files as the tree's kind allows (see [`Host::write_trigger`]).
fn write(host: &Host, kind: WriteKind, path: &Path, value: &str) -> Result<(), KernelWriteError> {
    let result = match kind {
        WriteKind::Create | WriteKind::Remove => host.write_trigger(path, value.as_bytes()),
        WriteKind::Attribute => host.write_sysfs(path, value.as_bytes()),
    };
    result.map_err(|source| KernelWriteError {
        path: path.to_owned(),
        value: value.escape_debug().to_string(),
        errno: errno_name(&source),
        hint: hint(kind, &source),
        io: source,
    })
}

/// Writes the UUID to the type's `create` file, without a newline. On the kernel's tree a
/// missing `create` is an error naming the file; a plain tree gets one, as upstream does.
pub fn create(
    host: &Host,
    parent: &ParentName,
    mdev_type: &TypeName,
    uuid: &Uuid,
) -> Result<(), KernelWriteError> {
    let path = host.type_dir(parent, mdev_type).join("create");
    write(host, WriteKind::Create, &path, &uuid.hyphenated())
}

/// Writes `1` to the device's `remove` file. On the kernel's tree a missing `remove` is an
/// error naming the file; a plain tree gets one, as upstream does.
pub fn remove(host: &Host, uuid: &Uuid) -> Result<(), KernelWriteError> {
    write(
        host,
        WriteKind::Remove,
        &host.device_dir(uuid).join("remove"),
        "1",
    )
}

/// Why an attribute could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AttrError {
    #[error("device {uuid} has no attribute '{name}' ({} does not exist)", path.display())]
    Missing {
        uuid: Uuid,
        name: String,
        path: PathBuf,
    },
    #[error("attribute '{name}' of device {uuid} resolves outside the device's directory")]
    Escapes { uuid: Uuid, name: String },
    #[error("failed to write attribute '{name}' of device {uuid}")]
    Write {
        uuid: Uuid,
        name: String,
        #[source]
        source: Box<KernelWriteError>,
    },
}

/// Writes attributes of one created device. The device directory is resolved once, and
/// each attribute path is checked to resolve inside it: the name has no `..`, but a
/// symlink inside sysfs (`mdev_type/`, `driver/`, `iommu_group/`) could lead elsewhere.
#[derive(Debug)]
pub struct AttrWriter<'h> {
    host: &'h Host,
    uuid: Uuid,
    dev: PathBuf,
    /// The device directory's real path, resolved at the first attribute: a device started
    /// without attributes (most auto-started ones) never pays for the walk.
    dev_real: std::cell::OnceCell<Option<PathBuf>>,
}

impl<'h> AttrWriter<'h> {
    pub fn new(host: &'h Host, uuid: &Uuid) -> Self {
        AttrWriter {
            host,
            uuid: *uuid,
            dev: host.device_dir(uuid),
            dev_real: std::cell::OnceCell::new(),
        }
    }

    /// Writes one attribute's raw value (no newline) to the device's sysfs file. A missing
    /// file is an error in every tree, as upstream checks before writing.
    pub fn write(&self, attr: &Attr) -> Result<(), AttrError> {
        let path = self.dev.join(&attr.name);
        let name = attr.name.to_string();
        if !self.host.exists(&path) {
            return Err(AttrError::Missing {
                uuid: self.uuid,
                name,
                path,
            });
        }
        let dev_real = self
            .dev_real
            .get_or_init(|| self.host.canonicalize(&self.dev).ok());
        let inside = match (dev_real, self.host.canonicalize(&path)) {
            (Some(dev_real), Ok(real)) => real.starts_with(dev_real),
            _ => false,
        };
        if !inside {
            return Err(AttrError::Escapes {
                uuid: self.uuid,
                name,
            });
        }
        write(self.host, WriteKind::Attribute, &path, &attr.value).map_err(|source| {
            AttrError::Write {
                uuid: self.uuid,
                name,
                source: Box::new(source),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(errno: Errno) -> io::Error {
        io::Error::from_raw_os_error(errno.raw_os_error())
    }

    #[test]
    fn errno_names_come_with_the_error_kind() {
        assert_eq!(errno_name(&os(Errno::BUSY)), "EBUSY (resource busy)");
        assert_eq!(errno_name(&os(Errno::NOENT)), "ENOENT (entity not found)");
        assert_eq!(
            errno_name(&os(Errno::ADDRNOTAVAIL)),
            "EADDRNOTAVAIL (address not available)"
        );
    }

    #[test]
    fn an_unnamed_errno_gives_its_number_and_text() {
        let e = os(Errno::HWPOISON);
        assert_eq!(
            errno_name(&e),
            format!("errno {} ({e})", Errno::HWPOISON.raw_os_error())
        );
    }

    #[test]
    fn an_error_without_errno_is_its_text() {
        let e = io::Error::new(io::ErrorKind::WriteZero, "short write: 0 of 1 bytes");
        assert_eq!(errno_name(&e), "short write: 0 of 1 bytes");
    }

    #[test]
    fn hints_depend_on_what_was_written() {
        assert_eq!(
            hint(WriteKind::Remove, &os(Errno::BUSY)),
            "the device is in use, probably by a running VM"
        );
        assert!(hint(WriteKind::Attribute, &os(Errno::BUSY)).contains("another mdev"));
        assert_eq!(hint(WriteKind::Create, &os(Errno::BUSY)), "");
    }
}
