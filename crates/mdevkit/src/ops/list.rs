//! `mdevctl list` and `lsmdev`: active devices, or stored definitions with `--defined`.

use super::{warn_skipped, Context, Format};
use crate::config::DeviceConfig;
use crate::names::{ParentName, StartMode, Uuid};
use crate::render::{self, JsonShape, ListRow, Marker, Verbosity};
use crate::store::{self, Selection, StoreError};
use crate::sysfs;

/// Which devices `list` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// Devices the kernel has created.
    #[default]
    Active,
    /// Stored definitions (`--defined`).
    Defined,
}

/// Checked options of `list`.
#[derive(Debug, Clone)]
pub struct ListOptions {
    pub source: Source,
    pub uuid: Option<Uuid>,
    pub parent: Option<ParentName>,
    pub verbosity: Verbosity,
    pub format: Format,
}

/// Rows for `list --defined`, sorted by parent then UUID. Broken definitions are reported
/// as warnings and left out (DIVERGENCES §2).
pub fn defined_rows(
    ctx: &Context,
    uuid: Option<&Uuid>,
    parent: Option<&ParentName>,
) -> Vec<ListRow> {
    let scan = store::scan(&ctx.host, &Selection { uuid, parent });
    for b in &scan.broken {
        log::warn!("{}", crate::error::chain(&b.error));
    }
    if scan.is_empty() {
        return Vec::new();
    }
    let (active, skipped) = sysfs::active_devices(&ctx.host, uuid);
    warn_skipped(&skipped);
    scan.into_defs()
        .into_iter()
        .map(|d| {
            let is_active = active
                .get(&d.uuid)
                .is_some_and(|a| a.parent == d.parent && a.mdev_type == d.config.mdev_type);
            ListRow {
                uuid: d.uuid,
                parent: d.parent,
                mdev_type: d.config.mdev_type,
                start: d.config.start,
                attrs: d.config.attrs,
                marker: if is_active {
                    Marker::Active
                } else {
                    Marker::None
                },
            }
        })
        .collect()
}

/// Rows for the active listing, sorted by parent then UUID.
pub fn active_rows(
    ctx: &Context,
    uuid: Option<&Uuid>,
    parent: Option<&ParentName>,
) -> Vec<ListRow> {
    let (active, skipped) = sysfs::active_devices(&ctx.host, uuid);
    warn_skipped(&skipped);
    // The store is opened once; each device's definition is read relative to it.
    let mut defs = store::Lookup::open(&ctx.host)
        .inspect_err(|e| log::warn!("{}", crate::error::chain(e)))
        .ok();
    let mut rows: Vec<ListRow> = active
        .into_values()
        .filter(|a| parent.is_none_or(|p| *p == a.parent))
        .map(|a| {
            // One read per device: existence gives `(defined)`, content gives the start
            // mode; a malformed definition still counts as defined but starts manually.
            // A broken one is reported like in `list --defined` (DIVERGENCES §2).
            let path = ctx.host.config_file(&a.parent, &a.uuid);
            let read = match defs.as_mut() {
                Some(d) => d.read(&a.parent, &a.uuid),
                None => Ok(None),
            };
            let (marker, start) = match read {
                Ok(None) => (Marker::None, StartMode::Manual),
                Ok(Some(bytes)) => match DeviceConfig::from_slice(bytes) {
                    Ok(c) => (Marker::Defined, c.start),
                    Err(source) => {
                        let e = StoreError::Malformed { path, source };
                        log::warn!("{}", crate::error::chain(&e));
                        (Marker::Defined, StartMode::Manual)
                    }
                },
                Err(source) => {
                    let e = StoreError::Read { path, source };
                    log::warn!("{}", crate::error::chain(&e));
                    (Marker::Defined, StartMode::Manual)
                }
            };
            ListRow {
                uuid: a.uuid,
                parent: a.parent,
                mdev_type: a.mdev_type,
                start,
                attrs: Vec::new(),
                marker,
            }
        })
        .collect();
    // Active attributes come only from callouts (upstream PR #71), asked in UUID order,
    // concurrently; a failing script means "no attributes", not a failed listing.
    let subjects: Vec<crate::callouts::Subject<'_>> = rows
        .iter()
        .map(|r| crate::callouts::Subject {
            uuid: &r.uuid,
            parent: &r.parent,
            mdev_type: &r.mdev_type,
        })
        .collect();
    let replies = ctx.callouts.get_attributes_all(&subjects);
    drop(subjects);
    for (row, reply) in rows.iter_mut().zip(replies) {
        row.attrs = reply.unwrap_or_else(|e| {
            log::debug!(
                "get attributes of {}: {}",
                row.uuid,
                crate::error::chain(&e)
            );
            Vec::new()
        });
    }
    rows.sort_by(|a, b| (&a.parent, a.uuid).cmp(&(&b.parent, b.uuid)));
    rows
}

/// Returns the bytes to print.
pub fn list(ctx: &Context, opts: &ListOptions) -> String {
    let (uuid, parent) = (opts.uuid.as_ref(), opts.parent.as_ref());
    let rows = match opts.source {
        Source::Defined => defined_rows(ctx, uuid, parent),
        Source::Active => active_rows(ctx, uuid, parent),
    };
    match opts.format {
        Format::Text => render::list_text(&rows, opts.verbosity),
        Format::Json => render::list_json(
            &rows,
            if opts.uuid.is_some() {
                JsonShape::SingleUuid
            } else {
                JsonShape::Hierarchy
            },
        ),
    }
}
