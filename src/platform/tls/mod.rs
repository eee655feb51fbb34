//! Serving TLS that can change while serving: one rustls builder from PEM bytes
//! (client-certificate request, ALPN http/1.1), certificate issuing ([`issue`]), and the file
//! reloader.
//!
//! Every new certificate reaches the listener through
//! [`RustlsConfig::reload_from_config`]: new handshakes use it, open connections keep theirs, and
//! the listener is never restarted. Which certificate is served (`--cert-mode`) is decided in
//! [`super::serving`]; the self-managed Secret lives in [`super::certs`].

mod client_cert;
pub mod issue;

pub use client_cert::RequiredClientCa;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate and key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The certificate PEM does not parse.
    #[error("certificate: {0}")]
    Certificate(rustls_pki_types::pem::Error),
    /// The certificate PEM holds no certificate.
    #[error("no certificate")]
    NoCertificate,
    /// The key PEM does not parse.
    #[error("key: {0}")]
    Key(rustls_pki_types::pem::Error),
    /// rustls refused the pair (e.g. a key that does not match the certificate).
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// `notAfter` (Unix seconds) of the certificate this process serves; 0 before the first one.
/// One process serves one certificate on one port, so this is process-wide.
static SERVED_NOT_AFTER: AtomicI64 = AtomicI64::new(0);

/// `notAfter` (Unix seconds) of the serving certificate in use, for the expiry metric; `None`
/// before one is served.
pub fn served_certificate_not_after() -> Option<i64> {
    Some(SERVED_NOT_AFTER.load(Ordering::Relaxed)).filter(|t| *t != 0)
}

/// Records the leaf of `cert_pem` as the certificate now served (called where a configuration
/// is handed to the listener).
pub fn note_served(cert_pem: &[u8]) {
    let not_after = CertificateDer::pem_slice_iter(cert_pem)
        .next()
        .and_then(Result::ok)
        .and_then(|der| {
            x509_parser::parse_x509_certificate(der.as_ref())
                .ok()
                .map(|(_, cert)| cert.validity().not_after.timestamp())
        });
    if let Some(t) = not_after {
        SERVED_NOT_AFTER.store(t, Ordering::Relaxed);
    }
}

/// Installs ring as the process-wide rustls provider (idempotent).
pub fn install_crypto_provider() {
    // An error only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the server config from a PEM certificate chain and a PEM key: a client certificate is
/// requested but not required (the aggregated API judges it per request), ALPN is HTTP/1.1 only
/// (kube-apiserver forces it for webhooks, and the aggregator speaks it too). Refuses a key that
/// does not match the certificate.
pub fn server_config_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<rustls::ServerConfig, TlsError> {
    install_crypto_provider();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(TlsError::Certificate)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(TlsError::Key)?;
    // Ask for a client certificate without requiring one (Go's RequestClientCert): the
    // aggregator presents its front-proxy certificate; kube-apiserver's webhook calls, kubelet
    // probes and curl present none. The chain is judged per request by the aggregated API's
    // authenticator (`crate::apiserver::auth`), which sees it as `axum_server::tls::TlsInfo`.
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(Arc::new(client_cert::OptionalClientCert::new()))
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Loads the pair once (failing when it is unusable), then reloads it when the files change.
pub fn watch_files(cert: PathBuf, key: PathBuf, every: Duration) -> Result<RustlsConfig, TlsError> {
    let pair = read_pair(&cert, &key)?;
    let config = RustlsConfig::from_config(Arc::new(server_config_from_pem(&pair.0, &pair.1)?));
    note_served(&pair.0);
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

fn read_pair(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    Ok((read(cert)?, read(key)?))
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
            note_served(&c);
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
        let g = issue::generate(&["localhost".into()]).unwrap();
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
