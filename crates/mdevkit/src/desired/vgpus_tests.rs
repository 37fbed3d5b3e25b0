//! The vendor-VFIO half of the planner against hand-made GPUs: taking over, held VFs,
//! pruning, the state file's VF preference, and the problems that `--wait` waits out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use super::file::parse;
use super::plan::{plan, Plan, PlanError, PlanInput, PlanOptions, Problem};
use super::render::vgpu_step_line;
use super::vgpus::VgpuRecord;
use crate::nvidia_vf::{PciAddress, VgpuType};
use crate::observed::{
    BackendKind, Observed, ObservedParent, ObservedVf, PciIds, VfParent, VfType,
};

const PF: &str = "0000:3d:00.0";

fn addr(s: &str) -> PciAddress {
    s.parse().unwrap()
}

fn t4q() -> VgpuType {
    VgpuType {
        id: "1150".parse().unwrap(),
        name: "NVIDIA L40S-4Q".into(),
    }
}

/// A GPU with 4 VFs (`3d:00.4`-`3d:00.7`); `vgpus[i]` is VF i's: (has 4Q, held by a VM).
fn gpu(vgpus: &[(bool, bool)], enabled: bool) -> Observed {
    let vfs: Vec<ObservedVf> = (0..4)
        .map(|i| {
            let (has, held) = vgpus.get(i).copied().unwrap_or((false, false));
            ObservedVf {
                address: addr(&format!("0000:3d:00.{}", i + 4)),
                vgpu: has.then(t4q),
                held_by_vm: held,
            }
        })
        .collect();
    let free = u32::try_from(vfs.iter().filter(|v| v.vgpu.is_none()).count()).unwrap();
    let mut o = Observed::default();
    o.parents.insert(
        PF.parse().unwrap(),
        ObservedParent {
            backend: BackendKind::NvidiaVf,
            pci: Some(PciIds {
                vendor: 0x10de,
                device: 0x26b9,
            }),
            driver: Some("nvidia".into()),
            types: None,
            vf: Some(VfParent {
                pf: addr(PF),
                total_vfs: 4,
                enabled_vfs: if enabled { 4 } else { 0 },
                types: enabled.then(|| {
                    vec![VfType {
                        vgpu_type: t4q(),
                        available_at_most: free,
                    }]
                }),
                vfs: if enabled { vfs } else { Vec::new() },
            }),
        },
    );
    o
}

fn run(count: u32, o: &Observed, owned: &[VgpuRecord], prune: bool) -> Result<Plan, PlanError> {
    let text = format!(
        "version: 1\nprofiles:\n  p:\n    - parents: {{vendor: \"0x10de\", device: \"0x26b9\"}}\n      devices: [{{type: L40S-4Q, count: {count}}}]\n"
    );
    let file = parse("f", &text).unwrap();
    let (name, entries) = file.profile(Some("p")).unwrap();
    plan(&PlanInput {
        profile: name,
        entries,
        observed: o,
        owned: &BTreeSet::new(),
        owned_vgpus: owned,
        machine: &"0123456789abcdef0123456789abcdef".parse().unwrap(),
        options: PlanOptions {
            prune,
            no_start: false,
        },
    })
}

fn lines(p: &Plan) -> Vec<String> {
    p.vgpus.steps.iter().map(vgpu_step_line).collect()
}

fn record(vf: &str) -> VgpuRecord {
    VgpuRecord::new(addr(PF), addr(vf), &t4q())
}

#[test]
fn existing_vgpus_of_the_type_count_and_are_taken_over() {
    let o = gpu(&[(true, false)], true);
    let p = run(2, &o, &[], false).unwrap();
    assert_eq!(
        lines(&p),
        ["+ create   0000:3d:00.0 1150 (NVIDIA L40S-4Q) 0000:3d:00.5"]
    );
    let wanted: Vec<String> = p.vgpus.wanted.iter().map(|r| r.vf.to_string()).collect();
    assert_eq!(wanted, ["0000:3d:00.4", "0000:3d:00.5"]);
}

#[test]
fn new_vgpus_go_to_the_vfs_the_state_file_recorded() {
    let o = gpu(&[], true);
    let p = run(1, &o, &[record("0000:3d:00.6")], false).unwrap();
    assert_eq!(
        lines(&p),
        ["+ create   0000:3d:00.0 1150 (NVIDIA L40S-4Q) 0000:3d:00.6"]
    );
}

#[test]
fn lowering_a_count_keeps_held_vfs_and_removes_only_managed_ones() {
    // 00.4 managed, 00.5 managed and held, 00.6 the administrator's.
    let o = gpu(&[(true, false), (true, true), (true, false)], true);
    let owned = [record("0000:3d:00.4"), record("0000:3d:00.5")];
    let p = run(1, &o, &owned, false).unwrap();
    assert_eq!(
        lines(&p),
        ["- remove   0000:3d:00.0 1150 (NVIDIA L40S-4Q) 0000:3d:00.4"]
    );
    let unmanaged: Vec<String> = p.vgpus.unmanaged.iter().map(|u| u.vf.to_string()).collect();
    assert_eq!(unmanaged, ["0000:3d:00.6"]);
    // --prune removes the administrator's too, never a held one.
    let p = run(1, &o, &owned, true).unwrap();
    assert_eq!(p.vgpus.steps.len(), 2);
    assert!(p.vgpus.steps.iter().all(|s| s.vf != addr("0000:3d:00.5")));
    // Count 0 would clear the held managed VF: refused.
    let e = run(0, &o, &owned, false).unwrap_err();
    assert!(
        e.problems
            .iter()
            .any(|p| matches!(p, Problem::VgpuInUse { vf, .. } if *vf == addr("0000:3d:00.5"))),
        "{e}"
    );
}

#[test]
fn sriov_disabled_and_full_gpus_are_explained() {
    let e = run(1, &gpu(&[], false), &[], false).unwrap_err();
    assert!(e.only_missing(), "{e}");
    assert!(
        e.to_string().contains("sriov-manage -e 0000:3d:00.0"),
        "{e}"
    );
    let full = gpu(&[(true, false); 4], true);
    let e = run(5, &full, &[], false).unwrap_err();
    assert!(!e.only_missing());
    assert_eq!(
        e.to_string(),
        "parent 0000:3d:00.0, type 1150 (NVIDIA L40S-4Q): 1 more wanted but at most 0 can be \
         created now; it holds: 0000:3d:00.4 (1150 NVIDIA L40S-4Q), 0000:3d:00.5 (1150 NVIDIA \
         L40S-4Q), 0000:3d:00.6 (1150 NVIDIA L40S-4Q), 0000:3d:00.7 (1150 NVIDIA L40S-4Q)"
    );
}
