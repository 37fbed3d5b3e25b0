//! `mdevkit doctor` on mounted mdev-sim profiles: parents and types, NVIDIA (mdev and
//! vendor-specific VFIO), vfio-ap, and the dry start of `-u`, driven by the fault controls.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mdev_sim::Profile;

use super::{def, ls, Root, U1, U2};

// ---- mdev parents on the simulator ------------------------------------------------------

#[test]
fn doctor_types_published_late_fail_parent_types_and_autostart_waits() {
    let Some(r) = Root::builtin("doctor_types_late", "demo") else {
        return;
    };
    const GPU1: &str = "0000:84:00.0";
    r.write("etc/udev/rules.d/60-mdevctl.rules", "# rule\n");
    r.define(GPU1, U1, &def("nvidia-11", "auto", ""));
    r.sim_ref().add_parent_unpublished(GPU1).unwrap();
    let (code, d) = r.doctor(&[]);
    d.expect("parent.types", GPU1, "fail", "does not exist");
    d.expect("def.autostart", U1, "warn", "types not published");
    assert_eq!(code, 1);
    r.sim_ref().publish_types(GPU1).unwrap();
    let (_, d) = r.doctor(&["-p", GPU1]);
    d.expect("parent.types", GPU1, "ok", "4 type(s)");
    d.expect("def.autostart", U1, "ok", "nvidia-11 (16 available)");
}

#[test]
fn doctor_exhausted_type_names_its_devices_and_the_shared_pool() {
    let Some(r) = Root::builtin("doctor_exhausted", "mtty") else {
        return;
    };
    let mut uuids = Vec::new();
    for i in 0..12u32 {
        let u = format!("{i:08x}-0000-4000-8000-000000000000");
        r.sysfs_write("class/mdev_bus/mtty/mdev_supported_types/mtty-2/create", &u);
        uuids.push(u);
    }
    let (code, d) = r.doctor(&[]);
    d.expect(
        "type.available",
        "mtty/mtty-2",
        "warn",
        "12 device(s) of this type exist",
    );
    d.expect(
        "type.available",
        "mtty/mtty-1",
        "warn",
        "shared capacity is used by devices of other types",
    );
    d.expect("parent.driver", "mtty", "ok", "virtual device");
    assert_eq!(code, 0, "warnings only");
    assert_eq!(uuids.len(), 12);
}

#[test]
fn doctor_type_filter_reports_only_that_type_and_a_missing_one() {
    let Some(r) = Root::builtin("doctor_type_filter", "mtty") else {
        return;
    };
    let (_, d) = r.doctor(&["-p", "mtty", "-t", "mtty-1"]);
    d.expect("type.available", "mtty/mtty-1", "ok", "24 (0 in use)");
    let n = d.0["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == "type.available")
        .count();
    assert_eq!(n, 1);
    let (code, d) = r.doctor(&["-p", "mtty", "-t", "mtty-9"]);
    d.expect("type.available", "mtty/mtty-9", "fail", "does not exist");
    assert_eq!(code, 1);
    let (code, d) = r.doctor(&["-t", "mtty-9"]);
    d.expect("type.available", "mtty-9", "fail", "no parent in");
    assert_eq!(code, 1);
}

#[test]
fn doctor_type_filter_without_parent_does_not_fail_parents_lacking_it() {
    let Some(r) = Root::builtin("doctor_type_no_parent", "demo") else {
        return;
    };
    r.write("etc/udev/rules.d/60-mdevctl.rules", "# rule\n");
    let (code, d) = r.doctor(&["-t", "mtty-1"]);
    d.expect("type.available", "mtty/mtty-1", "ok", "24 (0 in use)");
    assert!(
        !d.0.to_string().contains("0000:83:00.0/mtty-1"),
        "{:#}",
        d.0
    );
    assert_eq!(code, 0, "{:#}", d.0);
}

#[test]
fn doctor_homogeneous_gpu_holding_another_type_says_so() {
    let Some(r) = Root::builtin("doctor_homogeneous", "nvidia") else {
        return;
    };
    const GPU: &str = "0000:83:00.0";
    r.sysfs_write(
        &format!("class/mdev_bus/{GPU}/mdev_supported_types/nvidia-11/create"),
        U1,
    );
    let (_, d) = r.doctor(&["-p", GPU]);
    d.expect(
        "type.available",
        &format!("{GPU}/nvidia-18"),
        "warn",
        "the GPU already holds another type",
    );
    d.expect(
        "type.available",
        &format!("{GPU}/nvidia-11"),
        "ok",
        "(1 in use)",
    );
    d.expect("nvidia.path", GPU, "ok", "mdev");
    d.expect("nvidia.bound", GPU, "ok", "-> nvidia");
    d.expect("nvidia.driver", "", "ok", "nvidia_vgpu_vfio");
}

#[test]
fn doctor_vgpu_daemons_are_seen_in_proc_comm() {
    let Some(r) = Root::builtin("doctor_daemons", "nvidia") else {
        return;
    };
    let (_, d) = r.doctor(&[]);
    d.expect("nvidia.daemons", "", "warn", "nvidia-vgpu-mgr not running");
    r.write("proc/812/comm", "nvidia-vgpu-mgr\n");
    r.write("proc/813/comm", "nvidia-vgpud\n");
    let (_, d) = r.doctor(&[]);
    d.expect(
        "nvidia.daemons",
        "",
        "ok",
        "nvidia-vgpud running, nvidia-vgpu-mgr running",
    );
}

// ---- vfio-ap ----------------------------------------------------------------------------

#[test]
fn doctor_ap_queues_owned_by_the_host_or_another_mdev_fail() {
    let Some(r) = Root::builtin("doctor_ap", "vfio-ap") else {
        return;
    };
    let assign =
        |a: &str, d: &str| format!(r#"{{"assign_adapter": "{a}"}}, {{"assign_domain": "{d}"}}"#);
    // Adapters 0-3 × domains 0-7 stay with the host.
    r.define(
        "matrix",
        U1,
        &def("vfio_ap-passthrough", "manual", &assign("2", "5")),
    );
    // A running device holds 0x10.0x20; a second definition wants the same queue.
    let running = "33333333-3333-4333-8333-333333333333";
    r.sysfs_write(
        "class/mdev_bus/matrix/mdev_supported_types/vfio_ap-passthrough/create",
        running,
    );
    r.sysfs_write(
        &format!("bus/mdev/devices/{running}/assign_adapter"),
        "0x10",
    );
    r.sysfs_write(&format!("bus/mdev/devices/{running}/assign_domain"), "0x20");
    r.define(
        "matrix",
        U2,
        &def("vfio_ap-passthrough", "manual", &assign("0x10", "0x20")),
    );
    let free = "44444444-4444-4444-8444-444444444444";
    r.define(
        "matrix",
        free,
        &def("vfio_ap-passthrough", "manual", &assign("0x11", "0x21")),
    );
    let (code, d) = r.doctor(&[]);
    d.expect("ap.queues", U1, "fail", "give the host 02.0005");
    d.expect("ap.queues", U2, "fail", &format!("{running} holds 10.0020"));
    d.expect("ap.queues", free, "ok", "1 queue(s) free");
    d.expect("parent.driver", "matrix", "ok", "-> vfio_ap");
    assert_eq!(code, 1);
}

// ---- vendor-specific VFIO ---------------------------------------------------------------

#[test]
fn doctor_vendor_vfio_gpu_with_sriov_off_fails_and_the_iommu_is_required() {
    let Some(r) = Root::builtin("doctor_sriov_off", "l40s") else {
        return;
    };
    let (code, d) = r.doctor(&[]);
    d.expect("nvidia.sriov", "0000:5e:00.0", "fail", "0 of 32 VFs");
    assert!(d
        .get("nvidia.sriov", "0000:5e:00.0")
        .2
        .contains("sriov-manage -e 0000:5e:00.0"));
    d.expect("nvidia.sriov", "0000:3d:00.0", "ok", "32 of 32 VFs");
    d.expect("nvidia.creatable", "0000:3d:00.0", "ok", "NVIDIA L40S-1B");
    d.expect("nvidia.path", "0000:3d:00.0", "ok", "vendor-specific VFIO");
    d.expect("iommu", "", "fail", "has no IOMMU");
    assert!(!d.has("parent.types"), "no mdev parent: {:#}", d.0);
    assert_eq!(code, 1);
    let (_, d) = r.doctor(&["-p", "0000:3d:00.0"]);
    assert!(!d.has("parent.registered") && !d.0.to_string().contains("0000:5e:00.0"));
}

#[test]
fn doctor_vendor_vfio_types_not_published_blame_nvidia_vgpud() {
    let mut p = Profile::builtin("l40s").unwrap();
    p.pci_gpus[0].types_published = false;
    let Some(r) = Root::sim("doctor_vf_unpublished", p) else {
        return;
    };
    let (_, d) = r.doctor(&["-p", "0000:3d:00.0"]);
    d.expect("nvidia.creatable", "0000:3d:00.0", "fail", "not published");
    assert!(d
        .get("nvidia.creatable", "0000:3d:00.0")
        .2
        .contains("nvidia-vgpud"));
    d.expect("nvidia.daemons", "", "warn", "nvidia-vgpu-mgr not running");
    r.write("proc/9/comm", "nvidia-vgpu-mgr\n");
    let (_, d) = r.doctor(&[]);
    d.expect("nvidia.daemons", "", "warn", "nvidia-vgpud not running");
    r.sim_ref().control("vgpud 0000:3d:00.0").unwrap();
    let (_, d) = r.doctor(&["-p", "0000:3d:00.0"]);
    d.expect("nvidia.creatable", "0000:3d:00.0", "ok", "type(s)");
}

#[test]
fn doctor_vendor_vfio_full_gpu_names_the_vgpu_that_holds_it() {
    let Some(r) = Root::builtin("doctor_vf_full", "l40s") else {
        return;
    };
    r.sysfs_write(
        "bus/pci/devices/0000:3d:00.4/nvidia/current_vgpu_type",
        "1156\n",
    );
    let (_, d) = r.doctor(&["-p", "0000:3d:00.0"]);
    d.expect(
        "nvidia.creatable",
        "0000:3d:00.0",
        "warn",
        "0000:3d:00.4 NVIDIA L40S-48Q",
    );
}

// ---- one device: -u ---------------------------------------------------------------------

#[test]
fn doctor_uuid_dry_start_checks_type_instances_and_attribute_files() {
    let Some(r) = Root::builtin("doctor_dry_start", "nvidia") else {
        return;
    };
    const GPU: &str = "0000:83:00.0";
    let params = r#"{"nvidia/vgpu_params": "frame_rate_limiter=0\n"}"#;
    r.define(GPU, U1, &def("nvidia-11", "manual", params));
    let (code, d) = r.doctor(&["-u", U1]);
    d.expect("device.found", U1, "ok", "not active");
    d.expect("device.start", U1, "ok", "create is writable");
    d.expect("device.attrs", U1, "warn", "no device of nvidia-11 exists");
    assert_eq!(code, 0, "{:#}", d.0);
    // Only what concerns the device: its parent's checks, its type only.
    assert!(d.0.to_string().contains("nvidia-11") && !d.0.to_string().contains("nvidia-18"));
    let sibling = "55555555-5555-4555-8555-555555555555";
    r.sysfs_write(
        &format!("class/mdev_bus/{GPU}/mdev_supported_types/nvidia-11/create"),
        sibling,
    );
    let (_, d) = r.doctor(&["-u", U1]);
    d.expect("device.attrs", U1, "ok", sibling);
    let before = ls(&r.path("sys/bus/mdev/devices"));
    r.define(
        GPU,
        U2,
        &def("nvidia-11", "manual", r#"{"nvidia/no_such": "1"}"#),
    );
    let (code, d) = r.doctor(&["-u", U2]);
    d.expect("device.attrs", U2, "fail", "nvidia/no_such");
    assert_eq!(code, 1);
    assert_eq!(
        ls(&r.path("sys/bus/mdev/devices")),
        before,
        "doctor created nothing"
    );
}

#[test]
fn doctor_uuid_of_a_read_only_attribute_or_exhausted_type_fails_start() {
    let Some(r) = Root::builtin("doctor_dry_start_ro", "mtty") else {
        return;
    };
    r.define(
        "mtty",
        U1,
        &def("mtty-2", "manual", r#"{"vendor/sample_mdev_dev": "x"}"#),
    );
    r.sysfs_write("class/mdev_bus/mtty/mdev_supported_types/mtty-2/create", U2);
    let (_, d) = r.doctor(&["-u", U1]);
    d.expect("device.attrs", U1, "fail", "is read-only");
    // 24 ports: 2 for U2, 21 for these, 1 left: no room for a dual-port device.
    for i in 0..21u32 {
        let u = format!("{i:08x}-0000-4000-8000-000000000001");
        r.sysfs_write("class/mdev_bus/mtty/mdev_supported_types/mtty-1/create", &u);
    }
    r.sim_ref().set_busy(U2, true).unwrap();
    let (code, d) = r.doctor(&["-u", U1]);
    d.expect("device.start", U1, "fail", "available_instances is 0");
    assert_eq!(code, 1);
    let (_, d) = r.doctor(&["-u", U2]);
    d.expect("device.found", U2, "ok", "is active on mtty as mtty-2");
    d.expect("device.start", U2, "warn", "already active");
}
