//! deploy/kubernetes: every manifest parses into Kubernetes' typed objects with nothing
//! dropped (k8s-openapi ignores unknown fields, so a re-serialisation must give back the
//! document), the ConfigMap's file is a valid desired-state file, the DaemonSet runs the
//! agent as documented, and the ClusterRole grants exactly the calls the agent makes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::common::Fleet;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes")
}

/// Every document of every manifest, as JSON values.
fn documents() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let v: Value = serde::Deserialize::deserialize(doc).unwrap();
            out.push((f.file_name().unwrap().to_string_lossy().into_owned(), v));
        }
    }
    out
}

/// Parses `doc` as `T` and insists that serialising it again gives the same document.
fn typed<T: DeserializeOwned + Serialize>(file: &str, doc: &Value) -> T {
    let t: T =
        serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{file}: {e}\n{doc:#}"));
    let again = serde_json::to_value(&t).unwrap();
    assert_eq!(
        &again, doc,
        "{file}: a field was dropped or changed on the way through"
    );
    t
}

fn find<T: DeserializeOwned + Serialize>(kind: &str) -> T {
    let (file, doc) = documents()
        .into_iter()
        .find(|(_, d)| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in deploy/kubernetes"));
    typed(&file, &doc)
}

#[test]
fn manifests_parse_into_typed_objects_without_unknown_fields() {
    let mut kinds = Vec::new();
    for (file, doc) in documents() {
        let kind = doc["kind"].as_str().unwrap().to_owned();
        match kind.as_str() {
            "Namespace" => drop(typed::<Namespace>(&file, &doc)),
            "ServiceAccount" => drop(typed::<ServiceAccount>(&file, &doc)),
            "ClusterRole" => drop(typed::<ClusterRole>(&file, &doc)),
            "ClusterRoleBinding" => drop(typed::<ClusterRoleBinding>(&file, &doc)),
            "ConfigMap" => drop(typed::<ConfigMap>(&file, &doc)),
            "DaemonSet" => drop(typed::<DaemonSet>(&file, &doc)),
            other => panic!("{file}: unexpected kind {other}"),
        }
        kinds.push(kind);
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "DaemonSet",
            "Namespace",
            "ServiceAccount"
        ]
    );
}

#[test]
fn config_map_holds_a_valid_desired_state_file() {
    let cm: ConfigMap = find("ConfigMap");
    let text = &cm.data.unwrap()["config.yaml"];
    let file = mdevkit::desired::file::parse("configmap.yaml", text).unwrap();
    assert!(file.profiles.contains_key("T4-4Q"));
}

#[test]
fn daemon_set_runs_the_agent_with_mdevctls_host_paths() {
    let ds: DaemonSet = find("DaemonSet");
    let sa: ServiceAccount = find("ServiceAccount");
    let binding: ClusterRoleBinding = find("ClusterRoleBinding");
    let spec = ds.spec.unwrap().template.spec.unwrap();
    assert_eq!(spec.service_account_name, sa.metadata.name);
    let subject = &binding.subjects.unwrap()[0];
    assert_eq!(Some(&subject.name), sa.metadata.name.as_ref());
    assert_eq!(subject.namespace, sa.metadata.namespace);
    let agent = &spec.containers[0];
    assert_eq!(
        agent.security_context.as_ref().unwrap().privileged,
        Some(true)
    );
    assert!(agent.resources.as_ref().unwrap().requests.is_some());
    let env = agent.env.as_ref().unwrap();
    let node = env.iter().find(|e| e.name == "NODE_NAME").unwrap();
    let field = node
        .value_from
        .as_ref()
        .unwrap()
        .field_ref
        .as_ref()
        .unwrap();
    assert_eq!(field.field_path, "spec.nodeName");
    let mounts: BTreeSet<String> = agent
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.mount_path.clone())
        .collect();
    for path in [
        "/sys",
        "/etc/mdevctl.d",
        "/var/lib/mdevkit",
        "/run/lock",
        "/etc/machine-id",
        "/etc/mdevkit",
    ] {
        assert!(mounts.contains(path), "{path} not mounted: {mounts:?}");
    }
    let host_paths: BTreeSet<String> = spec
        .volumes
        .unwrap()
        .iter()
        .filter_map(|v| v.host_path.as_ref().map(|h| h.path.clone()))
        .collect();
    assert_eq!(
        host_paths,
        [
            "/sys",
            "/etc/mdevctl.d",
            "/var/lib/mdevkit",
            "/run/lock",
            "/etc/machine-id"
        ]
        .map(String::from)
        .into()
    );
    // The arguments are ones the agent accepts.
    let args = agent.args.as_ref().unwrap();
    let out = std::process::Command::new(crate::common::AGENT)
        .args(args)
        .arg("--help")
        .env("NODE_NAME", "x")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cluster_role_grants_exactly_what_the_agent_calls() {
    let role: ClusterRole = find("ClusterRole");
    let mut granted = BTreeSet::new();
    for rule in role.rules.unwrap() {
        assert_eq!(
            rule.api_groups,
            Some(vec![String::new()]),
            "core group only"
        );
        assert!(rule.resource_names.is_none());
        for resource in rule.resources.unwrap() {
            for verb in &rule.verbs {
                granted.insert((verb.clone(), resource.clone()));
            }
        }
    }
    let Some(mut f) = Fleet::new("rbac") else {
        return;
    };
    f.start_agent();
    assert_eq!(f.label_and_wait(Some("small")), "success");
    let called = f.api.with(|c| c.calls.clone());
    assert_eq!(called, granted);
}
