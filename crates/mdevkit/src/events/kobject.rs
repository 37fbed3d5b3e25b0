//! Device and parent events from the kernel's uevents (`NETLINK_KOBJECT_UEVENT`, group 1):
//! `add`/`remove` with `SUBSYSTEM=mdev` are devices starting and stopping, `change` with
//! `MDEV_STATE=registered`/`unregistered` are parents coming and going. A model of the
//! active devices and registered parents fills in the type of a stopped device, drops
//! what a snapshot already showed, and turns a buffer overrun (`ENOBUFS`) into a re-read.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::netlink::{SocketAddrNetlink, KOBJECT_UEVENT};
use rustix::net::sockopt::{set_socket_recv_buffer_size, set_socket_recv_buffer_size_force};
use rustix::net::{bind, recv, socket_with, AddressFamily, RecvFlags, SocketFlags, SocketType};

use super::{Event, EventKind, Lost, MonitorError};
use crate::host::Host;
use crate::names::{ParentName, TypeName, Uuid};
use crate::sysfs;

/// The kernel's multicast group (udevd re-broadcasts on 2, after its rules ran).
const KERNEL_GROUP: u32 = 1;

/// Room for a burst of a few thousand uevents while the consumer is slow (the kernel caps
/// it at `net.core.rmem_max` unless we may force it).
const DEFAULT_RECEIVE_BUFFER: usize = 8 * 1024 * 1024;

/// The largest uevent the kernel sends is 2048 bytes of properties plus the header.
const MESSAGE_MAX: usize = 8192;

#[derive(Debug)]
pub(super) struct KobjectWatch {
    fd: OwnedFd,
    host: Host,
    active: BTreeMap<Uuid, (ParentName, Option<TypeName>)>,
    parents: BTreeSet<ParentName>,
}

/// A parsed uevent: the action and the properties that matter here.
#[derive(Debug, Default, PartialEq, Eq)]
struct Uevent<'a> {
    action: &'a str,
    devpath: &'a str,
    subsystem: Option<&'a str>,
    mdev_state: Option<&'a str>,
}

/// Parses the kernel's format (`action@devpath`, then NUL-separated `KEY=value`).
fn parse(msg: &[u8]) -> Option<Uevent<'_>> {
    let mut parts = msg.split(|b| *b == 0).filter(|p| !p.is_empty());
    let head = std::str::from_utf8(parts.next()?).ok()?;
    head.split_once('@')?;
    let mut ev = Uevent::default();
    for p in parts {
        let Ok(p) = std::str::from_utf8(p) else {
            continue;
        };
        match p.split_once('=') {
            Some(("ACTION", v)) => ev.action = v,
            Some(("DEVPATH", v)) => ev.devpath = v,
            Some(("SUBSYSTEM", v)) => ev.subsystem = Some(v),
            Some(("MDEV_STATE", v)) => ev.mdev_state = Some(v),
            _ => {}
        }
    }
    (!ev.action.is_empty() && !ev.devpath.is_empty()).then_some(ev)
}

/// The last and second-to-last components of a devpath: for an mdev, its UUID and parent.
fn tail(devpath: &str) -> (Option<&str>, Option<&str>) {
    let mut it = devpath.rsplit('/');
    (it.next(), it.next())
}

impl KobjectWatch {
    pub(super) fn open(
        host: Host,
        receive_buffer: Option<usize>,
    ) -> Result<KobjectWatch, MonitorError> {
        let err = |e: Errno| MonitorError::UeventSocket { source: e.into() };
        let fd = socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            Some(KOBJECT_UEVENT),
        )
        .map_err(err)?;
        let size = receive_buffer.unwrap_or(DEFAULT_RECEIVE_BUFFER);
        set_socket_recv_buffer_size_force(&fd, size)
            .or_else(|_| set_socket_recv_buffer_size(&fd, size))
            .map_err(err)?;
        bind(&fd, &SocketAddrNetlink::new(0, KERNEL_GROUP)).map_err(err)?;
        Ok(KobjectWatch {
            fd,
            host,
            active: BTreeMap::new(),
            parents: BTreeSet::new(),
        })
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads sysfs and reports how it differs from the model: registered parents, then
    /// devices.
    pub(super) fn resync(&mut self, out: &mut Vec<Event>) {
        let mut parents = BTreeSet::new();
        if let Ok(entries) = self.host.read_dir(&self.host.mdev_bus_dir()) {
            for e in entries {
                if let Some(p) = e.name.to_str().and_then(|n| n.parse::<ParentName>().ok()) {
                    parents.insert(p);
                }
            }
        }
        for gone in self.parents.difference(&parents) {
            out.push(Event::parent(EventKind::ParentRemoved, gone.clone()));
        }
        let (devices, _) = sysfs::active_devices(&self.host, None);
        for (uuid, (parent, ty)) in &self.active {
            if !devices.contains_key(uuid) {
                out.push(Event::device(
                    EventKind::Stopped,
                    *uuid,
                    parent.clone(),
                    ty.clone(),
                ));
            }
        }
        for added in parents.difference(&self.parents) {
            out.push(Event::parent(EventKind::ParentAdded, added.clone()));
        }
        for (uuid, dev) in &devices {
            if !self.active.contains_key(uuid) {
                out.push(Event::device(
                    EventKind::Started,
                    *uuid,
                    dev.parent.clone(),
                    Some(dev.mdev_type.clone()),
                ));
            }
        }
        self.parents = parents;
        self.active = devices
            .into_values()
            .map(|d| (d.uuid, (d.parent, Some(d.mdev_type))))
            .collect();
    }

    /// Handles every queued message.
    pub(super) fn read(&mut self, out: &mut Vec<Event>) -> Result<(), MonitorError> {
        let mut buf = vec![0u8; MESSAGE_MAX];
        loop {
            match recv(&self.fd, &mut buf[..], RecvFlags::DONTWAIT) {
                Ok((n, _)) => {
                    if let Some(msg) = buf.get(..n) {
                        self.message(msg, out);
                    }
                }
                Err(Errno::AGAIN | Errno::INTR) => return Ok(()),
                Err(Errno::NOBUFS) => {
                    // The kernel dropped messages for us: say so, then see what is true now.
                    out.push(Event::overflow(Lost::Uevent));
                    self.resync(out);
                }
                Err(e) => {
                    return Err(MonitorError::ReceiveUevent {
                        source: io::Error::from(e),
                    })
                }
            }
        }
    }

    fn message(&mut self, msg: &[u8], out: &mut Vec<Event>) {
        let Some(ev) = parse(msg) else {
            return;
        };
        let (last, before) = tail(ev.devpath);
        if ev.subsystem == Some("mdev") {
            let (Some(uuid), Some(parent)) = (
                last.and_then(|u| u.parse::<Uuid>().ok()),
                before.and_then(|p| p.parse::<ParentName>().ok()),
            ) else {
                return;
            };
            match ev.action {
                "add" if !self.active.contains_key(&uuid) => {
                    // The type is only in sysfs; a device already gone has none to show.
                    let ty = sysfs::probe(&self.host, &uuid)
                        .ok()
                        .flatten()
                        .map(|d| d.mdev_type);
                    out.push(Event::device(
                        EventKind::Started,
                        uuid,
                        parent.clone(),
                        ty.clone(),
                    ));
                    self.active.insert(uuid, (parent, ty));
                }
                "remove" => {
                    let ty = self.active.remove(&uuid).and_then(|(_, t)| t);
                    out.push(Event::device(EventKind::Stopped, uuid, parent, ty));
                }
                _ => {}
            }
            return;
        }
        let Some(parent) = last.and_then(|p| p.parse::<ParentName>().ok()) else {
            return;
        };
        match (ev.action, ev.mdev_state) {
            ("change", Some("registered")) => {
                let kind = if self.parents.insert(parent.clone()) {
                    EventKind::ParentAdded
                } else {
                    EventKind::TypesChanged
                };
                out.push(Event::parent(kind, parent));
            }
            ("change", Some("unregistered")) => {
                self.parents.remove(&parent);
                out.push(Event::parent(EventKind::ParentRemoved, parent));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_format() {
        let msg = b"change@/devices/virtual/mtty/mtty\0ACTION=change\0DEVPATH=/devices/virtual/mtty/mtty\0SUBSYSTEM=mtty\0MDEV_STATE=registered\0SEQNUM=5\0";
        assert_eq!(
            parse(msg),
            Some(Uevent {
                action: "change",
                devpath: "/devices/virtual/mtty/mtty",
                subsystem: Some("mtty"),
                mdev_state: Some("registered"),
            })
        );
        assert_eq!(parse(b"libudev\0\xfe\xed\xca\xfe"), None);
        assert_eq!(parse(b""), None);
        assert_eq!(
            tail("/devices/virtual/mtty/mtty/u"),
            (Some("u"), Some("mtty"))
        );
    }
}
