//! Where mdevkit keeps its own files, and the state file: the UUIDs of the devices apply
//! created or took over (and so may change or remove), and which VF holds which managed
//! vendor-VFIO vGPU, written atomically under the lock.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::file::Checked;
use super::vgpus::VgpuRecord;
use crate::host::{Host, ENV_ROOT};
use crate::names::Uuid;
use crate::nvidia_vf::{PciAddress, VgpuTypeId};

/// Chooses the profile when `-c` is not given.
pub const ENV_PROFILE: &str = "MDEVKIT_PROFILE";

/// mdevkit's paths, beside [`crate::Roots`] and under the same `MDEVCTL_ENV_ROOT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Stands for `/etc/mdevkit/config.yaml`: the desired state read without `-f`.
    pub config_file: PathBuf,
    /// Stands for `/var/lib/mdevkit/state.json`.
    pub state_file: PathBuf,
    /// Stands for `/etc/machine-id`: the seed of the stable UUIDs.
    pub machine_id: PathBuf,
}

impl Paths {
    pub fn under(root: &Path) -> Self {
        Paths {
            config_file: root.join("etc/mdevkit/config.yaml"),
            state_file: root.join("var/lib/mdevkit/state.json"),
            machine_id: root.join("etc/machine-id"),
        }
    }

    pub fn from_env(env: impl Fn(&str) -> Option<OsString>) -> Self {
        Paths::under(&env(ENV_ROOT).map_or_else(|| PathBuf::from("/"), PathBuf::from))
    }
}

/// The state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read state file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("state file {} is malformed", path.display())]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write state file {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u32,
    /// Sorted UUIDs of the devices apply owns.
    devices: Vec<Checked<Uuid>>,
    /// The managed vGPUs by VF (absent when there are none, as before vendor-VFIO).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    vgpus: Vec<RawVgpu>,
}

/// A [`VgpuRecord`] as stored: `{"vf", "pf", "type" (the name), "type_id"}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVgpu {
    vf: Checked<PciAddress>,
    pf: Checked<PciAddress>,
    #[serde(rename = "type")]
    type_name: String,
    type_id: Checked<VgpuTypeId>,
}

/// Everything apply owns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Owned {
    pub devices: BTreeSet<Uuid>,
    pub vgpus: Vec<VgpuRecord>,
}

/// The most a state file may hold (about 20 000 devices).
const MAX_STATE: u64 = 1 << 20;

/// The owned devices; a missing file means none.
pub fn load(host: &Host, path: &Path) -> Result<BTreeSet<Uuid>, StateError> {
    Ok(load_owned(host, path)?.devices)
}

/// The owned devices and vGPUs; a missing file means none.
pub fn load_owned(host: &Host, path: &Path) -> Result<Owned, StateError> {
    let bytes = match host.read_bounded(path, MAX_STATE) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Owned::default()),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    let f: StateFile = serde_json::from_slice(&bytes).map_err(|source| StateError::Malformed {
        path: path.to_owned(),
        source,
    })?;
    Ok(Owned {
        devices: f.devices.into_iter().map(|c| c.0).collect(),
        vgpus: f
            .vgpus
            .into_iter()
            .map(|r| VgpuRecord {
                vf: r.vf.0,
                pf: r.pf.0,
                type_name: r.type_name,
                type_id: r.type_id.0,
            })
            .collect(),
    })
}

/// Replaces the state file atomically. The caller holds the inter-process lock.
pub fn save(host: &Host, path: &Path, owned: &Owned) -> Result<(), StateError> {
    let mut vgpus = owned.vgpus.clone();
    vgpus.sort();
    vgpus.dedup();
    let f = StateFile {
        version: 1,
        devices: owned.devices.iter().copied().map(Checked).collect(),
        vgpus: vgpus
            .into_iter()
            .map(|r| RawVgpu {
                vf: Checked(r.vf),
                pf: Checked(r.pf),
                type_name: r.type_name,
                type_id: Checked(r.type_id),
            })
            .collect(),
    };
    let mut text = crate::config::to_json_string(&f, crate::config::JsonStyle::Pretty);
    text.push('\n');
    host.write_atomic(path, text.as_bytes())
        .map_err(|source| StateError::Write {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::host::Roots;

    #[test]
    fn state_round_trips_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(Roots::under(dir.path()));
        let path = Paths::under(dir.path()).state_file;
        assert!(load(&host, &path).unwrap().is_empty());
        let devices: BTreeSet<Uuid> =
            ["6c8ef8c3-9d8c-4c43-8d4f-5d1e0b6a9f10".parse().unwrap()].into();
        let owned = Owned {
            devices: devices.clone(),
            vgpus: Vec::new(),
        };
        save(&host, &path, &owned).unwrap();
        assert_eq!(load(&host, &path).unwrap(), devices);
        // Without vGPUs the file is as before vendor-VFIO support.
        assert!(!std::fs::read_to_string(&path).unwrap().contains("vgpus"));
        let vgpu = VgpuRecord {
            vf: "0000:3d:00.4".parse().unwrap(),
            pf: "0000:3d:00.0".parse().unwrap(),
            type_name: "NVIDIA L40S-4Q".into(),
            type_id: "1150".parse().unwrap(),
        };
        let both = Owned {
            devices,
            vgpus: vec![vgpu.clone(), vgpu],
        };
        save(&host, &path, &both).unwrap();
        let back = load_owned(&host, &path).unwrap();
        assert_eq!(back.vgpus.len(), 1);
        assert_eq!(back.vgpus[0], both.vgpus[0]);
        std::fs::write(&path, "{\"version\": 1}").unwrap();
        assert!(matches!(
            load(&host, &path),
            Err(StateError::Malformed { .. })
        ));
    }
}
