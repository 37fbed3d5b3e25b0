//! A user profile from a JSON file, mounted: generic vendor attributes and their write rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use mdev_sim::Profile;

const PROFILE: &str = r#"{
  "name": "acme",
  "description": "a made-up accelerator",
  "parents": [
    {
      "name": "0000:{n}:00.0", "count": 3, "first": 16,
      "dir": "devices/pci0000:00", "bus": "pci", "driver": "acme_mdev",
      "types": [
        { "id": "acme-small", "device_api": "vfio-pci", "max_instances": 2, "errno": "ENOSPC",
          "attributes": [
            { "name": "acme/queues", "mode": "rw", "value": "1", "rule": "number" },
            { "name": "acme/serial", "value": "ACME-{uuid}" },
            { "name": "acme/reset", "mode": "wo" }
          ] }
      ]
    }
  ]
}"#;

#[test]
fn a_user_profile_from_a_file() {
    let dir = temp_dir("profile-file");
    let file = dir.join("acme.json");
    std::fs::write(&file, PROFILE).unwrap();
    let profile = Profile::from_file(&file).unwrap();
    let Some(f) = mount_profile("acme", profile) else {
        return;
    };
    for bdf in ["0000:0010:00.0", "0000:0011:00.0", "0000:0012:00.0"] {
        assert!(f.exists(&format!("bus/pci/devices/{bdf}")), "{bdf}");
    }
    let p = "0000:0010:00.0";
    assert_eq!(f.avail(p, "acme-small"), 2);
    f.create(p, "acme-small", U1).unwrap();
    f.create(p, "acme-small", U2).unwrap();
    assert_eq!(f.create(p, "acme-small", U3), Err(ENOSPC));
    let d = |a: &str| format!("bus/mdev/devices/{U1}/{a}");
    assert_eq!(f.read(&d("acme/queues")).unwrap(), "1\n");
    assert_eq!(f.write(&d("acme/queues"), b"many"), Err(EINVAL));
    f.write(&d("acme/queues"), b"0x10\n").unwrap();
    assert_eq!(f.read(&d("acme/queues")).unwrap(), "16\n");
    assert_eq!(f.read(&d("acme/serial")).unwrap(), format!("ACME-{U1}\n"));
    assert_eq!(f.write(&d("acme/serial"), b"x"), Err(EACCES));
    f.write(&d("acme/reset"), b"1").unwrap();
    assert_eq!(f.read(&d("acme/reset")), Err(EACCES));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn broken_profiles_name_the_problem() {
    let dir = temp_dir("profile-bad");
    let file = dir.join("bad.json");
    std::fs::write(&file, r#"{"name":"x","parents":[{"name":"p","dir":"devices","types":[{"id":"t","device_api":"vfio-pci"}]}]}"#).unwrap();
    let err = Profile::from_file(&file).unwrap_err().to_string();
    assert!(
        err.contains("bad.json") && err.contains("needs max_instances or a parent pool"),
        "{err}"
    );
    std::fs::write(&file, "{").unwrap();
    let err = Profile::from_file(&file).unwrap_err().to_string();
    assert!(
        err.contains("bad.json") && err.contains("not valid JSON"),
        "{err}"
    );
    let err = Profile::from_file(&dir.join("missing.json"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.json"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
