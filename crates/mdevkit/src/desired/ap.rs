//! vfio-ap conflicts: two devices must never hold the same APQN (adapter × domain), which
//! the kernel refuses with `EADDRINUSE` only once the second device is being built.
//! Checking the whole file (and the devices already there) first keeps apply all-or-nothing.

use std::collections::BTreeSet;

use super::file::{Entry, Identity};
use crate::names::Attr;

/// One AP queue: (adapter, domain).
pub type Apqn = (u64, u64);

/// Parses an id as the kernel's `kstrtoul(buf, 0)`: `0x` hex, leading `0` octal, else decimal.
fn parse_id(v: &str) -> Option<u64> {
    let t = v.strip_suffix('\n').unwrap_or(v);
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if t.len() > 1 && t.starts_with('0') {
        u64::from_str_radix(&t[1..], 8).ok()
    } else {
        t.parse().ok()
    }
}

/// The AP bus's id space: adapters and domains are below 256 (the width of `apmask` and
/// `aqmask`). The kernel refuses a larger id, so it assigns no queue; leaving it out also
/// bounds the cross product below to 65536 APQNs whatever a file lists.
const AP_IDS: u64 = 256;

/// The APQNs a device's ordered attributes assign (unparseable ids are left to the kernel).
pub fn apqns(attrs: &[Attr]) -> BTreeSet<Apqn> {
    let ids = |name: &str| -> BTreeSet<u64> {
        attrs
            .iter()
            .filter(|a| a.name.as_str() == name)
            .filter_map(|a| parse_id(&a.value))
            .filter(|id| *id < AP_IDS)
            .collect()
    };
    let domains = ids("assign_domain");
    ids("assign_adapter")
        .into_iter()
        .flat_map(|a| domains.iter().map(move |d| (a, *d)))
        .collect()
}

/// `aa.dddd`, as the kernel's `matrix` file prints an APQN.
pub fn show(q: Apqn) -> String {
    format!("{:02x}.{:04x}", q.0, q.1)
}

/// The first APQN two of `devices` share: (index, index, apqn).
pub fn first_conflict(devices: &[BTreeSet<Apqn>]) -> Option<(usize, usize, Apqn)> {
    for (i, a) in devices.iter().enumerate() {
        for (j, b) in devices.iter().enumerate().skip(i + 1) {
            if let Some(q) = a.intersection(b).next() {
                return Some((i, j, *q));
            }
        }
    }
    None
}

/// Conflicts visible in the file alone: two devices of a profile, or a counted device whose
/// instances would all assign the same queues.
pub(crate) fn check_file_profile(profile: &str, entries: &[Entry]) -> Result<(), String> {
    let mut labels = Vec::new();
    let mut sets = Vec::new();
    for (ei, e) in entries.iter().enumerate() {
        for (di, d) in e.devices.iter().enumerate() {
            let set = apqns(&d.attrs);
            if set.is_empty() {
                continue;
            }
            let label = format!("profile '{profile}', entry {ei}, device {di}");
            if let Identity::Counted(n) = d.identity {
                if n > 1 {
                    return Err(format!(
                        "{label}: vfio-ap conflict: all {n} devices would assign APQN {}",
                        show(set.iter().next().copied().unwrap_or_default())
                    ));
                }
            }
            labels.push(label);
            sets.push(set);
        }
    }
    match first_conflict(&sets) {
        Some((i, j, q)) => Err(format!(
            "{}: vfio-ap conflict: APQN {} is also assigned by {}",
            labels[j],
            show(q),
            labels[i]
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn attrs(list: &[(&str, &str)]) -> Vec<Attr> {
        list.iter()
            .map(|(n, v)| Attr {
                name: n.parse().unwrap(),
                value: (*v).to_owned(),
            })
            .collect()
    }

    #[test]
    fn ids_parse_like_kstrtoul() {
        assert_eq!(parse_id("0x47"), Some(0x47));
        assert_eq!(parse_id("010"), Some(8));
        assert_eq!(parse_id("5\n"), Some(5));
        assert_eq!(parse_id("0"), Some(0));
        assert_eq!(parse_id("x"), None);
    }

    #[test]
    fn the_cross_product_is_assigned_and_overlaps_are_found() {
        let a = apqns(&attrs(&[
            ("assign_adapter", "5"),
            ("assign_adapter", "6"),
            ("assign_domain", "0x47"),
        ]));
        assert_eq!(a, BTreeSet::from([(5, 0x47), (6, 0x47)]));
        let b = apqns(&attrs(&[("assign_domain", "71"), ("assign_adapter", "6")]));
        assert_eq!(first_conflict(&[a.clone(), b]), Some((0, 1, (6, 0x47))));
        let c = apqns(&attrs(&[
            ("assign_adapter", "6"),
            ("assign_domain", "0x48"),
        ]));
        assert_eq!(first_conflict(&[a, c]), None);
    }

    /// Thousands of listed ids (repeated, or past the AP bus's 255) give at most 256 × 256
    /// APQNs, not the product of the list lengths.
    #[test]
    fn many_listed_ids_stay_within_the_ap_id_space() {
        let values: Vec<String> = (0..4000u32).map(|i| (i % 300).to_string()).collect();
        let list: Vec<(&str, &str)> = values
            .iter()
            .flat_map(|v| {
                [
                    ("assign_adapter", v.as_str()),
                    ("assign_domain", v.as_str()),
                ]
            })
            .collect();
        let set = apqns(&attrs(&list));
        assert_eq!(set.len(), 256 * 256);
        assert_eq!(set.last(), Some(&(255, 255)));
        assert!(apqns(&attrs(&[("assign_adapter", "256"), ("assign_domain", "1")])).is_empty());
    }
}
