//! Running cargo from the tooling: where the workspace and its target directory are, and
//! building the binaries (including the benchmark's floor program).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

/// The workspace root (this crate lives in `crates/xtask`).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(|p| p.parent())
        .map_or(manifest.clone(), PathBuf::from)
}

/// The target directory cargo builds into (`CARGO_TARGET_DIR` wins, as for cargo itself).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// `cargo build -p mdevctl [--release]`; returns the path of the built binary.
pub fn build_mdevctl(release: bool) -> Result<PathBuf> {
    Ok(build_bins(release, &[("mdevctl", "mdevctl")])?.join("mdevctl"))
}

/// The benchmark's floor program (`mdev-floor`, a binary of this crate), built like
/// [`build_mdevctl`].
pub fn build_floor(release: bool) -> Result<PathBuf> {
    Ok(build_bins(release, &[("xtask", "mdev-floor")])?.join("mdev-floor"))
}

/// `cargo build -p PACKAGE --bin NAME ...  [--release]` for each (package, binary) pair;
/// returns the directory holding the built binaries.
pub fn build_bins(release: bool, bins: &[(&str, &str)]) -> Result<PathBuf> {
    // `cargo xtask` runs us through cargo, which tells us which cargo it is.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--quiet", "--locked"]);
    for (package, bin) in bins {
        cmd.args(["-p", package, "--bin", bin]);
    }
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().context("running cargo build")?;
    let names: Vec<&str> = bins.iter().map(|(_, b)| *b).collect();
    if !status.success() {
        anyhow::bail!("cargo build of {} failed ({status})", names.join(", "));
    }
    let dir = target_dir().join(if release { "release" } else { "debug" });
    for name in names {
        if !dir.join(name).is_file() {
            anyhow::bail!(
                "cargo build succeeded but {} is missing",
                dir.join(name).display()
            );
        }
    }
    Ok(dir)
}
