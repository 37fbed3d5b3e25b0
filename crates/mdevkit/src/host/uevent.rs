//! Waiting for the kernel to announce a device: a `NETLINK_KOBJECT_UEVENT` socket, polled
//! with a timeout. `apply --wait` wakes on any uevent (a parent bound, types registered) or
//! at the timeout, and then looks at sysfs again; it never sleeps blindly.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::net::netlink::{SocketAddrNetlink, KOBJECT_UEVENT};
use rustix::net::{bind, recv, socket_with, AddressFamily, RecvFlags, SocketFlags, SocketType};

/// The kernel's uevent multicast group (udev listens on its own, group 2).
const KERNEL_GROUP: u32 = 1;

/// A subscription to the kernel's uevents.
#[derive(Debug)]
pub struct UeventWatcher {
    fd: OwnedFd,
}

impl UeventWatcher {
    pub fn open() -> io::Result<Self> {
        let fd = socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            Some(KOBJECT_UEVENT),
        )?;
        bind(&fd, &SocketAddrNetlink::new(0, KERNEL_GROUP))?;
        Ok(UeventWatcher { fd })
    }

    /// Returns when a uevent arrives (true) or after `timeout` (false); what arrived is
    /// drained, since the caller re-reads sysfs anyway.
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        let ts = Timespec::try_from(timeout)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        let ready = match poll(&mut fds, Some(&ts)) {
            Ok(n) => n > 0,
            Err(rustix::io::Errno::INTR) => false,
            Err(e) => return Err(e.into()),
        };
        let mut buf = [0u8; 8192];
        while recv(&self.fd, &mut buf[..], RecvFlags::DONTWAIT).is_ok() {}
        Ok(ready)
    }
}
