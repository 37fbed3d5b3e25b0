//! Rendering an error with its causes on one line, for warnings and for the binary's top.

use std::error::Error;

/// `top: cause: cause...`, skipping a cause whose text the previous level already printed.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut last = out.clone();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !last.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        last = text;
        cur = c.source();
    }
    out
}
