//! JSON Schemas of the wasmCloud kinds wasmgate admits and of wasmgate's own Host, in the
//! layout kubeconform reads (`{group}/{kind}_{version}.json`, kind in lower case, as in the
//! CRDs-catalog), so `kubeconform -schema-location default -schema-location
//! 'schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json'` validates them.
//!
//! Generated from the Rust types: the wasmCloud kinds from the CRDs of [`crate::crd::crds`]
//! (the `openAPIV3Schema` of the served version, converted the way kubeconform's
//! `openapi2jsonschema.py` converts CRDs: objects with `properties` get
//! `additionalProperties: false` unless they set it or preserve unknown fields), Host from its
//! schemars derive. `schemas/` holds [`documents`]; `tests/check_cli.rs` fails when it drifts
//! (`WASMGATE_UPDATE_SCHEMAS=1 cargo test --test check_cli schemas` regenerates it).

use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use crate::crd::{crds, Host, WASMGATE_GROUP, WASMGATE_VERSION};

/// Adds `additionalProperties: false` where kubectl's client-side validation (and
/// `openapi2jsonschema.py`) would reject unknown fields.
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let preserves = map
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && !preserves
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for v in map.values_mut() {
                strict(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

/// The Host schema: the derive, with the object envelope (`metadata` is a Kubernetes
/// ObjectMeta, left open as the CRD schemas leave it).
fn host_schema() -> Value {
    let generator = SchemaSettings::draft07()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    // A schemars `Schema` is a JSON value already: no serialization step that could fail.
    let mut schema = generator.into_root_schema_for::<Host>().to_value();
    if let Some(map) = schema.as_object_mut() {
        map.remove("$schema");
        map.remove("title");
        map.insert(
            "description".into(),
            json!("Host is a wasmCloud host as wasmgate knows it from its heartbeats (wasmgate.dev/v1alpha1, served by the aggregated API; a superset of upstream's Host)."),
        );
        if let Some(props) = map.get_mut("properties").and_then(Value::as_object_mut) {
            props.insert(
                "apiVersion".into(),
                json!({ "type": "string", "description": "wasmgate.dev/v1alpha1 (upstream's runtime.wasmcloud.dev/v1alpha1 Host objects are read too)." }),
            );
            props.insert(
                "kind".into(),
                json!({ "type": "string", "description": "Host" }),
            );
            props.insert("metadata".into(), json!({ "type": "object" }));
        }
    }
    strict(&mut schema);
    schema
}

/// Every schema as (relative path under `schemas/`, JSON Schema), in a stable order.
///
/// Fails only if a CRD schema does not serialize (it holds only strings, numbers, booleans and
/// string-keyed maps, so it does not).
pub fn schemas() -> Result<Vec<(String, Value)>, serde_json::Error> {
    let mut out = Vec::new();
    for crd in crds() {
        let group = crd.spec.group.clone();
        let kind = crd.spec.names.kind.to_lowercase();
        for version in &crd.spec.versions {
            let Some(schema) = version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
            else {
                continue;
            };
            let mut value = serde_json::to_value(schema)?;
            strict(&mut value);
            out.push((format!("{group}/{kind}_{}.json", version.name), value));
        }
    }
    out.push((
        format!("{WASMGATE_GROUP}/host_{WASMGATE_VERSION}.json"),
        host_schema(),
    ));
    Ok(out)
}

/// [`schemas`] as (path, file text): pretty JSON with a trailing newline.
pub fn documents() -> Result<Vec<(String, String)>, serde_json::Error> {
    Ok(schemas()?
        .into_iter()
        // `{:#}` is serde_json's pretty printer, infallible for a `Value`.
        .map(|(path, schema)| (path, format!("{schema:#}\n")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_strictness() {
        let all = schemas().expect("the schemas serialize");
        let paths: Vec<&str> = all.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "runtime.wasmcloud.dev/workload_v1alpha1.json",
                "runtime.wasmcloud.dev/workloadreplicaset_v1alpha1.json",
                "runtime.wasmcloud.dev/workloaddeployment_v1alpha1.json",
                "wasmgate.dev/host_v1alpha1.json",
            ]
        );
        let workload = &all[0].1;
        assert_eq!(workload["additionalProperties"], false);
        assert_eq!(
            workload["properties"]["spec"]["additionalProperties"],
            false
        );
        let host = &all[3].1;
        assert_eq!(host["properties"]["metadata"]["type"], "object");
        assert_eq!(host["additionalProperties"], false);
    }
}
