//! `mdevkit doctor`: the fixture (a root with a plain or mounted `sys`, doctor's JSON read
//! back), and each check's outcomes on plain trees (modules, IOMMU, bindings, definitions,
//! the udev rule); `sim` has the ones on mdev-sim profiles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sim;

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
