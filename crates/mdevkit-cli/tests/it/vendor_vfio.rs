//! NVIDIA's vendor-specific VFIO through `mdevkit`: `types`/`list` on mdev-sim's L40S host,
//! `vgpu create/remove` and their refusals, VFs held by a VM, mixed-size mode, late VFs and
//! types with `apply --wait`, and one desired-state file over an mdev GPU and a vendor-VFIO
//! GPU, re-applied and exported.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use mdev_sim::Profile;
use serde_json::Value;

use crate::common::{golden, marked, Env};

const PF: &str = "0000:3d:00.0";
/// SR-IOV disabled when the l40s profile starts.
const PF2: &str = "0000:5e:00.0";

fn l40s(test: &str) -> Option<Env> {
    Env::with_profile(test, Profile::builtin("l40s").unwrap())
}

/// The l40s profile with its JSON changed by `edit` (e.g. types not published yet).
fn l40s_edited(test: &str, edit: impl FnOnce(&mut Value)) -> Option<Env> {
    let mut v: Value =
        serde_json::from_str(include_str!("../../../mdev-sim/profiles/l40s.json")).unwrap();
    edit(&mut v);
    Env::with_profile(
        test,
        Profile::from_json(&v.to_string(), "l40s-edited").unwrap(),
    )
}

/// A host with both worlds: the `nvidia` profile's GRID M60-like mdev GPU `0000:83:00.0`
/// and the l40s profile's first vendor-VFIO GPU.
fn mixed(test: &str) -> Option<Env> {
    let mut v: Value =
        serde_json::from_str(include_str!("../../../mdev-sim/profiles/nvidia.json")).unwrap();
    let l40s: Value =
        serde_json::from_str(include_str!("../../../mdev-sim/profiles/l40s.json")).unwrap();
    v["name"] = "mixed".into();
    v["pci_gpus"] = Value::Array(vec![l40s["pci_gpus"][0].clone()]);
    Env::with_profile(test, Profile::from_json(&v.to_string(), "mixed").unwrap())
}

impl Env {
    /// A VM opens the VF: the driver sees its VFIO device open, and a process in `proc`
    /// has the VF's group file open (what mdevkit looks at). VF n of `PF` is in group 41 + n.
    fn hold(&self, vf: &str, group: u32) {
        self.sim.control(&format!("vf-open {vf} on")).unwrap();
        let fd = self.path("proc/4242/fd");
        std::fs::create_dir_all(&fd).unwrap();
        std::os::unix::fs::symlink(format!("/dev/vfio/{group}"), fd.join(group.to_string()))
            .unwrap();
    }

    fn current(&self, vf: &str) -> String {
        std::fs::read_to_string(self.path(&format!(
            "sys/bus/pci/devices/{vf}/nvidia/current_vgpu_type"
        )))
        .unwrap()
        .trim()
        .to_owned()
    }

    /// `(VF, type id)` of every vGPU of `PF`.
    fn vgpus(&self) -> Vec<(String, String)> {
        let list: Value = serde_json::from_str(&self.ok(&["list", "--output", "json"])).unwrap();
        list["vendor_vfio"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["vf"].as_str().unwrap().to_owned(), v["type"].to_string()))
            .collect()
    }

    /// "Reboot" the GPU: SR-IOV off and on again, as `sriov-manage -d/-e` or a reboot
    /// followed by the SR-IOV unit; every vGPU and mixed-size mode are gone.
    fn reboot_gpu(&self, pf: &str) {
        let numvfs = self.path(&format!("sys/bus/pci/devices/{pf}/sriov_numvfs"));
        std::fs::write(&numvfs, "0").unwrap();
        std::fs::write(&numvfs, "32").unwrap();
    }
}

fn vfs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn vendor_vfio_types_and_list_are_byte_exact() {
    let Some(env) = l40s("vfio-listing") else {
        return;
    };
    env.ok(&["vgpu", "create", "-p", PF, "-t", "NVIDIA L40S-8Q"]);
    env.ok(&[
        "vgpu",
        "create",
        "-p",
        PF,
        "-t",
        "L40S-8Q",
        "--vf",
        "0000:3d:01.0",
    ]);
    env.hold("0000:3d:01.0", 45);
    golden("vfio_types.txt", &env.ok(&["types"]));
    golden("vfio_types.json", &env.ok(&["types", "--output", "json"]));
    golden("vfio_list.txt", &env.ok(&["list"]));
    golden("vfio_list.json", &env.ok(&["list", "--output", "json"]));
}

#[test]
fn vgpu_create_until_full_then_the_error_names_what_holds_it() {
    let Some(env) = l40s("vfio-full") else {
        return;
    };
    // 48 GB of framebuffer: two 24Q vGPUs fill it.
    assert_eq!(
        env.ok(&["vgpu", "create", "-p", PF, "-t", "NVIDIA L40S-24Q"]),
        "0000:3d:00.4 1155 NVIDIA L40S-24Q\n"
    );
    assert_eq!(
        env.ok(&["vgpu", "create", "-p", PF, "-t", "1155"]),
        "0000:3d:00.5 1155 NVIDIA L40S-24Q\n"
    );
    assert_eq!(
        env.fails(&["vgpu", "create", "-p", PF, "-t", "L40S-24Q"]),
        "Error: 0000:3d:00.0 is full: every VF has a vGPU or the framebuffer is taken; it holds \
         0000:3d:00.4 (1155 NVIDIA L40S-24Q), 0000:3d:00.5 (1155 NVIDIA L40S-24Q)\n"
    );
    assert_eq!(
        env.ok(&["vgpu", "remove", "--vf", "0000:3d:00.4"]),
        "0000:3d:00.4: removed vGPU type 1155\n"
    );
    assert_eq!(env.current("0000:3d:00.4"), "0");
    assert_eq!(
        env.ok(&["vgpu", "remove", "--vf", "0000:3d:00.4"]),
        "0000:3d:00.4 had no vGPU: nothing to do\n"
    );
    // The freed room is creatable again, on the freed VF (the first free one).
    assert_eq!(
        env.ok(&["vgpu", "create", "-p", PF, "-t", "L40S-24Q"]),
        "0000:3d:00.4 1155 NVIDIA L40S-24Q\n"
    );
}

#[test]
fn vgpu_refusals_name_the_cause() {
    let Some(env) = l40s("vfio-refusals") else {
        return;
    };
    let unknown = env.fails(&["vgpu", "create", "-p", PF, "-t", "L40S-5Q"]);
    assert!(
        unknown.starts_with(
            "Error: type 'L40S-5Q' is not creatable on 0000:3d:00.0 now; creatable now: \
             1145 (NVIDIA L40S-1B), 1146 (NVIDIA L40S-2B), 1147 (NVIDIA L40S-1Q),"
        ),
        "{unknown}"
    );
    assert!(unknown.ends_with("2164 (NVIDIA L40S-3B)\n"), "{unknown}");
    assert_eq!(
        env.fails(&["vgpu", "create", "-p", PF2, "-t", "L40S-4Q"]),
        "Error: 0000:5e:00.0 has SR-IOV disabled (0 of 32 VFs): mdevkit never enables it; run \
         `/usr/lib/nvidia/sriov-manage -e 0000:5e:00.0` (after nvidia-vgpud and nvidia-vgpu-mgr \
         are running), then retry\n"
    );
    // Never enabled behind the administrator's back.
    let numvfs = env.path(&format!("sys/bus/pci/devices/{PF2}/sriov_numvfs"));
    assert_eq!(std::fs::read_to_string(&numvfs).unwrap(), "0\n");
    std::fs::write(&numvfs, "32").unwrap();
    assert_eq!(
        env.fails(&[
            "vgpu",
            "create",
            "-p",
            PF,
            "-t",
            "L40S-4Q",
            "--vf",
            "0000:5e:00.4"
        ]),
        "Error: 0000:5e:00.4 is a VF of 0000:5e:00.0, not of 0000:3d:00.0\n"
    );
    assert_eq!(
        env.fails(&["vgpu", "remove", "--vf", PF]),
        "Error: 0000:3d:00.0 is not an NVIDIA vendor-VFIO VF (no physfn, no nvidia driver, or \
         no nvidia/current_vgpu_type)\n"
    );
    assert_eq!(
        env.fails(&["vgpu", "create", "-p", "0000:3d:00.4", "-t", "L40S-4Q"]),
        "Error: 0000:3d:00.4 is not an NVIDIA GPU on the vendor-specific VFIO path: it is a VF; \
         give its PF\n"
    );
    let bad = env.fails(&["vgpu", "remove", "--vf", "3d:00"]);
    assert!(bad.contains("3d:00"), "{bad}");
    assert!(env.vgpus().is_empty());
}

#[test]
fn a_vf_held_by_a_vm_is_never_touched() {
    let Some(env) = l40s("vfio-held") else {
        return;
    };
    let two = env.file(
        "d.yaml",
        "version: 1\nprofiles:\n  p:\n    - parents: \"0000:3d:00.0\"\n      devices: [{type: \"NVIDIA L40S-4Q\", count: 2}]\n",
    );
    env.ok(&["apply", "-f", &two, "-c", "p"]);
    env.hold("0000:3d:00.4", 41);
    assert_eq!(
        env.fails(&["vgpu", "remove", "--vf", "0000:3d:00.4"]),
        "Error: 0000:3d:00.4 is in use by a VM (its VFIO device is open): stop the VM first\n"
    );
    assert_eq!(
        env.fails(&[
            "vgpu",
            "create",
            "-p",
            PF,
            "-t",
            "L40S-4Q",
            "--vf",
            "0000:3d:00.4"
        ]),
        "Error: 0000:3d:00.4 is in use by a VM (its VFIO device is open): stop the VM first\n"
    );
    // Lowering the count to 0 would clear the held VF: refused, nothing changes.
    let zero = env.file(
        "zero.yaml",
        "version: 1\nprofiles:\n  p:\n    - parents: \"0000:3d:00.0\"\n      devices: [{type: \"NVIDIA L40S-4Q\", count: 0}]\n",
    );
    assert_eq!(
        env.fails(&["apply", "-f", &zero, "-c", "p"]),
        "Error: parent 0000:3d:00.0: the managed vGPU on 0000:3d:00.4 (NVIDIA L40S-4Q) is no \
         longer wanted, but a VM holds it: stop the VM first (mdevkit never clears a VF in use)\n"
    );
    let both = vfs(&[("0000:3d:00.4", "1150"), ("0000:3d:00.5", "1150")]);
    assert_eq!(env.vgpus(), both);
    // Lowering it to 1 keeps the held one and removes the other.
    let one = env.file(
        "one.yaml",
        "version: 1\nprofiles:\n  p:\n    - parents: \"0000:3d:00.0\"\n      devices: [{type: \"NVIDIA L40S-4Q\", count: 1}]\n",
    );
    assert_eq!(
        env.ok(&["apply", "-f", &one, "-c", "p"]),
        "- remove   0000:3d:00.0 1150 (NVIDIA L40S-4Q) 0000:3d:00.5\n\
         Applied 1 change(s) to match profile 'p'.\n"
    );
    assert_eq!(env.vgpus(), vfs(&[("0000:3d:00.4", "1150")]));
    // An unmanaged vGPU a VM holds is shown, and even --prune leaves it alone.
    env.ok(&[
        "vgpu",
        "create",
        "-p",
        PF,
        "-t",
        "L40S-4Q",
        "--vf",
        "0000:3d:00.6",
    ]);
    env.hold("0000:3d:00.6", 43);
    assert_eq!(
        env.ok(&["plan", "-f", &one, "-c", "p", "--prune"]),
        "  unmanaged 0000:3d:00.0 1150 (NVIDIA L40S-4Q) 0000:3d:00.6 (vGPU, in use by a VM)\n\
         No changes: the host matches profile 'p'.\n"
    );
    env.ok(&["apply", "-f", &one, "-c", "p", "--prune"]);
    assert_eq!(env.current("0000:3d:00.6"), "1150");
}

#[test]
fn mixed_size_mode_holds_two_sizes_on_one_gpu() {
    let Some(env) = l40s("vfio-mixed-size") else {
        return;
    };
    let f = env.file(
        "d.yaml",
        "version: 1\nprofiles:\n  p:\n    - parents: {vendor: \"0x10de\", device: \"0x26b9\"}\n      optional: true\n      devices:\n        - {type: \"NVIDIA L40S-8Q\", count: 2}\n        - {type: \"NVIDIA L40S-4Q\", count: 2}\n",
    );
    // Equal-size mode (the default): the driver refuses the second size at its first
    // creation; apply stops there and says so.
    let err = env.fails(&["apply", "-f", &f, "-c", "p"]);
    assert!(
        err.contains(
            "2 of 4 changes applied; failed: + create   0000:3d:00.0 1150 (NVIDIA L40S-4Q) \
             0000:3d:00.6: create of a vGPU on 0000:3d:00.6: type '1150' is not creatable on \
             0000:3d:00.0 now; creatable now: 1152 (NVIDIA L40S-8Q); the GPU hosts \
             0000:3d:00.4 (1152 NVIDIA L40S-8Q), 0000:3d:00.5 (1152 NVIDIA L40S-8Q)"
        ),
        "{err}"
    );
    // The two 8Q vGPUs it made are managed: a profile without them removes them.
    let none = env.file("none.yaml", "version: 1\nprofiles:\n  p: []\n");
    env.ok(&["apply", "-f", &none, "-c", "p"]);
    assert!(env.vgpus().is_empty());
    env.sim.control(&format!("mixed-size {PF} on")).unwrap();
    let out = env.ok(&["apply", "-f", &f, "-c", "p"]);
    assert_eq!(marked(&out, '+').len(), 4, "{out}");
    assert_eq!(
        env.vgpus(),
        vfs(&[
            ("0000:3d:00.4", "1152"),
            ("0000:3d:00.5", "1152"),
            ("0000:3d:00.6", "1150"),
            ("0000:3d:00.7", "1150"),
        ])
    );
    assert_eq!(
        env.ok(&["apply", "-f", &f, "-c", "p"]),
        "No changes: the host matches profile 'p'.\n"
    );
}

/// Starts `apply --wait` on `file` and returns once it has said what it waits for.
fn waiting_apply(env: &Env, file: &str) -> (Child, String) {
    let mut child = env
        .command(&["apply", "-f", file, "-c", "p", "--wait", "60s"])
        .env("MDEVCTL_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("waiting up to"), "{first}");
    std::thread::spawn(move || lines.for_each(drop));
    (child, first)
}

fn finish(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    stdout
}

#[test]
fn apply_waits_for_types_published_late() {
    let Some(env) = l40s_edited("vfio-late-types", |v| {
        v["pci_gpus"][0]["types_published"] = false.into();
    }) else {
        return;
    };
    let f = env.file(
        "d.yaml",
        "version: 1\nprofiles:\n  p:\n    - parents: \"0000:3d:00.0\"\n      devices: [{type: \"NVIDIA L40S-4Q\", count: 2}]\n",
    );
    let (child, first) = waiting_apply(&env, &f);
    assert!(
        first.contains("parent 0000:3d:00.0 has not published its types yet"),
        "{first}"
    );
    env.sim.control(&format!("vgpud {PF}")).unwrap();
    let out = finish(child);
    assert!(
        out.ends_with("Applied 2 change(s) to match profile 'p'.\n"),
        "{out}"
    );
    assert_eq!(env.vgpus().len(), 2);
}

#[test]
fn apply_waits_for_vfs_enabled_late() {
    let Some(env) = l40s("vfio-late-vfs") else {
        return;
    };
    let f = env.file(
        "d.yaml",
        "version: 1\nprofiles:\n  p:\n    - parents: \"0000:5e:00.0\"\n      devices: [{type: \"NVIDIA L40S-4Q\", count: 1}]\n",
    );
    let (child, first) = waiting_apply(&env, &f);
    assert!(
        first.contains("parent 0000:5e:00.0 has SR-IOV disabled"),
        "{first}"
    );
    assert!(first.contains("sriov-manage -e 0000:5e:00.0"), "{first}");
    // The SR-IOV unit (sriov-manage -e) runs.
    std::fs::write(
        env.path(&format!("sys/bus/pci/devices/{PF2}/sriov_numvfs")),
        "32",
    )
    .unwrap();
    let out = finish(child);
    assert_eq!(
        out,
        "+ create   0000:5e:00.0 1150 (NVIDIA L40S-4Q) 0000:5e:00.4\n\
         Applied 1 change(s) to match profile 'p'.\n"
    );
}

#[test]
fn vf_records_are_taken_over_and_kept_while_sriov_is_disabled() {
    let Some(env) = l40s("vfio-keep-records") else {
        return;
    };
    let numvfs = env.path(&format!("sys/bus/pci/devices/{PF2}/sriov_numvfs"));
    std::fs::write(&numvfs, "32").unwrap();
    let f = env.file(
        "d.yaml",
        "version: 1\nprofiles:\n  p:\n    - parents: \"0000:5e:00.0\"\n      optional: true\n      devices: [{type: \"NVIDIA L40S-4Q\", count: 1}]\n",
    );
    env.ok(&["vgpu", "create", "-p", PF2, "-t", "L40S-4Q"]);
    env.ok(&["vgpu", "create", "-p", PF2, "-t", "L40S-4Q"]);
    env.ok(&["vgpu", "remove", "--vf", "0000:5e:00.4"]);
    // The hand-made vGPU on 00.5 is taken over and recorded, though nothing changes.
    assert_eq!(
        env.ok(&["apply", "-f", &f, "-c", "p"]),
        "No changes: the host matches profile 'p'.\n"
    );
    let state = env.path("var/lib/mdevkit/state.json");
    let recorded = std::fs::read_to_string(&state).unwrap();
    assert!(recorded.contains("\"vf\": \"0000:5e:00.5\""), "{recorded}");
    let two = env.file(
        "two.yaml",
        "version: 1\nprofiles:\n  p:\n    - parents: \"0000:5e:00.0\"\n      optional: true\n      devices: [{type: \"NVIDIA L40S-4Q\", count: 2}]\n",
    );
    assert_eq!(
        env.ok(&["apply", "-f", &two, "-c", "p"]),
        "+ create   0000:5e:00.0 1150 (NVIDIA L40S-4Q) 0000:5e:00.4\n\
         Applied 1 change(s) to match profile 'p'.\n"
    );
    // SR-IOV goes off (a reboot before the SR-IOV unit ran); an apply meanwhile (the entry
    // is optional) has nothing to do and must not forget the VFs.
    std::fs::write(&numvfs, "0").unwrap();
    env.ok(&["apply", "-f", &two, "-c", "p"]);
    env.ok(&[
        "apply",
        "-f",
        &env.file("other.yaml", "version: 1\nprofiles:\n  p: []\n"),
        "-c",
        "p",
    ]);
    let recorded = std::fs::read_to_string(&state).unwrap();
    assert!(recorded.contains("\"vf\": \"0000:5e:00.4\""), "{recorded}");
    assert!(recorded.contains("\"vf\": \"0000:5e:00.5\""), "{recorded}");
}

#[test]
fn after_a_reboot_apply_puts_each_vgpu_back_on_its_vf() {
    let Some(env) = l40s("vfio-reboot") else {
        return;
    };
    // Mixed-size mode lets an administrator's 8Q sit on the first VF beside the file's 4Qs.
    env.sim.control(&format!("mixed-size {PF} on")).unwrap();
    env.ok(&["vgpu", "create", "-p", PF, "-t", "L40S-8Q"]);
    let f = env.file(
        "d.yaml",
        "version: 1\nprofiles:\n  p:\n    - parents: \"0000:3d:00.0\"\n      devices: [{type: \"NVIDIA L40S-4Q\", count: 2}]\n",
    );
    assert_eq!(
        env.ok(&["apply", "-f", &f, "-c", "p"]),
        "+ create   0000:3d:00.0 1150 (NVIDIA L40S-4Q) 0000:3d:00.5\n\
         + create   0000:3d:00.0 1150 (NVIDIA L40S-4Q) 0000:3d:00.6\n\
         Applied 2 change(s) to match profile 'p'.\n"
    );
    let state = std::fs::read_to_string(env.path("var/lib/mdevkit/state.json")).unwrap();
    assert!(state.contains("\"vf\": \"0000:3d:00.5\""), "{state}");
    env.reboot_gpu(PF);
    assert!(env.vgpus().is_empty());
    // Not the first free VFs (00.4, 00.5): the ones VM definitions name.
    assert_eq!(
        env.ok(&["apply", "-f", &f, "-c", "p"]),
        "+ create   0000:3d:00.0 1150 (NVIDIA L40S-4Q) 0000:3d:00.5\n\
         + create   0000:3d:00.0 1150 (NVIDIA L40S-4Q) 0000:3d:00.6\n\
         Applied 2 change(s) to match profile 'p'.\n"
    );
}

#[test]
fn one_file_applies_an_mdev_gpu_and_a_vendor_vfio_gpu() {
    let Some(env) = mixed("vfio-both") else {
        return;
    };
    let f = env.file(
        "d.yaml",
        "version: 1\ndefault-profile: p\nprofiles:\n  p:\n    - parents: {vendor: \"0x10de\", device: \"0x13f2\"}\n      devices: [{type: \"GRID M60-0Q\", count: 2}]\n    - parents: {vendor: \"0x10de\", device: \"0x26b9\"}\n      devices: [{type: \"NVIDIA L40S-4Q\", count: 3}]\n",
    );
    golden("vfio_both_types.txt", &env.ok(&["types"]));
    golden("vfio_both_plan.txt", &env.expect(2, &["plan", "-f", &f]));
    golden(
        "vfio_both_plan.json",
        &env.expect(2, &["plan", "-f", &f, "--output", "json"]),
    );
    let out = env.ok(&["apply", "-f", &f]);
    assert!(
        out.ends_with("Applied 7 change(s) to match profile 'p'.\n"),
        "{out}"
    );
    assert_eq!(env.active().len(), 2);
    assert_eq!(env.vgpus().len(), 3);
    golden("vfio_both_list.txt", &env.ok(&["list"]));
    assert_eq!(
        env.ok(&["apply", "-f", &f]),
        "No changes: the host matches profile 'p'.\n"
    );
    env.ok(&["assert", "-f", &f]);
    // Export names the mdevs by UUID and the vGPUs by count and type name.
    let exported = env.ok(&["export"]);
    golden("vfio_both_export.yaml", &exported);
    let e = env.file("exported.yaml", &exported);
    assert_eq!(
        env.ok(&["plan", "-f", &e]),
        "No changes: the host matches profile 'exported'.\n"
    );
    // Also on a host that has never been applied to (no state file): nothing to change.
    std::fs::remove_file(env.path("var/lib/mdevkit/state.json")).unwrap();
    assert_eq!(
        env.ok(&["plan", "-f", &e]),
        "No changes: the host matches profile 'exported'.\n"
    );
}
