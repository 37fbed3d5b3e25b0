//! `mdevctl stop`: remove an active device.

use super::{compact, subject, Context, OpError};
use crate::callouts::{Action, Force};
use crate::config::DeviceConfig;
use crate::names::{StartMode, Uuid};
use crate::sysfs::{self, write};

/// Checked options of `stop`.
#[derive(Debug, Clone)]
pub struct StopOptions {
    pub uuid: Uuid,
    pub force: Force,
}

pub fn stop(ctx: &Context, o: &StopOptions) -> Result<String, OpError> {
    let _lock = ctx.lock()?;
    let Some(active) = sysfs::probe(&ctx.host, &o.uuid)? else {
        return Err(OpError::NotActive {
            uuid: o.uuid,
            parent: None,
        });
    };
    // Callouts see the probed type; stop does not read the definition.
    let config = DeviceConfig {
        mdev_type: active.mdev_type.clone(),
        start: StartMode::Manual,
        attrs: Vec::new(),
    };
    let s = subject(&o.uuid, &active.parent, &config);
    ctx.callouts
        .invoke(&s, &compact(&config), Action::Stop, o.force, || {
            write::remove(&ctx.host, &o.uuid).map_err(|source| OpError::Remove {
                uuid: o.uuid,
                source: Box::new(source),
            })
        })?;
    Ok(String::new())
}
