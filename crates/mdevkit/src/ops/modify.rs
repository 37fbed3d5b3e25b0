//! `mdevctl modify`: change a stored definition, or (with `--live`) a running device.

use std::path::PathBuf;

use super::{compact, definitions_of, read_jsonfile, subject, Context, OpError};
use crate::callouts::{Action, Force};
use crate::config::DeviceConfig;
use crate::names::{Attr, ParentName, StartMode, TypeName, Uuid};
use crate::render::attr_block;
use crate::store;
use crate::sysfs;

/// The one change a `modify` makes (upstream's required, single-valued option group).
#[derive(Debug, Clone)]
pub enum Change {
    /// Set the start mode; `--type` may come along.
    Start(StartMode),
    /// Insert an attribute at an index, or append.
    AddAttr { attr: Attr, index: Option<u32> },
    /// Delete the attribute at an index, or the last one.
    DelAttr { index: Option<u32> },
    /// Replace type, start mode and attributes from a JSON file.
    JsonFile(PathBuf),
    /// Only `--type` (reachable only through the library).
    TypeOnly,
}

/// Where a `--jsonfile` change goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The stored definition only (the default).
    Defined,
    /// The running device only (`--live`).
    Live,
    /// The running device, then the definition (`--live --defined`).
    LiveAndDefined,
}

/// Checked options of `modify`.
#[derive(Debug, Clone)]
pub struct ModifyOptions {
    pub uuid: Uuid,
    pub parent: Option<ParentName>,
    pub mdev_type: Option<TypeName>,
    pub change: Change,
    pub target: Target,
    pub force: Force,
}

fn bad_index(uuid: &Uuid, index: u32, attrs: &[Attr]) -> OpError {
    let detail = if attrs.is_empty() {
        format!("Device {uuid} has no attributes")
    } else {
        attr_block(attrs).trim_end_matches('\n').to_owned()
    };
    OpError::BadIndex { index, detail }
}

fn apply(uuid: &Uuid, config: &mut DeviceConfig, o: &ModifyOptions) -> Result<(), OpError> {
    if let Some(t) = &o.mdev_type {
        config.mdev_type = t.clone();
    }
    match &o.change {
        Change::Start(mode) => config.start = *mode,
        Change::AddAttr { attr, index } => {
            let at = match index {
                Some(i) if *i as usize > config.attrs.len() => {
                    return Err(bad_index(uuid, *i, &config.attrs))
                }
                Some(i) => *i as usize,
                None => config.attrs.len(),
            };
            config.attrs.insert(at, attr.clone());
        }
        Change::DelAttr { index: Some(i) } => {
            if *i as usize >= config.attrs.len() {
                return Err(bad_index(uuid, *i, &config.attrs));
            }
            config.attrs.remove(*i as usize);
        }
        Change::DelAttr { index: None } => {
            config.attrs.pop();
        }
        Change::JsonFile(_) | Change::TypeOnly => {}
    }
    Ok(())
}

/// Writes the new definition with the `modify` callouts around it.
fn store_modified(
    ctx: &Context,
    uuid: &Uuid,
    parent: &ParentName,
    config: &DeviceConfig,
    force: Force,
) -> Result<(), OpError> {
    let s = subject(uuid, parent, config);
    ctx.callouts
        .invoke(&s, &compact(config), Action::Modify, force, || {
            store::write(&ctx.host, parent, uuid, config).map(drop)
        })?;
    Ok(())
}

fn modify_defined(ctx: &Context, o: &ModifyOptions, force: Force) -> Result<(), OpError> {
    if let Change::JsonFile(path) = &o.change {
        // libvirt relies on this creating a definition that did not exist yet.
        let parent = o.parent.clone().ok_or(OpError::ParentRequired {
            what: "modify device",
            path: path.clone(),
        })?;
        let config = read_jsonfile(&ctx.host, path)?;
        return store_modified(ctx, &o.uuid, &parent, &config, force);
    }
    let mut defs = definitions_of(ctx, &o.uuid, o.parent.as_ref())?;
    if defs.len() > 1 {
        return Err(OpError::MultipleDefinitions { uuid: o.uuid });
    }
    let Some(mut def) = defs.pop() else {
        return Err(OpError::NotDefined {
            uuid: o.uuid,
            parent: o.parent.clone(),
        });
    };
    apply(&o.uuid, &mut def.config, o)?;
    store_modified(ctx, &o.uuid, &def.parent, &def.config, force)
}

fn modify_live(ctx: &Context, o: &ModifyOptions, force: Force) -> Result<(), OpError> {
    let not_active = || OpError::NotActive {
        uuid: o.uuid,
        parent: o.parent.clone(),
    };
    let active = sysfs::probe(&ctx.host, &o.uuid)?.ok_or_else(not_active)?;
    if o.parent.as_ref().is_some_and(|p| *p != active.parent) {
        return Err(not_active());
    }
    let Change::JsonFile(path) = &o.change else {
        return Err(OpError::LiveNeedsJsonFile);
    };
    let config = read_jsonfile(&ctx.host, path)?;
    if config.mdev_type != active.mdev_type {
        return Err(OpError::LiveTypeChange);
    }
    if o.target == Target::LiveAndDefined {
        let defs = definitions_of(ctx, &o.uuid, Some(&active.parent))?;
        let Some(def) = defs.first() else {
            return Err(OpError::NotDefined {
                uuid: o.uuid,
                parent: Some(active.parent),
            });
        };
        if def.config.mdev_type != active.mdev_type {
            return Err(OpError::LiveDefinedTypeMismatch);
        }
    }
    let s = subject(&o.uuid, &active.parent, &config);
    ctx.callouts.live(&s, &compact(&config))?;
    if o.target == Target::LiveAndDefined {
        store_modified(ctx, &o.uuid, &active.parent, &config, force)?;
    }
    Ok(())
}

pub fn modify(ctx: &Context, o: &ModifyOptions) -> Result<String, OpError> {
    ctx.require_config_dir()?;
    let _lock = ctx.lock()?;
    match o.target {
        Target::Defined => modify_defined(ctx, o, o.force)?,
        Target::Live | Target::LiveAndDefined => modify_live(ctx, o, o.force)?,
    }
    Ok(String::new())
}
