//! The HTTPS server: admission routes, health endpoints, Kubernetes `Status` errors, and TLS.

pub mod certs;
mod client_cert;
pub mod metrics;
mod routes;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use routes::{router, AppState, MAX_BODY_BYTES};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Certificate or key unreadable or invalid.
    #[error("TLS: {0}")]
    Tls(String),
    /// Binding or serving failed.
    #[error("serving on {addr}: {source}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Installs ring as the process-wide rustls provider (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds a rustls server config from PEM files. ALPN is HTTP/1.1 only: kube-apiserver forces
/// it for webhooks, and the aggregator speaks it too.
pub fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, ServerError> {
    install_crypto_provider();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| ServerError::Tls(format!("{}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| ServerError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!(
            "{}: no certificate",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServerError::Tls(format!("{}: {e}", key.display())))?;
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

/// Serves `app` over TLS on `addr` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve_tls(
    addr: SocketAddr,
    config: rustls::ServerConfig,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let tls = RustlsConfig::from_config(Arc::new(config));
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    axum_server::bind_rustls(addr, tls)
        .handle(handle)
        .serve(app.into_make_service())
        .await
        .map_err(|source| ServerError::Serve { addr, source })
}
