//! `mdevctl undefine`: remove stored definitions of a UUID (on every parent when none is
//! given). A malformed definition can be removed too.

use super::{compact, subject, Context, OpError};
use crate::callouts::{Action, Force};
use crate::error::chain;
use crate::names::{ParentName, Uuid};
use crate::store::{self, Selection};

/// Checked options of `undefine`.
#[derive(Debug, Clone)]
pub struct UndefineOptions {
    pub uuid: Uuid,
    pub parent: Option<ParentName>,
    pub force: Force,
}

pub fn undefine(ctx: &Context, o: &UndefineOptions) -> Result<String, OpError> {
    ctx.require_config_dir()?;
    let _lock = ctx.lock()?;
    let scan = store::scan(
        &ctx.host,
        &Selection {
            uuid: Some(&o.uuid),
            parent: o.parent.as_ref(),
        },
    );
    if scan.is_empty() && scan.broken.is_empty() {
        return Err(OpError::NoMatch);
    }
    // A directory or file that could not be read hides what it holds: removing anything
    // then could remove a definition without its callouts, so nothing is.
    let mut scan = scan;
    if let Some(i) = scan.broken.iter().position(|b| {
        matches!(
            b.error,
            store::StoreError::ReadDir { .. } | store::StoreError::Read { .. }
        )
    }) {
        return Err(scan.broken.swap_remove(i).error.into());
    }
    let mut failed = false;
    for b in &scan.broken {
        // No type can be read from it, so no callout can be told about it.
        let path = match &b.error {
            // Another spelling of the UUID's file name: removed with the definition.
            store::StoreError::Malformed { path, .. }
            | store::StoreError::Duplicate { path, .. } => path,
            store::StoreError::ReadDir { path, .. }
            | store::StoreError::Read { path, .. }
            | store::StoreError::Write { path, .. }
            | store::StoreError::Remove { path, .. } => path,
        };
        log::warn!(
            "Removing {} without callouts: {}",
            path.display(),
            chain(&b.error)
        );
        if let Err(e) = store::remove(&ctx.host, path) {
            log::warn!("Undefine of {} failed with error: {}", o.uuid, chain(&e));
            failed = true;
        }
    }
    for d in scan.iter() {
        let s = subject(&d.uuid, &d.parent, &d.config);
        let result =
            ctx.callouts
                .invoke(&s, &compact(&d.config), Action::Undefine, o.force, || {
                    store::remove(&ctx.host, &d.file)
                });
        if let Err(e) = result {
            log::warn!(
                "Undefine of {} on parent {} failed with error: {}",
                d.uuid,
                d.parent,
                chain(&e)
            );
            failed = true;
        }
    }
    if failed {
        return Err(OpError::UndefineFailed);
    }
    Ok(String::new())
}
