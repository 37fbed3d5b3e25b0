//! Writing to the kernel: `create`, `remove` and device attributes, with errors that name
//! the errno, the file written and the usual causes (upstream issue #115).

use std::io;
use std::path::{Path, PathBuf};

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

fn errno_name(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(1) => "EPERM",
        Some(2) => "ENOENT",
        Some(4) => "EINTR",
        Some(5) => "EIO",
        Some(6) => "ENXIO",
        Some(11) => "EAGAIN",
        Some(12) => "ENOMEM",
        Some(13) => "EACCES",
        Some(16) => "EBUSY",
        Some(17) => "EEXIST",
        Some(19) => "ENODEV",
        Some(20) => "ENOTDIR",
        Some(21) => "EISDIR",
        Some(22) => "EINVAL",
        Some(28) => "ENOSPC",
        Some(30) => "EROFS",
        Some(34) => "ERANGE",
        Some(87) => "EUSERS",
        Some(95) => "EOPNOTSUPP",
        Some(98) => "EADDRINUSE",
        Some(99) => "EADDRNOTAVAIL",
        Some(n) => return format!("errno {n} ({e})"),
        None => return e.to_string(),
    };
    format!("{name} ({})", e.kind())
}

fn hint(kind: WriteKind, e: &io::Error) -> &'static str {
    match (kind, e.raw_os_error()) {
        (WriteKind::Create, Some(22)) => "the driver refused the request: the type may not be creatable in the parent's current mode (vGPU drivers allow one type or one size per GPU at a time), or the vendor daemon is not ready; check dmesg",
        (WriteKind::Create, Some(17)) => "a device with this UUID already exists",
        (WriteKind::Create, Some(28) | Some(87)) => "no instances of this type are left on the parent",
        (WriteKind::Create, Some(19)) => "the parent is going away or is not ready",
        (WriteKind::Remove, Some(16)) => "the device is in use, probably by a running VM",
        (WriteKind::Remove, Some(19) | Some(2)) => "the device is already gone",
        (WriteKind::Attribute, Some(16)) => "the resource is in use by another mdev or is being reconfigured",
        (WriteKind::Attribute, Some(98)) => "vfio-ap: the adapter/domain queue is already assigned to another mdev",
        (WriteKind::Attribute, Some(99)) => "the resource is reserved for the host (vfio-ap: see /sys/bus/ap/apmask and aqmask)",
        (WriteKind::Attribute, Some(19)) => "the value is out of range for this device",
        (WriteKind::Attribute, Some(22)) => "the driver rejected the value; some attributes need a trailing newline or a specific format",
        (_, Some(13) | Some(1)) => "the file is not writable; run as root",
        _ => "",
    }
}

fn write(host: &Host, kind: WriteKind, path: &Path, value: &str) -> Result<(), KernelWriteError> {
    host.write_sysfs(path, value.as_bytes())
        .map_err(|source| KernelWriteError {
            path: path.to_owned(),
            value: value.escape_debug().to_string(),
            errno: errno_name(&source),
            hint: hint(kind, &source),
            io: source,
        })
}

/// Writes the UUID to the type's `create` file, without a newline.
///
/// `create` is opened without `O_CREAT`, except in a plain fake tree where upstream
/// creates it: there we keep upstream's behaviour so fixtures stay usable.
pub fn create(
    host: &Host,
    parent: &ParentName,
    mdev_type: &TypeName,
    uuid: &Uuid,
) -> Result<(), KernelWriteError> {
    let path = host.type_dir(parent, mdev_type).join("create");
    if !host.exists(&path) {
        // Only a plain fake tree lacks `create`; upstream then creates a regular file,
        // and fixtures rely on that.
        return host
            .write_atomic(&path, uuid.hyphenated().as_bytes())
            .map_err(|source| KernelWriteError {
                path: path.clone(),
                value: uuid.hyphenated(),
                errno: errno_name(&source),
                hint: hint(WriteKind::Create, &source),
                io: source,
            });
    }
    write(host, WriteKind::Create, &path, &uuid.hyphenated())
}

/// Writes `1` to the device's `remove` file.
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
    dev_real: Option<PathBuf>,
}

impl<'h> AttrWriter<'h> {
    pub fn new(host: &'h Host, uuid: &Uuid) -> Self {
        let dev = host.device_dir(uuid);
        AttrWriter {
            host,
            uuid: *uuid,
            dev_real: host.canonicalize(&dev).ok(),
            dev,
        }
    }

    /// Writes one attribute's raw value (no newline) to the device's sysfs file.
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
        let inside = match (&self.dev_real, self.host.canonicalize(&path)) {
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
