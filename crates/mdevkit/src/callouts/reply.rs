//! What callout scripts print, parsed: the `get capabilities` reply and the `get attributes`
//! reply (spec §6.3, §6.6). Both are untrusted bytes; neither parser panics.

use std::path::Path;

use crate::config::attrs_from_value;
use crate::names::Attr;

use super::protocol::{CapabilitiesReply, Supports};
use super::CalloutError;

/// Text as upstream reads it: lossy UTF-8, trailing NUL bytes dropped.
fn text(stdout: &[u8]) -> std::borrow::Cow<'_, str> {
    match String::from_utf8_lossy(stdout) {
        std::borrow::Cow::Borrowed(s) => std::borrow::Cow::Borrowed(s.trim_end_matches('\0')),
        std::borrow::Cow::Owned(s) => std::borrow::Cow::Owned(s.trim_end_matches('\0').to_owned()),
    }
}

/// A versioned script's declaration; `None` if the reply is not one (the script is then
/// passed over, as upstream does).
pub fn capabilities(stdout: &[u8]) -> Option<Supports> {
    serde_json::from_str::<CapabilitiesReply>(&text(stdout))
        .ok()
        .map(|r| r.supports)
}

/// The attributes in a `get attributes` reply of `script`. Nothing, and `[{}]`, mean none.
pub fn attributes(script: &Path, stdout: &[u8]) -> Result<Vec<Attr>, CalloutError> {
    if stdout.is_empty() || stdout == b"[{}]" {
        return Ok(Vec::new());
    }
    let value: serde_json::Value =
        serde_json::from_str(&text(stdout)).map_err(|source| CalloutError::BadJson {
            script: script.to_owned(),
            source,
        })?;
    attrs_from_value(&value).map_err(|source| CalloutError::BadAttributes {
        script: script.to_owned(),
        source,
    })
}
