//! The `hosts` aggregated API: `wasmgate.dev/v1alpha1`, resource `hosts` (kind Host,
//! cluster-scoped), served from the live inventory behind kube-apiserver's aggregation layer.
//!
//! - [`discovery`]: `/apis` (legacy and aggregated discovery v2), `/apis/wasmgate.dev`,
//!   `/apis/wasmgate.dev/v1alpha1`;
//! - [`openapi`]: `/openapi/v2`, `/openapi/v3`, `/openapi/v3/apis/wasmgate.dev/v1alpha1`;
//! - [`hosts`]: list (limit/continue), get, watch (resourceVersion, bookmarks, WatchList,
//!   410 Expired), create, update, patch (merge, strategic merge as merge, JSON patch, apply as
//!   merge), delete; label and field [`selectors`]; [`table`] output for kubectl;
//! - [`auth`]: front-proxy authentication from the `extension-apiserver-authentication`
//!   ConfigMap and SubjectAccessReview authorization;
//! - [`status`]: every error is a Kubernetes `Status`.
//!
//! Mount [`router`] next to the webhook routes; authentication applies to these routes only (the
//! webhook and health paths carry no client certificate).

pub mod auth;
pub mod discovery;
pub mod hosts;
mod list_body;
pub mod negotiate;
pub mod openapi;
pub mod params;
pub mod resolutions;
pub mod selectors;
pub mod status;
pub mod table;
pub mod watch;
mod x509;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

use crate::crd::Host;

pub use crate::inventory::{LiveConfig, LiveInventory, WatchError, WatchEvent, WatchEventType};
pub use auth::{AuthMode, Authenticator, UserInfo};
pub use status::ApiError;

/// The API group.
pub const GROUP: &str = crate::crd::WASMGATE_GROUP;
/// The API version.
pub const VERSION: &str = crate::crd::WASMGATE_VERSION;
/// The resource (plural).
pub const RESOURCE: &str = "hosts";
/// The singular resource name.
pub const SINGULAR: &str = "host";
/// The kind.
pub const KIND: &str = "Host";
/// The list kind.
pub const LIST_KIND: &str = "HostList";

/// Largest request body (kube-apiserver's own limit is 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// `apiVersion` of a Host.
pub fn api_version() -> String {
    format!("{GROUP}/{VERSION}")
}

/// The prerendered OpenAPI documents (with ETags).
struct Docs {
    v2: Bytes,
    v2_etag: String,
    v3: Bytes,
    v3_etag: String,
    v3_root: Bytes,
}

impl Docs {
    /// The documents, rendered once per process (they depend on nothing but the code; a
    /// fresh render takes milliseconds, which every [`ApiState::new`] used to pay).
    fn shared() -> Arc<Self> {
        static DOCS: std::sync::OnceLock<Arc<Docs>> = std::sync::OnceLock::new();
        DOCS.get_or_init(|| Arc::new(Self::new())).clone()
    }

    fn new() -> Self {
        let v2 = status::json_body(&openapi::v2_document());
        let v3 = status::json_body(&openapi::v3_document());
        let v2_etag = discovery::etag(&v2);
        let v3_etag = discovery::etag(&v3);
        let hash = v3_etag.trim_matches('"').to_string();
        let v3_root = status::json_body(&openapi::v3_discovery(&hash));
        Self {
            v2: v2.into(),
            v2_etag,
            v3: v3.into(),
            v3_etag,
            v3_root: v3_root.into(),
        }
    }
}

/// State of the aggregated API handlers.
#[derive(Clone)]
pub struct ApiState {
    /// The live inventory served as `hosts`.
    pub inventory: Arc<LiveInventory>,
    /// Authentication and authorization.
    pub auth: Arc<Authenticator>,
    /// The reconciler's verdicts, served as `workloadresolutions`.
    pub resolutions: Arc<crate::store::ResolutionStore>,
    lists: Arc<hosts::ListCache>,
    docs: Arc<Docs>,
}

impl ApiState {
    /// State serving `inventory`, guarded by `auth`.
    pub fn new(inventory: Arc<LiveInventory>, auth: Arc<Authenticator>) -> Self {
        Self {
            inventory,
            auth,
            resolutions: crate::store::ResolutionStore::new(),
            lists: Arc::new(hosts::list_cache()),
            docs: Docs::shared(),
        }
    }

    /// Serves `store` as `workloadresolutions` (empty without a reconciler).
    pub fn with_resolutions(mut self, store: Arc<crate::store::ResolutionStore>) -> Self {
        self.resolutions = store;
        self
    }
}

/// A JSON response.
pub(crate) fn json_response(code: StatusCode, body: &Value) -> Response {
    json_bytes(code, status::json_body(body))
}

pub(crate) fn json_bytes(code: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (code, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A host with `apiVersion` and `kind` filled in.
pub fn normalized(mut host: Host) -> Host {
    if host.api_version.is_empty() {
        host.api_version = api_version();
    }
    if host.kind.is_empty() {
        host.kind = KIND.into();
    }
    host
}

/// A host as JSON, with `apiVersion` and `kind`.
pub fn host_json(host: &Host) -> Result<Value, status::EncodeError> {
    let mut v = status::encode(|| host_what(host), host)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("apiVersion".into(), Value::String(api_version()));
        o.insert("kind".into(), Value::String(KIND.into()));
    }
    Ok(v)
}

/// How errors name a host: `Host "name"`.
pub(crate) fn host_what(host: &Host) -> String {
    format!("{KIND} {:?}", host.metadata.name.as_deref().unwrap_or(""))
}

async fn apis(headers: HeaderMap) -> Response {
    discovery::apis(&headers)
}

async fn group() -> Response {
    json_response(StatusCode::OK, &discovery::api_group())
}

async fn resources() -> Response {
    json_response(StatusCode::OK, &discovery::api_resource_list())
}

/// A document answered with its ETag: 304 Not Modified when the client already holds `tag`.
fn conditional_doc(
    headers: &HeaderMap,
    body: Bytes,
    tag: &str,
    content_type: HeaderValue,
) -> Response {
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut resp = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, body).into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    resp
}

fn cached_doc(headers: &HeaderMap, body: &Bytes, tag: &str) -> Response {
    conditional_doc(
        headers,
        body.clone(),
        tag,
        HeaderValue::from_static("application/json"),
    )
}

async fn openapi_v2(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    cached_doc(&headers, &s.docs.v2, &s.docs.v2_etag)
}

async fn openapi_v3_root(State(s): State<ApiState>) -> Response {
    json_bytes(StatusCode::OK, s.docs.v3_root.to_vec())
}

async fn openapi_v3_doc(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    cached_doc(&headers, &s.docs.v3, &s.docs.v3_etag)
}

async fn method_not_allowed(method: Method) -> Response {
    ApiError::method_not_allowed(method.as_str()).into_response()
}

/// The aggregated API routes, authenticated and authorized by `state.auth`.
pub fn router(state: ApiState) -> Router {
    let gv = format!("/apis/{GROUP}/{VERSION}");
    let collection = format!("{gv}/{RESOURCE}");
    let item = format!("{collection}/{{name}}");
    Router::new()
        .route("/apis", get(apis))
        .route(&format!("/apis/{GROUP}"), get(group))
        .route(&gv, get(resources))
        .route(
            &collection,
            get(hosts::list)
                .post(hosts::create)
                .fallback(method_not_allowed),
        )
        .route(
            &item,
            get(hosts::get)
                .put(hosts::update)
                .patch(hosts::patch)
                .delete(hosts::delete)
                .fallback(method_not_allowed),
        )
        .route(
            &format!("{gv}/watch/{RESOURCE}"),
            get(hosts::watch_collection),
        )
        .route(
            &format!("{gv}/watch/{RESOURCE}/{{name}}"),
            get(hosts::watch_item),
        )
        .route(
            &format!("{gv}/{}", crate::crd::resolution::RESOURCE),
            get(resolutions::list_all).fallback(resolutions::read_only),
        )
        .route(
            &format!(
                "{gv}/namespaces/{{namespace}}/{}",
                crate::crd::resolution::RESOURCE
            ),
            get(resolutions::list_namespaced).fallback(resolutions::read_only),
        )
        .route(
            &format!(
                "{gv}/namespaces/{{namespace}}/{}/{{name}}",
                crate::crd::resolution::RESOURCE
            ),
            get(resolutions::get).fallback(resolutions::read_only),
        )
        .route(
            &format!("{gv}/watch/{}", crate::crd::resolution::RESOURCE),
            get(resolutions::watch_all),
        )
        .route(
            &format!(
                "{gv}/watch/namespaces/{{namespace}}/{}",
                crate::crd::resolution::RESOURCE
            ),
            get(resolutions::watch_namespaced),
        )
        .route(
            &format!(
                "{gv}/watch/namespaces/{{namespace}}/{}/{{name}}",
                crate::crd::resolution::RESOURCE
            ),
            get(resolutions::watch_item),
        )
        .route("/openapi/v2", get(openapi_v2))
        .route("/openapi/v3", get(openapi_v3_root))
        .route(
            &format!("/openapi/v3/apis/{GROUP}/{VERSION}"),
            get(openapi_v3_doc),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .route_layer(axum::middleware::from_fn_with_state(
            state.auth.clone(),
            auth::middleware,
        ))
        .with_state(state)
}

/// How the aggregated API authenticates callers (`--api-auth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ApiAuth {
    /// Like every aggregated API server: front-proxy client certificates (from the
    /// extension-apiserver-authentication ConfigMap), client certificates, bearer tokens
    /// (TokenReview); authorization by SubjectAccessReview.
    Delegated,
    /// No authentication or authorization (development only; loopback --listen addresses only).
    None,
}

/// Options of the `hosts` aggregated API (part of `wasmgate serve`).
#[derive(Clone, Debug, clap::Args)]
pub struct ApiArgs {
    /// Authentication of the hosts API.
    #[arg(long, value_enum, default_value_t = ApiAuth::Delegated, env = "WASMGATE_API_AUTH")]
    pub api_auth: ApiAuth,
    /// kubeconfig for the Kubernetes API (ConfigMap, TokenReview, SubjectAccessReview)
    /// [default: in-cluster, or $KUBECONFIG, or ~/.kube/config].
    #[arg(long, env = "WASMGATE_KUBECONFIG")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// How often the extension-apiserver-authentication ConfigMap is re-read, in seconds.
    #[arg(long, default_value_t = 10, env = "WASMGATE_AUTH_RELOAD_SECONDS")]
    pub auth_reload_seconds: u64,
    /// How long SubjectAccessReview and TokenReview answers are reused, in seconds.
    #[arg(long, default_value_t = 10, env = "WASMGATE_AUTH_CACHE_SECONDS")]
    pub auth_cache_seconds: u64,
}

impl ApiArgs {
    /// Refuses `--api-auth none` unless wasmgate listens on loopback only (`loopback`). `serve`
    /// checks this before it starts anything, so a refused start writes nothing to the cluster
    /// (no Lease taken, no certificate Secret).
    pub fn check_listen(&self, loopback: bool) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.api_auth != ApiAuth::None || loopback,
            "--api-auth none serves the hosts API to anyone: it is allowed on a loopback \
             --listen address only"
        );
        Ok(())
    }
}

/// Sets up authentication (loading the ConfigMap once, then re-reading it in the background) and
/// returns the hosts API routes. `loopback`: whether wasmgate listens on loopback only (required
/// for `--api-auth none`). Without a reachable Kubernetes API in delegated mode, the hosts API
/// refuses every request (401) and the webhooks keep working.
pub async fn setup(
    args: &ApiArgs,
    client: Result<kube::Client, String>,
    inventory: Arc<LiveInventory>,
    resolutions: Arc<crate::store::ResolutionStore>,
    loopback: bool,
) -> anyhow::Result<Router> {
    let ttl = std::time::Duration::from_secs(args.auth_cache_seconds);
    let auth = match args.api_auth {
        ApiAuth::None => {
            args.check_listen(loopback)?;
            tracing::warn!("--api-auth none: the hosts API is served without authentication");
            Authenticator::new(AuthMode::AllowAll, ttl)
        }
        ApiAuth::Delegated => match client {
            Ok(client) => {
                let auth = Authenticator::new(AuthMode::Delegated(client), ttl);
                match tokio::time::timeout(std::time::Duration::from_secs(10), auth.reload()).await
                {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "front-proxy authentication not configured yet; retrying in the background"),
                    Err(_) => tracing::warn!("reading the authentication ConfigMap timed out; retrying in the background"),
                }
                auth.spawn_reloader(std::time::Duration::from_secs(
                    args.auth_reload_seconds.max(1),
                ));
                auth
            }
            Err(e) => {
                tracing::warn!(error = %e, "no Kubernetes API to delegate authentication to: the hosts API refuses every request (the webhooks are unaffected); use --api-auth none for local development");
                Authenticator::new(
                    AuthMode::Unavailable(format!(
                        "no Kubernetes API to authenticate against: {e}"
                    )),
                    ttl,
                )
            }
        },
    };
    Ok(router(
        ApiState::new(inventory, auth).with_resolutions(resolutions),
    ))
}
