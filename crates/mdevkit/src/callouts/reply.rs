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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    fn script() -> &'static Path {
        Path::new("/s/50-x")
    }

    #[test]
    fn capabilities_reply_with_trailing_nul_is_read() {
        let s = capabilities(
            b"{\"supports\":{\"version\":2,\"actions\":[\"start\"],\"events\":[\"pre\"]}}\0\0",
        )
        .unwrap();
        assert_eq!(s.version, 2);
        assert_eq!(s.actions, ["start"]);
        assert!(capabilities(b"").is_none());
        assert!(capabilities(b"{\"supports\":{}}").is_none());
    }

    #[test]
    fn attributes_reply_forms() {
        assert!(attributes(script(), b"").unwrap().is_empty());
        assert!(attributes(script(), b"[{}]").unwrap().is_empty());
        assert!(attributes(script(), b"null").unwrap().is_empty());
        let a = attributes(script(), b"[{\"a\":\"1\"}]\n\0").unwrap();
        assert_eq!((a[0].name.as_str(), a[0].value.as_str()), ("a", "1"));
        let e = attributes(script(), b"[").unwrap_err();
        assert!(matches!(e, CalloutError::BadJson { .. }), "{e}");
        let e = attributes(script(), b"[{\"a\":1}]").unwrap_err();
        assert!(matches!(e, CalloutError::BadAttributes { .. }), "{e}");
        // A refused name with a line break is reported on one line.
        let e = attributes(script(), b"[{\"../a\\nb\":\"1\"}]").unwrap_err();
        let text = crate::error::chain(&e);
        assert!(!text.contains('\n'), "{text}");
    }

    /// Bytes a script might print: anything, or JSON-ish text built from the reply's own
    /// vocabulary so that the deeper checks are reached too.
    fn reply_bytes() -> impl Strategy<Value = Vec<u8>> {
        let jsonish = proptest::collection::vec(
            prop_oneof![
                Just("{".to_owned()),
                Just("}".to_owned()),
                Just("[".to_owned()),
                Just("]".to_owned()),
                Just(",".to_owned()),
                Just(":".to_owned()),
                Just("\"supports\"".to_owned()),
                Just("\"version\"".to_owned()),
                Just("\"actions\"".to_owned()),
                Just("\"events\"".to_owned()),
                Just("2".to_owned()),
                Just("null".to_owned()),
                Just("\0".to_owned()),
                "\"[a-z./\\n]{0,4}\"",
                any::<String>().prop_map(|s| format!("{s:?}")),
            ],
            0..24,
        )
        .prop_map(|parts| parts.concat().into_bytes());
        prop_oneof![proptest::collection::vec(any::<u8>(), 0..64), jsonish]
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config(1024))]

        /// No panic on any reply; a refused one is an error whose rendering is one line
        /// naming the script.
        #[test]
        fn any_reply_is_parsed_or_refused_on_one_line(bytes in reply_bytes()) {
            let _ = capabilities(&bytes);
            if let Err(e) = attributes(script(), &bytes) {
                let text = crate::error::chain(&e);
                prop_assert!(!text.contains('\n') && !text.contains('\r'), "{}", text);
                prop_assert!(text.contains("/s/50-x"), "{}", text);
            }
        }

        /// Well-formed attribute replies come back in order, byte for byte.
        #[test]
        fn well_formed_attributes_round_trip(
            attrs in proptest::collection::vec(("[a-z_][a-z0-9_]{0,8}", any::<String>()), 1..6)
        ) {
            let value = serde_json::Value::Array(
                attrs
                    .iter()
                    .map(|(k, v)| serde_json::json!({ k.as_str(): v.as_str() }))
                    .collect(),
            );
            let got = attributes(script(), value.to_string().as_bytes()).unwrap();
            let got: Vec<(String, String)> = got
                .into_iter()
                .map(|a| (a.name.as_str().to_owned(), a.value))
                .collect();
            prop_assert_eq!(got, attrs);
        }
    }
}
