//! The simulator's uevents: the messages the kernel's driver core broadcasts on
//! `NETLINK_KOBJECT_UEVENT` when an mdev or a parent comes and goes, and (optionally) the
//! copy udevd re-broadcasts in libudev's format, so listeners see the simulated host as a
//! real one. Sending to a multicast group needs `CAP_NET_ADMIN` in the network namespace.

use std::io;
use std::os::fd::OwnedFd;

use rustix::io::Errno;
use rustix::net::netlink::{SocketAddrNetlink, KOBJECT_UEVENT};
use rustix::net::{sendto, socket_with, AddressFamily, SendFlags, SocketFlags, SocketType};
use rustix::thread::{unshare_unsafe, UnshareFlags};
use rustix::time::{clock_gettime, ClockId};

use crate::parse::Uuid;
use crate::profile::ParentSpec;

/// The kernel's multicast group; udevd re-broadcasts on its own, 2.
pub const KERNEL_GROUP: u32 = 1;
pub const UDEV_GROUP: u32 = 2;

/// Which uevents a mounted simulator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Uevents {
    /// None at all.
    Off,
    /// The kernel-format message on group 1, as the kernel sends it.
    #[default]
    Kernel,
    /// Also the libudev-format message on group 2, as udevd sends it after processing.
    KernelAndUdev,
}

/// `kobject_action`s the mdev core causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Add,
    Remove,
    Change,
    Bind,
    Unbind,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Add => "add",
            Action::Remove => "remove",
            Action::Change => "change",
            Action::Bind => "bind",
            Action::Unbind => "unbind",
        }
    }
}

/// One event before it is numbered: `devpath` is sysfs-relative with a leading `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent {
    pub action: Action,
    pub devpath: String,
    pub subsystem: String,
    /// What follows `SUBSYSTEM` (e.g. `MDEV_STATE=registered`, `DRIVER=mtty`), in order.
    pub extra: Vec<(String, String)>,
}

impl Uevent {
    /// `KEY=value` properties in the kernel's order: ACTION, DEVPATH, SUBSYSTEM, the
    /// caller's (`envp`, then the device's own, e.g. DRIVER), SEQNUM last.
    pub fn properties(&self, seqnum: u64) -> Vec<String> {
        let mut out = vec![
            format!("ACTION={}", self.action.as_str()),
            format!("DEVPATH={}", self.devpath),
            format!("SUBSYSTEM={}", self.subsystem),
        ];
        out.extend(self.extra.iter().map(|(k, v)| format!("{k}={v}")));
        out.push(format!("SEQNUM={seqnum}"));
        out
    }

    /// The kernel's datagram: `action@devpath`, NUL, then NUL-terminated properties.
    pub fn kernel_message(&self, seqnum: u64) -> Vec<u8> {
        let mut buf = format!("{}@{}", self.action.as_str(), self.devpath).into_bytes();
        buf.push(0);
        for p in self.properties(seqnum) {
            buf.extend_from_slice(p.as_bytes());
            buf.push(0);
        }
        buf
    }

    /// udevd's datagram: libudev's 40-byte header, then the properties (the kernel's plus
    /// `USEC_INITIALIZED`), each NUL-terminated.
    pub fn udev_message(&self, seqnum: u64, usec_initialized: u64) -> Vec<u8> {
        let mut props = Vec::new();
        for p in self.properties(seqnum) {
            props.extend_from_slice(p.as_bytes());
            props.push(0);
        }
        props.extend_from_slice(format!("USEC_INITIALIZED={usec_initialized}").as_bytes());
        props.push(0);
        let mut buf = Vec::with_capacity(UDEV_HEADER_SIZE + props.len());
        buf.extend_from_slice(b"libudev\0");
        // The magic and the filter hashes are in network order (socket filters compare
        // them); the sizes are in host order.
        buf.extend_from_slice(&UDEV_MAGIC.to_be_bytes());
        buf.extend_from_slice(&(UDEV_HEADER_SIZE as u32).to_ne_bytes());
        buf.extend_from_slice(&(UDEV_HEADER_SIZE as u32).to_ne_bytes());
        buf.extend_from_slice(&u32::try_from(props.len()).unwrap_or(u32::MAX).to_ne_bytes());
        buf.extend_from_slice(&murmur2(self.subsystem.as_bytes()).to_be_bytes());
        // No DEVTYPE and no tags: hash and bloom filter are zero.
        buf.extend_from_slice(&[0u8; 12]);
        buf.extend_from_slice(&props);
        buf
    }
}

/// The VFIO group character devices' major number on the recorded host (it is dynamic).
const VFIO_MAJOR: u32 = 246;

/// The uevent of a parent device: its subsystem is its bus, else its class (the
/// directory under `devices/virtual/`), else its directory's name; `DRIVER` follows the
/// caller's properties when the device is bound and the event is not its `add`.
pub(crate) fn parent_event(
    spec: &ParentSpec,
    dir: &str,
    action: Action,
    mdev_state: Option<&str>,
) -> Uevent {
    let subsystem = parent_subsystem(spec);
    let mut extra = Vec::new();
    if let Some(state) = mdev_state {
        extra.push(("MDEV_STATE".to_string(), state.to_string()));
    }
    if let (Some(driver), false) = (&spec.bound_driver, action == Action::Add) {
        extra.push(("DRIVER".to_string(), driver.clone()));
    }
    Uevent {
        action,
        devpath: format!("/{dir}"),
        subsystem,
        extra,
    }
}

/// A parent's subsystem: its bus, else its class (the directory under
/// `devices/virtual/`), else its directory's name.
pub(crate) fn parent_subsystem(spec: &ParentSpec) -> String {
    spec.bus.clone().unwrap_or_else(|| {
        let holder = &spec.dir;
        holder
            .strip_prefix("devices/virtual/")
            .and_then(|rest| rest.split('/').next())
            .or_else(|| holder.rsplit('/').next())
            .unwrap_or_default()
            .to_string()
    })
}

/// The uevent of an mdev (`SUBSYSTEM=mdev`; `DRIVER` on bind: at unbind the driver
/// is already detached).
pub(crate) fn mdev_event(pdir: &str, uuid: &Uuid, action: Action, driver: Option<&str>) -> Uevent {
    let extra = match (action, driver) {
        (Action::Bind, Some(d)) => vec![("DRIVER".to_string(), d.to_string())],
        _ => Vec::new(),
    };
    Uevent {
        action,
        devpath: format!("/{pdir}/{uuid}"),
        subsystem: "mdev".to_string(),
        extra,
    }
}

/// The VFIO devices a bound mdev gets: its IOMMU group's character device
/// (`/dev/vfio/<group>`; the major is dynamic on a real host, 246 on the recorded one)
/// and the device's `vfio-dev/vfio<n>`. Added group first, removed in reverse.
pub(crate) fn vfio_events(
    pdir: &str,
    uuid: &Uuid,
    group: u32,
    vfio_dev: u32,
    action: Action,
) -> Vec<Uevent> {
    let group_ev = Uevent {
        action,
        devpath: format!("/devices/virtual/vfio/{group}"),
        subsystem: "vfio".to_string(),
        extra: vec![
            ("MAJOR".to_string(), VFIO_MAJOR.to_string()),
            ("MINOR".to_string(), group.to_string()),
            ("DEVNAME".to_string(), format!("vfio/{group}")),
        ],
    };
    let dev_ev = Uevent {
        action,
        devpath: format!("/{pdir}/{uuid}/vfio-dev/vfio{vfio_dev}"),
        subsystem: "vfio-dev".to_string(),
        extra: Vec::new(),
    };
    if action == Action::Add {
        vec![group_ev, dev_ev]
    } else {
        vec![dev_ev, group_ev]
    }
}

/// libudev's monitor header magic (`0xfeedcafe`).
pub const UDEV_MAGIC: u32 = 0xfeed_cafe;
/// `prefix[8]`, magic, header size, properties offset and length, subsystem and devtype
/// hashes, tag bloom filter (two words): 40 bytes.
pub const UDEV_HEADER_SIZE: usize = 40;

/// MurmurHash2 (32 bit, seed 0) over the bytes, words read little-endian: the hash
/// libudev's socket filter compares `SUBSYSTEM` against.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, b) in rest.iter().enumerate().rev() {
            h ^= u32::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

/// The sending socket, the sequence number and the first error met.
#[derive(Debug)]
pub struct Broadcaster {
    fd: OwnedFd,
    mode: Uevents,
    seqnum: u64,
    pub(crate) error: Option<String>,
}

impl Broadcaster {
    /// A socket in the calling thread's network namespace; `None` for [`Uevents::Off`].
    pub fn open(mode: Uevents) -> io::Result<Option<Broadcaster>> {
        if mode == Uevents::Off {
            return Ok(None);
        }
        let fd = socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            Some(KOBJECT_UEVENT),
        )?;
        Ok(Some(Broadcaster {
            fd,
            mode,
            seqnum: 0,
            error: None,
        }))
    }

    /// Numbers and sends one event. A refused send (no `CAP_NET_ADMIN`) is kept as the
    /// first error and stops further sending: the file system goes on either way.
    pub fn send(&mut self, ev: &Uevent) {
        if self.error.is_some() {
            return;
        }
        self.seqnum = self.seqnum.saturating_add(1);
        let seq = self.seqnum;
        let mut result = self.send_to(KERNEL_GROUP, &ev.kernel_message(seq));
        if result.is_ok() && self.mode == Uevents::KernelAndUdev {
            result = self.send_to(UDEV_GROUP, &ev.udev_message(seq, monotonic_usec()));
        }
        if let Err(e) = result {
            self.error = Some(format!("cannot broadcast uevents: {e}"));
        }
    }

    fn send_to(&self, group: u32, msg: &[u8]) -> io::Result<()> {
        match sendto(
            &self.fd,
            msg,
            SendFlags::DONTWAIT,
            &SocketAddrNetlink::new(0, group),
        ) {
            // The copy unicast to the kernel's own socket may be refused after the
            // multicast went out: the listeners got the message.
            Ok(_) | Err(Errno::CONNREFUSED) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// `CLOCK_MONOTONIC` in microseconds, as udevd's `USEC_INITIALIZED`.
fn monotonic_usec() -> u64 {
    let ts = clock_gettime(ClockId::Monotonic);
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(nanos / 1000)
}

/// Moves the calling thread into a network namespace of its own (needs root), so a
/// simulator mounted from it, and the processes it spawns, exchange uevents with nobody
/// else: the host's kernel events stay out, and the simulator's stay in.
#[allow(unsafe_code)]
pub fn private_netns() -> io::Result<()> {
    // SAFETY: rustix marks unshare(2) unsafe for CLONE_FILES (descriptors created on other
    // threads becoming invalid here); a new network namespace shares no such table.
    unsafe { unshare_unsafe(UnshareFlags::NEWNET) }?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_message_layout() {
        let ev = Uevent {
            action: Action::Change,
            devpath: "/devices/virtual/mtty/mtty".into(),
            subsystem: "mtty".into(),
            extra: vec![("MDEV_STATE".into(), "registered".into())],
        };
        assert_eq!(
            ev.kernel_message(7),
            b"change@/devices/virtual/mtty/mtty\0ACTION=change\0DEVPATH=/devices/virtual/mtty/mtty\0SUBSYSTEM=mtty\0MDEV_STATE=registered\0SEQNUM=7\0"
        );
        let udev = ev.udev_message(7, 42);
        assert_eq!(&udev[..8], b"libudev\0");
        assert_eq!(&udev[8..12], &[0xfe, 0xed, 0xca, 0xfe]);
        assert!(udev[40..].ends_with(b"SEQNUM=7\0USEC_INITIALIZED=42\0"));
    }
}
