//! Discovery: `/apis` (legacy `APIGroupList`, or aggregated discovery v2/v2beta1 when asked for with
//! the exact media type parameters), `/apis/wasmgate.dev` (`APIGroup`) and
//! `/apis/wasmgate.dev/v1alpha1` (`APIResourceList`, what the availability probe reads).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::negotiate::{accepts_discovery_v2, DiscoveryVersion};
use super::{json_response, GROUP, KIND, RESOURCE, SINGULAR, VERSION};
use crate::crd::resolution;

/// Verbs `hosts` supports (and advertises).
pub const VERBS: [&str; 7] = [
    "create", "delete", "get", "list", "patch", "update", "watch",
];
/// `kubectl get wasmcloud` lists hosts too.
pub const CATEGORIES: [&str; 1] = ["wasmcloud"];
/// `kubectl get wgh`.
pub const SHORT_NAMES: [&str; 1] = ["wgh"];

/// Verbs `workloadresolutions` supports (read-only).
pub const RESOLUTION_VERBS: [&str; 3] = ["get", "list", "watch"];
/// `kubectl get wgr`.
pub const RESOLUTION_SHORT_NAMES: [&str; 1] = ["wgr"];

fn group_version() -> String {
    format!("{GROUP}/{VERSION}")
}

/// `GET /apis/wasmgate.dev/v1alpha1`.
pub fn api_resource_list() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(),
        "resources": [{
            "name": RESOURCE,
            "singularName": SINGULAR,
            "namespaced": false,
            "kind": KIND,
            "verbs": VERBS,
            "shortNames": SHORT_NAMES,
            "categories": CATEGORIES,
        }, {
            "name": resolution::RESOURCE,
            "singularName": resolution::SINGULAR,
            "namespaced": true,
            "kind": resolution::KIND,
            "verbs": RESOLUTION_VERBS,
            "shortNames": RESOLUTION_SHORT_NAMES,
            "categories": CATEGORIES,
        }],
    })
}

/// `GET /apis/wasmgate.dev`.
pub fn api_group() -> Value {
    let gv = json!({"groupVersion": group_version(), "version": VERSION});
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": GROUP,
        "versions": [gv],
        "preferredVersion": gv,
    })
}

/// `GET /apis` (legacy).
pub fn api_group_list() -> Value {
    let mut g = api_group();
    if let Some(o) = g.as_object_mut() {
        o.remove("kind");
        o.remove("apiVersion");
    }
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [g]})
}

/// `GET /apis` as `APIGroupDiscoveryList`.
pub fn api_group_discovery_list(version: DiscoveryVersion) -> Value {
    let response_kind = json!({"group": GROUP, "version": VERSION, "kind": KIND});
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{}", version.as_str()),
        "metadata": {},
        "items": [{
            "metadata": {"name": GROUP},
            "versions": [{
                "version": VERSION,
                "freshness": "Current",
                "resources": [{
                    "resource": RESOURCE,
                    "responseKind": response_kind,
                    "scope": "Cluster",
                    "singularResource": SINGULAR,
                    "verbs": VERBS,
                    "shortNames": SHORT_NAMES,
                    "categories": CATEGORIES,
                }, {
                    "resource": resolution::RESOURCE,
                    "responseKind": {"group": GROUP, "version": VERSION, "kind": resolution::KIND},
                    "scope": "Namespaced",
                    "singularResource": resolution::SINGULAR,
                    "verbs": RESOLUTION_VERBS,
                    "shortNames": RESOLUTION_SHORT_NAMES,
                    "categories": CATEGORIES,
                }],
            }],
        }],
    })
}

/// A stable ETag for a body (FNV-1a, hex, quoted).
pub fn etag(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in body {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("\"{h:016X}\"")
}

/// `GET /apis`, negotiated.
pub fn apis(headers: &HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(version) = accepts_discovery_v2(accept) else {
        return json_response(StatusCode::OK, &api_group_list());
    };
    let body = super::status::json_body(&api_group_discovery_list(version));
    let tag = etag(&body);
    let content_type = HeaderValue::from_str(&format!(
        "application/json;g=apidiscovery.k8s.io;v={};as=APIGroupDiscoveryList",
        version.as_str()
    ))
    .unwrap_or(HeaderValue::from_static("application/json"));
    let mut resp = super::conditional_doc(headers, body.into(), &tag, content_type);
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_list_shape() {
        let l = api_resource_list();
        assert_eq!(l["groupVersion"], "wasmgate.dev/v1alpha1");
        let r = &l["resources"][0];
        assert_eq!(r["name"], "hosts");
        assert_eq!(r["singularName"], "host");
        assert_eq!(r["kind"], "Host");
        assert_eq!(r["namespaced"], false);
        assert_eq!(r["verbs"].as_array().unwrap().len(), 7);
    }

    #[test]
    fn v2_content_type_and_etag() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
            ),
        );
        let r = apis(&h);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
        let tag = r.headers()[header::ETAG].clone();
        h.insert(header::IF_NONE_MATCH, tag);
        assert_eq!(apis(&h).status(), StatusCode::NOT_MODIFIED);

        let plain = apis(&HeaderMap::new());
        assert_eq!(plain.headers()[header::CONTENT_TYPE], "application/json");
    }
}
