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
            .map_err(|e| NameError::Uuid {
                value: s.to_owned(),
                reason: e.to_string(),
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
}
