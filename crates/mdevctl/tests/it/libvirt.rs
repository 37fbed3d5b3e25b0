//! libvirt's node-device driver's exact mdevctl command lines (ecosystem.md §2.1), with
//! JSON on /dev/stdin, and the `list --dumpjson` shape its parser accepts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;

use crate::common::*;
use crate::life::*;

/// What libvirt sends: compact, no `attrs` key when there are none.
const NO_ATTRS: &str = r#"{"mdev_type":"mtty-1","start":"manual"}"#;
const WITH_ATTRS: &str = r#"{"mdev_type":"mtty-1","start":"auto","attrs":[{"k":"v"}]}"#;

fn stdin(json: &str) -> Opts<'static> {
    Opts::default().stdin(json.as_bytes().to_vec())
}

/// One device as libvirt reads it: (parent, uuid, type, start, attrs).
type Row = (String, String, String, String, Vec<(String, String)>);

/// libvirt's `nodeDeviceParseMdevctlJSON` acceptance rules.
fn parse_like_libvirt(out: &str) -> Vec<Row> {
    if out.is_empty() {
        return Vec::new();
    }
    let v: Value = serde_json::from_str(out).expect("JSON");
    let arr = v.as_array().expect("an array");
    if arr.is_empty() {
        return Vec::new();
    }
    assert_eq!(arr.len(), 1, "exactly one element");
    let mut rows = Vec::new();
    for (parent, children) in arr[0].as_object().expect("object of parents") {
        for child in children.as_array().expect("array of children") {
            let child = child.as_object().unwrap();
            assert_eq!(child.len(), 1, "one uuid per object");
            let (uuid, dev) = child.iter().next().unwrap();
            let ty = dev["mdev_type"].as_str().unwrap().to_owned();
            let start = dev["start"].as_str().unwrap().to_owned();
            assert!(start == "auto" || start == "manual");
            let attrs = dev["attrs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    let a = a.as_object().unwrap();
                    assert_eq!(a.len(), 1);
                    let (k, v) = a.iter().next().unwrap();
                    (k.clone(), v.as_str().unwrap().to_owned())
                })
                .collect();
            rows.push((parent.clone(), uuid.clone(), ty, start, attrs));
        }
    }
    rows
}

#[test]
fn libvirt_create_transient_without_uuid() {
    let root = mtty_host();
    let t = mdev(
        &root,
        &["start", "--parent=mtty", "--jsonfile=/dev/stdin"],
        &stdin(NO_ATTRS),
    );
    t.assert_clean();
    let uuid = t.stdout.strip_suffix('\n').unwrap();
    assert_eq!(uuid.len(), 36);
    assert_eq!(
        std::fs::read_to_string(root.join(create_file("mtty", "mtty-1"))).unwrap(),
        uuid
    );
    assert!(!root.join("etc/mdevctl.d/mtty").exists());
}

#[test]
fn libvirt_create_transient_with_uuid() {
    let root = mtty_host();
    let arg = format!("--uuid={U1}");
    let t = mdev(
        &root,
        &["start", "--parent=mtty", "--jsonfile=/dev/stdin", &arg],
        &stdin(NO_ATTRS),
    );
    t.assert_clean();
    assert_eq!(t.stdout, "");
    assert_eq!(
        std::fs::read_to_string(root.join(create_file("mtty", "mtty-1"))).unwrap(),
        U1
    );
}

#[test]
fn libvirt_define_new() {
    let root = FakeRoot::new();
    let t = mdev(
        &root,
        &["define", "--parent=0000:00:02.0", "--jsonfile=/dev/stdin"],
        &stdin(NO_ATTRS),
    );
    t.assert_clean();
    let uuid = t.stdout.strip_suffix('\n').unwrap();
    assert_eq!(
        config(&root, "0000:00:02.0", uuid).unwrap(),
        pretty("mtty-1", "manual", &[])
    );
    let arg = format!("--uuid={U2}");
    let t = mdev(
        &root,
        &[
            "define",
            "--parent=0000:00:02.0",
            "--jsonfile=/dev/stdin",
            &arg,
        ],
        &stdin(WITH_ATTRS),
    );
    t.assert_clean();
    assert_eq!(t.stdout, "");
    assert_eq!(
        config(&root, "0000:00:02.0", U2).unwrap(),
        pretty("mtty-1", "auto", &[("k", "v")])
    );
}

#[test]
fn libvirt_define_existing_persistent_device_uses_modify_defined() {
    let root = FakeRoot::new();
    root.define("matrix", U1, "vfio_ap-passthrough", "manual");
    let arg = format!("--uuid={U1}");
    let json =
        r#"{"mdev_type":"vfio_ap-passthrough","start":"manual","attrs":[{"assign_adapter":"5"}]}"#;
    let t = mdev(
        &root,
        &[
            "modify",
            "--parent=matrix",
            "--jsonfile=/dev/stdin",
            &arg,
            "--defined",
        ],
        &stdin(json),
    );
    t.assert_clean();
    assert_eq!(
        config(&root, "matrix", U1).unwrap(),
        pretty("vfio_ap-passthrough", "manual", &[("assign_adapter", "5")])
    );
}

#[test]
fn libvirt_update_live_and_defined() {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-1")
        .define("mtty", U1, "mtty-1", "manual");
    callout(&root, "v", &versioned_body(&supports_all(), "exit 0"));
    let arg = format!("--uuid={U1}");
    let t = mdev(
        &root,
        &[
            "modify",
            "--parent=mtty",
            "--jsonfile=/dev/stdin",
            &arg,
            "--defined",
            "--live",
        ],
        &stdin(WITH_ATTRS),
    );
    t.assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "auto", &[("k", "v")])
    );
    let live = calls(&root)
        .into_iter()
        .find(|c| c.eas() == "live/modify/none")
        .unwrap();
    assert_eq!(live.stdin, WITH_ATTRS);
}

#[test]
fn libvirt_update_live_only_leaves_definition() {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-1")
        .define("mtty", U1, "mtty-1", "manual");
    callout(&root, "v", &versioned_body(&supports_all(), "exit 0"));
    let arg = format!("--uuid={U1}");
    let t = mdev(
        &root,
        &[
            "modify",
            "--parent=mtty",
            "--jsonfile=/dev/stdin",
            &arg,
            "--live",
        ],
        &stdin(WITH_ATTRS),
    );
    t.assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "manual", &[])
    );
}

#[test]
fn libvirt_set_autostart_space_separated() {
    let root = FakeRoot::new();
    root.define("mtty", U1, "mtty-1", "manual");
    mdevctl(&root, &["modify", "--uuid", U1, "--auto"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "auto", &[])
    );
    mdevctl(&root, &["modify", "--uuid", U1, "--manual"]).assert_clean();
    assert_eq!(
        config(&root, "mtty", U1).unwrap(),
        pretty("mtty-1", "manual", &[])
    );
}

#[test]
fn libvirt_start_stop_undefine_by_uuid() {
    let root = mtty_host();
    root.define("mtty", U1, "mtty-1", "manual");
    let arg = format!("--uuid={U1}");
    let t = mdevctl(&root, &["start", &arg]);
    t.assert_clean();
    assert_eq!(t.stdout, "");
    assert_eq!(
        std::fs::read_to_string(root.join(create_file("mtty", "mtty-1"))).unwrap(),
        U1
    );
    // Play the kernel: the device now exists.
    root.active(U1, "mtty", "mtty-1");
    mdevctl(&root, &["stop", &arg]).assert_clean();
    assert_eq!(
        std::fs::read_to_string(root.join(format!("{}/remove", dev_dir("mtty", U1)))).unwrap(),
        "1"
    );
    mdevctl(&root, &["undefine", &arg]).assert_clean();
    assert!(config(&root, "mtty", U1).is_none());
}

#[test]
fn libvirt_modify_probe_exits_zero() {
    let root = FakeRoot::new();
    let t = mdevctl(
        &root,
        &["modify", "--defined", "--live", "--jsonfile", "b", "--help"],
    );
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert_eq!(t.stderr, "");
}

#[test]
fn libvirt_inventory_empty_is_empty_array() {
    let root = FakeRoot::new();
    for args in [
        ["list", "--dumpjson", "--defined"].as_slice(),
        &["list", "--dumpjson"],
    ] {
        let t = mdevctl(&root, args);
        t.assert_clean();
        assert_eq!(t.stdout, "[]");
        assert!(parse_like_libvirt(&t.stdout).is_empty());
    }
}

#[test]
fn libvirt_inventory_after_define_parses() {
    let root = mtty_host();
    root.active(U2, "mtty", "mtty-1");
    mdev(
        &root,
        &[
            "define",
            "--parent=mtty",
            "--jsonfile=/dev/stdin",
            &format!("--uuid={U1}"),
        ],
        &stdin(WITH_ATTRS),
    )
    .assert_clean();
    mdevctl(
        &root,
        &[
            "define",
            "-u",
            U3,
            "-p",
            "matrix",
            "-t",
            "vfio_ap-passthrough",
        ],
    )
    .assert_clean();
    let t = mdevctl(&root, &["list", "--dumpjson", "--defined"]);
    t.assert_clean();
    let rows = parse_like_libvirt(&t.stdout);
    assert_eq!(
        rows,
        [
            (
                "matrix".into(),
                U3.into(),
                "vfio_ap-passthrough".into(),
                "manual".into(),
                vec![]
            ),
            (
                "mtty".into(),
                U1.into(),
                "mtty-1".into(),
                "auto".into(),
                vec![("k".into(), "v".into())]
            ),
        ]
    );
    let t = mdevctl(&root, &["list", "--dumpjson"]);
    t.assert_clean();
    assert_eq!(
        parse_like_libvirt(&t.stdout),
        [(
            "mtty".into(),
            U2.into(),
            "mtty-1".into(),
            "manual".into(),
            vec![]
        )]
    );
}

#[test]
fn libvirt_sees_one_clean_error_line() {
    let root = mtty_host();
    let t = mdev(
        &root,
        &["start", "--parent=nosuch", "--jsonfile=/dev/stdin"],
        &stdin(NO_ATTRS),
    );
    assert_error(&t, "Unable to find parent device 'nosuch'");
    let t = mdev(
        &root,
        &["define", "--parent=mtty", "--jsonfile=/dev/stdin"],
        &stdin("{\"mdev_type\":"),
    );
    assert_eq!(t.code, 1);
    assert_eq!(t.stderr.lines().count(), 1, "{}", t.stderr);
    assert!(t.stderr.starts_with("Error: "), "{}", t.stderr);
    assert!(t.stderr.contains("/dev/stdin"), "{}", t.stderr);
}

#[test]
fn libvirt_inventory_of_active_devices_carries_callout_attributes_and_start() {
    let root = mtty_host();
    root.active(U1, "mtty", "mtty-1")
        .define("mtty", U1, "mtty-1", "auto");
    callout(
        &root,
        "g",
        "if [ \"$ev $act\" = 'get attributes' ]; then echo '[{\"assign_adapter\":\"5\"}]'; fi\nexit 0",
    );
    let t = mdevctl(&root, &["list", "--dumpjson"]);
    t.assert_clean();
    assert_eq!(
        parse_like_libvirt(&t.stdout),
        [(
            "mtty".into(),
            U1.into(),
            "mtty-1".into(),
            "auto".into(),
            vec![("assign_adapter".into(), "5".into())]
        )]
    );
}
