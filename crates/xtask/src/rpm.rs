//! `cargo xtask rpm`: the RPMs (`mdevkit`, `mdev-sim`) built by rpmbuild from
//! `packaging/mdevkit.spec`, in place in the source tree; the spec's %install runs
//! `cargo xtask install`, so the files are the same list as the Debian package's.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::tools::{self, RPMBUILD};
use crate::{cargo, fsutil};

/// The spec, relative to the workspace root.
pub const SPEC: &str = "packaging/mdevkit.spec";

/// The spec's `Version:`, which must be the workspace's.
pub fn check_version(spec: &str) -> Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    let said = spec
        .lines()
        .find_map(|l| l.strip_prefix("Version:"))
        .map(str::trim);
    if said != Some(version) {
        anyhow::bail!("{SPEC} has Version: {said:?}, not {version}: update it");
    }
    Ok(())
}

/// Builds the RPMs into `out` (rpmbuild's top directory is `out/rpmbuild`). With
/// `built`, the binaries in that directory are packaged; otherwise a release build is
/// made. Returns the RPM files.
pub fn build(built: Option<&Path>, out: &Path) -> Result<Vec<PathBuf>> {
    tools::require(&[RPMBUILD])?;
    let root = cargo::workspace_root();
    let spec = root.join(SPEC);
    check_version(
        &std::fs::read_to_string(&spec).with_context(|| format!("reading {}", spec.display()))?,
    )?;
    let top = std::path::absolute(out.join("rpmbuild"))
        .with_context(|| format!("resolving {}", out.display()))?;
    if top.exists() {
        std::fs::remove_dir_all(&top).with_context(|| format!("removing {}", top.display()))?;
    }
    fsutil::mkdir(&top)?;
    let mut cmd = Command::new("rpmbuild");
    cmd.current_dir(&root)
        // --nodeps: BuildRequires name RPM packages, which a Debian host has none of.
        .args(["-bb", "--build-in-place", "--nodeps", "--quiet"])
        .arg("--define")
        .arg(format!("_topdir {}", top.display()));
    if let Some(dir) = built {
        let dir =
            std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
        cmd.arg("--define")
            .arg(format!("mdevkit_built {}", dir.display()));
    }
    let status = cmd.arg(&spec).status().context("running rpmbuild")?;
    if !status.success() {
        anyhow::bail!("rpmbuild -bb {SPEC} failed ({status})");
    }
    let mut rpms = Vec::new();
    let dir = top.join("RPMS");
    for arch in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let arch = arch
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        for f in std::fs::read_dir(&arch).with_context(|| format!("reading {}", arch.display()))? {
            let f = f
                .with_context(|| format!("reading {}", arch.display()))?
                .path();
            if f.extension().is_some_and(|e| e == "rpm") {
                rpms.push(f);
            }
        }
    }
    rpms.sort();
    Ok(rpms)
}
