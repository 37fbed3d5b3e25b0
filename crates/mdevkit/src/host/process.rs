//! Running callout and notifier programs: directly (no shell), as children of this process,
//! with a bounded run time and bounded captured output.

use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
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

fn drain(mut r: impl Read) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = MAX_CAPTURE.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    kept
}

fn exit_of(status: ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => Exit::Code(c),
        (None, Some(s)) => Exit::Signal(s),
        (None, None) => Exit::Code(-1),
    }
}

/// Runs `program args...` and waits at most `limit`; on expiry the program is killed.
pub fn run(program: &Path, args: &[&str], stdin: Stdin<'_>, limit: Duration) -> io::Result<Output> {
    let mut child = Command::new(program)
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
    let out = child.stdout.take().map(|p| thread::spawn(move || drain(p)));
    let err = child.stderr.take().map(|p| thread::spawn(move || drain(p)));

    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    let exit = loop {
        if let Some(status) = child.try_wait()? {
            break exit_of(status);
        }
        if start.elapsed() >= limit {
            let _ = child.kill();
            let _ = child.wait();
            break Exit::TimedOut;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    // A killed script's own children may keep the pipes open; don't wait on them then.
    let collect = |h: Option<thread::JoinHandle<Vec<u8>>>| match h {
        Some(h) if exit != Exit::TimedOut || h.is_finished() => h.join().unwrap_or_default(),
        _ => Vec::new(),
    };
    Ok(Output {
        exit,
        stdout: collect(out),
        stderr: collect(err),
    })
}
