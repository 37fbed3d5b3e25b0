//! `cargo xtask deb`: Debian binary packages (`mdevkit`, `mdev-sim`) assembled with
//! dpkg-deb from the install list (install.rs), the control templates and maintainer
//! scripts under `packaging/debian/`. No debhelper: one list of files, no second one.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::install::{self, DirOverrides, Installed, Kind, Layout, ManFormat, Package, Request};
use crate::tools::{self, DPKG_DEB, DPKG_SHLIBDEPS, GZIP, STRIP};
use crate::{cargo, fsutil};

/// Maintainer scripts a package may have, in `packaging/debian/<package>.<script>`.
const SCRIPTS: [&str; 4] = ["preinst", "postinst", "prerm", "postrm"];

/// One built package.
#[derive(Debug, Clone)]
pub struct Built {
    pub deb: PathBuf,
    /// The install list and the documentation files, as `cargo xtask install --manifest`
    /// prints them.
    pub manifest: PathBuf,
}

fn packaging_dir() -> PathBuf {
    cargo::workspace_root().join("packaging/debian")
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The version the changelog's first line gives, which must be the workspace's.
pub fn checked_version(changelog: &str) -> Result<String> {
    let version = env!("CARGO_PKG_VERSION");
    let first = changelog.lines().next().unwrap_or_default();
    let said = first
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(v, _)| v);
    if said != Some(version) {
        anyhow::bail!(
            "packaging/debian/changelog starts with {first:?}, not version {version}: add an entry"
        );
    }
    Ok(version.to_owned())
}

/// Runs `cmd`, failing with its stderr; returns stdout.
fn output(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("{what} printed non-UTF-8"))
}

/// The `Depends` of the shared libraries `bins` link, from dpkg-shlibdeps (which wants
/// a `debian/control` in its working directory; a stub in a scratch directory does).
fn shlibs(scratch: &Path, bins: &[PathBuf]) -> Result<String> {
    let dir = scratch.join("shlibdeps");
    fsutil::write_file(
        &dir.join("debian/control"),
        b"Source: mdevkit\n\nPackage: mdevkit\nArchitecture: any\n",
        0o644,
    )?;
    let mut cmd = Command::new("dpkg-shlibdeps");
    cmd.current_dir(&dir).arg("-O");
    for b in bins {
        cmd.arg(format!("-e{}", b.display()));
    }
    let out = output(&mut cmd, "dpkg-shlibdeps");
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    out?.lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .map(str::to_owned)
        .context("dpkg-shlibdeps printed no shlibs:Depends")
}

/// Sum of the file sizes under `root` in KiB, rounded up, as dpkg's Installed-Size wants.
fn installed_size(root: &Path) -> Result<u64> {
    fn walk(dir: &Path, total: &mut u64) -> Result<()> {
        for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let e = e.with_context(|| format!("reading {}", dir.display()))?;
            let meta = e
                .path()
                .symlink_metadata()
                .with_context(|| format!("stat {}", e.path().display()))?;
            if meta.is_dir() {
                if e.file_name() != "DEBIAN" {
                    walk(&e.path(), total)?;
                }
            } else {
                *total = total.saturating_add(meta.len().div_ceil(1024).max(1));
            }
        }
        Ok(())
    }
    let mut total = 0;
    walk(root, &mut total)?;
    Ok(total)
}

/// Builds one package from binaries in `built` into `out`.
fn build_one(package: Package, built: &Path, out: &Path, arch: &str) -> Result<Built> {
    let name = package.name();
    let changelog = read(&packaging_dir().join("changelog"))?;
    let version = checked_version(&changelog)?;
    let root = out.join(format!("{name}.root"));
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    let layout = Layout::new(root.clone(), PathBuf::from("/usr"), DirOverrides::default())?;
    let req = Request {
        packages: vec![package],
        built: built.to_path_buf(),
        man: ManFormat::Gzip,
    };
    let mut list = install::install(&layout, &req)?;

    let mut bins = Vec::new();
    for entry in list.iter().filter(|e| e.kind == Kind::File) {
        if entry.path.starts_with(&layout.sbindir) || entry.path.starts_with(&layout.bindir) {
            let staged = layout.staged(&entry.path);
            let mut strip = Command::new("strip");
            strip
                .args(["--strip-unneeded", "--remove-section=.comment"])
                .args(["--remove-section=.note"])
                .arg(&staged);
            output(&mut strip, "strip")?;
            bins.push(staged);
        }
    }

    let doc = PathBuf::from("/usr/share/doc").join(name);
    let copyright = read(&packaging_dir().join("copyright"))?;
    fsutil::write_file(
        &layout.staged(&doc.join("copyright")),
        copyright.as_bytes(),
        0o644,
    )?;
    let gz = install::gzip(changelog.as_bytes())?;
    fsutil::write_file(&layout.staged(&doc.join("changelog.gz")), &gz, 0o644)?;
    for f in ["copyright", "changelog.gz"] {
        list.push(Installed {
            path: doc.join(f),
            kind: Kind::File,
            package,
        });
    }
    // Lintian overrides, each with its reason in the file and in docs/install.md.
    let overrides = packaging_dir().join(format!("{name}.lintian-overrides"));
    if overrides.is_file() {
        let target = PathBuf::from("/usr/share/lintian/overrides").join(name);
        fsutil::write_file(&layout.staged(&target), read(&overrides)?.as_bytes(), 0o644)?;
        list.push(Installed {
            path: target,
            kind: Kind::File,
            package,
        });
    }

    let control_dir = root.join("DEBIAN");
    let template = read(&packaging_dir().join(format!("{name}.control")))?;
    let control = template
        .replace("@VERSION@", &version)
        .replace("@ARCH@", arch)
        .replace("@SHLIBS@", &shlibs(out, &bins)?)
        .replace("@INSTALLED_SIZE@", &installed_size(&root)?.to_string());
    fsutil::write_file(&control_dir.join("control"), control.as_bytes(), 0o644)?;
    for script in SCRIPTS {
        let src = packaging_dir().join(format!("{name}.{script}"));
        if src.is_file() {
            fsutil::write_file(&control_dir.join(script), read(&src)?.as_bytes(), 0o755)?;
        }
    }
    let mut sums = String::new();
    for entry in list.iter().filter(|e| e.kind == Kind::File) {
        let rel = entry.path.strip_prefix("/").unwrap_or(&entry.path);
        let out = output(Command::new("md5sum").current_dir(&root).arg(rel), "md5sum")?;
        sums.push_str(&out);
    }
    fsutil::write_file(&control_dir.join("md5sums"), sums.as_bytes(), 0o644)?;

    let deb = out.join(format!("{name}_{version}_{arch}.deb"));
    output(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&root)
            .arg(&deb),
        "dpkg-deb --build",
    )?;
    let manifest = out.join(format!("{name}_{version}_{arch}.manifest"));
    let lines: Vec<String> = list.iter().map(Installed::manifest_line).collect();
    fsutil::write_file(
        &manifest,
        format!("{}\n", lines.join("\n")).as_bytes(),
        0o644,
    )?;
    std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    Ok(Built { deb, manifest })
}

/// Builds the Debian packages `packages` into `out` from binaries in `built`.
pub fn build(packages: &[Package], built: &Path, out: &Path) -> Result<Vec<Built>> {
    tools::require(&[DPKG_DEB, DPKG_SHLIBDEPS, STRIP, GZIP])?;
    let arch = output(
        Command::new("dpkg").arg("--print-architecture"),
        "dpkg --print-architecture",
    )?;
    fsutil::mkdir(out)?;
    packages
        .iter()
        .map(|p| build_one(*p, built, out, arch.trim()))
        .collect()
}
