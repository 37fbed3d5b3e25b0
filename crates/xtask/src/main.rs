//! `cargo xtask <task>`: the command line of the project's tooling (see lib.rs).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use xtask::{bench, cargo, deb, docs, genhost, install, rpm, upstream};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "mdevkit's project tooling")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

/// Target directories that override the defaults derived from the prefix.
#[derive(Debug, Args)]
struct DirArgs {
    /// Default: PREFIX/sbin
    #[arg(long)]
    sbindir: Option<PathBuf>,
    /// Default: PREFIX/bin
    #[arg(long)]
    bindir: Option<PathBuf>,
    /// Default: PREFIX/share/man
    #[arg(long)]
    mandir: Option<PathBuf>,
    /// Default: /usr/lib/udev
    #[arg(long)]
    udevdir: Option<PathBuf>,
    /// Default: /usr/lib/systemd/system
    #[arg(long)]
    unitdir: Option<PathBuf>,
}

/// Where the binaries come from.
#[derive(Debug, Args)]
struct BuildArgs {
    /// Build with the release profile (otherwise the dev profile, as cargo does)
    #[arg(long)]
    release: bool,
    /// Take the binaries already built in this directory (e.g. target/release)
    #[arg(long, conflicts_with = "release")]
    built: Option<PathBuf>,
}

impl BuildArgs {
    fn dir(&self, packages: &[install::Package]) -> Result<PathBuf> {
        match &self.built {
            Some(dir) => Ok(dir.clone()),
            None => install::build(self.release, packages),
        }
    }
}

fn packages(names: &[String]) -> Result<Vec<install::Package>> {
    if names.is_empty() {
        return Ok(install::Package::ALL.to_vec());
    }
    names
        .iter()
        .map(|n| install::Package::from_name(n))
        .collect()
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Write the man pages (mdevctl.8, lsmdev.8, mdevctl-COMMAND.8) into OUTDIR
    Man { outdir: PathBuf },
    /// Write bash, zsh and fish completions for mdevctl and lsmdev into OUTDIR/SHELL/
    Completions { outdir: PathBuf },
    /// Build the binaries and install them with their man pages, completions, udev rule,
    /// units and directories; prints the installed paths
    Install {
        /// Staging directory prepended to every path (packaging); default $DESTDIR, then /
        #[arg(long)]
        destdir: Option<PathBuf>,
        #[arg(long, default_value = "/usr")]
        prefix: PathBuf,
        #[command(flatten)]
        dirs: DirArgs,
        /// Only this package's files (mdevkit or mdev-sim; repeatable; default both)
        #[arg(long = "package")]
        packages: Vec<String>,
        /// Compress the man pages with gzip -9n (as Debian policy wants)
        #[arg(long)]
        gzip_man: bool,
        /// Print the install list (`f|l|d PATH`, paths on the target) instead of staged paths
        #[arg(long)]
        manifest: bool,
        #[command(flatten)]
        build: BuildArgs,
    },
    /// Build the Debian packages (mdevkit, mdev-sim) with dpkg-deb into OUT, from a
    /// release build
    Deb {
        /// Default: target/debian
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only this package (mdevkit or mdev-sim; repeatable; default both)
        #[arg(long = "package")]
        packages: Vec<String>,
        /// Package the binaries in this directory (e.g. target/debug) instead of a release build
        #[arg(long)]
        built: Option<PathBuf>,
    },
    /// Build the RPMs from packaging/mdevkit.spec with rpmbuild into OUT/rpmbuild
    Rpm {
        /// Default: target/rpm
        #[arg(long)]
        out: Option<PathBuf>,
        /// Package the binaries in this directory (e.g. target/debug) instead of a release build
        #[arg(long)]
        built: Option<PathBuf>,
    },
    /// Write a fake host (sysfs shape and definition store) under ROOT
    GenHost {
        root: PathBuf,
        #[arg(long, default_value_t = 1000)]
        definitions: usize,
        #[arg(long, default_value_t = 8)]
        parents: usize,
        #[arg(long, default_value_t = 100)]
        active: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Time the listings, types and start-parent-mdevs on generated hosts; report ratios to
    /// the floor program (and upstream), syscalls per item and peak RSS
    Bench {
        #[arg(long, default_value_t = 11)]
        reps: usize,
        /// CI smoke scale: 200 and 2,000 definitions
        #[arg(long)]
        small: bool,
        /// Measure this binary instead of building mdevctl in release mode
        #[arg(long)]
        binary: Option<PathBuf>,
        /// An upstream mdevctl to compare with (run with MDEVCTL_ENV_ROOT on the same hosts)
        #[arg(long)]
        upstream: Option<PathBuf>,
        #[arg(long)]
        no_strace: bool,
        /// Keep the generated hosts
        #[arg(long)]
        keep: bool,
    },
    /// (internal) Run BIN ARGS with MDEVCTL_ENV_ROOT=ROOT and print its peak RSS in KiB;
    /// used by `bench`
    #[command(hide = true)]
    PeakRss {
        #[arg(long)]
        root: PathBuf,
        bin: PathBuf,
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// (internal) Time BIN ARGS in this process's view of the file system; used by
    /// `bench --upstream` inside a mount namespace
    #[command(hide = true)]
    TimeRuns {
        #[arg(long, default_value_t = 11)]
        reps: usize,
        /// Directory for the results (see upstream::save_time_runs)
        #[arg(long)]
        out: PathBuf,
        #[arg(required = true)]
        bins: Vec<PathBuf>,
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}`: the message and its causes on one line, no backtrace dump.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a line; a closed stdout (`| head`) ends the output quietly instead of panicking.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

fn run(task: Task) -> Result<()> {
    match task {
        Task::Man { outdir } => {
            for p in docs::write_all(&outdir, &docs::man_pages()?)? {
                say(&p.display().to_string());
            }
        }
        Task::Completions { outdir } => {
            for p in docs::write_all(&outdir, &docs::completions())? {
                say(&p.display().to_string());
            }
        }
        Task::Install {
            destdir,
            prefix,
            dirs,
            packages: names,
            gzip_man,
            manifest,
            build,
        } => {
            // Read by hand: clap rejects a set-but-empty variable, and `DESTDIR=` is common.
            let destdir = destdir
                .or_else(|| std::env::var_os("DESTDIR").map(PathBuf::from))
                .unwrap_or_default();
            let dirs = install::DirOverrides {
                sbindir: dirs.sbindir,
                bindir: dirs.bindir,
                mandir: dirs.mandir,
                udevdir: dirs.udevdir,
                unitdir: dirs.unitdir,
            };
            let layout = install::Layout::new(destdir, prefix, dirs)?;
            let packages = packages(&names)?;
            let req = install::Request {
                built: build.dir(&packages)?,
                packages,
                man: if gzip_man {
                    install::ManFormat::Gzip
                } else {
                    install::ManFormat::Plain
                },
            };
            for entry in install::install(&layout, &req)? {
                if manifest {
                    say(&entry.manifest_line());
                } else {
                    say(&layout.staged(&entry.path).display().to_string());
                }
            }
        }
        Task::Deb {
            out,
            packages: names,
            built,
        } => {
            let packages = packages(&names)?;
            let out = out.unwrap_or_else(|| cargo::target_dir().join("debian"));
            let dir = match built {
                Some(dir) => dir,
                None => install::build(true, &packages)?,
            };
            for built in deb::build(&packages, &dir, &out)? {
                say(&built.deb.display().to_string());
                say(&built.manifest.display().to_string());
            }
        }
        Task::Rpm { out, built } => {
            let out = out.unwrap_or_else(|| cargo::target_dir().join("rpm"));
            for rpm in rpm::build(built.as_deref(), &out)? {
                say(&rpm.display().to_string());
            }
        }
        Task::GenHost {
            root,
            definitions,
            parents,
            active,
            seed,
        } => {
            let spec = genhost::HostSpec {
                definitions,
                parents,
                active,
                seed,
                ..Default::default()
            };
            let s = genhost::generate(&root, &spec)?;
            say(&format!(
                "{}: {} parents, {} definitions, {} active (MDEVCTL_ENV_ROOT={})",
                root.display(),
                s.parents.len(),
                s.defined.len(),
                s.active.len(),
                root.display()
            ));
        }
        Task::Bench {
            reps,
            small,
            binary,
            upstream,
            no_strace,
            keep,
        } => {
            let opts = bench::BenchOpts {
                reps,
                small,
                binary,
                upstream,
                no_strace,
                keep,
            };
            say(bench::bench(&opts)?.trim_end());
        }
        Task::PeakRss { root, bin, args } => {
            say(&bench::peak_rss_of_child(&bin, &root, &args)?.to_string());
        }
        Task::TimeRuns {
            reps,
            out,
            bins,
            args,
        } => {
            let results = upstream::time_alternating(&bins, &args, reps, None)?;
            upstream::save_time_runs(&out, &results)?;
        }
    }
    Ok(())
}
