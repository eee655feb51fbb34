//! The CRDs wasmgate generates from `crates/core/src/crd/` against upstream wasmCloud's CRDs.
//!
//! - `manifests_match_generated_crds`: `manifests/crds/` is exactly what `crd_documents()` produces.
//!   Regenerate with `WASMGATE_UPDATE_CRDS=1 cargo test --test crd_compat`.
//! - `crds_cover_upstream_schemas`: every field path of upstream's schemas (read from
//!   `tests/fixtures/upstream-crds`) exists in ours with the same type and validation, plus names, scope,
//!   printer columns and subresources. Extra fields in ours are printed, not failed.
//! - `generated_crds_are_structural`: the rules kube-apiserver applies to CRD schemas.
//! - `examples_round_trip` / `invalid_examples_rejected_alike`: realistic objects are valid under both
//!   schemas, survive deserialize + serialize through the Rust types, and invalid ones fail alike.
//! - `objects_without_spec_decode`: what upstream accepts without a `spec` decodes through
//!   `wasmgate::crd::decode_object`.
//!
//! The same comparison was made once against a real kube-apiserver 1.36 (server-side dry-run
//! of these examples under upstream's CRDs and ours: same acceptance, same errors, same stored
//! objects); the e2e tests install these CRDs for real.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;
use wasmgate::crd::{
    crd_documents, decode_object, Workload, WorkloadDeployment, WorkloadReplicaSet,
};

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/// Upstream's CRDs (wasmCloud operator, `config/crd/bases`),
/// vendored as test data (`tests/fixtures/upstream-crds`, source and licence in its README; or `WASMGATE_UPSTREAM_CRDS`).
const UPSTREAM: [(&str, &str); 3] = [
    (
        "workloads.runtime.wasmcloud.dev",
        "runtime.wasmcloud.dev_workloads.yaml",
    ),
    (
        "workloadreplicasets.runtime.wasmcloud.dev",
        "runtime.wasmcloud.dev_workloadreplicasets.yaml",
    ),
    (
        "workloaddeployments.runtime.wasmcloud.dev",
        "runtime.wasmcloud.dev_workloaddeployments.yaml",
    ),
];

fn upstream_text(file: &str) -> String {
    let dir = std::env::var("WASMGATE_UPSTREAM_CRDS").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upstream-crds").to_string()
    });
    let path = std::path::Path::new(&dir).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read upstream CRD {}: {e} (set WASMGATE_UPSTREAM_CRDS to the folder of upstream's CRDs)",
            path.display()
        )
    })
}

const REGENERATE: &str = "WASMGATE_UPDATE_CRDS=1 cargo test --test crd_compat";

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("invalid YAML: {e}\n{text}"))
}

fn upstream(name: &str) -> Value {
    let (_, file) = UPSTREAM
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no upstream CRD {name}"));
    yaml(&upstream_text(file))
}

/// Our CRDs as the manifests hold them (parsed back from the generated YAML).
fn ours() -> Vec<(String, Value)> {
    crd_documents()
        .into_iter()
        .map(|(name, text)| (name, yaml(&text)))
        .collect()
}

fn our_crd(name: &str) -> Value {
    ours()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("crd_documents() has no {name}"))
}

fn root_schema<'a>(crd: &'a Value, version: &str) -> &'a Value {
    crd["spec"]["versions"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == version))
        .map(|v| &v["schema"]["openAPIV3Schema"])
        .unwrap_or_else(|| panic!("no version {version} in {}", crd["metadata"]["name"]))
}

// ---------------------------------------------------------------------------------------------
// 1. Drift between manifests/crds/ and the types
// ---------------------------------------------------------------------------------------------

const HEADER: &str =
    "# Generated from the Rust types in crates/core/src/crd/ by tests/crd_compat.rs; do not edit.\n\
                      # Regenerate: WASMGATE_UPDATE_CRDS=1 cargo test --test crd_compat\n";

fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/crds")
}

/// (file name, content) of every generated file under `manifests/crds/`.
fn expected_manifests() -> Vec<(String, String)> {
    let mut files = Vec::new();
    for (name, text) in crd_documents() {
        let (plural, group) = name.split_once('.').expect("CRD name is <plural>.<group>");
        files.push((format!("{group}_{plural}.yaml"), format!("{HEADER}{text}")));
    }
    let mut kustomization = format!(
        "{HEADER}apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
    );
    for (file, _) in &files {
        let _ = writeln!(kustomization, "- {file}");
    }
    files.push(("kustomization.yaml".into(), kustomization));
    files
}

fn first_difference(committed: &str, generated: &str) -> String {
    let mut committed_lines = committed.lines();
    for (i, want) in generated.lines().enumerate() {
        match committed_lines.next() {
            Some(have) if have == want => continue,
            Some(have) => {
                return format!("line {}: committed {have:?}, generated {want:?}", i + 1);
            }
            None => return format!("line {}: committed file ends, generated {want:?}", i + 1),
        }
    }
    match committed_lines.next() {
        Some(extra) => format!("committed file has extra lines, from {extra:?}"),
        None => "line endings differ".into(),
    }
}

#[test]
fn manifests_match_generated_crds() {
    let dir = manifests_dir();
    let expected = expected_manifests();
    let update = std::env::var("WASMGATE_UPDATE_CRDS").is_ok_and(|v| v == "1");
    if update {
        std::fs::create_dir_all(&dir).expect("create manifests/crds");
    }
    let mut problems = Vec::new();
    for (file, content) in &expected {
        let path = dir.join(file);
        if update {
            std::fs::write(&path, content)
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(committed) if committed == *content => {}
            Ok(committed) => problems.push(format!(
                "manifests/crds/{file} differs from the types ({})",
                first_difference(&committed, content)
            )),
            Err(e) => problems.push(format!("manifests/crds/{file}: {e}")),
        }
    }
    // Generated files that the types no longer produce.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let generated = std::fs::read_to_string(entry.path())
                .is_ok_and(|text| text.starts_with(HEADER.lines().next().unwrap_or_default()));
            if generated && !expected.iter().any(|(f, _)| *f == file) {
                if update {
                    let _ = std::fs::remove_file(entry.path());
                } else {
                    problems.push(format!(
                        "manifests/crds/{file} is stale (no type produces it)"
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "manifests/crds/ is out of date with crates/core/src/crd/:\n  {}\nRegenerate with: {REGENERATE}",
        problems.join("\n  ")
    );
}

#[test]
fn generated_yaml_is_a_typed_crd() {
    for (name, text) in crd_documents() {
        let crd: CustomResourceDefinition = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("{name}: not a CustomResourceDefinition: {e}"));
        assert_eq!(crd.metadata.name.as_deref(), Some(name.as_str()));
        assert_eq!(
            crd.spec.versions.len(),
            1,
            "{name}: one version, as upstream"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Field-by-field comparison with upstream
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Report {
    /// Upstream accepts or stores something differently from ours: fails the test.
    mismatches: Vec<String>,
    /// Paths only ours has: printed, allowed.
    extras: Vec<String>,
}

impl Report {
    fn mismatch(&mut self, crd: &str, path: &str, what: impl std::fmt::Display) {
        self.mismatches
            .push(format!("{crd}: {}: {what}", display_path(path)));
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "<root>"
    } else {
        path
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Schema keywords whose value must be the same in both schemas (absent on both is the same).
/// `description` and `title` are documentation; everything else is compared.
const SAME_VALUE_KEYWORDS: &[&str] = &[
    "type",
    "format",
    "pattern",
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxProperties",
    "minProperties",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "enum",
    "default",
    "x-kubernetes-map-type",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-embedded-resource",
];

/// Keywords neither side may use without the other (structure is compared by recursion).
const HANDLED_KEYWORDS: &[&str] = &[
    "description",
    "title",
    "properties",
    "items",
    "additionalProperties",
    "required",
    "nullable",
    "x-kubernetes-validations",
];

/// Values equal as JSON, with numbers compared by value (`0` and `0.0` are the same minimum).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| same_value(a, b)))
        }
        _ => a == b,
    }
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "(unset)".into(), |v| v.to_string())
}

fn string_set(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// CEL rules as comparable strings (rule text with whitespace normalised, as YAML folding
/// changes it).
fn validations(v: Option<&Value>) -> BTreeSet<String> {
    let text = |r: &Value, k: &str| {
        r.get(k)
            .and_then(Value::as_str)
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    v.and_then(Value::as_array)
        .map(|rules| {
            rules
                .iter()
                .map(|r| {
                    [
                        "message",
                        "rule",
                        "messageExpression",
                        "reason",
                        "fieldPath",
                    ]
                    .iter()
                    .filter(|k| !text(r, k).is_empty())
                    .map(|k| format!("{k} {:?}", text(r, k)))
                    .collect::<Vec<_>>()
                    .join(", ")
                })
                .collect()
        })
        .unwrap_or_default()
}

fn compare_schema(crd: &str, path: &str, up: &Value, ours: &Value, report: &mut Report) {
    let (Some(up_obj), Some(our_obj)) = (up.as_object(), ours.as_object()) else {
        report.mismatch(
            crd,
            path,
            format!("schema is not an object: upstream {up}, ours {ours}"),
        );
        return;
    };

    for keyword in SAME_VALUE_KEYWORDS {
        let (a, b) = (up_obj.get(*keyword), our_obj.get(*keyword));
        let same = match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => same_value(a, b),
            _ => false,
        };
        if !same {
            report.mismatch(
                crd,
                path,
                format!("{keyword}: upstream {}, ours {}", show(a), show(b)),
            );
        }
    }
    for (key, side, obj) in [("upstream", "ours", up_obj), ("ours", "upstream", our_obj)] {
        for keyword in obj.keys() {
            let known = SAME_VALUE_KEYWORDS.contains(&keyword.as_str())
                || HANDLED_KEYWORDS.contains(&keyword.as_str());
            if !known {
                report.mismatch(
                    crd,
                    path,
                    format!("keyword {keyword} set by {key} is not compared (missing in {side}?)"),
                );
            }
        }
    }

    let nullable =
        |o: &serde_json::Map<String, Value>| o.get("nullable") == Some(&Value::Bool(true));
    if nullable(up_obj) != nullable(our_obj) {
        report.mismatch(
            crd,
            path,
            format!(
                "nullable: upstream {}, ours {}",
                nullable(up_obj),
                nullable(our_obj)
            ),
        );
    }

    let (up_req, our_req) = (
        string_set(up_obj.get("required")),
        string_set(our_obj.get("required")),
    );
    if up_req != our_req {
        report.mismatch(
            crd,
            path,
            format!("required: upstream {up_req:?}, ours {our_req:?}"),
        );
    }

    let (up_cel, our_cel) = (
        validations(up_obj.get("x-kubernetes-validations")),
        validations(our_obj.get("x-kubernetes-validations")),
    );
    for rule in up_cel.difference(&our_cel) {
        report.mismatch(
            crd,
            path,
            format!("x-kubernetes-validations: missing {{{rule}}}"),
        );
    }
    for rule in our_cel.difference(&up_cel) {
        report.mismatch(
            crd,
            path,
            format!("x-kubernetes-validations: ours adds {{{rule}}}"),
        );
    }

    // properties
    let empty = serde_json::Map::new();
    let up_props = up_obj
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let our_props = our_obj
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, up_prop) in up_props {
        let sub = join(path, name);
        match our_props.get(name) {
            Some(our_prop) => compare_schema(crd, &sub, up_prop, our_prop, report),
            None => report.mismatch(crd, &sub, "missing in ours"),
        }
    }
    for name in our_props.keys().filter(|n| !up_props.contains_key(*n)) {
        report.extras.push(format!("{crd}: {}", join(path, name)));
    }

    // items and additionalProperties
    for (keyword, suffix) in [("items", "[]"), ("additionalProperties", "{}")] {
        let sub = format!("{path}{suffix}");
        match (up_obj.get(keyword), our_obj.get(keyword)) {
            (None, None) => {}
            (Some(a @ Value::Object(_)), Some(b @ Value::Object(_))) => {
                compare_schema(crd, &sub, a, b, report)
            }
            (a, b) if a.is_some_and(|a| b.is_some_and(|b| a == b)) => {}
            (a, b) => report.mismatch(
                crd,
                path,
                format!("{keyword}: upstream {}, ours {}", show(a), show(b)),
            ),
        }
    }
}

fn compare_crd(up: &Value, ours: &Value, report: &mut Report) {
    let crd = up["metadata"]["name"].as_str().unwrap_or("?").to_string();
    let crd = crd.as_str();
    let field = |path: &str, a: Option<&Value>, b: Option<&Value>, report: &mut Report| {
        let same = match (a, b) {
            (Some(a), Some(b)) => same_value(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            report.mismatch(crd, path, format!("upstream {}, ours {}", show(a), show(b)));
        }
    };
    let (us, os) = (&up["spec"], &ours["spec"]);
    field("(crd) spec.group", us.get("group"), os.get("group"), report);
    field("(crd) spec.scope", us.get("scope"), os.get("scope"), report);
    let kind = us["names"]["kind"].as_str().unwrap_or_default();
    let defaults = BTreeMap::from([
        ("listKind", Value::from(format!("{kind}List"))),
        ("singular", Value::from(kind.to_lowercase())),
    ]);
    for key in [
        "kind",
        "plural",
        "singular",
        "listKind",
        "shortNames",
        "categories",
    ] {
        // kube-apiserver fills in listKind and singular when unset.
        let get = |names: &Value| {
            names
                .get(key)
                .cloned()
                .or_else(|| defaults.get(key).cloned())
        };
        field(
            &format!("(crd) spec.names.{key}"),
            get(&us["names"]).as_ref(),
            get(&os["names"]).as_ref(),
            report,
        );
    }
    if us.get("conversion").is_some() || os.get("conversion").is_some() {
        field(
            "(crd) spec.conversion",
            us.get("conversion"),
            os.get("conversion"),
            report,
        );
    }

    let versions = |s: &Value| -> BTreeMap<String, Value> {
        s["versions"]
            .as_array()
            .map(|vs| {
                vs.iter()
                    .map(|v| {
                        (
                            v["name"].as_str().unwrap_or_default().to_string(),
                            v.clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (up_versions, our_versions) = (versions(us), versions(os));
    for (name, uv) in &up_versions {
        let Some(ov) = our_versions.get(name) else {
            report.mismatch(crd, &format!("(crd) version {name}"), "missing in ours");
            continue;
        };
        let at = |k: &str| format!("(crd) versions[{name}].{k}");
        for key in [
            "served",
            "storage",
            "deprecated",
            "deprecationWarning",
            "selectableFields",
        ] {
            field(&at(key), uv.get(key), ov.get(key), report);
        }
        // Printer columns: order matters (it is the column order of `kubectl get`).
        let columns = |v: &Value| -> Vec<Value> {
            v.get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .map(|c| {
                            let mut c = c.clone();
                            if let Some(c) = c.as_object_mut() {
                                c.remove("description");
                                if c.get("priority").is_some_and(|p| p == 0) {
                                    c.remove("priority");
                                }
                            }
                            c
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let (uc, oc) = (Value::from(columns(uv)), Value::from(columns(ov)));
        field(
            &at("additionalPrinterColumns"),
            Some(&uc),
            Some(&oc),
            report,
        );
        // Subresources: status present alike, scale paths equal.
        let status = |v: &Value| v["subresources"].get("status").is_some();
        if status(uv) != status(ov) {
            report.mismatch(
                crd,
                &at("subresources.status"),
                format!("upstream {}, ours {}", status(uv), status(ov)),
            );
        }
        for key in [
            "specReplicasPath",
            "statusReplicasPath",
            "labelSelectorPath",
        ] {
            field(
                &at(&format!("subresources.scale.{key}")),
                uv["subresources"]["scale"].get(key),
                ov["subresources"]["scale"].get(key),
                report,
            );
        }
        compare_schema(
            crd,
            "",
            root_schema(up, name),
            root_schema(ours, name),
            report,
        );
    }
    for name in our_versions
        .keys()
        .filter(|n| !up_versions.contains_key(*n))
    {
        report.mismatch(crd, &format!("(crd) version {name}"), "only in ours");
    }
}

#[test]
fn crds_cover_upstream_schemas() {
    let ours = ours();
    assert_eq!(
        ours.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        UPSTREAM.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "crd_documents() must produce exactly the three admitted kinds"
    );
    let mut report = Report::default();
    for (name, our) in &ours {
        compare_crd(&upstream(name), our, &mut report);
    }
    if !report.extras.is_empty() {
        eprintln!(
            "fields only in wasmgate's CRDs (allowed):\n  {}",
            report.extras.join("\n  ")
        );
    }
    assert!(
        report.mismatches.is_empty(),
        "{} differences from upstream's CRDs (fix the types in crates/core/src/crd/):\n  {}",
        report.mismatches.len(),
        report.mismatches.join("\n  ")
    );
}

/// The comparison itself finds differences (guards against a walk that compares nothing).
#[test]
fn comparison_detects_differences() {
    let name = "workloads.runtime.wasmcloud.dev";
    let up = upstream(name);
    let mut changed = our_crd(name);
    let spec =
        &mut changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let props = spec["properties"].as_object_mut().expect("spec properties");
    props.remove("hostId");
    props.insert("extraField".into(), serde_json::json!({"type": "string"}));
    let hi = &mut props["hostInterfaces"];
    hi["maxItems"] = 63.into();
    hi["items"]["properties"]["interfaces"]["type"] = "string".into();
    hi["items"]["required"] = serde_json::json!(["namespace"]);
    hi["x-kubernetes-validations"][0]["message"] = "changed".into();
    props["components"]["items"]["properties"]["poolSize"]["nullable"] = true.into();
    changed["spec"]["versions"][0]["subresources"]
        .as_object_mut()
        .expect("subresources")
        .remove("status");

    let mut report = Report::default();
    compare_crd(&up, &changed, &mut report);
    let all = report.mismatches.join("\n");
    for expected in [
        "spec.hostId: missing in ours",
        "spec.hostInterfaces: maxItems",
        "spec.hostInterfaces[].interfaces: type",
        "spec.hostInterfaces[]: required",
        "spec.hostInterfaces: x-kubernetes-validations: missing",
        "spec.components[].poolSize: nullable",
        "subresources.status",
    ] {
        assert!(
            all.contains(expected),
            "expected a mismatch {expected:?} in:\n{all}"
        );
    }
    assert_eq!(report.extras, vec![format!("{name}: spec.extraField")]);
}

// ---------------------------------------------------------------------------------------------
// 3. Structural schema rules (what kube-apiserver enforces on a CRD's schema)
// ---------------------------------------------------------------------------------------------

fn structural_problems(path: &str, schema: &Value, at_root: bool, problems: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        problems.push(format!("{}: schema is not an object", display_path(path)));
        return;
    };
    let here = display_path(path);
    for forbidden in [
        "$ref",
        "$schema",
        "$defs",
        "definitions",
        "anyOf",
        "oneOf",
        "allOf",
        "not",
    ] {
        if obj.contains_key(forbidden) {
            problems.push(format!(
                "{here}: {forbidden} (not allowed in a structural schema here)"
            ));
        }
    }
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    match obj.get("type") {
        Some(Value::String(t)) => {
            if !["object", "array", "string", "integer", "number", "boolean"].contains(&t.as_str())
            {
                problems.push(format!("{here}: unknown type {t}"));
            }
            let wants = |k: &str| obj.contains_key(k);
            if (wants("properties") || wants("additionalProperties")) && t != "object" {
                problems.push(format!("{here}: properties on a {t}"));
            }
            if wants("items") && t != "array" {
                problems.push(format!("{here}: items on a {t}"));
            }
            if t == "array" && !wants("items") {
                problems.push(format!("{here}: array without items"));
            }
        }
        Some(other) => problems.push(format!("{here}: type must be one string, is {other}")),
        None if int_or_string || preserve => {}
        None => problems.push(format!("{here}: no type")),
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        problems.push(format!(
            "{here}: properties and additionalProperties together"
        ));
    }
    if let Some(ap) = obj.get("additionalProperties") {
        match ap {
            Value::Object(_) => structural_problems(&format!("{path}{{}}"), ap, false, problems),
            other => problems.push(format!(
                "{here}: additionalProperties must be a schema, is {other}"
            )),
        }
    }
    if let Some(items) = obj.get("items") {
        structural_problems(&format!("{path}[]"), items, false, problems);
    }
    if at_root && obj.get("type").and_then(Value::as_str) != Some("object") {
        problems.push("<root>: must be type object".into());
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            if at_root && name == "metadata" {
                // Only name/generateName may be restricted under metadata.
                let keys: BTreeSet<&str> = prop
                    .as_object()
                    .map(|o| o.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                if !keys.is_subset(&BTreeSet::from(["type", "description", "properties"])) {
                    problems.push(format!(
                        "metadata: only type/properties allowed, has {keys:?}"
                    ));
                }
            }
            structural_problems(&join(path, name), prop, false, problems);
        }
    }
    if let Some(rules) = obj.get("x-kubernetes-validations") {
        let ok = rules.as_array().is_some_and(|rs| {
            rs.iter().all(|r| {
                r.get("rule")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
            })
        });
        if !ok {
            problems.push(format!(
                "{here}: x-kubernetes-validations entries need a rule"
            ));
        }
    }
    if let Some(default) = obj.get("default") {
        let mut errors = Vec::new();
        validate(schema, default, path, &mut errors);
        for e in errors {
            problems.push(format!("{here}: default does not validate: {e}"));
        }
    }
}

#[test]
fn generated_crds_are_structural() {
    let mut problems = Vec::new();
    for (name, crd) in ours() {
        for version in crd["spec"]["versions"].as_array().into_iter().flatten() {
            let mut found = Vec::new();
            structural_problems("", &version["schema"]["openAPIV3Schema"], true, &mut found);
            problems.extend(found.into_iter().map(|p| format!("{name}: {p}")));
        }
    }
    // The same checks pass on upstream's CRDs (so the checker itself is sound).
    for (name, _) in UPSTREAM {
        let up = upstream(name);
        let mut found = Vec::new();
        structural_problems("", root_schema(&up, "v1alpha1"), true, &mut found);
        assert!(
            found.is_empty(),
            "checker rejects upstream {name}: {found:?}"
        );
    }
    assert!(
        problems.is_empty(),
        "not a structural schema:\n  {}",
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// 4. A small OpenAPI validator (the subset these schemas use; CEL rules are not evaluated)
// ---------------------------------------------------------------------------------------------

/// Validates `value` against `schema` the way kube-apiserver does for the keywords these CRDs
/// use. Fields a schema does not know are pruned, not errors. Errors are `path: keyword`.
fn validate(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let here = display_path(path);
    if value.is_null() {
        // kube-apiserver drops nulls of non-nullable fields.
        return;
    }
    let num = |k: &str| schema.get(k).and_then(Value::as_f64);
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let Some(obj) = value.as_object() else {
                errors.push(format!("{here}: type"));
                return;
            };
            for required in string_set(schema.get("required")) {
                if !obj.contains_key(&required) {
                    errors.push(format!("{}: required", join(path, &required)));
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            for (key, v) in obj {
                if let Some(prop) = props.and_then(|p| p.get(key)) {
                    validate(prop, v, &join(path, key), errors);
                } else if let Some(ap @ Value::Object(_)) = schema.get("additionalProperties") {
                    validate(ap, v, &format!("{path}{{{key}}}"), errors);
                }
            }
        }
        Some("array") => {
            let Some(items) = value.as_array() else {
                errors.push(format!("{here}: type"));
                return;
            };
            if num("minItems").is_some_and(|m| (items.len() as f64) < m) {
                errors.push(format!("{here}: minItems"));
            }
            if num("maxItems").is_some_and(|m| (items.len() as f64) > m) {
                errors.push(format!("{here}: maxItems"));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Some("string") => {
            let Some(s) = value.as_str() else {
                errors.push(format!("{here}: type"));
                return;
            };
            let len = s.chars().count() as f64;
            if num("maxLength").is_some_and(|m| len > m) {
                errors.push(format!("{here}: maxLength"));
            }
            if num("minLength").is_some_and(|m| len < m) {
                errors.push(format!("{here}: minLength"));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                let re = regex::Regex::new(pattern)
                    .unwrap_or_else(|e| panic!("{here}: pattern {pattern:?}: {e}"));
                if !re.is_match(s) {
                    errors.push(format!("{here}: pattern"));
                }
            }
            let date_time = regex::Regex::new(
                r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
            )
            .expect("date-time regex");
            if schema.get("format").and_then(Value::as_str) == Some("date-time")
                && !date_time.is_match(s)
            {
                errors.push(format!("{here}: format"));
            }
        }
        Some("integer") => {
            let Some(n) = value.as_i64() else {
                errors.push(format!("{here}: type"));
                return;
            };
            if num("minimum").is_some_and(|m| (n as f64) < m) {
                errors.push(format!("{here}: minimum"));
            }
            if num("maximum").is_some_and(|m| (n as f64) > m) {
                errors.push(format!("{here}: maximum"));
            }
            if schema.get("format").and_then(Value::as_str) == Some("int32")
                && i32::try_from(n).is_err()
            {
                errors.push(format!("{here}: format"));
            }
        }
        Some("boolean") if !value.is_boolean() => errors.push(format!("{here}: type")),
        Some("number") if !value.is_number() => errors.push(format!("{here}: type")),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Realistic objects through both schemas and the Rust types
// ---------------------------------------------------------------------------------------------

/// The example of spec/wasmcloud-v2.md section 1.9, verbatim.
const DOC_EXAMPLE_DEPLOYMENT: &str = r#"
apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: WorkloadDeployment
metadata: { name: shop-api, namespace: team-a }
spec:
  replicas: 2                      # default 1
  deployPolicy: RollingUpdate      # or Recreate; default RollingUpdate
  artifacts:
    - name: api                    # referenced as image: artifact://api
      artifactFrom: { name: shop-api-artifact }
  kubernetes:
    service: { name: shop-api }    # operator maintains an EndpointSlice for this Service
  template:
    labels: { app: shop-api }      # NOT template.metadata.labels
    spec:
      hostSelector: { hostgroup: default }
      hostInterfaces:
        - { namespace: wasi, package: http, interfaces: [incoming-handler], config: { host: shop.example.test } }
        - { namespace: wasi, package: keyvalue, version: 0.2.0-draft, interfaces: [store, atomics] }
        - name: orders-db                          # named => routes an (implements orders-db) import
          namespace: wasmcloud
          package: postgres
          version: "0.2.0"
          interfaces: [query, types]
          secretFrom: [ { name: orders-db-url } ]  # supplies key `url`
      components:
        - name: api
          image: artifact://api
          poolSize: 4
          maxConcurrency: 2
          localResources:
            environment:
              config: { LOG_LEVEL: debug }
              configFrom: [ { name: api-env } ]
            allowedHosts: ["https://*.payments.example.test"]
            volumeMounts: [ { name: scratch, mountPath: /tmp/scratch } ]
      volumes:
        - { name: scratch, ephemeral: {} }
"#;

/// A Workload as the replica set controller creates it, with every spec field and a status.
const FULL_WORKLOAD: &str = r#"
apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: Workload
metadata:
  name: shop-api-6d9f7-x2k4q
  namespace: team-a
  labels:
    app: shop-api
    runtime.wasmcloud.dev/workload-replica-set: shop-api-6d9f7
  annotations:
    runtime.wasmcloud.dev/workload-replica-set-generation: 6d9f7c5b4
    wit.wasmgate.dev/api: "package shop:api; world api { export wasi:http/incoming-handler@0.2.6; }"
spec:
  hostId: 6f0c1e2a-5b7d-4e8f-9a01-23456789abcd
  environment: team-a
  hostSelector:
    hostgroup: default
    zone: eu-1
  hostInterfaces:
    - namespace: wasi
      package: http
      interfaces: [incoming-handler]
      config: { host: shop.example.test }
    - name: cache
      namespace: wasi
      package: keyvalue
      version: 0.2.0-draft
      interfaces: [store, atomics, batch]
      config: { bucket: shop }
      configFrom: [ { name: kv-settings } ]
      secretFrom: [ { name: kv-credentials } ]
  components:
    - name: api
      image: ghcr.io/example/shop-api:1.4.2
      imagePullPolicy: IfNotPresent
      imagePullSecret: { name: ghcr-pull }
      poolSize: 0
      maxInvocations: 1000
      maxConcurrency: 8
      localResources:
        volumeMounts:
          - { name: scratch, mountPath: /tmp/scratch }
          - { name: certs, mountPath: /etc/certs, readOnly: true }
        environment:
          config: { LOG_LEVEL: info, REGION: eu-1 }
          configFrom: [ { name: api-env }, { name: api-env-overrides } ]
          secretFrom: [ { name: api-secrets } ]
        config: { max-body-bytes: "1048576" }
        allowedHosts:
          - "*"
          - example.com:8443
          - https://api.example.com/
          - "*.example.com"
          - https://*.payments.example.test:8443/
        allowedIpNameLookups: ["*.wasmcloud.io", api.example.com, 10.0.0.1, "::1"]
        allowedHostLoopbackPorts: ["5432", 6379/tcp, 53/udp]
    - name: pricing
      image: ghcr.io/example/pricing@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  service:
    image: ghcr.io/example/shop-gateway:0.3.0
    imagePullPolicy: Always
    imagePullSecret: { name: ghcr-pull }
    maxRestarts: 0
    localResources:
      allowedHostLoopbackPorts: ["8080"]
  volumes:
    - { name: scratch, ephemeral: {} }
    - name: certs
      hostPath: { path: /etc/ssl/certs }
  kubernetes:
    service: { name: shop-api }
status:
  hostId: 6f0c1e2a-5b7d-4e8f-9a01-23456789abcd
  environment: team-a
  workloadId: 01J9Z8Q6V7W8X9Y0Z1A2B3C4D5
  conditions:
    - type: Sync
      status: "True"
      reason: Available
      lastTransitionTime: "2026-08-20T10:00:00Z"
    - type: Ready
      status: "False"
      reason: Reconcile
      message: "requested interfaces that are not available on this host"
      observedGeneration: 3
      lastTransitionTime: "2026-08-20T10:00:05Z"
      lastProbeTime: "2026-08-20T10:01:05Z"
"#;

/// A replica set with annotations on the template and a status.
const REPLICA_SET: &str = r#"
apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: WorkloadReplicaSet
metadata:
  name: shop-api-6d9f7
  namespace: team-a
  labels: { runtime.wasmcloud.dev/workload-deployment: shop-api }
spec:
  replicas: 3
  template:
    annotations: { example.com/owner: team-a }
    labels: { app: shop-api }
    spec:
      hostSelector: { hostgroup: default }
      components:
        - name: hello
          image: ghcr.io/wasmcloud/components/http-hello-world-rust:0.1.0
      hostInterfaces:
        - { namespace: wasi, package: http, interfaces: [incoming-handler], config: { host: hello.example.test } }
status:
  replicas: { expected: 3, current: 3, ready: 2, unavailable: 1 }
  conditions:
    - { type: ScaleUp, status: "True", reason: Available }
    - { type: Ready, status: Unknown, reason: Reconcile, message: "status unknown: waiting for replicas" }
"#;

/// A deployment mid-rollout, with the scale subresource's status fields.
const DEPLOYMENT_STATUS: &str = r#"
apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: WorkloadDeployment
metadata: { name: hello, namespace: default }
spec:
  deployPolicy: Recreate
  template:
    spec:
      components:
        - { name: hello, image: ghcr.io/wasmcloud/components/http-hello-world-rust:0.1.0 }
status:
  currentReplicaSet: { name: hello-7c9d8 }
  previousReplicaSet: { name: hello-5b6a4 }
  replicas: { expected: 1, current: 2, ready: 1, unavailable: 1 }
  currentReplicas: 2
  selector: runtime.wasmcloud.dev/workload-deployment=hello
  conditions:
    - { type: Deploy, status: "True", reason: Available }
"#;

fn schemas_for(kind: &str) -> (Value, Value) {
    let name = match kind {
        "Workload" => "workloads.runtime.wasmcloud.dev",
        "WorkloadReplicaSet" => "workloadreplicasets.runtime.wasmcloud.dev",
        "WorkloadDeployment" => "workloaddeployments.runtime.wasmcloud.dev",
        other => panic!("unexpected kind {other}"),
    };
    (
        root_schema(&upstream(name), "v1alpha1").clone(),
        root_schema(&our_crd(name), "v1alpha1").clone(),
    )
}

/// Deserializes through the Rust type and serializes back.
fn round_trip(object: &Value) -> Value {
    let kind = object["kind"].as_str().unwrap_or_default();
    let back = match kind {
        "Workload" => serde_json::from_value::<Workload>(object.clone()).map(serde_json::to_value),
        "WorkloadReplicaSet" => {
            serde_json::from_value::<WorkloadReplicaSet>(object.clone()).map(serde_json::to_value)
        }
        "WorkloadDeployment" => {
            serde_json::from_value::<WorkloadDeployment>(object.clone()).map(serde_json::to_value)
        }
        other => panic!("unexpected kind {other}"),
    };
    back.unwrap_or_else(|e| panic!("{kind} does not deserialize: {e}"))
        .unwrap_or_else(|e| panic!("{kind} does not serialize: {e}"))
}

/// Leaves of `input` that are missing or changed in `output`.
fn lost_fields(path: &str, input: &Value, output: Option<&Value>, lost: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(a), Some(Value::Object(b))) => {
            for (k, v) in a {
                lost_fields(&join(path, k), v, b.get(k), lost);
            }
        }
        (Value::Array(a), Some(Value::Array(b))) if a.len() == b.len() => {
            for (i, v) in a.iter().enumerate() {
                lost_fields(&format!("{path}[{i}]"), v, b.get(i), lost);
            }
        }
        (a, Some(b)) if same_value(a, b) => {}
        (a, b) => lost.push(format!("{}: in {a}, out {}", display_path(path), show(b))),
    }
}

#[test]
fn examples_round_trip() {
    for (label, text) in [
        ("wasmcloud-v2.md 1.9 deployment", DOC_EXAMPLE_DEPLOYMENT),
        ("full workload", FULL_WORKLOAD),
        ("replica set", REPLICA_SET),
        ("deployment status", DEPLOYMENT_STATUS),
    ] {
        let object = yaml(text);
        let kind = object["kind"].as_str().unwrap_or_default();
        let (up, ours) = schemas_for(kind);
        let (mut up_errors, mut our_errors) = (Vec::new(), Vec::new());
        validate(&up, &object, "", &mut up_errors);
        validate(&ours, &object, "", &mut our_errors);
        assert!(
            up_errors.is_empty(),
            "{label}: upstream's schema rejects the example: {up_errors:?}"
        );
        assert!(
            our_errors.is_empty(),
            "{label}: our schema rejects it: {our_errors:?}"
        );

        let back = round_trip(&object);
        let mut lost = Vec::new();
        lost_fields("", &object, Some(&back), &mut lost);
        assert!(
            lost.is_empty(),
            "{label}: the Rust types lose fields:\n  {}",
            lost.join("\n  ")
        );
        // Nothing is invented either (no nulls, no defaults filled in by serde).
        let mut invented = Vec::new();
        lost_fields("", &back, Some(&object), &mut invented);
        assert!(
            invented.is_empty(),
            "{label}: serialization adds fields:\n  {}",
            invented.join("\n  ")
        );

        // YAML straight into the types (as `wasmgate check` reads files) gives the same object.
        let direct = match kind {
            "Workload" => serde_saphyr::from_str::<Workload>(text).map(serde_json::to_value),
            "WorkloadReplicaSet" => {
                serde_saphyr::from_str::<WorkloadReplicaSet>(text).map(serde_json::to_value)
            }
            _ => serde_saphyr::from_str::<WorkloadDeployment>(text).map(serde_json::to_value),
        };
        let direct = direct
            .unwrap_or_else(|e| panic!("{label}: YAML does not deserialize: {e}"))
            .expect("serializes");
        assert_eq!(direct, back, "{label}: YAML and JSON decoding differ");
    }
}

#[test]
fn section_1_9_example_reads_as_documented() {
    let d: WorkloadDeployment = serde_saphyr::from_str(DOC_EXAMPLE_DEPLOYMENT).expect("example");
    assert_eq!(d.spec.replicas, Some(2));
    assert_eq!(d.spec.deploy_policy.as_deref(), Some("RollingUpdate"));
    let artifacts = d.spec.artifacts.as_deref().unwrap_or_default();
    assert_eq!(artifacts[0].artifact_from.name, "shop-api-artifact");
    let spec = &d.spec.template.spec;
    let interfaces = spec.host_interfaces.as_deref().unwrap_or_default();
    assert_eq!(interfaces.len(), 3);
    assert_eq!(interfaces[1].version.as_deref(), Some("0.2.0-draft"));
    assert_eq!(interfaces[2].name.as_deref(), Some("orders-db"));
    assert_eq!(interfaces[2].version.as_deref(), Some("0.2.0"));
    let secret = &interfaces[2].secret_from.as_deref().unwrap_or_default()[0];
    assert_eq!(secret.name, "orders-db-url");
    let component = &spec.components.as_deref().unwrap_or_default()[0];
    assert_eq!(
        (component.pool_size, component.max_concurrency),
        (Some(4), Some(2))
    );
    let volumes = spec.volumes.as_deref().unwrap_or_default();
    assert!(volumes[0].ephemeral.is_some() && volumes[0].host_path.is_none());
}

/// Objects upstream rejects are rejected by ours at the same paths for the same reasons.
#[test]
fn invalid_examples_rejected_alike() {
    let cases = [
        (
            "bad hostInterface name, empty interfaces, long namespace",
            r#"
apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: Workload
metadata: { name: w }
spec:
  hostInterfaces:
    - { name: Orders_DB, namespace: wasmcloud, package: postgres, interfaces: [] }
    - { namespace: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", package: p, interfaces: [i] }
    - { package: p, interfaces: [i] }
"#,
        ),
        (
            "egress entries with paths, negative pool size, missing image",
            r#"
apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: Workload
metadata: { name: w }
spec:
  components:
    - name: api
      poolSize: -1
      localResources:
        allowedHosts: [example.com/v1, "*foo", "https://example.com/v1"]
        allowedIpNameLookups: ["https://example.com"]
        allowedHostLoopbackPorts: ["5432-5440", "53/sctp"]
        volumeMounts: [ { name: scratch } ]
  volumes:
    - { hostPath: {} }
"#,
        ),
        (
            "template without spec, artifact without reference, string replicas",
            r#"
apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: WorkloadDeployment
metadata: { name: d }
spec:
  replicas: "2"
  artifacts: [ { name: api } ]
  template: { labels: { app: x } }
"#,
        ),
        (
            "replica set without template, bad condition time",
            r#"
apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: WorkloadReplicaSet
metadata: { name: r }
spec: { replicas: 1 }
status:
  conditions: [ { type: Ready, lastTransitionTime: yesterday } ]
"#,
        ),
    ];
    for (label, text) in cases {
        let object = yaml(text);
        let (up, ours) = schemas_for(object["kind"].as_str().unwrap_or_default());
        let (mut up_errors, mut our_errors) = (Vec::new(), Vec::new());
        validate(&up, &object, "", &mut up_errors);
        validate(&ours, &object, "", &mut our_errors);
        up_errors.sort();
        our_errors.sort();
        assert!(!up_errors.is_empty(), "{label}: upstream accepts it");
        assert_eq!(up_errors, our_errors, "{label}: rejected differently");
    }
}

/// Upstream accepts objects without `spec` (kube-apiserver stores them as sent); `decode_object`
/// reads them, where plain serde would fail on the derived root types.
#[test]
fn objects_without_spec_decode() {
    for kind in ["Workload", "WorkloadReplicaSet", "WorkloadDeployment"] {
        for spec in [None, Some(Value::Null)] {
            let mut object = serde_json::json!({
                "apiVersion": "runtime.wasmcloud.dev/v1alpha1",
                "kind": kind,
                "metadata": { "name": "no-spec", "namespace": "default" },
            });
            if let Some(spec) = spec.clone() {
                object["spec"] = spec;
            }
            let (up, ours) = schemas_for(kind);
            let (mut up_errors, mut our_errors) = (Vec::new(), Vec::new());
            validate(&up, &object, "", &mut up_errors);
            validate(&ours, &object, "", &mut our_errors);
            assert!(
                up_errors.is_empty() && our_errors.is_empty(),
                "{kind}: valid upstream"
            );
            let decoded = match kind {
                "Workload" => {
                    decode_object::<Workload>(object).map(|w| w.spec.components.is_none())
                }
                "WorkloadReplicaSet" => decode_object::<WorkloadReplicaSet>(object)
                    .map(|r| r.spec.template.spec.components.is_none()),
                _ => decode_object::<WorkloadDeployment>(object)
                    .map(|d| d.spec.template.spec.components.is_none()),
            };
            assert!(
                decoded.unwrap_or_else(|e| panic!("{kind} without spec ({spec:?}): {e}")),
                "{kind}: an absent spec decodes as an empty one"
            );
        }
    }
    // With a spec, decode_object is plain serde.
    let object = yaml(FULL_WORKLOAD);
    let via_helper = decode_object::<Workload>(object.clone()).expect("decodes");
    let via_serde: Workload = serde_json::from_value(object).expect("decodes");
    assert_eq!(via_helper.spec, via_serde.spec);
    assert_eq!(via_helper.status, via_serde.status);
}
