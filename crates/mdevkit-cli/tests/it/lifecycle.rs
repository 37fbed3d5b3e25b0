//! Apply, re-apply, counts, profile switches, ownership, drift and export on the demo host
//! (two GRID-like GPUs with PCI ids 10de:13f2, mtty, the vfio_ap matrix).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use crate::common::{marked, Env, GPU0, GPU1, MDEVKIT};

const AP: &str = "6c8ef8c3-9d8c-4c43-8d4f-5d1e0b6a9f10";
const HAND: &str = "11111111-2222-4333-8444-555555555555";

fn gpus(count: u32) -> String {
    format!(
        r#"version: 1
default-profile: desktops
profiles:
  desktops:
    - parents: {{vendor: "0x10de", device: "0x13f2"}}
      devices:
        - type: "GRID M60-0Q"
          count: {count}
    - parents: matrix
      devices:
        - uuid: {AP}
          type: vfio_ap-passthrough
          attrs:
            - assign_adapter: "5"
            - assign_domain: "0x47"
"#
    )
}

#[test]
fn apply_creates_every_device_and_a_second_apply_changes_nothing() {
    let Some(env) = Env::new("apply") else {
        return;
    };
    env.sim.add_parent(GPU1).unwrap();
    let f = env.file("f.yaml", &gpus(4));
    let plan = env.expect(2, &["plan", "-f", &f]);
    assert_eq!(marked(&plan, '+').len(), 9, "{plan}");
    assert!(
        plan.ends_with("18 changes to match profile 'desktops'.\n"),
        "{plan}"
    );
    let out = env.ok(&["apply", "-f", &f]);
    assert!(
        out.ends_with("Applied 18 change(s) to match profile 'desktops'.\n"),
        "{out}"
    );
    assert_eq!(env.active().len(), 9);
    assert_eq!(env.defined_uuids(), env.active());
    let parents: BTreeSet<String> = env.defined().into_iter().map(|(p, _)| p).collect();
    assert_eq!(parents, [GPU0, GPU1, "matrix"].map(String::from).into());
    // The vfio-ap device got its attributes, in order.
    let matrix =
        std::fs::read_to_string(env.sys().join(format!("bus/mdev/devices/{AP}/matrix"))).unwrap();
    assert_eq!(matrix, "05.0047\n");
    assert_eq!(
        env.ok(&["apply", "-f", &f]),
        "No changes: the host matches profile 'desktops'.\n"
    );
    assert_eq!(
        env.ok(&["plan", "-f", &f]),
        "No changes: the host matches profile 'desktops'.\n"
    );
    env.ok(&["assert", "-f", &f]);
}

#[test]
fn counting_up_and_down_keeps_the_uuids_of_the_devices_that_stay() {
    let Some(env) = Env::new("counts") else {
        return;
    };
    let two = env.file("two.yaml", &gpus(2));
    env.ok(&["apply", "-f", &two]);
    let first = env.active();
    assert_eq!(first.len(), 3);
    let four = env.file("four.yaml", &gpus(4));
    let out = env.ok(&["apply", "-f", &four]);
    assert_eq!(marked(&out, '+').len(), 2, "{out}");
    let after_up = env.active();
    assert_eq!(after_up.len(), 5);
    assert!(first.is_subset(&after_up));
    // Back to 2: exactly the two added ones go, stopped then undefined.
    let out = env.ok(&["apply", "-f", &two]);
    let added: BTreeSet<String> = after_up.difference(&first).cloned().collect();
    assert_eq!(marked(&out, '<'), added, "{out}");
    assert_eq!(marked(&out, '-'), added, "{out}");
    assert_eq!(env.active(), first);
    assert_eq!(env.defined_uuids(), first);
}

#[test]
fn switching_profiles_touches_only_the_difference() {
    let Some(env) = Env::new("switch") else {
        return;
    };
    let text = format!(
        r#"version: 1
default-profile: a
profiles:
  a:
    - &gpus
      parents: "0000:8*"
      devices: [{{type: nvidia-18, count: 2}}]
    - parents: matrix
      devices:
        - {{uuid: {AP}, type: vfio_ap-passthrough, attrs: [{{assign_adapter: "5"}}, {{assign_domain: "0x47"}}]}}
  b:
    - *gpus
    - parents: mtty
      devices: [{{type: "Dual port serial", count: 1, start: manual}}]
"#
    );
    let f = env.file("f.yaml", &text);
    env.ok(&["apply", "-f", &f]);
    let gpus: BTreeSet<String> = env.active().into_iter().filter(|u| u != AP).collect();
    assert_eq!(gpus.len(), 2);
    let out = env.ok(&["apply", "-f", &f, "-c", "b"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with(&format!(
            "< stop     matrix vfio_ap-passthrough (VFIO AP Passthrough Device) {AP}"
        )),
        "{out}"
    );
    assert!(lines[1].starts_with("- undefine matrix"), "{out}");
    assert!(
        lines[2].starts_with("+ define   mtty mtty-2 (Dual port serial) "),
        "{out}"
    );
    assert_eq!(env.active(), gpus);
    // MDEVKIT_PROFILE chooses the profile too; b is in place.
    let out = env
        .command(&["plan", "-f", &f])
        .env("MDEVKIT_PROFILE", "b")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn a_hand_defined_device_is_left_alone_and_prune_removes_it() {
    let Some(env) = Env::new("prune") else {
        return;
    };
    env.define_by_hand(
        "mtty",
        HAND,
        r#"{"mdev_type": "mtty-1", "start": "manual", "attrs": []}"#,
    );
    let f = env.file("f.yaml", &gpus(1));
    env.ok(&["apply", "-f", &f]);
    let plan = env.ok(&["plan", "-f", &f]);
    assert_eq!(
        plan,
        format!(
            "  unmanaged mtty mtty-1 (Single port serial) {HAND} (defined)\n\
             No changes: the host matches profile 'desktops'.\n"
        )
    );
    assert!(env.defined_uuids().contains(HAND));
    let pruned = env.expect(2, &["plan", "-f", &f, "--prune"]);
    assert_eq!(marked(&pruned, '-'), [HAND.to_owned()].into(), "{pruned}");
    env.ok(&["apply", "-f", &f, "--prune"]);
    assert!(!env.defined_uuids().contains(HAND));
    assert_eq!(env.active().len(), 2);
}

#[test]
fn assert_reports_drift_and_apply_repairs_it() {
    let Some(env) = Env::new("drift") else {
        return;
    };
    let f = env.file("f.yaml", &gpus(2));
    env.ok(&["apply", "-f", &f]);
    assert_eq!(
        env.ok(&["assert", "-f", &f]),
        "The host matches profile 'desktops'.\n"
    );
    let victim = env.active().into_iter().find(|u| u != AP).unwrap();
    env.remove_behind_the_back(&victim);
    let out = env.run(&["assert", "-f", &f]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(marked(&stdout, '>'), [victim.clone()].into(), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("differs from profile 'desktops' by 1 change"));
    env.ok(&["apply", "-f", &f]);
    assert!(env.active().contains(&victim));
    env.ok(&["assert", "-f", &f]);
}

#[test]
fn an_export_plans_to_no_changes() {
    let Some(env) = Env::new("export") else {
        return;
    };
    env.define_by_hand(
        "mtty",
        HAND,
        r#"{"mdev_type": "mtty-2", "start": "manual", "attrs": [{"vendor/x": "1"}]}"#,
    );
    let f = env.file("f.yaml", &gpus(3));
    env.ok(&["apply", "-f", &f]);
    for format in ["yaml", "json"] {
        let exported = env.ok(&["export", "--output", format]);
        assert!(exported.contains(HAND), "{exported}");
        let out = env.run_stdin(&["plan", "-f", "-"], &exported);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "No changes: the host matches profile 'exported'.\n",
            "{exported}"
        );
        assert_eq!(out.status.code(), Some(0));
    }
    let only_matrix = env.ok(&["export", "-p", "matrix", "--active"]);
    assert!(
        only_matrix.contains(AP) && !only_matrix.contains(HAND),
        "{only_matrix}"
    );
}

#[test]
fn the_json_plan_is_for_machines() {
    let Some(env) = Env::new("json") else {
        return;
    };
    let f = env.file("f.yaml", &gpus(1));
    let out = env.expect(2, &["plan", "-f", &f, "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["profile"], "desktops");
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 4);
    assert_eq!(changes[0]["action"], "define");
    assert_eq!(changes[0]["parent"], GPU0);
    assert_eq!(changes[0]["type"], "nvidia-18");
    assert_eq!(changes[0]["type_name"], "GRID M60-0Q");
    assert_eq!(changes[0]["config"]["start"], "auto");
    assert_eq!(changes[3]["action"], "start");
    assert_eq!(changes[3]["config"], serde_json::Value::Null);
    assert_eq!(v["unmanaged"], serde_json::json!([]));
}

/// On a terminal, apply redraws one progress line per change and clears it before the
/// result; piped (as everywhere else in these tests), stderr stays empty.
#[test]
fn apply_on_a_terminal_shows_progress_then_clears_it() {
    let Some(env) = Env::new("progress") else {
        return;
    };
    let f = env.file("f.yaml", &gpus(2));
    // script(1) runs the command on a pseudo-terminal and copies what it shows.
    let out = std::process::Command::new("script")
        .args(["-qec", &format!("'{MDEVKIT}' apply -f '{f}'"), "/dev/null"])
        .env("MDEVCTL_ENV_ROOT", env.root.path())
        .env_remove("MDEVKIT_PROFILE")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("\r\x1b[K[1/6] + define "), "{shown:?}");
    assert!(shown.contains("\r\x1b[K[6/6] > start "), "{shown:?}");
    // The progress line is erased before the result is printed.
    let after = shown.rsplit("[6/6]").next().unwrap_or_default();
    assert!(
        after.contains("\r\x1b[K+ define   0000:83:00.0"),
        "{shown:?}"
    );
    assert!(shown.contains("Applied 6 change(s)"), "{shown:?}");
    let piped = env.run(&["apply", "-f", &f, "-c", "desktops"]);
    assert!(piped.stderr.is_empty(), "{:?}", piped.stderr);
}
