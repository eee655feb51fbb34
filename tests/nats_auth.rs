//! wasmgate on a NATS that authenticates its clients, as wasmCloud's chart runs it: a real
//! nats-server with TLS and `verify_and_map` client certificates (each certificate's subject is a
//! NATS user with its own permissions), and one with nkey users. The flags are parsed as
//! `wasmgate serve` and `wasmgate sim-hosts` parse them (clap), the connection is the one
//! ingestion uses.
//!
//! Also the rule that keeps a host from speaking for another: NATS permissions can limit a host's
//! user to its own subject (`runtime.operator.heartbeat.<id>`), and wasmgate refuses a payload
//! whose id differs from its subject's.

mod support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::eventually;

use clap::Parser;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use wasmgate::cli::{Cli, Command as Subcommand};
use wasmgate::inventory::{start_live, LiveArgs, LiveConfig, LiveRuntime};
use wasmgate::sim::{sim_host_id, SimHostsArgs};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn nats_binary() -> String {
    std::env::var("NATS_SERVER").unwrap_or_else(|_| {
        if Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server".into()
        } else {
            "nats-server".into()
        }
    })
}

/// A nats-server child running `config` on a free loopback port, killed on drop.
struct Nats {
    child: Child,
    port: u16,
}

impl Nats {
    /// Starts nats-server with `config` (its `listen` is added here) from `dir`.
    fn start(dir: &Path, config: &str) -> Nats {
        let port = free_port();
        let file = dir.join("nats.conf");
        std::fs::write(&file, format!("listen: \"127.0.0.1:{port}\"\n{config}")).unwrap();
        let child = Command::new(nats_binary())
            .arg("-c")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("nats.log")).unwrap())
            .spawn()
            .expect("start nats-server (Debian package nats-server; scripts/lib-install.sh)");
        let mut nats = Nats { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = nats.child.try_wait() {
                panic!(
                    "nats-server exited ({status}): {}",
                    std::fs::read_to_string(dir.join("nats.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        nats
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `wasmgate serve ARGS`'s live inventory options, parsed by the real command line.
fn serve_args(args: &[&str]) -> Result<LiveArgs, clap::Error> {
    let mut argv = vec!["wasmgate", "serve"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv)?.command {
        Subcommand::Serve(serve) => Ok(serve.live),
        _ => unreachable!("parsed a serve command"),
    }
}

/// Ingestion as `wasmgate serve ARGS` starts it (the flags through clap, the checked connection).
fn serve(args: &[&str]) -> LiveRuntime {
    let live = serve_args(args).expect("serve flags");
    let nats = live.nats().expect("the NATS options check out");
    start_live(LiveConfig::default(), nats, Duration::from_millis(100))
}

/// `wasmgate sim-hosts --once ARGS`, parsed by the real command line.
fn sim(args: &[&str]) -> SimHostsArgs {
    let mut argv = vec!["wasmgate", "sim-hosts", "--once"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv).expect("sim-hosts flags").command {
        Subcommand::SimHosts(args) => args,
        _ => unreachable!("parsed a sim-hosts command"),
    }
}

/// Publishes one round of `args` until `done` holds (the subscription is set up asynchronously
/// after the connection, so a first round may precede it).
async fn publish_until(args: &SimHostsArgs, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        wasmgate::sim::run(args.clone()).await.expect("sim-hosts");
        for _ in 0..10 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A test CA that signs the server's certificate and the clients' (subject `CN=<name>`).
struct Pki {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "nats-auth test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let ca_pem = params.self_signed(&key).unwrap().pem();
        Pki {
            issuer: Issuer::new(params, key),
            ca_pem,
        }
    }

    /// (certificate, key) PEM.
    fn sign(
        &self,
        common_name: &str,
        sans: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> (String, String) {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Writes `CN=<name>`'s client certificate and key; returns their paths.
    fn client(&self, dir: &Path, name: &str) -> (String, String) {
        let (cert, key) = self.sign(name, &[], ExtendedKeyUsagePurpose::ClientAuth);
        (
            write(dir, &format!("{name}.pem"), &cert),
            write(dir, &format!("{name}.key"), &key),
        )
    }
}

/// Upstream's chart runs NATS with TLS and `verify_and_map`; here the server maps each client
/// certificate's subject to a user: wasmgate may read heartbeats, the host `CN=host` may publish
/// on its own heartbeat subject only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_map_client_certificates() {
    wasmgate::platform::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::new();
    let ca = write(d, "ca.pem", &pki.ca_pem);
    let (server_cert, server_key) = pki.sign(
        "nats",
        &["127.0.0.1", "localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let server_cert = write(d, "server.pem", &server_cert);
    let server_key = write(d, "server.key", &server_key);
    let (wg_cert, wg_key) = pki.client(d, "wasmgate");
    let (host_cert, host_key) = pki.client(d, "host");
    let host_id = sim_host_id("tls", 0);
    let config = format!(
        r#"
tls {{
  cert_file: "{server_cert}"
  key_file: "{server_key}"
  ca_file: "{ca}"
  verify_and_map: true
}}
authorization {{
  users = [
    {{ user: "CN=wasmgate", permissions: {{ subscribe: "runtime.operator.heartbeat.>", publish: "_INBOX.>" }} }}
    {{ user: "CN=host", permissions: {{ publish: "runtime.operator.heartbeat.{host_id}", subscribe: "_INBOX.>" }} }}
  ]
}}
"#
    );
    let nats = Nats::start(d, &config);
    let url = nats.url();

    // The server does verify: no client certificate, no connection.
    let anonymous = wasmgate::inventory::NatsConnection::new(
        url.clone(),
        &wasmgate::inventory::NatsAuthArgs {
            nats_tls_ca: Some(PathBuf::from(&ca)),
            ..Default::default()
        },
    )
    .unwrap();
    let refused = anonymous
        .options("no-client-cert")
        .await
        .unwrap()
        .connect(url.as_str())
        .await;
    assert!(refused.is_err(), "a client without a certificate connected");

    let rt = serve(&[
        "--nats-url",
        &url,
        "--nats-tls-ca",
        &ca,
        "--nats-client-cert",
        &wg_cert,
        "--nats-client-key",
        &wg_key,
    ]);
    eventually(Duration::from_secs(20), "wasmgate's TLS connection", || {
        (rt.stats.connects.load(Ordering::Relaxed) >= 1).then_some(())
    })
    .await;

    // The host, with its own certificate, heartbeats on its own subject: a Ready host.
    let host = sim(&[
        "--nats-url",
        &url,
        "--nats-tls-ca",
        &ca,
        "--nats-tls-cert",
        &host_cert,
        "--nats-tls-key",
        &host_key,
        "--prefix",
        "tls",
        "--count",
        "1",
    ]);
    publish_until(&host, "the TLS host", || {
        rt.inventory.get("tls-0").is_some()
    })
    .await;
    let h = rt.inventory.get("tls-0").unwrap();
    assert_eq!(h.host_id, host_id);
    assert_eq!(h.ready_status(), Some("True"));

    // The same host user tries to speak for others. On another host's subject NATS refuses
    // the publish (permissions); on its own subject with another host's id wasmgate refuses it.
    let client = host_client(&url, &ca, &host_cert, &host_key).await;
    let spoof = br#"{"id":"victim","friendlyName":"spoofed"}"#.to_vec();
    client
        .publish("runtime.operator.heartbeat.victim", spoof.clone().into())
        .await
        .unwrap();
    client
        .publish(
            format!("runtime.operator.heartbeat.{host_id}"),
            spoof.into(),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();
    // Ingestion sees only the second (NATS dropped the first) and rejects it.
    eventually(
        Duration::from_secs(20),
        "the spoofed heartbeat rejected",
        || (rt.stats.rejected.load(Ordering::Relaxed) >= 1).then_some(()),
    )
    .await;
    // A good heartbeat after both still lands, so both spoofs were processed before it.
    let before = rt.stats.applied.load(Ordering::Relaxed);
    publish_until(&host, "a later heartbeat", || {
        rt.stats.applied.load(Ordering::Relaxed) > before
    })
    .await;
    assert!(
        rt.inventory.get("spoofed").is_none(),
        "a host spoke for another"
    );
    assert_eq!(rt.inventory.len(), 1);
    assert_eq!(rt.stats.rejected.load(Ordering::Relaxed), 1);
}

async fn host_client(url: &str, ca: &str, cert: &str, key: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .add_root_certificates(PathBuf::from(ca))
        .add_client_certificate(PathBuf::from(cert), PathBuf::from(key))
        .require_tls(true)
        .connect(url)
        .await
        .expect("the host's TLS connection")
}

/// A server with nkey users: wasmgate and the hosts authenticate with their seeds
/// (`--nats-nkey`); an anonymous client is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nkey_users() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wasmgate_key = nkeys::KeyPair::new_user();
    let host_key = nkeys::KeyPair::new_user();
    let config = format!(
        r#"
authorization {{
  users = [
    {{ nkey: "{}" }}
    {{ nkey: "{}", permissions: {{ publish: "runtime.operator.heartbeat.>" }} }}
  ]
}}
"#,
        wasmgate_key.public_key(),
        host_key.public_key()
    );
    let nats = Nats::start(d, &config);
    let url = nats.url();
    assert!(
        async_nats::connect(url.as_str()).await.is_err(),
        "an anonymous client connected"
    );
    let wasmgate_seed = write(d, "wasmgate.nk", &wasmgate_key.seed().unwrap());
    let host_seed = write(d, "host.nk", &host_key.seed().unwrap());

    let rt = serve(&["--nats-url", &url, "--nats-nkey", &wasmgate_seed]);
    eventually(
        Duration::from_secs(20),
        "wasmgate's nkey connection",
        || (rt.stats.connects.load(Ordering::Relaxed) >= 1).then_some(()),
    )
    .await;
    let host = sim(&[
        "--nats-url",
        &url,
        "--nats-nkey",
        &host_seed,
        "--prefix",
        "nk",
        "--count",
        "2",
    ]);
    publish_until(&host, "the nkey hosts", || rt.inventory.len() == 2).await;
    assert!(rt.inventory.get("nk-1").is_some());

    // Flags are checked before connecting: a seed file that is not a user seed stops serve.
    let account = write(
        d,
        "account.nk",
        &nkeys::KeyPair::new_account().seed().unwrap(),
    );
    let live = serve_args(&["--nats-url", &url, "--nats-nkey", &account]).expect("flags parse");
    let err = live.nats().unwrap_err();
    assert!(err.to_string().contains("not a user seed"), "{err}");
    // And the two ways of authenticating exclude each other.
    assert!(serve_args(&[
        "--nats-url",
        &url,
        "--nats-nkey",
        &wasmgate_seed,
        "--nats-creds",
        &wasmgate_seed,
    ])
    .is_err());
}

/// A JWT as nats-server's operator mode reads it: header and claims, base64url without padding,
/// signed with the issuer's nkey (ed25519).
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "jti": format!("{name}-{iat}"),
        "iat": iat,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let body = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = issuer.sign(body.as_bytes()).unwrap();
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A `.creds` file: the user's JWT and seed, in the layout `nsc` writes.
fn creds(user_jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    )
}

/// Operator mode (decentralized JWT auth, what `nsc` sets up): wasmgate and the hosts connect
/// with `.creds` files (`--nats-creds`); a user the account never signed is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creds_files_in_operator_mode() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "test-operator",
        serde_json::json!({"type": "operator", "version": 2}),
    );
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        "wasmcloud",
        serde_json::json!({
            "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                       "wildcards": true, "conn": -1, "leaf": -1},
            "default_permissions": {"pub": {}, "sub": {}},
            "type": "account",
            "version": 2
        }),
    );
    let user_creds = |name: &str, signer: &nkeys::KeyPair| -> String {
        let user = nkeys::KeyPair::new_user();
        let user_jwt = jwt(
            signer,
            &user.public_key(),
            name,
            serde_json::json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                               "type": "user", "version": 2}),
        );
        write(
            d,
            &format!("{name}.creds"),
            &creds(&user_jwt, &user.seed().unwrap()),
        )
    };
    let config = format!(
        "operator: \"{operator_jwt}\"\nresolver: MEMORY\nresolver_preload: {{\n  {}: \"{account_jwt}\"\n}}\n",
        account.public_key()
    );
    let nats = Nats::start(d, &config);
    let url = nats.url();
    let wasmgate_creds = user_creds("wasmgate", &account);
    let host_creds = user_creds("host", &account);

    // A user signed by an account the server does not know is refused.
    let stranger = user_creds("stranger", &nkeys::KeyPair::new_account());
    let refused = async_nats::ConnectOptions::new()
        .credentials_file(&stranger)
        .await
        .unwrap()
        .connect(url.as_str())
        .await;
    assert!(refused.is_err(), "a user of an unknown account connected");

    let rt = serve(&["--nats-url", &url, "--nats-creds", &wasmgate_creds]);
    eventually(
        Duration::from_secs(20),
        "wasmgate's creds connection",
        || (rt.stats.connects.load(Ordering::Relaxed) >= 1).then_some(()),
    )
    .await;
    let host = sim(&[
        "--nats-url",
        &url,
        "--nats-creds",
        &host_creds,
        "--prefix",
        "jwt",
        "--count",
        "3",
    ]);
    publish_until(&host, "the creds hosts", || rt.inventory.len() == 3).await;
    assert!(rt.inventory.get("jwt-2").is_some());
}
