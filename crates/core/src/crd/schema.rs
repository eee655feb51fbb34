//! Shaping of the schemas that schemars and kube derive, so that the CRDs match upstream's
//! (controller-gen) CRDs field for field.
//!
//! Two differences between what the derives produce and what upstream publishes are fixed here:
//!
//! - schemars (OpenAPI 3 settings, as kube uses them) marks every `Option` field `nullable: true`
//!   (or wraps it in `anyOf [T, null]`). Upstream has no nullable fields: an absent field is
//!   "unset", and kube-apiserver drops explicit `null`s. [`omit_null`], a container transform on
//!   every struct, removes the null alternative from the struct's properties.
//! - kube derive makes the root `spec` required, leaves out the `apiVersion`, `kind` and
//!   `metadata` properties, marks `status` nullable, adds a `title` and no `listKind`.
//!   [`finish_crd`] gives the root the shape upstream's has.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use schemars::Schema;
use serde_json::Value;

/// schemars container transform: the optional properties of this struct become "absent or a
/// value" instead of "null or a value". Use as `#[schemars(transform = omit_null)]`.
pub(crate) fn omit_null(schema: &mut Schema) {
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for property in properties.values_mut() {
        strip_null(property);
    }
}

/// Removes the `null` alternative from one schema, in any of the forms schemars emits it.
fn strip_null(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    obj.remove("nullable");
    if let Some(Value::Array(types)) = obj.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            obj.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    // `anyOf: [T, {type: null}]` (schemars' form for references and composite schemas).
    let any_of_non_null = match obj.get("anyOf") {
        Some(Value::Array(alternatives)) => {
            let rest: Vec<&Value> = alternatives.iter().filter(|a| !is_null_schema(a)).collect();
            (rest.len() == 1 && rest.len() < alternatives.len()).then(|| rest[0].clone())
        }
        _ => None,
    };
    if let Some(Value::Object(inner)) = any_of_non_null {
        obj.remove("anyOf");
        for (key, value) in inner {
            // Keywords set on the field itself (description, default, ...) win.
            obj.entry(key).or_insert(value);
        }
    }
}

fn is_null_schema(schema: &Value) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "null",
        _ => schema.get("nullable") == Some(&Value::Bool(true)) && schema.get("enum").is_some(),
    }
}

/// Gives a derived CRD the top-level shape of upstream's: `listKind`, no `title`, the standard
/// `apiVersion`/`kind`/`metadata` properties, `spec` optional, `status` not nullable.
pub(crate) fn finish_crd(crd: &mut CustomResourceDefinition) {
    let names = &mut crd.spec.names;
    if names.list_kind.is_none() {
        names.list_kind = Some(format!("{}List", names.kind));
    }
    for version in &mut crd.spec.versions {
        let Some(root) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        root.title = None;
        // Upstream's `spec` is `omitempty`: an object without it is valid (every spec field is
        // optional in Workload; the others fail on their own required fields).
        root.required = None;
        let properties = root.properties.get_or_insert_with(BTreeMap::new);
        for property in properties.values_mut() {
            property.nullable = None;
        }
        properties.insert(
            "apiVersion".into(),
            string_property(API_VERSION_DESCRIPTION),
        );
        properties.insert("kind".into(), string_property(KIND_DESCRIPTION));
        properties.insert(
            "metadata".into(),
            JSONSchemaProps {
                type_: Some("object".into()),
                ..Default::default()
            },
        );
    }
}

fn string_property(description: &str) -> JSONSchemaProps {
    JSONSchemaProps {
        description: Some(description.into()),
        type_: Some("string".into()),
        ..Default::default()
    }
}

const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object.
Servers should convert recognized schemas to the latest internal value, and
may reject unrecognized values.
More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";

const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents.
Servers may infer this from the endpoint the client submits requests to.
Cannot be updated.
In CamelCase.
More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
