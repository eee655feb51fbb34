//! What every watch of this API shares, whatever it watches: the watch options as
//! kube-apiserver reads them, the event lines, and the task that streams live events with
//! bookmarks and a deadline. Each resource supplies a [`WatchEncoder`].

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use crate::inventory::WatchError;

use super::negotiate::Output;
use super::params::{flag, parse_rv, Params};
use super::status::{ApiError, ApiResult};

/// Bookmark interval of watches that allow bookmarks.
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(30);
/// Watch duration when the client sets no `timeoutSeconds` (kube-apiserver: 30-60 min).
pub const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// The watch parameters of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchOptions {
    /// `resourceVersion`.
    pub resource_version: Option<u64>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial: Option<bool>,
    /// `timeoutSeconds` (or the default).
    pub timeout: Duration,
}

impl WatchOptions {
    /// Reads and checks the parameters as kube-apiserver does (WatchList needs
    /// `resourceVersionMatch=NotOlderThan` and bookmarks).
    pub fn parse(params: &Params) -> ApiResult<Self> {
        let resource_version = parse_rv(params)?;
        let bookmarks = flag(params, "allowWatchBookmarks")?.unwrap_or(false);
        let send_initial = flag(params, "sendInitialEvents")?;
        let rv_match = params
            .get("resourceVersionMatch")
            .map(String::as_str)
            .unwrap_or("");
        if send_initial == Some(true) {
            if rv_match != "NotOlderThan" {
                return Err(ApiError::invalid_options(
                    "resourceVersionMatch: Forbidden: sendInitialEvents requires setting \
                     resourceVersionMatch to NotOlderThan",
                ));
            }
            if !bookmarks {
                return Err(ApiError::invalid_options(
                    "allowWatchBookmarks: Required value: allowWatchBookmarks must be set to \
                     true when sendInitialEvents is set",
                ));
            }
        } else if !rv_match.is_empty() && send_initial.is_none() {
            return Err(ApiError::invalid_options(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch \
                 unless sendInitialEvents is provided",
            ));
        }
        let timeout = match params.get("timeoutSeconds").map(String::as_str) {
            None | Some("") => DEFAULT_WATCH_TIMEOUT,
            Some(v) => match v.parse::<u64>() {
                Ok(0) => DEFAULT_WATCH_TIMEOUT,
                Ok(n) => Duration::from_secs(n),
                Err(_) => {
                    return Err(ApiError::bad_request(format!(
                        "timeoutSeconds: invalid value {v:?}"
                    )))
                }
            },
        };
        Ok(Self {
            resource_version,
            bookmarks,
            send_initial,
            timeout,
        })
    }

    /// Whether the current objects are sent first as ADDED: `sendInitialEvents=true`, or no
    /// (or a zero) resourceVersion without `sendInitialEvents=false`.
    pub fn initial_events(&self) -> bool {
        self.send_initial
            .unwrap_or(matches!(self.resource_version, None | Some(0)))
    }

    /// Whether the watch starts from the current state (no replay from the history).
    pub fn from_now(&self) -> bool {
        self.initial_events() || matches!(self.resource_version, None | Some(0))
    }
}

/// One line of a watch stream: `{"type": kind, "object": object}` and a newline.
pub fn line(kind: &str, object: &Value) -> Bytes {
    let mut v = super::status::json_body(&json!({"type": kind, "object": object}));
    v.push(b'\n');
    v.into()
}

/// An ERROR line carrying `e` as a Status.
pub fn error_line(e: &ApiError) -> Bytes {
    line("ERROR", &e.to_status())
}

/// A BOOKMARK line in the output's form; `kind` and `api_version` name the resource's kind
/// for plain JSON.
pub fn bookmark_line(
    out: Output,
    kind: &str,
    api_version: &str,
    rv: u64,
    initial_events_end: bool,
) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let object = match out {
        Output::Json => json!({"kind": kind, "apiVersion": api_version, "metadata": metadata}),
        Output::Metadata => json!({
            "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
        }),
        Output::Table { v1beta1 } => json!({
            "kind": "Table",
            "apiVersion": if v1beta1 { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" },
            "metadata": metadata,
            "columnDefinitions": [],
            "rows": [],
        }),
    };
    line("BOOKMARK", &object)
}

/// The Status of a watch that cannot start: 410 Expired for a version older than the
/// history, 504 Timeout for one newer than any issued (both as kube-apiserver answers).
pub fn gone(e: WatchError) -> ApiError {
    match e {
        WatchError::Gone { oldest } => ApiError::expired(format!(
            "too old resource version (the oldest available is {oldest})"
        )),
        // kube-apiserver: 504 Timeout "Too large resource version: X, current: Y".
        too_large @ WatchError::TooLarge { .. } => ApiError::new(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            "Timeout",
            too_large.to_string(),
        ),
    }
}

/// Turns a resource's store events into the lines one watcher receives.
pub trait WatchEncoder: Send + 'static {
    /// The store's event type.
    type Event: Clone + Send + 'static;
    /// The event's resourceVersion (0: unknown).
    fn resource_version(ev: &Self::Event) -> u64;
    /// A stored object, as a watch's initial events list them.
    type Object: Send + Sync + 'static;
    /// The line for an event, if this watcher sees it (selectors, namespace).
    fn event(&mut self, ev: &Self::Event) -> Option<Bytes>;
    /// The ADDED line of an initial object (one that matches the watcher's selectors).
    fn added(&mut self, object: &Self::Object) -> Bytes;
    /// A BOOKMARK line at `rv`.
    fn bookmark(&mut self, rv: u64, initial_events_end: bool) -> Bytes;
}

/// What a watch sends before its live events.
pub struct First<T> {
    /// The current objects, sent as ADDED: shared with the store and encoded one at a time as
    /// the client takes them, so a watch of 100,000 objects never holds all their lines.
    pub initial: Vec<T>,
    /// Lines sent after them (replayed events; the initial-events-end BOOKMARK).
    pub lines: Vec<Bytes>,
}

impl<T> Default for First<T> {
    fn default() -> Self {
        Self {
            initial: Vec::new(),
            lines: Vec::new(),
        }
    }
}

/// The streaming response of a watch: `first` (initial objects, replayed events), then live
/// events from `rx` after `last_rv`, bookmarks when asked for, until the timeout, the client
/// leaving, or the watcher falling behind (an ERROR 410 line, so that the client re-lists).
pub fn respond<E: WatchEncoder>(
    rx: broadcast::Receiver<E::Event>,
    enc: E,
    first: First<E::Object>,
    last_rv: u64,
    options: WatchOptions,
) -> Response {
    let (tx, body_rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(pump(rx, tx, enc, first, last_rv, options));
    let stream = futures_util::stream::unfold(body_rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

async fn pump<E: WatchEncoder>(
    mut rx: broadcast::Receiver<E::Event>,
    tx: mpsc::Sender<Bytes>,
    mut enc: E,
    first: First<E::Object>,
    mut last_rv: u64,
    options: WatchOptions,
) {
    for object in &first.initial {
        if tx.send(enc.added(object)).await.is_err() {
            return;
        }
    }
    drop(first.initial);
    for line in first.lines {
        if tx.send(line).await.is_err() {
            return;
        }
    }
    let deadline = tokio::time::sleep(options.timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + BOOKMARK_INTERVAL,
        BOOKMARK_INTERVAL,
    );
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            _ = tx.closed() => return,
            _ = ticker.tick(), if options.bookmarks => {
                let line = enc.bookmark(last_rv, false);
                if tx.send(line).await.is_err() {
                    return;
                }
            }
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    let r = E::resource_version(&ev);
                    if r != 0 && r <= last_rv {
                        continue; // already sent (replay/live overlap)
                    }
                    last_rv = last_rv.max(r);
                    if let Some(line) = enc.event(&ev) {
                        if tx.send(line).await.is_err() {
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "a watcher fell behind; ending its watch with 410");
                    let e = ApiError::expired(format!(
                        "too old resource version: {last_rv} (the watch fell {n} events behind)"
                    ));
                    let _ = tx.send(error_line(&e)).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
    if options.bookmarks {
        let _ = tx.send(enc.bookmark(last_rv, false)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        super::super::params::parse_query(Some(q))
    }

    #[test]
    fn options_like_kube() {
        let o = WatchOptions::parse(&params("")).unwrap();
        assert!(o.initial_events() && o.from_now());
        assert_eq!(o.timeout, DEFAULT_WATCH_TIMEOUT);
        let o = WatchOptions::parse(&params("resourceVersion=7&timeoutSeconds=5")).unwrap();
        assert!(!o.initial_events() && !o.from_now());
        assert_eq!(o.timeout, Duration::from_secs(5));
        let o = WatchOptions::parse(&params(
            "sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&resourceVersion=7",
        ))
        .unwrap();
        assert!(o.initial_events() && o.bookmarks);
        for bad in [
            "sendInitialEvents=true&resourceVersionMatch=NotOlderThan",
            "sendInitialEvents=true&allowWatchBookmarks=true",
            "resourceVersionMatch=NotOlderThan",
            "timeoutSeconds=soon",
        ] {
            assert!(WatchOptions::parse(&params(bad)).is_err(), "{bad}");
        }
        let b = bookmark_line(Output::Json, "Host", "wasmgate.dev/v1alpha1", 9, true);
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["type"], "BOOKMARK");
        assert_eq!(
            v["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );
        assert_eq!(v["object"]["kind"], "Host");
    }
}
