//! The udev stand-in: runs the configured command when a parent registers its types.

use std::process::{Command, Stdio};

use crate::fs::{lock, Shared};
use crate::kernel::HookRun;

/// Starts the hook for every parent that registered since the last call. Each runs on its own
/// thread: the hook (typically `mdevctl start-parent-mdevs`) reads and writes the mount, which
/// the FUSE thread must stay free to serve.
pub fn run_pending(shared: &Shared) {
    let (argv, parents) = {
        let mut host = lock(shared);
        if host.registered.is_empty() {
            return;
        }
        let parents = std::mem::take(&mut host.registered);
        if host.hook.is_empty() {
            return;
        }
        host.hooks_running += parents.len();
        (host.hook.clone(), parents)
    };
    for parent in parents {
        let argv = argv_for(&argv, &parent);
        let shared = shared.clone();
        std::thread::spawn(move || {
            let run = run_one(&argv, &parent);
            let mut host = lock(&shared);
            host.hooks_running = host.hooks_running.saturating_sub(1);
            host.hook_runs.push(run);
            host.hook_finished.notify_all();
        });
    }
}

/// `{parent}` in any argument is replaced; without one the parent is appended, as udev's `%k`.
fn argv_for(template: &[String], parent: &str) -> Vec<String> {
    let mut argv: Vec<String> = template
        .iter()
        .map(|a| a.replace("{parent}", parent))
        .collect();
    if !template.iter().any(|a| a.contains("{parent}")) {
        argv.push(parent.to_string());
    }
    argv
}

fn run_one(argv: &[String], parent: &str) -> HookRun {
    let Some((program, args)) = argv.split_first() else {
        return HookRun {
            parent: parent.to_string(),
            status: None,
            stdout: String::new(),
            stderr: "empty hook command\n".into(),
        };
    };
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output();
    match output {
        Ok(out) => HookRun {
            parent: parent.to_string(),
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        Err(e) => HookRun {
            parent: parent.to_string(),
            status: None,
            stdout: String::new(),
            stderr: format!("cannot run hook {program}: {e}\n"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_placeholder() {
        let t = vec!["mdevctl".to_string(), "start-parent-mdevs".to_string()];
        assert_eq!(argv_for(&t, "p")[2], "p");
        let t = vec![
            "sh".to_string(),
            "-c".to_string(),
            "echo {parent}".to_string(),
        ];
        assert_eq!(argv_for(&t, "p"), vec!["sh", "-c", "echo p"]);
    }
}
