//! The desired-state file (YAML, JSON accepted): parsing with line and column for every
//! schema error, then the semantic checks that need no host (`mdevkit validate`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::selector::Selector;
use crate::names::{Attr, AttrName, StartMode, Uuid};

/// The only format version so far.
pub const VERSION: u32 = 1;

/// Why a desired-state file was refused.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{origin}: {message}")]
    Schema { origin: String, message: String },
    #[error("{origin}: {message}")]
    Semantic { origin: String, message: String },
}

/// A parsed and checked desired-state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredFile {
    pub default_profile: Option<String>,
    pub profiles: BTreeMap<String, Vec<Entry>>,
}

/// One entry of a profile: a parent selector and the devices wanted on each parent it selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Any of these selects a parent.
    pub parents: Vec<Selector>,
    /// A selector that matches nothing is then not an error.
    pub optional: bool,
    pub devices: Vec<DeviceSpec>,
}

/// How a device is identified: a UUID the file names, or `count` derived ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    Explicit(Uuid),
    Counted(u32),
}

/// One wanted device (or counted group) on each selected parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    pub identity: Identity,
    /// A type id (`nvidia-230`) or a type's `name` (`GRID T4-4Q`), resolved per parent.
    pub mdev_type: String,
    pub start: StartMode,
    pub attrs: Vec<Attr>,
}

// ---- the raw schema -----------------------------------------------------------------------

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawFile {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_profile: Option<String>,
    pub profiles: BTreeMap<String, Vec<RawEntry>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEntry {
    pub parents: RawSelectors,
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
    pub devices: Vec<RawDevice>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub(crate) enum RawSelectors {
    One(RawSelector),
    Many(Vec<RawSelector>),
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub(crate) enum RawSelector {
    Name(String),
    Pci(PciSelector),
    Driver(DriverSelector),
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PciSelector {
    pub vendor: String,
    pub device: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DriverSelector {
    pub driver: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDevice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<Checked<Uuid>>,
    #[serde(rename = "type")]
    pub mdev_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<RawStart>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attrs: Vec<RawAttr>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawStart {
    Auto,
    Manual,
}

/// `- name: "value"`: exactly one field, as in `/etc/mdevctl.d`.
#[derive(Debug)]
pub(crate) struct RawAttr(pub Attr);

impl<'de> Deserialize<'de> for RawAttr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<Checked<AttrName>, String>::deserialize(d)?;
        let mut it = map.into_iter();
        match (it.next(), it.next()) {
            (Some((name, value)), None) => Ok(RawAttr(Attr {
                name: name.0,
                value,
            })),
            _ => Err(de::Error::custom(
                "an attribute is one `name: \"value\"` pair",
            )),
        }
    }
}

impl Serialize for RawAttr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.0.name.as_str(), &self.0.value)?;
        m.end()
    }
}

/// A validated name read from the file: a bad one is a schema error with its position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Checked<T>(pub T);

impl<'de, T> Deserialize<'de> for Checked<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(Checked).map_err(de::Error::custom)
    }
}

impl<T: fmt::Display> Serialize for Checked<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

// ---- parsing and checks -------------------------------------------------------------------

/// The largest `count`: far above what any parent offers (an SR-IOV function has at most
/// 65535 VFs), and small enough that deriving the UUIDs of a mistyped huge count refuses
/// instead of exhausting memory.
const MAX_COUNT: u32 = 65_536;

/// Parses `text` (YAML or JSON) read from `origin` (a path, or `-` for stdin).
pub fn parse(origin: &str, text: &str) -> Result<DesiredFile, FileError> {
    let raw: RawFile = serde_yaml_ng::from_str(text).map_err(|e| FileError::Schema {
        origin: match e.location() {
            Some(l) => format!("{origin}:{}:{}", l.line(), l.column()),
            None => origin.to_owned(),
        },
        message: strip_location(&e.to_string()),
    })?;
    check(origin, raw)
}

/// serde_yaml_ng appends " at line L column C" itself; the position is in the prefix already.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn check(origin: &str, raw: RawFile) -> Result<DesiredFile, FileError> {
    let bad = |message: String| FileError::Semantic {
        origin: origin.to_owned(),
        message,
    };
    if raw.version != VERSION {
        return Err(bad(format!(
            "version {} is not supported (this mdevkit reads version {VERSION})",
            raw.version
        )));
    }
    if raw.profiles.is_empty() {
        return Err(bad("the file has no profiles".into()));
    }
    if let Some(d) = &raw.default_profile {
        if !raw.profiles.contains_key(d) {
            return Err(bad(format!(
                "default-profile '{d}' is not one of the profiles: {}",
                raw.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let mut profiles = BTreeMap::new();
    for (name, raw_entries) in raw.profiles {
        let mut entries = Vec::new();
        let mut explicit = BTreeMap::new();
        for (ei, e) in raw_entries.into_iter().enumerate() {
            let at = |di: Option<usize>| match di {
                Some(di) => format!("profile '{name}', entry {ei}, device {di}"),
                None => format!("profile '{name}', entry {ei}"),
            };
            let sels = match e.parents {
                RawSelectors::One(s) => vec![s],
                RawSelectors::Many(v) => v,
            };
            if sels.is_empty() {
                return Err(bad(format!("{}: 'parents' is empty", at(None))));
            }
            let parents = sels
                .iter()
                .map(Selector::from_raw)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| bad(format!("{}: {m}", at(None))))?;
            let mut devices = Vec::new();
            for (di, d) in e.devices.into_iter().enumerate() {
                let identity = match (d.uuid, d.count) {
                    (Some(u), None | Some(1)) => {
                        if let Some(prev) = explicit.insert(u.0, at(Some(di))) {
                            return Err(bad(format!(
                                "{}: UUID {} is already claimed by {prev}",
                                at(Some(di)),
                                u.0
                            )));
                        }
                        Identity::Explicit(u.0)
                    }
                    (Some(_), Some(n)) => {
                        return Err(bad(format!(
                            "{}: a device with a uuid is one device, but count is {n}",
                            at(Some(di))
                        )))
                    }
                    (None, Some(n)) if n > MAX_COUNT => {
                        return Err(bad(format!(
                            "{}: count {n} is above {MAX_COUNT}",
                            at(Some(di))
                        )))
                    }
                    (None, n) => Identity::Counted(n.unwrap_or(1)),
                };
                if d.mdev_type.trim().is_empty() {
                    return Err(bad(format!("{}: 'type' is empty", at(Some(di)))));
                }
                let start = match d.start {
                    Some(RawStart::Manual) => StartMode::Manual,
                    Some(RawStart::Auto) | None => StartMode::Auto,
                };
                devices.push(DeviceSpec {
                    identity,
                    mdev_type: d.mdev_type,
                    start,
                    attrs: d.attrs.into_iter().map(|a| a.0).collect(),
                });
            }
            entries.push(Entry {
                parents,
                optional: e.optional,
                devices,
            });
        }
        super::ap::check_file_profile(&name, &entries).map_err(bad)?;
        profiles.insert(name, entries);
    }
    Ok(DesiredFile {
        default_profile: raw.default_profile,
        profiles,
    })
}

impl DesiredFile {
    /// Picks the profile: the one asked for, else the file's default.
    pub fn profile(&self, wanted: Option<&str>) -> Result<(&str, &[Entry]), ProfileError> {
        let name =
            wanted
                .or(self.default_profile.as_deref())
                .ok_or_else(|| ProfileError::NoneChosen {
                    known: self.profile_names(),
                })?;
        self.profiles
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .ok_or_else(|| ProfileError::Unknown {
                name: name.to_owned(),
                known: self.profile_names(),
            })
    }

    fn profile_names(&self) -> String {
        self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// A profile that cannot be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("no profile given (-c, MDEVKIT_PROFILE) and the file has no default-profile; profiles: {known}")]
    NoneChosen { known: String },
    #[error("unknown profile '{name}'; profiles: {known}")]
    Unknown { name: String, known: String },
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
version: 1
default-profile: desktops
profiles:
  desktops:
    - parents: {vendor: "0x10de", device: "0x1eb8"}
      devices:
        - type: "GRID T4-4Q"
          count: 4
          start: auto
    - parents: matrix
      devices:
        - uuid: 6c8ef8c3-9d8c-4c43-8d4f-5d1e0b6a9f10
          type: vfio_ap-passthrough
          start: auto
          attrs:
            - assign_adapter: "5"
            - assign_domain: "0x47"
"#;

    #[test]
    fn the_example_parses() {
        let f = parse("f.yaml", EXAMPLE).unwrap();
        let (name, entries) = f.profile(None).unwrap();
        assert_eq!(name, "desktops");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].devices[0].identity, Identity::Counted(4));
        assert_eq!(entries[1].devices[0].attrs.len(), 2);
        assert_eq!(entries[1].devices[0].attrs[1].value, "0x47");
    }

    #[test]
    fn json_is_accepted() {
        let f = parse(
            "f.json",
            r#"{"version": 1, "profiles": {"p": [{"parents": "all", "devices": [{"type": "t"}]}]}}"#,
        )
        .unwrap();
        assert_eq!(f.profiles["p"][0].parents, vec![Selector::All]);
    }

    #[test]
    fn an_unknown_field_names_line_and_column() {
        let text = "version: 1\nprofiles:\n  p:\n    - parents: all\n      colour: red\n      devices: []\n";
        let e = parse("f.yaml", text).unwrap_err().to_string();
        assert!(e.starts_with("f.yaml:5:7: "), "{e}");
        assert!(e.contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn version_is_required() {
        let e = parse("f", "profiles: {}\n").unwrap_err().to_string();
        assert!(e.contains("missing field `version`"), "{e}");
    }

    #[test]
    fn a_bad_uuid_or_attribute_name_is_a_schema_error_with_its_position() {
        let text = "version: 1\nprofiles:\n  p:\n    - parents: all\n      devices:\n        - {uuid: nope, type: t}\n";
        let e = parse("f", text).unwrap_err().to_string();
        assert!(e.starts_with("f:6:"), "{e}");
        assert!(e.contains("invalid UUID 'nope'"), "{e}");
        let text = "version: 1\nprofiles:\n  p:\n    - parents: all\n      devices:\n        - {type: t, attrs: [{../x: '1'}]}\n";
        let e = parse("f", text).unwrap_err().to_string();
        assert!(e.contains("invalid attribute name '../x'"), "{e}");
    }

    #[test]
    fn a_uuid_claimed_twice_is_refused() {
        let text = "version: 1\nprofiles:\n  p:\n    - parents: a\n      devices:\n        - {uuid: 6c8ef8c3-9d8c-4c43-8d4f-5d1e0b6a9f10, type: t}\n    - parents: b\n      devices:\n        - {uuid: 6c8ef8c3-9d8c-4c43-8d4f-5d1e0b6a9f10, type: t}\n";
        let e = parse("f", text).unwrap_err().to_string();
        assert!(
            e.contains("entry 1, device 0: UUID 6c8ef8c3-9d8c-4c43-8d4f-5d1e0b6a9f10 is already claimed by profile 'p', entry 0, device 0"),
            "{e}"
        );
    }

    #[test]
    fn a_count_above_the_limit_is_refused_before_any_uuid_is_derived() {
        let text = |n: u32| {
            format!("version: 1\nprofiles:\n  p:\n    - parents: all\n      devices:\n        - {{type: t, count: {n}}}\n")
        };
        let f = parse("f", &text(MAX_COUNT)).unwrap();
        assert_eq!(
            f.profiles["p"][0].devices[0].identity,
            Identity::Counted(MAX_COUNT)
        );
        let e = parse("f", &text(u32::MAX)).unwrap_err().to_string();
        assert!(
            e.ends_with("entry 0, device 0: count 4294967295 is above 65536"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_profile_lists_the_profiles() {
        let f = parse("f", EXAMPLE).unwrap();
        let e = f.profile(Some("servers")).unwrap_err().to_string();
        assert_eq!(e, "unknown profile 'servers'; profiles: desktops");
    }
}
