//! vfio_ap: the AP bus masks and each matrix mdev's adapter/domain/control-domain assignments.

use crate::parse::{kstrtoul, Errno};

/// 256 AP ids as the kernel keeps them: `0x…` text is read left to right, the leftmost bit is id 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mask([u64; 4]);

impl Mask {
    pub fn get(&self, id: u32) -> bool {
        let (word, bit) = Self::slot(id);
        self.0.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    pub fn set(&mut self, id: u32, on: bool) {
        let (word, bit) = Self::slot(id);
        if let Some(w) = self.0.get_mut(word) {
            if on {
                *w |= 1 << bit;
            } else {
                *w &= !(1 << bit);
            }
        }
    }

    fn slot(id: u32) -> (usize, u32) {
        ((id / 64) as usize, 63 - id % 64)
    }

    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        (0..256).filter(|&id| self.get(id))
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    pub fn intersects(&self, other: &Mask) -> bool {
        self.0.iter().zip(other.0.iter()).any(|(a, b)| a & b != 0)
    }

    pub fn max_id(&self) -> Option<u32> {
        self.ids().last()
    }

    /// `0x` followed by 1 to 64 hex digits (one trailing newline allowed); missing digits on
    /// the right are zero, as the AP bus's `hex2bitmap` reads them.
    pub fn parse_absolute(text: &str) -> Result<Mask, Errno> {
        let text = text.strip_suffix('\n').unwrap_or(text);
        let digits = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .ok_or(Errno::EINVAL)?;
        if digits.is_empty() || digits.len() > 64 {
            return Err(Errno::EINVAL);
        }
        let mut mask = Mask::default();
        for (pos, c) in digits.chars().enumerate() {
            let nibble = c.to_digit(16).ok_or(Errno::EINVAL)?;
            let base = u32::try_from(pos).map_err(|_| Errno::EINVAL)? * 4;
            for k in 0..4 {
                mask.set(base + k, nibble & (8 >> k) != 0);
            }
        }
        Ok(mask)
    }

    /// What `bus/ap/apmask` accepts: an absolute `0x…` mask, or a relative list such as
    /// `+4,-2,+8-11` applied to the current mask.
    pub fn parse_edit(&self, text: &str, max: u32) -> Result<Mask, Errno> {
        let text = text.strip_suffix('\n').unwrap_or(text);
        if text.starts_with("0x") || text.starts_with("0X") {
            return Mask::parse_absolute(text);
        }
        let mut mask = *self;
        for term in text.split(',') {
            let (on, range) = if let Some(rest) = term.strip_prefix('+') {
                (true, rest)
            } else if let Some(rest) = term.strip_prefix('-') {
                (false, rest)
            } else {
                return Err(Errno::EINVAL);
            };
            let (lo, hi) = match range.split_once('-') {
                Some((lo, hi)) => (id_of(lo)?, id_of(hi)?),
                None => (id_of(range)?, id_of(range)?),
            };
            if lo > hi || hi > max {
                return Err(Errno::EINVAL);
            }
            for id in lo..=hi {
                mask.set(id, on);
            }
        }
        Ok(mask)
    }

    /// The kernel's `0x%016lx%016lx%016lx%016lx` spelling.
    pub fn to_hex(self) -> String {
        let [a, b, c, d] = self.0;
        format!("0x{a:016x}{b:016x}{c:016x}{d:016x}")
    }
}

fn id_of(text: &str) -> Result<u32, Errno> {
    let n = kstrtoul(text.as_bytes())?;
    u32::try_from(n).map_err(|_| Errno::ERANGE)
}

/// The AP bus: ids the machine supports and the masks of what host drivers keep.
#[derive(Debug, Clone)]
pub struct ApBus {
    pub max_adapter: u32,
    pub max_domain: u32,
    pub apmask: Mask,
    pub aqmask: Mask,
}

impl ApBus {
    /// Whether the APQN (adapter, domain) belongs to host drivers (both mask bits set).
    fn host_owns(&self, apm: &Mask, aqm: &Mask) -> bool {
        apm.intersects(&self.apmask) && aqm.intersects(&self.aqmask)
    }
}

/// What one matrix mdev has assigned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matrix {
    pub apm: Mask,
    pub aqm: Mask,
    pub adm: Mask,
}

/// The vfio_ap attribute files of a matrix mdev.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApAttr {
    AssignAdapter,
    UnassignAdapter,
    AssignDomain,
    UnassignDomain,
    AssignControlDomain,
    UnassignControlDomain,
    Matrix,
    GuestMatrix,
    ControlDomains,
    ApConfig,
}

impl ApAttr {
    pub const ALL: [ApAttr; 10] = [
        ApAttr::AssignAdapter,
        ApAttr::UnassignAdapter,
        ApAttr::AssignDomain,
        ApAttr::UnassignDomain,
        ApAttr::AssignControlDomain,
        ApAttr::UnassignControlDomain,
        ApAttr::Matrix,
        ApAttr::GuestMatrix,
        ApAttr::ControlDomains,
        ApAttr::ApConfig,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            ApAttr::AssignAdapter => "assign_adapter",
            ApAttr::UnassignAdapter => "unassign_adapter",
            ApAttr::AssignDomain => "assign_domain",
            ApAttr::UnassignDomain => "unassign_domain",
            ApAttr::AssignControlDomain => "assign_control_domain",
            ApAttr::UnassignControlDomain => "unassign_control_domain",
            ApAttr::Matrix => "matrix",
            ApAttr::GuestMatrix => "guest_matrix",
            ApAttr::ControlDomains => "control_domains",
            ApAttr::ApConfig => "ap_config",
        }
    }

    /// Permission bits: the assign files are write-only, the views read-only, `ap_config` both.
    pub fn mode(self) -> u16 {
        match self {
            ApAttr::Matrix | ApAttr::GuestMatrix | ApAttr::ControlDomains => 0o444,
            ApAttr::ApConfig => 0o644,
            _ => 0o200,
        }
    }
}

/// Renders a read-only view.
pub fn show(attr: ApAttr, m: &Matrix) -> String {
    match attr {
        // The guest gets what is assigned: the simulator has no unbound queues to filter out.
        ApAttr::Matrix | ApAttr::GuestMatrix => {
            let mut out = String::new();
            match (m.apm.is_empty(), m.aqm.is_empty()) {
                (false, false) => {
                    for a in m.apm.ids() {
                        for d in m.aqm.ids() {
                            out.push_str(&format!("{a:02x}.{d:04x}\n"));
                        }
                    }
                }
                (false, true) => m
                    .apm
                    .ids()
                    .for_each(|a| out.push_str(&format!("{a:02x}.\n"))),
                (true, false) => m
                    .aqm
                    .ids()
                    .for_each(|d| out.push_str(&format!(".{d:04x}\n"))),
                (true, true) => {}
            }
            out
        }
        ApAttr::ControlDomains => m.adm.ids().map(|d| format!("{d:04x}\n")).collect(),
        ApAttr::ApConfig => format!("{},{},{}\n", m.apm.to_hex(), m.aqm.to_hex(), m.adm.to_hex()),
        _ => String::new(),
    }
}

/// Applies a write to one mdev's matrix, checked against the bus and the other mdevs'
/// matrices as vfio_ap does: each assignment is checked against the cross product with what is
/// already assigned, which is why the order of assignments matters.
pub fn store(
    bus: &ApBus,
    current: &Matrix,
    others: &[&Matrix],
    attr: ApAttr,
    data: &[u8],
) -> Result<Matrix, Errno> {
    let mut m = current.clone();
    if attr == ApAttr::ApConfig {
        let text = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let parts: Vec<&str> = text.split(',').collect();
        let [apm, aqm, adm] = parts.as_slice() else {
            return Err(Errno::EINVAL);
        };
        m.apm = Mask::parse_absolute(apm)?;
        m.aqm = Mask::parse_absolute(aqm)?;
        m.adm = Mask::parse_absolute(adm)?;
        let too_high = |mask: &Mask, max: u32| mask.max_id().is_some_and(|id| id > max);
        if too_high(&m.apm, bus.max_adapter)
            || too_high(&m.aqm, bus.max_domain)
            || too_high(&m.adm, bus.max_domain)
        {
            return Err(Errno::EINVAL);
        }
        validate(bus, &m, others)?;
        return Ok(m);
    }
    let id = id_of_write(data)?;
    let (mask, max, checked, on) = match attr {
        ApAttr::AssignAdapter => (&mut m.apm, bus.max_adapter, true, true),
        ApAttr::UnassignAdapter => (&mut m.apm, bus.max_adapter, false, false),
        ApAttr::AssignDomain => (&mut m.aqm, bus.max_domain, true, true),
        ApAttr::UnassignDomain => (&mut m.aqm, bus.max_domain, false, false),
        ApAttr::AssignControlDomain => (&mut m.adm, bus.max_domain, false, true),
        ApAttr::UnassignControlDomain => (&mut m.adm, bus.max_domain, false, false),
        ApAttr::Matrix | ApAttr::GuestMatrix | ApAttr::ControlDomains | ApAttr::ApConfig => {
            return Err(Errno::EACCES)
        }
    };
    if id > max {
        return Err(Errno::ENODEV);
    }
    if mask.get(id) == on {
        // Assigning what is already assigned is ignored, as vfio_ap does.
        return Ok(m);
    }
    mask.set(id, on);
    if checked {
        validate(bus, &m, others)?;
    }
    Ok(m)
}

fn id_of_write(data: &[u8]) -> Result<u32, Errno> {
    let n = kstrtoul(data)?;
    // Beyond any AP id: the range check reports it, as for any id above the maximum.
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Kernel-reserved APQNs give EADDRNOTAVAIL; APQNs already assigned to another mdev give
/// EADDRINUSE (vfio_ap_mdev_verify_no_sharing).
fn validate(bus: &ApBus, m: &Matrix, others: &[&Matrix]) -> Result<(), Errno> {
    if bus.host_owns(&m.apm, &m.aqm) {
        return Err(Errno::EADDRNOTAVAIL);
    }
    if others
        .iter()
        .any(|o| o.apm.intersects(&m.apm) && o.aqm.intersects(&m.aqm))
    {
        return Err(Errno(libc::EADDRINUSE));
    }
    Ok(())
}

/// A new `apmask`/`aqmask` may not give host drivers an APQN that an mdev uses (EBUSY).
pub fn check_mask_change(bus: &ApBus, matrices: &[&Matrix]) -> Result<(), Errno> {
    if matrices.iter().any(|m| bus.host_owns(&m.apm, &m.aqm)) {
        return Err(Errno::EBUSY);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bus() -> ApBus {
        ApBus {
            max_adapter: 63,
            max_domain: 84,
            apmask: Mask::parse_absolute("0xf").unwrap_or_default(),
            aqmask: Mask::parse_absolute("0xff").unwrap_or_default(),
        }
    }

    #[test]
    fn masks_read_left_to_right() {
        let m = Mask::parse_absolute("0x8").unwrap_or_default();
        assert!(m.get(0) && !m.get(3));
        let m = Mask::parse_absolute("0x0001").unwrap_or_default();
        assert_eq!(m.ids().collect::<Vec<_>>(), vec![15]);
        assert!(m.to_hex().starts_with("0x0001000000"));
        assert_eq!(Mask::parse_absolute("12"), Err(Errno::EINVAL));
        let e = m.parse_edit("+0-2,-15", 255).unwrap_or_default();
        assert_eq!(e.ids().collect::<Vec<_>>(), vec![0, 1, 2]);
    }

    #[test]
    fn order_matters() {
        let b = bus();
        let m = Matrix::default();
        // Adapter 2 is host-owned only together with a host-owned domain.
        let m = store(&b, &m, &[], ApAttr::AssignAdapter, b"2").unwrap_or_default();
        assert_eq!(
            store(&b, &m, &[], ApAttr::AssignDomain, b"5"),
            Err(Errno::EADDRNOTAVAIL)
        );
        let m = store(&b, &m, &[], ApAttr::AssignDomain, b"9").unwrap_or_default();
        assert_eq!(show(ApAttr::Matrix, &m), "02.0009\n");
        let other = m.clone();
        let fresh = Matrix::default();
        let fresh = store(&b, &fresh, &[&other], ApAttr::AssignDomain, b"0x9").unwrap_or_default();
        assert_eq!(
            store(&b, &fresh, &[&other], ApAttr::AssignAdapter, b"2"),
            Err(Errno(libc::EADDRINUSE))
        );
        assert_eq!(
            store(&b, &fresh, &[], ApAttr::AssignAdapter, b"64"),
            Err(Errno::ENODEV)
        );
        assert_eq!(
            store(&b, &fresh, &[], ApAttr::AssignAdapter, b"x"),
            Err(Errno::EINVAL)
        );
    }
}
