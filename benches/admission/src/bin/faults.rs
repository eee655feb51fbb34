//! The fault injectors of `scripts/bench-faults` (not part of wasmgate):
//!
//! - `faults proxy LISTEN BACKENDS_FILE`: a Service as kube-proxy makes one: each new TCP
//!   connection goes to the next backend (round robin) listed in BACKENDS_FILE (`host:port`
//!   per line, re-read for every connection, so the script removes a replica as the endpoints
//!   controller would); an open connection stays with its backend until either side closes it.
//!   A backend that refuses gets the client's connection reset, as a dead pod's would.
//! - `faults slow-loris ADDR COUNT SECONDS [HEADER_TIMEOUT]`: keeps COUNT TLS connections open to
//!   ADDR, each sending a request header one byte a second (reconnecting when the server closes
//!   it), for SECONDS; then prints one JSON line: connections opened, closed by the server, the
//!   longest lifetime and the oldest still open at the end (both in seconds), and how many lived
//!   longer than HEADER_TIMEOUT plus one second.
//! - `faults silent LISTEN`: a registry that accepts connections and never answers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["proxy", listen, backends] => proxy(listen.parse()?, PathBuf::from(backends)).await,
        ["slow-loris", addr, count, seconds] => {
            slow_loris(addr.parse()?, count.parse()?, seconds.parse()?, 10.0).await
        }
        ["slow-loris", addr, count, seconds, timeout] => {
            slow_loris(
                addr.parse()?,
                count.parse()?,
                seconds.parse()?,
                timeout.parse()?,
            )
            .await
        }
        ["silent", listen] => silent(listen.parse()?).await,
        _ => bail!(
            "usage: faults proxy LISTEN BACKENDS_FILE | faults slow-loris ADDR COUNT SECONDS \
             [HEADER_TIMEOUT_SECONDS] | faults silent LISTEN"
        ),
    }
}

async fn proxy(listen: SocketAddr, backends: PathBuf) -> Result<()> {
    let listener = TcpListener::bind(listen).await?;
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let (client, _) = listener.accept().await?;
        let list: Vec<String> = std::fs::read_to_string(&backends)
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        if list.is_empty() {
            continue; // no endpoints: the connection is dropped
        }
        let backend = list[next.fetch_add(1, Ordering::Relaxed) % list.len()].clone();
        tokio::spawn(async move {
            let mut client = client;
            match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&backend)).await {
                Ok(Ok(mut upstream)) => {
                    let _ = client.set_nodelay(true);
                    let _ = upstream.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
                _ => {
                    // Reset, as a connection to a pod that is gone ends (a zero linger sends
                    // RST at once: the drop does not block).
                    #[allow(deprecated)]
                    let _ = client.set_linger(Some(Duration::ZERO));
                }
            }
        });
    }
}

async fn silent(listen: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(listen).await?;
    let mut held = Vec::new();
    loop {
        let (stream, _) = listener.accept().await?;
        held.push(stream);
    }
}

/// Accepts any server certificate: the load tool's `--insecure`, for a bench.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[derive(Default)]
struct LorisStats {
    opened: AtomicU64,
    closed_by_server: AtomicU64,
    failed_to_connect: AtomicU64,
    /// Lifetimes of the connections the server closed, in milliseconds.
    lifetimes: Mutex<Vec<u64>>,
}

async fn slow_loris(addr: SocketAddr, count: usize, seconds: f64, timeout: f64) -> Result<()> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stats = Arc::new(LorisStats::default());
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    // When each slot's current connection was opened (None while it reconnects).
    let open_since: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; count]));
    let mut tasks = Vec::new();
    for slot in 0..count {
        let (connector, stats, open_since) = (connector.clone(), stats.clone(), open_since.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                let started = Instant::now();
                let Ok(tcp) = TcpStream::connect(addr).await else {
                    stats.failed_to_connect.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                stats.opened.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut slots) = open_since.lock() {
                    slots[slot] = Some(started);
                }
                let name = ServerName::IpAddress(addr.ip().into());
                let closed =
                    match tokio::time::timeout_at(end.into(), hold_header(&connector, name, tcp))
                        .await
                    {
                        Ok(()) => true,
                        Err(_) => false, // the run ended with the connection still open
                    };
                if closed {
                    stats.closed_by_server.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut l) = stats.lifetimes.lock() {
                        l.push(started.elapsed().as_millis() as u64);
                    }
                    if let Ok(mut slots) = open_since.lock() {
                        slots[slot] = None;
                    }
                }
            }
        }));
        // Open them over a second rather than in one burst.
        tokio::time::sleep(Duration::from_secs_f64(1.0 / count as f64)).await;
    }
    for t in tasks {
        t.await.context("a slow-loris task")?;
    }
    let now = Instant::now();
    let oldest_open = open_since
        .lock()
        .map(|s| {
            s.iter()
                .flatten()
                .map(|t| now.duration_since(*t).as_secs_f64())
                .fold(0.0, f64::max)
        })
        .unwrap_or(0.0);
    let lifetimes = stats
        .lifetimes
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    let longest = lifetimes.iter().copied().max().unwrap_or(0) as f64 / 1000.0;
    let over = lifetimes
        .iter()
        .filter(|ms| **ms as f64 / 1000.0 > timeout + 1.0)
        .count();
    println!(
        "{}",
        serde_json::json!({
            "sockets": count,
            "opened": stats.opened.load(Ordering::Relaxed),
            "closedByServer": stats.closed_by_server.load(Ordering::Relaxed),
            "failedToConnect": stats.failed_to_connect.load(Ordering::Relaxed),
            "longestLifetimeSeconds": longest,
            "oldestOpenAtEndSeconds": oldest_open,
            "livedPastHeaderTimeout": over,
            "headerTimeoutSeconds": timeout,
        })
    );
    Ok(())
}

/// Handshakes, then sends a request header a byte a second until the server closes.
async fn hold_header(
    connector: &tokio_rustls::TlsConnector,
    name: ServerName<'static>,
    tcp: TcpStream,
) {
    let Ok(mut tls) = connector.connect(name, tcp).await else {
        return;
    };
    let header = b"POST /validate HTTP/1.1\r\nHost: wasmgate\r\nContent-Type: application/json\r\n";
    let filler = b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    if tls.write_all(header).await.is_err() || tls.flush().await.is_err() {
        return;
    }
    let mut buf = [0u8; 1024];
    for byte in filler.iter().cycle() {
        tokio::select! {
            read = tls.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // a 408 or the like: the close follows
            },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if tls.write_all(&[*byte]).await.is_err() || tls.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}
