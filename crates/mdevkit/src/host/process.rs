//! Running callout and notifier programs: directly (no shell), as children of this process,
//! with a bounded run time and bounded captured output.

use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

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

/// Reads `r` to its end into `kept` (at most [`MAX_CAPTURE`] bytes), shared so that what
/// was read so far can be taken even while the reader still waits for end-of-file.
fn drain(mut r: impl Read, kept: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let mut k = kept.lock().unwrap_or_else(PoisonError::into_inner);
                let room = MAX_CAPTURE.saturating_sub(k.len());
                k.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// Waits for `handles` to finish, but not past `until`.
fn join_until(handles: &[&Option<thread::JoinHandle<()>>], until: Instant) {
    while handles
        .iter()
        .any(|h| h.as_ref().is_some_and(|h| !h.is_finished()))
        && Instant::now() < until
    {
        thread::sleep(Duration::from_millis(2));
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

/// Kills the program and everything it started: it runs in a process group of its own,
/// so a shell script's `sleep` (or any helper it forked) does not outlive the time limit.
fn kill_group(child: &mut std::process::Child) {
    let group = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    let killed = group.is_some_and(|pid| {
        rustix::process::kill_process_group(pid, rustix::process::Signal::KILL).is_ok()
    });
    if !killed {
        let _ = child.kill();
    }
}

/// Runs `program args...` and waits at most `limit`; on expiry the program and its
/// process group are killed.
///
/// The program leads a new process group but stays this process's direct child: its
/// parent PID is what s390-tools' `ap-check` locks on.
pub fn run(program: &Path, args: &[&str], stdin: Stdin<'_>, limit: Duration) -> io::Result<Output> {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(program)
        .process_group(0)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let writer = child.stdin.take().map(|mut pipe| {
        let data = match stdin {
            Stdin::Closed => Vec::new(),
            Stdin::Data(d) => d.to_vec(),
        };
        // A script that never reads stdin (or closes it early) is fine: EPIPE is ignored.
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let spawn_drain = |p: Option<Box<dyn Read + Send>>, kept: &Arc<Mutex<Vec<u8>>>| {
        let kept = Arc::clone(kept);
        p.map(|p| thread::spawn(move || drain(p, kept)))
    };
    let (out_buf, err_buf) = (Arc::default(), Arc::default());
    let out = spawn_drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        &out_buf,
    );
    let err = spawn_drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        &err_buf,
    );

    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    let exit = loop {
        if let Some(status) = child.try_wait()? {
            break exit_of(status);
        }
        if start.elapsed() >= limit {
            kill_group(&mut child);
            let _ = child.wait();
            break Exit::TimedOut;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    // What the program wrote before it exited is in the pipes and read at once; a child
    // it left behind may keep them open, so the wait is bounded (and never past the
    // limit). Unfinished threads are left to end with that child.
    let until = (start + limit).min(Instant::now() + LINGER);
    join_until(&[&writer, &out, &err], until);
    let take = |buf: &Arc<Mutex<Vec<u8>>>| {
        std::mem::take(&mut *buf.lock().unwrap_or_else(PoisonError::into_inner))
    };
    Ok(Output {
        exit,
        stdout: take(&out_buf),
        stderr: take(&err_buf),
    })
}
