//! Check `iommu`: an IOMMU registered with the kernel (`/sys/class/iommu`), and if not, what
//! the kernel command line and the CPU vendor say about why.

use super::{names_in, read_trimmed, Check};
use crate::host::Host;

const ID: &str = "iommu";

/// The CPU vendor, from `/proc/cpuinfo`, for the remedy's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vendor {
    Intel,
    Amd,
    S390,
    Unknown,
}

fn vendor(cpuinfo: &str) -> Vendor {
    for line in cpuinfo.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if key.trim() == "vendor_id" {
            return match value.trim() {
                "GenuineIntel" => Vendor::Intel,
                "AuthenticAMD" | "HygonGenuine" => Vendor::Amd,
                v if v.contains("S390") => Vendor::S390,
                _ => Vendor::Unknown,
            };
        }
    }
    Vendor::Unknown
}

/// The kernel parameters that switch an IOMMU on or off, as found on the command line.
fn iommu_params(cmdline: &str) -> Vec<&str> {
    cmdline
        .split_whitespace()
        .filter(|w| {
            let key = w.split_once('=').map_or(*w, |(k, _)| k);
            matches!(
                key,
                "intel_iommu" | "amd_iommu" | "iommu" | "iommu.passthrough"
            )
        })
        .collect()
}

/// `vendor_vfio`: a vendor-VFIO GPU is present, whose VFs are PCI devices that VFIO can only
/// hand to a VM through an IOMMU, so its absence fails; mdev devices work without one.
pub(super) fn check(host: &Host, vendor_vfio: bool) -> Check {
    let class = host.roots().sysfs.join("class/iommu");
    let units = names_in(host, &class);
    if !units.is_empty() {
        return Check::ok(
            ID,
            "",
            format!("{}: {}", class.display(), super::list(&units)),
        );
    }
    let proc = &host.roots().proc;
    let cmdline_path = proc.join("cmdline");
    let cmdline = read_trimmed(host, &cmdline_path);
    let cpu = read_trimmed(host, &proc.join("cpuinfo")).map_or(Vendor::Unknown, |c| vendor(&c));
    let seen = match &cmdline {
        None => format!("{} unreadable", cmdline_path.display()),
        Some(c) => {
            let params = iommu_params(c);
            if params.is_empty() {
                format!("{} sets no IOMMU parameter", cmdline_path.display())
            } else {
                format!("{} has {}", cmdline_path.display(), params.join(" "))
            }
        }
    };
    let evidence = format!("{} has no IOMMU; {seen}", class.display());
    let firmware = match cpu {
        Vendor::Intel => "enable VT-d in the firmware and boot with intel_iommu=on",
        Vendor::Amd => {
            "enable AMD-Vi (IOMMU) in the firmware; the kernel enables it unless amd_iommu=off is set"
        }
        Vendor::S390 | Vendor::Unknown => {
            "enable the IOMMU in the firmware and boot with the platform's IOMMU parameter (intel_iommu=on on Intel)"
        }
    };
    if vendor_vfio {
        Check::fail(
            ID,
            "",
            evidence,
            format!("{firmware}: vendor-VFIO GPUs pass VFs to VMs through the IOMMU"),
        )
    } else {
        Check::warn(
            ID,
            "",
            evidence,
            format!(
                "mdev devices work without one, PCI passthrough does not; to have one, {firmware}"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_comes_from_the_first_vendor_id_line() {
        assert_eq!(
            vendor("processor\t: 0\nvendor_id\t: GenuineIntel\n"),
            Vendor::Intel
        );
        assert_eq!(vendor("vendor_id : AuthenticAMD"), Vendor::Amd);
        assert_eq!(vendor("vendor_id       : IBM/S390"), Vendor::S390);
        assert_eq!(vendor("model name: x"), Vendor::Unknown);
    }

    #[test]
    fn only_iommu_parameters_are_picked_from_the_command_line() {
        assert_eq!(
            iommu_params("BOOT_IMAGE=/vmlinuz root=/dev/sda1 intel_iommu=on iommu=pt quiet"),
            ["intel_iommu=on", "iommu=pt"]
        );
        assert!(iommu_params("root=/dev/vda console=ttyS0").is_empty());
    }
}
