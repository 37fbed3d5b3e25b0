//! `mdevctl define`: store a definition from options, from a running device, or from a
//! JSON file.

use std::path::PathBuf;

use super::{compact, parse_jsonfile, read_jsonfile_bytes, subject, Context, OpError};
use crate::callouts::{Action, Force, Subject};
use crate::config::DeviceConfig;
use crate::names::{ParentName, StartMode, TypeName, Uuid};
use crate::store;
use crate::sysfs;

/// Checked options of `define`.
#[derive(Debug, Clone, Default)]
pub struct DefineOptions {
    pub uuid: Option<Uuid>,
    pub parent: Option<ParentName>,
    pub mdev_type: Option<TypeName>,
    pub start: StartMode,
    pub jsonfile: Option<PathBuf>,
    pub force: Force,
}

/// Runs `define`; returns what to print (the UUID when it was generated).
pub fn define(ctx: &Context, o: &DefineOptions) -> Result<String, OpError> {
    ctx.require_config_dir()?;
    let _lock = ctx.lock()?;
    let uuid = o.uuid.unwrap_or_else(Uuid::new_random);
    // Only a definition from options looks at sysfs: with --jsonfile the file is the whole
    // definition, so a running device neither fills in nor adds attributes (libvirt
    // persists a running transient device this way, spec §4.3).
    let (parent, config, active) = if let Some(path) = &o.jsonfile {
        // Upstream's order (spec §4.3): the file must open, then a parent is required,
        // then an existing definition is refused, and only then is the content parsed.
        let bytes = read_jsonfile_bytes(&ctx.host, path)?;
        let parent = o.parent.clone().ok_or(OpError::ParentRequired {
            what: "define device",
            path: path.clone(),
        })?;
        if store::exists(&ctx.host, &parent, &uuid) {
            return Err(OpError::AlreadyDefined { uuid, parent });
        }
        (parent, parse_jsonfile(path, &bytes)?, None)
    } else {
        let active = match &o.uuid {
            Some(u) => sysfs::probe(&ctx.host, u)?,
            None => None,
        };
        if o.parent.is_none() && (active.is_none() || o.mdev_type.is_some()) {
            return Err(OpError::NoParent);
        }
        let parent = o
            .parent
            .clone()
            .or_else(|| active.as_ref().map(|a| a.parent.clone()))
            .ok_or(OpError::NoParent)?;
        let mdev_type = o
            .mdev_type
            .clone()
            .or_else(|| active.as_ref().map(|a| a.mdev_type.clone()))
            .ok_or(OpError::NoType)?;
        if store::exists(&ctx.host, &parent, &uuid) {
            return Err(OpError::AlreadyDefined { uuid, parent });
        }
        let config = DeviceConfig {
            mdev_type,
            start: o.start,
            attrs: Vec::new(),
        };
        (parent, config, active)
    };
    let s = subject(&uuid, &parent, &config);
    ctx.callouts
        .invoke(&s, &compact(&config), Action::Define, o.force, || {
            let mut config = config.clone();
            // Defining a running device captures its current attributes.
            if let Some(a) = &active {
                let running = Subject {
                    uuid: &a.uuid,
                    parent: &a.parent,
                    mdev_type: &a.mdev_type,
                };
                config.attrs.extend(ctx.callouts.get_attributes(&running)?);
            }
            store::write(&ctx.host, &parent, &uuid, &config)?;
            Ok::<_, OpError>(())
        })?;
    Ok(if o.uuid.is_none() {
        format!("{uuid}\n")
    } else {
        String::new()
    })
}
