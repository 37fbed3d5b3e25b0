//! `mdevctl start-parent-mdevs PARENT`: start a parent's auto-start definitions, as the
//! udev rule asks when the parent appears. Idempotent: udev sends both `add` and `change`.

use super::{start::start_device, Context, OpError};
use crate::callouts::Force;
use crate::error::chain;
use crate::names::{ParentName, StartMode};
use crate::store::{self, Selection};
use crate::sysfs;

/// Starts every `auto` definition of `parent` that is not already running. Failures are
/// logged per device and never stop the others; the command itself succeeds.
pub fn start_parent_mdevs(ctx: &Context, parent: &ParentName) -> Result<String, OpError> {
    // Locked before reading, so a concurrent add/change pair sees each other's starts.
    let _lock = ctx.lock()?;
    let scan = store::scan(
        &ctx.host,
        &Selection {
            uuid: None,
            parent: Some(parent),
        },
    );
    for b in &scan.broken {
        log::warn!("{}", chain(&b.error));
    }
    for d in scan.iter().filter(|d| d.config.start == StartMode::Auto) {
        match sysfs::probe(&ctx.host, &d.uuid) {
            Ok(Some(a)) if a.parent == d.parent && a.mdev_type == d.config.mdev_type => {
                log::debug!("{} on {} is already active", d.uuid, d.parent);
                continue;
            }
            _ => {}
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
    Ok(String::new())
}
