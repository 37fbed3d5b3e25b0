//! mdevkit-agent's integration tests, one binary: the agent against a fake Kubernetes API
//! server and mdev-sim's FUSE-mounted sysfs, and the deploy/kubernetes manifests parsed
//! into Kubernetes' typed objects. Without FUSE each host test prints one line and passes,
//! except under `CI=true`, where it fails.

mod common;
mod fake_api;
mod fleet;
mod manifests;
