//! Parent selectors: an exact name, a shell glob on the name, PCI vendor/device ids, the
//! bound driver, or `all`.

use std::fmt;

use super::file::RawSelector;
use crate::names::ParentName;
use crate::observed::ObservedParent;

/// Which parents an entry means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    All,
    Exact(ParentName),
    /// A shell glob (`*`, `?`, `[...]`) on the parent's name.
    Glob(String),
    /// The parent's own PCI ids (its sysfs `vendor` and `device` files).
    Pci {
        vendor: u16,
        device: u16,
    },
    /// The driver bound to the parent (its `driver` link).
    Driver(String),
}

/// `0x10de`, `10de` (hex, as sysfs prints them and `lspci -n` shows them).
pub fn parse_pci_id(s: &str) -> Option<u16> {
    let t = s.trim();
    let hex = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if hex.is_empty() || hex.len() > 4 {
        return None;
    }
    u16::from_str_radix(hex, 16).ok()
}

impl Selector {
    pub(crate) fn from_raw(raw: &RawSelector) -> Result<Selector, String> {
        Ok(match raw {
            RawSelector::Name(n) if n == "all" => Selector::All,
            RawSelector::Name(n) if n.contains(['*', '?', '[']) => Selector::Glob(n.clone()),
            RawSelector::Name(n) => Selector::Exact(n.parse().map_err(|e| format!("{e}"))?),
            RawSelector::Pci(p) => {
                let id = |what: &str, v: &str| {
                    parse_pci_id(v).ok_or_else(|| {
                        format!("PCI {what} id '{v}' is not a hex number like 0x10de")
                    })
                };
                Selector::Pci {
                    vendor: id("vendor", &p.vendor)?,
                    device: id("device", &p.device)?,
                }
            }
            RawSelector::Driver(d) if d.driver.is_empty() => return Err("'driver' is empty".into()),
            RawSelector::Driver(d) => Selector::Driver(d.driver.clone()),
        })
    }

    pub fn matches(&self, name: &ParentName, parent: &ObservedParent) -> bool {
        match self {
            Selector::All => true,
            Selector::Exact(n) => n == name,
            Selector::Glob(g) => glob_match(g.as_bytes(), name.as_str().as_bytes()),
            Selector::Pci { vendor, device } => parent
                .pci
                .is_some_and(|p| p.vendor == *vendor && p.device == *device),
            Selector::Driver(d) => parent.driver.as_deref() == Some(d.as_str()),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::All => f.write_str("all"),
            Selector::Exact(n) => write!(f, "{n}"),
            Selector::Glob(g) => write!(f, "{g}"),
            Selector::Pci { vendor, device } => {
                write!(f, "{{vendor: 0x{vendor:04x}, device: 0x{device:04x}}}")
            }
            Selector::Driver(d) => write!(f, "{{driver: {d}}}"),
        }
    }
}

/// fnmatch(3) without flags: `*`, `?` and bracket expressions (`[a-f]`, `[!0]`).
fn glob_match(pat: &[u8], name: &[u8]) -> bool {
    match pat.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| glob_match(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && glob_match(rest, &name[1..]),
        Some((b'[', rest)) => {
            let Some((&c, tail)) = name.split_first() else {
                return false;
            };
            match bracket(rest, c) {
                Some((true, after)) => glob_match(after, tail),
                Some((false, _)) => false,
                // An unclosed `[` is a literal.
                None => c == b'[' && glob_match(rest, tail),
            }
        }
        Some((&p, rest)) => name.first() == Some(&p) && glob_match(rest, &name[1..]),
    }
}

/// Matches `c` against the bracket expression after `[`; returns (matched, rest of pattern).
fn bracket(pat: &[u8], c: u8) -> Option<(bool, &[u8])> {
    let (negate, mut p) = match pat.first() {
        Some(b'!') | Some(b'^') => (true, &pat[1..]),
        _ => (false, pat),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        match p {
            [] => return None,
            [b']', rest @ ..] if !first => return Some((matched != negate, rest)),
            [lo, b'-', hi, rest @ ..] if *hi != b']' => {
                matched |= (*lo..=*hi).contains(&c);
                p = rest;
            }
            [x, rest @ ..] => {
                matched |= *x == c;
                p = rest;
            }
        }
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_fnmatch() {
        let m = |p: &str, n: &str| glob_match(p.as_bytes(), n.as_bytes());
        assert!(m("0000:8?:00.0", "0000:83:00.0"));
        assert!(m("0000:*", "0000:83:00.0"));
        assert!(!m("0000:*", "matrix"));
        assert!(m("0.0.0[3-4]*", "0.0.0313"));
        assert!(!m("0.0.0[!3]*", "0.0.0313"));
        assert!(m("*", ""));
        assert!(m("a[", "a["));
    }

    #[test]
    fn pci_ids_are_hex() {
        assert_eq!(parse_pci_id("0x10de"), Some(0x10de));
        assert_eq!(parse_pci_id("10DE\n"), Some(0x10de));
        assert_eq!(parse_pci_id("0x"), None);
        assert_eq!(parse_pci_id("0x10de0"), None);
    }
}
