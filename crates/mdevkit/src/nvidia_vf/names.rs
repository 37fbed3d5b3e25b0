//! Validated names of the vendor-VFIO path: PCI addresses, vGPU type ids, and what a user
//! may give to choose a type (an id or a name).

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use crate::names::NameError;

/// A PCI function address, `0000:3d:00.4`; printed lower-case with its domain.
///
/// The domain may be left out on input (`3d:00.4` means domain 0), as lspci prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    domain: u16,
    bus: u8,
    device: u8,
    function: u8,
}

impl PciAddress {
    fn refuse(value: &str, reason: &'static str) -> NameError {
        NameError::Name {
            what: "PCI address",
            value: value.to_owned(),
            reason,
        }
    }
}

/// `digits` as hex of exactly `len` characters.
fn hex_field(digits: &str, len: usize) -> Option<u32> {
    (digits.len() == len && digits.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(digits, 16).ok())
        .flatten()
}

impl FromStr for PciAddress {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORM: &str = "expected DDDD:BB:DD.F such as 0000:3d:00.4";
        let parts: Vec<&str> = s.split(':').collect();
        let (domain, bus, rest) = match parts.as_slice() {
            [d, b, r] => (hex_field(d, 4), hex_field(b, 2), *r),
            [b, r] => (Some(0), hex_field(b, 2), *r),
            _ => return Err(Self::refuse(s, FORM)),
        };
        let (device, function) = rest.split_once('.').ok_or_else(|| Self::refuse(s, FORM))?;
        let (Some(domain), Some(bus), Some(device), Some(function)) =
            (domain, bus, hex_field(device, 2), hex_field(function, 1))
        else {
            return Err(Self::refuse(s, FORM));
        };
        if device > 0x1f || function > 7 {
            return Err(Self::refuse(
                s,
                "device is at most 1f and function at most 7",
            ));
        }
        Ok(PciAddress {
            domain: u16::try_from(domain).map_err(|_| Self::refuse(s, FORM))?,
            bus: u8::try_from(bus).map_err(|_| Self::refuse(s, FORM))?,
            device: u8::try_from(device).map_err(|_| Self::refuse(s, FORM))?,
            function: u8::try_from(function).map_err(|_| Self::refuse(s, FORM))?,
        })
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

impl serde::Serialize for PciAddress {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A vGPU type id as `creatable_vgpu_types` and `current_vgpu_type` spell it (decimal, > 0;
/// `0` in `current_vgpu_type` means "no vGPU" and is never a type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct VgpuTypeId(NonZeroU32);

impl VgpuTypeId {
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl FromStr for VgpuTypeId {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let refuse = |reason| NameError::Name {
            what: "vGPU type id",
            value: s.to_owned(),
            reason,
        };
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refuse("expected a decimal number such as 1150"));
        }
        let n: u32 = s.parse().map_err(|_| refuse("too large"))?;
        NonZeroU32::new(n)
            .map(VgpuTypeId)
            .ok_or_else(|| refuse("0 means no vGPU, not a type"))
    }
}

impl fmt::Display for VgpuTypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// What a user gives to choose a type: its numeric id, or its name (`NVIDIA L40S-4Q`,
/// `L40S-4Q`, or KubeVirt's `NVIDIA_L40S-4Q`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeSelector {
    Id(VgpuTypeId),
    Name(String),
}

impl TypeSelector {
    /// Whether a type of the catalogue is the one meant. Names compare without regard to
    /// ASCII case, with or without the `NVIDIA ` prefix, and with `_` standing for a space.
    pub fn matches(&self, id: VgpuTypeId, name: &str) -> bool {
        match self {
            TypeSelector::Id(want) => *want == id,
            TypeSelector::Name(want) => {
                let norm = |s: &str| s.trim().replace('_', " ").to_ascii_lowercase();
                let (want, full) = (norm(want), norm(name));
                let short = full.strip_prefix("nvidia ").unwrap_or(&full);
                want == full || want == short
            }
        }
    }
}

impl FromStr for TypeSelector {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse().map(TypeSelector::Id);
        }
        if s.trim().is_empty() || s.chars().any(char::is_control) {
            return Err(NameError::Name {
                what: "vGPU type",
                value: s.to_owned(),
                reason: "expected a type id such as 1150 or a name such as 'NVIDIA L40S-4Q'",
            });
        }
        Ok(TypeSelector::Name(s.to_owned()))
    }
}

impl fmt::Display for TypeSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeSelector::Id(id) => fmt::Display::fmt(id, f),
            TypeSelector::Name(name) => f.write_str(name),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses() {
        let a: PciAddress = "0000:3D:00.4".parse().unwrap();
        assert_eq!(a.to_string(), "0000:3d:00.4");
        assert_eq!(
            "3d:01.0".parse::<PciAddress>().unwrap().to_string(),
            "0000:3d:01.0"
        );
        for bad in [
            "",
            "0000:3d:00",
            "0000:3d:20.0",
            "0000:3d:00.8",
            "00:3d:00.4",
            "../x",
            "0000:3d:00.4\n",
        ] {
            assert!(bad.parse::<PciAddress>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn type_ids_and_selectors() {
        assert_eq!("1150".parse::<VgpuTypeId>().unwrap().get(), 1150);
        assert!("0".parse::<VgpuTypeId>().is_err());
        assert!("0x47e".parse::<VgpuTypeId>().is_err());
        let id: VgpuTypeId = "1150".parse().unwrap();
        for name in ["NVIDIA L40S-4Q", "l40s-4q", "NVIDIA_L40S-4Q", "1150"] {
            let sel: TypeSelector = name.parse().unwrap();
            assert!(sel.matches(id, "NVIDIA L40S-4Q"), "{name}");
        }
        let sel: TypeSelector = "L40S-4A".parse().unwrap();
        assert!(!sel.matches(id, "NVIDIA L40S-4Q"));
        assert!(" ".parse::<TypeSelector>().is_err());
    }
}
