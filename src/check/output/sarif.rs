//! `--output sarif`: SARIF 2.1.0 (OASIS), the format GitHub code scanning reads. One run; one
//! rule per finding code (`tool.driver.rules`, ids = codes); one result per finding, located
//! at its file and line (`physicalLocation.artifactLocation.uri` relative to the working
//! directory, `%SRCROOT%`, and `region.startLine`), with the object as a logical location.
//! Violations are `error`s, warnings `warning`s, and the defaults the mutating webhook applies
//! `note`s.

use serde_json::{json, Value};

use crate::check::input::STDIN_NAME;
use crate::check::report::{rules, CheckReport, Finding, ObjectResult, DEFAULTED};

/// The SARIF 2.1.0 schema URI written in `$schema`.
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The artifact URI of a file name as given on the command line: a relative reference with
/// `/` separators (leading `./` removed) for relative paths, a `file://` URI for absolute
/// ones, `stdin` for standard input; characters outside RFC 3986's unreserved set and `/` are
/// percent-encoded.
pub fn artifact_uri(file: &str) -> String {
    if file == STDIN_NAME {
        return "stdin".to_string();
    }
    let path = file.replace('\\', "/");
    let mut path = path.as_str();
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    let mut out = String::new();
    if path.starts_with('/') {
        out.push_str("file://");
    }
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A rule's readable name: the code in PascalCase (`plugin-unavailable` -> `PluginUnavailable`;
/// SARIF wants `name` to differ from the opaque `id`, case aside).
fn rule_name(code: &str) -> String {
    if code == crate::check::report::DEFAULTED {
        return "AppliedDefault".to_string();
    }
    code.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// An `artifactLocation`: relative URIs are resolved against `%SRCROOT%` (the working
/// directory; GitHub maps it to the repository root), absolute ones stand alone.
fn artifact_location(file: &str) -> Value {
    let uri = artifact_uri(file);
    if uri.starts_with("file://") {
        json!({ "uri": uri })
    } else {
        json!({ "uri": uri, "uriBaseId": "%SRCROOT%" })
    }
}

fn result(r: &ObjectResult, f: &Finding, level: &str, rule_index: usize) -> Value {
    let mut logical = format!("{}/{}/{}", r.kind, r.namespace, r.name);
    if let Some(c) = &f.component {
        logical.push_str(&format!("/components/{c}"));
    }
    let mut properties = json!({ "object": r.object_label() });
    if let Some(c) = &f.component {
        properties["component"] = json!(c);
    }
    if let Some(i) = &f.import {
        properties["import"] = json!(i);
    }
    json!({
        "ruleId": f.code,
        "ruleIndex": rule_index,
        "level": level,
        "message": { "text": format!("{}: {}", r.object_label(), f.message) },
        "locations": [{
            "physicalLocation": {
                "artifactLocation": artifact_location(&r.file),
                "region": { "startLine": f.line }
            },
            "logicalLocations": [{ "fullyQualifiedName": logical, "kind": "object" }]
        }],
        "partialFingerprints": {
            "wasmgate/v1": format!("{}|{}|{}|{}", f.code, logical, f.import.as_deref().unwrap_or(""), r.file)
        },
        "properties": properties
    })
}

/// The SARIF log, pretty-printed and newline-terminated.
pub fn render(report: &CheckReport, exit_code: u8) -> String {
    let rules = rules();
    let index = |code: &str| rules.iter().position(|(c, _, _)| *c == code).unwrap_or(0);
    let mut results = Vec::new();
    for r in &report.results {
        for v in &r.violations {
            results.push(result(r, v, "error", index(&v.code)));
        }
        for w in &r.warnings {
            let level = if w.code == DEFAULTED {
                "note"
            } else {
                "warning"
            };
            results.push(result(r, w, level, index(&w.code)));
        }
    }
    let rule_objects: Vec<Value> = rules
        .iter()
        .map(|(id, text, denies)| {
            json!({
                "id": id,
                "name": rule_name(id),
                "shortDescription": { "text": text },
                "defaultConfiguration": { "level": if *denies { "error" } else { "warning" } }
            })
        })
        .collect();
    let mut artifacts: Vec<(&str, String)> = Vec::new();
    for r in &report.results {
        let uri = artifact_uri(&r.file);
        if !artifacts.iter().any(|(_, u)| *u == uri) {
            artifacts.push((&r.file, uri));
        }
    }
    let log = json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": report.tool.name,
                    "version": report.tool.version,
                    "semanticVersion": report.tool.version,
                    "rules": rule_objects
                }
            },
            "originalUriBaseIds": { "%SRCROOT%": { "description": { "text": "The directory wasmgate check ran in." } } },
            "artifacts": artifacts.iter().map(|(file, u)| json!({
                "location": artifact_location(file),
                "mimeType": if u.ends_with(".json") { "application/json" } else { "application/yaml" }
            })).collect::<Vec<_>>(),
            "invocations": [{
                "executionSuccessful": true,
                "exitCode": exit_code
            }],
            "results": results,
            "properties": { "summary": report.summary }
        }]
    });
    // `{:#}` is serde_json's pretty printer, infallible for a `Value`.
    format!("{log:#}\n")
}

#[cfg(test)]
mod tests {
    use super::artifact_uri;

    #[test]
    fn uris() {
        assert_eq!(artifact_uri("./examples/a b.yaml"), "examples/a%20b.yaml");
        assert_eq!(artifact_uri("/abs/x.yaml"), "file:///abs/x.yaml");
        assert_eq!(artifact_uri("<stdin>"), "stdin");
        assert_eq!(artifact_uri("dir\\x.yml"), "dir/x.yml");
        assert_eq!(super::rule_name("plugin-unavailable"), "PluginUnavailable");
    }
}
