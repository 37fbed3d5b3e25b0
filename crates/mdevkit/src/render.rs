//! Byte-exact output of `list` and `types`, text and JSON (spec §4.1, §4.2).
//!
//! JSON is serde_json's pretty form (two-space indent) without a trailing newline; text
//! lines end in `\n`; an empty selection prints nothing (text) or `[]` (JSON).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::config::{to_json_string, AttrList, JsonStyle};
use crate::names::{Attr, ParentName, StartMode, TypeName, Uuid};
use crate::sysfs::supported::MdevType;

/// Which of the two listings a row belongs to, with its marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    None,
    /// In `list --defined`: an active device with the same UUID, parent and type exists.
    Active,
    /// In an active listing: a definition file exists for this parent and UUID.
    Defined,
}

/// One device row of `list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    pub uuid: Uuid,
    pub parent: ParentName,
    pub mdev_type: TypeName,
    pub start: StartMode,
    pub attrs: Vec<Attr>,
    pub marker: Marker,
}

/// Whether `list` shows attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Brief,
    Verbose,
}

/// The verbose attribute block; also used in `modify`'s index error.
pub fn attr_block(attrs: &[Attr]) -> String {
    let mut out = String::new();
    if attrs.is_empty() {
        return out;
    }
    out.push_str("  Attrs:\n");
    for (i, a) in attrs.iter().enumerate() {
        // Upstream inserts name and value raw, without JSON escaping; kept for scripts.
        let _ = writeln!(out, "    @{{{i}}}: {{\"{}\":\"{}\"}}", a.name, a.value);
    }
    out
}

/// `list` text: rows must already be sorted by parent, then UUID.
pub fn list_text(rows: &[ListRow], verbosity: Verbosity) -> String {
    let mut out = String::new();
    for r in rows {
        let marker = match r.marker {
            Marker::None => "",
            Marker::Active => " (active)",
            Marker::Defined => " (defined)",
        };
        let _ = writeln!(
            out,
            "{} {} {} {}{marker}",
            r.uuid, r.parent, r.mdev_type, r.start
        );
        if verbosity == Verbosity::Verbose {
            out.push_str(&attr_block(&r.attrs));
        }
    }
    out
}

struct DeviceBody<'a>(&'a ListRow);

impl Serialize for DeviceBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("mdev_type", self.0.mdev_type.as_str())?;
        m.serialize_entry("start", self.0.start.as_str())?;
        m.serialize_entry("attrs", &AttrList(&self.0.attrs))?;
        m.end()
    }
}

struct Keyed<K, V>(K, V);

impl<K: Serialize, V: Serialize> Serialize for Keyed<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(&self.0, &self.1)?;
        m.end()
    }
}

struct Grouped<'a, T>(BTreeMap<&'a str, Vec<T>>);

impl<T: Serialize> Serialize for Grouped<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// One array element holding every parent, or `[]`.
fn one_element_array<T: Serialize>(grouped: Grouped<'_, T>) -> String {
    struct Outer<'a, T>(Grouped<'a, T>);
    impl<T: Serialize> Serialize for Outer<'_, T> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let n = usize::from(!self.0 .0.is_empty());
            let mut seq = s.serialize_seq(Some(n))?;
            if n == 1 {
                seq.serialize_element(&self.0)?;
            }
            seq.end()
        }
    }
    to_json_string(&Outer(grouped), JsonStyle::Pretty)
}

/// Whether `list --dumpjson` was asked about one UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonShape {
    /// The hierarchy `[{parent: [{uuid: {...}}]}]`.
    Hierarchy,
    /// `--uuid` given: the bare object when at most one device matched.
    SingleUuid,
}

/// `list --dumpjson`.
pub fn list_json(rows: &[ListRow], shape: JsonShape) -> String {
    if shape == JsonShape::SingleUuid && rows.len() <= 1 {
        return match rows.first() {
            Some(r) => to_json_string(&DeviceBody(r), JsonStyle::Pretty),
            None => "[]".to_owned(),
        };
    }
    let mut grouped: BTreeMap<&str, Vec<Keyed<String, DeviceBody<'_>>>> = BTreeMap::new();
    for r in rows {
        grouped
            .entry(r.parent.as_str())
            .or_default()
            .push(Keyed(r.uuid.hyphenated(), DeviceBody(r)));
    }
    one_element_array(Grouped(grouped))
}

/// `types` text.
pub fn types_text(parents: &BTreeMap<ParentName, Vec<MdevType>>) -> String {
    let mut out = String::new();
    for (parent, types) in parents {
        let _ = writeln!(out, "{parent}");
        for t in types {
            let _ = writeln!(out, "  {}", t.name);
            let _ = writeln!(out, "    Available instances: {}", t.available_instances);
            let _ = writeln!(out, "    Device API: {}", t.device_api);
            if !t.pretty_name.is_empty() {
                let _ = writeln!(out, "    Name: {}", t.pretty_name);
            }
            if !t.description.is_empty() {
                let _ = writeln!(out, "    Description: {}", t.description);
            }
        }
    }
    out
}

struct TypeBody<'a>(&'a MdevType);

impl Serialize for TypeBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("available_instances", &t.available_instances)?;
        m.serialize_entry("device_api", &t.device_api)?;
        if !t.pretty_name.is_empty() {
            m.serialize_entry("name", &t.pretty_name)?;
        }
        if !t.description.is_empty() {
            m.serialize_entry("description", &t.description)?;
        }
        m.end()
    }
}

/// `types --dumpjson`.
pub fn types_json(parents: &BTreeMap<ParentName, Vec<MdevType>>) -> String {
    let grouped = parents
        .iter()
        .map(|(p, types)| {
            let v: Vec<_> = types
                .iter()
                .map(|t| Keyed(t.name.as_str(), TypeBody(t)))
                .collect();
            (p.as_str(), v)
        })
        .collect();
    one_element_array(Grouped(grouped))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const U1: &str = "11111111-1111-4111-8111-1111111111ab";
    const U2: &str = "22222222-2222-4222-8222-2222222222cd";

    fn attr(name: &str, value: &str) -> Attr {
        Attr {
            name: name.parse().unwrap(),
            value: value.to_owned(),
        }
    }

    fn row(uuid: &str, parent: &str, ty: &str, start: StartMode, marker: Marker) -> ListRow {
        ListRow {
            uuid: uuid.parse().unwrap(),
            parent: parent.parse().unwrap(),
            mdev_type: ty.parse().unwrap(),
            start,
            attrs: Vec::new(),
            marker,
        }
    }

    fn mdev_type(name: &str, n: i64, pretty: &str, desc: &str) -> MdevType {
        MdevType {
            name: name.parse().unwrap(),
            available_instances: n,
            device_api: "vfio-pci".to_owned(),
            pretty_name: pretty.to_owned(),
            description: desc.to_owned(),
        }
    }

    #[test]
    fn list_text_prints_markers_and_start_modes() {
        let rows = [
            row(U1, "p", "t", StartMode::Auto, Marker::Active),
            row(U2, "p", "t", StartMode::Manual, Marker::Defined),
            row(U2, "q", "u", StartMode::Manual, Marker::None),
        ];
        assert_eq!(
            list_text(&rows, Verbosity::Brief),
            format!("{U1} p t auto (active)\n{U2} p t manual (defined)\n{U2} q u manual\n")
        );
    }

    #[test]
    fn list_text_empty_is_empty() {
        assert_eq!(list_text(&[], Verbosity::Verbose), "");
    }

    #[test]
    fn list_text_verbose_appends_attr_block_only_when_attrs_exist() {
        let mut with = row(U1, "p", "t", StartMode::Auto, Marker::None);
        with.attrs = vec![attr("a", "1"), attr("nvidia/x", "2")];
        let without = row(U2, "p", "t", StartMode::Auto, Marker::None);
        let text = list_text(&[with.clone(), without.clone()], Verbosity::Verbose);
        assert_eq!(
            text,
            format!(
                "{U1} p t auto\n  Attrs:\n    @{{0}}: {{\"a\":\"1\"}}\n    \
                 @{{1}}: {{\"nvidia/x\":\"2\"}}\n{U2} p t auto\n"
            )
        );
        assert_eq!(
            list_text(&[with, without], Verbosity::Brief),
            format!("{U1} p t auto\n{U2} p t auto\n")
        );
    }

    #[test]
    fn attr_block_inserts_values_raw() {
        assert_eq!(attr_block(&[]), "");
        assert_eq!(
            attr_block(&[attr("a", "\"q\"\\\nx")]),
            "  Attrs:\n    @{0}: {\"a\":\"\"q\"\\\nx\"}\n"
        );
    }

    #[test]
    fn list_json_empty_is_empty_array_in_both_shapes() {
        assert_eq!(list_json(&[], JsonShape::Hierarchy), "[]");
        assert_eq!(list_json(&[], JsonShape::SingleUuid), "[]");
    }

    #[test]
    fn list_json_single_uuid_with_one_row_is_the_bare_object() {
        let mut r = row(U1, "p", "t", StartMode::Auto, Marker::Active);
        r.attrs = vec![attr("a", "1")];
        assert_eq!(
            list_json(&[r], JsonShape::SingleUuid),
            "{\n  \"mdev_type\": \"t\",\n  \"start\": \"auto\",\n  \"attrs\": [\n    {\n      \
             \"a\": \"1\"\n    }\n  ]\n}"
        );
    }

    #[test]
    fn list_json_single_uuid_with_two_rows_is_the_hierarchy() {
        let rows = [
            row(U1, "p", "t", StartMode::Auto, Marker::None),
            row(U1, "q", "t", StartMode::Manual, Marker::None),
        ];
        assert_eq!(
            list_json(&rows, JsonShape::SingleUuid),
            list_json(&rows, JsonShape::Hierarchy)
        );
    }

    #[test]
    fn list_json_hierarchy_groups_rows_by_parent() {
        let rows = [
            row(U1, "p", "t", StartMode::Auto, Marker::Defined),
            row(U2, "p", "u", StartMode::Manual, Marker::None),
            row(U1, "q", "t", StartMode::Manual, Marker::None),
        ];
        let want = format!(
            "[\n  {{\n    \"p\": [\n      {{\n        \"{U1}\": {{\n          \
             \"mdev_type\": \"t\",\n          \"start\": \"auto\",\n          \"attrs\": []\n        \
             }}\n      }},\n      {{\n        \"{U2}\": {{\n          \"mdev_type\": \"u\",\n          \
             \"start\": \"manual\",\n          \"attrs\": []\n        }}\n      }}\n    ],\n    \
             \"q\": [\n      {{\n        \"{U1}\": {{\n          \"mdev_type\": \"t\",\n          \
             \"start\": \"manual\",\n          \"attrs\": []\n        }}\n      }}\n    ]\n  }}\n]"
        );
        assert_eq!(list_json(&rows, JsonShape::Hierarchy), want);
    }

    #[test]
    fn types_text_and_json_for_no_parents() {
        let empty = BTreeMap::new();
        assert_eq!(types_text(&empty), "");
        assert_eq!(types_json(&empty), "[]");
    }

    #[test]
    fn types_text_omits_empty_name_and_description() {
        let mut parents = BTreeMap::new();
        parents.insert(
            "p".parse().unwrap(),
            vec![mdev_type("a", -1, "", ""), mdev_type("b", 2, "B", "x, y")],
        );
        parents.insert("q".parse().unwrap(), Vec::new());
        assert_eq!(
            types_text(&parents),
            "p\n  a\n    Available instances: -1\n    Device API: vfio-pci\n  b\n    \
             Available instances: 2\n    Device API: vfio-pci\n    Name: B\n    \
             Description: x, y\nq\n"
        );
    }

    #[test]
    fn types_json_keeps_key_order_and_omits_empty_fields() {
        let mut parents = BTreeMap::new();
        parents.insert(
            "p".parse().unwrap(),
            vec![mdev_type("a", 1, "", "d"), mdev_type("b", 2, "B", "")],
        );
        parents.insert("q".parse().unwrap(), Vec::new());
        assert_eq!(
            types_json(&parents),
            "[\n  {\n    \"p\": [\n      {\n        \"a\": {\n          \
             \"available_instances\": 1,\n          \"device_api\": \"vfio-pci\",\n          \
             \"description\": \"d\"\n        }\n      },\n      {\n        \"b\": {\n          \
             \"available_instances\": 2,\n          \"device_api\": \"vfio-pci\",\n          \
             \"name\": \"B\"\n        }\n      }\n    ],\n    \"q\": []\n  }\n]"
        );
    }
}
