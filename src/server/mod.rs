//! The HTTPS server: admission routes, health endpoints, `/metrics`, Kubernetes `Status`
//! errors, and the listener. Its TLS (certificates, reloading) and its defences against slow
//! and idle clients (timeouts, the connection cap) come from [`crate::platform`].

mod body_deadline;
pub mod metrics;
mod routes;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use hyper_util::rt::TokioTimer;

use crate::platform::listener::{CappedAddr, ListenerArgs};

pub use body_deadline::BodyError;
pub use routes::{router, AppState, NatsReadiness, MAX_BODY_BYTES};

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

/// Serves `app` over TLS on `addr` until `shutdown` resolves, then stops in two steps, as a
/// replica behind a Service must (Kubernetes removes a terminating pod from the Service's
/// endpoints while it is already being signalled, so for a moment new requests still arrive):
///
/// 1. for `limits.shutdown_delay`, or until `hurry` resolves (a second signal), it keeps
///    accepting and serving while `stopping` is set: `/readyz` answers 503 and every response
///    carries `Connection: close`, so keep-alive clients reconnect (through the Service, to
///    another replica) after their current request;
/// 2. the listener closes and in-flight requests have `limits.drain_timeout` to finish.
///
/// `tls` may be reloaded while serving (see [`crate::platform::tls`]).
///
/// Slow and idle clients are bounded by `limits` (see [`crate::platform::listener`]): the TLS
/// handshake, the request header and the request body each have a deadline, and at most
/// `limits.max_connections` connections are open at once (further ones wait in the listen
/// backlog). HTTP/1.1 only, as ALPN offers: no protocol sniffing, so the header timer runs from
/// the end of the handshake.
pub async fn serve_tls(
    addr: SocketAddr,
    tls: RustlsConfig,
    app: axum::Router,
    limits: &ListenerArgs,
    stopping: Arc<AtomicBool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    hurry: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    let (delay, drain) = (limits.shutdown_delay, limits.drain_timeout);
    let stop = stopping.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.store(true, Ordering::Relaxed);
        if !delay.is_zero() {
            tracing::info!(
                ?delay,
                "stopping: serving a little longer so that the Service drops this replica first \
                 (a second signal skips the wait)"
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = hurry => tracing::info!("second signal: not waiting any longer"),
            }
        }
        tracing::info!(timeout = ?drain, connections = h.connection_count(), "listener closed; draining in-flight requests");
        h.graceful_shutdown(Some(drain));
    });
    let app = app.layer(axum::middleware::map_response(
        move |mut response: axum::response::Response| {
            let stopping = stopping.load(Ordering::Relaxed);
            async move {
                if stopping {
                    response.headers_mut().insert(
                        axum::http::header::CONNECTION,
                        axum::http::HeaderValue::from_static("close"),
                    );
                }
                response
            }
        },
    ));
    let app = body_deadline::layer(app, limits.request_body_timeout);
    let acceptor = RustlsAcceptor::new(tls).handshake_timeout(limits.tls_handshake_timeout);
    let max_connections = usize::try_from(limits.max_connections).unwrap_or(usize::MAX);
    let mut server = axum_server::Server::bind(CappedAddr::new(addr, max_connections))
        .acceptor(acceptor)
        .http1_only()
        .handle(handle);
    // hyper's header timer needs a timer (without one, a configured timeout is refused when a
    // connection is served).
    server
        .http_builder()
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tracing::info!(
        tls_handshake_timeout = ?limits.tls_handshake_timeout,
        header_read_timeout = ?limits.header_read_timeout,
        request_body_timeout = ?limits.request_body_timeout,
        max_connections,
        "listener limits"
    );
    server
        .serve(app.into_make_service())
        .await
        .map_err(|source| ServerError::Serve { addr, source })
}
