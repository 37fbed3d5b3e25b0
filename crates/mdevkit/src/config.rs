//! The device definition JSON: `{"mdev_type", "start", "attrs"}`, as stored in
//! `/etc/mdevctl.d/<parent>/<uuid>`, read from `--jsonfile`, and passed to callouts.
//!
//! Reading follows upstream's rules (spec §3.1) but never panics; writing is byte-exact
//! (pretty, two-space indent, no trailing newline; compact for callouts).

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::names::{Attr, AttrName, NameError, StartMode, TypeName};

/// What is wrong with a definition's JSON.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("not valid JSON")]
    Json(#[source] serde_json::Error),
    #[error("not valid UTF-8")]
    NotUtf8,
    #[error("the file is empty")]
    Empty,
    #[error("not a JSON object")]
    NotAnObject,
    #[error("'mdev_type' is missing or null")]
    MissingType,
    #[error("'start' is missing or null")]
    MissingStart,
    #[error("'mdev_type' must be a string, found {found}")]
    TypeNotString { found: String },
    #[error("'attrs' is not an array")]
    AttrsNotArray,
    #[error("attribute {index} is not an object")]
    AttrNotObject { index: usize },
    #[error("attribute {index} must have exactly one field, found {count}")]
    AttrFieldCount { index: usize, count: usize },
    #[error("attribute {index} ('{name}'): value must be a string, found {found}")]
    AttrValueNotString {
        index: usize,
        name: String,
        found: String,
    },
    #[error("attribute {index}")]
    AttrName {
        index: usize,
        #[source]
        source: NameError,
    },
    #[error("'mdev_type'")]
    TypeName(#[source] NameError),
}

/// A device's persistent shape: type, start mode and ordered attributes.
///
/// Attribute order matters (vfio-ap checks each assignment against the ones before it),
/// and duplicates are allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    pub mdev_type: TypeName,
    pub start: StartMode,
    pub attrs: Vec<Attr>,
}

/// Which JSON layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonStyle {
    /// Pretty, two-space indent: config files and `--dumpjson`.
    Pretty,
    /// One line: what callouts get on stdin.
    Compact,
}

fn kind_of(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Interprets a JSON attribute array (from a config or a `get attributes` callout).
pub fn attrs_from_value(v: &Value) -> Result<Vec<Attr>, ConfigError> {
    let list = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(list) => list,
        _ => return Err(ConfigError::AttrsNotArray),
    };
    let mut attrs = Vec::with_capacity(list.len());
    for (index, item) in list.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(ConfigError::AttrNotObject { index });
        };
        let mut fields = map.iter();
        let (Some((name, value)), None) = (fields.next(), fields.next()) else {
            return Err(ConfigError::AttrFieldCount {
                index,
                count: map.len(),
            });
        };
        let Value::String(value) = value else {
            return Err(ConfigError::AttrValueNotString {
                index,
                // Escaped: the message stays one line whatever the name holds.
                name: name.escape_debug().to_string(),
                found: kind_of(value),
            });
        };
        let name = name
            .parse::<AttrName>()
            .map_err(|source| ConfigError::AttrName { index, source })?;
        attrs.push(Attr {
            name,
            value: value.clone(),
        });
    }
    Ok(attrs)
}

impl DeviceConfig {
    /// Parses a definition from raw bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ConfigError> {
        let text = std::str::from_utf8(bytes).map_err(|_| ConfigError::NotUtf8)?;
        if text.trim().is_empty() {
            return Err(ConfigError::Empty);
        }
        if let Ok(common) = serde_json::from_str::<Common<'_>>(text) {
            return common.into_config();
        }
        Self::from_general_json(text)
    }

    /// The general path: any JSON document, interpreted by [`DeviceConfig::from_value`],
    /// which names the problem when it is not a definition.
    fn from_general_json(text: &str) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_str(text).map_err(ConfigError::Json)?;
        Self::from_value(&value)
    }

    /// Interprets an already-parsed JSON value.
    pub fn from_value(value: &Value) -> Result<Self, ConfigError> {
        let Value::Object(map) = value else {
            return Err(ConfigError::NotAnObject);
        };
        let mdev_type = match map.get("mdev_type") {
            None | Some(Value::Null) => return Err(ConfigError::MissingType),
            Some(Value::String(s)) => s.parse::<TypeName>().map_err(ConfigError::TypeName)?,
            Some(other) => {
                return Err(ConfigError::TypeNotString {
                    found: kind_of(other),
                })
            }
        };
        // Anything but exactly "auto" means manual, as upstream does.
        let start = match map.get("start") {
            None | Some(Value::Null) => return Err(ConfigError::MissingStart),
            Some(Value::String(s)) if s == "auto" => StartMode::Auto,
            Some(_) => StartMode::Manual,
        };
        let attrs = attrs_from_value(map.get("attrs").unwrap_or(&Value::Null))?;
        Ok(DeviceConfig {
            mdev_type,
            start,
            attrs,
        })
    }

    /// The JSON text in the requested style, without a trailing newline.
    pub fn to_json(&self, style: JsonStyle) -> String {
        to_json_string(self, style)
    }
}

/// The shape nearly every stored definition has, read without building a `Value` tree
/// (a listing of thousands of definitions spends most of its CPU time there).
///
/// It accepts only documents the general path reads the same way: an object with a string
/// `mdev_type`, a string `start` and `attrs` absent, null or an array of objects with
/// exactly one string-valued member each, no key twice. Anything else (a duplicate key, a
/// null or a number where a string belongs, an attribute with two members...) fails here
/// and goes to the general path, which says what is wrong. Unknown members are ignored on
/// both paths.
#[derive(serde::Deserialize)]
struct Common<'a> {
    #[serde(borrow)]
    mdev_type: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    start: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    attrs: Option<Vec<OneAttr<'a>>>,
}

/// `{"name": "value"}`: an attribute object with exactly one member.
struct OneAttr<'a> {
    name: std::borrow::Cow<'a, str>,
    value: std::borrow::Cow<'a, str>,
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for OneAttr<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = OneAttr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object with one string member")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<Self::Value, M::Error> {
                use serde::de::Error;
                let (name, value) = m
                    .next_entry::<std::borrow::Cow<'de, str>, std::borrow::Cow<'de, str>>()?
                    .ok_or_else(|| M::Error::custom("no member"))?;
                // A second member, even the same name again, is the general path's case.
                if m.next_key::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(M::Error::custom("more than one member"));
                }
                Ok(OneAttr { name, value })
            }
        }
        d.deserialize_map(Visit)
    }
}

impl Common<'_> {
    /// The checks the general path makes on a document of this shape, in its order.
    fn into_config(self) -> Result<DeviceConfig, ConfigError> {
        let mdev_type = self
            .mdev_type
            .parse::<TypeName>()
            .map_err(ConfigError::TypeName)?;
        let start = if self.start == "auto" {
            StartMode::Auto
        } else {
            StartMode::Manual
        };
        let attrs = self
            .attrs
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(index, a)| {
                let name = a
                    .name
                    .parse::<AttrName>()
                    .map_err(|source| ConfigError::AttrName { index, source })?;
                Ok(Attr {
                    name,
                    value: a.value.into_owned(),
                })
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(DeviceConfig {
            mdev_type,
            start,
            attrs,
        })
    }
}

/// Serialises any of our output shapes; serialising our own types into a `String` cannot
/// fail, so an impossible error renders as empty rather than panicking.
pub(crate) fn to_json_string<T: Serialize + ?Sized>(value: &T, style: JsonStyle) -> String {
    let result = match style {
        JsonStyle::Pretty => serde_json::to_string_pretty(value),
        JsonStyle::Compact => serde_json::to_string(value),
    };
    result.unwrap_or_default()
}

/// The attribute list as JSON: `[{"name": "value"}, ...]`.
pub(crate) struct AttrList<'a>(pub &'a [Attr]);

impl Serialize for AttrList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct One<'a>(&'a Attr);
        impl Serialize for One<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(self.0.name.as_str(), &self.0.value)?;
                m.end()
            }
        }
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for a in self.0 {
            seq.serialize_element(&One(a))?;
        }
        seq.end()
    }
}

impl Serialize for DeviceConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("mdev_type", self.mdev_type.as_str())?;
        m.serialize_entry("start", self.start.as_str())?;
        m.serialize_entry("attrs", &AttrList(&self.attrs))?;
        m.end()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<DeviceConfig, ConfigError> {
        DeviceConfig::from_slice(s.as_bytes())
    }

    #[test]
    fn round_trip_is_byte_exact() {
        let text = "{\n  \"mdev_type\": \"i915-GVTg_V5_4\",\n  \"start\": \"auto\",\n  \"attrs\": [\n    {\n      \"assign_adapter\": \"5\"\n    }\n  ]\n}";
        let c = parse(text).unwrap();
        assert_eq!(c.to_json(JsonStyle::Pretty), text);
        assert_eq!(
            c.to_json(JsonStyle::Compact),
            r#"{"mdev_type":"i915-GVTg_V5_4","start":"auto","attrs":[{"assign_adapter":"5"}]}"#
        );
    }

    #[test]
    fn empty_attrs_are_written_as_empty_array() {
        let c = parse(r#"{"mdev_type":"t","start":"manual"}"#).unwrap();
        assert_eq!(
            c.to_json(JsonStyle::Pretty),
            "{\n  \"mdev_type\": \"t\",\n  \"start\": \"manual\",\n  \"attrs\": []\n}"
        );
    }

    #[test]
    fn any_start_but_auto_is_manual() {
        for s in [r#""manual""#, r#""AUTO""#, "7", "true"] {
            let c = parse(&format!(r#"{{"mdev_type":"t","start":{s}}}"#)).unwrap();
            assert_eq!(c.start, StartMode::Manual, "{s}");
        }
    }

    #[test]
    fn non_ascii_and_controls_match_upstream_escaping() {
        let c = parse(r#"{"mdev_type":"t","start":"auto","attrs":[{"a":"ä/\u0001\t"}]}"#).unwrap();
        assert_eq!(
            c.to_json(JsonStyle::Compact),
            r#"{"mdev_type":"t","start":"auto","attrs":[{"a":"ä/\u0001\t"}]}"#
        );
    }

    #[test]
    fn malformed_configs_name_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("", "the file is empty"),
            ("{", "not valid JSON"),
            ("[]", "not a JSON object"),
            (r#"{"start":"auto"}"#, "'mdev_type' is missing or null"),
            (r#"{"mdev_type":"t"}"#, "'start' is missing or null"),
            (
                r#"{"mdev_type":5,"start":"auto"}"#,
                "'mdev_type' must be a string, found the number 5",
            ),
            (
                r#"{"mdev_type":"t","start":"auto","attrs":{}}"#,
                "'attrs' is not an array",
            ),
            (
                r#"{"mdev_type":"t","start":"auto","attrs":[1]}"#,
                "attribute 0 is not an object",
            ),
            (
                r#"{"mdev_type":"t","start":"auto","attrs":[{"a":"1","b":"2"}]}"#,
                "attribute 0 must have exactly one field, found 2",
            ),
            (
                r#"{"mdev_type":"t","start":"auto","attrs":[{}]}"#,
                "attribute 0 must have exactly one field, found 0",
            ),
            (
                r#"{"mdev_type":"t","start":"auto","attrs":[{"a":1}]}"#,
                "attribute 0 ('a'): value must be a string, found the number 1",
            ),
            (
                r#"{"mdev_type":"t","start":"auto","attrs":[{"../x":"1"}]}"#,
                "attribute 0",
            ),
            (r#"{"mdev_type":"../t","start":"auto"}"#, "'mdev_type'"),
        ];
        for (input, want) in cases {
            let err = parse(input).unwrap_err();
            assert_eq!(err.to_string(), *want, "{input}");
        }
        assert!(matches!(
            DeviceConfig::from_slice(b"\xff\xfe"),
            Err(ConfigError::NotUtf8)
        ));
    }

    #[test]
    fn attribute_errors_escape_line_breaks() {
        let err = parse(r#"{"mdev_type":"t","start":"auto","attrs":[{"a\nb":1}]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "attribute 0 ('a\\nb'): value must be a string, found the number 1"
        );
    }

    mod properties {
        use proptest::prelude::*;
        use serde_json::{Map, Number};

        use super::*;
        use crate::error::chain;
        use crate::testing::{is_one_line, proptest_config};

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                Just("auto".to_owned()),
                Just("manual".to_owned()),
                "[a-z_./\\-\n\x00]{0,12}",
            ]
        }

        /// JSON values whose objects often use the definition's own keys, so that deep
        /// paths of the interpreter are reached, not just "not an object".
        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
                text().prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                let key = prop_oneof![
                    Just("mdev_type".to_owned()),
                    Just("start".to_owned()),
                    Just("attrs".to_owned()),
                    text(),
                ];
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                    proptest::collection::vec((key, inner), 0..5)
                        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
                ]
            })
        }

        /// An `attrs` value: mostly arrays of one-key objects, with anything mixed in.
        fn attr_list() -> impl Strategy<Value = Value> {
            let one = (text(), json())
                .prop_map(|(k, v)| Value::Object(std::iter::once((k, v)).collect::<Map<_, _>>()));
            let item = prop_oneof![4 => one, 1 => json()];
            prop_oneof![
                4 => proptest::collection::vec(item, 0..4).prop_map(Value::Array),
                1 => json(),
            ]
        }

        /// A definition-shaped document: the three keys with arbitrary values.
        fn definition() -> impl Strategy<Value = Value> {
            (
                attr_list(),
                json(),
                proptest::option::of(json()),
                text(),
                text(),
            )
                .prop_map(|(attrs, other, maybe_type, ty, start)| {
                    let mut m = Map::new();
                    m.insert("mdev_type".into(), maybe_type.unwrap_or(Value::String(ty)));
                    m.insert("start".into(), Value::String(start));
                    m.insert("attrs".into(), attrs);
                    m.insert("x".into(), other);
                    Value::Object(m)
                })
        }

        /// Parses, and checks what every outcome must satisfy: an error is one line; a
        /// parsed definition writes out and reads back as itself.
        fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
            match DeviceConfig::from_slice(bytes) {
                Ok(c) => {
                    for style in [JsonStyle::Pretty, JsonStyle::Compact] {
                        let text = c.to_json(style);
                        prop_assert!(!text.ends_with('\n'));
                        let back = DeviceConfig::from_slice(text.as_bytes()).ok();
                        prop_assert_eq!(back.as_ref(), Some(&c), "{}", text);
                    }
                }
                Err(e) => {
                    let text = chain(&e);
                    prop_assert!(is_one_line(&text), "{text}");
                }
            }
            Ok(())
        }

        /// An object written out by hand, so keys can repeat (a `Value` cannot hold that).
        fn raw_object() -> impl Strategy<Value = String> {
            let key = prop_oneof![
                Just("mdev_type".to_owned()),
                Just("start".to_owned()),
                Just("attrs".to_owned()),
                text(),
            ];
            let value = prop_oneof![
                2 => text().prop_map(Value::String),
                1 => attr_list(),
                1 => json(),
            ];
            proptest::collection::vec((key, value), 0..6).prop_map(|kv| {
                let members: Vec<String> = kv
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
                    .collect();
                format!("{{{}}}", members.join(","))
            })
        }

        /// The fast path and the general path agree on every document: the same
        /// definition, or the same error.
        fn same_as_general(text: &str) -> Result<(), TestCaseError> {
            let fast = DeviceConfig::from_slice(text.as_bytes()).map_err(|e| chain(&e));
            let general = DeviceConfig::from_general_json(text).map_err(|e| chain(&e));
            prop_assert_eq!(fast, general, "{}", text);
            Ok(())
        }

        proptest! {
            #![proptest_config(proptest_config(256))]

            #[test]
            fn the_common_shape_reads_as_the_general_path_does(v in definition()) {
                same_as_general(&v.to_string())?;
                same_as_general(&serde_json::to_string_pretty(&v).unwrap_or_default())?;
            }

            #[test]
            fn repeated_and_odd_members_read_as_the_general_path_does(text in raw_object()) {
                same_as_general(&text)?;
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                check(&bytes)?;
            }

            #[test]
            fn arbitrary_json_never_panics(v in json()) {
                check(v.to_string().as_bytes())?;
            }

            #[test]
            fn definition_shaped_json_parses_or_names_one_problem(v in definition()) {
                check(v.to_string().as_bytes())?;
                check(serde_json::to_string_pretty(&v).unwrap_or_default().as_bytes())?;
            }
        }
    }
}
