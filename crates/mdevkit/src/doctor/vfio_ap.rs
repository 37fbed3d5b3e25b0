//! Check `ap.queues`: the AP queues (adapter × domain) a vfio-ap definition assigns must
//! not be the host's (`bus/ap/apmask` and `aqmask` both set) nor another mdev's (its
//! `matrix` file).

use std::collections::BTreeSet;

use super::{read_trimmed, Check, Facts, Scope};
use crate::desired::ap::{apqns, show, Apqn};
use crate::host::Host;

const ID: &str = "ap.queues";

/// A `0x…` mask as the AP bus prints it: the leftmost bit is id 0.
fn mask_bits(text: &str) -> Option<Vec<bool>> {
    let hex = text.trim().strip_prefix("0x")?;
    let mut bits = Vec::with_capacity(hex.len().saturating_mul(4));
    for c in hex.chars() {
        let v = c.to_digit(16)?;
        for shift in (0..4).rev() {
            bits.push(v >> shift & 1 == 1);
        }
    }
    Some(bits)
}

fn bit(bits: &[bool], id: u64) -> bool {
    usize::try_from(id)
        .ok()
        .and_then(|i| bits.get(i).copied())
        .unwrap_or(false)
}

/// `aa.dddd` lines of a `matrix` file (lines with only one side name no queue).
fn matrix_apqns(text: &str) -> BTreeSet<Apqn> {
    text.lines()
        .filter_map(|l| {
            let (a, d) = l.trim().split_once('.')?;
            Some((
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(d, 16).ok()?,
            ))
        })
        .collect()
}

pub(super) fn check(host: &Host, facts: &Facts, scope: &Scope) -> Vec<Check> {
    let bus = host.roots().sysfs.join("bus/ap");
    let (apmask_path, aqmask_path) = (bus.join("apmask"), bus.join("aqmask"));
    let defs: Vec<_> = facts
        .defs
        .iter()
        .filter(|d| scope.uuid.is_none_or(|u| d.uuid == u))
        .filter(|d| scope.parent.as_ref().is_none_or(|p| d.parent == *p))
        .map(|d| (d, apqns(&d.config.attrs)))
        .filter(|(_, q)| !q.is_empty())
        .collect();
    if defs.is_empty() {
        return Vec::new();
    }
    let masks = read_trimmed(host, &apmask_path)
        .and_then(|a| mask_bits(&a))
        .zip(read_trimmed(host, &aqmask_path).and_then(|q| mask_bits(&q)));
    // What each active device holds, from its matrix file.
    let held: Vec<(String, BTreeSet<Apqn>)> = facts
        .active
        .values()
        .filter_map(|d| {
            let text = read_trimmed(host, &host.device_dir(&d.uuid).join("matrix"))?;
            Some((d.uuid.hyphenated(), matrix_apqns(&text)))
        })
        .collect();
    let mut out = Vec::new();
    for (def, wanted) in defs {
        let subject = def.uuid.hyphenated();
        let shown = |qs: &[Apqn]| qs.iter().map(|q| show(*q)).collect::<Vec<_>>();
        if let Some((ap, aq)) = &masks {
            let host_owned: Vec<Apqn> = wanted
                .iter()
                .copied()
                .filter(|(a, d)| bit(ap, *a) && bit(aq, *d))
                .collect();
            if !host_owned.is_empty() {
                out.push(Check::fail(
                    ID,
                    &subject,
                    format!(
                        "{} and {} give the host {}",
                        apmask_path.display(),
                        aqmask_path.display(),
                        super::list(&shown(&host_owned))
                    ),
                    "release them to vfio_ap: chzdev -t ap apmask=-ADAPTER aqmask=-DOMAIN (or write -ID to bus/ap/apmask, aqmask)",
                ));
                continue;
            }
        }
        let taken: Vec<String> = held
            .iter()
            .filter(|(u, _)| *u != subject)
            .filter_map(|(u, q)| {
                let both: Vec<Apqn> = q.intersection(&wanted).copied().collect();
                (!both.is_empty()).then(|| format!("{u} holds {}", super::list(&shown(&both))))
            })
            .collect();
        if !taken.is_empty() {
            out.push(Check::fail(
                ID,
                &subject,
                taken.join("; "),
                "stop the other device or assign other adapters or domains: a queue belongs to one mdev at a time",
            ));
            continue;
        }
        let evidence = match &masks {
            Some(_) => format!(
                "{} queue(s) free of the host's masks ({}, {}) and of other mdevs",
                wanted.len(),
                apmask_path.display(),
                aqmask_path.display()
            ),
            None => format!(
                "{} queue(s) held by no other mdev; {} unreadable",
                wanted.len(),
                apmask_path.display()
            ),
        };
        out.push(Check::ok(ID, &subject, evidence));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_count_from_the_leftmost_bit() {
        let bits = mask_bits("0xf000").unwrap_or_default();
        assert!(bit(&bits, 0) && bit(&bits, 3));
        assert!(!bit(&bits, 4) && !bit(&bits, 200));
        assert_eq!(mask_bits("f0"), None);
    }

    #[test]
    fn matrix_lines_name_queues() {
        let q = matrix_apqns("05.0004\n05.0047\n06.\n.0008\n");
        assert_eq!(q.into_iter().collect::<Vec<_>>(), [(5, 4), (5, 0x47)]);
    }
}
