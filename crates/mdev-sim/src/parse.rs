//! Kernel-style parsing of what user space writes into sysfs: UUIDs, `kstrtoul` numbers, errno names.

use std::fmt;

/// An errno value as the simulated kernel returns it from a sysfs operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

/// Errno names the simulator knows, so that profiles, control commands and messages can use names.
const ERRNO_NAMES: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("EIO", libc::EIO),
    ("E2BIG", libc::E2BIG),
    ("ENOMEM", libc::ENOMEM),
    ("EACCES", libc::EACCES),
    ("EBUSY", libc::EBUSY),
    ("EEXIST", libc::EEXIST),
    ("ENODEV", libc::ENODEV),
    ("EINVAL", libc::EINVAL),
    ("ENOSPC", libc::ENOSPC),
    ("ERANGE", libc::ERANGE),
    ("ENOSYS", libc::ENOSYS),
    ("EUSERS", libc::EUSERS),
    ("EADDRINUSE", libc::EADDRINUSE),
    ("EADDRNOTAVAIL", libc::EADDRNOTAVAIL),
    ("ETIMEDOUT", libc::ETIMEDOUT),
    ("EAGAIN", libc::EAGAIN),
    ("ENXIO", libc::ENXIO),
    ("EFAULT", libc::EFAULT),
];

impl Errno {
    pub const EPERM: Errno = Errno(libc::EPERM);
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    pub const EACCES: Errno = Errno(libc::EACCES);
    pub const EBUSY: Errno = Errno(libc::EBUSY);
    pub const EEXIST: Errno = Errno(libc::EEXIST);
    pub const ENODEV: Errno = Errno(libc::ENODEV);
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    pub const ENOSPC: Errno = Errno(libc::ENOSPC);
    pub const ERANGE: Errno = Errno(libc::ERANGE);
    pub const EUSERS: Errno = Errno(libc::EUSERS);
    pub const EADDRNOTAVAIL: Errno = Errno(libc::EADDRNOTAVAIL);
    pub const ENOTDIR: Errno = Errno(libc::ENOTDIR);
    pub const EISDIR: Errno = Errno(libc::EISDIR);
    pub const EIO: Errno = Errno(libc::EIO);
    pub const ENXIO: Errno = Errno(libc::ENXIO);
    pub const E2BIG: Errno = Errno(libc::E2BIG);

    /// Parses `EBUSY`, `ebusy` or a plain number such as `16`.
    pub fn parse(text: &str) -> Option<Errno> {
        let text = text.trim();
        if let Ok(n) = text.parse::<i32>() {
            return (n > 0).then_some(Errno(n));
        }
        ERRNO_NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map(|&(_, n)| Errno(n))
    }

    /// The symbolic name, or the number when the simulator has no name for it.
    pub fn name(self) -> String {
        ERRNO_NAMES
            .iter()
            .find(|&&(_, n)| n == self.0)
            .map_or_else(|| self.0.to_string(), |(name, _)| (*name).to_string())
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())
    }
}

/// A UUID in the kernel's canonical lowercase hyphenated spelling.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(String);

impl Uuid {
    /// Parses the 36-character hyphenated form in either case, as the kernel's `uuid_is_valid` does.
    pub fn parse(text: &str) -> Option<Uuid> {
        let bytes = text.as_bytes();
        if bytes.len() != 36 {
            return None;
        }
        for (i, &b) in bytes.iter().enumerate() {
            let ok = match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_hexdigit(),
            };
            if !ok {
                return None;
            }
        }
        Some(Uuid(text.to_ascii_lowercase()))
    }

    /// What the kernel's `create` attribute accepts: 36 or 37 bytes (a trailing newline or any
    /// other single byte is ignored, since `guid_parse` only looks at the first 36), else EINVAL.
    pub fn from_create_write(data: &[u8]) -> Result<Uuid, Errno> {
        if data.len() != 36 && data.len() != 37 {
            return Err(Errno::EINVAL);
        }
        let head = data.get(..36).ok_or(Errno::EINVAL)?;
        std::str::from_utf8(head)
            .ok()
            .and_then(Uuid::parse)
            .ok_or(Errno::EINVAL)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kernel's `kstrtoul(buf, 0, &val)`: optional `+`, `0x` hex, leading-`0` octal or decimal,
/// one optional trailing newline; EINVAL for anything else and ERANGE on overflow.
pub fn kstrtoul(data: &[u8]) -> Result<u64, Errno> {
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    let data = data.strip_prefix(b"+").unwrap_or(data);
    let (digits, radix) = if let Some(rest) = data
        .strip_prefix(b"0x")
        .or_else(|| data.strip_prefix(b"0X"))
    {
        (rest, 16)
    } else if data.len() > 1 && data.first() == Some(&b'0') {
        (data.get(1..).unwrap_or_default(), 8)
    } else {
        (data, 10)
    };
    if digits.is_empty() {
        return Err(Errno::EINVAL);
    }
    let mut value: u64 = 0;
    for &b in digits {
        let digit = char::from(b).to_digit(radix).ok_or(Errno::EINVAL)?;
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or(Errno::ERANGE)?;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_forms() {
        let u = "83B8F4F2-509F-382F-3C1E-E6BFE0FA1001";
        assert_eq!(
            Uuid::parse(u).map(|u| u.to_string()),
            Some(u.to_ascii_lowercase())
        );
        assert!(Uuid::parse("83b8f4f2509f382f3c1ee6bfe0fa1001").is_none());
        assert!(Uuid::from_create_write(format!("{u}\n").as_bytes()).is_ok());
        assert_eq!(
            Uuid::from_create_write(format!("{u}\n\n").as_bytes()),
            Err(Errno::EINVAL)
        );
        assert_eq!(Uuid::from_create_write(b"garbage"), Err(Errno::EINVAL));
    }

    #[test]
    fn kstrtoul_forms() {
        assert_eq!(kstrtoul(b"1"), Ok(1));
        assert_eq!(kstrtoul(b"1\n"), Ok(1));
        assert_eq!(kstrtoul(b"0x1f"), Ok(31));
        assert_eq!(kstrtoul(b"010"), Ok(8));
        assert_eq!(kstrtoul(b"0"), Ok(0));
        assert_eq!(kstrtoul(b""), Err(Errno::EINVAL));
        assert_eq!(kstrtoul(b"1 "), Err(Errno::EINVAL));
        assert_eq!(kstrtoul(b"-1"), Err(Errno::EINVAL));
        assert_eq!(kstrtoul(b"99999999999999999999999"), Err(Errno::ERANGE));
    }

    #[test]
    fn errno_names() {
        assert_eq!(Errno::parse("ebusy"), Some(Errno::EBUSY));
        assert_eq!(Errno::parse("16"), Some(Errno::EBUSY));
        assert_eq!(Errno::EUSERS.to_string(), "EUSERS");
        assert_eq!(Errno::parse("EWHAT"), None);
    }
}
