//! `--output json`: the report as documented in docs/check-output.md.

use crate::check::report::CheckReport;

/// Pretty-printed JSON, newline-terminated.
pub fn render(report: &CheckReport) -> Result<String, serde_json::Error> {
    let mut out = serde_json::to_string_pretty(report)?;
    out.push('\n');
    Ok(out)
}
