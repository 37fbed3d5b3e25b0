//! The mdev core's sysfs rules through the mounted file system: layout, create, remove, pools, errnos.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use std::path::Path;

fn basename(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn layout_is_the_kernels() {
    let Some(f) = mount("layout", "samples") else {
        return;
    };
    let mut parents: Vec<String> = std::fs::read_dir(f.path("class/mdev_bus"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    parents.sort();
    assert_eq!(parents, ["mbochs", "mdpy", "mtty"]);
    assert_eq!(
        std::fs::read_link(f.path("class/mdev_bus/mtty"))
            .unwrap()
            .to_string_lossy(),
        "../../devices/virtual/mtty/mtty"
    );
    let t = "class/mdev_bus/mtty/mdev_supported_types/mtty-2";
    assert_eq!(f.read(&format!("{t}/name")).unwrap(), "Dual port serial\n");
    assert_eq!(f.read(&format!("{t}/device_api")).unwrap(), "vfio-pci\n");
    assert_eq!(f.read(&format!("{t}/available_instances")).unwrap(), "12\n");
    assert_eq!(f.avail("mtty", "mtty-1"), 24);
    assert_eq!(f.avail("mdpy", "mdpy-vga"), 4);
    assert_eq!(f.avail("mbochs", "mbochs-small"), 64);
    assert_eq!(f.avail("mbochs", "mbochs-medium"), 16);
    assert_eq!(f.avail("mbochs", "mbochs-large"), 4);
    assert_eq!(
        f.read("class/mdev_bus/mdpy/mdev_supported_types/mdpy-xga/description")
            .unwrap(),
        "virtual display, 1024x768 framebuffer\n"
    );
    assert!(f.path(&format!("{t}/devices")).is_dir());
}

#[test]
fn create_makes_every_link_and_mdevctl_can_probe_it() {
    let Some(f) = mount("create", "mtty") else {
        return;
    };
    f.create("mtty", "mtty-2", U1).unwrap();
    let link = format!("bus/mdev/devices/{U1}");
    assert_eq!(
        std::fs::read_link(f.path(&link)).unwrap().to_string_lossy(),
        format!("../../../devices/virtual/mtty/mtty/{U1}")
    );
    // What mdevctl does: the parent is the basename of the canonical path's parent directory,
    // the type the basename of the canonical mdev_type.
    let canonical = std::fs::canonicalize(f.path(&link)).unwrap();
    assert_eq!(
        canonical,
        f.path(&format!("devices/virtual/mtty/mtty/{U1}"))
    );
    assert_eq!(basename(canonical.parent().unwrap()), "mtty");
    let ty = std::fs::canonicalize(f.path(&format!("{link}/mdev_type"))).unwrap();
    assert_eq!(basename(&ty), "mtty-2");
    assert_eq!(
        std::fs::read_link(f.path(&format!("{link}/mdev_type")))
            .unwrap()
            .to_string_lossy(),
        "../mdev_supported_types/mtty-2"
    );
    let in_type = f.path(&format!(
        "class/mdev_bus/mtty/mdev_supported_types/mtty-2/devices/{U1}"
    ));
    assert_eq!(std::fs::canonicalize(in_type).unwrap(), canonical);
    assert_eq!(
        f.read(&format!("{link}/vendor/sample_mdev_dev")).unwrap(),
        format!("This is MDEV {U1}\n")
    );
    // What libvirt and QEMU look at: the IOMMU group and the vendor driver.
    assert_eq!(
        std::fs::canonicalize(f.path(&format!("{link}/iommu_group"))).unwrap(),
        f.path("kernel/iommu_groups/0")
    );
    assert_eq!(
        std::fs::canonicalize(f.path(&format!("kernel/iommu_groups/0/devices/{U1}"))).unwrap(),
        canonical
    );
    assert_eq!(
        std::fs::canonicalize(f.path(&format!("{link}/driver"))).unwrap(),
        f.path("bus/mdev/drivers/mtty")
    );
    assert!(f.exists(&format!("bus/mdev/drivers/mtty/{U1}")));
    f.create("mtty", "mtty-1", U2).unwrap();
    assert!(f.exists(&format!("kernel/iommu_groups/1/devices/{U2}")));
    f.write(&format!("{link}/remove"), b"1").unwrap();
    assert!(!f.exists("kernel/iommu_groups/0"));
    assert!(!f.exists(&format!("bus/mdev/drivers/mtty/{U1}")));
    // The lowest free group number is handed out again.
    f.create("mtty", "mtty-2", U1).unwrap();
    assert!(f.exists(&format!("kernel/iommu_groups/0/devices/{U1}")));
    f.write(&format!("bus/mdev/devices/{U2}/remove"), b"1")
        .unwrap();
    // The shared port pool: mtty-2 took two of 24.
    assert_eq!(f.avail("mtty", "mtty-2"), 11);
    assert_eq!(f.avail("mtty", "mtty-1"), 22);
    assert_eq!(f.sim().active_devices(), [U1]);
}

#[test]
fn create_accepts_what_the_kernel_accepts() {
    let Some(f) = mount("create-forms", "mtty") else {
        return;
    };
    // A trailing newline (echo) is fine; upper case is stored in lower case.
    f.create("mtty", "mtty-1", &format!("{}\n", U1.to_uppercase()))
        .unwrap();
    assert!(f.exists(&format!("bus/mdev/devices/{U1}")));
    // (An empty write never reaches the store function, in sysfs as here.)
    for bad in [
        "not-a-uuid",
        "83b8f4f2509f382f3c1ee6bfe0fa1001",
        "83b8f4f2-509f-382f-3c1e-e6bfe0fa100g",
        "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001\n\n",
        " 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001",
    ] {
        assert_eq!(f.create("mtty", "mtty-1", bad), Err(EINVAL), "{bad:?}");
    }
    assert_eq!(
        f.write(
            "class/mdev_bus/mtty/mdev_supported_types/mtty-1/create",
            &[0xff; 36]
        ),
        Err(EINVAL)
    );
    assert_eq!(f.sim().active_devices().len(), 1);
}

#[test]
fn duplicates_are_refused_across_the_bus() {
    let Some(f) = mount("dup", "samples") else {
        return;
    };
    f.create("mtty", "mtty-1", U1).unwrap();
    assert_eq!(f.create("mtty", "mtty-1", U1), Err(EEXIST));
    assert_eq!(f.create("mtty", "mtty-2", U1), Err(EEXIST));
    assert_eq!(f.create("mdpy", "mdpy-vga", U1), Err(EEXIST));
    assert_eq!(f.avail("mtty", "mtty-1"), 23);
}

#[test]
fn pools_run_out_with_the_drivers_errno() {
    let Some(f) = mount("pools", "samples") else {
        return;
    };
    // mtty: 24 ports, 12 dual-port devices, then ENOSPC from the driver.
    for n in 0..12 {
        f.create("mtty", "mtty-2", &uuid(n)).unwrap();
    }
    assert_eq!(f.avail("mtty", "mtty-2"), 0);
    assert_eq!(f.avail("mtty", "mtty-1"), 0);
    assert_eq!(f.create("mtty", "mtty-1", &uuid(100)), Err(ENOSPC));
    // A duplicate is still EEXIST: the core checks it before capacity.
    assert_eq!(f.create("mtty", "mtty-1", &uuid(0)), Err(EEXIST));
    // mbochs: 256 MB; one large (64) leaves 192 = 48 small or 3 large.
    f.create("mbochs", "mbochs-large", &uuid(200)).unwrap();
    assert_eq!(f.avail("mbochs", "mbochs-small"), 48);
    assert_eq!(f.avail("mbochs", "mbochs-large"), 3);
    // mdpy: the mdev core's parent-wide max_instances (4), EUSERS when exhausted.
    for n in 0..4 {
        f.create(
            "mdpy",
            ["mdpy-vga", "mdpy-hd"][n as usize % 2],
            &uuid(300 + n),
        )
        .unwrap();
    }
    assert_eq!(f.avail("mdpy", "mdpy-xga"), 0);
    assert_eq!(f.create("mdpy", "mdpy-xga", &uuid(400)), Err(EUSERS));
    // Removing gives the instance back.
    f.write(&format!("bus/mdev/devices/{}/remove", uuid(0)), b"1")
        .unwrap();
    assert_eq!(f.avail("mtty", "mtty-2"), 1);
    assert_eq!(f.avail("mtty", "mtty-1"), 2);
}

#[test]
fn remove_parses_like_kstrtoul() {
    let Some(f) = mount("remove", "mtty") else {
        return;
    };
    f.create("mtty", "mtty-1", U1).unwrap();
    let remove = format!("bus/mdev/devices/{U1}/remove");
    for bad in ["yes", "1 ", "-1", "\n1", "0x"] {
        assert_eq!(f.write(&remove, bad.as_bytes()), Err(EINVAL), "{bad:?}");
    }
    // 0 is accepted and does nothing, as remove_store does.
    f.write(&remove, b"0").unwrap();
    assert!(f.exists(&format!("bus/mdev/devices/{U1}")));
    // Reading a write-only attribute is refused.
    assert_eq!(f.read(&remove), Err(EACCES));
    f.write(&remove, b"1").unwrap();
    assert!(!f.exists(&format!("bus/mdev/devices/{U1}")));
    assert!(!f.exists(&format!("devices/virtual/mtty/mtty/{U1}")));
    assert!(!f.exists(&format!(
        "class/mdev_bus/mtty/mdev_supported_types/mtty-1/devices/{U1}"
    )));
    assert_eq!(f.avail("mtty", "mtty-1"), 24);
    // "echo 1" with a newline removes too.
    f.create("mtty", "mtty-1", U2).unwrap();
    f.write(&format!("bus/mdev/devices/{U2}/remove"), b"1\n")
        .unwrap();
    assert!(f.sim().active_devices().is_empty());
}

#[test]
fn busy_devices_refuse_remove() {
    let Some(f) = mount("busy", "mtty") else {
        return;
    };
    f.create("mtty", "mtty-1", U1).unwrap();
    f.sim().set_busy(U1, true).unwrap();
    let remove = format!("bus/mdev/devices/{U1}/remove");
    assert_eq!(f.write(&remove, b"1"), Err(EBUSY));
    assert!(f.exists(&format!("bus/mdev/devices/{U1}")));
    f.sim().set_busy(U1, false).unwrap();
    f.write(&remove, b"1").unwrap();
}

#[test]
fn sysfs_permissions() {
    let Some(f) = mount("perms", "mtty") else {
        return;
    };
    let t = "class/mdev_bus/mtty/mdev_supported_types/mtty-1";
    for ro in ["available_instances", "name", "device_api"] {
        assert_eq!(f.write(&format!("{t}/{ro}"), b"5"), Err(EACCES), "{ro}");
    }
    assert_eq!(f.read(&format!("{t}/create")), Err(EACCES));
    f.create("mtty", "mtty-1", U1).unwrap();
    assert_eq!(
        f.write(
            &format!("bus/mdev/devices/{U1}/vendor/sample_mdev_dev"),
            b"x"
        ),
        Err(EACCES)
    );
    // No new files, directories, links, renames or deletions in sysfs.
    assert_eq!(f.write(&format!("{t}/new_file"), b"x"), Err(EACCES));
    let err = |r: std::io::Result<()>| r.unwrap_err().raw_os_error();
    assert_eq!(
        err(std::fs::create_dir(f.path(&format!("{t}/d")))),
        Some(EPERM)
    );
    assert_eq!(
        err(std::fs::remove_file(f.path(&format!("{t}/name")))),
        Some(EPERM)
    );
    assert_eq!(
        err(std::os::unix::fs::symlink("x", f.path(&format!("{t}/l")))),
        Some(EPERM)
    );
    assert_eq!(
        err(std::fs::rename(
            f.path(&format!("{t}/name")),
            f.path(&format!("{t}/name2"))
        )),
        Some(EPERM)
    );
    let modes = |rel: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(f.path(rel)).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(modes(&format!("{t}/create")), 0o200);
    assert_eq!(modes(&format!("bus/mdev/devices/{U1}/remove")), 0o200);
    assert_eq!(modes(&format!("{t}/available_instances")), 0o444);
}

#[test]
fn garbage_anywhere_gets_an_errno_never_a_crash() {
    let Some(f) = mount("garbage", "demo") else {
        return;
    };
    f.create("mtty", "mtty-1", U1).unwrap();
    f.create("matrix", "vfio_ap-passthrough", U2).unwrap();
    f.create("0000:83:00.0", "nvidia-18", U3).unwrap();
    let garbage: [&[u8]; 6] = [
        b"",
        b"\0\0\0",
        &[0xff, 0xfe, 0x80],
        b"99999999999999999999999999",
        b"-1",
        &[b'a'; 5000],
    ];
    let mut files = Vec::new();
    let mut stack = vec![f.sys().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() && !e.path().ends_with("mdev-sim/control") {
                files.push(e.path());
            }
        }
    }
    assert!(files.len() > 30, "{}", files.len());
    for file in &files {
        // remove files would legitimately remove the device on a number; garbage must not.
        for g in garbage {
            let _ = std::fs::write(file, g);
        }
    }
    // Still serving, and the garbage did not create or remove anything.
    assert_eq!(f.sim().active_devices().len(), 3);
    assert_eq!(f.avail("mtty", "mtty-1"), 23);
    assert!(f.read("mdev-sim/control").unwrap().contains("add-parent"));
}
