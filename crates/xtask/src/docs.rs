//! Man pages and shell completions, generated from the clap structs the binary parses with
//! (`mdevctl::cli`), so that the documented options can never drift from the real ones.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;

/// One generated file: where it goes (relative to an output directory) and its bytes.
#[derive(Debug, Clone)]
pub struct Generated {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// The `mdevctl` command, built (so help/version flags and bin names are filled in).
pub fn mdevctl_command() -> clap::Command {
    let mut cmd = mdevctl::cli::Mdevctl::command()
        .bin_name("mdevctl")
        .disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The `lsmdev` command, built.
pub fn lsmdev_command() -> clap::Command {
    let mut cmd = mdevctl::cli::Lsmdev::command().bin_name("lsmdev");
    cmd.build();
    cmd
}

/// The subcommands a user sees in `--help` (the udev-only `start-parent-mdevs` is hidden).
pub fn visible_subcommands(cmd: &clap::Command) -> Vec<clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect()
}

/// The lines roff (the crate) puts before every rendered piece, defining the `Aq` string.
/// A page needs them once, at the top.
const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// Renders one clap_mangen section to a string, without the preamble.
fn rendered(render: impl Fn(&mut Vec<u8>) -> std::io::Result<()>) -> Result<String> {
    let mut buf = Vec::new();
    render(&mut buf).context("rendering a man page section")?;
    let text = String::from_utf8(buf).context("man page section is not UTF-8")?;
    Ok(text.strip_prefix(PREAMBLE).unwrap_or(&text).to_owned())
}

/// The preamble and the `.TH` line. Written by hand because an empty date must be quoted
/// (`""`) or roff shifts the source into the date field; the date stays empty so that
/// pages are byte-identical between builds (reproducible packages).
fn title(name: &str) -> String {
    let version = mdevctl::cli::VERSION;
    format!("{PREAMBLE}.TH {name} 8 \"\" \"mdevctl {version}\" \"System Manager's Manual\"\n")
}

/// Renders one clap_mangen section and drops its own `.SH` heading line, so the body can be
/// placed under a heading of ours (a `.SS` per subcommand in the main page).
fn section_body(
    render: impl Fn(&mut Vec<u8>) -> std::io::Result<()>,
    heading: &str,
) -> Result<String> {
    let text = rendered(render)?;
    let prefix = format!(".SH {heading}\n");
    Ok(text.strip_prefix(&prefix).unwrap_or(&text).to_owned())
}

/// Escapes text for a roff text line: backslashes, and a leading `.` or `'` that roff
/// would otherwise take for a request.
fn roff_text(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

/// The ENVIRONMENT section, from the `Environment:` block of the CLI's long help (one source
/// for `--help` and the man page). Each line there is `  NAME  description`.
fn environment_section(cmd: &clap::Command) -> String {
    let mut out = String::from(".SH ENVIRONMENT\n");
    let text = cmd
        .get_after_long_help()
        .map(|s| s.to_string())
        .unwrap_or_default();
    for line in text
        .lines()
        .skip_while(|l| !l.starts_with("Environment:"))
        .skip(1)
    {
        let line = line.trim();
        let Some((name, desc)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let _ = write!(
            out,
            ".TP\n\\fB{}\\fR\n{}\n",
            roff_text(name),
            roff_text(desc.trim())
        );
    }
    out
}

const FILES_SECTION: &str = r#".SH FILES
.TP
\fI/etc/mdevctl.d/<parent>/<uuid>\fR
One JSON file per defined device: \fBmdev_type\fR, \fBstart\fR ("auto" or "manual")
and an ordered list of \fBattrs\fR. Written atomically (a temporary file renamed over
the old one).
.TP
\fI/usr/lib/mdevctl/scripts.d/callouts\fR, \fI/usr/lib/mdevctl/scripts.d/notifiers\fR
Callout and notifier scripts, run in name order around each change. The deprecated
\fI/etc/mdevctl.d/scripts.d/\fR directories are consulted after these.
.TP
\fI/run/lock/mdevctl.lock\fR
Serialises every command that changes state.
.TP
\fI/usr/lib/udev/rules.d/60\-mdevctl.rules\fR
Starts the auto\-start devices of a parent when the kernel registers it.
"#;

const AUTOSTART_SECTION: &str = r#".SH AUTOSTART
Devices defined with \fB\-\-auto\fR are started when their parent appears: the udev
rule runs \fBmdevctl start\-parent\-mdevs\fR \fIPARENT\fR (a command not shown in
\fB\-\-help\fR) when the kernel announces that a parent registered with the mediated
device framework, provided \fI/etc/mdevctl.d/PARENT\fR exists. Its output goes to the
system log under the tag \fBmdevctl\fR.
"#;

const EXIT_SECTION: &str = r#".SH EXIT STATUS
\fB0\fR on success, \fB1\fR on a runtime error (a one\- or two\-line message on standard
error), \fB2\fR on a usage error.
"#;

/// Title, NAME, SYNOPSIS, DESCRIPTION and OPTIONS of `cmd`, as clap_mangen renders them.
/// `more` (roff) is appended to the description.
fn head(cmd: &clap::Command, name: &str, more: &str) -> Result<String> {
    let man = Man::new(cmd.clone());
    let mut out = title(&name.to_uppercase());
    out.push_str(&rendered(|w| man.render_name_section(w))?);
    out.push_str(&rendered(|w| man.render_synopsis_section(w))?);
    out.push_str(&rendered(|w| man.render_description_section(w))?);
    out.push_str(more);
    out.push_str(&rendered(|w| man.render_options_section(w))?);
    Ok(out)
}

/// The main page: the head, then one subsection per visible subcommand with its synopsis
/// and every option, then the hand-written sections.
pub fn mdevctl_page() -> Result<String> {
    let cmd = mdevctl_command();
    let mut out = head(&cmd, "mdevctl", "")?;
    out.push_str(".SH COMMANDS\n");
    for sub in visible_subcommands(&cmd) {
        let name = sub.get_name().to_owned();
        let sub_man = Man::new(sub.clone());
        let _ = writeln!(out, ".SS \\fBmdevctl {}\\fR", roff_text(&name));
        out.push_str(&section_body(
            |w| sub_man.render_synopsis_section(w),
            "SYNOPSIS",
        )?);
        out.push_str(".PP\n");
        out.push_str(&section_body(
            |w| sub_man.render_description_section(w),
            "DESCRIPTION",
        )?);
        out.push_str(&section_body(
            |w| sub_man.render_options_section(w),
            "OPTIONS",
        )?);
    }
    out.push_str(AUTOSTART_SECTION);
    out.push_str(&environment_section(&cmd));
    out.push_str(FILES_SECTION);
    out.push_str(EXIT_SECTION);
    out.push_str(".SH SEE ALSO\n\\fBlsmdev\\fR(8), \\fBudev\\fR(7)\n");
    Ok(out)
}

/// The `lsmdev` page: the `list` options under the name `lsmdev`.
pub fn lsmdev_page() -> Result<String> {
    let cmd = lsmdev_command();
    let more = ".PP\n\\fBlsmdev\\fR is \\fBmdevctl list\\fR: the same binary chooses it \
                when invoked under a name ending in \\fBlsmdev\\fR.\n";
    let mut out = head(&cmd, "lsmdev", more)?;
    out.push_str(&environment_section(&cmd));
    out.push_str(EXIT_SECTION);
    out.push_str(".SH SEE ALSO\n\\fBmdevctl\\fR(8)\n");
    Ok(out)
}

/// One page per visible subcommand (`mdevctl-define.8`, ...).
pub fn subcommand_pages() -> Result<Vec<Generated>> {
    let cmd = mdevctl_command();
    let mut out = Vec::new();
    for sub in visible_subcommands(&cmd) {
        let name = format!("mdevctl-{}", sub.get_name());
        let mut page = head(&sub.clone().display_name(name.clone()), &name, "")?;
        page.push_str(&environment_section(&cmd));
        page.push_str(EXIT_SECTION);
        page.push_str(".SH SEE ALSO\n\\fBmdevctl\\fR(8)\n");
        out.push(Generated {
            path: PathBuf::from(format!("{name}.8")),
            bytes: page.into_bytes(),
        });
    }
    Ok(out)
}

/// Every man page, named as installed under `man8/`.
pub fn man_pages() -> Result<Vec<Generated>> {
    let mut out = vec![
        Generated {
            path: PathBuf::from("mdevctl.8"),
            bytes: mdevctl_page()?.into_bytes(),
        },
        Generated {
            path: PathBuf::from("lsmdev.8"),
            bytes: lsmdev_page()?.into_bytes(),
        },
    ];
    out.extend(subcommand_pages()?);
    Ok(out)
}

/// The shells we generate for, with the file name each one's loader looks for.
pub const SHELLS: [(Shell, &str); 3] = [
    (Shell::Bash, "bash"),
    (Shell::Zsh, "zsh"),
    (Shell::Fish, "fish"),
];

/// The file name a shell's completion loader expects for `bin`.
pub fn completion_file_name(shell: Shell, bin: &str) -> String {
    match shell {
        // bash-completion loads `completions/<command>` lazily, by the command's name.
        Shell::Zsh => format!("_{bin}"),
        Shell::Fish => format!("{bin}.fish"),
        _ => bin.to_owned(),
    }
}

/// Completions for `mdevctl` and `lsmdev` in every shell, as `<shell>/<file name>`.
pub fn completions() -> Vec<Generated> {
    let mut out = Vec::new();
    for (shell, dir) in SHELLS {
        for (bin, mut cmd) in [("mdevctl", mdevctl_command()), ("lsmdev", lsmdev_command())] {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, bin, &mut buf);
            out.push(Generated {
                path: Path::new(dir).join(completion_file_name(shell, bin)),
                bytes: buf,
            });
        }
    }
    out
}

/// Writes generated files under `outdir`, creating sub-directories; returns the paths.
pub fn write_all(outdir: &Path, files: &[Generated]) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for f in files {
        let path = outdir.join(&f.path);
        crate::fsutil::write_file(&path, &f.bytes, 0o644)?;
        written.push(path);
    }
    Ok(written)
}
