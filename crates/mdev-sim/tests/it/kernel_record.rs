//! The `samples` profile against the real kernel: replays the record that the real-kernel
//! test takes of the sample drivers (tests/realkernel/recorded/samples.json) on the simulator.
//!
//! The record is written by `group_record` in tests/realkernel/guest/record.sh and compared
//! with a fresh one on every real-kernel run, so a difference here means the simulator drifted
//! from the kernel (or the record was renewed and the profiles were not).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::common::*;
use mdev_sim::{Errno, Profile};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    parents: Vec<RecordedParent>,
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordedParent {
    parent: String,
    types: Vec<RecordedType>,
}

/// A type directory's files, exactly as read (`None`: the file does not exist).
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct RecordedType {
    id: String,
    name: Option<String>,
    description: Option<String>,
    device_api: Option<String>,
    available_instances: Option<String>,
}

/// One write and what the kernel showed after it.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Step {
    /// `parent/type`: a write to that type's `create`, of a fresh UUID unless `uuid_of` or
    /// `value` says otherwise.
    create: Option<String>,
    /// A write of `1` to the `remove` of the N-th device created (from 0).
    remove: Option<usize>,
    uuid_of: Option<usize>,
    value: Option<String>,
    /// The new device's `vendor/` files, its UUID written `{uuid}` (fresh creates only).
    attributes: Option<BTreeMap<String, String>>,
    /// `ok` or the errno name.
    result: String,
    /// `parent/type` -> `available_instances` after the write.
    available: BTreeMap<String, u32>,
}

fn record() -> Record {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/realkernel/recorded/samples.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn content(f: &Fixture, rel: &str) -> Option<String> {
    match f.read(rel) {
        Ok(text) => Some(text),
        Err(ENOENT) => None,
        Err(errno) => panic!("reading {rel}: errno {errno}"),
    }
}

fn outcome(result: Result<(), i32>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(errno) => Errno(errno).name(),
    }
}

fn available(f: &Fixture, record: &Record) -> BTreeMap<String, u32> {
    let mut all = BTreeMap::new();
    for p in &record.parents {
        let types = f.path(&format!("class/mdev_bus/{}/mdev_supported_types", p.parent));
        for ty in entries(&types) {
            all.insert(format!("{}/{ty}", p.parent), f.avail(&p.parent, &ty));
        }
    }
    all
}

fn attributes(f: &Fixture, uuid: &str) -> BTreeMap<String, String> {
    entries(&f.path(&format!("bus/mdev/devices/{uuid}/vendor")))
        .into_iter()
        .map(|name| {
            let value = f
                .read(&format!("bus/mdev/devices/{uuid}/vendor/{name}"))
                .unwrap();
            (format!("vendor/{name}"), value.replace(uuid, "{uuid}"))
        })
        .collect()
}

#[test]
fn samples_types_match_the_kernel_record() {
    let record = record();
    let Some(f) = mount("kernel-record-types", "samples") else {
        return;
    };
    let recorded: Vec<&str> = record.parents.iter().map(|p| p.parent.as_str()).collect();
    let mut sorted = recorded.clone();
    sorted.sort_unstable();
    assert_eq!(entries(&f.path("class/mdev_bus")), sorted, "parents");
    for p in &record.parents {
        let dir = format!("class/mdev_bus/{}/mdev_supported_types", p.parent);
        let simulated: Vec<RecordedType> = entries(&f.path(&dir))
            .into_iter()
            .map(|id| RecordedType {
                name: content(&f, &format!("{dir}/{id}/name")),
                description: content(&f, &format!("{dir}/{id}/description")),
                device_api: content(&f, &format!("{dir}/{id}/device_api")),
                available_instances: content(&f, &format!("{dir}/{id}/available_instances")),
                id,
            })
            .collect();
        let mut kernel: Vec<&RecordedType> = p.types.iter().collect();
        kernel.sort_by(|a, b| a.id.cmp(&b.id));
        let simulated: Vec<&RecordedType> = simulated.iter().collect();
        assert_eq!(simulated, kernel, "types of {}", p.parent);
    }
}

#[test]
fn samples_creates_and_removes_match_the_kernel_record() {
    let record = record();
    let Some(f) = mount("kernel-record-steps", "samples") else {
        return;
    };
    assert!(!record.steps.is_empty(), "the record has no steps");
    let mut created: Vec<String> = Vec::new();
    let mut fresh = 0;
    for (i, step) in record.steps.iter().enumerate() {
        let simulated = match (&step.create, step.remove) {
            (Some(target), None) => {
                let (parent, ty) = target.split_once('/').unwrap();
                let create = format!("class/mdev_bus/{parent}/mdev_supported_types/{ty}/create");
                let (value, is_fresh) = match (step.uuid_of, &step.value) {
                    (Some(n), None) => (created[n].clone(), false),
                    (None, Some(value)) => (value.clone(), false),
                    (None, None) => {
                        fresh += 1;
                        (uuid(fresh), true)
                    }
                    _ => panic!("step {i}: both uuid_of and value"),
                };
                let result = outcome(f.write(&create, value.as_bytes()));
                let attributes = (is_fresh && result == "ok").then(|| {
                    created.push(value.clone());
                    attributes(&f, &value)
                });
                Step {
                    create: step.create.clone(),
                    remove: None,
                    uuid_of: step.uuid_of,
                    value: step.value.clone(),
                    attributes,
                    result,
                    available: available(&f, &record),
                }
            }
            (None, Some(n)) => Step {
                create: None,
                remove: Some(n),
                uuid_of: None,
                value: None,
                attributes: None,
                result: outcome(f.write(&format!("bus/mdev/devices/{}/remove", created[n]), b"1")),
                available: available(&f, &record),
            },
            _ => panic!("step {i}: needs exactly one of create and remove"),
        };
        assert_eq!(&simulated, step, "step {i} of the record");
    }
}

/// The single-driver profiles are the `samples` parents alone, so the record covers them too.
#[test]
fn sample_driver_profiles_are_the_samples_parents() {
    let samples = Profile::builtin("samples").unwrap();
    for name in ["mtty", "mdpy", "mbochs"] {
        let single = Profile::builtin(name).unwrap();
        let [parent] = single.parents.as_slice() else {
            panic!("profile {name} should have one parent");
        };
        let twin = samples
            .parents
            .iter()
            .find(|p| p.name == parent.name)
            .unwrap_or_else(|| panic!("samples has no parent {}", parent.name));
        assert_eq!(
            serde_json::to_value(parent).unwrap(),
            serde_json::to_value(twin).unwrap(),
            "profile {name}"
        );
    }
}
