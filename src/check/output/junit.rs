//! `--output junit`: JUnit XML as CI systems read it (the Ant/Jenkins shape): `<testsuites>`,
//! one `<testsuite>` per input file, one `<testcase>` per object (`name` = `Kind ns/name`,
//! `classname` = the file, plus `file` and `line`). A denied object has one `<failure>` (its
//! denial message; `type` = the first violation's code; the body lists every violation); an
//! object that was not checked has `<skipped>`; warnings go to `<system-out>`.

use std::fmt::Write as _;

use crate::check::report::{CheckReport, ObjectResult, Skipped};

/// Escapes text for XML attribute values and character data; characters XML 1.0 cannot carry
/// (control characters other than tab, newline and carriage return) become `?`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

enum Case<'a> {
    Checked(&'a ObjectResult),
    Skipped(&'a Skipped),
}

impl Case<'_> {
    fn file(&self) -> &str {
        match self {
            Case::Checked(r) => &r.file,
            Case::Skipped(s) => &s.file,
        }
    }
    fn line(&self) -> usize {
        match self {
            Case::Checked(r) => r.line,
            Case::Skipped(s) => s.line,
        }
    }
}

fn testcase(out: &mut String, case: &Case<'_>) {
    let name = match case {
        Case::Checked(r) => r.object_label(),
        Case::Skipped(s) => {
            let kind = if s.kind.is_empty() { "object" } else { &s.kind };
            if s.name.is_empty() {
                format!("{kind} at line {}", s.line)
            } else {
                format!("{kind} {}", s.name)
            }
        }
    };
    let file = escape(case.file());
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{file}\" file=\"{file}\" line=\"{}\" time=\"0\"",
        escape(&name),
        case.line()
    );
    match case {
        Case::Skipped(s) => {
            let _ = writeln!(
                out,
                ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                escape(&s.reason)
            );
        }
        Case::Checked(r) if r.allowed && r.warnings.is_empty() => out.push_str("/>\n"),
        Case::Checked(r) => {
            out.push_str(">\n");
            if !r.allowed {
                let mut body = String::new();
                for v in &r.violations {
                    let _ = writeln!(
                        body,
                        "{}:{}: error[{}]: {}",
                        r.file, v.line, v.code, v.message
                    );
                }
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                    escape(r.message.as_deref().unwrap_or_default()),
                    escape(
                        r.violations
                            .first()
                            .map(|v| v.code.as_str())
                            .unwrap_or("denied")
                    ),
                    escape(&body)
                );
            }
            if !r.warnings.is_empty() {
                let mut body = String::new();
                for w in &r.warnings {
                    let _ = writeln!(
                        body,
                        "{}:{}: warning[{}]: {}",
                        r.file, w.line, w.code, w.message
                    );
                }
                let _ = writeln!(out, "      <system-out>{}</system-out>", escape(&body));
            }
            out.push_str("    </testcase>\n");
        }
    }
}

/// The JUnit document.
pub fn render(report: &CheckReport) -> String {
    // Suites in order of first appearance of their file.
    let mut suites: Vec<(String, Vec<Case<'_>>)> = Vec::new();
    let cases = report
        .results
        .iter()
        .map(Case::Checked)
        .chain(report.skipped.iter().map(Case::Skipped));
    let mut all: Vec<Case<'_>> = cases.collect();
    all.sort_by(|a, b| (a.file(), a.line()).cmp(&(b.file(), b.line())));
    for case in all {
        match suites.iter_mut().find(|(f, _)| f == case.file()) {
            Some((_, list)) => list.push(case),
            None => suites.push((case.file().to_string(), vec![case])),
        }
    }
    let s = &report.summary;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"wasmgate check\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"0\">",
        s.objects, s.denied, s.skipped
    );
    for (file, cases) in &suites {
        let failures = cases
            .iter()
            .filter(|c| matches!(c, Case::Checked(r) if !r.allowed))
            .count();
        let skipped = cases
            .iter()
            .filter(|c| matches!(c, Case::Skipped(_)))
            .count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"0\">",
            escape(file),
            cases.len()
        );
        for case in cases {
            testcase(&mut out, case);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escaping() {
        assert_eq!(
            escape("a<b>&\"c'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;c&apos;?\n"
        );
    }
}
