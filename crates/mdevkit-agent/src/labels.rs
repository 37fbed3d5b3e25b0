//! The node labels the agent reads and writes: validated label keys, and the values of
//! the state label.

use std::fmt;
use std::str::FromStr;

/// NVIDIA vgpu-device-manager's profile label, the default so that the agent can take
/// its place under the GPU operator.
pub const DEFAULT_PROFILE_LABEL: &str = "nvidia.com/vgpu.config";
/// NVIDIA vgpu-device-manager's state label.
pub const DEFAULT_STATE_LABEL: &str = "nvidia.com/vgpu.config.state";

/// A Kubernetes label key: an optional DNS-subdomain prefix and `/`, then a name of at
/// most 63 characters of alphanumerics, `-`, `_` and `.`, starting and ending with an
/// alphanumeric.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LabelKey(String);

/// Why a string is not a label key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelKeyError {
    #[error("label key '{}': the prefix is not a DNS subdomain (lower-case alphanumerics, '-' and '.', at most 253)", key.escape_debug())]
    Prefix { key: String },
    #[error("label key '{}': the name must be 1 to 63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric", key.escape_debug())]
    Name { key: String },
}

fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=63).contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn valid_prefix(prefix: &str) -> bool {
    prefix.len() <= 253
        && prefix.split('.').all(|part| {
            let b = part.as_bytes();
            (1..=63).contains(&b.len())
                && b.first()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && b.last()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

impl FromStr for LabelKey {
    type Err = LabelKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (prefix, name) = match s.split_once('/') {
            Some((p, n)) => (Some(p), n),
            None => (None, s),
        };
        if prefix.is_some_and(|p| !valid_prefix(p)) {
            return Err(LabelKeyError::Prefix { key: s.to_owned() });
        }
        if !valid_name(name) {
            return Err(LabelKeyError::Name { key: s.to_owned() });
        }
        Ok(LabelKey(s.to_owned()))
    }
}

impl LabelKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LabelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The two labels: which profile the node should have, and how applying it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelKeys {
    pub profile: LabelKey,
    pub state: LabelKey,
}

/// The values of the state label, as vgpu-device-manager writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileState {
    Pending,
    Success,
    Failed,
}

impl ProfileState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileState::Pending => "pending",
            ProfileState::Success => "success",
            ProfileState::Failed => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_follow_kubernetes_syntax() {
        for ok in [
            DEFAULT_PROFILE_LABEL,
            DEFAULT_STATE_LABEL,
            "mdevkit.io/profile",
            "mdevkit.io/profile.state",
            "profile",
        ] {
            assert_eq!(ok.parse::<LabelKey>().map(|k| k.to_string()), Ok(ok.into()));
        }
        for bad in ["", "a/", "/a", "A.io/x", "x/-a", "a/b/c", "x.io/a b"] {
            assert!(bad.parse::<LabelKey>().is_err(), "{bad}");
        }
        assert!(format!("{}/x", "a".repeat(64)).parse::<LabelKey>().is_err());
        assert!(format!("x/{}", "n".repeat(64)).parse::<LabelKey>().is_err());
        assert!(format!("x/{}", "n".repeat(63)).parse::<LabelKey>().is_ok());
    }
}
