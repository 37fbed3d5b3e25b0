//! Shared fixture of the FUSE tests: a mounted profile in a private temp dir, or a clear skip.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use mdev_sim::{MountedSim, Profile, Sim};

/// A mounted simulator; unmounted and removed on drop.
pub struct Fixture {
    pub dir: PathBuf,
    pub sim: Option<MountedSim>,
}

impl Fixture {
    pub fn sys(&self) -> &Path {
        self.sim.as_ref().unwrap().mountpoint()
    }

    pub fn sim(&self) -> &MountedSim {
        self.sim.as_ref().unwrap()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.sys().join(rel)
    }

    /// Writes raw bytes as mdevctl does (no newline added); the errno on failure.
    pub fn write(&self, rel: &str, data: &[u8]) -> Result<(), i32> {
        std::fs::write(self.path(rel), data).map_err(|e| e.raw_os_error().unwrap_or(-1))
    }

    pub fn read(&self, rel: &str) -> Result<String, i32> {
        std::fs::read_to_string(self.path(rel)).map_err(|e| e.raw_os_error().unwrap_or(-1))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).symlink_metadata().is_ok()
    }

    pub fn avail(&self, parent: &str, ty: &str) -> u32 {
        self.read(&format!(
            "class/mdev_bus/{parent}/mdev_supported_types/{ty}/available_instances"
        ))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
    }

    pub fn create(&self, parent: &str, ty: &str, uuid: &str) -> Result<(), i32> {
        self.write(
            &format!("class/mdev_bus/{parent}/mdev_supported_types/{ty}/create"),
            uuid.as_bytes(),
        )
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        drop(self.sim.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh private directory, created by `tempfile` and kept: the fixture (or the test)
/// removes it, after unmounting what is mounted inside.
pub fn temp_dir(tag: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(&format!("mdev-sim-test-{tag}-"))
        .tempdir()
        .unwrap()
        .keep()
}

/// Whether FUSE tests can run: prints one line and returns false outside CI, fails under CI.
pub fn fuse_or_skip(test: &str) -> bool {
    mdev_sim::fuse_for_test(test).unwrap()
}

/// Mounts a built-in profile at `<tmp>/sys`, or returns None (skip) when FUSE is unavailable.
pub fn mount(test: &str, profile: &str) -> Option<Fixture> {
    mount_profile(test, Profile::builtin(profile).unwrap())
}

pub fn mount_profile(test: &str, profile: Profile) -> Option<Fixture> {
    if !fuse_or_skip(test) {
        return None;
    }
    let dir = temp_dir(test);
    let sim = Sim::mount(&dir.join("sys"), profile).unwrap();
    Some(Fixture {
        dir,
        sim: Some(sim),
    })
}

pub const U1: &str = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001";
pub const U2: &str = "1b801999-4448-490b-bcbd-de74b7d38a8e";
pub const U3: &str = "b4548fe2-f045-4264-8c42-fe193d7b7318";

/// A distinct valid UUID per number.
pub fn uuid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

pub const EINVAL: i32 = 22;
pub const EEXIST: i32 = 17;
pub const EACCES: i32 = 13;
pub const EPERM: i32 = 1;
pub const EBUSY: i32 = 16;
pub const ENOSPC: i32 = 28;
pub const EUSERS: i32 = 87;
pub const ENODEV: i32 = 19;
pub const ENOENT: i32 = 2;
pub const EADDRINUSE: i32 = 98;
pub const EADDRNOTAVAIL: i32 = 99;
