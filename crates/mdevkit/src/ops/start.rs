//! `mdevctl start`: create a device in sysfs from a definition, a JSON file or options,
//! as a transaction (a failed attribute write removes the device again).

use std::path::PathBuf;

use super::{compact, definitions_of, read_jsonfile, subject, Context, OpError};
use crate::callouts::{Action, Force};
use crate::config::DeviceConfig;
use crate::names::{ParentName, StartMode, TypeName, Uuid};
use crate::sysfs::supported::available_instances;
use crate::sysfs::{self, write};

/// Checked options of `start`.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    pub uuid: Option<Uuid>,
    pub parent: Option<ParentName>,
    pub mdev_type: Option<TypeName>,
    pub jsonfile: Option<PathBuf>,
    pub force: Force,
}

/// What `start` resolved to start.
struct Plan {
    uuid: Uuid,
    parent: ParentName,
    config: DeviceConfig,
}

fn plan(ctx: &Context, o: &StartOptions) -> Result<Plan, OpError> {
    if let Some(path) = &o.jsonfile {
        let config = read_jsonfile(&ctx.host, path)?;
        let parent = o.parent.clone().ok_or(OpError::ParentRequired {
            what: "start device",
            path: path.clone(),
        })?;
        return Ok(Plan {
            uuid: o.uuid.unwrap_or_else(Uuid::new_random),
            parent,
            config,
        });
    }
    if let Some(uuid) = o.uuid {
        let mut defs = definitions_of(ctx, &uuid, o.parent.as_ref())?;
        if defs.len() > 1 {
            return Err(OpError::MultipleDefinitionsToStart { uuid });
        }
        if let Some(d) = defs.pop() {
            if let Some(t) = &o.mdev_type {
                if *t != d.config.mdev_type {
                    return Err(OpError::DefinedWithOtherType {
                        uuid,
                        parent: d.parent,
                        mdev_type: d.config.mdev_type,
                    });
                }
            }
            return Ok(Plan {
                uuid,
                parent: d.parent,
                config: d.config,
            });
        }
    }
    // A transient device, described by the options alone.
    match (&o.parent, &o.mdev_type) {
        (None, Some(_)) => Err(OpError::TypeWithoutParent),
        (Some(parent), Some(t)) => Ok(Plan {
            uuid: o.uuid.unwrap_or_else(Uuid::new_random),
            parent: parent.clone(),
            config: DeviceConfig {
                mdev_type: t.clone(),
                start: StartMode::Manual,
                attrs: Vec::new(),
            },
        }),
        _ => Err(OpError::Insufficient),
    }
}

/// Checks that the parent can take a device of this type (spec §4.6 steps 1-4).
fn preflight(
    ctx: &Context,
    uuid: &Uuid,
    parent: &ParentName,
    config: &DeviceConfig,
) -> Result<(), OpError> {
    // A device whose links cannot be read counts as not active, as upstream.
    if let Ok(Some(active)) = sysfs::probe(&ctx.host, uuid) {
        return Err(if active.parent != *parent {
            OpError::ActiveOnOtherParent {
                uuid: *uuid,
                parent: active.parent,
            }
        } else if active.mdev_type != config.mdev_type {
            OpError::ActiveWithOtherType {
                uuid: *uuid,
                mdev_type: active.mdev_type,
            }
        } else {
            OpError::AlreadyActive { uuid: *uuid }
        });
    }
    let host = &ctx.host;
    if !host.is_dir(&host.parent_dir(parent)) {
        let wanted = parent.as_str().to_lowercase();
        let suggestion = host
            .read_dir(&host.mdev_bus_dir())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| e.name.into_string().ok())
            .find(|n| n.to_lowercase() == wanted);
        return Err(OpError::NoSuchParent {
            parent: parent.clone(),
            suggestion,
        });
    }
    if !host.is_dir(&host.types_dir(parent)) {
        return Err(OpError::NotRegistered {
            parent: parent.clone(),
        });
    }
    let type_dir = host.type_dir(parent, &config.mdev_type);
    if !host.is_dir(&type_dir) {
        return Err(OpError::UnsupportedType {
            parent: parent.clone(),
            mdev_type: config.mdev_type.clone(),
        });
    }
    if available_instances(host, &type_dir)? <= 0 {
        return Err(OpError::NoInstances {
            parent: parent.clone(),
            mdev_type: config.mdev_type.clone(),
        });
    }
    Ok(())
}

/// The primary step: create, then write each attribute in order; undo on failure.
fn create(
    ctx: &Context,
    uuid: &Uuid,
    parent: &ParentName,
    config: &DeviceConfig,
) -> Result<(), OpError> {
    preflight(ctx, uuid, parent, config)?;
    write::create(&ctx.host, parent, &config.mdev_type, uuid).map_err(|source| {
        OpError::Create {
            uuid: *uuid,
            parent: parent.clone(),
            mdev_type: config.mdev_type.clone(),
            source: Box::new(source),
        }
    })?;
    let writer = write::AttrWriter::new(&ctx.host, uuid);
    for attr in &config.attrs {
        if let Err(e) = writer.write(attr) {
            return Err(match write::remove(&ctx.host, uuid) {
                Ok(()) => OpError::Attr(Box::new(e)),
                Err(r) => OpError::AttrAndRollback {
                    attr: Box::new(e),
                    rollback: Box::new(r),
                },
            });
        }
    }
    Ok(())
}

/// Starts one device with its callouts; shared with autostart.
pub(crate) fn start_device(
    ctx: &Context,
    uuid: &Uuid,
    parent: &ParentName,
    config: &DeviceConfig,
    force: Force,
) -> Result<(), OpError> {
    let s = subject(uuid, parent, config);
    Ok(ctx
        .callouts
        .invoke(&s, &compact(config), Action::Start, force, || {
            create(ctx, uuid, parent, config)
        })?)
}

/// Runs `start`; returns what to print (the UUID when it was generated).
pub fn start(ctx: &Context, o: &StartOptions) -> Result<String, OpError> {
    let _lock = ctx.lock()?;
    let p = plan(ctx, o)?;
    start_device(ctx, &p.uuid, &p.parent, &p.config, o.force)?;
    Ok(if o.uuid.is_none() {
        format!("{}\n", p.uuid)
    } else {
        String::new()
    })
}
