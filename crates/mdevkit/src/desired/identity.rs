//! Stable UUIDs of counted devices: UUIDv5 over the machine id, parent, type and index, so
//! that re-applying, other profiles and other tools all arrive at the same UUID.
//!
//! The name hashed is `machine-id NUL parent NUL type-id NUL index` (index in decimal, from
//! 0), all UTF-8, in the namespace [`NAMESPACE`]. NUL separates because no part may hold one.

use crate::names::{ParentName, TypeName, Uuid};

/// The namespace of mdevkit's counted devices (chosen at random once; never changes).
pub const NAMESPACE: uuid::Uuid = uuid::uuid!("d8317050-603c-4699-ba82-cb79a68172fc");

/// The host's `/etc/machine-id`: 32 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineId(String);

/// A machine id that is not 32 hex digits.
#[derive(Debug, thiserror::Error)]
#[error("machine id '{value}' is not 32 hex digits")]
pub struct MachineIdError {
    pub value: String,
}

impl std::str::FromStr for MachineId {
    type Err = MachineIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(MachineId(t.to_ascii_lowercase()))
        } else {
            Err(MachineIdError {
                value: t.escape_debug().to_string(),
            })
        }
    }
}

impl MachineId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The UUID of device `index` of `mdev_type` on `parent`.
pub fn counted_uuid(
    machine: &MachineId,
    parent: &ParentName,
    mdev_type: &TypeName,
    index: u32,
) -> Uuid {
    let name = format!("{}\0{parent}\0{mdev_type}\0{index}", machine.0);
    let u = uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes());
    // Our Uuid parses every uuid-crate form; the hyphenated text always parses.
    Uuid::from_uuid(u)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_derivation_is_fixed() {
        // A reference value other tools can check against: python3 -c 'import uuid;
        // print(uuid.uuid5(uuid.UUID("d8317050-603c-4699-ba82-cb79a68172fc"),
        // "0123456789abcdef0123456789abcdef\0" "0000:83:00.0\0nvidia-18\0" "2"))'
        let m: MachineId = "0123456789abcdef0123456789abcdef\n".parse().unwrap();
        let u = counted_uuid(
            &m,
            &"0000:83:00.0".parse().unwrap(),
            &"nvidia-18".parse().unwrap(),
            2,
        );
        assert_eq!(u.to_string(), REFERENCE);
    }

    const REFERENCE: &str = "b772d9d5-a1b9-5268-bf34-f0b66f1e9e46";

    #[test]
    fn bad_machine_ids_are_refused() {
        assert!("".parse::<MachineId>().is_err());
        assert!("xyz".parse::<MachineId>().is_err());
    }
}
