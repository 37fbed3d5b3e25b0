//! Running cargo from the tooling: where the workspace and its target directory are, and
//! building the `mdevctl` and `mdevkit` binaries.

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
    build_bin("mdevctl", "mdevctl", release)
}

/// `cargo build -p mdevkit-cli [--release]`: the `mdevkit` command.
pub fn build_mdevkit(release: bool) -> Result<PathBuf> {
    build_bin("mdevkit-cli", "mdevkit", release)
}

fn build_bin(package: &str, bin_name: &str, release: bool) -> Result<PathBuf> {
    // `cargo xtask` runs us through cargo, which tells us which cargo it is.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root()).args([
        "build", "--quiet", "--locked", "-p", package, "--bin", bin_name,
    ]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        anyhow::bail!("cargo build of {bin_name} failed ({status})");
    }
    let bin = target_dir()
        .join(if release { "release" } else { "debug" })
        .join(bin_name);
    if !bin.is_file() {
        anyhow::bail!("cargo build succeeded but {} is missing", bin.display());
    }
    Ok(bin)
}
