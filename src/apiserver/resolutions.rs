//! The `workloadresolutions` resource (namespaced, read-only): list (all namespaces or one,
//! limit/continue), get, watch, label selectors and field selectors on `metadata.name`,
//! `metadata.namespace`, `status.resolved`, `status.reason` and `target.kind`; Table output
//! for kubectl. Served from the reconciler's [`ResolutionStore`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Value};

use crate::crd::resolution::{WorkloadResolution, KIND, LIST_KIND, RESOURCE};
use crate::inventory::WatchEventType;
use crate::store::resolutions::{rv_of, ResolutionEvent, ResolutionStore};

use super::negotiate::Output;
use super::params::{flag, include, output, parse_query, Params};
use super::selectors::{FieldRequirement, FieldSelector, LabelSelector};
use super::status::{encode, json_body, ApiError, ApiResult, EncodeError};
use super::table::{since, IncludeObject};
use super::watch::{self, gone, WatchEncoder, WatchOptions};
use super::{json_response, list_body, ApiState};

/// Fields a field selector may name.
pub const FIELD_LABELS: [&str; 5] = [
    "metadata.name",
    "metadata.namespace",
    "status.resolved",
    "status.reason",
    "target.kind",
];

#[derive(Clone, Debug, Default)]
struct Filter {
    labels: LabelSelector,
    fields: FieldSelector,
}

fn field(r: &WorkloadResolution, name: &str) -> String {
    match name {
        "metadata.name" => r.metadata.name.clone().unwrap_or_default(),
        "metadata.namespace" => r.metadata.namespace.clone().unwrap_or_default(),
        "status.resolved" => r.status.resolved.to_string(),
        "status.reason" => r.status.reason.clone(),
        "target.kind" => r.target.kind.clone(),
        _ => String::new(),
    }
}

impl Filter {
    fn parse(params: &Params, name: Option<&str>) -> ApiResult<Self> {
        let labels = LabelSelector::parse(params.get("labelSelector").map_or("", |s| s))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let mut fields =
            FieldSelector::parse_for(params.get("fieldSelector").map_or("", |s| s), &FIELD_LABELS)?;
        if let Some(n) = name {
            fields.0.push(FieldRequirement {
                field: "metadata.name".into(),
                value: n.into(),
                negated: false,
            });
        }
        Ok(Self { labels, fields })
    }

    fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.0.is_empty()
    }

    fn matches(&self, r: &WorkloadResolution) -> bool {
        self.labels.matches(r.metadata.labels.as_ref()) && self.fields.matches_with(|f| field(r, f))
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

fn column_definitions() -> Value {
    let col = |name: &str, ty: &str, format: &str, description: &str, priority: u8| {
        json!({"name": name, "type": ty, "format": format, "description": description,
               "priority": priority})
    };
    json!([
        col("Name", "string", "name", "<target name>.<target kind>", 0),
        col("Kind", "string", "", "The kind of the object resolved", 0),
        col(
            "Resolved",
            "string",
            "",
            "Whether every import resolves on an eligible host",
            0
        ),
        col("Hosts", "integer", "", "Eligible hosts", 0),
        col("Unresolved", "integer", "", "Number of problems", 0),
        col(
            "Reason",
            "string",
            "",
            "Resolved, Unresolved, NoEligibleHost or Undecodable",
            0
        ),
        col(
            "Age",
            "string",
            "",
            "Time since wasmgate first resolved the object",
            0
        ),
        col("Message", "string", "", "The first problem", 1),
    ])
}

fn cells(r: &WorkloadResolution, now: SystemTime) -> Vec<Value> {
    let created = r.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let message = if r.status.message.is_empty() {
        "<none>".to_string()
    } else {
        r.status.message.clone()
    };
    vec![
        json!(r.metadata.name.clone().unwrap_or_default()),
        json!(r.target.kind),
        json!(if r.status.resolved { "True" } else { "False" }),
        json!(r.status.eligible_hosts),
        json!(r.status.unresolved.len()),
        json!(r.status.reason),
        json!(since(created, now)),
        json!(message),
    ]
}

/// How errors name an object: `WorkloadResolution "ns/name"`.
fn what(r: &WorkloadResolution) -> String {
    let (ns, name) = key(r);
    format!("{KIND} \"{ns}/{name}\"")
}

fn to_json(r: &WorkloadResolution) -> Result<Value, EncodeError> {
    encode(|| what(r), r)
}

fn partial_metadata(r: &WorkloadResolution) -> Result<Value, EncodeError> {
    Ok(json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": encode(|| format!("the metadata of {}", what(r)), &r.metadata)?,
    }))
}

fn table(
    items: &[Arc<WorkloadResolution>],
    rv: u64,
    continue_token: Option<&str>,
    include: IncludeObject,
    headers: bool,
    v1beta1: bool,
) -> Result<Value, EncodeError> {
    let now = SystemTime::now();
    let mut t = table_head(rv, continue_token, headers, v1beta1);
    t["rows"] = items
        .iter()
        .map(|r| row(r, include, now))
        .collect::<Result<Vec<Value>, EncodeError>>()?
        .into();
    Ok(t)
}

/// A Table without its `rows` (a streamed list adds them a chunk at a time).
fn table_head(rv: u64, continue_token: Option<&str>, headers: bool, v1beta1: bool) -> Value {
    let metadata = list_body::list_meta(rv, continue_token, None);
    json!({
        "kind": "Table",
        "apiVersion": if v1beta1 { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" },
        "metadata": metadata,
        "columnDefinitions": if headers { column_definitions() } else { json!([]) },
    })
}

/// One Table row.
fn row(
    r: &WorkloadResolution,
    include: IncludeObject,
    now: SystemTime,
) -> Result<Value, EncodeError> {
    let mut row = json!({ "cells": cells(r, now) });
    match include {
        IncludeObject::None => {}
        IncludeObject::Object => row["object"] = to_json(r)?,
        IncludeObject::Metadata => row["object"] = partial_metadata(r)?,
    }
    Ok(row)
}

/// A list response, streamed (see `list_body`): the resolutions are shared with the store and
/// encoded as the connection takes them.
fn render_list(
    items: Vec<Arc<WorkloadResolution>>,
    rv: u64,
    continue_token: Option<&str>,
    out: Output,
    include: IncludeObject,
) -> Result<Response, EncodeError> {
    let range = 0..items.len();
    let items = Arc::new(items);
    match out {
        Output::Table { v1beta1 } => {
            let head = table_head(rv, continue_token, true, v1beta1);
            let now = SystemTime::now();
            let encode = move |r: &Arc<WorkloadResolution>, buf: &mut Vec<u8>| {
                buf.extend(json_body(&row(r, include, now)?));
                Ok(())
            };
            list_body::respond(&head, "rows", items, range, encode)
        }
        Output::Json => {
            let head = json!({
                "kind": LIST_KIND,
                "apiVersion": crate::crd::resolution::api_version(),
                "metadata": list_body::list_meta(rv, continue_token, None),
            });
            let encode = |r: &Arc<WorkloadResolution>, buf: &mut Vec<u8>| {
                serde_json::to_writer(&mut *buf, &**r).map_err(|source| EncodeError {
                    what: what(r),
                    source,
                })
            };
            list_body::respond(&head, "items", items, range, encode)
        }
        Output::Metadata => {
            let head = json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": list_body::list_meta(rv, continue_token, None),
            });
            let encode = |r: &Arc<WorkloadResolution>, buf: &mut Vec<u8>| {
                buf.extend(json_body(&partial_metadata(r)?));
                Ok(())
            };
            list_body::respond(&head, "items", items, range, encode)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// list / get
// ---------------------------------------------------------------------------------------------

/// A continue token: the (namespace, name) of the last item returned.
fn encode_token(ns: &str, name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json_body(&json!([ns, name])))
}

fn decode_token(s: &str) -> ApiResult<(String, String)> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| serde_json::from_slice::<(String, String)>(&b).ok())
        .ok_or_else(|| ApiError::bad_request("continue: invalid continue token"))
}

fn list(
    store: &ResolutionStore,
    namespace: Option<&str>,
    headers: &HeaderMap,
    params: &Params,
) -> ApiResult<Response> {
    let out = output(headers)?;
    let include = include(params)?;
    let filter = Filter::parse(params, None)?;
    let limit: usize = match params.get("limit").map(String::as_str) {
        None | Some("") | Some("0") => 0,
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::bad_request(format!("limit: invalid value {v:?}")))?,
    };
    let after = match params.get("continue").map(String::as_str) {
        None | Some("") => None,
        Some(t) => Some(decode_token(t)?),
    };
    let (all, rv) = store.list(namespace);
    let mut items: Vec<Arc<WorkloadResolution>> = all
        .into_iter()
        .filter(|r| match &after {
            Some((ns, name)) => {
                (
                    r.metadata.namespace.as_deref().unwrap_or(""),
                    r.metadata.name.as_deref().unwrap_or(""),
                ) > (ns.as_str(), name.as_str())
            }
            None => true,
        })
        .filter(|r| filter.matches(r))
        .collect();
    let mut token = None;
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        if let Some(last) = items.last() {
            token = Some(encode_token(
                last.metadata.namespace.as_deref().unwrap_or(""),
                last.metadata.name.as_deref().unwrap_or(""),
            ));
        }
    }
    Ok(render_list(items, rv, token.as_deref(), out, include)?)
}

fn get_one(
    store: &ResolutionStore,
    namespace: &str,
    name: &str,
    headers: &HeaderMap,
    params: &Params,
) -> ApiResult<Response> {
    let out = output(headers)?;
    let include = include(params)?;
    let r = store.get(namespace, name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{RESOURCE}.{} \"{name}\" not found", super::GROUP),
        )
    })?;
    let body = match out {
        Output::Json => to_json(&r)?,
        Output::Metadata => partial_metadata(&r)?,
        Output::Table { v1beta1 } => table(
            std::slice::from_ref(&r),
            rv_of(&r),
            None,
            include,
            true,
            v1beta1,
        )?,
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /apis/wasmgate.dev/v1alpha1/workloadresolutions` (all namespaces; `?watch=true` watches).
pub async fn list_all(
    State(s): State<ApiState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = parse_query(query.as_deref());
    collection(&s, None, &headers, &params)
}

/// `GET /apis/wasmgate.dev/v1alpha1/namespaces/{ns}/workloadresolutions`.
pub async fn list_namespaced(
    State(s): State<ApiState>,
    Path(ns): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = parse_query(query.as_deref());
    collection(&s, Some(&ns), &headers, &params)
}

fn collection(
    s: &ApiState,
    ns: Option<&str>,
    headers: &HeaderMap,
    params: &Params,
) -> ApiResult<Response> {
    if flag(params, "watch")? == Some(true) {
        return watch(&s.resolutions, ns, None, headers, params);
    }
    list(&s.resolutions, ns, headers, params)
}

/// `GET /apis/wasmgate.dev/v1alpha1/namespaces/{ns}/workloadresolutions/{name}`.
pub async fn get(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = parse_query(query.as_deref());
    if flag(&params, "watch")? == Some(true) {
        return watch(&s.resolutions, Some(&ns), Some(&name), &headers, &params);
    }
    get_one(&s.resolutions, &ns, &name, &headers, &params)
}

/// `GET /apis/wasmgate.dev/v1alpha1/watch/workloadresolutions`.
pub async fn watch_all(
    State(s): State<ApiState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = parse_query(query.as_deref());
    watch(&s.resolutions, None, None, &headers, &params)
}

/// `GET /apis/wasmgate.dev/v1alpha1/watch/namespaces/{ns}/workloadresolutions`.
pub async fn watch_namespaced(
    State(s): State<ApiState>,
    Path(ns): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = parse_query(query.as_deref());
    watch(&s.resolutions, Some(&ns), None, &headers, &params)
}

/// `GET /apis/wasmgate.dev/v1alpha1/watch/namespaces/{ns}/workloadresolutions/{name}`.
pub async fn watch_item(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = parse_query(query.as_deref());
    watch(&s.resolutions, Some(&ns), Some(&name), &headers, &params)
}

/// Any write: the resource is read-only.
pub async fn read_only(method: Method) -> Response {
    ApiError::method_not_allowed(method.as_str()).into_response()
}

// ---------------------------------------------------------------------------------------------
// watch
// ---------------------------------------------------------------------------------------------

struct Encoder {
    out: Output,
    include: IncludeObject,
    namespace: Option<String>,
    filter: Filter,
    /// Keys the client holds (tracked only with selectors, for selector transitions).
    present: HashSet<(String, String)>,
    headers_sent: bool,
}

fn key(r: &WorkloadResolution) -> (String, String) {
    (
        r.metadata.namespace.clone().unwrap_or_default(),
        r.metadata.name.clone().unwrap_or_default(),
    )
}

impl Encoder {
    fn object(&mut self, r: &Arc<WorkloadResolution>) -> Result<Value, EncodeError> {
        Ok(match self.out {
            Output::Json => to_json(r)?,
            Output::Metadata => partial_metadata(r)?,
            Output::Table { v1beta1 } => {
                let t = table(
                    std::slice::from_ref(r),
                    rv_of(r),
                    None,
                    self.include,
                    !self.headers_sent,
                    v1beta1,
                )?;
                self.headers_sent = true;
                t
            }
        })
    }

    /// The line for `r`; an object that cannot be encoded becomes an ERROR line with a 500
    /// Status (logged), which ends the client's watch as kube-apiserver's errors do.
    fn line(&mut self, kind: &str, r: &Arc<WorkloadResolution>) -> Bytes {
        match self.object(r) {
            Ok(object) => watch::line(kind, &object),
            Err(e) => watch::error_line(&ApiError::from(e)),
        }
    }

    fn in_scope(&self, r: &WorkloadResolution) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| r.metadata.namespace.as_deref() == Some(ns))
    }

    fn event(&mut self, ev: &ResolutionEvent) -> Option<Bytes> {
        if !self.in_scope(&ev.object) {
            return None;
        }
        let tracked = !self.filter.is_empty();
        let matches = self.filter.matches(&ev.object);
        let k = key(&ev.object);
        let kind = match (ev.kind, matches) {
            (WatchEventType::Deleted, _) => {
                if tracked && !self.present.remove(&k) {
                    return None;
                }
                "DELETED"
            }
            (_, true) if tracked => {
                if self.present.insert(k) {
                    "ADDED"
                } else {
                    "MODIFIED"
                }
            }
            (WatchEventType::Added, true) => "ADDED",
            (_, true) => "MODIFIED",
            (_, false) => {
                if tracked && self.present.remove(&k) {
                    "DELETED"
                } else {
                    return None;
                }
            }
        };
        Some(self.line(kind, &ev.object))
    }
}

impl WatchEncoder for Encoder {
    type Event = ResolutionEvent;
    type Object = Arc<WorkloadResolution>;

    fn added(&mut self, r: &Arc<WorkloadResolution>) -> Bytes {
        self.line("ADDED", r)
    }

    fn resource_version(ev: &ResolutionEvent) -> u64 {
        ev.resource_version()
    }

    fn event(&mut self, ev: &ResolutionEvent) -> Option<Bytes> {
        Encoder::event(self, ev)
    }

    fn bookmark(&mut self, rv: u64, initial_events_end: bool) -> Bytes {
        watch::bookmark_line(
            self.out,
            KIND,
            &crate::crd::resolution::api_version(),
            rv,
            initial_events_end,
        )
    }
}

/// A watch with the hosts API's semantics: no resourceVersion (or 0) sends the current objects
/// as ADDED first; `resourceVersion=N` replays retained changes after N (410 when too old);
/// `sendInitialEvents=true` ends the initial objects with an annotated BOOKMARK;
/// `allowWatchBookmarks`, `timeoutSeconds` as kube-apiserver.
fn watch(
    store: &Arc<ResolutionStore>,
    namespace: Option<&str>,
    name: Option<&str>,
    headers: &HeaderMap,
    params: &Params,
) -> ApiResult<Response> {
    let out = output(headers)?;
    let include = include(params)?;
    let filter = Filter::parse(params, name)?;
    let options = WatchOptions::parse(params)?;
    let mut enc = Encoder {
        out,
        include,
        namespace: namespace.map(String::from),
        filter,
        present: HashSet::new(),
        headers_sent: false,
    };
    let initial = options.initial_events();
    let mut first = watch::First::default();
    let (rx, last_rv) = if options.from_now() {
        let (_, rx) = store.watch(None).map_err(gone)?;
        let (items, list_rv) = store.list(namespace);
        let matching: Vec<_> = items
            .into_iter()
            .filter(|r| enc.filter.matches(r))
            .collect();
        enc.present.extend(matching.iter().map(|r| key(r)));
        if initial {
            first.initial = matching;
        }
        if options.send_initial == Some(true) {
            first
                .lines
                .push(WatchEncoder::bookmark(&mut enc, list_rv, true));
        }
        (rx, list_rv)
    } else {
        let since = options.resource_version.unwrap_or(0);
        let (replay, rx) = store.watch(Some(since)).map_err(gone)?;
        let (items, _) = store.list(namespace);
        enc.present = items
            .iter()
            .filter(|r| enc.filter.matches(r))
            .map(|r| key(r))
            .collect();
        let mut last = since;
        for ev in &replay {
            last = last.max(ev.resource_version());
            if let Some(line) = enc.event(ev) {
                first.lines.push(line);
            }
        }
        (rx, last)
    };
    Ok(watch::respond(rx, enc, first, last_rv, options))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::resolution::{ResolutionStatus, TargetRef};
    use axum::http::{header, HeaderValue};

    fn stored(store: &ResolutionStore, ns: &str, name: &str, resolved: bool) {
        let mut r = WorkloadResolution {
            target: TargetRef {
                kind: "Workload".into(),
                name: name.into(),
                ..TargetRef::default()
            },
            status: ResolutionStatus {
                resolved,
                reason: if resolved { "Resolved" } else { "Unresolved" }.into(),
                message: if resolved { "" } else { "no postgres" }.into(),
                ..ResolutionStatus::default()
            },
            ..WorkloadResolution::default()
        };
        r.metadata.namespace = Some(ns.into());
        r.metadata.name = Some(format!("{name}.workload"));
        r.metadata.labels = Some([("app".to_string(), name.to_string())].into());
        store.put(r, SystemTime::now());
    }

    fn body(resp: Response) -> Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt
            .block_on(axum::body::to_bytes(resp.into_body(), 1 << 20))
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn params(q: &str) -> Params {
        parse_query(Some(q))
    }

    #[test]
    fn lists_filter_page_and_render_tables() {
        let store = ResolutionStore::default();
        stored(&store, "a", "x", true);
        stored(&store, "a", "y", false);
        stored(&store, "b", "z", false);
        let json = HeaderMap::new();
        let v = body(list(&store, None, &json, &params("")).unwrap());
        assert_eq!(v["kind"], "WorkloadResolutionList");
        assert_eq!(v["items"].as_array().unwrap().len(), 3);
        let v = body(
            list(
                &store,
                Some("a"),
                &json,
                &params("fieldSelector=status.resolved%3Dfalse"),
            )
            .unwrap(),
        );
        let names: Vec<_> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].clone())
            .collect();
        assert_eq!(names, vec![json!("y.workload")]);
        let v = body(list(&store, None, &json, &params("labelSelector=app%3Dz")).unwrap());
        assert_eq!(v["items"][0]["metadata"]["namespace"], "b");
        assert!(list(&store, None, &json, &params("fieldSelector=spec.x%3D1")).is_err());

        // Paging: two pages of two and one.
        let v = body(list(&store, None, &json, &params("limit=2")).unwrap());
        let token = v["metadata"]["continue"].as_str().unwrap().to_string();
        assert_eq!(v["items"].as_array().unwrap().len(), 2);
        let v = body(
            list(
                &store,
                None,
                &json,
                &params(&format!("limit=2&continue={token}")),
            )
            .unwrap(),
        );
        assert_eq!(v["items"].as_array().unwrap().len(), 1);
        assert!(v["metadata"].get("continue").is_none());

        let mut table = HeaderMap::new();
        table.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
            ),
        );
        let v = body(list(&store, Some("a"), &table, &params("")).unwrap());
        assert_eq!(v["kind"], "Table");
        assert_eq!(v["columnDefinitions"][7]["priority"], 1);
        let row = &v["rows"][1]["cells"];
        assert_eq!(row[0], "y.workload");
        assert_eq!(row[2], "False");
        assert_eq!(row[5], "Unresolved");
        assert_eq!(row[7], "no postgres");

        let v = body(get_one(&store, "b", "z.workload", &json, &params("")).unwrap());
        assert_eq!(v["status"]["reason"], "Unresolved");
        let e = get_one(&store, "b", "missing", &json, &params("")).unwrap_err();
        assert_eq!(e.to_status()["code"], 404);
    }
}
