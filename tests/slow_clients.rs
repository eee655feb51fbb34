//! The TLS listener against slow and idle clients (issue 13, finding 4), on a real
//! `wasmgate serve` process: raw sockets and a rustls client that stall at each step of a
//! request (before the TLS handshake, in the header, in the body, between requests), next to
//! ordinary webhook calls that must still be answered, and the connection cap; and how it stops
//! on SIGTERM (the shutdown delay, then the drain).
//!
//! Timing: the flags are short (0.5 s to 2 s) and every "closed" is asserted within ten times
//! the timeout, on a loaded 2-core machine. Lower bounds (closed no earlier than the timeout)
//! are measured from before the client connects, so they cannot fail on a slow machine.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::Value;

use common::Server;

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// How often a waiting client looks at its socket (and a dribbling one sends a byte).
const STEP: Duration = Duration::from_millis(100);

struct Fixture {
    _dir: tempfile::TempDir,
    server: Server,
    addr: SocketAddr,
}

fn start(flags: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = vec![
        "--inventory".to_string(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/inventory.yaml").to_string(),
    ];
    args.extend(flags.iter().map(|s| s.to_string()));
    let server = Server::start(&dir.path().join("certs"), &args);
    let addr = server
        .url
        .trim_start_matches("https://")
        .parse()
        .expect("server address");
    Fixture {
        _dir: dir,
        server,
        addr,
    }
}

fn review() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/webhooks/fixtures/good-hello-kv.json"
    ))
    .expect("fixture")
}

impl Fixture {
    fn tls_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.server.ca_pem) {
            roots.add(cert.expect("CA PEM")).expect("CA certificate");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// A TCP connection that completed its TLS handshake.
    fn connect_tls(&self) -> Tls {
        let sock = TcpStream::connect(self.addr).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        let name = ServerName::try_from("localhost").expect("server name");
        let conn = ClientConnection::new(self.tls_config(), name).expect("TLS client");
        let mut tls = StreamOwned::new(conn, sock);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).expect("TLS handshake");
        }
        tls
    }

    /// An ordinary webhook call on its own connection: answered, 200, an AdmissionReview.
    async fn validate(&self) -> Duration {
        let started = Instant::now();
        let resp = self
            .server
            .client()
            .post(format!("{}/validate?timeout=10s", self.server.url))
            .header("content-type", "application/json")
            .timeout(Duration::from_secs(60))
            .body(review())
            .send()
            .await
            .expect("the webhook answers");
        assert_eq!(resp.status().as_u16(), 200);
        let body: Value = resp.json().await.expect("JSON");
        assert_eq!(body["kind"], "AdmissionReview", "{body}");
        assert_eq!(
            body["response"]["uid"], "f67481f7-4fd7-5a8b-8c4d-981a4a797e4e",
            "{body}"
        );
        started.elapsed()
    }
}

/// What a client saw until the server closed its connection.
#[derive(Debug)]
struct Closed {
    /// The bytes the server sent.
    received: Vec<u8>,
    /// When the connection was closed, from the test's start.
    at: Duration,
}

impl Closed {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.received).into_owned()
    }
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Reads what `stream` has within [`STEP`]: `Some(true)` when the server closed the
/// connection (end of stream, reset, or a TLS stream cut without `close_notify`).
fn read_step(stream: &mut impl Read, received: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 4096];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => {
            received.extend_from_slice(&buf[..n]);
            false
        }
        Err(e) if timed_out(&e) => false,
        Err(_) => true,
    }
}

/// Waits, sending nothing, until the server closes the connection; panics when it is still open
/// at `deadline` (from `t0`).
fn wait_closed(stream: &mut impl Read, t0: Instant, deadline: Duration, what: &str) -> Closed {
    let mut received = Vec::new();
    loop {
        if read_step(stream, &mut received) {
            return Closed {
                received,
                at: t0.elapsed(),
            };
        }
        assert!(
            t0.elapsed() < deadline,
            "{what}: still open after {deadline:?} (received {:?})",
            String::from_utf8_lossy(&received)
        );
    }
}

/// Sends `prefix`, then one byte of `drip` every [`STEP`] (wrapping around) until the server
/// answers or closes, then waits for the close; panics when it is still open at `deadline`.
fn dribble_until_closed(
    tls: &mut Tls,
    prefix: &[u8],
    drip: &[u8],
    t0: Instant,
    deadline: Duration,
    what: &str,
) -> Closed {
    tls.sock.set_read_timeout(Some(STEP)).expect("read timeout");
    let closed_at = |received| Closed {
        received,
        at: t0.elapsed(),
    };
    if tls.write_all(prefix).and_then(|()| tls.flush()).is_err() {
        return closed_at(Vec::new());
    }
    let mut received = Vec::new();
    for byte in drip.iter().cycle() {
        if read_step(tls, &mut received) {
            return closed_at(received);
        }
        if !received.is_empty() {
            // An answer: stop sending and wait for the close.
            break;
        }
        assert!(
            t0.elapsed() < deadline,
            "{what}: still open after {deadline:?} of dribbling"
        );
        if tls.write_all(&[*byte]).and_then(|()| tls.flush()).is_err() {
            return closed_at(received);
        }
    }
    let mut rest = wait_closed(tls, t0, deadline, what);
    received.append(&mut rest.received);
    Closed {
        received,
        at: rest.at,
    }
}

/// (a) A socket that connects and never starts the TLS handshake is closed after
/// `--tls-handshake-timeout` (500 ms here; axum-server's own default would be 10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_socket_is_closed_after_the_handshake_timeout() {
    let timeout = Duration::from_millis(500);
    let f = start(&["--tls-handshake-timeout", "500ms"]);
    let closed = tokio::task::spawn_blocking(move || {
        let t0 = Instant::now();
        let mut sock = TcpStream::connect(f.addr).expect("connect");
        sock.set_read_timeout(Some(STEP)).expect("read timeout");
        let closed = wait_closed(&mut sock, t0, timeout * 10, "a silent socket");
        drop(f);
        closed
    })
    .await
    .expect("client thread");
    assert!(closed.received.is_empty(), "{closed:?}");
    assert!(
        closed.at >= timeout.mul_f64(0.9),
        "closed after {:?}, before the handshake timeout",
        closed.at
    );
}

/// (b) Slow-loris: connections that finish the TLS handshake and then send a request header a
/// byte at a time are closed after `--header-read-timeout` (a deadline for the whole header,
/// not reset by each byte), while an ordinary webhook call on another connection is answered
/// meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loris_header_is_cut_off_while_others_are_served() {
    let timeout = Duration::from_secs(1);
    let f = Arc::new(start(&["--header-read-timeout", "1s"]));
    let loris: Vec<_> = (0..8)
        .map(|i| {
            let f = f.clone();
            std::thread::spawn(move || {
                let t0 = Instant::now();
                let mut tls = f.connect_tls();
                dribble_until_closed(
                    &mut tls,
                    b"POST /validate HTTP/1.1\r\nHost: localhost\r\nX-Slow: ",
                    b"abcdefghijklmnopqrstuvwxyz",
                    t0,
                    timeout * 10,
                    &format!("slow-loris {i}"),
                )
            })
        })
        .collect();
    // While they dribble, an ordinary call is answered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    f.validate().await;
    for (i, l) in loris.into_iter().enumerate() {
        let closed = l.join().expect("slow-loris thread");
        assert!(
            closed.at >= timeout.mul_f64(0.9),
            "slow-loris {i}: closed after {:?}, before the header timeout",
            closed.at
        );
        assert!(
            !closed.text().starts_with("HTTP/1.1 2"),
            "slow-loris {i} was answered: {}",
            closed.text()
        );
    }
    // And the server still answers afterwards.
    f.validate().await;
}

/// An idle kept-alive connection is closed after `--header-read-timeout` too (hyper's header
/// timer starts as soon as the connection is ready for the next request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let timeout = Duration::from_secs(1);
    let f = start(&["--header-read-timeout", "1s"]);
    let closed = tokio::task::spawn_blocking(move || {
        let mut tls = f.connect_tls();
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .and_then(|()| tls.flush())
            .expect("request");
        let mut response = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&response).ends_with("\r\n\r\nok") {
            let n = tls.read(&mut buf).expect("response");
            assert!(
                n > 0,
                "closed before answering: {}",
                String::from_utf8_lossy(&response)
            );
            response.extend_from_slice(&buf[..n]);
        }
        assert!(
            String::from_utf8_lossy(&response).starts_with("HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&response)
        );
        // Kept alive, then idle.
        tls.sock.set_read_timeout(Some(STEP)).expect("read timeout");
        let closed = wait_closed(&mut tls, Instant::now(), timeout * 10, "an idle connection");
        drop(f);
        closed
    })
    .await
    .expect("client thread");
    assert!(closed.received.is_empty(), "{}", closed.text());
    // The timer started when the response was sent, a little before it was read here.
    assert!(
        closed.at >= timeout / 2,
        "closed after {:?}: not kept alive",
        closed.at
    );
}

/// (c) A request whose header promises a body that then stalls is answered `408` (a
/// Kubernetes Status) and its connection closed after `--request-body-timeout`; a body
/// dribbled a byte at a time is cut off at the same deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_408_and_the_connection_closes() {
    let timeout = Duration::from_secs(1);
    let f = Arc::new(start(&["--request-body-timeout", "1s"]));
    let header = |path: &str| {
        format!(
            "POST {path}?timeout=10s HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"apiVersion\""
        )
    };
    let stalled = {
        let f = f.clone();
        let header = header("/validate");
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut tls = f.connect_tls();
            tls.write_all(header.as_bytes())
                .and_then(|()| tls.flush())
                .expect("request header");
            tls.sock.set_read_timeout(Some(STEP)).expect("read timeout");
            wait_closed(&mut tls, t0, timeout * 10, "a stalled body")
        })
    };
    let dribbled = {
        let f = f.clone();
        let header = header("/mutate");
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut tls = f.connect_tls();
            dribble_until_closed(
                &mut tls,
                header.as_bytes(),
                b" ",
                t0,
                timeout * 10,
                "a dribbled body",
            )
        })
    };
    // An ordinary call meanwhile.
    f.validate().await;

    let closed = stalled.join().expect("client thread");
    let text = closed.text();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.to_lowercase().contains("connection: close"), "{text}");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let status: Value = serde_json::from_str(body).expect("a Status body");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["code"], 408);
    assert_eq!(status["reason"], "Timeout");
    assert!(
        closed.at >= timeout.mul_f64(0.9),
        "answered after {:?}, before the body timeout",
        closed.at
    );

    let closed = dribbled.join().expect("client thread");
    assert!(
        closed.at >= timeout.mul_f64(0.9),
        "closed after {:?}, before the body timeout",
        closed.at
    );
    // Either the 408 was read, or the server's close reset the connection under the last
    // bytes sent (a close with unread input is a reset): never an admission answer.
    let text = closed.text();
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

/// (d) With `--max-connections 4` and four silent sockets holding every place, a webhook call
/// waits in the listen backlog (its connection is neither refused nor served) until the silent
/// ones are closed by the handshake timeout; then it is served, and so are the next ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_queues_new_connections_until_idle_ones_time_out() {
    let timeout = Duration::from_secs(2);
    let f = Arc::new(start(&[
        "--max-connections",
        "4",
        "--tls-handshake-timeout",
        "2s",
        "--header-read-timeout",
        "2s",
    ]));
    let t0 = Instant::now();
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| {
            let sock = TcpStream::connect(f.addr).expect("connect");
            sock.set_read_timeout(Some(STEP)).expect("read timeout");
            sock
        })
        .collect();
    // The call connects behind them (the kernel accepts in order) and waits.
    f.validate().await;
    let served = t0.elapsed();
    assert!(
        served >= timeout.mul_f64(0.9),
        "served after {served:?}, while four silent sockets held every place"
    );
    assert!(served < timeout * 10, "served only after {served:?}");
    let closed = tokio::task::spawn_blocking(move || {
        idle.into_iter()
            .enumerate()
            .map(|(i, mut sock)| wait_closed(&mut sock, t0, timeout * 10, &format!("idle {i}")))
            .collect::<Vec<_>>()
    })
    .await
    .expect("client thread");
    for c in &closed {
        assert!(c.at >= timeout.mul_f64(0.9), "{c:?}");
    }
    // The places are free again: calls are served at once (well within the handshake timeout
    // that had to pass above).
    for _ in 0..3 {
        let took = f.validate().await;
        assert!(took < timeout * 10, "{took:?}");
    }
}

/// Reads one HTTP/1.1 response with a `Content-Length` body: the header (lowercased) and the
/// body.
fn read_response(tls: &mut Tls) -> (String, Vec<u8>) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tls.read(&mut buf).expect("a response");
        assert!(n > 0, "closed before a response header");
        received.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().expect("content-length"))
        .expect("a content-length");
    while received.len() < head_end + length {
        let n = tls.read(&mut buf).expect("the response body");
        assert!(n > 0, "closed inside the response body");
        received.extend_from_slice(&buf[..n]);
    }
    (head, received[head_end..head_end + length].to_vec())
}

fn validate_header(length: usize) -> String {
    format!(
        "POST /validate?timeout=30s HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

/// (e) A stop signal, as a pod deletion sends it while the Service is still dropping the
/// replica: for `--shutdown-delay` the server keeps accepting and answering, `/readyz` turns
/// 503 and responses carry `Connection: close` (kept-alive clients move elsewhere); then the
/// listener closes, a request that was still arriving is answered (the drain), and the process
/// exits 0.
///
/// Timing: only lower bounds measured from before the signal (the listener is not closed before
/// the delay) and generous upper bounds.
#[test]
fn a_stop_signal_keeps_serving_for_the_delay_then_drains_in_flight_requests() {
    let delay = Duration::from_secs(3);
    let mut f = start(&[
        "--shutdown-delay",
        "3s",
        "--drain-timeout",
        "20s",
        "--request-body-timeout",
        "60s",
    ]);
    let body = review();
    let (first, rest) = body.split_at(body.len() / 2);

    // A: a request still arriving (half its body sent) across the whole stop.
    let mut in_flight = f.connect_tls();
    in_flight
        .write_all(validate_header(body.len()).as_bytes())
        .and_then(|()| in_flight.write_all(first))
        .and_then(|()| in_flight.flush())
        .expect("half a request");
    // B: a kept-alive connection with one answered request.
    let mut kept = f.connect_tls();
    let send_validate = |tls: &mut Tls| {
        tls.write_all(validate_header(body.len()).as_bytes())
            .and_then(|()| tls.write_all(&body))
            .and_then(|()| tls.flush())
            .expect("a request");
        read_response(tls)
    };
    let (head, _) = send_validate(&mut kept);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");

    let signalled = Instant::now();
    f.server.signal("TERM");

    // Still serving: a new connection is accepted and asked whether it is ready (no).
    let readyz = |f: &Fixture| {
        let mut tls = f.connect_tls();
        tls.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .and_then(|()| tls.flush())
            .expect("readyz request");
        let (head, body) = read_response(&mut tls);
        (head, String::from_utf8_lossy(&body).into_owned())
    };
    let mut answer = readyz(&f);
    while answer.0.starts_with("http/1.1 200") && signalled.elapsed() < delay / 2 {
        std::thread::sleep(STEP);
        answer = readyz(&f);
    }
    let (head, text) = answer;
    assert!(head.starts_with("http/1.1 503"), "{head}{text}");
    assert!(text.contains("not ready: shutting down"), "{text}");
    assert!(
        signalled.elapsed() < delay,
        "readyz turned 503 only after the delay"
    );

    // The kept-alive connection is answered once more, told to close, and closed.
    let (head, reply) = send_validate(&mut kept);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let reply: Value = serde_json::from_slice(&reply).expect("JSON");
    assert_eq!(reply["kind"], "AdmissionReview", "{reply}");
    kept.sock
        .set_read_timeout(Some(STEP))
        .expect("read timeout");
    wait_closed(
        &mut kept,
        Instant::now(),
        Duration::from_secs(10),
        "the kept-alive connection after Connection: close",
    );

    // After the delay the listener closes: new connections are refused.
    let closed = loop {
        if TcpStream::connect(f.addr).is_err() {
            break signalled.elapsed();
        }
        assert!(
            signalled.elapsed() < delay * 10,
            "still accepting connections {:?} after the signal",
            signalled.elapsed()
        );
        std::thread::sleep(STEP);
    };
    assert!(
        closed >= delay,
        "the listener closed {closed:?} after the signal, before the {delay:?} delay"
    );

    // The request that was still arriving is served to the end.
    in_flight
        .write_all(rest)
        .and_then(|()| in_flight.flush())
        .expect("the rest of the request");
    let (head, reply) = read_response(&mut in_flight);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let reply: Value = serde_json::from_slice(&reply).expect("JSON");
    assert_eq!(reply["response"]["allowed"], true, "{reply}");
    drop(in_flight);

    let status = f.server.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "exit status {status}");
}
