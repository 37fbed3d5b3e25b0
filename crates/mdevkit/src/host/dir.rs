//! Open directories: listing one and reading the files and links in it relative to its
//! descriptor, so that thousands of definitions cost an open, a read and a close each, with
//! no path walk from the root and no `stat` per file.

use std::ffi::OsStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir, CWD};

use super::{Entry, EntryKind};

/// The getdents buffer: room for about 580 UUID-named entries (56 bytes each) per call.
const DENTS_BUF: usize = 32 * 1024;
/// The first read of a file asks for this much: a definition is a few hundred bytes, so
/// one read returns all of it and comes back short.
pub const FIRST_READ: usize = 16 * 1024;
/// The longest link target the kernel returns (`PATH_MAX`, with its NUL).
const LINK_MAX: usize = 4096;

/// An open directory and the path it was opened by (for messages and for joining).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

fn kind_of(t: FileType) -> Option<EntryKind> {
    match t {
        FileType::Directory => Some(EntryKind::Dir),
        FileType::RegularFile => Some(EntryKind::File),
        FileType::Symlink => Some(EntryKind::Symlink),
        FileType::Unknown => None,
        _ => Some(EntryKind::Other),
    }
}

/// Whether opening a directory follows a symlink in the last component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Last {
    /// Like any path lookup.
    Follow,
    /// Only a directory itself (what `lstat` calls one); a symlink fails with `ELOOP`.
    NoSymlink,
}

impl Dir {
    /// Opens the directory at `path`.
    pub fn open(path: &Path, last: Last) -> io::Result<Dir> {
        let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        if last == Last::NoSymlink {
            flags |= OFlags::NOFOLLOW;
        }
        let fd = rustix::fs::openat(CWD, path, flags, Mode::empty())?;
        Ok(Dir {
            fd,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The entries (without `.` and `..`) with their `lstat` kinds, from getdents' d_type;
    /// only a file system that does not fill it in costs an `lstat` per entry.
    pub fn entries(&self) -> io::Result<Vec<Entry>> {
        let mut buf = vec![MaybeUninit::<u8>::uninit(); DENTS_BUF];
        let mut raw = RawDir::new(&self.fd, &mut buf);
        let mut out = Vec::new();
        while let Some(entry) = raw.next() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let name = OsStr::from_bytes(name).to_owned();
            let kind = match kind_of(entry.file_type()) {
                Some(k) => k,
                None => match rustix::fs::statat(&self.fd, &*name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => {
                        kind_of(FileType::from_raw_mode(st.st_mode)).unwrap_or(EntryKind::Other)
                    }
                    Err(_) => EntryKind::Other,
                },
            };
            out.push(Entry { name, kind });
        }
        Ok(out)
    }

    /// Reads the file at `rel` (relative to this directory, one or more components) into
    /// `buf`, replacing its contents.
    ///
    /// Reading stops at a read that returns nothing, or earlier at a read that returns less
    /// than asked when `complete` accepts what was read: on a regular file a short read
    /// means end of file, so a whole definition costs one read instead of two, while a
    /// file system that returns short reads mid-file only costs the reads it needs (the
    /// caller's `complete` then sees a partial document and asks for more).
    pub fn read_file(
        &self,
        rel: &Path,
        buf: &mut Vec<u8>,
        complete: impl Fn(&[u8]) -> bool,
    ) -> io::Result<()> {
        let fd = rustix::fs::openat(
            &self.fd,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        read_fd(&fd, buf, complete)
    }

    /// The text of the symlink at `rel`, in one `readlinkat`.
    pub fn read_link(&self, rel: &Path) -> io::Result<PathBuf> {
        let mut buf = [0u8; LINK_MAX];
        let n = rustix::fs::readlinkat_raw(&self.fd, rel, &mut buf[..])?;
        match buf.get(..n) {
            Some(text) if n < LINK_MAX => Ok(PathBuf::from(OsStr::from_bytes(text))),
            _ => Err(io::Error::from(rustix::io::Errno::NAMETOOLONG)),
        }
    }

    /// Does `rel` lead to a directory (following symlinks)?
    pub fn is_dir(&self, rel: &Path) -> bool {
        rustix::fs::statat(&self.fd, rel, AtFlags::empty())
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
    }
}

/// Reads an open file into `buf` as [`Dir::read_file`] describes.
pub(super) fn read_fd(
    fd: &OwnedFd,
    buf: &mut Vec<u8>,
    complete: impl Fn(&[u8]) -> bool,
) -> io::Result<()> {
    buf.clear();
    let mut want = FIRST_READ;
    loop {
        // Into the spare capacity: nothing is zeroed or copied twice.
        buf.reserve(want);
        let room = buf.capacity().saturating_sub(buf.len());
        match rustix::io::read(fd, rustix::buffer::spare_capacity(buf)) {
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
            // A read returning nothing is the end of the file.
            Ok(0) => return Ok(()),
            Ok(got) => {
                if got < room && complete(buf) {
                    return Ok(());
                }
                // Full (or short but incomplete): ask for as much again as there is.
                want = buf.len().max(FIRST_READ);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::cell::RefCell;
    use std::io::Write;

    #[test]
    fn a_file_larger_than_the_first_read_is_read_whole() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        writer.write_all(&data).unwrap();
        drop(writer);
        let mut buf = b"old contents".to_vec();
        read_fd(&OwnedFd::from(reader), &mut buf, |_| false).unwrap();
        assert_eq!(buf, data);
    }

    #[test]
    fn a_short_read_the_caller_finds_incomplete_reads_on() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        writer.write_all(b"{\"a\": ").unwrap();
        // The rest arrives only once the first, short read has been judged incomplete.
        let writer = RefCell::new(Some(writer));
        let seen = RefCell::new(Vec::new());
        let mut buf = Vec::new();
        let judge = |b: &[u8]| {
            if let Some(mut w) = writer.borrow_mut().take() {
                w.write_all(b"1}").unwrap();
            }
            b.ends_with(b"}")
        };
        read_fd(&OwnedFd::from(reader), &mut buf, |b| {
            seen.borrow_mut().push(b.len());
            judge(b)
        })
        .unwrap();
        assert_eq!(buf, b"{\"a\": 1}");
        assert_eq!(seen.into_inner(), [6, 8], "judged after each short read");
    }
}
