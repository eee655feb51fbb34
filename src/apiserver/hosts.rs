//! The `hosts` resource: list, get, watch, create, update, patch, delete.
//!
//! Lists are consistent: a paginated list is a snapshot kept for [`LIST_SNAPSHOT_TTL`], and every
//! page reports the snapshot's resourceVersion; a token whose snapshot is gone (expired, or issued
//! by another replica) continues from the current state after the last name returned. Watches
//! follow kube-apiserver's protocol (see [`watch`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::crd::Host;
use crate::inventory::InventoryError;

use super::auth::UserInfo;
use super::negotiate::Output;
use super::params::{flag, include, output, parse_query, parse_rv, Params};
use super::selectors::{FieldRequirement, FieldSelector, LabelSelector, Selectors};
use super::status::{encode, encode_bytes, json_body, ApiError, ApiResult, EncodeError};
use super::table::{self, IncludeObject};
use super::watch::{self, gone, WatchEncoder, WatchOptions};
use super::{
    api_version, host_json, host_what, json_response, list_body, normalized, ApiState, WatchEvent,
    WatchEventType, KIND, LIST_KIND,
};

/// How long the snapshot behind a `continue` token is kept (a snapshot shares the stored hosts:
/// 80 KB for 10,000; a token whose snapshot is gone continues from the current state).
pub const LIST_SNAPSHOT_TTL: Duration = Duration::from_secs(30);
/// At most this many paginated list snapshots are kept at once (oldest evicted first).
pub const LIST_SNAPSHOTS: usize = 4;
// Where the watch stream's parameters always were; they belong to `watch` now.
pub use super::watch::{BOOKMARK_INTERVAL, DEFAULT_WATCH_TIMEOUT};

// ---------------------------------------------------------------------------------------------
// List snapshots for pagination
// ---------------------------------------------------------------------------------------------

/// A digest of a list request's selectors and caller, binding its continue tokens to them:
/// authorization looked at the selectors (a `metadata.name` field selector is authorized as that
/// host), so a token is worth only what the same caller's same list would return.
fn selector_scope(params: &Params, user: Option<&UserInfo>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    user.map(|u| (&u.name, &u.groups)).hash(&mut h);
    for key in ["labelSelector", "fieldSelector"] {
        params
            .get(key)
            .map(String::as_str)
            .unwrap_or("")
            .hash(&mut h);
    }
    h.finish()
}

/// Snapshots behind `continue` tokens (a token is honoured only for a request with the same
/// selectors (a digest of them), so that a forged or reused token cannot return items the
/// request's own, authorized, selectors would not).
pub type ListCache = crate::store::ListSnapshots<Arc<Host>>;

/// The list snapshots of the `hosts` resource.
pub fn list_cache() -> ListCache {
    ListCache::new(LIST_SNAPSHOT_TTL, LIST_SNAPSHOTS)
}

#[derive(Serialize, Deserialize)]
struct ContinueToken {
    id: u64,
    rv: u64,
    start: usize,
    /// The name of the last item already returned.
    #[serde(default)]
    after: String,
}

fn encode_token(t: &ContinueToken) -> Result<String, EncodeError> {
    let bytes = encode_bytes(|| "a continue token".into(), t)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn decode_token(s: &str) -> Option<ContinueToken> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

// ---------------------------------------------------------------------------------------------
// Request parsing
// ---------------------------------------------------------------------------------------------

fn selectors(params: &Params, name: Option<&str>) -> ApiResult<Selectors> {
    let labels = LabelSelector::parse(params.get("labelSelector").map_or("", |s| s))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let mut fields = FieldSelector::parse(params.get("fieldSelector").map_or("", |s| s))?;
    if let Some(n) = name {
        fields.0.push(FieldRequirement {
            field: "metadata.name".into(),
            value: n.into(),
            negated: false,
        });
    }
    Ok(Selectors { labels, fields })
}

fn dry_run(params: &Params) -> ApiResult<bool> {
    match params.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(v) => Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: {v:?}: supported values: \"All\""
        ))),
    }
}

fn rv_of(host: &Host) -> u64 {
    host.metadata
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListMetaOut {
    resource_version: String,
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    continue_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining_item_count: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HostListHead {
    api_version: String,
    kind: &'static str,
    metadata: ListMetaOut,
}

/// A host's JSON, with `apiVersion` and `kind` (stored hosts have them; a copy is made only
/// for one that does not).
fn write_host(host: &Arc<Host>, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    let result = if host.api_version.is_empty() || host.kind.is_empty() {
        serde_json::to_writer(&mut *buf, &normalized(Host::clone(host)))
    } else {
        serde_json::to_writer(&mut *buf, &**host)
    };
    result.map_err(|source| EncodeError {
        what: host_what(host),
        source,
    })
}

/// A list response of `items[range]`, streamed (see `list_body`): the hosts are shared with
/// the list's snapshot and encoded as the connection takes them.
fn render_list(
    items: Arc<Vec<Arc<Host>>>,
    range: std::ops::Range<usize>,
    rv: u64,
    cont: Option<String>,
    remaining: Option<u64>,
    out: Output,
    include: IncludeObject,
) -> ApiResult<Response> {
    let metadata = ListMetaOut {
        resource_version: rv.to_string(),
        continue_: cont,
        remaining_item_count: remaining,
    };
    Ok(match out {
        Output::Json => {
            let head = HostListHead {
                api_version: api_version(),
                kind: LIST_KIND,
                metadata,
            };
            list_body::respond(&head, "items", items, range, write_host)?
        }
        Output::Metadata => {
            let head = json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": encode(|| "list metadata".into(), &metadata)?,
            });
            let item = |h: &Arc<Host>, buf: &mut Vec<u8>| {
                buf.extend(json_body(&table::partial_metadata(h)?));
                Ok(())
            };
            list_body::respond(&head, "items", items, range, item)?
        }
        Output::Table { v1beta1 } => {
            let mut head = table::table_head(
                rv,
                metadata.continue_.as_deref(),
                metadata.remaining_item_count,
                true,
            );
            if v1beta1 {
                head["apiVersion"] = json!("meta.k8s.io/v1beta1");
            }
            let now = SystemTime::now();
            let row = move |h: &Arc<Host>, buf: &mut Vec<u8>| {
                buf.extend(json_body(&table::row(h, include, now)?));
                Ok(())
            };
            list_body::respond(&head, "rows", items, range, row)?
        }
    })
}

fn render_one(
    host: &Host,
    out: Output,
    include: IncludeObject,
    code: StatusCode,
) -> ApiResult<Response> {
    Ok(match out {
        Output::Json => json_response(code, &host_json(host)?),
        Output::Metadata => json_response(code, &table::partial_metadata(host)?),
        Output::Table { v1beta1 } => {
            let mut t = table::table(
                std::slice::from_ref(host),
                rv_of(host),
                None,
                None,
                include,
                true,
                SystemTime::now(),
            )?;
            if v1beta1 {
                t["apiVersion"] = json!("meta.k8s.io/v1beta1");
            }
            json_response(code, &t)
        }
    })
}

// ---------------------------------------------------------------------------------------------
// list / get
// ---------------------------------------------------------------------------------------------

/// `GET /apis/wasmgate.dev/v1alpha1/hosts` (list, or watch with `watch=true`).
pub async fn list(
    State(s): State<ApiState>,
    user: Option<Extension<UserInfo>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = parse_query(query.as_deref());
    if flag(&params, "watch")? == Some(true) {
        watch(&s, &headers, &params, None)
    } else {
        list_hosts(&s, user.as_deref(), &headers, &params)
    }
}

fn list_hosts(
    s: &ApiState,
    user: Option<&UserInfo>,
    headers: &HeaderMap,
    params: &Params,
) -> ApiResult<Response> {
    let out = output(headers)?;
    let include = include(params)?;
    let sel = selectors(params, None)?;
    let limit: usize = match params.get("limit").map(String::as_str) {
        None | Some("") => 0,
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("limit: invalid value {v:?}")))?
            .max(0) as usize,
    };
    if flag(params, "sendInitialEvents")?.is_some() {
        return Err(ApiError::invalid_options(
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
        ));
    }
    let (items, rv, start, id) = match params.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let t = decode_token(token).ok_or_else(|| {
                ApiError::bad_request(format!("continue key is not valid: {token}"))
            })?;
            match s.lists.get(t.id).filter(|(rv, _, _)| *rv == t.rv) {
                Some((_, _, scope)) if scope != selector_scope(params, user) => {
                    return Err(ApiError::bad_request(
                        "continue key is not valid: it was issued for another caller or a list with other selectors",
                    ));
                }
                Some((rv, items, _)) => (items, rv, t.start, Some(t.id)),
                None => {
                    // The snapshot is gone (expired, evicted, or another replica served the
                    // first page): go on from the current state after the last name returned.
                    // kube-apiserver would answer 410 Expired, which fails a whole `kubectl
                    // get`; a list sorted by name loses nothing this way.
                    let (hosts, rv) = s.inventory.list();
                    let rest: Vec<Arc<Host>> = hosts
                        .into_iter()
                        .filter(|h| {
                            h.metadata.name.as_deref().unwrap_or("") > t.after.as_str()
                                && sel.matches(h)
                        })
                        .collect();
                    (Arc::new(rest), rv, 0, None)
                }
            }
        }
        None => {
            let (hosts, rv) = match sel.fields.exact_name() {
                // One object by name: no full copy of the inventory.
                Some(name) => {
                    let rv = s.inventory.resource_version();
                    (
                        s.inventory.get(name).map(Arc::new).into_iter().collect(),
                        rv,
                    )
                }
                None => s.inventory.list(),
            };
            if params.get("resourceVersionMatch").map(String::as_str) == Some("Exact") {
                if let Some(want) = parse_rv(params)? {
                    if want != rv {
                        return Err(ApiError::expired(format!(
                            "too old resource version: {want} ({rv})"
                        )));
                    }
                }
            }
            let filtered: Vec<Arc<Host>> = hosts.into_iter().filter(|h| sel.matches(h)).collect();
            (Arc::new(filtered), rv, 0, None)
        }
    };
    let start = start.min(items.len());
    let end = if limit > 0 {
        (start + limit).min(items.len())
    } else {
        items.len()
    };
    let (cont, remaining) = if end < items.len() {
        let id = id.unwrap_or_else(|| s.lists.put(rv, items.clone(), selector_scope(params, user)));
        let after = items[end - 1].metadata.name.clone().unwrap_or_default();
        let token = encode_token(&ContinueToken {
            id,
            rv,
            start: end,
            after,
        })?;
        (Some(token), Some((items.len() - end) as u64))
    } else {
        (None, None)
    };
    render_list(items, start..end, rv, cont, remaining, out, include)
}

/// `GET /apis/wasmgate.dev/v1alpha1/hosts/{name}`.
pub async fn get(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = parse_query(query.as_deref());
    if flag(&params, "watch")? == Some(true) {
        return watch(&s, &headers, &params, Some(&name));
    }
    let out = output(&headers)?;
    let include = include(&params)?;
    let host = s
        .inventory
        .get(&name)
        .ok_or_else(|| ApiError::not_found(&name))?;
    render_one(&normalized(host), out, include, StatusCode::OK)
}

/// `GET /apis/wasmgate.dev/v1alpha1/watch/hosts` (the legacy watch path).
pub async fn watch_collection(
    State(s): State<ApiState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = parse_query(query.as_deref());
    watch(&s, &headers, &params, None)
}

/// `GET /apis/wasmgate.dev/v1alpha1/watch/hosts/{name}`.
pub async fn watch_item(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = parse_query(query.as_deref());
    watch(&s, &headers, &params, Some(&name))
}

// ---------------------------------------------------------------------------------------------
// watch
// ---------------------------------------------------------------------------------------------

/// Turns store events into the events one watcher sees (selector transitions become ADDED and
/// DELETED) and encodes them.
struct Encoder {
    out: Output,
    include: IncludeObject,
    sel: Selectors,
    /// Names the client currently holds (tracked only with selectors).
    present: HashSet<String>,
    headers_sent: bool,
}

impl Encoder {
    fn object(&mut self, host: &Host) -> Result<Value, EncodeError> {
        Ok(match self.out {
            Output::Json => host_json(host)?,
            Output::Metadata => table::partial_metadata(host)?,
            Output::Table { v1beta1 } => {
                let mut t = table::table(
                    std::slice::from_ref(host),
                    rv_of(host),
                    None,
                    None,
                    self.include,
                    !self.headers_sent,
                    SystemTime::now(),
                )?;
                self.headers_sent = true;
                if v1beta1 {
                    t["apiVersion"] = json!("meta.k8s.io/v1beta1");
                }
                t
            }
        })
    }

    /// The line for `host`; an object that cannot be encoded becomes an ERROR line with a 500
    /// Status (logged), which ends the client's watch as kube-apiserver's errors do.
    fn line(&mut self, kind: &str, host: &Host) -> Bytes {
        match self.object(host) {
            Ok(object) => watch::line(kind, &object),
            Err(e) => watch::error_line(&ApiError::from(e)),
        }
    }

    /// The event to send for a store event, if any.
    fn event(&mut self, ev: &WatchEvent) -> Option<Bytes> {
        let host = normalized(Host::clone(&ev.object));
        let name = host.metadata.name.clone().unwrap_or_default();
        let tracked = !(self.sel.labels.is_empty() && self.sel.fields.0.is_empty());
        let matches = self.sel.matches(&host);
        let kind = match (ev.kind, matches) {
            (WatchEventType::Deleted, _) => {
                if tracked && !self.present.remove(&name) {
                    return None;
                }
                "DELETED"
            }
            (_, true) => {
                if !tracked {
                    if ev.kind == WatchEventType::Added {
                        "ADDED"
                    } else {
                        "MODIFIED"
                    }
                } else if self.present.insert(name) {
                    "ADDED"
                } else {
                    "MODIFIED"
                }
            }
            (_, false) => {
                if tracked && self.present.remove(&name) {
                    "DELETED"
                } else {
                    return None;
                }
            }
        };
        Some(self.line(kind, &host))
    }

    fn added(&mut self, host: &Arc<Host>) -> Bytes {
        if let Some(n) = &host.metadata.name {
            self.present.insert(n.clone());
        }
        if host.api_version.is_empty() || host.kind.is_empty() {
            let host = normalized(Host::clone(host));
            return self.line("ADDED", &host);
        }
        self.line("ADDED", host)
    }
}

impl WatchEncoder for Encoder {
    type Event = WatchEvent;
    type Object = Arc<Host>;

    fn added(&mut self, host: &Arc<Host>) -> Bytes {
        Encoder::added(self, host)
    }

    fn resource_version(ev: &WatchEvent) -> u64 {
        rv_of(&ev.object)
    }

    fn event(&mut self, ev: &WatchEvent) -> Option<Bytes> {
        Encoder::event(self, ev)
    }

    fn bookmark(&mut self, rv: u64, initial_events_end: bool) -> Bytes {
        watch::bookmark_line(self.out, KIND, &api_version(), rv, initial_events_end)
    }
}

/// A watch, as kube-apiserver serves it:
///
/// - `resourceVersion` unset or `0`: synthetic ADDED events for the current objects, then
///   changes; `resourceVersion=N`: every change after N (replayed from the inventory's history),
///   then live changes; an N older than the history is `410 Expired`;
/// - `sendInitialEvents=true` (WatchList; needs `resourceVersionMatch=NotOlderThan` and
///   `allowWatchBookmarks=true`): ADDED for the current objects, then a BOOKMARK annotated
///   `k8s.io/initial-events-end: "true"`, then changes;
/// - `allowWatchBookmarks=true`: a BOOKMARK every [`BOOKMARK_INTERVAL`];
/// - `timeoutSeconds`: the stream ends cleanly after it;
/// - a watcher that falls too far behind gets an ERROR event (410 Expired) and the stream ends,
///   so that it re-lists.
fn watch(
    s: &ApiState,
    headers: &HeaderMap,
    params: &Params,
    name: Option<&str>,
) -> ApiResult<Response> {
    let out = output(headers)?;
    let include = include(params)?;
    let sel = selectors(params, name)?;
    let options = WatchOptions::parse(params)?;
    let mut enc = Encoder {
        out,
        include,
        sel,
        present: HashSet::new(),
        headers_sent: false,
    };

    // What to send first, where live events start, and the receiver.
    let mut first = watch::First::default();
    let initial = options.initial_events();
    let (rx, last_rv) = if options.from_now() {
        let (_, rx) = s.inventory.watch(None).map_err(gone)?;
        let (hosts, list_rv) = s.inventory.list();
        if initial {
            first.initial = hosts.into_iter().filter(|h| enc.sel.matches(h)).collect();
            if options.send_initial == Some(true) {
                first
                    .lines
                    .push(WatchEncoder::bookmark(&mut enc, list_rv, true));
            }
        } else {
            seed_present(&mut enc, &hosts);
        }
        (rx, list_rv)
    } else {
        let since = options.resource_version.unwrap_or(0);
        let (replay, rx) = s.inventory.watch(Some(since)).map_err(gone)?;
        if !(enc.sel.labels.is_empty() && enc.sel.fields.0.is_empty()) {
            let (hosts, _) = s.inventory.list();
            seed_present(&mut enc, &hosts);
        }
        let mut last = since;
        for ev in &replay {
            let r = rv_of(&ev.object);
            if r <= last {
                continue;
            }
            last = r;
            if let Some(line) = enc.event(ev) {
                first.lines.push(line);
            }
        }
        (rx, last)
    };

    Ok(watch::respond(rx, enc, first, last_rv, options))
}

fn seed_present(enc: &mut Encoder, hosts: &[Arc<Host>]) {
    if enc.sel.labels.is_empty() && enc.sel.fields.0.is_empty() {
        return;
    }
    enc.present = hosts
        .iter()
        .filter(|h| enc.sel.matches(h))
        .filter_map(|h| h.metadata.name.clone())
        .collect();
}

// ---------------------------------------------------------------------------------------------
// create / update / patch / delete
// ---------------------------------------------------------------------------------------------

type BodyResult = Result<Bytes, BytesRejection>;

fn body_bytes(body: BodyResult) -> ApiResult<Bytes> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!(
                    "the request body is larger than {} bytes",
                    super::MAX_BODY_BYTES
                ),
            )
        } else {
            ApiError::bad_request(r.body_text())
        }
    })
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Parses a JSON (or YAML) document into one object.
fn parse_document(bytes: &[u8], ct: &str) -> ApiResult<Value> {
    let json_like = matches!(
        ct,
        "application/json"
            | ""
            | "application/merge-patch+json"
            | "application/strategic-merge-patch+json"
            | "application/json-patch+json"
    );
    if json_like {
        return serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(format!("the request body is not valid JSON: {e}"))
        });
    }
    if matches!(ct, "application/yaml" | "application/apply-patch+yaml") {
        if let Ok(v) = serde_json::from_slice(bytes) {
            return Ok(v);
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
        let mut docs = crate::manifest::parse_objects(text).map_err(|e| {
            ApiError::bad_request(format!("the request body is not valid YAML: {e}"))
        })?;
        return match docs.len() {
            1 => Ok(docs.remove(0)),
            n => Err(ApiError::bad_request(format!(
                "expected one object in the request body, found {n}"
            ))),
        };
    }
    Err(ApiError::unsupported_media_type(ct))
}

/// Checks `apiVersion`/`kind` of a submitted object and decodes it.
fn decode_host(v: Value) -> ApiResult<Host> {
    if let Some(av) = v.get("apiVersion").and_then(Value::as_str) {
        if !av.is_empty() && av != api_version() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                api_version()
            )));
        }
    }
    if let Some(k) = v.get("kind").and_then(Value::as_str) {
        if !k.is_empty() && k != KIND {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({KIND})"
            )));
        }
    }
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    serde_json::from_value::<Host>(v).map_err(|e| {
        ApiError::invalid(
            &name,
            vec![("body".into(), format!("cannot decode a Host: {e}"))],
        )
    })
}

fn dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Field errors of a Host submitted through the API.
pub fn validate(host: &Host) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    match host.metadata.name.as_deref() {
        None | Some("") => errs.push(("metadata.name".into(), "Required value: name or generateName is required".into())),
        Some(n) if !dns_subdomain(n) => errs.push((
            "metadata.name".into(),
            format!("Invalid value: {n:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"),
        )),
        _ => {}
    }
    if host.host_id.trim().is_empty() {
        errs.push(("hostId".into(), "Required value".into()));
    }
    if let Some(labels) = &host.metadata.labels {
        for (k, v) in labels {
            if LabelSelector::parse(&format!("{k}={v}")).is_err() {
                errs.push((
                    format!("metadata.labels[{k}]"),
                    format!("Invalid value: {v:?}: not a valid label"),
                ));
            }
        }
    }
    errs
}

/// Clears what the server owns before storing a submitted object.
fn server_fields(mut host: Host) -> Host {
    host.metadata.namespace = None;
    host.metadata.managed_fields = None;
    host.metadata.self_link = None;
    host.metadata.deletion_timestamp = None;
    host.metadata.deletion_grace_period_seconds = None;
    host.metadata.generate_name = None;
    normalized(host)
}

fn random_suffix() -> String {
    use std::hash::{BuildHasher, RandomState};
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = RandomState::new().hash_one(SystemTime::now());
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

async fn store(s: &ApiState, host: Host, dry: bool) -> ApiResult<Host> {
    let name = host.metadata.name.clone().unwrap_or_default();
    let errs = validate(&host);
    if !errs.is_empty() {
        return Err(ApiError::invalid(&name, errs));
    }
    if dry {
        return Ok(host);
    }
    s.inventory
        .write(host, SystemTime::now())
        .await
        .map(normalized)
        .map_err(|e| write_error(&name, e))
}

/// The Status of a refused or failed write.
fn write_error(name: &str, e: InventoryError) -> ApiError {
    match e {
        InventoryError::Conflict { name, message } => ApiError::conflict(&name, &message),
        InventoryError::Invalid {
            name,
            field,
            message,
        } => ApiError::invalid(&name, vec![(field.to_string(), message)]),
        // The inventory log (JetStream) did not take the write, or took it but this replica has
        // not applied it yet: as kube-apiserver's 503 and 504 (Timeout) when etcd is slow.
        InventoryError::Unavailable { message } => ApiError::unavailable(message),
        e @ InventoryError::Timeout { .. } => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "Timeout", e.to_string())
        }
        other => ApiError::invalid(name, vec![("body".into(), other.to_string())]),
    }
}

/// Writes are refused while the hosts come from an inventory file (`--inventory`): the file is
/// the source, and a write here would be undone by the next reload.
fn writable(s: &ApiState) -> ApiResult<()> {
    if s.inventory.is_file_backed() {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "hosts come from the inventory file (--inventory): edit the file, the API does not write them",
        ));
    }
    Ok(())
}

fn log_write(user: &Option<Extension<UserInfo>>, verb: &str, name: &str, dry: bool) {
    tracing::info!(
        user = user.as_ref().map_or("", |u| u.name.as_str()),
        verb,
        name,
        dry_run = dry,
        "host written through the API"
    );
}

/// The Host in a create or replace body (JSON or YAML), with the fields the server owns set;
/// also returns the raw bytes for fields the typed Host does not keep (`generateName`).
fn written_host(headers: &HeaderMap, body: BodyResult) -> ApiResult<(Bytes, Host)> {
    let bytes = body_bytes(body)?;
    let ct = content_type(headers);
    if !matches!(ct.as_str(), "application/json" | "application/yaml" | "") {
        return Err(ApiError::unsupported_media_type(&ct));
    }
    let host = server_fields(decode_host(parse_document(&bytes, &ct)?)?);
    Ok((bytes, host))
}

/// `POST /apis/wasmgate.dev/v1alpha1/hosts` (HTTP ingestion: create).
pub async fn create(
    State(s): State<ApiState>,
    user: Option<Extension<UserInfo>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: BodyResult,
) -> ApiResult<Response> {
    writable(&s)?;
    let params = parse_query(query.as_deref());
    let out = output(&headers)?;
    let dry = dry_run(&params)?;
    let (bytes, mut host) = written_host(&headers, body)?;
    if host.metadata.name.as_deref().is_none_or(str::is_empty) {
        if let Some(prefix) = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
            v.pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .map(str::to_string)
        }) {
            host.metadata.name = Some(format!("{prefix}{}", random_suffix()));
        }
    }
    host.metadata.resource_version = None;
    host.metadata.uid = None;
    host.metadata.creation_timestamp = None;
    let name = host.metadata.name.clone().unwrap_or_default();
    if !name.is_empty() && s.inventory.get(&name).is_some() {
        return Err(ApiError::already_exists(&name));
    }
    let stored = store(&s, host, dry).await?;
    log_write(&user, "create", &name, dry);
    render_one(&stored, out, IncludeObject::Object, StatusCode::CREATED)
}

fn check_name(url_name: &str, host: &Host) -> ApiResult<()> {
    match host.metadata.name.as_deref() {
        Some(n) if n == url_name => Ok(()),
        None | Some("") => Ok(()),
        Some(n) => Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({url_name})"
        ))),
    }
}

fn check_precondition(url_name: &str, submitted: &Host, existing: &Host) -> ApiResult<()> {
    match submitted.metadata.resource_version.as_deref() {
        Some(rv) if !rv.is_empty() && Some(rv) != existing.metadata.resource_version.as_deref() => {
            Err(ApiError::conflict(
                url_name,
                "the object has been modified; please apply your changes to the latest version \
                 and try again",
            ))
        }
        _ => Ok(()),
    }
}

/// `PUT /apis/wasmgate.dev/v1alpha1/hosts/{name}` (HTTP ingestion: replace).
pub async fn update(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    user: Option<Extension<UserInfo>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: BodyResult,
) -> ApiResult<Response> {
    writable(&s)?;
    let params = parse_query(query.as_deref());
    let out = output(&headers)?;
    let dry = dry_run(&params)?;
    let (_, mut host) = written_host(&headers, body)?;
    check_name(&name, &host)?;
    host.metadata.name = Some(name.clone());
    let existing = s
        .inventory
        .get(&name)
        .ok_or_else(|| ApiError::not_found(&name))?;
    check_precondition(&name, &host, &existing)?;
    let stored = store(&s, host, dry).await?;
    log_write(&user, "update", &name, dry);
    render_one(&stored, out, IncludeObject::Object, StatusCode::OK)
}

/// Why a JSON patch is refused (422 Invalid, cause `patch`).
#[derive(Debug, thiserror::Error)]
pub enum JsonPatchError {
    /// More than `MAX_PATCH_OPERATIONS` (10,000) operations.
    #[error("the patch has {0} operations; at most {MAX_PATCH_OPERATIONS} are allowed")]
    TooManyOperations(usize),
    /// The patched object would grow past the request body limit (bytes).
    #[error("the patched object would exceed {0} bytes")]
    TooLarge(usize),
    /// An operation failed (a missing path, a failed `test`).
    #[error(transparent)]
    Apply(#[from] json_patch::PatchError),
}

/// The most operations a JSON patch may have (kube-apiserver's limit).
const MAX_PATCH_OPERATIONS: usize = 10_000;

/// Applies a JSON patch while bounding what it can build: at most [`MAX_PATCH_OPERATIONS`]
/// operations, and a document that never grows past the request body limit (`copy` can double
/// a document with each operation).
fn apply_json_patch(doc: &mut Value, patch: &json_patch::Patch) -> Result<(), JsonPatchError> {
    use json_patch::PatchOperation as Op;
    if patch.0.len() > MAX_PATCH_OPERATIONS {
        return Err(JsonPatchError::TooManyOperations(patch.0.len()));
    }
    let size = |v: &Value| json_body(v).len();
    let mut budget = super::MAX_BODY_BYTES.saturating_sub(size(doc));
    for op in &patch.0 {
        let added = match op {
            Op::Add(a) => size(&a.value),
            Op::Replace(r) => size(&r.value),
            Op::Copy(c) => doc.pointer(c.from.as_str()).map_or(0, size),
            _ => 0,
        };
        budget = budget
            .checked_sub(added)
            .ok_or(JsonPatchError::TooLarge(super::MAX_BODY_BYTES))?;
        // One at a time, so that each `copy` is measured on the document as patched so far
        // (`doc` is the caller's scratch copy: a failure leaves nothing stored).
        json_patch::patch(doc, std::slice::from_ref(op))?;
    }
    Ok(())
}

/// Drops strategic-merge directives (`$patch`, `$setElementOrder/...`, `$retainKeys`, ...): hosts
/// have no list merge keys, so a strategic merge patch is applied as a JSON merge patch.
fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.retain(|k, _| !k.starts_with('$'));
            o.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

/// `PATCH /apis/wasmgate.dev/v1alpha1/hosts/{name}`: JSON merge patch, strategic merge patch
/// (applied as a merge patch), JSON patch, and server-side apply (applied as a merge patch; it
/// creates a missing host).
pub async fn patch(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    user: Option<Extension<UserInfo>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: BodyResult,
) -> ApiResult<Response> {
    writable(&s)?;
    let params = parse_query(query.as_deref());
    let out = output(&headers)?;
    let dry = dry_run(&params)?;
    let bytes = body_bytes(body)?;
    let ct = content_type(&headers);
    let apply = ct == "application/apply-patch+yaml";
    let existing = s.inventory.get(&name);
    let mut doc = match (&existing, apply) {
        (Some(h), _) => host_json(h)?,
        (None, true) => {
            json!({"apiVersion": api_version(), "kind": KIND, "metadata": {"name": name}})
        }
        (None, false) => return Err(ApiError::not_found(&name)),
    };
    match ct.as_str() {
        "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/apply-patch+yaml" => {
            let mut p = parse_document(&bytes, &ct)?;
            if !p.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            strip_directives(&mut p);
            json_patch::merge(&mut doc, &p);
        }
        "application/json-patch+json" => {
            let p: json_patch::Patch = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::bad_request(format!("the JSON patch is not valid: {e}")))?;
            apply_json_patch(&mut doc, &p)
                .map_err(|e| ApiError::invalid(&name, vec![("patch".into(), e.to_string())]))?;
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    }
    let host = server_fields(decode_host(doc)?);
    check_name(&name, &host)?;
    if let Some(existing) = &existing {
        check_precondition(&name, &host, existing)?;
    }
    let mut host = host;
    host.metadata.name = Some(name.clone());
    let created = existing.is_none();
    let stored = store(&s, host, dry).await?;
    log_write(&user, if created { "create" } else { "patch" }, &name, dry);
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    render_one(&stored, out, IncludeObject::Object, code)
}

/// `DELETE /apis/wasmgate.dev/v1alpha1/hosts/{name}`. A host that keeps heartbeating comes back.
pub async fn delete(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    user: Option<Extension<UserInfo>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: BodyResult,
) -> ApiResult<Response> {
    writable(&s)?;
    let params = parse_query(query.as_deref());
    let out = output(&headers)?;
    let dry = dry_run(&params)?;
    // DeleteOptions may carry preconditions.
    let bytes = body_bytes(body)?;
    let pre: Value = if bytes.is_empty() {
        Value::Null
    } else {
        // kube-apiserver refuses a body that is not DeleteOptions too.
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!("the DeleteOptions body is not valid JSON: {e}"))
        })?
    };
    let dry = dry
        || pre
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let existing = s
        .inventory
        .get(&name)
        .ok_or_else(|| ApiError::not_found(&name))?;
    if let Some(uid) = pre.pointer("/preconditions/uid").and_then(Value::as_str) {
        if existing.metadata.uid.as_deref() != Some(uid) {
            return Err(ApiError::conflict(
                &name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    existing.metadata.uid.as_deref().unwrap_or("")
                ),
            ));
        }
    }
    if let Some(rv) = pre
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
    {
        if existing.metadata.resource_version.as_deref() != Some(rv) {
            return Err(ApiError::conflict(
                &name,
                &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    existing.metadata.resource_version.as_deref().unwrap_or("")),
            ));
        }
    }
    let deleted = if dry {
        existing
    } else {
        s.inventory
            .remove(&name)
            .await
            .map_err(|e| write_error(&name, e))?
            .ok_or_else(|| ApiError::not_found(&name))?
    };
    log_write(&user, "delete", &name, dry);
    render_one(
        &normalized(deleted),
        out,
        IncludeObject::Object,
        StatusCode::OK,
    )
}

#[cfg(test)]
mod patch_limits {
    use super::*;

    #[test]
    fn copy_amplification_is_refused() {
        let mut doc = json!({"a": "x".repeat(1000)});
        // Each copy doubles the document: 14 of them would pass 3 MiB... 16 MB.
        let mut ops = vec![json!({"op": "add", "path": "/b", "value": {}})];
        ops.push(json!({"op": "copy", "from": "/a", "path": "/b/0"}));
        for i in 1..20 {
            ops.push(json!({"op": "copy", "from": "/b", "path": format!("/b/{i}")}));
        }
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).unwrap();
        let err = apply_json_patch(&mut doc, &patch).unwrap_err();
        assert!(matches!(err, JsonPatchError::TooLarge(_)), "{err}");
        assert!(err.to_string().contains("would exceed"), "{err}");
    }

    #[test]
    fn too_many_operations_are_refused_and_small_patches_apply() {
        let op = json!({"op": "test", "path": "/a", "value": 1});
        let many: json_patch::Patch =
            serde_json::from_value(Value::Array(vec![op; MAX_PATCH_OPERATIONS + 1])).unwrap();
        let mut doc = json!({"a": 1});
        assert!(apply_json_patch(&mut doc, &many)
            .unwrap_err()
            .to_string()
            .contains("operations"));
        let small: json_patch::Patch =
            serde_json::from_value(json!([{"op": "copy", "from": "/a", "path": "/b"}])).unwrap();
        apply_json_patch(&mut doc, &small).unwrap();
        assert_eq!(doc, json!({"a": 1, "b": 1}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::{router, AuthMode, Authenticator, LiveConfig, LiveInventory};
    use axum::body::Body;
    use axum::http::{Method, Request};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn app(history: usize) -> (axum::Router, ApiState) {
        let inventory = LiveInventory::new(LiveConfig {
            history,
            ..LiveConfig::default()
        });
        let auth = Authenticator::new(AuthMode::AllowAll, Duration::from_secs(10));
        let state = ApiState::new(inventory, auth);
        (router(state.clone()), state)
    }

    const BASE: &str = "/apis/wasmgate.dev/v1alpha1/hosts";

    fn host(name: &str, group: &str) -> Value {
        json!({"apiVersion": "wasmgate.dev/v1alpha1", "kind": "Host",
               "metadata": {"name": name, "labels": {"hostgroup": group}},
               "hostId": format!("id-{name}"), "status": {"version": "2.0.1"}})
    }

    async fn call(
        app: &axum::Router,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let code = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn crud_paging_and_errors() {
        let (app, _) = app(100);
        for (n, g) in [("a", "edge"), ("b", "edge"), ("c", "core")] {
            let (code, body) = call(&app, Method::POST, BASE, &[], Some(host(n, g))).await;
            assert_eq!(code, StatusCode::CREATED, "{body}");
            assert_eq!(body["metadata"]["name"], n);
        }
        let (code, body) = call(&app, Method::POST, BASE, &[], Some(host("a", "edge"))).await;
        assert_eq!(
            (code, body["reason"].as_str()),
            (StatusCode::CONFLICT, Some("AlreadyExists"))
        );

        let (code, page) = call(&app, Method::GET, &format!("{BASE}?limit=2"), &[], None).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(page["kind"], "HostList");
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        assert_eq!(page["items"][0]["kind"], "Host");
        assert_eq!(page["metadata"]["remainingItemCount"], 1);
        let token = page["metadata"]["continue"].as_str().unwrap();
        // The token is bound to the selectors of the list that issued it.
        let (code, body) = call(
            &app,
            Method::GET,
            &format!("{BASE}?limit=2&continue={token}&fieldSelector=metadata.name%3Dc"),
            &[],
            None,
        )
        .await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or("")
                .contains("other selectors"),
            "{body}"
        );
        // A change between pages does not show: the pages are one snapshot.
        call(&app, Method::POST, BASE, &[], Some(host("0-new", "edge"))).await;
        let (_, rest) = call(
            &app,
            Method::GET,
            &format!("{BASE}?limit=2&continue={token}"),
            &[],
            None,
        )
        .await;
        assert_eq!(rest["items"][0]["metadata"]["name"], "c", "{rest}");
        assert!(rest["metadata"].get("continue").is_none(), "{rest}");
        assert_eq!(
            rest["metadata"]["resourceVersion"],
            page["metadata"]["resourceVersion"]
        );
        // A token whose snapshot is unknown here (another replica's, or expired): the list goes
        // on after the last name it returned.
        let foreign = encode_token(&ContinueToken {
            id: 999,
            rv: 1,
            start: 1,
            after: "a".into(),
        })
        .unwrap();
        let (code, body) = call(
            &app,
            Method::GET,
            &format!("{BASE}?limit=1&continue={foreign}"),
            &[],
            None,
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        assert_eq!(body["items"][0]["metadata"]["name"], "b", "{body}");
        let (code, _) = call(
            &app,
            Method::GET,
            &format!("{BASE}?continue=garbage"),
            &[],
            None,
        )
        .await;
        assert_eq!(code, StatusCode::BAD_REQUEST);

        let (code, body) = call(
            &app,
            Method::GET,
            &format!("{BASE}?labelSelector=hostgroup%3Dcore"),
            &[],
            None,
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body["items"].as_array().unwrap().len(), 1, "{body}");
        let (code, _) = call(
            &app,
            Method::GET,
            &format!("{BASE}?labelSelector=a%20in%20(b"),
            &[],
            None,
        )
        .await;
        assert_eq!(code, StatusCode::BAD_REQUEST);

        let table = [(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )];
        let (_, t) = call(&app, Method::GET, BASE, &table, None).await;
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["rows"].as_array().unwrap().len(), 4);
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 15);
        let (_, t) = call(
            &app,
            Method::GET,
            &format!("{BASE}/a?includeObject=Object"),
            &table,
            None,
        )
        .await;
        assert_eq!(t["rows"][0]["object"]["kind"], "Host", "{t}");
        let proto = [("accept", "application/vnd.kubernetes.protobuf")];
        let (code, body) = call(&app, Method::GET, BASE, &proto, None).await;
        assert_eq!(
            (code, body["reason"].as_str()),
            (StatusCode::NOT_ACCEPTABLE, Some("NotAcceptable"))
        );
        let meta = [("accept", "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json")];
        let (_, m) = call(&app, Method::GET, BASE, &meta, None).await;
        assert_eq!(m["kind"], "PartialObjectMetadataList");

        let merge = [("content-type", "application/merge-patch+json")];
        let (code, body) = call(
            &app,
            Method::PATCH,
            &format!("{BASE}/a"),
            &merge,
            Some(json!({"metadata": {"labels": {"zone": "z1"}}})),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        assert_eq!(
            body["metadata"]["labels"],
            json!({"hostgroup": "edge", "zone": "z1"})
        );
        let jp = [("content-type", "application/json-patch+json")];
        let (code, body) = call(
            &app,
            Method::PATCH,
            &format!("{BASE}/a"),
            &jp,
            Some(json!([{"op": "add", "path": "/environment", "value": "prod"}])),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        assert_eq!(body["environment"], "prod");
        let (code, _) = call(
            &app,
            Method::PATCH,
            &format!("{BASE}/a"),
            &[("content-type", "text/plain")],
            Some(json!({})),
        )
        .await;
        assert_eq!(code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let (code, body) = call(
            &app,
            Method::PATCH,
            &format!("{BASE}/zz"),
            &merge,
            Some(json!({})),
        )
        .await;
        assert_eq!(
            (code, body["reason"].as_str()),
            (StatusCode::NOT_FOUND, Some("NotFound"))
        );
        let apply = [("content-type", "application/apply-patch+yaml")];
        let (code, body) = call(
            &app,
            Method::PATCH,
            &format!("{BASE}/applied"),
            &apply,
            Some(host("applied", "edge")),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");

        let mut stale = host("b", "edge");
        stale["metadata"]["resourceVersion"] = json!("1");
        let (code, body) = call(&app, Method::PUT, &format!("{BASE}/b"), &[], Some(stale)).await;
        assert_eq!(
            (code, body["reason"].as_str()),
            (StatusCode::CONFLICT, Some("Conflict")),
            "{body}"
        );
        let (code, _) = call(
            &app,
            Method::PUT,
            &format!("{BASE}/b"),
            &[],
            Some(host("other", "edge")),
        )
        .await;
        assert_eq!(code, StatusCode::BAD_REQUEST);

        let (code, body) = call(&app, Method::PUT, BASE, &[], Some(json!({}))).await;
        assert_eq!(
            (code, body["reason"].as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, Some("MethodNotAllowed"))
        );
        let (code, _) = call(
            &app,
            Method::DELETE,
            &format!("{BASE}/b?dryRun=All"),
            &[],
            None,
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        let (code, _) = call(&app, Method::DELETE, &format!("{BASE}/b"), &[], None).await;
        assert_eq!(code, StatusCode::OK);
        let (code, body) = call(&app, Method::GET, &format!("{BASE}/b"), &[], None).await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        assert_eq!(body["message"], "hosts.wasmgate.dev \"b\" not found");
    }

    async fn next_line(body: &mut Body) -> Value {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("a watch event within 5 s")
            .expect("the stream is open")
            .unwrap();
        let bytes = frame.into_data().unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(text.ends_with('\n'));
        serde_json::from_str(text.trim()).unwrap()
    }

    async fn open_watch(app: &axum::Router, uri: &str) -> Result<Body, (StatusCode, Value)> {
        let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        if resp.status() != StatusCode::OK {
            let code = resp.status();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            return Err((code, serde_json::from_slice(&bytes).unwrap_or(Value::Null)));
        }
        Ok(resp.into_body())
    }

    #[tokio::test]
    async fn watches() {
        let (app, state) = app(3);
        call(&app, Method::POST, BASE, &[], Some(host("a", "edge"))).await;
        let rv = state.inventory.resource_version();

        // From a resourceVersion: only later changes; selector transitions become ADDED/DELETED.
        let mut w = open_watch(
            &app,
            &format!("{BASE}?watch=1&resourceVersion={rv}&labelSelector=hostgroup%3Dedge"),
        )
        .await
        .unwrap();
        call(&app, Method::POST, BASE, &[], Some(host("b", "edge"))).await;
        call(&app, Method::POST, BASE, &[], Some(host("c", "core"))).await;
        let merge = [("content-type", "application/merge-patch+json")];
        call(
            &app,
            Method::PATCH,
            &format!("{BASE}/a"),
            &merge,
            Some(json!({"metadata": {"labels": {"hostgroup": "core"}}})),
        )
        .await;
        let ev = next_line(&mut w).await;
        assert_eq!(
            (
                ev["type"].as_str(),
                ev["object"]["metadata"]["name"].as_str()
            ),
            (Some("ADDED"), Some("b"))
        );
        let ev = next_line(&mut w).await;
        assert_eq!(
            (
                ev["type"].as_str(),
                ev["object"]["metadata"]["name"].as_str()
            ),
            (Some("DELETED"), Some("a")),
            "{ev}"
        );

        // Without a resourceVersion: synthetic ADDED for what exists.
        let mut w = open_watch(&app, &format!("{BASE}?watch=true"))
            .await
            .unwrap();
        let names: Vec<String> = [
            next_line(&mut w).await,
            next_line(&mut w).await,
            next_line(&mut w).await,
        ]
        .iter()
        .map(|e| {
            assert_eq!(e["type"], "ADDED");
            e["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
        assert_eq!(names, ["a", "b", "c"]);

        // WatchList: the initial events end with the annotated bookmark.
        let mut w = open_watch(&app, &format!("{BASE}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")).await.unwrap();
        for _ in 0..3 {
            assert_eq!(next_line(&mut w).await["type"], "ADDED");
        }
        let bm = next_line(&mut w).await;
        assert_eq!(bm["type"], "BOOKMARK");
        assert_eq!(
            bm["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );

        // Table watch: column definitions on the first event only.
        let req = Request::builder()
            .uri(format!(
                "{BASE}?watch=1&resourceVersion={}",
                state.inventory.resource_version()
            ))
            .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
            .body(Body::empty())
            .unwrap();
        let mut t = app.clone().oneshot(req).await.unwrap().into_body();
        call(&app, Method::POST, BASE, &[], Some(host("d", "edge"))).await;
        call(&app, Method::POST, BASE, &[], Some(host("e", "edge"))).await;
        let first = next_line(&mut t).await;
        assert_eq!(first["object"]["kind"], "Table");
        assert_eq!(
            first["object"]["columnDefinitions"]
                .as_array()
                .unwrap()
                .len(),
            15
        );
        let second = next_line(&mut t).await;
        assert_eq!(
            second["object"]["columnDefinitions"]
                .as_array()
                .unwrap()
                .len(),
            0
        );
        assert_eq!(second["object"]["rows"][0]["cells"][0], "e");

        // Too old a resourceVersion (history holds 3 events): 410 Expired.
        let (code, body) = open_watch(&app, &format!("{BASE}?watch=1&resourceVersion=1"))
            .await
            .unwrap_err();
        assert_eq!(
            (code, body["reason"].as_str()),
            (StatusCode::GONE, Some("Expired")),
            "{body}"
        );

        // timeoutSeconds ends the stream.
        let mut w = open_watch(
            &app,
            &format!(
                "{BASE}?watch=1&resourceVersion={}&timeoutSeconds=1",
                state.inventory.resource_version()
            ),
        )
        .await
        .unwrap();
        let end = tokio::time::timeout(Duration::from_secs(5), w.frame())
            .await
            .unwrap();
        assert!(end.is_none(), "the stream should end");
    }

    #[test]
    fn continue_tokens_round_trip() {
        let t = ContinueToken {
            id: 7,
            rv: 42,
            start: 500,
            after: "h".into(),
        };
        let s = encode_token(&t).unwrap();
        let back = decode_token(&s).unwrap();
        assert_eq!((back.id, back.rv, back.start), (7, 42, 500));
        assert!(decode_token("not a token").is_none());
    }

    #[test]
    fn validation() {
        let mut h = Host::default();
        let errs = validate(&h);
        assert_eq!(errs.len(), 2, "{errs:?}");
        h.metadata.name = Some("Bad_Name".into());
        h.host_id = "x".into();
        assert_eq!(validate(&h)[0].0, "metadata.name");
        h.metadata.name = Some("host-1.edge".into());
        assert!(validate(&h).is_empty());
        h.metadata.labels = Some([("hostgroup".to_string(), "bad value".to_string())].into());
        assert_eq!(validate(&h)[0].0, "metadata.labels[hostgroup]");
    }

    #[test]
    fn directives_are_dropped() {
        let mut p = json!({"$setElementOrder/x": [1], "metadata": {"$patch": "replace", "labels": {"a": "b"}}});
        strip_directives(&mut p);
        assert_eq!(p, json!({"metadata": {"labels": {"a": "b"}}}));
    }

    #[test]
    fn documents() {
        assert!(parse_document(b"{\"a\":1}", "application/json").is_ok());
        assert!(parse_document(b"a: 1\n", "application/yaml").is_ok());
        let e = parse_document(b"x", "application/vnd.kubernetes.protobuf").unwrap_err();
        assert_eq!(e.code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let e = decode_host(json!({"apiVersion": "v1", "kind": "Pod"})).unwrap_err();
        assert_eq!(e.code, StatusCode::BAD_REQUEST);
    }
}
