//! Vendor drivers through the mount: vfio-ap assignment rules, NVIDIA vgpu_params, GVT-g, vfio-ccw.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use std::time::{Duration, Instant};

const AP: &str = "vfio_ap-passthrough";

fn dev(uuid: &str, attr: &str) -> String {
    format!("bus/mdev/devices/{uuid}/{attr}")
}

#[test]
fn vfio_ap_layout_and_views() {
    let Some(f) = mount("ap-layout", "vfio-ap") else {
        return;
    };
    assert_eq!(
        std::fs::read_link(f.path("class/mdev_bus/matrix"))
            .unwrap()
            .to_string_lossy(),
        "../../devices/vfio_ap/matrix"
    );
    assert_eq!(
        f.read(&format!(
            "class/mdev_bus/matrix/mdev_supported_types/{AP}/device_api"
        ))
        .unwrap(),
        "vfio-ap\n"
    );
    f.create("matrix", AP, U1).unwrap();
    assert_eq!(f.read(&dev(U1, "matrix")).unwrap(), "");
    f.write(&dev(U1, "assign_adapter"), b"5").unwrap();
    assert_eq!(f.read(&dev(U1, "matrix")).unwrap(), "05.\n");
    f.write(&dev(U1, "assign_domain"), b"0x47").unwrap();
    f.write(&dev(U1, "assign_domain"), b"0110\n").unwrap(); // octal 72 = 0x48
    assert_eq!(f.read(&dev(U1, "matrix")).unwrap(), "05.0047\n05.0048\n");
    assert_eq!(
        f.read(&dev(U1, "guest_matrix")).unwrap(),
        "05.0047\n05.0048\n"
    );
    f.write(&dev(U1, "assign_control_domain"), b"0x47").unwrap();
    assert_eq!(f.read(&dev(U1, "control_domains")).unwrap(), "0047\n");
    let config = f.read(&dev(U1, "ap_config")).unwrap();
    assert!(config.starts_with("0x04000000"), "{config}");
    assert_eq!(config.matches(',').count(), 2);
    // Write-only and read-only files as vfio_ap declares them.
    assert_eq!(f.read(&dev(U1, "assign_adapter")), Err(EACCES));
    assert_eq!(f.write(&dev(U1, "matrix"), b"1"), Err(EACCES));
    // Unassign, and the host masks.
    f.write(&dev(U1, "unassign_domain"), b"72").unwrap();
    assert_eq!(f.read(&dev(U1, "matrix")).unwrap(), "05.0047\n");
    assert!(f.read("bus/ap/apmask").unwrap().starts_with("0xf000"));
}

#[test]
fn vfio_ap_range_and_host_reservations() {
    let Some(f) = mount("ap-rules", "vfio-ap") else {
        return;
    };
    f.create("matrix", AP, U1).unwrap();
    assert_eq!(f.write(&dev(U1, "assign_adapter"), b"256"), Err(ENODEV));
    assert_eq!(f.write(&dev(U1, "assign_domain"), b"0x100"), Err(ENODEV));
    assert_eq!(
        f.write(&dev(U1, "assign_control_domain"), b"300"),
        Err(ENODEV)
    );
    assert_eq!(f.write(&dev(U1, "assign_adapter"), b"five"), Err(EINVAL));
    assert_eq!(f.write(&dev(U1, "assign_adapter"), b""), Ok(())); // no write call at all
                                                                  // Adapters 0-3 and domains 0-7 are the host's: only their cross product is reserved.
    f.write(&dev(U1, "assign_adapter"), b"2").unwrap();
    f.write(&dev(U1, "assign_domain"), b"9").unwrap();
    assert_eq!(f.write(&dev(U1, "assign_domain"), b"3"), Err(EADDRNOTAVAIL));
    assert_eq!(f.read(&dev(U1, "matrix")).unwrap(), "02.0009\n");
    // Taking 02.0009 for the host while the mdev holds it is refused.
    assert_eq!(f.write("bus/ap/aqmask", b"+9"), Err(EBUSY));
    f.write("bus/ap/aqmask", b"+10").unwrap();
    assert_eq!(
        f.write(&dev(U1, "assign_domain"), b"10"),
        Err(EADDRNOTAVAIL)
    );
    assert_eq!(f.write("bus/ap/apmask", b"0xzz"), Err(EINVAL));
}

#[test]
fn vfio_ap_order_of_assignments_matters() {
    let Some(f) = mount("ap-order", "vfio-ap") else {
        return;
    };
    f.create("matrix", AP, U1).unwrap();
    f.write(&dev(U1, "assign_adapter"), b"5").unwrap();
    f.write(&dev(U1, "assign_domain"), b"0x47").unwrap();
    f.create("matrix", AP, U2).unwrap();
    // The rival's adapter alone overlaps nothing yet: no queue is formed without a domain.
    f.write(&dev(U2, "assign_adapter"), b"5").unwrap();
    f.write(&dev(U2, "assign_domain"), b"0x48").unwrap();
    // Now 05.0047 would be shared: the write that completes the conflict fails.
    assert_eq!(f.write(&dev(U2, "assign_domain"), b"0x47"), Err(EADDRINUSE));
    assert_eq!(f.read(&dev(U2, "matrix")).unwrap(), "05.0048\n");
    // In the other order the domain goes first, and the adapter write is the one refused.
    f.create("matrix", AP, U3).unwrap();
    f.write(&dev(U3, "assign_domain"), b"0x47").unwrap();
    assert_eq!(f.write(&dev(U3, "assign_adapter"), b"5"), Err(EADDRINUSE));
    f.write(&dev(U3, "assign_adapter"), b"6").unwrap();
    assert_eq!(f.read(&dev(U3, "matrix")).unwrap(), "06.0047\n");
    // Control domains are not exclusive.
    f.write(&dev(U1, "assign_control_domain"), b"1").unwrap();
    f.write(&dev(U2, "assign_control_domain"), b"1").unwrap();
    // ap_config replaces everything at once, with the same checks.
    let conflict = f.read(&dev(U1, "ap_config")).unwrap();
    assert_eq!(
        f.write(&dev(U2, "ap_config"), conflict.as_bytes()),
        Err(EADDRINUSE)
    );
    assert_eq!(f.write(&dev(U2, "ap_config"), b"0x1,0x2"), Err(EINVAL));
}

#[test]
fn nvidia_vgpu_params_need_a_newline_and_types_are_exclusive() {
    let Some(f) = mount("nvidia", "nvidia") else {
        return;
    };
    let gpu = "0000:83:00.0";
    let t = format!("class/mdev_bus/{gpu}/mdev_supported_types/nvidia-18");
    assert_eq!(f.read(&format!("{t}/name")).unwrap(), "GRID M60-0Q\n");
    assert!(f
        .read(&format!("{t}/description"))
        .unwrap()
        .contains("framebuffer=512M"));
    assert_eq!(
        std::fs::read_link(f.path("bus/pci/devices/0000:83:00.0"))
            .unwrap()
            .to_string_lossy(),
        "../../../devices/pci0000:80/0000:80:03.0/0000:82:00.0/0000:83:00.0"
    );
    assert_eq!(f.avail(gpu, "nvidia-18"), 16);
    assert_eq!(f.avail(gpu, "nvidia-22"), 1);
    f.create(gpu, "nvidia-18", U1).unwrap();
    let params = dev(U1, "nvidia/vgpu_params");
    assert_eq!(f.read(&params).unwrap(), "\n");
    assert_eq!(f.write(&params, b"frame_rate_limiter=0"), Err(EINVAL));
    f.write(&params, b"frame_rate_limiter=0\n").unwrap();
    assert_eq!(f.read(&params).unwrap(), "frame_rate_limiter=0\n");
    // One vGPU type per GPU at a time.
    assert_eq!(f.avail(gpu, "nvidia-18"), 15);
    assert_eq!(f.avail(gpu, "nvidia-19"), 0);
    assert_eq!(f.create(gpu, "nvidia-19", U2), Err(EINVAL));
    // Within the type, the framebuffer runs out: 16 x 512M.
    for n in 1..16 {
        f.create(gpu, "nvidia-18", &uuid(n)).unwrap();
    }
    assert_eq!(f.create(gpu, "nvidia-18", U2), Err(ENOSPC));
}

#[test]
fn i915_gvt_shares_its_aperture() {
    let Some(f) = mount("i915", "i915") else {
        return;
    };
    let gpu = "0000:00:02.0";
    assert_eq!(
        std::fs::read_link(f.path(&format!("class/mdev_bus/{gpu}")))
            .unwrap()
            .to_string_lossy(),
        "../../devices/pci0000:00/0000:00:02.0"
    );
    assert_eq!(f.avail(gpu, "i915-GVTg_V5_4"), 4);
    let d = f
        .read(&format!(
            "class/mdev_bus/{gpu}/mdev_supported_types/i915-GVTg_V5_4/description"
        ))
        .unwrap();
    assert!(d.starts_with("low_gm_size: 128MB\nhigh_gm_size"), "{d}");
    f.create(gpu, "i915-GVTg_V5_2", U1).unwrap();
    assert_eq!(f.avail(gpu, "i915-GVTg_V5_4"), 2);
    assert_eq!(f.avail(gpu, "i915-GVTg_V5_1"), 0);
    assert_eq!(f.create(gpu, "i915-GVTg_V5_1", U2), Err(ENOSPC));
}

#[test]
fn vfio_ccw_thousands_of_subchannels_are_all_readable() {
    let Some(f) = mount("ccw", "vfio-ccw") else {
        return;
    };
    let start = Instant::now();
    let parents: Vec<String> = std::fs::read_dir(f.path("class/mdev_bus"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(parents.len(), 2048);
    // What `mdevctl types` reads: every parent's type directory and its files.
    for p in &parents {
        let t = format!("class/mdev_bus/{p}/mdev_supported_types/vfio_ccw-io");
        assert_eq!(f.read(&format!("{t}/available_instances")).unwrap(), "1\n");
        assert_eq!(f.read(&format!("{t}/device_api")).unwrap(), "vfio-ccw\n");
    }
    // A hang guard only: a loaded machine may take long, a quadratic tree much longer.
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(300),
        "types over 2048 parents took {elapsed:?}"
    );
    assert_eq!(
        std::fs::read_link(f.path("class/mdev_bus/0.0.0313"))
            .unwrap()
            .to_string_lossy(),
        "../../devices/css0/0.0.0313"
    );
    assert!(f
        .path("bus/css/devices/0.0.0313/mdev_supported_types")
        .is_dir());
    // One mdev per subchannel.
    f.create("0.0.0313", "vfio_ccw-io", U1).unwrap();
    assert_eq!(f.avail("0.0.0313", "vfio_ccw-io"), 0);
    assert_eq!(f.create("0.0.0313", "vfio_ccw-io", U2), Err(EUSERS));
    f.create("0.0.0314", "vfio_ccw-io", U2).unwrap();
    let canonical = std::fs::canonicalize(f.path(&format!("bus/mdev/devices/{U1}"))).unwrap();
    assert_eq!(canonical, f.path(&format!("devices/css0/0.0.0313/{U1}")));
}
