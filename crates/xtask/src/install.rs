//! `cargo xtask install`: the one list of installed files (spec §3) that `install`, the
//! Debian package and the RPM all use: binaries, the `lsmdev` link, man pages, completions,
//! the udev rule, systemd units and the directories the binary expects. Idempotent.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::{cargo, docs, fsutil};

/// The udev rule as written in the repository, with `@sbindir@` still in it.
pub const UDEV_RULE_TEMPLATE: &str = include_str!("../../../data/60-mdevctl.rules");

/// The rule as installed: the template with the real directory of the binary.
pub fn render_udev_rule(sbindir: &Path) -> Result<String> {
    render_template(UDEV_RULE_TEMPLATE, sbindir)
}

/// A file from `data/` as installed: `@sbindir@` replaced by the binaries' directory.
///
/// The path ends up inside a single-quoted `sh -c` argument of a udev RUN key and in a
/// systemd `ExecStart=`, where quotes, spaces, `%` specifiers and `$` would need escaping,
/// so such a directory is refused rather than escaped.
pub fn render_template(template: &str, sbindir: &Path) -> Result<String> {
    let dir = sbindir
        .to_str()
        .with_context(|| format!("sbindir {} is not UTF-8", sbindir.display()))?;
    if dir.contains(['\'', '"', ' ', '%', '$', '\\']) || !dir.starts_with('/') {
        anyhow::bail!("sbindir {dir:?} must be an absolute path without quotes, spaces, % or $");
    }
    Ok(template.replace("@sbindir@", dir.trim_end_matches('/')))
}

/// The binary packages the install list is split into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Package {
    /// `mdevctl`, `lsmdev` and everything a host needs: replaces the `mdevctl` package.
    Mdevkit,
    /// The FUSE simulator: a development and CI tool, not for production hosts.
    MdevSim,
}

impl Package {
    pub const ALL: [Package; 2] = [Package::Mdevkit, Package::MdevSim];

    /// The package's name in both package formats.
    pub fn name(self) -> &'static str {
        match self {
            Package::Mdevkit => "mdevkit",
            Package::MdevSim => "mdev-sim",
        }
    }

    pub fn from_name(name: &str) -> Result<Package> {
        Package::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .with_context(|| format!("no package {name:?} (there are mdevkit and mdev-sim)"))
    }
}

/// Which directory a binary goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinDir {
    /// Administration commands (`SBINDIR`), where scripts and the udev rule call them.
    Sbin,
    /// Commands for any user (`BINDIR`).
    Bin,
}

/// One installed binary.
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    /// The file name, both in cargo's output directory and once installed.
    pub name: &'static str,
    /// The workspace package that builds it; one under `crates/<cargo_package>`.
    pub cargo_package: &'static str,
    pub dir: BinDir,
    /// Relative symlinks to the binary, beside it.
    pub links: &'static [&'static str],
    pub package: Package,
}

/// Every binary the packages ship. An entry whose crate is not in the workspace is left
/// out, so a binary is added here before or after its crate lands, with one line.
pub const BINARIES: &[Binary] = &[
    Binary {
        name: "mdevctl",
        cargo_package: "mdevctl",
        dir: BinDir::Sbin,
        links: &["lsmdev"],
        package: Package::Mdevkit,
    },
    Binary {
        name: "mdevkit",
        cargo_package: "mdevkit-cli",
        dir: BinDir::Sbin,
        links: &[],
        package: Package::Mdevkit,
    },
    Binary {
        name: "mdev-sim",
        cargo_package: "mdev-sim",
        dir: BinDir::Bin,
        links: &[],
        package: Package::MdevSim,
    },
];

/// systemd units (files under `data/`), installed into UNITDIR when they exist in the
/// source tree; a new unit is one line here.
pub const UNITS: &[&str] = &["mdevkit-apply.service"];

/// Whether the workspace builds `bin` (its crate directory exists).
pub fn in_workspace(bin: &Binary) -> bool {
    cargo::workspace_root()
        .join("crates")
        .join(bin.cargo_package)
        .join("Cargo.toml")
        .is_file()
}

/// The binaries of `packages` that this workspace builds.
pub fn binaries(packages: &[Package]) -> Vec<Binary> {
    BINARIES
        .iter()
        .filter(|b| packages.contains(&b.package) && in_workspace(b))
        .copied()
        .collect()
}

/// The units present in the source tree, as (name, source path).
pub fn units() -> Vec<(&'static str, PathBuf)> {
    let data = cargo::workspace_root().join("data");
    UNITS
        .iter()
        .map(|u| (*u, data.join(u)))
        .filter(|(_, p)| p.is_file())
        .collect()
}

/// How man pages are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManFormat {
    Plain,
    /// `gzip -9n` (no name or time stamp, so reproducible), as Debian policy wants.
    Gzip,
}

/// Directories overriding the defaults derived from the prefix.
#[derive(Debug, Clone, Default)]
pub struct DirOverrides {
    pub sbindir: Option<PathBuf>,
    pub bindir: Option<PathBuf>,
    pub mandir: Option<PathBuf>,
    pub udevdir: Option<PathBuf>,
    pub unitdir: Option<PathBuf>,
}

/// Where things go, as absolute paths on the target system (before DESTDIR).
#[derive(Debug, Clone)]
pub struct Layout {
    /// Staging root prepended to every path (empty or `/` installs for real).
    pub destdir: PathBuf,
    pub prefix: PathBuf,
    pub sbindir: PathBuf,
    pub bindir: PathBuf,
    pub mandir: PathBuf,
    pub datadir: PathBuf,
    pub udevdir: PathBuf,
    pub unitdir: PathBuf,
}

impl Layout {
    /// The defaults for `prefix`, with the overrides applied. Every directory but
    /// DESTDIR is a path on the target system and must be absolute.
    pub fn new(destdir: PathBuf, prefix: PathBuf, dirs: DirOverrides) -> Result<Self> {
        for (name, dir) in [
            ("--prefix", Some(&prefix)),
            ("--sbindir", dirs.sbindir.as_ref()),
            ("--bindir", dirs.bindir.as_ref()),
            ("--mandir", dirs.mandir.as_ref()),
            ("--udevdir", dirs.udevdir.as_ref()),
            ("--unitdir", dirs.unitdir.as_ref()),
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
            sbindir: dirs.sbindir.unwrap_or_else(|| prefix.join("sbin")),
            bindir: dirs.bindir.unwrap_or_else(|| prefix.join("bin")),
            mandir: dirs.mandir.unwrap_or_else(|| datadir.join("man")),
            udevdir: dirs
                .udevdir
                .unwrap_or_else(|| PathBuf::from("/usr/lib/udev")),
            unitdir: dirs
                .unitdir
                .unwrap_or_else(|| PathBuf::from("/usr/lib/systemd/system")),
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
    pub fn required_dirs() -> [PathBuf; 5] {
        [
            PathBuf::from("/etc/mdevctl.d"),
            PathBuf::from("/usr/lib/mdevctl/scripts.d/callouts"),
            PathBuf::from("/usr/lib/mdevctl/scripts.d/notifiers"),
            // `mdevkit`'s desired-state file and its record of the devices it manages.
            PathBuf::from("/etc/mdevkit"),
            PathBuf::from("/var/lib/mdevkit"),
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

    pub fn bin_dir(&self, dir: BinDir) -> &Path {
        match dir {
            BinDir::Sbin => &self.sbindir,
            BinDir::Bin => &self.bindir,
        }
    }
}

/// What an installed path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Link,
    Dir,
}

/// One entry of the install list: a path on the target system (before DESTDIR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub path: PathBuf,
    pub kind: Kind,
    pub package: Package,
}

impl Installed {
    /// The manifest line: `f`, `l` or `d`, a space, the path on the target system.
    pub fn manifest_line(&self) -> String {
        let k = match self.kind {
            Kind::File => 'f',
            Kind::Link => 'l',
            Kind::Dir => 'd',
        };
        format!("{k} {}", self.path.display())
    }
}

/// What to install and from where.
#[derive(Debug, Clone)]
pub struct Request {
    pub packages: Vec<Package>,
    /// The directory holding the built binaries (cargo's `target/<profile>`).
    pub built: PathBuf,
    pub man: ManFormat,
}

/// Installs the files of the requested packages; returns the install list, in order.
pub fn install(layout: &Layout, req: &Request) -> Result<Vec<Installed>> {
    let mut done = Vec::new();
    let mut put = |path: PathBuf, kind: Kind, package: Package| {
        done.push(Installed {
            path,
            kind,
            package,
        });
    };

    for b in binaries(&req.packages) {
        let src = req.built.join(b.name);
        let bytes = std::fs::read(&src).with_context(|| {
            format!(
                "reading {} (build it with cargo build -p {})",
                src.display(),
                b.cargo_package
            )
        })?;
        let dir = layout.bin_dir(b.dir);
        let target = dir.join(b.name);
        fsutil::write_file(&layout.staged(&target), &bytes, 0o755)?;
        put(target, Kind::File, b.package);
        for link in b.links {
            // Relative, so the link stays right inside DESTDIR and after packaging.
            let target = dir.join(link);
            fsutil::symlink(Path::new(b.name), &layout.staged(&target))?;
            put(target, Kind::Link, b.package);
        }
    }

    if !req.packages.contains(&Package::Mdevkit) {
        return Ok(done);
    }
    let pkg = Package::Mdevkit;

    let man8 = layout.mandir.join("man8");
    for page in docs::man_pages()? {
        let (name, bytes) = match req.man {
            ManFormat::Plain => (page.path.clone().into_os_string(), page.bytes),
            ManFormat::Gzip => {
                let mut name = page.path.clone().into_os_string();
                name.push(".gz");
                (name, gzip(&page.bytes)?)
            }
        };
        let target = man8.join(name);
        fsutil::write_file(&layout.staged(&target), &bytes, 0o644)?;
        put(target, Kind::File, pkg);
    }

    for f in docs::completions() {
        let (Some(shell), Some(name)) =
            (f.path.parent().and_then(|p| p.to_str()), f.path.file_name())
        else {
            anyhow::bail!("unexpected completion path {}", f.path.display());
        };
        let target = layout.completion_dir(shell).join(name);
        fsutil::write_file(&layout.staged(&target), &f.bytes, 0o644)?;
        put(target, Kind::File, pkg);
    }

    let rule = layout.udev_rule();
    let text = render_udev_rule(&layout.sbindir)?;
    fsutil::write_file(&layout.staged(&rule), text.as_bytes(), 0o644)?;
    put(rule, Kind::File, pkg);

    for (name, src) in units() {
        let text =
            std::fs::read_to_string(&src).with_context(|| format!("reading {}", src.display()))?;
        let target = layout.unitdir.join(name);
        let text = render_template(&text, &layout.sbindir)?;
        fsutil::write_file(&layout.staged(&target), text.as_bytes(), 0o644)?;
        put(target, Kind::File, pkg);
    }

    for dir in Layout::required_dirs() {
        fsutil::mkdir(&layout.staged(&dir))?;
        put(dir, Kind::Dir, pkg);
    }
    Ok(done)
}

/// `bytes` compressed by `gzip -9n`.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    crate::tools::require(&[crate::tools::GZIP])?;
    let mut child = Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("running gzip")?;
    let mut stdin = child.stdin.take().context("gzip has no stdin")?;
    // Write from a thread: gzip may fill its stdout pipe before reading all input.
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().context("waiting for gzip")?;
    match writer.join() {
        Ok(r) => r.context("writing to gzip")?,
        Err(_) => anyhow::bail!("the thread feeding gzip panicked"),
    }
    if !out.status.success() {
        anyhow::bail!("gzip failed ({})", out.status);
    }
    Ok(out.stdout)
}

/// Builds the binaries of `packages` (release profile when `release`) and returns the
/// directory holding them.
pub fn build(release: bool, packages: &[Package]) -> Result<PathBuf> {
    let bins = binaries(packages);
    let pairs: Vec<(&str, &str)> = bins.iter().map(|b| (b.cargo_package, b.name)).collect();
    cargo::build_bins(release, &pairs)
}
