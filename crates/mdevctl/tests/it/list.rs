//! `mdevctl list` on well-formed hosts: text and JSON bytes, markers, sort order, filters,
//! every UUID spelling of `-u`, and empty selections (spec §4.1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;

fn line(uuid: &str, rest: &str) -> String {
    format!("{uuid} {rest}\n")
}

#[test]
fn list_active_text_marks_defined_when_definition_file_exists() {
    let root = standard_host();
    let t = mdevctl(&root, &["list"]);
    t.assert_clean();
    let want = [
        line(U1, "0000:00:02.0 i915-GVTg_V5_4 auto (defined)"),
        // Defined on mtty as mtty-1 while active as mtty-2: the file merely exists.
        line(U2, "mtty mtty-2 manual (defined)"),
        line(U4, "mtty mtty-1 manual"),
    ]
    .concat();
    assert_eq!(t.stdout, want);
}

#[test]
fn list_defined_text_marks_active_only_when_parent_and_type_match() {
    let root = standard_host();
    let t = mdevctl(&root, &["list", "-d"]);
    t.assert_clean();
    let want = [
        line(U1, "0000:00:02.0 i915-GVTg_V5_4 auto (active)"),
        line(UA, "0000:00:02.0 i915-GVTg_V5_8 manual"),
        // U2 is active on mtty: its matrix definition has the wrong parent...
        line(U2, "matrix vfio_ap-passthrough auto"),
        line(U3, "matrix vfio_ap-passthrough manual"),
        // ...and its mtty definition the wrong type.
        line(U2, "mtty mtty-1 manual"),
    ]
    .concat();
    assert_eq!(t.stdout, want);
}

#[test]
fn list_defined_long_option_equals_short() {
    let root = standard_host();
    let short = mdevctl(&root, &["list", "-d"]);
    let long = mdevctl(&root, &["list", "--defined"]);
    long.assert_clean();
    assert_eq!(short.stdout, long.stdout);
}

#[test]
fn list_defined_verbose_prints_attrs_block_golden() {
    let root = standard_host();
    let t = mdevctl(&root, &["list", "-d", "-v"]);
    t.assert_clean();
    assert!(t
        .stdout
        .contains("  Attrs:\n    @{0}: {\"enable_display\":\"1\"}\n"));
    golden("list_defined_verbose.txt", &t.stdout);
}

#[test]
fn list_defined_clustered_dv_equals_separate_flags() {
    let root = standard_host();
    let a = mdevctl(&root, &["list", "-dv"]);
    let b = mdevctl(&root, &["list", "--verbose", "--defined"]);
    a.assert_clean();
    assert_eq!(a.stdout, b.stdout);
    assert!(a.stdout.contains("Attrs:"));
}

#[test]
fn list_active_verbose_prints_no_attrs_without_callouts() {
    let root = standard_host();
    let plain = mdevctl(&root, &["list"]);
    let verbose = mdevctl(&root, &["list", "-v"]);
    verbose.assert_clean();
    assert_eq!(verbose.stdout, plain.stdout);
    assert!(!verbose.stdout.contains("Attrs"));
}

#[test]
fn list_defined_verbose_without_attrs_prints_no_block() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "auto");
    let t = mdevctl(&root, &["list", "-dv"]);
    t.assert_clean();
    assert_eq!(t.stdout, line(U1, "mtty mtty-1 auto"));
}

#[test]
fn list_defined_verbose_prints_attr_values_raw() {
    let root = FakeRoot::new();
    root.define_attrs(
        "mtty",
        U1,
        "mtty-1",
        "manual",
        &[("a", "say \"hi\"\\n"), ("b", "two\nlines"), ("c", "ä")],
    );
    let t = mdevctl(&root, &["list", "-dv"]);
    t.assert_clean();
    let want = format!(
        "{U1} mtty mtty-1 manual\n  Attrs:\n    @{{0}}: {{\"a\":\"say \"hi\"\\n\"}}\n    \
         @{{1}}: {{\"b\":\"two\nlines\"}}\n    @{{2}}: {{\"c\":\"ä\"}}\n"
    );
    assert_eq!(t.stdout, want);
}

#[test]
fn list_defined_json_escapes_attr_values() {
    let root = FakeRoot::new();
    root.define_attrs("mtty", U1, "mtty-1", "manual", &[("a", "q\"\\\n\u{1}ä/")]);
    let t = mdevctl(&root, &["list", "-d", "--dumpjson", "-u", U1]);
    t.assert_clean();
    let want = "{\n  \"mdev_type\": \"mtty-1\",\n  \"start\": \"manual\",\n  \"attrs\": [\n    \
                {\n      \"a\": \"q\\\"\\\\\\n\\u0001ä/\"\n    }\n  ]\n}";
    assert_eq!(t.stdout, want);
}

#[test]
fn list_active_json_hierarchy_golden() {
    let root = standard_host();
    let t = mdevctl(&root, &["list", "--dumpjson"]);
    t.assert_clean();
    assert!(!t.stdout.ends_with('\n'), "JSON has no trailing newline");
    golden("list_active.json", &t.stdout);
}

#[test]
fn list_defined_json_hierarchy_golden() {
    let root = standard_host();
    let t = mdevctl(&root, &["list", "-d", "--dumpjson"]);
    t.assert_clean();
    assert!(!t.stdout.ends_with('\n'), "JSON has no trailing newline");
    golden("list_defined.json", &t.stdout);
    // The golden file must itself be the hierarchy: one array element, parents in order.
    let v: serde_json::Value = serde_json::from_str(&t.stdout).unwrap();
    let parents: Vec<&String> = v[0].as_object().unwrap().keys().collect();
    assert_eq!(parents, ["0000:00:02.0", "matrix", "mtty"]);
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[test]
fn list_json_ignores_verbose() {
    let root = standard_host();
    for mode in [&["-d"][..], &[][..]] {
        let plain = mdevctl(&root, &[&["list", "--dumpjson"], mode].concat());
        let verbose = mdevctl(&root, &[&["list", "--dumpjson", "-v"], mode].concat());
        verbose.assert_clean();
        assert_eq!(plain.stdout, verbose.stdout, "{mode:?}");
    }
}

#[test]
fn list_defined_json_single_uuid_prints_bare_object() {
    let root = standard_host();
    let t = mdevctl(&root, &["list", "-d", "--dumpjson", "-u", U3]);
    t.assert_clean();
    let want = "{\n  \"mdev_type\": \"vfio_ap-passthrough\",\n  \"start\": \"manual\",\n  \
                \"attrs\": [\n    {\n      \"assign_adapter\": \"5\"\n    },\n    {\n      \
                \"assign_domain\": \"0x47\"\n    },\n    {\n      \
                \"assign_control_domain\": \"0x47\"\n    }\n  ]\n}";
    assert_eq!(t.stdout, want);
}

#[test]
fn list_defined_json_uuid_defined_under_two_parents_prints_hierarchy() {
    let root = standard_host();
    let t = mdevctl(&root, &["list", "-d", "--dumpjson", "-u", U2]);
    t.assert_clean();
    let want = format!(
        "[\n  {{\n    \"matrix\": [\n      {{\n        \"{U2}\": {{\n          \
         \"mdev_type\": \"vfio_ap-passthrough\",\n          \"start\": \"auto\",\n          \
         \"attrs\": []\n        }}\n      }}\n    ],\n    \"mtty\": [\n      {{\n        \
         \"{U2}\": {{\n          \"mdev_type\": \"mtty-1\",\n          \"start\": \"manual\",\n          \
         \"attrs\": []\n        }}\n      }}\n    ]\n  }}\n]"
    );
    assert_eq!(t.stdout, want);
}

#[test]
fn list_defined_json_uuid_and_parent_narrow_to_bare_object() {
    let root = standard_host();
    let t = mdevctl(&root, &["list", "-d", "--dumpjson", "-u", U2, "-p", "mtty"]);
    t.assert_clean();
    assert_eq!(
        t.stdout,
        "{\n  \"mdev_type\": \"mtty-1\",\n  \"start\": \"manual\",\n  \"attrs\": []\n}"
    );
}

#[test]
fn list_active_json_single_uuid_prints_bare_object() {
    let root = standard_host();
    let t = mdevctl(&root, &["list", "--dumpjson", "-u", U1]);
    t.assert_clean();
    // Active devices' attrs come from callouts only, never from the definition.
    assert_eq!(
        t.stdout,
        "{\n  \"mdev_type\": \"i915-GVTg_V5_4\",\n  \"start\": \"auto\",\n  \"attrs\": []\n}"
    );
}

#[test]
fn list_json_unknown_uuid_prints_empty_array() {
    let root = standard_host();
    for mode in [&["-d"][..], &[][..]] {
        let t = mdevctl(&root, &[&["list", "--dumpjson", "-u", U5], mode].concat());
        t.assert_clean();
        assert_eq!(t.stdout, "[]", "{mode:?}");
    }
}

#[test]
fn list_json_empty_host_prints_empty_array() {
    let root = FakeRoot::new();
    for mode in [&["-d"][..], &[][..]] {
        let t = mdevctl(&root, &[&["list", "--dumpjson"], mode].concat());
        t.assert_clean();
        assert_eq!(t.stdout, "[]", "{mode:?}");
    }
}

#[test]
fn list_json_missing_parent_prints_empty_array() {
    let root = standard_host();
    for mode in [&["-d"][..], &[][..]] {
        let t = mdevctl(
            &root,
            &[&["list", "--dumpjson", "-p", "nope"], mode].concat(),
        );
        t.assert_clean();
        assert_eq!(t.stdout, "[]", "{mode:?}");
    }
}

#[test]
fn list_text_empty_selections_print_zero_bytes() {
    let root = standard_host();
    let empty = FakeRoot::new();
    let cases: [(&FakeRoot, &[&str]); 6] = [
        (&empty, &["list"]),
        (&empty, &["list", "-d", "-v"]),
        (&root, &["list", "-u", U5]),
        (&root, &["list", "-d", "-u", U5]),
        (&root, &["list", "-p", "nope"]),
        // U3 is defined on matrix but active nowhere; U4 active but defined nowhere.
        (&root, &["list", "-d", "-u", U4]),
    ];
    for (r, args) in cases {
        let t = mdevctl(r, args);
        t.assert_clean();
        assert_eq!(t.stdout, "", "{args:?}");
    }
}

#[test]
fn list_uuid_option_accepts_every_uuid_spelling() {
    let root = standard_host();
    let upper = U3.to_uppercase();
    let simple = U3.replace('-', "");
    let braced = format!("{{{U3}}}");
    let urn = format!("urn:uuid:{U3}");
    for mode in [&["-d"][..], &["-d", "--dumpjson"][..]] {
        let want = mdevctl(&root, &[&["list", "-u", U3], mode].concat());
        assert!(!want.stdout.is_empty());
        for form in [&upper, &simple, &braced, &urn] {
            let got = mdevctl(&root, &[&["list", "-u", form.as_str()], mode].concat());
            got.assert_clean();
            assert_eq!(got.stdout, want.stdout, "{form} {mode:?}");
        }
    }
    let active = mdevctl(&root, &["list", "--uuid", &U4.to_uppercase()]);
    active.assert_clean();
    assert_eq!(active.stdout, line(U4, "mtty mtty-1 manual"));
    let eq_form = mdevctl(&root, &["list", &format!("--uuid={simple}"), "-d"]);
    assert_eq!(
        eq_form.stdout,
        line(U3, "matrix vfio_ap-passthrough manual")
    );
}

#[test]
fn list_defined_parent_filter_selects_one_parent() {
    let root = standard_host();
    let t = mdevctl(&root, &["list", "-d", "-p", "matrix"]);
    t.assert_clean();
    let want = [
        line(U2, "matrix vfio_ap-passthrough auto"),
        line(U3, "matrix vfio_ap-passthrough manual"),
    ]
    .concat();
    assert_eq!(t.stdout, want);
    let eq_form = mdevctl(&root, &["list", "-d", "--parent=matrix"]);
    assert_eq!(eq_form.stdout, want);
}

#[test]
fn list_active_parent_filter_uses_probed_parent() {
    let root = standard_host();
    let t = mdevctl(&root, &["list", "-p", "mtty"]);
    t.assert_clean();
    let want = [
        line(U2, "mtty mtty-2 manual (defined)"),
        line(U4, "mtty mtty-1 manual"),
    ]
    .concat();
    assert_eq!(t.stdout, want);
    assert_eq!(mdevctl(&root, &["list", "-p", "matrix"]).stdout, "");
}

#[test]
fn list_parent_and_uuid_filters_combine() {
    let root = standard_host();
    let t = mdevctl(&root, &["list", "-d", "-u", U2, "-p", "matrix"]);
    t.assert_clean();
    assert_eq!(t.stdout, line(U2, "matrix vfio_ap-passthrough auto"));
    let none = mdevctl(&root, &["list", "-u", U2, "-p", "matrix"]);
    none.assert_clean();
    assert_eq!(none.stdout, "");
}

#[test]
fn list_defined_sorts_parents_bytewise_and_uuids_within_parent() {
    let root = FakeRoot::new();
    // Byte order: upper-case before '_' before lower-case; digits first.
    for parent in ["b", "A", "_x", "0.0.0313", "a"] {
        root.define("mtty", U2, "t", "manual");
        root.define(parent, U3, "t", "manual");
        root.define(parent, U1, "t", "manual");
    }
    let t = mdevctl(&root, &["list", "-d"]);
    t.assert_clean();
    let mut want = String::new();
    for parent in ["0.0.0313", "A", "_x", "a", "b"] {
        want += &line(U1, &format!("{parent} t manual"));
        want += &line(U3, &format!("{parent} t manual"));
    }
    want += &line(U2, "mtty t manual");
    assert_eq!(t.stdout, want);
}

#[test]
fn list_defined_non_canonical_file_names_are_listed_in_text_and_json() {
    let root = FakeRoot::new();
    root.define_raw(
        "mtty",
        &U1.to_uppercase(),
        config_json("mtty-1", "auto", &[]),
    );
    root.define_raw(
        "mtty",
        &U2.replace('-', ""),
        config_json("mtty-2", "manual", &[]),
    );
    root.define_raw(
        "mtty",
        &format!("{{{U3}}}"),
        config_json("mtty-1", "manual", &[]),
    );
    let t = mdevctl(&root, &["list", "-d"]);
    t.assert_clean();
    let want = [
        line(U1, "mtty mtty-1 auto"),
        line(U2, "mtty mtty-2 manual"),
        line(U3, "mtty mtty-1 manual"),
    ]
    .concat();
    assert_eq!(t.stdout, want);
    let j = mdevctl(&root, &["list", "-d", "--dumpjson"]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    let uuids: Vec<&str> = v[0]["mtty"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_object().unwrap().keys().next().unwrap().as_str())
        .collect();
    assert_eq!(uuids, [U1, U2, U3]);
}

#[test]
fn list_defined_uuid_filter_finds_non_canonical_file_name() {
    let root = FakeRoot::new();
    root.define_raw(
        "mtty",
        &U1.to_uppercase(),
        config_json("mtty-1", "auto", &[]),
    );
    let t = mdevctl(&root, &["list", "-d", "-u", U1]);
    t.assert_clean();
    assert_eq!(t.stdout, line(U1, "mtty mtty-1 auto"));
}

#[test]
fn list_defined_marks_active_for_non_canonical_file_name() {
    let root = standard_host();
    root.remove(format!("etc/mdevctl.d/0000:00:02.0/{U1}"));
    root.define_raw(
        "0000:00:02.0",
        &U1.to_uppercase(),
        config_json("i915-GVTg_V5_4", "auto", &[]),
    );
    let t = mdevctl(&root, &["list", "-d", "-p", "0000:00:02.0"]);
    t.assert_clean();
    assert!(
        t.stdout
            .starts_with(&line(U1, "0000:00:02.0 i915-GVTg_V5_4 auto (active)")),
        "{}",
        t.stdout
    );
}

#[test]
fn list_defined_scripts_d_directory_is_a_parent_named_scripts_d() {
    let root = FakeRoot::new();
    root.mkdir("etc/mdevctl.d/scripts.d/callouts");
    root.mkdir("etc/mdevctl.d/scripts.d/notifiers");
    root.define("scripts.d", U1, "mtty-1", "manual");
    let t = mdevctl(&root, &["list", "-d"]);
    t.assert_clean();
    assert_eq!(t.stdout, line(U1, "scripts.d mtty-1 manual"));
}

#[test]
fn list_defined_start_other_than_auto_is_manual() {
    let root = FakeRoot::new();
    root.define_raw("p", U1, r#"{"mdev_type":"t","start":"AUTO"}"#);
    root.define_raw("p", U2, r#"{"mdev_type":"t","start":7}"#);
    root.define_raw("p", U3, r#"{"mdev_type":"t","start":"auto","extra":1}"#);
    let t = mdevctl(&root, &["list", "-d"]);
    t.assert_clean();
    let want = [
        line(U1, "p t manual"),
        line(U2, "p t manual"),
        line(U3, "p t auto"),
    ]
    .concat();
    assert_eq!(t.stdout, want);
}

#[test]
fn list_defined_attrs_null_or_missing_means_none() {
    let root = FakeRoot::new();
    root.define_raw("p", U1, r#"{"mdev_type":"t","start":"auto","attrs":null}"#);
    root.define_raw("p", U2, r#"{"mdev_type":"t","start":"auto"}"#);
    let t = mdevctl(&root, &["list", "-dv"]);
    t.assert_clean();
    assert_eq!(
        t.stdout,
        [line(U1, "p t auto"), line(U2, "p t auto")].concat()
    );
}

#[test]
fn list_defined_duplicate_attrs_keep_order() {
    let root = FakeRoot::new();
    root.define_attrs("p", U1, "t", "auto", &[("z", "1"), ("a", "2"), ("z", "3")]);
    let t = mdevctl(&root, &["list", "-dv"]);
    t.assert_clean();
    let want = format!(
        "{U1} p t auto\n  Attrs:\n    @{{0}}: {{\"z\":\"1\"}}\n    @{{1}}: {{\"a\":\"2\"}}\n    \
         @{{2}}: {{\"z\":\"3\"}}\n"
    );
    assert_eq!(t.stdout, want);
}

#[test]
fn list_active_without_definition_of_probed_parent_has_no_marker() {
    let root = standard_host();
    // U3 is defined on matrix only; make it active on mtty.
    root.active(U3, "mtty", "mtty-1");
    let t = mdevctl(&root, &["list", "-u", U3]);
    t.assert_clean();
    assert_eq!(t.stdout, line(U3, "mtty mtty-1 manual"));
}

#[test]
fn list_active_start_mode_comes_from_definition_of_probed_parent() {
    let root = standard_host();
    root.active(U3, "matrix", "vfio_ap-passthrough");
    root.define("matrix", U3, "vfio_ap-passthrough", "auto");
    let t = mdevctl(&root, &["list", "-u", U3]);
    t.assert_clean();
    assert_eq!(
        t.stdout,
        line(U3, "matrix vfio_ap-passthrough auto (defined)")
    );
}

#[test]
fn list_defined_does_not_need_sysfs() {
    let root = FakeRoot::new();
    root.remove("sys");
    root.define("mtty", U1, "mtty-1", "auto");
    let t = mdevctl(&root, &["list", "-d"]);
    t.assert_clean();
    assert_eq!(t.stdout, line(U1, "mtty mtty-1 auto"));
}
