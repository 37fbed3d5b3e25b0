//! Termination signals (SIGINT, SIGHUP, SIGTERM) that reach this process while callout
//! programs run, and the register of the process groups those programs lead.
//!
//! Each callout leads a process group of its own (see [`super::process`]), so a terminal's
//! Ctrl-C, a hang-up or a `kill` reaches only this process. Without help the program would
//! die and leave its scripts running. So, once per process and only for signals that are
//! neither ignored nor already caught when the first callout starts (`nohup` and a host
//! program's own handlers keep working):
//! - while no callout runs, the signal's default action happens at once, as before;
//! - while callouts run, the signal is recorded and wakes the runners through a
//!   self-pipe they poll; the first runner to see it forwards the signal to every callout
//!   group, gives them [`GRACE`] to exit, kills what is left, reaps the leaders and then
//!   ends this process with the same signal (default disposition, so the parent sees the
//!   conventional status).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, Signal};

/// How long a callout may take to exit after SIGTERM (its time limit ran out) or after a
/// forwarded signal before its whole group is killed with SIGKILL. Long enough for a
/// script's `trap` to remove its temporary files (s390-tools' `ap-check` leaves a lock
/// file behind when it is killed outright), short enough not to stall an interrupt.
pub const GRACE: Duration = Duration::from_secs(2);

/// The signals forwarded to running callouts.
const FORWARDED: [Signal; 3] = [Signal::HUP, Signal::INT, Signal::TERM];

/// True while no callout runs: the signal handler then runs the default action.
static IDLE: AtomicBool = AtomicBool::new(true);
/// The number of the last forwarded signal received while callouts ran; 0 for none.
static PENDING: AtomicUsize = AtomicUsize::new(0);
/// Read end of the self-pipe the handler writes to; `None` if registration failed.
static WAKE: OnceLock<Option<UnixStream>> = OnceLock::new();
/// The running callouts; held for good by the runner that handles a signal.
static LIVE: Mutex<Live> = Mutex::new(Live {
    starting: 0,
    groups: Vec::new(),
});

#[derive(Debug)]
struct Live {
    /// Runs between [`Running::begin`] and their end (registered or not yet).
    starting: usize,
    /// Leaders (= process group ids) and their pidfds, unreaped while listed here.
    groups: Vec<(Pid, Arc<OwnedFd>)>,
}

fn live() -> MutexGuard<'static, Live> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The signals set in one `Sig*:` line of `/proc/self/status` (a hex mask, bit n-1 for
/// signal n).
fn mask_has(status: &str, field: &str, sig: Signal) -> bool {
    let Some(hex) = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(str::trim)
    else {
        return false;
    };
    let bit = u32::try_from(sig.as_raw() - 1).unwrap_or(u32::MAX);
    u64::from_str_radix(hex, 16)
        .ok()
        .and_then(|m| m.checked_shr(bit))
        .is_some_and(|m| m & 1 == 1)
}

/// Installs the handlers, once per process.
fn install() -> Option<UnixStream> {
    let (read, write) = UnixStream::pair().ok()?;
    read.set_nonblocking(true).ok()?;
    // Without /proc nothing is known to be ignored or caught: forward all three.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut any = false;
    for sig in FORWARDED {
        if mask_has(&status, "SigIgn:", sig) || mask_has(&status, "SigCgt:", sig) {
            continue;
        }
        let raw = sig.as_raw();
        let Ok(wake) = write.try_clone() else {
            continue;
        };
        let registered = signal_hook::flag::register_conditional_default(raw, &IDLE)
            .and_then(|_| {
                signal_hook::flag::register_usize(raw, &PENDING, usize::try_from(raw).unwrap_or(0))
            })
            .and_then(|_| signal_hook::low_level::pipe::register(raw, wake));
        match registered {
            Ok(_) => any = true,
            Err(e) => log::debug!("cannot watch signal {raw} for callouts: {e}"),
        }
    }
    any.then_some(read)
}

/// The signal received while callouts ran, if any.
fn pending() -> Option<Signal> {
    let raw = i32::try_from(PENDING.load(Ordering::SeqCst)).ok()?;
    FORWARDED.into_iter().find(|s| s.as_raw() == raw)
}

/// Ends this process as `sig` would have: default disposition, then the signal again.
fn terminate(sig: Signal) -> ! {
    let raw = sig.as_raw();
    let _ = signal_hook::low_level::emulate_default_handler(raw);
    // Not reached for the three forwarded signals; the conventional status otherwise.
    std::process::exit(128 + raw)
}

/// One callout run, from before its spawn to after its reaping. While any exists, the
/// forwarded signals are recorded instead of killing this process.
#[derive(Debug)]
pub(crate) struct Running {
    registered: Option<Pid>,
}

impl Running {
    pub(crate) fn begin() -> Running {
        WAKE.get_or_init(install);
        let mut l = live();
        l.starting += 1;
        IDLE.store(false, Ordering::SeqCst);
        drop(l);
        Running { registered: None }
    }

    /// Runs `spawn` so that an interrupt cannot fall between the spawn and the listing
    /// of the new group: either the group is listed (and will be killed) or not started.
    pub(crate) fn spawn<T>(
        &mut self,
        spawn: impl FnOnce() -> std::io::Result<(T, Pid, Arc<OwnedFd>)>,
    ) -> std::io::Result<T> {
        let mut l = live();
        if let Some(sig) = pending() {
            interrupted(l, sig);
        }
        let (t, pid, pidfd) = spawn()?;
        l.groups.push((pid, pidfd));
        self.registered = Some(pid);
        Ok(t)
    }

    /// Takes the group off the list; call before reaping its leader, whose process id
    /// could be reused afterwards.
    pub(crate) fn unlist(&mut self) {
        if let Some(pid) = self.registered.take() {
            live().groups.retain(|(p, _)| *p != pid);
        }
    }

    /// The read end of the self-pipe, readable once a forwarded signal arrived.
    pub(crate) fn wake_fd(&self) -> Option<BorrowedFd<'static>> {
        WAKE.get().and_then(Option::as_ref).map(AsFd::as_fd)
    }

    /// Handles a forwarded signal if one arrived; otherwise returns.
    pub(crate) fn check(&self) {
        if let Some(sig) = pending() {
            interrupted(live(), sig);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.unlist();
        let mut l = live();
        l.starting = l.starting.saturating_sub(1);
        if l.starting == 0 {
            IDLE.store(true, Ordering::SeqCst);
            // A signal that came after the last runner stopped polling.
            if let Some(sig) = pending() {
                interrupted(l, sig);
            }
        }
    }
}

/// Forwards `sig` to every listed callout group, waits up to [`GRACE`] for their leaders,
/// kills the groups, reaps the leaders and ends this process. Keeps `l` to the end, so no
/// runner can reap (and free the id of) a listed leader meanwhile.
fn interrupted(l: MutexGuard<'static, Live>, sig: Signal) -> ! {
    for (pid, _) in &l.groups {
        let _ = rustix::process::kill_process_group(*pid, sig);
    }
    let until = Instant::now().checked_add(GRACE);
    let mut waiting: Vec<&OwnedFd> = l.groups.iter().map(|(_, fd)| fd.as_ref()).collect();
    while !waiting.is_empty() {
        let Some(left) = until.and_then(|u| u.checked_duration_since(Instant::now())) else {
            break;
        };
        let timeout = rustix::event::Timespec::try_from(left).ok();
        let mut fds: Vec<PollFd<'_>> = waiting
            .iter()
            .map(|fd| PollFd::new(*fd, PollFlags::IN))
            .collect();
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => break,
        }
        let exited: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        let mut i = 0;
        waiting.retain(|_| {
            i += 1;
            !exited[i - 1]
        });
    }
    for (pid, fd) in &l.groups {
        let _ = rustix::process::kill_process_group(*pid, Signal::KILL);
        let _ = rustix::process::waitid(
            rustix::process::WaitId::PidFd(fd.as_fd()),
            rustix::process::WaitIdOptions::EXITED,
        );
    }
    terminate(sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_masks_are_read_per_signal() {
        // SIGHUP (1) and SIGTERM (15) ignored, SIGINT (2) not.
        let status = "Name:\tx\nSigIgn:\t0000000000004001\nSigCgt:\t0000000000000000\n";
        assert!(mask_has(status, "SigIgn:", Signal::HUP));
        assert!(mask_has(status, "SigIgn:", Signal::TERM));
        assert!(!mask_has(status, "SigIgn:", Signal::INT));
        assert!(!mask_has(status, "SigCgt:", Signal::HUP));
        assert!(!mask_has("", "SigIgn:", Signal::HUP));
        assert!(!mask_has("SigIgn:\tzz\n", "SigIgn:", Signal::HUP));
    }
}
