//! The planner against hand-made hosts, and a property test: a plan carried out on a model
//! of the host leaves nothing to plan, whatever the file and the starting state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::file::parse;
use super::identity::{counted_uuid, MachineId};
use super::plan::{plan, Action, Plan, PlanError, PlanInput, PlanOptions, Problem};
use crate::config::DeviceConfig;
use crate::names::{Attr, ParentName, StartMode, TypeName, Uuid};
use crate::observed::{Observed, ObservedDevice, ObservedParent, ObservedType, PciIds, Running};

const GPU0: &str = "0000:83:00.0";
const GPU1: &str = "0000:84:00.0";

fn machine() -> MachineId {
    "0123456789abcdef0123456789abcdef".parse().unwrap()
}

fn pn(s: &str) -> ParentName {
    s.parse().unwrap()
}

fn tn(s: &str) -> TypeName {
    s.parse().unwrap()
}

fn gpu(available: i64) -> ObservedParent {
    ObservedParent {
        pci: Some(PciIds {
            vendor: 0x10de,
            device: 0x13f2,
        }),
        driver: Some("nvidia".into()),
        types: Some(vec![
            ObservedType {
                id: tn("nvidia-18"),
                name: "GRID M60-0Q".into(),
                available,
            },
            ObservedType {
                id: tn("nvidia-19"),
                name: "GRID M60-1Q".into(),
                available,
            },
        ]),
        ..Default::default()
    }
}

fn host() -> Observed {
    let mut o = Observed::default();
    o.parents.insert(pn(GPU0), gpu(16));
    o.parents.insert(pn(GPU1), gpu(16));
    o.parents.insert(
        pn("matrix"),
        ObservedParent {
            types: Some(vec![ObservedType {
                id: tn("vfio_ap-passthrough"),
                name: "VFIO AP Passthrough Device".into(),
                available: 255,
            }]),
            ..Default::default()
        },
    );
    o
}

const FILE: &str = r#"
version: 1
default-profile: desktops
profiles:
  desktops:
    - parents: {vendor: "0x10de", device: "0x13f2"}
      devices:
        - {type: "GRID M60-0Q", count: 4}
    - parents: matrix
      devices:
        - uuid: 6c8ef8c3-9d8c-4c43-8d4f-5d1e0b6a9f10
          type: vfio_ap-passthrough
          attrs: [{assign_adapter: "5"}, {assign_domain: "0x47"}]
  small:
    - parents: {vendor: "0x10de", device: "0x13f2"}
      devices:
        - {type: "GRID M60-0Q", count: 2}
  lab:
    - parents: "0000:83:*"
      devices:
        - {type: nvidia-18, count: 1, start: manual}
    - parents: {driver: nvidia}
      devices:
        - {type: nvidia-19, count: 1}
"#;

fn run(
    profile: &str,
    observed: &Observed,
    owned: &BTreeSet<Uuid>,
    options: PlanOptions,
) -> Result<Plan, PlanError> {
    let file = parse("f", FILE).unwrap();
    let (name, entries) = file.profile(Some(profile)).unwrap();
    plan(&PlanInput {
        profile: name,
        entries,
        observed,
        owned,
        owned_vgpus: &[],
        machine: &machine(),
        options,
    })
}

/// Carries a plan out on the model, as the mdev backend does on a host.
fn simulate(before: &Observed, p: &Plan) -> Observed {
    let mut o = before.clone();
    for s in &p.steps {
        let d = o.devices.entry(s.uuid).or_default();
        match s.action {
            Action::Stop => d.active = None,
            Action::Undefine => {
                d.defined.remove(&s.parent);
            }
            Action::Define | Action::Modify => {
                d.defined
                    .insert(s.parent.clone(), s.config.clone().unwrap());
            }
            Action::Start => {
                assert!(d.active.is_none(), "start of a running device: {s:?}");
                d.active = Some(Running {
                    parent: s.parent.clone(),
                    mdev_type: s.mdev_type.clone(),
                });
            }
        }
        if d.active.is_none() && d.defined.is_empty() {
            o.devices.remove(&s.uuid);
        }
    }
    o
}

/// The owned set after an apply: what was owned or wanted and still exists.
fn owned_after(owned: &BTreeSet<Uuid>, p: &Plan, after: &Observed) -> BTreeSet<Uuid> {
    owned
        .iter()
        .chain(&p.wanted)
        .filter(|u| after.devices.contains_key(u))
        .copied()
        .collect()
}

fn derived(parent: &str, ty: &str, i: u32) -> Uuid {
    counted_uuid(&machine(), &pn(parent), &tn(ty), i)
}

fn actions(p: &Plan) -> Vec<(char, Uuid)> {
    p.steps
        .iter()
        .map(|s| (s.action.marker(), s.uuid))
        .collect()
}

#[test]
fn a_fresh_host_gets_every_device_defined_and_started_then_nothing() {
    let o = host();
    let none = BTreeSet::new();
    let p = run("desktops", &o, &none, PlanOptions::default()).unwrap();
    // 2 GPUs × 4 + the matrix device, each defined and started.
    assert_eq!(p.steps.len(), 18);
    assert!(p.steps[..9].iter().all(|s| s.action == Action::Define));
    assert!(p
        .steps
        .iter()
        .any(|s| s.uuid == derived(GPU1, "nvidia-18", 3)));
    assert_eq!(p.steps[0].type_name, "GRID M60-0Q");
    let after = simulate(&o, &p);
    let owned = owned_after(&none, &p, &after);
    let again = run("desktops", &after, &owned, PlanOptions::default()).unwrap();
    assert!(again.is_empty(), "{:?}", again.steps);
}

#[test]
fn lowering_a_count_removes_the_highest_indices_only() {
    let o = host();
    let none = BTreeSet::new();
    let p = run("desktops", &o, &none, PlanOptions::default()).unwrap();
    let after = simulate(&o, &p);
    let owned = owned_after(&none, &p, &after);
    let down = run("small", &after, &owned, PlanOptions::default()).unwrap();
    let removed: BTreeSet<Uuid> = down.steps.iter().map(|s| s.uuid).collect();
    let want: BTreeSet<Uuid> = [
        derived(GPU0, "nvidia-18", 2),
        derived(GPU0, "nvidia-18", 3),
        derived(GPU1, "nvidia-18", 2),
        derived(GPU1, "nvidia-18", 3),
        "6c8ef8c3-9d8c-4c43-8d4f-5d1e0b6a9f10".parse().unwrap(),
    ]
    .into();
    assert_eq!(removed, want);
    assert!(down
        .steps
        .iter()
        .all(|s| matches!(s.action, Action::Stop | Action::Undefine)));
}

#[test]
fn devices_the_file_does_not_own_are_unmanaged_unless_pruning() {
    let mut o = host();
    let hand: Uuid = "11111111-2222-4333-8444-555555555555".parse().unwrap();
    o.devices.insert(
        hand,
        ObservedDevice {
            defined: [(pn(GPU0), config("nvidia-18", StartMode::Manual, &[]))].into(),
            ..Default::default()
        },
    );
    let none = BTreeSet::new();
    let p = run("small", &o, &none, PlanOptions::default()).unwrap();
    assert!(p.steps.iter().all(|s| s.uuid != hand));
    assert_eq!(p.unmanaged.len(), 1);
    assert_eq!(p.unmanaged[0].uuid, hand);
    let pruned = run(
        "small",
        &o,
        &none,
        PlanOptions {
            prune: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(actions(&pruned).contains(&('-', hand)));
    assert!(pruned.unmanaged.is_empty());
}

fn config(ty: &str, start: StartMode, attrs: &[(&str, &str)]) -> DeviceConfig {
    DeviceConfig {
        mdev_type: tn(ty),
        start,
        attrs: attrs
            .iter()
            .map(|(n, v)| Attr {
                name: n.parse().unwrap(),
                value: (*v).into(),
            })
            .collect(),
    }
}

#[test]
fn a_type_change_on_a_running_device_stops_modifies_and_starts_it() {
    let mut o = host();
    let u = derived(GPU0, "nvidia-18", 0);
    o.devices.insert(
        u,
        ObservedDevice {
            defined: [(pn(GPU0), config("nvidia-19", StartMode::Auto, &[]))].into(),
            active: Some(Running {
                parent: pn(GPU0),
                mdev_type: tn("nvidia-19"),
            }),
            ..Default::default()
        },
    );
    let owned = [u].into();
    let p = run("small", &o, &owned, PlanOptions::default()).unwrap();
    let mine: Vec<char> = p
        .steps
        .iter()
        .filter(|s| s.uuid == u)
        .map(|s| s.action.marker())
        .collect();
    assert_eq!(mine, ['<', '~', '>']);
}

#[test]
fn selectors_by_glob_and_driver_and_manual_start() {
    let o = host();
    let p = run("lab", &o, &BTreeSet::new(), PlanOptions::default()).unwrap();
    let lines: Vec<(char, String, String)> = p
        .steps
        .iter()
        .map(|s| {
            (
                s.action.marker(),
                s.parent.to_string(),
                s.mdev_type.to_string(),
            )
        })
        .collect();
    let exp = |m: char, p: &str, t: &str| (m, p.to_owned(), t.to_owned());
    assert_eq!(
        lines,
        [
            exp('+', GPU0, "nvidia-18"),
            exp('+', GPU0, "nvidia-19"),
            exp('+', GPU1, "nvidia-19"),
            exp('>', GPU0, "nvidia-19"),
            exp('>', GPU1, "nvidia-19"),
        ]
    );
}

#[test]
fn problems_name_what_is_wrong() {
    let mut o = host();
    o.parents.remove(&pn("matrix"));
    let none = BTreeSet::new();
    let e = run("desktops", &o, &none, PlanOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "profile 'desktops', entry 1: no parent matches matrix"
    );
    assert!(e.only_missing());

    let mut o = host();
    o.parents.insert(pn(GPU1), gpu(3));
    let e = run("desktops", &o, &none, PlanOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "parent 0000:84:00.0, type nvidia-18 (GRID M60-0Q): 4 to start but 3 free; in use: no active devices on this parent"
    );
    assert!(!e.only_missing());
}

#[test]
fn an_unknown_type_lists_the_types_of_the_parent() {
    let file = parse(
        "f",
        "version: 1\nprofiles:\n  p:\n    - parents: matrix\n      devices: [{type: nvidia-18}]\n",
    )
    .unwrap();
    let (name, entries) = file.profile(Some("p")).unwrap();
    let e = plan(&PlanInput {
        profile: name,
        entries,
        observed: &host(),
        owned: &BTreeSet::new(),
        owned_vgpus: &[],
        machine: &machine(),
        options: PlanOptions::default(),
    })
    .unwrap_err();
    assert_eq!(
        e.problems,
        [Problem::UnknownType {
            at: "profile 'p', entry 0, device 0".into(),
            parent: pn("matrix"),
            wanted: "nvidia-18".into(),
            offered: "vfio_ap-passthrough (VFIO AP Passthrough Device)".into(),
        }]
    );
}

#[test]
fn a_vfio_ap_conflict_with_an_existing_device_is_refused() {
    let mut o = host();
    let other: Uuid = "22222222-3333-4444-8555-666666666666".parse().unwrap();
    o.devices.insert(
        other,
        ObservedDevice {
            defined: [(
                pn("matrix"),
                config(
                    "vfio_ap-passthrough",
                    StartMode::Manual,
                    &[("assign_domain", "71"), ("assign_adapter", "5")],
                ),
            )]
            .into(),
            ..Default::default()
        },
    );
    let e = run("desktops", &o, &BTreeSet::new(), PlanOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "vfio-ap conflict: device 6c8ef8c3-9d8c-4c43-8d4f-5d1e0b6a9f10 (profile 'desktops', entry 1, device 0) would assign APQN 05.0047, which 22222222-3333-4444-8555-666666666666 (existing) has"
    );
}

// ---- the property --------------------------------------------------------------------------

const PARENTS: [&str; 3] = ["0000:83:00.0", "0000:84:00.0", "matrix"];
const TYPES: [&str; 2] = ["nvidia-18", "nvidia-19"];

fn roomy_host() -> Observed {
    let mut o = Observed::default();
    for p in PARENTS {
        let mut g = gpu(1000);
        if p == "matrix" {
            g.pci = None;
            g.driver = Some("vfio_ap".into());
        }
        o.parents.insert(pn(p), g);
    }
    o
}

fn arb_file() -> impl Strategy<Value = String> {
    let selector = prop_oneof![
        (0..3usize).prop_map(|i| format!("\"{}\"", PARENTS[i])),
        Just("all".to_owned()),
        Just("\"0000:8*\"".to_owned()),
        Just("{vendor: \"0x10de\", device: \"0x13f2\"}".to_owned()),
        Just("{driver: vfio_ap}".to_owned()),
    ];
    let device = (0..2usize, 0..4u32, any::<bool>()).prop_map(|(t, n, auto)| {
        let start = if auto { "auto" } else { "manual" };
        format!("{{type: {}, count: {n}, start: {start}}}", TYPES[t])
    });
    let entry = (selector, prop::collection::vec(device, 0..3)).prop_map(|(s, ds)| {
        format!(
            "    - parents: {s}\n      optional: true\n      devices: [{}]\n",
            ds.join(", ")
        )
    });
    prop::collection::vec(entry, 0..4).prop_map(|es| {
        format!(
            "version: 1\nprofiles:\n  p:\n{}",
            if es.is_empty() {
                "    []\n".to_owned()
            } else {
                es.concat()
            }
        )
    })
}

/// A starting host: some derived and some foreign UUIDs, defined and/or running anywhere.
fn arb_state() -> impl Strategy<Value = (Observed, BTreeSet<Uuid>)> {
    let dev = (
        0..12u32,
        prop::option::of((0..3usize, 0..2usize, any::<bool>())),
        prop::option::of((0..3usize, 0..2usize)),
        any::<bool>(),
    );
    prop::collection::vec(dev, 0..8).prop_map(|devs| {
        let mut o = roomy_host();
        let mut owned = BTreeSet::new();
        for (k, def, act, own) in devs {
            let uuid = if k < 8 {
                derived(PARENTS[(k % 3) as usize], TYPES[(k % 2) as usize], k / 4)
            } else {
                format!("{k:08x}-0000-4000-8000-000000000000")
                    .parse()
                    .unwrap()
            };
            let d = o.devices.entry(uuid).or_default();
            if let Some((p, t, auto)) = def {
                let start = if auto {
                    StartMode::Auto
                } else {
                    StartMode::Manual
                };
                d.defined
                    .insert(pn(PARENTS[p]), config(TYPES[t], start, &[]));
            }
            if let Some((p, t)) = act {
                d.active = Some(Running {
                    parent: pn(PARENTS[p]),
                    mdev_type: tn(TYPES[t]),
                });
            }
            if d.defined.is_empty() && d.active.is_none() {
                o.devices.remove(&uuid);
            } else if own {
                owned.insert(uuid);
            }
        }
        (o, owned)
    })
}

proptest! {
    #[test]
    fn a_carried_out_plan_leaves_nothing_to_do(
        text in arb_file(),
        (start, owned) in arb_state(),
        prune in any::<bool>(),
        no_start in any::<bool>(),
    ) {
        let file = parse("f", &text).unwrap();
        let (name, entries) = file.profile(Some("p")).unwrap();
        let options = PlanOptions { prune, no_start };
        let m = machine();
        let input = |observed, owned| PlanInput {
            profile: name, entries, observed, owned, owned_vgpus: &[], machine: &m, options,
        };
        let first = match plan(&input(&start, &owned)) {
            Ok(p) => p,
            // Two entries asking for the same devices: refused before anything changes.
            Err(e) => {
                prop_assert!(e.problems.iter().all(|p| matches!(p, Problem::ClaimedTwice { .. })), "{e}");
                return Ok(());
            }
        };
        let after = simulate(&start, &first);
        let owned2 = owned_after(&owned, &first, &after);
        let second = plan(&input(&after, &owned2)).unwrap();
        prop_assert!(second.is_empty(), "{text}\nfirst: {:?}\nsecond: {:?}", first.steps, second.steps);
        prop_assert_eq!(simulate(&after, &second), after);
    }
}
