//! Runtime control through the mount and the API: parents coming and going, hooks, injected faults.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use std::time::{Duration, Instant};

#[test]
fn removing_a_parent_takes_its_mdevs() {
    let Some(f) = mount("unplug", "samples") else {
        return;
    };
    f.create("mtty", "mtty-1", U1).unwrap();
    f.create("mdpy", "mdpy-vga", U2).unwrap();
    f.sim().remove_parent("mtty").unwrap();
    assert!(!f.exists("class/mdev_bus/mtty"));
    assert!(!f.exists(&format!("bus/mdev/devices/{U1}")));
    assert!(!f.exists("devices/virtual/mtty/mtty"));
    assert!(f.exists(&format!("bus/mdev/devices/{U2}")));
    assert_eq!(f.sim().active_devices(), [U2]);
    assert!(!f.exists("kernel/iommu_groups/0"));
    assert!(!f.exists(&format!("bus/mdev/drivers/mtty/{U1}")));
    // Re-added, it is fresh: the full pool and no devices.
    f.sim().add_parent("mtty").unwrap();
    assert_eq!(f.avail("mtty", "mtty-1"), 24);
    assert!(f.sim().add_parent("mtty").is_err());
    assert!(f.sim().remove_parent("nope").is_err());
}

#[test]
fn types_can_be_published_late() {
    let Some(f) = mount("late", "demo") else {
        return;
    };
    let gpu = "0000:84:00.0";
    assert!(!f.exists(&format!("class/mdev_bus/{gpu}")));
    f.sim().add_parent_unpublished(gpu).unwrap();
    assert!(f.path(&format!("class/mdev_bus/{gpu}")).is_dir());
    assert!(!f.exists(&format!("class/mdev_bus/{gpu}/mdev_supported_types")));
    f.sim().publish_types(gpu).unwrap();
    assert_eq!(f.avail(gpu, "nvidia-18"), 16);
    assert!(f.sim().publish_types(gpu).is_err());
}

#[test]
fn the_hook_runs_when_a_parent_registers() {
    let Some(f) = mount("hook", "demo") else {
        return;
    };
    let log = f.dir.join("hook.log");
    f.sim().set_hook(&[
        "sh".to_string(),
        "-c".to_string(),
        format!(
            "echo registered {{parent}} >> {}; ls {}/class/mdev_bus/{{parent}}/mdev_supported_types",
            log.display(),
            f.sys().display()
        ),
    ]);
    f.sim().remove_parent("mtty").unwrap();
    f.sim().add_parent("mtty").unwrap();
    let runs = f.sim().wait_hooks(HANG_GUARD);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].parent, "mtty");
    assert_eq!(runs[0].status, Some(0), "{runs:?}");
    // The hook could read the mount while it ran: the file system was not blocked.
    assert_eq!(runs[0].stdout, "mtty-1\nmtty-2\n");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "registered mtty\n");
    // Unpublished parents announce themselves only when their types appear.
    f.sim().add_parent_unpublished("0000:84:00.0").unwrap();
    assert_eq!(f.sim().wait_hooks(HANG_GUARD).len(), 1);
    f.sim().publish_types("0000:84:00.0").unwrap();
    let runs = f.sim().wait_hooks(HANG_GUARD);
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].parent, "0000:84:00.0");
    assert!(f
        .read("mdev-sim/hooks")
        .unwrap()
        .contains("parent=0000:84:00.0 status=0"));
}

#[test]
fn injected_failures_hit_once() {
    let Some(f) = mount("fail", "mtty") else {
        return;
    };
    let create = "class/mdev_bus/mtty/mdev_supported_types/mtty-1/create";
    f.sim().fail_next(create, libc::EIO);
    assert_eq!(f.create("mtty", "mtty-1", U1), Err(libc::EIO));
    f.create("mtty", "mtty-1", U1).unwrap();
    // A rule may name a file that only exists later, such as a new device's attribute.
    let attr = format!("bus/mdev/devices/{U2}/vendor/sample_mdev_dev");
    f.sim().fail_next(&attr, libc::ENXIO);
    f.create("mtty", "mtty-1", U2).unwrap();
    // Rules follow symlinks: the real path and the bus/mdev spelling are the same file.
    assert_eq!(f.read(&attr), Err(libc::ENXIO));
    assert!(f.read(&attr).is_ok());
    let real = format!("devices/virtual/mtty/mtty/{U2}/vendor/sample_mdev_dev");
    f.sim().fail_next(&real, libc::ENXIO);
    assert_eq!(f.read(&attr), Err(libc::ENXIO));
    assert!(f.read(&real).is_ok());
}

/// Generous: long enough that a loaded machine cannot make a check that depends on it flaky.
const SLOW: Duration = Duration::from_secs(5);

/// Only catches a hang: every wait below normally ends at once.
const HANG_GUARD: Duration = Duration::from_secs(120);

#[test]
fn slow_writes_take_their_time() {
    let Some(f) = mount("slow", "mtty") else {
        return;
    };
    let create = "class/mdev_bus/mtty/mdev_supported_types/mtty-1/create";
    f.sim()
        .control(&format!("slow {create} {}", SLOW.as_millis()))
        .unwrap();
    let start = Instant::now();
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| f.create("mtty", "mtty-1", U1));
        // Meanwhile the rest of the file system answers: this read comes back while the
        // slow write is still pending, and does not see its device yet.
        assert_eq!(f.avail("mtty", "mtty-2"), 12);
        assert!(
            !slow.is_finished(),
            "the read was not answered before the slow write ended"
        );
        slow.join().unwrap().unwrap();
    });
    assert!(start.elapsed() >= SLOW);
    assert_eq!(f.avail("mtty", "mtty-2"), 11);
    // 0 clears the rule: a write after that is not held for the hour this rule would take.
    f.sim().control(&format!("slow {create} 3600000")).unwrap();
    f.sim().control(&format!("slow {create} 0")).unwrap();
    // On a thread of its own, so that a hang fails the test instead of holding it.
    let path = f.path(create);
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(std::fs::write(path, U2).map_err(|e| e.raw_os_error()));
    });
    assert_eq!(result.recv_timeout(HANG_GUARD), Ok(Ok(())));
}

#[test]
fn the_control_file_takes_line_commands() {
    let Some(f) = mount("ctl", "mtty") else {
        return;
    };
    assert!(f
        .read("mdev-sim/control")
        .unwrap()
        .contains("remove-parent NAME"));
    f.create("mtty", "mtty-1", U1).unwrap();
    f.write("mdev-sim/control", format!("busy {U1}\n").as_bytes())
        .unwrap();
    assert_eq!(
        f.write(&format!("bus/mdev/devices/{U1}/remove"), b"1"),
        Err(EBUSY)
    );
    f.write(
        "mdev-sim/control",
        format!("busy {U1} off\nfail bus/mdev/devices/{U1}/remove EPERM").as_bytes(),
    )
    .unwrap();
    assert_eq!(
        f.write(&format!("bus/mdev/devices/{U1}/remove"), b"1"),
        Err(EPERM)
    );
    f.write("mdev-sim/control", b"remove-parent mtty").unwrap();
    assert!(f.sim().active_devices().is_empty());
    assert_eq!(
        f.write("mdev-sim/control", b"remove-parent mtty"),
        Err(EINVAL)
    );
    assert_eq!(
        f.read("mdev-sim/last_error").unwrap(),
        "parent 'mtty' is not present\n"
    );
    assert_eq!(f.write("mdev-sim/control", b"fail x EWHAT"), Err(EINVAL));
    assert_eq!(f.write("mdev-sim/control", b"launch-rockets"), Err(EINVAL));
    f.write("mdev-sim/control", b"add-parent mtty").unwrap();
    assert_eq!(f.read("mdev-sim/last_error").unwrap(), "");
}

#[test]
fn short_writes_take_part_of_the_buffer() {
    use std::io::Write;
    let Some(f) = mount("short", "vfio-ap") else {
        return;
    };
    f.create("matrix", "vfio_ap-passthrough", U1).unwrap();
    let attr = format!("bus/mdev/devices/{U1}/assign_adapter");
    let matrix = format!("bus/mdev/devices/{U1}/matrix");
    let write = |data: &[u8]| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(f.path(&attr))
            .unwrap();
        file.write(data).unwrap()
    };
    // The store acts on the first byte only: adapter 1, not 16.
    f.sim().short_write(&attr, 1);
    assert_eq!(write(b"16"), 1);
    assert_eq!(f.read(&matrix).unwrap(), "01.\n");
    // Once: the next write is whole.
    assert_eq!(write(b"0x10"), 4);
    assert_eq!(f.read(&matrix).unwrap(), "01.\n10.\n");
    // By the control file; taking nothing, the store does nothing.
    f.write("mdev-sim/control", format!("short {attr} 0").as_bytes())
        .unwrap();
    assert_eq!(write(b"2"), 0);
    assert_eq!(f.read(&matrix).unwrap(), "01.\n10.\n");
    assert_eq!(f.write("mdev-sim/control", b"short x many"), Err(EINVAL));
    // clear-faults forgets a rule that has not been used.
    f.sim().short_write(&attr, 1);
    f.write("mdev-sim/control", b"clear-faults").unwrap();
    assert_eq!(write(b"0x20"), 4);
    assert_eq!(f.read(&matrix).unwrap(), "01.\n10.\n20.\n");
}
