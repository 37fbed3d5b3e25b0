//! mdevkit's vendor-VFIO library (`mdevkit::nvidia_vf`) against mdev-sim's mounted L40S host:
//! discovery, create/remove, each refusal's message, and the listing bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use mdev_sim::{MountedSim, Profile, Sim};
use mdevkit::nvidia_vf::{self, listing, PciAddress, Removed, TypeSelector, VgpuError};
use mdevkit::{Host, Roots};

use crate::common::golden;

const PF: &str = "0000:3d:00.0";
const PF2: &str = "0000:5e:00.0";

/// A root with `sys` (the mounted profile) and `proc` (plain directories standing for the
/// processes that hold VFIO devices).
struct Env {
    root: PathBuf,
    sim: Option<MountedSim>,
    /// Removed after the simulator is unmounted (`Drop` below, then field drop).
    _dir: tempfile::TempDir,
    host: Host,
}

impl Env {
    fn new(test: &str, profile: Profile) -> Option<Env> {
        if !mdev_sim::fuse_for_test(test).unwrap() {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("mdevkit-vf-{test}-"))
            .tempdir()
            .unwrap();
        let root = dir.path().to_path_buf();
        mdev_sim::prepare_env_root(&root).unwrap();
        std::fs::create_dir_all(root.join("proc")).unwrap();
        let sim = Sim::mount(&root.join("sys"), profile).unwrap();
        let host = Host::new(Roots::under(&root));
        Some(Env {
            root,
            sim: Some(sim),
            _dir: dir,
            host,
        })
    }

    fn l40s(test: &str) -> Option<Env> {
        Env::new(test, Profile::builtin("l40s").unwrap())
    }

    fn sim(&self) -> &MountedSim {
        self.sim.as_ref().unwrap()
    }

    fn sys(&self, rel: &str) -> PathBuf {
        self.root.join("sys").join(rel)
    }

    fn current(&self, vf: &str) -> String {
        std::fs::read_to_string(self.sys(&format!("bus/pci/devices/{vf}/nvidia/current_vgpu_type")))
            .unwrap()
    }

    fn create(&self, pf: &str, ty: &str, vf: Option<&str>) -> Result<String, VgpuError> {
        nvidia_vf::create(
            &self.host,
            addr(pf),
            &ty.parse::<TypeSelector>().unwrap(),
            vf.map(addr),
        )
        .map(|c| format!("{} {} {}", c.vf, c.vgpu_type.id, c.vgpu_type.name))
    }

    /// A VM opens the VF: the driver sees the VFIO device open, and a process in `proc` has
    /// its group file open (what mdevkit looks at).
    fn hold(&self, vf: &str, group: u32) {
        self.sim().control(&format!("vf-open {vf} on")).unwrap();
        let fd = self.root.join("proc/4242/fd");
        std::fs::create_dir_all(&fd).unwrap();
        std::os::unix::fs::symlink(format!("/dev/vfio/{group}"), fd.join(group.to_string()))
            .unwrap();
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        drop(self.sim.take());
    }
}

fn addr(s: &str) -> PciAddress {
    s.parse().unwrap()
}

fn message(r: Result<impl std::fmt::Debug, VgpuError>) -> String {
    mdevkit::error::chain(&r.unwrap_err())
}

#[test]
fn nvidia_vf_discovery_finds_vendor_vfio_gpus_only() {
    let Some(env) = Env::l40s("vf-discover") else {
        return;
    };
    let gpus = nvidia_vf::discover(&env.host).unwrap();
    let pfs: Vec<String> = gpus.iter().map(|g| g.pf.to_string()).collect();
    assert_eq!(pfs, [PF, PF2]);
    assert_eq!(gpus[0].vfs.len(), 32);
    assert_eq!(gpus[0].vfs[31].address.to_string(), "0000:3d:04.3");
    assert_eq!(gpus[0].pci_id, "10de:26b9");
    assert!(gpus[1].vfs.is_empty());
    // A VF or a missing device is not a vendor-VFIO GPU, and says why.
    assert_eq!(
        message(nvidia_vf::gpu(&env.host, addr("0000:3d:00.4"))),
        "0000:3d:00.4 is not an NVIDIA GPU on the vendor-specific VFIO path: it is a VF; give its PF"
    );
    assert_eq!(
        message(nvidia_vf::gpu(&env.host, addr("0000:99:00.0"))),
        "0000:99:00.0 is not an NVIDIA GPU on the vendor-specific VFIO path: no such PCI device"
    );
    // An mdev-only host has none.
    let Some(mdev) = Env::new("vf-discover-mdev", Profile::builtin("nvidia").unwrap()) else {
        return;
    };
    assert!(nvidia_vf::discover(&mdev.host).unwrap().is_empty());
}

#[test]
fn nvidia_vf_create_picks_a_free_vf_and_remove_frees_it() {
    let Some(env) = Env::l40s("vf-create") else {
        return;
    };
    assert_eq!(
        env.create(PF, "NVIDIA L40S-4Q", None).unwrap(),
        "0000:3d:00.4 1150 NVIDIA L40S-4Q"
    );
    assert_eq!(env.current("0000:3d:00.4"), "1150\n");
    // By id, short name, KubeVirt's name; the next free VF each time.
    assert_eq!(
        env.create(PF, "1150", None).unwrap(),
        "0000:3d:00.5 1150 NVIDIA L40S-4Q"
    );
    assert_eq!(
        env.create(PF, "l40s-4q", Some("0000:3d:01.0")).unwrap(),
        "0000:3d:01.0 1150 NVIDIA L40S-4Q"
    );
    assert_eq!(
        env.create(PF, "NVIDIA_L40S-4Q", None).unwrap(),
        "0000:3d:00.6 1150 NVIDIA L40S-4Q"
    );
    assert_eq!(
        nvidia_vf::remove(&env.host, addr("0000:3d:00.5")).unwrap(),
        Removed::Destroyed("1150".parse().unwrap())
    );
    assert_eq!(env.current("0000:3d:00.5"), "0\n");
    // Removing again is not an error: there is nothing to do, and nothing is written.
    assert_eq!(
        nvidia_vf::remove(&env.host, addr("0000:3d:00.5")).unwrap(),
        Removed::AlreadyFree
    );
    // A VF that has a vGPU is refused by name.
    assert_eq!(
        message(env.create(PF, "1150", Some("0000:3d:00.4"))),
        "0000:3d:00.4 already has vGPU type 1150: remove it first (`mdevkit vgpu remove --vf 0000:3d:00.4`)"
    );
}

#[test]
fn nvidia_vf_unknown_type_lists_what_is_creatable() {
    let Some(env) = Env::l40s("vf-unknown") else {
        return;
    };
    let idle = message(env.create(PF, "NVIDIA L40S-5Q", None));
    assert!(
        idle.starts_with(
            "type 'NVIDIA L40S-5Q' is not creatable on 0000:3d:00.0 now; creatable now: \
             1145 (NVIDIA L40S-1B), 1146 (NVIDIA L40S-2B), 1147 (NVIDIA L40S-1Q), "
        ),
        "{idle}"
    );
    assert!(
        idle.ends_with(", 1166 (NVIDIA L40S-48A), 2164 (NVIDIA L40S-3B)"),
        "{idle}"
    );
    env.create(PF, "1150", None).unwrap();
    // Equal-size mode: only the size in use is left, and the message says what holds it.
    assert_eq!(
        message(env.create(PF, "L40S-48Q", None)),
        "type 'L40S-48Q' is not creatable on 0000:3d:00.0 now; creatable now: 1150 (NVIDIA L40S-4Q); \
         the GPU hosts 0000:3d:00.4 (1150 NVIDIA L40S-4Q)"
    );
    assert_eq!(
        "".parse::<TypeSelector>().unwrap_err().to_string(),
        "invalid vGPU type name '': expected a type id such as 1150 or a name such as 'NVIDIA L40S-4Q'"
    );
}

#[test]
fn nvidia_vf_sriov_disabled_says_how_and_is_never_enabled() {
    let Some(env) = Env::l40s("vf-disabled") else {
        return;
    };
    assert_eq!(
        message(env.create(PF2, "1150", None)),
        "0000:5e:00.0 has SR-IOV disabled (0 of 32 VFs): mdevkit never enables it; run \
         `/usr/lib/nvidia/sriov-manage -e 0000:5e:00.0` (after nvidia-vgpud and nvidia-vgpu-mgr \
         are running), then retry"
    );
    assert_eq!(
        std::fs::read_to_string(env.sys("bus/pci/devices/0000:5e:00.0/sriov_numvfs")).unwrap(),
        "0\n"
    );
}

#[test]
fn nvidia_vf_full_gpu_names_what_holds_it() {
    let Some(env) = Env::l40s("vf-full") else {
        return;
    };
    for _ in 0..4 {
        env.create(PF, "NVIDIA L40S-12Q", None).unwrap();
    }
    env.hold("0000:3d:00.4", 41);
    assert_eq!(
        message(env.create(PF, "NVIDIA L40S-12Q", None)),
        "0000:3d:00.0 is full: every VF has a vGPU or the framebuffer is taken; it holds \
         0000:3d:00.4 (1153 NVIDIA L40S-12Q, in use by a VM), 0000:3d:00.5 (1153 NVIDIA L40S-12Q), \
         0000:3d:00.6 (1153 NVIDIA L40S-12Q), 0000:3d:00.7 (1153 NVIDIA L40S-12Q)"
    );
}

#[test]
fn nvidia_vf_foreign_and_non_nvidia_vfs_are_refused_by_name() {
    let Some(env) = Env::l40s("vf-foreign") else {
        return;
    };
    // The second GPU's VFs exist once SR-IOV is on there (as sriov-manage -e would do).
    std::fs::write(env.sys("bus/pci/devices/0000:5e:00.0/sriov_numvfs"), "32").unwrap();
    assert_eq!(
        message(env.create(PF, "1150", Some("0000:5e:00.4"))),
        "0000:5e:00.4 is a VF of 0000:5e:00.0, not of 0000:3d:00.0"
    );
    for not_vf in [PF, "0000:99:00.1"] {
        assert_eq!(
            message(env.create(PF, "1150", Some(not_vf))),
            format!(
                "{not_vf} is not an NVIDIA vendor-VFIO VF (no physfn, no nvidia driver, or no nvidia/current_vgpu_type)"
            )
        );
        assert_eq!(
            message(nvidia_vf::remove(&env.host, addr(not_vf))),
            format!(
                "{not_vf} is not an NVIDIA vendor-VFIO VF (no physfn, no nvidia driver, or no nvidia/current_vgpu_type)"
            )
        );
    }
    assert_eq!(
        "0000:3d:00.4/../x"
            .parse::<PciAddress>()
            .unwrap_err()
            .to_string(),
        "invalid PCI address name '0000:3d:00.4/../x': expected DDDD:BB:DD.F such as 0000:3d:00.4"
    );
}

#[test]
fn nvidia_vf_vf_held_by_a_vm_is_never_touched() {
    let Some(env) = Env::l40s("vf-held") else {
        return;
    };
    env.create(PF, "1150", None).unwrap();
    // Seen in /proc only (the driver would accept the write): refused before any write.
    let fd = env.root.join("proc/77/fd");
    std::fs::create_dir_all(&fd).unwrap();
    std::os::unix::fs::symlink("/dev/vfio/devices/vfio41", fd.join("3")).unwrap();
    assert_eq!(
        message(nvidia_vf::remove(&env.host, addr("0000:3d:00.4"))),
        "0000:3d:00.4 is in use by a VM (its VFIO device is open): stop the VM first"
    );
    assert_eq!(env.current("0000:3d:00.4"), "1150\n");
    assert!(nvidia_vf::held_by_vm(&env.host, addr("0000:3d:00.4")));
    assert_eq!(
        message(env.create(PF, "1150", Some("0000:3d:00.4"))),
        "0000:3d:00.4 is in use by a VM (its VFIO device is open): stop the VM first"
    );
    std::fs::remove_dir_all(env.root.join("proc/77")).unwrap();
    // Open where mdevkit cannot see it: the driver's EPERM, re-read, is explained the same way.
    env.sim().control("vf-open 0000:3d:00.4 on").unwrap();
    assert_eq!(
        message(nvidia_vf::remove(&env.host, addr("0000:3d:00.4"))),
        "0000:3d:00.4 is in use by a VM (its VFIO device is open): stop the VM first"
    );
    // The VM stopped, its plugin has not exited: EBUSY means retry soon.
    env.sim().control("vf-open 0000:3d:00.4 linger").unwrap();
    assert_eq!(
        message(nvidia_vf::remove(&env.host, addr("0000:3d:00.4"))),
        "0000:3d:00.4 is busy: its VM has just stopped and nvidia-vgpu-mgr's plugin has not \
         exited yet, or a VM mdevkit cannot see has it open; retry in a few seconds"
    );
    env.sim().control("vf-open 0000:3d:00.4 off").unwrap();
    nvidia_vf::remove(&env.host, addr("0000:3d:00.4")).unwrap();
}

#[test]
fn nvidia_vf_driver_refusal_and_late_types_are_explained() {
    let mut profile = Profile::builtin("l40s").unwrap();
    profile.pci_gpus[1].enabled_vfs = 32;
    profile.pci_gpus[1].types_published = false;
    let Some(env) = Env::new("vf-refused", profile) else {
        return;
    };
    assert_eq!(
        message(env.create(PF2, "1150", None)),
        "0000:5e:00.0 has no vGPU types yet (creatable_vgpu_types lists none on an idle GPU): \
         is nvidia-vgpud running? Restarting it may help"
    );
    env.sim().control("vgpud 0000:5e:00.0").unwrap();
    env.sim()
        .control("fail-write bus/pci/devices/0000:5e:00.4/nvidia/current_vgpu_type EIO")
        .unwrap();
    let refused = message(env.create(PF2, "1150", None));
    assert!(
        refused.starts_with(
            "the driver refused type 1150 on 0000:5e:00.4 (EIO; `dmesg | grep NVRM` has its reason); \
             creatable there now: 1145 (NVIDIA L40S-1B), "
        ),
        "{refused}"
    );
    assert_eq!(env.current("0000:5e:00.4"), "0\n");
    env.create(PF2, "1150", None).unwrap();
}

#[test]
fn nvidia_vf_listing_text_and_json_bytes() {
    let Some(env) = Env::l40s("vf-listing") else {
        return;
    };
    env.create(PF, "NVIDIA L40S-8Q", None).unwrap();
    env.create(PF, "NVIDIA L40S-8Q", Some("0000:3d:01.0"))
        .unwrap();
    env.hold("0000:3d:01.0", 45);
    let gpus = nvidia_vf::discover(&env.host).unwrap();
    golden("nvidia_vf_list.txt", &listing::text(&gpus));
    golden("nvidia_vf_list.json", &listing::json(&gpus));
}

#[test]
fn nvidia_vf_rfc_driver_lists_and_errnos_are_understood() {
    let mut profile = Profile::builtin("l40s").unwrap();
    profile.pci_gpus[0].driver = mdev_sim::DriverVariant::Rfc;
    let Some(env) = Env::new("vf-rfc", profile) else {
        return;
    };
    env.create(PF, "NVIDIA L40S-12Q", None).unwrap();
    // The free VFs now list one line without a header: still parsed.
    assert_eq!(
        env.create(PF, "L40S-12Q", None).unwrap(),
        "0000:3d:00.5 1153 NVIDIA L40S-12Q"
    );
    assert_eq!(
        message(env.create(PF, "L40S-12A", None)),
        "type 'L40S-12A' is not creatable on 0000:3d:00.0 now; creatable now: 1153 (NVIDIA L40S-12Q); \
         the GPU hosts 0000:3d:00.4 (1153 NVIDIA L40S-12Q), 0000:3d:00.5 (1153 NVIDIA L40S-12Q)"
    );
    // ENOSPC from the write (a sibling took the room meanwhile) is a full GPU.
    env.sim()
        .control("fail-write bus/pci/devices/0000:3d:00.6/nvidia/current_vgpu_type ENOSPC")
        .unwrap();
    assert!(message(env.create(PF, "1153", None)).starts_with("0000:3d:00.0 is full: "));
    env.create(PF, "1153", None).unwrap();
    env.create(PF, "1153", None).unwrap();
    // Full: every list is empty, so the names of the types in use are unknown.
    assert_eq!(
        message(env.create(PF, "1153", None)),
        "0000:3d:00.0 is full: every VF has a vGPU or the framebuffer is taken; it holds \
         0000:3d:00.4 (1153), 0000:3d:00.5 (1153), 0000:3d:00.6 (1153), 0000:3d:00.7 (1153)"
    );
    // EBUSY while open, then the removal goes through.
    env.sim().control("vf-open 0000:3d:00.4 on").unwrap();
    assert!(message(nvidia_vf::remove(&env.host, addr("0000:3d:00.4"))).contains("is busy"));
    env.sim().control("vf-open 0000:3d:00.4 off").unwrap();
    nvidia_vf::remove(&env.host, addr("0000:3d:00.4")).unwrap();
}

#[test]
fn nvidia_vf_mdevctl_stays_mdev_only() {
    let Some(env) = Env::l40s("vf-mdevctl") else {
        return;
    };
    env.create(PF, "1150", None).unwrap();
    // mdevctl sees no parent and no device on a vendor-VFIO host: empty output, success.
    for args in [
        &["types"][..],
        &["list"],
        &["list", "--defined"],
        &["types", "--dumpjson"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mdevctl"))
            .args(args)
            .env("MDEVCTL_ENV_ROOT", &env.root)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.trim().is_empty() || stdout.trim() == "[]",
            "{args:?}: {stdout}"
        );
        assert!(out.stderr.is_empty(), "{args:?}: {out:?}");
    }
}
