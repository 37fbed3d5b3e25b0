//! NVIDIA vendor-specific VFIO through the mount: the L40S tree, capacity, errnos, VMs, SR-IOV.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;

const PF: &str = "bus/pci/devices/0000:3d:00.0";
const EIO: i32 = 5;
const ENXIO: i32 = 6;
const ERANGE: i32 = 34;

/// The root-relative sysfs directory of VF `n` of the L40S at 3d:00.0.
fn vf(n: u32) -> String {
    format!("{PF}/virtfn{n}")
}

fn nv(n: u32, file: &str) -> String {
    format!("{}/nvidia/{file}", vf(n))
}

/// `name -> target` for links, `name (mode) = content` for files (or `!errno`), `name/` for dirs.
fn dump(f: &Fixture, rel: &str) -> String {
    let mut names: Vec<String> = std::fs::read_dir(f.path(rel))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        let path = format!("{rel}/{name}");
        let meta = f.path(&path).symlink_metadata().unwrap();
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(f.path(&path)).unwrap();
            out.push_str(&format!("{name} -> {}\n", target.display()));
        } else if meta.is_dir() {
            out.push_str(&format!("{name}/\n"));
        } else {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            let content = match f.read(&path) {
                Ok(text) => format!("{text:?}"),
                Err(errno) => format!("!{errno}"),
            };
            out.push_str(&format!("{name} ({mode:o}) = {content}\n"));
        }
    }
    out
}

fn listing(ids: &[(u32, &str)]) -> String {
    let mut text = String::from("ID    : vGPU Name\n");
    for (id, name) in ids {
        text.push_str(&format!("{id:<5} : {name}\n"));
    }
    text
}

#[test]
fn nvidia_vf_l40s_tree_is_byte_exact() {
    let Some(f) = mount("vf-tree", "l40s") else {
        return;
    };
    assert_eq!(
        dump(&f, PF)
            .lines()
            .filter(|l| !l.starts_with("virtfn"))
            .collect::<Vec<_>>()
            .join("\n"),
        "class (444) = \"0x030200\\n\"
device (444) = \"0x26b9\\n\"
driver -> ../../../bus/pci/drivers/nvidia
iommu_group -> ../../../kernel/iommu_groups/40
sriov_numvfs (644) = \"32\\n\"
sriov_offset (444) = \"4\\n\"
sriov_stride (444) = \"1\\n\"
sriov_totalvfs (444) = \"32\\n\"
sriov_vf_device (444) = \"26b9\\n\"
vendor (444) = \"0x10de\\n\""
    );
    for (n, addr) in [
        (0, "00.4"),
        (3, "00.7"),
        (4, "01.0"),
        (10, "01.6"),
        (31, "04.3"),
    ] {
        assert_eq!(
            std::fs::read_link(f.path(&vf(n)))
                .unwrap()
                .to_string_lossy(),
            format!("../0000:3d:{addr}")
        );
    }
    assert!(!f.exists(&vf(32)));
    assert!(!f.exists(&format!("{PF}/nvidia")));
    assert_eq!(
        dump(&f, &vf(0)),
        "class (444) = \"0x030200\\n\"
device (444) = \"0x26b9\\n\"
driver -> ../../../bus/pci/drivers/nvidia
iommu_group -> ../../../kernel/iommu_groups/41
nvidia/
physfn -> ../0000:3d:00.0
vendor (444) = \"0x10de\\n\"
vfio-dev/
"
    );
    assert_eq!(
        dump(&f, &format!("{}/nvidia", vf(0))),
        format!(
            "creatable_vgpu_types (444) = {:?}
current_vgpu_type (644) = \"0\\n\"
gpu_instance_id (644) = !{ENXIO}
placement_id (644) = !{ENXIO}
vgpu_params (644) = \"\\n\"
warm_update (644) = \"0\\n\"
",
            f.read(&nv(0, "creatable_vgpu_types")).unwrap()
        )
    );
    assert!(f.exists(&format!("{}/vfio-dev/vfio41", vf(0))));
    assert_eq!(
        f.read(&nv(0, "creatable_vgpu_types")).unwrap(),
        "ID    : vGPU Name
1145  : NVIDIA L40S-1B
1146  : NVIDIA L40S-2B
1147  : NVIDIA L40S-1Q
1148  : NVIDIA L40S-2Q
1149  : NVIDIA L40S-3Q
1150  : NVIDIA L40S-4Q
1151  : NVIDIA L40S-6Q
1152  : NVIDIA L40S-8Q
1153  : NVIDIA L40S-12Q
1154  : NVIDIA L40S-16Q
1155  : NVIDIA L40S-24Q
1156  : NVIDIA L40S-48Q
1157  : NVIDIA L40S-1A
1158  : NVIDIA L40S-2A
1159  : NVIDIA L40S-3A
1160  : NVIDIA L40S-4A
1161  : NVIDIA L40S-6A
1162  : NVIDIA L40S-8A
1163  : NVIDIA L40S-12A
1164  : NVIDIA L40S-16A
1165  : NVIDIA L40S-24A
1166  : NVIDIA L40S-48A
2164  : NVIDIA L40S-3B
"
    );
    // The second GPU is before `sriov-manage -e`: no VFs, no nvidia/ anywhere.
    assert_eq!(
        f.read("bus/pci/devices/0000:5e:00.0/sriov_numvfs").unwrap(),
        "0\n"
    );
    assert!(!f.exists("bus/pci/devices/0000:5e:00.0/virtfn0"));
    // The mdev side stays empty: this host has no mdev parent.
    assert_eq!(
        std::fs::read_dir(f.path("class/mdev_bus")).unwrap().count(),
        0
    );
}

#[test]
fn nvidia_vf_h100_pads_three_digit_ids() {
    let Some(f) = mount("vf-h100", "h100") else {
        return;
    };
    let text = f
        .read("bus/pci/devices/0000:41:00.0/virtfn0/nvidia/creatable_vgpu_types")
        .unwrap();
    assert!(
        text.starts_with("ID    : vGPU Name\n800   : NVIDIA H100-4C\n801   : NVIDIA H100-5C\n"),
        "{text}"
    );
}

#[test]
fn nvidia_vf_equal_size_fills_then_eio() {
    let Some(f) = mount("vf-full", "l40s") else {
        return;
    };
    f.write(&nv(0, "current_vgpu_type"), b"1150\n").unwrap();
    assert_eq!(f.read(&nv(0, "current_vgpu_type")).unwrap(), "1150\n");
    assert_eq!(f.read(&nv(0, "placement_id")).unwrap(), "0\n");
    // A configured VF lists only its own type; a free sibling only the same size and series.
    assert_eq!(
        f.read(&nv(0, "creatable_vgpu_types")).unwrap(),
        listing(&[(1150, "NVIDIA L40S-4Q")])
    );
    assert_eq!(
        f.read(&nv(1, "creatable_vgpu_types")).unwrap(),
        listing(&[(1150, "NVIDIA L40S-4Q")])
    );
    // Another size, or a type the board does not have: RM refuses with EIO.
    assert_eq!(f.write(&nv(1, "current_vgpu_type"), b"1156"), Err(EIO));
    assert_eq!(f.write(&nv(1, "current_vgpu_type"), b"9999"), Err(EIO));
    // A VF that already has a vGPU: EPERM, whatever the type.
    assert_eq!(f.write(&nv(0, "current_vgpu_type"), b"1150"), Err(EPERM));
    for n in 1..12 {
        f.write(&nv(n, "current_vgpu_type"), b"1150").unwrap();
    }
    // 12 × 4 GiB fill 48 GiB: header only, and the next write is EIO.
    assert_eq!(
        f.read(&nv(12, "creatable_vgpu_types")).unwrap(),
        listing(&[])
    );
    assert_eq!(f.write(&nv(12, "current_vgpu_type"), b"1150"), Err(EIO));
    // Removing one gives the room back.
    f.write(&nv(5, "current_vgpu_type"), b"0").unwrap();
    assert_eq!(f.read(&nv(5, "current_vgpu_type")).unwrap(), "0\n");
    assert_eq!(f.read(&nv(5, "placement_id")), Err(ENXIO));
    f.write(&nv(12, "current_vgpu_type"), b"1150").unwrap();
    // Only when the last vGPU goes does the whole catalogue come back.
    for n in (0..13).filter(|n| *n != 5) {
        f.write(&nv(n, "current_vgpu_type"), b"0\n").unwrap();
    }
    assert_eq!(
        f.read(&nv(5, "creatable_vgpu_types"))
            .unwrap()
            .lines()
            .count(),
        24
    );
}

#[test]
fn nvidia_vf_write_parsing_and_remove_errnos() {
    let Some(f) = mount("vf-parse", "l40s") else {
        return;
    };
    for bad in [&b"0x47E"[..], b" 1150", b"1150 ", b"", b"junk", b"1150\n\n"] {
        // An empty write never reaches the store function, as in sysfs.
        let want = if bad.is_empty() { Ok(()) } else { Err(EINVAL) };
        assert_eq!(f.write(&nv(0, "current_vgpu_type"), bad), want, "{bad:?}");
    }
    assert_eq!(
        f.write(&nv(0, "current_vgpu_type"), b"99999999999999999999"),
        Err(ERANGE)
    );
    // `0` on a VF without a vGPU: EPERM ("No vGPU exists on current device").
    assert_eq!(f.write(&nv(0, "current_vgpu_type"), b"0"), Err(EPERM));
    assert_eq!(f.read(&nv(0, "current_vgpu_type")).unwrap(), "0\n");
    // printf and echo both work.
    f.write(&nv(0, "current_vgpu_type"), b"1147").unwrap();
    f.write(&nv(0, "current_vgpu_type"), b"0\n").unwrap();
    // A write fault leaves reads alone and fires once.
    f.sim()
        .control(&format!("fail-write {} EIO", nv(0, "current_vgpu_type")))
        .unwrap();
    assert_eq!(f.read(&nv(0, "current_vgpu_type")).unwrap(), "0\n");
    assert_eq!(f.write(&nv(0, "current_vgpu_type"), b"1147"), Err(EIO));
    assert_eq!(f.read(&nv(0, "current_vgpu_type")).unwrap(), "0\n");
    // creatable_vgpu_types is read-only.
    assert_eq!(f.write(&nv(0, "creatable_vgpu_types"), b"1"), Err(EACCES));
    // vgpu_params needs a vGPU, keeps the text, and a single space clears it.
    assert_eq!(
        f.write(&nv(0, "vgpu_params"), b"frame_rate_limiter=0"),
        Err(ENXIO)
    );
    f.write(&nv(0, "current_vgpu_type"), b"1147").unwrap();
    f.write(&nv(0, "vgpu_params"), b"frame_rate_limiter=0\n")
        .unwrap();
    assert_eq!(
        f.read(&nv(0, "vgpu_params")).unwrap(),
        "frame_rate_limiter=0\n"
    );
    f.write(&nv(0, "vgpu_params"), b" ").unwrap();
    assert_eq!(f.read(&nv(0, "vgpu_params")).unwrap(), "\n");
}

#[test]
fn nvidia_vf_in_use_vf_is_protected() {
    let Some(f) = mount("vf-busy", "l40s") else {
        return;
    };
    let vf0 = "0000:3d:00.4";
    // A VF without a vGPU cannot be opened at all.
    assert!(f.sim().control(&format!("vf-open {vf0}")).is_err());
    f.write(&nv(0, "current_vgpu_type"), b"1150").unwrap();
    f.sim().control(&format!("vf-open {vf0} on")).unwrap();
    assert_eq!(f.write(&nv(0, "current_vgpu_type"), b"0"), Err(EPERM));
    assert_eq!(f.write(&nv(0, "vgpu_params"), b"loglevel=5\n"), Err(EPERM));
    // SR-IOV cannot be turned off under a running VM.
    assert_eq!(f.write(&format!("{PF}/sriov_numvfs"), b"0"), Err(EBUSY));
    // The VM stopped but the plugin still exits: EBUSY; then the write works.
    f.sim().control(&format!("vf-open {vf0} linger")).unwrap();
    assert_eq!(f.write(&nv(0, "current_vgpu_type"), b"0"), Err(EBUSY));
    f.sim().control(&format!("vf-open {vf0} off")).unwrap();
    f.write(&nv(0, "current_vgpu_type"), b"0").unwrap();
    // The control file says why a command was refused.
    assert_eq!(
        f.write("mdev-sim/control", b"vf-open 0000:3d:00.1\n"),
        Err(EINVAL)
    );
    assert_eq!(
        f.read("mdev-sim/last_error").unwrap(),
        "no VF '0000:3d:00.1' in this profile\n"
    );
}

#[test]
fn nvidia_vf_mixed_size_mode_packs_framebuffer() {
    let Some(f) = mount("vf-mixed", "l40s") else {
        return;
    };
    f.sim().control("mixed-size 0000:3d:00.0 on").unwrap();
    f.write(&nv(0, "current_vgpu_type"), b"1155").unwrap(); // 24Q
                                                            // Mixed mode is refused once a vGPU exists.
    assert!(f.sim().control("mixed-size 0000:3d:00.0 off").is_err());
    f.write(&nv(1, "current_vgpu_type"), b"1154").unwrap(); // 16Q
                                                            // 8 GiB left: every type up to 8 GiB, of any series, and nothing larger.
    assert_eq!(
        f.read(&nv(2, "creatable_vgpu_types")).unwrap(),
        listing(&[
            (1145, "NVIDIA L40S-1B"),
            (1146, "NVIDIA L40S-2B"),
            (1147, "NVIDIA L40S-1Q"),
            (1148, "NVIDIA L40S-2Q"),
            (1149, "NVIDIA L40S-3Q"),
            (1150, "NVIDIA L40S-4Q"),
            (1151, "NVIDIA L40S-6Q"),
            (1152, "NVIDIA L40S-8Q"),
            (1157, "NVIDIA L40S-1A"),
            (1158, "NVIDIA L40S-2A"),
            (1159, "NVIDIA L40S-3A"),
            (1160, "NVIDIA L40S-4A"),
            (1161, "NVIDIA L40S-6A"),
            (1162, "NVIDIA L40S-8A"),
            (2164, "NVIDIA L40S-3B"),
        ])
    );
    assert_eq!(f.write(&nv(2, "current_vgpu_type"), b"1153"), Err(EIO));
    f.write(&nv(2, "current_vgpu_type"), b"1160").unwrap();
    f.write(&nv(3, "current_vgpu_type"), b"1150").unwrap();
    assert_eq!(
        f.read(&nv(4, "creatable_vgpu_types")).unwrap(),
        listing(&[])
    );
}

#[test]
fn nvidia_vf_types_published_late() {
    // The second GPU, enabled, before nvidia-vgpud has published its types.
    let mut profile = mdev_sim::Profile::builtin("l40s").unwrap();
    profile.pci_gpus[1].types_published = false;
    profile.pci_gpus[1].enabled_vfs = 32;
    let Some(f) = mount_profile("vf-late", profile) else {
        return;
    };
    let pf2 = "bus/pci/devices/0000:5e:00.0";
    let cat = format!("{pf2}/virtfn0/nvidia/creatable_vgpu_types");
    assert_eq!(f.read(&cat).unwrap(), listing(&[]));
    assert_eq!(
        f.write(&format!("{pf2}/virtfn0/nvidia/current_vgpu_type"), b"1150"),
        Err(EIO)
    );
    f.sim().control("vgpud 0000:5e:00.0").unwrap();
    assert_eq!(f.read(&cat).unwrap().lines().count(), 24);
    f.write(&format!("{pf2}/virtfn0/nvidia/current_vgpu_type"), b"1150")
        .unwrap();
    assert!(f.sim().control("vgpud 0000:5e:00.0").is_err());
}

#[test]
fn nvidia_vf_sriov_disable_enable_wipes() {
    let Some(f) = mount("vf-sriov", "l40s") else {
        return;
    };
    let numvfs = format!("{PF}/sriov_numvfs");
    f.write(&nv(0, "current_vgpu_type"), b"1150").unwrap();
    // Kernel rules: above total is ERANGE, another non-zero count while enabled is EBUSY.
    assert_eq!(f.write(&numvfs, b"33"), Err(ERANGE));
    assert_eq!(f.write(&numvfs, b"16"), Err(EBUSY));
    f.write(&numvfs, b"32").unwrap();
    assert_eq!(f.read(&nv(0, "current_vgpu_type")).unwrap(), "1150\n");
    f.write(&numvfs, b"0\n").unwrap();
    assert_eq!(f.read(&numvfs).unwrap(), "0\n");
    assert!(!f.exists(&vf(0)));
    assert!(!f.exists("bus/pci/devices/0000:3d:00.4"));
    assert!(!f.exists("kernel/iommu_groups/41"));
    f.sim().control("mixed-size 0000:3d:00.0 on").unwrap();
    f.write(&numvfs, b"32").unwrap();
    // Everything is back, empty: no type, and mixed-size mode was lost with the rebind.
    assert_eq!(f.read(&nv(0, "current_vgpu_type")).unwrap(), "0\n");
    f.write(&nv(0, "current_vgpu_type"), b"1150").unwrap();
    assert_eq!(
        f.read(&nv(1, "creatable_vgpu_types")).unwrap(),
        listing(&[(1150, "NVIDIA L40S-4Q")])
    );
}

#[test]
fn nvidia_vf_rfc_variant_lists_and_refuses_differently() {
    let mut profile = mdev_sim::Profile::builtin("l40s").unwrap();
    profile.pci_gpus[0].driver = mdev_sim::DriverVariant::Rfc;
    let Some(f) = mount_profile("vf-rfc", profile) else {
        return;
    };
    // Idle: the header and every type, as the proprietary driver.
    assert_eq!(
        f.read(&nv(0, "creatable_vgpu_types"))
            .unwrap()
            .lines()
            .count(),
        24
    );
    // `0` on an empty VF is a silent success; junk is still EINVAL, 0x too.
    f.write(&nv(0, "current_vgpu_type"), b"0").unwrap();
    assert_eq!(f.write(&nv(0, "current_vgpu_type"), b"0x47e"), Err(EINVAL));
    assert_eq!(f.write(&nv(0, "current_vgpu_type"), b"9999"), Err(ENODEV));
    f.write(&nv(0, "current_vgpu_type"), b"1153").unwrap(); // 12Q: 4 fit
                                                            // Then only the GPU's type, without the header; nothing on the configured VF.
    assert_eq!(
        f.read(&nv(1, "creatable_vgpu_types")).unwrap(),
        "1153  : NVIDIA L40S-12Q\n"
    );
    assert_eq!(f.read(&nv(0, "creatable_vgpu_types")).unwrap(), "");
    // Another type than the GPU's, even of the same size: EINVAL.
    assert_eq!(f.write(&nv(1, "current_vgpu_type"), b"1163"), Err(EINVAL));
    for n in 1..4 {
        f.write(&nv(n, "current_vgpu_type"), b"1153").unwrap();
    }
    assert_eq!(f.read(&nv(4, "creatable_vgpu_types")).unwrap(), "");
    assert_eq!(f.write(&nv(4, "current_vgpu_type"), b"1153"), Err(ENOSPC));
    // Any write while the VFIO device is open: EBUSY.
    f.sim().control("vf-open 0000:3d:00.4 on").unwrap();
    assert_eq!(f.write(&nv(0, "current_vgpu_type"), b"0"), Err(EBUSY));
    f.sim().control("vf-open 0000:3d:00.4 off").unwrap();
    f.write(&nv(0, "current_vgpu_type"), b"0").unwrap();
    assert_eq!(
        f.read(&nv(0, "creatable_vgpu_types")).unwrap(),
        "1153  : NVIDIA L40S-12Q\n"
    );
}
