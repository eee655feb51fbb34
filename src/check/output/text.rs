//! `--output text`: diagnostics as a compiler prints them, one header line per finding that
//! editors, CI log parsers and problem matchers read (`file:line: severity[code]: message`),
//! then the object, component and import it concerns, then a summary line.

use std::fmt::Write as _;

use crate::check::report::{CheckReport, Finding, ObjectResult, DEFAULTED};

fn finding(out: &mut String, r: &ObjectResult, f: &Finding, severity: &str) {
    let _ = writeln!(
        out,
        "{}:{}: {severity}[{}]: {}",
        r.file, f.line, f.code, f.message
    );
    let _ = writeln!(out, "  = object: {}", r.object_label());
    if let Some(c) = &f.component {
        let _ = writeln!(out, "  = component: {c}");
    }
    if let Some(i) = &f.import {
        let _ = writeln!(out, "  = import: {i}");
    }
}

/// Renders every violation (`error`), warning (`warning`) and default (`note`), then the summary.
pub fn render(report: &CheckReport) -> String {
    let mut out = String::new();
    for r in &report.results {
        for v in &r.violations {
            finding(&mut out, r, v, "error");
        }
        for w in &r.warnings {
            let severity = if w.code == DEFAULTED {
                "note"
            } else {
                "warning"
            };
            finding(&mut out, r, w, severity);
        }
    }
    let s = &report.summary;
    if !out.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "{} objects in {} files, checked against {} hosts: {} allowed, {} denied, {} skipped; {} warnings",
        s.objects, s.files, s.hosts, s.allowed, s.denied, s.skipped, s.warnings
    );
    out
}
