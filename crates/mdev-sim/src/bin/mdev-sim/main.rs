//! The `mdev-sim` command: mount a simulated host, control it, write plain trees, run the demo.

mod demo;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use mdev_sim::{fuse_available, Profile, Sim, Uevents};

#[derive(Debug, Parser)]
#[command(
    name = "mdev-sim",
    version,
    about = "A kernel-faithful simulated mdev host (a sysfs root) served over FUSE"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Mount a simulated sysfs root at MOUNTPOINT (the directory that stands for /sys).
    Mount {
        /// A built-in profile name (see `mdev-sim profiles`) or a JSON profile file.
        #[arg(long, default_value = "demo")]
        profile: String,
        /// Return once mounted, leaving the simulator running in the background.
        #[arg(long)]
        detach: bool,
        /// Print a line on stdout once mounted (how `--detach` learns that its child is ready).
        #[arg(long, hide = true)]
        ready_line: bool,
        /// Also broadcast each uevent as udevd would (libudev's format, netlink group 2),
        /// for libudev monitors such as libvirt's or `udevadm monitor --udev`
        #[arg(long, conflicts_with = "no_uevents")]
        udev_events: bool,
        /// Broadcast no uevents at all (by default the kernel's, on netlink group 1)
        #[arg(long)]
        no_uevents: bool,
        mountpoint: PathBuf,
    },
    /// Send a control command to a mounted simulator (e.g. `remove-parent mtty`).
    Ctl {
        mountpoint: PathBuf,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Unmount a simulator (a running one stops; a stale mount is cleared).
    Umount { mountpoint: PathBuf },
    /// Write a profile's tree as plain files and symlinks (no kernel semantics) into DIR.
    Plain {
        #[arg(long, default_value = "demo")]
        profile: String,
        dir: PathBuf,
    },
    /// List the built-in profiles.
    Profiles,
    /// Mount the demo profile in a temporary root and run a realistic mdevctl session on it.
    Demo {
        /// The mdevctl binary to drive (default: the one next to this executable).
        #[arg(long)]
        mdevctl: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}`: the error and its causes on one line, `top: cause: cause`.
            let _ = writeln!(std::io::stderr(), "mdev-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Mount {
            profile,
            detach,
            ready_line,
            udev_events,
            no_uevents,
            mountpoint,
        } => {
            let uevents = match (no_uevents, udev_events) {
                (true, _) => Uevents::Off,
                (false, true) => Uevents::KernelAndUdev,
                (false, false) => Uevents::Kernel,
            };
            if detach {
                detach_mount(&profile, &mountpoint, uevents)
            } else {
                mount_foreground(&profile, &mountpoint, ready_line, uevents)
            }
        }
        Cmd::Ctl {
            mountpoint,
            command,
        } => ctl(&mountpoint, &command.join(" ")),
        Cmd::Umount { mountpoint } => mdev_sim::lazy_unmount(&mountpoint)
            .map_err(|e| anyhow!("cannot unmount {}: {e}", mountpoint.display())),
        Cmd::Plain { profile, dir } => {
            let p = load(&profile)?;
            mdev_sim::write_plain_tree(&p, &dir)?;
            println!("wrote the '{}' tree to {}", p.name, dir.display());
            Ok(())
        }
        Cmd::Profiles => {
            for (name, description) in Profile::builtin_names() {
                println!("{name:<10} {description}");
            }
            Ok(())
        }
        Cmd::Demo { mdevctl } => demo::run(mdevctl),
    }
}

fn load(profile: &str) -> anyhow::Result<Profile> {
    Ok(Profile::by_name_or_path(profile)?)
}

fn require_fuse() -> anyhow::Result<()> {
    fuse_available().map_err(|reason| anyhow!("FUSE is not available here: {reason}"))
}

/// What ends a foreground simulator.
#[derive(Debug)]
enum Stop {
    Signal(i32),
    Unmounted,
}

/// The line a simulator started by `mount --detach` prints on stdout once it is mounted.
const READY: &str = "ready";

/// How long `mount --detach` waits for the child's ready line: a guard against a hang, not an
/// expectation (mounting takes milliseconds).
const DETACH_HANG_GUARD: Duration = Duration::from_secs(60);

fn mount_foreground(
    profile: &str,
    mountpoint: &Path,
    ready_line: bool,
    uevents: Uevents,
) -> anyhow::Result<()> {
    let profile = load(profile)?;
    require_fuse()?;
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .context("cannot handle signals")?;
    let sim = Sim::mount_with(mountpoint, profile, uevents)?;
    // Messages go out with write errors ignored: a detached simulator's stderr is a pipe that
    // closes when `mount --detach` returns, and eprintln! would panic on it.
    let say = |text: String| {
        let _ = writeln!(std::io::stderr(), "mdev-sim: {text}");
    };
    say(format!(
        "serving profile '{}' at {} (pid {}); Ctrl-C or SIGTERM unmounts",
        sim.profile_name(),
        sim.mountpoint().display(),
        std::process::id()
    ));
    if ready_line {
        // The mount is in place once Sim::mount returns; the parent waits for this line.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{READY}").and_then(|()| out.flush());
    }
    // Both causes of the end arrive on one channel; whichever comes first wins.
    let (stop, stopped) = mpsc::channel();
    let on_signal = stop.clone();
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let _ = on_signal.send(Stop::Signal(sig));
        }
    });
    if let Some(watch) = sim.unmount_watch() {
        std::thread::spawn(move || {
            // Returns (with an error) when the session ends.
            let _ = watch.recv();
            let _ = stop.send(Stop::Unmounted);
        });
    }
    match stopped.recv() {
        Ok(Stop::Signal(sig)) => say(format!("signal {sig}, unmounting")),
        Ok(Stop::Unmounted) => say("the mount went away, exiting".into()),
        Err(_) => say("no signal or unmount can arrive any more, unmounting".into()),
    }
    sim.unmount();
    Ok(())
}

/// Starts a foreground simulator as a child in its own process group (so a terminal's Ctrl-C
/// does not reach it) and returns once the child says on its stdout that it is mounted.
fn detach_mount(profile: &str, mountpoint: &Path, uevents: Uevents) -> anyhow::Result<()> {
    load(profile)?;
    require_fuse()?;
    let exe = std::env::current_exe().context("cannot find my own executable")?;
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new(exe)
            .args(["mount", "--ready-line", "--profile", profile])
            .args(match uevents {
                Uevents::Off => &["--no-uevents"][..],
                Uevents::Kernel => &[],
                Uevents::KernelAndUdev => &["--udev-events"],
            })
            .arg(mountpoint)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .context("cannot start the simulator")?
    };
    let stdout = child
        .stdout
        .take()
        .context("the simulator's stdout is not a pipe")?;
    // The blocking read goes to a thread so that the wait can have a hang guard.
    let (line_tx, line_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let _ = line_tx.send(read.map(|_| line));
    });
    match line_rx.recv_timeout(DETACH_HANG_GUARD) {
        Ok(Ok(line)) if line.trim_end() == READY => {
            println!(
                "mdev-sim: mounted at {} (pid {}); stop it with `kill {}` or `mdev-sim umount {}`",
                mountpoint.display(),
                child.id(),
                child.id(),
                mountpoint.display()
            );
            Ok(())
        }
        // End of file (or a read error): the child stopped before it mounted.
        Ok(_) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            let status = child.wait().context("cannot wait for the simulator")?;
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            bail!("the simulator exited ({status}): {}", err.trim())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the simulator (pid {}) did not mount {} within {} s, and was stopped",
                child.id(),
                mountpoint.display(),
                DETACH_HANG_GUARD.as_secs()
            )
        }
    }
}

fn ctl(mountpoint: &Path, command: &str) -> anyhow::Result<()> {
    let control = mountpoint.join("mdev-sim/control");
    match std::fs::write(&control, command) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let why =
                std::fs::read_to_string(mountpoint.join("mdev-sim/last_error")).unwrap_or_default();
            bail!("'{command}' refused: {}", why.trim())
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot write {} (is a simulator mounted there?)",
            control.display()
        ))),
    }
}
