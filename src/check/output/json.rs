//! `--output json`: the report as documented in docs/check-output.md.

use crate::check::report::CheckReport;

/// Pretty-printed JSON, newline-terminated.
pub fn render(report: &CheckReport) -> String {
    let mut out = serde_json::to_string_pretty(report).unwrap_or_else(|e| {
        // Unreachable: the report holds only strings, numbers, booleans and JSON values.
        format!("{{\"error\": \"cannot serialize the report: {e}\"}}")
    });
    out.push('\n');
    out
}
