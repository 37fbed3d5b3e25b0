//! `mdevctl types`: the supported types of each registered parent.

use super::{warn_skipped, Context, Format};
use crate::names::ParentName;
use crate::render;
use crate::sysfs::supported::supported_types;

/// Checked options of `types`.
#[derive(Debug, Clone, Default)]
pub struct TypesOptions {
    pub parent: Option<ParentName>,
    pub format: Option<Format>,
}

/// Returns the bytes to print.
pub fn types(ctx: &Context, opts: &TypesOptions) -> String {
    let (parents, skipped) = supported_types(&ctx.host, opts.parent.as_ref());
    warn_skipped(&skipped);
    match opts.format.unwrap_or(Format::Text) {
        Format::Text => render::types_text(&parents),
        Format::Json => render::types_json(&parents),
    }
}
