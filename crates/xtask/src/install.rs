//! `cargo xtask install`: the packagers' install layout (spec §3): binary, `lsmdev` link,
//! man pages, completions, udev rule and the directories the binary expects; the `mdevkit`
//! command with its boot unit. Idempotent.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{cargo, docs, fsutil};

/// The udev rule as written in the repository, with `@sbindir@` still in it.
pub const UDEV_RULE_TEMPLATE: &str = include_str!("../../../data/60-mdevctl.rules");

/// The rule as installed: the template with the real directory of the binary.
pub fn render_udev_rule(sbindir: &Path) -> Result<String> {
    let dir = sbindir
        .to_str()
        .with_context(|| format!("sbindir {} is not UTF-8", sbindir.display()))?;
    // The path ends up inside a single-quoted `sh -c` argument of a udev RUN key.
    if dir.contains(['\'', '"', ' ', '%', '$']) || !dir.starts_with('/') {
        anyhow::bail!("sbindir {dir:?} must be an absolute path without quotes, spaces, % or $");
    }
    Ok(UDEV_RULE_TEMPLATE.replace("@sbindir@", dir.trim_end_matches('/')))
}

/// The boot unit of `mdevkit apply`, with `@sbindir@` still in it.
pub const APPLY_UNIT_TEMPLATE: &str = include_str!("../../../data/mdevkit-apply.service");

/// The unit as installed: the template with the real directory of the binary.
pub fn render_apply_unit(sbindir: &Path) -> Result<String> {
    let dir = sbindir
        .to_str()
        .with_context(|| format!("sbindir {} is not UTF-8", sbindir.display()))?;
    // An ExecStart path with spaces or specifiers would need quoting and escaping.
    if dir.contains([' ', '%', '$', '\'', '"', '\\']) || !dir.starts_with('/') {
        anyhow::bail!("sbindir {dir:?} must be an absolute path without quotes, spaces, % or $");
    }
    Ok(APPLY_UNIT_TEMPLATE.replace("@sbindir@", dir.trim_end_matches('/')))
}

/// Where things go, as absolute paths on the target system (before DESTDIR).
#[derive(Debug, Clone)]
pub struct Layout {
    /// Staging root prepended to every path (empty or `/` installs for real).
    pub destdir: PathBuf,
    pub prefix: PathBuf,
    pub sbindir: PathBuf,
    pub mandir: PathBuf,
    pub datadir: PathBuf,
    pub udevdir: PathBuf,
    /// systemd's unit directory (fixed, like udev's: systemd looks only there).
    pub unitdir: PathBuf,
}

impl Layout {
    /// The defaults for `prefix`, with the optional overrides applied. Every directory
    /// but DESTDIR is a path on the target system and must be absolute.
    pub fn new(
        destdir: PathBuf,
        prefix: PathBuf,
        sbindir: Option<PathBuf>,
        mandir: Option<PathBuf>,
        udevdir: Option<PathBuf>,
    ) -> Result<Self> {
        for (name, dir) in [
            ("--prefix", Some(&prefix)),
            ("--sbindir", sbindir.as_ref()),
            ("--mandir", mandir.as_ref()),
            ("--udevdir", udevdir.as_ref()),
        ] {
            if let Some(d) = dir.filter(|d| !d.is_absolute()) {
                anyhow::bail!("{name} {} must be an absolute path", d.display());
            }
        }
        let datadir = prefix.join("share");
        // `DESTDIR=` (set but empty) means no staging, as in make; an empty path would
        // otherwise stage relative to the working directory.
        let destdir = if destdir.as_os_str().is_empty() {
            PathBuf::from("/")
        } else {
            destdir
        };
        Ok(Layout {
            destdir,
            sbindir: sbindir.unwrap_or_else(|| prefix.join("sbin")),
            mandir: mandir.unwrap_or_else(|| datadir.join("man")),
            udevdir: udevdir.unwrap_or_else(|| PathBuf::from("/usr/lib/udev")),
            unitdir: PathBuf::from("/usr/lib/systemd/system"),
            datadir,
            prefix,
        })
    }

    /// `path` (absolute on the target) under DESTDIR.
    pub fn staged(&self, path: &Path) -> PathBuf {
        let rel = path.strip_prefix("/").unwrap_or(path);
        self.destdir.join(rel)
    }

    /// The directories the binary requires. They are fixed: the binary's compiled-in
    /// defaults are `/etc/mdevctl.d` and `/usr/lib/mdevctl/scripts.d`, whatever the prefix.
    pub fn required_dirs() -> [PathBuf; 3] {
        [
            PathBuf::from("/etc/mdevctl.d"),
            PathBuf::from("/usr/lib/mdevctl/scripts.d/callouts"),
            PathBuf::from("/usr/lib/mdevctl/scripts.d/notifiers"),
        ]
    }

    /// Where a completion file for `shell` goes.
    pub fn completion_dir(&self, shell: &str) -> PathBuf {
        match shell {
            "bash" => self.datadir.join("bash-completion/completions"),
            "zsh" => self.datadir.join("zsh/site-functions"),
            _ => self.datadir.join("fish/vendor_completions.d"),
        }
    }

    pub fn udev_rule(&self) -> PathBuf {
        self.udevdir.join("rules.d/60-mdevctl.rules")
    }

    pub fn apply_unit(&self) -> PathBuf {
        self.unitdir.join("mdevkit-apply.service")
    }

    /// The directories `mdevkit` uses: its configuration and its state.
    pub fn mdevkit_dirs() -> [PathBuf; 2] {
        [
            PathBuf::from("/etc/mdevkit"),
            PathBuf::from("/var/lib/mdevkit"),
        ]
    }
}

/// Installs everything; `binary` is the built `mdevctl`. Returns the staged paths written.
pub fn install(layout: &Layout, binary: &Path) -> Result<Vec<PathBuf>> {
    let mut done = Vec::new();

    let bin = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let sbin = layout.staged(&layout.sbindir);
    fsutil::write_file(&sbin.join("mdevctl"), &bin, 0o755)?;
    done.push(sbin.join("mdevctl"));
    // Relative, so the link stays right inside DESTDIR and after packaging.
    fsutil::symlink(Path::new("mdevctl"), &sbin.join("lsmdev"))?;
    done.push(sbin.join("lsmdev"));

    let man8 = layout.staged(&layout.mandir.join("man8"));
    done.extend(docs::write_all(&man8, &docs::man_pages()?)?);

    for f in docs::completions() {
        let (Some(shell), Some(name)) =
            (f.path.parent().and_then(|p| p.to_str()), f.path.file_name())
        else {
            anyhow::bail!("unexpected completion path {}", f.path.display());
        };
        let path = layout.staged(&layout.completion_dir(shell)).join(name);
        fsutil::write_file(&path, &f.bytes, 0o644)?;
        done.push(path);
    }

    let rule = layout.staged(&layout.udev_rule());
    fsutil::write_file(&rule, render_udev_rule(&layout.sbindir)?.as_bytes(), 0o644)?;
    done.push(rule);

    for dir in Layout::required_dirs() {
        let dir = layout.staged(&dir);
        fsutil::mkdir(&dir)?;
        done.push(dir);
    }
    Ok(done)
}

/// Installs the built `mdevkit` command, its boot unit (not enabled: that is the
/// administrator's or the package's choice) and its directories.
pub fn install_mdevkit(layout: &Layout, binary: &Path) -> Result<Vec<PathBuf>> {
    let mut done = Vec::new();
    let bin = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let path = layout.staged(&layout.sbindir).join("mdevkit");
    fsutil::write_file(&path, &bin, 0o755)?;
    done.push(path);
    let unit = layout.staged(&layout.apply_unit());
    fsutil::write_file(&unit, render_apply_unit(&layout.sbindir)?.as_bytes(), 0o644)?;
    done.push(unit);
    for dir in Layout::mdevkit_dirs() {
        let dir = layout.staged(&dir);
        fsutil::mkdir(&dir)?;
        done.push(dir);
    }
    Ok(done)
}

/// Builds `mdevkit` (release profile when `release`) and returns the binary's path.
pub fn build_mdevkit(release: bool) -> Result<PathBuf> {
    cargo::build_mdevkit(release)
}

/// Builds `mdevctl` (release profile when `release`) and returns the binary's path.
pub fn build_binary(release: bool) -> Result<PathBuf> {
    cargo::build_mdevctl(release)
}
