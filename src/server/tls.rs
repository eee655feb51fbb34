//! TLS that can change while serving: one builder from PEM bytes (client-certificate request,
//! ALPN http/1.1), the certificate modes of `wasmgate serve`, and the file reloader.
//!
//! Every new certificate reaches the listener through
//! [`RustlsConfig::reload_from_config`]: new handshakes use it, open connections keep theirs, and
//! the listener is never restarted.
//!
//! Modes (`--cert-mode`):
//! - `files`: `--tls-cert`/`--tls-key` (e.g. a cert-manager Secret mounted as a volume); the
//!   files are re-read every `--tls-reload-interval` and a changed, valid pair is loaded. A broken
//!   or half-written pair keeps the last good certificate and logs an error.
//! - `generated`: a CA and certificate generated once into `--cert-dir` (development), reloaded
//!   like `files`.
//! - `self-managed`: wasmgate keeps a CA and serving certificate in a Secret, rotates them and
//!   writes the caBundles (see [`crate::reconcile::certs`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{client_cert, install_crypto_provider, ServerError};
use crate::inventory::parse_duration;
use crate::reconcile::leader::LeaderHandle;

/// Builds the server config from a PEM certificate chain and a PEM key: a client certificate is
/// requested but not required (the aggregated API judges it per request), ALPN is HTTP/1.1 only
/// (kube-apiserver forces it for webhooks, and the aggregator speaks it too). Refuses a key that
/// does not match the certificate.
pub fn server_config_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<rustls::ServerConfig, ServerError> {
    install_crypto_provider();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| ServerError::Tls(format!("certificate: {e}")))?;
    if certs.is_empty() {
        return Err(ServerError::Tls("no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| ServerError::Tls(format!("key: {e}")))?;
    // Ask for a client certificate without requiring one (Go's RequestClientCert): the
    // aggregator presents its front-proxy certificate; kube-apiserver's webhook calls, kubelet
    // probes and curl present none. The chain is judged per request by the aggregated API's
    // authenticator (`crate::apiserver::auth`), which sees it as `axum_server::tls::TlsInfo`.
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(Arc::new(client_cert::OptionalClientCert::new()))
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
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

/// Parses a validity: a duration as for other flags (`90s`, `2m`, `1h30m`), or days (`90d`).
pub fn parse_validity(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Some(days) = text.strip_suffix('d') {
        let days: u64 = days
            .parse()
            .map_err(|_| format!("{text:?}: {days:?} is not a number of days"))?;
        return Ok(Duration::from_secs(days.saturating_mul(86_400)));
    }
    parse_duration(text)
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
    pub client: Result<kube::Client, String>,
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
) -> anyhow::Result<ServingTls> {
    let mode = args.cert_mode.unwrap_or(if inputs.tls_cert.is_some() {
        CertMode::Files
    } else {
        CertMode::Generated
    });
    let config = match mode {
        CertMode::Files => {
            let (Some(cert), Some(key)) = (inputs.tls_cert, inputs.tls_key) else {
                anyhow::bail!("--cert-mode files needs --tls-cert and --tls-key");
            };
            files(cert, key, args.tls_reload_interval)?
        }
        CertMode::Generated => {
            let dir = inputs
                .cert_dir
                .unwrap_or_else(|| PathBuf::from("certs/dev"));
            let paths = super::certs::ensure_in_dir(&dir, &inputs.sans)?;
            tracing::info!(ca = %paths.ca.display(), "using generated certificates (caBundle: base64 of the CA file)");
            files(paths.cert, paths.key, args.tls_reload_interval)?
        }
        CertMode::SelfManaged => {
            let client = inputs
                .client
                .map_err(|e| anyhow::anyhow!("--cert-mode self-managed: {e}"))?;
            let leader = match leader {
                Some(l) => l.clone(),
                None => {
                    tracing::info!(
                        "leader election is off: this replica manages the certificates alone"
                    );
                    LeaderHandle::always(crate::reconcile::leader::default_identity())
                }
            };
            let config = crate::reconcile::certs::SelfManagedConfig {
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
            crate::reconcile::certs::SelfManaged::start(client, config, leader).await?
        }
    };
    Ok(ServingTls { config, mode })
}

/// Loads the pair once (failing when it is unusable), then reloads it when the files change.
fn files(cert: PathBuf, key: PathBuf, every: Duration) -> Result<RustlsConfig, ServerError> {
    let pair = read_pair(&cert, &key)?;
    let config = RustlsConfig::from_config(Arc::new(server_config_from_pem(&pair.0, &pair.1)?));
    tracing::info!(cert = %cert.display(), key = %key.display(), every = ?every, "serving certificate loaded from files; watching them for changes");
    spawn_file_reloader(
        cert,
        key,
        config.clone(),
        every,
        fingerprint(&pair.0, &pair.1),
    );
    Ok(config)
}

fn read_pair(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), ServerError> {
    let c =
        std::fs::read(cert).map_err(|e| ServerError::Tls(format!("{}: {e}", cert.display())))?;
    let k = std::fs::read(key).map_err(|e| ServerError::Tls(format!("{}: {e}", key.display())))?;
    Ok((c, k))
}

/// A digest of a certificate and key (to notice a change without keeping key bytes around).
pub fn fingerprint(cert_pem: &[u8], key_pem: &[u8]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&(cert_pem.len() as u64).to_be_bytes());
    ctx.update(cert_pem);
    ctx.update(key_pem);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The outcome of one look at the certificate files.
#[derive(Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// Same content as before.
    Unchanged,
    /// A new pair, now served.
    Reloaded,
    /// A changed but unusable pair (half written, mismatched, unreadable): the last good one
    /// stays.
    Rejected(String),
}

/// Reads the pair and reloads `tls` when its content differs from `last` (the fingerprint of
/// the pair looked at last, good or bad; updated).
pub fn reload_if_changed(
    cert: &Path,
    key: &Path,
    tls: &RustlsConfig,
    last: &mut [u8; 32],
) -> ReloadOutcome {
    let (c, k) = match read_pair(cert, key) {
        Ok(pair) => pair,
        Err(e) => {
            // A missing file while a Secret volume swaps its ..data link: judged again next
            // time, and reported once.
            let marker = fingerprint(e.to_string().as_bytes(), b"");
            if marker == *last {
                return ReloadOutcome::Unchanged;
            }
            *last = marker;
            return ReloadOutcome::Rejected(e.to_string());
        }
    };
    let now = fingerprint(&c, &k);
    if now == *last {
        return ReloadOutcome::Unchanged;
    }
    *last = now;
    match server_config_from_pem(&c, &k) {
        Ok(config) => {
            tls.reload_from_config(Arc::new(config));
            ReloadOutcome::Reloaded
        }
        Err(e) => ReloadOutcome::Rejected(e.to_string()),
    }
}

/// Polls the files every `every` (their content, so a Secret volume's `..data` symlink swap
/// counts) and reloads `tls` with a changed, valid pair.
pub fn spawn_file_reloader(
    cert: PathBuf,
    key: PathBuf,
    tls: RustlsConfig,
    every: Duration,
    loaded: [u8; 32],
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = loaded;
        let mut ticker = tokio::time::interval(every.max(Duration::from_millis(100)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let (c, k, t) = (cert.clone(), key.clone(), tls.clone());
            let mut fp = last;
            let outcome = tokio::task::spawn_blocking(move || {
                let outcome = reload_if_changed(&c, &k, &t, &mut fp);
                (outcome, fp)
            })
            .await;
            let Ok((outcome, fp)) = outcome else {
                continue;
            };
            last = fp;
            match outcome {
                ReloadOutcome::Unchanged => {}
                ReloadOutcome::Reloaded => {
                    tracing::info!(cert = %cert.display(), "serving certificate reloaded from files")
                }
                ReloadOutcome::Rejected(error) => tracing::error!(
                    cert = %cert.display(),
                    key = %key.display(),
                    %error,
                    "the certificate files changed but cannot be used; still serving the last good certificate"
                ),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let g = super::super::certs::generate(&["localhost".into()]).unwrap();
        (g.cert_pem, g.key_pem)
    }

    #[test]
    fn builds_with_alpn_and_refuses_mismatched_keys() {
        let (cert, key) = pair();
        let config = server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let (_, other_key) = pair();
        assert!(server_config_from_pem(cert.as_bytes(), other_key.as_bytes()).is_err());
        assert!(server_config_from_pem(b"", key.as_bytes()).is_err());
        let half = &cert[..cert.len() / 2];
        assert!(server_config_from_pem(half.as_bytes(), key.as_bytes()).is_err());
    }

    #[test]
    fn validity_accepts_days() {
        assert_eq!(
            parse_validity("90d").unwrap(),
            Duration::from_secs(90 * 86_400)
        );
        assert_eq!(parse_validity("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_validity("xd").is_err());
    }

    #[test]
    fn reload_keeps_the_last_good_pair() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        let (c1, k1) = pair();
        std::fs::write(&cert_path, &c1).unwrap();
        std::fs::write(&key_path, &k1).unwrap();
        let tls = RustlsConfig::from_config(Arc::new(
            server_config_from_pem(c1.as_bytes(), k1.as_bytes()).unwrap(),
        ));
        let mut last = fingerprint(c1.as_bytes(), k1.as_bytes());
        let first = tls.get_inner();
        assert_eq!(
            reload_if_changed(&cert_path, &key_path, &tls, &mut last),
            ReloadOutcome::Unchanged
        );
        // Half written: a new certificate with the old key.
        let (c2, k2) = pair();
        std::fs::write(&cert_path, &c2).unwrap();
        assert!(matches!(
            reload_if_changed(&cert_path, &key_path, &tls, &mut last),
            ReloadOutcome::Rejected(_)
        ));
        assert!(
            Arc::ptr_eq(&first, &tls.get_inner()),
            "last good config kept"
        );
        // Reported once.
        assert_eq!(
            reload_if_changed(&cert_path, &key_path, &tls, &mut last),
            ReloadOutcome::Unchanged
        );
        std::fs::write(&key_path, &k2).unwrap();
        assert_eq!(
            reload_if_changed(&cert_path, &key_path, &tls, &mut last),
            ReloadOutcome::Reloaded
        );
        assert!(!Arc::ptr_eq(&first, &tls.get_inner()));
    }
}
