//! `mdev-floor`: the benchmark's floor, the I/O a listing cannot avoid and nothing else,
//! so that `cargo xtask bench` can report each listing as a multiple of it.
//!
//! `mdev-floor defined ROOT`: list `etc/mdevctl.d` and every parent directory in it; open,
//! read once and close every definition (relative to its directory); list
//! `sys/bus/mdev/devices` and read every active device's `mdev_type` link.
//! `mdev-floor active ROOT`: list `sys/bus/mdev/devices`; read each device's two links
//! (parent, type); open, read once and close `etc/mdevctl.d/<parent>/<uuid>` if present.
//!
//! It parses nothing, sorts nothing and prints only how many definitions (or devices) it
//! read, which the benchmark checks like any listing's output.

use std::ffi::{CStr, OsStr};
use std::io::Write;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rustix::fs::{FileType, Mode, OFlags, RawDir, CWD};
use rustix::io::Errno;

fn open_dir(at: &OwnedFd, rel: &CStr) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        at,
        rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Every entry but `.` and `..`, with its d_type.
fn entries(dir: &OwnedFd) -> Result<Vec<(Vec<u8>, FileType)>, Errno> {
    let mut buf = vec![MaybeUninit::<u8>::uninit(); 32 * 1024];
    let mut raw = RawDir::new(dir, &mut buf);
    let mut out = Vec::new();
    while let Some(e) = raw.next() {
        let e = e?;
        let name = e.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push((name.to_vec(), e.file_type()));
        }
    }
    Ok(out)
}

/// Opens, reads once into `buf` and closes `rel`; false if it cannot be opened.
fn read_once(dir: &OwnedFd, rel: &Path, buf: &mut Vec<u8>) -> Result<bool, Errno> {
    let fd = match rustix::fs::openat(dir, rel, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(false),
        Err(e) => return Err(e),
    };
    buf.clear();
    rustix::io::read(&fd, rustix::buffer::spare_capacity(buf))?;
    Ok(true)
}

fn read_link(dir: &OwnedFd, rel: &Path) -> Result<PathBuf, Errno> {
    let mut buf = [0u8; 4096];
    let n = rustix::fs::readlinkat_raw(dir, rel, &mut buf[..])?;
    Ok(PathBuf::from(OsStr::from_bytes(
        buf.get(..n).unwrap_or_default(),
    )))
}

fn defined(root: &Path) -> Result<usize, Errno> {
    let top = rustix::fs::openat(CWD, root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
    let store = open_dir(&top, c"etc/mdevctl.d")?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut n = 0;
    for (parent, kind) in entries(&store)? {
        if kind != FileType::Directory {
            continue;
        }
        let dir = rustix::fs::openat(
            &store,
            OsStr::from_bytes(&parent),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        for (file, kind) in entries(&dir)? {
            if kind == FileType::RegularFile
                && read_once(&dir, Path::new(OsStr::from_bytes(&file)), &mut buf)?
            {
                n += 1;
            }
        }
    }
    let bus = open_dir(&top, c"sys/bus/mdev/devices")?;
    for (uuid, _) in entries(&bus)? {
        read_link(&bus, &Path::new(OsStr::from_bytes(&uuid)).join("mdev_type"))?;
    }
    Ok(n)
}

fn active(root: &Path) -> Result<usize, Errno> {
    let top = rustix::fs::openat(CWD, root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
    let store = open_dir(&top, c"etc/mdevctl.d")?;
    let bus = open_dir(&top, c"sys/bus/mdev/devices")?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut n = 0;
    for (uuid, _) in entries(&bus)? {
        let uuid = Path::new(OsStr::from_bytes(&uuid));
        let device = read_link(&bus, uuid)?;
        read_link(&bus, &uuid.join("mdev_type"))?;
        let parent = device
            .parent()
            .and_then(Path::file_name)
            .unwrap_or_default();
        read_once(&store, &Path::new(parent).join(uuid), &mut buf)?;
        n += 1;
    }
    Ok(n)
}

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let result = match args.as_slice() {
        [mode, root] if mode == "defined" => defined(Path::new(root)),
        [mode, root] if mode == "active" => active(Path::new(root)),
        _ => {
            eprintln!("usage: mdev-floor defined|active ROOT");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(n) => {
            let _ = writeln!(std::io::stdout().lock(), "{n}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mdev-floor: {e}");
            ExitCode::FAILURE
        }
    }
}
