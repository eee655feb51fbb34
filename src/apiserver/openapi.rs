//! OpenAPI documents for `kubectl explain` and the aggregator: `/openapi/v3` (discovery),
//! `/openapi/v3/apis/wasmgate.dev/v1alpha1` (OpenAPI 3.0) and `/openapi/v2` (Swagger 2.0, which the
//! aggregator merges, keeping paths under `/apis/wasmgate.dev/v1alpha1/` and the definitions they
//! reference).
//!
//! The Host schema is derived from the Rust type (schemars), so it cannot drift; `metadata`
//! references `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta` (k8s-openapi's schema), and Host
//! and HostList carry `x-kubernetes-group-version-kind`, which is how kubectl finds a kind.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, ObjectMeta};
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use crate::crd::resolution::{self as wr, WorkloadResolution};
use crate::crd::Host;

use super::{GROUP, KIND, LIST_KIND, RESOURCE, VERSION};

const V3_PREFIX: &str = "#/components/schemas/";
const V2_PREFIX: &str = "#/definitions/";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";

fn local_name(kind: &str) -> String {
    format!("dev.wasmgate.{VERSION}.{kind}")
}

fn gvk(kind: &str) -> Value {
    json!([{"group": GROUP, "version": VERSION, "kind": kind}])
}

/// Gives a kind's schema `apiVersion`, `kind`, ObjectMeta `metadata` and its GVK, and adds its
/// list schema.
fn decorate(
    out: &mut Map<String, Value>,
    kind: &str,
    list_kind: &str,
    metadata_doc: &str,
    items_doc: &str,
) {
    let name = local_name(kind);
    if let Some(schema) = out.get_mut(&name).and_then(Value::as_object_mut) {
        let props = schema.entry("properties").or_insert_with(|| json!({}));
        if let Some(props) = props.as_object_mut() {
            props.insert("apiVersion".into(), string_prop(API_VERSION_DOC));
            props.insert("kind".into(), string_prop(KIND_DOC));
            props.insert(
                "metadata".into(),
                json!({
                    "allOf": [{"$ref": format!("{V3_PREFIX}{OBJECT_META}")}],
                    "default": {},
                    "description": format!("{metadata_doc} More info: \
                        https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
                }),
            );
        }
        schema.insert("x-kubernetes-group-version-kind".into(), gvk(kind));
    }
    out.insert(
        local_name(list_kind),
        json!({
            "description": format!("{list_kind} is a list of {kind}."),
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": string_prop(API_VERSION_DOC),
                "kind": string_prop(KIND_DOC),
                "items": {
                    "description": items_doc,
                    "type": "array",
                    "items": {"$ref": format!("{V3_PREFIX}{name}")},
                },
                "metadata": {
                    "allOf": [{"$ref": format!("{V3_PREFIX}{LIST_META}")}],
                    "default": {},
                    "description": "Standard list metadata.",
                },
            },
            "x-kubernetes-group-version-kind": gvk(list_kind),
        }),
    );
}

/// Rewrites every `$ref` through `f`.
fn rewrite_refs(v: &mut Value, f: &dyn Fn(&str) -> String) {
    match v {
        Value::Object(o) => {
            for (k, child) in o.iter_mut() {
                if k == "$ref" {
                    if let Value::String(s) = child {
                        *s = f(s);
                    }
                } else {
                    rewrite_refs(child, f);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| rewrite_refs(c, f)),
        _ => {}
    }
}

/// Removes the "or null" that schemars adds to optional fields (Kubernetes has absent, not null).
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.remove("nullable");
            if let Some(Value::Array(types)) = o.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    o.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(alts)) = o.get("anyOf") {
                let is_null = |a: &Value| {
                    a.get("type") == Some(&json!("null"))
                        || a.get("enum") == Some(&json!([null]))
                        || a.get("const") == Some(&Value::Null)
                };
                let rest: Vec<Value> = alts.iter().filter(|a| !is_null(a)).cloned().collect();
                if rest.len() == 1 && rest.len() < alts.len() {
                    o.remove("anyOf");
                    if let Value::Object(inner) = rest[0].clone() {
                        for (k, val) in inner {
                            o.entry(k).or_insert(val);
                        }
                    }
                }
            }
            o.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn string_prop(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// The component schemas, in OpenAPI 3 form (`#/components/schemas/` references).
pub fn schemas() -> Map<String, Value> {
    let mut generator = SchemaSettings::openapi3().into_generator();
    generator.subschema_for::<Host>();
    generator.subschema_for::<WorkloadResolution>();
    generator.subschema_for::<ObjectMeta>();
    generator.subschema_for::<ListMeta>();
    let defs = generator.take_definitions(true);
    let rename = |name: &str| -> String {
        if name.starts_with("io.k8s.") {
            name.to_string()
        } else {
            local_name(name)
        }
    };
    let mut out = Map::new();
    for (name, mut schema) in defs {
        rewrite_refs(&mut schema, &|r| match r.strip_prefix(V3_PREFIX) {
            Some(n) => format!("{V3_PREFIX}{}", rename(n)),
            None => r.to_string(),
        });
        strip_nulls(&mut schema);
        out.insert(rename(&name), schema);
    }
    decorate(
        &mut out,
        KIND,
        LIST_KIND,
        "Standard object's metadata: the name is the host's friendly name, labels are the \
         host's labels (with hostgroup).",
        "The hosts.",
    );
    decorate(
        &mut out,
        wr::KIND,
        wr::LIST_KIND,
        "Standard object's metadata: the name is `<object>.<kind in lower case>`, the \
         namespace and labels are the object's.",
        "The resolutions.",
    );
    out.insert(
        STATUS.into(),
        json!({
            "description": "Status is a return value for calls that don't return other objects.",
            "type": "object",
            "properties": {
                "apiVersion": string_prop(API_VERSION_DOC),
                "kind": string_prop(KIND_DOC),
                "code": {"type": "integer", "format": "int32", "description": "Suggested HTTP return code for this status, 0 if not set."},
                "message": string_prop("A human-readable description of the status of this operation."),
                "reason": string_prop("A machine-readable description of why this operation is in the \"Failure\" status."),
                "status": string_prop("Status of the operation. One of: \"Success\" or \"Failure\"."),
                "details": {"type": "object", "description": "Extended data associated with the reason."},
                "metadata": {"allOf": [{"$ref": format!("{V3_PREFIX}{LIST_META}")}], "default": {}, "description": "Standard list metadata."},
            },
            "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Status"}],
        }),
    );
    out
}

struct Op {
    method: &'static str,
    action: &'static str,
    verb: &'static str,
    returns: Option<&'static str>,
    body: bool,
    code: &'static str,
}

const COLLECTION_OPS: [Op; 2] = [
    Op {
        method: "get",
        action: "list",
        verb: "list",
        returns: Some(LIST_KIND),
        body: false,
        code: "200",
    },
    Op {
        method: "post",
        action: "post",
        verb: "create",
        returns: Some(KIND),
        body: true,
        code: "201",
    },
];

const ITEM_OPS: [Op; 4] = [
    Op {
        method: "get",
        action: "get",
        verb: "read",
        returns: Some(KIND),
        body: false,
        code: "200",
    },
    Op {
        method: "put",
        action: "put",
        verb: "replace",
        returns: Some(KIND),
        body: true,
        code: "200",
    },
    Op {
        method: "patch",
        action: "patch",
        verb: "patch",
        returns: Some(KIND),
        body: true,
        code: "200",
    },
    Op {
        method: "delete",
        action: "delete",
        verb: "delete",
        returns: Some(KIND),
        body: false,
        code: "200",
    },
];

fn query_param(name: &str, ty: &str, description: &str, v3: bool) -> Value {
    if v3 {
        json!({"name": name, "in": "query", "description": description, "schema": {"type": ty, "uniqueItems": true}})
    } else {
        json!({"name": name, "in": "query", "description": description, "type": ty, "uniqueItems": true})
    }
}

fn list_params(v3: bool) -> Vec<Value> {
    vec![
        query_param("labelSelector", "string", "A selector to restrict the list of returned objects by their labels. Defaults to everything.", v3),
        query_param("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields (metadata.name, metadata.namespace, hostId, hostname, environment, status.ready, status.version).", v3),
        query_param("limit", "integer", "Maximum number of responses to return for a list call; more are available through continue.", v3),
        query_param("continue", "string", "The continue token of a previous, paginated list call.", v3),
        query_param("resourceVersion", "string", "Start a watch after this resource version.", v3),
        query_param("watch", "boolean", "Watch for changes and return them as a stream of add, update, and remove notifications.", v3),
        query_param("allowWatchBookmarks", "boolean", "Request watch events with type BOOKMARK.", v3),
        query_param("sendInitialEvents", "boolean", "With watch=true and resourceVersionMatch=NotOlderThan: start with the current objects, then a bookmark annotated k8s.io/initial-events-end.", v3),
        query_param("timeoutSeconds", "integer", "Timeout for the list/watch call.", v3),
    ]
}

/// The resource an operation is on.
struct Res {
    kind: &'static str,
    list_kind: &'static str,
    plural: &'static str,
    /// Namespaced paths (and the all-namespaces list).
    namespaced: bool,
}

const HOSTS: Res = Res {
    kind: KIND,
    list_kind: LIST_KIND,
    plural: RESOURCE,
    namespaced: false,
};

const RESOLUTIONS: Res = Res {
    kind: wr::KIND,
    list_kind: wr::LIST_KIND,
    plural: wr::RESOURCE,
    namespaced: true,
};

fn operation(res: &Res, op: &Op, v3: bool, collection: bool, all_namespaces: bool) -> Value {
    let kind_path = |k: &str| {
        if v3 {
            format!("{V3_PREFIX}{}", local_name(k))
        } else {
            format!("{V2_PREFIX}{}", local_name(k))
        }
    };
    let scope = match (res.namespaced, all_namespaces) {
        (true, true) => "ForAllNamespaces",
        (true, false) => "Namespaced",
        (false, _) => "",
    };
    let (verb_scope, suffix) = if all_namespaces {
        ("", scope)
    } else {
        (scope, "")
    };
    let op_id = format!(
        "{}{verb_scope}WasmgateDev{}{}{}{suffix}",
        op.verb,
        VERSION[..1].to_uppercase() + &VERSION[1..],
        if collection && op.verb == "delete" {
            "Collection"
        } else {
            ""
        },
        res.kind,
    );
    let mut o = json!({
        "operationId": op_id,
        "tags": [format!("wasmgate_dev_{VERSION}")],
        "description": format!("{} {}", op.verb, res.plural),
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": {"group": GROUP, "version": VERSION, "kind": res.kind},
    });
    let mut params: Vec<Value> = if collection && op.method == "get" {
        list_params(v3)
    } else {
        vec![]
    };
    let responses = match op.returns {
        Some(returns) => {
            let kind = if returns == LIST_KIND {
                res.list_kind
            } else {
                res.kind
            };
            let schema = json!({"$ref": kind_path(kind)});
            if v3 {
                json!({op.code: {"description": "OK", "content": {
                    "application/json": {"schema": schema},
                    "application/yaml": {"schema": schema},
                }}, "401": {"description": "Unauthorized"}})
            } else {
                json!({op.code: {"description": "OK", "schema": schema},
                       "401": {"description": "Unauthorized"}})
            }
        }
        None => json!({"200": {"description": "OK"}}),
    };
    o["responses"] = responses;
    if op.body {
        let schema = json!({"$ref": kind_path(res.kind)});
        if v3 {
            let content = if op.method == "patch" {
                json!({
                    "application/merge-patch+json": {"schema": {"type": "object"}},
                    "application/strategic-merge-patch+json": {"schema": {"type": "object"}},
                    "application/json-patch+json": {"schema": {"type": "array", "items": {"type": "object"}}},
                    "application/apply-patch+yaml": {"schema": {"type": "object"}},
                })
            } else {
                json!({"application/json": {"schema": schema}})
            };
            o["requestBody"] = json!({"required": true, "content": content});
        } else {
            params.push(json!({"name": "body", "in": "body", "required": true,
                               "schema": if op.method == "patch" { json!({"type": "object"}) } else { schema }}));
        }
    }
    if !params.is_empty() {
        o["parameters"] = Value::Array(params);
    }
    if !v3 {
        o["consumes"] = json!(["*/*"]);
        o["produces"] = json!(["application/json", "application/yaml"]);
        o["schemes"] = json!(["https"]);
    }
    o
}

fn path_param(name: &str, description: &str, v3: bool) -> Value {
    if v3 {
        json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string", "uniqueItems": true}})
    } else {
        json!({"name": name, "in": "path", "required": true, "description": description, "type": "string", "uniqueItems": true})
    }
}

fn paths(v3: bool) -> Value {
    let gv = format!("/apis/{GROUP}/{VERSION}");
    let mut out = Map::new();

    // hosts: cluster-scoped, read-write.
    let base = format!("{gv}/{RESOURCE}");
    let mut collection = Map::new();
    for op in &COLLECTION_OPS {
        collection.insert(op.method.into(), operation(&HOSTS, op, v3, true, false));
    }
    let mut item = Map::new();
    for op in &ITEM_OPS {
        item.insert(op.method.into(), operation(&HOSTS, op, v3, false, false));
    }
    item.insert(
        "parameters".into(),
        json!([path_param("name", "name of the Host", v3)]),
    );
    out.insert(base.clone(), Value::Object(collection));
    out.insert(format!("{base}/{{name}}"), Value::Object(item));

    // workloadresolutions: namespaced, read-only (list, get).
    let (list_op, get_op) = (&COLLECTION_OPS[0], &ITEM_OPS[0]);
    let namespace = path_param(
        "namespace",
        "object name and auth scope, such as for teams and projects",
        v3,
    );
    out.insert(
        format!("{gv}/{}", wr::RESOURCE),
        json!({"get": operation(&RESOLUTIONS, list_op, v3, true, true)}),
    );
    out.insert(
        format!("{gv}/namespaces/{{namespace}}/{}", wr::RESOURCE),
        json!({"get": operation(&RESOLUTIONS, list_op, v3, true, false), "parameters": [namespace.clone()]}),
    );
    out.insert(
        format!("{gv}/namespaces/{{namespace}}/{}/{{name}}", wr::RESOURCE),
        json!({
            "get": operation(&RESOLUTIONS, get_op, v3, false, false),
            "parameters": [path_param("name", "name of the WorkloadResolution", v3), namespace],
        }),
    );
    Value::Object(out)
}

/// The OpenAPI 3.0 document of `wasmgate.dev/v1alpha1`.
pub fn v3_document() -> Value {
    json!({
        "openapi": "3.0.0",
        "info": {"title": "wasmgate", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths(true),
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header", "description": "Bearer Token authentication"}},
        },
    })
}

/// `GET /openapi/v3`: where each group-version's document is.
pub fn v3_discovery(hash: &str) -> Value {
    json!({"paths": {
        format!("apis/{GROUP}/{VERSION}"): {
            "serverRelativeURL": format!("/openapi/v3/apis/{GROUP}/{VERSION}?hash={hash}"),
        },
    }})
}

/// Converts OpenAPI 3 schemas to Swagger 2.0 definitions.
fn to_v2(mut v: Value) -> Value {
    rewrite_refs(&mut v, &|r| match r.strip_prefix(V3_PREFIX) {
        Some(n) => format!("{V2_PREFIX}{n}"),
        None => r.to_string(),
    });
    fn unwrap_all_of(v: &mut Value) {
        match v {
            Value::Object(o) => {
                if let Some(Value::Array(all)) = o.get("allOf") {
                    if all.len() == 1 && all[0].get("$ref").is_some() {
                        let r = all[0]["$ref"].clone();
                        o.remove("allOf");
                        o.remove("default");
                        o.insert("$ref".into(), r);
                    }
                }
                o.values_mut().for_each(unwrap_all_of);
            }
            Value::Array(a) => a.iter_mut().for_each(unwrap_all_of),
            _ => {}
        }
    }
    unwrap_all_of(&mut v);
    v
}

/// The Swagger 2.0 document served at `/openapi/v2`.
pub fn v2_document() -> Value {
    json!({
        "swagger": "2.0",
        "info": {"title": "wasmgate", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths(false),
        "definitions": to_v2(Value::Object(schemas())),
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                for (k, c) in o {
                    if k == "$ref" {
                        out.push(c.as_str().unwrap_or_default().to_string());
                    } else {
                        all_refs(c, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|c| all_refs(c, out)),
            _ => {}
        }
    }

    #[test]
    fn v3_is_self_contained_and_explainable() {
        let doc = v3_document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let host = &schemas["dev.wasmgate.v1alpha1.Host"];
        assert_eq!(host["x-kubernetes-group-version-kind"][0]["kind"], "Host");
        assert_eq!(
            host["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert!(host["properties"]["status"].is_object());
        assert!(host["properties"]["hostId"]["description"]
            .as_str()
            .unwrap()
            .contains("UUID"));
        let mut refs = vec![];
        all_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let name = r.strip_prefix(V3_PREFIX).unwrap_or_else(|| panic!("{r}"));
            assert!(schemas.contains_key(name), "dangling {r}");
        }
        let text = doc.to_string();
        assert!(
            !text.contains("\"nullable\""),
            "nullable left in the schema"
        );
    }

    #[test]
    fn v2_uses_definitions() {
        let doc = v2_document();
        let defs = doc["definitions"].as_object().unwrap();
        let mut refs = vec![];
        all_refs(&doc, &mut refs);
        for r in refs {
            let name = r.strip_prefix(V2_PREFIX).unwrap_or_else(|| panic!("{r}"));
            assert!(defs.contains_key(name), "dangling {r}");
        }
        assert_eq!(
            defs["dev.wasmgate.v1alpha1.Host"]["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert!(doc["paths"]["/apis/wasmgate.dev/v1alpha1/hosts"]["get"].is_object());
        let wr = &defs["dev.wasmgate.v1alpha1.WorkloadResolution"];
        assert_eq!(
            wr["x-kubernetes-group-version-kind"][0]["kind"],
            "WorkloadResolution"
        );
        assert!(wr["properties"]["status"].is_object());
        assert_eq!(
            doc["paths"]
                ["/apis/wasmgate.dev/v1alpha1/namespaces/{namespace}/workloadresolutions/{name}"]
                ["get"]["responses"]["200"]["schema"]["$ref"],
            "#/definitions/dev.wasmgate.v1alpha1.WorkloadResolution"
        );
        let text = doc.to_string();
        assert!(!text.contains("\"type\":[\""), "type arrays in Swagger 2.0");
        for keyword in ["anyOf", "oneOf", "nullable", "const"] {
            assert!(
                !text.contains(&format!("\"{keyword}\"")),
                "{keyword} in Swagger 2.0"
            );
        }
    }
}
