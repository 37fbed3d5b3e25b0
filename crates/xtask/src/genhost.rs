//! `cargo xtask gen-host`: writes a fake root with the kernel's sysfs shape and an
//! `/etc/mdevctl.d` store, at any scale, for benchmarks and tests (`MDEVCTL_ENV_ROOT=<root>`).
//!
//! The shape follows the kernel's mdev ABI: parents are real directories under
//! `sys/devices`, reached through `sys/class/mdev_bus/<parent>` symlinks; an active device
//! is a directory inside its parent with an `mdev_type` link to its type, reached through
//! `sys/bus/mdev/devices/<uuid>`. All links are relative, so the tree can be moved.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::fsutil;

/// How big a host to make, and of which kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostSpec {
    /// Definitions under `etc/mdevctl.d`, spread round-robin over the parents.
    pub definitions: usize,
    /// Parent devices (each with the supported types of its kind).
    pub parents: usize,
    /// Active devices: the first `active` definitions are also running; any beyond the
    /// number of definitions are transient (running, not defined).
    pub active: usize,
    /// Seed for the UUIDs, so a given spec always yields the same tree.
    pub seed: u64,
    /// What the parents are (their names and supported types).
    pub parent_kind: ParentKind,
    /// What the definitions hold.
    pub mix: Mix,
    /// Install one versioned callout script (see [`CALLOUT`]).
    pub callout: bool,
}

/// The kind of parent device a host has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ParentKind {
    /// PCI devices (`0000:10:00.0`, ...) with the mtty sample's two types ([`TYPES`]).
    #[default]
    Mtty,
    /// s390 channel subchannels (`0.0.0010`, ...) with vfio-ccw's one type ([`CCW_TYPES`]).
    VfioCcw,
}

impl ParentKind {
    fn types(self) -> &'static [(&'static str, &'static str, &'static str)] {
        match self {
            ParentKind::Mtty => &TYPES,
            ParentKind::VfioCcw => &CCW_TYPES,
        }
    }

    /// How many parents have names: PCI buses 0x10-0xff with 32 devices each, subchannels
    /// 0.0.0010-0.0.ffff.
    pub fn max_parents(self) -> usize {
        match self {
            ParentKind::Mtty => (0x100 - 0x10) * 32,
            ParentKind::VfioCcw => 0x1_0000 - 0x10,
        }
    }

    /// A parent's kernel name (`i` below [`ParentKind::max_parents`]).
    pub fn parent_name(self, i: usize) -> String {
        match self {
            ParentKind::Mtty => parent_name(i),
            ParentKind::VfioCcw => format!("0.0.{:04x}", 0x10 + i),
        }
    }
}

/// What the definitions hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mix {
    /// As a real store: a third `auto`, one in seven with an attribute.
    #[default]
    Varied,
    /// Every definition `auto`, without attributes: what `start-parent-mdevs` starts.
    AutoPlain,
}

/// vfio-ccw's one supported type.
pub const CCW_TYPES: [(&str, &str, &str); 1] =
    [("vfio_ccw-io", "I/O subchannel (Non-QDIO)", "vfio-ccw")];

/// The versioned callout script of a host with `callout`: like s390-tools' ap-check it
/// declares its capabilities and answers `get attributes` (one attribute per device); every
/// other event succeeds without doing anything.
pub const CALLOUT: &str = r#"#!/bin/sh
while getopts t:e:a:s:u:p: opt; do
    case $opt in
    e) event=$OPTARG ;;
    a) action=$OPTARG ;;
    esac
done
case $event/$action in
get/capabilities)
    cat >/dev/null
    echo '{"supports":{"version":1,"actions":["start","stop","define","undefine","modify","attributes","capabilities"],"events":["pre","post","get"]}}'
    ;;
get/attributes)
    echo '[{"example_attr":"1"}]'
    ;;
esac
exit 0
"#;

/// The supported types of every parent: (type dir name, `name`, `device_api`), modelled on
/// the kernel's mtty sample driver.
pub const TYPES: [(&str, &str, &str); 2] = [
    ("mtty-1", "Single port serial", "vfio-pci"),
    ("mtty-2", "Dual port serial", "vfio-pci"),
];

/// What was generated, for callers that check outputs against it.
#[derive(Debug, Clone, Default)]
pub struct HostSummary {
    pub parents: Vec<String>,
    /// (parent, uuid) of every definition.
    pub defined: Vec<(String, String)>,
    /// (parent, uuid) of every active device.
    pub active: Vec<(String, String)>,
}

/// splitmix64: a tiny deterministic generator, enough for distinct, well-spread UUIDs.
#[derive(Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A random (version 4, RFC 4122 variant) UUID, lowercase hyphenated.
    fn uuid(&mut self) -> String {
        let hi = (self.next() & !0xf000) | 0x4000;
        let lo = (self.next() & !(0xc << 60)) | (0x8 << 60);
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        )
    }
}

/// A parent's kernel name: a PCI address, as for real vGPU and mtty parents.
pub fn parent_name(i: usize) -> String {
    format!("0000:{:02x}:{:02x}.0", 0x10 + i / 32, i % 32)
}

/// A definition file's bytes, as mdevctl writes them: serde_json's pretty format
/// (2-space indent), key order `mdev_type`, `start`, `attrs`, no trailing newline.
pub fn definition_json(mdev_type: &str, auto: bool, attrs: &[(&str, &str)]) -> String {
    let start = if auto { "auto" } else { "manual" };
    let mut s = format!("{{\n  \"mdev_type\": \"{mdev_type}\",\n  \"start\": \"{start}\",\n");
    if attrs.is_empty() {
        s.push_str("  \"attrs\": []\n}");
        return s;
    }
    s.push_str("  \"attrs\": [\n");
    for (i, (k, v)) in attrs.iter().enumerate() {
        let sep = if i + 1 < attrs.len() { "," } else { "" };
        let _ = write!(s, "    {{\n      \"{k}\": \"{v}\"\n    }}{sep}\n");
    }
    s.push_str("  ]\n}");
    s
}

fn is_empty_dir(root: &Path) -> bool {
    std::fs::read_dir(root).is_ok_and(|mut d| d.next().is_none())
}

/// Writes the host under `root`, which must not exist yet or be an empty directory.
pub fn generate(root: &Path, spec: &HostSpec) -> Result<HostSummary> {
    if root.exists() && !is_empty_dir(root) {
        anyhow::bail!(
            "{} exists and is not empty; pick a new directory",
            root.display()
        );
    }
    // Checked before anything is written or sized by it (it comes from `--parents`).
    let max = spec.parent_kind.max_parents();
    if spec.parents > max {
        anyhow::bail!(
            "at most {max} {:?} parents have names; {} asked for",
            spec.parent_kind,
            spec.parents
        );
    }
    if spec.parents == 0 && (spec.definitions > 0 || spec.active > 0) {
        anyhow::bail!("devices need at least one parent");
    }
    let mut rng = SplitMix(spec.seed);
    let mut summary = HostSummary::default();

    let devices = root.join("sys/devices/pci0000:00");
    let class = root.join("sys/class/mdev_bus");
    let bus = root.join("sys/bus/mdev/devices");
    let store = root.join("etc/mdevctl.d");
    for dir in [&devices, &class, &bus, &store] {
        fsutil::mkdir(dir)?;
    }
    let scripts = root.join("usr/lib/mdevctl/scripts.d");
    for dir in ["callouts", "notifiers"] {
        fsutil::mkdir(&scripts.join(dir))?;
    }
    if spec.callout {
        fsutil::write_file(
            &scripts.join("callouts/bench-callout"),
            CALLOUT.as_bytes(),
            0o755,
        )?;
    }
    let types = spec.parent_kind.types();

    // Count active devices per (parent, type) first, so available_instances is consistent.
    let mut active_per_type = vec![vec![0usize; types.len()]; spec.parents];
    for i in 0..spec.active {
        if let Some(slot) = active_per_type.get_mut(i % spec.parents.max(1)) {
            if let Some(n) = slot.get_mut((i / spec.parents.max(1)) % types.len()) {
                *n += 1;
            }
        }
    }

    for (p, per_type) in active_per_type.iter().enumerate() {
        let name = spec.parent_kind.parent_name(p);
        let pdir = devices.join(&name);
        for (t, (tname, human, api)) in types.iter().enumerate() {
            let tdir = pdir.join("mdev_supported_types").join(tname);
            let available = 4096usize.saturating_sub(per_type[t]);
            fsutil::write_file(
                &tdir.join("available_instances"),
                format!("{available}\n").as_bytes(),
                0o444,
            )?;
            fsutil::write_file(
                &tdir.join("device_api"),
                format!("{api}\n").as_bytes(),
                0o444,
            )?;
            fsutil::write_file(&tdir.join("name"), format!("{human}\n").as_bytes(), 0o444)?;
            fsutil::write_file(&tdir.join("create"), b"", 0o200)?;
            fsutil::mkdir(&tdir.join("devices"))?;
        }
        fsutil::symlink(
            &Path::new("../../devices/pci0000:00").join(&name),
            &class.join(&name),
        )?;
        summary.parents.push(name);
    }

    // Device i lives on parent i % parents, with type (i / parents) % types.
    let placement = |i: usize| -> (String, usize) {
        let parents = spec.parents.max(1);
        (
            spec.parent_kind.parent_name(i % parents),
            (i / parents) % types.len(),
        )
    };
    for i in 0..spec.definitions.max(spec.active) {
        let uuid = rng.uuid();
        let (parent, t) = placement(i);
        let tname = types.get(t).map_or("", |t| t.0);
        if i < spec.definitions {
            // A mix of autostart and manual, and some attributes, as a real store has.
            let varied = spec.mix == Mix::Varied;
            let attrs: &[(&str, &str)] = if varied && i.is_multiple_of(7) {
                &[("example_attr", "1")]
            } else {
                &[]
            };
            let auto = !varied || (i / spec.parents.max(1)).is_multiple_of(3);
            let json = definition_json(tname, auto, attrs);
            fsutil::write_file(&store.join(&parent).join(&uuid), json.as_bytes(), 0o644)?;
            summary.defined.push((parent.clone(), uuid.clone()));
        }
        if i < spec.active {
            write_active(root, &parent, tname, &uuid)?;
            summary.active.push((parent, uuid));
        }
    }
    Ok(summary)
}

/// One active device: its directory in the parent, the type link, the type's `devices/`
/// back-link and the bus link.
fn write_active(root: &Path, parent: &str, mdev_type: &str, uuid: &str) -> Result<()> {
    let pdir = root.join("sys/devices/pci0000:00").join(parent);
    let ddir = pdir.join(uuid);
    fsutil::mkdir(&ddir)?;
    fsutil::write_file(&ddir.join("remove"), b"", 0o200)?;
    fsutil::write_file(&ddir.join("uevent"), b"MDEV_TYPE\n", 0o644)?;
    fsutil::symlink(
        &Path::new("../mdev_supported_types").join(mdev_type),
        &ddir.join("mdev_type"),
    )?;
    fsutil::symlink(
        &Path::new("../../..").join(uuid),
        &pdir
            .join("mdev_supported_types")
            .join(mdev_type)
            .join("devices")
            .join(uuid),
    )?;
    let target: PathBuf = Path::new("../../../devices/pci0000:00")
        .join(parent)
        .join(uuid);
    fsutil::symlink(&target, &root.join("sys/bus/mdev/devices").join(uuid))
        .context("linking the active device on the mdev bus")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_v4_and_distinct() {
        let mut rng = SplitMix(1);
        let a = rng.uuid();
        let b = rng.uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert!(matches!(a.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
    }

    #[test]
    fn definition_matches_serde_pretty_shape() {
        assert_eq!(
            definition_json("t", true, &[]),
            "{\n  \"mdev_type\": \"t\",\n  \"start\": \"auto\",\n  \"attrs\": []\n}"
        );
        assert_eq!(
            definition_json("t", false, &[("a", "1"), ("b", "2")]),
            "{\n  \"mdev_type\": \"t\",\n  \"start\": \"manual\",\n  \"attrs\": [\n    {\n      \
             \"a\": \"1\"\n    },\n    {\n      \"b\": \"2\"\n    }\n  ]\n}"
        );
    }
}
