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

/// A duration as a person would write it in seconds: `1s`, `0.5s`, `2.25s`.
pub fn seconds(d: std::time::Duration) -> String {
    let s = format!("{:.3}", d.as_secs_f64());
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}s")
}
