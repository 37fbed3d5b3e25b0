//! Validated domain names: device UUIDs, parent, type and attribute names, start modes.
//!
//! Raw strings from the command line, sysfs, config files and scripts become one of these
//! types at the edge. Code that holds one never re-checks it, and paths are only ever built
//! from these types (see DIVERGENCES.md §9).

use std::fmt;
use std::path::{Component, Path};
use std::str::FromStr;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("invalid UUID '{value}': {reason}")]
    Uuid { value: String, reason: String },
    #[error("invalid {what} name '{value}': {reason}")]
    Name {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
}

/// An mdev UUID, always printed in lower-case hyphenated form.
///
/// Every form the uuid crate accepts (hyphenated, simple, braced, `urn:uuid:`, any case)
/// is taken, as upstream does; the canonical form is what lands in paths and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(uuid::Uuid);

impl Uuid {
    /// A fresh random (version 4) UUID for devices created without `--uuid`.
    pub fn new_random() -> Self {
        Uuid(uuid::Uuid::new_v4())
    }

    /// Wraps a UUID computed elsewhere (the stable UUIDs of counted devices).
    pub(crate) fn from_uuid(u: uuid::Uuid) -> Self {
        Uuid(u)
    }

    /// The canonical text: lower-case, hyphenated.
    pub fn hyphenated(&self) -> String {
        self.0.hyphenated().to_string()
    }
}

impl FromStr for Uuid {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s)
            .map(Uuid)
            // Escaped, as the uuid crate quotes the offending character: a message stays
            // one line whatever the input held.
            .map_err(|e| NameError::Uuid {
                value: s.escape_debug().to_string(),
                reason: e.to_string().escape_debug().to_string(),
            })
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// Checks shared by parent and type names: one safe path component.
fn check_component(what: &'static str, s: &str) -> Result<(), NameError> {
    let reason = if s.is_empty() {
        Some("it is empty")
    } else if s.contains('/') {
        Some("it contains '/'")
    } else if s.contains('\0') {
        Some("it contains a NUL byte")
    } else if s == "." || s == ".." {
        Some("it is '.' or '..'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(NameError::Name {
            what,
            value: s.escape_debug().to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

macro_rules! component_name {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The name as given; safe to use as one path component.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                check_component($what, s)?;
                Ok($name(s.to_owned()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<Path> for $name {
            fn as_ref(&self) -> &Path {
                Path::new(&self.0)
            }
        }
    };
}

component_name!(
    /// A parent device name as the kernel names it under `/sys/class/mdev_bus`
    /// (`0000:00:02.0`, `0.0.0313`, `matrix`, `mtty`). Case-sensitive.
    ParentName,
    "parent"
);
component_name!(
    /// An mdev type id (`<driver>-<name>`, e.g. `mtty-2`, `nvidia-222`, `vfio_ap-passthrough`).
    TypeName,
    "type"
);

/// A device attribute's name: a relative path inside the device's sysfs directory.
///
/// It may contain `/` for vendor sub-directories (`nvidia/vgpu_params`), but no `.` or `..`
/// component, no leading `/`, no empty component and no NUL, so joining it to the device
/// directory can never leave that directory by name. (Symlinks inside sysfs are checked
/// where the write happens.)
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttrName(String);

impl AttrName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AttrName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| {
            Err(NameError::Name {
                what: "attribute",
                value: s.escape_debug().to_string(),
                reason,
            })
        };
        if s.is_empty() {
            return bad("it is empty");
        }
        if s.contains('\0') {
            return bad("it contains a NUL byte");
        }
        if s.starts_with('/') {
            return bad("it is an absolute path");
        }
        if s.split('/').any(|c| c.is_empty()) {
            return bad("it has an empty path component");
        }
        for c in Path::new(s).components() {
            match c {
                Component::Normal(_) => {}
                _ => return bad("it has a '.' or '..' component"),
            }
        }
        // `Path::components` silently drops interior `.` components; refuse them too.
        if s.split('/').any(|c| c == "." || c == "..") {
            return bad("it has a '.' or '..' component");
        }
        Ok(AttrName(s.to_owned()))
    }
}

impl fmt::Display for AttrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<Path> for AttrName {
    fn as_ref(&self) -> &Path {
        Path::new(&self.0)
    }
}

/// Whether a definition is started automatically when its parent appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartMode {
    Auto,
    #[default]
    Manual,
}

impl StartMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StartMode::Auto => "auto",
            StartMode::Manual => "manual",
        }
    }
}

impl fmt::Display for StartMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One device attribute: a name and the raw value written to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub name: AttrName,
    pub value: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn uuid_forms_normalise_to_lower_hyphenated() {
        let want = "7777777a-bbbb-cccc-dddd-eeeeeeeeeeee";
        for form in [
            "7777777A-BBBB-CCCC-DDDD-EEEEEEEEEEEE",
            "7777777abbbbccccddddeeeeeeeeeeee",
            "{7777777a-bbbb-cccc-dddd-eeeeeeeeeeee}",
            "urn:uuid:7777777a-bbbb-cccc-dddd-eeeeeeeeeeee",
        ] {
            assert_eq!(form.parse::<Uuid>().unwrap().to_string(), want, "{form}");
        }
        assert!("not-a-uuid".parse::<Uuid>().is_err());
    }

    #[test]
    fn uuid_errors_escape_line_breaks() {
        let e = "\r".parse::<Uuid>().unwrap_err().to_string();
        assert_eq!(e, "invalid UUID '\\r': invalid character: found `\\r` at 0");
    }

    #[test]
    fn component_names_refuse_path_tricks() {
        for bad in ["", ".", "..", "../x", "a/b", "a\0b"] {
            assert!(bad.parse::<ParentName>().is_err(), "{bad:?}");
            assert!(bad.parse::<TypeName>().is_err(), "{bad:?}");
        }
        assert_eq!(
            "0000:00:02.0".parse::<ParentName>().unwrap().as_str(),
            "0000:00:02.0"
        );
        assert!("..hidden".parse::<ParentName>().is_ok());
    }

    #[test]
    fn attr_names_allow_vendor_subdirs_only() {
        assert!("nvidia/vgpu_params".parse::<AttrName>().is_ok());
        assert!("assign_adapter".parse::<AttrName>().is_ok());
        for bad in [
            "",
            "/etc/x",
            "../../etc/x",
            "a/../b",
            "a/./b",
            ".",
            "a//b",
            "a/",
            "x\0y",
        ] {
            assert!(bad.parse::<AttrName>().is_err(), "{bad:?}");
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;
        use crate::testing::{is_one_line, proptest_config};

        /// Strings that reach the checks: anything, UUID-ish text, and path-ish text with
        /// separators, dots, NULs and line breaks.
        fn raw_name() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                proptest::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),
                "[0-9a-fA-F{}:urnid\\-]{0,45}",
                "[a-z0-9_./\\-\n\r\x00]{0,24}",
            ]
        }

        proptest! {
            #![proptest_config(proptest_config(512))]

            #[test]
            fn uuid_parse_never_panics_and_accepts_only_round_trips(s in raw_name()) {
                match s.parse::<Uuid>() {
                    Ok(u) => {
                        let text = u.to_string();
                        prop_assert_eq!(text.len(), 36);
                        prop_assert_eq!(text.parse::<Uuid>(), Ok(u));
                    }
                    Err(e) => prop_assert!(is_one_line(&e.to_string()), "{e}"),
                }
            }

            #[test]
            fn component_names_are_exactly_one_normal_component(s in raw_name()) {
                for result in [
                    s.parse::<ParentName>().map(|n| n.to_string()),
                    s.parse::<TypeName>().map(|n| n.to_string()),
                ] {
                    match result {
                        Ok(name) => {
                            prop_assert_eq!(&name, &s);
                            let parts: Vec<Component<'_>> = Path::new(&name).components().collect();
                            prop_assert!(matches!(parts[..], [Component::Normal(_)]), "{name:?}");
                            prop_assert!(!name.contains('\0'));
                        }
                        Err(e) => prop_assert!(is_one_line(&e.to_string()), "{e}"),
                    }
                }
            }

            #[test]
            fn attr_names_stay_inside_the_device_directory(s in raw_name()) {
                match s.parse::<AttrName>() {
                    Ok(name) => {
                        let dev = Path::new("/sys/devices/x/dev");
                        let joined = dev.join(&name);
                        prop_assert!(joined.starts_with(dev), "{joined:?}");
                        prop_assert!(Path::new(name.as_str()).components().all(|c| matches!(c, Component::Normal(_))));
                        prop_assert!(s.split('/').all(|c| !c.is_empty() && c != "." && c != ".."));
                    }
                    Err(e) => prop_assert!(is_one_line(&e.to_string()), "{e}"),
                }
            }
        }
    }
}
