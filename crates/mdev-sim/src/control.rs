//! Line commands written to `mdev-sim/control` inside the mount (and sent by `mdev-sim ctl`).

use std::time::Duration;

use crate::kernel::{ControlError, Kernel};
use crate::nvidia_vf::Hold;
use crate::parse::Errno;

/// What reading `mdev-sim/control` shows.
pub const HELP: &str = "\
# mdev-sim control: write one command per line
add-parent NAME [--unpublished]   register a parent of the profile (types appear unless --unpublished)
publish-types NAME                make mdev_supported_types appear (runs the hook)
remove-parent NAME                unregister a parent; its mdevs vanish with it
busy UUID [on|off]                a busy mdev refuses remove with EBUSY
fail PATH ERRNO                   the next read or write of PATH (which may not exist yet) fails with ERRNO (name or number)
fail-write PATH ERRNO             the same for the next write only (reads of PATH pass)
slow PATH MILLIS                  each write to PATH takes MILLIS ms (0 clears)
short PATH BYTES                  the next write to PATH takes only its first BYTES bytes (a short write)
vf-open VF [on|off|linger]        a VM opens the VF's VFIO device (off: closed; linger: closed, plugin still exiting)
vgpud PF                          nvidia-vgpud publishes the GPU's vGPU types (creatable_vgpu_types was header-only)
mixed-size PF on|off              nvidia-smi vgpu -shm: mixed-size vGPUs (refused while the GPU hosts any)
clear-faults                      forget every fail/slow/short rule
hook [ARGV...]                    run ARGV when a parent registers ({parent} is replaced, else appended); no ARGV clears
";

/// Applies every non-empty line; the first failure stops and is returned.
pub fn apply(host: &mut Kernel, text: &str) -> Result<(), ControlError> {
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first().is_none_or(|w| w.starts_with('#')) {
            continue;
        }
        apply_words(host, &words)?;
    }
    Ok(())
}

fn usage(text: &str) -> ControlError {
    ControlError::Usage(format!("usage: {text}"))
}

fn apply_words(host: &mut Kernel, words: &[&str]) -> Result<(), ControlError> {
    match words {
        ["add-parent", name] => host.add_parent(name, true),
        ["add-parent", name, "--unpublished"] => host.add_parent(name, false),
        ["add-parent", ..] => Err(usage("add-parent NAME [--unpublished]")),
        ["publish-types", name] => host.publish_types(name),
        ["publish-types", ..] => Err(usage("publish-types NAME")),
        ["remove-parent", name] => host.remove_parent(name),
        ["remove-parent", ..] => Err(usage("remove-parent NAME")),
        ["busy", uuid] | ["busy", uuid, "on"] => host.set_busy(uuid, true),
        ["busy", uuid, "off"] => host.set_busy(uuid, false),
        ["busy", ..] => Err(usage("busy UUID [on|off]")),
        ["fail", path, errno] => {
            let errno = Errno::parse(errno)
                .ok_or_else(|| ControlError::Usage(format!("unknown errno '{errno}'")))?;
            host.inject_failure(path, errno);
            Ok(())
        }
        ["fail", ..] => Err(usage("fail PATH ERRNO")),
        ["fail-write", path, errno] => {
            let errno = Errno::parse(errno)
                .ok_or_else(|| ControlError::Usage(format!("unknown errno '{errno}'")))?;
            host.inject_write_failure(path, errno);
            Ok(())
        }
        ["fail-write", ..] => Err(usage("fail-write PATH ERRNO")),
        ["slow", path, millis] => {
            let ms: u64 = millis
                .parse()
                .map_err(|_| ControlError::Usage(format!("'{millis}' is not a number of ms")))?;
            host.slow_writes(path, Duration::from_millis(ms));
            Ok(())
        }
        ["slow", ..] => Err(usage("slow PATH MILLIS")),
        ["short", path, bytes] => {
            let bytes: usize = bytes
                .parse()
                .map_err(|_| ControlError::Usage(format!("'{bytes}' is not a number of bytes")))?;
            host.short_write(path, bytes);
            Ok(())
        }
        ["short", ..] => Err(usage("short PATH BYTES")),
        ["vf-open", vf] | ["vf-open", vf, "on"] => host.set_vf_hold(vf, Hold::Open),
        ["vf-open", vf, "off"] => host.set_vf_hold(vf, Hold::Free),
        ["vf-open", vf, "linger"] => host.set_vf_hold(vf, Hold::Lingering),
        ["vf-open", ..] => Err(usage("vf-open VF [on|off|linger]")),
        ["vgpud", pf] => host.publish_vgpu_types(pf),
        ["vgpud", ..] => Err(usage("vgpud PF")),
        ["mixed-size", pf, "on"] => host.set_mixed_size(pf, true),
        ["mixed-size", pf, "off"] => host.set_mixed_size(pf, false),
        ["mixed-size", ..] => Err(usage("mixed-size PF on|off")),
        ["clear-faults"] => {
            host.clear_faults();
            Ok(())
        }
        ["hook", argv @ ..] => {
            host.hook = argv.iter().map(|s| (*s).to_string()).collect();
            Ok(())
        }
        [other, ..] => Err(ControlError::Usage(format!(
            "unknown command '{other}' (read mdev-sim/control for the list)"
        ))),
        [] => Ok(()),
    }
}
