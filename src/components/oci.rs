//! Component worlds from OCI registries: wasm component artifacts as wasmCloud publishes them
//! (the CNCF wasm OCI artifact layout: an image manifest whose layer is `application/wasm`, config
//! `application/vnd.wasm.config.v0+json`; the host also still accepts the older
//! `application/vnd.module.wasm.content.layer.v1+wasm` layer), pulled with oci-client and decoded
//! with wit-component.
//!
//! One lookup: parse the reference; find credentials ([`auth`]: the component's
//! `imagePullSecret`, chosen by the registry domain as the operator does); resolve the reference
//! to a manifest digest (cached per image and credentials for `tag_ttl`, then revalidated with a
//! `HEAD`); read the world by manifest digest (memory, then disk, then a pull of the wasm layer
//! and a decode). Concurrent lookups of the same image, or of the same digest, share one flight.
//! Every step is bounded: the manifest size, the layer count, the artifact size (declared and
//! served) and the time.
//!
//! Failures split three ways: a registry that cannot be read (unreachable, the image missing,
//! unauthorized, a timeout) follows `on_failure` (`warn`: the world is unknown and the workload is
//! admitted with a warning, subject to `--unknown-world`; `deny`: refused); an artifact that is
//! not a usable component (oversized, too many layers, not a wasm layer, a core module, corrupt)
//! is always refused.

pub mod auth;
mod cache;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{
    OciDescriptor, OciImageIndex, OciImageManifest, OciManifest, IMAGE_MANIFEST_LIST_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tracing::Instrument as _;

use crate::policy::Enforcement;
use crate::wit::{decode_component, ComponentWorld, WitError};

use self::auth::{AuthProvider, Credentials};
use self::cache::{lru, DiskCache, SingleFlight, TtlMap};
use super::{Found, LookupFuture, SourceError, SourceFuture, WorldRequest, WorldSource};

/// The CNCF wasm OCI artifact layer media type.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The CNCF wasm OCI artifact config media type.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The layer media type wasmCloud used before the wasm WG's layout (the host still pulls it).
pub const LEGACY_WASM_LAYER_MEDIA_TYPE: &str = "application/vnd.module.wasm.content.layer.v1+wasm";

const ACCEPTED_MANIFESTS: &[&str] = &[
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

/// Component layers pulled at once; the rest wait (within the lookup's timeout), so memory for
/// layers stays under `CONCURRENT_PULLS * max_artifact_bytes` however many reviews arrive.
pub const CONCURRENT_PULLS: usize = 4;

const USER_AGENT: &str = concat!("wasmgate/", env!("CARGO_PKG_VERSION"));

/// Bounds on one pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest wasm layer accepted (declared and served).
    pub max_artifact_bytes: u64,
    /// Most layers a manifest may list.
    pub max_layers: usize,
    /// Largest manifest accepted.
    pub max_manifest_bytes: usize,
    /// Time for one lookup (resolution and pull), so the admission answers within its budget.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_artifact_bytes: super::local::MAX_COMPONENT_BYTES,
            max_layers: 8,
            max_manifest_bytes: 4 * 1024 * 1024,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Configuration of the registry source.
#[derive(Clone, Debug)]
pub struct OciConfig {
    /// Registries (`host[:port]`, as in the image reference) reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// PEM files of extra CA certificates trusted besides the system roots.
    pub extra_ca_files: Vec<PathBuf>,
    /// Where decoded worlds are kept across restarts (none: memory only).
    pub cache_dir: Option<PathBuf>,
    /// Worlds kept in memory.
    pub memory_entries: usize,
    /// How long a tag -> digest resolution is trusted before it is revalidated.
    pub tag_ttl: Duration,
    /// Size, count and time limits.
    pub limits: Limits,
    /// Registry unreachable, image missing, or unauthorized: warn (admit) or deny.
    pub on_failure: Enforcement,
}

impl Default for OciConfig {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            extra_ca_files: Vec::new(),
            cache_dir: None,
            memory_entries: 1024,
            tag_ttl: Duration::from_secs(60),
            limits: Limits::default(),
            on_failure: Enforcement::Warn,
        }
    }
}

/// Counters of what the source did (tests and logs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OciStats {
    /// Manifest GETs sent.
    pub manifest_gets: u64,
    /// Manifest HEADs sent (revalidating an expired resolution).
    pub manifest_heads: u64,
    /// Layer downloads started.
    pub blob_gets: u64,
    /// Lookups answered by a fresh tag -> digest resolution.
    pub resolution_hits: u64,
    /// Stale resolutions used because the registry could not be reached.
    pub stale_uses: u64,
    /// Worlds found in memory.
    pub memory_hits: u64,
    /// Worlds found on disk.
    pub disk_hits: u64,
    /// Components decoded.
    pub decodes: u64,
}

#[derive(Default)]
struct Counters {
    manifest_gets: AtomicU64,
    manifest_heads: AtomicU64,
    blob_gets: AtomicU64,
    resolution_hits: AtomicU64,
    stale_uses: AtomicU64,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    decodes: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Why a step failed, before it becomes a [`SourceError`] for one image.
#[derive(Clone, Debug)]
enum Failure {
    /// The registry could not be read: follows the failure policy.
    Registry(String),
    /// The artifact is refused.
    Refused(String),
    /// The layer is not a usable component.
    Invalid(WitError),
}

impl Failure {
    /// What went wrong, in words.
    fn message(&self) -> String {
        match self {
            Self::Registry(m) | Self::Refused(m) => m.clone(),
            Self::Invalid(e) => e.to_string(),
        }
    }
}

/// Records a registry request's outcome on the current span (its trace span): the digest it
/// found, or the error (status ERROR).
fn record_outcome<T>(out: &Result<T, Failure>, digest: impl Fn(&T) -> &str) {
    let span = tracing::Span::current();
    match out {
        Ok(v) => {
            let d = digest(v);
            if !d.is_empty() {
                span.record("digest", d);
            }
        }
        Err(f) => {
            span.record("otel.status_code", "ERROR");
            span.record("error", tracing::field::display(f.message()));
        }
    }
}

/// What a reference resolved to.
#[derive(Clone, Debug)]
struct Resolved {
    /// The digest the reference resolves to (an index's, when it names an index): what a
    /// pinned image names.
    digest: String,
    /// The image manifest's digest (the world cache key).
    manifest_digest: String,
    manifest: Arc<OciImageManifest>,
}

type ResolutionKey = (String, String);
type WorldResult = Result<Arc<ComponentWorld>, Failure>;

struct Inner {
    config: OciConfig,
    roots: Vec<Certificate>,
    auth: Arc<dyn AuthProvider>,
    clients: moka::sync::Cache<String, Arc<Client>>,
    resolutions: TtlMap<ResolutionKey, Resolved>,
    worlds: moka::sync::Cache<String, WorldResult>,
    disk: Option<DiskCache>,
    /// Bounds the layers buffered at once across all reviews (each up to `max_artifact_bytes`).
    pulls: tokio::sync::Semaphore,
    resolve_flight: SingleFlight<ResolutionKey, Resolved, Failure>,
    pull_flight: SingleFlight<String, Arc<ComponentWorld>, Failure>,
    stats: Counters,
}

/// Component worlds from OCI registries, cached by manifest digest.
#[derive(Clone)]
pub struct OciSource {
    inner: Arc<Inner>,
}

/// Reads PEM CA bundles, one [`Certificate`] per certificate (a bundle handed over whole may
/// count only its first).
fn load_roots(files: &[PathBuf]) -> anyhow::Result<Vec<Certificate>> {
    let mut out = Vec::new();
    for path in files {
        let data = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("--registry-ca {}: {e}", path.display()))?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&data)
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("--registry-ca {}: not PEM: {e}", path.display()))?;
        if certs.is_empty() {
            anyhow::bail!(
                "--registry-ca {}: no certificate in the file",
                path.display()
            );
        }
        let mut store = rustls::RootCertStore::empty();
        for cert in certs {
            store.add(cert.clone()).map_err(|e| {
                anyhow::anyhow!("--registry-ca {}: unusable CA: {e}", path.display())
            })?;
            out.push(Certificate {
                encoding: CertificateEncoding::Der,
                data: cert.to_vec(),
            });
        }
    }
    Ok(out)
}

const ANONYMOUS_CLIENT: &str = "anonymous";

fn build_client(config: &OciConfig, roots: &[Certificate]) -> Result<Client, OciDistributionError> {
    let limits = &config.limits;
    Client::try_from(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(config.insecure_registries.clone()),
        extra_root_certificates: roots.to_vec(),
        platform_resolver: None,
        connect_timeout: Some(limits.timeout.min(Duration::from_secs(3))),
        read_timeout: Some(limits.timeout),
        user_agent: USER_AGENT,
        ..ClientConfig::default()
    })
}

/// `image` pinned to `digest`: the repository as written, any tag or digest replaced.
pub fn pinned_image(image: &str, digest: &str) -> String {
    let image = image.trim();
    let repo = image.split_once('@').map_or(image, |(r, _)| r);
    let last_slash = repo.rfind('/').map_or(0, |i| i + 1);
    let repo = match repo[last_slash..].rfind(':') {
        Some(i) => &repo[..last_slash + i],
        None => repo,
    };
    format!("{repo}@{digest}")
}

/// The error and its causes on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn is_transport(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(r) => r.is_connect() || r.is_timeout(),
        OciDistributionError::ServerError { code, .. } => *code >= 500,
        _ => false,
    }
}

fn truncate(s: &str, n: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// A registry error, said plainly.
fn classify(e: &OciDistributionError, registry: &str) -> Failure {
    let not_found = "the image does not exist (no such repository or tag)";
    let unauthorized = "unauthorized: the registry refused the credentials (check the component's imagePullSecret)";
    Failure::Registry(match e {
        OciDistributionError::UnauthorizedError { .. } => unauthorized.to_string(),
        OciDistributionError::AuthenticationFailure(reason) => {
            format!("{unauthorized}: {}", truncate(reason, 200))
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let first = envelope.errors.first();
            let detail = first
                .map(|e| format!("{:?}: {}", e.code, truncate(&e.message, 200)))
                .unwrap_or_default();
            match first.map(|e| &e.code) {
                Some(
                    OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound
                    | OciErrorCode::BlobUnknown,
                ) => format!("{not_found} ({detail})"),
                Some(OciErrorCode::Unauthorized | OciErrorCode::Denied) => {
                    format!("{unauthorized} ({detail})")
                }
                _ => format!("the registry answered an error ({detail})"),
            }
        }
        OciDistributionError::ServerError { code, message, .. } => match code {
            404 => format!("{not_found} (HTTP 404)"),
            401 | 403 => format!("{unauthorized} (HTTP {code})"),
            _ => format!(
                "the registry answered HTTP {code}: {}",
                truncate(message, 200)
            ),
        },
        OciDistributionError::RequestError(r) => {
            let why = chain(r);
            if why.contains("certificate") {
                format!("TLS to registry {registry} failed (trust its CA with --registry-ca, or list a plain-HTTP registry with --registry-insecure): {why}")
            } else {
                format!("registry {registry} unreachable: {why}")
            }
        }
        other => chain(other),
    })
}

fn is_wasm_layer(media_type: &str) -> bool {
    media_type == WASM_LAYER_MEDIA_TYPE || media_type == LEGACY_WASM_LAYER_MEDIA_TYPE
}

/// Checks a manifest against the artifact layout and the limits, before anything is downloaded.
fn check_manifest(m: &OciImageManifest, limits: &Limits) -> Result<(), Failure> {
    if m.layers.is_empty() {
        return Err(Failure::Refused("the artifact has no layers".to_string()));
    }
    if m.layers.len() > limits.max_layers {
        return Err(Failure::Refused(format!(
            "the artifact has {} layers, over the limit of {} (--registry-max-layers)",
            m.layers.len(),
            limits.max_layers
        )));
    }
    if let Some((i, layer)) = m
        .layers
        .iter()
        .enumerate()
        .find(|(_, l)| !is_wasm_layer(&l.media_type))
    {
        let container = m.config.media_type.contains("image.config")
            || m.config.media_type.contains("container.image");
        return Err(Failure::Refused(format!(
            "not a wasm component artifact: layer {i} has media type {}{}; wasmCloud hosts pull {WASM_LAYER_MEDIA_TYPE} layers (the CNCF wasm OCI artifact layout, config {WASM_CONFIG_MEDIA_TYPE})",
            layer.media_type,
            if container { " (a container image)" } else { "" },
        )));
    }
    let size = m.layers[0].size;
    if size < 0 || size as u64 > limits.max_artifact_bytes {
        return Err(Failure::Refused(format!(
            "the component layer is {size} bytes, over the {}-byte limit (--registry-max-bytes)",
            limits.max_artifact_bytes
        )));
    }
    Ok(())
}

/// The entry of an image index to use: the one for architecture `wasm`, or the only one.
fn choose_entry(index: &OciImageIndex) -> Result<String, Failure> {
    let wasm = index.manifests.iter().find(|e| {
        e.platform
            .as_ref()
            .is_some_and(|p| p.architecture.to_string() == "wasm")
    });
    match (wasm, index.manifests.as_slice()) {
        (Some(e), _) => Ok(e.digest.clone()),
        (None, [only]) => Ok(only.digest.clone()),
        (None, entries) => Err(Failure::Refused(format!(
            "an image index with {} entries, none for architecture wasm: not a wasm component artifact",
            entries.len()
        ))),
    }
}

/// Command-line options of the registry source (`wasmgate serve`).
#[derive(Clone, Debug, clap::Args)]
pub struct RegistryArgs {
    /// Learn component worlds from their OCI artifacts (set false to use only annotations and
    /// --component files).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "WASMGATE_REGISTRY_PULLS")]
    pub registry_pulls: bool,
    /// A registry (host[:port], as images name it) reached over plain HTTP (repeatable).
    #[arg(
        long = "registry-insecure",
        value_name = "HOST",
        env = "WASMGATE_REGISTRY_INSECURE",
        value_delimiter = ','
    )]
    pub registry_insecure: Vec<String>,
    /// Extra CA certificates (PEM) trusted for registries, besides the system roots (repeatable).
    #[arg(
        long = "registry-ca",
        value_name = "FILE",
        env = "WASMGATE_REGISTRY_CA",
        value_delimiter = ','
    )]
    pub registry_ca: Vec<PathBuf>,
    /// Pull secrets as files: DIR/<namespace>/<secret>/.dockerconfigjson (the data of each
    /// kubernetes.io/dockerconfigjson Secret a component names in imagePullSecret).
    #[arg(long, value_name = "DIR", env = "WASMGATE_PULL_SECRETS_DIR")]
    pub pull_secrets_dir: Option<PathBuf>,
    /// A dockerconfigjson used for components that name no imagePullSecret.
    #[arg(long, value_name = "FILE", env = "WASMGATE_REGISTRY_AUTH_FILE")]
    pub registry_auth_file: Option<PathBuf>,
    /// Keep decoded worlds here across restarts (by manifest digest).
    #[arg(long, value_name = "DIR", env = "WASMGATE_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Decoded worlds kept in memory.
    #[arg(
        long,
        default_value_t = 1024,
        value_name = "N",
        env = "WASMGATE_CACHE_ENTRIES"
    )]
    pub cache_entries: usize,
    /// Seconds a tag -> digest resolution is trusted before it is revalidated.
    #[arg(
        long,
        default_value_t = 60,
        value_name = "SECONDS",
        env = "WASMGATE_REGISTRY_TAG_TTL"
    )]
    pub registry_tag_ttl: u64,
    /// Seconds one registry lookup may take (keep it under the webhook's timeout).
    #[arg(
        long,
        default_value_t = 5.0,
        value_name = "SECONDS",
        env = "WASMGATE_REGISTRY_TIMEOUT"
    )]
    pub registry_timeout: f64,
    /// Largest component layer pulled, in bytes.
    #[arg(
        long,
        default_value_t = super::local::MAX_COMPONENT_BYTES,
        value_name = "BYTES",
        env = "WASMGATE_REGISTRY_MAX_BYTES"
    )]
    pub registry_max_bytes: u64,
    /// Most layers an artifact may have.
    #[arg(
        long,
        default_value_t = 8,
        value_name = "N",
        env = "WASMGATE_REGISTRY_MAX_LAYERS"
    )]
    pub registry_max_layers: usize,
    /// When the registry is unreachable, the image is missing or the credentials are refused:
    /// warn (admit with a warning; still subject to --unknown-world) or deny.
    #[arg(long, value_enum, default_value_t = Enforcement::Warn, env = "WASMGATE_REGISTRY_UNREACHABLE")]
    pub registry_unreachable: Enforcement,
    /// Mutating webhook: rewrite each component's image to the digest it was validated at
    /// (repo@sha256:...).
    #[arg(long, env = "WASMGATE_PIN_DIGESTS")]
    pub pin_digests: bool,
}

impl RegistryArgs {
    /// The configuration these options describe.
    pub fn config(&self) -> anyhow::Result<OciConfig> {
        if !(self.registry_timeout.is_finite() && self.registry_timeout > 0.0) {
            anyhow::bail!("--registry-timeout must be a positive number of seconds");
        }
        Ok(OciConfig {
            insecure_registries: self.registry_insecure.clone(),
            extra_ca_files: self.registry_ca.clone(),
            cache_dir: self.cache_dir.clone(),
            memory_entries: self.cache_entries.max(1),
            tag_ttl: Duration::from_secs(self.registry_tag_ttl),
            limits: Limits {
                max_artifact_bytes: self.registry_max_bytes,
                max_layers: self.registry_max_layers.max(1),
                timeout: Duration::from_secs_f64(self.registry_timeout),
                ..Limits::default()
            },
            on_failure: self.registry_unreachable,
        })
    }

    /// The registry source, or `None` with `--registry-pulls false`.
    pub fn source(&self) -> anyhow::Result<Option<OciSource>> {
        if !self.registry_pulls {
            return Ok(None);
        }
        let auth = auth::FileAuth {
            secrets_dir: self.pull_secrets_dir.clone(),
            default_config: self.registry_auth_file.clone(),
        };
        OciSource::new(self.config()?, Arc::new(auth)).map(Some)
    }
}

impl OciSource {
    /// A registry source. Installs the ring crypto provider if none is installed yet; fails on
    /// an unreadable CA file or cache directory.
    pub fn new(config: OciConfig, auth: Arc<dyn AuthProvider>) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Reference parsing compiles a large regex on first use: pay it now, not in the first
        // admission.
        let _ = Reference::try_from("registry.invalid/warm/up:1");
        let roots = load_roots(&config.extra_ca_files)?;
        let disk = match &config.cache_dir {
            Some(dir) => Some(DiskCache::new(dir).map_err(|e| {
                anyhow::anyhow!("--cache-dir {}: cannot create it: {e}", dir.display())
            })?),
            None => None,
        };
        let anonymous = build_client(&config, &roots)
            .map_err(|e| anyhow::anyhow!("cannot build the registry client: {}", chain(&e)))?;
        let clients = lru(64);
        clients.insert(ANONYMOUS_CLIENT.to_string(), Arc::new(anonymous));
        let inner = Inner {
            roots,
            auth,
            clients,
            resolutions: TtlMap::new(
                config.memory_entries.saturating_mul(4).max(16),
                config.tag_ttl,
            ),
            worlds: lru(config.memory_entries),
            disk,
            pulls: tokio::sync::Semaphore::new(CONCURRENT_PULLS),
            resolve_flight: SingleFlight::new(),
            pull_flight: SingleFlight::new(),
            stats: Counters::default(),
            config,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// What the source has done so far.
    pub fn stats(&self) -> OciStats {
        let s = &self.inner.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        OciStats {
            manifest_gets: get(&s.manifest_gets),
            manifest_heads: get(&s.manifest_heads),
            blob_gets: get(&s.blob_gets),
            resolution_hits: get(&s.resolution_hits),
            stale_uses: get(&s.stale_uses),
            memory_hits: get(&s.memory_hits),
            disk_hits: get(&s.disk_hits),
            decodes: get(&s.decodes),
        }
    }

    /// Looks up the world of `image` for a component in `namespace` with `pull_secret`.
    pub async fn lookup_image(
        &self,
        namespace: &str,
        image: &str,
        pull_secret: Option<&str>,
    ) -> Result<Option<Found>, SourceError> {
        self.inner.lookup(namespace, image, pull_secret).await
    }
}

impl WorldSource for OciSource {
    fn world<'a>(&'a self, image: &'a str) -> SourceFuture<'a> {
        Box::pin(async move {
            Ok(self
                .lookup_image("default", image, None)
                .await?
                .map(|f| f.world))
        })
    }

    fn lookup<'a>(&'a self, req: WorldRequest<'a>) -> LookupFuture<'a> {
        Box::pin(self.lookup_image(req.namespace, req.image, req.pull_secret))
    }
}

impl Inner {
    async fn lookup(
        self: &Arc<Self>,
        namespace: &str,
        image: &str,
        pull_secret: Option<&str>,
    ) -> Result<Option<Found>, SourceError> {
        let written = image.trim();
        // `artifact://name` (an Artifact object) and other schemes are not registry images.
        if written.is_empty() || written.contains("://") {
            return Ok(None);
        }
        let reference = Reference::try_from(written).map_err(|e| SourceError::Refused {
            image: image.to_string(),
            message: format!("not a valid OCI image reference: {e}"),
        })?;
        let timeout = self.config.limits.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let creds = match self
            .auth
            .credentials(namespace, pull_secret, reference.registry())
            .await
        {
            Ok(c) => c,
            Err(e) => return Err(self.failure(image, Failure::Registry(e.to_string()), None)),
        };
        let work = async {
            let resolved = self.resolve(written, &reference, &creds).await?;
            let world = self.world(&reference, &creds, &resolved).await?;
            Ok::<_, Failure>((resolved, world))
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(Ok((resolved, world))) => Ok(Some(Found {
                world,
                pinned: Some(pinned_image(written, &resolved.digest)),
            })),
            Ok(Err(f)) => Err(self.failure(image, f, Some(&creds))),
            Err(_) => Err(self.failure(
                image,
                Failure::Registry(format!(
                    "no answer within {timeout:?} (--registry-timeout); the pull goes on in the background and fills the cache"
                )),
                Some(&creds),
            )),
        }
    }

    fn failure(&self, image: &str, f: Failure, creds: Option<&Credentials>) -> SourceError {
        let image = image.to_string();
        match f {
            Failure::Invalid(source) => SourceError::Invalid { image, source },
            Failure::Refused(message) => SourceError::Refused { image, message },
            Failure::Registry(why) => {
                let message = match creds {
                    Some(c) => format!("cannot pull the image: {why} [credentials: {}]", c.origin),
                    None => format!("cannot pull the image: {why}"),
                };
                match self.config.on_failure {
                    Enforcement::Warn => SourceError::Unavailable { image, message },
                    Enforcement::Deny => SourceError::Refused {
                        image,
                        message: format!(
                            "{message}; registry failures are denied (--registry-unreachable deny)"
                        ),
                    },
                }
            }
        }
    }

    /// One client per set of credentials: oci-client keeps one credential and one token cache
    /// per registry in a client, so tenants must not share one. Anonymous pulls share one
    /// client (built at startup: a client costs milliseconds of TLS setup).
    fn client(&self, creds: &Credentials, fingerprint: &str) -> Result<Arc<Client>, Failure> {
        let key = match creds.auth {
            RegistryAuth::Anonymous => ANONYMOUS_CLIENT,
            _ => fingerprint,
        };
        // Concurrent first pulls with the same credentials build one client, not one each.
        self.clients
            .try_get_with_by_ref(key, || {
                tracing::debug!(credentials = %creds.origin, "new registry client");
                build_client(&self.config, &self.roots).map(Arc::new)
            })
            .map_err(|e| {
                Failure::Registry(format!("cannot build the registry client: {}", chain(&e)))
            })
    }

    /// The reference's digest and image manifest, from the cache while it is fresh.
    async fn resolve(
        self: &Arc<Self>,
        written: &str,
        reference: &Reference,
        creds: &Credentials,
    ) -> Result<Resolved, Failure> {
        let fingerprint = creds.fingerprint(reference.resolve_registry());
        let key = (written.to_string(), fingerprint);
        if let Some(r) = self.resolutions.fresh(&key) {
            bump(&self.stats.resolution_hits);
            return Ok(r);
        }
        let stale = self.resolutions.any(&key);
        let inner = self.clone();
        let reference = reference.clone();
        let creds = creds.clone();
        let k = key.clone();
        let timeout = self.config.limits.timeout;
        // A trace span per registry request (DEBUG: built only when traces are exported), a
        // child of the admission that asked first.
        let span = tracing::debug_span!(
            "registry.resolve",
            otel.name = "registry resolve",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            image = %reference,
            revalidate = stale.is_some(),
            digest = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        let task = async move {
            let out = tokio::time::timeout(
                timeout,
                inner.fetch_manifest(&reference, &creds, &k.1, stale),
            )
            .await
            .unwrap_or_else(|_| Err(Failure::Registry(format!("no answer within {timeout:?}"))));
            record_outcome(&out, |r| r.digest.as_str());
            if let Ok(r) = &out {
                let map = &inner.resolutions;
                map.insert(k.clone(), r.clone());
                // The pinned form resolves the same way (a pinned image, Workloads stamped
                // from a pinned template).
                if reference.digest().is_none() {
                    map.insert((pinned_image(&k.0, &r.digest), k.1.clone()), r.clone());
                }
            }
            out
        }
        .instrument(span);
        self.resolve_flight
            .run(key, task, |e| {
                Failure::Registry(format!("internal error: {e}"))
            })
            .await
    }

    async fn get_manifest(
        &self,
        client: &Client,
        reference: &Reference,
        creds: &Credentials,
    ) -> Result<(OciManifest, String), Failure> {
        bump(&self.stats.manifest_gets);
        let (bytes, digest) = client
            .pull_manifest_raw(reference, &creds.auth, ACCEPTED_MANIFESTS)
            .await
            .map_err(|e| match e {
                OciDistributionError::DigestError(d) => {
                    Failure::Refused(format!("the manifest does not match its digest: {d}"))
                }
                e => classify(&e, reference.registry()),
            })?;
        let max = self.config.limits.max_manifest_bytes;
        if bytes.len() > max {
            return Err(Failure::Refused(format!(
                "the manifest is {} bytes, over the {max}-byte limit",
                bytes.len()
            )));
        }
        let manifest = serde_json::from_slice::<OciManifest>(&bytes)
            .map_err(|e| Failure::Refused(format!("not an OCI image manifest or index: {e}")))?;
        Ok((manifest, digest))
    }

    async fn fetch_manifest(
        &self,
        reference: &Reference,
        creds: &Credentials,
        fingerprint: &str,
        stale: Option<Resolved>,
    ) -> Result<Resolved, Failure> {
        let client = self.client(creds, fingerprint)?;
        if let Some(stale) = stale {
            // Seen before: a HEAD tells whether the reference moved.
            bump(&self.stats.manifest_heads);
            match client.fetch_manifest_digest(reference, &creds.auth).await {
                Ok(d) if d == stale.digest => return Ok(stale),
                Ok(_) => {}
                Err(e) if is_transport(&e) => {
                    tracing::warn!(image = %reference, error = %chain(&e), "registry unreachable; using the digest it resolved to last");
                    bump(&self.stats.stale_uses);
                    return Ok(stale);
                }
                Err(e) => return Err(classify(&e, reference.registry())),
            }
        }
        let (manifest, digest) = self.get_manifest(&client, reference, creds).await?;
        let (manifest, manifest_digest) =
            match manifest {
                OciManifest::Image(m) => (m, digest.clone()),
                OciManifest::ImageIndex(index) => {
                    let entry = choose_entry(&index)?;
                    let child = reference.clone_with_digest(entry);
                    match self.get_manifest(&client, &child, creds).await? {
                        (OciManifest::Image(m), d) => (m, d),
                        (OciManifest::ImageIndex(_), _) => return Err(Failure::Refused(
                            "an image index inside an image index: not a wasm component artifact"
                                .to_string(),
                        )),
                    }
                }
            };
        check_manifest(&manifest, &self.config.limits)?;
        Ok(Resolved {
            digest,
            manifest_digest,
            manifest: Arc::new(manifest),
        })
    }

    /// The world of a resolved artifact: memory, disk, or a pull (one per digest at a time).
    async fn world(
        self: &Arc<Self>,
        reference: &Reference,
        creds: &Credentials,
        resolved: &Resolved,
    ) -> Result<Arc<ComponentWorld>, Failure> {
        let digest = &resolved.manifest_digest;
        if let Some(w) = self.worlds.get(digest) {
            bump(&self.stats.memory_hits);
            return w;
        }
        if let Some(disk) = &self.disk {
            if let Some(world) = disk.get(digest).await {
                bump(&self.stats.disk_hits);
                let world = Arc::new(world);
                self.worlds.insert(digest.clone(), Ok(world.clone()));
                return Ok(world);
            }
        }
        let inner = self.clone();
        let reference = reference.clone();
        let creds = creds.clone();
        let resolved = resolved.clone();
        let timeout = self.config.limits.timeout;
        let span = tracing::debug_span!(
            "registry.pull",
            otel.name = "registry pull",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            image = %reference,
            digest = %digest,
            layer_bytes = resolved.manifest.layers.first().map_or(0, |l| l.size),
            error = tracing::field::Empty,
        );
        let task = async move {
            let out = tokio::time::timeout(timeout, inner.pull(&reference, &creds, &resolved))
                .await
                .unwrap_or_else(|_| {
                    Err(Failure::Registry(format!(
                        "the component layer did not arrive within {timeout:?}"
                    )))
                });
            record_outcome(&out, |_| "");
            let digest = &resolved.manifest_digest;
            match &out {
                Ok(world) => {
                    inner.worlds.insert(digest.clone(), Ok(world.clone()));
                    if let Some(disk) = &inner.disk {
                        disk.put(digest, world).await;
                    }
                }
                // The artifact is what it is: remember the verdict, not the registry's mood.
                Err(f @ (Failure::Refused(_) | Failure::Invalid(_))) => {
                    inner.worlds.insert(digest.clone(), Err(f.clone()));
                }
                Err(Failure::Registry(_)) => {}
            }
            out
        }
        .instrument(span);
        self.pull_flight
            .run(digest.clone(), task, |e| {
                Failure::Registry(format!("internal error: {e}"))
            })
            .await
    }

    /// Downloads the component layer within the limits and decodes its world.
    async fn pull(
        &self,
        reference: &Reference,
        creds: &Credentials,
        resolved: &Resolved,
    ) -> Result<Arc<ComponentWorld>, Failure> {
        let fingerprint = creds.fingerprint(reference.resolve_registry());
        let client = self.client(creds, &fingerprint)?;
        let layer = &resolved.manifest.layers[0];
        let declared = layer.size.max(0) as u64;
        let max = self.config.limits.max_artifact_bytes;
        // Never follow a manifest's foreign `urls`: fetch the blob from the registry only.
        let descriptor = OciDescriptor {
            media_type: layer.media_type.clone(),
            digest: layer.digest.clone(),
            size: layer.size,
            urls: None,
            annotations: None,
            artifact_type: None,
        };
        let _permit =
            self.pulls.acquire().await.map_err(|_| {
                Failure::Registry("the registry source is shutting down".to_string())
            })?;
        bump(&self.stats.blob_gets);
        let mut stream = client
            .pull_blob_stream(reference, &descriptor)
            .await
            .map_err(|e| classify(&e, reference.registry()))?;
        if let Some(len) = stream.content_length.filter(|l| *l > max) {
            return Err(Failure::Refused(format!(
                "the registry serves a {len}-byte component layer, over the {max}-byte limit (--registry-max-bytes)"
            )));
        }
        let mut bytes: Vec<u8> = Vec::with_capacity(declared.min(max) as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                let text = chain(&e);
                if text.to_lowercase().contains("digest") {
                    Failure::Refused(format!(
                        "the component layer does not match its digest: {text}"
                    ))
                } else {
                    Failure::Registry(format!("reading the component layer failed: {text}"))
                }
            })?;
            if (bytes.len() + chunk.len()) as u64 > max.min(declared) {
                return Err(Failure::Refused(format!(
                    "the registry serves more than the {} bytes the manifest declares for the component layer (limit {max}, --registry-max-bytes)",
                    declared
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.len() as u64 != declared {
            return Err(Failure::Refused(format!(
                "the component layer is {} bytes; the manifest declares {declared}",
                bytes.len()
            )));
        }
        bump(&self.stats.decodes);
        let world = tokio::task::spawn_blocking(move || decode_component(&bytes))
            .await
            .map_err(|e| Failure::Registry(format!("decoder task failed: {e}")))?
            .map_err(Failure::Invalid)?;
        Ok(Arc::new(world))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_keeps_the_repository_as_written() {
        let d = "sha256:abc";
        assert_eq!(pinned_image("ghcr.io/a/b:1.0", d), "ghcr.io/a/b@sha256:abc");
        assert_eq!(
            pinned_image("127.0.0.1:5000/a/b:1.0", d),
            "127.0.0.1:5000/a/b@sha256:abc"
        );
        assert_eq!(
            pinned_image("127.0.0.1:5000/a/b", d),
            "127.0.0.1:5000/a/b@sha256:abc"
        );
        assert_eq!(pinned_image("ubuntu", d), "ubuntu@sha256:abc");
        assert_eq!(pinned_image("r.io/a:1@sha256:old", d), "r.io/a@sha256:abc");
    }

    fn manifest(layers: &[(&str, i64)], config: &str) -> OciImageManifest {
        OciImageManifest {
            schema_version: 2,
            media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_string()),
            config: OciDescriptor {
                media_type: config.to_string(),
                digest: "sha256:c".into(),
                size: 2,
                ..Default::default()
            },
            layers: layers
                .iter()
                .map(|(t, s)| OciDescriptor {
                    media_type: t.to_string(),
                    digest: "sha256:l".into(),
                    size: *s,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn refused(r: Result<(), Failure>) -> String {
        match r {
            Err(Failure::Refused(m)) => m,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn manifests_are_checked_before_download() {
        let limits = Limits {
            max_artifact_bytes: 1000,
            max_layers: 2,
            ..Limits::default()
        };
        let ok = manifest(&[(WASM_LAYER_MEDIA_TYPE, 10)], WASM_CONFIG_MEDIA_TYPE);
        assert!(check_manifest(&ok, &limits).is_ok());
        let legacy = manifest(&[(LEGACY_WASM_LAYER_MEDIA_TYPE, 10)], "x");
        assert!(check_manifest(&legacy, &limits).is_ok());
        let m = refused(check_manifest(
            &manifest(&[(WASM_LAYER_MEDIA_TYPE, 1001)], WASM_CONFIG_MEDIA_TYPE),
            &limits,
        ));
        assert!(m.contains("over the 1000-byte limit"), "{m}");
        let m = refused(check_manifest(
            &manifest(&[(WASM_LAYER_MEDIA_TYPE, 1); 3], WASM_CONFIG_MEDIA_TYPE),
            &limits,
        ));
        assert!(m.contains("3 layers, over the limit of 2"), "{m}");
        let m = refused(check_manifest(
            &manifest(
                &[("application/vnd.oci.image.layer.v1.tar+gzip", 10)],
                "application/vnd.oci.image.config.v1+json",
            ),
            &limits,
        ));
        assert!(
            m.contains("not a wasm component artifact") && m.contains("container image"),
            "{m}"
        );
        let m = refused(check_manifest(&manifest(&[], "x"), &limits));
        assert!(m.contains("no layers"), "{m}");
    }

    #[test]
    fn references_that_are_not_registry_images() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let source = OciSource::new(OciConfig::default(), Arc::new(auth::Anonymous)).unwrap();
        rt.block_on(async {
            assert!(source
                .lookup_image("ns", "artifact://http", None)
                .await
                .unwrap()
                .is_none());
            let e = source
                .lookup_image("ns", "UPPER/Case:1", None)
                .await
                .unwrap_err();
            assert!(matches!(e, SourceError::Refused { .. }), "{e}");
            assert!(
                e.to_string().contains("not a valid OCI image reference"),
                "{e}"
            );
        });
    }
}
