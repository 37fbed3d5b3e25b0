//! NVIDIA vGPU checks: `nvidia.driver` (the vGPU host driver's modules), `nvidia.daemons`
//! (`nvidia-vgpud`, `nvidia-vgpu-mgr` in `/proc/*/comm`), and per GPU `nvidia.bound`,
//! `nvidia.path` (mdev or vendor-specific VFIO), `nvidia.sriov` and `nvidia.creatable`
//! (an empty `creatable_vgpu_types` and why), after `nvidia-vendor-vfio.md`.

use super::modules::{Modules, Seen};
use super::{driver_of, read_trimmed, Check, Facts, Scope};
use crate::host::{EntryKind, Host};
use crate::names::ParentName;
use crate::nvidia_vf::{self, Gpu, PciAddress, VgpuError};

/// How a GPU's vGPUs are reached.
pub(crate) enum Path {
    /// Registered in `class/mdev_bus`.
    Mdev,
    VendorVfio(Box<Gpu>),
    /// Neither, and why (`nvidia_vf`'s reason, or a read error).
    Neither(String),
}

pub(crate) struct NvGpu {
    pub pf: PciAddress,
    pub path: Path,
}

/// The host's NVIDIA GPUs (PFs), read once.
pub(crate) struct Gpus(Vec<NvGpu>);

impl Gpus {
    pub(crate) fn read(host: &Host) -> Gpus {
        let dir = host.pci_devices_dir();
        let mut addrs: Vec<PciAddress> = host
            .read_dir(&dir)
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.name.to_str()?.parse().ok())
            .collect();
        addrs.sort();
        let mut out = Vec::new();
        for pf in addrs {
            let d = host.pci_device_dir(&pf);
            if read_trimmed(host, &d.join("vendor")).as_deref() != Some("0x10de")
                || host.exists(&d.join("physfn"))
            {
                continue;
            }
            let mdev = host.is_dir(&d.join("mdev_supported_types"))
                || pf
                    .to_string()
                    .parse::<ParentName>()
                    .is_ok_and(|p| host.exists(&host.parent_dir(&p)));
            let class = read_trimmed(host, &d.join("class")).unwrap_or_default();
            // Display controllers only (an NVIDIA GPU's audio function is 0x0403...); a
            // registered mdev parent is a GPU whatever its class file says.
            if !mdev && !class.starts_with("0x03") {
                continue;
            }
            let path = if mdev {
                Path::Mdev
            } else {
                match nvidia_vf::gpu(host, pf) {
                    Ok(g) => Path::VendorVfio(Box::new(g)),
                    Err(VgpuError::NotVendorVfio { reason, .. }) => Path::Neither(reason),
                    Err(e) => Path::Neither(crate::error::chain(&e)),
                }
            };
            out.push(NvGpu { pf, path });
        }
        Gpus(out)
    }

    pub(crate) fn any_vendor_vfio(&self) -> bool {
        self.0.iter().any(|g| matches!(g.path, Path::VendorVfio(_)))
    }

    pub(crate) fn is_vendor_vfio(&self, p: &ParentName) -> bool {
        self.0
            .iter()
            .any(|g| matches!(g.path, Path::VendorVfio(_)) && g.pf.to_string() == p.as_str())
    }
}

/// Which of the vGPU daemons run, by `/proc/<pid>/comm`.
fn daemons(host: &Host) -> (bool, bool) {
    let proc = &host.roots().proc;
    let (mut vgpud, mut mgr) = (false, false);
    for e in host.read_dir(proc).unwrap_or_default() {
        let is_pid = e.kind == EntryKind::Dir
            && e.name
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if !is_pid {
            continue;
        }
        match read_trimmed(host, &proc.join(&e.name).join("comm")).as_deref() {
            Some("nvidia-vgpud") => vgpud = true,
            // comm is cut at 15 bytes.
            Some("nvidia-vgpu-mgr") => mgr = true,
            _ => {}
        }
    }
    (vgpud, mgr)
}

fn driver_check(host: &Host) -> Check {
    const ID: &str = "nvidia.driver";
    let m = Modules::read(host);
    let nvidia = m.find(host, "nvidia");
    let vfio = m.find(host, "nvidia_vgpu_vfio");
    let evidence = if nvidia.evidence() == vfio.evidence() {
        nvidia.evidence().to_owned()
    } else {
        format!("{}; {}", nvidia.evidence(), vfio.evidence())
    };
    match (&nvidia, &vfio) {
        (a, b) if a.loaded() && b.loaded() => Check::ok(ID, "", evidence),
        (Seen::Unknown(_), _) | (_, Seen::Unknown(_)) => Check::warn(
            ID,
            "",
            evidence,
            "cannot tell; check that lsmod shows nvidia and nvidia_vgpu_vfio",
        ),
        _ => Check::fail(
            ID,
            "",
            evidence,
            "install NVIDIA's vGPU host driver (not the desktop or datacenter driver) and modprobe nvidia_vgpu_vfio",
        ),
    }
}

fn daemons_check(host: &Host, gpus: &Gpus) -> Check {
    const ID: &str = "nvidia.daemons";
    let (vgpud, mgr) = daemons(host);
    let evidence = format!(
        "{}/*/comm: nvidia-vgpud {}, nvidia-vgpu-mgr {}",
        host.roots().proc.display(),
        if vgpud { "running" } else { "not running" },
        if mgr { "running" } else { "not running" }
    );
    if !mgr {
        return Check::warn(
            ID,
            "",
            evidence,
            "systemctl start nvidia-vgpu-mgr: without it VMs with a vGPU cannot start",
        );
    }
    // nvidia-vgpud may exit once it has published the types; missing types are its case.
    let unpublished = gpus.0.iter().any(|g| match &g.path {
        Path::VendorVfio(gpu) => {
            gpu.enabled_vfs > 0
                && gpu
                    .vfs
                    .iter()
                    .all(|v| v.is_free() && v.creatable.is_empty())
        }
        _ => false,
    });
    if unpublished && !vgpud {
        return Check::warn(
            ID,
            "",
            evidence,
            "systemctl restart nvidia-vgpud: a GPU has no vGPU types published",
        );
    }
    Check::ok(ID, "", evidence)
}

fn creatable_check(gpu: &Gpu, subject: &str) -> Check {
    const ID: &str = "nvidia.creatable";
    let avail = gpu.creatable();
    let free = gpu.vfs.iter().filter(|v| v.is_free()).count();
    if !avail.is_empty() {
        return Check::ok(
            ID,
            subject,
            format!(
                "creatable_vgpu_types of {free} free VF(s) list {} type(s), e.g. {}",
                avail.len(),
                avail
                    .first()
                    .map(|a| a.vgpu_type.name.as_str())
                    .unwrap_or_default()
            ),
        );
    }
    let holders = gpu.holders();
    if holders.is_empty() {
        return Check::fail(
            ID,
            subject,
            format!(
                "creatable_vgpu_types is empty on all {} VFs and no VF has a vGPU: the types are not published",
                gpu.vfs.len()
            ),
            "systemctl restart nvidia-vgpud (it publishes the types; re-run it after sriov-manage -e); in MIG mode create GPU instances first",
        );
    }
    let used: Vec<String> = holders
        .iter()
        .map(|h| {
            let name = h.name.clone().unwrap_or_else(|| h.type_id.to_string());
            format!("{} {name}", h.vf)
        })
        .collect();
    let evidence = if free == 0 {
        format!(
            "every VF has a vGPU or is held by a VM ({} in use: {})",
            holders.len(),
            super::list(&used)
        )
    } else {
        format!(
            "creatable_vgpu_types is empty on {free} free VF(s); {} vGPU(s) exist ({}): the GPU is full for their framebuffer size",
            holders.len(),
            super::list(&used)
        )
    };
    Check::warn(
        ID,
        subject,
        evidence,
        "remove a vGPU (write 0 to its VF's nvidia/current_vgpu_type), or use the same size; mixed sizes need nvidia-smi vgpu -shm 1 on an idle GPU",
    )
}

fn per_gpu(host: &Host, facts: &Facts, g: &NvGpu, out: &mut Vec<Check>) {
    let subject = g.pf.to_string();
    let dir = host.pci_device_dir(&g.pf);
    match driver_of(host, &dir) {
        Some(d) if d == "nvidia" => out.push(Check::ok(
            "nvidia.bound",
            &subject,
            format!("{}/driver -> nvidia", dir.display()),
        )),
        other => out.push(Check::fail(
            "nvidia.bound",
            &subject,
            format!(
                "{}/driver: {}",
                dir.display(),
                other.map_or("no driver bound".to_owned(), |d| format!("bound to {d}"))
            ),
            "bind the GPU to nvidia (unbind nouveau or vfio-pci; check modprobe.d blacklists and driverctl overrides)",
        )),
    }
    match &g.path {
        Path::Mdev => {
            let n = g
                .pf
                .to_string()
                .parse::<ParentName>()
                .map(|p| facts.active_on(&p, None).count())
                .unwrap_or(0);
            out.push(Check::ok(
                "nvidia.path",
                &subject,
                format!("mdev: registered in {} ({n} active mdev(s))", host.mdev_bus_dir().display()),
            ));
        }
        Path::Neither(reason) => out.push(Check::fail(
            "nvidia.path",
            &subject,
            format!("neither an mdev parent nor a vendor-VFIO GPU: {reason}"),
            "load the vGPU host driver for this GPU (nvidia_vgpu_vfio); vendor-VFIO GPUs (kernel >= 6.8, Ada and later) also need SR-IOV enabled",
        )),
        Path::VendorVfio(gpu) => {
            out.push(Check::ok(
                "nvidia.path",
                &subject,
                format!(
                    "vendor-specific VFIO (no mdev): {} VF(s) with nvidia/, {} vGPU(s)",
                    gpu.vfs.len(),
                    gpu.holders().len()
                ),
            ));
            let numvfs = dir.join("sriov_numvfs");
            if gpu.enabled_vfs == 0 {
                out.push(Check::fail(
                    "nvidia.sriov",
                    &subject,
                    format!("{}: 0 of {} VFs", numvfs.display(), gpu.total_vfs),
                    format!("/usr/lib/nvidia/sriov-manage -e {} (after nvidia-vgpud and nvidia-vgpu-mgr are running)", g.pf),
                ));
            } else {
                out.push(Check::ok(
                    "nvidia.sriov",
                    &subject,
                    format!("{}: {} of {} VFs", numvfs.display(), gpu.enabled_vfs, gpu.total_vfs),
                ));
                out.push(creatable_check(gpu, &subject));
            }
        }
    }
}

pub(super) fn check(host: &Host, facts: &Facts, gpus: &Gpus, scope: &Scope) -> Vec<Check> {
    let in_scope: Vec<&NvGpu> = gpus
        .0
        .iter()
        .filter(|g| {
            scope
                .parent
                .as_ref()
                .is_none_or(|p| p.as_str() == g.pf.to_string())
        })
        .collect();
    if in_scope.is_empty() {
        return Vec::new();
    }
    let mut out = vec![driver_check(host), daemons_check(host, gpus)];
    for g in in_scope {
        per_gpu(host, facts, g, &mut out);
    }
    out
}
