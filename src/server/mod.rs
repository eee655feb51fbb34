//! The HTTPS server: admission routes, health endpoints, Kubernetes `Status` errors, and TLS.

pub mod certs;
mod client_cert;
pub mod metrics;
mod routes;
pub mod tls;

use std::net::SocketAddr;
use std::path::Path;

use axum_server::tls_rustls::RustlsConfig;

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

/// Builds a rustls server config from PEM files (see [`tls::server_config_from_pem`]).
pub fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, ServerError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| ServerError::Tls(format!("{}: {e}", path.display())))
    };
    tls::server_config_from_pem(&read(cert)?, &read(key)?)
        .map_err(|e| ServerError::Tls(format!("{}: {e}", cert.display())))
}

/// Serves `app` over TLS on `addr` until `shutdown` resolves, then drains in-flight requests.
/// `tls` may be reloaded while serving (see [`tls`]).
pub async fn serve_tls(
    addr: SocketAddr,
    tls: RustlsConfig,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
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
