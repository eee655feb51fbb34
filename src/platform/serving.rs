//! Which certificate `wasmgate serve` presents (`--cert-mode`), and keeping it current while
//! serving:
//! - `files`: `--tls-cert`/`--tls-key` (e.g. a cert-manager Secret mounted as a volume); the
//!   files are re-read every `--tls-reload-interval` and a changed, valid pair is loaded. A broken
//!   or half-written pair keeps the last good certificate and logs an error.
//! - `generated`: a CA and certificate generated once into `--cert-dir` (development), reloaded
//!   like `files`.
//! - `self-managed`: wasmgate keeps a CA and serving certificate in a Secret, rotates them and
//!   writes the caBundles (see [`super::certs`]).

use std::path::PathBuf;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;

use super::certs::{CertManagerError, SelfManaged, SelfManagedConfig};
use super::duration::{parse_duration, parse_validity};
use super::kube::{ClientResult, KubeClientError};
use super::leader::{default_identity, LeaderHandle};
use super::tls::issue::{self, CertError};
use super::tls::{watch_files, TlsError};

/// Why the serving certificate could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    /// `--cert-mode files` without both files.
    #[error("--cert-mode files needs --tls-cert and --tls-key")]
    FilesMissing,
    /// The certificate files cannot be served.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Development certificates could not be generated or written.
    #[error(transparent)]
    Issue(#[from] CertError),
    /// Self-managed mode without a Kubernetes client.
    #[error("--cert-mode self-managed: {0}")]
    NoClient(KubeClientError),
    /// Self-managed certificates failed.
    #[error(transparent)]
    SelfManaged(#[from] CertManagerError),
}

/// Where the serving certificate comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CertMode {
    /// `--tls-cert`/`--tls-key` files (e.g. a mounted cert-manager Secret), reloaded on change.
    Files,
    /// A CA and certificate generated once into `--cert-dir` (development).
    Generated,
    /// A CA and certificate kept in a Secret by the leader, rotated before expiry, with the
    /// caBundles of the webhook configurations and the APIService written by wasmgate.
    SelfManaged,
}

/// Certificate options of `wasmgate serve` (beside `--tls-cert`, `--tls-key`, `--cert-dir`,
/// `--cert-san`).
#[derive(Clone, Debug, clap::Args)]
pub struct TlsArgs {
    /// Where the serving certificate comes from [default: files with --tls-cert, else
    /// generated].
    #[arg(long, value_enum, env = "WASMGATE_CERT_MODE")]
    pub cert_mode: Option<CertMode>,
    /// files/generated: how often the certificate files are checked for changes.
    #[arg(long, default_value = "5s", value_parser = parse_duration, env = "WASMGATE_TLS_RELOAD_INTERVAL")]
    pub tls_reload_interval: Duration,
    /// self-managed: the Secret (in --service-namespace) holding the CA and serving certificate.
    #[arg(long, default_value = "wasmgate-tls", env = "WASMGATE_TLS_SECRET")]
    pub tls_secret: String,
    /// self-managed: validity of each serving certificate (rotated at two thirds of it); `90d`,
    /// `24h`, or as short as `30s` for tests.
    #[arg(long, default_value = "90d", value_parser = parse_validity, env = "WASMGATE_CERT_VALIDITY")]
    pub cert_validity: Duration,
    /// self-managed: validity of the CA (a successor is published in the caBundles next to it
    /// at two thirds of it, then takes over).
    #[arg(long, default_value = "3650d", value_parser = parse_validity, env = "WASMGATE_CA_VALIDITY")]
    pub ca_validity: Duration,
    /// self-managed: how often every replica re-reads the Secret (and the leader checks
    /// rotation and the caBundles).
    #[arg(long, default_value = "5s", value_parser = parse_duration, env = "WASMGATE_CERT_POLL_INTERVAL")]
    pub cert_poll_interval: Duration,
    /// self-managed: the ValidatingWebhookConfiguration whose webhooks get the caBundle (empty:
    /// none).
    #[arg(long, default_value = "wasmgate", env = "WASMGATE_VALIDATING_WEBHOOK")]
    pub validating_webhook: String,
    /// self-managed: the MutatingWebhookConfiguration whose webhooks get the caBundle (empty:
    /// none).
    #[arg(long, default_value = "wasmgate", env = "WASMGATE_MUTATING_WEBHOOK")]
    pub mutating_webhook: String,
    /// self-managed: the APIService that gets the caBundle (empty: none).
    #[arg(
        long,
        default_value = "v1alpha1.wasmgate.dev",
        env = "WASMGATE_APISERVICE"
    )]
    pub apiservice: String,
}

/// What [`start`] needs besides [`TlsArgs`].
#[derive(Clone)]
pub struct TlsInputs {
    /// `--tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`.
    pub tls_key: Option<PathBuf>,
    /// `--cert-dir`: generated certificates; in self-managed mode, where a copy of the CA bundle
    /// (`ca.crt`, public) is kept.
    pub cert_dir: Option<PathBuf>,
    /// Subject alternative names of generated certificates.
    pub sans: Vec<String>,
    /// The namespace of the Secret (`--service-namespace`).
    pub namespace: String,
    /// The process's Kubernetes client, or why there is none (self-managed mode needs it).
    pub client: ClientResult,
}

/// The serving TLS of a running server: hand `config` to the listener; background tasks keep
/// it current.
pub struct ServingTls {
    /// The live configuration (reloaded in place).
    pub config: RustlsConfig,
    /// The mode in use.
    pub mode: CertMode,
}

/// Sets up the serving certificate in the chosen mode and starts its reloader. In self-managed
/// mode this waits until the Secret holds a certificate (created by the leader, `leader`; with
/// `None`, this replica writes alone).
pub async fn start(
    args: &TlsArgs,
    inputs: TlsInputs,
    leader: Option<&LeaderHandle>,
) -> Result<ServingTls, ServingError> {
    let mode = args.cert_mode.unwrap_or(if inputs.tls_cert.is_some() {
        CertMode::Files
    } else {
        CertMode::Generated
    });
    let config = match mode {
        CertMode::Files => {
            let (Some(cert), Some(key)) = (inputs.tls_cert, inputs.tls_key) else {
                return Err(ServingError::FilesMissing);
            };
            watch_files(cert, key, args.tls_reload_interval)?
        }
        CertMode::Generated => {
            let dir = inputs
                .cert_dir
                .unwrap_or_else(|| PathBuf::from("certs/dev"));
            let paths = issue::ensure_in_dir(&dir, &inputs.sans)?;
            tracing::info!(ca = %paths.ca.display(), "using generated certificates (caBundle: base64 of the CA file)");
            watch_files(paths.cert, paths.key, args.tls_reload_interval)?
        }
        CertMode::SelfManaged => {
            let client = inputs.client.map_err(ServingError::NoClient)?;
            let leader = match leader {
                Some(l) => l.clone(),
                None => {
                    tracing::info!(
                        "leader election is off: this replica manages the certificates alone"
                    );
                    LeaderHandle::always(default_identity())
                }
            };
            let config = SelfManagedConfig {
                secret_name: args.tls_secret.clone(),
                namespace: inputs.namespace,
                sans: inputs.sans,
                cert_validity: args.cert_validity,
                ca_validity: args.ca_validity,
                poll_interval: args.cert_poll_interval,
                validating_webhook: Some(args.validating_webhook.clone()).filter(|n| !n.is_empty()),
                mutating_webhook: Some(args.mutating_webhook.clone()).filter(|n| !n.is_empty()),
                apiservice: Some(args.apiservice.clone()).filter(|n| !n.is_empty()),
                ca_dir: inputs.cert_dir,
            };
            SelfManaged::start(client, config, leader).await?
        }
    };
    Ok(ServingTls { config, mode })
}
