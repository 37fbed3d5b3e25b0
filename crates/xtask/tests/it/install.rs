//! The install layout end to end: a real `mdevctl` build installed into a temporary DESTDIR,
//! every file and link checked, the man pages against the CLI's options, the completions
//! against its subcommands, and the udev rule against spec §9.

// A test fails by panicking.
#![allow(clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::docs;
use xtask::install::{self, DirOverrides, Layout, ManFormat, Package, Request};

/// A fresh directory under the system temp dir, removed when dropped.
fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("xtask-test-{name}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("creating a temp dir: {e}"))
}

fn read(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => panic!("reading {}: {e}", path.display()),
    }
}

fn mode(path: &Path) -> u32 {
    match fs::metadata(path) {
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(e) => panic!("stat {}: {e}", path.display()),
    }
}

/// Man page text with roff's escaped hyphens (`\-`) turned back into plain ones.
fn man_text(path: &Path) -> String {
    read(path).replace("\\-", "-")
}

/// How a man page's OPTIONS list spells each visible option of `cmd` (hyphens unescaped):
/// `\fB-s\fR, \fB--long\fR`, or `\fB--long\fR` alone.
fn man_spellings(cmd: &clap::Command) -> Vec<String> {
    let mut out = Vec::new();
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        match (arg.get_short(), arg.get_long()) {
            (Some(s), Some(l)) => out.push(format!("\\fB-{s}\\fR, \\fB--{l}\\fR")),
            (None, Some(l)) => out.push(format!("\\fB--{l}\\fR")),
            (Some(s), None) => out.push(format!("\\fB-{s}\\fR")),
            (None, None) => {}
        }
    }
    out
}

/// `--long` and `-s` of every visible option of `cmd`.
fn option_spellings(cmd: &clap::Command) -> Vec<String> {
    let mut out = Vec::new();
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        if let Some(l) = arg.get_long() {
            out.push(format!("--{l}"));
        }
        if let Some(s) = arg.get_short() {
            out.push(format!("-{s}"));
        }
    }
    out
}

fn install_into(destdir: &Path, sbindir: Option<&str>) -> (Layout, Vec<PathBuf>) {
    let dirs = DirOverrides {
        sbindir: sbindir.map(PathBuf::from),
        ..DirOverrides::default()
    };
    let layout = Layout::new(destdir.to_path_buf(), PathBuf::from("/usr"), dirs)
        .unwrap_or_else(|e| panic!("layout: {e:#}"));
    let req = Request {
        packages: vec![Package::Mdevkit],
        built: install::build(false, &[Package::Mdevkit])
            .unwrap_or_else(|e| panic!("building: {e:#}")),
        man: ManFormat::Plain,
    };
    match install::install(&layout, &req) {
        Ok(done) => {
            let staged = done.iter().map(|e| layout.staged(&e.path)).collect();
            (layout, staged)
        }
        Err(e) => panic!("install: {e:#}"),
    }
}

const EXPECTED_FILES: [&str; 17] = [
    "usr/sbin/mdevctl",
    "usr/share/man/man8/mdevctl.8",
    "usr/share/man/man8/lsmdev.8",
    "usr/share/man/man8/mdevctl-define.8",
    "usr/share/man/man8/mdevctl-undefine.8",
    "usr/share/man/man8/mdevctl-modify.8",
    "usr/share/man/man8/mdevctl-start.8",
    "usr/share/man/man8/mdevctl-stop.8",
    "usr/share/man/man8/mdevctl-list.8",
    "usr/share/man/man8/mdevctl-types.8",
    "usr/share/bash-completion/completions/mdevctl",
    "usr/share/bash-completion/completions/lsmdev",
    "usr/share/zsh/site-functions/_mdevctl",
    "usr/share/zsh/site-functions/_lsmdev",
    "usr/share/fish/vendor_completions.d/mdevctl.fish",
    "usr/share/fish/vendor_completions.d/lsmdev.fish",
    "usr/lib/udev/rules.d/60-mdevctl.rules",
];

const REQUIRED_DIRS: [&str; 5] = [
    "etc/mdevctl.d",
    "usr/lib/mdevctl/scripts.d/callouts",
    "usr/lib/mdevctl/scripts.d/notifiers",
    "etc/mdevkit",
    "var/lib/mdevkit",
];

/// The non-comment, non-blank lines of a rules file.
fn rule_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn check_rule(text: &str, sbindir: &str) {
    assert!(
        !text.contains("@sbindir@"),
        "placeholder left in rule:\n{text}"
    );
    let lines = rule_lines(text);
    assert_eq!(lines.len(), 2, "expected two rules:\n{text}");
    let change = lines
        .iter()
        .find(|l| l.contains(r#"ACTION=="change""#))
        .unwrap_or_else(|| panic!("no change rule:\n{text}"));
    assert!(
        change.contains(r#"ENV{MDEV_STATE}=="registered""#),
        "{change}"
    );
    let add = lines
        .iter()
        .find(|l| l.contains(r#"ACTION=="add""#))
        .unwrap_or_else(|| panic!("no add rule:\n{text}"));
    assert!(!add.contains("MDEV_STATE"), "{add}");
    let run = format!("RUN+=\"/bin/sh -c '({sbindir}/mdevctl start-parent-mdevs %k | logger -t mdevctl) 2>&1 | logger -t mdevctl -p 2'\"");
    for rule in [change, add] {
        assert!(rule.contains(r#"TEST=="/etc/mdevctl.d/$kernel""#), "{rule}");
        assert!(
            rule.ends_with(&run),
            "rule:\n{rule}\nwanted it to end with:\n{run}"
        );
    }
}

#[test]
fn install_puts_every_file_in_place_and_is_idempotent() {
    let tmp = temp_dir("layout");
    let dest = tmp.path().join("dest");
    let (_, first) = install_into(&dest, None);
    let (_, second) = install_into(&dest, None);
    assert_eq!(first, second, "a second install must do the same");

    for f in EXPECTED_FILES {
        let p = dest.join(f);
        assert!(p.is_file(), "missing {}", p.display());
        assert!(first.contains(&p), "{} not reported", p.display());
        let want = if f == "usr/sbin/mdevctl" {
            0o755
        } else {
            0o644
        };
        assert_eq!(mode(&p), want, "mode of {}", p.display());
    }
    for d in REQUIRED_DIRS {
        let p = dest.join(d);
        assert!(p.is_dir(), "missing directory {}", p.display());
        assert_eq!(mode(&p), 0o755, "mode of {}", p.display());
    }
    let link = dest.join("usr/sbin/lsmdev");
    assert_eq!(
        fs::read_link(&link).ok(),
        Some(PathBuf::from("mdevctl")),
        "lsmdev link"
    );

    // The installed binary works under both names (argv[0] dispatch).
    for (name, want) in [("mdevctl", "mdevctl "), ("lsmdev", "lsmdev ")] {
        let out = Command::new(dest.join("usr/sbin").join(name))
            .arg("--version")
            .env("MDEVCTL_ENV_ROOT", &dest)
            .output();
        let out = match out {
            Ok(o) => o,
            Err(e) => panic!("running installed {name}: {e}"),
        };
        assert!(out.status.success(), "{name} --version: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with(want),
            "{name}: {out:?}"
        );
    }

    check_rule(
        &read(&dest.join("usr/lib/udev/rules.d/60-mdevctl.rules")),
        "/usr/sbin",
    );
}

#[test]
fn sbindir_is_substituted_into_the_rule() {
    let tmp = temp_dir("sbindir");
    let dest = tmp.path().join("dest");
    install_into(&dest, Some("/opt/mdevkit/sbin"));
    assert!(dest.join("opt/mdevkit/sbin/mdevctl").is_file());
    check_rule(
        &read(&dest.join("usr/lib/udev/rules.d/60-mdevctl.rules")),
        "/opt/mdevkit/sbin",
    );
}

#[test]
fn target_paths_must_be_absolute_and_an_empty_destdir_means_root() {
    let layout = |dest: &str, prefix: &str, sbin: Option<&str>| {
        let dirs = DirOverrides {
            sbindir: sbin.map(PathBuf::from),
            ..DirOverrides::default()
        };
        Layout::new(dest.into(), prefix.into(), dirs)
    };
    assert!(layout("/d", "usr", None).is_err());
    assert!(layout("/d", "/usr", Some("sbin")).is_err());
    let root = layout("", "/usr", None).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        root.staged(Path::new("/usr/sbin")),
        PathBuf::from("/usr/sbin")
    );
    let staged = layout("pkg", "/usr", None).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        staged.staged(&staged.sbindir),
        PathBuf::from("pkg/usr/sbin")
    );
}

#[test]
fn the_rule_refuses_paths_that_would_break_its_quoting() {
    for bad in ["relative/sbin", "/with space", "/it's", "/a%k", "/$x"] {
        assert!(
            install::render_udev_rule(Path::new(bad)).is_err(),
            "{bad} accepted"
        );
    }
}

#[test]
fn man_pages_document_every_option_of_every_command() {
    let tmp = temp_dir("man");
    let pages = docs::man_pages().unwrap_or_else(|e| panic!("rendering man pages: {e:#}"));
    let written =
        docs::write_all(tmp.path(), &pages).unwrap_or_else(|e| panic!("writing man pages: {e:#}"));
    assert!(written.len() >= 2);
    let cmd = docs::mdevctl_command();
    let main = man_text(&tmp.path().join("mdevctl.8"));
    for sub in docs::visible_subcommands(&cmd) {
        let name = sub.get_name();
        assert!(
            main.contains(&format!("mdevctl {name}")),
            "mdevctl.8 lacks {name}"
        );
        let own = man_text(&tmp.path().join(format!("mdevctl-{name}.8")));
        for opt in man_spellings(&sub) {
            assert!(main.contains(&opt), "mdevctl.8 lacks {name} {opt}");
            assert!(own.contains(&opt), "mdevctl-{name}.8 lacks {opt}");
        }
    }
    // The udev-only command is documented too, though hidden from --help.
    assert!(main.contains("start-parent-mdevs"));
    for var in [
        "MDEVCTL_ENV_ROOT",
        "MDEVCTL_SYSFS_ROOT",
        "MDEVCTL_CONFIG_DIR",
    ] {
        assert!(main.contains(var), "mdevctl.8 lacks {var}");
    }
    let ls = man_text(&tmp.path().join("lsmdev.8"));
    for opt in man_spellings(&docs::lsmdev_command()) {
        assert!(ls.contains(&opt), "lsmdev.8 lacks {opt}");
    }
}

#[test]
fn completions_offer_every_subcommand_and_option() {
    let files = docs::completions();
    let cmd = docs::mdevctl_command();
    for (generator, shell) in docs::SHELLS {
        let find = |bin: &str| {
            let path = Path::new(shell).join(docs::completion_file_name(generator, bin));
            files
                .iter()
                .find(|f| f.path == path)
                .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
                .unwrap_or_else(|| panic!("no {} completion", path.display()))
        };
        let mdevctl = find("mdevctl");
        for sub in docs::visible_subcommands(&cmd) {
            assert!(
                mdevctl.contains(sub.get_name()),
                "{shell}: no {}",
                sub.get_name()
            );
            for opt in option_spellings(&sub) {
                // fish spells options as `-l name` / `-s x`, the others literally.
                let bare = opt.trim_start_matches('-');
                assert!(
                    mdevctl.contains(&opt) || mdevctl.contains(bare),
                    "{shell}: no {opt}"
                );
            }
        }
        let lsmdev = find("lsmdev");
        assert!(
            lsmdev.contains("dumpjson"),
            "{shell}: lsmdev lacks --dumpjson"
        );
    }
}

/// Runs the rule's `sh -c` command with stand-ins for mdevctl and logger: stdout must reach
/// `logger -t mdevctl`, stderr `logger -t mdevctl -p 2`, and `%k` must be the parent.
#[test]
fn the_rule_command_routes_output_and_errors_to_the_log() {
    let tmp = temp_dir("rule-run");
    let sbin = tmp.path().join("sbin");
    let bin = tmp.path().join("bin");
    let log = tmp.path().join("log");
    let script = |path: &Path, body: &str| {
        let ok = fs::create_dir_all(path.parent().unwrap_or(Path::new("/")))
            .and_then(|()| fs::write(path, format!("#!/bin/sh\n{body}\n")))
            .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(0o755)));
        assert!(ok.is_ok(), "{}: {ok:?}", path.display());
    };
    script(
        &sbin.join("mdevctl"),
        "echo \"started $*\"; echo 'one failed' >&2",
    );
    // Each line logged becomes `<logger args>|<line>` in the log file.
    script(
        &bin.join("logger"),
        &format!(
            "while IFS= read -r l; do echo \"$*|$l\" >> {}; done",
            log.display()
        ),
    );
    let rule = install::render_udev_rule(&sbin).unwrap_or_else(|e| panic!("{e:#}"));
    for line in rule_lines(&rule) {
        let _ = fs::remove_file(&log);
        let cmd = line
            .split_once("RUN+=\"/bin/sh -c '")
            .and_then(|(_, rest)| rest.strip_suffix("'\""))
            .unwrap_or_else(|| panic!("no sh -c command in {line}"));
        let cmd = cmd.replace("%k", "0000:00:02.0");
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let status = Command::new("/bin/sh")
            .args(["-c", &cmd])
            .env("PATH", path)
            .status();
        assert!(status.is_ok_and(|s| s.success()), "{cmd}");
        let mut logged: Vec<String> = read(&log).lines().map(str::to_owned).collect();
        logged.sort();
        assert_eq!(
            logged,
            [
                "-t mdevctl -p 2|one failed",
                "-t mdevctl|started start-parent-mdevs 0000:00:02.0"
            ],
            "{line}"
        );
    }
}

/// The bash completions load in a real bash and register for both names; the man pages
/// pass groff's checks when groff is there.
#[test]
fn bash_loads_the_completions_and_groff_accepts_the_pages() {
    let tmp = temp_dir("load");
    let written = docs::write_all(tmp.path(), &docs::completions())
        .unwrap_or_else(|e| panic!("writing completions: {e:#}"));
    for bin in ["mdevctl", "lsmdev"] {
        let file = tmp.path().join("bash").join(bin);
        assert!(written.contains(&file));
        let script = format!("source {} && complete -p {bin}", file.display());
        let out = Command::new("bash")
            .args(["--norc", "-c", &script])
            .output();
        let out = out.unwrap_or_else(|e| panic!("running bash: {e}"));
        assert!(out.status.success(), "{bin}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(bin),
            "{out:?}"
        );
    }
    let pages = docs::man_pages().unwrap_or_else(|e| panic!("rendering man pages: {e:#}"));
    let written =
        docs::write_all(tmp.path(), &pages).unwrap_or_else(|e| panic!("writing man pages: {e:#}"));
    for page in written {
        // -ww: all warnings; -z: no output. Skipped where groff is not installed.
        let Ok(out) = Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .arg(&page)
            .output()
        else {
            return;
        };
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}: {out:?}",
            page.display()
        );
    }
}

/// The mdevkit package's install list is exactly the expected files, the link and the
/// directories, plus the `mdevkit` binary and units once they exist in the workspace.
#[test]
fn the_install_list_is_exactly_the_packages_files() {
    let tmp = temp_dir("list");
    let dest = tmp.path().join("dest");
    let (_, staged) = install_into(&dest, None);
    let mut got: Vec<PathBuf> = staged;
    got.sort();
    let mut want: Vec<PathBuf> = EXPECTED_FILES
        .iter()
        .chain(REQUIRED_DIRS.iter())
        .chain(["usr/sbin/lsmdev"].iter())
        .map(|f| dest.join(f))
        .collect();
    for b in install::binaries(&[Package::Mdevkit]) {
        if b.name != "mdevctl" {
            want.push(dest.join("usr/sbin").join(b.name));
        }
    }
    for (unit, _) in install::units() {
        want.push(dest.join("usr/lib/systemd/system").join(unit));
    }
    want.sort();
    assert_eq!(got, want);
}

/// The boot unit names the installed `mdevkit` by its real directory, like the udev rule
/// names `mdevctl`; a directory that would need escaping in `ExecStart=` is refused.
#[test]
fn the_boot_unit_runs_the_installed_mdevkit() {
    let tmp = temp_dir("unit");
    let dest = tmp.path().join("dest");
    install_into(&dest, Some("/usr/local/sbin"));
    let unit_path = dest.join("usr/lib/systemd/system/mdevkit-apply.service");
    assert_eq!(mode(&unit_path), 0o644);
    let unit = read(&unit_path);
    let lines = rule_lines(&unit);
    for want in [
        "Type=oneshot",
        "After=systemd-udev-settle.service",
        "Before=libvirtd.service virtqemud.service",
        "ExecStart=/usr/local/sbin/mdevkit apply --wait 120s",
    ] {
        assert!(lines.contains(&want), "{want} missing in:\n{unit}");
    }
    assert!(!unit.contains('@'), "unsubstituted placeholder in:\n{unit}");
    let bin = dest.join("usr/local/sbin/mdevkit");
    let out = Command::new(&bin).arg("--version").output();
    assert!(out.as_ref().is_ok_and(|o| o.status.success()), "{out:?}");
    assert!(install::render_template("ExecStart=@sbindir@/x", Path::new("/usr/my sbin")).is_err());
}

#[test]
fn mdev_sim_is_a_package_of_its_own_in_bindir() {
    let tmp = temp_dir("sim");
    let dest = tmp.path().join("dest");
    let layout = Layout::new(dest.clone(), PathBuf::from("/usr"), DirOverrides::default())
        .unwrap_or_else(|e| panic!("layout: {e:#}"));
    let req = Request {
        packages: vec![Package::MdevSim],
        built: install::build(false, &[Package::MdevSim])
            .unwrap_or_else(|e| panic!("building: {e:#}")),
        man: ManFormat::Plain,
    };
    let list = install::install(&layout, &req).unwrap_or_else(|e| panic!("install: {e:#}"));
    let lines: Vec<String> = list.iter().map(|e| e.manifest_line()).collect();
    assert_eq!(lines, ["f /usr/bin/mdev-sim"]);
    assert_eq!(mode(&dest.join("usr/bin/mdev-sim")), 0o755);
    assert!(!dest.join("usr/sbin").exists());
}

/// Debian's man pages are `gzip -9n`: they decompress to the plain page and carry no
/// time stamp, so two installs give identical bytes.
#[test]
fn gzipped_man_pages_are_reproducible_and_decompress_to_the_page() {
    let tmp = temp_dir("gz");
    let pages = docs::man_pages().unwrap_or_else(|e| panic!("{e:#}"));
    let page = pages
        .iter()
        .find(|p| p.path == Path::new("mdevctl.8"))
        .unwrap_or_else(|| panic!("no mdevctl.8"));
    let gz = install::gzip(&page.bytes).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(install::gzip(&page.bytes).ok(), Some(gz.clone()));
    let path = tmp.path().join("mdevctl.8.gz");
    assert!(fs::write(&path, &gz).is_ok());
    let out = Command::new("gzip").arg("-dc").arg(&path).output();
    let out = out.unwrap_or_else(|e| panic!("gzip -dc: {e}"));
    assert!(out.status.success());
    assert_eq!(out.stdout, page.bytes);
    // The title names the mdevctl interface and mdevkit's release.
    let text = String::from_utf8_lossy(&page.bytes);
    let want = format!("\"mdevctl 1.4.0 (mdevkit {})\"", env!("CARGO_PKG_VERSION"));
    assert!(text.contains(&want), "{want} not in the title");
}

#[test]
fn unknown_packages_and_missing_tools_are_named() {
    let e = install::Package::from_name("mdevctl").map(|_| ());
    let msg = format!("{:#}", e.err().unwrap_or_else(|| panic!("accepted")));
    assert!(msg.contains("\"mdevctl\""), "{msg}");
    let tool = xtask::tools::Tool {
        program: "mdevkit-no-such-tool",
        debian_package: "no-such-package",
    };
    let msg = match xtask::tools::require(&[xtask::tools::GZIP, tool]) {
        Ok(()) => panic!("a missing tool was not reported"),
        Err(e) => format!("{e:#}"),
    };
    assert_eq!(
        msg,
        "missing tools on PATH: mdevkit-no-such-tool (Debian package no-such-package)"
    );
}

/// Both packages take their version from the workspace: the Debian changelog's first
/// entry and the spec's `Version:` must say it, or the package build stops.
#[test]
fn the_changelog_and_the_spec_carry_the_workspace_version() {
    let root = xtask::cargo::workspace_root();
    let changelog = read(&root.join("packaging/debian/changelog"));
    assert_eq!(
        xtask::deb::checked_version(&changelog).ok().as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let spec = read(&root.join(xtask::rpm::SPEC));
    assert!(xtask::rpm::check_version(&spec).is_ok());

    let old = "mdevkit (0.0.9) unstable; urgency=medium\n";
    let msg = format!(
        "{:#}",
        xtask::deb::checked_version(old)
            .err()
            .unwrap_or_else(|| panic!("accepted"))
    );
    assert!(msg.contains("0.0.9"), "{msg}");
    let msg = format!(
        "{:#}",
        xtask::rpm::check_version("Version: 0.0.9\n")
            .err()
            .unwrap_or_else(|| panic!("accepted"))
    );
    assert!(msg.contains("0.0.9"), "{msg}");
}
