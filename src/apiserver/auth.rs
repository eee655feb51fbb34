//! Delegated authentication and authorization, as a generic Kubernetes API server does it.
//!
//! **Authentication** (in this order, the first that applies wins):
//! 1. Front proxy (the aggregator): the TLS client certificate chains to
//!    `requestheader-client-ca-file` (with the clientAuth usage), its CN is in
//!    `requestheader-allowed-names` (an empty list allows any CN), and a username header is set;
//!    then the user, groups, extras (and uid) come from the `X-Remote-*` headers named by the
//!    ConfigMap. A verified certificate whose CN is not allowed is refused.
//! 2. A client certificate that chains to `client-ca-file`: user = CN, groups = O.
//! 3. `Authorization: Bearer` → `TokenReview` (cached 10 s).
//!
//! Anything else (no certificate, an unknown certificate, forged `X-Remote-*` headers) is 401.
//! The configuration comes from the `kube-system/extension-apiserver-authentication` ConfigMap
//! that kube-apiserver maintains; it is re-read periodically and swapped when it changes (CAs
//! rotate).
//!
//! **Authorization**: group `system:masters` is always allowed (the availability probe is
//! `system:kube-aggregator` in that group); everything else is a `SubjectAccessReview`, allowed and
//! denied answers cached 10 s, keyed by the user and the request attributes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_server::tls::TlsInfo;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;
use kube::{Api, Client};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use super::status::ApiError;
use super::{x509, GROUP, RESOURCE, VERSION};
use crate::crd::resolution;

/// The ConfigMap kube-apiserver publishes its authentication settings in.
pub const AUTH_CONFIGMAP: (&str, &str) = ("kube-system", "extension-apiserver-authentication");

/// The longest wait for one Kubernetes API call made on a request's behalf (kube's client has
/// no read timeout of its own).
const KUBE_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long SubjectAccessReview and TokenReview answers are reused.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(10);

/// An authenticated caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// User name.
    pub name: String,
    /// UID, when known.
    pub uid: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Extra attributes (keys lower-cased).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}

/// The request-header (front proxy) settings.
pub struct RequestHeaderConfig {
    verifier: Arc<dyn ClientCertVerifier>,
    /// Allowed client certificate CNs (empty: any).
    pub allowed_names: Vec<String>,
    /// Username headers (first non-empty wins).
    pub username_headers: Vec<String>,
    /// Group headers (all values).
    pub group_headers: Vec<String>,
    /// Extra header prefixes.
    pub extra_prefixes: Vec<String>,
    /// UID headers.
    pub uid_headers: Vec<String>,
}

/// Everything the authenticator reads from the ConfigMap.
pub struct AuthConfig {
    /// The front-proxy settings (absent when the cluster has no aggregation layer configured).
    pub requestheader: Option<RequestHeaderConfig>,
    /// The verifier for ordinary client certificates (`client-ca-file`).
    client_ca: Option<Arc<dyn ClientCertVerifier>>,
    /// The data it was built from, to detect changes.
    source: BTreeMap<String, String>,
}

/// Why a CA bundle of the authentication ConfigMap cannot verify client certificates.
#[derive(Debug, thiserror::Error)]
pub enum CaBundleError {
    /// The PEM does not parse.
    #[error("bad PEM: {0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    /// No certificate in the bundle is usable as a trust anchor.
    #[error("no usable CA certificate")]
    Empty,
    /// rustls refuses to build a verifier from the anchors.
    #[error(transparent)]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Why the authentication configuration could not be (re)loaded.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// One of the ConfigMap's CA bundles is unusable.
    #[error("{key}: {source}")]
    CaBundle {
        /// The ConfigMap key (`client-ca-file` or `requestheader-client-ca-file`).
        key: &'static str,
        /// Why.
        #[source]
        source: CaBundleError,
    },
    /// Reading the ConfigMap took longer than the Kubernetes call timeout.
    #[error("reading {}/{}: timed out", AUTH_CONFIGMAP.0, AUTH_CONFIGMAP.1)]
    Timeout,
    /// Reading the ConfigMap failed.
    #[error("reading {ns}/{name}: {source}", ns = AUTH_CONFIGMAP.0, name = AUTH_CONFIGMAP.1)]
    Read {
        /// kube's error.
        #[source]
        source: kube::Error,
    },
}

/// Why a SubjectAccessReview gave no answer (a 500 for the request being authorized).
#[derive(Debug, thiserror::Error)]
pub enum AuthorizationError {
    /// kube-apiserver did not answer within the Kubernetes call timeout.
    #[error("SubjectAccessReview timed out")]
    Timeout,
    /// The review could not be created.
    #[error("SubjectAccessReview failed: {0}")]
    Failed(#[source] kube::Error),
}

impl From<AuthorizationError> for ApiError {
    fn from(e: AuthorizationError) -> Self {
        tracing::warn!(error = %e, "a request could not be authorized");
        ApiError::internal(e.to_string())
    }
}

fn verifier_for(pem: &str) -> Result<Arc<dyn ClientCertVerifier>, CaBundleError> {
    let mut roots = RootCertStore::empty();
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert?;
        // Expired or odd certificates in a bundle are skipped, as kube-apiserver filters them.
        if roots.add(cert).is_ok() {
            n += 1;
        }
    }
    if n == 0 {
        return Err(CaBundleError::Empty);
    }
    Ok(WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()?)
}

fn json_list(data: &BTreeMap<String, String>, key: &str, default: &[&str]) -> Vec<String> {
    match data.get(key).map(|s| s.trim()) {
        None | Some("") => default.iter().map(|s| s.to_string()).collect(),
        Some(s) => serde_json::from_str::<Vec<String>>(s)
            .unwrap_or_else(|_| s.split(',').map(|x| x.trim().to_string()).collect()),
    }
}

impl AuthConfig {
    /// Builds the configuration from the ConfigMap's data.
    pub fn from_configmap_data(data: &BTreeMap<String, String>) -> Result<Self, AuthConfigError> {
        let requestheader = match data.get("requestheader-client-ca-file") {
            Some(pem) if !pem.trim().is_empty() => Some(RequestHeaderConfig {
                verifier: verifier_for(pem).map_err(|source| AuthConfigError::CaBundle {
                    key: "requestheader-client-ca-file",
                    source,
                })?,
                allowed_names: json_list(data, "requestheader-allowed-names", &[]),
                username_headers: json_list(
                    data,
                    "requestheader-username-headers",
                    &["X-Remote-User"],
                ),
                group_headers: json_list(data, "requestheader-group-headers", &["X-Remote-Group"]),
                extra_prefixes: json_list(
                    data,
                    "requestheader-extra-headers-prefix",
                    &["X-Remote-Extra-"],
                ),
                uid_headers: json_list(data, "requestheader-uid-headers", &[]),
            }),
            _ => None,
        };
        let client_ca =
            match data.get("client-ca-file") {
                Some(pem) if !pem.trim().is_empty() => Some(verifier_for(pem).map_err(
                    |source| AuthConfigError::CaBundle {
                        key: "client-ca-file",
                        source,
                    },
                )?),
                _ => None,
            };
        Ok(Self {
            requestheader,
            client_ca,
            source: data.clone(),
        })
    }
}

/// How requests to the aggregated API are authenticated and authorized.
pub enum AuthMode {
    /// The generic API server way: front proxy / client certificates / TokenReview, then
    /// SubjectAccessReview.
    Delegated(Client),
    /// Delegated authentication is configured but no cluster is reachable: everyone is refused.
    Unavailable(String),
    /// Development only (loopback): every request is allowed, as `system:anonymous`.
    AllowAll,
}

/// Which request is being authorized.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attributes {
    /// get, list, watch, create, update, patch, delete, deletecollection (resource requests), or
    /// the lower-cased HTTP method (non-resource requests).
    pub verb: String,
    /// `Some(name)` (possibly empty) for a resource request; `None` for a non-resource path.
    pub resource_name: Option<String>,
    /// The resource: `hosts` or `workloadresolutions` (empty for a non-resource path).
    pub resource: String,
    /// The namespace of a namespaced request.
    pub namespace: Option<String>,
    /// The request path.
    pub path: String,
}

impl Attributes {
    /// Derives the attributes of a request, as kube-apiserver's RequestInfoFactory does.
    pub fn of(method: &Method, path: &str, query: Option<&str>) -> Self {
        let prefix = format!("/apis/{GROUP}/{VERSION}/");
        // The same parser the handlers use, so both read the same value.
        let params = super::params::parse_query(query);
        let query_has = |key: &str| -> Option<String> { params.get(key).cloned() };
        let non_resource = || Self {
            verb: method.as_str().to_ascii_lowercase(),
            resource_name: None,
            resource: String::new(),
            namespace: None,
            path: path.to_string(),
        };
        let Some(rest) = path.strip_prefix(&prefix) else {
            return non_resource();
        };
        let mut parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        let mut watch_path = false;
        if parts.first() == Some(&"watch") {
            watch_path = true;
            parts.remove(0);
        }
        let mut namespace = None;
        if parts.first() == Some(&"namespaces") && parts.len() >= 3 {
            namespace = Some(parts[1].to_string());
            parts.drain(..2);
        }
        let resource = match (parts.first(), &namespace) {
            (Some(&RESOURCE), None) => RESOURCE,
            (Some(&resolution::RESOURCE), _) => resolution::RESOURCE,
            _ => return non_resource(),
        };
        let mut name = parts.get(1).map(|s| s.to_string()).unwrap_or_default();
        let is_watch = watch_path || query_has("watch").is_some_and(|v| v == "true" || v == "1");
        let verb = match *method {
            Method::GET | Method::HEAD if is_watch => "watch",
            Method::GET | Method::HEAD if name.is_empty() => "list",
            Method::GET | Method::HEAD => "get",
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE if name.is_empty() => "deletecollection",
            Method::DELETE => "delete",
            _ => "",
        };
        // A list or watch of one object by fieldSelector is authorized as that object.
        if (verb == "list" || verb == "watch") && name.is_empty() {
            if let Some(sel) = query_has("fieldSelector") {
                if let Ok(fs) = super::selectors::FieldSelector::parse(&sel) {
                    if let Some(n) = fs.exact_name() {
                        name = n.to_string();
                    }
                }
            }
        }
        Self {
            verb: verb.to_string(),
            resource_name: Some(name),
            resource: resource.to_string(),
            namespace,
            path: path.to_string(),
        }
    }

    /// kube-apiserver's wording of a denial.
    pub fn forbidden(&self, user: &str, reason: &str) -> ApiError {
        let suffix = if reason.is_empty() {
            String::new()
        } else {
            format!(": {reason}")
        };
        match &self.resource_name {
            Some(name) => {
                let resource = &self.resource;
                let subject = if name.is_empty() {
                    format!("{resource}.{GROUP}")
                } else {
                    format!("{resource}.{GROUP} \"{name}\"")
                };
                let scope = match &self.namespace {
                    Some(ns) => format!("in the namespace \"{ns}\""),
                    None => "at the cluster scope".to_string(),
                };
                ApiError::forbidden(
                    format!(
                        "{subject} is forbidden: User \"{user}\" cannot {} resource \"{resource}\" \
                         in API group \"{GROUP}\" {scope}{suffix}",
                        self.verb
                    ),
                    (!name.is_empty()).then_some(name.as_str()),
                )
            }
            None => ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "Forbidden",
                format!(
                    "forbidden: User \"{user}\" cannot {} path \"{}\"{suffix}",
                    self.verb, self.path
                ),
            ),
        }
    }
}

use super::params::path_unescape as percent_decode;

#[derive(Clone)]
struct Cached<T> {
    at: Instant,
    value: T,
}

/// A small TTL cache.
struct TtlCache<T> {
    ttl: Duration,
    map: Mutex<HashMap<String, Cached<T>>>,
}

impl<T: Clone> TtlCache<T> {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &str) -> Option<T> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|c| c.at.elapsed() < self.ttl)
            .map(|c| c.value.clone())
    }

    fn put(&self, key: String, value: T) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= 10_000 {
            let ttl = self.ttl;
            map.retain(|_, c| c.at.elapsed() < ttl);
        }
        map.insert(
            key,
            Cached {
                at: Instant::now(),
                value,
            },
        );
    }
}

/// Authenticates and authorizes requests to the aggregated API.
pub struct Authenticator {
    mode: AuthMode,
    config: ArcSwapOption<AuthConfig>,
    decisions: TtlCache<(bool, String)>,
    tokens: TtlCache<Option<UserInfo>>,
}

/// Why a request is not authenticated (logged; the client sees only "Unauthorized").
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unauthenticated(pub String);

impl Authenticator {
    /// A new authenticator; call [`Authenticator::reload`] (and [`Authenticator::spawn_reloader`])
    /// to load the ConfigMap in delegated mode.
    pub fn new(mode: AuthMode, cache_ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            mode,
            config: ArcSwapOption::empty(),
            decisions: TtlCache::new(cache_ttl),
            tokens: TtlCache::new(cache_ttl),
        })
    }

    /// Installs a configuration directly (tests, static setups).
    pub fn set_config(&self, config: AuthConfig) {
        self.config.store(Some(Arc::new(config)));
    }

    /// The message of a 401. Why a credential was refused is logged, not told; but when nobody
    /// can be authenticated at all (no Kubernetes API to delegate to), the Status says so, or a
    /// caller could not tell a broken server from a bad credential.
    pub fn unauthorized_message(&self) -> &'static str {
        match self.mode {
            AuthMode::Unavailable(_) => {
                "Unauthorized: wasmgate has no Kubernetes API to delegate authentication to \
                 (see its log); the hosts API refuses every request"
            }
            _ => "Unauthorized",
        }
    }

    /// Whether the front-proxy configuration is loaded (or not needed).
    pub fn ready(&self) -> bool {
        match self.mode {
            AuthMode::Delegated(_) => self.config.load().is_some(),
            _ => true,
        }
    }

    /// Reads the ConfigMap and swaps the configuration in when it changed. Returns whether it
    /// changed.
    pub async fn reload(&self) -> Result<bool, AuthConfigError> {
        let AuthMode::Delegated(client) = &self.mode else {
            return Ok(false);
        };
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), AUTH_CONFIGMAP.0);
        let cm = tokio::time::timeout(KUBE_CALL_TIMEOUT, api.get(AUTH_CONFIGMAP.1))
            .await
            .map_err(|_| AuthConfigError::Timeout)?
            .map_err(|source| AuthConfigError::Read { source })?;
        let data = cm.data.unwrap_or_default();
        if self
            .config
            .load()
            .as_ref()
            .is_some_and(|c| c.source == data)
        {
            return Ok(false);
        }
        let config = AuthConfig::from_configmap_data(&data)?;
        tracing::info!(
            front_proxy = config.requestheader.is_some(),
            allowed_names = ?config.requestheader.as_ref().map(|r| &r.allowed_names),
            client_ca = config.client_ca.is_some(),
            "loaded the authentication configuration from {}/{}",
            AUTH_CONFIGMAP.0,
            AUTH_CONFIGMAP.1
        );
        self.config.store(Some(Arc::new(config)));
        Ok(true)
    }

    /// Re-reads the ConfigMap every `every` (a failed read keeps the last good configuration).
    pub fn spawn_reloader(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(e) = me.reload().await {
                    tracing::warn!(error = %e, "authentication configuration not refreshed");
                }
            }
        })
    }

    /// Who is calling; unauthenticated callers are an error. Like kube-apiserver's
    /// AuthenticatedGroupAdder, every authenticated user is in `system:authenticated` (the
    /// front proxy sends only the groups it knows, e.g. none for `system:aggregator`).
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        tls: Option<&TlsInfo>,
    ) -> Result<UserInfo, Unauthenticated> {
        let mut user = self.authenticate_inner(headers, tls).await?;
        if user.name != "system:anonymous"
            && !user.groups.iter().any(|g| g == "system:authenticated")
        {
            user.groups.push("system:authenticated".into());
        }
        Ok(user)
    }

    async fn authenticate_inner(
        &self,
        headers: &HeaderMap,
        tls: Option<&TlsInfo>,
    ) -> Result<UserInfo, Unauthenticated> {
        match &self.mode {
            AuthMode::AllowAll => {
                return Ok(UserInfo {
                    name: "system:anonymous".into(),
                    groups: vec!["system:unauthenticated".into()],
                    ..Default::default()
                })
            }
            AuthMode::Unavailable(why) => return Err(Unauthenticated(why.clone())),
            AuthMode::Delegated(_) => {}
        }
        let config = self.config.load_full();
        let peer: Vec<CertificateDer<'_>> = tls
            .map(|t| {
                t.peer_certificates
                    .iter()
                    .map(|c| CertificateDer::from(c.as_slice()))
                    .collect()
            })
            .unwrap_or_default();
        if let (Some((leaf, intermediates)), Some(config)) = (peer.split_first(), config.as_ref()) {
            let now = UnixTime::now();
            if let Some(rh) = &config.requestheader {
                if rh
                    .verifier
                    .verify_client_cert(leaf, intermediates, now)
                    .is_ok()
                {
                    let (cn, _) = x509::subject_cn_and_orgs(leaf)
                        .ok_or_else(|| Unauthenticated("unreadable client certificate".into()))?;
                    if !rh.allowed_names.is_empty() && !rh.allowed_names.contains(&cn) {
                        return Err(Unauthenticated(format!(
                            "front-proxy client certificate CN {cn:?} is not in \
                             requestheader-allowed-names {:?}",
                            rh.allowed_names
                        )));
                    }
                    if let Some(user) = user_from_headers(rh, headers) {
                        return Ok(user);
                    }
                }
            }
            if let Some(ca) = &config.client_ca {
                if ca.verify_client_cert(leaf, intermediates, now).is_ok() {
                    if let Some((cn, orgs)) = x509::subject_cn_and_orgs(leaf) {
                        if !cn.is_empty() {
                            return Ok(UserInfo {
                                name: cn,
                                groups: orgs,
                                ..Default::default()
                            });
                        }
                    }
                }
            }
        }
        if let Some(token) = bearer(headers) {
            if let Some(user) = self.token_review(token).await? {
                return Ok(user);
            }
            return Err(Unauthenticated("the bearer token was not accepted".into()));
        }
        if config.is_none() {
            return Err(Unauthenticated(
                "the authentication configuration is not loaded yet".into(),
            ));
        }
        Err(Unauthenticated(if peer.is_empty() {
            "no client certificate and no bearer token".into()
        } else {
            "the client certificate is not signed by a trusted CA".into()
        }))
    }

    async fn token_review(&self, token: &str) -> Result<Option<UserInfo>, Unauthenticated> {
        use std::hash::Hasher;
        let AuthMode::Delegated(client) = &self.mode else {
            return Ok(None);
        };
        // Keyed by a hash, not the token itself (fixed seed: stable within the process).
        let mut h = std::hash::DefaultHasher::new();
        h.write(token.as_bytes());
        let key = format!("{:x}:{}", h.finish(), token.len());
        if let Some(cached) = self.tokens.get(&key) {
            return Ok(cached);
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                audiences: None,
            },
            ..Default::default()
        };
        let api: Api<TokenReview> = Api::all(client.clone());
        let result = tokio::time::timeout(
            KUBE_CALL_TIMEOUT,
            api.create(&PostParams::default(), &review),
        )
        .await
        .map_err(|_| Unauthenticated("TokenReview timed out".into()))?
        .map_err(|e| Unauthenticated(format!("TokenReview failed: {e}")))?;
        let user = result.status.and_then(|s| {
            if s.authenticated != Some(true) {
                return None;
            }
            let u = s.user?;
            Some(UserInfo {
                name: u.username.unwrap_or_default(),
                uid: u.uid.unwrap_or_default(),
                groups: u.groups.unwrap_or_default(),
                extra: u.extra.unwrap_or_default(),
            })
        });
        self.tokens.put(key, user.clone());
        Ok(user)
    }

    /// Whether `user` may do `attrs`; `Err` is the 403 (or 500) to answer.
    pub async fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Result<(), ApiError> {
        let client = match &self.mode {
            AuthMode::AllowAll => return Ok(()),
            AuthMode::Unavailable(why) => return Err(ApiError::unauthorized(why.clone())),
            AuthMode::Delegated(c) => c,
        };
        if user.is_master() {
            return Ok(());
        }
        let key = format!("{user:?}|{attrs:?}");
        let (allowed, reason) = match self.decisions.get(&key) {
            Some(d) => d,
            None => {
                let d = subject_access_review(client, user, attrs).await?;
                self.decisions.put(key, d.clone());
                d
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(attrs.forbidden(&user.name, &reason))
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// The user the front proxy vouches for, from its headers (`None` without a username).
fn user_from_headers(rh: &RequestHeaderConfig, headers: &HeaderMap) -> Option<UserInfo> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let name = rh
        .username_headers
        .iter()
        .flat_map(|h| values(h))
        .find(|v| !v.is_empty())?;
    let uid = rh
        .uid_headers
        .iter()
        .flat_map(|h| values(h))
        .find(|v| !v.is_empty())
        .unwrap_or_default();
    let groups = rh.group_headers.iter().flat_map(|h| values(h)).collect();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (header_name, value) in headers {
        let lower = header_name.as_str(); // header names are lower-case in `http`
        for prefix in &rh.extra_prefixes {
            let p = prefix.to_ascii_lowercase();
            if let Some(key) = lower.strip_prefix(&p) {
                if let Ok(v) = value.to_str() {
                    extra
                        .entry(percent_decode(key).to_ascii_lowercase())
                        .or_default()
                        .push(v.to_string());
                }
            }
        }
    }
    Some(UserInfo {
        name,
        uid,
        groups,
        extra,
    })
}

/// Removes the identity headers so that nothing downstream can read forged values.
fn strip_identity_headers(headers: &mut HeaderMap) {
    let doomed: Vec<_> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-remote-") || *k == axum::http::header::AUTHORIZATION)
        .cloned()
        .collect();
    for k in doomed {
        headers.remove(k);
    }
}

async fn subject_access_review(
    client: &Client,
    user: &UserInfo,
    attrs: &Attributes,
) -> Result<(bool, String), AuthorizationError> {
    let (resource_attributes, non_resource_attributes) = match &attrs.resource_name {
        Some(name) => (
            Some(ResourceAttributes {
                group: Some(GROUP.into()),
                version: Some(VERSION.into()),
                resource: Some(attrs.resource.clone()),
                namespace: attrs.namespace.clone(),
                verb: Some(attrs.verb.clone()),
                name: (!name.is_empty()).then(|| name.clone()),
                ..Default::default()
            }),
            None,
        ),
        None => (
            None,
            Some(NonResourceAttributes {
                path: Some(attrs.path.clone()),
                verb: Some(attrs.verb.clone()),
            }),
        ),
    };
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.name.clone()),
            uid: (!user.uid.is_empty()).then(|| user.uid.clone()),
            groups: Some(user.groups.clone()),
            extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
            resource_attributes,
            non_resource_attributes,
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let result = tokio::time::timeout(
        KUBE_CALL_TIMEOUT,
        api.create(&PostParams::default(), &review),
    )
    .await
    .map_err(|_| AuthorizationError::Timeout)?
    .map_err(AuthorizationError::Failed)?;
    let status = result.status.unwrap_or_default();
    let allowed = status.allowed && status.denied != Some(true);
    Ok((allowed, status.reason.unwrap_or_default()))
}

/// axum middleware: authenticates, authorizes, strips identity headers, and adds [`UserInfo`] to
/// the request's extensions.
pub async fn middleware(
    State(auth): State<Arc<Authenticator>>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(key) = super::params::repeated_query_key(req.uri().query()) {
        return ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("query parameter {key:?} is given more than once"),
        )
        .into_response();
    }
    let attrs = Attributes::of(req.method(), req.uri().path(), req.uri().query());
    let tls = req.extensions().get::<Arc<TlsInfo>>().cloned();
    let user = match auth.authenticate(req.headers(), tls.as_deref()).await {
        Ok(u) => u,
        Err(Unauthenticated(why)) => {
            tracing::warn!(path = %attrs.path, verb = %attrs.verb, reason = %why, "unauthenticated request refused");
            return ApiError::unauthorized(auth.unauthorized_message()).into_response();
        }
    };
    strip_identity_headers(req.headers_mut());
    if let Err(e) = auth.authorize(&user, &attrs).await {
        tracing::info!(user = %user.name, verb = %attrs.verb, path = %attrs.path, code = e.code.as_u16(), "request refused");
        return e.into_response();
    }
    tracing::debug!(user = %user.name, verb = %attrs.verb, path = %attrs.path, "authorized");
    req.extensions_mut().insert(user);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair,
    };

    fn ca(cn: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, cn);
        CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
    }

    fn client(ca: &CertifiedIssuer<'static, KeyPair>, cn: &str, org: Option<&str>) -> Vec<u8> {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        if let Some(o) = org {
            p.distinguished_name.push(DnType::OrganizationName, o);
        }
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.signed_by(&KeyPair::generate().unwrap(), ca)
            .unwrap()
            .der()
            .to_vec()
    }

    fn tls(cert: Vec<u8>) -> TlsInfo {
        let mut t = TlsInfo::default();
        t.peer_certificates = vec![cert];
        t
    }

    struct Fixture {
        auth: Arc<Authenticator>,
        front: CertifiedIssuer<'static, KeyPair>,
        clients: CertifiedIssuer<'static, KeyPair>,
    }

    fn fixture(allowed: &str) -> Fixture {
        let front = ca("front-proxy-ca");
        let clients = ca("client-ca");
        let data: BTreeMap<String, String> = [
            ("requestheader-client-ca-file", front.pem()),
            ("client-ca-file", clients.pem()),
            ("requestheader-allowed-names", allowed.to_string()),
            (
                "requestheader-username-headers",
                r#"["X-Remote-User"]"#.into(),
            ),
            (
                "requestheader-group-headers",
                r#"["X-Remote-Group"]"#.into(),
            ),
            (
                "requestheader-extra-headers-prefix",
                r#"["X-Remote-Extra-"]"#.into(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        // Delegated mode needs a client only for TokenReview/SAR; Unavailable is never reached
        // because the config is set. Use a mode that authenticates like Delegated.
        let auth = Authenticator::new(AuthMode::Delegated(fake_client()), Duration::from_secs(10));
        auth.set_config(AuthConfig::from_configmap_data(&data).unwrap());
        Fixture {
            auth,
            front,
            clients,
        }
    }

    fn fake_client() -> Client {
        // Never contacted by these tests (no bearer tokens, no SAR).
        let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
        Client::try_from(config).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[tokio::test]
    async fn front_proxy_headers_are_trusted_only_with_its_certificate() {
        crate::platform::tls::install_crypto_provider();
        let f = fixture(r#"["front-proxy-client"]"#);
        let h = headers(&[
            ("X-Remote-User", "alice"),
            ("X-Remote-Group", "devs"),
            ("X-Remote-Group", "system:authenticated"),
            ("X-Remote-Extra-Scopes%2Fa", "x"),
            ("X-Remote-Extra-Scopes%2Fa", "y"),
        ]);
        let proxy = tls(client(&f.front, "front-proxy-client", None));
        let user = f.auth.authenticate(&h, Some(&proxy)).await.unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, ["devs", "system:authenticated"]);
        assert_eq!(user.extra["scopes/a"], ["x", "y"]);
        let plain = headers(&[("X-Remote-User", "system:aggregator")]);
        let user = f.auth.authenticate(&plain, Some(&proxy)).await.unwrap();
        assert_eq!(user.groups, ["system:authenticated"]);

        // Forged headers without a certificate, or with one from another CA: refused.
        assert!(f.auth.authenticate(&h, None).await.is_err());
        let stranger = ca("evil");
        let forged = tls(client(&stranger, "front-proxy-client", None));
        assert!(f.auth.authenticate(&h, Some(&forged)).await.is_err());

        // The right CA but a CN that is not allowed: refused.
        let wrong_cn = tls(client(&f.front, "someone-else", None));
        let err = f.auth.authenticate(&h, Some(&wrong_cn)).await.unwrap_err();
        assert!(
            err.0.contains("not in requestheader-allowed-names"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn empty_allowed_names_allow_any_cn_and_client_ca_certs_authenticate() {
        crate::platform::tls::install_crypto_provider();
        let f = fixture("");
        let h = headers(&[("X-Remote-User", "bob")]);
        let any = tls(client(&f.front, "whatever", None));
        assert_eq!(
            f.auth.authenticate(&h, Some(&any)).await.unwrap().name,
            "bob"
        );

        // A client-ca certificate: user = CN, groups = O; X-Remote headers are ignored.
        let admin = tls(client(&f.clients, "admin", Some("system:masters")));
        let user = f.auth.authenticate(&h, Some(&admin)).await.unwrap();
        assert_eq!(user.name, "admin");
        assert_eq!(user.groups, ["system:masters", "system:authenticated"]);
    }

    #[test]
    fn attributes_like_kube() {
        let a = |m: Method, p: &str, q: Option<&str>| Attributes::of(&m, p, q);
        let base = "/apis/wasmgate.dev/v1alpha1/hosts";
        assert_eq!(a(Method::GET, base, None).verb, "list");
        assert_eq!(a(Method::GET, base, Some("watch=true")).verb, "watch");
        assert_eq!(
            a(Method::GET, "/apis/wasmgate.dev/v1alpha1/watch/hosts", None).verb,
            "watch"
        );
        let one = a(Method::GET, &format!("{base}/h1"), None);
        assert_eq!(
            (one.verb.as_str(), one.resource_name.as_deref()),
            ("get", Some("h1"))
        );
        let sel = a(
            Method::GET,
            base,
            Some("watch=1&fieldSelector=metadata.name%3Dh2"),
        );
        assert_eq!(sel.resource_name.as_deref(), Some("h2"));
        assert_eq!(a(Method::POST, base, None).verb, "create");
        assert_eq!(a(Method::PUT, &format!("{base}/h1"), None).verb, "update");
        assert_eq!(a(Method::PATCH, &format!("{base}/h1"), None).verb, "patch");
        assert_eq!(
            a(Method::DELETE, &format!("{base}/h1"), None).verb,
            "delete"
        );
        assert_eq!(a(Method::DELETE, base, None).verb, "deletecollection");
        let disc = a(Method::GET, "/apis/wasmgate.dev/v1alpha1", None);
        assert_eq!(
            (disc.verb.as_str(), disc.resource_name.is_none()),
            ("get", true)
        );
        assert!(a(Method::GET, "/openapi/v3", None).resource_name.is_none());

        let wr = a(
            Method::GET,
            "/apis/wasmgate.dev/v1alpha1/namespaces/team/workloadresolutions/w.workload",
            None,
        );
        assert_eq!(
            (
                wr.verb.as_str(),
                wr.resource.as_str(),
                wr.namespace.as_deref(),
                wr.resource_name.as_deref()
            ),
            (
                "get",
                "workloadresolutions",
                Some("team"),
                Some("w.workload")
            )
        );
        let all = a(
            Method::GET,
            "/apis/wasmgate.dev/v1alpha1/watch/workloadresolutions",
            None,
        );
        assert_eq!(
            (all.verb.as_str(), all.namespace.as_deref()),
            ("watch", None)
        );
        assert_eq!(
            wr.forbidden("someone", "").message,
            "workloadresolutions.wasmgate.dev \"w.workload\" is forbidden: User \"someone\" \
             cannot get resource \"workloadresolutions\" in API group \"wasmgate.dev\" in the \
             namespace \"team\""
        );
        // hosts are cluster-scoped: a namespaced path is not a hosts request.
        assert!(a(
            Method::GET,
            "/apis/wasmgate.dev/v1alpha1/namespaces/team/hosts",
            None
        )
        .resource_name
        .is_none());

        let denied = a(Method::GET, base, None).forbidden("someone", "");
        assert_eq!(
            denied.message,
            "hosts.wasmgate.dev is forbidden: User \"someone\" cannot list resource \"hosts\" in \
             API group \"wasmgate.dev\" at the cluster scope"
        );
    }

    #[test]
    fn identity_headers_are_stripped() {
        let mut h = headers(&[
            ("X-Remote-User", "x"),
            ("x-remote-extra-foo", "y"),
            ("Authorization", "Bearer t"),
            ("Accept", "application/json"),
        ]);
        strip_identity_headers(&mut h);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("metadata.name%3Dh2"), "metadata.name=h2");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("scopes%2Fa"), "scopes/a");
    }

    /// A Kubernetes API that accepts connections and never answers: a bearer token is refused
    /// once TokenReview times out, instead of holding the request (kube's client has no read
    /// timeout of its own).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_apiserver_refuses_tokens_in_bounded_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let auth = Authenticator::new(AuthMode::Delegated(client), Duration::from_secs(10));
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::AUTHORIZATION,
            "Bearer some-token".parse().unwrap(),
        );
        let answer =
            tokio::time::timeout(Duration::from_secs(120), auth.authenticate(&headers, None))
                .await
                .expect("an answer while the apiserver stays silent");
        let Err(Unauthenticated(why)) = answer else {
            panic!("a token was accepted without a TokenReview answer");
        };
        assert!(why.contains("timed out"), "{why}");
    }
}
