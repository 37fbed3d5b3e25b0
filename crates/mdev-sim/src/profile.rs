//! Profiles: which parents, types, pools and vendor attributes a simulated host has (JSON format).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::parse::Errno;

/// Built-in profiles, compiled in; each file is also an example of the user format.
const BUILTINS: &[(&str, &str)] = &[
    ("demo", include_str!("../profiles/demo.json")),
    ("mtty", include_str!("../profiles/mtty.json")),
    ("mdpy", include_str!("../profiles/mdpy.json")),
    ("mbochs", include_str!("../profiles/mbochs.json")),
    ("samples", include_str!("../profiles/samples.json")),
    ("i915", include_str!("../profiles/i915.json")),
    ("nvidia", include_str!("../profiles/nvidia.json")),
    ("vfio-ap", include_str!("../profiles/vfio-ap.json")),
    ("vfio-ccw", include_str!("../profiles/vfio-ccw.json")),
    ("l40s", include_str!("../profiles/l40s.json")),
    ("h100", include_str!("../profiles/h100.json")),
];

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("unknown built-in profile '{0}' (see `mdev-sim profiles`)")]
    UnknownBuiltin(String),
    #[error("cannot read profile {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("profile {origin} is not valid JSON for mdev-sim")]
    Json {
        origin: String,
        source: serde_json::Error,
    },
    #[error("profile {origin}: {reason}")]
    Invalid { origin: String, reason: String },
}

/// A whole simulated host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short name, shown by `mdev-sim profiles`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub parents: Vec<ParentSpec>,
    /// The AP bus (`bus/ap/apmask`, `aqmask`), needed by `vfio_ap` parents.
    #[serde(default)]
    pub ap_bus: Option<ApBusSpec>,
    /// SR-IOV GPUs on NVIDIA's vendor-specific VFIO path (no mdev; see `nvidia_vf`).
    #[serde(default)]
    pub pci_gpus: Vec<crate::sriov::GpuSpec>,
}

/// One parent device, or a numbered run of identical ones (`count`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentSpec {
    /// Device name (the basename of its sysfs directory). With `count`, `{n}` is replaced by
    /// the 4-digit lowercase hex number (`0.0.{n}` gives `0.0.0300`, ...).
    pub name: String,
    /// Directory (relative to the sysfs root) that holds the parent's own directory,
    /// e.g. `devices/virtual/mtty`.
    pub dir: String,
    /// Adds `bus/<bus>/devices/<name>` as the kernel does for PCI or css devices.
    #[serde(default)]
    pub bus: Option<String>,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub first: u32,
    /// Whether the parent exists when the simulator starts (else `add-parent` brings it).
    #[serde(default = "yes")]
    pub present: bool,
    /// Whether `mdev_supported_types` exists from the start (else `publish-types`).
    #[serde(default = "yes")]
    pub types_published: bool,
    /// A pool shared by all types of this parent (mtty's ports, mbochs' memory, the mdev
    /// core's parent-wide `max_instances`).
    #[serde(default)]
    pub pool: Option<PoolSpec>,
    /// Once a device of one type exists, other types show 0 and cannot be created (GRID-like).
    #[serde(default)]
    pub homogeneous: bool,
    #[serde(default)]
    pub kind: ParentKind,
    /// The vendor's mdev driver: devices get `driver -> bus/mdev/drivers/<driver>`.
    #[serde(default)]
    pub driver: Option<String>,
    /// The parent's own PCI ids: its `vendor` and `device` files (`0x10de`).
    #[serde(default)]
    pub pci_ids: Option<PciIds>,
    /// The driver bound to the parent itself: `<parent>/driver -> bus/<bus>/drivers/<name>`
    /// (`platform` when the parent has no bus).
    #[serde(default)]
    pub bound_driver: Option<String>,
    pub types: Vec<TypeSpec>,
}

/// A PCI parent's `vendor` and `device` files, as the kernel prints them (`0x10de`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PciIds {
    pub vendor: String,
    pub device: String,
}

fn yes() -> bool {
    true
}

/// Special kernel behaviour of a parent beyond the generic mdev core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParentKind {
    #[default]
    Generic,
    /// The vfio_ap `matrix` device: its mdevs get the AP assignment attributes.
    VfioAp,
}

/// A pool of units shared by a parent's types.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    pub size: u32,
    /// What `create` returns once the pool cannot pay a type's cost.
    #[serde(default = "enospc")]
    pub errno: String,
}

fn enospc() -> String {
    "ENOSPC".into()
}

fn eusers() -> String {
    "EUSERS".into()
}

fn one() -> u32 {
    1
}

/// One `mdev_supported_types/<id>` directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeSpec {
    pub id: String,
    pub device_api: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Units of the parent's pool one device of this type takes.
    #[serde(default = "one")]
    pub cost: u32,
    /// A limit of this type alone.
    #[serde(default)]
    pub max_instances: Option<u32>,
    /// What `create` returns once `max_instances` is reached.
    #[serde(default = "eusers")]
    pub errno: String,
    /// Vendor attributes of each created device.
    #[serde(default)]
    pub attributes: Vec<AttrSpec>,
}

/// A vendor attribute file of a created device; `name` may hold one sub-directory (`nvidia/x`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttrSpec {
    pub name: String,
    #[serde(default)]
    pub mode: AttrMode,
    /// Initial content without the trailing newline; `{uuid}` is replaced by the device's UUID.
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub rule: WriteRule,
}

/// Permission bits as the vendor declares them (`ro` = 0444, `rw` = 0644, `wo` = 0200).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrMode {
    #[default]
    Ro,
    Rw,
    Wo,
}

impl AttrMode {
    pub fn bits(self) -> u16 {
        match self {
            AttrMode::Ro => 0o444,
            AttrMode::Rw => 0o644,
            AttrMode::Wo => 0o200,
        }
    }
}

/// How the vendor's store function checks a write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteRule {
    /// Anything is stored (one trailing newline dropped).
    #[default]
    Any,
    /// NVIDIA's `vgpu_params`: the value must end with a newline, else EINVAL.
    NewlineRequired,
    /// A `kstrtoul` number, else EINVAL/ERANGE.
    Number,
}

/// The AP bus as vfio_ap sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApBusSpec {
    /// `ap_max_adapter_id`: assigning a higher adapter gives ENODEV.
    #[serde(default = "max_id")]
    pub max_adapter: u32,
    /// `ap_max_domain_id`, also the limit for control domains.
    #[serde(default = "max_id")]
    pub max_domain: u32,
    /// Initial `bus/ap/apmask` (adapters kept by host drivers), `0x` + hex, leftmost bit = 0.
    pub apmask: String,
    /// Initial `bus/ap/aqmask` (domains kept by host drivers).
    pub aqmask: String,
}

fn max_id() -> u32 {
    255
}

impl Profile {
    /// A built-in profile by name.
    pub fn builtin(name: &str) -> Result<Profile, ProfileError> {
        let text = BUILTINS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| *text)
            .ok_or_else(|| ProfileError::UnknownBuiltin(name.to_string()))?;
        Profile::from_json(text, &format!("built-in '{name}'"))
    }

    /// Names and descriptions of the built-in profiles.
    pub fn builtin_names() -> Vec<(&'static str, String)> {
        BUILTINS
            .iter()
            .map(|(name, _)| {
                let description = Profile::builtin(name)
                    .map(|p| p.description)
                    .unwrap_or_default();
                (*name, description)
            })
            .collect()
    }

    /// A user profile from a JSON file.
    pub fn from_file(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Profile::from_json(&text, &path.display().to_string())
    }

    /// A built-in name, or else a path to a JSON file.
    pub fn by_name_or_path(arg: &str) -> Result<Profile, ProfileError> {
        if BUILTINS.iter().any(|(n, _)| *n == arg) {
            Profile::builtin(arg)
        } else if Path::new(arg).exists() {
            Profile::from_file(Path::new(arg))
        } else {
            Err(ProfileError::UnknownBuiltin(arg.to_string()))
        }
    }

    pub fn from_json(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        let profile: Profile = serde_json::from_str(text).map_err(|source| ProfileError::Json {
            origin: origin.to_string(),
            source,
        })?;
        profile.validate().map_err(|reason| ProfileError::Invalid {
            origin: origin.to_string(),
            reason,
        })?;
        Ok(profile)
    }

    /// Every concrete parent: numbered runs expanded, with their names.
    pub fn expanded(&self) -> Vec<(String, &ParentSpec)> {
        let mut out = Vec::new();
        for spec in &self.parents {
            match spec.count {
                Some(count) => {
                    for i in 0..count {
                        let n = spec.first.saturating_add(i);
                        out.push((spec.name.replace("{n}", &format!("{n:04x}")), spec));
                    }
                }
                None => out.push((spec.name.clone(), spec)),
            }
        }
        out
    }

    fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for (name, spec) in self.expanded() {
            check_name(&name, "parent name")?;
            if !seen.insert(name.clone()) {
                return Err(format!("parent '{name}' is listed twice"));
            }
            check_dir(&spec.dir)?;
            if let Some(bus) = &spec.bus {
                check_name(bus, "bus name")?;
            }
            if let Some(driver) = &spec.driver {
                check_name(driver, "driver name")?;
            }
            if let Some(driver) = &spec.bound_driver {
                check_name(driver, "driver name")?;
            }
            if let Some(pool) = &spec.pool {
                errno_of(&pool.errno)?;
            }
            if spec.kind == ParentKind::VfioAp && self.ap_bus.is_none() {
                return Err(format!("parent '{name}' is vfio_ap but there is no ap_bus"));
            }
            let mut types = std::collections::HashSet::new();
            for ty in &spec.types {
                check_name(&ty.id, "type id")?;
                if !types.insert(ty.id.as_str()) {
                    return Err(format!("type '{}' is listed twice on '{name}'", ty.id));
                }
                errno_of(&ty.errno)?;
                if ty.max_instances.is_none() && spec.pool.is_none() {
                    return Err(format!(
                        "type '{}' on '{name}' needs max_instances or a parent pool",
                        ty.id
                    ));
                }
                for attr in &ty.attributes {
                    check_attr_name(&attr.name)?;
                }
            }
        }
        crate::sriov::validate(&self.pci_gpus)?;
        if let Some(ap) = &self.ap_bus {
            crate::ap::Mask::parse_absolute(&ap.apmask)
                .map_err(|_| format!("ap_bus.apmask '{}' is not a 0x… mask", ap.apmask))?;
            crate::ap::Mask::parse_absolute(&ap.aqmask)
                .map_err(|_| format!("ap_bus.aqmask '{}' is not a 0x… mask", ap.aqmask))?;
            if ap.max_adapter > 255 || ap.max_domain > 255 {
                return Err("ap_bus limits must be at most 255".into());
            }
        }
        Ok(())
    }
}

/// An errno name from a profile, checked when the profile loads.
pub fn errno_of(name: &str) -> Result<Errno, String> {
    Errno::parse(name).ok_or_else(|| format!("unknown errno '{name}'"))
}

fn check_name(name: &str, what: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(format!("{what} '{name}' is not a valid file name"));
    }
    Ok(())
}

pub(crate) fn check_dir(dir: &str) -> Result<(), String> {
    if dir.starts_with('/') || dir.is_empty() {
        return Err(format!("dir '{dir}' must be relative to the sysfs root"));
    }
    for part in dir.split('/') {
        check_name(part, "dir component")?;
    }
    Ok(())
}

fn check_attr_name(name: &str) -> Result<(), String> {
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 2 {
        return Err(format!(
            "attribute '{name}' may have at most one sub-directory"
        ));
    }
    for part in parts {
        check_name(part, "attribute name")?;
    }
    if matches!(name, "remove" | "mdev_type" | "uevent" | "subsystem") {
        return Err(format!("attribute '{name}' is reserved by the mdev core"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_loads() {
        for (name, _) in Profile::builtin_names() {
            let p = Profile::builtin(name);
            assert!(p.is_ok(), "{name}: {p:?}");
        }
    }

    #[test]
    fn ccw_expands_to_thousands() {
        let p = Profile::builtin("vfio-ccw").unwrap_or_else(|e| panic!("{e}"));
        let parents = p.expanded();
        assert!(parents.len() >= 2000);
        assert!(parents.iter().any(|(n, _)| n == "0.0.0313"));
    }

    #[test]
    fn bad_profiles_are_refused() {
        let bad = r#"{"name":"x","parents":[{"name":"a/b","dir":"devices","types":[]}]}"#;
        assert!(Profile::from_json(bad, "t").is_err());
        let bad = r#"{"name":"x","parents":[],"bogus":1}"#;
        assert!(Profile::from_json(bad, "t").is_err());
    }
}
