//! Self-managed certificates (`--cert-mode self-managed`): a CA and a serving certificate kept in
//! a Secret, rotated before they expire, with the CA published as the caBundle of the webhook
//! configurations and the APIService.
//!
//! Who does what:
//! - the **leader** (see [`super::leader`]) creates the Secret, rotates the serving certificate at
//!   two thirds of its life (same CA, so every caBundle stays valid), rotates the CA (a successor
//!   is first published next to the current CA in `ca.crt` and every caBundle, and signs only
//!   after an overlap), and writes the caBundles whenever they differ. Every write is conditioned
//!   on the resourceVersion read, so a stale leader cannot overwrite a newer Secret.
//! - **every replica** re-reads the Secret every poll interval and hot-reloads a changed serving
//!   certificate into the listener (no restart, open connections untouched).
//!
//! The Secret (type `kubernetes.io/tls`): `ca.crt` (the bundle to trust: the signing CA first,
//! then a successor or predecessor during a CA rotation), `ca.key` (the signing CA's key),
//! `tls.crt`, `tls.key`, and during a CA rotation `next-ca.key`. Dates, names and the rotation
//! state are annotations `wasmgate.dev/*`, so no certificate has to be parsed. Key material is
//! never logged.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{json, Value};

use super::leader::LeaderHandle;
use super::tls::issue::{self as certs, CertError};
use super::tls::{fingerprint, server_config_from_pem, TlsError};

/// Data keys of the Secret.
pub mod keys {
    /// The CA bundle to trust (PEM, one or two CAs).
    pub const CA_CRT: &str = "ca.crt";
    /// The signing CA's key.
    pub const CA_KEY: &str = "ca.key";
    /// The serving certificate.
    pub const TLS_CRT: &str = "tls.crt";
    /// The serving key.
    pub const TLS_KEY: &str = "tls.key";
    /// The successor CA's key during a CA rotation.
    pub const NEXT_CA_KEY: &str = "next-ca.key";
}

const ANN: &str = "wasmgate.dev/";

fn ann(name: &str) -> String {
    format!("{ANN}{name}")
}

/// Why a self-managed certificate step failed.
#[derive(Debug, thiserror::Error)]
pub enum CertManagerError {
    /// The Kubernetes API refused or failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Generating a certificate failed.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// The Secret's certificate cannot be served.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The Secret's content is not what wasmgate writes.
    #[error("Secret {0}")]
    Invalid(#[from] InvalidSecret),
}

/// How a Secret differs from what wasmgate writes.
#[derive(Debug, thiserror::Error)]
pub enum InvalidSecret {
    /// A data key is missing or empty.
    #[error("has no {0}")]
    MissingKey(&'static str),
    /// An annotation is missing or not what wasmgate writes there.
    #[error("annotation {ANN}{0} missing or not a time")]
    Annotation(&'static str),
    /// `wasmgate.dev/ca-name` is missing.
    #[error("annotation {ANN}ca-name missing")]
    CaName,
    /// The serving certificate or key is missing.
    #[error("{0} has no tls.crt/tls.key")]
    NoServingPair(String),
    /// `ca.crt` holds no certificate.
    #[error("ca.crt holds no certificate")]
    EmptyBundle,
    /// A CA rotation is to be finished but no successor is recorded.
    #[error("has no successor CA")]
    NoSuccessor,
    /// During a CA rotation, `ca.crt` must hold exactly the current and the successor CA.
    #[error("ca.crt does not hold the current and the successor CA")]
    RotationBundle,
}

/// Settings of self-managed certificates.
#[derive(Clone, Debug)]
pub struct SelfManagedConfig {
    /// The Secret's name.
    pub secret_name: String,
    /// Its namespace.
    pub namespace: String,
    /// Subject alternative names of the serving certificate.
    pub sans: Vec<String>,
    /// Validity of a serving certificate.
    pub cert_validity: Duration,
    /// Validity of a CA.
    pub ca_validity: Duration,
    /// How often the Secret is re-read.
    pub poll_interval: Duration,
    /// ValidatingWebhookConfiguration to keep the caBundle of.
    pub validating_webhook: Option<String>,
    /// MutatingWebhookConfiguration to keep the caBundle of.
    pub mutating_webhook: Option<String>,
    /// APIService to keep the caBundle of.
    pub apiservice: Option<String>,
    /// Where a copy of `ca.crt` is written (public material only).
    pub ca_dir: Option<PathBuf>,
}

impl SelfManagedConfig {
    fn policy(&self) -> Policy {
        Policy {
            sans: self.sans.clone(),
            cert_validity: secs(self.cert_validity),
            ca_validity: secs(self.ca_validity),
            ca_overlap: secs((self.poll_interval * 3).max(Duration::from_secs(30))),
        }
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4).max(1)
}

// ---------------------------------------------------------------------------------------------
// The plan (pure)
// ---------------------------------------------------------------------------------------------

/// Rotation settings, in seconds.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The serving certificate's names.
    pub sans: Vec<String>,
    /// Serving certificate validity.
    pub cert_validity: i64,
    /// CA validity.
    pub ca_validity: i64,
    /// How long a successor CA is published before it signs.
    pub ca_overlap: i64,
}

/// A successor CA, published but not yet signing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextCa {
    /// Its common name.
    pub name: String,
    /// When it was made.
    pub issued_at: i64,
    /// When it expires.
    pub not_after: i64,
}

/// What the Secret says (annotations), in Unix seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The signing CA's common name.
    pub ca_name: String,
    /// When the signing CA was made.
    pub ca_issued_at: i64,
    /// When it expires.
    pub ca_not_after: i64,
    /// When the serving certificate was made.
    pub cert_issued_at: i64,
    /// When it expires.
    pub cert_not_after: i64,
    /// Its names.
    pub cert_sans: Vec<String>,
    /// A successor CA (published in `ca.crt`, first step of a CA rotation).
    pub next: Option<NextCa>,
    /// When the predecessor CA (still in `ca.crt` after a CA rotation) expires.
    pub previous_ca_not_after: Option<i64>,
}

/// The next step for the Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to do.
    Keep,
    /// No usable Secret (missing, not wasmgate's, or its CA expired): a new CA and certificate.
    Create,
    /// A new serving certificate from the same CA (two thirds of its life passed, or the names
    /// changed).
    RotateServing,
    /// The CA passed two thirds of its life: publish a successor next to it.
    StartCaRotation,
    /// The successor has been published for the overlap: it signs from now on (with a new
    /// serving certificate); the old CA stays in the bundle until it expires.
    PromoteCa,
    /// The predecessor CA expired: drop it from the bundle.
    DropPreviousCa,
}

fn two_thirds(from: i64, to: i64) -> i64 {
    from + (to - from).max(0) * 2 / 3
}

/// Decides the next step at `now` (Unix seconds).
pub fn plan(stored: Option<&Stored>, now: i64, policy: &Policy) -> Plan {
    let Some(s) = stored else {
        return Plan::Create;
    };
    if now >= s.ca_not_after {
        return Plan::Create;
    }
    if let Some(next) = &s.next {
        // Published long enough, or the current CA is about to expire.
        if now >= next.issued_at + policy.ca_overlap || now >= s.ca_not_after - policy.ca_overlap {
            return Plan::PromoteCa;
        }
    } else if now >= two_thirds(s.ca_issued_at, s.ca_not_after) {
        return Plan::StartCaRotation;
    }
    if s.previous_ca_not_after.is_some_and(|t| now >= t) {
        return Plan::DropPreviousCa;
    }
    if s.cert_sans != policy.sans
        || now >= two_thirds(s.cert_issued_at, s.cert_not_after)
        || now >= s.cert_not_after
    {
        return Plan::RotateServing;
    }
    Plan::Keep
}

fn parse_time(v: &str) -> Option<i64> {
    v.parse::<Timestamp>().ok().map(|t| t.as_second())
}

fn format_time(secs: i64) -> String {
    Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl Stored {
    /// Reads the annotations and checks that the data keys are there.
    pub fn from_secret(secret: &Secret) -> Result<Stored, InvalidSecret> {
        let a = secret.metadata.annotations.clone().unwrap_or_default();
        let get = |k: &str| a.get(&ann(k)).cloned();
        let time = |k: &'static str| {
            get(k)
                .as_deref()
                .and_then(parse_time)
                .ok_or(InvalidSecret::Annotation(k))
        };
        let data = secret.data.clone().unwrap_or_default();
        for k in [keys::CA_CRT, keys::CA_KEY, keys::TLS_CRT, keys::TLS_KEY] {
            if data.get(k).is_none_or(|v| v.0.is_empty()) {
                return Err(InvalidSecret::MissingKey(k));
            }
        }
        let next = match get("next-ca-name") {
            Some(name) if data.contains_key(keys::NEXT_CA_KEY) => Some(NextCa {
                name,
                issued_at: time("next-ca-issued-at")?,
                not_after: time("next-ca-not-after")?,
            }),
            _ => None,
        };
        Ok(Stored {
            ca_name: get("ca-name").ok_or(InvalidSecret::CaName)?,
            ca_issued_at: time("ca-issued-at")?,
            ca_not_after: time("ca-not-after")?,
            cert_issued_at: time("cert-issued-at")?,
            cert_not_after: time("cert-not-after")?,
            cert_sans: get("cert-sans")
                .map(|s| s.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            next,
            previous_ca_not_after: get("previous-ca-not-after").as_deref().and_then(parse_time),
        })
    }
}

/// The PEM certificates of a bundle, in order.
pub fn pem_blocks(bundle: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = bundle;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let Some(end) = rest[start..].find(END) else {
            break;
        };
        let stop = start + end + END.len();
        out.push(format!("{}\n", &rest[start..stop]));
        rest = &rest[stop..];
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Rendering a plan into Secret content
// ---------------------------------------------------------------------------------------------

fn offset(secs: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Data and annotations of the Secret, as strings.
#[derive(Clone, Default)]
struct Content {
    data: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

impl Content {
    fn from_secret(secret: &Secret) -> Content {
        Content {
            data: secret
                .data
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect(),
            annotations: secret
                .metadata
                .annotations
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| !k.starts_with(ANN))
                .collect(),
        }
    }

    fn set(&mut self, k: &str, v: impl Into<String>) {
        self.annotations.insert(ann(k), v.into());
    }

    fn write_stored(&mut self, s: &Stored) {
        self.set("managed-by", "wasmgate");
        self.set("ca-name", &s.ca_name);
        self.set("ca-issued-at", format_time(s.ca_issued_at));
        self.set("ca-not-after", format_time(s.ca_not_after));
        self.set("cert-issued-at", format_time(s.cert_issued_at));
        self.set("cert-not-after", format_time(s.cert_not_after));
        self.set("cert-sans", s.cert_sans.join(","));
        if let Some(next) = &s.next {
            self.set("next-ca-name", &next.name);
            self.set("next-ca-issued-at", format_time(next.issued_at));
            self.set("next-ca-not-after", format_time(next.not_after));
        }
        if let Some(t) = s.previous_ca_not_after {
            self.set("previous-ca-not-after", format_time(t));
        }
    }
}

/// Signs a serving certificate with the CA `(name, key)`, valid until `ca_not_after` at most.
fn serve_pair(
    name: &str,
    key: &str,
    ca_not_after: i64,
    now: i64,
    policy: &Policy,
) -> Result<(certs::ServingPair, i64), CertError> {
    let not_after = (now + policy.cert_validity).min(ca_not_after);
    // Backdated a little for clocks that lag behind.
    let pair = certs::sign_serving(name, key, &policy.sans, offset(now - 60), offset(not_after))?;
    Ok((pair, not_after))
}

fn new_ca(now: i64, policy: &Policy) -> Result<(certs::CaMaterial, i64), CertError> {
    let not_after = now + policy.ca_validity;
    let ca = certs::generate_ca(
        &format!("wasmgate CA {now}"),
        offset(now - 3600),
        offset(not_after),
    )?;
    Ok((ca, not_after))
}

/// The Secret content after `plan` (not `Keep`).
fn render(
    plan: &Plan,
    current: Option<(&Secret, &Stored)>,
    now: i64,
    policy: &Policy,
) -> Result<Content, CertManagerError> {
    let (secret, stored) = match (plan, current) {
        (Plan::Create, _) | (_, None) => {
            let (ca, ca_not_after) = new_ca(now, policy)?;
            let (pair, cert_not_after) =
                serve_pair(&ca.common_name, &ca.key_pem, ca_not_after, now, policy)?;
            let mut c = current
                .map(|(s, _)| Content::from_secret(s))
                .unwrap_or_default();
            c.data = BTreeMap::from([
                (keys::CA_CRT.to_owned(), ca.cert_pem),
                (keys::CA_KEY.to_owned(), ca.key_pem),
                (keys::TLS_CRT.to_owned(), pair.cert_pem),
                (keys::TLS_KEY.to_owned(), pair.key_pem),
            ]);
            c.write_stored(&Stored {
                ca_name: ca.common_name,
                ca_issued_at: now,
                ca_not_after,
                cert_issued_at: now,
                cert_not_after,
                cert_sans: policy.sans.clone(),
                next: None,
                previous_ca_not_after: None,
            });
            return Ok(c);
        }
        (_, Some(cur)) => cur,
    };
    let mut c = Content::from_secret(secret);
    let mut s = stored.clone();
    let field = |c: &Content, k: &'static str| {
        c.data
            .get(k)
            .cloned()
            .ok_or(CertManagerError::Invalid(InvalidSecret::MissingKey(k)))
    };
    match plan {
        Plan::Keep | Plan::Create => {}
        Plan::RotateServing => {
            let key = field(&c, keys::CA_KEY)?;
            let (pair, not_after) = serve_pair(&s.ca_name, &key, s.ca_not_after, now, policy)?;
            c.data.insert(keys::TLS_CRT.into(), pair.cert_pem);
            c.data.insert(keys::TLS_KEY.into(), pair.key_pem);
            s.cert_issued_at = now;
            s.cert_not_after = not_after;
            s.cert_sans = policy.sans.clone();
        }
        Plan::StartCaRotation => {
            let (ca, not_after) = new_ca(now, policy)?;
            let current = pem_blocks(&field(&c, keys::CA_CRT)?)
                .into_iter()
                .next()
                .ok_or(InvalidSecret::EmptyBundle)?;
            c.data
                .insert(keys::CA_CRT.into(), format!("{current}{}", ca.cert_pem));
            c.data.insert(keys::NEXT_CA_KEY.into(), ca.key_pem);
            s.next = Some(NextCa {
                name: ca.common_name,
                issued_at: now,
                not_after,
            });
            s.previous_ca_not_after = None;
        }
        Plan::PromoteCa => {
            let next = s.next.take().ok_or(InvalidSecret::NoSuccessor)?;
            let blocks = pem_blocks(&field(&c, keys::CA_CRT)?);
            let [old, new] = blocks.as_slice() else {
                return Err(InvalidSecret::RotationBundle.into());
            };
            let key = c
                .data
                .remove(keys::NEXT_CA_KEY)
                .ok_or(InvalidSecret::MissingKey(keys::NEXT_CA_KEY))?;
            let (pair, not_after) = serve_pair(&next.name, &key, next.not_after, now, policy)?;
            c.data.insert(keys::CA_CRT.into(), format!("{new}{old}"));
            c.data.insert(keys::CA_KEY.into(), key);
            c.data.insert(keys::TLS_CRT.into(), pair.cert_pem);
            c.data.insert(keys::TLS_KEY.into(), pair.key_pem);
            s.previous_ca_not_after = Some(s.ca_not_after);
            s.ca_name = next.name;
            s.ca_issued_at = next.issued_at;
            s.ca_not_after = next.not_after;
            s.cert_issued_at = now;
            s.cert_not_after = not_after;
            s.cert_sans = policy.sans.clone();
        }
        Plan::DropPreviousCa => {
            let current = pem_blocks(&field(&c, keys::CA_CRT)?)
                .into_iter()
                .next()
                .ok_or(InvalidSecret::EmptyBundle)?;
            c.data.insert(keys::CA_CRT.into(), current);
            s.previous_ca_not_after = None;
        }
    }
    c.write_stored(&s);
    Ok(c)
}

// ---------------------------------------------------------------------------------------------
// The manager (every replica reloads; the leader writes)
// ---------------------------------------------------------------------------------------------

/// Self-managed certificates of one replica.
pub struct SelfManaged {
    secrets: Api<Secret>,
    client: kube::Client,
    config: SelfManagedConfig,
    leader: LeaderHandle,
    tls: Option<RustlsConfig>,
    served: Option<[u8; 32]>,
    rejected: Option<[u8; 32]>,
    ca_copied: Option<String>,
}

impl SelfManaged {
    /// Waits until the Secret holds a serving certificate (the leader creates it), returns the
    /// live TLS configuration, and keeps it current in the background.
    pub async fn start(
        client: kube::Client,
        config: SelfManagedConfig,
        leader: LeaderHandle,
    ) -> Result<RustlsConfig, CertManagerError> {
        let mut me = SelfManaged {
            secrets: Api::namespaced(client.clone(), &config.namespace),
            client,
            config,
            leader,
            tls: None,
            served: None,
            rejected: None,
            ca_copied: None,
        };
        tracing::info!(
            secret = %me.config.secret_name,
            namespace = %me.config.namespace,
            validity = ?me.config.cert_validity,
            "self-managed certificates"
        );
        let mut waited = tokio::time::Instant::now();
        let mut leader_rx = me.leader.is_leader.clone();
        loop {
            if let Err(e) = me.cycle().await {
                tracing::warn!(error = %e, secret = %me.config.secret_name, "self-managed certificates");
            }
            if let Some(tls) = me.tls.clone() {
                tokio::spawn(me.run());
                return Ok(tls);
            }
            if waited.elapsed() >= Duration::from_secs(10) {
                tracing::info!(secret = %me.config.secret_name, leader = me.leader.is_leader(), "waiting for the serving certificate in the Secret");
                waited = tokio::time::Instant::now();
            }
            tokio::select! {
                _ = tokio::time::sleep(me.config.poll_interval.min(Duration::from_secs(1))) => {}
                _ = leader_rx.changed() => {}
            }
        }
    }

    async fn run(mut self) {
        let mut leader_rx = self.leader.is_leader.clone();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll_interval) => {}
                changed = leader_rx.changed() => {
                    if changed.is_err() {
                        // The election stopped (shutdown): keep reloading, write no more.
                        leader_rx = tokio::sync::watch::channel(false).1;
                    }
                }
            }
            if let Err(e) = self.cycle().await {
                tracing::warn!(error = %e, secret = %self.config.secret_name, "self-managed certificates");
            }
        }
    }

    /// One round: the leader brings the Secret and the caBundles up to date; every replica
    /// loads the Secret's certificate if it changed.
    async fn cycle(&mut self) -> Result<(), CertManagerError> {
        let mut secret = self.secrets.get_opt(&self.config.secret_name).await?;
        if self.leader.is_leader() {
            let policy = self.config.policy();
            // A few steps at most (e.g. promote a CA, then nothing).
            for _ in 0..4 {
                let stored = match secret.as_ref().map(Stored::from_secret) {
                    Some(Ok(s)) => Some(s),
                    Some(Err(why)) => {
                        tracing::warn!(secret = %self.config.secret_name, %why, "the Secret is not usable: replacing it with a new CA and certificate");
                        None
                    }
                    None => None,
                };
                let now = Timestamp::now().as_second();
                let step = plan(stored.as_ref(), now, &policy);
                if step == Plan::Keep {
                    break;
                }
                let current = secret.as_ref().zip(stored.as_ref());
                let content = render(&step, current, now, &policy)?;
                match self.write(secret.as_ref(), content).await? {
                    Some(written) => {
                        tracing::info!(secret = %self.config.secret_name, step = ?step, by = %self.leader.identity, "self-managed certificates updated");
                        secret = Some(written);
                    }
                    None => {
                        // Written by someone else meanwhile: judge again next round.
                        secret = self.secrets.get_opt(&self.config.secret_name).await?;
                        break;
                    }
                }
            }
            if let Some(bundle) = secret
                .as_ref()
                .and_then(|s| s.data.as_ref())
                .and_then(|d| d.get(keys::CA_CRT))
            {
                self.sync_ca_bundles(&bundle.0).await;
            }
        }
        if let Some(secret) = &secret {
            self.load(secret)?;
        }
        Ok(())
    }

    /// Creates or replaces (conditioned on its resourceVersion) the Secret. `None`: conflict.
    async fn write(
        &self,
        current: Option<&Secret>,
        content: Content,
    ) -> Result<Option<Secret>, CertManagerError> {
        let mut annotations = content.annotations;
        annotations.insert(ann("issued-by"), self.leader.identity.clone());
        let data = content
            .data
            .into_iter()
            .map(|(k, v)| (k, ByteString(v.into_bytes())))
            .collect();
        let pp = PostParams::default();
        let result = match current {
            None => {
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(self.config.secret_name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        labels: Some(BTreeMap::from([(
                            "app.kubernetes.io/name".to_owned(),
                            "wasmgate".to_owned(),
                        )])),
                        annotations: Some(annotations),
                        ..ObjectMeta::default()
                    },
                    type_: Some("kubernetes.io/tls".into()),
                    data: Some(data),
                    ..Secret::default()
                };
                self.secrets.create(&pp, &secret).await
            }
            Some(current) => {
                let mut secret = current.clone();
                secret.metadata.annotations = Some(annotations);
                secret.metadata.managed_fields = None;
                secret.data = Some(data);
                secret.string_data = None;
                self.secrets
                    .replace(&self.config.secret_name, &pp, &secret)
                    .await
            }
        };
        match result {
            Ok(s) => Ok(Some(s)),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Serves the Secret's certificate if it changed; keeps the last good one otherwise.
    fn load(&mut self, secret: &Secret) -> Result<(), CertManagerError> {
        let data = secret.data.as_ref();
        let get = |k: &str| data.and_then(|d| d.get(k)).map(|v| v.0.as_slice());
        let (Some(cert), Some(key)) = (get(keys::TLS_CRT), get(keys::TLS_KEY)) else {
            return Err(InvalidSecret::NoServingPair(self.config.secret_name.clone()).into());
        };
        let fp = fingerprint(cert, key);
        if self.served == Some(fp) || self.rejected == Some(fp) {
            return Ok(());
        }
        let server_config = match server_config_from_pem(cert, key) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                self.rejected = Some(fp);
                tracing::error!(secret = %self.config.secret_name, error = %e, "the Secret's certificate cannot be served; keeping the last good one");
                return Err(e.into());
            }
        };
        super::tls::note_served(cert);
        match &self.tls {
            Some(tls) => {
                tls.reload_from_config(server_config);
                tracing::info!(secret = %self.config.secret_name, "serving certificate reloaded from the Secret");
            }
            None => {
                self.tls = Some(RustlsConfig::from_config(server_config));
                tracing::info!(secret = %self.config.secret_name, "serving certificate loaded from the Secret");
            }
        }
        self.served = Some(fp);
        if let (Some(dir), Some(ca)) = (&self.config.ca_dir, get(keys::CA_CRT)) {
            let ca = String::from_utf8_lossy(ca).into_owned();
            if self.ca_copied.as_deref() != Some(ca.as_str()) {
                let path = certs::CertPaths::in_dir(dir).ca;
                match certs::write_file(&path, &ca, false) {
                    Ok(()) => self.ca_copied = Some(ca),
                    Err(e) => tracing::warn!(error = %e, "copying the CA bundle"),
                }
            }
        }
        Ok(())
    }

    /// Writes `bundle` as the caBundle of every webhook of the two configurations and of the
    /// APIService, where it differs. Missing objects are skipped; errors are logged.
    async fn sync_ca_bundles(&self, bundle: &[u8]) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bundle);
        let targets = [
            (
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration",
                self.config.validating_webhook.as_deref(),
            ),
            (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration",
                self.config.mutating_webhook.as_deref(),
            ),
            (
                "apiregistration.k8s.io",
                "APIService",
                self.config.apiservice.as_deref(),
            ),
        ];
        for (group, kind, name) in targets {
            let Some(name) = name else { continue };
            let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, "v1", kind));
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
            match sync_one(&api, kind, name, &b64).await {
                Ok(true) => tracing::info!(%kind, %name, "caBundle written"),
                Ok(false) => {}
                Err(e) => tracing::warn!(%kind, %name, error = %e, "writing the caBundle failed"),
            }
        }
    }
}

/// The patch that sets `b64` as caBundle where it differs (`None`: nothing to do).
pub fn ca_bundle_patch(kind: &str, object: &Value, b64: &str) -> Option<Patch<Value>> {
    if kind == "APIService" {
        let current = object.pointer("/spec/caBundle").and_then(Value::as_str);
        return (current != Some(b64)).then(|| Patch::Merge(json!({"spec": {"caBundle": b64}})));
    }
    let hooks = object.get("webhooks").and_then(Value::as_array)?;
    let mut ops = Vec::new();
    for (i, hook) in hooks.iter().enumerate() {
        if hook
            .pointer("/clientConfig/caBundle")
            .and_then(Value::as_str)
            == Some(b64)
        {
            continue;
        }
        // The test guards against the list changing between read and write.
        ops.push(
            json!({"op": "test", "path": format!("/webhooks/{i}/name"), "value": hook["name"]}),
        );
        ops.push(json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": b64}));
    }
    if ops.is_empty() {
        return None;
    }
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).ok()?;
    Some(Patch::Json(patch))
}

async fn sync_one(
    api: &Api<DynamicObject>,
    kind: &str,
    name: &str,
    b64: &str,
) -> Result<bool, kube::Error> {
    let Some(object) = api.get_opt(name).await? else {
        tracing::debug!(%kind, %name, "not found: no caBundle to write");
        return Ok(false);
    };
    let Some(patch) = ca_bundle_patch(kind, &object.data, b64) else {
        return Ok(false);
    };
    api.patch(name, &PatchParams::default(), &patch).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn policy() -> Policy {
        Policy {
            sans: vec!["wasmgate.ns.svc".into()],
            cert_validity: 90 * DAY,
            ca_validity: 3650 * DAY,
            ca_overlap: 60,
        }
    }

    fn fresh(now: i64) -> Stored {
        Stored {
            ca_name: "ca".into(),
            ca_issued_at: now,
            ca_not_after: now + 3650 * DAY,
            cert_issued_at: now,
            cert_not_after: now + 90 * DAY,
            cert_sans: vec!["wasmgate.ns.svc".into()],
            next: None,
            previous_ca_not_after: None,
        }
    }

    #[test]
    fn plans_follow_the_lifecycle() {
        let p = policy();
        let t = 1_700_000_000;
        assert_eq!(plan(None, t, &p), Plan::Create);
        let s = fresh(t);
        assert_eq!(plan(Some(&s), t + DAY, &p), Plan::Keep);
        assert_eq!(plan(Some(&s), t + 59 * DAY, &p), Plan::Keep);
        assert_eq!(plan(Some(&s), t + 60 * DAY, &p), Plan::RotateServing);
        let mut renamed = s.clone();
        renamed.cert_sans.push("extra".into());
        assert_eq!(plan(Some(&renamed), t + DAY, &p), Plan::RotateServing);
        // CA at two thirds: publish a successor first.
        let late = t + 2434 * DAY;
        assert_eq!(plan(Some(&s), late, &p), Plan::StartCaRotation);
        let mut rotating = s.clone();
        rotating.next = Some(NextCa {
            name: "ca2".into(),
            issued_at: late,
            not_after: late + 3650 * DAY,
        });
        rotating.cert_issued_at = late - DAY;
        rotating.cert_not_after = late + 89 * DAY;
        assert_eq!(plan(Some(&rotating), late + 30, &p), Plan::Keep);
        assert_eq!(plan(Some(&rotating), late + 60, &p), Plan::PromoteCa);
        let mut promoted = fresh(late + 60);
        promoted.previous_ca_not_after = Some(s.ca_not_after);
        assert_eq!(plan(Some(&promoted), late + 120, &p), Plan::Keep);
        assert_eq!(
            plan(Some(&promoted), s.ca_not_after, &p),
            Plan::DropPreviousCa
        );
        // Expired CA: start over.
        assert_eq!(plan(Some(&s), s.ca_not_after, &p), Plan::Create);
    }

    fn secret_of(content: &Content) -> Secret {
        Secret {
            metadata: ObjectMeta {
                annotations: Some(content.annotations.clone()),
                ..ObjectMeta::default()
            },
            data: Some(
                content
                    .data
                    .iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    fn chain_ok(bundle: &str, cert: &str, key: &str, at: i64) {
        // The serving pair is usable, and verifies against the bundle for the Service name.
        use rustls_pki_types::pem::PemObject;
        server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for der in rustls_pki_types::CertificateDer::pem_slice_iter(bundle.as_bytes()) {
            roots.add(der.unwrap()).unwrap();
        }
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let leaf = rustls_pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        use rustls::client::danger::ServerCertVerifier;
        verifier
            .verify_server_cert(
                &leaf,
                &[],
                &rustls_pki_types::ServerName::try_from("wasmgate.ns.svc").unwrap(),
                &[],
                rustls_pki_types::UnixTime::since_unix_epoch(Duration::from_secs(at as u64)),
            )
            .unwrap();
    }

    #[test]
    fn rendered_secrets_chain_through_every_step() {
        let mut p = policy();
        p.cert_validity = 3600;
        p.ca_validity = 30 * DAY;
        let now = Timestamp::now().as_second();
        let created = render(&Plan::Create, None, now, &p).unwrap();
        let secret = secret_of(&created);
        let stored = Stored::from_secret(&secret).unwrap();
        assert_eq!(stored.cert_sans, p.sans);
        assert_eq!(stored.cert_not_after, now + 3600);
        chain_ok(
            &created.data["ca.crt"],
            &created.data["tls.crt"],
            &created.data["tls.key"],
            now,
        );

        // Serving rotation keeps the CA.
        let rotated = render(&Plan::RotateServing, Some((&secret, &stored)), now + 10, &p).unwrap();
        assert_eq!(rotated.data["ca.crt"], created.data["ca.crt"]);
        assert_eq!(rotated.data["ca.key"], created.data["ca.key"]);
        assert_ne!(rotated.data["tls.crt"], created.data["tls.crt"]);
        chain_ok(
            &created.data["ca.crt"],
            &rotated.data["tls.crt"],
            &rotated.data["tls.key"],
            now + 10,
        );

        // CA rotation: publish (bundle of two; still signed by the old CA), promote.
        let secret = secret_of(&rotated);
        let stored = Stored::from_secret(&secret).unwrap();
        let started = render(
            &Plan::StartCaRotation,
            Some((&secret, &stored)),
            now + 20,
            &p,
        )
        .unwrap();
        assert_eq!(pem_blocks(&started.data["ca.crt"]).len(), 2);
        assert_eq!(started.data["tls.crt"], rotated.data["tls.crt"]);
        let secret = secret_of(&started);
        let stored = Stored::from_secret(&secret).unwrap();
        assert!(stored.next.is_some());
        assert_eq!(plan(Some(&stored), now + 20 + 60, &p), Plan::PromoteCa);
        let promoted = render(&Plan::PromoteCa, Some((&secret, &stored)), now + 80, &p).unwrap();
        let blocks = pem_blocks(&promoted.data["ca.crt"]);
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            blocks[1],
            pem_blocks(&created.data["ca.crt"])[0],
            "old CA kept second"
        );
        assert!(!promoted.data.contains_key("next-ca.key"));
        assert_ne!(promoted.data["ca.key"], created.data["ca.key"]);
        chain_ok(
            &blocks[0],
            &promoted.data["tls.crt"],
            &promoted.data["tls.key"],
            now + 80,
        );
        let secret = secret_of(&promoted);
        let stored = Stored::from_secret(&secret).unwrap();
        assert!(stored.next.is_none());
        assert_eq!(stored.previous_ca_not_after, Some(now + 30 * DAY));
        let dropped = render(
            &Plan::DropPreviousCa,
            Some((&secret, &stored)),
            now + 30 * DAY,
            &p,
        )
        .unwrap();
        assert_eq!(pem_blocks(&dropped.data["ca.crt"]), vec![blocks[0].clone()]);
    }

    #[test]
    fn ca_bundle_patches_only_what_differs() {
        let hooks = json!({"webhooks": [
            {"name": "a", "clientConfig": {"caBundle": "Zm9v"}},
            {"name": "b", "clientConfig": {"url": "https://x"}},
        ]});
        let Some(Patch::Json(p)) =
            ca_bundle_patch("ValidatingWebhookConfiguration", &hooks, "Zm9v")
        else {
            panic!("expected a JSON patch");
        };
        let ops = serde_json::to_value(&p).unwrap();
        assert_eq!(ops.as_array().unwrap().len(), 2);
        assert_eq!(ops[1]["path"], "/webhooks/1/clientConfig/caBundle");
        let done = json!({"webhooks": [{"name": "a", "clientConfig": {"caBundle": "Zm9v"}}]});
        assert!(ca_bundle_patch("MutatingWebhookConfiguration", &done, "Zm9v").is_none());
        let svc = json!({"spec": {"caBundle": "YmFy"}});
        assert!(ca_bundle_patch("APIService", &svc, "Zm9v").is_some());
        assert!(ca_bundle_patch("APIService", &svc, "YmFy").is_none());
    }
}
