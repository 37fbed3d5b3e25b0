//! `mdev-sim demo`: a realistic mdevctl session against the `demo` profile, printed as it runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use mdev_sim::{fuse_available, MountedSim, Profile, Sim};

const MTTY_DEV: &str = "6f7d8c52-6a55-4e0b-9d4a-1b2c3d4e5f60";
const AP_DEV: &str = "a9b3c1e2-4d5f-4a6b-8c7d-0e1f2a3b4c5d";
const AP_RIVAL: &str = "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e";
const GPU_DEV: &str = "c0ffee00-1234-4321-8765-0123456789ab";
const LATE_GPU_DEV: &str = "d15ea5e0-0000-4000-8000-00000000beef";
const LATE_GPU: &str = "0000:84:00.0";

/// What a step is expected to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Ok,
    Fail,
}

struct Session {
    mdevctl: PathBuf,
    root: PathBuf,
    unexpected: Vec<String>,
}

pub fn run(mdevctl: Option<PathBuf>) -> anyhow::Result<()> {
    let mdevctl = match mdevctl {
        Some(path) => path,
        None => std::env::current_exe()
            .context("cannot find my own executable")?
            .with_file_name("mdevctl"),
    };
    if !mdevctl.is_file() {
        bail!(
            "no mdevctl binary at {} (build it with `cargo build -p mdevctl`, or pass --mdevctl PATH)",
            mdevctl.display()
        );
    }
    fuse_available().map_err(|reason| anyhow!("FUSE is not available here: {reason}"))?;
    // Removed when dropped, also when a step below fails.
    let dir = tempfile::Builder::new()
        .prefix("mdev-sim-demo-")
        .tempdir()
        .context("cannot create the demo's root directory")?;
    let root = dir.path().to_path_buf();
    mdev_sim::prepare_env_root(&root)?;
    let profile = Profile::builtin("demo")?;
    let sim = Sim::mount(&root.join("sys"), profile)?;
    // The udev rule's job: when a parent registers, start its auto devices.
    sim.set_hook(&[
        "env".to_string(),
        format!("MDEVCTL_ENV_ROOT={}", root.display()),
        mdevctl.display().to_string(),
        "start-parent-mdevs".to_string(),
    ]);
    println!(
        "# mdev-sim demo: profile 'demo' mounted at {}/sys",
        root.display()
    );
    println!(
        "# every command below runs with MDEVCTL_ENV_ROOT={}",
        root.display()
    );
    let mut s = Session {
        mdevctl,
        root: root.clone(),
        unexpected: Vec::new(),
    };
    s.script(&sim);
    // Unmount before the directory under the mount point goes.
    drop(sim);
    let _ = dir.close();
    if s.unexpected.is_empty() {
        println!("\n# demo finished: every step behaved as expected");
        Ok(())
    } else {
        bail!(
            "{} step(s) did not behave as expected:\n  {}",
            s.unexpected.len(),
            s.unexpected.join("\n  ")
        )
    }
}

impl Session {
    fn script(&mut self, sim: &MountedSim) {
        use Expect::{Fail, Ok};
        self.say("What can this host create?");
        self.mdevctl(Ok, &["types"]);

        self.say("A persistent serial device, started now and at boot.");
        self.mdevctl(
            Ok,
            &[
                "define", "-u", MTTY_DEV, "-p", "mtty", "-t", "mtty-2", "--auto",
            ],
        );
        self.mdevctl(Ok, &["start", "-u", MTTY_DEV]);

        self.say("A crypto passthrough device: vfio-ap attributes are written in order.");
        self.mdevctl(
            Ok,
            &[
                "define",
                "-u",
                AP_DEV,
                "-p",
                "matrix",
                "-t",
                "vfio_ap-passthrough",
            ],
        );
        for (attr, value) in [
            ("assign_adapter", "5"),
            ("assign_domain", "0x47"),
            ("assign_control_domain", "0x47"),
        ] {
            self.mdevctl(
                Ok,
                &["modify", "-u", AP_DEV, "--addattr", attr, "--value", value],
            );
        }
        self.mdevctl(Ok, &["start", "-u", AP_DEV]);
        self.cat(&format!("bus/mdev/devices/{AP_DEV}/matrix"));

        self.say(
            "A second one wanting the same queue 05.0047 is refused by the kernel (EADDRINUSE),\n\
             # and mdevctl removes the half-configured device again.",
        );
        self.mdevctl(
            Ok,
            &[
                "define",
                "-u",
                AP_RIVAL,
                "-p",
                "matrix",
                "-t",
                "vfio_ap-passthrough",
            ],
        );
        for (attr, value) in [("assign_domain", "0x47"), ("assign_adapter", "5")] {
            self.mdevctl(
                Ok,
                &[
                    "modify",
                    "-u",
                    AP_RIVAL,
                    "--addattr",
                    attr,
                    "--value",
                    value,
                ],
            );
        }
        self.mdevctl(Fail, &["start", "-u", AP_RIVAL]);

        self.say("A vGPU with its vgpu_params (the NVIDIA driver wants a trailing newline).");
        self.mdevctl(
            Ok,
            &[
                "define",
                "-u",
                GPU_DEV,
                "-p",
                "0000:83:00.0",
                "-t",
                "nvidia-18",
            ],
        );
        self.mdevctl(
            Ok,
            &[
                "modify",
                "-u",
                GPU_DEV,
                "--addattr",
                "nvidia/vgpu_params",
                "--value",
                "frame_rate_limiter=0\n",
            ],
        );
        self.mdevctl(Ok, &["start", "-u", GPU_DEV]);
        self.cat(&format!("bus/mdev/devices/{GPU_DEV}/nvidia/vgpu_params"));
        self.mdevctl(Ok, &["list"]);
        self.mdevctl(Ok, &["list", "-d", "-v"]);
        self.mdevctl(Ok, &["modify", "-u", AP_DEV, "--auto"]);
        self.mdevctl(Ok, &["list", "-d", "-u", AP_DEV, "--dumpjson"]);

        self.say("While a guest uses the vGPU, stop fails (remove gives EBUSY).");
        if let Err(e) = sim.set_busy(GPU_DEV, true) {
            self.unexpected.push(format!("marking {GPU_DEV} busy: {e}"));
        }
        self.mdevctl(Fail, &["stop", "-u", GPU_DEV]);
        let _ = sim.set_busy(GPU_DEV, false);
        self.mdevctl(Ok, &["stop", "-u", GPU_DEV]);

        self.say("The mtty driver is unloaded: its device vanishes with it.");
        self.sim(sim, "remove-parent mtty", |s| s.remove_parent("mtty"));
        self.mdevctl(Ok, &["list"]);
        self.say("It comes back; udev runs `mdevctl start-parent-mdevs mtty`, which starts the auto device.");
        self.sim(sim, "add-parent mtty", |s| s.add_parent("mtty"));
        self.wait_hooks(sim);
        self.mdevctl(Ok, &["list"]);

        self.say(&format!(
            "A device defined for a GPU that is not there yet, {LATE_GPU}."
        ));
        self.mdevctl(
            Ok,
            &[
                "define",
                "-u",
                LATE_GPU_DEV,
                "-p",
                LATE_GPU,
                "-t",
                "nvidia-18",
                "--auto",
            ],
        );
        self.sim(sim, &format!("add-parent {LATE_GPU}"), |s| {
            s.add_parent(LATE_GPU)
        });
        self.wait_hooks(sim);
        self.mdevctl(Ok, &["list", "-p", LATE_GPU]);

        self.say("Cleaning up.");
        for uuid in [MTTY_DEV, AP_DEV, LATE_GPU_DEV] {
            self.mdevctl(Ok, &["stop", "-u", uuid]);
        }
        for uuid in [MTTY_DEV, AP_DEV, AP_RIVAL, GPU_DEV, LATE_GPU_DEV] {
            self.mdevctl(Ok, &["undefine", "-u", uuid]);
        }
        self.mdevctl(Ok, &["list", "-d"]);
    }

    fn say(&self, text: &str) {
        println!("\n# {text}");
    }

    fn mdevctl(&mut self, expect: Expect, args: &[&str]) {
        println!("$ mdevctl {}", shell_words(args));
        let out = Command::new(&self.mdevctl)
            .args(args)
            .env("MDEVCTL_ENV_ROOT", &self.root)
            .output();
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                println!("(cannot run {}: {e})", self.mdevctl.display());
                self.unexpected
                    .push(format!("mdevctl {}: cannot run: {e}", args.join(" ")));
                return;
            }
        };
        for stream in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(stream);
            print!("{text}");
            // JSON output ends without a newline; keep the transcript readable.
            if !text.is_empty() && !text.ends_with('\n') {
                println!();
            }
        }
        let succeeded = out.status.success();
        if !succeeded {
            println!("(exit status {})", out.status.code().unwrap_or(-1));
        }
        if succeeded != (expect == Expect::Ok) {
            let what = if succeeded { "succeeded" } else { "failed" };
            println!("(unexpected: this step {what})");
            self.unexpected
                .push(format!("mdevctl {} {what}", shell_words(args)));
        }
    }

    fn cat(&mut self, path: &str) {
        let full = self.root.join("sys").join(path);
        println!("$ cat {}", display_under(&self.root, &full));
        match std::fs::read_to_string(&full) {
            Ok(text) => print!("{text}"),
            Err(e) => {
                println!("cat: {e}");
                self.unexpected.push(format!("cat {path}: {e}"));
            }
        }
    }

    fn sim<E: std::fmt::Display>(
        &mut self,
        sim: &MountedSim,
        label: &str,
        f: impl FnOnce(&MountedSim) -> Result<(), E>,
    ) {
        println!("$ mdev-sim ctl $ROOT/sys {label}");
        if let Err(e) = f(sim) {
            println!("mdev-sim: {e}");
            self.unexpected.push(format!("{label}: {e}"));
        }
    }

    fn wait_hooks(&mut self, sim: &MountedSim) {
        let runs = sim.wait_hooks(Duration::from_secs(30));
        if let Some(run) = runs.last() {
            println!(
                "(udev hook: mdevctl start-parent-mdevs {} exited {})",
                run.parent,
                run.status
                    .map_or_else(|| "by signal".into(), |c| c.to_string())
            );
            print!("{}{}", run.stdout, run.stderr);
        }
    }
}

fn display_under(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).map_or_else(
        |_| path.display().to_string(),
        |rel| format!("$ROOT/{}", rel.display()),
    )
}

/// Quotes arguments the way a reader would type them into bash.
fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if a.contains('\n') {
                format!(
                    "$'{}'",
                    a.replace('\\', "\\\\")
                        .replace('\'', "\\'")
                        .replace('\n', "\\n")
                )
            } else if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,".contains(c))
            {
                (*a).to_string()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
