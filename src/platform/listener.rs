//! The TLS listener's defences against slow and idle clients: how long a client may take over
//! each step of a request, and how many connections may be open at once (`wasmgate serve`
//! flags, applied by the server's `serve_tls`).
//!
//! A client gets, in turn:
//! 1. `--tls-handshake-timeout` from the moment its connection is accepted to finish the TLS
//!    handshake (a socket that connects and says nothing is closed after it);
//! 2. `--header-read-timeout` to send a whole request header, counted from the end of the
//!    handshake and, on a kept-alive connection, from the end of the previous response. It is a
//!    deadline, not an inactivity timeout: a header dribbled a byte at a time (slow-loris) is cut
//!    off too. It also closes a kept-alive connection left idle that long (hyper starts its header
//!    timer as soon as a connection is ready for the next request).
//! 3. `--request-body-timeout` from the end of the header to send the whole body, again a total
//!    deadline (kube-apiserver sends each body at once); past it the answer is a `408` Status and
//!    the connection is closed.
//!
//! At most `--max-connections` connections are open at once, counted from accept to close (TLS
//! handshakes included). When all are in use, wasmgate stops accepting: new connections wait in
//! the kernel's listen backlog and are accepted, oldest first, as open ones close. Why wait
//! rather than close them: kube-apiserver calls a webhook with a deadline (`timeoutSeconds`,
//! 10 s by default) and does not retry a refused connection, and with `failurePolicy: Fail` a
//! refusal denies the request at once; the timeouts above free a slot within seconds even when
//! idle sockets fill every one, so a waiting call is usually served within its deadline. A
//! waiting connection costs wasmgate nothing (no task, no file descriptor): the backlog is the
//! kernel's (1024, capped by `net.core.somaxconn`); past it the kernel drops new SYNs and
//! clients retransmit. As the listener speaks HTTP/1.1 only (ALPN `http/1.1`), each connection
//! carries at most one request at a time, so the cap also bounds the requests in flight.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum_server::{AddrListener, Address};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use super::duration::{parse_duration, DurationError};

/// Why a listener flag does not parse.
#[derive(Debug, thiserror::Error)]
pub enum ListenerFlagError {
    /// Not a duration.
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// Zero would close every connection at once.
    #[error("must be longer than zero")]
    Zero,
}

/// Why accepting a connection failed (besides the socket's own errors).
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// The connection limiter was closed (it never is while the listener lives).
    #[error("the connection limiter is closed")]
    LimiterClosed,
}

/// Parses a timeout flag: a duration ([`parse_duration`]) longer than zero.
pub fn parse_timeout(text: &str) -> Result<Duration, ListenerFlagError> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(ListenerFlagError::Zero);
    }
    Ok(d)
}

/// Timeouts and the connection cap of the TLS listener.
#[derive(Clone, Debug, clap::Args)]
pub struct ListenerArgs {
    /// Time a client has, once its connection is accepted, to finish the TLS handshake.
    #[arg(long, default_value = "10s", value_parser = parse_timeout, env = "WASMGATE_TLS_HANDSHAKE_TIMEOUT")]
    pub tls_handshake_timeout: Duration,
    /// Time a client has to send a whole request header, from the end of the handshake or of
    /// the previous response; an idle kept-alive connection is closed after it too.
    #[arg(long, default_value = "10s", value_parser = parse_timeout, env = "WASMGATE_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: Duration,
    /// Time a client has, from the end of a request header, to send the whole body (else 408
    /// and the connection is closed).
    #[arg(long, default_value = "10s", value_parser = parse_timeout, env = "WASMGATE_REQUEST_BODY_TIMEOUT")]
    pub request_body_timeout: Duration,
    /// Most connections open at once (TLS handshakes included); further ones wait in the
    /// kernel's listen backlog until one closes.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..), env = "WASMGATE_MAX_CONNECTIONS")]
    pub max_connections: u32,
    /// After SIGTERM, how long to keep serving (answering not ready, asking clients to
    /// reconnect) before the listener closes, so that the Service drops this replica first; a
    /// second signal ends the wait. `0s` closes at once.
    #[arg(long, default_value = "5s", value_parser = parse_duration, env = "WASMGATE_SHUTDOWN_DELAY")]
    pub shutdown_delay: Duration,
    /// Once the listener is closed, how long in-flight requests (and `hosts` watches) have to
    /// finish before their connections are cut.
    #[arg(long, default_value = "20s", value_parser = parse_timeout, env = "WASMGATE_DRAIN_TIMEOUT")]
    pub drain_timeout: Duration,
}

impl Default for ListenerArgs {
    fn default() -> Self {
        ListenerArgs {
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            request_body_timeout: Duration::from_secs(10),
            max_connections: 1024,
            shutdown_delay: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(20),
        }
    }
}

/// A TCP address with the most connections its listener keeps open at once: axum-server binds
/// it with a [`CappedListener`]. (axum-server uses one type for the listening address and the
/// peers' addresses; a peer's carries the same cap.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CappedAddr {
    /// The socket address.
    pub addr: SocketAddr,
    /// The cap.
    pub max_connections: usize,
}

impl CappedAddr {
    /// `addr` with at most `max_connections` connections open (at least one).
    pub fn new(addr: SocketAddr, max_connections: usize) -> Self {
        CappedAddr {
            addr,
            max_connections: max_connections.clamp(1, Semaphore::MAX_PERMITS),
        }
    }
}

impl Address for CappedAddr {
    type Stream = CappedStream;
    type Listener = CappedListener;
}

/// A TCP listener that accepts a connection only while fewer than its cap are open; each
/// accepted [`CappedStream`] holds its place until it is dropped.
#[derive(Debug)]
pub struct CappedListener {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    max_connections: usize,
    /// When the last "all connections in use" warning was logged (at most one a minute).
    last_warned: Mutex<Option<Instant>>,
}

/// How often "all connections in use" is logged at most.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(60);

impl CappedListener {
    /// Binds `addr`.
    pub async fn bind(addr: CappedAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr.addr).await?;
        Ok(CappedListener {
            listener,
            permits: Arc::new(Semaphore::new(addr.max_connections)),
            max_connections: addr.max_connections,
            last_warned: Mutex::new(None),
        })
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.max_connections
            .saturating_sub(self.permits.available_permits())
    }

    fn warn_full(&self) {
        let Ok(mut last) = self.last_warned.lock() else {
            return;
        };
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < FULL_WARNING_EVERY) {
            return;
        }
        *last = Some(now);
        tracing::warn!(
            max_connections = self.max_connections,
            "all connections are in use: new ones wait in the listen backlog until one closes \
             (logged at most once a minute)"
        );
    }

    /// Waits for a free place, then accepts the next connection.
    pub async fn accept(&self) -> io::Result<(CappedStream, CappedAddr)> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits) => {
                self.warn_full();
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| io::Error::other(ListenerError::LimiterClosed))?
            }
            Err(TryAcquireError::Closed) => {
                return Err(io::Error::other(ListenerError::LimiterClosed))
            }
        };
        let (stream, peer) = self.listener.accept().await?;
        // Responses go out at once: with Nagle's algorithm a small TLS record written while an
        // earlier one is unacknowledged waits for the client's delayed ACK (40 ms on Linux),
        // which was wasmgate's whole p99.9 under load (issue 17). Failing to set it only costs
        // latency.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
        }
        let peer = CappedAddr {
            addr: peer,
            max_connections: self.max_connections,
        };
        Ok((
            CappedStream {
                stream,
                _permit: permit,
            },
            peer,
        ))
    }
}

impl AddrListener<CappedStream, CappedAddr> for CappedListener {
    async fn bind_to(addr: CappedAddr) -> io::Result<Self> {
        CappedListener::bind(addr).await
    }

    async fn accept_stream(&self) -> io::Result<(CappedStream, CappedAddr)> {
        self.accept().await
    }

    fn get_local_addr(&self) -> io::Result<CappedAddr> {
        Ok(CappedAddr {
            addr: self.listener.local_addr()?,
            max_connections: self.max_connections,
        })
    }
}

/// An accepted TCP connection holding its place under the cap until dropped.
#[derive(Debug)]
pub struct CappedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for CappedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        listener: ListenerArgs,
    }

    #[test]
    fn flags_and_defaults() {
        let defaults = Cli::try_parse_from(["x"]).expect("parses").listener;
        let want = ListenerArgs::default();
        assert_eq!(defaults.tls_handshake_timeout, want.tls_handshake_timeout);
        assert_eq!(defaults.header_read_timeout, want.header_read_timeout);
        assert_eq!(defaults.request_body_timeout, want.request_body_timeout);
        assert_eq!(defaults.max_connections, want.max_connections);

        let set = Cli::try_parse_from([
            "x",
            "--tls-handshake-timeout",
            "1.5s",
            "--header-read-timeout",
            "250ms",
            "--request-body-timeout",
            "1m",
            "--max-connections",
            "4",
        ])
        .expect("parses")
        .listener;
        assert_eq!(set.tls_handshake_timeout, Duration::from_millis(1500));
        assert_eq!(set.header_read_timeout, Duration::from_millis(250));
        assert_eq!(set.request_body_timeout, Duration::from_secs(60));
        assert_eq!(set.max_connections, 4);

        for bad in [
            ["--tls-handshake-timeout", "0"],
            ["--header-read-timeout", "0s"],
            ["--request-body-timeout", "soon"],
            ["--max-connections", "0"],
            ["--max-connections", "-1"],
        ] {
            assert!(
                Cli::try_parse_from(["x", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_timeout("0").unwrap_err().to_string(),
            "must be longer than zero"
        );
    }

    #[test]
    fn the_cap_is_at_least_one() {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
        assert_eq!(CappedAddr::new(addr, 0).max_connections, 1);
        assert_eq!(CappedAddr::new(addr, 7).max_connections, 7);
    }

    /// With the cap reached, the next connection is not accepted (it waits in the backlog,
    /// already connected on the client's side) until an open one is dropped; then it is
    /// accepted and works.
    #[tokio::test]
    async fn a_full_listener_accepts_again_once_a_connection_closes() {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
        let listener = CappedListener::bind(CappedAddr::new(addr, 2))
            .await
            .expect("bind");
        let local = listener.get_local_addr().expect("local address").addr;

        let _c1 = TcpStream::connect(local).await.expect("connect 1");
        let _c2 = TcpStream::connect(local).await.expect("connect 2");
        let (s1, _) = listener.accept().await.expect("accept 1");
        let (s2, _) = listener.accept().await.expect("accept 2");
        assert_eq!(listener.open_connections(), 2);
        // Accepted connections send without Nagle's delay.
        assert!(s1.stream.nodelay().expect("nodelay"));

        let mut c3 = TcpStream::connect(local)
            .await
            .expect("connect 3 (backlog)");
        // No place: not accepted however long we wait here.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), listener.accept())
                .await
                .is_err(),
            "a third connection was accepted under a cap of two"
        );
        drop(s1);
        assert_eq!(listener.open_connections(), 1);
        let (mut s3, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
            .await
            .expect("accepted once a place is free")
            .expect("accept 3");
        assert_eq!(listener.open_connections(), 2);
        c3.write_all(b"ping").await.expect("write");
        let mut buf = [0u8; 4];
        s3.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"ping");
        s3.write_all(b"pong").await.expect("write back");
        c3.read_exact(&mut buf).await.expect("read back");
        assert_eq!(&buf, b"pong");
        drop((s2, s3));
        assert_eq!(listener.open_connections(), 0);
    }
}
