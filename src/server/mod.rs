//! The HTTPS server: admission routes, health endpoints, `/metrics`, Kubernetes `Status`
//! errors, and the listener. Its TLS (certificates, reloading) comes from
//! [`crate::platform`].

pub mod metrics;
mod routes;

use std::net::SocketAddr;

use axum_server::tls_rustls::RustlsConfig;

pub use routes::{router, AppState, MAX_BODY_BYTES};

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding or serving failed.
    #[error("serving on {addr}: {source}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Serves `app` over TLS on `addr` until `shutdown` resolves, then drains in-flight requests.
/// `tls` may be reloaded while serving (see [`crate::platform::tls`]).
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
