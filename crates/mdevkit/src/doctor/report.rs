//! Rendering a doctor [`Report`]: aligned text for people, a versioned JSON document for
//! automation (schema in `docs/doctor.md`).

use serde::Serialize;

use super::{Check, Report, Status};

/// Bumped when a field changes meaning or goes away; new fields and check ids do not bump it.
pub const SCHEMA_VERSION: u32 = 1;

fn label(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok  ",
        Status::Warn => "WARN",
        Status::Fail => "FAIL",
    }
}

/// One line per check (`STATUS id subject: evidence`), a `fix:` line under each warning and
/// failure, then a summary.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    for c in &report.checks {
        let subject = if c.subject.is_empty() {
            String::new()
        } else {
            format!(" {}", c.subject)
        };
        out.push_str(&format!(
            "{} {}{subject}: {}\n",
            label(c.status),
            c.id,
            c.evidence
        ));
        if let Some(r) = &c.remedy {
            out.push_str(&format!("     fix: {r}\n"));
        }
    }
    out.push_str(&format!(
        "{} ok, {} warning(s), {} failure(s)\n",
        report.count(Status::Ok),
        report.count(Status::Warn),
        report.count(Status::Fail)
    ));
    out
}

#[derive(Serialize)]
struct Summary {
    ok: usize,
    warn: usize,
    fail: usize,
}

#[derive(Serialize)]
struct Document<'a> {
    schema: u32,
    result: Status,
    summary: Summary,
    checks: &'a [Check],
}

/// `{"schema": 1, "result": "ok|warn|fail", "summary": {...}, "checks": [...]}`, pretty,
/// with a trailing newline.
pub fn json(report: &Report) -> String {
    let doc = Document {
        schema: SCHEMA_VERSION,
        result: report.worst(),
        summary: Summary {
            ok: report.count(Status::Ok),
            warn: report.count(Status::Warn),
            fail: report.count(Status::Fail),
        },
        checks: &report.checks,
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_shows_the_fix_under_a_failure_and_counts() {
        let r = Report {
            checks: vec![
                Check::ok("iommu", "", "/sys/class/iommu: dmar0"),
                Check::fail(
                    "nvidia.sriov",
                    "0000:5e:00.0",
                    "sriov_numvfs: 0 of 32 VFs",
                    "enable it",
                ),
            ],
        };
        assert_eq!(
            text(&r),
            "ok   iommu: /sys/class/iommu: dmar0\n\
             FAIL nvidia.sriov 0000:5e:00.0: sriov_numvfs: 0 of 32 VFs\n     fix: enable it\n\
             1 ok, 0 warning(s), 1 failure(s)\n"
        );
        let j: serde_json::Value = serde_json::from_str(&json(&r)).unwrap_or_default();
        assert_eq!(j["result"], "fail");
        assert_eq!(j["checks"][1]["remedy"], "enable it");
        assert_eq!(j["checks"][0]["remedy"], serde_json::Value::Null);
    }
}
