//! Running callout and notifier programs: directly (no shell), as children of this process,
//! with a bounded run time and bounded captured output. One thread waits for everything a
//! run involves (the program's exit through a pidfd, its output pipes, its stdin pipe, the
//! time limit as poll's timeout, and interrupting signals) in poll(2); it never sleeps.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, PidfdFlags, Signal};

use super::signal::{Running, GRACE};

/// The most output kept from one stream; the rest is read and dropped so the child never
/// blocks on a full pipe.
pub const MAX_CAPTURE: usize = 1 << 20;

/// How a program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// Killed by us after the time limit.
    TimedOut,
}

/// What a finished program left behind.
#[derive(Debug, Clone)]
pub struct Output {
    pub exit: Exit,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// What to feed a program on stdin.
#[derive(Debug, Clone, Copy)]
pub enum Stdin<'a> {
    /// A pipe that is closed at once.
    Closed,
    /// A pipe carrying these bytes, then closed.
    Data(&'a [u8]),
}

/// How long, after a program exited, its output pipes may stay open before we stop
/// waiting: a background child it left behind can hold them open indefinitely.
const LINGER: Duration = Duration::from_secs(1);

/// One output pipe and what was kept of it.
#[derive(Debug)]
struct Capture {
    /// `None` once end-of-file was read (or reading failed).
    pipe: Option<File>,
    kept: Vec<u8>,
}

impl Capture {
    fn new(pipe: Option<impl Into<OwnedFd>>) -> io::Result<Capture> {
        let pipe = pipe.map(|p| File::from(p.into()));
        if let Some(p) = &pipe {
            rustix::io::ioctl_fionbio(p, true)?;
        }
        Ok(Capture {
            pipe,
            kept: Vec::new(),
        })
    }

    /// Reads what the pipe holds now, keeping up to [`MAX_CAPTURE`] bytes. Returns after a
    /// few reads even if more keeps coming, so a flood cannot keep the deadline unchecked.
    fn read_available(&mut self) {
        let mut buf = [0u8; 1 << 16];
        for _ in 0..16 {
            let Some(p) = &mut self.pipe else { break };
            match p.read(&mut buf) {
                Ok(0) => self.pipe = None,
                Ok(n) => {
                    let room = MAX_CAPTURE.saturating_sub(self.kept.len());
                    self.kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => self.pipe = None,
            }
        }
    }
}

/// The stdin pipe and the bytes still to write to it.
#[derive(Debug)]
struct Feed<'a> {
    pipe: Option<File>,
    rest: &'a [u8],
}

impl Feed<'_> {
    /// Writes what the pipe takes now; closes it when all is written. A program that
    /// never reads stdin, or closes it early, is fine: EPIPE just ends the feeding.
    fn write_available(&mut self) {
        while let Some(p) = &mut self.pipe {
            if self.rest.is_empty() {
                self.pipe = None;
                break;
            }
            match p.write(self.rest) {
                Ok(n) => self.rest = self.rest.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => self.pipe = None,
            }
        }
    }
}

fn exit_of(status: ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => Exit::Code(c),
        (None, Some(s)) => Exit::Signal(s),
        (None, None) => Exit::Code(-1),
    }
}

/// Where a run stands with respect to its time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Within the limit.
    Running,
    /// Past the limit: the group got SIGTERM and has [`GRACE`] to exit.
    Terminating,
    /// The group got SIGKILL; the leader's exit is imminent.
    Killed,
}

/// Starts the program as the leader of a new process group, with a pidfd for its exit.
fn spawn(program: &Path, args: &[&str]) -> io::Result<(Child, Pid, Arc<OwnedFd>)> {
    let mut child = Command::new(program)
        .process_group(0)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = i32::try_from(child.id())
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::other("child process id out of range"));
    let pidfd =
        pid.and_then(|pid| Ok((pid, rustix::process::pidfd_open(pid, PidfdFlags::empty())?)));
    match pidfd {
        Ok((pid, fd)) => Ok((child, pid, Arc::new(fd))),
        Err(e) => {
            // Not watchable (a kernel before 5.3): do not leave it running unattended.
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// Gives up on a run that cannot be watched: kills the group and reaps the leader.
fn abandon(child: &mut Child, group: Pid, running: &mut Running, e: io::Error) -> io::Error {
    let _ = rustix::process::kill_process_group(group, Signal::KILL);
    running.unlist();
    let _ = child.wait();
    e
}

/// Runs `program args...` and waits at most `limit` (a limit too large to add to the
/// clock means no limit). On expiry the program's process group gets SIGTERM, and SIGKILL
/// after a grace period (`GRACE`, 2 s).
///
/// The program leads a new process group but stays this process's direct child: its
/// parent PID is what s390-tools' `ap-check` locks on. An interrupting signal that arrives
/// meanwhile is forwarded to the group and then ends this process (see `host/signal.rs`).
pub fn run(program: &Path, args: &[&str], stdin: Stdin<'_>, limit: Duration) -> io::Result<Output> {
    let mut running = Running::begin();
    let (mut child, group, pidfd) = running.spawn(|| {
        let (child, pid, fd) = spawn(program, args)?;
        Ok(((child, pid, Arc::clone(&fd)), pid, fd))
    })?;
    let pipes = (|| {
        let out = Capture::new(child.stdout.take())?;
        let err = Capture::new(child.stderr.take())?;
        let feed = Feed {
            pipe: child.stdin.take().map(|p| File::from(OwnedFd::from(p))),
            rest: match stdin {
                Stdin::Closed => &[],
                Stdin::Data(d) => d,
            },
        };
        if let Some(p) = &feed.pipe {
            rustix::io::ioctl_fionbio(p, true)?;
        }
        io::Result::Ok((out, err, feed))
    })();
    let (mut out, mut err, mut feed) = match pipes {
        Ok(p) => p,
        Err(e) => return Err(abandon(&mut child, group, &mut running, e)),
    };
    feed.write_available();

    let mut deadline = Instant::now().checked_add(limit);
    let mut phase = Phase::Running;
    let mut status: Option<ExitStatus> = None;
    let mut watch_wake = true;
    loop {
        let now = Instant::now();
        let due = deadline.is_some_and(|d| now >= d);
        match (status, phase) {
            // After the exit only output a left-behind child still holds open is awaited.
            (Some(_), _) if due || (out.pipe.is_none() && err.pipe.is_none()) => break,
            (Some(_), _) => {}
            (None, Phase::Running) if due => {
                let _ = rustix::process::kill_process_group(group, Signal::TERM);
                phase = Phase::Terminating;
                deadline = now.checked_add(GRACE);
            }
            (None, Phase::Terminating) if due => {
                let _ = rustix::process::kill_process_group(group, Signal::KILL);
                phase = Phase::Killed;
                deadline = None;
            }
            (None, _) => {}
        }

        let wake = running.wake_fd().filter(|_| watch_wake);
        // Slots: 0 the exit, 1 stdout, 2 stderr, 3 stdin, 4 a forwarded signal.
        let wanted = [
            (status.is_none().then(|| pidfd.as_fd()), PollFlags::IN),
            (out.pipe.as_ref().map(AsFd::as_fd), PollFlags::IN),
            (err.pipe.as_ref().map(AsFd::as_fd), PollFlags::IN),
            (feed.pipe.as_ref().map(AsFd::as_fd), PollFlags::OUT),
            (wake, PollFlags::IN),
        ];
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(wanted.len());
        let mut slots = [None; 5];
        for ((fd, flags), slot) in wanted.into_iter().zip(slots.iter_mut()) {
            if let Some(fd) = fd {
                *slot = Some(fds.len());
                fds.push(PollFd::from_borrowed_fd(fd, flags));
            }
        }
        let timeout = deadline
            .map(|d| d.saturating_duration_since(now))
            .and_then(|left| rustix::event::Timespec::try_from(left).ok());
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                drop(fds);
                return Err(abandon(&mut child, group, &mut running, e.into()));
            }
        }
        let ready: Vec<bool> = slots
            .iter()
            .map(|s| {
                s.and_then(|i| fds.get(i))
                    .is_some_and(|f| !f.revents().is_empty())
            })
            .collect();
        drop(fds);
        let is_ready = |slot: usize| ready.get(slot).copied().unwrap_or(false);

        if is_ready(4) {
            // Does not return when a forwarded signal arrived.
            running.check();
            watch_wake = false;
        }
        if is_ready(1) {
            out.read_available();
        }
        if is_ready(2) {
            err.read_available();
        }
        if is_ready(3) {
            feed.write_available();
        }
        if is_ready(0) {
            if phase != Phase::Running {
                // Whatever the script started goes with it (the group id stays valid
                // until the leader is reaped).
                let _ = rustix::process::kill_process_group(group, Signal::KILL);
            }
            running.unlist();
            status = Some(child.wait()?);
            feed.pipe = None;
            let now = Instant::now();
            deadline = Some(now.checked_add(LINGER).unwrap_or(now));
        }
    }
    let exit = match (phase, status) {
        (Phase::Running, Some(s)) => exit_of(s),
        _ => Exit::TimedOut,
    };
    Ok(Output {
        exit,
        stdout: out.kept,
        stderr: err.kept,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Generous: only catches a run that hangs instead of ending.
    const HANG: Duration = Duration::from_secs(60);

    fn sh(script: &str, stdin: Stdin<'_>, limit: Duration) -> (Output, Duration) {
        let start = Instant::now();
        let out = run(Path::new("/bin/sh"), &["-c", script], stdin, limit).unwrap();
        (out, start.elapsed())
    }

    #[test]
    fn program_that_exits_at_once_gives_its_status_and_output() {
        let (out, took) = sh("echo out; echo err >&2; exit 3", Stdin::Closed, HANG);
        assert_eq!(out.exit, Exit::Code(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert!(took < HANG, "{took:?}");
    }

    #[test]
    fn program_is_a_direct_child_leading_its_own_group() {
        // Fields 4 and 5 of /proc/<pid>/stat are the parent and the process group.
        let (out, _) = sh(
            "read -r pid comm state ppid pgrp rest < /proc/$$/stat; echo $$ $ppid $pgrp",
            Stdin::Closed,
            HANG,
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let ids: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(ids.len(), 3, "{text}");
        assert_eq!(ids[1], std::process::id().to_string(), "parent");
        assert_eq!(ids[2], ids[0], "group leader");
    }

    #[test]
    fn program_past_its_limit_gets_sigterm_first() {
        let (out, took) = sh(
            "trap 'echo terminated >&2; exit 0' TERM; while :; do sleep 1; done",
            Stdin::Closed,
            Duration::from_millis(300),
        );
        assert_eq!(out.exit, Exit::TimedOut);
        // (A shell may first report its `sleep` as "Terminated".)
        assert!(
            out.stderr.ends_with(b"terminated\n"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(took < HANG, "{took:?}");
    }

    #[test]
    fn program_ignoring_sigterm_is_killed_after_the_grace() {
        let (out, took) = sh(
            "trap '' TERM; sleep 100",
            Stdin::Closed,
            Duration::from_millis(300),
        );
        assert_eq!(out.exit, Exit::TimedOut);
        assert!(took >= GRACE, "SIGKILL came before the grace: {took:?}");
        assert!(took < HANG, "{took:?}");
    }

    #[test]
    fn grandchild_holding_the_pipes_does_not_hold_the_run() {
        let (out, took) = sh("sleep 100 & echo $$", Stdin::Closed, Duration::MAX);
        assert_eq!(out.exit, Exit::Code(0));
        assert!(took < HANG, "{took:?}");
        let group: i32 = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let group = Pid::from_raw(group).unwrap();
        // The grandchild is still there (a normal exit leaves it alone); clean up.
        assert!(rustix::process::test_kill_process_group(group).is_ok());
        rustix::process::kill_process_group(group, Signal::KILL).unwrap();
    }

    #[test]
    fn flooding_program_is_capped_and_drained() {
        let (out, took) = sh(
            "head -c 5000000 /dev/zero; head -c 3000000 /dev/zero >&2; exit 0",
            Stdin::Closed,
            HANG,
        );
        assert_eq!(out.exit, Exit::Code(0));
        assert_eq!(out.stdout.len(), MAX_CAPTURE);
        assert_eq!(out.stderr.len(), MAX_CAPTURE);
        assert!(took < HANG, "{took:?}");
    }

    #[test]
    fn program_killed_by_a_signal_says_which() {
        let (out, _) = sh("kill -KILL $$", Stdin::Closed, HANG);
        assert_eq!(out.exit, Exit::Signal(9));
    }

    #[test]
    fn program_that_never_reads_stdin_is_fine() {
        let data = vec![b'x'; 4_000_000];
        let (out, took) = sh("exit 0", Stdin::Data(&data), HANG);
        assert_eq!(out.exit, Exit::Code(0));
        assert!(took < HANG, "{took:?}");
    }

    #[test]
    fn program_gets_all_of_its_stdin() {
        let data = vec![b'x'; 4_000_000];
        let (out, _) = sh("wc -c", Stdin::Data(&data), HANG);
        assert_eq!(out.exit, Exit::Code(0));
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "4000000");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let e = run(Path::new("/nonexistent/x"), &[], Stdin::Closed, HANG).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
