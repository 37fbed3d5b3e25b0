//! A parent's supported mdev types: `mdev_supported_types/<type>/{available_instances,
//! device_api,name,description}`.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::Skipped;
use crate::host::{EntryKind, Host};
use crate::names::{ParentName, TypeName};

/// One type a parent offers, as `types` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdevType {
    pub name: TypeName,
    pub available_instances: i64,
    pub device_api: String,
    /// Empty when the driver provides no `name` file.
    pub pretty_name: String,
    /// Empty when absent; newlines already turned into `, `.
    pub description: String,
}

/// Why a type directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TypeError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} does not hold a number: '{value}'", path.display())]
    NotANumber { path: PathBuf, value: String },
}

/// A sysfs value as text: lossy UTF-8, without the kernel's trailing newline or other
/// surrounding whitespace.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

fn read_error(path: &Path) -> impl FnOnce(io::Error) -> TypeError + '_ {
    move |source| TypeError::Read {
        path: path.to_owned(),
        source,
    }
}

/// Parses the contents of `path`, an `available_instances` file.
pub fn parse_instances(path: &Path, bytes: &[u8]) -> Result<i64, TypeError> {
    let value = text(bytes);
    value.parse().map_err(|_| TypeError::NotANumber {
        path: path.to_owned(),
        // Escaped: the message stays one line whatever the file holds.
        value: value.escape_debug().to_string(),
    })
}

/// Reads `available_instances` of one type directory; a missing file is reported with the
/// OS's own words.
pub fn available_instances(host: &Host, type_dir: &Path) -> Result<i64, TypeError> {
    let path = type_dir.join("available_instances");
    let bytes = host.read(&path).map_err(read_error(&path))?;
    parse_instances(&path, &bytes)
}

impl MdevType {
    /// A type from its `available_instances` and the raw contents of its other files
    /// (`None` for an absent `name` or `description`).
    pub fn from_values(
        name: TypeName,
        available_instances: i64,
        device_api: &[u8],
        pretty_name: Option<&[u8]>,
        description: Option<&[u8]>,
    ) -> Self {
        MdevType {
            name,
            available_instances,
            device_api: text(device_api),
            pretty_name: pretty_name.map(text).unwrap_or_default(),
            description: description
                .map(text)
                .unwrap_or_default()
                .replace('\n', ", "),
        }
    }
}

/// Reads one type directory; a missing `available_instances` or `device_api` is an error.
pub fn read_type(host: &Host, name: TypeName, dir: &Path) -> Result<MdevType, TypeError> {
    let available_instances = available_instances(host, dir)?;
    let read = |file: &str| {
        let path = dir.join(file);
        host.read(&path).map_err(read_error(&path))
    };
    let read_if_exists = |file: &str| {
        let path = dir.join(file);
        host.read_if_exists(&path).map_err(read_error(&path))
    };
    let device_api = read("device_api")?;
    let pretty_name = read_if_exists("name")?;
    let description = read_if_exists("description")?;
    Ok(MdevType::from_values(
        name,
        available_instances,
        &device_api,
        pretty_name.as_deref(),
        description.as_deref(),
    ))
}

/// The registered parents (optionally only one) and their types, sorted by name.
///
/// A parent without `mdev_supported_types`, or a type directory that cannot be read, is
/// skipped and reported instead of failing the whole listing (DIVERGENCES §4).
pub fn supported_types(
    host: &Host,
    only: Option<&ParentName>,
) -> (BTreeMap<ParentName, Vec<MdevType>>, Vec<Skipped>) {
    let mut out = BTreeMap::new();
    let mut skipped = Vec::new();
    let bus = host.mdev_bus_dir();
    let Ok(parents) = host.read_dir(&bus) else {
        return (out, skipped);
    };
    for entry in parents {
        let path = bus.join(&entry.name);
        let Some(parent) = entry
            .name
            .to_str()
            .and_then(|n| n.parse::<ParentName>().ok())
        else {
            skipped.push(Skipped {
                path,
                reason: "name is not a valid parent name".into(),
            });
            continue;
        };
        if only.is_some_and(|p| *p != parent) {
            continue;
        }
        let types_dir = path.join("mdev_supported_types");
        let type_entries = match host.read_dir(&types_dir) {
            Ok(t) => t,
            Err(e) => {
                skipped.push(Skipped {
                    path: types_dir,
                    reason: format!("parent skipped: {e}"),
                });
                continue;
            }
        };
        let mut types = Vec::new();
        for t in type_entries {
            let dir = types_dir.join(&t.name);
            // Type entries are directories; a symlink is followed to check.
            if t.kind != EntryKind::Dir && !(t.kind == EntryKind::Symlink && host.is_dir(&dir)) {
                continue;
            }
            let Some(name) = t.name.to_str().and_then(|n| n.parse::<TypeName>().ok()) else {
                skipped.push(Skipped {
                    path: dir,
                    reason: "name is not a valid type name".into(),
                });
                continue;
            };
            match read_type(host, name, &dir) {
                Ok(ty) => types.push(ty),
                Err(e) => skipped.push(Skipped {
                    path: dir,
                    reason: format!("type skipped: {}", crate::error::chain(&e)),
                }),
            }
        }
        types.sort_by(|a, b| a.name.cmp(&b.name));
        out.insert(parent, types);
    }
    (out, skipped)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const INSTANCES: &str = "/sys/x/mdev_supported_types/t/available_instances";

    #[test]
    fn instances_are_a_trimmed_decimal() {
        let path = Path::new(INSTANCES);
        assert_eq!(parse_instances(path, b"12\n").unwrap(), 12);
        assert_eq!(parse_instances(path, b" -1 ").unwrap(), -1);
        assert!(parse_instances(path, b"0x10\n").is_err());
        assert!(parse_instances(path, b"").is_err());
    }

    #[test]
    fn a_bad_count_is_named_on_one_line() {
        let err = parse_instances(Path::new(INSTANCES), b"1\n2\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{INSTANCES} does not hold a number: '1\\n2'")
        );
    }

    #[test]
    fn description_lines_are_joined() {
        let t = MdevType::from_values(
            "t".parse().unwrap(),
            1,
            b"vfio-pci\n",
            None,
            Some(b"low_gm_size: 128MB\nhigh_gm_size: 512MB\n"),
        );
        assert_eq!(t.device_api, "vfio-pci");
        assert_eq!(t.pretty_name, "");
        assert_eq!(t.description, "low_gm_size: 128MB, high_gm_size: 512MB");
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;
        use crate::error::chain;
        use crate::testing::{is_one_line, proptest_config};

        /// File contents: arbitrary bytes, and number-like text with whitespace around.
        fn contents() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..64),
                "[ \\t\\n]{0,2}[+-]?[0-9]{0,22}[ \\t\\n]{0,2}".prop_map(String::into_bytes),
                any::<i64>().prop_map(|n| format!("{n}\n").into_bytes()),
            ]
        }

        proptest! {
            #![proptest_config(proptest_config(512))]

            #[test]
            fn available_instances_parse_or_one_line_error(bytes in contents()) {
                let path = Path::new(INSTANCES);
                let lossy = String::from_utf8_lossy(&bytes);
                match parse_instances(path, &bytes) {
                    Ok(n) => prop_assert_eq!(lossy.trim().parse::<i64>().ok(), Some(n)),
                    Err(e) => {
                        prop_assert!(lossy.trim().parse::<i64>().is_err());
                        let text = chain(&e);
                        prop_assert!(is_one_line(&text), "{text}");
                    }
                }
            }

            #[test]
            fn type_values_are_trimmed_and_description_one_line(
                api in contents(),
                name in proptest::option::of(contents()),
                description in proptest::option::of(contents()),
            ) {
                let t = MdevType::from_values(
                    "t".parse().unwrap(),
                    0,
                    &api,
                    name.as_deref(),
                    description.as_deref(),
                );
                for v in [&t.device_api, &t.pretty_name, &t.description] {
                    prop_assert_eq!(v.trim(), v.as_str());
                }
                prop_assert!(!t.description.contains('\n'), "{:?}", t.description);
                if name.is_none() {
                    prop_assert_eq!(&t.pretty_name, "");
                }
            }
        }
    }
}
