//! `mdevctl start-parent-mdevs PARENT`: start a parent's auto-start definitions, as the
//! udev rule asks when the parent appears. Idempotent: udev sends both `add` and `change`.

use std::time::{Duration, Instant};

use super::{start::start_device, Context, OpError};
use crate::callouts::Force;
use crate::error::{chain, seconds};
use crate::host::uevent::UeventWatcher;
use crate::names::{ParentName, StartMode};
use crate::store::{self, Scan, Selection};
use crate::sysfs;

/// How long `start-parent-mdevs` waits for a parent that has not published its types yet.
///
/// udev runs the command as the parent appears, and a vendor daemon (NVIDIA's
/// `nvidia-vgpud`) may publish the types moments later, or an older kernel sends `add`
/// before `mdev_supported_types` exists (mdevctl issue #82). The wait is bounded well below
/// udev's 180 s event timeout, so a definition whose type never comes costs one bounded
/// wait per event, not a stuck udev worker.
pub const TYPE_WAIT: Duration = Duration::from_secs(10);

/// The first and the longest interval between two looks at sysfs while waiting. Each look
/// is also triggered by any kernel uevent (the type's parent registering); the interval
/// covers file systems that send none, such as a simulator.
const FIRST_LOOK: Duration = Duration::from_millis(100);
const LONGEST_LOOK: Duration = Duration::from_secs(1);

/// Starts every `auto` definition of `parent` that is not already running. Failures are
/// logged per device and never stop the others; the command itself succeeds.
pub fn start_parent_mdevs(ctx: &Context, parent: &ParentName) -> Result<String, OpError> {
    // The uevent subscription comes first, so a registration between the look below and
    // the wait is not missed.
    let watcher = UeventWatcher::open()
        .map_err(|e| log::debug!("no uevents, waiting by interval only: {e}"))
        .ok();
    // Locked before reading, so a concurrent add/change pair sees each other's starts.
    let mut lock = ctx.lock()?;
    let mut scan = scan_parent(ctx, parent);
    if awaits_types(ctx, parent, &scan) {
        // Other commands must not wait behind this one while the driver gets ready.
        drop(lock);
        wait_for_types(ctx, parent, watcher.as_ref());
        lock = ctx.lock()?;
        scan = scan_parent(ctx, parent);
    }
    for b in &scan.broken {
        log::warn!("{}", chain(&b.error));
    }
    for d in scan.iter().filter(|d| d.config.start == StartMode::Auto) {
        if is_running(ctx, d) {
            log::debug!("{} on {} is already active", d.uuid, d.parent);
            continue;
        }
        if let Err(e) = start_device(ctx, &d.uuid, &d.parent, &d.config, Force::No) {
            log::warn!(
                "Failed to start {} on parent {}: {}",
                d.uuid,
                d.parent,
                chain(&e)
            );
        }
    }
    drop(lock);
    Ok(String::new())
}

fn scan_parent(ctx: &Context, parent: &ParentName) -> Scan {
    store::scan(
        &ctx.host,
        &Selection {
            uuid: None,
            parent: Some(parent),
        },
    )
}

fn is_running(ctx: &Context, d: &store::Definition) -> bool {
    matches!(
        sysfs::probe(&ctx.host, &d.uuid),
        Ok(Some(a)) if a.parent == d.parent && a.mdev_type == d.config.mdev_type
    )
}

/// Whether auto-start definitions not yet running wait for a parent that has not
/// published its types at all. Once `mdev_supported_types` exists the kernel's type set is
/// complete (the mdev core registers every type of a parent at once), so a type missing
/// from it is not worth waiting for.
fn awaits_types(ctx: &Context, parent: &ParentName, scan: &Scan) -> bool {
    !ctx.host.is_dir(&ctx.host.types_dir(parent))
        && scan
            .iter()
            .any(|d| d.config.start == StartMode::Auto && !is_running(ctx, d))
}

/// Waits, at most [`TYPE_WAIT`], until `parent` has published its types. If it has not by
/// then, `start` reports each device's failure.
fn wait_for_types(ctx: &Context, parent: &ParentName, watcher: Option<&UeventWatcher>) {
    let Some(watcher) = watcher else {
        return;
    };
    log::info!(
        "Waiting up to {} for parent {parent} to publish its types",
        seconds(TYPE_WAIT)
    );
    let types = ctx.host.types_dir(parent);
    let start = Instant::now();
    let mut interval = FIRST_LOOK;
    while !ctx.host.is_dir(&types) {
        let left = TYPE_WAIT.saturating_sub(start.elapsed());
        if left.is_zero() {
            log::info!("Parent {parent} has not published its types");
            return;
        }
        if let Err(e) = watcher.wait(interval.min(left)) {
            log::debug!("uevent socket: {e}");
            return;
        }
        interval = interval.saturating_mul(2).min(LONGEST_LOOK);
    }
}
