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

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

fn read_text(host: &Host, path: &Path) -> Result<Option<String>, TypeError> {
    host.read_if_exists(path)
        .map(|o| o.as_deref().map(text))
        .map_err(|source| TypeError::Read {
            path: path.to_owned(),
            source,
        })
}

/// A file that must exist; a missing one is reported with the OS's own words.
fn required(host: &Host, path: &Path) -> Result<String, TypeError> {
    host.read(path)
        .map(|b| text(&b))
        .map_err(|source| TypeError::Read {
            path: path.to_owned(),
            source,
        })
}

/// Reads `available_instances` of one type directory.
pub fn available_instances(host: &Host, type_dir: &Path) -> Result<i64, TypeError> {
    let path = type_dir.join("available_instances");
    let text = required(host, &path)?;
    text.parse()
        .map_err(|_| TypeError::NotANumber { path, value: text })
}

/// Reads one type directory.
pub fn read_type(host: &Host, name: TypeName, dir: &Path) -> Result<MdevType, TypeError> {
    let available_instances = available_instances(host, dir)?;
    let device_api = required(host, &dir.join("device_api"))?;
    let pretty_name = read_text(host, &dir.join("name"))?.unwrap_or_default();
    let description = read_text(host, &dir.join("description"))?
        .unwrap_or_default()
        .replace('\n', ", ");
    Ok(MdevType {
        name,
        available_instances,
        device_api,
        pretty_name,
        description,
    })
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
