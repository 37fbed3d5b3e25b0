//! The fixture: mdev-sim's `demo` host in a private root, a fake API server with one Node,
//! the desired-state file laid out as a ConfigMap volume lays it out, and the agent
//! running against them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use mdev_sim::{MountedSim, Profile, Sim};

use crate::fake_api::{FakeApi, NODE};

pub const AGENT: &str = env!("CARGO_BIN_EXE_mdevkit-agent");
pub const PROFILE_LABEL: &str = "mdevkit.io/profile";
pub const STATE_LABEL: &str = "mdevkit.io/profile.state";
pub const GPU0: &str = "0000:83:00.0";

/// Two profiles sharing their mtty-1 device, and one the demo host cannot take.
pub const PROFILES: &str = r#"version: 1
profiles:
  small:
    - parents: mtty
      devices:
        - {type: mtty-1, count: 1}
  large:
    - parents: mtty
      devices:
        - {type: mtty-1, count: 1}
        - {type: mtty-2, count: 1}
    - parents: "0000:83:00.0"
      devices:
        - {type: nvidia-18, count: 2}
  impossible:
    - parents: mtty
      devices:
        - {type: mtty-9, count: 1}
"#;

/// Fields drop in order: the agent is killed, then the API server stops, then the
/// simulator unmounts, then the root goes.
pub struct Fleet {
    agent: Option<Child>,
    pub api: FakeApi,
    pub sim: MountedSim,
    pub root: tempfile::TempDir,
    generation: std::cell::Cell<u32>,
}

impl Fleet {
    /// The demo host and a node without the profile label, or None (skip) without FUSE.
    pub fn new(test: &str) -> Option<Fleet> {
        if !mdev_sim::fuse_for_test(test).unwrap() {
            return None;
        }
        let root = tempfile::Builder::new()
            .prefix(&format!("mdevkit-agent-{test}-"))
            .tempdir()
            .unwrap();
        mdev_sim::prepare_env_root(root.path()).unwrap();
        std::fs::write(
            root.path().join("etc/machine-id"),
            "0123456789abcdef0123456789abcdef\n",
        )
        .unwrap();
        std::fs::create_dir_all(root.path().join("etc/mdevkit")).unwrap();
        let sim = Sim::mount(&root.path().join("sys"), Profile::builtin("demo").unwrap()).unwrap();
        let fleet = Fleet {
            agent: None,
            api: FakeApi::start(STATE_LABEL),
            sim,
            root,
            generation: std::cell::Cell::new(0),
        };
        fleet.publish(PROFILES);
        Some(fleet)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    pub fn config_file(&self) -> PathBuf {
        self.path("etc/mdevkit/config.yaml")
    }

    /// Writes the desired-state file as the kubelet updates a ConfigMap volume: a new
    /// timestamped directory, a `..data_tmp` symlink to it renamed over `..data`, and
    /// `config.yaml` a symlink to `..data/config.yaml`.
    pub fn publish(&self, text: &str) {
        let dir = self.path("etc/mdevkit");
        let n = self.generation.get() + 1;
        self.generation.set(n);
        let data = format!("..2026_12_02_{n:02}");
        std::fs::create_dir(dir.join(&data)).unwrap();
        std::fs::write(dir.join(&data).join("config.yaml"), text).unwrap();
        std::os::unix::fs::symlink(&data, dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
        if n == 1 {
            std::os::unix::fs::symlink("..data/config.yaml", dir.join("config.yaml")).unwrap();
        }
    }

    /// Starts the agent with a one-second re-check period.
    pub fn start_agent(&mut self) {
        let kubeconfig = self.path("kubeconfig");
        std::fs::write(&kubeconfig, self.api.kubeconfig()).unwrap();
        let log = std::fs::File::create(self.path("agent.log")).unwrap();
        let child = Command::new(AGENT)
            .args(["--node-name", NODE, "--period", "1s", "--wait", "0s"])
            .args([
                "--profile-label",
                PROFILE_LABEL,
                "--state-label",
                STATE_LABEL,
            ])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("-f")
            .arg(self.config_file())
            .env("MDEVCTL_ENV_ROOT", self.root.path())
            .env("MDEVCTL_LOG", "debug")
            .env_remove("NODE_NAME")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.agent = Some(child);
    }

    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.path("agent.log")).unwrap_or_default()
    }

    /// Sets the profile label and waits until the agent has reported `pending` and then a
    /// final state; returns that state.
    pub fn label_and_wait(&self, profile: Option<&str>) -> String {
        let before = self.api.with(|c| c.states.len());
        self.api.label(PROFILE_LABEL, profile);
        self.wait_after(before)
    }

    /// Waits for a `pending` and a final state after the first `before` state patches.
    pub fn wait_after(&self, before: usize) -> String {
        let states = self.api.wait_states(before + 2);
        assert_eq!(
            states[before],
            "pending",
            "{states:?}\n{}",
            self.agent_log()
        );
        states[before + 1].clone()
    }

    pub fn active(&self) -> BTreeSet<String> {
        self.sim.active_devices().into_iter().collect()
    }

    /// `(parent, uuid)` of every definition file.
    pub fn defined(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for p in std::fs::read_dir(self.path("etc/mdevctl.d")).unwrap() {
            let p = p.unwrap();
            if !p.file_type().unwrap().is_dir() || p.file_name() == "scripts.d" {
                continue;
            }
            for f in std::fs::read_dir(p.path()).unwrap() {
                let f = f.unwrap().file_name().into_string().unwrap();
                if !f.starts_with('.') {
                    out.insert((p.file_name().into_string().unwrap(), f));
                }
            }
        }
        out
    }

    pub fn on_parent(&self, parent: &str) -> BTreeSet<String> {
        self.defined()
            .into_iter()
            .filter(|(p, _)| p == parent)
            .map(|(_, u)| u)
            .collect()
    }

    pub fn sys(&self) -> &Path {
        self.sim.mountpoint()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(mut a) = self.agent.take() {
            let _ = a.kill();
            let _ = a.wait();
        }
        if std::thread::panicking() {
            eprintln!("agent log:\n{}", self.agent_log());
        }
    }
}
