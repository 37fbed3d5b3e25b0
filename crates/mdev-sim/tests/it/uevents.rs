//! The uevents the simulator broadcasts, received on a netlink socket in a private network
//! namespace (the test thread's own, so other simulators' events stay out). The host
//! kernel's own uevents still arrive there (the kernel sends them to every namespace the
//! initial user namespace owns): they come from port 0 and are skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use mdev_sim::{Profile, Sim, Uevents};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::net::netlink::{SocketAddrNetlink, KOBJECT_UEVENT};
use rustix::net::{bind, recvfrom, socket_with, AddressFamily, RecvFlags, SocketFlags, SocketType};

use crate::common::{fuse_or_skip, temp_dir, U1};

/// A listener on the kernel's (1) and udevd's (2) groups.
fn listener() -> OwnedFd {
    let fd = socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(KOBJECT_UEVENT),
    )
    .unwrap();
    bind(&fd, &SocketAddrNetlink::new(0, 1 | 2)).unwrap();
    fd
}

/// The next datagram a user-space sender (the simulator) sent, within `wait`.
fn next_within(fd: &OwnedFd, wait: Duration) -> Option<Vec<u8>> {
    let ts = Timespec::try_from(wait).unwrap();
    loop {
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        if poll(&mut fds, Some(&ts)).unwrap() == 0 {
            return None;
        }
        let mut buf = vec![0u8; 8192];
        let (_, n, from) = recvfrom(fd, &mut buf[..], RecvFlags::empty()).unwrap();
        let from = SocketAddrNetlink::try_from(from.unwrap()).unwrap();
        if from.pid() != 0 {
            buf.truncate(n);
            return Some(buf);
        }
    }
}

/// The next one; a generous bound only catches a hang.
fn next(fd: &OwnedFd) -> Vec<u8> {
    next_within(fd, Duration::from_secs(30)).expect("no uevent within 30 s")
}

/// Nothing more from the simulator (it sends synchronously, before the write returns).
fn nothing_pending(fd: &OwnedFd) -> bool {
    next_within(fd, Duration::ZERO).is_none()
}

/// A kernel message as `header|KEY=value|...`.
fn kernel_text(msg: &[u8]) -> String {
    assert!(!msg.starts_with(b"libudev\0"), "expected a kernel message");
    let text: Vec<&str> = msg
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| std::str::from_utf8(s).unwrap())
        .collect();
    text.join("|")
}

/// A udev message's properties, checking the header on the way.
fn udev_text(msg: &[u8], subsystem: &str) -> String {
    assert_eq!(&msg[..8], b"libudev\0");
    let word = |i: usize| u32::from_ne_bytes(msg[i..i + 4].try_into().unwrap());
    let be = |i: usize| u32::from_be_bytes(msg[i..i + 4].try_into().unwrap());
    assert_eq!(be(8), mdev_sim::UDEV_MAGIC);
    assert_eq!(word(12) as usize, mdev_sim::UDEV_HEADER_SIZE);
    let off = word(16) as usize;
    let len = word(20) as usize;
    assert_eq!(off + len, msg.len());
    assert_eq!(be(24), mdev_sim::murmur2(subsystem.as_bytes()));
    let props: Vec<&str> = msg[off..]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| std::str::from_utf8(s).unwrap())
        .collect();
    assert!(props.last().unwrap().starts_with("USEC_INITIALIZED="));
    props[..props.len() - 1].join("|")
}

#[test]
fn uevents_follow_the_mdev_core_in_order() {
    if !fuse_or_skip("uevents") {
        return;
    }
    mdev_sim::private_netns().expect("a network namespace of our own (run as root)");
    let dir = temp_dir("uevents");
    let sim = Sim::mount_with(
        &dir.join("sys"),
        Profile::builtin("demo").unwrap(),
        Uevents::KernelAndUdev,
    )
    .unwrap();
    let fd = listener();
    let mtty = "/devices/virtual/mtty/mtty";
    let dev = format!("{mtty}/{U1}");
    std::fs::write(
        dir.join("sys/class/mdev_bus/mtty/mdev_supported_types/mtty-1/create"),
        U1,
    )
    .unwrap();
    std::fs::write(dir.join(format!("sys/bus/mdev/devices/{U1}/remove")), "1").unwrap();
    sim.control("remove-parent mtty").unwrap();
    sim.add_parent("mtty").unwrap();
    sim.add_parent("0000:84:00.0").unwrap();
    let gpu = "/devices/pci0000:80/0000:80:04.0/0000:84:00.0";
    let v = "/devices/virtual/vfio/0";
    let vd = format!("{dev}/vfio-dev/vfio0");
    let expected = [
        (format!("add@{dev}|ACTION=add|DEVPATH={dev}|SUBSYSTEM=mdev|SEQNUM=1"), "mdev"),
        (format!("add@{v}|ACTION=add|DEVPATH={v}|SUBSYSTEM=vfio|MAJOR=246|MINOR=0|DEVNAME=vfio/0|SEQNUM=2"), "vfio"),
        (format!("add@{vd}|ACTION=add|DEVPATH={vd}|SUBSYSTEM=vfio-dev|SEQNUM=3"), "vfio-dev"),
        (format!("bind@{dev}|ACTION=bind|DEVPATH={dev}|SUBSYSTEM=mdev|DRIVER=mtty|SEQNUM=4"), "mdev"),
        (format!("remove@{vd}|ACTION=remove|DEVPATH={vd}|SUBSYSTEM=vfio-dev|SEQNUM=5"), "vfio-dev"),
        (format!("remove@{v}|ACTION=remove|DEVPATH={v}|SUBSYSTEM=vfio|MAJOR=246|MINOR=0|DEVNAME=vfio/0|SEQNUM=6"), "vfio"),
        (format!("unbind@{dev}|ACTION=unbind|DEVPATH={dev}|SUBSYSTEM=mdev|SEQNUM=7"), "mdev"),
        (format!("remove@{dev}|ACTION=remove|DEVPATH={dev}|SUBSYSTEM=mdev|SEQNUM=8"), "mdev"),
        (format!("change@{mtty}|ACTION=change|DEVPATH={mtty}|SUBSYSTEM=mtty|MDEV_STATE=unregistered|SEQNUM=9"), "mtty"),
        (format!("remove@{mtty}|ACTION=remove|DEVPATH={mtty}|SUBSYSTEM=mtty|SEQNUM=10"), "mtty"),
        (format!("add@{mtty}|ACTION=add|DEVPATH={mtty}|SUBSYSTEM=mtty|SEQNUM=11"), "mtty"),
        (format!("change@{mtty}|ACTION=change|DEVPATH={mtty}|SUBSYSTEM=mtty|MDEV_STATE=registered|SEQNUM=12"), "mtty"),
        (format!("add@{gpu}|ACTION=add|DEVPATH={gpu}|SUBSYSTEM=pci|SEQNUM=13"), "pci"),
        (format!("change@{gpu}|ACTION=change|DEVPATH={gpu}|SUBSYSTEM=pci|MDEV_STATE=registered|DRIVER=nvidia|SEQNUM=14"), "pci"),
    ];
    for (kernel, subsystem) in &expected {
        assert_eq!(&kernel_text(&next(&fd)), kernel);
        // udevd's copy follows, with the same properties after the kernel's header line.
        let props = kernel.split_once('|').unwrap().1;
        assert_eq!(udev_text(&next(&fd), subsystem), props);
    }
    assert!(nothing_pending(&fd));
    assert_eq!(sim.uevent_error(), None);
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn uevents_off_sends_nothing() {
    if !fuse_or_skip("uevents_off") {
        return;
    }
    mdev_sim::private_netns().expect("a network namespace of our own (run as root)");
    let dir = temp_dir("uevents-off");
    let sim = Sim::mount_with(
        &dir.join("sys"),
        Profile::builtin("mtty").unwrap(),
        Uevents::Off,
    )
    .unwrap();
    let fd = listener();
    // A positive control: the same write with uevents on is heard (the test above); here
    // the device appears and nothing arrives.
    std::fs::write(
        dir.join("sys/class/mdev_bus/mtty/mdev_supported_types/mtty-1/create"),
        U1,
    )
    .unwrap();
    assert_eq!(sim.active_devices(), vec![U1.to_string()]);
    assert!(nothing_pending(&fd));
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The kernel's messages in the committed record's layout: one property a line (the
/// `action@devpath` header left out), `SEQNUM=<n>`, an empty line after each event.
fn record_layout(msg: &[u8]) -> String {
    let mut out = String::new();
    for p in kernel_text(msg).split('|').skip(1) {
        let p = if p.starts_with("SEQNUM=") {
            "SEQNUM=<n>"
        } else {
            p
        };
        out.push_str(p);
        out.push('\n');
    }
    out.push('\n');
    out
}

#[test]
fn uevents_match_the_real_kernel_record() {
    if !fuse_or_skip("uevents_record") {
        return;
    }
    // Recorded by the real-kernel test (group `uevents`, docs/realkernel.md) on Debian's
    // kernel with the mtty sample driver: the same writes, the parent's rmmod and modprobe.
    let recorded = include_str!("../../../../tests/realkernel/recorded/uevents.txt");
    mdev_sim::private_netns().expect("a network namespace of our own (run as root)");
    let dir = temp_dir("uevents-record");
    let sim = Sim::mount_with(
        &dir.join("sys"),
        Profile::builtin("mtty").unwrap(),
        Uevents::Kernel,
    )
    .unwrap();
    let fd = listener();
    std::fs::write(
        dir.join("sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2/create"),
        U1,
    )
    .unwrap();
    std::fs::write(dir.join(format!("sys/bus/mdev/devices/{U1}/remove")), "1").unwrap();
    sim.control("remove-parent mtty").unwrap();
    sim.add_parent("mtty").unwrap();
    let mut got = String::new();
    while let Some(msg) = next_within(&fd, Duration::ZERO) {
        got.push_str(&record_layout(&msg));
    }
    assert_eq!(got, recorded);
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn devices_have_the_files_libudev_needs() {
    let Some(f) = crate::common::mount("udev_layout", "demo") else {
        return;
    };
    // libudev takes a directory under devices/ for a device only with a `uevent` file, and
    // learns its subsystem from the `subsystem` link.
    let mtty = "devices/virtual/mtty/mtty";
    assert_eq!(f.read(&format!("{mtty}/uevent")).unwrap(), "");
    assert_eq!(
        std::fs::read_link(f.path(&format!("{mtty}/subsystem"))).unwrap(),
        Path::new("../../../../class/mtty")
    );
    assert_eq!(
        std::fs::canonicalize(f.path("class/mtty/mtty")).unwrap(),
        std::fs::canonicalize(f.path(mtty)).unwrap()
    );
    let gpu = "devices/pci0000:80/0000:80:03.0/0000:82:00.0/0000:83:00.0";
    assert_eq!(f.read(&format!("{gpu}/uevent")).unwrap(), "DRIVER=nvidia\n");
    assert_eq!(
        std::fs::canonicalize(f.path(&format!("{gpu}/subsystem"))).unwrap(),
        std::fs::canonicalize(f.path("bus/pci")).unwrap()
    );
    f.create("mtty", "mtty-1", U1).unwrap();
    assert_eq!(
        f.read(&format!("{mtty}/{U1}/uevent")).unwrap(),
        "DRIVER=mtty\n"
    );
    f.sim().remove_parent("mtty").unwrap();
    assert!(!f.exists("class/mtty/mtty"));
}
