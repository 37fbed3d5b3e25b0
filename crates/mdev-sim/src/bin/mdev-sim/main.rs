//! The `mdev-sim` command: mount a simulated host, control it, write plain trees, run the demo.

mod demo;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use mdev_sim::{fuse_available, Profile, Sim};

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
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Mount {
            profile,
            detach,
            mountpoint,
        } => {
            if detach {
                detach_mount(&profile, &mountpoint)
            } else {
                mount_foreground(&profile, &mountpoint)
            }
        }
        Cmd::Ctl {
            mountpoint,
            command,
        } => ctl(&mountpoint, &command.join(" ")),
        Cmd::Umount { mountpoint } => {
            mdev_sim::lazy_unmount(&mountpoint).map_err(|e| format!("cannot unmount: {e}"))
        }
        Cmd::Plain { profile, dir } => load(&profile).and_then(|p| {
            mdev_sim::write_plain_tree(&p, &dir).map_err(|e| e.to_string())?;
            println!("wrote the '{}' tree to {}", p.name, dir.display());
            Ok(())
        }),
        Cmd::Profiles => {
            for (name, description) in Profile::builtin_names() {
                println!("{name:<10} {description}");
            }
            Ok(())
        }
        Cmd::Demo { mdevctl } => demo::run(mdevctl),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mdev-sim: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load(profile: &str) -> Result<Profile, String> {
    Profile::by_name_or_path(profile).map_err(|e| e.to_string())
}

fn mount_foreground(profile: &str, mountpoint: &Path) -> Result<(), String> {
    let profile = load(profile)?;
    if let Err(reason) = fuse_available() {
        return Err(format!("FUSE is not available here: {reason}"));
    }
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ]);
    let mut signals = signals.map_err(|e| format!("cannot handle signals: {e}"))?;
    let sim = Sim::mount(mountpoint, profile).map_err(|e| e.to_string())?;
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
    loop {
        if let Some(sig) = signals.pending().next() {
            say(format!("signal {sig}, unmounting"));
            break;
        }
        if !sim.is_serving() {
            say("the mount went away, exiting".into());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    sim.unmount();
    Ok(())
}

/// Starts a foreground simulator as a child in its own process group (so a terminal's Ctrl-C
/// does not reach it) and returns once its control file is there.
fn detach_mount(profile: &str, mountpoint: &Path) -> Result<(), String> {
    load(profile)?;
    if let Err(reason) = fuse_available() {
        return Err(format!("FUSE is not available here: {reason}"));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new(exe)
            .args(["mount", "--profile", profile])
            .arg(mountpoint)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the simulator: {e}"))?
    };
    let control = mountpoint.join("mdev-sim/control");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return Err(format!("the simulator exited ({status}): {}", err.trim()));
        }
        if control.exists() {
            println!(
                "mdev-sim: mounted at {} (pid {}); stop it with `kill {}` or `mdev-sim umount {}`",
                mountpoint.display(),
                child.id(),
                child.id(),
                mountpoint.display()
            );
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "the simulator (pid {}) did not mount {} within 20 s",
        child.id(),
        mountpoint.display()
    ))
}

fn ctl(mountpoint: &Path, command: &str) -> Result<(), String> {
    let control = mountpoint.join("mdev-sim/control");
    match std::fs::write(&control, command) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let why =
                std::fs::read_to_string(mountpoint.join("mdev-sim/last_error")).unwrap_or_default();
            Err(format!("'{command}' refused: {}", why.trim()))
        }
        Err(e) => Err(format!(
            "cannot write {} (is a simulator mounted there?): {e}",
            control.display()
        )),
    }
}
