//! `mdevctl types` on well-formed hosts: text and JSON bytes, optional name and
//! description, sorting, the parent filter and parents with zero types (spec §3.5, §4.2).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;

#[test]
fn types_text_golden() {
    let root = standard_host();
    let t = mdevctl(&root, &["types"]);
    t.assert_clean();
    golden("types.txt", &t.stdout);
}

#[test]
fn types_json_golden() {
    let root = standard_host();
    let t = mdevctl(&root, &["types", "--dumpjson"]);
    t.assert_clean();
    assert!(!t.stdout.ends_with('\n'));
    golden("types.json", &t.stdout);
    let v: serde_json::Value = serde_json::from_str(&t.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[test]
fn types_text_omits_absent_name_and_description() {
    let root = FakeRoot::new();
    root.parent("mtty")
        .mdev_type("mtty", "mtty-2", TypeSpec::new(12, "vfio-pci"));
    let t = mdevctl(&root, &["types"]);
    t.assert_clean();
    assert_eq!(
        t.stdout,
        "mtty\n  mtty-2\n    Available instances: 12\n    Device API: vfio-pci\n"
    );
}

#[test]
fn types_json_omits_absent_name_and_description() {
    let root = FakeRoot::new();
    root.parent("mtty")
        .mdev_type("mtty", "mtty-2", TypeSpec::new(12, "vfio-pci"));
    let t = mdevctl(&root, &["types", "--dumpjson"]);
    t.assert_clean();
    assert_eq!(
        t.stdout,
        "[\n  {\n    \"mtty\": [\n      {\n        \"mtty-2\": {\n          \
         \"available_instances\": 12,\n          \"device_api\": \"vfio-pci\"\n        \
         }\n      }\n    ]\n  }\n]"
    );
}

#[test]
fn types_empty_name_and_description_files_count_as_absent() {
    let root = FakeRoot::new();
    root.parent("mtty").mdev_type(
        "mtty",
        "mtty-1",
        TypeSpec::new(1, "vfio-pci").name("  ").description("\n"),
    );
    let t = mdevctl(&root, &["types"]);
    t.assert_clean();
    assert_eq!(
        t.stdout,
        "mtty\n  mtty-1\n    Available instances: 1\n    Device API: vfio-pci\n"
    );
    let j = mdevctl(&root, &["types", "--dumpjson"]);
    assert!(!j.stdout.contains("\"name\"") && !j.stdout.contains("\"description\""));
}

#[test]
fn types_name_only_and_description_only() {
    let root = FakeRoot::new();
    root.parent("p")
        .mdev_type("p", "a", TypeSpec::new(1, "vfio-pci").name("Alpha"))
        .mdev_type("p", "b", TypeSpec::new(2, "vfio-ccw").description("Beta"));
    let t = mdevctl(&root, &["types"]);
    t.assert_clean();
    assert_eq!(
        t.stdout,
        "p\n  a\n    Available instances: 1\n    Device API: vfio-pci\n    Name: Alpha\n  \
         b\n    Available instances: 2\n    Device API: vfio-ccw\n    Description: Beta\n"
    );
}

#[test]
fn types_multiline_description_is_joined_with_commas() {
    let root = FakeRoot::new();
    root.parent("0000:00:02.0").mdev_type(
        "0000:00:02.0",
        "i915-GVTg_V5_4",
        TypeSpec::new(2, "vfio-pci").description(
            "low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\nresolution: 1920x1200\n",
        ),
    );
    let t = mdevctl(&root, &["types"]);
    t.assert_clean();
    assert!(
        t.stdout.ends_with(
            "    Description: low_gm_size: 128MB, high_gm_size: 512MB, fence: 4, \
             resolution: 1920x1200\n"
        ),
        "{}",
        t.stdout
    );
    let j = mdevctl(&root, &["types", "--dumpjson"]);
    assert!(j.stdout.contains(
        "\"description\": \"low_gm_size: 128MB, high_gm_size: 512MB, fence: 4, resolution: 1920x1200\""
    ));
}

#[test]
fn types_values_are_trimmed() {
    let root = FakeRoot::new();
    root.parent("p").mdev_type(
        "p",
        "t",
        TypeSpec {
            available_instances: Some("  7 ".into()),
            device_api: Some(" vfio-pci\t".into()),
            name: Some("\tN ".into()),
            description: Some("\n d \n".into()),
        },
    );
    let t = mdevctl(&root, &["types"]);
    t.assert_clean();
    assert_eq!(
        t.stdout,
        "p\n  t\n    Available instances: 7\n    Device API: vfio-pci\n    Name: N\n    \
         Description: d\n"
    );
}

#[test]
fn types_negative_available_instances_are_printed() {
    let root = FakeRoot::new();
    root.parent("p")
        .mdev_type("p", "t", TypeSpec::new(-1, "vfio-pci"));
    let t = mdevctl(&root, &["types"]);
    t.assert_clean();
    assert!(
        t.stdout.contains("    Available instances: -1\n"),
        "{}",
        t.stdout
    );
    let j = mdevctl(&root, &["types", "--dumpjson"]);
    assert!(
        j.stdout.contains("\"available_instances\": -1,"),
        "{}",
        j.stdout
    );
}

#[test]
fn types_parent_with_zero_types_prints_parent_line_only() {
    let root = FakeRoot::new();
    root.parent("matrix");
    let t = mdevctl(&root, &["types"]);
    t.assert_clean();
    assert_eq!(t.stdout, "matrix\n");
    let j = mdevctl(&root, &["types", "--dumpjson"]);
    j.assert_clean();
    assert_eq!(j.stdout, "[\n  {\n    \"matrix\": []\n  }\n]");
}

#[test]
fn types_no_parents_prints_nothing_or_empty_array() {
    let root = FakeRoot::new();
    let t = mdevctl(&root, &["types"]);
    t.assert_clean();
    assert_eq!(t.stdout, "");
    assert_eq!(mdevctl(&root, &["types", "--dumpjson"]).stdout, "[]");
}

#[test]
fn types_parent_filter_selects_one_parent() {
    let root = standard_host();
    let t = mdevctl(&root, &["types", "-p", "mtty"]);
    t.assert_clean();
    assert!(t.stdout.starts_with("mtty\n  mtty-1\n"), "{}", t.stdout);
    assert!(!t.stdout.contains("matrix") && !t.stdout.contains("0000:00:02.0"));
    let long = mdevctl(&root, &["types", "--parent=mtty"]);
    assert_eq!(long.stdout, t.stdout);
    let j = mdevctl(&root, &["types", "-p", "mtty", "--dumpjson"]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    let parents: Vec<&String> = v[0].as_object().unwrap().keys().collect();
    assert_eq!(parents, ["mtty"]);
}

#[test]
fn types_missing_parent_prints_nothing_or_empty_array() {
    let root = standard_host();
    let t = mdevctl(&root, &["types", "-p", "nope"]);
    t.assert_clean();
    assert_eq!(t.stdout, "");
    let j = mdevctl(&root, &["types", "-p", "nope", "--dumpjson"]);
    j.assert_clean();
    assert_eq!(j.stdout, "[]");
}

#[test]
fn types_sorts_parents_and_types_bytewise() {
    let root = FakeRoot::new();
    for p in ["b", "B", "0.0.0313"] {
        root.parent(p);
        for ty in ["z", "a-2", "A", "a-10"] {
            root.mdev_type(p, ty, TypeSpec::new(1, "x"));
        }
    }
    let t = mdevctl(&root, &["types"]);
    t.assert_clean();
    let order: Vec<&str> = t
        .stdout
        .lines()
        .filter(|l| !l.starts_with("    "))
        .map(str::trim)
        .collect();
    let types = ["A", "a-10", "a-2", "z"];
    let mut want = Vec::new();
    for p in ["0.0.0313", "B", "b"] {
        want.push(p);
        want.extend(types);
    }
    assert_eq!(order, want);
}

#[test]
fn types_non_directory_entries_in_supported_types_are_ignored() {
    let root = FakeRoot::new();
    root.parent("mtty")
        .mdev_type("mtty", "mtty-1", TypeSpec::new(1, "vfio-pci"));
    root.write(
        format!(
            "{}/mdev_supported_types/stray",
            FakeRoot::parent_dir("mtty")
        ),
        "x\n",
    );
    let t = mdevctl(&root, &["types"]);
    t.assert_clean();
    assert_eq!(
        t.stdout,
        "mtty\n  mtty-1\n    Available instances: 1\n    Device API: vfio-pci\n"
    );
}
