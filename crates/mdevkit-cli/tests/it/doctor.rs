//! `mdevkit doctor`: each check's outcomes, on mdev-sim profiles with their fault controls
//! and on plain trees (modules, IOMMU, bindings), read through the JSON output; the exit
//! status; and that nothing on the host changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use mdev_sim::{MountedSim, Profile, Sim};
use serde_json::Value;

use crate::common::MDEVKIT;

const U1: &str = "11111111-1111-4111-8111-111111111111";
const U2: &str = "22222222-2222-4222-8222-222222222222";
const LOADED: &str = "vfio 1 0 - Live\nvfio_iommu_type1 1 0 - Live\nmdev 1 0 - Live\n\
                      nvidia_vgpu_vfio 1 0 - Live\nnvidia 1 0 - Live\n";

/// A root (`sys` a plain tree or a mounted profile; `proc`, `etc` plain) for one test.
struct Root {
    sim: Option<MountedSim>,
    dir: tempfile::TempDir,
}

impl Root {
    /// A plain tree: nothing under `sys` but what the test writes.
    fn plain() -> Root {
        let dir = tempfile::Builder::new()
            .prefix("mdevkit-doctor-")
            .tempdir()
            .unwrap();
        mdev_sim::prepare_env_root(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("sys")).unwrap();
        Root { sim: None, dir }
    }

    /// A profile mounted at `sys`, the modules loaded per `/proc/modules`; None: skip.
    fn sim(test: &str, profile: Profile) -> Option<Root> {
        if !mdev_sim::fuse_for_test(test).unwrap() {
            return None;
        }
        let mut r = Root::plain();
        r.sim = Some(Sim::mount(&r.path("sys"), profile).unwrap());
        r.write("proc/modules", LOADED);
        Some(r)
    }

    fn builtin(test: &str, name: &str) -> Option<Root> {
        Root::sim(test, Profile::builtin(name).unwrap())
    }

    fn sim_ref(&self) -> &MountedSim {
        self.sim.as_ref().unwrap()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn link(&self, rel: &str, target: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    }

    fn define(&self, parent: &str, file: &str, json: &str) {
        self.write(&format!("etc/mdevctl.d/{parent}/{file}"), json);
    }

    /// Writes to a sysfs file of the mounted simulator (the test acting as the kernel's user).
    fn sysfs_write(&self, rel: &str, text: &str) {
        std::fs::write(self.path("sys").join(rel), text).unwrap();
    }

    /// Runs `mdevkit doctor --output json ARGS`: the exit code and the document.
    fn doctor(&self, args: &[&str]) -> (i32, Doctor) {
        let out = std::process::Command::new(MDEVKIT)
            .arg("doctor")
            .args(["--output", "json"])
            .args(args)
            .env("MDEVCTL_ENV_ROOT", self.dir.path())
            .env_remove("MDEVCTL_LOG")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{e}: {text}{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap(), Doctor(doc))
    }
}

struct Doctor(Value);

impl Doctor {
    /// (status, evidence, remedy) of the check `id` about `subject`.
    fn get(&self, id: &str, subject: &str) -> (String, String, String) {
        let c = self.0["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id && c["subject"] == subject)
            .unwrap_or_else(|| panic!("no {id} {subject} in {:#}", self.0));
        let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
        (s("status"), s("evidence"), s("remedy"))
    }

    fn has(&self, id: &str) -> bool {
        self.0["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id)
    }

    /// Asserts the status and that the evidence contains `needle`.
    fn expect(&self, id: &str, subject: &str, status: &str, needle: &str) {
        let (s, evidence, remedy) = self.get(id, subject);
        assert_eq!(s, status, "{id} {subject}: {evidence} / {remedy}");
        assert!(
            evidence.contains(needle),
            "{id} {subject}: '{evidence}' lacks '{needle}'"
        );
        assert_eq!(remedy.is_empty(), status == "ok", "{id}: remedy '{remedy}'");
    }
}

fn def(ty: &str, start: &str, attrs: &str) -> String {
    format!(r#"{{"mdev_type": "{ty}", "start": "{start}", "attrs": [{attrs}]}}"#)
}

fn ls(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

// ---- IOMMU and modules (plain trees) ----------------------------------------------------

#[test]
fn doctor_iommu_ok_when_the_kernel_registered_one() {
    let r = Root::plain();
    std::fs::create_dir_all(r.path("sys/class/iommu/dmar0")).unwrap();
    let (_, d) = r.doctor(&[]);
    d.expect("iommu", "", "ok", "dmar0");
}

#[test]
fn doctor_iommu_absent_warns_with_the_command_line_and_intel_remedy() {
    let r = Root::plain();
    r.write("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 quiet\n");
    r.write(
        "proc/cpuinfo",
        "processor\t: 0\nvendor_id\t: GenuineIntel\n",
    );
    let (_, d) = r.doctor(&[]);
    d.expect("iommu", "", "warn", "sets no IOMMU parameter");
    assert!(d.get("iommu", "").2.contains("intel_iommu=on"));
}

#[test]
fn doctor_modules_loaded_per_proc_modules_and_sys_module() {
    let r = Root::plain();
    r.write(
        "proc/modules",
        "vfio_iommu_type1 45056 0 - Live 0x0\nmdev 20480 0 - Live 0x0\n",
    );
    std::fs::create_dir_all(r.path("sys/module/vfio")).unwrap();
    let (code, d) = r.doctor(&[]);
    d.expect("module.vfio", "", "ok", "sys/module/vfio present");
    d.expect("module.vfio_iommu", "", "ok", "lists vfio_iommu_type1");
    d.expect("module.mdev", "", "ok", "lists mdev");
    assert_eq!(code, 0, "{:#}", d.0);
}

#[test]
fn doctor_iommufd_stands_in_for_vfio_iommu_type1() {
    let r = Root::plain();
    r.write("proc/modules", "vfio 1 0 - Live\niommufd 1 0 - Live\n");
    let (_, d) = r.doctor(&[]);
    d.expect("module.vfio_iommu", "", "ok", "lists iommufd");
}

#[test]
fn doctor_missing_modules_fail_once_devices_are_defined() {
    let r = Root::plain();
    r.write("proc/modules", "ext4 1 0 - Live\n");
    std::fs::create_dir_all(r.path("sys/module/ext4")).unwrap();
    let (_, d) = r.doctor(&[]);
    d.expect("module.vfio", "", "fail", "does not list vfio");
    d.expect("module.mdev", "", "warn", "does not list mdev");
    r.define("mtty", U1, &def("mtty-1", "manual", ""));
    let (code, d) = r.doctor(&[]);
    d.expect("module.mdev", "", "fail", "does not list mdev");
    assert_eq!(code, 1);
}

#[test]
fn doctor_module_state_unreadable_is_a_warning_not_a_guess() {
    let r = Root::plain();
    let (_, d) = r.doctor(&[]);
    d.expect("module.vfio", "", "warn", "is readable");
}

// ---- vfio-ccw and unregistered parents (plain trees) ------------------------------------

#[test]
fn doctor_ccw_subchannel_bound_to_io_subchannel_fails_with_the_binding() {
    let r = Root::plain();
    std::fs::create_dir_all(r.path("sys/devices/css0/0.0.0400")).unwrap();
    std::fs::create_dir_all(r.path("sys/bus/css/drivers/io_subchannel")).unwrap();
    r.link(
        "sys/bus/css/devices/0.0.0400",
        "../../../devices/css0/0.0.0400",
    );
    r.link(
        "sys/devices/css0/0.0.0400/driver",
        "../../../bus/css/drivers/io_subchannel",
    );
    r.define("0.0.0400", U1, &def("vfio_ccw-io", "manual", ""));
    let (code, d) = r.doctor(&[]);
    d.expect("ccw.binding", "0.0.0400", "fail", "bound to io_subchannel");
    assert!(d.get("ccw.binding", "0.0.0400").2.contains("vfio_ccw"));
    assert_eq!(code, 1);
    let (_, d) = r.doctor(&["-p", "0.0.0400"]);
    d.expect(
        "parent.registered",
        "0.0.0400",
        "fail",
        "bound to io_subchannel",
    );
}

#[test]
fn doctor_unknown_parent_fails_registered() {
    let r = Root::plain();
    let (code, d) = r.doctor(&["-p", "nosuch"]);
    d.expect("parent.registered", "nosuch", "fail", "no such device");
    assert_eq!(code, 1);
}

// ---- definitions and the udev rule ------------------------------------------------------

#[test]
fn doctor_malformed_definition_fails_parse() {
    let r = Root::plain();
    r.define("mtty", U1, "{not json");
    let (code, d) = r.doctor(&[]);
    d.expect("def.parse", U1, "fail", "malformed definition");
    assert_eq!(code, 1);
}

#[test]
fn doctor_non_canonical_and_non_uuid_names_warn() {
    let r = Root::plain();
    let lower = "abcdef00-1111-4111-8111-111111111111";
    r.define("mtty", &lower.to_uppercase(), &def("mtty-1", "manual", ""));
    r.define("mtty", "notes.txt", "x");
    let (_, d) = r.doctor(&[]);
    d.expect("def.name", lower, "warn", "not the canonical");
    d.expect("def.name", "", "warn", "notes.txt: not a UUID");
}

#[test]
fn doctor_autostart_with_parent_missing_fails_without_the_udev_rule_and_warns_with_it() {
    let r = Root::plain();
    r.define("mtty", U1, &def("mtty-1", "auto", ""));
    let (code, d) = r.doctor(&[]);
    d.expect("def.autostart", U1, "fail", "no udev rule");
    d.expect("udev.rule", "", "fail", "no 60-mdevctl.rules");
    assert_eq!(code, 1);
    r.write("usr/lib/udev/rules.d/60-mdevctl.rules", "# rule\n");
    let (_, d) = r.doctor(&[]);
    d.expect("def.autostart", U1, "warn", "will start it when it appears");
    d.expect(
        "udev.rule",
        "",
        "ok",
        "usr/lib/udev/rules.d/60-mdevctl.rules",
    );
}

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

#[test]
fn doctor_unknown_uuid_fails_found() {
    let r = Root::plain();
    let (code, d) = r.doctor(&["-u", U1]);
    d.expect("device.found", U1, "fail", "no definition");
    assert_eq!(code, 1);
}

#[test]
fn doctor_text_output_has_a_fix_line_and_summary() {
    let r = Root::plain();
    let out = std::process::Command::new(MDEVKIT)
        .args(["doctor", "-u", U1])
        .env("MDEVCTL_ENV_ROOT", r.dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("FAIL device.found {U1}: no definition")),
        "{text}"
    );
    assert!(text.contains("     fix: define it"), "{text}");
    assert!(
        text.lines().last().unwrap().ends_with("1 failure(s)"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1));
}
